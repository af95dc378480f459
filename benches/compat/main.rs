//! The `compat` suite: ringlane's compat lane (Tokio's I/O traits driven
//! by `POLL_ADD` readiness on the shard's ring) next to Tokio running the
//! same code, and hyper 1.x on both, in one run.
//!
//! Workloads (issue 6, `shared/BENCHMARKS.md`), loopback TCP with
//! `TCP_NODELAY` on every socket of every case:
//! * **echo** ([`echo`]): a 256 B message echoed back at qd1, a client and
//!   a server task, one latency sample per round trip, every echo checked.
//!   * one thread: `compat_1_shard` (compat `TcpStream`, both tasks on the
//!     one shard), `native_1_shard` (the native lane, owned buffers: the
//!     `net` suite's `ringlane_1_shard`), `tokio_current_thread` (the same
//!     generic code as the compat case over `tokio::net::TcpStream`);
//!   * two threads: `compat_2_shards` (server on shard 0, client on shard
//!     1), `tokio_mt_2_workers` (Tokio's scheduler places the two tasks,
//!     and may keep both on one worker: the summary's "cores busy" column,
//!     CPU over wall time, shows which way a case actually ran), and
//!     `tokio_ct_pair_2_threads` (a current-thread runtime per end on two
//!     threads: the Tokio reference for `compat_2_shards`, since every hop
//!     crosses threads in both).
//! * **hyper** ([`http`]): HTTP/1.1 hello-world requests/s with 16
//!   keep-alive connections, server and load generator in this process on
//!   the same 2-thread runtime: `ringlane_compat_2_shards` and
//!   `tokio_mt_2_workers`.
//!
//! A 1-shard ringlane runtime has one shard thread; the thread that called
//! `block_on` only waits for the result (as in the `net` suite).
//!
//! Modes: criterion by default (`cargo bench --bench compat`: groups
//! `compat_echo_256` and `compat_hyper_http1`, the latter timing one
//! request per iteration), or `RINGLANE_BENCH_SUMMARY=1`
//! (`scripts/bench-summary compat`): rounds interleaved across cases and
//! markdown tables with p50/p99, mean, CPU per operation and ratios to
//! Tokio.

#[path = "../shared/mod.rs"]
mod shared;

mod echo;
#[path = "../net/echo_common.rs"]
mod echo_common;
mod http;
#[path = "../net/pair.rs"]
#[allow(dead_code, reason = "the stream chunk size is the net suite's")]
mod pair;
mod watchdog;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use echo::ECHO_CASES;
use http::{CONNS, HTTP_CASES, HttpRun, THREADS, WARM_PER_CONN};
use pair::{MSG, Run};
use shared::timing::{percentile, us};
use watchdog::{start_watchdog, watch};

/// A case with no progress for this long is reported as a stall.
const STALL: Duration = Duration::from_secs(10);
/// Summary mode: round trips per echo case (all rounds), measured requests
/// per connection per hyper run, rounds.
const SUMMARY_ECHOES: usize = 100_000;
const SUMMARY_REQUESTS_PER_CONN: usize = 4_000;
const SUMMARY_ROUNDS: usize = 4;

fn bench_echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("compat_echo_256");
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

fn bench_http(c: &mut Criterion) {
    let mut group = c.benchmark_group("compat_hyper_http1");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in HTTP_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                // `iters` requests, rounded up to a whole number per
                // connection; the time is scaled back to `iters`.
                let per_conn = (iters as usize).div_ceil(CONNS);
                let run = (case.run)(per_conn);
                run.wall.mul_f64(iters as f64 / (per_conn * CONNS) as f64)
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
        "| case | threads | p50 µs | p99 µs | mean µs | CPU µs per RTT | cores busy | p50 / tokio | tokio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for (case, run) in ECHO_CASES.iter().zip(&runs) {
        let count = run.samples.len() as f64;
        let mine = percentile(&run.samples, 50.0) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {} |",
            case.id,
            case.threads,
            us(mine),
            us(percentile(&run.samples, 99.0) as f64),
            us(run.wall.as_nanos() as f64 / count),
            us(run.cpu.as_nanos() as f64 / count),
            run.cpu.as_secs_f64() / run.wall.as_secs_f64(),
            mine / p50(case.tokio),
            case.tokio
        );
    }
    println!();
}

fn summary_http() {
    let mut runs: Vec<HttpRun> = HTTP_CASES.iter().map(|_| HttpRun::default()).collect();
    for _ in 0..SUMMARY_ROUNDS {
        for (case, acc) in HTTP_CASES.iter().zip(&mut runs) {
            let _watch = watch(case.id);
            let run = (case.run)(SUMMARY_REQUESTS_PER_CONN);
            assert_eq!(run.samples.len(), CONNS * SUMMARY_REQUESTS_PER_CONN);
            acc.samples.extend_from_slice(&run.samples);
            acc.wall += run.wall;
            acc.cpu += run.cpu;
        }
    }
    let rate = |r: &HttpRun| r.samples.len() as f64 / r.wall.as_secs_f64();
    let tokio = HTTP_CASES
        .iter()
        .position(|c| c.id == "tokio_mt_2_workers")
        .expect("case");
    let tokio = rate(&runs[tokio]);
    println!("### hyper HTTP/1.1 hello world, {CONNS} keep-alive connections");
    println!();
    println!(
        "| case | threads | req/s | p50 µs | p99 µs | mean µs | CPU µs per req | cores busy | req/s / tokio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (case, run) in HTTP_CASES.iter().zip(&mut runs) {
        run.samples.sort_unstable();
        let count = run.samples.len() as f64;
        let mean = run.samples.iter().sum::<u64>() as f64 / count;
        println!(
            "| {} | {THREADS} | {:.0} | {} | {} | {} | {} | {:.2} | {:.2} |",
            case.id,
            rate(run),
            us(percentile(&run.samples, 50.0) as f64),
            us(percentile(&run.samples, 99.0) as f64),
            us(mean),
            us(run.cpu.as_nanos() as f64 / count),
            run.cpu.as_secs_f64() / run.wall.as_secs_f64(),
            rate(run) / tokio
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
    for case in HTTP_CASES {
        let _watch = watch(case.id);
        (case.run)(100);
    }
    summary_echo();
    summary_http();
    println!(
        "Loopback TCP, TCP_NODELAY on every socket. Echo: {SUMMARY_ECHOES} round trips per case \
         in {SUMMARY_ROUNDS} rounds interleaved across cases, each after a 10% warm-up; p50/p99 \
         of the per-round-trip samples; p50 / tokio below 1 is faster. The compat and Tokio echo \
         cases run the same generic read_exact/write_all code. hyper: server and client load \
         generator in this process on the same runtime; {CONNS} connections x \
         {SUMMARY_REQUESTS_PER_CONN} requests per run after {WARM_PER_CONN} warm-up requests \
         each, {SUMMARY_ROUNDS} rounds interleaved across cases; req/s = requests / measured wall time \
         (barrier release to last response) and CPU per request over all rounds, latency \
         percentiles of every request (ready until the body is collected); req/s / tokio above \
         1 is faster. ringlane: accept loop on shard 0, accepted connection k \
         served on shard k % {THREADS}, client connection i on shard i % {THREADS}, \
         HyperTimer; Tokio: everything tokio::spawn'ed, TokioTimer. ringlane shards park \
         (default set-up). CPU = user+sys (getrusage, plus running threads' time since their last tick) of every thread over the \
         measured span (both ends of the connection); cores busy = CPU / wall (near 1 for a \
         2-thread echo case means its two tasks mostly ran on one thread). Summary pass: {:.1} s.",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    start_watchdog();
    if shared::summary_mode() {
        summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_echo(&mut c);
        bench_http(&mut c);
        c.final_summary();
    }
}
