//! Ops waiting, unsubmitted, for room in their shard's ring (invariant 6).
//!
//! Each waiter records how many op-table entries it needs (2 for an op with
//! a linked timeout). The shard wakes every waiter once a reap leaves room
//! for the smallest need, and counts waiters as work only then: a waiter
//! that cannot fit yet never keeps the shard spinning.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;

use crate::context::ShardContext;
use crate::mailbox::Remote;

/// One op's entry among its shard's waiters, if it has one.
#[derive(Default)]
pub(crate) struct RoomWait {
    entry: Option<(Arc<Remote>, usize)>,
}

/// Publishes the waiter count and the smallest need (under the lock).
fn publish(remote: &Remote, waiters: &slab::Slab<(Waker, usize)>) {
    let min = waiters
        .iter()
        .map(|(_, (_, need))| *need)
        .min()
        .unwrap_or(0);
    remote.op_min_need.store(min, Ordering::Release);
    remote.op_waiting.store(waiters.len(), Ordering::Release);
}

impl RoomWait {
    /// Registers (or refreshes) the calling op on the current shard.
    pub(crate) fn register(&mut self, waker: &Waker, need: usize) {
        let here = crate::context::with_current(|cx| cx.remote.clone()).expect("polled on a shard");
        if let Some((remote, key)) = &self.entry {
            if Arc::ptr_eq(remote, &here) {
                let mut waiters = here.op_waiters.lock();
                if let Some((w, n)) = waiters.get_mut(*key) {
                    if !w.will_wake(waker) {
                        *w = waker.clone();
                    }
                    if *n != need {
                        *n = need;
                        publish(&here, &waiters);
                    }
                    return;
                }
            }
        }
        self.cancel(); // polled on another shard now: move the entry
        let mut waiters = here.op_waiters.lock();
        let key = waiters.insert((waker.clone(), need));
        publish(&here, &waiters);
        drop(waiters);
        self.entry = Some((here, key));
    }

    /// Leaves the waiters (submitted, failed, timed out or dropped).
    pub(crate) fn cancel(&mut self) {
        if let Some((remote, key)) = self.entry.take() {
            let mut waiters = remote.op_waiters.lock();
            waiters.try_remove(key);
            publish(&remote, &waiters);
        }
    }
}

/// Whether some waiter of this shard fits now (no lock taken).
pub(crate) fn waiters_fit(cx: &ShardContext) -> bool {
    cx.remote.op_waiting.load(Ordering::Acquire) > 0
        && cx.ops.borrow().transient() + cx.remote.op_min_need.load(Ordering::Acquire)
            <= cx.op_capacity.get()
}

/// Wakes every waiter of this shard when the smallest need fits
/// (level-triggered: each re-checks when polled, so a stale or duplicate
/// entry costs a spurious wake-up, never a lost one).
pub(crate) fn wake_waiters_if_room(cx: &ShardContext) {
    if !waiters_fit(cx) {
        return; // the common case: nobody waits, no lock taken
    }
    let wakers: Vec<Waker> = {
        let waiters = cx.remote.op_waiters.lock();
        waiters.iter().map(|(_, (w, _))| w.clone()).collect()
    };
    for w in wakers {
        let _ = catch_unwind(AssertUnwindSafe(|| w.wake()));
    }
}
