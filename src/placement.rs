//! `Placement`: where a spawned task runs, chosen per spawn.

use std::hash::{DefaultHasher, Hash, Hasher};

/// Where [`Handle::spawn_with`](crate::Handle::spawn_with) puts a task.
///
/// | policy | runs on | use it for |
/// |---|---|---|
/// | `Pinned(i)` | shard `i`, for its whole life | work that owns shard state, or uses a shard's ring |
/// | `Stealable` | any shard; idle shards steal it | CPU work of uneven size (fan-out subtasks, request handlers) |
/// | `StealablePreferred(i)` | first run on shard `i` unless `i` is busy; then as `Stealable` | work that is cheapest to start near data on `i` but should not wait if `i` is busy |
/// | `RoundRobin` | the next shard in turn, pinned there | many similar long-lived tasks (connections) spread evenly |
/// | `Sticky(key)` | the shard `key` hashes to, pinned there | everything about one key (a session, a partition) on one shard, in order |
///
/// Pinned placements keep thread-per-core speed (no stealing traffic);
/// stealable ones trade a little of it for balance under skewed load.
///
/// # Examples
///
/// ```
/// use ringlane::Placement;
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let h = rt.handle();
/// let a = h.spawn_with(Placement::Stealable, async { 1 }).unwrap();
/// let b = h.spawn_with(Placement::sticky(&"user-42"), async { ringlane::current_shard() }).unwrap();
/// let c = h.spawn_with(Placement::sticky(&"user-42"), async { ringlane::current_shard() }).unwrap();
/// assert_eq!(rt.block_on(a).unwrap(), 1);
/// assert_eq!(rt.block_on(b).unwrap(), rt.block_on(c).unwrap(), "same key, same shard");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Placement {
    /// On this shard, for the task's whole life.
    Pinned(usize),
    /// On any shard: spawned onto the spawning shard's deque (or the global
    /// injector from outside) and stolen by idle shards.
    Stealable,
    /// Queued for this shard, which runs it first unless it is busy: then
    /// an idle shard may take it. The preference is for the first run: after
    /// a wake-up the task is `Stealable` (it goes to the deque of the shard
    /// that woke it, or to the injector).
    StealablePreferred(usize),
    /// Pinned to the next shard in a runtime-wide rotation.
    RoundRobin,
    /// Pinned to the shard this key maps to (the same key always maps to the
    /// same shard of a runtime).
    Sticky(u64),
}

impl Placement {
    /// `Sticky` placement for any hashable key.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = ringlane::Placement::sticky(&("tenant", 7));
    /// assert_eq!(p, ringlane::Placement::sticky(&("tenant", 7)));
    /// ```
    pub fn sticky<K: Hash + ?Sized>(key: &K) -> Placement {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        Placement::Sticky(h.finish())
    }
}

/// The shard a sticky key maps to: a multiplicative hash, so consecutive
/// keys spread over the shards.
pub(crate) fn sticky_shard(key: u64, shards: usize) -> usize {
    let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((u128::from(mixed) * shards as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_keys_are_stable_and_spread() {
        let mut counts = [0usize; 4];
        for key in 0..10_000u64 {
            let s = sticky_shard(key, 4);
            assert_eq!(s, sticky_shard(key, 4));
            counts[s] += 1;
        }
        assert!(
            counts.iter().all(|&c| c > 2_000),
            "uneven spread: {counts:?}"
        );
    }
}
