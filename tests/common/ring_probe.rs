//! Helpers of the runtime edge tests: a raw ring, its offsets, io_uring fds, CPU masks.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;

/// fd counts, io_uring fd scans and CPU-hungry spin windows: one test at a time.
pub static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

// ---------------------------------------------------------------------------
// Raw io_uring, for what the public API cannot reach.
// ---------------------------------------------------------------------------

/// `struct io_sqring_offsets`.
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
pub struct SqRingOffsets {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub flags: u32,
    pub dropped: u32,
    pub array: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

/// `struct io_cqring_offsets`.
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
pub struct CqRingOffsets {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub overflow: u32,
    pub cqes: u32,
    pub flags: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

/// `struct io_uring_params` (120 bytes).
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
pub struct UringParams {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub features: u32,
    pub wq_fd: u32,
    pub resv: [u32; 3],
    pub sq_off: SqRingOffsets,
    pub cq_off: CqRingOffsets,
}

const _: () = assert!(std::mem::size_of::<UringParams>() == 120);

/// A plain two-entry ring of our own, with the offsets the kernel gave.
pub fn raw_ring() -> io::Result<(OwnedFd, UringParams)> {
    let mut p = UringParams::default();
    // SAFETY: io_uring_setup writes the params struct we pass, which has the
    // kernel's layout and size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            2 as libc::c_long,
            &mut p as *mut UringParams,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd as RawFd) }, p))
}

/// `struct io_uring_rsrc_update`.
#[repr(C)]
pub struct RsrcUpdate {
    pub offset: u32,
    pub resv: u32,
    pub data: u64,
}

pub const IORING_REGISTER_RING_FDS: libc::c_long = 20;

/// Registers `fd` in the calling thread's table of registered rings (16 slots).
pub fn register_ring_fd(fd: RawFd) -> io::Result<u32> {
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: fd as u64,
    };
    // SAFETY: the kernel reads and writes one `io_uring_rsrc_update` at `up`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd as libc::c_long,
            IORING_REGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1 as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(up.offset)
    }
}

/// The io_uring fds this process has open.
pub fn io_uring_fds() -> BTreeSet<RawFd> {
    let mut fds = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if target.to_string_lossy().contains("[io_uring]") {
                if let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                    fds.insert(fd);
                }
            }
        }
    }
    fds
}

/// Sets `IORING_SQ_TASKRUN` in the SQ ring of `ring_fd` with no deferred
/// work behind it: the stale flag the kernel leaves when a shard runs its
/// deferred work between the kernel's queueing it and setting the flag
/// (ADR 0003, src/sys/ring.rs invariant 4).
pub fn set_stale_taskrun_flag(ring_fd: RawFd, flags_off: u32) {
    const IORING_SQ_TASKRUN: u32 = 1 << 2;
    let len = flags_off as usize + 4;
    // SAFETY: maps the ring's SQ ring region (offset 0) shared, as the
    // owner does; checked below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            ring_fd,
            0,
        )
    };
    assert_ne!(
        base,
        libc::MAP_FAILED,
        "mmap of the shard's SQ ring failed: {}",
        io::Error::last_os_error()
    );
    // SAFETY: `flags_off` lies inside the mapping; the kernel aligns the
    // field to 4 bytes and only accesses it atomically.
    let flags = unsafe {
        &*base
            .cast::<u8>()
            .add(flags_off as usize)
            .cast::<AtomicU32>()
    };
    flags.fetch_or(IORING_SQ_TASKRUN, Ordering::SeqCst);
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(base, len) };
}

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------

/// Polls `fut` once; `true` if it is still pending.
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

/// A value handed out of a task (futures among it).
pub struct Held<T>(pub T);

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; the call gets its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Confines the calling thread to `cpu`.
pub fn confine_this_thread_to(cpu: usize) {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0,
            "sched_setaffinity: {}",
            io::Error::last_os_error()
        );
    }
}

// ---------------------------------------------------------------------------
// 1.
// ---------------------------------------------------------------------------
