//! Per-run outcomes ([`LatRun`] with its per-operation clock [`Samples`],
//! and [`TputRun`]) and ringlane's park counter.

use std::time::{Duration, Instant};

use crate::shared::timing::process_cpu_time;
use crate::watchdog::progress;

/// The outcome of one latency run (qd1 reads, write + fsync).
#[derive(Default)]
pub(crate) struct LatRun {
    /// Nanoseconds per operation.
    pub(crate) samples: Vec<u64>,
    /// Process CPU time over the measured operations.
    pub(crate) cpu: Duration,
    /// Ringlane only: shard parks and operations (warm-up included) over the run.
    pub(crate) parks: Option<(u64, u64)>,
    /// Something the report should say about the run.
    pub(crate) note: Option<String>,
}

impl LatRun {
    pub(crate) fn wall(&self) -> Duration {
        Duration::from_nanos(self.samples.iter().sum())
    }
}

/// Per-operation clock of the one task or thread that runs a latency case:
/// `warm` unrecorded operations, then one sample per operation (one
/// `Instant::now()` each, end of one operation = start of the next).
pub(crate) struct Samples {
    warm: usize,
    n: usize,
    done: usize,
    ns: Vec<u64>,
    last: Instant,
    cpu0: Duration,
}

impl Samples {
    pub(crate) fn new(warm: usize, n: usize) -> Self {
        assert!(warm >= 1, "at least one warm-up operation");
        Self {
            warm,
            n,
            done: 0,
            ns: Vec::with_capacity(n),
            last: Instant::now(),
            cpu0: Duration::ZERO,
        }
    }

    /// Operations to run, warm-up included.
    pub(crate) fn total(&self) -> usize {
        self.warm + self.n
    }

    /// Ends one operation.
    #[inline]
    pub(crate) fn tick(&mut self) {
        let mut now = Instant::now();
        self.done += 1;
        progress(self.done as u64);
        if self.done > self.warm {
            self.ns.push((now - self.last).as_nanos() as u64);
        } else if self.done == self.warm {
            self.cpu0 = process_cpu_time();
            now = Instant::now();
        }
        self.last = now;
    }

    pub(crate) fn finish(self) -> LatRun {
        let cpu = process_cpu_time() - self.cpu0;
        assert_eq!(self.ns.len(), self.n, "every operation measured");
        LatRun {
            samples: self.ns,
            cpu,
            parks: None,
            note: None,
        }
    }
}

/// The outcome of one throughput run.
pub(crate) struct TputRun {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    /// Ringlane only: shard parks over the run.
    pub(crate) parks: Option<u64>,
}

/// The start of a throughput run's measured span, on the thread or task
/// that drives it.
pub(crate) struct Span {
    wall0: Instant,
    cpu0: Duration,
}

impl Span {
    pub(crate) fn start() -> Self {
        let cpu0 = process_cpu_time();
        Self {
            wall0: Instant::now(),
            cpu0,
        }
    }

    pub(crate) fn end(self) -> TputRun {
        let wall = self.wall0.elapsed();
        TputRun {
            wall,
            cpu: process_cpu_time() - self.cpu0,
            parks: None,
        }
    }
}

/// Parks of every shard of a ringlane runtime so far.
pub(crate) fn parks(handle: &ringlane::Handle) -> u64 {
    (0..handle.shards())
        .map(|s| handle.shard_stats(s).expect("shard stats").parks)
        .sum()
}
