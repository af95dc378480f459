//! Path operations beyond the single opcodes of `path.rs`, as `tokio::fs`
//! has them: `create_dir_all`, `hard_link` (`LINKAT`), `symlink`
//! (`SYMLINKAT`), `try_exists` (`STATX`).

use std::io;
use std::path::Path;

use io_uring::opcode;

use super::path::{CWD, c_path, create_dir, metadata, path_op};

/// Creates a directory and every missing parent (`mkdirat` for each, from
/// the first that exists). A directory that is already there, or that
/// another task creates meanwhile, is no error.
///
/// Cancellation: dropped part way, it leaves the directories made so far.
///
/// # Errors
///
/// `mkdirat(2)` errors: `AlreadyExists` if something other than a
/// directory is at `path` (or a dangling symbolic link on the way),
/// `NotADirectory` if a file is on the way; `InvalidInput` for a path with
/// a NUL byte.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let top = std::env::temp_dir().join(format!("ringlane-doc-mkdir-all-{}", std::process::id()));
/// let deep = top.join("a/b/c");
/// let d = deep.clone();
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::create_dir_all(&d).await?;
///     ringlane::native::fs::create_dir_all(&d).await // again: fine
/// }).unwrap()).unwrap().unwrap();
/// assert!(deep.is_dir());
/// std::fs::remove_dir_all(top).unwrap();
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // The missing ancestors, deepest first, found by walking up until a
    // `mkdirat` does not fail with `NotFound`.
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        if at.as_os_str().is_empty() {
            break; // a relative path's top: the working directory
        }
        match create_dir(at).await {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) if is_dir(at).await => break,
            Err(e) => return Err(e),
        }
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => return Err(io::Error::other("failed to create whole tree")),
        }
    }
    for dir in missing.into_iter().rev() {
        match create_dir(dir).await {
            Ok(()) => {}
            Err(_) if is_dir(dir).await => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn is_dir(path: &Path) -> bool {
    metadata(path).await.is_ok_and(|m| m.is_dir())
}

/// Makes `link` a new name for the file at `original` (`linkat`, not
/// following a symbolic link at `original`, as `std::fs::hard_link`).
///
/// # Errors
///
/// `linkat(2)` errors: `AlreadyExists` if `link` exists, `NotFound`.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let a = std::env::temp_dir().join(format!("ringlane-doc-link-{}", std::process::id()));
/// let b = a.with_extension("b");
/// std::fs::write(&a, b"x").unwrap();
/// let (a2, b2) = (a.clone(), b.clone());
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::hard_link(&a2, &b2).await
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(std::fs::read(&b).unwrap(), b"x");
/// std::fs::remove_file(a).unwrap();
/// std::fs::remove_file(b).unwrap();
/// ```
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let paths = (c_path(original.as_ref())?, c_path(link.as_ref())?);
    path_op(paths, move |(o, l)| {
        opcode::LinkAt::new(CWD, o.as_ptr(), CWD, l.as_ptr()).build()
    })
    .await
}

/// Makes `link` a symbolic link to `original` (`symlinkat`); `original`
/// need not exist.
///
/// # Errors
///
/// `symlinkat(2)` errors: `AlreadyExists` if `link` exists, `NotFound` for
/// a missing parent of `link`.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let l = std::env::temp_dir().join(format!("ringlane-doc-symlink-{}", std::process::id()));
/// let l2 = l.clone();
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::symlink("/nowhere", &l2).await
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(std::fs::read_link(&l).unwrap(), std::path::Path::new("/nowhere"));
/// std::fs::remove_file(l).unwrap();
/// ```
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let paths = (c_path(original.as_ref())?, c_path(link.as_ref())?);
    path_op(paths, move |(o, l)| {
        opcode::SymlinkAt::new(CWD, o.as_ptr(), l.as_ptr()).build()
    })
    .await
}

/// Whether something exists at `path`, following symbolic links (`statx`):
/// `Ok(false)` for `NotFound` (a dangling link included), the error for
/// anything else (`PermissionDenied` on a parent, say), as
/// `std::fs::exists`.
///
/// # Errors
///
/// The `statx(2)` errors other than `NotFound` (`PermissionDenied`,
/// `NotADirectory` for a file as a parent); `InvalidInput` for a path with
/// a NUL byte.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let found = rt.block_on(rt.handle().spawn_pinned(0, async {
///     let tmp = ringlane::native::fs::try_exists(std::env::temp_dir()).await?;
///     let none = ringlane::native::fs::try_exists("/no/such/ringlane/path").await?;
///     Ok::<_, std::io::Error>((tmp, none))
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(found, (true, false));
/// ```
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
