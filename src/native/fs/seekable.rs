//! Whether a file's fd has positions: io_uring ignores the offset of a read
//! or write on a stream (a pipe, FIFO, socket or tty) and takes or appends
//! stream bytes, where `pread`/`pwrite` fail with `ESPIPE`. Positioned ops
//! ask here first; the answer is learnt once per `File` (one `lseek`).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU8, Ordering};

// 0 (the `Default`): not looked at yet.
const SEEKABLE: u8 = 1;
const STREAM: u8 = 2;
/// A regular file by its `fstat`, not asked with `lseek` yet: a regular
/// file may still refuse positions (a FUSE file opened as a stream, a
/// tracing pipe), which only `lseek` tells.
const REGULAR: u8 = 3;

/// The cached answer (a clone starts with it).
#[derive(Debug, Default)]
pub(super) struct Seekable(AtomicU8);

impl Clone for Seekable {
    fn clone(&self) -> Self {
        Self(AtomicU8::new(self.0.load(Ordering::Relaxed)))
    }
}

impl Seekable {
    /// `Ok` if `fd` has positions; `ESPIPE`, as `pread(2)` gives, if it is a
    /// stream.
    #[inline]
    pub(super) fn check(&self, fd: RawFd) -> io::Result<()> {
        match self.0.load(Ordering::Relaxed) {
            SEEKABLE => Ok(()),
            STREAM => Err(io::Error::from_raw_os_error(libc::ESPIPE)),
            _ => self.learn(fd),
        }
    }

    /// Records that an `fstat` found a regular file (`check` still asks
    /// `lseek` once).
    pub(super) fn know_regular(&self) {
        let _ = self
            .0
            .compare_exchange(0, REGULAR, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Whether the file is known to be regular (an `fstat`) or to have
    /// positions (an `lseek`): read from its start at offsets, it gives
    /// what reads at its position would (a stream-like regular file
    /// ignores the offsets). Asks nothing.
    pub(super) fn regular_or_seekable(&self) -> bool {
        matches!(self.0.load(Ordering::Relaxed), SEEKABLE | REGULAR)
    }

    /// The first look at `fd` (one `lseek`), remembered.
    #[cold]
    fn learn(&self, fd: RawFd) -> io::Result<()> {
        // SAFETY: `lseek` with `SEEK_CUR` and 0 only reads the position;
        // `fd` is open (its `File` is borrowed).
        let r = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
        let stream = r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESPIPE);
        let known = if stream { STREAM } else { SEEKABLE };
        self.0.store(known, Ordering::Relaxed);
        match known {
            STREAM => Err(io::Error::from_raw_os_error(libc::ESPIPE)),
            _ => Ok(()),
        }
    }
}
