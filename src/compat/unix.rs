//! `UnixStream` and `UnixListener` of the compat lane.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::async_fd::AsyncFd;
use super::readiness::{Direction, Readiness};
use super::stream::{self, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};

/// A Unix stream implementing `tokio::io::AsyncRead`/`AsyncWrite`.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (mut a, mut b) = ringlane::compat::UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     a.write_all(b"unix").await.unwrap();
///     let mut got = [0u8; 4];
///     b.read_exact(&mut got).await.unwrap();
///     got
/// }).unwrap();
/// assert_eq!(&rt.block_on(j).unwrap(), b"unix");
/// ```
#[derive(Debug)]
pub struct UnixStream {
    pub(super) io: AsyncFd<std::os::unix::net::UnixStream>,
}

impl stream::sealed::Sealed for UnixStream {
    fn readiness(&self) -> &Readiness {
        self.io.readiness()
    }
    fn fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl stream::CompatStream for UnixStream {}
stream::compat_stream_io!(UnixStream);
#[cfg(feature = "futures-io")]
stream::compat_stream_futures_io!(UnixStream);

impl UnixStream {
    /// Connects to the socket at `path` (the native lane's connect, then
    /// nonblocking). Off the shards, where the runtime is current, the
    /// connect runs on the next shard in turn, as
    /// [`TcpStream::connect`](super::TcpStream::connect)'s.
    ///
    /// # Errors
    ///
    /// `connect(2)` errors; `InvalidInput` for a path that does not fit.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-cconnect-{}.sock", std::process::id()));
    /// let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut s = ringlane::compat::UnixStream::connect(&p).await?;
    ///     s.write_all(b"hello").await
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// let mut got = String::new();
    /// std::io::Read::read_to_string(&mut l.accept().unwrap().0, &mut got).unwrap();
    /// assert_eq!(got, "hello");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_owned();
        super::on_a_shard(async move {
            crate::native::net::UnixStream::connect(path)
                .await?
                .into_compat()
        })
        .await
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
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (mut a, mut b) = ringlane::compat::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     a.write_all(b"to b").await?;
    ///     b.write_all(b"to a").await?;
    ///     let (mut at_b, mut at_a) = ([0u8; 4], [0u8; 4]);
    ///     b.read_exact(&mut at_b).await?;
    ///     a.read_exact(&mut at_a).await?;
    ///     Ok::<_, std::io::Error>((at_b, at_a))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (*b"to b", *b"to a"));
    /// ```
    pub fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((Self::from_std(a)?, Self::from_std(b)?))
    }

    /// Wraps a connected std stream, switching it to nonblocking mode.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// assert!(ringlane::compat::UnixStream::from_std(a).is_ok());
    /// ```
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            io: AsyncFd::syscall_first(stream),
        })
    }

    /// Borrowed halves (see [`TcpStream::split`](super::TcpStream::split)).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (mut a, mut b) = ringlane::compat::UnixStream::pair()?;
    ///     let (mut r, mut w) = a.split();
    ///     w.write_all(b"ping").await?;
    ///     let mut got = [0u8; 4];
    ///     b.read_exact(&mut got).await?;
    ///     b.write_all(b"pong").await?;
    ///     r.read_exact(&mut got).await?;
    ///     Ok::<_, std::io::Error>(got)
    /// }).unwrap();
    /// assert_eq!(&rt.block_on(j).unwrap().unwrap(), b"pong");
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_, Self>, WriteHalf<'_, Self>) {
        (ReadHalf(self), WriteHalf(self))
    }

    /// Owned halves (see [`TcpStream::into_split`](super::TcpStream::into_split)).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let (a, mut b) = ringlane::compat::UnixStream::pair()?;
    ///     let (mut r, mut w) = a.into_split();
    ///     // The write half moves into a task of its own.
    ///     let writer = ringlane::spawn_local(async move { w.write_all(b"hi").await })
    ///         .unwrap();
    ///     let mut got = [0u8; 2];
    ///     b.read_exact(&mut got).await?;
    ///     writer.await.unwrap()?;
    ///     b.write_all(b"yo").await?;
    ///     let mut back = [0u8; 2];
    ///     r.read_exact(&mut back).await?;
    ///     Ok::<_, std::io::Error>((got, back))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (*b"hi", *b"yo"));
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf<Self>, OwnedWriteHalf<Self>) {
        let me = Arc::new(self);
        (OwnedReadHalf(me.clone()), OwnedWriteHalf(me))
    }

    /// The local address (unnamed for a client or a `pair` end).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<tokio::net::unix::SocketAddr> {
        self.io.get_ref().local_addr().map(Into::into)
    }

    /// The peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-upeer-{}.sock", std::process::id()));
    /// let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    /// let s = ringlane::compat::UnixStream::from_std(s).unwrap();
    /// assert_eq!(s.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// drop(l);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn peer_addr(&self) -> io::Result<tokio::net::unix::SocketAddr> {
        self.io.get_ref().peer_addr().map(Into::into)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// assert!(a.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Moves the socket to the native lane, back in blocking mode.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// assert!(a.into_native().is_ok());
    /// ```
    pub fn into_native(self) -> io::Result<crate::native::net::UnixStream> {
        let std = self.io.into_inner();
        std.set_nonblocking(false)?;
        Ok(crate::native::net::UnixStream::from_std(std))
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

/// A Unix stream listener whose `accept` waits on the shard's ring.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let dir = std::env::temp_dir().join(format!("ringlane-doc-cunix-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("s.sock");
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let p = path.clone();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let l = ringlane::compat::UnixListener::bind(&p)?;
///     let c = ringlane::spawn_local(async move {
///         ringlane::compat::UnixStream::connect(&p).await?.write_all(b"hey").await
///     })?;
///     let (mut conn, _peer) = l.accept().await?;
///     let mut got = Vec::new();
///     conn.read_to_end(&mut got).await?;
///     c.await.unwrap()?;
///     Ok::<_, std::io::Error>(got)
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"hey");
/// std::fs::remove_dir_all(dir).unwrap();
/// ```
#[derive(Debug)]
pub struct UnixListener {
    pub(super) io: AsyncFd<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds and listens at `path` (nonblocking). A path starting with a
    /// NUL byte names an abstract socket (Linux), as in Tokio.
    ///
    /// # Errors
    ///
    /// `bind(2)` errors, e.g. `AddrInUse`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::UnixListener;
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-cbind-{}.sock", std::process::id()));
    /// let l = UnixListener::bind(&path).unwrap();
    /// assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
    /// let again = UnixListener::bind(&path).unwrap_err();
    /// assert_eq!(again.kind(), std::io::ErrorKind::AddrInUse);
    /// drop(l);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        let l = crate::native::net::addr::bind_unix_listener(path.as_ref())?;
        l.set_nonblocking(true)?;
        Ok(Self {
            io: AsyncFd::syscall_first(l),
        })
    }

    /// Wraps a listening std socket, switching it to nonblocking mode (as
    /// `tokio::net::UnixListener::from_std` expects it to be already): for
    /// sockets handed over by systemd or a parent process.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-cl-std-{}.sock", std::process::id()));
    /// let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let l = ringlane::compat::UnixListener::from_std(l).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            io: AsyncFd::syscall_first(listener),
        })
    }

    /// Polls for a connection; gives the stream and its peer's address.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-cpollaccept-{}.sock", std::process::id()));
    /// let l = ringlane::compat::UnixListener::bind(&path).unwrap();
    /// let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (mut conn, _peer) = std::future::poll_fn(|cx| l.poll_accept(cx)).await?;
    ///     conn.write_all(b"hi").await
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// let mut got = [0u8; 2];
    /// std::io::Read::read_exact(&mut client, &mut got).unwrap();
    /// assert_eq!(&got, b"hi");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(UnixStream, tokio::net::unix::SocketAddr)>> {
        let fd = self.io.as_raw_fd();
        let home = self.io.readiness().home();
        self.io.readiness().poll_io(Direction::Read, cx, || {
            // SAFETY: null address pointers are allowed; the flags are valid.
            let new = unsafe {
                libc::accept4(
                    fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if new < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: accept4 just created `new` for us.
            let std = std::os::unix::net::UnixStream::from(unsafe { OwnedFd::from_raw_fd(new) });
            // The peer's name, as Tokio's `accept` gives it (std has no
            // way to build one from `accept4`'s raw address).
            let peer = std.peer_addr()?;
            Ok((
                UnixStream {
                    io: AsyncFd::with_home(std, home.clone()),
                },
                peer.into(),
            ))
        })
    }

    /// Waits for a connection; gives the stream and its peer's address,
    /// as Tokio's `UnixListener::accept`.
    ///
    /// # Errors
    ///
    /// `accept4(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncReadExt;
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-caccept-{}.sock", std::process::id()));
    /// let l = ringlane::compat::UnixListener::bind(&path).unwrap();
    /// let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    /// std::io::Write::write_all(&mut client, b"sup").unwrap();
    /// drop(client);
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let (mut conn, peer) = l.accept().await?;
    ///     assert!(peer.is_unnamed()); // the client did not bind a name
    ///     let mut got = Vec::new();
    ///     conn.read_to_end(&mut got).await?;
    ///     Ok::<_, std::io::Error>(got)
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"sup");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub async fn accept(&self) -> io::Result<(UnixStream, tokio::net::unix::SocketAddr)> {
        self.io.readiness().wait(|cx| self.poll_accept(cx)).await
    }

    /// The address it listens at.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-ulocal-{}.sock", std::process::id()));
    /// let l = ringlane::compat::UnixListener::bind(&path).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// drop(l);
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<tokio::net::unix::SocketAddr> {
        self.io.get_ref().local_addr().map(Into::into)
    }
}

impl crate::native::net::UnixStream {
    /// Moves the socket to the compat lane, in nonblocking mode.
    ///
    /// # Errors
    ///
    /// If the mode cannot be set or the fd duplicated.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::native::net::UnixStream::pair().unwrap();
    /// assert!(a.into_compat().is_ok());
    /// ```
    pub fn into_compat(self) -> io::Result<UnixStream> {
        let fd = self.into_owned_fd()?;
        // SAFETY: we own `fd`, a Unix stream socket.
        let std = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd.into_raw_fd()) };
        UnixStream::from_std(std)
    }
}

/// The listening socket's fd.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsRawFd;
/// let path = std::env::temp_dir().join(format!("ringlane-doc-cl-raw-{}.sock", std::process::id()));
/// let l = ringlane::compat::UnixListener::bind(&path).unwrap();
/// assert!(l.as_raw_fd() >= 0);
/// std::fs::remove_file(&path).unwrap();
/// ```
impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}
