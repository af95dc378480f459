//! `Shared`: the runtime-wide state every shard and every handle sees.
//!
//! Shutdown protocol (runtime side; the shard side is in `drain.rs`):
//! 1. `begin_shutdown` records the deadline, then flips `state` to
//!    `SHUTTING_DOWN` (`SeqCst`); from then on every spawn through a handle
//!    is refused with `Error::Shutdown`.
//! 2. The caller rings every shard's doorbell. A shard that is running sees
//!    the flag at its next tick; a shard about to park sees it at step R4 of
//!    the park protocol (the flag store and the park fence are both `SeqCst`,
//!    so either the doorbell is rung or the shard sees the flag).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crossbeam_deque::{Injector, Stealer};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::Error;
use crate::executor::Runnable;
use crate::mailbox::{Remote, SpawnGate};
use crate::sys::RingFeatures;

const RUNNING: u8 = 0;
const SHUTTING_DOWN: u8 = 1;

/// Settings the shards run with (from the builder).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) shards: usize,
    pub(crate) ring_entries: u32,
    pub(crate) pin_cpus: bool,
    pub(crate) thread_name: String,
    pub(crate) spin: Option<Duration>,
    pub(crate) budget: usize,
    pub(crate) tokio: Option<tokio::runtime::Handle>,
    pub(crate) max_blocking_threads: usize,
    pub(crate) blocking_keep_alive: Duration,
}

/// State shared by all shards and handles of one runtime.
pub(crate) struct Shared {
    /// Unique per runtime in this process.
    pub(crate) id: usize,
    pub(crate) remotes: Box<[Arc<Remote>]>,
    pub(crate) features: RingFeatures,
    pub(crate) config: Config,
    /// Read before every task poll (`Core::deadline_passed`): on a block
    /// of its own, away from the counters shards write.
    state: crate::padded::Padded<AtomicU8>,
    deadline: Mutex<Option<Instant>>,
    /// Stealable work pushed from threads that are not shards of this runtime.
    pub(crate) injector: Injector<Runnable>,
    /// Closed at shutdown so the shards' last drain of `injector` sees every task.
    pub(crate) injector_gate: SpawnGate,
    /// One per shard: the other end of each shard's stealable deque.
    pub(crate) stealers: Box<[Stealer<Runnable>]>,
    /// Shards currently searching for stealable work (see `steal.rs`).
    pub(crate) searching: AtomicUsize,
    /// Rotates which parked shard a push wakes, and `Placement::RoundRobin`.
    pub(crate) next_wake: AtomicUsize,
    next_round_robin: AtomicUsize,
    /// Shards whose loop has not ended yet; the last one to end releases
    /// every shard's fds (`Remote::release_fds`).
    live_shards: AtomicUsize,
    /// Stealable tasks whose future is not dropped yet, wherever they are
    /// (queued, held by a shard between a pop and their first poll, or
    /// registered): what a draining shard's ops may still be awaited by
    /// (`drain.rs`, step D2).
    pub(crate) stealable_live: crate::padded::Padded<AtomicUsize>,
    /// The threads that run `spawn_blocking` closures.
    pub(crate) blocking: crate::blocking::BlockingPool,
}

impl Shared {
    pub(crate) fn new(
        id: usize,
        remotes: Box<[Arc<Remote>]>,
        stealers: Box<[Stealer<Runnable>]>,
        features: RingFeatures,
        config: Config,
    ) -> Self {
        let shards = remotes.len();
        let blocking = crate::blocking::BlockingPool::new(
            config.max_blocking_threads,
            config.blocking_keep_alive,
            &config.thread_name,
            config.pin_cpus,
        );
        Self {
            blocking,
            id,
            remotes,
            features,
            config,
            state: crate::padded::Padded(AtomicU8::new(RUNNING)),
            deadline: Mutex::new(None),
            injector: Injector::new(),
            injector_gate: SpawnGate::default(),
            stealers,
            searching: AtomicUsize::new(0),
            live_shards: AtomicUsize::new(shards),
            stealable_live: crate::padded::Padded(AtomicUsize::new(0)),
            next_wake: AtomicUsize::new(0),
            next_round_robin: AtomicUsize::new(0),
        }
    }

    /// The remote of shard `shard`, or `ShardOutOfRange`.
    pub(crate) fn remote(&self, shard: usize) -> Result<&Arc<Remote>, Error> {
        self.remotes.get(shard).ok_or(Error::ShardOutOfRange {
            shard,
            shards: self.remotes.len(),
        })
    }

    /// Called by each shard once its loop has ended and its ring is
    /// released; the last one closes every shard's ring fd duplicate and
    /// eventfd, which a kept `Handle` would otherwise hold open.
    pub(crate) fn shard_exited(&self) {
        if self.live_shards.fetch_sub(1, Ordering::AcqRel) == 1 {
            for remote in self.remotes.iter() {
                remote.release_fds();
            }
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state.load(Ordering::SeqCst) != RUNNING
    }

    /// Step 1; returns `false` if shutdown had already begun.
    pub(crate) fn begin_shutdown(&self, deadline: Instant) -> bool {
        {
            let mut d = self.deadline.lock();
            if d.is_some() {
                return false;
            }
            *d = Some(deadline);
        }
        self.state.store(SHUTTING_DOWN, Ordering::SeqCst);
        true
    }

    /// The next shard in turn (`Placement::RoundRobin`, and the home of a
    /// compat socket made on an entered thread).
    pub(crate) fn round_robin_shard(&self) -> usize {
        self.next_round_robin.fetch_add(1, Ordering::Relaxed) % self.remotes.len()
    }

    /// When the graceful part of shutdown ends and cancelling begins.
    pub(crate) fn shutdown_deadline(&self) -> Option<Instant> {
        *self.deadline.lock()
    }
}
