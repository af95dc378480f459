//! TCP over io_uring: `TcpListener` and `TcpStream`.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::addr::{RawAddr, inet_name};
use super::socket::Socket;
use crate::native::{IoBuf, IoBufMut};

/// A TCP listening socket; `accept` is an io_uring op.
///
/// # Examples
///
/// ```
/// use ringlane::native::net::{TcpListener, TcpStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let addr = listener.local_addr()?;
///     let client = ringlane::spawn_local(async move {
///         let s = TcpStream::connect(addr).await?;
///         s.write_all(b"ping".to_vec()).await.0
///     })?;
///     let (conn, _peer) = listener.accept().await?;
///     let (n, buf) = conn.read(Vec::with_capacity(16)).await;
///     client.await.unwrap()?;
///     Ok::<_, std::io::Error>(buf[..n?].to_vec())
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"ping");
/// ```
#[derive(Debug)]
pub struct TcpListener {
    socket: Socket,
}

impl TcpListener {
    /// Binds and listens with a backlog of 1024 and `SO_REUSEADDR`, as Tokio
    /// does (immediate syscalls; no I/O waits).
    ///
    /// # Errors
    ///
    /// `bind(2)`/`listen(2)` errors, e.g. `AddrInUse`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = ringlane::native::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::from_std(super::addr::tcp_listener(addr)?))
    }

    /// Wraps a bound, listening std socket (left in blocking mode: io_uring
    /// waits for readiness itself).
    ///
    /// # Examples
    ///
    /// ```
    /// let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = ringlane::native::net::TcpListener::from_std(std);
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> Self {
        let _ = listener.set_nonblocking(false);
        Self {
            socket: Socket::from_owned(OwnedFd::from(listener)),
        }
    }

    /// Waits for a connection. Dropping the future cancels the accept; a
    /// connection the kernel accepted meanwhile is closed, not leaked.
    ///
    /// # Errors
    ///
    /// `accept(2)` errors, e.g. `EMFILE` when out of fds.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::{TcpListener, TcpStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (conn, peer) = listener.accept().await?;
    ///     Ok::<_, std::io::Error>(peer == client.local_addr()? && conn.peer_addr()? == peer)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (socket, addr) = self.socket.accept().await?;
        Ok((TcpStream { socket }, addr.parse_inet()?))
    }

    /// Connections as a stream, from one multishot accept (one SQE for
    /// many connections, re-armed if the kernel ends it).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::{TcpListener, TcpStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     let mut incoming = listener.incoming();
    ///     let mut clients = Vec::new();
    ///     for _ in 0..3 {
    ///         clients.push(ringlane::spawn_local(TcpStream::connect(addr))?);
    ///     }
    ///     for _ in 0..3 {
    ///         incoming.next().await?;
    ///     }
    ///     for c in clients {
    ///         c.await.unwrap()?;
    ///     }
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming {
        Incoming {
            accept: super::socket::MultiAccept::new(&self.socket),
        }
    }

    /// The address this listener is bound to.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = ringlane::native::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = l.local_addr().unwrap();
    /// assert!(addr.ip().is_loopback() && addr.port() != 0);
    /// // The address is live: a client can connect to it.
    /// std::net::TcpStream::connect(addr).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet_name(self.socket.raw(), false)
    }

    /// Closes the socket with `IORING_OP_CLOSE` (dropping also closes it).
    /// An [`Incoming`] stream of this listener keeps the socket open, and
    /// accepting, until the stream is dropped too: the fd is closed then
    /// (this call returns at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = ringlane::native::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move { l.close().await }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// ```
    pub async fn close(self) -> io::Result<()> {
        self.socket.close().await
    }
}

/// A TCP connection; reads and writes are io_uring ops on owned buffers.
///
/// # Examples
///
/// ```
/// use ringlane::native::net::{TcpListener, TcpStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, _) = listener.accept().await?;
///     client.write_all(b"ping".to_vec()).await.0?;
///     let (n, buf) = server.read(vec![0u8; 16]).await;
///     server.write_all(buf[..n?].to_vec()).await.0?; // echo it back
///     let (n, buf) = client.read(vec![0u8; 16]).await;
///     Ok::<_, std::io::Error>(buf[..n?].to_vec())
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"ping");
/// ```
#[derive(Debug)]
pub struct TcpStream {
    socket: Socket,
}

impl TcpStream {
    /// Multishot receive into a provided-buffer ring (opt-in): one SQE
    /// keeps receiving, each chunk in a buffer the kernel picks from `ring`
    /// only when data arrives, so an idle connection holds no buffer. The
    /// stream ends at end of file. Poll it on `ring`'s shard. Dropping the
    /// stream discards what it received but was not taken: keep one per
    /// connection ([`RecvMulti`](super::RecvMulti), "Cancellation").
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::BufRing, net::{TcpListener, TcpStream}};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let ring = BufRing::new(4, 4)?; // chunks of at most 4 bytes
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (conn, _) = listener.accept().await?;
    ///     client.write_all(b"0123456789".to_vec()).await.0?;
    ///     drop(client);
    ///     let (mut chunks, mut got) = (conn.recv_multi(&ring), Vec::new());
    ///     while let Some(chunk) = chunks.next().await {
    ///         let chunk = chunk?;
    ///         assert!(chunk.len() <= 4);
    ///         got.extend_from_slice(&chunk);
    ///     }
    ///     Ok::<_, std::io::Error>(got)
    /// }).unwrap();
    /// match rt.block_on(j).unwrap() {
    ///     Ok(got) => assert_eq!(got, b"0123456789"),
    ///     // Before Linux 6.0 the kernel refuses the buffer ring (5.18) or the
    ///     // multishot receive (5.19) with `EINVAL`.
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
    /// }
    /// ```
    pub fn recv_multi(&self, ring: &crate::native::fixed::BufRing) -> super::RecvMulti {
        self.socket.recv_multi(ring)
    }

    /// Connects to `addr` (`IORING_OP_SOCKET` then `IORING_OP_CONNECT`).
    ///
    /// # Errors
    ///
    /// `connect(2)` errors, e.g. `ConnectionRefused`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// // Nothing listens on a port we just released.
    /// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::net::TcpStream::connect(port).await.map(drop)
    /// }).unwrap();
    /// let e = rt.block_on(j).unwrap().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    /// ```
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let domain = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let socket = Socket::open(domain, libc::SOCK_STREAM).await?;
        socket.connect(RawAddr::from_inet(addr)).await?;
        Ok(Self { socket })
    }

    /// Wraps a connected std stream (left in blocking mode).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::native::net::TcpStream::from_std(s);
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> Self {
        let _ = stream.set_nonblocking(false);
        Self {
            socket: Socket::from_owned(OwnedFd::from(stream)),
        }
    }

    /// Receives into `buf` (up to its capacity): the byte count, 0 once the
    /// peer has shut down its side, and the buffer.
    ///
    /// Cancellation: dropping the future cancels the receive; if the kernel
    /// had already received bytes into the buffer, they are lost with it.
    /// Bound waits with [`native::timeout`](crate::native::timeout), which
    /// gives the buffer back instead.
    ///
    /// # Errors
    ///
    /// `recv(2)` errors; `InvalidInput` for a zero-capacity buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::{TcpListener, TcpStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (conn, _) = listener.accept().await?;
    ///     client.write_all(b"abc".to_vec()).await.0?;
    ///     drop(client); // after the data, reads return 0
    ///     let (n, buf) = conn.read(Vec::with_capacity(8)).await;
    ///     let (end, _) = conn.read(Vec::with_capacity(8)).await;
    ///     Ok::<_, std::io::Error>((buf[..n?].to_vec(), end?))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"abc".to_vec(), 0));
    /// ```
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.recv(buf).await
    }

    /// Sends the buffer's initialized bytes; returns how many were sent
    /// (possibly fewer). Never raises `SIGPIPE`: a closed peer is `BrokenPipe`.
    ///
    /// # Errors
    ///
    /// `send(2)` errors; `InvalidInput` for an empty buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::native::net::TcpStream::connect(addr).await.unwrap();
    ///     s.write(vec![7u8; 10]).await.0.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 10);
    /// ```
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send(buf).await
    }

    /// Zero-copy send (`IORING_OP_SEND_ZC`, opt-in): the kernel transmits
    /// from the buffer's own pages instead of copying them, and the buffer
    /// comes back once the kernel's notification says it is done with it.
    /// Worth it for large buffers on real NICs; on loopback it still copies.
    ///
    /// The notification comes once the network is done with the pages (for
    /// TCP, once the peer acknowledged the bytes), so the future can wait
    /// that long after the kernel took the bytes; a deadline
    /// ([`NativeTimeoutExt::timeout`](crate::native::NativeTimeoutExt::timeout))
    /// bounds the send only until the kernel has taken them, since the
    /// buffer cannot come back before. Dropping the stream still closes the
    /// socket meanwhile.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); `InvalidInput` (`EINVAL`) on kernels
    /// before 6.0, which lack the opcode.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::native::net::TcpStream::connect(addr).await.unwrap();
    ///     let (n, buf) = s.write_zc(vec![3u8; 64 * 1024]).await;
    ///     (n.unwrap(), buf.len())
    /// }).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// let (n, len) = rt.block_on(j).unwrap();
    /// assert!(n > 0 && len == 64 * 1024);
    /// let mut got = vec![0u8; n];
    /// std::io::Read::read_exact(&mut peer, &mut got).unwrap();
    /// assert!(got.iter().all(|&b| b == 3));
    /// ```
    pub async fn write_zc<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send_zc(buf).await
    }

    /// Sends every initialized byte of `buf`, resubmitting after short sends.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); `WriteZero` if the kernel accepts nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let reader = std::thread::spawn(move || {
    ///     let (mut peer, _) = l.accept()?;
    ///     std::io::Read::read_to_end(&mut peer, &mut Vec::new())
    /// });
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::native::net::TcpStream::connect(addr).await?;
    ///     // More than the socket buffers hold: several sends.
    ///     let (r, buf) = s.write_all(vec![1u8; 1 << 20]).await;
    ///     drop(s); // end of file for the reader
    ///     r.map(|()| buf.len())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 1 << 20);
    /// assert_eq!(reader.join().unwrap().unwrap(), 1 << 20);
    /// ```
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        self.socket.send_all(buf).await
    }

    /// Shuts down reading, writing or both (`IORING_OP_SHUTDOWN`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::native::net::TcpStream::connect(addr).await.unwrap();
    ///     s.shutdown(std::net::Shutdown::Write).await
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// let mut rest = Vec::new();
    /// std::io::Read::read_to_end(&mut peer, &mut rest).unwrap(); // EOF
    /// ```
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how).await
    }

    /// Closes the socket with `IORING_OP_CLOSE` (dropping also closes it).
    /// Ops still in flight on it, a [`RecvMulti`](super::RecvMulti) stream
    /// included, keep it open until they end: the fd is closed then (this
    /// call returns at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::net::TcpStream::connect(addr).await.unwrap().close().await
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// ```
    pub async fn close(self) -> io::Result<()> {
        self.socket.close().await
    }

    /// Disables (or re-enables) Nagle's algorithm.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// ringlane::native::net::TcpStream::from_std(s).set_nodelay(true).unwrap();
    /// ```
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        let v = libc::c_int::from(on);
        // SAFETY: the option value is a live c_int of the size passed.
        let r = unsafe {
            libc::setsockopt(
                self.socket.raw(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw const v).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// The local address.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (peer, _) = l.accept().unwrap();
    /// let s = ringlane::native::net::TcpStream::from_std(s);
    /// assert_eq!(s.local_addr().unwrap(), peer.peer_addr().unwrap());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet_name(self.socket.raw(), false)
    }

    /// The peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::native::net::TcpStream::from_std(s);
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        inet_name(self.socket.raw(), true)
    }
}

/// The connections of a [`TcpListener`], from a multishot accept. Dropping
/// it cancels the accept; connections accepted and not yet taken are closed.
///
/// # Examples
///
/// ```
/// use ringlane::native::net::{TcpListener, TcpStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let mut incoming = listener.incoming();
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let conn = incoming.next().await?;
///     Ok::<_, std::io::Error>(conn.peer_addr()? == client.local_addr()?)
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap().unwrap());
/// ```
#[derive(Debug)]
pub struct Incoming {
    accept: super::socket::MultiAccept,
}

impl Incoming {
    /// Polls for the next connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::{TcpListener, TcpStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let mut incoming = listener.incoming();
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let conn = std::future::poll_fn(|cx| incoming.poll_next(cx)).await?;
    ///     Ok::<_, std::io::Error>(conn.local_addr()? == client.peer_addr()?)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<TcpStream>> {
        // A backlog of connections yields now and then (coop invariant 2).
        crate::executor::coop::budgeted(cx, |cx| self.accept.poll_accept(cx))
            .map(|r| r.map(|socket| TcpStream { socket }))
    }

    /// The next connection.
    ///
    /// # Errors
    ///
    /// `accept(2)` errors (e.g. `EMFILE`); the stream goes on after one.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::{TcpListener, TcpStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let addr = listener.local_addr()?;
    ///     let (a, b) = (TcpStream::connect(addr).await?, TcpStream::connect(addr).await?);
    ///     let mut incoming = listener.incoming();
    ///     // Connections come in the order they were made.
    ///     let first = incoming.next().await?.peer_addr()?;
    ///     let second = incoming.next().await?.peer_addr()?;
    ///     Ok::<_, std::io::Error>(first == a.local_addr()? && second == b.local_addr()?)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub async fn next(&mut self) -> io::Result<TcpStream> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.raw()
    }
}

impl TcpStream {
    /// The socket's fd, for the compat lane.
    pub(crate) fn into_owned_fd(self) -> io::Result<OwnedFd> {
        self.socket.into_owned_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.raw()
    }
}
