//! The thread-local "current shard": which ring, run queue, task registry
//! and timer wheel the code running on this thread belongs to.
//!
//! This is deliberately a small, low-level module. The shard installs its
//! [`ShardContext`] for the lifetime of its loop ([`enter`]); the executor,
//! the mailbox and the time lane read it through [`with_current`]. None of
//! them imports `shard/`, so no arrow in the layering runs back up.
//!
//! Invariants:
//! 1. A context pointer is installed only by [`enter`] and removed when the
//!    returned guard drops; the guard borrows the context, so the pointer
//!    never outlives what it points at.
//! 2. Only the owning thread ever sees its context (it is thread-local), so
//!    the `RefCell`s inside need no locking; a borrow is never held across a
//!    call that can poll a task or wake a waker.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use crossbeam_deque::Worker;

use crate::channel::watch::WatchList;
use crate::executor::{Runnable, TaskRegistry};
use crate::mailbox::Remote;
use crate::op::{InlineTries, OpTable};
use crate::shard::Shared;
use crate::sys::{FixedSlots, Ring, user_data};
use crate::time::TimerWheel;

/// Everything a shard thread owns that lanes and tasks need to reach.
pub(crate) struct ShardContext {
    pub(crate) index: usize,
    /// The runtime this shard belongs to.
    pub(crate) shared: Arc<Shared>,
    /// This shard's own mailbox (compared by address to route wakes locally).
    pub(crate) remote: Arc<Remote>,
    /// Tasks ready to poll on this shard.
    pub(crate) run_queue: RefCell<VecDeque<Runnable>>,
    /// Live tasks of this shard (task invariant 2).
    pub(crate) registry: RefCell<TaskRegistry>,
    /// This shard's timers.
    pub(crate) timers: RefCell<TimerWheel>,
    /// This shard's deque of stealable tasks (other shards hold its stealer).
    pub(crate) deque: Worker<Runnable>,
    /// Shards whose doorbell this shard must ring at the end of its tick.
    pub(crate) doorbells: RefCell<Vec<usize>>,
    /// Some hand-off behind `doorbells` came with no fence after it: their
    /// S3 needs an S2 first (routing rule 3).
    pub(crate) doorbells_unfenced: Cell<bool>,
    /// This shard's io_uring.
    pub(crate) ring: RefCell<Ring>,
    /// Native ops in flight on this shard's ring (`op/`).
    pub(crate) ops: RefCell<OpTable>,
    /// `ASYNC_CANCEL`s that could not be queued yet (SQ full while the
    /// kernel waits for CQEs to be reaped); retried every tick.
    pub(crate) pending_cancels: RefCell<Vec<u64>>,
    /// How many ops may be in flight (op invariant 6).
    pub(crate) op_capacity: Cell<usize>,
    /// Slots of this ring's registered files, buffers and buffer rings.
    pub(crate) fixed: RefCell<FixedSlots>,
    /// Channels whose waiting receivers this shard watches (spin mode).
    pub(crate) watches: WatchList,
    /// The task this shard's loop is polling now, if it is one of this
    /// shard's own (pinned or local): its waker's data pointer. Null
    /// otherwise. Only that task's waker may be left to the watch list.
    pub(crate) polling_own: Cell<*const ()>,
    /// How this shard's inline completions went (`op/inline.rs`).
    pub(crate) inline_tries: InlineTries,
    /// How many times this shard ran out of work (each search, spin or
    /// park after an idle tick counts one): a task woken into this shard's
    /// queues before one of these has run, or was stolen by another shard
    /// (op invariant 8, idle pauses).
    pub(crate) idles: Cell<u64>,
}

impl ShardContext {
    /// Makes the doorbell steps S2 and S3 this shard owes other shards
    /// (routing rule 3) and pushes a MSG_RING onto `ring` for each claim it
    /// wins (the next `io_uring_enter` sends them); a doorbell whose SQE
    /// cannot be queued falls back to the target's eventfd. Adds to
    /// `claimed` the targets whose MSG_RING waits in the SQ: a caller that submits and
    /// finds the kernel did not take them rings their eventfds
    /// ([`ring_eventfds_if_not_taken`](Self::ring_eventfds_if_not_taken)), since
    /// each holds a won claim that makes other senders ring nothing.
    pub(crate) fn push_owed_doorbells(&self, ring: &mut Ring, claimed: &mut Vec<usize>) {
        // Taken out while the claims are made (a fallback eventfd write
        // cannot owe more), then given back, so a shard that sends in every
        // poll does not allocate the list anew each time.
        let mut owed = std::mem::take(&mut *self.doorbells.borrow_mut());
        let skip = self.shared.features.skip_cqe_on_success;
        // S2, once for all of them, unless each hand-off (S1, earlier in
        // this thread) fenced after itself.
        if self.doorbells_unfenced.replace(false) {
            fence(Ordering::SeqCst);
        }
        for &target in &owed {
            let remote = &self.shared.remotes[target];
            // S3.
            if !remote.doorbell.should_ring_fenced() {
                remote.count_avoided();
                continue;
            }
            let sqe = user_data::doorbell_sqe(remote.ring_fd(), target, skip);
            // SAFETY: a MSG_RING data SQE points at no user memory; the
            // target ring fd is kept open by `remote` (held in `Shared`).
            if unsafe { ring.push(&sqe) }.is_err() {
                remote.ring_eventfd();
                continue;
            }
            claimed.push(target);
        }
        owed.clear();
        let mut list = self.doorbells.borrow_mut();
        if list.is_empty() {
            *list = owed;
        }
    }

    /// After a submit, the doorbells of `claimed` (what
    /// [`push_owed_doorbells`](Self::push_owed_doorbells) queued) that it
    /// did not deliver fall back to their targets' eventfds at once, not at
    /// this shard's next reap: the caller may block its thread next, and a
    /// won claim makes every other sender ring nothing. Not delivered:
    /// - left in the SQ (an `EAGAIN` or `EBUSY` submit, `Ok` for the loop's
    ///   sake): every claim is rung; a MSG_RING sent later as well is one
    ///   spurious wake-up;
    /// - refused by the kernel at submission (`-ENOMEM` for a
    ///   `DEFER_TASKRUN` target under memory pressure, `-EOVERFLOW`): the
    ///   failure CQE is in our CQ already. It is taken out early (ring
    ///   invariant 6) and answered here instead of by the reap. If the CQ
    ///   overflowed, the failure may wait in the kernel's overflow list,
    ///   out of sight: every claim is rung then. A refusal the kernel
    ///   reports later (a MSG_RING it had to punt to a worker) is still
    ///   answered by the reap.
    pub(crate) fn ring_eventfds_if_not_taken(&self, ring: &mut Ring, claimed: &[usize]) {
        if claimed.is_empty() {
            return;
        }
        if ring.sq_pending() || ring.cq_overflowed() {
            for &target in claimed {
                self.shared.remotes[target].ring_eventfd();
            }
        } else if ring.has_completions() {
            ring.take_early().retain(|c| match c.refused_doorbell() {
                Some(target) => {
                    if let Some(remote) = self.shared.remotes.get(target) {
                        remote.ring_eventfd();
                    }
                    false
                }
                None => true,
            });
        }
    }

    /// Queues the cancels that earlier found the SQ full (op invariant 3).
    pub(crate) fn push_pending_cancels(&self, ring: &mut Ring) {
        let mut pending = self.pending_cancels.borrow_mut();
        while let Some(&target) = pending.last() {
            let sqe = io_uring::opcode::AsyncCancel::new(target)
                .build()
                .user_data(user_data::CANCEL);
            // A late receive not yet issued is withdrawn; else the cancel
            // goes behind its op, in the SQ or the kernel (ring invariant 5).
            let queued = ring.withdraw_late(target)
                // SAFETY: ASYNC_CANCEL points at no user memory.
                || unsafe { ring.push(&sqe) }.is_ok();
            if !queued {
                return; // still full: next tick
            }
            pending.pop();
        }
    }

    /// Sends every owed doorbell now (push and submit), unless the ring is
    /// borrowed further up this thread's stack, in which case the caller
    /// that holds it will submit.
    pub(crate) fn send_owed_doorbells_now(&self) {
        if self.doorbells.borrow().is_empty() {
            return;
        }
        if let Ok(mut ring) = self.ring.try_borrow_mut() {
            let mut claimed = Vec::new();
            self.push_owed_doorbells(&mut ring, &mut claimed);
            let _ = ring.submit();
            self.ring_eventfds_if_not_taken(&mut ring, &claimed);
        }
    }
}

thread_local! {
    static CURRENT: Cell<*const ShardContext> = const { Cell::new(ptr::null()) };
}

/// Removes the context again when dropped.
pub(crate) struct EnterGuard<'a> {
    previous: *const ShardContext,
    _borrow: PhantomData<&'a ShardContext>,
}

/// Installs `cx` as this thread's current shard until the guard drops.
pub(crate) fn enter(cx: &ShardContext) -> EnterGuard<'_> {
    let previous = CURRENT.with(|c| c.replace(cx as *const ShardContext));
    EnterGuard {
        previous,
        _borrow: PhantomData,
    }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Runs `f` with the current shard's context, or returns `None` off-shard.
///
/// Always inlined: left to itself the compiler kept it out of line with
/// the caller's closure inside, a call and a frame on every op's path
/// (80 instructions per 4 KiB read under callgrind, `DESIGN_OPTIONS.md`).
#[inline(always)]
pub(crate) fn with_current<R>(f: impl FnOnce(&ShardContext) -> R) -> Option<R> {
    let ptr = CURRENT.with(Cell::get);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: invariant 1: a non-null pointer was installed by `enter` from a
    // live `&ShardContext` whose guard is still alive on this thread.
    Some(f(unsafe { &*ptr }))
}

/// The index of the shard this thread runs, if any.
pub(crate) fn current_index() -> Option<usize> {
    with_current(|cx| cx.index)
}
