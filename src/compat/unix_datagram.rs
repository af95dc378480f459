//! `UnixDatagram` of the compat lane, as `tokio::net::UnixDatagram`:
//! readiness on the shard's ring, then `send`/`recv` and their `_to`/`_from`
//! forms (syslog and journald clients, `sd_notify`, local IPC).

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::task::{Context, Poll};
use tokio::net::unix::SocketAddr;

use tokio::io::ReadBuf;

use super::async_fd::AsyncFd;
use super::readiness::Direction;
use crate::native::net::addr::unix_socket_addr;

/// A Unix datagram socket with Tokio's `UnixDatagram` shape.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let (a, b) = ringlane::compat::UnixDatagram::pair()?;
///     a.send(b"dgram").await?;
///     let mut buf = [0u8; 16];
///     let n = b.recv(&mut buf).await?;
///     Ok::<_, std::io::Error>(buf[..n].to_vec())
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"dgram");
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    pub(super) io: AsyncFd<std::os::unix::net::UnixDatagram>,
}

impl UnixDatagram {
    /// Binds a socket at `path`; a path starting with a NUL byte names an
    /// abstract socket (Linux), as ringlane's `UnixListener` (Tokio's
    /// `UnixDatagram` refuses one; its listener and stream take it).
    ///
    /// # Errors
    ///
    /// `bind(2)` errors, e.g. `AddrInUse`.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-ud-bind-{}.sock", std::process::id()));
    /// let s = ringlane::compat::UnixDatagram::bind(&path).unwrap();
    /// assert_eq!(s.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        let addr = unix_socket_addr(path.as_ref())?;
        Self::from_std(std::os::unix::net::UnixDatagram::bind_addr(&addr)?)
    }

    /// A socket bound to no address: it can send (to a path, or once
    /// connected); no peer can address it, so it receives only as one
    /// half of a [`pair`](Self::pair) or what a connected peer sends back.
    ///
    /// # Errors
    ///
    /// `socket(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// assert!(s.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn unbound() -> io::Result<Self> {
        Self::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A connected pair.
    ///
    /// # Errors
    ///
    /// `socketpair(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed() && b.peer_addr().is_ok());
    /// ```
    pub fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((Self::from_std(a)?, Self::from_std(b)?))
    }

    /// Wraps a std socket, switching it to nonblocking mode.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// let std = std::os::unix::net::UnixDatagram::unbound().unwrap();
    /// assert!(ringlane::compat::UnixDatagram::from_std(std).is_ok());
    /// ```
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            io: AsyncFd::syscall_first(socket),
        })
    }

    /// Gives back the std socket (still in nonblocking mode).
    ///
    /// # Errors
    ///
    /// None: the `Result` is Tokio's signature.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// let std = s.into_std().unwrap();
    /// assert!(std.local_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        Ok(self.io.into_inner())
    }

    /// Connects the socket to `path` (a leading NUL byte: an abstract
    /// name): `send` and `recv` then talk to it.
    ///
    /// # Errors
    ///
    /// `connect(2)` errors, e.g. `NotFound`, `ConnectionRefused`.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-ud-conn-{}.sock", std::process::id()));
    /// let server = ringlane::compat::UnixDatagram::bind(&path).unwrap();
    /// let client = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// client.connect(&path).unwrap();
    /// assert_eq!(client.try_send(b"hi").unwrap(), 2);
    /// assert_eq!(server.try_recv(&mut [0u8; 4]).unwrap(), 2);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let addr = unix_socket_addr(path.as_ref())?;
        self.io.get_ref().connect_addr(&addr)
    }

    /// The socket's own address.
    ///
    /// # Errors
    ///
    /// `getsockname(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr().map(Into::into)
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](Self::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr().map(Into::into)
    }

    /// The pending error on the socket (`SO_ERROR`), cleared.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Shuts down the reading, writing or both halves.
    ///
    /// # Errors
    ///
    /// `shutdown(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(a.try_send(b"x").unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Polls for read readiness (Tokio's `poll_recv_ready`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"r").unwrap();
    /// rt.block_on(std::future::poll_fn(|cx| b.poll_recv_ready(cx))).unwrap();
    /// ```
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io
            .readiness()
            .poll_wait_ready(Direction::Read, cx)
            .map_ok(drop)
    }

    /// Polls for write readiness (Tokio's `poll_send_ready`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// rt.block_on(std::future::poll_fn(|cx| a.poll_send_ready(cx))).unwrap();
    /// ```
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io
            .readiness()
            .poll_wait_ready(Direction::Write, cx)
            .map_ok(drop)
    }

    /// Waits for read readiness.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"r").unwrap();
    /// rt.block_on(b.readable()).unwrap();
    /// assert_eq!(b.try_recv(&mut [0u8; 4]).unwrap(), 1);
    /// ```
    pub async fn readable(&self) -> io::Result<()> {
        let readiness = self.io.readiness();
        readiness.wait(|cx| self.poll_recv_ready(cx)).await
    }

    /// Waits for write readiness.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// rt.block_on(a.writable()).unwrap();
    /// ```
    pub async fn writable(&self) -> io::Result<()> {
        let readiness = self.io.readiness();
        readiness.wait(|cx| self.poll_send_ready(cx)).await
    }

    /// Polls to send one datagram to the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// let n = rt.block_on(std::future::poll_fn(|cx| a.poll_send(cx, b"ps"))).unwrap();
    /// assert_eq!(n, 2);
    /// ```
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let s = self.io.get_ref();
        self.io
            .readiness()
            .poll_io(Direction::Write, cx, || s.send(buf))
    }

    /// Polls to send one datagram to the socket at `target`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-ud-pst-{}.sock", std::process::id()));
    /// let server = ringlane::compat::UnixDatagram::bind(&path).unwrap();
    /// let client = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// let n = rt.block_on(std::future::poll_fn(|cx| client.poll_send_to(cx, b"to", &path))).unwrap();
    /// assert_eq!((n, server.try_recv(&mut [0u8; 4]).unwrap()), (2, 2));
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: impl AsRef<Path>,
    ) -> Poll<io::Result<usize>> {
        let s = self.io.get_ref();
        let target = unix_socket_addr(target.as_ref())?;
        self.io
            .readiness()
            .poll_io(Direction::Write, cx, || s.send_to_addr(buf, &target))
    }

    /// Polls to receive one datagram into `buf`'s unfilled part (truncated
    /// to it).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::ReadBuf;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"pr").unwrap();
    /// let mut storage = [0u8; 8];
    /// let mut buf = ReadBuf::new(&mut storage);
    /// rt.block_on(std::future::poll_fn(|cx| b.poll_recv(cx, &mut buf))).unwrap();
    /// assert_eq!(buf.filled(), b"pr");
    /// ```
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv_from(cx, buf).map_ok(drop)
    }

    /// Polls to receive one datagram into `buf`'s unfilled part (truncated
    /// to it); gives the sender's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::ReadBuf;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"prf").unwrap();
    /// let mut storage = [0u8; 8];
    /// let mut buf = ReadBuf::new(&mut storage);
    /// let from = rt.block_on(std::future::poll_fn(|cx| b.poll_recv_from(cx, &mut buf))).unwrap();
    /// assert!(from.is_unnamed() && buf.filled() == b"prf");
    /// ```
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        let s = self.io.get_ref();
        let (n, from) =
            std::task::ready!(self.io.readiness().poll_io(Direction::Read, cx, || {
                s.recv_from(buf.initialize_unfilled())
            }))?;
        buf.advance(n);
        Poll::Ready(Ok(from.into()))
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// `send(2)` errors, e.g. `NotConnected`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// assert_eq!(rt.block_on(a.send(b"one")).unwrap(), 3);
    /// assert_eq!(b.try_recv(&mut [0u8; 8]).unwrap(), 3);
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let readiness = self.io.readiness();
        readiness.wait(|cx| self.poll_send(cx, buf)).await
    }

    /// Sends one datagram to the socket at `target`.
    ///
    /// # Errors
    ///
    /// `sendto(2)` errors, e.g. `NotFound`, `ConnectionRefused` (nobody
    /// bound there).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-ud-st-{}.sock", std::process::id()));
    /// let server = ringlane::compat::UnixDatagram::bind(&path).unwrap();
    /// let client = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// assert_eq!(rt.block_on(client.send_to(b"to", &path)).unwrap(), 2);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn send_to(&self, buf: &[u8], target: impl AsRef<Path>) -> io::Result<usize> {
        let target = target.as_ref();
        let readiness = self.io.readiness();
        readiness
            .wait(|cx| self.poll_send_to(cx, buf, target))
            .await
    }

    /// Receives one datagram (truncated to `buf`); returns its length.
    ///
    /// # Errors
    ///
    /// `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"r").unwrap();
    /// assert_eq!(rt.block_on(b.recv(&mut [0u8; 8])).unwrap(), 1);
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        let readiness = self.io.readiness();
        readiness.wait(|cx| self.poll_recv(cx, &mut rb)).await?;
        Ok(rb.filled().len())
    }

    /// Receives one datagram (truncated to `buf`); returns its length and
    /// the sender's address.
    ///
    /// # Errors
    ///
    /// `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"rf").unwrap();
    /// let (n, from) = rt.block_on(b.recv_from(&mut [0u8; 8])).unwrap();
    /// assert!(n == 2 && from.is_unnamed());
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut rb = ReadBuf::new(buf);
        let readiness = self.io.readiness();
        let from = readiness
            .wait(|cx| self.poll_recv_from(cx, &mut rb))
            .await?;
        Ok((rb.filled().len(), from))
    }

    /// One nonblocking send to the connected peer.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the socket cannot take it now; other `send(2)`
    /// errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// assert_eq!(a.try_send(b"ts").unwrap(), 2);
    /// ```
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .readiness()
            .try_io(Direction::Write, || self.io.get_ref().send(buf))
    }

    /// One nonblocking send to the socket at `target`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the socket cannot take it now; other `sendto(2)`
    /// errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UnixDatagram::unbound().unwrap();
    /// let missing = std::env::temp_dir().join("ringlane-doc-ud-nobody-here.sock");
    /// assert!(s.try_send_to(b"x", &missing).is_err());
    /// ```
    pub fn try_send_to(&self, buf: &[u8], target: impl AsRef<Path>) -> io::Result<usize> {
        let target = unix_socket_addr(target.as_ref())?;
        self.io.readiness().try_io(Direction::Write, || {
            self.io.get_ref().send_to_addr(buf, &target)
        })
    }

    /// One nonblocking receive (truncated to `buf`).
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// let e = b.try_recv(&mut [0u8; 4]).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .readiness()
            .try_io(Direction::Read, || self.io.get_ref().recv(buf))
    }

    /// One nonblocking receive (truncated to `buf`), with the sender.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"trf").unwrap();
    /// let (n, from) = b.try_recv_from(&mut [0u8; 8]).unwrap();
    /// assert!(n == 3 && from.is_unnamed());
    /// ```
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .readiness()
            .try_io(Direction::Read, || self.io.get_ref().recv_from(buf))
            .map(|(n, from)| (n, from.into()))
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.get_ref().as_fd()
    }
}

impl TryFrom<std::os::unix::net::UnixDatagram> for UnixDatagram {
    type Error = io::Error;

    fn try_from(socket: std::os::unix::net::UnixDatagram) -> io::Result<Self> {
        Self::from_std(socket)
    }
}
