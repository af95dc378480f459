//! The free buffers of a `FixedBufPool` and the `get`s waiting for one.
//!
//! Invariants:
//! 1. No barging: a `get` that has not waited yet (and `try_get`) takes a
//!    free buffer only while no other `get` waits; else it waits too. A
//!    task that gives a buffer back and asks again in the same poll queues
//!    behind the waiters
//!    (`a_waiting_get_is_not_starved_by_a_task_that_gives_its_buffer_back_and_takes_it_again`).
//! 2. A buffer given back wakes every waiter, and the first to poll takes
//!    it: a waiter whose shard is blocked, or that is dropped before it
//!    polls again, holds up no other waiter
//!    (`a_buffer_given_back_reaches_a_live_waiter_past_a_stuck_one_and_a_dropped_one`).
//!    A waiter that is kept but never polled again does hold up newcomers
//!    (rule 1), as a waiter of Tokio's fair `Semaphore` does.
//! 3. A waiter leaves the list when it takes a buffer or is dropped, so a
//!    task that gave up (a timeout) leaves nothing behind. One that leaves
//!    while a buffer is still free wakes those still waiting: a `get` that
//!    queued behind it (rule 1) after the give-backs was never woken for
//!    that buffer
//!    (`a_waiter_that_takes_one_of_two_free_buffers_wakes_the_get_queued_behind_it`).
//! 4. No waker is woken or dropped under the pool's lock: the list hands
//!    them back (a waker's drop may give a buffer back or drop another
//!    `get`, and either takes the lock).

use std::task::Waker;

/// The pool's free buffers and waiters (kept under the pool's lock).
pub(super) struct FreeList {
    free: Vec<u16>,
    /// One slot per waiting `get`, with the waker of its last poll.
    waiters: slab::Slab<Waker>,
}

impl FreeList {
    /// Buffers `0..count`, all free.
    pub(super) fn new(count: u16) -> Self {
        Self {
            free: (0..count).rev().collect(),
            waiters: slab::Slab::new(),
        }
    }

    /// A free buffer, unless none is free or a `get` waits (rule 1).
    pub(super) fn try_take(&mut self) -> Option<u16> {
        match self.waiters.is_empty() {
            true => self.free.pop(),
            false => None,
        }
    }

    /// Buffers not checked out.
    pub(super) fn free_count(&self) -> usize {
        self.free.len()
    }

    /// `get`s waiting.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// A `get`'s poll: a buffer (rules 1 and 2), or it waits, in `slot`,
    /// to be woken through `waker`. The wakers returned are to be woken,
    /// and the waker it let go of dropped, once the caller released the
    /// lock (rules 3 and 4).
    pub(super) fn poll_take(
        &mut self,
        slot: &mut Option<usize>,
        waker: &Waker,
    ) -> (Option<u16>, Vec<Waker>, Option<Waker>) {
        match *slot {
            Some(s) => {
                if let Some(index) = self.free.pop() {
                    *slot = None;
                    let (wake, gone) = self.leave(s);
                    return (Some(index), wake, Some(gone));
                }
                let w = &mut self.waiters[s];
                let replaced = (!w.will_wake(waker)).then(|| std::mem::replace(w, waker.clone()));
                (None, Vec::new(), replaced)
            }
            None => {
                if let Some(index) = self.try_take() {
                    return (Some(index), Vec::new(), None);
                }
                *slot = Some(self.waiters.insert(waker.clone()));
                (None, Vec::new(), None)
            }
        }
    }

    /// Buffer `index` comes back: every waiter is to be woken (rule 2),
    /// once the caller released the lock.
    #[must_use = "wake the waiters"]
    pub(super) fn give_back(&mut self, index: u16) -> Vec<Waker> {
        self.free.push(index);
        self.waiters.iter().map(|(_, w)| w.clone()).collect()
    }

    /// A waiting `get` was dropped or took a buffer (rule 3): the waiters
    /// to wake, and its own waker, to drop (both after the lock: rule 4).
    #[must_use = "wake the waiters, then drop the waker"]
    pub(super) fn leave(&mut self, slot: usize) -> (Vec<Waker>, Waker) {
        let gone = self.waiters.remove(slot);
        let wake = match self.free.is_empty() {
            true => Vec::new(),
            false => self.waiters.iter().map(|(_, w)| w.clone()).collect(),
        };
        (wake, gone)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    struct Nop;
    impl Wake for Nop {
        fn wake(self: Arc<Self>) {}
    }

    fn waker() -> Waker {
        Waker::from(Arc::new(Nop))
    }

    /// A give-back while someone waits is not taken by a newcomer (rule
    /// 1), and any waiter may take it (rule 2).
    #[test]
    fn a_newcomer_queues_behind_the_waiters() {
        let mut list = FreeList::new(1);
        let w = waker();
        let (mut a, mut b, mut c) = (None, None, None);
        let held = list.poll_take(&mut a, &w).0.expect("free");
        assert_eq!(list.poll_take(&mut b, &w).0, None);
        assert_eq!(list.give_back(held).len(), 1, "b is woken");
        assert_eq!(list.try_take(), None, "b waits: no barging");
        assert_eq!(list.poll_take(&mut c, &w).0, None, "c queues behind b");
        assert_eq!(list.poll_take(&mut b, &w).0, Some(held));
        assert_eq!(list.give_back(held).len(), 1, "c is woken");
        assert_eq!(list.poll_take(&mut c, &w).0, Some(held));
        assert!(list.give_back(held).is_empty());
        assert_eq!((list.free_count(), list.waiting()), (1, 0));
    }

    /// A waiter dropped while a buffer is free wakes the ones left (rule 3).
    #[test]
    fn a_dropped_waiter_wakes_those_behind_it() {
        let mut list = FreeList::new(1);
        let w = waker();
        let (mut a, mut b, mut c) = (None, None, None);
        let held = list.poll_take(&mut a, &w).0.unwrap();
        assert_eq!(list.poll_take(&mut b, &w).0, None);
        let _ = list.give_back(held);
        assert_eq!(
            list.poll_take(&mut c, &w).0,
            None,
            "c queued after the wake-up"
        );
        assert_eq!(list.leave(b.unwrap()).0.len(), 1, "c is woken");
        assert_eq!(list.poll_take(&mut c, &w).0, Some(held));
        let mut d = None;
        let _ = list.give_back(held);
        assert_eq!(list.poll_take(&mut d, &w).0, Some(held), "nobody waits");
        assert_eq!(list.waiting(), 0);
    }
}
