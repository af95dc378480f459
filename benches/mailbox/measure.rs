//! Measurement helpers shared by every case of this suite: a cheap thread
//! id, ringlane's doorbell counters, and the per-run outcomes ([`RttRun`]
//! with its per-round-trip clock [`Samples`], and [`TputRun`]).

use std::time::{Duration, Instant};

use crate::shared::timing::process_cpu_time;
use crate::watchdog::progress;

/// An id of the calling thread that costs one TLS access.
pub(crate) fn thread_tag() -> usize {
    thread_local!(static TAG: u8 = const { 0 });
    TAG.with(|t| std::ptr::from_ref(t).addr())
}

/// Ringlane's doorbell counters, summed over a runtime's shards.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Doorbells {
    msg_ring: u64,
    eventfd: u64,
    avoided: u64,
    parks: u64,
}

impl Doorbells {
    pub(crate) fn of(handle: &ringlane::Handle) -> Self {
        let mut d = Self::default();
        for shard in 0..handle.shards() {
            let s = handle.shard_stats(shard).expect("shard stats");
            d.msg_ring += s.doorbells_msg_ring;
            d.eventfd += s.doorbells_eventfd;
            d.avoided += s.doorbells_avoided;
            d.parks += s.parks;
        }
        d
    }

    pub(crate) fn since(self, before: Self) -> Self {
        Self {
            msg_ring: self.msg_ring - before.msg_ring,
            eventfd: self.eventfd - before.eventfd,
            avoided: self.avoided - before.avoided,
            parks: self.parks - before.parks,
        }
    }

    pub(crate) fn add(&mut self, other: Self) {
        self.msg_ring += other.msg_ring;
        self.eventfd += other.eventfd;
        self.avoided += other.avoided;
        self.parks += other.parks;
    }

    pub(crate) fn describe(&self, per: u64, unit: &str) -> String {
        let f = |x: u64| x as f64 / per as f64;
        format!(
            "per {unit}: {:.2} MSG_RING + {:.2} eventfd doorbells, {:.2} avoided, {:.2} parks",
            f(self.msg_ring),
            f(self.eventfd),
            f(self.avoided),
            f(self.parks)
        )
    }
}

/// The outcome of one round-trip run.
#[derive(Default)]
pub(crate) struct RttRun {
    /// Nanoseconds per round trip.
    pub(crate) samples: Vec<u64>,
    /// Process CPU time over the measured round trips.
    pub(crate) cpu: Duration,
    /// Measured round trips whose two ends ran on different threads.
    pub(crate) cross: u64,
    /// Ringlane's doorbell counters over the measured round trips.
    pub(crate) doorbells: Option<Doorbells>,
}

impl RttRun {
    pub(crate) fn wall(&self) -> Duration {
        Duration::from_nanos(self.samples.iter().sum())
    }
}

/// Per-round-trip clock for the side that starts each round trip: `warm`
/// unrecorded round trips, then one sample per round trip (one
/// `Instant::now()` each, end of one round trip = start of the next).
pub(crate) struct Samples {
    warm: usize,
    done: usize,
    ns: Vec<u64>,
    last: Instant,
    cpu0: Duration,
    pub(crate) cross: u64,
}

impl Samples {
    pub(crate) fn new(warm: usize, n: usize) -> Self {
        assert!(warm >= 1, "at least one warm-up round trip");
        Self {
            warm,
            done: 0,
            ns: Vec::with_capacity(n),
            last: Instant::now(),
            cpu0: Duration::ZERO,
            cross: 0,
        }
    }

    /// Round trips to run, warm-up included.
    pub(crate) fn total(&self) -> u64 {
        (self.warm + self.ns.capacity()) as u64
    }

    /// Ends one round trip; returns `true` when the warm-up has just ended.
    #[inline]
    pub(crate) fn tick(&mut self, crossed: bool) -> bool {
        let mut now = Instant::now();
        self.done += 1;
        progress(self.done as u64);
        let started = self.done == self.warm;
        if self.done > self.warm {
            self.ns.push((now - self.last).as_nanos() as u64);
            self.cross += u64::from(crossed);
        } else if started {
            self.cpu0 = process_cpu_time();
            now = Instant::now();
        }
        self.last = now;
        started
    }

    pub(crate) fn finish(self) -> RttRun {
        let cpu = process_cpu_time() - self.cpu0;
        assert_eq!(
            self.ns.len(),
            self.ns.capacity(),
            "every round trip measured"
        );
        RttRun {
            samples: self.ns,
            cpu,
            cross: self.cross,
            doorbells: None,
        }
    }
}

/// The outcome of one throughput run.
pub(crate) struct TputRun {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) doorbells: Option<Doorbells>,
    /// Raw floor only: messages received out of send order.
    pub(crate) misordered: u64,
}
