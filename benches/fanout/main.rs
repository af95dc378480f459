//! The `fanout` suite: request fan-out over stealable tasks, ringlane next to
//! a Tokio multi-thread runtime with the same number of threads, in one run.
//!
//! Cases (2 ringlane shards, 2 Tokio workers; see `shared/BENCHMARKS.md`
//! beside the repository and issue 4):
//! * **balanced**: a batch is [`REQUESTS`] requests started together from the
//!   bench thread; each request spawns [`SUBTASKS`] subtasks and awaits them
//!   all; every subtask does one unit of CPU work (a hash busy loop
//!   calibrated at start-up to about [`UNIT`]). The batch ends when every
//!   request has finished, and its result is checked against a sequential
//!   computation.
//! * **skewed**: the same, but one subtask per request does [`HEAVY_FACTOR`]
//!   units.
//!   * `ringlane`: requests `Handle::spawn_stealable` (the injector),
//!     subtasks `ringlane::spawn` (the request's shard's deque); idle shards
//!     steal.
//!   * `ringlane_sub_pinned` (reference): requests stealable, subtasks
//!     `Placement::Pinned` to the shard the request runs on.
//!   * `ringlane_pinned` (reference, thread-per-core): requests
//!     `Placement::Pinned(r % 2)`, subtasks pinned to the same shard; no
//!     stealing at all.
//!   * `tokio_mt`: requests `Handle::spawn`, subtasks `tokio::spawn`.
//! * **spawn_join**: a driver task (ringlane: pinned to shard 0) spawns
//!   [`SPAWN_TASKS`] trivial stealable tasks (`ringlane::spawn` /
//!   `tokio::spawn`), then joins them.
//!
//! Two modes:
//! * default: criterion (`cargo bench --bench fanout`), group `fanout`, one
//!   iteration = one batch (`iter_custom`; `spawn_join` timed inside the
//!   driver task), throughput in subtasks or tasks.
//! * `RINGLANE_BENCH_SUMMARY=1`: [`SUMMARY_ROUNDS`] rounds interleaved across
//!   cases, printing markdown tables with wall and process CPU time
//!   (every thread: `shared/cpu.rs`) per batch, ratios to Tokio,
//!   and ringlane's stealing counters. `scripts/bench-summary` runs this.
//!
//! A watchdog thread aborts the process with a message (and every ringlane
//! shard's counters) if a case finishes no request or batch for [`STALL`].
//!
//! Layout: [`work`] (the calibrated busy loop and the work plan), [`cases`]
//! (runtimes, case table, ringlane and Tokio batches), [`measure`]
//! (scheduling counters), [`report`] (summary tables), [`watchdog`] (this
//! suite's progress count and stall message); [`shared`] holds what every
//! suite shares (CPU time, the median, runtime set-up, the watchdog
//! thread); this file holds the constants, the criterion group and the
//! entry point.

#[path = "../shared/mod.rs"]
mod shared;

mod cases;
mod measure;
mod report;
mod watchdog;
mod work;

use std::time::Duration;

use criterion::{Criterion, Throughput};

use cases::{CASES, Env, Workload};
use watchdog::{start_watchdog, watch};

/// Shards of the ringlane runtime, workers of the Tokio multi-thread one.
const THREADS: usize = 2;
/// Requests per batch, started together.
const REQUESTS: usize = 64;
/// Subtasks per request.
const SUBTASKS: usize = 16;
/// The target duration of one unit of subtask work.
const UNIT: Duration = Duration::from_micros(5);
/// Units of the heavy subtask of each request in the skewed shape.
const HEAVY_FACTOR: u64 = 40;
/// Tasks spawned, then joined, per `spawn_join` batch.
const SPAWN_TASKS: usize = 10_000;
/// Summary mode: rounds per case (median reported).
const SUMMARY_ROUNDS: usize = 15;
/// A case with no progress for this long is reported as a stall.
const STALL: Duration = Duration::from_secs(10);

fn bench_fanout(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in CASES {
        let elements = match case.workload {
            Workload::Fanout(_) => REQUESTS * SUBTASKS,
            Workload::SpawnJoin => SPAWN_TASKS,
        };
        group.throughput(Throughput::Elements(elements as u64));
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                case.run(env, iters)
            })
        });
    }
    group.finish();
}

fn main() {
    start_watchdog();
    let env = {
        let _watch = watch("start-up (calibration, expected results)");
        Env::new()
    };
    if shared::summary_mode() {
        report::summary(&env);
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_fanout(&mut c, &env);
        c.final_summary();
    }
    env.shutdown();
}
