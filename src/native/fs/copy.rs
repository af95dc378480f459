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

/// Bytes moved per splice: a default pipe's capacity, so that a splice into
/// the emptied pipe never waits.
const CHUNK: u32 = 64 * 1024;

/// Copies the contents and permission bits of the regular file `from` to
/// `to`, creating `to` or truncating it first; returns the bytes copied.
/// The bytes go through a pipe by `IORING_OP_SPLICE`, the kernel's own
/// copy (a file system that cannot splice gets reads and writes through a
/// buffer instead).
///
/// Cancellation: dropped part way, it leaves `to` as far as it got.
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
    let perm = meta.mode() & 0o7777;
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
        Err((e, 0)) if e.raw_os_error() == Some(libc::EINVAL) => by_buffer(&src, &dst).await?,
        Err((e, _)) => return Err(e),
        Ok(n) => n,
    };
    let _ = src.close().await; // a read-only file's close says nothing
    dst.close().await?;
    Ok(copied)
}

/// Moves everything from `src` to `dst` through a pipe; on failure, the
/// error and how far it got.
async fn splice_all(src: &File, dst: &File) -> Result<u64, (io::Error, u64)> {
    let (read_end, write_end) = pipe().map_err(|e| (e, 0))?;
    let mut at = 0u64;
    loop {
        let into_pipe = splice(&src.fd, Some(at), &write_end, None, CHUNK).await;
        let n = match into_pipe {
            Ok(0) => return Ok(at),
            Ok(n) => n,
            Err(e) => return Err((e, at)),
        };
        let mut out = 0;
        while out < n {
            let to = at + u64::from(out);
            match splice(&read_end, None, &dst.fd, Some(to), n - out).await {
                Ok(0) => return Err((io::ErrorKind::WriteZero.into(), at)),
                Ok(m) => out += m,
                Err(e) => return Err((e, at)),
            }
        }
        at += u64::from(n);
    }
}

/// One `IORING_OP_SPLICE` of up to `len` bytes (`None`: at the fd's
/// position, as a pipe needs). Both fds stay open in the op until its CQE.
async fn splice(
    from: &Arc<OwnedFd>,
    from_at: Option<u64>,
    to: &Arc<OwnedFd>,
    to_at: Option<u64>,
    len: u32,
) -> io::Result<u32> {
    let offset = |at: Option<u64>| -> io::Result<i64> {
        at.map_or(Ok(-1), |at| {
            i64::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
        })
    };
    let (off_in, off_out) = (offset(from_at)?, offset(to_at)?);
    let (fd_in, fd_out) = (types::Fd(from.as_raw_fd()), types::Fd(to.as_raw_fd()));
    let keep = (from.clone(), to.clone());
    let op = op::submit(keep, false, move |_| {
        opcode::Splice::new(fd_in, off_in, fd_out, off_out, len).build()
    });
    let (r, _) = op.await.map_err(|(e, _)| e)?;
    os_result(r).map(|n| n as u32)
}

/// The fallback for a file system that cannot splice: reads and writes
/// through one buffer.
async fn by_buffer(src: &File, dst: &File) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(CHUNK as usize);
    let mut at = 0u64;
    loop {
        buf.clear();
        let (n, b) = src.read_at(buf, at).await;
        buf = b;
        match n? {
            0 => return Ok(at),
            n => {
                let (w, b) = dst.write_all_at(buf, at).await;
                buf = b;
                w?;
                at += n as u64;
            }
        }
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
