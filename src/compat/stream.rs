//! What every compat stream shares: nonblocking `recv`/`send`/`sendmsg`
//! after readiness, the `AsyncRead`/`AsyncWrite` glue, and split halves.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::readiness::{Direction, Readiness};

pub(crate) mod sealed {
    /// The insides a compat stream exposes to the shared glue.
    pub trait Sealed {
        /// The stream's readiness engine.
        fn readiness(&self) -> &super::Readiness;
        /// The socket fd.
        fn fd(&self) -> super::RawFd;
    }
}

/// A compat stream type ([`TcpStream`](super::TcpStream),
/// [`UnixStream`](super::UnixStream)); sealed.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use ringlane::compat::{CompatStream, OwnedReadHalf, UnixStream};
/// async fn read4<S: CompatStream>(mut r: OwnedReadHalf<S>) -> std::io::Result<[u8; 4]> {
///     let mut got = [0u8; 4];
///     r.read_exact(&mut got).await?;
///     Ok(got)
/// }
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     b.write_all(b"half").await?;
///     let (r, _w) = a.into_split();
///     read4(r).await
/// }).unwrap();
/// assert_eq!(&rt.block_on(j).unwrap().unwrap(), b"half");
/// ```
pub trait CompatStream: sealed::Sealed + Send + Sync + 'static {}

/// A byte count, or the OS error a negative result stands for.
pub(crate) fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `recv` into the unfilled part of `buf` once readable.
pub(crate) fn poll_read_priv(
    s: &impl sealed::Sealed,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    poll_recv_priv(s, cx, buf, 0).map_ok(drop)
}

/// `recv` with `flags` (0, or `MSG_PEEK` to leave the bytes queued) into
/// the unfilled part of `buf` once readable; returns how many bytes it
/// filled.
pub(crate) fn poll_recv_priv(
    s: &impl sealed::Sealed,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    flags: i32,
) -> Poll<io::Result<usize>> {
    if buf.remaining() == 0 {
        // Nothing to fill, but a loop of such reads still yields now and
        // then (coop invariant 2).
        return crate::executor::coop::budgeted(cx, |_| Poll::Ready(Ok(0)));
    }
    let fd = s.fd();
    let n = std::task::ready!(s.readiness().poll_io(Direction::Read, cx, || {
        // SAFETY: we only hand the unfilled part to `recv`, which writes
        // (never reads) it, so no uninitialized byte is read or de-initialized.
        let unfilled = unsafe { buf.unfilled_mut() };
        // SAFETY: the pointer is valid for writes of `unfilled.len()` bytes.
        cvt(unsafe { libc::recv(fd, unfilled.as_mut_ptr().cast(), unfilled.len(), flags) })
    }))?;
    // SAFETY: the kernel initialized `n` bytes of the unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Poll::Ready(Ok(n))
}

/// `send` (never raising `SIGPIPE`) once writable.
pub(crate) fn poll_write_priv(
    s: &impl sealed::Sealed,
    cx: &mut Context<'_>,
    data: &[u8],
) -> Poll<io::Result<usize>> {
    // An empty write goes to the kernel too, as Tokio's does: on a stream
    // shut down or reset it reports the error, not `Ok(0)`.
    let fd = s.fd();
    s.readiness().poll_io(Direction::Write, cx, || {
        // SAFETY: `data` is valid for reads of its length.
        cvt(unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) })
    })
}

/// `sendmsg` of several buffers (never raising `SIGPIPE`) once writable.
pub(crate) fn poll_write_vectored_priv(
    s: &impl sealed::Sealed,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    if bufs.iter().all(|b| b.is_empty()) {
        // No bytes: 0 whatever the stream's state, as Tokio's vectored
        // write (`writev(2)`, which returns before it reaches the socket)
        // reports; `sendmsg` would answer a shut-down stream with `EPIPE`.
        // It still spends the budget (coop invariant 2).
        return crate::executor::coop::budgeted(cx, |_| Poll::Ready(Ok(0)));
    }
    let fd = s.fd();
    // Skip leading empty slices, so a write never reports 0 while data waits.
    let bufs = &bufs[bufs.iter().take_while(|b| b.is_empty()).count()..];
    let count = bufs.len().min(libc::UIO_MAXIOV as usize);
    s.readiness().poll_io(Direction::Write, cx, || {
        // SAFETY: all-zero bytes are a valid empty `msghdr`.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // `IoSlice` is guaranteed ABI-compatible with `iovec` on Unix.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = count as _; // `size_t` on glibc, `c_int` on musl
        // SAFETY: the message points at `count` live `IoSlice`s.
        cvt(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })
    })
}

/// Shuts down the write side (the `poll_shutdown` of `AsyncWrite`).
pub(crate) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown only reads its arguments.
    match unsafe { libc::shutdown(fd, libc::SHUT_WR) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Implements Tokio's I/O traits for a compat stream type.
macro_rules! compat_stream_io {
    ($ty:ty) => {
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                $crate::compat::stream::poll_read_priv(&*self, cx, buf)
            }
        }

        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                data: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::compat::stream::poll_write_priv(&*self, cx, data)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::compat::stream::poll_write_vectored_priv(&*self, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                use $crate::compat::stream::sealed::Sealed;
                std::task::Poll::Ready($crate::compat::stream::shutdown_write(self.fd()))
            }
        }
    };
}
pub(crate) use compat_stream_io;

/// Implements the `futures::io` traits for a compat stream type (feature
/// `futures-io`), on the same syscalls.
#[cfg(feature = "futures-io")]
macro_rules! compat_stream_futures_io {
    ($ty:ty) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let mut rb = tokio::io::ReadBuf::new(buf);
                std::task::ready!($crate::compat::stream::poll_read_priv(&*self, cx, &mut rb))?;
                std::task::Poll::Ready(Ok(rb.filled().len()))
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                data: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::compat::stream::poll_write_priv(&*self, cx, data)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::compat::stream::poll_write_vectored_priv(&*self, cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                use $crate::compat::stream::sealed::Sealed;
                std::task::Poll::Ready($crate::compat::stream::shutdown_write(self.fd()))
            }
        }
    };
}
#[cfg(feature = "futures-io")]
pub(crate) use compat_stream_futures_io;

/// The read half of a stream borrowed by `split`.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use ringlane::compat::{ReadHalf, UnixStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     b.write_all(b"read").await?;
///     let (mut r, _w): (ReadHalf<'_, UnixStream>, _) = a.split();
///     let mut got = [0u8; 4];
///     r.read_exact(&mut got).await?;
///     Ok::<_, std::io::Error>(got)
/// }).unwrap();
/// assert_eq!(&rt.block_on(j).unwrap().unwrap(), b"read");
/// ```
#[derive(Debug)]
pub struct ReadHalf<'a, S>(pub(crate) &'a S);

/// The write half of a stream borrowed by `split`.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use ringlane::compat::{UnixStream, WriteHalf};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let (_r, mut w): (_, WriteHalf<'_, UnixStream>) = a.split();
///     w.write_all(b"sent").await?;
///     w.shutdown().await?; // the peer reads end of stream after the data
///     let mut got = Vec::new();
///     b.read_to_end(&mut got).await?;
///     Ok::<_, std::io::Error>(got)
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"sent");
/// ```
#[derive(Debug)]
pub struct WriteHalf<'a, S>(pub(crate) &'a S);

/// The read half of a stream taken by `into_split`; usable from another
/// task than its write half.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use ringlane::compat::{OwnedReadHalf, UnixStream};
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let (mut r, _w): (OwnedReadHalf<UnixStream>, _) = a.into_split();
/// let reader = rt.handle().spawn_pinned(1, async move {
///     let mut got = [0u8; 5];
///     r.read_exact(&mut got).await.map(|_| got)
/// }).unwrap();
/// let writer = rt.handle().spawn_pinned(0, async move { b.write_all(b"owned").await }).unwrap();
/// rt.block_on(writer).unwrap().unwrap();
/// assert_eq!(&rt.block_on(reader).unwrap().unwrap(), b"owned");
/// ```
#[derive(Debug)]
pub struct OwnedReadHalf<S>(pub(crate) Arc<S>);

/// The write half of a stream taken by `into_split`. Dropping it shuts
/// down the write side (the peer reads end of stream), as Tokio's does.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use ringlane::compat::{OwnedWriteHalf, UnixStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let (_r, mut w): (_, OwnedWriteHalf<UnixStream>) = a.into_split();
///     w.write_all(b"bye").await?;
///     drop(w); // `_r` keeps the socket open, yet `b` now sees end of stream
///     let mut got = Vec::new();
///     b.read_to_end(&mut got).await?;
///     Ok::<_, std::io::Error>(got)
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"bye");
/// ```
#[derive(Debug)]
pub struct OwnedWriteHalf<S: CompatStream>(pub(crate) Arc<S>);

impl<S: CompatStream> Drop for OwnedWriteHalf<S> {
    fn drop(&mut self) {
        let _ = shutdown_write(sealed::Sealed::fd(&*self.0));
    }
}

/// The whole stream behind a half, as Tokio's halves lend their
/// `TcpStream` (`half.as_ref().set_nodelay(true)`, the addresses).
///
/// # Examples
///
/// ```
/// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
/// let (read, write) = ringlane::compat::TcpStream::from_std(s).unwrap().into_split();
/// write.as_ref().set_nodelay(true).unwrap();
/// assert!(read.as_ref().nodelay().unwrap());
/// assert_eq!(read.as_ref().peer_addr().unwrap(), l.local_addr().unwrap());
/// ```
impl<S: CompatStream> AsRef<S> for OwnedReadHalf<S> {
    fn as_ref(&self) -> &S {
        &self.0
    }
}

/// The whole stream behind a half (see `OwnedReadHalf`'s).
///
/// # Examples
///
/// ```
/// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
/// let (_read, write) = a.into_split();
/// assert!(write.as_ref().peer_addr().is_ok());
/// ```
impl<S: CompatStream> AsRef<S> for OwnedWriteHalf<S> {
    fn as_ref(&self) -> &S {
        &self.0
    }
}

/// The whole stream behind a borrowed half.
///
/// # Examples
///
/// ```
/// let (mut a, _b) = ringlane::compat::UnixStream::pair().unwrap();
/// let (read, _write) = a.split();
/// assert!(read.as_ref().local_addr().is_ok());
/// ```
impl<S: CompatStream> AsRef<S> for ReadHalf<'_, S> {
    fn as_ref(&self) -> &S {
        self.0
    }
}

/// The whole stream behind a borrowed half.
///
/// # Examples
///
/// ```
/// let (mut a, _b) = ringlane::compat::UnixStream::pair().unwrap();
/// let (_read, write) = a.split();
/// assert!(write.as_ref().peer_addr().is_ok());
/// ```
impl<S: CompatStream> AsRef<S> for WriteHalf<'_, S> {
    fn as_ref(&self) -> &S {
        self.0
    }
}

impl<S: CompatStream> AsyncRead for ReadHalf<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_priv(self.0, cx, buf)
    }
}

impl<S: CompatStream> AsyncRead for OwnedReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_priv(&*self.0, cx, buf)
    }
}

impl<S: CompatStream> AsyncWrite for WriteHalf<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_priv(self.0, cx, data)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored_priv(self.0, cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown_write(sealed::Sealed::fd(self.0)))
    }
}

impl<S: CompatStream> AsyncWrite for OwnedWriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_priv(&*self.0, cx, data)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored_priv(&*self.0, cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown_write(sealed::Sealed::fd(&*self.0)))
    }
}
