//! `copy`: a file's bytes and permission bits to another path, as
//! `std::fs::copy` and `tokio::fs::copy`, the bytes moved by
//! `IORING_OP_SPLICE` through a pipe (the kernel copies; no user buffer).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use io_uring::{opcode, types};

use super::{File, OpenOptions};
use crate::native::os_result;
use crate::op;

/// Bytes asked for per splice: a default pipe's capacity. The kernel moves
/// at most what the emptied pipe has room for (less for a user over
/// `pipe-user-pages-soft`), so a splice into it never waits.
const CHUNK: u32 = 64 * 1024;

/// Copies the contents and permission bits of the regular file `from` to
/// `to`, creating `to` or truncating it first; returns the bytes copied.
/// The bytes go through a pipe by `IORING_OP_SPLICE`, the kernel's own
/// copy, at both files' positions (so a FIFO, a terminal or `/dev/null`
/// can be the destination, as with `std`). If the first splice is refused
/// (a file system or device that cannot splice) or no pipe can be had,
/// reads and writes through a buffer do it instead. The same file as both
/// is truncated and `Ok(0)` returned, as with `std`.
///
/// Cancellation: dropped part way, it leaves `to` truncated, with the new
/// permissions, and as far as the copy got.
///
/// # Errors
///
/// `InvalidInput` if `from` is not a regular file (as `std`'s) or a path
/// has a NUL byte; the `openat(2)`, `splice(2)`, `fchmod(2)`, `pipe(2)`
/// and `close(2)` errors (`NotFound` for a missing `from` or parent of
/// `to`).
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let a = std::env::temp_dir().join(format!("ringlane-doc-copy-{}", std::process::id()));
/// let b = a.with_extension("copy");
/// std::fs::write(&a, b"copied by the kernel").unwrap();
/// let (a2, b2) = (a.clone(), b.clone());
/// let n = rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::copy(&a2, &b2).await
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(n, 20);
/// assert_eq!(std::fs::read(&b).unwrap(), b"copied by the kernel");
/// std::fs::remove_file(a).unwrap();
/// std::fs::remove_file(b).unwrap();
/// ```
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let src = File::open(from).await?;
    let meta = src.metadata().await?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source path is neither a regular file nor a symlink to a regular file",
        ));
    }
    let perm = meta.mode() & 0o7777; // the permission bits of st_mode
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(perm)
        .open(to)
        .await?;
    // An existing file keeps its permissions through the open: set them,
    // as `std` does (a special file, `/dev/null` say, is left as it is).
    if dst.metadata().await?.is_file() {
        // SAFETY: fchmod takes no pointers; the fd is open while `dst` lives.
        if unsafe { libc::fchmod(dst.fd.as_raw_fd(), perm) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let copied = match splice_all(&src, &dst).await {
        Err((e, 0)) if cannot_splice(&e) => by_buffer(&src, &dst).await?,
        Err((e, _)) => return Err(e),
        Ok(n) => n,
    };
    let _ = src.close().await; // a read-only file's close says nothing
    dst.close().await?;
    Ok(copied)
}

/// Whether a failed first splice (or pipe) means "do it through a buffer".
fn cannot_splice(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS | libc::EMFILE | libc::ENFILE)
    )
}

/// Moves everything from `src` to `dst` through a pipe, at both files'
/// positions; on failure, the error and how far it got (nothing is left in
/// the pipe only while that is 0).
async fn splice_all(src: &File, dst: &File) -> Result<u64, (io::Error, u64)> {
    let (read_end, write_end) = pipe().map_err(|e| (e, 0))?;
    let mut at = 0u64;
    loop {
        let into_pipe = splice(&src.fd, &write_end, CHUNK).await;
        let n = match into_pipe {
            Ok(0) => return Ok(at),
            Ok(n) => n,
            // Bytes in the pipe may be lost past here: `at` counts from now.
            Err(e) => return Err((e, at)),
        };
        let mut out = 0;
        while out < n {
            match splice(&read_end, &dst.fd, n - out).await {
                Ok(0) => return Err((io::ErrorKind::WriteZero.into(), at)),
                Ok(m) => out += m,
                Err(e) => return Err((e, at)),
            }
        }
        at += u64::from(n);
    }
}

/// One `IORING_OP_SPLICE` of up to `len` bytes at both fds' positions
/// (offsets -1). Both fds stay open in the op until its CQE.
async fn splice(from: &Arc<OwnedFd>, to: &Arc<OwnedFd>, len: u32) -> io::Result<u32> {
    let (fd_in, fd_out) = (types::Fd(from.as_raw_fd()), types::Fd(to.as_raw_fd()));
    let keep = (from.clone(), to.clone());
    let op = op::submit(keep, false, move |_| {
        opcode::Splice::new(fd_in, -1, fd_out, -1, len).build()
    });
    let (r, _) = op.await.map_err(|(e, _)| e)?;
    os_result(r).map(|n| n as u32)
}

/// The fallback where splicing cannot be done: reads and writes through
/// one buffer, at both files' positions.
async fn by_buffer(src: &File, dst: &File) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(CHUNK as usize);
    let mut copied = 0u64;
    loop {
        buf.clear();
        let (n, b) = src.read(buf).await;
        buf = b;
        let n = match n {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (w, b) = dst.write_all_from(buf, None).await;
        buf = b;
        w?;
        copied += n as u64;
    }
}

/// A pipe's two ends: (read, write), close-on-exec.
fn pipe() -> io::Result<(Arc<OwnedFd>, Arc<OwnedFd>)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((Arc::new(ends.0), Arc::new(ends.1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffered fallback (a file system or device that cannot splice;
    /// none here does) copies at both positions, a FIFO included.
    #[test]
    fn the_buffered_fallback_copies_everything_at_the_positions() {
        let dir =
            std::env::temp_dir().join(format!("ringlane-copy-fallback-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(dir.join("src"), &data).unwrap();
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let d = dir.clone();
        let copied = rt
            .block_on(
                rt.handle()
                    .spawn_pinned(0, async move {
                        let src = File::open(d.join("src")).await?;
                        let dst = File::create(d.join("dst")).await?;
                        by_buffer(&src, &dst).await
                    })
                    .unwrap(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(copied, data.len() as u64);
        assert!(std::fs::read(dir.join("dst")).unwrap() == data);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
