//! Readiness-level calls every compat stream shares (`readable`,
//! `try_read`, `peek`, ...), so `TcpStream`, `UnixStream` and the owned
//! halves offer Tokio's names on one implementation.
//!
//! Rule (readiness invariant 2): a `try_*` call takes the direction's tick
//! before its syscall and clears the readiness only on `EAGAIN`, and only
//! if no event came in between.

use std::io;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::readiness::Direction;
use super::stream::{
    self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf, cvt, sealed::Sealed,
};

/// Polls `dir`'s readiness (Tokio's `poll_read_ready`/`poll_write_ready`).
pub(crate) fn poll_ready(
    s: &impl Sealed,
    dir: Direction,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    s.readiness().poll_wait_ready(dir, cx).map_ok(drop)
}

/// Waits for `dir`'s readiness (Tokio's `readable`/`writable`).
pub(crate) async fn ready(s: &impl Sealed, dir: Direction) -> io::Result<()> {
    s.readiness().wait(|cx| poll_ready(s, dir, cx)).await
}

/// One nonblocking `recv`; `EAGAIN` clears the read readiness.
pub(crate) fn try_read(s: &impl Sealed, buf: &mut [u8]) -> io::Result<usize> {
    let tick = s.readiness().tick(Direction::Read);
    // SAFETY: `buf` is valid for writes of its length.
    let r = cvt(unsafe { libc::recv(s.fd(), buf.as_mut_ptr().cast(), buf.len(), 0) });
    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        let _ = s.readiness().clear(Direction::Read, tick);
    }
    r
}

/// One nonblocking `send` (never raising `SIGPIPE`); `EAGAIN` clears the
/// write readiness.
pub(crate) fn try_write(s: &impl Sealed, buf: &[u8]) -> io::Result<usize> {
    let tick = s.readiness().tick(Direction::Write);
    // SAFETY: `buf` is valid for reads of its length.
    let r = cvt(unsafe { libc::send(s.fd(), buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) });
    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        let _ = s.readiness().clear(Direction::Write, tick);
    }
    r
}

/// One nonblocking `readv` into `bufs`; `EAGAIN` clears the read
/// readiness.
pub(crate) fn try_read_vectored(
    s: &impl Sealed,
    bufs: &mut [io::IoSliceMut<'_>],
) -> io::Result<usize> {
    let tick = s.readiness().tick(Direction::Read);
    let count = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` on Unix, and the
    // first `count` of them are live and writable.
    let r = cvt(unsafe { libc::readv(s.fd(), bufs.as_mut_ptr().cast(), count) });
    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        let _ = s.readiness().clear(Direction::Read, tick);
    }
    r
}

/// One nonblocking `sendmsg` of `bufs` (never raising `SIGPIPE`);
/// `EAGAIN` clears the write readiness. No bytes at all is `Ok(0)`, as
/// Tokio's `writev(2)` returns, whatever the stream's state (`sendmsg`
/// would answer a shut-down stream with `EPIPE`).
pub(crate) fn try_write_vectored(s: &impl Sealed, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    if bufs.iter().all(|b| b.is_empty()) {
        return Ok(0);
    }
    let tick = s.readiness().tick(Direction::Write);
    // SAFETY: all-zero bytes are a valid empty `msghdr`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix; the kernel only
    // reads through the pointer.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    // `as _`: `size_t` on glibc, `c_int` on musl.
    msg.msg_iovlen = bufs.len().min(libc::UIO_MAXIOV as usize) as _;
    // SAFETY: the message points at `msg_iovlen` live `IoSlice`s.
    let r = cvt(unsafe { libc::sendmsg(s.fd(), &msg, libc::MSG_NOSIGNAL) });
    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        let _ = s.readiness().clear(Direction::Write, tick);
    }
    r
}

/// Polls for bytes to copy into `buf` without taking them (`MSG_PEEK`).
pub(crate) fn poll_peek(
    s: &impl Sealed,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<usize>> {
    stream::poll_recv_priv(s, cx, buf, libc::MSG_PEEK)
}

/// Waits for bytes and copies them into `buf` without taking them.
pub(crate) async fn peek(s: &impl Sealed, buf: &mut [u8]) -> io::Result<usize> {
    let mut rb = ReadBuf::new(buf);
    s.readiness().wait(|cx| poll_peek(s, cx, &mut rb)).await
}

impl<S: stream::CompatStream> OwnedReadHalf<S> {
    /// Polls for read readiness, as the whole stream's `poll_read_ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let (r, _w) = a.into_split();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     b.try_write(b"!").unwrap();
    ///     std::future::poll_fn(|cx| r.poll_read_ready(cx)).await
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().is_ok());
    /// ```
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_ready(&*self.0, Direction::Read, cx)
    }

    /// Waits for read readiness (Tokio's `OwnedReadHalf::readable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let (r, _w) = a.into_split();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     b.try_write(b"!").unwrap();
    ///     r.readable().await.unwrap();
    ///     let mut buf = [0u8; 4];
    ///     r.try_read(&mut buf).unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        ready(&*self.0, Direction::Read).await
    }

    /// One nonblocking read; `WouldBlock` clears the read readiness.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if nothing is there; other `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let (r, _w) = a.into_split();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     r.try_read(&mut [0u8; 4]).unwrap_err().kind()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_read(&*self.0, buf)
    }
}

impl<S: stream::CompatStream> OwnedWriteHalf<S> {
    /// Polls for write readiness, as the whole stream's `poll_write_ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let (_r, w) = a.into_split();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     std::future::poll_fn(|cx| w.poll_write_ready(cx)).await
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().is_ok());
    /// ```
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_ready(&*self.0, Direction::Write, cx)
    }

    /// Waits for write readiness (Tokio's `OwnedWriteHalf::writable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let (_r, w) = a.into_split();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     w.writable().await.unwrap();
    ///     w.try_write(b"hi").unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 2);
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        ready(&*self.0, Direction::Write).await
    }

    /// One nonblocking write; `WouldBlock` clears the write readiness.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the send buffer is full; other `send(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let (_r, w) = a.into_split();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     w.try_write(b"ok").unwrap();
    ///     b.readable().await.unwrap();
    ///     let mut got = [0u8; 2];
    ///     b.try_read(&mut got).unwrap();
    ///     got
    /// }).unwrap();
    /// assert_eq!(&rt.block_on(j).unwrap(), b"ok");
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        try_write(&*self.0, buf)
    }

    /// Drops the half without shutting down the write side (Tokio's
    /// `forget`): the peer sees end of stream only when the socket closes.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let (_r, w) = a.into_split();
    /// w.forget();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     // No end of stream (a read of 0): nothing was shut down.
    ///     b.try_read(&mut [0u8; 1]).unwrap_err().kind()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn forget(self) {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so its `Arc` is
        // moved out exactly once and dropped here, without the shutdown
        // of `OwnedWriteHalf`'s `Drop`.
        drop(unsafe { std::ptr::read(&this.0) });
    }
}

impl OwnedReadHalf<super::TcpStream> {
    /// Polls for bytes to peek at, as [`TcpStream::poll_peek`](super::TcpStream::poll_peek).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::ReadBuf;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// std::io::Write::write_all(&mut peer, b"pk").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (r, _w) = ringlane::compat::TcpStream::from_std(s).unwrap().into_split();
    ///     let mut storage = [0u8; 8];
    ///     let mut buf = ReadBuf::new(&mut storage);
    ///     std::future::poll_fn(|cx| r.poll_peek(cx, &mut buf)).await.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 2);
    /// ```
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        poll_peek(&*self.0, cx, buf)
    }

    /// Waits for bytes and copies them into `buf` without taking them, as
    /// [`TcpStream::peek`](super::TcpStream::peek).
    ///
    /// # Errors
    ///
    /// `recv(2)` errors, e.g. `ConnectionReset`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// std::io::Write::write_all(&mut peer, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (r, _w) = ringlane::compat::TcpStream::from_std(s).unwrap().into_split();
    ///     let mut buf = [0u8; 4];
    ///     let peeked = r.peek(&mut buf).await.unwrap();
    ///     (peeked, r.try_read(&mut buf).unwrap()) // still there to read
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (1, 1));
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        peek(&*self.0, buf).await
    }
}

impl<S: stream::CompatStream> ReadHalf<'_, S> {
    /// Waits for read readiness (Tokio's `ReadHalf::readable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (mut a, b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (r, _w) = a.split();
    ///     b.try_write(b"!").unwrap();
    ///     r.readable().await.unwrap();
    ///     r.try_read(&mut [0u8; 4]).unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        ready(self.0, Direction::Read).await
    }

    /// One nonblocking read; `WouldBlock` clears the read readiness.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if nothing is there; other `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (mut a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (r, _w) = a.split();
    ///     r.try_read(&mut [0u8; 4]).unwrap_err().kind()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_read(self.0, buf)
    }
}

impl<S: stream::CompatStream> WriteHalf<'_, S> {
    /// Waits for write readiness (Tokio's `WriteHalf::writable`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (mut a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (_r, w) = a.split();
    ///     w.writable().await.unwrap();
    ///     w.try_write(b"hi").unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 2);
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        ready(self.0, Direction::Write).await
    }

    /// One nonblocking write; `WouldBlock` clears the write readiness.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the send buffer is full; other `send(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (mut a, b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (_r, w) = a.split();
    ///     w.try_write(b"ok").unwrap();
    ///     b.readable().await.unwrap();
    ///     b.try_read(&mut [0u8; 4]).unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 2);
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        try_write(self.0, buf)
    }
}

impl ReadHalf<'_, super::TcpStream> {
    /// Waits for bytes and copies them into `buf` without taking them, as
    /// [`TcpStream::peek`](super::TcpStream::peek).
    ///
    /// # Errors
    ///
    /// `recv(2)` errors, e.g. `ConnectionReset`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// std::io::Write::write_all(&mut peer, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut s = ringlane::compat::TcpStream::from_std(s).unwrap();
    ///     let (r, _w) = s.split();
    ///     let mut buf = [0u8; 4];
    ///     let peeked = r.peek(&mut buf).await.unwrap();
    ///     (peeked, r.try_read(&mut buf).unwrap()) // still there to read
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (1, 1));
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        peek(self.0, buf).await
    }
}

/// `peer_addr` and `local_addr` on every half, as Tokio's halves have
/// them.
macro_rules! half_addrs {
    ($half:ty, $addr:ty) => {
        impl $half {
            /// The peer's address (the whole stream's `peer_addr`).
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream's halves; the other halves work alike.
            ///
            /// ```
            /// let (mut a, _b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let (r, w) = a.split();
            /// assert!(r.peer_addr().is_ok() && w.peer_addr().is_ok());
            /// let (r, w) = a.into_split();
            /// assert!(r.peer_addr().is_ok() && w.peer_addr().is_ok());
            /// ```
            pub fn peer_addr(&self) -> io::Result<$addr> {
                self.0.peer_addr()
            }

            /// The local address (the whole stream's `local_addr`).
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream's halves; the other halves work alike.
            ///
            /// ```
            /// let (mut a, _b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let (r, _w) = a.split();
            /// assert!(r.local_addr().unwrap().is_unnamed());
            /// let (r, w) = a.into_split();
            /// assert!(r.local_addr().unwrap().is_unnamed());
            /// assert!(w.local_addr().unwrap().is_unnamed());
            /// ```
            pub fn local_addr(&self) -> io::Result<$addr> {
                self.0.local_addr()
            }
        }
    };
}

half_addrs!(OwnedReadHalf<super::TcpStream>, std::net::SocketAddr);
half_addrs!(OwnedWriteHalf<super::TcpStream>, std::net::SocketAddr);
half_addrs!(
    OwnedReadHalf<super::UnixStream>,
    tokio::net::unix::SocketAddr
);
half_addrs!(
    OwnedWriteHalf<super::UnixStream>,
    tokio::net::unix::SocketAddr
);
half_addrs!(ReadHalf<'_, super::TcpStream>, std::net::SocketAddr);
half_addrs!(WriteHalf<'_, super::TcpStream>, std::net::SocketAddr);
half_addrs!(
    ReadHalf<'_, super::UnixStream>,
    tokio::net::unix::SocketAddr
);
half_addrs!(
    WriteHalf<'_, super::UnixStream>,
    tokio::net::unix::SocketAddr
);

/// The readiness-level calls on a stream type, as Tokio's streams have
/// them: `poll_read_ready`, `poll_write_ready`, `readable`, `writable`,
/// `try_read`, `try_write` and their vectored forms.
macro_rules! stream_readiness {
    ($stream:ty) => {
        impl $stream {
            /// Polls for read readiness (Tokio's `poll_read_ready`).
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     b.try_write(b"!").unwrap();
            ///     std::future::poll_fn(|cx| a.poll_read_ready(cx)).await.unwrap();
            ///     a.try_read(&mut [0u8; 4]).unwrap()
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap(), 1);
            /// ```
            pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                poll_ready(self, Direction::Read, cx)
            }

            /// Polls for write readiness (Tokio's `poll_write_ready`).
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     std::future::poll_fn(|cx| a.poll_write_ready(cx)).await.unwrap();
            ///     a.try_write(b"ready").unwrap()
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap(), 5);
            /// ```
            pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                poll_ready(self, Direction::Write, cx)
            }

            /// Waits for read readiness.
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// use std::io::ErrorKind;
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     let mut buf = [0u8; 8];
            ///     assert_eq!(a.try_read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
            ///     b.try_write(b"!").unwrap();
            ///     a.readable().await.unwrap(); // waits for the byte
            ///     a.try_read(&mut buf).unwrap()
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap(), 1);
            /// ```
            pub async fn readable(&self) -> io::Result<()> {
                ready(self, Direction::Read).await
            }

            /// Waits for write readiness.
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     a.writable().await.unwrap();
            ///     a.try_write(b"w").unwrap()
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap(), 1);
            /// ```
            pub async fn writable(&self) -> io::Result<()> {
                ready(self, Direction::Write).await
            }

            /// One nonblocking read; `WouldBlock` clears the read readiness.
            ///
            /// # Errors
            ///
            /// `WouldBlock` if nothing is there; other `recv(2)` errors.
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     b.try_write(b"x").unwrap();
            ///     let mut buf = [0u8; 8];
            ///     loop {
            ///         a.readable().await.unwrap();
            ///         match a.try_read(&mut buf) {
            ///             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            ///             r => return r.unwrap(),
            ///         }
            ///     }
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap(), 1);
            /// ```
            pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                try_read(self, buf)
            }

            /// One nonblocking write (never raising `SIGPIPE`); `WouldBlock` clears
            /// the write readiness.
            ///
            /// # Errors
            ///
            /// `WouldBlock` if the send buffer is full; other `send(2)` errors,
            /// e.g. `BrokenPipe` once the peer is gone.
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     let sent = a.try_write(b"hello").unwrap();
            ///     drop(b);
            ///     (sent, a.try_write(b"gone").unwrap_err().kind())
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap(), (5, std::io::ErrorKind::BrokenPipe));
            /// ```
            pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                try_write(self, buf)
            }

            /// One nonblocking vectored read (`readv`); `WouldBlock` clears
            /// the read readiness.
            ///
            /// # Errors
            ///
            /// `WouldBlock` if nothing is there; other `readv(2)` errors.
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// use std::io::IoSliceMut;
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// b.try_write(b"headbody").unwrap();
            /// let (mut head, mut body) = ([0u8; 4], [0u8; 8]);
            /// let n = a
            ///     .try_read_vectored(&mut [IoSliceMut::new(&mut head), IoSliceMut::new(&mut body)])
            ///     .unwrap();
            /// assert_eq!((n, &head, &body[..4]), (8, b"head", &b"body"[..]));
            /// ```
            pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                try_read_vectored(self, bufs)
            }

            /// One nonblocking vectored write (`sendmsg`, never raising
            /// `SIGPIPE`); `WouldBlock` clears the write readiness.
            ///
            /// # Errors
            ///
            /// `WouldBlock` if the send buffer is full; other `sendmsg(2)`
            /// errors.
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; a TCP stream works alike.
            ///
            /// ```
            /// use std::io::IoSlice;
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let n = a.try_write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")]).unwrap();
            /// let mut got = [0u8; 4];
            /// assert_eq!((n, b.try_read(&mut got).unwrap(), &got), (4, 4, b"abcd"));
            /// ```
            pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                try_write_vectored(self, bufs)
            }
        }
    };
}

stream_readiness!(super::TcpStream);
stream_readiness!(super::UnixStream);
