//! The crate's error type: every way a runtime call can be refused.
//!
//! Bad input (a shard index out of range, a runtime already shut down, a
//! kernel that refuses io_uring) is reported through [`Error`], never through a
//! panic or a hang.

use std::fmt;
use std::io;

/// Why the kernel refused to give us an io_uring instance.
///
/// # Examples
///
/// ```
/// use ringlane::RingRefusal;
/// let r = RingRefusal::from_errno(libc::EPERM);
/// assert_eq!(r, RingRefusal::PermissionDenied);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingRefusal {
    /// `EPERM`: a seccomp profile (Docker's default one, for instance) or the
    /// `kernel.io_uring_disabled` sysctl forbids `io_uring_setup`.
    PermissionDenied,
    /// `ENOSYS`: the kernel was built without io_uring, or a filter hides it.
    NotSupported,
    /// `ENOMEM`: the ring could not be allocated; on kernels before 5.12 this
    /// is usually a low `RLIMIT_MEMLOCK`.
    OutOfMemory,
    /// `EINVAL`: the kernel rejected the ring's setup parameters (a kernel
    /// that rejects every set the probe tries is reported as
    /// [`Error::KernelTooOld`]).
    InvalidSetup,
    /// `EMFILE` or `ENFILE`: the process (or the whole system) has no file
    /// descriptor left for the ring.
    TooManyFiles,
    /// Any other errno.
    Other,
}

impl RingRefusal {
    /// Classifies an errno returned by `io_uring_setup`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::RingRefusal;
    /// assert_eq!(RingRefusal::from_errno(libc::ENOMEM), RingRefusal::OutOfMemory);
    /// ```
    pub fn from_errno(errno: i32) -> Self {
        match errno {
            libc::EPERM | libc::EACCES => Self::PermissionDenied,
            libc::ENOSYS => Self::NotSupported,
            libc::ENOMEM => Self::OutOfMemory,
            libc::EINVAL => Self::InvalidSetup,
            libc::EMFILE | libc::ENFILE => Self::TooManyFiles,
            _ => Self::Other,
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::PermissionDenied => {
                "io_uring is forbidden here (a seccomp profile such as a container's default, or the kernel.io_uring_disabled sysctl)"
            }
            Self::NotSupported => "this kernel has no io_uring (ENOSYS)",
            Self::OutOfMemory => {
                "the kernel could not allocate the ring; raise RLIMIT_MEMLOCK (ulimit -l) or use fewer ring entries"
            }
            Self::InvalidSetup => "the kernel rejected the io_uring setup parameters",
            Self::TooManyFiles => {
                "no file descriptor is left for the ring (each shard needs a few); raise RLIMIT_NOFILE (ulimit -n) or close fds"
            }
            Self::Other => "io_uring_setup failed",
        }
    }
}

/// Errors returned by the runtime's own API.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let err = rt.handle().spawn_pinned(7, async {}).unwrap_err();
/// assert!(matches!(err, ringlane::Error::ShardOutOfRange { shard: 7, shards: 1 }));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A shard index was not below the runtime's shard count.
    ShardOutOfRange {
        /// The index that was asked for.
        shard: usize,
        /// How many shards the runtime has.
        shards: usize,
    },
    /// The runtime is shutting down or has shut down; nothing new is accepted.
    Shutdown,
    /// The call needs to run on a shard thread (or, for [`spawn`](crate::spawn),
    /// inside `block_on` or under an entered runtime) and was made elsewhere.
    NotOnShard,
    /// The kernel refused to create an io_uring instance.
    RingSetup {
        /// The classified reason.
        refusal: RingRefusal,
        /// The raw error from the kernel.
        source: io::Error,
    },
    /// The kernel has io_uring but lacks a feature the runtime needs.
    KernelTooOld {
        /// The missing feature, e.g. `"IORING_OP_MSG_RING"`.
        missing: &'static str,
    },
    /// The builder was given an unusable setting.
    InvalidConfig(&'static str),
    /// An I/O error from the operating system (thread spawn, eventfd, ...).
    Io(io::Error),
}

impl Error {
    /// Builds the error for a failed `io_uring_setup`.
    pub(crate) fn ring_setup(source: io::Error) -> Self {
        let refusal = RingRefusal::from_errno(source.raw_os_error().unwrap_or(0));
        Error::RingSetup { refusal, source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShardOutOfRange { shard, shards } => {
                write!(
                    f,
                    "shard index {shard} is out of range (the runtime has {shards} shards)"
                )
            }
            Error::Shutdown => f.write_str("the ringlane runtime has shut down"),
            Error::NotOnShard => {
                f.write_str(
                    "this call must be made from a task running on a ringlane shard (or, for ringlane::spawn, inside Runtime::block_on or under Handle::enter)",
                )
            }
            // The OS error is the `source()`: a report that walks the chain
            // (anyhow, eyre, `std::error::Report`) prints it once.
            Error::RingSetup { refusal, .. } => {
                write!(f, "io_uring setup refused: {}", refusal.hint())
            }
            Error::KernelTooOld { missing } => {
                write!(
                    f,
                    "the kernel lacks {missing}, which ringlane needs (Linux 5.18 or newer is required)"
                )
            }
            Error::InvalidConfig(what) => write!(f, "invalid runtime configuration: {what}"),
            // Transparent: the I/O error's own message and source.
            Error::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::RingSetup { source, .. } => Some(source),
            Error::Io(e) => e.source(),
            _ => None,
        }
    }
}

/// What could not be done, with the OS error as its source.
#[derive(Debug)]
struct Context {
    what: String,
    source: io::Error,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Error {
    /// An I/O error of start-up, saying which step failed (`what`); the OS
    /// error is its source, and its kind is kept.
    pub(crate) fn start_step(what: impl Into<String>, source: io::Error) -> Self {
        let kind = source.kind();
        Error::Io(io::Error::new(
            kind,
            Context {
                what: what.into(),
                source,
            },
        ))
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        // The OS error itself, with its errno (`raw_os_error`) and source.
        if let Error::Io(e) = e {
            return e;
        }
        let kind = match &e {
            Error::ShardOutOfRange { .. } | Error::InvalidConfig(_) => io::ErrorKind::InvalidInput,
            Error::Shutdown => io::ErrorKind::BrokenPipe,
            Error::RingSetup {
                refusal: RingRefusal::PermissionDenied,
                ..
            } => io::ErrorKind::PermissionDenied,
            Error::RingSetup {
                refusal: RingRefusal::OutOfMemory,
                ..
            } => io::ErrorKind::OutOfMemory,
            Error::RingSetup {
                refusal: RingRefusal::TooManyFiles,
                ..
            } => io::ErrorKind::Other,
            Error::KernelTooOld { .. } | Error::RingSetup { .. } => io::ErrorKind::Unsupported,
            Error::NotOnShard => io::ErrorKind::Other,
            Error::Io(_) => io::ErrorKind::Other, // returned as is above
        };
        io::Error::new(kind, e)
    }
}
