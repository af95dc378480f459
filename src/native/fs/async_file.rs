//! `AsyncFile`: a [`File`] with Tokio's `AsyncRead`, `AsyncWrite` and
//! `AsyncSeek`, for code written against `tokio::fs::File` (`BufReader`,
//! `tokio::io::copy`, codecs).
//!
//! Invariants:
//! 1. At most one op is in flight, and it owns the file's one buffer: the
//!    state is `Idle(buffer)` or `Busy(op)`, and a `Busy` op hands the
//!    buffer back with its outcome.
//! 2. Reads and writes go at the file's own position (`-1` offsets: the
//!    kernel moves it), so appends, FIFOs and a shared position behave as
//!    with `std`. Bytes read but not yet handed out sit in the buffer, past
//!    the logical position: a write or a relative seek first moves the
//!    kernel's position back by that many, and drops them.
//! 3. A write is *behind*: `poll_write` copies the bytes, spawns the write
//!    as a task of the current shard and answers at once (as Tokio's, whose
//!    write runs in its blocking pool). The task moves on by itself (a
//!    short write's rest too) whether or not the file is polled, and
//!    outlives a drop of the file; its error comes with the next write,
//!    flush or [`into_file`](AsyncFile::into_file), as Tokio's does.
//! 4. Ops are polled with no `native::timeout` deadline: a caller's
//!    deadline ends its wait, not the op, which the next call takes up (as
//!    Tokio's blocking op runs on after a timed-out wait).

use std::future::Future;
use std::io::{self, SeekFrom};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use io_uring::opcode;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use super::File;
use super::file::CURRENT_POSITION;

mod exclusive;
mod file_calls;

/// Tokio's default cap on one op's bytes (`tokio::fs::File`'s 2 MiB).
const DEFAULT_MAX_BUF_SIZE: usize = 2 * 1024 * 1024;

/// What the op in flight did.
enum Outcome {
    Read(io::Result<usize>),
    Write(io::Result<()>),
    Seek(io::Result<u64>),
}

type OpFuture = Pin<Box<dyn Future<Output = (Outcome, Buf)> + Send>>;

use exclusive::Exclusive;

/// The file's buffer: read bytes not yet handed out are `data[pos..]`.
#[derive(Default)]
struct Buf {
    data: Vec<u8>,
    pos: usize,
}

impl Buf {
    fn unread(&self) -> usize {
        self.data.len() - self.pos
    }

    fn copy_to(&mut self, dst: &mut ReadBuf<'_>) {
        let n = self.unread().min(dst.remaining());
        dst.put_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
    }

    fn clear(&mut self) {
        self.data.clear();
        self.pos = 0;
    }
}

enum State {
    Idle(Buf),
    /// An op in flight.
    Busy(Exclusive),
}

/// A [`File`] that implements `tokio::io::AsyncRead`, `AsyncWrite` and
/// `AsyncSeek` through one internal buffer, as `tokio::fs::File` does, each
/// op an io_uring op on the current shard instead of a blocking-pool call.
///
/// Behaves as Tokio's: a read asks for at most what the caller's buffer
/// holds (up to [`set_max_buf_size`](Self::set_max_buf_size), 2 MiB by
/// default); a write copies up to that much, starts the write as a task of
/// the shard and returns (its error comes with the next write or
/// `flush` (`AsyncWriteExt::flush`), which waits for it); the
/// write runs on if the file is dropped (a shutdown's cancel ends it, as
/// it ends every task); a seek or write after a read gives back the bytes
/// read ahead. A seek is an `lseek(2)` on the calling thread (io_uring has
/// no seek; it does not wait on a disk).
///
/// Its ops run on a ringlane shard: used in a task elsewhere, the first op
/// fails with an error that says so, as does a write while the runtime
/// shuts down (Tokio's fails when its blocking pool is gone).
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = std::env::temp_dir().join(format!("ringlane-doc-async-file-{}", std::process::id()));
/// let q = p.clone();
/// let lines = rt.block_on(rt.handle().spawn_pinned(0, async move {
///     let mut f = ringlane::native::fs::File::create(&q).await?.into_async();
///     f.write_all(b"one\ntwo\n").await?;
///     f.flush().await?;
///     let f = ringlane::native::fs::File::open(&q).await?.into_async();
///     let mut lines = BufReader::new(f).lines();
///     let mut got = Vec::new();
///     while let Some(line) = lines.next_line().await? {
///         got.push(line);
///     }
///     Ok::<_, std::io::Error>(got)
/// }).unwrap()).unwrap().unwrap();
/// assert_eq!(lines, ["one", "two"]);
/// std::fs::remove_file(p).unwrap();
/// ```
pub struct AsyncFile {
    file: File,
    /// Invariant 1. `None` only while a poll moves it.
    state: Option<State>,
    /// A write-behind's error, for the next write or flush (invariant 3).
    last_write_err: Option<io::Error>,
    max_buf_size: usize,
    /// Where the last seek left the file (what an idle `poll_complete`
    /// answers, as Tokio's).
    pos: u64,
}

impl File {
    /// This file as an [`AsyncFile`] (Tokio's I/O traits), starting at the
    /// file's current position.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncReadExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let text = rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     let mut f = ringlane::native::fs::File::open("/proc/self/cmdline").await?.into_async();
    ///     let mut s = Vec::new();
    ///     f.read_to_end(&mut s).await?;
    ///     Ok::<_, std::io::Error>(s)
    /// }).unwrap()).unwrap().unwrap();
    /// assert!(!text.is_empty());
    /// ```
    pub fn into_async(self) -> AsyncFile {
        AsyncFile {
            file: self,
            state: Some(State::Idle(Buf::default())),
            last_write_err: None,
            max_buf_size: DEFAULT_MAX_BUF_SIZE,
            pos: 0,
        }
    }
}

impl From<File> for AsyncFile {
    fn from(file: File) -> Self {
        file.into_async()
    }
}

impl std::fmt::Debug for AsyncFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncFile")
            .field("file", &self.file)
            .field("busy", &matches!(self.state, Some(State::Busy(_))))
            .finish()
    }
}

impl AsyncFile {
    /// Sets the most bytes one read or write op moves (Tokio's
    /// `set_max_buf_size`; 2 MiB by default). Zero counts as one.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     let mut f = ringlane::native::fs::File::open("/proc/self/stat").await.unwrap().into_async();
    ///     f.set_max_buf_size(64 * 1024);
    /// }).unwrap()).unwrap();
    /// ```
    pub fn set_max_buf_size(&mut self, max_buf_size: usize) {
        self.max_buf_size = max_buf_size.max(1);
    }

    /// Waits for the op in flight, if any, and gives back the [`File`], its
    /// position moved back over bytes read ahead; an error a write-behind
    /// met is returned instead (the file is closed).
    ///
    /// # Errors
    ///
    /// The error of a write that had not been reported yet, or of the
    /// `lseek(2)` that moves the position back.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-into-file-{}", std::process::id()));
    /// let q = p.clone();
    /// rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let mut f = ringlane::native::fs::File::create(&q).await?.into_async();
    ///     f.write_all(b"behind").await?;
    ///     f.into_file().await?.sync_all().await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(std::fs::read(&p).unwrap(), b"behind");
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn into_file(mut self) -> io::Result<File> {
        std::future::poll_fn(|cx| Pin::new(&mut self).poll_flush(cx)).await?;
        let buf = self.take_idle();
        self.rewound(buf).map_err(|(e, _)| e)?;
        Ok(self.file.clone())
    }

    /// Polls the op in flight, if any (`Ready(None)`: none); the state is
    /// idle once this is ready.
    fn poll_busy(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outcome>> {
        let Some(State::Busy(op)) = self.state.as_mut() else {
            return Poll::Ready(None);
        };
        // Invariant 4.
        let (outcome, buf) = ready!(crate::op::without_deadline(|| op
            .get_mut()
            .as_mut()
            .poll(cx)));
        self.state = Some(State::Idle(buf));
        if let Outcome::Seek(Ok(at)) = outcome {
            self.pos = at;
        }
        Poll::Ready(Some(outcome))
    }

    /// Keeps a write's error for the next write or flush; other outcomes
    /// are given back.
    fn keep_write_error(&mut self, outcome: Outcome) -> Option<Outcome> {
        match outcome {
            Outcome::Write(Err(e)) => {
                self.last_write_err = Some(e);
                None
            }
            other => Some(other),
        }
    }

    fn idle(&mut self) -> &mut Buf {
        match self.state.as_mut() {
            Some(State::Idle(buf)) => buf,
            _ => unreachable!("looked at after poll_busy"),
        }
    }

    fn take_idle(&mut self) -> Buf {
        match self.state.take() {
            Some(State::Idle(buf)) => buf,
            _ => unreachable!("taken after poll_busy"),
        }
    }

    /// The buffer emptied, the kernel's position moved back over the bytes
    /// read ahead first (invariant 2); on failure, the buffer as it was.
    fn rewound(&self, mut buf: Buf) -> Result<Buf, (io::Error, Buf)> {
        if buf.unread() > 0 {
            if let Err(e) = seek(&self.file, SeekFrom::Current(-(buf.unread() as i64))) {
                return Err((e, buf));
            }
        }
        buf.clear();
        Ok(buf)
    }
}

/// `lseek(2)` on the file's fd.
fn seek(file: &File, to: SeekFrom) -> io::Result<u64> {
    let (offset, whence) = match to {
        SeekFrom::Start(n) => (
            i64::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            libc::SEEK_SET,
        ),
        SeekFrom::Current(n) => (n, libc::SEEK_CUR),
        SeekFrom::End(n) => (n, libc::SEEK_END),
    };
    // SAFETY: lseek takes no pointers; the fd is open while `file` lives.
    let r = unsafe { libc::lseek(file.fd.as_raw_fd(), offset, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u64)
    }
}

/// One read of at most `len` bytes at the file's position into `buf`.
async fn read_op(file: File, mut buf: Buf, len: usize) -> (Outcome, Buf) {
    buf.clear();
    buf.data.reserve(len);
    let (n, data) = file
        .rw_op(
            buf.data,
            // Its owner's read: tried inline on a regular file.
            (CURRENT_POSITION, len, true, true),
            None,
            |fd, data: &mut Vec<u8>, len| {
                opcode::Read::new(fd, data.as_mut_ptr(), len)
                    .offset(CURRENT_POSITION)
                    .build()
            },
        )
        .await;
    buf.data = data;
    if let Ok(n) = n {
        // SAFETY: the kernel initialized the first `n` bytes (n <= len <=
        // capacity).
        unsafe { buf.data.set_len(n) };
    }
    (Outcome::Read(n), buf)
}

/// Writes all of `buf.data` at the file's position; the buffer comes back
/// empty whatever happened (bytes not written are dropped, as Tokio's).
async fn write_op(file: File, mut buf: Buf) -> (Outcome, Buf) {
    let (result, data) = file.write_all_from(buf.data, None).await;
    buf.data = data;
    buf.clear();
    (Outcome::Write(result), buf)
}

/// The write as a task of this shard (invariant 3): the op future waits
/// for it. Refused (off a shard, or while the runtime shuts down) with an
/// error, as Tokio's refuses a write it cannot hand to its blocking pool.
fn spawn_write(file: File, buf: Buf) -> io::Result<OpFuture> {
    let task = crate::spawn_local(write_op(file, buf)).map_err(io::Error::from)?;
    Ok(Box::pin(async move {
        task.await.unwrap_or_else(|e| {
            let e = io::Error::other(format!("the write-behind task ended: {e}"));
            (Outcome::Write(Err(e)), Buf::default())
        })
    }))
}

impl AsyncRead for AsyncFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            let outcome = ready!(me.poll_busy(cx)).and_then(|o| me.keep_write_error(o));
            match outcome {
                Some(Outcome::Read(Ok(_))) => {
                    me.idle().copy_to(dst); // nothing at the end of the file
                    return Poll::Ready(Ok(()));
                }
                Some(Outcome::Read(Err(e))) => return Poll::Ready(Err(e)),
                Some(_) => continue,
                None => {}
            }
            let buf = me.idle();
            if buf.unread() > 0 || dst.remaining() == 0 {
                buf.copy_to(dst);
                return Poll::Ready(Ok(()));
            }
            let len = dst.remaining().min(me.max_buf_size);
            let buf = me.take_idle();
            let op = Box::pin(read_op(me.file.clone(), buf, len));
            me.state = Some(State::Busy(Exclusive::new(op))); // polled next round
        }
    }
}

impl AsyncWrite for AsyncFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if let Some(e) = me.last_write_err.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            match ready!(me.poll_busy(cx)) {
                Some(Outcome::Write(Err(e))) => return Poll::Ready(Err(e)),
                Some(_) => continue,
                None => {}
            }
            if src.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let buf = me.take_idle();
            let mut buf = match me.rewound(buf) {
                Ok(buf) => buf,
                Err((e, mut buf)) => {
                    // The bytes read ahead cannot be given back (a FIFO):
                    // dropped, as Tokio's drops them, and reported once.
                    buf.clear();
                    me.state = Some(State::Idle(buf));
                    return Poll::Ready(Err(e));
                }
            };
            let n = src.len().min(me.max_buf_size);
            buf.data.extend_from_slice(&src[..n]);
            return match spawn_write(me.file.clone(), buf) {
                Ok(op) => {
                    me.state = Some(State::Busy(Exclusive::new(op)));
                    Poll::Ready(Ok(n))
                }
                Err(e) => {
                    me.state = Some(State::Idle(Buf::default()));
                    Poll::Ready(Err(e))
                }
            };
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if let Some(e) = me.last_write_err.take() {
            return Poll::Ready(Err(e));
        }
        match ready!(me.poll_busy(cx)) {
            Some(Outcome::Write(result)) => Poll::Ready(result),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl AsyncSeek for AsyncFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let me = self.get_mut();
        if let Some(State::Busy(_)) = me.state {
            return Err(io::Error::other(
                "other file operation is pending, call poll_complete before start_seek",
            ));
        }
        let mut buf = me.take_idle();
        // Relative to the logical position, behind the bytes read ahead.
        let position = match position {
            SeekFrom::Current(n) => match n.checked_sub(buf.unread() as i64) {
                Some(n) => SeekFrom::Current(n),
                None => {
                    me.state = Some(State::Idle(buf));
                    return Err(io::ErrorKind::InvalidInput.into());
                }
            },
            other => other,
        };
        let result = seek(&me.file, position);
        if result.is_ok() {
            buf.clear();
        }
        let done: OpFuture = Box::pin(std::future::ready((Outcome::Seek(result), buf)));
        me.state = Some(State::Busy(Exclusive::new(done)));
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let me = self.get_mut();
        loop {
            let outcome = ready!(me.poll_busy(cx)).and_then(|o| me.keep_write_error(o));
            match outcome {
                Some(Outcome::Seek(result)) => return Poll::Ready(result),
                Some(_) => continue,
                None => return Poll::Ready(Ok(me.pos)),
            }
        }
    }
}
