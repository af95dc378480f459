//! The registry of a shard's live tasks: one waker per task that has been
//! polled at least once. Shutdown wakes them all so that the owning shard
//! can drop each future on its own thread.

use std::task::Waker;

use slab::Slab;

/// Live tasks of one shard, keyed by slot; each with whether it is a
/// runtime helper (`TaskMeta::is_internal`).
#[derive(Default)]
pub(crate) struct TaskRegistry {
    tasks: Slab<(Waker, bool)>,
    internal: usize,
}

impl TaskRegistry {
    pub(crate) fn insert(&mut self, waker: Waker, internal: bool) -> usize {
        self.internal += usize::from(internal);
        self.tasks.insert((waker, internal))
    }

    pub(crate) fn remove(&mut self, slot: usize) {
        if let Some((_, internal)) = self.tasks.try_remove(slot) {
            self.internal -= usize::from(internal);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Live tasks of the caller's (runtime helpers not counted).
    pub(crate) fn user_len(&self) -> usize {
        self.tasks.len() - self.internal
    }

    /// Clones every live task's waker (wake them after releasing the borrow).
    pub(crate) fn wakers(&self) -> Vec<Waker> {
        self.tasks.iter().map(|(_, (w, _))| w.clone()).collect()
    }

    /// Clones the runtime helpers' wakers.
    pub(crate) fn internal_wakers(&self) -> Vec<Waker> {
        self.tasks
            .iter()
            .filter(|(_, (_, internal))| *internal)
            .map(|(_, (w, _))| w.clone())
            .collect()
    }
}
