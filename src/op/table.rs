//! The per-shard table of in-flight ops (invariant 4).

use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

use super::cell::Completable;
use crate::sys::{CQE_F_MORE, Completion};

const SLOT_BITS: u32 = 32;
const GEN_MASK: u64 = (1 << 24) - 1;

/// Whether an entry counts against the shard's op capacity (invariant 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A single-shot op (or an entry reserved for one): counted.
    Transient,
    /// A multishot op, armed for as long as its owner waits (a poll on an
    /// idle connection, a listener's accept): not counted.
    Standing,
}

/// What an op-table entry hands its CQEs to.
#[derive(Clone)]
pub(crate) enum Entry {
    /// A cell shared with its future by reference count (multishot ops).
    Shared(Arc<dyn Completable>),
    /// A single-shot op's cell, owned by this shard (invariant 11).
    Owned(Owned),
    /// Holds a slot only: a linked timeout's (its CQE frees it) or a
    /// two-CQE op's reservation (removed with the op).
    Slot,
}

/// A home-owned op cell, type-erased: its address and its functions.
#[derive(Clone, Copy)]
pub(crate) struct Owned {
    pub(crate) cell: NonNull<()>,
    pub(crate) vtable: &'static OwnedVtable,
}

/// The functions of one `OpCell<T>`, each called on the home shard only,
/// with `cell` live (invariant 11).
pub(crate) struct OwnedVtable {
    pub(crate) complete: unsafe fn(NonNull<()>, i32, u32),
    pub(crate) cancellable: unsafe fn(NonNull<()>) -> bool,
    pub(crate) cancelled_by_shutdown: unsafe fn(NonNull<()>, Instant),
}

impl Entry {
    /// Hands a CQE to the entry (called on the home shard, with the op
    /// table's borrow released: the cell may wake a task or free itself).
    pub(crate) fn complete(self, result: i32, flags: u32) {
        match self {
            Entry::Shared(op) => op.complete(result, flags),
            // SAFETY: the entry came from this shard's table, where an
            // owned cell stays live until its final CQE is handed to it
            // (invariant 11); we run on the home shard.
            Entry::Owned(o) => unsafe { (o.vtable.complete)(o.cell, result, flags) },
            Entry::Slot => {}
        }
    }

    fn cancellable(&self) -> bool {
        match self {
            Entry::Shared(op) => op.cancellable(),
            // SAFETY: as in `complete`: the cell is in the table, so live.
            Entry::Owned(o) => unsafe { (o.vtable.cancellable)(o.cell) },
            // A linked timeout ends with its op; a reservation has no SQE.
            Entry::Slot => false,
        }
    }

    fn cancelled_by_shutdown(&self, now: Instant) {
        match self {
            Entry::Shared(op) => op.cancelled_by_shutdown(now),
            // SAFETY: as in `complete`: the cell is in the table, so live.
            Entry::Owned(o) => unsafe { (o.vtable.cancelled_by_shutdown)(o.cell, now) },
            Entry::Slot => {}
        }
    }
}

/// Hands the CQE of a native op (`user_data` kind 0) to its entry. A
/// multishot op stays in the table until its last CQE (invariant 8). The
/// table's borrow is released before the cell runs: it may wake a task or
/// free itself.
pub(crate) fn dispatch(ops: &RefCell<OpTable>, c: Completion) {
    let op = if c.flags & CQE_F_MORE != 0 {
        ops.borrow().get(c.user_data)
    } else {
        ops.borrow_mut().take(c.user_data)
    };
    if let Some(op) = op {
        op.complete(c.result, c.flags);
    }
}

/// In-flight ops of one shard, keyed by their `user_data` payload.
#[derive(Default)]
pub(crate) struct OpTable {
    slots: Slab<(u64, Kind, Entry)>,
    next_generation: u64,
    /// How many entries are `Kind::Standing`.
    standing: usize,
}

impl OpTable {
    /// Registers a single-shot op; returns its `user_data` (kind 0: slot
    /// and generation).
    #[inline]
    pub(crate) fn insert(&mut self, op: Entry) -> u64 {
        self.insert_kind(op, Kind::Transient)
    }

    /// Registers an op of either kind.
    pub(crate) fn insert_kind(&mut self, op: Entry, kind: Kind) -> u64 {
        // Generation 0 is skipped: slot 0 in generation 0 would be
        // `user_data` 0, which an op cell uses to mean "no reservation".
        // A compare, not `%`: a division costs tens of cycles on every op.
        self.next_generation = if self.next_generation >= GEN_MASK {
            1
        } else {
            self.next_generation + 1
        };
        let generation = self.next_generation;
        let slot = self.slots.insert((generation, kind, op)) as u64;
        if kind == Kind::Standing {
            self.standing += 1;
        }
        (generation << SLOT_BITS) | slot
    }

    /// Removes the op a CQE belongs to (`None` for a stale or unknown one).
    pub(crate) fn take(&mut self, user_data: u64) -> Option<Entry> {
        let slot = (user_data & ((1 << SLOT_BITS) - 1)) as usize;
        let generation = user_data >> SLOT_BITS;
        match self.slots.get(slot) {
            Some((g, _, _)) if *g == generation => {
                let (_, kind, op) = self.slots.remove(slot);
                if kind == Kind::Standing {
                    self.standing -= 1;
                }
                Some(op)
            }
            _ => None,
        }
    }

    /// The op a non-final CQE (`F_MORE`) belongs to, left in the table.
    pub(crate) fn get(&self, user_data: u64) -> Option<Entry> {
        let slot = (user_data & ((1 << SLOT_BITS) - 1)) as usize;
        let generation = user_data >> SLOT_BITS;
        match self.slots.get(slot) {
            Some((g, _, op)) if *g == generation => Some(op.clone()),
            _ => None,
        }
    }

    /// The `user_data` of every entry shutdown may cancel
    /// (`Completable::cancellable`). Each is told so first, so that the
    /// cancellation it reports is not taken for its timeout
    /// (`Completable::cancelled_by_shutdown`).
    pub(crate) fn cancellable_for_shutdown(&self) -> Vec<u64> {
        let now = std::time::Instant::now();
        self.slots
            .iter()
            .filter(|(_, (_, _, op))| op.cancellable())
            .map(|(slot, (generation, _, op))| {
                op.cancelled_by_shutdown(now);
                (generation << SLOT_BITS) | slot as u64
            })
            .collect()
    }

    /// Every entry, standing ones included.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The entries that count against the op capacity (invariant 6).
    pub(crate) fn transient(&self) -> usize {
        self.slots.len() - self.standing
    }

    /// Gives up on every op still in flight without freeing them: the
    /// kernel may still write into their resources (invariant 5).
    pub(crate) fn leak_all(&mut self) {
        self.standing = 0;
        // An owned cell's pointer is simply not followed again; a shared
        // one's count is kept.
        for (_, (_, _, op)) in std::mem::take(&mut self.slots) {
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

    fn nop() -> Entry {
        Entry::Shared(Arc::new(Nop))
    }

    #[test]
    fn a_stale_user_data_never_matches_a_reused_slot() {
        let mut t = OpTable::default();
        let a = t.insert(nop());
        assert!(t.take(a).is_some());
        let b = t.insert(nop());
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff, "the slot is reused");
        assert!(
            t.take(a).is_none(),
            "the old user_data must not reach the new op"
        );
        assert!(t.take(b).is_some());
        assert_eq!(t.len(), 0);
    }

    /// After 2^24 inserts the generation wrapped to 0, and an entry in
    /// slot 0 got `user_data` 0: the "no reservation" value of a two-CQE
    /// op's cell, whose reserved entry was then never removed.
    #[test]
    fn no_entry_gets_user_data_zero_when_the_generation_wraps() {
        let mut t = OpTable::default();
        t.next_generation = GEN_MASK - 1;
        for _ in 0..4 {
            let u = t.insert(nop());
            assert_ne!(u, 0, "user_data 0 is the no-reservation mark");
            assert!(t.take(u).is_some());
        }
    }

    #[test]
    fn standing_entries_do_not_count_against_the_capacity() {
        let mut t = OpTable::default();
        let poll = t.insert_kind(nop(), Kind::Standing);
        let read = t.insert(nop());
        assert_eq!((t.len(), t.transient()), (2, 1));
        assert!(t.get(poll).is_some(), "a non-final CQE leaves it in");
        assert_eq!(t.transient(), 1);
        assert!(t.take(poll).is_some());
        assert_eq!((t.len(), t.transient()), (1, 1));
        assert!(t.take(read).is_some());
        assert_eq!((t.len(), t.transient()), (0, 0));
    }
}
