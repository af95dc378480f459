//! Socket options Tokio's socket types expose, by the same names: IP TTL
//! on TCP sockets, and broadcast, TTL and multicast on UDP ones (each the
//! std socket's own call: plain `setsockopt`/`getsockopt`). Anything else
//! goes through `AsFd` (`socket2::SockRef::from(&socket)`).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{TcpListener, TcpStream, UdpSocket};

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
    /// let l = ringlane::compat::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
    /// let l = ringlane::compat::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
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
    /// let s = ringlane::compat::UdpSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
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
    /// if let Ok(s) = ringlane::compat::UdpSocket::bind("[::1]:0".parse().unwrap()) {
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
    /// if let Ok(s) = ringlane::compat::UdpSocket::bind("[::1]:0".parse().unwrap()) {
    ///     let group = "ff02::1:3".parse::<Ipv6Addr>().unwrap();
    ///     assert!(s.leave_multicast_v6(&group, 0).is_err(), "never joined");
    /// }
    /// ```
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.get_ref().leave_multicast_v6(group, interface)
    }
}
