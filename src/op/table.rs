//! The per-shard table of in-flight ops (invariant 4).

use std::sync::Arc;

use slab::Slab;

use super::cell::Completable;

const SLOT_BITS: u32 = 32;
const GEN_MASK: u64 = (1 << 24) - 1;

/// In-flight ops of one shard, keyed by their `user_data` payload.
#[derive(Default)]
pub(crate) struct OpTable {
    slots: Slab<(u64, Arc<dyn Completable>)>,
    next_generation: u64,
}

impl OpTable {
    /// Registers an op; returns its `user_data` (kind 0: slot and generation).
    pub(crate) fn insert(&mut self, op: Arc<dyn Completable>) -> u64 {
        self.next_generation = (self.next_generation + 1) & GEN_MASK;
        let generation = self.next_generation;
        let slot = self.slots.insert((generation, op)) as u64;
        (generation << SLOT_BITS) | slot
    }

    /// Removes the op a CQE belongs to (`None` for a stale or unknown one).
    pub(crate) fn take(&mut self, user_data: u64) -> Option<Arc<dyn Completable>> {
        let slot = (user_data & ((1 << SLOT_BITS) - 1)) as usize;
        let generation = user_data >> SLOT_BITS;
        match self.slots.get(slot) {
            Some((g, _)) if *g == generation => Some(self.slots.remove(slot).1),
            _ => None,
        }
    }

    /// The op a non-final CQE (`F_MORE`) belongs to, left in the table.
    pub(crate) fn get(&self, user_data: u64) -> Option<Arc<dyn Completable>> {
        let slot = (user_data & ((1 << SLOT_BITS) - 1)) as usize;
        let generation = user_data >> SLOT_BITS;
        match self.slots.get(slot) {
            Some((g, op)) if *g == generation => Some(op.clone()),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Gives up on every op still in flight without freeing them: the
    /// kernel may still write into their resources (invariant 5).
    pub(crate) fn leak_all(&mut self) {
        for (_, (_, op)) in std::mem::take(&mut self.slots) {
            std::mem::forget(op);
        }
    }
}

impl Drop for OpTable {
    /// Only a shard that did not exit cleanly (a panic in the runtime)
    /// drops a table with ops in it; the kernel may still use them, so they
    /// are leaked, never freed (invariant 5).
    fn drop(&mut self) {
        self.leak_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nop;
    impl Completable for Nop {
        fn complete(&self, _: i32, _: u32) {}
    }

    #[test]
    fn a_stale_user_data_never_matches_a_reused_slot() {
        let mut t = OpTable::default();
        let a = t.insert(Arc::new(Nop));
        assert!(t.take(a).is_some());
        let b = t.insert(Arc::new(Nop));
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the slot is reused");
        assert!(
            t.take(a).is_none(),
            "the old user_data must not reach the new op"
        );
        assert!(t.take(b).is_some());
        assert_eq!(t.len(), 0);
    }
}
