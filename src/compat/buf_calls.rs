//! Tokio's `BufMut` calls (feature `bytes`): `try_read_buf` on the
//! streams, `recv_buf`, `recv_buf_from`, `try_recv_buf` and
//! `try_recv_buf_from` on the datagram sockets. Each receives into the
//! buffer's spare capacity (`chunk_mut`, growing a `BytesMut` as Tokio's
//! do) and advances the buffer by what the kernel wrote.
//!
//! Rule: the spare capacity is lent as a `ReadBuf` over uninitialized
//! memory, which only the kernel writes (or, for Unix datagrams, whose
//! sender address comes from std's call, zeroes first); the buffer is
//! advanced by exactly what the `ReadBuf` reports filled.

use std::io;
use std::os::fd::AsRawFd;

use bytes::BufMut;
use tokio::io::ReadBuf;

use std::task::{Context, Poll};

use super::readiness::{Direction, Readiness};
use super::stream::cvt;
use super::{TcpStream, UdpSocket, UnixDatagram, UnixStream};
use crate::native::net::addr::RawAddr;

/// `buf`'s spare capacity as a `ReadBuf` (nothing filled yet).
fn spare<B: BufMut>(buf: &mut B) -> ReadBuf<'_> {
    // SAFETY: the slice goes only to a `ReadBuf`, which never writes
    // uninitialized bytes into it (`as_uninit_slice_mut`'s contract).
    ReadBuf::uninit(unsafe { buf.chunk_mut().as_uninit_slice_mut() })
}

/// Runs `recv` on `buf`'s spare capacity and advances `buf` by what it
/// filled; returns that count and `recv`'s own result.
fn fill<B: BufMut, T>(
    buf: &mut B,
    recv: impl FnOnce(&mut ReadBuf<'_>) -> io::Result<T>,
) -> io::Result<(usize, T)> {
    let mut rb = spare(buf);
    let t = recv(&mut rb)?;
    let n = rb.filled().len();
    // SAFETY: the first `n` bytes of the spare capacity are initialized:
    // the `ReadBuf` over them reports them filled.
    unsafe { buf.advance_mut(n) };
    Ok((n, t))
}

/// Waits with `poll` (a receive into the `ReadBuf` it is lent, once
/// readable) on `buf`'s spare capacity and advances `buf` by what it
/// filled; returns that count and `poll`'s own result.
async fn fill_when_ready<B: BufMut, T>(
    buf: &mut B,
    r: &Readiness,
    mut poll: impl FnMut(&mut Context<'_>, &mut ReadBuf<'_>) -> Poll<io::Result<T>>,
) -> io::Result<(usize, T)> {
    let mut rb = spare(buf);
    let t = r.wait(|cx| poll(cx, &mut rb)).await?;
    let n = rb.filled().len();
    // SAFETY: as in `fill`: the `ReadBuf` reports `n` bytes filled.
    unsafe { buf.advance_mut(n) };
    Ok((n, t))
}

/// One `recvfrom(2)` on `fd` into `rb`'s unfilled part, recording the
/// sender in `from` if given; the bytes received are marked filled.
fn recv_raw(
    fd: std::os::fd::RawFd,
    rb: &mut ReadBuf<'_>,
    from: Option<&mut RawAddr>,
) -> io::Result<()> {
    // SAFETY: the unfilled part goes only to `recvfrom`, which writes
    // (never reads) it.
    let unfilled = unsafe { rb.unfilled_mut() };
    let (addr, len) = match from {
        Some(a) => (a.as_mut_ptr(), &raw mut a.len),
        None => (std::ptr::null_mut(), std::ptr::null_mut()),
    };
    // SAFETY: the buffer is valid for writes of its length; the address
    // storage, if any, for `*len` bytes.
    let n = cvt(unsafe {
        libc::recvfrom(
            fd,
            unfilled.as_mut_ptr().cast(),
            unfilled.len(),
            0,
            addr,
            len,
        )
    })?;
    // SAFETY: the kernel initialized `n` bytes of the unfilled part.
    unsafe { rb.assume_init(n) };
    rb.advance(n);
    Ok(())
}

/// One nonblocking receive on `fd` into `buf`'s spare capacity;
/// `WouldBlock` clears `r`'s read readiness.
fn try_recv_into<B: BufMut>(
    r: &Readiness,
    fd: std::os::fd::RawFd,
    buf: &mut B,
) -> io::Result<usize> {
    r.try_io(Direction::Read, || fill(buf, |rb| recv_raw(fd, rb, None)))
        .map(|(n, ())| n)
}

/// `try_read_buf` on a stream type.
macro_rules! stream_read_buf {
    ($ty:ty) => {
        impl $ty {
            /// One nonblocking read into `buf`'s spare capacity, advancing
            /// it (Tokio's `try_read_buf`; feature `bytes`). `WouldBlock`
            /// clears the read readiness.
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
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// b.try_write(b"bytes").unwrap();
            /// let mut buf = bytes::BytesMut::new();
            /// assert_eq!(a.try_read_buf(&mut buf).unwrap(), 5);
            /// assert_eq!(&buf[..], b"bytes");
            /// ```
            pub fn try_read_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
                let r = super::stream::sealed::Sealed::readiness(self);
                try_recv_into(r, self.as_raw_fd(), buf)
            }
        }
    };
}

stream_read_buf!(TcpStream);
stream_read_buf!(UnixStream);

impl UdpSocket {
    /// Receives one datagram from the connected peer into `buf`'s spare
    /// capacity, advancing it (Tokio's `recv_buf`; feature `bytes`).
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
    ///     a.send_to(b"dg", b.local_addr()?).await?;
    ///     let mut buf = Vec::with_capacity(16);
    ///     let n = b.recv_buf(&mut buf).await?;
    ///     Ok::<_, std::io::Error>((n, buf))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (2, b"dg".to_vec()));
    /// ```
    pub async fn recv_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        let mut rb = spare(buf);
        self.io
            .readiness()
            .wait(|cx| self.poll_recv(cx, &mut rb))
            .await?;
        let n = rb.filled().len();
        // SAFETY: as in `fill`: the `ReadBuf` reports `n` bytes filled.
        unsafe { buf.advance_mut(n) };
        Ok(n)
    }

    /// Receives one datagram into `buf`'s spare capacity, advancing it;
    /// gives the sender (Tokio's `recv_buf_from`; feature `bytes`).
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
    ///     a.send_to(b"from", b.local_addr()?).await?;
    ///     let mut buf = bytes::BytesMut::new();
    ///     let (n, from) = b.recv_buf_from(&mut buf).await?;
    ///     Ok::<_, std::io::Error>((n, from == a.local_addr()?, buf.to_vec()))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (4, true, b"from".to_vec()));
    /// ```
    pub async fn recv_buf_from<B: BufMut>(
        &self,
        buf: &mut B,
    ) -> io::Result<(usize, std::net::SocketAddr)> {
        let r = self.io.readiness();
        fill_when_ready(buf, r, |cx, rb| self.poll_recv_from(cx, rb)).await
    }

    /// One nonblocking receive from the connected peer into `buf`'s spare
    /// capacity (Tokio's `try_recv_buf`; feature `bytes`).
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let mut buf = bytes::BytesMut::new();
    /// assert_eq!(s.try_recv_buf(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_recv_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        try_recv_into(self.io.readiness(), self.as_raw_fd(), buf)
    }

    /// One nonblocking receive into `buf`'s spare capacity, with the
    /// sender (Tokio's `try_recv_buf_from`; feature `bytes`).
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
    /// s.try_send_to(b"me", me).unwrap();
    /// let mut buf = Vec::with_capacity(8);
    /// assert_eq!(s.try_recv_buf_from(&mut buf).unwrap(), (2, me));
    /// assert_eq!(buf, b"me");
    /// ```
    pub fn try_recv_buf_from<B: BufMut>(
        &self,
        buf: &mut B,
    ) -> io::Result<(usize, std::net::SocketAddr)> {
        let fd = self.as_raw_fd();
        self.io.readiness().try_io(Direction::Read, || {
            fill(buf, |rb| {
                let mut from = RawAddr::empty();
                recv_raw(fd, rb, Some(&mut from))?;
                from.parse_inet()
            })
        })
    }
}

impl UnixDatagram {
    /// Receives one datagram from the connected peer into `buf`'s spare
    /// capacity, advancing it (Tokio's `recv_buf`; feature `bytes`).
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
    /// a.try_send(b"unix").unwrap();
    /// let mut buf = bytes::BytesMut::new();
    /// let n = rt.block_on(b.recv_buf(&mut buf)).unwrap();
    /// assert_eq!((n, &buf[..]), (4, &b"unix"[..]));
    /// ```
    pub async fn recv_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        self.recv_buf_from(buf).await.map(|(n, _)| n)
    }

    /// Receives one datagram into `buf`'s spare capacity, advancing it;
    /// gives the sender (Tokio's `recv_buf_from`; feature `bytes`).
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
    /// a.try_send(b"who").unwrap();
    /// let mut buf = Vec::with_capacity(8);
    /// let (n, from) = rt.block_on(b.recv_buf_from(&mut buf)).unwrap();
    /// assert!(n == 3 && from.is_unnamed() && buf == b"who");
    /// ```
    pub async fn recv_buf_from<B: BufMut>(
        &self,
        buf: &mut B,
    ) -> io::Result<(usize, tokio::net::unix::SocketAddr)> {
        let r = self.io.readiness();
        fill_when_ready(buf, r, |cx, rb| self.poll_recv_from(cx, rb)).await
    }

    /// One nonblocking receive from the connected peer into `buf`'s spare
    /// capacity (Tokio's `try_recv_buf`; feature `bytes`).
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recv(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// let mut buf = bytes::BytesMut::new();
    /// assert_eq!(b.try_recv_buf(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_recv_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        try_recv_into(self.io.readiness(), self.as_raw_fd(), buf)
    }

    /// One nonblocking receive into `buf`'s spare capacity, with the
    /// sender (Tokio's `try_recv_buf_from`; feature `bytes`). The spare
    /// capacity is zeroed first: std's call gives the sender's address.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if no datagram is queued; other `recvfrom(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = ringlane::compat::UnixDatagram::pair().unwrap();
    /// a.try_send(b"tb").unwrap();
    /// let mut buf = bytes::BytesMut::new();
    /// let (n, from) = b.try_recv_buf_from(&mut buf).unwrap();
    /// assert!(n == 2 && from.is_unnamed() && &buf[..] == b"tb");
    /// ```
    pub fn try_recv_buf_from<B: BufMut>(
        &self,
        buf: &mut B,
    ) -> io::Result<(usize, tokio::net::unix::SocketAddr)> {
        let s = self.io.get_ref();
        self.io.readiness().try_io(Direction::Read, || {
            fill(buf, |rb| {
                let (n, from) = s.recv_from(rb.initialize_unfilled())?;
                rb.advance(n);
                Ok(from.into())
            })
        })
    }
}
