//! The raw io_uring floors' ring: a bare `io-uring` ring set up as
//! ringlane's shards set theirs up, so that a floor never pays for an
//! `io_uring_enter` that ringlane does not (BENCHMARKS.md: no crippled
//! baselines).
//!
//! [`FloorRing::like_ringlane`] asks for `SINGLE_ISSUER|DEFER_TASKRUN|
//! TASKRUN_FLAG|SUBMIT_ALL` and registers the ring fd
//! (`IORING_REGISTER_RING_FDS`), entering through the registered index, as
//! ringlane does when the kernel allows it; [`FloorRing::default_ring`] is
//! the `io-uring` crate's defaults, entered through the plain fd. The `io-
//! uring` crate keeps a registered index only in a `Submitter` it rebuilds
//! on every call, so [`FloorRing::enter`] issues the syscall itself.

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;

use io_uring::IoUring;

const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;
const IORING_REGISTER_RING_FDS: u32 = 20;
const IORING_UNREGISTER_RING_FDS: u32 = 21;

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// A ring for a raw floor; derefs to the `io-uring` crate's ring. Used on
/// the thread that made it (a registered ring fd is per thread).
pub(crate) struct FloorRing {
    ring: IoUring,
    /// The registered ring fd's index, if registered.
    registered: Option<u32>,
}

impl FloorRing {
    /// The set-up ringlane's shards use on this kernel (and their CQ size,
    /// unless `cq_entries` says otherwise).
    pub(crate) fn like_ringlane(entries: u32, cq_entries: Option<u32>) -> Self {
        let mut builder = IoUring::builder();
        builder
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_submit_all()
            .setup_cqsize(cq_entries.unwrap_or(entries.saturating_mul(4).clamp(64, 65_536)));
        let ring = builder.build(entries).expect("io_uring set-up");
        let registered = register_ring_fd(&ring);
        Self { ring, registered }
    }

    /// The `io-uring` crate's default ring (with `cq_entries` if given),
    /// entered through its fd.
    pub(crate) fn default_ring(entries: u32, cq_entries: Option<u32>) -> Self {
        let mut builder = IoUring::builder();
        if let Some(cq) = cq_entries {
            builder.setup_cqsize(cq);
        }
        let ring = builder.build(entries).expect("io_uring set-up");
        Self {
            ring,
            registered: None,
        }
    }

    /// Submits what is queued and waits for `want` completions (retried on
    /// `EINTR`); the `submit_and_wait` of the `io-uring` crate, through the
    /// registered ring fd when there is one.
    pub(crate) fn enter(&mut self, want: usize) {
        let (fd, flags) = match self.registered {
            Some(index) => (
                index as i32,
                IORING_ENTER_GETEVENTS | IORING_ENTER_REGISTERED_RING,
            ),
            None => (self.ring.as_raw_fd(), IORING_ENTER_GETEVENTS),
        };
        loop {
            let to_submit = self.ring.submission().len() as u32;
            // SAFETY: no signal mask or extended argument (null, 0); the
            // SQEs were pushed by callers that keep their memory alive
            // until the matching CQE.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_io_uring_enter,
                    fd,
                    to_submit,
                    want as u32,
                    flags,
                    std::ptr::null::<libc::c_void>(),
                    0usize,
                )
            };
            if r >= 0 {
                return;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("io_uring_enter: {e}");
            }
        }
    }
}

/// Registers `ring`'s fd in this thread's table; `None` if the kernel
/// refuses (ringlane then enters through the plain fd too).
fn register_ring_fd(ring: &IoUring) -> Option<u32> {
    let mut update = RsrcUpdate {
        offset: u32::MAX, // the kernel picks a free slot
        resv: 0,
        data: ring.as_raw_fd() as u64,
    };
    // SAFETY: one `io_uring_rsrc_update` the kernel reads and writes back.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_REGISTER_RING_FDS,
            &raw mut update,
            1u32,
        )
    };
    (r == 1).then_some(update.offset)
}

impl Drop for FloorRing {
    /// Gives the registered slot back: a thread has 16, and a suite makes
    /// many rings on one thread.
    fn drop(&mut self) {
        if let Some(index) = self.registered {
            let mut update = RsrcUpdate {
                offset: index,
                resv: 0,
                data: 0,
            };
            // SAFETY: as in `register_ring_fd`.
            unsafe {
                libc::syscall(
                    libc::SYS_io_uring_register,
                    self.ring.as_raw_fd(),
                    IORING_UNREGISTER_RING_FDS,
                    &raw mut update,
                    1u32,
                )
            };
        }
    }
}

impl Deref for FloorRing {
    type Target = IoUring;
    fn deref(&self) -> &IoUring {
        &self.ring
    }
}

impl DerefMut for FloorRing {
    fn deref_mut(&mut self) -> &mut IoUring {
        &mut self.ring
    }
}
