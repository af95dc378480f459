//! One io_uring instance, owned by exactly one shard thread.
//!
//! Invariants:
//! 1. A `Ring` is created on the thread that will use it and never leaves it
//!    (`SINGLE_ISSUER` makes the kernel enforce this when it is enabled).
//! 2. Every SQE pushed here references memory that stays valid until its CQE
//!    is reaped; `push` is `unsafe` and its callers carry that proof.
//! 3. The kernel is entered only when there is something to submit, something
//!    to reap (`IORING_SQ_TASKRUN`, CQ overflow), or the shard parks.
//! 4. `IORING_SQ_TASKRUN` is a hint, never a reason to stay awake. The kernel
//!    queues deferred work first and sets the flag after, so a shard that
//!    runs the work in between is left with the flag set and nothing queued;
//!    entering does not clear it (only running new deferred work does). Idle
//!    decisions therefore look at the CQ and overflow alone
//!    ([`has_completions`](Ring::has_completions)): a park's enter runs any
//!    deferred work before it sleeps, so nothing is missed by ignoring the
//!    flag there. (Treating it as work once made an idle shard spin at 100%
//!    CPU: `idle_shard_with_a_stale_taskrun_flag_sleeps`.)
//! 5. *Late* SQEs (receives) wait in `late` and join the SQ just before the
//!    next enter, behind every SQE pushed the usual way in the meantime: a
//!    receive is then issued after the sends of the same batch, and finds
//!    the data a local peer's send just delivered instead of arming a poll.
//!    Room in the SQ is reserved for them when they are queued, so the move
//!    cannot fail. A late SQE stays withdrawable
//!    ([`withdraw_late`](Ring::withdraw_late)) until that enter: nothing
//!    else moves the list early. So a cancel never targets a late SQE (its
//!    op is withdrawn instead) and is pushed the usual way, behind its
//!    target (in the SQ or the kernel already) and ahead of whatever is
//!    pushed after it (a peer's send, say). Moving the list to place a
//!    cancel once made every late receive dropped later in the same tick
//!    unwithdrawable (`a_read_dropped_after_another_ops_cancel_…`).
//! 6. Completions taken out of the CQ *early* (between reaps, to see at
//!    once what the kernel said to a submit: a refused doorbell) wait in
//!    `early`, in CQ order, and count as completions everywhere the CQ does:
//!    [`reap`](Ring::reap) hands them out first, `has_completions` sees
//!    them, and a park does not sleep while any wait.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{IoUring, squeue};

use super::probe::{RingFeatures, build_ring};

const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
const IORING_ENTER_EXT_ARG: u32 = 1 << 3;
const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;
const IORING_REGISTER_RING_FDS: u32 = 20;
const IORING_UNREGISTER_RING_FDS: u32 = 21;

/// `struct io_uring_getevents_arg` from the kernel's uapi.
#[repr(C)]
struct GetEventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// One completion, copied out of the CQ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    pub(crate) user_data: u64,
    pub(crate) result: i32,
    /// `IORING_CQE_F_*` (`F_MORE`: more CQEs follow for this op).
    pub(crate) flags: u32,
}

impl Completion {
    /// The shard a doorbell of ours was meant for, if this is its failure
    /// (the kernel refused the MSG_RING: `-EOVERFLOW` on a full target CQ,
    /// `-ENOMEM`, ...).
    pub(crate) fn refused_doorbell(&self) -> Option<usize> {
        match super::user_data::decode(self.user_data) {
            super::user_data::Tag::DoorbellOut(target) if self.result < 0 => Some(target),
            _ => None,
        }
    }
}

/// `IORING_CQE_F_MORE`: the op stays armed and will post more CQEs.
pub(crate) const CQE_F_MORE: u32 = 1 << 1;

/// A shard's ring.
pub(crate) struct Ring {
    uring: IoUring,
    /// The registered index when `registered`, else the raw ring fd.
    enter_fd: i32,
    registered: bool,
    /// Set up with `IORING_SETUP_DEFER_TASKRUN`: completions happen only
    /// when this thread enters.
    defer_taskrun: bool,
    /// SQEs queued to go in last (invariant 5), in order.
    late: Vec<squeue::Entry>,
    /// Completions taken out of the CQ before the next reap (invariant 6).
    early: Vec<Completion>,
    /// `!Send`: a registered ring fd is an index into the registering
    /// thread's own table, so a `Ring` must be used and dropped there.
    _own_thread: std::marker::PhantomData<*const ()>,
}

fn register(fd: RawFd, opcode: u32, arg: *mut libc::c_void, nr: u32) -> io::Result<i64> {
    // SAFETY: io_uring_register reads/writes `nr` structs at `arg`, which the
    // callers below pass as a pointer to one live, properly laid-out struct.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_register, fd, opcode, arg, nr) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn register_ring_fd(fd: RawFd) -> io::Result<u32> {
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: fd as u64,
    };
    register(
        fd,
        IORING_REGISTER_RING_FDS,
        (&mut up as *mut RsrcUpdate).cast(),
        1,
    )?;
    Ok(up.offset)
}

fn unregister_ring_fd(fd: RawFd, index: u32) -> io::Result<()> {
    let mut up = RsrcUpdate {
        offset: index,
        resv: 0,
        data: 0,
    };
    register(
        fd,
        IORING_UNREGISTER_RING_FDS,
        (&mut up as *mut RsrcUpdate).cast(),
        1,
    )
    .map(drop)
}

/// Whether this kernel lets a thread register a ring fd (5.18+). The
/// probing thread's own table being full (`EBUSY`: 16 per thread) says the
/// kernel has the feature: each shard registers in its own thread's table.
pub(super) fn can_register_ring_fd(ring: &IoUring) -> bool {
    match register_ring_fd(ring.as_raw_fd()) {
        Ok(index) => unregister_ring_fd(ring.as_raw_fd(), index).is_ok(),
        Err(e) => e.raw_os_error() == Some(libc::EBUSY),
    }
}

impl Ring {
    /// Creates a ring with exactly the set-up in `features`, on this thread.
    pub(crate) fn new(entries: u32, features: &RingFeatures) -> io::Result<Self> {
        let uring = build_ring(entries, features)?;
        let raw = uring.as_raw_fd();
        let (enter_fd, registered) = match features.registered_ring_fd {
            true => match register_ring_fd(raw) {
                Ok(index) => (index as i32, true),
                Err(_) => (raw, false),
            },
            false => (raw, false),
        };
        Ok(Self {
            uring,
            enter_fd,
            registered,
            defer_taskrun: features.defer_taskrun,
            late: Vec::new(),
            early: Vec::new(),
            _own_thread: std::marker::PhantomData,
        })
    }

    /// Whether completions happen only when this thread enters
    /// (`DEFER_TASKRUN`). Without it, an op may complete during any syscall
    /// the thread makes, and any it makes on return to user space.
    pub(crate) fn defers_taskrun(&self) -> bool {
        self.defer_taskrun
    }

    /// Whether `n` more SQEs fit without a submit (late ones count).
    #[inline]
    pub(crate) fn sq_has_room_for(&mut self, n: usize) -> bool {
        self.room() >= n
    }

    #[inline]
    fn room(&mut self) -> usize {
        let sq = self.uring.submission();
        (sq.capacity() - sq.len()).saturating_sub(self.late.len())
    }

    /// Queues SQEs that must sit next to each other (an `IO_LINK` chain):
    /// all of them or none.
    ///
    /// # Safety
    ///
    /// As [`push`](Self::push), for every entry.
    pub(crate) unsafe fn push_all(&mut self, sqes: &[squeue::Entry]) -> io::Result<()> {
        // SAFETY: the caller's contract.
        unsafe { self.push_group(sqes, false) }
    }

    /// Queues SQEs (all or none, kept together) to join the SQ last, just
    /// before the next enter (invariant 5).
    ///
    /// # Safety
    ///
    /// As [`push`](Self::push), for every entry.
    pub(crate) unsafe fn push_late(&mut self, sqes: &[squeue::Entry]) -> io::Result<()> {
        // SAFETY: the caller's contract.
        unsafe { self.push_group(sqes, true) }
    }

    /// Queues `sqes` now or late, submitting first if the SQ (with the late
    /// SQEs' reserved room) is full.
    ///
    /// # Safety
    ///
    /// As [`push`](Self::push), for every entry.
    unsafe fn push_group(&mut self, sqes: &[squeue::Entry], late: bool) -> io::Result<()> {
        for attempt in 0..3 {
            if self.room() >= sqes.len() {
                if late {
                    self.late.extend_from_slice(sqes);
                    return Ok(());
                }
                // SAFETY: the caller guarantees every SQE's resources outlive
                // its completion; the room was just checked.
                if unsafe { self.uring.submission().push_multiple(sqes) }.is_ok() {
                    return Ok(());
                }
            }
            if attempt < 2 {
                self.enter(0, None)?;
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Registration calls (`sys/fixed.rs`).
    pub(super) fn submitter(&self) -> io_uring::Submitter<'_> {
        self.uring.submitter()
    }

    /// Completion queue entries.
    pub(crate) fn cq_entries(&self) -> usize {
        self.uring.params().cq_entries() as usize
    }

    /// The ring's real fd (the target of other shards' MSG_RING doorbells).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.uring.as_raw_fd()
    }

    /// Queues one SQE, submitting first if the SQ is full.
    ///
    /// # Safety
    ///
    /// Every buffer, fd or struct the SQE points at must stay valid (and not
    /// be moved) until the CQE for it has been reaped from this ring.
    /// Fails with `WouldBlock` if the SQ stays full after one submit (the
    /// kernel can refuse SQEs while completions wait to be reaped); the
    /// caller retries on a later tick or falls back.
    #[inline]
    pub(crate) unsafe fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        // The common case: no late SQEs hold room, and the SQ has room (one
        // look at the kernel's head, no copy loop).
        if self.late.is_empty() {
            // SAFETY: the caller's contract; `push` checks the room.
            if unsafe { self.uring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
        }
        // SAFETY: the caller's contract.
        unsafe { self.push_group(std::slice::from_ref(sqe), false) }
    }

    /// Withdraws a late SQE the kernel has not seen (its op's future was
    /// dropped before the next enter): it becomes a `NOP` with the same
    /// `user_data`, so its op still gets one CQE (result 0) and ends as
    /// usual, having done nothing. Its linked timeout, right after it,
    /// becomes a `NOP` too. Returns whether `user_data` was still late.
    pub(crate) fn withdraw_late(&mut self, user_data: u64) -> bool {
        let Some(i) = self
            .late
            .iter()
            .position(|e| e.get_user_data() == user_data)
        else {
            return false;
        };
        self.late[i] = io_uring::opcode::Nop::new().build().user_data(user_data);
        if let Some(next) = self.late.get_mut(i + 1) {
            if next.get_opcode() == u32::from(io_uring::opcode::LinkTimeout::CODE) {
                *next = io_uring::opcode::Nop::new()
                    .build()
                    .user_data(next.get_user_data());
            }
        }
        true
    }

    /// Moves the late SQEs into the SQ, behind everything else (invariant 5).
    fn flush_late(&mut self) {
        if self.late.is_empty() {
            return;
        }
        // SAFETY: each was queued by `push_late`, whose callers carry the
        // same proof as `push`'s; their room was reserved then.
        let moved = unsafe { self.uring.submission().push_multiple(&self.late) }.is_ok();
        debug_assert!(moved, "late SQEs have their SQ room reserved");
        if moved {
            self.late.clear();
        }
    }

    /// Submits pending SQEs and runs deferred completions without blocking.
    /// Skips the syscall entirely when there is nothing to do.
    pub(crate) fn submit(&mut self) -> io::Result<()> {
        if self.needs_enter() {
            self.enter(0, None)
        } else {
            Ok(())
        }
    }

    /// Whether SQEs wait to be submitted (a submit the kernel refused with
    /// `EAGAIN` or `EBUSY`, which `enter` reports as `Ok`, leaves them).
    pub(crate) fn sq_pending(&mut self) -> bool {
        !self.uring.submission().is_empty() || !self.late.is_empty()
    }

    /// Whether entering the kernel would submit or reap anything.
    pub(crate) fn needs_enter(&mut self) -> bool {
        let sq = self.uring.submission();
        !sq.is_empty() || !self.late.is_empty() || sq.taskrun() || sq.cq_overflow()
    }

    /// Whether completions wait to be reaped: CQEs in the CQ or an
    /// overflowed CQ (no syscall). Deferred work is left out on purpose
    /// (invariant 4).
    pub(crate) fn has_completions(&mut self) -> bool {
        !self.early.is_empty()
            || !self.uring.completion().is_empty()
            || self.uring.submission().cq_overflow()
    }

    /// Whether completions wait in the kernel's overflow list, beyond the
    /// CQ (only an enter moves them in: invariant 6's early take cannot
    /// see them).
    pub(crate) fn cq_overflowed(&mut self) -> bool {
        self.uring.submission().cq_overflow()
    }

    /// Whether the kernel flags deferred work (`IORING_SQ_TASKRUN`) that only
    /// an enter will turn into completions. A hint: it may be stale
    /// (invariant 4).
    pub(crate) fn has_deferred_work(&mut self) -> bool {
        self.uring.submission().taskrun()
    }

    /// Submits pending SQEs and sleeps until at least one CQE arrives or
    /// `timeout` passes (`None`: no time limit).
    /// Completions taken early (invariant 6) make it a plain submit.
    pub(crate) fn park(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let want = u32::from(self.early.is_empty());
        self.enter(want, timeout)
    }

    /// Copies every available completion into `out`: those taken early
    /// first (invariant 6), then the CQ's.
    pub(crate) fn reap(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.early);
        self.take_cq(out);
    }

    /// Takes what the CQ holds now out early (invariant 6), to be handed
    /// out by the next [`reap`](Ring::reap), and gives access to every
    /// completion so taken and not yet reaped. Costs no syscall.
    pub(crate) fn take_early(&mut self) -> &mut Vec<Completion> {
        let mut early = std::mem::take(&mut self.early);
        self.take_cq(&mut early);
        self.early = early;
        &mut self.early
    }

    /// Submits what the SQ holds and returns at once, without
    /// `IORING_ENTER_GETEVENTS`: the kernel posts what completed during
    /// submission and runs no deferred work (the next reap's or park's
    /// enter does). For an inline completion's try (`op/inline.rs`).
    pub(crate) fn submit_only(&mut self) -> io::Result<()> {
        self.enter_with(0, None, 0)
    }

    /// Whether exactly one SQE waits to be submitted (none late): an
    /// enter now submits that one alone.
    #[inline]
    pub(crate) fn holds_only_one_sqe(&mut self) -> bool {
        self.late.is_empty() && self.uring.submission().len() == 1
    }

    /// Takes `user_data`'s completion if the CQ holds it. Whatever else the
    /// CQ holds is taken early (invariant 6), in order, for the next reap;
    /// the one taken belongs to a single-shot op, whose only CQE it is.
    /// Costs no syscall.
    pub(crate) fn take_completion_of(&mut self, user_data: u64) -> Option<Completion> {
        let early = self.take_early();
        let at = early.iter().position(|c| c.user_data == user_data)?;
        Some(early.remove(at))
    }

    fn take_cq(&mut self, out: &mut Vec<Completion>) {
        for cqe in self.uring.completion() {
            out.push(Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            });
        }
    }

    fn enter(&mut self, want: u32, timeout: Option<Duration>) -> io::Result<()> {
        self.enter_with(want, timeout, IORING_ENTER_GETEVENTS)
    }

    /// `io_uring_enter` with `flags` (`GETEVENTS` or none) and the ring's own
    /// (a registered fd, an argument for a timeout).
    fn enter_with(&mut self, want: u32, timeout: Option<Duration>, flags: u32) -> io::Result<()> {
        self.flush_late();
        #[cfg(test)]
        if FAKE_EAGAIN.with(|f| f.replace(false)) {
            return Ok(()); // as the kernel's EAGAIN below: nothing submitted
        }
        let to_submit = self.uring.submission().len() as u32;
        let ts = timeout.map(|d| KernelTimespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        let arg = GetEventsArg {
            sigmask: 0,
            sigmask_sz: 8,
            min_wait_usec: 0,
            ts: ts.as_ref().map_or(0, |t| t as *const KernelTimespec as u64),
        };
        let mut flags = flags;
        if self.registered {
            flags |= IORING_ENTER_REGISTERED_RING;
        }
        // Without a timeout there is nothing for an extended argument to
        // say: a null signal mask spares the kernel copying one in.
        let (argp, argsz) = if ts.is_some() {
            flags |= IORING_ENTER_EXT_ARG;
            (
                &arg as *const GetEventsArg as *const libc::c_void,
                std::mem::size_of::<GetEventsArg>(),
            )
        } else {
            (std::ptr::null(), 0)
        };
        // A null `argp` without EXT_ARG means "no signal mask". io_uring_enter
        // touches no other user memory except SQEs whose validity `push`
        // callers guaranteed.
        // SAFETY: `arg` and `ts` live on this stack frame for the whole call
        // and have the kernel's layout.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.enter_fd,
                to_submit,
                want,
                flags,
                argp,
                argsz,
            )
        };
        if r >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // Timed out, interrupted, or the CQ must be reaped first: all mean
            // "go back and look at the CQ", none is a failure of the ring.
            Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
            _ => Err(err),
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Makes this thread's next `enter` return as if the kernel had said
    /// `EAGAIN`: `Ok`, nothing submitted.
    pub(crate) static FAKE_EAGAIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
impl Ring {
    /// Sets `IORING_SQ_TASKRUN` with no deferred work behind it: the stale
    /// flag the kernel leaves when it loses the race of invariant 4, made
    /// deterministic for tests.
    pub(crate) fn fake_stale_taskrun_flag(&mut self) {
        const IORING_SQ_TASKRUN: u32 = 1 << 2;
        // `Parameters` is documented as a transparent wrapper over the
        // kernel's `io_uring_params`, in which `sq_off.flags` is the u32 at
        // byte 56 (ten u32 fields, then `sq_off.head`, `tail`, `ring_mask`,
        // `ring_entries`, `flags`).
        let params = self.uring.params() as *const io_uring::Parameters as *const u8;
        // SAFETY: see above: the struct is 120 bytes long and offset 56 holds
        // a properly aligned u32 (the struct is 8-aligned).
        let flags_off = unsafe { params.add(56).cast::<u32>().read() } as usize;
        let len = flags_off + 4;
        // SAFETY: maps the ring's own SQ ring region (offset 0) shared and
        // read-write, as the crate itself does; checked for failure below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.uring.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap of the SQ ring failed");
        // SAFETY: `flags_off` lies inside the mapping, the kernel aligns the
        // field to 4 bytes and only ever accesses it atomically.
        let flags = unsafe {
            &*base
                .cast::<u8>()
                .add(flags_off)
                .cast::<std::sync::atomic::AtomicU32>()
        };
        flags.fetch_or(IORING_SQ_TASKRUN, std::sync::atomic::Ordering::SeqCst);
        // SAFETY: unmaps exactly the mapping made above; nothing refers to it.
        unsafe { libc::munmap(base, len) };
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.registered {
            // Registered ring fds are a per-thread table of 16: give ours back.
            let _ = unregister_ring_fd(self.uring.as_raw_fd(), self.enter_fd as u32);
        }
    }
}

#[cfg(test)]
#[path = "ring_tests.rs"]
mod tests;
