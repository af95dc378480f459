//! The `net` suite: TCP over loopback through ringlane's native lane, next
//! to the raw io_uring floor (bare rings from the `io-uring` crate),
//! blocking std sockets and Tokio, in one run.
//!
//! Workloads (issue 5, `shared/BENCHMARKS.md`), `TCP_NODELAY` on every
//! socket of every case:
//! * **echo**: a 256 B message, echoed back, one at a time (qd1); one
//!   latency sample per round trip, every echo checked.
//!   * one thread: `raw_uring_1_ring` (both ends on one bare ring, the
//!     floor), `ringlane_1_shard` (client and server tasks on one shard),
//!     `tokio_current_thread` (both tasks on one thread);
//!   * two threads: `raw_uring_2_threads` (a bare ring per end, the floor),
//!     `ringlane_2_shards` (server on shard 0, client on shard 1),
//!     `std_blocking_2_threads`, `tokio_mt_2_workers` (two tasks; Tokio's
//!     scheduler places them, mostly on one worker), and
//!     `tokio_ct_pair_2_threads` (a current-thread runtime per end, on two
//!     threads: Tokio with every hop crossing threads, like ringlane's two
//!     shards).
//! * **stream**: the client writes 4 KiB chunks (one write in flight, a
//!   window of one) and the server reads into 64 KiB until all arrived;
//!   throughput in MiB/s and CPU per MiB.
//!
//! The peer runtimes (monoio, compio, glommio) are compared in a separate
//! crate, `benches/peers` (BENCHMARKS.md rule 7 keeps them out of the
//! library's dev-dependencies): `cargo run --release -p ringlane-peers`.
//!
//! Modes: criterion by default (`cargo bench --bench net`: groups
//! `net_echo_256` and `net_stream_4k`), or `RINGLANE_BENCH_SUMMARY=1`
//! (`scripts/bench-summary net`): rounds interleaved across cases and
//! markdown tables with p50/p99, CPU per operation and ratios to the floor
//! and to Tokio.

#[path = "../shared/mod.rs"]
mod shared;

mod cases;
mod echo_common;
mod pair;
mod raw;
mod watchdog;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use cases::{ECHO_CASES, STREAM_CASES};
use pair::{MSG, Run};
use shared::timing::{median, percentile, us};
use watchdog::{start_watchdog, watch};

/// A case with no progress for this long is reported as a stall.
const STALL: Duration = Duration::from_secs(10);
/// Summary mode: round trips per echo case (all rounds), bytes per stream
/// run, rounds.
const SUMMARY_ECHOES: usize = 40_000;
const SUMMARY_STREAM_BYTES: usize = 256 << 20;
const SUMMARY_ROUNDS: usize = 4;
/// Criterion mode: bytes per stream iteration.
const CRITERION_STREAM_BYTES: usize = 16 << 20;

fn bench_echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("net_echo_256");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for case in ECHO_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (case.run)(100, iters as usize).wall
            })
        });
    }
    group.finish();
}

fn bench_stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("net_stream_4k");
    group
        .throughput(Throughput::Bytes(CRITERION_STREAM_BYTES as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for case in STREAM_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (0..iters)
                    .map(|_| (case.run)(CRITERION_STREAM_BYTES).wall)
                    .sum()
            })
        });
    }
    group.finish();
}

fn summary_echo() {
    let n = SUMMARY_ECHOES / SUMMARY_ROUNDS;
    let mut runs: Vec<Run> = ECHO_CASES.iter().map(|_| Run::default()).collect();
    for _ in 0..SUMMARY_ROUNDS {
        for (case, acc) in ECHO_CASES.iter().zip(&mut runs) {
            let _watch = watch(case.id);
            let run = (case.run)(n / 10, n);
            acc.samples.extend_from_slice(&run.samples);
            acc.wall += run.wall;
            acc.cpu += run.cpu;
        }
    }
    for r in &mut runs {
        r.samples.sort_unstable();
    }
    let p50 = |id: &str| {
        let k = ECHO_CASES.iter().position(|c| c.id == id).expect("case");
        percentile(&runs[k].samples, 50.0) as f64
    };
    println!("### TCP echo, {MSG} B, qd1 (round trip)");
    println!();
    println!(
        "| case | threads | p50 µs | p99 µs | mean µs | CPU µs per RTT | p50 / floor | p50 / tokio | floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for (case, run) in ECHO_CASES.iter().zip(&runs) {
        let count = run.samples.len() as f64;
        let mine = percentile(&run.samples, 50.0) as f64;
        let (threads, tokio) = if case.floor == "raw_uring_1_ring" {
            (1, "tokio_current_thread")
        } else {
            (2, "tokio_ct_pair_2_threads")
        };
        println!(
            "| {} | {threads} | {} | {} | {} | {} | {:.2} | {:.2} | {} |",
            case.id,
            us(mine),
            us(percentile(&run.samples, 99.0) as f64),
            us(run.wall.as_nanos() as f64 / count),
            us(run.cpu.as_nanos() as f64 / count),
            mine / p50(case.floor),
            mine / p50(tokio),
            case.floor
        );
    }
    println!();
}

fn summary_stream() {
    let mib = (SUMMARY_STREAM_BYTES >> 20) as f64;
    let mut rates: Vec<Vec<f64>> = STREAM_CASES.iter().map(|_| Vec::new()).collect();
    let mut cpus: Vec<Vec<f64>> = STREAM_CASES.iter().map(|_| Vec::new()).collect();
    for _ in 0..SUMMARY_ROUNDS {
        for (k, case) in STREAM_CASES.iter().enumerate() {
            let _watch = watch(case.id);
            let run = (case.run)(SUMMARY_STREAM_BYTES);
            rates[k].push(mib / run.wall.as_secs_f64());
            cpus[k].push(run.cpu.as_secs_f64() * 1e6 / mib);
        }
    }
    let rate: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
    let cpu: Vec<f64> = cpus.iter_mut().map(|c| median(c)).collect();
    let at = |id: &str| STREAM_CASES.iter().position(|c| c.id == id).expect("case");
    let (floor, tokio) = (
        rate[at("raw_uring_2_threads")],
        rate[at("tokio_mt_2_workers")],
    );
    println!("### TCP stream, 4 KiB writes, window 1 (throughput)");
    println!();
    println!(
        "| case | MiB/s | CPU µs per MiB | rate / raw_uring_2_threads | rate / tokio_mt_2_workers |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (k, case) in STREAM_CASES.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} |",
            case.id,
            rate[k],
            cpu[k],
            rate[k] / floor,
            rate[k] / tokio
        );
    }
    println!();
}

fn summary() {
    let started = Instant::now();
    for case in ECHO_CASES {
        let _watch = watch(case.id);
        (case.run)(100, 1000);
    }
    for case in STREAM_CASES {
        let _watch = watch(case.id);
        (case.run)(8 << 20);
    }
    summary_echo();
    summary_stream();
    println!(
        "Loopback TCP, TCP_NODELAY on every socket. Echo: {SUMMARY_ECHOES} round trips per case \
         in {SUMMARY_ROUNDS} rounds interleaved across cases, each after a 10% warm-up; p50/p99 \
         of the per-round-trip samples. Stream: {} MiB per run, median of {SUMMARY_ROUNDS} \
         rounds. ringlane shards park (default set-up); the raw floors' rings are set up like \
         ringlane's (SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL, registered ring fd). \
         Echo ratios are time over the floor's time (below 1: faster); the echo's Tokio \
         reference is tokio_current_thread for one thread and tokio_ct_pair_2_threads (a \
         current-thread runtime per end) for two, since Tokio multi-thread mostly keeps both \
         ends on one worker; stream ratios are throughput over the floor's (above 1: faster). CPU = user+sys (getrusage, plus running threads' time since their last tick) of \
         every thread over the measured span. Peers: cargo run --release -p ringlane-peers. Summary \
         pass: {:.1} s.",
        SUMMARY_STREAM_BYTES >> 20,
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    start_watchdog();
    // Profiling aid: `RINGLANE_NET_PROFILE=<echo case id>` runs that echo
    // case for 200,000 round trips and prints its mean.
    if let Ok(id) = std::env::var("RINGLANE_NET_PROFILE") {
        let case = ECHO_CASES
            .iter()
            .find(|c| c.id == id)
            .expect("an echo case id");
        let _watch = watch(case.id);
        let run = (case.run)(1000, 200_000);
        println!(
            "{id}: mean {} µs, CPU {} µs per RTT",
            us(run.wall.as_nanos() as f64 / 2e5),
            us(run.cpu.as_nanos() as f64 / 2e5)
        );
        return;
    }
    if shared::summary_mode() {
        summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_echo(&mut c);
        bench_stream(&mut c);
        c.final_summary();
    }
}
