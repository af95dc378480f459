//! Unix domain stream sockets over io_uring.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::addr::RawAddr;
use super::socket::Socket;
use crate::native::{IoBuf, IoBufMut};

/// A Unix stream listener; `accept` is an io_uring op.
///
/// # Examples
///
/// ```
/// use ringlane::native::net::{UnixListener, UnixStream};
/// let dir = std::env::temp_dir().join(format!("ringlane-doc-unix-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("s.sock");
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = path.clone();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let l = UnixListener::bind(&p)?;
///     let c = ringlane::spawn_local(async move {
///         UnixStream::connect(&p).await?.write_all(b"unix".to_vec()).await.0
///     })?;
///     let conn = l.accept().await?;
///     let (n, buf) = conn.read(Vec::with_capacity(8)).await;
///     c.await.unwrap()?;
///     Ok::<_, std::io::Error>(buf[..n?].to_vec())
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"unix");
/// std::fs::remove_dir_all(dir).unwrap();
/// ```
#[derive(Debug)]
pub struct UnixListener {
    socket: Socket,
}

impl UnixListener {
    /// Binds and listens at `path` (immediate syscalls).
    ///
    /// # Errors
    ///
    /// `bind(2)` errors, e.g. `AddrInUse` if the path exists.
    ///
    /// # Examples
    ///
    /// See [`UnixListener`].
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        let l = std::os::unix::net::UnixListener::bind(path)?;
        Ok(Self {
            socket: Socket::from_owned(OwnedFd::from(l)),
        })
    }

    /// Waits for a connection; a connection accepted after the future was
    /// dropped is closed.
    ///
    /// # Examples
    ///
    /// See [`UnixListener`].
    pub async fn accept(&self) -> io::Result<UnixStream> {
        let (socket, _addr) = self.socket.accept().await?;
        Ok(UnixStream { socket })
    }
}

/// A Unix stream connection.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (a, b) = ringlane::native::net::UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     a.write_all(b"hey".to_vec()).await.0.unwrap();
///     let (n, buf) = b.read(vec![0u8; 8]).await;
///     buf[..n.unwrap()].to_vec()
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), b"hey");
/// ```
#[derive(Debug)]
pub struct UnixStream {
    socket: Socket,
}

impl UnixStream {
    /// Multishot receive into a provided-buffer ring (opt-in): one SQE
    /// keeps receiving, each chunk in a buffer the kernel picks from `ring`
    /// only when data arrives, so an idle connection holds no buffer. The
    /// stream ends at end of file. Poll it on `ring`'s shard.
    ///
    /// # Examples
    ///
    /// See [`BufRing`](crate::native::fixed::BufRing).
    pub fn recv_multi(&self, ring: &crate::native::fixed::BufRing) -> super::RecvMulti {
        self.socket.recv_multi(ring)
    }

    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `connect(2)` errors; `InvalidInput` for a path that does not fit.
    ///
    /// # Examples
    ///
    /// See [`UnixListener`].
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        let addr = RawAddr::from_unix(path.as_ref())?;
        let socket = Socket::open(libc::AF_UNIX, libc::SOCK_STREAM).await?;
        socket.connect(addr).await?;
        Ok(Self { socket })
    }

    /// A connected pair (`socketpair(2)`).
    ///
    /// # Examples
    ///
    /// See [`UnixStream`].
    pub fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((Self::from_std(a), Self::from_std(b)))
    }

    /// Wraps a connected std stream (left in blocking mode).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let _ = ringlane::native::net::UnixStream::from_std(a);
    /// ```
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> Self {
        let _ = stream.set_nonblocking(false);
        Self {
            socket: Socket::from_owned(OwnedFd::from(stream)),
        }
    }

    /// As [`TcpStream::read`](super::TcpStream::read).
    ///
    /// # Examples
    ///
    /// See [`UnixStream`].
    pub async fn read<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.recv(buf).await
    }

    /// As [`TcpStream::write`](super::TcpStream::write).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::native::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move { a.write(vec![1u8; 3]).await.0.unwrap() }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 3);
    /// ```
    pub async fn write<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.socket.send(buf).await
    }

    /// As [`TcpStream::write_all`](super::TcpStream::write_all).
    ///
    /// # Examples
    ///
    /// See [`UnixStream`].
    pub async fn write_all<B: IoBuf>(&self, buf: B) -> (io::Result<()>, B) {
        self.socket.send_all(buf).await
    }

    /// As [`TcpStream::shutdown`](super::TcpStream::shutdown).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::native::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     a.shutdown(std::net::Shutdown::Write).await.unwrap();
    ///     b.read(vec![0u8; 8]).await.0.unwrap() // end of stream
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 0);
    /// ```
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.socket.shutdown(how).await
    }

    /// Closes the socket with `IORING_OP_CLOSE` (dropping also closes it).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = ringlane::native::net::UnixStream::pair().unwrap();
    /// rt.block_on(rt.handle().spawn_pinned(0, a.close()).unwrap()).unwrap().unwrap();
    /// ```
    pub async fn close(self) -> io::Result<()> {
        self.socket.close().await
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.raw()
    }
}

impl UnixStream {
    /// The socket's fd, for the compat lane.
    pub(crate) fn into_owned_fd(self) -> io::Result<OwnedFd> {
        self.socket.into_owned_fd()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.raw()
    }
}
