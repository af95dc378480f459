//! The rest of Tokio's Unix and TCP socket conversions: the peer's
//! credentials (`SO_PEERCRED`) and `into_std` on the listeners and Unix
//! streams (the std socket back, still nonblocking, as the others give).

use std::io;
use std::os::fd::AsRawFd;

use super::{TcpListener, UnixListener, UnixStream};

/// The credentials of a Unix stream's peer at the time it connected, as
/// `tokio::net::unix::UCred`.
///
/// # Examples
///
/// ```
/// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
/// let cred = a.peer_cred().unwrap();
/// // SAFETY: getuid has no preconditions.
/// assert_eq!(cred.uid(), unsafe { libc::getuid() });
/// assert_eq!(cred.pid(), Some(std::process::id() as i32));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UCred {
    pid: Option<libc::pid_t>,
    uid: libc::uid_t,
    gid: libc::gid_t,
}

impl UCred {
    /// The peer's user id.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// // SAFETY: getuid has no preconditions.
    /// assert_eq!(a.peer_cred().unwrap().uid(), unsafe { libc::getuid() });
    /// ```
    pub fn uid(&self) -> libc::uid_t {
        self.uid
    }

    /// The peer's group id.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// // SAFETY: getgid has no preconditions.
    /// assert_eq!(a.peer_cred().unwrap().gid(), unsafe { libc::getgid() });
    /// ```
    pub fn gid(&self) -> libc::gid_t {
        self.gid
    }

    /// The peer's process id, if the kernel gave one (0 means none, as
    /// from a peer in another pid namespace).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// assert_eq!(a.peer_cred().unwrap().pid(), Some(std::process::id() as i32));
    /// ```
    pub fn pid(&self) -> Option<libc::pid_t> {
        self.pid
    }
}

impl UnixStream {
    /// The peer's credentials at the time it connected (`SO_PEERCRED`), as
    /// Tokio's `peer_cred`: for authorizing a local client.
    ///
    /// # Errors
    ///
    /// `getsockopt(2)` errors.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// assert!(a.peer_cred().unwrap().pid().is_some());
    /// ```
    pub fn peer_cred(&self) -> io::Result<UCred> {
        // SAFETY: all-zero bytes are a valid `ucred`.
        let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `cred`.
        let r = unsafe {
            libc::getsockopt(
                self.io.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(UCred {
            pid: (cred.pid != 0).then_some(cred.pid),
            uid: cred.uid,
            gid: cred.gid,
        })
    }

    /// Gives back the std stream (still in nonblocking mode).
    ///
    /// # Errors
    ///
    /// None: the `Result` is Tokio's signature.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = ringlane::compat::UnixStream::pair().unwrap();
    /// assert!(a.into_std().unwrap().peer_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        Ok(self.io.into_inner())
    }
}

impl UnixListener {
    /// Gives back the std listener (still in nonblocking mode).
    ///
    /// # Errors
    ///
    /// None: the `Result` is Tokio's signature.
    ///
    /// # Examples
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-cl-into-{}.sock", std::process::id()));
    /// let l = ringlane::compat::UnixListener::bind(&path).unwrap();
    /// assert!(l.into_std().unwrap().local_addr().is_ok());
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        Ok(self.io.into_inner())
    }
}

impl TcpListener {
    /// Gives back the std listener (still in nonblocking mode).
    ///
    /// # Errors
    ///
    /// None: the `Result` is Tokio's signature.
    ///
    /// # Examples
    ///
    /// ```
    /// let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = std.local_addr().unwrap();
    /// let l = ringlane::compat::TcpListener::from_std(std).unwrap();
    /// assert_eq!(l.into_std().unwrap().local_addr().unwrap(), addr);
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        Ok(self.io.into_inner())
    }
}
