//! The registry of a shard's live tasks: one waker per task that has been
//! polled at least once. Shutdown wakes them all so that the owning shard
//! can drop each future on its own thread.

use std::task::Waker;

use slab::Slab;

/// Live tasks of one shard, keyed by slot.
#[derive(Default)]
pub(crate) struct TaskRegistry {
    tasks: Slab<Waker>,
}

impl TaskRegistry {
    pub(crate) fn insert(&mut self, waker: Waker) -> usize {
        self.tasks.insert(waker)
    }

    pub(crate) fn remove(&mut self, slot: usize) {
        self.tasks.try_remove(slot);
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Clones every live task's waker (wake them after releasing the borrow).
    pub(crate) fn wakers(&self) -> Vec<Waker> {
        self.tasks.iter().map(|(_, w)| w.clone()).collect()
    }
}
