//! Helpers of the native file and name edge tests: FIFOs, errno of a result.
#![allow(dead_code)]

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::native_io::TempDir;

/// An `io::Result` reduced to what can be compared with std's: the value,
/// or the raw errno.
pub fn errno<T>(r: io::Result<T>) -> Result<T, Option<i32>> {
    r.map_err(|e| e.raw_os_error())
}

/// A FIFO in a fresh directory (removed with it).
pub struct Fifo {
    pub _dir: TempDir,
    pub path: PathBuf,
}

impl Fifo {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let path = dir.0.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(r, 0, "mkfifo: {}", io::Error::last_os_error());
        Self { _dir: dir, path }
    }
}

/// A std open of `path` with `O_NONBLOCK` (never waits for a partner).
pub fn open_nonblocking(path: &Path, write: bool) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// An outcome reduced to comparable form.
pub fn o<T>(r: io::Result<T>) -> Result<(), Option<i32>> {
    r.map(drop).map_err(|e| e.raw_os_error())
}
