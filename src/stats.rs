//! Per-shard counters, published by the shard and read through the handle.

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use crate::padded::Padded;

/// A snapshot of one shard's counters.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let h = rt.handle();
/// rt.block_on(h.spawn_pinned(0, async {}).unwrap()).unwrap();
/// let s = h.shard_stats(0).unwrap();
/// assert!(s.tasks_polled >= 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStats {
    /// The shard's index.
    pub shard: usize,
    /// The shard thread's OS thread id (for `/proc/self/task/<tid>`).
    pub os_tid: i32,
    /// Task polls made by this shard.
    pub tasks_polled: u64,
    /// Times the shard slept in `io_uring_enter`.
    pub parks: u64,
    /// Doorbell CQEs (MSG_RING from other shards) received.
    pub doorbells_msg_ring: u64,
    /// Eventfd doorbells received: from threads that own no ring, from
    /// the runtime's own shutdown and re-injection pings, and the fallback
    /// for a MSG_RING the kernel refused or did not take.
    pub doorbells_eventfd: u64,
    /// Hand-offs to this shard that needed no doorbell (it was running).
    /// A thread that owns no ring counts each hand-off; another shard
    /// coalesces its hand-offs to one target per task poll, so it counts at
    /// most one per poll and target. A shard's hand-offs to itself need no
    /// doorbell at all and are not counted. A rate to compare with
    /// `doorbells_msg_ring`, not a count of messages.
    pub doorbells_avoided: u64,
    /// Envelopes (tasks, wakes, calls) taken from the mailbox.
    pub mailbox_received: u64,
    /// Channel messages sent by tasks on this shard.
    pub messages_sent: u64,
    /// Channel messages received by tasks on this shard.
    pub messages_received: u64,
    /// Parks ended by a doorbell (rather than a timer or a completion).
    pub wakeups: u64,
    /// Attempts to steal from another shard's deque.
    pub steals_attempted: u64,
    /// Attempts that took at least one task.
    pub steals_succeeded: u64,
    /// Tasks taken from other shards' deques. An estimate: a batch is
    /// counted by how much this shard's deque grew, so another shard
    /// stealing from that deque at the same moment makes it count low.
    pub tasks_stolen: u64,
    /// Stealable tasks taken from the global injector (an estimate, counted
    /// as `tasks_stolen` is).
    pub injector_pops: u64,
    /// Whether the shard was asleep in the kernel when the snapshot was
    /// taken: it had run everything handed to it before its last look for
    /// work, found nothing, and no doorbell had woken it since. A shard
    /// reads as parked from just before its sleep's `io_uring_enter`, which
    /// is also what submits the SQEs its tasks queued: those reach the
    /// kernel a moment later. A hint for monitoring and tests: it may
    /// change the moment after it is read.
    pub parked: bool,
}

/// The shared atomics behind [`ShardStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) os_tid: AtomicI32,
    pub(crate) tasks_polled: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) doorbells_msg_ring: AtomicU64,
    pub(crate) doorbells_eventfd: AtomicU64,
    /// Bumped by senders on other cores on every hand-off to a running
    /// shard: on a cache-line block of its own, so those writes do not
    /// drag the shard's own counters (and its hot lines) across cores.
    pub(crate) doorbells_avoided: Padded<AtomicU64>,
    pub(crate) mailbox_received: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) wakeups: AtomicU64,
    pub(crate) steals_attempted: AtomicU64,
    pub(crate) steals_succeeded: AtomicU64,
    pub(crate) tasks_stolen: AtomicU64,
    pub(crate) injector_pops: AtomicU64,
    /// Set by the shard when it has passed its last look for work (step R4
    /// of `mailbox/doorbell.rs`) and goes to sleep; cleared when it wakes.
    /// The doorbell's `PARKED` alone is not enough for
    /// [`ShardStats::parked`]: it is stored at R3, before that look, so a
    /// shard about to find work would read as parked.
    pub(crate) asleep: AtomicBool,
}

impl Counters {
    pub(crate) fn snapshot(&self, shard: usize, parked: bool) -> ShardStats {
        // A counter that only grows after another (a wake-up after its park,
        // a successful steal after its attempt) is read first, with Acquire
        // against `add`'s Release: a snapshot never shows more wake-ups
        // than parks, or more successful steals than attempts.
        let wakeups = self.wakeups.load(Acquire);
        let steals_succeeded = self.steals_succeeded.load(Acquire);
        ShardStats {
            shard,
            os_tid: self.os_tid.load(Relaxed),
            tasks_polled: self.tasks_polled.load(Relaxed),
            parks: self.parks.load(Relaxed),
            doorbells_msg_ring: self.doorbells_msg_ring.load(Relaxed),
            doorbells_eventfd: self.doorbells_eventfd.load(Relaxed),
            doorbells_avoided: self.doorbells_avoided.load(Relaxed),
            mailbox_received: self.mailbox_received.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            wakeups,
            steals_attempted: self.steals_attempted.load(Relaxed),
            steals_succeeded,
            tasks_stolen: self.tasks_stolen.load(Relaxed),
            injector_pops: self.injector_pops.load(Relaxed),
            parked,
        }
    }

    /// Step R5 begins (`true`, after R4 found nothing) or ends (`false`,
    /// before R6). Release: a snapshot that reads `true` (Acquire) also
    /// sees every task the shard ran before its last look.
    pub(crate) fn set_asleep(&self, asleep: bool) {
        self.asleep.store(asleep, Release);
    }

    /// Adds one to a counter that several threads write.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Adds `n` to a counter that only the owning shard writes (Release:
    /// see `snapshot`).
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.store(counter.load(Relaxed) + n, Release);
        }
    }
}
