//! The std fd traits and conversions Tokio's socket types have, so that
//! ported code keeps working: `AsFd` (what `socket2::SockRef::from` and
//! other socket-option crates take) and `TryFrom` the std types (socket activation, listenfd).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use super::{AsyncFd, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

/// `AsFd` through the type's `AsRawFd`.
macro_rules! as_fd {
    ($($t:ty),*) => {$(
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                // SAFETY: the fd is open and owned by `self`; the borrow
                // cannot outlive `self`.
                unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
            }
        }
    )*};
}

as_fd!(TcpStream, TcpListener, UdpSocket, UnixStream, UnixListener);

/// As Tokio's `AsyncFd`: the inner object's fd, for an inner object that
/// lends one (`AsFd`).
///
/// # Examples
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let raw = a.as_raw_fd();
/// let fd = ringlane::compat::AsyncFd::new(a).unwrap();
/// assert_eq!(fd.as_fd().as_raw_fd(), raw);
/// ```
impl<T: AsRawFd + AsFd> AsFd for AsyncFd<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // Through the inner object's own `AsFd`: an `AsRawFd` number alone
        // (a bare `RawFd`) owns nothing, so borrowing it would not be sound.
        self.get_ref().as_fd()
    }
}

/// `TryFrom` the std type, through `from_std`.
macro_rules! try_from_std {
    ($($std:ty => $t:ty),*) => {$(
        impl TryFrom<$std> for $t {
            type Error = io::Error;

            fn try_from(std: $std) -> io::Result<Self> {
                Self::from_std(std)
            }
        }
    )*};
}

try_from_std!(
    std::net::TcpStream => TcpStream,
    std::net::TcpListener => TcpListener,
    std::net::UdpSocket => UdpSocket,
    std::os::unix::net::UnixStream => UnixStream,
    std::os::unix::net::UnixListener => UnixListener
);
