//! Every live shard's [`Remote`], by runtime id and shard index.
//!
//! An op future names its home shard by that pair ([`Home`]) rather than
//! by an `Arc<Remote>`: the reference count cost two locked instructions
//! on every op, and the home is needed only when a submitted op is dropped
//! away from its home shard (a stolen task, a future moved to another
//! thread), where the lookup's lock is cheap next to the cross-thread
//! message it sends.
//!
//! Invariants:
//! 1. A `Remote` is listed from its creation (`register`); once its last
//!    `Arc` is dropped a lookup finds nothing (the entry's `Weak` no
//!    longer upgrades; the next `register` prunes it), as a `Remote`
//!    kept alive would have been useless then: its shard had exited, and
//!    its ring with every op on it.
//! 2. Runtime ids are never reused, so a `Home` can never name a shard of
//!    a later runtime.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::Remote;
use crate::context;

/// Every live `Remote` (a handful per runtime), by its home.
static LIVE: Mutex<Vec<(Home, Weak<Remote>)>> = Mutex::new(Vec::new());

/// A shard named by its runtime's id and its index: plain data, no
/// reference count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Home {
    runtime: usize,
    index: usize,
}

impl Home {
    /// The home `remote` stands for.
    pub(crate) fn of(remote: &Remote) -> Self {
        Self {
            runtime: remote.runtime_id,
            index: remote.index,
        }
    }

    /// Whether the calling thread is this home's shard.
    pub(crate) fn is_current(self) -> bool {
        context::with_current(|cx| Home::of(&cx.remote) == self).unwrap_or(false)
    }

    /// This home's `Remote`, unless its runtime is gone (invariant 1).
    pub(crate) fn remote(self) -> Option<Arc<Remote>> {
        let live = LIVE.lock();
        let (_, remote) = live.iter().find(|(home, _)| *home == self)?;
        remote.upgrade()
    }
}

/// Lists a new shard's `Remote` (invariant 1).
pub(crate) fn register(remote: &Arc<Remote>) {
    let mut live = LIVE.lock();
    // Entries of dropped remotes go here, at the next runtime's start, not
    // in `Remote::drop`, which would take this lock on every teardown.
    live.retain(|(_, w)| w.strong_count() > 0);
    // A pruned entry's `Remote` was dropped by its last holder, its shard
    // among them: this fence orders that drop (its `Release` decrement,
    // read here without ordering) before our unlock, so whoever later
    // misses the entry under this lock is ordered after the shard's exit
    // (op invariant 12's `home_gone`).
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    live.push((Home::of(remote), Arc::downgrade(remote)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A home is found while its runtime lives, and never after: a later
    /// runtime's shard with the same index is another home.
    #[test]
    fn a_home_is_found_while_its_runtime_lives_and_never_after() {
        let rt = crate::Runtime::builder()
            .shards(1)
            .build()
            .expect("runtime");
        let remote = rt.handle().shared.remote(0).expect("shard 0").clone();
        let home = Home::of(&remote);
        assert!(home.remote().is_some_and(|r| Arc::ptr_eq(&r, &remote)));
        assert!(!home.is_current(), "the test thread is no shard");
        drop(remote);
        drop(rt);
        assert!(
            home.remote().is_none(),
            "a dropped runtime's shard was found"
        );
        let later = crate::Runtime::builder()
            .shards(1)
            .build()
            .expect("runtime");
        let later_home = Home::of(later.handle().shared.remote(0).expect("shard 0"));
        assert_ne!(later_home, home, "a runtime id was reused");
        assert!(home.remote().is_none());
    }
}
