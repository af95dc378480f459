//! Summary mode's measurements and markdown tables: qd1 reads and write +
//! fdatasync (p50/p99 per operation, CPU per operation, ratio to the raw
//! io_uring floor, speed-up over `tokio::fs`) and qd32 reads (median rate).

use crate::cases::{
    Case, Env, LatFn, QD1_CASES, QD1_FLOOR, QD1_TOKIO, QD32_CASES, QD32_FLOOR, QD32_TOKIO,
    STREAM_CASES, STREAM_FLOOR, STREAM_TOKIO, TputFn, WHOLE_CASES, WHOLE_FLOOR, WHOLE_TOKIO,
    WHOLE64_CASES, WRITE_CASES, WRITE_FLOOR, WRITE_TOKIO,
};
use crate::files::MEDIUM_BLOCKS;
use crate::measure::LatRun;
use crate::shared::timing::{median, percentile, round_p50, spread_us, us};
use crate::stream::STREAM_READ;
use crate::watchdog::watch;
use crate::{
    BLOCK, QD, SUMMARY_QD1_READS, SUMMARY_QD32_READS, SUMMARY_ROUNDS, SUMMARY_STREAM_READS,
    SUMMARY_WHOLE_READS, SUMMARY_WRITES,
};

fn position<F>(cases: &[Case<F>], id: &str) -> usize {
    cases
        .iter()
        .position(|c| c.id == id)
        .expect("floor or baseline case")
}

/// The case indices of round `round`: all `n`, starting at `round % n`.
fn rotated(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |j| (round + j) % n)
}

/// Runs every latency case for `total` operations in [`SUMMARY_ROUNDS`]
/// rounds interleaved across cases, and prints one table.
fn summary_latency(
    env: &Env,
    cases: &[Case<LatFn>],
    total: usize,
    (floor, tokio): (&str, &str),
    (title, unit, floor_label): (&str, &str, &str),
) {
    let n = total / SUMMARY_ROUNDS;
    let mut runs: Vec<LatRun> = cases.iter().map(|_| LatRun::default()).collect();
    // Each round's own p50: how far the rounds of one case disagree.
    let mut round_p50s: Vec<Vec<u64>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..SUMMARY_ROUNDS {
        // Each round starts one case later: no case always follows the
        // same one (a write+fdatasync pays for the journal state the
        // previous case left).
        for k in rotated(cases.len(), round) {
            let (case, acc, p50s) = (&cases[k], &mut runs[k], &mut round_p50s[k]);
            let _watch = watch(case.id);
            let run = (case.run)(env, (n / 10).max(1), n);
            p50s.push(round_p50(&run.samples));
            acc.samples.extend_from_slice(&run.samples);
            acc.cpu += run.cpu;
            acc.note = run.note;
            if let Some((parks, ops)) = run.parks {
                let (p, o) = acc.parks.get_or_insert((0, 0));
                *p += parks;
                *o += ops;
            }
        }
    }
    for run in &mut runs {
        run.samples.sort_unstable();
    }
    let p50 = |k: usize| percentile(&runs[k].samples, 50.0) as f64;
    let (floor_p50, tokio_p50) = (p50(position(cases, floor)), p50(position(cases, tokio)));
    println!("### {title}");
    println!();
    println!(
        "| case | threads | {unit}s | p50 µs | p50 per round µs (min–max) | p99 µs | mean µs | \
         CPU µs per {unit} | p50 / {floor_label} | speed-up vs tokio::fs (p50) | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (k, (case, run)) in cases.iter().zip(&runs).enumerate() {
        let p50s = &round_p50s[k];
        let count = run.samples.len();
        let mean = run.samples.iter().sum::<u64>() as f64 / count as f64;
        let cpu = run.cpu.as_nanos() as f64 / count as f64;
        let note = [
            run.parks
                .map(|(p, o)| format!("{:.2} parks per {unit}", p as f64 / o as f64)),
            run.note.clone(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        println!(
            "| {} `{}` | {} | {count} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {note} |",
            case.label,
            case.id,
            case.threads,
            us(p50(k)),
            spread_us(p50s),
            us(percentile(&run.samples, 99.0) as f64),
            us(mean),
            us(cpu),
            p50(k) / floor_p50,
            tokio_p50 / p50(k),
        );
    }
    println!();
}

pub(crate) fn summary_qd1(env: &Env) {
    summary_latency(
        env,
        QD1_CASES,
        SUMMARY_QD1_READS,
        (QD1_FLOOR, QD1_TOKIO),
        (
            &format!("qd1: {BLOCK} B random reads of a page-cached file, one at a time"),
            "read",
            "raw io_uring",
        ),
    );
}

pub(crate) fn summary_whole(env: &Env) {
    summary_latency(
        env,
        WHOLE_CASES,
        SUMMARY_WHOLE_READS,
        (WHOLE_FLOOR, WHOLE_TOKIO),
        (
            &format!("Whole-file reads of a {BLOCK} B page-cached file, one call at a time"),
            "call",
            "raw io_uring",
        ),
    );
}

pub(crate) fn summary_whole64(env: &Env) {
    summary_latency(
        env,
        WHOLE64_CASES,
        SUMMARY_WHOLE_READS,
        (WHOLE_FLOOR, WHOLE_TOKIO),
        (
            &format!(
                "Whole-file reads of a {} KiB page-cached file, one call at a time",
                MEDIUM_BLOCKS * BLOCK / 1024
            ),
            "call",
            "raw io_uring",
        ),
    );
}

pub(crate) fn summary_write(env: &Env) {
    summary_latency(
        env,
        WRITE_CASES,
        SUMMARY_WRITES,
        (WRITE_FLOOR, WRITE_TOKIO),
        (
            &format!("{BLOCK} B write + fdatasync, one pair at a time"),
            "write",
            "raw io_uring (sequential)",
        ),
    );
}

pub(crate) fn summary_qd32(env: &Env) {
    let title = format!("### qd32: {BLOCK} B random reads of a page-cached file, {QD} in flight");
    summary_tput(
        env,
        QD32_CASES,
        SUMMARY_QD32_READS,
        (QD32_FLOOR, QD32_TOKIO),
        &title,
    );
}

pub(crate) fn summary_stream(env: &Env) {
    let title = format!(
        "### Sequential {STREAM_READ} B reads through `AsyncRead` (`read_exact`, as `BufReader` \
         and `tokio::io::copy` read a file), one at a time"
    );
    summary_tput(
        env,
        STREAM_CASES,
        SUMMARY_STREAM_READS,
        (STREAM_FLOOR, STREAM_TOKIO),
        &title,
    );
}

/// Runs every throughput case for `total` reads in [`SUMMARY_ROUNDS`]
/// rounds interleaved across cases, and prints one table.
fn summary_tput(
    env: &Env,
    cases: &[Case<TputFn>],
    total: u64,
    (floor, tokio): (&str, &str),
    title: &str,
) {
    let reads = total / SUMMARY_ROUNDS as u64;
    let mut rate = vec![Vec::with_capacity(SUMMARY_ROUNDS); cases.len()];
    let mut cpu = vec![Vec::with_capacity(SUMMARY_ROUNDS); cases.len()];
    let mut parks: Vec<Option<u64>> = vec![None; cases.len()];
    for round in 0..SUMMARY_ROUNDS {
        for k in rotated(cases.len(), round) {
            let case = &cases[k];
            let _watch = watch(case.id);
            let run = (case.run)(env, reads);
            rate[k].push(reads as f64 / run.wall.as_secs_f64());
            cpu[k].push(run.cpu.as_nanos() as f64 / reads as f64);
            if let Some(p) = run.parks {
                *parks[k].get_or_insert(0) += p;
            }
        }
    }
    let rate: Vec<f64> = rate.iter_mut().map(|v| median(v)).collect();
    let cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
    let floor = rate[position(cases, floor)];
    let tokio = rate[position(cases, tokio)];
    println!("{title}");
    println!();
    println!(
        "| case | threads | k reads/s | µs per read (wall) | CPU µs per read | \
         time / raw io_uring | speed-up vs tokio::fs | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (k, case) in cases.iter().enumerate() {
        let note = parks[k]
            .map(|p| {
                let per = p as f64 / (reads * SUMMARY_ROUNDS as u64) as f64;
                format!("{per:.3} parks per read")
            })
            .unwrap_or_default();
        println!(
            "| {} `{}` | {} | {:.0} | {} | {} | {:.2} | {:.2} | {note} |",
            case.label,
            case.id,
            case.threads,
            rate[k] / 1e3,
            us(1e9 / rate[k]),
            us(cpu[k]),
            floor / rate[k],
            rate[k] / tokio,
        );
    }
    println!();
}
