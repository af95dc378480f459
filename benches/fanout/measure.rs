//! Ringlane's scheduling counters ([`Steals`]), read around each measured
//! round of the summary.

use crate::THREADS;

/// Ringlane's scheduling counters, summed over a runtime's shards.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Steals {
    /// Task polls per shard (how the work was split).
    polled: [u64; THREADS],
    attempted: u64,
    succeeded: u64,
    stolen: u64,
    injector_pops: u64,
    parks: u64,
}

impl Steals {
    pub(crate) fn of(handle: &ringlane::Handle) -> Self {
        let mut c = Self::default();
        assert_eq!(handle.shards(), THREADS);
        for shard in 0..THREADS {
            let s = handle.shard_stats(shard).expect("shard stats");
            c.polled[shard] = s.tasks_polled;
            c.attempted += s.steals_attempted;
            c.succeeded += s.steals_succeeded;
            c.stolen += s.tasks_stolen;
            c.injector_pops += s.injector_pops;
            c.parks += s.parks;
        }
        c
    }

    pub(crate) fn since(self, before: Self) -> Self {
        Self {
            polled: std::array::from_fn(|i| self.polled[i] - before.polled[i]),
            attempted: self.attempted - before.attempted,
            succeeded: self.succeeded - before.succeeded,
            stolen: self.stolen - before.stolen,
            injector_pops: self.injector_pops - before.injector_pops,
            parks: self.parks - before.parks,
        }
    }

    pub(crate) fn add(&mut self, other: Self) {
        for (mine, theirs) in self.polled.iter_mut().zip(other.polled) {
            *mine += theirs;
        }
        self.attempted += other.attempted;
        self.succeeded += other.succeeded;
        self.stolen += other.stolen;
        self.injector_pops += other.injector_pops;
        self.parks += other.parks;
    }

    /// Per-batch averages over `batches` batches.
    pub(crate) fn describe(&self, batches: u64) -> String {
        let f = |x: u64| x as f64 / batches as f64;
        format!(
            "per batch: {} polls, {:.1} steal attempts, {:.1} succeeded, {:.1} tasks stolen, \
             {:.1} injector pops, {:.1} parks",
            self.polled.map(|p| format!("{:.0}", f(p))).join(" + "),
            f(self.attempted),
            f(self.succeeded),
            f(self.stolen),
            f(self.injector_pops),
            f(self.parks)
        )
    }
}
