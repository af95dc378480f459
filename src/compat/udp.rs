//! `UdpSocket` of the compat lane: readiness, then `sendto`/`recvfrom`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::async_fd::AsyncFd;
use super::readiness::Direction;
use crate::native::net::addr::RawAddr;

/// A UDP socket with Tokio's `UdpSocket` shape (`send_to`, `recv_from`,
/// `send`, `recv`, their `poll_*` and `try_*` forms, `readable`,
/// `writable`), driven by readiness on the shard's ring.
///
/// # Examples
///
/// ```
/// use ringlane::compat::UdpSocket;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"dgram", b.local_addr()?).await?;
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     Ok::<_, std::io::Error>((buf[..n].to_vec(), from == a.local_addr()?))
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"dgram".to_vec(), true));
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    pub(super) io: AsyncFd<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr` (nonblocking): any
    /// [`ToSocketAddrs`](super::ToSocketAddrs), each address tried in turn
    /// until one binds, as Tokio's `bind` does. Only a host name's lookup
    /// waits (on the runtime's blocking pool). Outside any async context,
    /// [`from_std`](Self::from_std) takes a std socket.
    ///
    /// # Errors
    ///
    /// `bind(2)` errors (the last address's); the resolver's.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let addr = rt.block_on(async {
    ///     ringlane::compat::UdpSocket::bind("127.0.0.1:0").await?.local_addr()
    /// }).unwrap();
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0, "port 0 asks the kernel to pick one");
    /// ```
    pub async fn bind(addr: impl super::ToSocketAddrs) -> io::Result<Self> {
        let addrs = super::addrs::resolve(&addr).await?;
        Self::from_std(std::net::UdpSocket::bind(&addrs[..])?)
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
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(ringlane::compat::UdpSocket::from_std(s).is_ok());
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<Self> {
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
    /// let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = std_socket.local_addr().unwrap();
    /// let s = ringlane::compat::UdpSocket::from_std(std_socket).unwrap();
    /// assert_eq!(s.into_std().unwrap().local_addr().unwrap(), addr);
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        Ok(self.io.into_inner())
    }

    /// Takes the socket's pending error (`SO_ERROR`), as Tokio's
    /// `take_error`: an ICMP error a connected socket received, say.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// The local address.
    ///
    /// # Examples
    ///
    /// ```
    /// let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = std_socket.local_addr().unwrap();
    /// let s = ringlane::compat::UdpSocket::from_std(std_socket).unwrap();
    /// assert_eq!(s.local_addr().unwrap(), addr);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets the default peer (an immediate syscall for UDP): any
    /// [`ToSocketAddrs`](super::ToSocketAddrs), each address tried in
    /// turn, as Tokio's `connect` does. Only a host name's lookup waits.
    ///
    /// # Errors
    ///
    /// `connect(2)` errors (the last address's); the resolver's.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let to = peer.local_addr().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::compat::UdpSocket::bind("127.0.0.1:0").await?;
    ///     s.connect(to).await?;
    ///     s.send(b"to").await?; // no address: the default peer
    ///     s.local_addr()
    /// }).unwrap();
    /// let from = rt.block_on(j).unwrap().unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(peer.recv_from(&mut buf).unwrap(), (2, from));
    /// ```
    pub async fn connect(&self, addr: impl super::ToSocketAddrs) -> io::Result<()> {
        let addrs = super::addrs::resolve(&addr).await?;
        self.io.get_ref().connect(&addrs[..])
    }

    /// Polls to send one datagram to `target`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let to = b.local_addr()?;
    ///     let sent = std::future::poll_fn(|cx| a.poll_send_to(cx, b"poll", to)).await?;
    ///     let mut buf = [0u8; 8];
    ///     let (got, _) = b.recv_from(&mut buf).await?;
    ///     Ok::<_, std::io::Error>((sent, got))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (4, 4));
    /// ```
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let s = self.io.get_ref();
        self.io
            .readiness()
            .poll_io(Direction::Write, cx, || s.send_to(buf, target))
    }

    /// Sends one datagram to `target`: any
    /// [`ToSocketAddrs`](super::ToSocketAddrs), sent to the first address
    /// it yields, as Tokio's `send_to` does (a host name is looked up on the
    /// runtime's blocking pool).
    ///
    /// # Errors
    ///
    /// `sendto(2)` errors; the resolver's; `InvalidInput` if `target`
    /// yields no address.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let sent = a.send_to(b"one", b.local_addr()?).await?;
    ///     a.send_to(b"two", b.local_addr()?).await?;
    ///     let mut buf = [0u8; 8];
    ///     let (n, _) = b.recv_from(&mut buf).await?; // one datagram, not both
    ///     Ok::<_, std::io::Error>((sent, buf[..n].to_vec()))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (3, b"one".to_vec()));
    /// ```
    pub async fn send_to(
        &self,
        buf: &[u8],
        target: impl super::ToSocketAddrs,
    ) -> io::Result<usize> {
        let Some(&target) = super::addrs::resolve(&target).await?.first() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no addresses to send data to",
            ));
        };
        self.io
            .readiness()
            .wait(|cx| self.poll_send_to(cx, buf, target))
            .await
    }

    /// Polls to receive one datagram into `buf`'s unfilled part.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// use tokio::io::ReadBuf;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"rb", b.local_addr()?).await?;
    ///     let mut storage = [0u8; 8];
    ///     let mut buf = ReadBuf::new(&mut storage);
    ///     let from = std::future::poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await?;
    ///     Ok::<_, std::io::Error>((buf.filled().to_vec(), from == a.local_addr()?))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"rb".to_vec(), true));
    /// ```
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        self.poll_recv_flags(cx, buf, 0)
    }

    /// Polls for the next datagram without taking it: its bytes (truncated
    /// to `buf`) and sender; the next receive returns it again.
    ///
    /// # Errors
    ///
    /// `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// use tokio::io::ReadBuf;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"pp", b.local_addr()?).await?;
    ///     let mut storage = [0u8; 8];
    ///     let mut buf = ReadBuf::new(&mut storage);
    ///     let from = std::future::poll_fn(|cx| b.poll_peek_from(cx, &mut buf)).await?;
    ///     let again = b.recv_from(&mut [0u8; 8]).await?;
    ///     Ok::<_, std::io::Error>((buf.filled().to_vec(), from == again.1, again.0))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"pp".to_vec(), true, 2));
    /// ```
    pub fn poll_peek_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<SocketAddr>> {
        self.poll_recv_flags(cx, buf, libc::MSG_PEEK)
    }

    /// Waits for the next datagram and copies it (truncated to `buf`)
    /// without taking it; returns the copied length and the sender.
    ///
    /// # Errors
    ///
    /// `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"once", b.local_addr()?).await?;
    ///     let mut peeked = [0u8; 8];
    ///     let (n, from) = b.peek_from(&mut peeked).await?;
    ///     let mut got = [0u8; 8];
    ///     let (m, _) = b.recv_from(&mut got).await?;
    ///     Ok::<_, std::io::Error>((peeked[..n] == got[..m], from == a.local_addr()?))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (true, true));
    /// ```
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut rb = ReadBuf::new(buf);
        let readiness = self.io.readiness();
        let from = readiness
            .wait(|cx| self.poll_peek_from(cx, &mut rb))
            .await?;
        Ok((rb.filled().len(), from))
    }

    /// `recvfrom` with `flags` once readable.
    pub(super) fn poll_recv_flags(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        flags: i32,
    ) -> Poll<io::Result<SocketAddr>> {
        let fd = self.io.as_raw_fd();
        let (n, from) =
            std::task::ready!(self.io.readiness().poll_io(Direction::Read, cx, || {
                let mut addr = RawAddr::empty();
                // SAFETY: we hand the unfilled part only to `recvfrom`, which
                // writes (never reads) it.
                let unfilled = unsafe { buf.unfilled_mut() };
                // SAFETY: the buffer is valid for writes of its length and the
                // address storage for `addr.len` bytes.
                let n = unsafe {
                    libc::recvfrom(
                        fd,
                        unfilled.as_mut_ptr().cast(),
                        unfilled.len(),
                        flags,
                        addr.as_mut_ptr(),
                        &mut addr.len,
                    )
                };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok((n as usize, addr.parse_inet()?))
            }))?;
        // SAFETY: the kernel initialized `n` bytes of the unfilled part.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(from))
    }

    /// Receives one datagram (truncated to `buf`); returns its length and
    /// sender.
    ///
    /// # Errors
    ///
    /// `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"truncated", b.local_addr()?).await?;
    ///     let mut buf = [0u8; 5];
    ///     let (n, from) = b.recv_from(&mut buf).await?;
    ///     Ok::<_, std::io::Error>((n, buf, from == a.local_addr()?))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (5, *b"trunc", true));
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut rb = ReadBuf::new(buf);
        let readiness = self.io.readiness();
        let from = readiness
            .wait(|cx| self.poll_recv_from(cx, &mut rb))
            .await?;
        Ok((rb.filled().len(), from))
    }

    /// Sends to the connected peer.
    ///
    /// # Errors
    ///
    /// `send(2)` errors, e.g. `ConnectionRefused` after an ICMP error.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    ///     let b = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    ///     a.connect(b.local_addr().unwrap()).await.unwrap();
    ///     a.send(b"").await.unwrap(); // an empty datagram is a message
    ///     let mut buf = [0u8; 4];
    ///     b.recv_from(&mut buf).await.unwrap().0
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 0);
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let s = self.io.get_ref();
        let readiness = self.io.readiness();
        readiness
            .wait(|cx| readiness.poll_io(Direction::Write, cx, || s.send(buf)))
            .await
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}
