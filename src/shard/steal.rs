//! Work stealing: where stealable tasks go, how idle shards find them, and
//! how a push wakes a parked shard without a thundering herd or a lost
//! wake-up.
//!
//! Placement of a stealable `Runnable` (the tasks' schedule function):
//! 1. Woken or spawned on a shard of this runtime: pushed onto *that*
//!    shard's deque (not necessarily the one it last ran on).
//! 2. Anywhere else: pushed onto the runtime's global injector.
//!
//! Search and park (a shard with nothing runnable of its own):
//! 1. N1: become a searcher (`searching += 1`), unless half the shards
//!    already search, in which case go straight to N4.
//! 2. N2: take a batch from the injector, then steal half of another
//!    shard's deque (victims in turn, starting after itself).
//! 3. N3: stop searching (`searching -= 1`). If work was found and this was
//!    the last searcher, wake one more parked shard: there may be more.
//! 4. N4: park (doorbell steps R3 to R6), where step R4 also looks at the
//!    injector and every deque. A shard refused at N1 skips that look
//!    while a searcher is left (the searchers find the work), but not when
//!    none is: the last one may have found work and rung nobody, because
//!    this shard was not parked yet.
//!
//! Notify (after a stealable push onto the injector, or onto a shard's own
//! deque that now holds more than one task):
//! 1. P1: full fence.
//! 2. P2: if any shard is searching, do nothing: it will find the task.
//! 3. P3: otherwise wake at most one parked shard (the first whose doorbell
//!    CAS `PARKED -> NOTIFIED` succeeds, starting from a rotating index).
//!
//! Why no wake-up is lost: a pusher that skips at P2 read `searching`
//! before the searcher's N3 decrement; the searcher's decrement, its R3
//! store and its R4 loads are each separated by `SeqCst` fences from the
//! pusher's push, so its R4 sees the task. A pusher that finds no shard
//! `PARKED` at P3 read each state before that shard's R3, so again R4 sees
//! the task. Stealing never moves a task that is being polled: a polled
//! task's `Runnable` is in no deque until it is scheduled again.

use std::sync::atomic::{Ordering, fence};

use crossbeam_deque::Steal;

use super::Shared;
use super::core::Core;
use crate::context;
use crate::executor::{Route, Runnable};
use crate::stats::Counters;

/// The schedule function of every task: pinned and local tasks go to their
/// shard (routing rules 1 and 2 in `mailbox/remote.rs`), stealable ones
/// follow placement rules 1 and 2, and blocking closures go to their
/// runtime's pool (`blocking/mod.rs`, invariant 1).
///
/// It reads the task's [`Route`] while it holds the `Runnable`, and never
/// after handing it over: with a schedule function that captures nothing,
/// `async-task` keeps no reference of its own during the call, so another
/// shard may run, finish and free a task pushed where it can take it. So
/// what it rings after the push is never reached through the task: on a
/// shard of the task's runtime, through the thread's context (its own
/// queues, or another shard's `Remote` in the context's `Shared`); on any
/// other thread, through a clone of the route's `Arc`.
///
/// A push onto this shard's deque wakes another shard only if the deque
/// now holds more than one task: a lone task is what this shard runs soon
/// (the run queue and the deque take turns), and waking an idle shard to
/// race for it costs a doorbell and a futile search (as Tokio's LIFO slot
/// does not notify). A pinned task queued ahead of it that then blocks the
/// shard keeps it too; telling an idle shard whenever pinned tasks are
/// queued was tried and dropped (2026-12-06): it depended on wake order
/// and cost a fence and a doorbell scan on busy mixed workloads. Consequence, as in Tokio: a task
/// that makes exactly one stealable task ready and then blocks its shard
/// without yielding keeps that task until it yields. The same holds for the
/// last of several if other shards emptied the deque between the pushes
/// and one of them parks at that instant (`tests/stealing.rs`,
/// `block_until_all_but_the_last`); Tokio's LIFO slot keeps the last spawn
/// of a blocked worker every time.
pub(crate) fn schedule(runnable: Runnable) {
    /// A queue of this thread's runtime the task goes to, decided before
    /// it is handed over.
    enum Here {
        RunQueue,
        Deque,
        /// Another shard of this thread's runtime: its `Remote` is reached
        /// through the context's `Shared`, which this thread keeps alive.
        Sibling(usize),
    }
    let mut runnable = Some(runnable);
    context::with_current(|cx| {
        let here = match runnable.as_ref().map(|r| r.metadata().route()) {
            Some(Route::Shard(home)) if std::ptr::eq(&**home, &*cx.remote) => Here::RunQueue,
            Some(Route::Shard(home)) if home.runtime_id == cx.remote.runtime_id => {
                Here::Sibling(home.index)
            }
            Some(Route::Stealable(runtime)) if runtime.id == cx.shared.id => Here::Deque,
            _ => return,
        };
        let Some(r) = runnable.take() else { return };
        match here {
            Here::RunQueue => cx.run_queue.borrow_mut().push_back(r),
            Here::Deque => {
                cx.deque.push(r);
                if cx.deque.len() > 1 {
                    notify_one(&cx.shared);
                }
            }
            Here::Sibling(index) => cx.shared.remotes[index].schedule(r),
        }
    });
    let Some(runnable) = runnable else {
        return;
    };
    // Off this runtime's shards: what is rung must outlive the task, so it
    // is reached through a clone of the route's `Arc`.
    match runnable.metadata().route() {
        Route::Shard(home) => {
            let home = home.clone();
            home.schedule(runnable);
        }
        Route::Stealable(runtime) => {
            let runtime = runtime.clone();
            runtime.injector.push(runnable);
            #[cfg(test)]
            super::tests::after_foreign_push();
            notify_one(&runtime);
        }
        Route::Blocking(runtime) => {
            let runtime = runtime.clone();
            runtime.blocking.push(runnable, &runtime);
        }
    }
}

/// Notify steps P1 to P3.
pub(crate) fn notify_one(shared: &Shared) {
    // A shard this one already owes a (deferred) doorbell is `NOTIFIED` and
    // skipped below: send what we owe now, as the pusher may block next.
    context::with_current(|cx| {
        if cx.shared.id == shared.id {
            cx.send_owed_doorbells_now();
        }
    });
    fence(Ordering::SeqCst); // P1
    if shared.searching.load(Ordering::SeqCst) > 0 {
        return; // P2
    }
    let n = shared.remotes.len();
    let start = shared.next_wake.fetch_add(1, Ordering::Relaxed);
    for i in 0..n {
        let remote = &shared.remotes[(start + i) % n];
        if remote.doorbell.should_ring() {
            remote.ring_doorbell_now(); // P3, at once: the pusher may block next
            return;
        }
    }
}

impl Shared {
    /// Whether shard `me` could find stealable work (step R4's extra look):
    /// exactly what `search` would take, so a shard never wakes for work it
    /// would then refuse.
    pub(crate) fn has_stealable_work(&self, me: usize) -> bool {
        !self.injector.is_empty()
            // Our own deque is ours to pop, not to steal from, and each look
            // costs a full fence. Only this shard's thread pushes to it, and
            // nothing between `is_idle`'s look at it and the park's step R4
            // runs a waker, so it cannot fill while we decide to park.
            || self
                .stealers
                .iter()
                .enumerate()
                .any(|(i, s)| i != me && !s.is_empty())
            || self
                .remotes
                .iter()
                .enumerate()
                .any(|(i, r)| !r.preferred.is_empty() && (i == me || r.doorbell.is_running()))
    }
}

/// What a search (N1 to N3) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Search {
    /// Work is now in our deque.
    Found,
    /// Nothing anywhere.
    Nothing,
    /// Enough shards search already; they will find any work, so this shard
    /// parks without counting stealable work as its own (no busy loop).
    Refused,
}

impl Core {
    /// Steps N1 to N3.
    pub(super) fn search(&self) -> Search {
        let shared = &self.cx.shared;
        // Nothing visible to steal: skip the searcher count (two RMWs on a
        // line every shard writes). Step R4 looks again before sleeping.
        if !shared.has_stealable_work(self.cx.index) {
            return Search::Nothing;
        }
        let limit = shared.remotes.len().div_ceil(2);
        // N1: claim a searcher slot without ever counting transiently past
        // the limit (that would make the real last searcher skip its notify).
        let claimed = shared
            .searching
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s < limit).then_some(s + 1)
            });
        if claimed.is_err() {
            return Search::Refused;
        }
        let found = self.take_preferred(self.cx.index) || self.look_elsewhere(usize::MAX, false);
        let was_last = shared.searching.fetch_sub(1, Ordering::SeqCst) == 1; // N3
        if found && was_last {
            notify_one(shared);
        }
        if found {
            Search::Found
        } else {
            Search::Nothing
        }
    }

    /// Moves a batch of stealable work into our deque from wherever it
    /// waits but here: the injector; the preferred queue of another shard
    /// that is running (one that ticks takes them at its next intake, so
    /// they wait there only while it is inside a poll; asleep or being
    /// woken, it takes them itself); and, while our own deque is empty,
    /// another shard's deque (a shard with stealable work of its own does
    /// not take its neighbours': both busy, they would trade tasks). With
    /// `after_yield`, a deque holding one task counts as empty: it is the
    /// task that just yielded.
    pub(super) fn look_elsewhere(&self, victims: usize, after_yield: bool) -> bool {
        let shared = &self.cx.shared;
        let n = shared.remotes.len();
        // After a yield (or a spent budget) the task that yielded is back in
        // our queues, in the deque if it is stealable: a shard with nothing
        // else is not busy with work of its own (a Tokio worker defers a
        // yielded task outside its local queue, which then reads empty).
        let nothing_else = || match self.cx.deque.len() {
            0 => true,
            own => after_yield && own == 1,
        };
        self.take_from_injector()
            || (1..n)
                .map(|i| (self.cx.index + i) % n)
                .any(|j| shared.remotes[j].doorbell.is_running() && self.take_preferred(j))
            || (nothing_else() && self.steal_from_others(victims))
    }

    /// Moves a batch of `StealablePreferred` tasks queued for shard `of`
    /// into our deque (our own, or another shard's that has not taken them).
    pub(super) fn take_preferred(&self, of: usize) -> bool {
        let stats = &self.cx.remote.stats;
        if self.cx.shared.remotes[of].preferred.is_empty() {
            return false; // no attempt: nothing to take
        }
        if of != self.cx.index {
            Counters::add(&stats.steals_attempted, 1);
        }
        loop {
            let before = self.cx.deque.len();
            match self.cx.shared.remotes[of]
                .preferred
                .steal_batch_and_pop(&self.cx.deque)
            {
                Steal::Success(r) => {
                    if of != self.cx.index {
                        // Every task of the batch was stolen, not one per
                        // batch (an estimate: others may steal from our
                        // deque meanwhile).
                        let taken = (self.cx.deque.len().saturating_sub(before) + 1) as u64;
                        Counters::add(&stats.steals_succeeded, 1);
                        Counters::add(&stats.tasks_stolen, taken);
                    }
                    self.cx.deque.push(r);
                    return true;
                }
                Steal::Empty => return false,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Moves a batch from the injector into our deque.
    pub(super) fn take_from_injector(&self) -> bool {
        if self.cx.shared.injector.is_empty() {
            return false; // cheap check first: a `steal` costs a full fence
        }
        let stats = &self.cx.remote.stats;
        loop {
            let before = self.cx.deque.len();
            match self.cx.shared.injector.steal_batch_and_pop(&self.cx.deque) {
                Steal::Success(r) => {
                    // Other shards may steal from our deque meanwhile: the
                    // count is an estimate and must not underflow.
                    let taken = (self.cx.deque.len().saturating_sub(before) + 1) as u64;
                    Counters::add(&stats.injector_pops, taken);
                    self.cx.deque.push(r);
                    return true;
                }
                Steal::Empty => return false,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Steals half of the first non-empty victim's deque into ours, looking
    /// at no more than `victims` of them (each look costs a full fence),
    /// starting after the last one looked at.
    fn steal_from_others(&self, victims: usize) -> bool {
        let shared = &self.cx.shared;
        let stats = &self.cx.remote.stats;
        let n = shared.stealers.len();
        let start = self.next_victim.get();
        for i in (0..n.saturating_sub(1)).take(victims) {
            let victim_index = (self.cx.index + 1 + start.wrapping_add(i) % (n - 1)) % n;
            self.next_victim.set(start.wrapping_add(i + 1));
            let victim = &shared.stealers[victim_index];
            if victim.is_empty() {
                continue;
            }
            Counters::add(&stats.steals_attempted, 1);
            loop {
                let before = self.cx.deque.len();
                match victim.steal_batch_and_pop(&self.cx.deque) {
                    Steal::Success(r) => {
                        let stolen = (self.cx.deque.len().saturating_sub(before) + 1) as u64;
                        Counters::add(&stats.steals_succeeded, 1);
                        Counters::add(&stats.tasks_stolen, stolen);
                        self.cx.deque.push(r);
                        return true;
                    }
                    Steal::Empty => break,
                    Steal::Retry => std::hint::spin_loop(),
                }
            }
        }
        false
    }
}
