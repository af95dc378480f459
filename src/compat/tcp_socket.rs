//! `TcpSocket`, Tokio's socket set up before it listens or connects: the
//! way to `SO_REUSEPORT` (one listener per shard on the same port, the
//! kernel spreading connections across them), buffer sizes and keep-alive
//! without `socket2`.
//!
//! The socket is made nonblocking and close-on-exec. `listen` hands it to
//! a [`TcpListener`]; `connect` starts a nonblocking connect and waits for
//! it through the compat lane's readiness, as Tokio's does: on a shard, in
//! `block_on` or on a pool thread (a Tokio task needs the runtime entered,
//! `Handle::enter`, as for any compat socket it makes).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{TcpListener, TcpStream, sock_opts};
use crate::native::net::addr::{RawAddr, inet_name};

/// A TCP socket not yet listening or connected, as `tokio::net::TcpSocket`.
///
/// # Examples
///
/// ```
/// use ringlane::compat::TcpSocket;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let socket = TcpSocket::new_v4()?;
///     socket.set_reuseport(true)?;
///     socket.bind("127.0.0.1:0".parse().unwrap())?;
///     let listener = socket.listen(128)?;
///     let client = TcpSocket::new_v4()?.connect(listener.local_addr()?).await?;
///     let (_conn, peer) = listener.accept().await?;
///     Ok::<_, std::io::Error>(peer == client.local_addr()?)
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap().unwrap());
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    fd: OwnedFd,
}

impl TcpSocket {
    fn new(domain: libc::c_int) -> io::Result<Self> {
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: plain socket creation; the result is checked.
        let fd = unsafe { libc::socket(domain, ty, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` is new and owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// A new IPv4 TCP socket.
    ///
    /// # Errors
    ///
    /// `socket(2)` errors (`EMFILE`).
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert!(!socket.reuseaddr().unwrap());
    /// ```
    pub fn new_v4() -> io::Result<Self> {
        Self::new(libc::AF_INET)
    }

    /// A new IPv6 TCP socket.
    ///
    /// # Errors
    ///
    /// `socket(2)` errors (`EAFNOSUPPORT` without IPv6).
    ///
    /// # Examples
    ///
    /// ```
    /// // (where the machine has IPv6 and a loopback address for it)
    /// if let Ok(socket) = ringlane::compat::TcpSocket::new_v6() {
    ///     if socket.bind("[::1]:0".parse().unwrap()).is_ok() {
    ///         assert!(socket.local_addr().unwrap().is_ipv6());
    ///     }
    /// }
    /// ```
    pub fn new_v6() -> io::Result<Self> {
        Self::new(libc::AF_INET6)
    }

    fn set_opt(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        sock_opts::set_int(self.fd.as_raw_fd(), level, name, value)
    }

    fn get_opt(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        sock_opts::get_int(self.fd.as_raw_fd(), level, name)
    }

    /// Sets `SO_REUSEADDR`: bind to an address in `TIME_WAIT` (as
    /// [`TcpListener::bind`] does).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_reuseaddr(true).unwrap();
    /// assert!(socket.reuseaddr().unwrap());
    /// ```
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.set_opt(libc::SOL_SOCKET, libc::SO_REUSEADDR, on.into())
    }

    /// Whether `SO_REUSEADDR` is set.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert!(!socket.reuseaddr().unwrap());
    /// ```
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.get_opt(libc::SOL_SOCKET, libc::SO_REUSEADDR)
            .map(|v| v != 0)
    }

    /// Sets `SO_REUSEPORT`: several sockets (one per shard, say) may bind
    /// and listen on the same address, and the kernel spreads incoming
    /// connections across them.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::compat::TcpSocket;
    /// let a = TcpSocket::new_v4().unwrap();
    /// a.set_reuseport(true).unwrap();
    /// a.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = a.local_addr().unwrap();
    /// let b = TcpSocket::new_v4().unwrap();
    /// b.set_reuseport(true).unwrap();
    /// b.bind(addr).unwrap(); // the same port, both listening
    /// let (_a, _b) = (a.listen(16).unwrap(), b.listen(16).unwrap());
    /// ```
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.set_opt(libc::SOL_SOCKET, libc::SO_REUSEPORT, on.into())
    }

    /// Whether `SO_REUSEPORT` is set.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_reuseport(true).unwrap();
    /// assert!(socket.reuseport().unwrap());
    /// ```
    pub fn reuseport(&self) -> io::Result<bool> {
        self.get_opt(libc::SOL_SOCKET, libc::SO_REUSEPORT)
            .map(|v| v != 0)
    }

    /// Sets `SO_KEEPALIVE`.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_keepalive(true).unwrap();
    /// assert!(socket.keepalive().unwrap());
    /// ```
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.set_opt(libc::SOL_SOCKET, libc::SO_KEEPALIVE, on.into())
    }

    /// Whether `SO_KEEPALIVE` is set.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert!(!socket.keepalive().unwrap());
    /// ```
    pub fn keepalive(&self) -> io::Result<bool> {
        self.get_opt(libc::SOL_SOCKET, libc::SO_KEEPALIVE)
            .map(|v| v != 0)
    }

    /// Sets `TCP_NODELAY` (the connected stream keeps it).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_nodelay(true).unwrap();
    /// assert!(socket.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.set_opt(libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert!(!socket.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.get_opt(libc::IPPROTO_TCP, libc::TCP_NODELAY)
            .map(|v| v != 0)
    }

    /// Asks for a send buffer of `size` bytes (`SO_SNDBUF`; the kernel
    /// doubles it and applies its limits).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors (a size past the kernel's limit is clamped
    /// to it, not refused).
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_send_buffer_size(64 * 1024).unwrap();
    /// assert!(socket.send_buffer_size().unwrap() >= 64 * 1024);
    /// ```
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.set_opt(libc::SOL_SOCKET, libc::SO_SNDBUF, to_c_int(size))
    }

    /// The send buffer's size (`SO_SNDBUF`).
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert!(socket.send_buffer_size().unwrap() > 0);
    /// ```
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.get_opt(libc::SOL_SOCKET, libc::SO_SNDBUF)
            .map(|v| v.max(0) as u32)
    }

    /// Asks for a receive buffer of `size` bytes (`SO_RCVBUF`).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors (a size past the kernel's limit is clamped
    /// to it, not refused).
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_recv_buffer_size(64 * 1024).unwrap();
    /// assert!(socket.recv_buffer_size().unwrap() >= 64 * 1024);
    /// ```
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.set_opt(libc::SOL_SOCKET, libc::SO_RCVBUF, to_c_int(size))
    }

    /// The receive buffer's size (`SO_RCVBUF`).
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert!(socket.recv_buffer_size().unwrap() > 0);
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.get_opt(libc::SOL_SOCKET, libc::SO_RCVBUF)
            .map(|v| v.max(0) as u32)
    }

    /// Sets `SO_LINGER`: `Some(d)` makes the final close wait up to `d`
    /// (whole seconds: less than one is 0) for unsent data, `Some(0)`
    /// resets the connection at once, `None` turns it off. A wait blocks
    /// the thread that closes the socket, often a shard with all its
    /// tasks: Tokio deprecates this for that reason; prefer `None` or
    /// [`set_zero_linger`](Self::set_zero_linger).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_linger(Some(Duration::from_secs(2))).unwrap();
    /// assert_eq!(socket.linger().unwrap(), Some(Duration::from_secs(2)));
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        sock_opts::set_linger(self.fd.as_raw_fd(), linger)
    }

    /// Resets the connection when it is closed (`SO_LINGER` of 0, as
    /// Tokio's `set_zero_linger`): unsent data is dropped, the peer gets a
    /// reset, and the address leaves no `TIME_WAIT` behind.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.set_zero_linger().unwrap();
    /// assert_eq!(socket.linger().unwrap(), Some(std::time::Duration::ZERO));
    /// ```
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.set_linger(Some(Duration::ZERO))
    }

    /// `SO_LINGER`: how long a close waits for unsent data, if it does.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert_eq!(socket.linger().unwrap(), None);
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        sock_opts::linger(self.fd.as_raw_fd())
    }

    /// Binds the socket to `addr`.
    ///
    /// # Errors
    ///
    /// `bind(2)` errors: `AddrInUse`, `AddrNotAvailable`; for an address
    /// of the other family `EAFNOSUPPORT` (an IPv4 socket) or `EINVAL`.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_ne!(socket.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        let raw = RawAddr::from_inet(addr);
        // SAFETY: `raw` is a valid sockaddr of `raw.len` bytes.
        let r = unsafe { libc::bind(self.fd.as_raw_fd(), raw.as_ptr(), raw.len) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The address the socket is bound to.
    ///
    /// # Errors
    ///
    /// `getsockname(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert!(socket.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet_name(self.fd.as_raw_fd(), false)
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
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// assert!(socket.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = self.get_opt(libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }

    /// Listens, with a queue of `backlog` connections, and gives the
    /// listener (its home is picked as [`TcpListener::from_std`]'s).
    ///
    /// # Errors
    ///
    /// `listen(2)` errors (a backlog past the kernel's `somaxconn` is
    /// clamped to it, as Tokio's).
    ///
    /// # Examples
    ///
    /// ```
    /// let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    /// socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let listener = socket.listen(1024).unwrap();
    /// assert!(std::net::TcpStream::connect(listener.local_addr().unwrap()).is_ok());
    /// ```
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        let backlog = to_c_int(backlog);
        // SAFETY: plain syscall on our own fd.
        if unsafe { libc::listen(self.fd.as_raw_fd(), backlog) } != 0 {
            return Err(io::Error::last_os_error());
        }
        TcpListener::from_std(std::net::TcpListener::from(self.fd))
    }

    /// Connects to `addr` (nonblocking, then waits until the handshake
    /// ends) and gives the stream, as Tokio's `TcpSocket::connect`.
    ///
    /// # Errors
    ///
    /// `connect(2)` errors, e.g. `ConnectionRefused`; for an address of
    /// the other family `EAFNOSUPPORT` (an IPv4 socket) or `EINVAL`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let s = rt.block_on(async {
    ///     let socket = ringlane::compat::TcpSocket::new_v4()?;
    ///     socket.set_nodelay(true)?;
    ///     socket.connect(addr).await
    /// }).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), addr);
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        // A socket from `from_std_stream` or `from_raw_fd` may block: its
        // connect would stall the shard.
        set_nonblocking(self.fd.as_raw_fd())?;
        let raw = RawAddr::from_inet(addr);
        // SAFETY: `raw` is a valid sockaddr of `raw.len` bytes.
        let r = unsafe { libc::connect(self.fd.as_raw_fd(), raw.as_ptr(), raw.len) };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
        }
        // A connect still in progress starts not writable (see
        // `TcpStream::from_std`): the wait below ends with the handshake.
        let stream = TcpStream::from_std(std::net::TcpStream::from(self.fd))?;
        stream.writable().await?;
        match stream.take_error()? {
            Some(e) => Err(e),
            None => Ok(stream),
        }
    }

    /// Wraps a std stream's socket (to set options on it), as Tokio's
    /// `TcpSocket::from_std_stream`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let socket = ringlane::compat::TcpSocket::from_std_stream(s);
    /// socket.set_keepalive(true).unwrap();
    /// ```
    pub fn from_std_stream(stream: std::net::TcpStream) -> TcpSocket {
        TcpSocket {
            fd: OwnedFd::from(stream),
        }
    }
}

/// Sets `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl calls on an fd the caller owns.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A size or count as the kernel's `int`, clamped to `i32::MAX` as
/// Tokio's (the kernel clamps it further to its own limits).
fn to_c_int(n: u32) -> libc::c_int {
    libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX)
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl IntoRawFd for TcpSocket {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl FromRawFd for TcpSocket {
    /// # Safety
    ///
    /// `fd` must be an open TCP socket owned by nobody else.
    unsafe fn from_raw_fd(fd: RawFd) -> TcpSocket {
        TcpSocket {
            // SAFETY: as the caller promises.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        }
    }
}
