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
    /// Binds and listens at `path` (immediate syscalls). A path starting
    /// with a NUL byte names an abstract socket (Linux), as in Tokio.
    ///
    /// # Errors
    ///
    /// `bind(2)` errors, e.g. `AddrInUse` if the path exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::UnixListener;
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-bind-{}.sock", std::process::id()));
    /// let l = UnixListener::bind(&path).unwrap();
    /// let again = UnixListener::bind(&path).unwrap_err();
    /// assert_eq!(again.kind(), std::io::ErrorKind::AddrInUse);
    /// drop(l);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        let l = super::addr::bind_unix_listener(path.as_ref())?;
        Ok(Self {
            socket: Socket::from_owned(OwnedFd::from(l)),
        })
    }

    /// Waits for a connection; a connection accepted after the future was
    /// dropped is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::net::{UnixListener, UnixStream};
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-accept-{}.sock", std::process::id()));
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let l = UnixListener::bind(&p)?;
    ///     let client = UnixStream::connect(&p).await?;
    ///     let conn = l.accept().await?;
    ///     conn.write_all(b"welcome".to_vec()).await.0?;
    ///     let (n, buf) = client.read(vec![0u8; 16]).await;
    ///     Ok::<_, std::io::Error>(buf[..n?].to_vec())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"welcome");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
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
    /// stream ends at end of file. Poll it on `ring`'s shard. Dropping the
    /// stream discards what it received but was not taken: keep one per
    /// connection ([`RecvMulti`](super::RecvMulti), "Cancellation").
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::BufRing, net::UnixStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let ring = BufRing::new(4, 64)?; // one ring for both streams
    ///     let ((a1, b1), (a2, b2)) = (UnixStream::pair()?, UnixStream::pair()?);
    ///     a1.write_all(b"one".to_vec()).await.0?;
    ///     a2.write_all(b"two".to_vec()).await.0?;
    ///     let (mut s1, mut s2) = (b1.recv_multi(&ring), b2.recv_multi(&ring));
    ///     let one = s1.next().await.transpose()?.map(|c| c.to_vec());
    ///     let two = s2.next().await.transpose()?.map(|c| c.to_vec());
    ///     Ok::<_, std::io::Error>((one, two))
    /// }).unwrap();
    /// match rt.block_on(j).unwrap() {
    ///     Ok(got) => assert_eq!(got, (Some(b"one".to_vec()), Some(b"two".to_vec()))),
    ///     // Before Linux 6.0 the kernel refuses the buffer ring (5.18) or the
    ///     // multishot receive (5.19) with `EINVAL`.
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
    /// }
    /// ```
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
    /// ```
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-connect-{}.sock", std::process::id()));
    /// let server = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let s = ringlane::native::net::UnixStream::connect(&p).await?;
    ///     s.write_all(b"hello".to_vec()).await.0
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// let mut got = [0u8; 5];
    /// std::io::Read::read_exact(&mut server.accept().unwrap().0, &mut got).unwrap();
    /// assert_eq!(&got, b"hello");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
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
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::native::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     // Both ends can send.
    ///     a.write_all(b"ping".to_vec()).await.0?;
    ///     b.write_all(b"pong".to_vec()).await.0?;
    ///     let (n, at_b) = b.read(vec![0u8; 8]).await;
    ///     let at_b = at_b[..n?].to_vec();
    ///     let (n, at_a) = a.read(vec![0u8; 8]).await;
    ///     Ok::<_, std::io::Error>((at_b, at_a[..n?].to_vec()))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"ping".to_vec(), b"pong".to_vec()));
    /// ```
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
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = ringlane::native::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     a.write_all(b"abcdef".to_vec()).await.0?;
    ///     // At most the capacity: the rest waits for the next read.
    ///     let (n, first) = b.read(Vec::with_capacity(4)).await;
    ///     let first = first[..n?].to_vec();
    ///     let (n, rest) = b.read(Vec::with_capacity(16)).await;
    ///     Ok::<_, std::io::Error>((first, rest[..n?].to_vec()))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (b"abcd".to_vec(), b"ef".to_vec()));
    /// ```
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
    /// ```
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let reader = std::thread::spawn(move || std::io::Read::read_to_end(&mut b, &mut Vec::new()));
    /// let a = ringlane::native::net::UnixStream::from_std(a);
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (r, buf) = a.write_all(vec![7u8; 1 << 20]).await;
    ///     drop(a); // end of file for the reader
    ///     r.map(|()| buf.len())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 1 << 20);
    /// assert_eq!(reader.join().unwrap().unwrap(), 1 << 20);
    /// ```
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
