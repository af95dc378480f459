//! Path operations and metadata through io_uring opcodes (`UNLINKAT`,
//! `RENAMEAT`, `MKDIRAT`, `STATX`).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{opcode, types};

use crate::native::os_result;
use crate::op;

use super::Metadata;

/// A path as the kernel wants it; `InvalidInput` for an inner NUL byte.
pub(super) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

pub(super) const CWD: types::Fd = types::Fd(libc::AT_FDCWD);

/// Runs a path op whose SQE points into `paths` (kept in the op's cell
/// until its final CQE) and reports its result.
pub(super) async fn path_op<T, B>(paths: T, build: B) -> io::Result<()>
where
    T: Send + 'static,
    B: FnOnce(&mut T) -> io_uring::squeue::Entry + Send + 'static,
{
    let (r, _) = op::submit(paths, false, build).await.map_err(|(e, _)| e)?;
    os_result(r).map(drop)
}

async fn unlink(path: &Path, flags: i32) -> io::Result<()> {
    path_op(c_path(path)?, move |p| {
        opcode::UnlinkAt::new(CWD, p.as_ptr()).flags(flags).build()
    })
    .await
}

/// Removes a file (`unlinkat`).
///
/// # Errors
///
/// `NotFound` if it does not exist; `unlinkat(2)` errors otherwise.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-rm-{}", std::process::id()));
/// std::fs::write(&p, b"x").unwrap();
/// let q = p.clone();
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::remove_file(&q).await
/// }).unwrap()).unwrap().unwrap();
/// assert!(!p.exists());
/// ```
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), 0).await
}

/// Removes an empty directory (`unlinkat` with `AT_REMOVEDIR`).
///
/// # Errors
///
/// `DirectoryNotEmpty`, `NotFound`, or other `unlinkat(2)` errors.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-rmdir-{}", std::process::id()));
/// let q = p.clone();
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::create_dir(&q).await?;
///     ringlane::native::fs::remove_dir(&q).await
/// }).unwrap()).unwrap().unwrap();
/// assert!(!p.exists());
/// ```
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), libc::AT_REMOVEDIR).await
}

/// Creates a directory (`mkdirat`, mode 0o777 before the umask).
///
/// # Errors
///
/// `AlreadyExists`, `NotFound` for a missing parent, or other `mkdirat(2)`
/// errors.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-create-dir-{}", std::process::id()));
/// let q = p.clone();
/// let again = rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::create_dir(&q).await?;
///     Ok::<_, std::io::Error>(ringlane::native::fs::create_dir(&q).await.unwrap_err().kind())
/// }).unwrap()).unwrap().unwrap();
/// assert!(p.is_dir());
/// assert_eq!(again, std::io::ErrorKind::AlreadyExists);
/// std::fs::remove_dir(p).unwrap();
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    path_op(c_path(path.as_ref())?, move |p| {
        opcode::MkDirAt::new(CWD, p.as_ptr()).mode(0o777).build()
    })
    .await
}

/// Renames `from` to `to`, replacing `to` if it exists (`renameat`).
///
/// # Errors
///
/// `renameat2(2)` errors, e.g. `NotFound`.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let a = std::env::temp_dir().join(format!("ringlane-doc-mv-a-{}", std::process::id()));
/// let b = a.with_extension("b");
/// std::fs::write(&a, b"x").unwrap();
/// let (a2, b2) = (a.clone(), b.clone());
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::rename(&a2, &b2).await
/// }).unwrap()).unwrap().unwrap();
/// assert!(!a.exists() && b.exists());
/// std::fs::remove_file(b).unwrap();
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let paths = (c_path(from.as_ref())?, c_path(to.as_ref())?);
    path_op(paths, move |(f, t)| {
        opcode::RenameAt::new(CWD, f.as_ptr(), CWD, t.as_ptr()).build()
    })
    .await
}

/// One `statx` of `dirfd` + `path` with `flags`.
pub(super) async fn statx<R: Send + 'static>(
    dirfd: i32,
    path: CString,
    flags: i32,
    keep_alive: R,
) -> io::Result<Metadata> {
    // SAFETY: all-zero bytes are a valid `statx` buffer.
    let buf: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
    let op = op::submit((path, buf, keep_alive), false, move |(p, b, _)| {
        opcode::Statx::new(types::Fd(dirfd), p.as_ptr(), (&raw mut **b).cast())
            .flags(flags)
            .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
            .build()
    });
    let (r, (_, buf, _)) = op.await.map_err(|(e, _)| e)?;
    os_result(r)?;
    Ok(Metadata::from_raw(*buf))
}

/// Metadata of the file at `path`, following symbolic links (`statx`).
///
/// # Errors
///
/// `NotFound` and other `statx(2)` errors.
///
/// # Examples
///
/// ```
/// use ringlane::native::fs::metadata;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let found = metadata("/proc/self/stat").await.map(|m| m.is_file());
///     let missing = metadata("/proc/self/no-such-entry").await.map_err(|e| e.kind());
///     (found.unwrap(), missing.unwrap_err())
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), (true, std::io::ErrorKind::NotFound));
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(libc::AT_FDCWD, c_path(path.as_ref())?, 0, ()).await
}

/// Metadata of the entry at `path` itself: a symbolic link is described,
/// not followed (`statx` with `AT_SYMLINK_NOFOLLOW`).
///
/// # Errors
///
/// `NotFound` and other `statx(2)` errors.
///
/// # Examples
///
/// ```
/// use ringlane::native::fs::{metadata, symlink_metadata};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     // `/proc/self` is a link to the calling process's directory.
///     let link = symlink_metadata("/proc/self").await?.is_symlink();
///     let target = metadata("/proc/self").await?.is_dir();
///     Ok::<_, std::io::Error>((link, target))
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), (true, true));
/// ```
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    statx(
        libc::AT_FDCWD,
        c_path(path.as_ref())?,
        libc::AT_SYMLINK_NOFOLLOW,
        (),
    )
    .await
}
