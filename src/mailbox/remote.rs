//! `Remote`: the `Send + Sync` view of one shard that every other thread
//! holds, and the routing of spawns and wake-ups to it.
//!
//! Routing rule (the `schedule` function of every task):
//! 1. On the owning shard's thread, a woken task goes straight onto the
//!    shard's run queue: no atomics, no syscall.
//! 2. Anywhere else it is pushed onto the shard's queue (doorbell step S1)
//!    and the doorbell protocol decides whether to ring (S2, S3).
//! 3. A hand-off from another shard of the same runtime defers steps S2
//!    and S3 (the fence and the `PARKED → NOTIFIED` claim) to the end of
//!    that shard's task poll, once per target however many hand-offs, and
//!    a won claim is an `IORING_OP_MSG_RING` from its ring; from a thread
//!    that owns no ring, S2 and S3 run at once and ring the eventfd. The
//!    claim is deferred with the ring, never made early: a shard whose
//!    task poll runs long must not hold a claim that makes every other
//!    sender to that target ring nothing
//!    (`a_deadline_reset_from_a_shard_that_then_stays_busy_still_wakes_its_waiter`).
//!    The deferred S2 is one fence for all of the poll's hand-offs, and none
//!    when each came after a fence of its own (a channel send's step 2).
//! 4. A hand-off to the calling shard itself needs no S2 or S3: the shard
//!    is running this code, and passes R3 and R4 (which see the payload)
//!    before it sleeps. It rings nothing and counts nothing.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::task::Waker;

use crossbeam_deque::{Injector, Steal};
use parking_lot::{Mutex, RwLock};
use slab::Slab;

use super::doorbell::DoorbellState;
use super::gate::SpawnGate;
use crate::context;
use crate::executor::Runnable;
use crate::stats::Counters;
use crate::sys::{EventFd, user_data};

/// What travels through a shard's mailbox.
pub(crate) enum Envelope {
    /// A task to poll (a new spawn or a wake-up from another thread).
    Task(Runnable),
    /// A closure the runtime needs run on this shard (e.g. cancelling a timer).
    Call(Box<dyn FnOnce() + Send>),
}

/// One shard as seen from other threads.
pub(crate) struct Remote {
    pub(crate) index: usize,
    /// Identifies the runtime, so a shard of another runtime never defers a doorbell to us.
    pub(crate) runtime_id: usize,
    queue: Injector<Envelope>,
    pub(crate) doorbell: DoorbellState,
    gate: SpawnGate,
    /// Written (rung) by any thread under the read lock; closed under the
    /// write lock once every shard of the runtime has exited
    /// ([`release_fds`](Self::release_fds)), so a kept `Handle` or waker
    /// holds no fd.
    eventfd: RwLock<Option<EventFd>>,
    /// A duplicate of the shard's ring fd (-1 once released): it keeps the
    /// ring file alive, so the fd number is never reused under a MSG_RING
    /// another shard of this runtime pushed. Only shards of this runtime
    /// read it, so it is closed when the last of them has exited.
    ring_fd: AtomicI32,
    pub(crate) stats: Counters,
    /// Stealable tasks first polled on this shard. A `Mutex`, unlike the
    /// pinned registry, because a stolen task is dropped on another shard.
    pub(crate) stealable_tasks: Mutex<Slab<Waker>>,
    /// `Placement::StealablePreferred` tasks waiting for their first run:
    /// this shard moves them onto its deque, idle shards may take them.
    pub(crate) preferred: Injector<Runnable>,
    /// Set once this shard has begun shutting down: a stolen task that
    /// leaves its registry elsewhere then wakes it to re-check its exit.
    pub(crate) draining: AtomicBool,
    /// Set by the shard once, shutting down, it has no pinned or local
    /// task left (drain step D2): none can appear again behind its closed
    /// gate. Other shards keep their ops and timers while it is clear.
    pub(crate) own_tasks_done: AtomicBool,
    /// Native ops waiting, unsubmitted, for room in this shard's ring (op
    /// invariant 6); locked because a waiting op may be dropped elsewhere.
    /// Each with the op-table entries it needs (`op/room.rs`).
    pub(crate) op_waiters: Mutex<crate::op::RoomWaiters>,
    /// How many entries `op_waiters` holds, changed under its lock: the
    /// shard loop reads this every tick instead of taking the lock.
    pub(crate) op_waiting: AtomicUsize,
    /// The smallest need among `op_waiters` (0 when empty), likewise.
    pub(crate) op_min_need: AtomicUsize,
    /// Registered resources dropped away from this shard, to be cleared
    /// from its tables (`native::fixed::on_home`): run by the mailbox call
    /// posted with them, or earlier by a registration here that needs the
    /// room.
    pub(crate) fixed_releases: Mutex<Vec<crate::native::fixed::OnHome>>,
    /// Set (before the doorbell closes) by a shard that exited with ops the
    /// kernel never answered: it leaked them and its registrations, so
    /// releases still queued here are leaked too, never dropped (they may
    /// own memory a leaked op still names).
    pub(crate) ops_leaked: AtomicBool,
    /// Op futures' delegations to this shard, from other threads (op
    /// invariant 12): watches and abandons of the ops it owns.
    pub(crate) op_handoffs: Mutex<crate::op::HandoffQueue>,
}

impl Remote {
    pub(crate) fn new(index: usize, runtime_id: usize, ring_fd: OwnedFd, eventfd: EventFd) -> Self {
        Self {
            index,
            runtime_id,
            queue: Injector::new(),
            doorbell: DoorbellState::new(),
            gate: SpawnGate::default(),
            eventfd: RwLock::new(Some(eventfd)),
            ring_fd: AtomicI32::new(ring_fd.into_raw_fd()),
            stats: Counters::default(),
            stealable_tasks: Mutex::new(Slab::new()),
            preferred: Injector::new(),
            draining: AtomicBool::new(false),
            own_tasks_done: AtomicBool::new(false),
            op_waiters: Mutex::default(),
            op_waiting: AtomicUsize::new(0),
            op_min_need: AtomicUsize::new(0),
            fixed_releases: Mutex::default(),
            ops_leaked: AtomicBool::new(false),
            op_handoffs: Mutex::default(),
        }
    }

    /// The target fd for MSG_RING doorbells.
    pub(crate) fn ring_fd(&self) -> RawFd {
        self.ring_fd.load(Ordering::Relaxed)
    }

    /// The eventfd this shard keeps a read armed on (open while the shard
    /// runs).
    pub(crate) fn eventfd_fd(&self) -> Option<RawFd> {
        self.eventfd.read().as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Closes the ring fd duplicate and the eventfd. Called once every
    /// shard of the runtime has exited: no shard can push a MSG_RING naming
    /// the ring fd any more, and an eventfd write racing the close either
    /// finished before it (under the read lock) or finds it gone.
    pub(crate) fn release_fds(&self) {
        let fd = self.ring_fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: the duplicate was ours alone; the swap hands it to
            // exactly one caller.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        drop(self.eventfd.write().take());
    }

    /// Whether the calling thread is this shard.
    pub(crate) fn is_current(&self) -> bool {
        context::with_current(|cx| std::ptr::eq(&*cx.remote, self)).unwrap_or(false)
    }

    /// Hands a new task to this shard, unless its spawn gate is closed
    /// (shutdown), in which case the task comes back to the caller.
    pub(crate) fn spawn(&self, runnable: Runnable) -> Result<(), Runnable> {
        let Some(_inside) = self.gate.enter() else {
            return Err(runnable);
        };
        if self.is_current() && !self.queue.is_empty() {
            // Behind what waits in the mailbox: a task that spawned there
            // from another shard, then moved here and spawns again, sees its
            // spawns run in program order (`Placement::Sticky`'s promise;
            // `sticky_spawns_of_one_task_run_in_program_order_…`).
            self.push(Envelope::Task(runnable));
        } else {
            self.schedule(runnable);
        }
        Ok(())
    }

    /// Whether this shard still takes new tasks (its shutdown has not
    /// begun).
    pub(crate) fn accepts_spawns(&self) -> bool {
        !self.gate.is_closed()
    }

    /// Hands a runtime-internal closure to this shard (e.g. removing a
    /// timer of a task that moved). Never refused, like a wake-up: a shard
    /// that is draining still needs it (its exit waits for its wheel to
    /// empty). One that has exited never runs it: it is dropped unrun, here
    /// (or, if it slipped in while the shard was exiting, with this
    /// `Remote`).
    pub(crate) fn call(&self, f: Box<dyn FnOnce() + Send>) {
        self.push(Envelope::Call(f));
    }

    /// Routing rules 1 and 2 for a task owned by this shard (its spawn, and
    /// its wake-ups through `shard::schedule`). Never refuses: a live
    /// task's wake-up must arrive.
    pub(crate) fn schedule(&self, runnable: Runnable) {
        let mut runnable = Some(runnable);
        context::with_current(|cx| {
            if std::ptr::eq(&*cx.remote, self) {
                if let Some(r) = runnable.take() {
                    cx.run_queue.borrow_mut().push_back(r);
                }
            }
        });
        if let Some(r) = runnable {
            self.push(Envelope::Task(r));
        }
    }

    fn push(&self, envelope: Envelope) {
        if let Envelope::Call(f) = envelope {
            if self.doorbell.is_closed() {
                // The shard has exited: nothing will ever run the closure
                // (it is `Send`, meant for a ring that is released). Dropped
                // now, it frees what it holds, and the exited shard's
                // counters stay as they were. (No task can be woken into an
                // exited shard: none is alive, drain step D4.)
                crate::executor::contain(move || drop(f));
                return;
            }
            self.queue.push(Envelope::Call(f)); // S1
        } else {
            self.queue.push(envelope); // S1
        }
        #[cfg(test)]
        crate::shard::tests::after_foreign_push();
        self.notify();
    }

    /// A message arrived on a channel this shard watches (channel step
    /// W2): ring the doorbell if the shard is parked, else nothing. The
    /// caller has already fenced (`SeqCst`) after its push: step S2 here
    /// would be a second fence.
    pub(crate) fn notify_watcher_fenced(&self) {
        if self.defer_notify(true) {
            return;
        }
        if !self.doorbell.should_ring_fenced() {
            self.count_avoided();
            return;
        }
        self.ring_eventfd();
    }

    /// Doorbell steps S2 and S3, now or (routing rule 3) at the end of the
    /// calling shard's task poll.
    fn notify(&self) {
        if self.defer_notify(false) {
            return;
        }
        if !self.doorbell.should_ring() {
            self.count_avoided();
            return;
        }
        self.ring_eventfd();
    }

    /// Routing rules 3 and 4: on a shard of this runtime, owes this shard
    /// steps S2 and S3 (`ShardContext::push_owed_doorbells` makes them), or
    /// nothing if it is that shard; `false` anywhere else. `fenced`: the
    /// caller fenced (`SeqCst`) after its push, so the deferred S3 needs no
    /// S2 of its own for it.
    fn defer_notify(&self, fenced: bool) -> bool {
        context::with_current(|cx| {
            if cx.remote.runtime_id != self.runtime_id {
                return false;
            }
            if cx.remote.index != self.index {
                let mut owed = cx.doorbells.borrow_mut();
                if !owed.contains(&self.index) {
                    owed.push(self.index);
                }
                if !fenced {
                    cx.doorbells_unfenced.set(true);
                }
            }
            true
        }) == Some(true)
    }

    /// A hand-off that needed no doorbell: counted, unless the shard has
    /// exited (a gone shard's counters stay as they were; its channels'
    /// senders and dropped receivers may still come this way).
    pub(crate) fn count_avoided(&self) {
        if !self.doorbell.is_closed() {
            Counters::bump(&self.stats.doorbells_avoided);
        }
    }

    /// Rings this shard's doorbell at once, not at the end of the caller's
    /// task poll: a MSG_RING submitted from the calling shard's ring, or the
    /// eventfd from anywhere else (or if that ring is busy or refuses). Used
    /// when the caller may go on to block its own shard: a stealable push
    /// asks a parked shard to come and take the work *because* the pusher
    /// may not get back to it.
    pub(crate) fn ring_doorbell_now(&self) {
        let sent = context::with_current(|cx| {
            if cx.remote.runtime_id != self.runtime_id {
                return false;
            }
            let Ok(mut ring) = cx.ring.try_borrow_mut() else {
                return false;
            };
            // They ride on the same submit.
            let mut claimed = Vec::new();
            cx.push_owed_doorbells(&mut ring, &mut claimed);
            let sqe = user_data::doorbell_sqe(
                self.ring_fd(),
                self.index,
                cx.shared.features.skip_cqe_on_success,
            );
            // SAFETY: a MSG_RING data SQE points at no user memory; the
            // target ring fd is kept open by `self` (held in `Shared`).
            let pushed = unsafe { ring.push(&sqe) }.is_ok();
            if pushed {
                claimed.push(self.index);
            }
            // A doorbell the kernel did not take (left in the SQ by an
            // `EAGAIN` submit, or refused on the spot) is rung here.
            let _ = ring.submit();
            cx.ring_eventfds_if_not_taken(&mut ring, &claimed);
            pushed
        });
        if sent != Some(true) {
            self.ring_eventfd();
        }
    }

    /// Rings the eventfd doorbell (also the fallback when MSG_RING fails).
    pub(crate) fn ring_eventfd(&self) {
        // An eventfd write fails only if the counter would overflow, which
        // needs 2^64 unread doorbells; the shard reads it on every wake-up.
        if let Some(eventfd) = &*self.eventfd.read() {
            let _ = eventfd.notify();
        }
    }

    /// Takes the next envelope, if any.
    pub(crate) fn pop(&self) -> Option<Envelope> {
        // Two loads instead of a `steal`'s full fence: the common case is
        // an empty mailbox. A push racing this check is seen by the park
        // protocol's step R4.
        if self.queue.is_empty() {
            return None;
        }
        loop {
            match self.queue.steal() {
                Steal::Success(e) => return Some(e),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Closes the spawn gate and waits for spawners already inside it.
    pub(crate) fn close_gate(&self) {
        self.gate.close();
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.release_fds();
        self.discard_fixed_releases();
    }
}

impl Remote {
    /// Drops the releases still queued for this shard, which has exited
    /// (its ring is released), or leaks them if it leaked ops.
    pub(crate) fn discard_fixed_releases(&self) {
        let queued = std::mem::take(&mut *self.fixed_releases.lock());
        if self.ops_leaked.load(Ordering::SeqCst) {
            std::mem::forget(queued);
        } else {
            drop(queued);
        }
    }
}
