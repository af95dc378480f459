//! Shard mailboxes: how work reaches a shard from other threads.
//!
//! A shard's [`Remote`] is the `Send + Sync` view that every other thread
//! holds: an MPSC queue of [`Envelope`]s (a lock-free `crossbeam-deque`
//! injector), the [`doorbell`] state that decides whether the receiver must
//! be woken, and the spawn [`gate`] that closes at shutdown.
//!
//! The payload always travels through the queue; the doorbell (MSG_RING
//! from a shard's ring, an eventfd write from a thread that owns no ring)
//! only wakes a sleeping receiver.

pub(crate) mod doorbell;
#[cfg(test)]
mod doorbell_tests;
pub(crate) mod gate;
pub(crate) mod homes;
mod remote;

/// What `doorbell.rs` and `gate.rs` are written against: `std` here;
/// `loom-models/` compiles the same files against loom's atomics to check
/// them exhaustively.
mod sync {
    pub(crate) use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering, fence};
    pub(crate) use std::thread::yield_now;
}

pub(crate) use gate::SpawnGate;
pub(crate) use homes::Home;
pub(crate) use remote::{Envelope, Remote};
