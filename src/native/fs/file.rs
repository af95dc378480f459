//! `File`: reads, writes and syncs as io_uring operations.
//!
//! The fd is shared (`Arc`) with every operation in flight on it, so it is
//! closed only after the last of them has completed, even if the `File`
//! and the futures are dropped first: the kernel never sees a closed, or
//! worse a reused, fd number.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use io_uring::{opcode, types};

use super::fixed::FileSlot;
use super::rw::RwFuture;
use crate::native::{IoBuf, IoBufMut, os_result};

/// An open file whose I/O goes through the current shard's io_uring.
///
/// # Examples
///
/// ```
/// use ringlane::native::fs::File;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let path = std::env::temp_dir().join(format!("ringlane-doc-file-{}", std::process::id()));
/// let p = path.clone();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let f = File::options().read(true).write(true).create(true).truncate(true).open(&p).await?;
///     let (n, _buf) = f.write_at(b"hello ring".to_vec(), 0).await;
///     n?;
///     f.sync_all().await?;
///     let (n, buf) = f.read_at(Vec::with_capacity(64), 0).await;
///     let n = n?;
///     Ok::<_, std::io::Error>(buf[..n].to_vec())
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"hello ring");
/// std::fs::remove_file(path).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct File {
    pub(super) fd: Arc<OwnedFd>,
    /// The file's slot in a shard's registered file table, if registered
    /// (`register`): ops then name the slot, not the fd.
    pub(super) fixed: Option<Arc<FileSlot>>,
    /// Whether positioned ops may run on the fd (learnt at the first).
    pub(super) seekable: super::seekable::Seekable,
    /// The fd came from outside (`From<OwnedFd>`), so it may be of a kind
    /// `IORING_OP_CLOSE` refuses (an io_uring fd): `close` looks first.
    pub(super) adopted: bool,
}

/// The offset io_uring reads as "the file's current position".
pub(super) const CURRENT_POSITION: u64 = u64::MAX;

impl File {
    /// Wraps an fd this `File` will own.
    ///
    /// # Safety
    ///
    /// `fd` must be an open file descriptor owned by nobody else.
    pub(crate) unsafe fn from_raw_fd_owned(fd: RawFd) -> Self {
        // SAFETY: the caller hands us sole ownership of an open fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        File {
            adopted: false, // an OPENAT result: a regular file, FIFO, device...
            ..fd.into()
        }
    }

    /// `offset + advanced` as a positioned offset, or `InvalidInput` past
    /// `i64::MAX` (`u64::MAX` is io_uring's "current position": never a
    /// caller's offset).
    #[inline]
    pub(super) fn at(offset: u64, advanced: usize) -> io::Result<u64> {
        offset
            .checked_add(advanced as u64)
            .filter(|o| *o <= i64::MAX as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset beyond i64::MAX"))
    }

    /// Reads until `buf` is full (its whole capacity, as every read here
    /// fills capacity rather than a `Vec`'s length), from `offset`.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first (the bytes read so far are in
    /// the returned buffer); otherwise as [`read_at`](Self::read_at).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let f = ringlane::native::fs::File::open("/proc/self/stat").await.unwrap();
    ///     let (r, buf) = f.read_exact_at(Vec::with_capacity(8), 0).await;
    ///     r.map(|()| buf.len())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 8);
    /// ```
    pub async fn read_exact_at<B: IoBufMut>(&self, mut buf: B, offset: u64) -> (io::Result<()>, B) {
        let total = buf.bytes_total();
        let mut filled = 0;
        while filled < total {
            let at = match Self::at(offset, filled) {
                Ok(at) => at,
                Err(e) => return (Err(e), buf),
            };
            let (n, b) = self.read_inner(buf, at, filled).await;
            buf = b;
            match n {
                Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes every initialized byte of `buf` at `offset`, resubmitting
    /// after short writes.
    ///
    /// # Errors
    ///
    /// `WriteZero` if the kernel accepts nothing; otherwise as
    /// [`write_at`](Self::write_at).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-wall-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let f = ringlane::native::fs::File::create(&p).await.unwrap();
    ///     f.write_all_at(vec![3u8; 1 << 20], 0).await.0
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, offset: u64) -> (io::Result<()>, B) {
        self.write_all_from(buf, Some(offset)).await
    }

    /// Writes every initialized byte of `buf` from `offset`, or at the
    /// file's position (`None`: a FIFO's, a device's, or a regular file's,
    /// which moves), resubmitting after short writes.
    pub(super) async fn write_all_from<B: IoBuf>(
        &self,
        mut buf: B,
        offset: Option<u64>,
    ) -> (io::Result<()>, B) {
        let total = buf.bytes_init();
        let mut done = 0;
        while done < total {
            let at = match offset.map(|o| Self::at(o, done)) {
                None => CURRENT_POSITION,
                Some(Ok(at)) => at,
                Some(Err(e)) => return (Err(e), buf),
            };
            let (n, b) = self.write_inner(buf, at, done).await;
            buf = b;
            match n {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Metadata of the open file (`statx` with `AT_EMPTY_PATH`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-meta-{}", std::process::id()));
    /// let p = path.clone();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let f = ringlane::native::fs::File::create(&p).await?;
    ///     f.write_at(vec![0u8; 10], 0).await.0?;
    ///     f.metadata().await
    /// }).unwrap()).unwrap().unwrap();
    /// assert!(m.is_file() && m.len() == 10 && !m.is_empty() && m.mode() & 0o600 == 0o600);
    /// assert!(m.modified().unwrap() <= std::time::SystemTime::now());
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn metadata(&self) -> io::Result<super::Metadata> {
        let raw = self.fd.as_raw_fd();
        super::path::statx(raw, c"".to_owned(), libc::AT_EMPTY_PATH, self.fd.clone()).await
    }

    /// Closes the file with `IORING_OP_CLOSE` and reports its error (which
    /// dropping cannot). If a clone of this `File` or an op on it is still
    /// alive, the fd stays open for them and closes when the last goes.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fs::File::open("/proc/self/stat").await?.close().await
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// ```
    pub async fn close(self) -> io::Result<()> {
        // The kernel refuses `IORING_OP_CLOSE` for an io_uring fd (`EBADF`,
        // fd left open), and an `EBADF` from the op cannot tell that apart
        // from a flush that failed after the fd was gone: such an fd is
        // closed with `close(2)` before anything is submitted.
        if self.adopted && is_io_uring_fd(self.fd.as_raw_fd()) {
            return match Arc::try_unwrap(self.fd) {
                Ok(fd) => close_owned(fd),
                Err(_) => Ok(()), // an op still holds it: it closes after that op
            };
        }
        crate::native::close_shared(self.fd).await
    }

    /// Reads into `buf` (up to its capacity) from `offset`; returns the byte
    /// count (0 at end of file) and the buffer. The bytes land at the start
    /// of the buffer; a `Vec`'s length grows to cover them and never shrinks
    /// (bytes past the count may be stale).
    ///
    /// The future owns the buffer and a share of the fd, and borrows
    /// nothing: it may outlive this `File`, or be made on one thread and
    /// awaited (or spawned) on a shard. The op is submitted at its first
    /// poll, to the ring of the shard polling it (a registered file's only
    /// on its own shard: elsewhere it fails with `InvalidInput`). While
    /// such a future lives, the fd stays open for it, even past
    /// [`close`](Self::close). `read`, `write_at` and `write` are the same.
    ///
    /// # Errors
    ///
    /// The `pread(2)` error (`ESPIPE` on a pipe, FIFO or socket: use `read`);
    /// `InvalidInput` for a zero-capacity buffer or an
    /// offset beyond `i64::MAX`. An fd opened `O_NONBLOCK` elsewhere gives
    /// `WouldBlock` instead of waiting: open it blocking.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let f = ringlane::native::fs::File::open("/proc/self/stat").await.unwrap();
    ///     let (n, _buf) = f.read_at(Vec::with_capacity(256), 0).await;
    ///     n.unwrap() > 0
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    #[inline(always)]
    pub fn read_at<B: IoBufMut>(
        &self,
        buf: B,
        offset: u64,
    ) -> impl Future<Output = (io::Result<usize>, B)> + Send + use<B> {
        match Self::at(offset, 0) {
            Ok(_) => self.read_inner(buf, offset, 0),
            Err(e) => RwFuture::refused(e, buf),
        }
    }

    /// Reads at the current position (for pipes, FIFOs and other streams).
    ///
    /// Cancellation: if the future is dropped while the read is in flight
    /// and the kernel completes it before the cancel lands, the bytes it
    /// read are dropped with the buffer (a stream has no offset to retry).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let f = ringlane::native::fs::File::open("/proc/self/stat").await.unwrap();
    ///     f.read(vec![0u8; 16]).await.0.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 16);
    /// ```
    pub fn read<B: IoBufMut>(
        &self,
        buf: B,
    ) -> impl Future<Output = (io::Result<usize>, B)> + Send + use<B> {
        self.read_inner(buf, CURRENT_POSITION, 0)
    }

    /// Writes the buffer's initialized bytes at `offset`; returns how many
    /// were written (possibly fewer) and the buffer.
    ///
    /// # Errors
    ///
    /// The `pwrite(2)` error (`ESPIPE` on a pipe, FIFO or socket: use
    /// `write`); `InvalidInput` for a buffer with no initialized bytes
    /// (where std's `write_at` returns `Ok(0)`: a zero-length write cannot
    /// make progress, and a loop on it would spin) or an offset beyond
    /// `i64::MAX`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-write-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let f = ringlane::native::fs::File::create(&p).await.unwrap();
    ///     f.write_at(vec![1u8; 100], 10).await.0.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 100);
    /// assert_eq!(std::fs::metadata(&path).unwrap().len(), 110);
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub fn write_at<B: IoBuf>(
        &self,
        buf: B,
        offset: u64,
    ) -> impl Future<Output = (io::Result<usize>, B)> + Send + use<B> {
        match Self::at(offset, 0) {
            Ok(_) => self.write_inner(buf, offset, 0),
            Err(e) => RwFuture::refused(e, buf),
        }
    }

    /// Writes at the current position (for pipes, FIFOs, appends).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let f = ringlane::native::fs::OpenOptions::new().write(true).open("/dev/null").await.unwrap();
    ///     f.write(b"gone".to_vec()).await.0.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 4);
    /// ```
    pub fn write<B: IoBuf>(
        &self,
        buf: B,
    ) -> impl Future<Output = (io::Result<usize>, B)> + Send + use<B> {
        self.write_inner(buf, CURRENT_POSITION, 0)
    }

    async fn fsync(&self, datasync: bool) -> io::Result<()> {
        let flags = if datasync {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        let op = self.submit(self.keep(), move |fd, _| {
            opcode::Fsync::new(fd).flags(flags).build()
        });
        let (result, _fd) = op.await.map_err(|(e, _)| e)?;
        os_result(result).map(drop)
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-sync-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::fs::File::create(&p).await.unwrap().sync_all().await.is_ok()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn sync_all(&self) -> io::Result<()> {
        self.fsync(false).await
    }

    /// Flushes data (and the metadata needed to read it) (`fdatasync`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-dsync-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::fs::File::create(&p).await.unwrap().sync_data().await.is_ok()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn sync_data(&self) -> io::Result<()> {
        self.fsync(true).await
    }
}

impl From<std::fs::File> for File {
    fn from(f: std::fs::File) -> Self {
        OwnedFd::from(f).into()
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> Self {
        File {
            fd: Arc::new(fd),
            fixed: None,
            seekable: Default::default(),
            adopted: true,
        }
    }
}

/// Whether `fd` is an io_uring instance's (`/proc/self/fd` names it
/// `anon_inode:[io_uring]`). One `readlink`; false if `/proc` is missing.
fn is_io_uring_fd(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|target| target.as_os_str() == "anon_inode:[io_uring]")
}

/// Closes `fd` with `close(2)`, reporting its error.
fn close_owned(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: `into_raw_fd` gave us sole ownership of an open fd, closed
    // here once.
    match unsafe { libc::close(fd.into_raw_fd()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
