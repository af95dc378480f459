//! `TcpStream` and `TcpListener` of the compat lane.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::async_fd::AsyncFd;
use super::readiness::{Direction, Readiness};
use super::ready_io;
use super::stream::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::native::net::addr::RawAddr;

/// A TCP connection implementing `tokio::io::AsyncRead`/`AsyncWrite`,
/// driven by readiness on the shard's ring: unmodified Tokio-ecosystem code
/// (codecs, `copy`, hyper through `TokioIo`) runs on it.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use ringlane::compat::{TcpListener, TcpStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let client = ringlane::spawn_local(async move {
///         let mut s = TcpStream::connect(addr).await?;
///         s.write_all(b"ping").await?;
///         let mut back = [0u8; 4];
///         s.read_exact(&mut back).await?;
///         Ok::<_, std::io::Error>(back)
///     })?;
///     let (mut conn, _) = listener.accept().await?;
///     let mut buf = [0u8; 4];
///     conn.read_exact(&mut buf).await?;
///     conn.write_all(&buf).await?;
///     client.await.unwrap()
/// }).unwrap();
/// assert_eq!(&rt.block_on(j).unwrap().unwrap(), b"ping");
/// ```
#[derive(Debug)]
pub struct TcpStream {
    pub(super) io: AsyncFd<std::net::TcpStream>,
}

impl stream::sealed::Sealed for TcpStream {
    fn readiness(&self) -> &Readiness {
        self.io.readiness()
    }
    fn fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl stream::CompatStream for TcpStream {}
stream::compat_stream_io!(TcpStream);
#[cfg(feature = "futures-io")]
stream::compat_stream_futures_io!(TcpStream);

impl TcpStream {
    /// Connects to `addr` (with the native lane's `IORING_OP_CONNECT`, then
    /// switched to nonblocking mode). Off the shards, where the runtime is
    /// current (`Runtime::block_on`, a blocking-pool closure), the connect
    /// runs on the next shard in turn, which becomes the stream's home, as
    /// Tokio's `connect` works anywhere in its runtime.
    ///
    /// `addr` is any [`ToSocketAddrs`](super::ToSocketAddrs) (a
    /// `SocketAddr`, `"127.0.0.1:8080"`, `("localhost", 8080)`), as Tokio's
    /// `connect` takes; each address it yields is tried in turn until one
    /// connects. A host name is looked up on the runtime's blocking pool,
    /// as Tokio's is on its own: the shard runs other tasks meanwhile.
    ///
    /// # Errors
    ///
    /// `connect(2)` errors, e.g. `ConnectionRefused` (the last address's);
    /// the resolver's; `InvalidInput` if `addr` yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::{TcpListener, TcpStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let addr = listener.local_addr()?;
    ///     let stream = TcpStream::connect(addr).await?;
    ///     let (_conn, peer) = listener.accept().await?;
    ///     let by_name = TcpStream::connect(format!("127.0.0.1:{}", addr.port())).await?;
    ///     let _ = listener.accept().await?;
    ///     Ok::<_, std::io::Error>((
    ///         stream.peer_addr()? == addr,
    ///         stream.local_addr()? == peer,
    ///         by_name.peer_addr()? == addr,
    ///     ))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (true, true, true));
    /// ```
    pub async fn connect(addr: impl super::ToSocketAddrs) -> io::Result<Self> {
        let addrs = super::addrs::resolve(&addr).await?;
        super::on_a_shard(async move { Self::connect_each(addrs).await }).await
    }

    /// Tries each address in turn, on this shard's ring.
    async fn connect_each(addrs: Vec<std::net::SocketAddr>) -> io::Result<Self> {
        let mut last = None;
        for addr in addrs {
            match crate::native::net::TcpStream::connect(addr).await {
                Ok(s) => return s.into_compat(),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            )
        }))
    }

    /// Wraps a connected std stream, switching it to nonblocking mode (as
    /// `tokio::net::TcpStream::from_std` expects it to be already). A
    /// `tokio::net::TcpStream` comes over through its `into_std`.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        // A socket whose connect is still in progress has no peer yet: it
        // waits for the kernel's event before its first syscall, so that
        // `writable()` waits for the handshake (as Tokio's) and
        // `take_error()` can then tell how it went.
        let io = match stream.peer_addr() {
            Ok(_) => AsyncFd::syscall_first(stream),
            Err(_) => AsyncFd::new(stream)?,
        };
        Ok(Self { io })
    }

    /// Gives back the std stream (still in nonblocking mode).
    ///
    /// # Errors
    ///
    /// None: the `Result` is Tokio's signature (whose reactor
    /// deregistration can fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let back = ringlane::compat::TcpStream::from_std(s).unwrap().into_std().unwrap();
    /// assert!(back.peer_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        Ok(self.io.into_inner())
    }

    /// Moves the socket to the native lane (completion-based ops on owned
    /// buffers), back in blocking mode.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let native = ringlane::compat::TcpStream::from_std(s).unwrap().into_native().unwrap();
    /// assert!(native.peer_addr().is_ok());
    /// ```
    pub fn into_native(self) -> io::Result<crate::native::net::TcpStream> {
        let std = self.into_std()?;
        std.set_nonblocking(false)?;
        Ok(crate::native::net::TcpStream::from_std(std))
    }

    /// Borrowed halves, for reading and writing at once in one task.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (peer, _) = l.accept().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut s = ringlane::compat::TcpStream::from_std(s).unwrap();
    ///     let mut peer = ringlane::compat::TcpStream::from_std(peer).unwrap();
    ///     let (mut r, mut w) = s.split();
    ///     peer.write_all(b"abc").await.unwrap();
    ///     peer.shutdown().await.unwrap();
    ///     w.write_all(b"x").await.unwrap();
    ///     let mut got = Vec::new();
    ///     tokio::io::AsyncReadExt::read_to_end(&mut r, &mut got).await.unwrap();
    ///     got
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), b"abc");
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_, Self>, WriteHalf<'_, Self>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Owned halves, for a reader task and a writer task (on any shards).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// let (mut r, mut w) = ringlane::compat::TcpStream::from_std(s).unwrap().into_split();
    /// let writer = rt.handle().spawn_pinned(1, async move { w.write_all(b"hi").await }).unwrap();
    /// rt.block_on(writer).unwrap().unwrap();
    /// let mut got = [0u8; 2];
    /// std::io::Read::read_exact(&mut peer, &mut got).unwrap();
    /// std::io::Write::write_all(&mut peer, b"yo").unwrap();
    /// let reader = rt.handle().spawn_pinned(0, async move {
    ///     let mut b = [0u8; 2];
    ///     r.read_exact(&mut b).await.map(|_| b)
    /// }).unwrap();
    /// assert_eq!((&got, &rt.block_on(reader).unwrap().unwrap()), (b"hi", b"yo"));
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf<Self>, OwnedWriteHalf<Self>) {
        let me = Arc::new(self);
        (OwnedReadHalf(me.clone()), OwnedWriteHalf(me))
    }

    /// The peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (peer, _) = l.accept().unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), peer.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(ringlane::compat::TcpStream::from_std(s).unwrap().local_addr().is_ok());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any: how a
    /// connect made elsewhere (nonblocking, then waited for with
    /// [`writable`](Self::writable)) reports that it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// assert!(s.take_error().unwrap().is_none(), "a healthy connection");
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// s.set_nodelay(false).unwrap();
    /// assert!(!s.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Polls for bytes to peek at: like a read, but the bytes stay queued
    /// for the next read (`recv` with `MSG_PEEK`). Returns how many bytes
    /// were copied into `buf`; 0 once the peer has closed its side (or when
    /// `buf` has no room).
    ///
    /// # Errors
    ///
    /// `recv(2)` errors, e.g. `ConnectionReset`.
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
    ///     let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    ///     let mut storage = [0u8; 8];
    ///     let mut buf = ReadBuf::new(&mut storage);
    ///     let n = std::future::poll_fn(|cx| s.poll_peek(cx, &mut buf)).await.unwrap();
    ///     (n, buf.filled().to_vec())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (2, b"pk".to_vec()));
    /// ```
    pub fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<usize>> {
        ready_io::poll_peek(self, cx, buf)
    }

    /// Waits for bytes and copies them into `buf` without taking them: the
    /// next read returns them again. Returns 0 once the peer has closed its
    /// side.
    ///
    /// # Errors
    ///
    /// `recv(2)` errors, e.g. `ConnectionReset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncReadExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// std::io::Write::write_all(&mut peer, b"abcd").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut s = ringlane::compat::TcpStream::from_std(s).unwrap();
    ///     let mut peeked = [0u8; 4];
    ///     let n = s.peek(&mut peeked).await.unwrap();
    ///     let mut read = [0u8; 4];
    ///     s.read_exact(&mut read[..n]).await.unwrap();
    ///     (peeked[..n].to_vec(), read[..n].to_vec())
    /// }).unwrap();
    /// let (peeked, read) = rt.block_on(j).unwrap();
    /// assert!(!peeked.is_empty());
    /// assert_eq!(peeked, read);
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        ready_io::peek(self, buf).await
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// A TCP listener whose `accept` waits on the shard's ring.
///
/// # Examples
///
/// ```
/// use ringlane::compat::{TcpListener, TcpStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (conn, peer) = listener.accept().await?;
///     Ok::<_, std::io::Error>(peer == client.local_addr()? && conn.peer_addr()? == peer)
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap().unwrap());
/// ```
#[derive(Debug)]
pub struct TcpListener {
    pub(super) io: AsyncFd<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds and listens (nonblocking), with a backlog of 1024 and
    /// `SO_REUSEADDR`, as Tokio does.
    ///
    /// `addr` is any [`ToSocketAddrs`](super::ToSocketAddrs) (a
    /// `SocketAddr`, `"0.0.0.0:8080"`, `("localhost", 8080)`), as Tokio's
    /// `bind` takes; each address it yields is tried in turn until one
    /// binds. Only a host name's lookup waits (on the blocking pool, as
    /// [`TcpStream::connect`] says). For a listener made outside any async
    /// context, [`from_std`](Self::from_std) takes a std listener.
    ///
    /// # Errors
    ///
    /// `bind(2)`/`listen(2)` errors (the last address's); the resolver's;
    /// `InvalidInput` if `addr` yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let l = ringlane::compat::TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = std::net::TcpStream::connect(l.local_addr()?)?;
    ///     let (_, peer) = l.accept().await?;
    ///     Ok::<_, std::io::Error>(peer == client.local_addr()?)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub async fn bind(addr: impl super::ToSocketAddrs) -> io::Result<Self> {
        let mut last = None;
        for addr in super::addrs::resolve(&addr).await? {
            match crate::native::net::addr::tcp_listener(addr) {
                Ok(l) => return Self::from_std(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            )
        }))
    }

    /// Wraps a std listener, switching it to nonblocking mode.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(ringlane::compat::TcpListener::from_std(l).is_ok());
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            io: AsyncFd::syscall_first(listener),
        })
    }

    /// Polls for a connection (`accept4`, nonblocking, close-on-exec).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let l = ringlane::compat::TcpListener::from_std(l)?;
    ///     let (_conn, peer) = std::future::poll_fn(|cx| l.poll_accept(cx)).await?;
    ///     Ok::<_, std::io::Error>(peer)
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), client.local_addr().unwrap());
    /// ```
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let fd = self.io.as_raw_fd();
        let home = self.io.readiness().home();
        self.io.readiness().poll_io(Direction::Read, cx, || {
            // The peer's address comes from accept4 itself: asking later
            // (getpeername) fails if the client already reset.
            let mut addr = RawAddr::empty();
            // SAFETY: the address storage is valid for `addr.len` bytes; the
            // flags are valid.
            let new = unsafe {
                libc::accept4(
                    fd,
                    addr.as_mut_ptr(),
                    &mut addr.len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if new < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: accept4 just created `new` for us.
            let std = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(new) });
            let peer = addr.parse_inet()?;
            let io = AsyncFd::with_home(std, home.clone());
            Ok((TcpStream { io }, peer))
        })
    }

    /// Waits for a connection.
    ///
    /// # Errors
    ///
    /// `accept4(2)` errors, e.g. `EMFILE`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncReadExt;
    /// let l = ringlane::compat::TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let mut client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// std::io::Write::write_all(&mut client, b"hi").unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (mut conn, _peer) = l.accept().await?;
    ///     let mut got = [0u8; 2];
    ///     conn.read_exact(&mut got).await?;
    ///     Ok::<_, std::io::Error>(got)
    /// }).unwrap();
    /// assert_eq!(&rt.block_on(j).unwrap().unwrap(), b"hi");
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.io.readiness().wait(|cx| self.poll_accept(cx)).await
    }

    /// Connections as a stream (`next().await` in a loop).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::{TcpListener, TcpStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let addr = listener.local_addr()?;
    ///     let clients: Vec<_> = (0..3)
    ///         .map(|_| ringlane::spawn_local(TcpStream::connect(addr)).unwrap())
    ///         .collect();
    ///     let mut incoming = listener.incoming();
    ///     for _ in 0..3 {
    ///         let (_stream, _peer) = incoming.next().await?;
    ///     }
    ///     for c in clients {
    ///         c.await.unwrap()?;
    ///     }
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = ringlane::compat::TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let addr = l.local_addr().unwrap();
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0, "port 0 asks the kernel to pick one");
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

/// The connections of a [`TcpListener`], one `accept` at a time.
///
/// # Examples
///
/// ```
/// use ringlane::compat::{Incoming, TcpListener};
/// let l = TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
/// let addr = l.local_addr().unwrap();
/// let clients: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let mut incoming: Incoming<'_> = l.incoming();
///     let mut peers = Vec::new();
///     for _ in 0..2 {
///         peers.push(incoming.next().await?.1);
///     }
///     Ok::<_, std::io::Error>(peers)
/// }).unwrap();
/// let mut peers = rt.block_on(j).unwrap().unwrap();
/// let mut want: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
/// peers.sort();
/// want.sort();
/// assert_eq!(peers, want);
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Incoming<'_> {
    /// Polls for the next connection.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = ringlane::compat::TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut incoming = l.incoming();
    ///     let (_conn, peer) = std::future::poll_fn(|cx| incoming.poll_next(cx)).await?;
    ///     Ok::<_, std::io::Error>(peer)
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), client.local_addr().unwrap());
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        self.listener.poll_accept(cx)
    }

    /// The next connection.
    ///
    /// # Errors
    ///
    /// As [`TcpListener::accept`]; the stream goes on after an error.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = ringlane::compat::TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut incoming = l.incoming();
    ///     let (conn, peer) = incoming.next().await?;
    ///     Ok::<_, std::io::Error>(conn.peer_addr()? == peer)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub async fn next(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        let readiness = self.listener.io.readiness();
        readiness.wait(|cx| self.poll_next(cx)).await
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl crate::native::net::TcpStream {
    /// Moves the socket to the compat lane (readiness, Tokio's I/O traits),
    /// in nonblocking mode. If an abandoned op still holds the fd, the
    /// compat stream gets a duplicate of it.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set or the fd duplicated.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let native = ringlane::native::net::TcpStream::from_std(s);
    /// assert!(native.into_compat().unwrap().peer_addr().is_ok());
    /// ```
    pub fn into_compat(self) -> io::Result<TcpStream> {
        let fd: OwnedFd = self.into_owned_fd()?;
        // SAFETY: we own `fd`; a TCP stream's fd becomes a std stream.
        let std = unsafe { std::net::TcpStream::from_raw_fd(fd.into_raw_fd()) };
        TcpStream::from_std(std)
    }
}
