//! The subtasks' CPU work: a busy loop of a cheap hash over a `u64`,
//! calibrated once at start-up so that one unit takes about [`UNIT`] on this
//! machine, and the work plan (which subtask does how many units).

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::{HEAVY_FACTOR, REQUESTS, SUBTASKS, UNIT};

/// The fan-out shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Every subtask does one unit.
    Balanced,
    /// One subtask per request (index `request % SUBTASKS`) does
    /// [`HEAVY_FACTOR`] units, the others one.
    Skewed,
    /// Like `Skewed`, but only even-numbered requests have the heavy
    /// subtask: placing requests `r % 2` puts all the heavy work on one
    /// shard, the load imbalance stealing exists for.
    Uneven,
}

impl Shape {
    /// Units of work of subtask `sub` of request `req`.
    pub(crate) fn units(self, req: usize, sub: usize) -> u64 {
        match self {
            Shape::Skewed if sub == req % SUBTASKS => HEAVY_FACTOR,
            Shape::Uneven if req % 2 == 0 && sub == req % SUBTASKS => HEAVY_FACTOR,
            _ => 1,
        }
    }

    /// Units of work of one batch (every request).
    pub(crate) fn batch_units(self) -> u64 {
        (0..REQUESTS)
            .flat_map(|r| (0..SUBTASKS).map(move |s| self.units(r, s)))
            .sum()
    }
}

/// A subtask's seed: distinct per (request, subtask), the same every batch.
pub(crate) fn seed(req: usize, sub: usize) -> u64 {
    (req * SUBTASKS + sub) as u64
}

/// `iters` rounds of a multiply-rotate-xor hash; `black_box` keeps every
/// round in the loop.
#[inline(never)]
pub(crate) fn spin(seed: u64, iters: u64) -> u64 {
    let mut x = seed ^ 0x2545_F491_4F6C_DD1D;
    for _ in 0..iters {
        x = black_box(x)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(23)
            ^ 0xD6E8_FEB8_6659_FD93;
    }
    x
}

/// One subtask's result.
pub(crate) fn subtask(req: usize, sub: usize, shape: Shape, iters_per_unit: u64) -> u64 {
    spin(seed(req, sub), shape.units(req, sub) * iters_per_unit)
}

/// Hash rounds per unit, from the fastest of several timed probes on the
/// calling thread (the least disturbed one).
pub(crate) fn calibrate() -> u64 {
    const PROBE: u64 = 200_000;
    let mut best = Duration::MAX;
    for i in 0..30 {
        let t = Instant::now();
        black_box(spin(i, PROBE));
        best = best.min(t.elapsed());
    }
    let ns_per_iter = best.as_nanos().max(1) as f64 / PROBE as f64;
    ((UNIT.as_nanos() as f64 / ns_per_iter).round() as u64).max(1)
}

/// Median time of one unit, measured after calibration (for the report).
pub(crate) fn unit_time(iters_per_unit: u64) -> Duration {
    let mut samples: Vec<Duration> = (0..201)
        .map(|i| {
            let t = Instant::now();
            black_box(spin(i, iters_per_unit));
            t.elapsed()
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The wrapping sum of every subtask's result in one batch, computed on the
/// calling thread: each runtime's batch must return exactly this.
pub(crate) fn expected_total(shape: Shape, iters_per_unit: u64) -> u64 {
    (0..REQUESTS)
        .flat_map(|r| (0..SUBTASKS).map(move |s| subtask(r, s, shape, iters_per_unit)))
        .fold(0, u64::wrapping_add)
}
