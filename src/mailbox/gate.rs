//! The spawn gate: lets shutdown refuse new tasks without racing a spawner
//! that already decided to push.
//!
//! 1. A spawner calls [`SpawnGate::enter`]: it counts itself in only while
//!    the gate is open (one compare-exchange on the count and the closed
//!    bit together); a closed gate refuses it without touching the count.
//! 2. Shutdown calls [`SpawnGate::close`], which sets the closed bit and
//!    waits until no spawner is inside. After that, no new task can reach the
//!    queue, so the shard's final drain sees every task ever accepted.
//! 3. Whoever drains the queue for the last time waits for the gate to be
//!    sealed ([`SpawnGate::is_sealed`]: closed and empty), not just closed.
//!    Once sealed it stays sealed: a refused spawner never counts itself in
//!    (an earlier version added and took back one, and a shard that looked
//!    in between saw an unsealed gate and went to sleep with nobody left to
//!    wake it).
//!
//! `loom-models/` compiles this file against loom's atomics.

use super::sync::{AtomicUsize, Ordering};

const CLOSED: usize = 1 << (usize::BITS - 1);

#[derive(Debug, Default)]
pub(crate) struct SpawnGate {
    state: AtomicUsize,
}

/// Proof of being inside an open gate; leaving is automatic.
pub(crate) struct Inside<'a>(&'a SpawnGate);

impl SpawnGate {
    pub(crate) fn enter(&self) -> Option<Inside<'_>> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                return None;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(Inside(self)),
                Err(now) => state = now,
            }
        }
    }

    /// Closed, and no spawner is inside any more: nothing can reach the
    /// queue behind it now. A spawner still inside has passed the check and
    /// may push at any moment, so a shard must not take a closed gate alone
    /// as the end of its queue (whoever closes the gate wakes the shards
    /// once `close` returns).
    pub(crate) fn is_sealed(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    /// Closed (shutdown has begun): `enter` refuses from now on.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        while self.state.load(Ordering::Acquire) & !CLOSED != 0 {
            super::sync::yield_now();
        }
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.state.fetch_sub(1, Ordering::Release);
    }
}
