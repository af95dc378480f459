//! The shard loop: one tick after another, parking in the kernel when idle.
//!
//! A tick, in order:
//! 1. Intake: move at most `4 × budget` envelopes from the mailbox onto the
//!    run queue (or run runtime calls).
//! 2. Timers: fire every timer that is due.
//! 3. Tasks: poll at most `budget` tasks, so a task that wakes itself
//!    forever cannot starve the mailbox, timers or I/O.
//! 4. Ring: send the doorbells this tick owes other shards (one MSG_RING
//!    each), submit, and reap completions without blocking.
//!
//! When a tick leaves nothing runnable the shard parks (protocol steps
//! R2-R6 in `mailbox/doorbell.rs`; `park.rs`), waking for a CQE, a doorbell
//! or the nearest timer deadline.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crossbeam_deque::Worker;
use io_uring::{opcode, types};

use super::Shared;
use super::steal::{Search, notify_one};
use crate::context::{self, ShardContext};
use crate::executor::{Route, Runnable, TaskRegistry};
use crate::mailbox::Envelope;
use crate::op::OpTable;
use crate::stats::Counters;
use crate::sys::user_data::{self, Tag};
use crate::sys::{Completion, Ring};
use crate::time::TimerWheel;

/// The shard's own state; lives on the shard thread only.
pub(crate) struct Core {
    pub(super) cx: ShardContext,
    completions: RefCell<Vec<Completion>>,
    fired: RefCell<Vec<Waker>>,
    /// The kernel writes the eventfd counter here; never read by us.
    eventfd_buf: ManuallyDrop<Box<UnsafeCell<u64>>>,
    pub(super) eventfd_armed: Cell<bool>,
    pub(super) seen_shutdown: Cell<bool>,
    pub(super) cancelling: Cell<bool>,
    pub(super) exiting: Cell<bool>,
    pub(super) cancelled: Cell<usize>,
    /// The shutdown deadline, once shutdown has begun (`deadline_passed`).
    deadline: Cell<Option<Option<Instant>>>,
    /// Counts task picks, for the fairness rotation in `next_task`.
    picks: Cell<usize>,
    /// The last tick ended on a task that yielded or spent its budget: the
    /// next pick looks elsewhere first, as every 61st does (coop
    /// invariant 7).
    look_next: Cell<bool>,
    /// That task is stealable: it waits in our deque, where it does not
    /// count as work of our own (`look_elsewhere`'s `after_yield`).
    yielder_in_deque: Cell<bool>,
    /// Shards whose doorbell claims `flush_doorbells` won and whose
    /// MSG_RINGs it queued in the SQ, not yet known to be submitted: sent
    /// before any task runs (`send_queued_claims`).
    pub(super) queued_claims: RefCell<Vec<usize>>,
    /// Where the next look at other shards' deques starts (`steal.rs`).
    pub(super) next_victim: Cell<usize>,
    local: LocalCounters,
}

/// Counters only this thread writes, published once per tick.
#[derive(Default)]
struct LocalCounters {
    msg_ring: Cell<u64>,
    eventfd: Cell<u64>,
    received: Cell<u64>,
}

impl Core {
    pub(super) fn new(
        index: usize,
        shared: Arc<Shared>,
        ring: Ring,
        deque: Worker<Runnable>,
    ) -> Self {
        let remote = shared.remotes[index].clone();
        // At least 2: an op with a linked timeout needs two entries.
        let op_capacity = (ring.cq_entries() / 2).saturating_sub(32).max(2);
        Self {
            cx: ShardContext {
                index,
                shared,
                remote,
                run_queue: RefCell::new(VecDeque::with_capacity(256)),
                registry: RefCell::new(TaskRegistry::default()),
                timers: RefCell::new(TimerWheel::new(Instant::now())),
                deque,
                doorbells: RefCell::new(Vec::new()),
                doorbells_unfenced: Cell::new(false),
                ring: RefCell::new(ring),
                ops: RefCell::new(OpTable::default()),
                pending_cancels: RefCell::new(Vec::new()),
                fixed: RefCell::new(crate::sys::FixedSlots::default()),
                watches: Default::default(),
                polling_own: Cell::new(std::ptr::null()),
                inline_tries: Default::default(),
                idles: Cell::new(0),
                // Half the CQ, less room for doorbells, the eventfd read and cancels.
                op_capacity: Cell::new(op_capacity),
            },
            completions: RefCell::new(Vec::with_capacity(64)),
            fired: RefCell::new(Vec::new()),
            eventfd_buf: ManuallyDrop::new(Box::new(UnsafeCell::new(0))),
            eventfd_armed: Cell::new(false),
            seen_shutdown: Cell::new(false),
            cancelling: Cell::new(false),
            exiting: Cell::new(false),
            cancelled: Cell::new(0),
            deadline: Cell::new(None),
            picks: Cell::new(0),
            look_next: Cell::new(false),
            yielder_in_deque: Cell::new(false),
            queued_claims: RefCell::new(Vec::new()),
            next_victim: Cell::new(0),
            local: LocalCounters::default(),
        }
    }

    /// Runs until shutdown; returns how many tasks had to be cancelled.
    pub(super) fn run(self) -> usize {
        let _enter = context::enter(&self.cx);
        self.arm_eventfd();
        loop {
            self.tick();
            if self.cx.shared.is_shutting_down() && self.shutdown_step() {
                break;
            }
            if self.is_idle() {
                self.cx.idles.set(self.cx.idles.get() + 1);
                let search = if self.cancelling.get() {
                    Search::Nothing
                } else {
                    self.search()
                };
                if search == Search::Found {
                    // Not parking after all: send what the idle tick queued.
                    let _ = self.cx.ring.borrow_mut().submit();
                    continue;
                }
                self.park(search != Search::Refused);
            }
        }
        self.release_ring();
        // Counted after D5, which cancels the tasks its last completions
        // woke into this shard's queues.
        self.cancelled.get()
    }

    fn tick(&self) {
        // Completions that arrived while parked (or since the last reap)
        // wake their tasks now, so they run in this tick, not the next.
        if self.cx.ring.borrow_mut().has_completions() {
            self.reap();
        }
        // Before the mailbox's calls and the timers' wakers, which may take
        // long too: claims won by this reap or by the last tick's (which
        // ended without an enter, work being left) go out now.
        self.send_queued_claims();
        if !self.cx.watches.is_empty() {
            self.cx.watches.wake_ready();
        }
        self.intake();
        self.fire_timers();
        self.run_tasks();
        if self.is_idle() {
            // The park's `io_uring_enter` will submit what is queued (owed
            // doorbells included): one syscall instead of two. Only take what
            // is already in the CQ: `is_idle` found none a moment ago, so
            // this is a rare CQE posted since (a ring without
            // DEFER_TASKRUN), which the park's look would find too. Nothing
            // else waits on this reap: an idle shard has no room waiters
            // that fit (`is_idle`).
            self.flush_doorbells();
            if self.cx.ring.borrow_mut().has_completions() {
                self.reap();
            }
        } else {
            self.drive_ring();
        }
        self.publish_stats();
    }

    fn budget(&self) -> usize {
        self.cx.shared.config.budget
    }

    fn intake(&self) {
        let remote = &self.cx.remote;
        if !remote.preferred.is_empty()
            && !self.cancelling.get()
            && self.take_preferred(self.cx.index)
        {
            // The batch may outlast our next poll (a task that blocks us):
            // an idle shard is told, as for a batch from the injector.
            self.share_batch();
        }
        for _ in 0..self.budget().saturating_mul(4) {
            let Some(envelope) = remote.pop() else { break };
            self.local.received.set(self.local.received.get() + 1);
            match envelope {
                Envelope::Task(r) => self.cx.run_queue.borrow_mut().push_back(r),
                Envelope::Call(f) => {
                    crate::executor::contain(f);
                }
            }
        }
    }

    fn fire_timers(&self) {
        if self.cx.timers.borrow().len() == 0 {
            return; // no clock read when no timer is pending
        }
        // Reuse one buffer across ticks: take it out while the wakers run.
        let mut fired = std::mem::take(&mut *self.fired.borrow_mut());
        self.cx
            .timers
            .borrow_mut()
            .advance(Instant::now(), &mut fired);
        wake_all(fired.drain(..));
        *self.fired.borrow_mut() = fired;
    }

    /// The next task to poll. Picks alternate between the pinned/local run
    /// queue and the stealable deque, so neither class starves the other;
    /// every 61st pick looks at the global injector first and, if it is
    /// empty, at the other shards' deques and the preferred queues of those
    /// that are running: work spawned from outside is not starved by a
    /// shard busy with its own, and stealable work stranded behind a shard
    /// blocked in a long poll is taken even by a shard that never goes idle
    /// (a task that yields in a loop).
    fn next_task(&self) -> Option<Runnable> {
        let pick = self.picks.get().wrapping_add(1);
        self.picks.set(pick);
        let from_queue = || self.cx.run_queue.borrow_mut().pop_front();
        let from_deque = || self.cx.deque.pop();
        // One other deque per look: a shard busy with pinned work among
        // many shards pays one fence per 61 polls, not one per shard.
        let asked = self.look_next.replace(false);
        let yielder_in_deque = self.yielder_in_deque.replace(false);
        if (asked || pick % 61 == 0)
            && !self.cancelling.get()
            && self.look_elsewhere(1, asked && yielder_in_deque)
        {
            self.share_batch();
            // The last poll's doorbells were left for the end of the tick
            // (nothing was queued here); foreign work may run long.
            self.cx.send_owed_doorbells_now();
            return from_deque();
        }
        let local = if pick % 2 == 0 {
            from_queue().or_else(from_deque)
        } else {
            from_deque().or_else(from_queue)
        };
        local.or_else(|| {
            let took = self.take_from_injector();
            self.share_batch();
            if took {
                self.cx.send_owed_doorbells_now(); // as above
            }
            took.then(from_deque).flatten()
        })
    }

    /// A batch just moved from the injector is visible to other shards only
    /// in our deque now; if it holds more than one task, wake an idle shard
    /// to share it (we may block in the next poll).
    fn share_batch(&self) {
        if self.cx.deque.len() > 1 {
            notify_one(&self.cx.shared);
        }
    }

    pub(super) fn run_tasks(&self) {
        self.send_queued_claims();
        for _ in 0..self.budget() {
            let Some(runnable) = self.next_task() else {
                break;
            };
            if self.cancelling.get()
                || (self.seen_shutdown.get() && runnable.metadata().is_internal())
                || self.deadline_passed()
            {
                // A drop can wake tasks elsewhere (their join handles).
                self.cancel(runnable);
                self.send_owed_doorbells_now();
            } else if runnable.metadata().is_aborted() {
                drop_quietly(runnable);
                self.send_owed_doorbells_now();
            } else {
                // Published before the poll, so whoever the poll wakes sees it.
                Counters::add(&self.cx.remote.stats.tasks_polled, 1);
                let own = matches!(runnable.metadata().route(), Route::Shard(_));
                let raw = Runnable::into_raw(runnable);
                if own {
                    self.cx.polling_own.set(raw.as_ptr());
                }
                // SAFETY: `raw` came from `into_raw` just above, and is turned
                // back into a `Runnable` once.
                let runnable = unsafe { Runnable::from_raw(raw) };
                // Tracked catches panics in poll; this catches one in a
                // future's destructor, so the shard survives either way.
                self.cx.inline_tries.poll_begins();
                crate::executor::contain(|| runnable.run());
                self.cx.inline_tries.poll_ended();
                self.cx.polling_own.set(std::ptr::null());
                self.send_owed_doorbells_now();
                if crate::executor::coop::take_spent() {
                    // It spent its budget or yielded: the mailbox, timers,
                    // ring and other shards' work come before its next poll
                    // (coop invariants 6 and 7).
                    self.look_next.set(true);
                    self.yielder_in_deque.set(!own);
                    break;
                }
            }
        }
    }

    /// D3 begins in the middle of a tick: a task queued behind a poll that
    /// outlasted the shutdown deadline is cancelled, not polled first. One
    /// load of a read-mostly line per poll while running; the deadline is
    /// read (under its lock) once, then only the clock.
    fn deadline_passed(&self) -> bool {
        if !self.cx.shared.is_shutting_down() {
            return false;
        }
        let deadline = match self.deadline.get() {
            Some(d) => d,
            None => {
                let d = self.cx.shared.shutdown_deadline();
                self.deadline.set(Some(d));
                d
            }
        };
        let passed = deadline.is_none_or(|d| Instant::now() >= d);
        if passed {
            self.cancelling.set(true);
        }
        passed
    }

    /// Drops a task that shutdown did not let finish.
    pub(super) fn cancel(&self, runnable: Runnable) {
        let meta = runnable.metadata();
        if !meta.is_aborted() && !meta.is_internal() {
            self.cancelled.set(self.cancelled.get() + 1);
        }
        drop_quietly(runnable);
    }

    pub(super) fn drive_ring(&self) {
        self.flush_doorbells();
        if !self.cx.pending_cancels.borrow().is_empty() {
            self.cx.push_pending_cancels(&mut self.cx.ring.borrow_mut());
        }
        if !self.eventfd_armed.get() && !self.exiting.get() {
            self.arm_eventfd(); // an earlier arm found the SQ unusable
        }
        // A failing enter here means the ring itself is broken (EBADF,
        // EFAULT); the completions already queued are still reaped.
        let reap = {
            let mut ring = self.cx.ring.borrow_mut();
            if ring.needs_enter() {
                let _ = ring.submit();
                true
            } else {
                ring.has_completions()
            }
        };
        if reap {
            self.reap();
        } else {
            // No enter and nothing to reap (a tick whose tasks only talked
            // through channels): the reap's bookkeeping is skipped, but not
            // its look at room an op's failed submit may have freed.
            crate::op::wake_waiters_if_room(&self.cx);
        }
    }

    /// Dispatches the completions already in the CQ (no syscall).
    fn reap(&self) {
        // Reuse one buffer across ticks: take it out while completions run.
        let mut batch = std::mem::take(&mut *self.completions.borrow_mut());
        self.cx.ring.borrow_mut().reap(&mut batch);
        let woken_from = self.cx.run_queue.borrow().len();
        batch.drain(..).for_each(|c| self.on_completion(c));
        // Tasks these completions woke run newest first (LIFO, like Tokio's
        // LIFO slot); the CQEs themselves were dispatched in order (a
        // multishot or zero-copy op's CQEs must be). With DEFER_TASKRUN the
        // CQ holds what completed inline at submit (a send that went out at
        // once) before what deferred task work posted (data that arrived), so
        // the task that got data runs first, and the reply it sends is
        // submitted ahead of the receive its peer posts next, which then
        // completes inline instead of arming a poll: one-shard TCP echo
        // 15.6 -> 13.8 µs (raw floor 13.1). Only the woken tasks' relative
        // order changes; as always, the task budget may leave some of them
        // for the next tick.
        if let Ok(mut queue) = self.cx.run_queue.try_borrow_mut() {
            if queue.len() > woken_from + 1 {
                queue.make_contiguous()[woken_from..].reverse();
            }
        }
        *self.completions.borrow_mut() = batch;
        // Ops waiting for room can go now if these completions made some.
        crate::op::wake_waiters_if_room(&self.cx);
        // Completions may have woken tasks on other shards; their doorbells
        // are pushed now and submitted by the next enter (tick or park).
        self.flush_doorbells();
    }

    pub(super) fn on_completion(&self, c: Completion) {
        if let Some(target) = c.refused_doorbell() {
            // MSG_RING refused (-EOVERFLOW on a full target CQ, ...): the
            // wake-up must still arrive, so fall back to the eventfd.
            if let Some(remote) = self.cx.shared.remotes.get(target) {
                remote.ring_eventfd();
            }
            return;
        }
        match user_data::decode(c.user_data) {
            Tag::DoorbellIn => self.local.msg_ring.set(self.local.msg_ring.get() + 1),
            Tag::EventFdRead => {
                self.eventfd_armed.set(false);
                if c.result > 0 {
                    self.local.eventfd.set(self.local.eventfd.get() + 1);
                }
                if !self.exiting.get() {
                    self.arm_eventfd();
                }
            }
            Tag::Op(user_data) => crate::op::dispatch(&self.cx.ops, Completion { user_data, ..c }),
            Tag::DoorbellOut(_) | Tag::Cancel | Tag::Unknown(_) => {}
        }
    }

    pub(super) fn arm_eventfd(&self) {
        if self.eventfd_armed.get() {
            return;
        }
        #[cfg(test)]
        if super::tests::refuse_eventfd_arm(&self.cx) {
            return;
        }
        let Some(fd) = self.cx.remote.eventfd_fd() else {
            return; // released: every shard has exited (cannot happen while we run)
        };
        let sqe = opcode::Read::new(types::Fd(fd), self.eventfd_buf.get().cast(), 8)
            .build()
            .user_data(user_data::EVENTFD_READ);
        // SAFETY: the buffer is owned by `self`, not freed or moved before this read's CQE is
        // reaped (`release_ring` waits for it; `Drop` leaks it if unsure); the eventfd is owned
        // by our `Remote`, which outlives the shard.
        if unsafe { self.cx.ring.borrow_mut().push(&sqe) }.is_ok() {
            self.eventfd_armed.set(true);
        }
    }

    /// Nothing runnable here, nothing in the mailbox, nothing the kernel
    /// holds for us.
    fn is_idle(&self) -> bool {
        self.cx.run_queue.borrow().is_empty()
            && self.cx.deque.is_empty()
            && self.cx.remote.is_empty()
            && self.cx.remote.preferred.is_empty()
            && !self.cx.ring.borrow_mut().has_completions()
            && self.cx.pending_cancels.borrow().is_empty()
            && !self.ops_can_proceed()
            && !self.cx.watches.has_news()
    }

    /// Ops wait for room and there is room: waking them is work to do.
    fn ops_can_proceed(&self) -> bool {
        crate::op::waiters_fit(&self.cx)
    }

    pub(super) fn publish_stats(&self) {
        let s = &self.cx.remote.stats;
        Counters::add(&s.doorbells_msg_ring, self.local.msg_ring.take());
        Counters::add(&s.doorbells_eventfd, self.local.eventfd.take());
        Counters::add(&s.mailbox_received, self.local.received.take());
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if self.eventfd_armed.get() {
            // The kernel may still write into the buffer (release_ring could
            // not confirm the read's end): leaking 8 bytes beats a
            // use-after-free.
            return;
        }
        // SAFETY: the read is not armed, so the kernel holds no pointer to
        // the buffer, and this is the only place that drops it.
        unsafe { ManuallyDrop::drop(&mut self.eventfd_buf) };
    }
}

/// Wakes every waker, containing a panic from a foreign waker implementation.
pub(super) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        crate::executor::contain(|| w.wake());
    }
}

/// Drops a runnable, containing a panic from the future's destructor.
fn drop_quietly(runnable: Runnable) {
    crate::executor::contain(move || drop(runnable));
}
