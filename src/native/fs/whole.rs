//! Whole-file helpers as `tokio::fs` and `std::fs` have them: `read`,
//! `read_to_string`, `write`. Each is an open, reads or writes (a regular
//! file is read at offsets from its start, anything else at its position,
//! so FIFOs and character devices work as with `std`), and a close, every
//! step an io_uring op.

use std::io;
use std::path::Path;

use super::File;
use super::file::CURRENT_POSITION;

/// The first read's size.
const FIRST_READ: usize = 8 * 1024;
/// A file that fills the first read is read on into a buffer of this size
/// without asking its size: `statx` always runs on a kernel worker thread
/// (a few µs, and a long tail), dearer than a read or two of this much.
const UNSIZED: usize = 64 * 1024;
/// The least a full buffer grows by when the size is unknown (`/proc`,
/// FIFOs, devices); it grows by at least its size.
const GROWTH: usize = 8 * 1024;
/// The probe a full buffer reads into before it grows (`std`'s size):
/// when it finds the end, the buffer is exact and was never copied.
const PROBE: usize = 32;

fn out_of_memory<E>(_: E) -> io::Error {
    io::Error::from(io::ErrorKind::OutOfMemory)
}

/// Reads the whole file at `path` into a `Vec`: open, reads at the file's
/// position until one returns 0, close. Files of up to 64 KiB are read
/// without asking their size (an 8 KiB read, then the rest of 64 KiB); a
/// larger one is asked its size once, to read the rest into one
/// allocation.
///
/// Cancellation: dropped before it returns, it closes the file and keeps
/// nothing.
///
/// # Errors
///
/// `NotFound` and the other `openat(2)` and `read(2)` errors;
/// `InvalidInput` for a path with a NUL byte; `OutOfMemory` if the buffer
/// cannot grow to what the file holds (`/dev/zero`, say), as `std`'s.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-read-{}", std::process::id()));
/// std::fs::write(&p, b"whole file").unwrap();
/// let q = p.clone();
/// let bytes = rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::read(&q).await
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(bytes, b"whole file");
/// std::fs::remove_file(p).unwrap();
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let bytes = read_to_end(&file).await;
    // Through the ring, so that a slow close (a network file system's
    // flush) does not hold up the shard; its error is dropped, as `std`'s.
    let _ = file.close().await;
    bytes
}

/// Reads `file`, just opened by `read` and read by nobody else, from its
/// start to its end. A regular file is read at offsets (no `lseek` asks
/// whether it has positions: a stream-like one ignores them), which the
/// kernel may do at submit (op invariant 13: the op resolves in its first
/// poll); a read at the position waits in its batch for the shard's loop,
/// as a stream's must.
async fn read_to_end(file: &File) -> io::Result<Vec<u8>> {
    // Unasked (no `lseek`): the file is regular and ours alone.
    let positioned = file.seekable.regular_or_seekable();
    let at = |read: usize| match positioned {
        true => (read as u64, true),
        false => (CURRENT_POSITION, true),
    };
    let mut buf = Vec::new();
    buf.try_reserve_exact(FIRST_READ).map_err(out_of_memory)?;
    let mut sized = false;
    loop {
        if buf.len() == buf.capacity() {
            if buf.capacity() < UNSIZED {
                // Past the first read: on to `UNSIZED`, no size asked.
                buf.try_reserve_exact(UNSIZED - buf.len())
                    .map_err(out_of_memory)?;
            } else {
                // Full: a probe first, which needs no copy of the buffer
                // when it finds the end (a file of exactly this size).
                let (n, probe) = file
                    .read_inner_as(Vec::with_capacity(PROBE), at(buf.len()), 0)
                    .await;
                match n {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                // More: asked its size once (one byte past it, so that the
                // read that finds the end needs no second allocation).
                let size = match sized {
                    false => file.metadata().await.map_or(0, |m| m.len()),
                    true => 0,
                };
                sized = true;
                let read = (buf.len() + probe.len()) as u64;
                let more = match size {
                    // Unknown (0: `/proc`, devices; asked once only).
                    0 => buf.capacity().max(GROWTH),
                    // All there, probably: room to find the end.
                    size if size <= read => PROBE,
                    size => {
                        usize::try_from(size - read).map_or(usize::MAX, |r| r.saturating_add(1))
                    }
                };
                buf.try_reserve_exact(probe.len().saturating_add(more))
                    .map_err(out_of_memory)?;
                buf.extend_from_slice(&probe);
            }
        }
        let filled = buf.len();
        let (n, b) = file.read_inner_as(buf, at(filled), filled).await;
        buf = b;
        match n {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // A buffer much larger than what it holds (a small or empty file in the
    // first 8 KiB) is given back; std's is exact, this one at most about
    // twice the bytes.
    if buf.capacity() > 2 * buf.len() + 64 {
        buf.shrink_to_fit();
    }
    Ok(buf)
}

/// Reads the whole file at `path` into a `String`.
///
/// # Errors
///
/// As [`read`]; `InvalidData` if the contents are not UTF-8.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-read-str-{}", std::process::id()));
/// std::fs::write(&p, "héllo").unwrap();
/// let q = p.clone();
/// let text = rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::read_to_string(&q).await
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(text, "héllo");
/// std::fs::remove_file(p).unwrap();
/// ```
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let bytes = read(path).await?;
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Writes `contents` as the whole file at `path`, creating it (mode 0o666
/// before the umask) or truncating it first, then closes it and reports the
/// close's error, which `std` and Tokio drop (a network file system may
/// report a failed write only there). As `tokio::fs::write`, the bytes are
/// copied into a buffer the kernel owns while it writes.
///
/// Cancellation: dropped part way, it stops there, and the file stays as
/// far as it got: empty or partly written once the open has truncated it
/// (Tokio's, running on a blocking thread, goes on to the end). Write to a
/// temporary name and [`rename`](super::rename) it into place where that
/// matters.
///
/// # Errors
///
/// The `openat(2)`, `write(2)` and `close(2)` errors; `InvalidInput` for
/// a path with a NUL byte; `WriteZero` if the kernel takes no bytes.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-write-{}", std::process::id()));
/// let q = p.clone();
/// rt.block_on(rt.handle().spawn_pinned(0, async move {
///     ringlane::native::fs::write(&q, "written").await
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"written");
/// std::fs::remove_file(p).unwrap();
/// ```
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let file = super::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await?;
    file.write_all_from(contents.as_ref().to_vec(), None)
        .await
        .0?;
    file.close().await
}
