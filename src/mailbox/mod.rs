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
pub(crate) mod gate;
mod remote;

pub(crate) use gate::SpawnGate;
pub(crate) use remote::{Envelope, Remote};
