//! `UdpSocket`'s connected, nonblocking and peeking calls (Tokio's `recv`,
//! `poll_recv`, `poll_send`, `readable`, `try_*`, `peek`, `peek_sender`),
//! beside the address-taking ones in `udp.rs`.
//!
//! Rule (readiness invariant 2): a `try_*` call takes the direction's tick
//! before its syscall and clears the readiness only on `EAGAIN`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::readiness::Direction;
use super::udp::UdpSocket;

impl UdpSocket {
    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` before [`connect`](Self::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// let to = "127.0.0.1:9".parse().unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// rt.block_on(s.connect(to)).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), to);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Polls for read readiness (Tokio's `poll_recv_ready`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     a.try_send_to(b"r", b.local_addr()?)?;
    ///     std::future::poll_fn(|cx| b.poll_recv_ready(cx)).await?;
    ///     b.try_recv(&mut [0u8; 4])
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 1);
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
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    ///     std::future::poll_fn(|cx| s.poll_send_ready(cx)).await
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().is_ok());
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
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     let mut buf = [0u8; 4];
    ///     assert_eq!(b.try_recv(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    ///     a.try_send_to(b"hi", b.local_addr()?)?;
    ///     b.readable().await?; // waits for the datagram
    ///     b.try_recv_from(&mut buf)
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap().0, 2);
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
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let s = ringlane::compat::UdpSocket::bind("127.0.0.1:0").await?;
    ///     s.writable().await?;
    ///     s.try_send_to(b"w", s.local_addr()?)
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 1);
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
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     a.connect(b.local_addr()?).await?;
    ///     std::future::poll_fn(|cx| a.poll_send(cx, b"ps")).await
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 2);
    /// ```
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let s = self.io.get_ref();
        self.io
            .readiness()
            .poll_io(Direction::Write, cx, || s.send(buf))
    }

    /// Polls to receive one datagram from the connected peer into `buf`'s
    /// unfilled part (truncated to it).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// use tokio::io::ReadBuf;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     b.connect(a.local_addr()?).await?;
    ///     a.send_to(b"pr", b.local_addr()?).await?;
    ///     let mut storage = [0u8; 8];
    ///     let mut buf = ReadBuf::new(&mut storage);
    ///     std::future::poll_fn(|cx| b.poll_recv(cx, &mut buf)).await?;
    ///     Ok::<_, std::io::Error>(buf.filled().to_vec())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"pr");
    /// ```
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv_connected(cx, buf, 0)
    }

    /// `recv` with `flags` (0, or `MSG_PEEK`) from the connected peer into
    /// `buf`'s unfilled part, once readable.
    fn poll_recv_connected(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        flags: i32,
    ) -> Poll<io::Result<()>> {
        let fd = self.io.as_raw_fd();
        let n = std::task::ready!(self.io.readiness().poll_io(Direction::Read, cx, || {
            // SAFETY: we hand the unfilled part only to `recv`, which writes
            // (never reads) it.
            let unfilled = unsafe { buf.unfilled_mut() };
            // SAFETY: the buffer is valid for writes of its length.
            let n = unsafe { libc::recv(fd, unfilled.as_mut_ptr().cast(), unfilled.len(), flags) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        }))?;
        // SAFETY: the kernel initialized `n` bytes of the unfilled part.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }

    /// Receives one datagram from the connected peer (truncated to `buf`);
    /// returns its length.
    ///
    /// # Errors
    ///
    /// `recv(2)` errors, e.g. `ConnectionRefused` after an ICMP error.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     b.connect(a.local_addr()?).await?;
    ///     a.send_to(b"conn", b.local_addr()?).await?;
    ///     let mut buf = [0u8; 8];
    ///     let n = b.recv(&mut buf).await?;
    ///     Ok::<_, std::io::Error>(buf[..n].to_vec())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"conn");
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        let readiness = self.io.readiness();
        readiness.wait(|cx| self.poll_recv(cx, &mut rb)).await?;
        Ok(rb.filled().len())
    }

    /// One nonblocking send to the connected peer.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the socket cannot take it now; other `send(2)`
    /// errors, e.g. `NotConnected`.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert!(s.try_send(b"x").is_err()); // not connected
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// rt.block_on(s.connect(s.local_addr().unwrap())).unwrap();
    /// assert_eq!(s.try_send(b"x").unwrap(), 1);
    /// ```
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .readiness()
            .try_io(Direction::Write, || self.io.get_ref().send(buf))
    }

    /// One nonblocking send to `target`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the socket cannot take it now; other `sendto(2)`
    /// errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert_eq!(s.try_send_to(b"self", s.local_addr().unwrap()).unwrap(), 4);
    /// ```
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.io
            .readiness()
            .try_io(Direction::Write, || self.io.get_ref().send_to(buf, target))
    }

    /// One nonblocking receive from the connected peer (truncated to
    /// `buf`).
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let err = s.try_recv(&mut [0u8; 4]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .readiness()
            .try_io(Direction::Read, || self.io.get_ref().recv(buf))
    }

    /// One nonblocking receive (truncated to `buf`); returns the length
    /// and the sender.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let me = s.local_addr().unwrap();
    /// s.try_send_to(b"loop", me).unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.try_recv_from(&mut buf).unwrap(), (4, me));
    /// ```
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .readiness()
            .try_io(Direction::Read, || self.io.get_ref().recv_from(buf))
    }

    /// Polls for the next datagram from the connected peer and copies it
    /// (truncated to `buf`'s unfilled part) without taking it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// use tokio::io::ReadBuf;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     b.connect(a.local_addr()?).await?;
    ///     a.send_to(b"pk", b.local_addr()?).await?;
    ///     let mut storage = [0u8; 8];
    ///     let mut buf = ReadBuf::new(&mut storage);
    ///     std::future::poll_fn(|cx| b.poll_peek(cx, &mut buf)).await?;
    ///     let again = b.recv(&mut [0u8; 8]).await?; // still queued
    ///     Ok::<_, std::io::Error>((buf.filled().to_vec(), again))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"pk".to_vec(), 2));
    /// ```
    pub fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv_connected(cx, buf, libc::MSG_PEEK)
    }

    /// Waits for the next datagram from the connected peer and copies it
    /// (truncated to `buf`) without taking it; returns the copied length.
    ///
    /// # Errors
    ///
    /// `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     b.connect(a.local_addr()?).await?;
    ///     a.send_to(b"look", b.local_addr()?).await?;
    ///     let mut buf = [0u8; 8];
    ///     let peeked = b.peek(&mut buf).await?;
    ///     Ok::<_, std::io::Error>((peeked, b.recv(&mut buf).await?))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (4, 4));
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rb = ReadBuf::new(buf);
        let readiness = self.io.readiness();
        readiness.wait(|cx| self.poll_peek(cx, &mut rb)).await?;
        Ok(rb.filled().len())
    }

    /// One nonblocking peek at the next datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// rt.block_on(s.connect(s.local_addr().unwrap())).unwrap();
    /// assert_eq!(s.try_peek(&mut [0u8; 4]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// s.try_send(b"me").unwrap();
    /// assert_eq!(s.try_peek(&mut [0u8; 4]).unwrap(), 2);
    /// assert_eq!(s.try_recv(&mut [0u8; 4]).unwrap(), 2, "the peek left it queued");
    /// ```
    pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .readiness()
            .try_io(Direction::Read, || self.io.get_ref().peek(buf))
    }

    /// One nonblocking peek at the next datagram: its length (truncated to
    /// `buf`) and sender.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let me = s.local_addr().unwrap();
    /// s.try_send_to(b"pf", me).unwrap();
    /// assert_eq!(s.try_peek_from(&mut [0u8; 4]).unwrap(), (2, me));
    /// ```
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .readiness()
            .try_io(Direction::Read, || self.io.get_ref().peek_from(buf))
    }

    /// Polls for the sender of the next datagram, which stays queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UdpSocket;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     a.send_to(b"who", b.local_addr()?).await?;
    ///     let from = std::future::poll_fn(|cx| b.poll_peek_sender(cx)).await?;
    ///     Ok::<_, std::io::Error>(from == a.local_addr()?)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub fn poll_peek_sender(&self, cx: &mut Context<'_>) -> Poll<io::Result<SocketAddr>> {
        self.poll_recv_flags(cx, &mut ReadBuf::new(&mut []), libc::MSG_PEEK)
    }

    /// Waits for a datagram and returns its sender; the datagram stays
    /// queued.
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
    ///     let (a, b) = (UdpSocket::bind("127.0.0.1:0").await?, UdpSocket::bind("127.0.0.1:0").await?);
    ///     a.send_to(b"who", b.local_addr()?).await?;
    ///     let from = b.peek_sender().await?;
    ///     let (n, again) = b.recv_from(&mut [0u8; 8]).await?;
    ///     Ok::<_, std::io::Error>((from == a.local_addr()?, from == again, n))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (true, true, 3));
    /// ```
    pub async fn peek_sender(&self) -> io::Result<SocketAddr> {
        let readiness = self.io.readiness();
        readiness.wait(|cx| self.poll_peek_sender(cx)).await
    }

    /// One nonblocking look at the next datagram's sender.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let me = s.local_addr().unwrap();
    /// assert_eq!(s.try_peek_sender().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// s.try_send_to(b"x", me).unwrap();
    /// assert_eq!(s.try_peek_sender().unwrap(), me);
    /// ```
    pub fn try_peek_sender(&self) -> io::Result<SocketAddr> {
        self.io.readiness().try_io(Direction::Read, || {
            self.io.get_ref().peek_from(&mut []).map(|(_, from)| from)
        })
    }
}
