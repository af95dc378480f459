//! Socket addresses in the kernel's layout, stored inline in an op's
//! resources so the SQE can point at them (op invariant 2).

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A `sockaddr_storage` with its used length.
#[derive(Clone, Copy)]
pub(crate) struct RawAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl RawAddr {
    /// Room for any address the kernel may write (accept, recvmsg).
    pub(crate) fn empty() -> Self {
        // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
        let storage = unsafe { mem::zeroed() };
        Self {
            storage,
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn from_inet(addr: SocketAddr) -> Self {
        let mut raw = Self::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: `sockaddr_storage` is larger than and aligned for
                // `sockaddr_in`.
                unsafe { std::ptr::write(raw.as_mut_ptr().cast(), sin) };
                raw.len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for `sockaddr_in6`.
                unsafe { std::ptr::write(raw.as_mut_ptr().cast(), sin6) };
                raw.len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    /// A Unix socket address; `InvalidInput` if the path does not fit. A
    /// path starting with a NUL byte names an abstract socket (Linux), as
    /// in Tokio and std's `SocketAddr::from_abstract_name`: the bytes after
    /// it, with no terminating NUL.
    pub(crate) fn from_unix(path: &Path) -> io::Result<Self> {
        let bytes = path.as_os_str().as_bytes();
        let mut raw = Self::empty();
        // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_un`.
        let sun = unsafe { &mut *raw.as_mut_ptr().cast::<libc::sockaddr_un>() };
        let abstract_name = bytes.first() == Some(&0);
        let fits = match abstract_name {
            true => bytes.len() <= sun.sun_path.len(),
            false => bytes.len() < sun.sun_path.len() && !bytes.contains(&0),
        };
        if bytes.is_empty() || !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "unix socket path empty, too long, or containing a NUL byte (other than a leading one, for an abstract name)",
            ));
        }
        sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let offset = mem::size_of::<libc::sa_family_t>();
        let terminator = usize::from(!abstract_name);
        raw.len = (offset + bytes.len() + terminator) as libc::socklen_t;
        Ok(raw)
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&raw mut self.storage).cast()
    }

    /// The address the kernel wrote, as an IP socket address.
    pub(crate) fn parse_inet(&self) -> io::Result<SocketAddr> {
        match i32::from(self.storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a `sockaddr_in`.
                let sin = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Ok(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a `sockaddr_in6`.
                let s = unsafe { &*(&raw const self.storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(s.sin6_addr.s6_addr);
                let port = u16::from_be(s.sin6_port);
                Ok(SocketAddrV6::new(ip, port, s.sin6_flowinfo, s.sin6_scope_id).into())
            }
            // `InvalidInput`, as std (and Tokio) say for a socket of another
            // family behind an IP type.
            f => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an IP socket address (address family {f})"),
            )),
        }
    }
}

/// A bound, listening TCP socket as Tokio makes one: `SO_REUSEADDR`, a
/// backlog of 1024 (std's 128 overflows under a burst of connects).
pub(crate) fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    let one: libc::c_int = 1;
    let addr = RawAddr::from_inet(addr);
    // SAFETY: the option value is a live c_int of the size passed; the
    // address is a valid sockaddr of `addr.len` bytes.
    let ok = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&raw const one).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
            && libc::bind(raw, addr.as_ptr(), addr.len) == 0
            && libc::listen(raw, 1024) == 0
    };
    if !ok {
        return Err(io::Error::last_os_error());
    }
    Ok(std::net::TcpListener::from(fd))
}

/// `getsockname` (or `getpeername` with `peer`) of an IP socket.
pub(crate) fn inet_name(fd: std::os::fd::RawFd, peer: bool) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: the pointers are to our own storage and its length, which is
    // the full size of the storage.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, raw.as_mut_ptr(), &mut raw.len)
        } else {
            libc::getsockname(fd, raw.as_mut_ptr(), &mut raw.len)
        }
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    raw.parse_inet()
}

/// `path` as a std Unix socket address; a leading NUL byte names an
/// abstract socket (see `RawAddr::from_unix`).
pub(crate) fn unix_socket_addr(path: &Path) -> io::Result<std::os::unix::net::SocketAddr> {
    match path.as_os_str().as_bytes().split_first() {
        Some((0, name)) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
        }
        _ => std::os::unix::net::SocketAddr::from_pathname(path),
    }
}

/// Binds a listening Unix socket at `path` (a leading NUL byte: an
/// abstract name).
pub(crate) fn bind_unix_listener(path: &Path) -> io::Result<std::os::unix::net::UnixListener> {
    std::os::unix::net::UnixListener::bind_addr(&unix_socket_addr(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_addresses_round_trip() {
        for a in ["127.0.0.1:8080", "[::1]:443", "[fe80::1%2]:9"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(RawAddr::from_inet(a).parse_inet().unwrap(), a);
        }
    }

    #[test]
    fn unix_paths_that_do_not_fit_are_refused() {
        assert!(RawAddr::from_unix(Path::new("/tmp/x.sock")).is_ok());
        let long = "x".repeat(200);
        assert!(RawAddr::from_unix(Path::new(&long)).is_err());
        assert!(RawAddr::from_unix(Path::new("a\0b")).is_err());
        assert!(RawAddr::from_unix(Path::new("")).is_err());
        // An abstract name: a leading NUL, no terminator counted.
        let abs = RawAddr::from_unix(Path::new("\0svc")).unwrap();
        assert_eq!(
            abs.len as usize,
            std::mem::size_of::<libc::sa_family_t>() + 4
        );
    }
}
