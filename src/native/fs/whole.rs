//! Whole-file helpers as `tokio::fs` and `std::fs` have them: `read`,
//! `read_to_string`, `write`. Each is an open, reads or writes at the
//! file's position (so FIFOs and character devices work as with `std`), and
//! a close, every step an io_uring op.

use std::io;
use std::path::Path;

use super::File;
use super::file::CURRENT_POSITION;

/// The first read's size when `statx` reports no size (`/proc` files,
/// FIFOs); later reads double it.
const FIRST_READ: usize = 8 * 1024;

/// Reads the whole file at `path` into a `Vec` (open, `statx` for the size,
/// reads until end of file, close).
///
/// # Errors
///
/// `NotFound` and the other `openat(2)` and `read(2)` errors;
/// `OutOfMemory` if a buffer of the file's size cannot be allocated.
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
    // One byte past the size, so a file read whole needs no second
    // allocation to see its end.
    let size = file.metadata().await.map_or(0, |m| m.len());
    let first = match usize::try_from(size) {
        Ok(0) => FIRST_READ,
        Ok(size) => size.saturating_add(1),
        Err(_) => usize::MAX, // refused below
    };
    let mut buf = Vec::new();
    buf.try_reserve_exact(first)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().max(FIRST_READ));
        }
        let filled = buf.len();
        let (n, b) = file.read_inner(buf, CURRENT_POSITION, filled).await;
        buf = b;
        match n {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    drop(file);
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

/// Writes `contents` as the whole file at `path`, creating it or
/// truncating it first, then closes it and reports the close's error (as
/// `tokio::fs::write`, the bytes are copied into a buffer the kernel owns
/// while it writes).
///
/// # Errors
///
/// The `openat(2)`, `write(2)` and `close(2)` errors; `WriteZero` if the
/// kernel takes no bytes.
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
    let mut buf = contents.as_ref().to_vec();
    let total = buf.len();
    let mut done = 0;
    while done < total {
        let (n, b) = file.write_inner(buf, CURRENT_POSITION, done).await;
        buf = b;
        match n {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    file.close().await
}
