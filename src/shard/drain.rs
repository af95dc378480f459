//! How a shard shuts down (the runtime side is in `shared.rs`).
//!
//! 1. D1: on first seeing the shutdown flag, close the spawn gate and wait
//!    for spawners already inside it; no new task can reach this shard now.
//! 2. D2 (graceful): keep running normally. If every task finishes before
//!    the deadline, exit with nothing cancelled. Ops and timers still
//!    registered here hold the exit back only while a task that could await
//!    them lives: one of this shard's, a pinned or local task of another
//!    shard (an op future or a compat stream moved there keeps its op on
//!    this ring; each shard says when it has none left, which behind its
//!    closed gate stays true), or a stealable task anywhere (a stolen
//!    task's ops and timers stay with the shard that polled it). A poll
//!    armed for a compat stream the caller kept, or an op future returned
//!    out of its task, has no such task: D5 cancels it. Nor does a shard
//!    exit while stealable tasks wait in any queue: it steals and runs
//!    them (they may sit behind a blocked shard).
//! 3. D3 (cancel): once the deadline passes, stop polling. Wake every live
//!    task in the registries (pinned and local tasks of this shard, and the
//!    stealable tasks of every shard: a blocked shard's would wait for it),
//!    so that each one's `Runnable` comes back to this thread,
//!    and drop them all here (task invariant 1), together with everything in
//!    this shard's deque and the global injector. A stealable task whose
//!    `Runnable` sits in another shard's deque is dropped by that shard,
//!    which cannot exit before its deque is empty. Dropped tasks'
//!    `JoinHandle`s resolve to `JoinError::Cancelled`. A shard that cannot
//!    exit yet repeats this every few milliseconds: a stolen task running
//!    elsewhere when it was woken is only marked, and may go idle there
//!    with nothing left to ring its home.
//! 4. D4: exit when both registries, the run queue, the deque, the mailbox
//!    and the injector (whose gate the runtime closed) are all empty. No task is alive, so no wake-up can produce a `Runnable` again.
//! 5. D5 (`release_ring`): send doorbells still owed to other shards, cancel
//!    the armed eventfd read and wait for its CQE and for the CQEs of native
//!    ops abandoned by cancelled tasks (their buffers must outlive them; if
//!    the kernel does not answer within about a second they are leaked),
//!    run the op hand-offs still queued here (op invariant 12), cancel
//!    tasks of other shards those last completions and calls woke into
//!    this shard's queues (graceful, a live stealable one goes to the
//!    injector instead, for a shard that stays),
//!    unregister the ring's registered files, buffers and buffer rings
//!    (the ring outlives the shard: other shards keep its fd for their
//!    doorbells), then mark the doorbell closed so nobody rings a shard
//!    that is gone.

use std::time::{Duration, Instant};

use super::core::{Core, wake_all};
use crate::executor::Route;
use crate::sys::user_data;

impl Core {
    /// Called each tick once shutdown has begun; whether the shard may exit.
    pub(super) fn shutdown_step(&self) -> bool {
        // Claims the tick queued go out before tasks are cancelled (their
        // destructors may take long).
        self.send_queued_claims();
        if !self.seen_shutdown.get() {
            self.seen_shutdown.set(true);
            self.cx
                .remote
                .draining
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.cx.remote.close_gate(); // D1
            // Runtime helpers (forwarded waits of Tokio tasks) end now: woken,
            // they come back to be dropped, and their pollers get the
            // shutdown error (as new forwarded waits do from now on).
            let helpers = self.cx.registry.borrow().internal_wakers();
            wake_all(helpers);
        }
        let deadline = self
            .cx
            .shared
            .shutdown_deadline()
            .unwrap_or_else(Instant::now);
        if !self.cancelling.get() && Instant::now() >= deadline {
            self.cancelling.set(true); // D3
        }
        if self.cx.registry.borrow().user_len() == 0
            && self.cx.run_queue.borrow().is_empty()
            && self.cx.remote.is_empty()
        {
            // D2: behind the closed gate no pinned or local task can appear
            // here again; other shards may now let their ops go.
            self.cx
                .remote
                .own_tasks_done
                .store(true, std::sync::atomic::Ordering::Release);
        }
        if self.cancelling.get() {
            let mut wakers = self.cx.registry.borrow().wakers();
            // Every shard's stealable tasks, not only ours: one first polled
            // on a shard that is blocked now would wait for that shard,
            // although any shard may drop it (it is `Send`). Woken here, it
            // comes to our deque.
            for remote in self.cx.shared.remotes.iter() {
                wakers.extend(remote.stealable_tasks.lock().iter().map(|(_, w)| w.clone()));
            }
            wake_all(wakers);
            self.drain_mailbox_cancelling();
            let shared = &self.cx.shared;
            loop {
                // Pop first: the RefMut must not live while user Drop code runs.
                // Stealable tasks are `Send`: take them from anywhere, so this
                // shard never waits on a shard that is blocked.
                let next = self.cx.run_queue.borrow_mut().pop_front();
                let Some(r) = next
                    .or_else(|| self.cx.deque.pop())
                    .or_else(|| shared.injector.steal().success())
                    .or_else(|| {
                        shared
                            .remotes
                            .iter()
                            .find_map(|q| q.preferred.steal().success())
                    })
                    .or_else(|| shared.stealers.iter().find_map(|s| s.steal().success()))
                else {
                    break;
                };
                self.cancel(r);
            }
        }
        self.exit_ready() // D4
    }

    /// Empties the mailbox while shutting down: tasks are cancelled (they
    /// may not run any more), runtime calls (timer removals, op cancels
    /// posted by other shards) still run.
    fn drain_mailbox_cancelling(&self) {
        while let Some(envelope) = self.cx.remote.pop() {
            // Taken from the mailbox like any other: counted.
            crate::stats::Counters::add(&self.cx.remote.stats.mailbox_received, 1);
            match envelope {
                crate::mailbox::Envelope::Task(r) => self.cancel(r),
                crate::mailbox::Envelope::Call(f) => {
                    crate::executor::contain(f);
                }
            }
        }
    }

    /// Step D4's condition. While still graceful, stealable tasks queued
    /// anywhere keep every shard, and a task that could await this shard's
    /// timers or ops keeps it if it has any (D2).
    pub(super) fn exit_ready(&self) -> bool {
        let shared = &self.cx.shared;
        self.cx.registry.borrow().len() == 0
            && self.cx.remote.stealable_tasks.lock().is_empty()
            && self.cx.run_queue.borrow().is_empty()
            && self.cx.deque.is_empty()
            && self.cx.remote.is_empty()
            // Sealed, not just closed: a spawner that passed the gate
            // before it closed may still push (the closer rings every
            // shard once the last one left). Read before the queues the
            // gate guards (gate rule 3): a push between a look at one of
            // them and the seal would be left there for good.
            && self.injector_gate_sealed()
            && self.cx.remote.preferred.is_empty()
            && shared.injector.is_empty()
            && (self.cancelling.get()
                // Graceful: stealable tasks queued anywhere (behind a
                // blocked shard, say) are ours to help run, not to leave.
                || (!stealable_work_queued(shared)
                    && ((self.cx.timers.borrow().len() == 0
                        && self.cx.ops.borrow().len() == 0
                        && self
                            .cx
                            .remote
                            .op_waiting
                            .load(std::sync::atomic::Ordering::Acquire)
                            == 0)
                        || !(stealable_tasks_alive(shared)
                            || tasks_alive_elsewhere(shared, self.cx.index)))))
    }

    /// Whether no spawner is inside the injector's gate any more, nor can
    /// enter it: what the injector and the preferred queues hold now is
    /// all they will ever hold.
    fn injector_gate_sealed(&self) -> bool {
        #[cfg(test)]
        super::tests::before_seal_check(&self.cx);
        self.cx.shared.injector_gate.is_sealed()
    }

    /// Step D5.
    pub(super) fn release_ring(&self) {
        self.drive_ring(); // doorbells still owed to other shards
        // Claims its reap won go out before the mailbox's calls below.
        self.send_queued_claims();
        self.exiting.set(true);
        // Completing the read is quicker and surer than cancelling it (a read
        // that went to io-wq answers ASYNC_CANCEL with -EALREADY).
        self.cx.remote.ring_eventfd();
        // Wait, with a real deadline, for the eventfd read and every op
        // still in flight; run mailbox calls meanwhile (cancels other shards
        // posted for ops of tasks they dropped). Every 100 ms each op still
        // in flight that may be cancelled gets an `ASYNC_CANCEL` by its
        // `user_data`: never a catch-all, which would also stop a `CLOSE`
        // queued in io-wq and leave its fd open (op invariant 3).
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut last_cancel: Option<std::time::Instant> = None;
        while (self.eventfd_armed.get() || self.cx.ops.borrow().len() > 0)
            && std::time::Instant::now() < deadline
        {
            self.drain_mailbox_cancelling();
            if last_cancel.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                let targets = self.cx.ops.borrow().cancellable_for_shutdown();
                let mut pending = self.cx.pending_cancels.borrow_mut();
                pending.extend(targets);
                if self.eventfd_armed.get() {
                    pending.push(user_data::EVENTFD_READ);
                }
                last_cancel = Some(std::time::Instant::now());
            }
            // Doorbells owed by the last round's completions and calls ride
            // on this enter, not after the loop (up to a second later).
            self.flush_doorbells();
            let mut ring = self.cx.ring.borrow_mut();
            self.cx.push_pending_cancels(&mut ring);
            let _ = ring.park(Some(Duration::from_millis(10)));
            drop(ring);
            self.drive_ring_for_exit();
            // Inside the loop, so that ops their drops abandon are waited
            // for too.
            self.cancel_queued();
        }
        // Op futures' last delegations run here, on the home, before the
        // doorbells below carry the wake-ups they make; any later one
        // finds the queue closed and runs where it is (op invariant 12).
        crate::op::close_handoffs(&self.cx.remote);
        self.cancel_queued();
        // Completions of the last rounds may have woken tasks elsewhere:
        // their doorbells go out now, not with a ring nobody enters again.
        // Through the eventfd if the kernel does not take them: nobody
        // enters this ring again.
        self.flush_doorbells();
        self.send_queued_claims();
        let _ = self.cx.ring.borrow_mut().submit();
        // Doorbells this exit reaped and rang count too (no tick publishes
        // them any more).
        self.publish_stats();
        if self.cx.ops.borrow().len() > 0 {
            // The kernel may still write into these ops' buffers: leak them,
            // and the registrations with them (unregistering a table an op
            // still uses makes older kernels wait for that op).
            self.cx.ops.borrow_mut().leak_all();
            self.cx
                .remote
                .ops_leaked
                .store(true, std::sync::atomic::Ordering::SeqCst);
        } else {
            // Registered files and pinned buffers must not outlive the shard
            // with the ring (whose fd other shards keep open).
            self.cx
                .fixed
                .borrow_mut()
                .release_all(&self.cx.ring.borrow());
        }
        self.cx.remote.doorbell.close();
        // Releases queued after the last mailbox drain, whose calls will
        // never run: a pusher looks at the doorbell after its push, so it
        // either saw the close or pushed before this take.
        self.cx.remote.discard_fixed_releases();
    }

    /// Completions and mailbox calls during D5 (an op's hand-off, op
    /// invariant 12) may wake stealable tasks of other shards into our
    /// queues after D4's look: we will never run them. Cancelling (D3),
    /// each is dropped here, leaves its home shard's registry and rings
    /// that shard, which may wait for it. Graceful (D2), a live task must
    /// still finish: it goes to the runtime's injector, and every other
    /// shard is rung; the shard it is registered on cannot exit before it
    /// ends, and none exits while the injector holds work.
    fn cancel_queued(&self) {
        let mut reinjected = false;
        loop {
            let next = self.cx.run_queue.borrow_mut().pop_front();
            let Some(r) = next.or_else(|| self.cx.deque.pop()) else {
                break;
            };
            let stealable = matches!(r.metadata().route(), Route::Stealable(_));
            if stealable && !self.cancelling.get() {
                self.cx.shared.injector.push(r);
                reinjected = true;
                continue;
            }
            self.cancel(r);
        }
        if reinjected {
            for remote in self.cx.shared.remotes.iter() {
                if remote.index != self.cx.index {
                    remote.ring_eventfd();
                }
            }
        }
    }

    fn drive_ring_for_exit(&self) {
        let mut done = Vec::new();
        self.cx.ring.borrow_mut().reap(&mut done);
        for c in done {
            self.on_completion(c);
        }
    }
}

/// Whether stealable tasks wait in a queue anywhere: a shard's deque or
/// preferred queue (the injector is checked by the caller).
fn stealable_work_queued(shared: &super::Shared) -> bool {
    shared.stealers.iter().any(|s| !s.is_empty())
        || shared.remotes.iter().any(|r| !r.preferred.is_empty())
}

/// Whether a pinned or local task that could await this shard's ops or
/// timers lives on another shard (D2): an op future or a compat stream
/// moved to it from here keeps its op on this ring. (Stealable tasks are
/// looked at by the caller.)
fn tasks_alive_elsewhere(shared: &super::Shared, me: usize) -> bool {
    shared
        .remotes
        .iter()
        .any(|r| r.index != me && !r.own_tasks_done.load(std::sync::atomic::Ordering::Acquire))
}

/// Whether a stealable task of the runtime is alive anywhere: registered
/// on the shard that first polled it, queued, or held by a shard between a
/// pop (or a batch steal) and its first poll, where no queue or registry
/// shows it; whatever it holds (an op future moved into it, say) may
/// belong to this shard. The spawn gates are closed, so once none is left
/// the answer stays no; while it is yes, a draining shard parks briefly
/// (`Core::park_timeout`) rather than waiting to be rung
/// (`a_stealable_task_held_between_pop_and_poll_counts_as_alive_for_the_drain`).
pub(super) fn stealable_tasks_alive(shared: &super::Shared) -> bool {
    shared
        .stealable_live
        .load(std::sync::atomic::Ordering::SeqCst)
        != 0
}
