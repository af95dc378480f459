//! The `spawn` suite: spawn + join of small tasks (`async { x }` returning a
//! `u64`), measured per task, ringlane next to Tokio in one run.
//!
//! Cases (2 ringlane shards, 2 Tokio workers; see `shared/BENCHMARKS.md` beside the repository):
//! * `ringlane/local_from_shard`: a task on shard 0 spawns a batch with
//!   `ringlane::spawn_local`, then awaits it.
//! * `ringlane/pinned_from_shard`: the same with `Handle::spawn_pinned` onto
//!   its own shard.
//! * `ringlane/pinned_from_outside`, `ringlane/local_from_outside`: the
//!   benchmark thread spawns with `Handle::spawn_pinned(i % shards, ..)` or
//!   `Handle::spawn_local_on`, then awaits in `Runtime::block_on`.
//! * `tokio_mt/from_task`, `tokio_mt/from_outside`: a multi-thread runtime
//!   with 2 workers, spawning from inside a task / through its handle.
//! * `tokio_ct/from_task`: a current-thread runtime (one thread) spawning
//!   from inside `block_on`.
//!
//! And, in a group of its own (`spawn_blocking`), a blocking closure's round
//! trip, one at a time (spawn, await, spawn, ...) from a task: ringlane's
//! `spawn_blocking` from a task on shard 0 against Tokio's from a task of
//! the multi-thread runtime. Each hop wakes a sleeping thread (the pool's,
//! then the awaiting one), so this is a wake-up latency, not a spawn cost.
//!
//! Two modes:
//! * default: criterion (`cargo bench --bench spawn`), group `spawn`,
//!   throughput in tasks; for the `from_task`/`from_shard` cases the timed
//!   region is the batch loop inside the runtime (`iter_custom`).
//! * `RINGLANE_BENCH_SUMMARY=1`: a fixed number of tasks per case, rounds
//!   interleaved across cases, printing a markdown table with wall time and
//!   process CPU time (every thread: `shared/cpu.rs`) per task.
//!   `scripts/bench-summary` runs this.
//!
//! [`shared`] holds what every suite shares (CPU time, the median, runtime
//! set-up).

#[path = "shared/mod.rs"]
mod shared;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use shared::runtimes::{ringlane_runtime, shutdown, tokio_current_thread, tokio_multi_thread};
use shared::timing::{median, wall_and_cpu};

/// Shards of the ringlane runtime and workers of the Tokio multi-thread one.
const THREADS: usize = 2;
/// Tasks spawned, then joined, per batch.
const BATCH: usize = 1000;
/// Summary mode: batches per round, and rounds per case (median reported).
const SUMMARY_BATCHES: u64 = 100;
const SUMMARY_ROUNDS: usize = 7;

/// Every runtime, built once, before anything is timed.
struct Runtimes {
    ringlane: ringlane::Runtime,
    tokio_mt: tokio::runtime::Runtime,
    tokio_ct: tokio::runtime::Runtime,
}

impl Runtimes {
    fn new() -> Self {
        Self {
            ringlane: ringlane_runtime(ringlane::Runtime::builder(), THREADS),
            tokio_mt: tokio_multi_thread(THREADS),
            tokio_ct: tokio_current_thread(),
        }
    }
}

/// Runs `batches` batches and returns the time of the timed region.
type Run = fn(&Runtimes, u64) -> Duration;

const CASES: &[(&str, Run)] = &[
    ("ringlane/local_from_shard", ringlane_local_from_shard),
    ("ringlane/pinned_from_shard", ringlane_pinned_from_shard),
    ("ringlane/pinned_from_outside", ringlane_pinned_from_outside),
    ("ringlane/local_from_outside", ringlane_local_from_outside),
    ("tokio_mt/from_task", tokio_mt_from_task),
    ("tokio_mt/from_outside", tokio_mt_from_outside),
    ("tokio_ct/from_task", tokio_ct_from_task),
];

/// The baseline the summary's ratio column divides by.
const BASELINE: &str = "tokio_mt/from_task";

/// Blocking round trips per summary round (one at a time).
const BLOCKING_TRIPS: u64 = 20_000;

/// Runs that many blocking round trips and returns their time.
const BLOCKING_CASES: &[(&str, Run)] = &[
    ("ringlane/from_shard", ringlane_blocking),
    ("tokio_mt/from_task", tokio_mt_blocking),
];

/// `trips` blocking closures from a task on shard 0, each awaited before
/// the next.
fn ringlane_blocking(rts: &Runtimes, trips: u64) -> Duration {
    let driver = rts
        .ringlane
        .handle()
        .spawn_pinned(0, async move {
            let start = Instant::now();
            for i in 0..trips {
                let got = ringlane::spawn_blocking(move || black_box(i)).expect("spawn");
                assert_eq!(got.await.expect("join"), i);
            }
            start.elapsed()
        })
        .expect("spawn driver");
    rts.ringlane.block_on(driver).expect("driver")
}

/// The same with `tokio::task::spawn_blocking` from a multi-thread task.
fn tokio_mt_blocking(rts: &Runtimes, trips: u64) -> Duration {
    let driver = rts.tokio_mt.spawn(async move {
        let start = Instant::now();
        for i in 0..trips {
            let got = tokio::task::spawn_blocking(move || black_box(i));
            assert_eq!(got.await.expect("join"), i);
        }
        start.elapsed()
    });
    rts.tokio_mt.block_on(driver).expect("driver")
}

#[derive(Clone, Copy)]
enum ShardSpawn {
    Local,
    Pinned,
}

/// A driver task on shard 0 spawns and joins the batches on its own shard
/// and times itself.
fn ringlane_from_shard(rts: &Runtimes, batches: u64, how: ShardSpawn) -> Duration {
    let driver = rts
        .ringlane
        .handle()
        .spawn_pinned(0, async move {
            let handle = ringlane::Handle::current().expect("driver runs on a shard");
            let shard = ringlane::current_shard().expect("driver runs on a shard");
            let mut joins = Vec::with_capacity(BATCH);
            let start = Instant::now();
            for _ in 0..batches {
                for i in 0..BATCH as u64 {
                    let task = async move { black_box(i) };
                    let join = match how {
                        ShardSpawn::Local => ringlane::spawn_local(task),
                        ShardSpawn::Pinned => handle.spawn_pinned(shard, task),
                    };
                    joins.push(join.expect("spawn"));
                }
                let mut sum = 0;
                for join in joins.drain(..) {
                    sum += join.await.expect("join");
                }
                black_box(sum);
            }
            start.elapsed()
        })
        .expect("spawn driver");
    rts.ringlane.block_on(driver).expect("driver")
}

fn ringlane_local_from_shard(rts: &Runtimes, batches: u64) -> Duration {
    ringlane_from_shard(rts, batches, ShardSpawn::Local)
}

fn ringlane_pinned_from_shard(rts: &Runtimes, batches: u64) -> Duration {
    ringlane_from_shard(rts, batches, ShardSpawn::Pinned)
}

/// The calling thread spawns round-robin over the shards, then joins in
/// `block_on`: `Send` futures with `spawn_pinned`, or `!Send`-capable ones
/// built on the shard with `spawn_local_on`.
fn ringlane_from_outside(rts: &Runtimes, batches: u64, how: ShardSpawn) -> Duration {
    let handle = rts.ringlane.handle();
    let mut joins = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..batches {
        for i in 0..BATCH {
            let x = i as u64;
            let join = match how {
                ShardSpawn::Pinned => handle.spawn_pinned(i % THREADS, async move { black_box(x) }),
                ShardSpawn::Local => {
                    handle.spawn_local_on(i % THREADS, move || async move { black_box(x) })
                }
            };
            joins.push(join.expect("spawn"));
        }
        let sum = rts.ringlane.block_on(async {
            let mut sum = 0;
            for join in joins.drain(..) {
                sum += join.await.expect("join");
            }
            sum
        });
        black_box(sum);
    }
    start.elapsed()
}

fn ringlane_pinned_from_outside(rts: &Runtimes, batches: u64) -> Duration {
    ringlane_from_outside(rts, batches, ShardSpawn::Pinned)
}

fn ringlane_local_from_outside(rts: &Runtimes, batches: u64) -> Duration {
    ringlane_from_outside(rts, batches, ShardSpawn::Local)
}

/// The body shared by the Tokio `from_task` cases: `tokio::spawn` from the
/// current task, then join; times itself.
async fn tokio_batches(batches: u64) -> Duration {
    let mut joins = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..batches {
        for i in 0..BATCH as u64 {
            joins.push(tokio::spawn(async move { black_box(i) }));
        }
        let mut sum = 0;
        for join in joins.drain(..) {
            sum += join.await.expect("join");
        }
        black_box(sum);
    }
    start.elapsed()
}

fn tokio_mt_from_task(rts: &Runtimes, batches: u64) -> Duration {
    let driver = rts.tokio_mt.spawn(tokio_batches(batches));
    rts.tokio_mt.block_on(driver).expect("driver")
}

fn tokio_mt_from_outside(rts: &Runtimes, batches: u64) -> Duration {
    let handle = rts.tokio_mt.handle();
    let mut joins = Vec::with_capacity(BATCH);
    let start = Instant::now();
    for _ in 0..batches {
        for i in 0..BATCH as u64 {
            joins.push(handle.spawn(async move { black_box(i) }));
        }
        let sum = rts.tokio_mt.block_on(async {
            let mut sum = 0;
            for join in joins.drain(..) {
                sum += join.await.expect("join");
            }
            sum
        });
        black_box(sum);
    }
    start.elapsed()
}

fn tokio_ct_from_task(rts: &Runtimes, batches: u64) -> Duration {
    rts.tokio_ct.block_on(tokio_batches(batches))
}

fn bench_spawn(c: &mut Criterion, rts: &Runtimes) {
    let mut group = c.benchmark_group("spawn");
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &(id, run) in CASES {
        group.bench_function(id, |b| b.iter_custom(|iters| run(rts, iters)));
    }
    group.finish();
    let mut group = c.benchmark_group("spawn_blocking");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &(id, run) in BLOCKING_CASES {
        group.bench_function(id, |b| b.iter_custom(|iters| run(rts, iters)));
    }
    group.finish();
}

/// The blocking round trips' table: rounds interleaved, medians.
fn summary_blocking(rts: &Runtimes) {
    for &(_, run) in BLOCKING_CASES {
        run(rts, BLOCKING_TRIPS / 10); // warm-up: the pools start their threads
    }
    let mut wall = vec![Vec::with_capacity(SUMMARY_ROUNDS); BLOCKING_CASES.len()];
    let mut cpu = vec![Vec::with_capacity(SUMMARY_ROUNDS); BLOCKING_CASES.len()];
    for _ in 0..SUMMARY_ROUNDS {
        for (k, &(_, run)) in BLOCKING_CASES.iter().enumerate() {
            let (wall_time, cpu_time) = wall_and_cpu(|| {
                run(rts, BLOCKING_TRIPS);
            });
            wall[k].push(wall_time.as_nanos() as f64 / BLOCKING_TRIPS as f64 / 1e3);
            cpu[k].push(cpu_time.as_nanos() as f64 / BLOCKING_TRIPS as f64 / 1e3);
        }
    }
    let wall: Vec<f64> = wall.iter_mut().map(|v| median(v)).collect();
    let cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
    let base = wall[BLOCKING_CASES.len() - 1];
    println!();
    println!("### spawn_blocking round trip, one at a time, from a task");
    println!();
    println!("| benchmark | µs per round trip (wall) | µs (CPU) | ratio vs tokio_mt |");
    println!("|---|---:|---:|---:|");
    for (k, &(id, _)) in BLOCKING_CASES.iter().enumerate() {
        println!(
            "| spawn_blocking/{id} | {:.2} | {:.2} | {:.2} |",
            wall[k],
            cpu[k],
            wall[k] / base
        );
    }
    println!();
    println!(
        "{BLOCKING_TRIPS} round trips per round (a closure returning its argument, awaited before the next), \
         median of {SUMMARY_ROUNDS} rounds interleaved across the cases, after a warm-up that starts the pools' threads. \
         Default pools (ringlane: 512 threads at most, 10 s keep-alive, as Tokio's). \
         CPU = user+sys of every thread in the process. Ratio = wall time / wall time of spawn_blocking/tokio_mt/from_task."
    );
}

/// Runs every case for a fixed number of tasks, rounds interleaved across
/// cases so that a noisy moment hits them alike, and prints a markdown table.
fn summary(rts: &Runtimes) {
    let tasks = (SUMMARY_BATCHES * BATCH as u64) as f64;
    for &(_, run) in CASES {
        run(rts, SUMMARY_BATCHES / 10); // warm-up
    }
    let mut wall = vec![Vec::with_capacity(SUMMARY_ROUNDS); CASES.len()];
    let mut cpu = vec![Vec::with_capacity(SUMMARY_ROUNDS); CASES.len()];
    for _ in 0..SUMMARY_ROUNDS {
        for (k, &(_, run)) in CASES.iter().enumerate() {
            let (wall_time, cpu_time) = wall_and_cpu(|| {
                run(rts, SUMMARY_BATCHES);
            });
            wall[k].push(wall_time.as_nanos() as f64 / tasks);
            cpu[k].push(cpu_time.as_nanos() as f64 / tasks);
        }
    }
    let wall: Vec<f64> = wall.iter_mut().map(|v| median(v)).collect();
    let cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
    let base = CASES
        .iter()
        .position(|&(id, _)| id == BASELINE)
        .map(|k| wall[k])
        .expect("baseline case");
    println!("| benchmark | ns/task (wall) | ns/task (CPU) | ratio vs tokio_mt |");
    println!("|---|---:|---:|---:|");
    for (k, &(id, _)) in CASES.iter().enumerate() {
        println!(
            "| spawn/{id} | {:.0} | {:.0} | {:.2} |",
            wall[k],
            cpu[k],
            wall[k] / base
        );
    }
    println!();
    println!(
        "{THREADS} ringlane shards / {THREADS} tokio workers (tokio_ct: 1 thread); \
         batches of {BATCH} tasks, {tasks} tasks per round, median of {SUMMARY_ROUNDS} rounds. \
         CPU = user+sys (getrusage, plus running threads' time since their last tick) of every thread in the process. \
         Ratio = wall time / wall time of spawn/{BASELINE}."
    );
}

fn main() {
    let rts = Runtimes::new();
    if shared::summary_mode() {
        summary(&rts);
        summary_blocking(&rts);
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_spawn(&mut c, &rts);
        c.final_summary();
    }
    shutdown(rts.ringlane, "ringlane");
}
