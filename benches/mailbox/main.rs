//! The `mailbox` suite: cross-shard message passing, ringlane next to the
//! raw `IORING_OP_MSG_RING` floor and the usual baselines, in one run.
//!
//! Cases (see `shared/BENCHMARKS.md` beside the repository):
//! * **Round trip (RTT)**: a task (or thread) sends a `u64`, the other side
//!   echoes it back; one sample per round trip.
//!   * `ringlane_parked`: ping task on shard 0, echo task on shard 1, two
//!     `raw_channel`s; 2 shards that park in `io_uring_enter` (the default,
//!     rings `SINGLE_ISSUER|DEFER_TASKRUN`). `ringlane_parked_no_dt`: the
//!     same with `defer_taskrun(false)`. `ringlane_spin`: the same with
//!     `spin_before_park(100 µs)`; `ringlane_spin_pinned`: that with the
//!     shards pinned to two distinct CPUs.
//!   * `raw_msg_ring_parked`: two threads, each with a bare ring (default
//!     set-up), each sending `MSG_RING` to the other's ring and sleeping in
//!     `submit_and_wait(1)`; `raw_msg_ring_parked_dt`: the same with rings
//!     set up as ringlane's (`DEFER_TASKRUN`, a registered ring fd);
//!     `raw_msg_ring_busy_poll`: both threads spin on their CQ and only
//!     `submit()`.
//!   * `atomic`: two threads spinning on one cache line (the floor).
//!   * `tokio_mt_mpsc`, `tokio_mt_oneshot`: a multi-thread runtime with 2
//!     workers; the scheduler may run both tasks on one worker (the share of
//!     round trips that crossed threads is reported).
//!   * `tokio_ct_pair_mpsc`: two current-thread runtimes on two threads.
//!   * `crossbeam`: bounded crossbeam channels between two threads.
//!   * `ringlane_one_shard`, `tokio_ct_one_thread_mpsc`: ping and echo on
//!     one shard / one current-thread runtime, so no message crosses cores:
//!     what two task switches through a channel cost (the software floor
//!     under the cross-core cases).
//! * **One-way throughput**, shard 0 → shard 1 (thread → thread for the raw
//!   floor), at batch 1, 8, 32 and 128: ringlane sends with `send` (batch 1)
//!   or `send_many` and receives with `recv_many`; the raw floor pushes a
//!   batch of `MsgRingData` SQEs, submits once, and its receiver reaps its CQ,
//!   sleeping in `submit_and_wait(1)` when it is empty. Every case bounds
//!   the messages in flight by [`WINDOW`] (the ringlane channel's capacity;
//!   a credit counter for the raw floor, whose CQ holds twice that).
//!
//! Two modes:
//! * default: criterion (`cargo bench --bench mailbox`), groups
//!   `mailbox_rtt` (time per round trip) and `mailbox_throughput`.
//! * `RINGLANE_BENCH_SUMMARY=1`: a fixed number of round trips and messages
//!   per case, rounds interleaved across cases, printing markdown tables with
//!   p50/p99 per round trip, process CPU time (every thread,
//!   `shared/cpu.rs`) per round trip or message, and ratios to the raw floors.
//!   `scripts/bench-summary` runs this.
//!
//! A watchdog thread aborts the process with a message (and every ringlane
//! shard's counters) if a case makes no progress for [`STALL`]: a lost
//! wake-up shows as that message, not as a hang.
//!
//! Layout: [`cases`] (the runtimes and the case tables), one module per
//! implementation ([`ringlane_cases`], [`raw_msg_ring`], [`tokio_cases`],
//! [`threads`]), [`measure`] (samples, doorbell counters, run outcomes),
//! [`watchdog`] (this suite's progress count and stall message), and
//! [`report`] (summary-mode tables); [`shared`] holds what every suite
//! shares (CPU time, the median, runtime set-up, the watchdog thread); this
//! file holds the constants, the criterion groups and the entry point.

#[path = "../shared/mod.rs"]
mod shared;

mod cases;
mod measure;
mod raw_msg_ring;
mod report;
mod ringlane_cases;
mod threads;
mod tokio_cases;
mod watchdog;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use cases::{Env, RTT_CASES, TPUT_CASES};
use watchdog::{start_watchdog, watch};

/// Shards of each ringlane runtime, workers of the Tokio multi-thread one.
const THREADS: usize = 2;
/// The spin window of the `ringlane_spin` cases.
const SPIN_WINDOW: Duration = Duration::from_micros(100);
/// Capacity of the channels used for round trips (at most one message is in flight).
const RTT_CAPACITY: usize = 16;
/// Throughput: messages in flight at most, for every implementation.
const WINDOW: usize = 4096;
/// Throughput batch sizes.
const BATCHES: [usize; 4] = [1, 8, 32, 128];
/// Summary mode: round trips per RTT case (fewer when the case parks a
/// thread per hop), messages per throughput case, split into rounds.
const SUMMARY_RTT: usize = 20_000;
const SUMMARY_RTT_PARKED: usize = 10_000;
const SUMMARY_MSGS: u64 = 2_000_000;
const SUMMARY_ROUNDS: usize = 4;
/// Criterion mode: messages per iteration of a throughput case.
const CRITERION_MSGS: u64 = 4096;
/// A case with no progress for this long is reported as a stall.
const STALL: Duration = Duration::from_secs(10);
/// Ends the raw MSG_RING round-trip loops.
const STOP: u64 = u64::MAX;

// ---------------------------------------------------------------------------
// Criterion mode

fn bench_rtt(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("mailbox_rtt");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in RTT_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (case.run)(env, 10, iters as usize).wall()
            })
        });
    }
    group.finish();
}

fn bench_throughput(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("mailbox_throughput");
    group
        .throughput(Throughput::Elements(CRITERION_MSGS))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in TPUT_CASES {
        for batch in BATCHES {
            let id = format!("{}/batch_{batch}", case.id);
            group.bench_function(&id, |b| {
                b.iter_custom(|iters| {
                    let _watch = watch(&id);
                    (case.run)(env, batch, iters * CRITERION_MSGS).wall
                })
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Summary mode

fn summary(env: &Env) {
    let started = Instant::now();
    // Warm-up: every case once, briefly.
    for case in RTT_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 10, 200);
    }
    for case in TPUT_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 32, 50_000);
    }
    report::summary_rtt(env);
    report::summary_throughput(env);
    println!(
        "{THREADS} ringlane shards / {THREADS} tokio workers / 2 threads per baseline. \
         RTT: {SUMMARY_RTT} round trips per case ({SUMMARY_RTT_PARKED} where each hop wakes a \
         sleeping thread), in {SUMMARY_ROUNDS} rounds interleaved across cases, each after a 10% \
         warm-up; p50/p99/mean of the per-round-trip samples of all rounds (each sample holds one \
         clock read). Throughput: \
         {SUMMARY_MSGS} messages per case in {SUMMARY_ROUNDS} rounds, median of the rounds; at \
         most {WINDOW} messages in flight (ringlane channel capacity; credits for raw MSG_RING). \
         CPU = user+sys (getrusage, plus running threads' time since their last tick) of every thread in the process over the measured \
         span, divided by round trips or messages. Doorbell notes: the shards' counters \
         (ShardStats) over the measured span. Summary pass: {:.1} s.",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    start_watchdog();
    let env = Env::new();
    if shared::summary_mode() {
        summary(&env);
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_rtt(&mut c, &env);
        bench_throughput(&mut c, &env);
        c.final_summary();
    }
    env.shutdown();
}
