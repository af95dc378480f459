//! Per-operation clocks, process CPU time, percentiles and the markdown
//! tables.

use std::time::{Duration, Instant};

pub(crate) use crate::cpu::process_cpu_time;

/// The outcome of one run of a case.
#[derive(Default)]
pub(crate) struct Run {
    /// Nanoseconds per operation.
    pub(crate) samples: Vec<u64>,
    /// Process CPU time over the measured operations.
    pub(crate) cpu: Duration,
}

/// Per-operation clock of the one task or thread that runs a case: `warm`
/// unrecorded operations, then one sample per operation (one
/// `Instant::now()` each; the end of one operation is the start of the
/// next). CPU time is taken over the measured operations only.
pub(crate) struct Clock {
    warm: usize,
    n: usize,
    done: usize,
    ns: Vec<u64>,
    last: Instant,
    cpu0: Duration,
}

impl Clock {
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
        if self.done > self.warm {
            self.ns.push((now - self.last).as_nanos() as u64);
        } else if self.done == self.warm {
            self.cpu0 = process_cpu_time();
            now = Instant::now();
        }
        self.last = now;
    }

    pub(crate) fn finish(self) -> Run {
        let cpu = process_cpu_time() - self.cpu0;
        assert_eq!(self.ns.len(), self.n, "every operation measured");
        Run {
            samples: self.ns,
            cpu,
        }
    }
}

/// Wall and process CPU time over one run of a throughput case.
pub(crate) struct Timed {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
}

/// A run's clocks, started now: for a run that ends inside a runtime.
pub(crate) struct Span(Duration, Instant);

impl Span {
    pub(crate) fn start() -> Self {
        Self(process_cpu_time(), Instant::now())
    }

    pub(crate) fn end(self) -> Timed {
        Timed {
            wall: self.1.elapsed(),
            cpu: process_cpu_time() - self.0,
        }
    }
}

/// Times `f` (the whole run) in wall and process CPU time.
pub(crate) fn timed(f: impl FnOnce()) -> Timed {
    let span = Span::start();
    f();
    span.end()
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

/// A case's runs of every round.
pub(crate) struct Outcome {
    pub(crate) id: &'static str,
    pub(crate) what: &'static str,
    pub(crate) rounds: Vec<Run>,
}

impl Outcome {
    fn all_sorted(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.rounds.iter().flat_map(|r| r.samples.clone()).collect();
        all.sort_unstable();
        all
    }
}

/// Prints one markdown table: p50/p99/mean of the samples of all rounds,
/// the spread of the per-round p50s, CPU per operation, and p50 and CPU as
/// ratios to the case `base`.
pub(crate) fn print_table(title: &str, unit: &str, outcomes: &[Outcome], base: &str) {
    let sorted: Vec<Vec<u64>> = outcomes.iter().map(Outcome::all_sorted).collect();
    let cpu_per_op = |o: &Outcome, n: usize| {
        o.rounds.iter().map(|r| r.cpu.as_nanos()).sum::<u128>() as f64 / n as f64
    };
    let k = outcomes
        .iter()
        .position(|o| o.id == base)
        .expect("base case ran");
    let base_p50 = percentile(&sorted[k], 50.0) as f64;
    let base_cpu = cpu_per_op(&outcomes[k], sorted[k].len());
    println!("### {title}");
    println!();
    println!(
        "| case | what | {unit}s | p50 µs | p99 µs | mean µs | p50 per round µs (min–max) | \
         CPU µs per {unit} | p50 / {base} | CPU / {base} |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (o, s) in outcomes.iter().zip(&sorted) {
        let n = s.len();
        let p50 = percentile(s, 50.0) as f64;
        let mean = s.iter().sum::<u64>() as f64 / n as f64;
        let round_p50 = |pick: fn(f64, f64) -> f64, init: f64| {
            o.rounds
                .iter()
                .map(|r| {
                    let mut v = r.samples.clone();
                    v.sort_unstable();
                    percentile(&v, 50.0) as f64
                })
                .fold(init, pick)
        };
        let cpu = cpu_per_op(o, n);
        println!(
            "| `{}` | {} | {n} | {} | {} | {} | {}–{} | {} | {:.2} | {:.2} |",
            o.id,
            o.what,
            us(p50),
            us(percentile(s, 99.0) as f64),
            us(mean),
            us(round_p50(f64::min, f64::INFINITY)),
            us(round_p50(f64::max, 0.0)),
            us(cpu),
            p50 / base_p50,
            cpu / base_cpu,
        );
    }
    println!();
}
