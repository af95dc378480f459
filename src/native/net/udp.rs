//! UDP over io_uring: `UdpSocket` (`sendmsg`/`recvmsg` ops).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::addr::{RawAddr, inet_name};
use super::socket::Socket;
use crate::native::{IoBuf, IoBufMut};

/// A UDP socket whose datagrams go through io_uring.
///
/// # Examples
///
/// ```
/// use ringlane::native::net::UdpSocket;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
///     let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
///     a.send_to(b"hi".to_vec(), b.local_addr()?).await.0?;
///     let (r, buf) = b.recv_from(Vec::with_capacity(64)).await;
///     let (n, from) = r?;
///     Ok::<_, std::io::Error>((buf[..n].to_vec(), from == a.local_addr()?))
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"hi".to_vec(), true));
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    socket: Socket,
}

impl UdpSocket {
    /// Binds a socket to `addr` (an immediate syscall).
    ///
    /// # Errors
    ///
    /// `bind(2)` errors, e.g. `AddrInUse`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::UdpSocket;
    /// let s = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let taken = s.local_addr().unwrap();
    /// let e = UdpSocket::bind(taken).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    /// ```
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::from_std(std::net::UdpSocket::bind(addr)?))
    }

    /// Wraps a std socket (left in blocking mode).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(ringlane::native::net::UdpSocket::from_std(s).local_addr().is_ok());
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> Self {
        let _ = socket.set_nonblocking(false);
        Self {
            socket: Socket::from_owned(OwnedFd::from(socket)),
        }
    }

    /// Sets the default peer (`IORING_OP_CONNECT`), for `send` and `recv`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     a.connect(b.local_addr().unwrap()).await.unwrap();
    ///     a.send(b"x".to_vec()).await.0.unwrap();
    ///     b.recv(vec![0u8; 8]).await.0.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        self.socket.connect(RawAddr::from_inet(addr)).await
    }

    /// Sends one datagram of the initialized bytes to `to`.
    ///
    /// # Errors
    ///
    /// `sendmsg(2)` errors. An empty buffer sends an empty datagram.
    ///
    /// # Examples
    ///
    /// ```
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let to = peer.local_addr().unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::native::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     s.send_to(b"datagram".to_vec(), to).await.0
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 8);
    /// let mut buf = [0u8; 16];
    /// let (n, _) = peer.recv_from(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], b"datagram");
    /// ```
    pub async fn send_to<B: IoBuf>(&self, buf: B, to: SocketAddr) -> (io::Result<usize>, B) {
        self.socket.send_to(buf, RawAddr::from_inet(to)).await
    }

    /// Receives one datagram (truncated to the buffer's capacity); returns
    /// its length and sender.
    ///
    /// # Errors
    ///
    /// `recvmsg(2)` errors. A zero-capacity buffer takes (and truncates) one
    /// datagram.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let s = ringlane::native::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
    ///     sender.send_to(b"truncated", s.local_addr()?)?;
    ///     // Room for 5 bytes: the rest of the datagram is dropped.
    ///     let (r, buf) = s.recv_from(Vec::with_capacity(5)).await;
    ///     let (n, from) = r?;
    ///     Ok::<_, std::io::Error>((buf[..n].to_vec(), from == sender.local_addr()?))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"trunc".to_vec(), true));
    /// ```
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, SocketAddr)>, B) {
        let (r, buf) = self.socket.recv_from(buf).await;
        (r.and_then(|(n, a)| Ok((n, a.parse_inet()?))), buf)
    }

    /// Sends one datagram to the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let to = peer.local_addr().unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::native::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     s.connect(to).await?;
    ///     s.send(b"to the peer".to_vec()).await.0
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 11);
    /// let mut buf = [0u8; 32];
    /// assert_eq!(peer.recv(&mut buf).unwrap(), 11);
    /// ```
    pub async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send_datagram(buf).await
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let s = ringlane::native::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
    ///     let peer = std::net::UdpSocket::bind("127.0.0.1:0")?;
    ///     let stranger = std::net::UdpSocket::bind("127.0.0.1:0")?;
    ///     s.connect(peer.local_addr()?).await?;
    ///     // A connected socket takes datagrams from its peer only.
    ///     stranger.send_to(b"dropped", s.local_addr()?)?;
    ///     peer.send_to(b"kept", s.local_addr()?)?;
    ///     let (n, buf) = s.recv(Vec::with_capacity(16)).await;
    ///     Ok::<_, std::io::Error>(buf[..n?].to_vec())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"kept");
    /// ```
    pub async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let (r, buf) = self.socket.recv_from(buf).await;
        (r.map(|(n, _)| n), buf)
    }

    /// The local address.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::native::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = s.local_addr().unwrap();
    /// assert_eq!(addr.ip(), std::net::Ipv4Addr::LOCALHOST);
    /// assert_ne!(addr.port(), 0, "the kernel picked a port");
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet_name(self.socket.raw(), false)
    }

    /// Closes the socket with `IORING_OP_CLOSE` (dropping also closes it).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let s = ringlane::native::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// rt.block_on(rt.handle().spawn_pinned(0, s.close()).unwrap()).unwrap().unwrap();
    /// ```
    pub async fn close(self) -> io::Result<()> {
        self.socket.close().await
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.raw()
    }
}
