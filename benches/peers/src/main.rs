//! ringlane next to the peer io_uring runtimes (monoio, compio, glommio),
//! side by side in one run (`../shared/BENCHMARKS.md`, rule 7: the peers
//! live in this separate workspace crate, never in ringlane's
//! dependencies, so `cargo test` at the root does not build them).
//!
//! ```text
//! cargo run --release -p ringlane-peers
//! ```
//!
//! Prints markdown tables:
//!
//! * **fs qd1**: 4 KiB reads at pseudo-random 4 KiB-aligned offsets of a
//!   page-cached 64 MiB temporary file, one at a time; ratios to the raw
//!   io_uring floor.
//! * **fs qd32**: the same reads, 32 in flight on one thread (32 tasks of
//!   each runtime); time per read, ratios to the raw io_uring floor.
//! * **net echo**: 256 B round trips over TCP loopback (`TCP_NODELAY` on
//!   both ends), one at a time, client and server on one thread; ratios to
//!   ringlane.
//! * **net stream**: 4 KiB writes over TCP loopback, one write in flight,
//!   sender and receiver on one thread, every byte checked; throughput
//!   (median of the rounds) and ratios to the raw floor and to ringlane.
//!
//! Every case runs `WARM` unrecorded operations then `N` samples per round,
//! in `ROUNDS` rounds interleaved across cases (a fresh runtime per run);
//! p50/p99 are over the samples of all rounds. CPU is
//! user+sys (`shared/cpu.rs`) over the measured operations.
//! Every read and every echo is checked byte for byte.
//! `PEERS_N=<samples per round>` shortens a run (warm-up: a tenth).

mod buf;
/// Process CPU time, shared with the bench suites.
#[path = "../../shared/cpu.rs"]
#[allow(dead_code)]
mod cpu;
/// The raw floors' ring, shared with the bench suites.
#[path = "../../shared/floor_ring.rs"]
#[allow(dead_code)]
mod floor_ring;
mod fs;
mod fs_peers;
mod fs_qd32;
mod net;
mod net_peers;
mod stats;
mod stream;

use std::time::{Duration, Instant};

use stats::{Outcome, print_table};

/// Bytes per read.
const BLOCK: usize = 4096;
/// Bytes of the read file.
const FILE_SIZE: u64 = 64 << 20;
/// Samples per case per round, and unrecorded warm-up operations before them.
const N: usize = 20_000;
const WARM: usize = 2_000;
/// Bytes per stream run (an eighth with `PEERS_N`).
const STREAM_BYTES: usize = 256 << 20;
/// Reads per round of an fs qd32 case (an eighth with `PEERS_N`), a
/// multiple of its 32 streams.
const QD32_READS: usize = 320_000;
/// Rounds, interleaved across cases.
const ROUNDS: usize = 3;

/// Shuts a ringlane runtime down and asserts that it shut down cleanly.
fn shutdown(rt: ringlane::Runtime) {
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.is_clean(), "ringlane shutdown: {report:?}");
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let (warm, n) = match std::env::var("PEERS_N")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => ((n / 10).max(1), n),
        None => (WARM, N),
    };
    let start = Instant::now();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## ringlane vs peer runtimes (`cargo run --release -p ringlane-peers`)");
    println!();
    println!(
        "Kernel {}, {cores} cores. Per case: {ROUNDS} rounds interleaved across cases, each \
         {warm} warm-up then {n} measured operations (fresh runtime per run); p50/p99/mean over \
         all rounds' samples; CPU = user+sys (getrusage, plus running threads' time since their last tick) over the measured \
         operations. Every case runs on the bench thread (ringlane: its one shard thread). \
         Reads, echoes and streamed bytes are checked byte for byte.",
        kernel()
    );
    println!();

    let file = fs::TestFile::create();
    let mut outcomes: Vec<Outcome> = fs::FS_CASES
        .iter()
        .map(|c| Outcome {
            id: c.id,
            what: c.what,
            rounds: Vec::new(),
        })
        .collect();
    for _ in 0..ROUNDS {
        for (case, out) in fs::FS_CASES.iter().zip(&mut outcomes) {
            out.rounds.push((case.run)(&file, warm, n));
        }
    }
    print_table(
        "fs qd1: 4 KiB random reads of a page-cached 64 MiB file, one at a time \
         (page-aligned buffers)",
        "read",
        &outcomes,
        "raw_uring",
    );
    let reads = match n {
        N => QD32_READS,
        _ => QD32_READS / 8,
    };
    let mut outcomes: Vec<(&fs_qd32::QdCase, Vec<fs_qd32::QdRun>)> = fs_qd32::QD32_CASES
        .iter()
        .map(|c| (c, Vec::new()))
        .collect();
    for _ in 0..ROUNDS {
        for (case, runs) in &mut outcomes {
            runs.push((case.run)(&file, reads));
        }
    }
    drop(file);
    fs_qd32::print_qd32_table(reads, &outcomes);

    let mut outcomes: Vec<Outcome> = net::NET_CASES
        .iter()
        .map(|c| Outcome {
            id: c.id,
            what: c.what,
            rounds: Vec::new(),
        })
        .collect();
    for _ in 0..ROUNDS {
        for (case, out) in net::NET_CASES.iter().zip(&mut outcomes) {
            out.rounds.push((case.run)(warm, n));
        }
    }
    print_table(
        "net echo: TCP loopback, 256 B, one round trip at a time, client and server on one \
         thread (TCP_NODELAY)",
        "RTT",
        &outcomes,
        "ringlane",
    );
    let total = match n {
        N => STREAM_BYTES,
        _ => STREAM_BYTES / 8,
    };
    stream::check_total(total);
    let mut outcomes: Vec<(&stream::StreamCase, Vec<stream::StreamRun>)> = stream::STREAM_CASES
        .iter()
        .map(|c| (c, Vec::new()))
        .collect();
    for _ in 0..ROUNDS {
        for (case, runs) in &mut outcomes {
            runs.push((case.run)(total));
        }
    }
    stream::print_stream_table(total, &outcomes);
    println!("Run took {:.1} s.", start.elapsed().as_secs_f64());
}
