//! The `tokio::fs` calls io_uring has no opcode for: `canonicalize`,
//! `read_link`, `set_permissions`, `remove_dir_all`,
//! `File::set_permissions` (and `read_dir`'s listing, in `read_dir.rs`).
//! Each runs its std call on the runtime's blocking pool (ADR 0020), as
//! Tokio runs every fs call, so a slow filesystem stalls a pool thread,
//! never the shard.
//!
//! Invariant: a closure that names an fd owns a reference to it (the
//! `File`'s `Arc<OwnedFd>`), so the fd cannot be closed, and its number
//! reused, while the pool thread works on it, whatever the caller drops.

use std::fs::Permissions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::File;

/// Runs `f` on the current runtime's blocking pool and waits for it.
///
/// Dropping the future does not stop `f`: it runs to its end on the pool
/// (as Tokio's fs calls do), and its result is dropped there.
pub(super) async fn on_pool<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    // No runtime here (`NotOnShard`) or one shutting down (`BrokenPipe`):
    // the runtime's error says which.
    let job = crate::spawn_blocking(f)?;
    job.await?
}

/// The absolute form of `path`, every symbolic link, `.` and `..`
/// resolved (`std::fs::canonicalize` on the blocking pool).
///
/// # Errors
///
/// `NotFound` if the path (or a link on it) leads nowhere;
/// `realpath(3)` errors otherwise; the runtime's error (`BrokenPipe`)
/// once it is shutting down.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     ringlane::native::fs::canonicalize("/proc/self/../self/.").await
/// }).unwrap();
/// let resolved = rt.block_on(j).unwrap().unwrap();
/// assert_eq!(resolved, std::path::PathBuf::from(format!("/proc/{}", std::process::id())));
/// ```
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::canonicalize(path)).await
}

/// What the symbolic link at `path` points to (`std::fs::read_link` on
/// the blocking pool).
///
/// # Errors
///
/// `InvalidInput` if `path` is not a symbolic link, `NotFound` if it does
/// not exist; the runtime's error once it is shutting down.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     ringlane::native::fs::read_link("/proc/self").await
/// }).unwrap();
/// let target = rt.block_on(j).unwrap().unwrap();
/// assert_eq!(target, std::path::PathBuf::from(std::process::id().to_string()));
/// ```
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_link(path)).await
}

/// Sets the permissions of the file at `path`, following symbolic links
/// (`std::fs::set_permissions` on the blocking pool).
///
/// # Errors
///
/// `NotFound`, `PermissionDenied` (not the owner); the runtime's error
/// once it is shutting down.
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-set-perm-{}", std::process::id()));
/// std::fs::write(&p, b"x").unwrap();
/// let q = p.clone();
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o600)).await
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
/// std::fs::remove_file(p).unwrap();
/// ```
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::set_permissions(path, perm)).await
}

/// Removes a directory and everything in it, not following symbolic
/// links (`std::fs::remove_dir_all` on the blocking pool; std's version
/// resists the symlink race of CVE-2022-21658).
///
/// Cancellation: the removal goes on to its end on the pool.
///
/// # Errors
///
/// `NotFound` if `path` does not exist, `NotADirectory` if it is not a
/// directory; the first error the removal met otherwise; the runtime's
/// error once it is shutting down.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let top = std::env::temp_dir().join(format!("ringlane-doc-rm-all-{}", std::process::id()));
/// std::fs::create_dir_all(top.join("a/b")).unwrap();
/// std::fs::write(top.join("a/b/f"), b"x").unwrap();
/// let t = top.clone();
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::remove_dir_all(&t).await
/// }).unwrap()).unwrap().unwrap();
/// assert!(!top.exists());
/// ```
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_dir_all(path)).await
}

impl File {
    /// Sets the open file's permissions (`fchmod(2)` on the blocking pool,
    /// as `tokio::fs::File::set_permissions`).
    ///
    /// # Errors
    ///
    /// `PermissionDenied` (not the owner), `ReadOnlyFilesystem`; the
    /// runtime's error once it is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-file-set-perm-{}", std::process::id()));
    /// let q = p.clone();
    /// rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let f = ringlane::native::fs::File::create(&q).await?;
    ///     f.set_permissions(std::fs::Permissions::from_mode(0o640)).await?;
    ///     f.close().await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        // The closure's own reference keeps the fd open (module invariant).
        let fd = self.fd.clone();
        on_pool(move || {
            // SAFETY: plain syscall on an fd kept open by `fd`; no memory
            // is passed.
            let r = unsafe { libc::fchmod(fd.as_raw_fd(), perm.mode()) };
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
        .await
    }
}
