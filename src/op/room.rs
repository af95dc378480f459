//! Ops waiting, unsubmitted, for room in their shard's ring (invariant 6).
//!
//! Each waiter records how many op-table entries it needs (2 for an op with
//! a linked timeout). The shard wakes every waiter once a reap leaves room
//! for the smallest need, and counts waiters as work only then: a waiter
//! that cannot fit yet never keeps the shard spinning.
//!
//! A wake-up empties the list: each woken op re-checks when polled and
//! registers again if it still finds no room. An op future that is kept
//! but never polled again (a disabled `select!` branch, a future polled
//! once and set aside) therefore leaves no entry behind that would count
//! as work at every tick and keep its shard from parking. Entries carry an
//! id, so an op whose entry a wake-up removed never touches the entry of
//! another op that reused the slot.
//!
//! No waker is dropped or woken under the list's lock: a waker's drop is
//! foreign code, and may drop another op waiting here, whose leaving takes
//! the same lock (`native_waker_drops.rs`).

use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;

use crate::context::ShardContext;
use crate::mailbox::Remote;

/// One shard's ops waiting for room (behind the `Remote`'s lock).
#[derive(Default)]
pub(crate) struct RoomWaiters {
    /// Each waiter: its id, its waker and its need.
    slab: slab::Slab<(u64, Waker, usize)>,
    next_id: u64,
}

/// One op's entry among its shard's waiters, if it has one.
#[derive(Default)]
pub(crate) struct RoomWait {
    entry: Option<(Arc<Remote>, usize, u64)>,
}

/// Publishes the waiter count and the smallest need (under the lock).
fn publish(remote: &Remote, waiters: &RoomWaiters) {
    let min = waiters
        .slab
        .iter()
        .map(|(_, (_, _, need))| *need)
        .min()
        .unwrap_or(0);
    remote.op_min_need.store(min, Ordering::Release);
    remote
        .op_waiting
        .store(waiters.slab.len(), Ordering::Release);
}

impl RoomWait {
    /// Registers (or refreshes) the calling op on the current shard.
    pub(crate) fn register(&mut self, waker: &Waker, need: usize) {
        let here = crate::context::with_current(|cx| cx.remote.clone()).expect("polled on a shard");
        if let Some((remote, key, id)) = &self.entry {
            if Arc::ptr_eq(remote, &here) {
                let mut waiters = here.op_waiters.lock();
                if let Some((i, w, n)) = waiters.slab.get_mut(*key) {
                    if *i == *id {
                        let old = (!w.will_wake(waker)).then(|| mem::replace(w, waker.clone()));
                        if *n != need {
                            *n = need;
                            publish(&here, &waiters);
                        }
                        // Foreign code (a waker's drop may drop another
                        // waiting op, which takes this lock): unlocked.
                        drop(waiters);
                        drop(old);
                        return;
                    }
                }
            }
        }
        self.cancel(); // woken since, or polled on another shard now
        let mut waiters = here.op_waiters.lock();
        waiters.next_id += 1;
        let id = waiters.next_id;
        let key = waiters.slab.insert((id, waker.clone(), need));
        publish(&here, &waiters);
        drop(waiters);
        self.entry = Some((here, key, id));
    }

    /// Leaves the waiters (submitted, failed, timed out or dropped).
    /// Inlined: every multishot op calls it on each submission and drop,
    /// and almost none ever waited (a single-shot `Op` keeps its wait in
    /// a box made only when it waits).
    #[inline]
    pub(crate) fn cancel(&mut self) {
        if self.entry.is_some() {
            self.leave();
        }
    }

    #[cold]
    fn leave(&mut self) {
        if let Some((remote, key, id)) = self.entry.take() {
            let mut waiters = remote.op_waiters.lock();
            if waiters.slab.get(key).is_some_and(|(i, _, _)| *i == id) {
                let removed = waiters.slab.remove(key);
                publish(&remote, &waiters);
                // Its waker is dropped unlocked, as in `register`.
                drop(waiters);
                drop(removed);
            }
        }
    }
}

/// Whether some waiter of this shard fits now (no lock taken).
pub(crate) fn waiters_fit(cx: &ShardContext) -> bool {
    cx.remote.op_waiting.load(Ordering::Acquire) > 0
        && cx.ops.borrow().transient() + cx.remote.op_min_need.load(Ordering::Acquire)
            <= cx.op_capacity.get()
}

/// Wakes every waiter of this shard, and empties the list, when the
/// smallest need fits. Each woken op re-checks when polled and registers
/// again if it still finds no room; an op woken but never polled again
/// leaves nothing behind.
pub(crate) fn wake_waiters_if_room(cx: &ShardContext) {
    if !waiters_fit(cx) {
        return; // the common case: nobody waits, no lock taken
    }
    let wakers: Vec<Waker> = {
        let mut waiters = cx.remote.op_waiters.lock();
        let wakers = waiters.slab.drain().map(|(_, w, _)| w).collect();
        publish(&cx.remote, &waiters);
        wakers
    };
    for w in wakers {
        crate::executor::contain(|| w.wake());
    }
}
