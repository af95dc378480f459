//! Loom models of ringlane's lock-free structures.
//!
//! Each model compiles a ringlane source file (`channel/queue.rs`,
//! `mailbox/doorbell.rs`, `mailbox/gate.rs`) unchanged against loom's atomics and cell (the `sync` module below stands in for the one the
//! file's parent module defines in ringlane), and loom runs every
//! interleaving of a few threads. `cargo test -p ringlane-loom-models
//! --release` runs them (`.ci/run` does).

#[path = "../../src/channel/queue.rs"]
#[allow(dead_code)]
mod queue;

#[path = "../../src/mailbox/doorbell.rs"]
#[allow(dead_code)]
mod doorbell;

#[path = "../../src/mailbox/gate.rs"]
#[allow(dead_code)]
mod gate;

#[cfg(test)]
mod doorbell_models;
#[cfg(test)]
mod gate_models;
#[cfg(test)]
mod queue_models;

/// What `queue.rs` is written against, from loom.
mod sync {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering, fence};

    /// A spinning thread yields to loom's scheduler.
    pub(crate) fn spin() {
        loom::thread::yield_now();
    }

    pub(crate) use loom::thread::yield_now;

    /// Cache-line padding does not matter to the model.
    pub(crate) struct Padded<T>(pub(crate) T);

    impl<T> std::ops::Deref for Padded<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }
}
