//! The list of tasks waiting on one direction of an fd (readiness
//! invariant 1), and how a wait that gives up leaves it.
//!
//! Invariants:
//! 1. A wait made by one of the async methods (`recv_from`, `accept`,
//!    `readable`, ...) runs under [`tagged`]: its entry carries the wait's
//!    own id, replaced (not added again) when it re-registers, and removed
//!    when the wait ends or is dropped. A task that gives up a wait (a
//!    timeout, a `select!`) leaves nothing behind, so a shared idle socket
//!    does not collect the wakers of every task that ever waited on it.
//! 2. A wait made through a `poll_*` method (the I/O traits) has no id: its
//!    entry is kept once per waker until the next event wakes the list, as
//!    before; its stream, or the next event, frees it.
//! 3. Ids come from one process-wide counter, taken at a wait's first
//!    registration only, so two live waits never share one and a removal
//!    never takes another wait's entry (which would lose its wake-up).
//! 4. No waker is dropped under a lock: `add` and `forget` hand back what
//!    they replace or remove. A waker's drop is foreign code, and may drop
//!    another wait on the same direction, whose leaving takes the same
//!    locks (`a_waiters_waker_that_drops_another_wait_does_not_deadlock`).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

/// The next wait id (invariant 3); 0 means "no id".
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The id slot of the tagged wait being polled on this thread, if any.
    static CURRENT: Cell<*const AtomicU64> = const { Cell::new(std::ptr::null()) };
}

/// Every task waiting on one direction, woken all at once.
#[derive(Default)]
pub(super) struct Waiters(parking_lot::Mutex<Vec<(u64, Waker)>>);

impl Waiters {
    /// Registers `waker`, under the id of the tagged wait being polled
    /// (invariant 1) or none (invariant 2). Returns the waker it replaced,
    /// for the caller to drop once its own locks are released (invariant 4).
    #[must_use = "drop the replaced waker after releasing your locks"]
    pub(super) fn add(&self, waker: &Waker) -> Option<Waker> {
        let slot = CURRENT.with(Cell::get);
        let id = if slot.is_null() {
            0
        } else {
            // SAFETY: a non-null slot was installed by `tagged` from a
            // slot that outlives the poll now running on this thread.
            let slot = unsafe { &*slot };
            // Only the polling thread touches the slot (an atomic so that
            // the wait stays `Send`): relaxed suffices.
            if slot.load(Ordering::Relaxed) == 0 {
                slot.store(NEXT_ID.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            }
            slot.load(Ordering::Relaxed)
        };
        let mut list = self.0.lock();
        let found = match id {
            0 => list.iter().position(|(i, w)| *i == 0 && w.will_wake(waker)),
            id => list.iter().position(|(i, _)| *i == id),
        };
        match found {
            Some(at) if list[at].1.will_wake(waker) => None,
            Some(at) => Some(std::mem::replace(&mut list[at].1, waker.clone())),
            None => {
                list.push((id, waker.clone()));
                None
            }
        }
    }

    /// Removes the entry of wait `id` (invariant 1); returns its waker,
    /// for the caller to drop once its own locks are released (invariant 4).
    #[must_use = "drop the removed waker after releasing your locks"]
    pub(super) fn forget(&self, id: u64) -> Option<Waker> {
        let mut list = self.0.lock();
        let at = list.iter().position(|(i, _)| *i == id)?;
        Some(list.swap_remove(at).1)
    }

    /// Takes every entry, to be woken once the caller's locks are released.
    pub(super) fn take(&self) -> Vec<Waker> {
        std::mem::take(&mut *self.0.lock())
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.lock().len()
    }
}

impl std::task::Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.take().into_iter().for_each(Waker::wake);
    }
}

/// Runs `poll` as a poll of the tagged wait whose id lives in `slot`
/// (invariant 1): what it registers carries that id.
pub(super) fn tagged<R>(slot: &AtomicU64, poll: impl FnOnce() -> R) -> R {
    struct Restore(*const AtomicU64);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(slot)));
    poll()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    /// Two tagged waits of one task each keep their own entry (forgetting
    /// one must not lose the other's wake-up); a re-registration replaces;
    /// untagged registrations of one waker are kept once.
    #[test]
    fn tagged_waits_keep_their_own_entries_and_leave_only_them() {
        let list = Waiters::default();
        let waker = Waker::from(Arc::new(Noop));
        let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
        assert!(tagged(&a, || list.add(&waker)).is_none());
        assert!(tagged(&a, || list.add(&waker)).is_none());
        assert!(tagged(&b, || list.add(&waker)).is_none());
        assert!(list.add(&waker).is_none());
        assert!(list.add(&waker).is_none());
        assert_eq!(list.len(), 3);
        let (ia, ib) = (a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
        assert!(ia != 0 && ib != 0 && ia != ib);
        assert!(list.forget(ia).is_some());
        assert_eq!(list.len(), 2, "only a's entry goes");
        assert!(list.forget(ib).is_some());
        assert!(list.forget(ib).is_none(), "gone already");
        assert_eq!(list.take().len(), 1, "the untagged entry stays");
        assert_eq!(
            CURRENT.with(Cell::get),
            std::ptr::null(),
            "the tag is restored"
        );
    }
}
