//! Socket options Tokio's socket types expose, by the same names: IP TTL,
//! linger and quick-ack on TCP sockets, and broadcast, TTL and multicast on
//! UDP ones (the std socket's own calls where it has them, else plain
//! `setsockopt`/`getsockopt` here, which `TcpSocket` shares). Anything else
//! goes through `AsFd` (`socket2::SockRef::from(&socket)`).

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::{TcpListener, TcpStream, UdpSocket};

/// Sets an `int` socket option.
pub(super) fn set_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the value is a live c_int of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads an `int` socket option.
pub(super) fn get_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut len) };
    if r == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets `SO_LINGER` (whole seconds).
pub(super) fn set_linger(fd: RawFd, linger: Option<Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: linger.is_some().into(),
        l_linger: linger.map_or(0, |d| d.as_secs().min(i32::MAX as u64) as libc::c_int),
    };
    // SAFETY: the value is a live `linger` of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const value).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads `SO_LINGER`.
pub(super) fn linger(fd: RawFd) -> io::Result<Option<Duration>> {
    // SAFETY: all-zero bytes are a valid `linger`.
    let mut value: libc::linger = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
}

impl TcpStream {
    /// The `IP_TTL` of outgoing packets.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// s.set_ttl(42).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 42);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Sets the `IP_TTL` of outgoing packets.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors (`InvalidInput` above 255).
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// assert!(s.set_ttl(256).is_err());
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `SO_LINGER`: how long the close waits for unsent data, if it does.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// assert_eq!(s.linger().unwrap(), None);
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        linger(self.as_raw_fd())
    }

    /// Sets `SO_LINGER`, as [`TcpSocket::set_linger`](super::TcpSocket::set_linger):
    /// a wait blocks the thread that closes the stream (often a shard);
    /// prefer [`set_zero_linger`](Self::set_zero_linger) or `None`.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// s.set_linger(None).unwrap();
    /// assert_eq!(s.linger().unwrap(), None);
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        set_linger(self.as_raw_fd(), linger)
    }

    /// Resets the connection when it is closed (`SO_LINGER` of 0), as
    /// Tokio's `set_zero_linger`.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// s.set_zero_linger().unwrap();
    /// assert_eq!(s.linger().unwrap(), Some(std::time::Duration::ZERO));
    /// ```
    pub fn set_zero_linger(&self) -> io::Result<()> {
        set_linger(self.as_raw_fd(), Some(Duration::ZERO))
    }

    /// Whether `TCP_QUICKACK` is on (acknowledgements sent at once).
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// s.set_quickack(true).unwrap();
    /// assert!(s.quickack().unwrap());
    /// ```
    pub fn quickack(&self) -> io::Result<bool> {
        get_int(self.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_QUICKACK).map(|v| v != 0)
    }

    /// Sets `TCP_QUICKACK` (the kernel may turn it off again later, as for
    /// Tokio's).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = ringlane::compat::TcpStream::from_std(s).unwrap();
    /// s.set_quickack(false).unwrap();
    /// ```
    pub fn set_quickack(&self, on: bool) -> io::Result<()> {
        set_int(
            self.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            on.into(),
        )
    }
}

impl TcpListener {
    /// The `IP_TTL` of the accepted connections' packets.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = ringlane::compat::TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    /// l.set_ttl(7).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 7);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Sets the `IP_TTL` the accepted connections inherit.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = ringlane::compat::TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert!(l.set_ttl(0).is_err());
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }
}

impl UdpSocket {
    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert!(!s.broadcast().unwrap());
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Sets `SO_BROADCAST`: whether datagrams may go to a broadcast
    /// address.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// s.set_broadcast(true).unwrap();
    /// assert!(s.broadcast().unwrap());
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// The `IP_TTL` of outgoing datagrams.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// s.set_ttl(9).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 9);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Sets the `IP_TTL` of outgoing datagrams.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert!(s.set_ttl(1000).is_err());
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// Whether multicast datagrams this socket sends loop back to the
    /// host (`IP_MULTICAST_LOOP`).
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    /// s.set_multicast_loop_v4(false).unwrap();
    /// assert!(!s.multicast_loop_v4().unwrap());
    /// ```
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.get_ref().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    /// s.set_multicast_loop_v4(true).unwrap();
    /// ```
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_multicast_loop_v4(on)
    }

    /// The TTL of multicast datagrams this socket sends
    /// (`IP_MULTICAST_TTL`).
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    /// s.set_multicast_ttl_v4(4).unwrap();
    /// assert_eq!(s.multicast_ttl_v4().unwrap(), 4);
    /// ```
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.get_ref().multicast_ttl_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    /// s.set_multicast_ttl_v4(1).unwrap();
    /// ```
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_multicast_ttl_v4(ttl)
    }

    /// Joins the IPv4 multicast group `group` on the interface with
    /// address `interface` (`0.0.0.0`: the kernel picks).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors, e.g. `InvalidInput` for an address that is
    /// not multicast.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    /// let not_multicast = s.join_multicast_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::UNSPECIFIED);
    /// assert!(not_multicast.is_err());
    /// ```
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().join_multicast_v4(&group, &interface)
    }

    /// Leaves an IPv4 multicast group joined with
    /// [`join_multicast_v4`](Self::join_multicast_v4).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors (`EADDRNOTAVAIL` for a group not joined).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// let s = ringlane::compat::UdpSocket::from_std(std::net::UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    /// let group = Ipv4Addr::new(239, 255, 0, 1);
    /// assert!(s.leave_multicast_v4(group, Ipv4Addr::UNSPECIFIED).is_err(), "never joined");
    /// ```
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v4(&group, &interface)
    }

    /// Joins the IPv6 multicast group `group` on interface index
    /// `interface` (0: the kernel picks).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// if let Ok(s) = std::net::UdpSocket::bind("[::1]:0").and_then(ringlane::compat::UdpSocket::from_std) {
    ///     assert!(s.join_multicast_v6(&Ipv6Addr::LOCALHOST, 0).is_err(), "not multicast");
    /// }
    /// ```
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group joined with
    /// [`join_multicast_v6`](Self::join_multicast_v6).
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// if let Ok(s) = std::net::UdpSocket::bind("[::1]:0").and_then(ringlane::compat::UdpSocket::from_std) {
    ///     let group = "ff02::1:3".parse::<Ipv6Addr>().unwrap();
    ///     assert!(s.leave_multicast_v6(&group, 0).is_err(), "never joined");
    /// }
    /// ```
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(group, interface)
    }
}
