//! The `fs` suite: 4 KiB file I/O through ringlane's native lane, next to
//! the raw io_uring floor (the bare `io-uring` crate), the bare syscalls and
//! Tokio, in one run.
//!
//! Workloads (see `shared/BENCHMARKS.md` beside the repository and issue 5):
//! * **qd1 reads**: 4 KiB reads at pseudo-random, 4 KiB-aligned offsets of a
//!   page-cached 64 MiB file, one at a time; one latency sample per read.
//!   * `ringlane`: `File::read_at` from a task on shard 0 of a 1-shard
//!     runtime (rings `SINGLE_ISSUER|DEFER_TASKRUN`, shards park), reusing
//!     one owned buffer; `ringlane_vec`: the same into a plain `Vec<u8>`.
//!   * `raw_uring`: one default ring on the bench thread, one `READ` SQE and
//!     `submit_and_wait(1)` per read, one reused buffer (the floor);
//!     `raw_uring_dt`: the same on a ring set up as ringlane's are
//!     (`SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL`, entered
//!     through a registered ring fd); `raw_uring_pgoff16`: the floor with its buffer
//!     16 bytes into a page, where a fresh thread's 4 KiB `Vec` lands.
//!   * `harness_floor`: the least any runtime on `async-task` does per read
//!     (one `spawn_local` task, a thread-local op slab and run queue, on
//!     the bench thread: [`harness_floor`]); what lies between it and
//!     `raw_uring_dt` is the task harness, the rest is ringlane's own.
//!   * `pread`: `libc::pread` on the bench thread.
//!   * `tokio_fs`: `tokio::fs::File` on a current-thread runtime,
//!     `seek` + `read_exact` (Tokio has no positioned read: two trips to the
//!     blocking pool per read).
//!   * `tokio_spawn_blocking_pread`: the same runtime, one
//!     `spawn_blocking(pread)` per read.
//! * **qd32 reads** (throughput): the same reads, 32 in flight.
//!   * `ringlane`: 32 tasks (`spawn_local`) on the one shard, each reading
//!     in turn; `ringlane_2_shards`: 16 tasks on each shard of a 2-shard
//!     runtime (the thread count of the Tokio cases).
//!   * `raw_uring`, `raw_uring_dt`: one ring, 32 `READ`s kept in flight,
//!     `submit_and_wait(1)` then reap every CQE and refill (the floor).
//!   * `harness_floor`: the qd1 case's minimal `async-task` executor with
//!     32 tasks, one per stream: what any runtime on `async-task` pays.
//!   * `tokio_fs`: 32 tasks on a 2-worker multi-thread runtime, each with
//!     its own `tokio::fs::File` (seek + read_exact);
//!     `tokio_spawn_blocking_pread`: 32 tasks, `spawn_blocking(pread)`.
//!   * `pread`: one thread, one read at a time (a reference, not qd32).
//! * **sequential reads through `AsyncRead`** ([`stream`]): 8 KiB
//!   `read_exact`s front to back, as `BufReader` and `tokio::io::copy` read
//!   a file: `ringlane_async_file` (`File::into_async()`), `raw_uring` and
//!   `pread` of the same size at the next offset (the floors), `tokio_fs`.
//! * **whole-file reads** ([`stream`]): `fs::read` of a one-block file,
//!   against `std::fs::read` (the floor) and `tokio::fs::read`.
//! * **write + fdatasync**: a 4 KiB write at a pseudo-random block of a
//!   preallocated 4 MiB file, then `fdatasync`; one sample per pair.
//!   `ringlane` (`write_at` + `sync_data`), `raw_uring_seq` (WRITE, wait,
//!   FSYNC(DATASYNC), wait: the floor, the same op sequence as ringlane),
//!   `raw_uring_linked` (WRITE linked to FSYNC, one `io_uring_enter`),
//!   `pwrite_fdatasync`, `tokio_fs` (seek + write_all + sync_data).
//!
//! Every case reads the same offsets (one deterministic sequence per task
//! index), and checks every read: 4096 bytes whose first 8 are the block's
//! index. Each write run checks its last write by reading it back. Every
//! buffer is a page-aligned [`buf::PageBuf`] unless the case says otherwise:
//! where a 4 KiB buffer starts in its page has changed the kernel's copy
//! cost here by up to 1.8x on some hosts (see [`buf`]); `tokio::fs` reads into its own
//! internal buffer, then copies.
//!
//! The peer runtimes (glommio, compio, monoio) are compared in a separate
//! crate, `benches/peers` (BENCHMARKS.md rule 7 keeps them out of the
//! library's dev-dependencies): `cargo run --release -p ringlane-peers`.
//!
//! Two modes:
//! * default: criterion (`cargo bench --bench fs`), groups `fs_qd1_read`
//!   and `fs_write_fsync` (time per operation), `fs_stream_read` and `fs_qd32_read`
//!   (throughput in reads; [`CRITERION_QD32_READS`] per iteration, so
//!   `ringlane_2_shards`, which wakes a parked shard per iteration, reads
//!   lower here than in the summary, whose rounds are 100,000 reads).
//! * `RINGLANE_BENCH_SUMMARY=1`: a fixed number of operations per case,
//!   rounds interleaved across cases, printing markdown tables with p50/p99
//!   per operation, process CPU time (every thread,
//!   `shared/cpu.rs`) per operation, ratios to the raw io_uring floor and speed-ups
//!   over `tokio::fs`. `scripts/bench-summary` runs this.
//!
//! A watchdog thread aborts the process with a message (and every ringlane
//! shard's counters), after removing the temporary files, if a case makes
//! no progress for [`STALL`].
//!
//! Layout: [`files`] (the temporary files, offsets, data checks), [`buf`]
//! (the page-aligned buffer), [`cases`]
//! (the runtimes and the case tables), one module per implementation
//! ([`ringlane_cases`], [`raw_uring`], [`harness_floor`], [`blocking`],
//! [`tokio_cases`]),
//! [`measure`] (per-operation samples and run outcomes), [`watchdog`] (this
//! suite's progress count and stall message), [`report`] (summary tables);
//! [`shared`] holds what every suite shares; this file holds the constants,
//! the criterion groups and the entry point.

#[path = "../shared/mod.rs"]
mod shared;

mod blocking;
mod buf;
mod cases;
mod files;
mod harness_floor;
mod measure;
mod raw_uring;
mod report;
mod ringlane_cases;
mod stream;
mod tokio_cases;
mod watchdog;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use cases::{Env, QD1_CASES, QD32_CASES, STREAM_CASES, WHOLE_CASES, WHOLE64_CASES, WRITE_CASES};
use stream::STREAM_READ;
use watchdog::{start_watchdog, watch};

/// Bytes per read or write, and the alignment of every offset.
const BLOCK: usize = 4096;
/// Size of the page-cached file the reads go to.
const READ_FILE_SIZE: u64 = 64 << 20;
/// Size of the preallocated file the writes go to.
const WRITE_FILE_SIZE: u64 = 4 << 20;
/// Reads in flight in the qd32 cases.
const QD: usize = 32;
/// Threads of the Tokio multi-thread runtime and of `ringlane_2_shards`.
const THREADS: usize = 2;
/// Summary mode: operations per case (all rounds together), and rounds.
const SUMMARY_QD1_READS: usize = 40_000;
const SUMMARY_QD32_READS: u64 = 400_000;
const SUMMARY_WRITES: usize = 400;
const SUMMARY_STREAM_READS: u64 = 80_000;
const SUMMARY_WHOLE_READS: usize = 20_000;
const SUMMARY_ROUNDS: usize = 4;
/// Criterion mode: reads per iteration of a qd32 case.
const CRITERION_QD32_READS: u64 = 4096;
/// Criterion mode: reads per iteration of a stream case.
const CRITERION_STREAM_READS: u64 = 4096;
/// A case with no progress for this long is reported as a stall.
const STALL: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Criterion mode

fn bench_qd1(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("fs_qd1_read");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for case in QD1_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (case.run)(env, 10, iters as usize).wall()
            })
        });
    }
    group.finish();
}

fn bench_qd32(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("fs_qd32_read");
    group
        .throughput(Throughput::Elements(CRITERION_QD32_READS))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for case in QD32_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (case.run)(env, iters * CRITERION_QD32_READS).wall
            })
        });
    }
    group.finish();
}

fn bench_stream(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("fs_stream_read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(CRITERION_STREAM_READS));
    for case in STREAM_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (0..iters)
                    .map(|_| (case.run)(env, CRITERION_STREAM_READS).wall)
                    .sum()
            })
        });
    }
    group.finish();
}

fn bench_whole(c: &mut Criterion, env: &Env) {
    for (name, cases) in [
        ("fs_whole_file_read", WHOLE_CASES),
        ("fs_whole_file_read_64k", WHOLE64_CASES),
    ] {
        bench_whole_group(c, env, name, cases);
    }
}

fn bench_whole_group(
    c: &mut Criterion,
    env: &Env,
    name: &str,
    cases: &[cases::Case<cases::LatFn>],
) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for case in cases {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (case.run)(env, 1, iters as usize).wall()
            })
        });
    }
    group.finish();
}

fn bench_write(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("fs_write_fsync");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for case in WRITE_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (case.run)(env, 1, iters as usize).wall()
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Summary mode

fn summary(env: &Env) {
    let started = Instant::now();
    // Warm-up: every case once, briefly.
    for case in QD1_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 10, 1000);
    }
    for case in QD32_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 10_000);
    }
    for case in WRITE_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 1, 10);
    }
    for case in STREAM_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 2_000);
    }
    for case in WHOLE_CASES.iter().chain(WHOLE64_CASES) {
        let _watch = watch(case.id);
        (case.run)(env, 10, 500);
    }
    report::summary_qd1(env);
    report::summary_qd32(env);
    report::summary_stream(env);
    report::summary_whole(env);
    report::summary_whole64(env);
    report::summary_write(env);
    println!(
        "Reads: {BLOCK} B at pseudo-random {BLOCK}-aligned offsets (the same sequence for every \
         case) of a {} MiB file read once beforehand (page-cached), every read checked. qd1: \
         {SUMMARY_QD1_READS} reads per case, qd32: {SUMMARY_QD32_READS}, sequential: \
         {SUMMARY_STREAM_READS} reads of {STREAM_READ} B front to back (from the start again at \
         the end), whole-file: {SUMMARY_WHOLE_READS} calls; writes: \
         {SUMMARY_WRITES} write+fdatasync pairs per case into a preallocated {} MiB file on {}. \
         Each in {SUMMARY_ROUNDS} rounds interleaved across cases (each round starting one case later), each round after a 10% \
         warm-up; p50/p99 of the per-operation samples of all rounds, throughput the median of \
         the rounds. ringlane: shards park (default set-up); `ringlane` has 1 shard, \
         `ringlane_2_shards` 2; Tokio multi-thread: {THREADS} workers plus its blocking pool. \
         CPU = user+sys (getrusage, plus running threads' time since their last tick) of every thread in the process over the measured \
         span, divided by operations. Ratio = time / time of the raw io_uring floor (> 1: \
         slower); speed-up = tokio::fs time / time. Parks: ringlane's `ShardStats::parks` over \
         the run. Buffers: page-aligned unless noted (`ringlane_vec`, `raw_uring_pgoff16`); \
         tokio::fs copies through its own buffer. Peers: cargo run --release -p \
         ringlane-peers. Summary pass: {:.1} s.",
        READ_FILE_SIZE >> 20,
        WRITE_FILE_SIZE >> 20,
        env.files.describe_fs(),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let fds_before = files::open_fds();
    start_watchdog();
    let env = Env::new();
    if shared::summary_mode() {
        summary(&env);
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_qd1(&mut c, &env);
        bench_qd32(&mut c, &env);
        bench_stream(&mut c, &env);
        bench_whole(&mut c, &env);
        bench_write(&mut c, &env);
        c.final_summary();
    }
    env.shutdown();
    raw_uring::close_write_rings();
    let fds_after = files::open_fds();
    if shared::summary_mode() {
        println!();
        println!("fd check: {fds_before} fds open before set-up, {fds_after} after shutdown.");
    }
    if fds_after != fds_before {
        eprintln!("fs bench: {fds_before} fds open before set-up but {fds_after} after shutdown");
    }
}
