//! Timing helpers: process CPU time (every thread, `cpu.rs`), a wall +
//! CPU span around a run, and the median of repeated measurements.

use std::time::{Duration, Instant};

pub(crate) use super::cpu::process_cpu_time;

/// Runs `f` on the calling thread; returns its wall time and the process
/// CPU time (every thread) spent meanwhile. The wall clock is read inside
/// the CPU span, so neither CPU reading is part of the wall time.
pub(crate) fn wall_and_cpu(f: impl FnOnce()) -> (Duration, Duration) {
    let (cpu0, wall0) = (process_cpu_time(), Instant::now());
    f();
    let (wall1, cpu1) = (wall0.elapsed(), process_cpu_time());
    (wall1, cpu1 - cpu0)
}

/// The median of `values` (the upper one of an even count); sorts them.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nearest-rank percentile of sorted samples.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds from nanoseconds, with three decimals below 10 µs.
pub(crate) fn us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us < 10.0 {
        format!("{us:.3}")
    } else {
        format!("{us:.1}")
    }
}

/// The p50 of one round's (unsorted) samples.
#[allow(dead_code)] // not every suite reports rounds
pub(crate) fn round_p50(samples: &[u64]) -> u64 {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, 50.0)
}

/// The spread of per-round p50s as "min–max" microseconds.
#[allow(dead_code)] // not every suite reports rounds
pub(crate) fn spread_us(p50s: &[u64]) -> String {
    let lo = p50s.iter().min().copied().unwrap_or(0);
    let hi = p50s.iter().max().copied().unwrap_or(0);
    format!("{}–{}", us(lo as f64), us(hi as f64))
}
