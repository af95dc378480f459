//! 4 KiB reads of a page-cached file by 32 `spawn_local` tasks on one
//! shard that spins instead of parking: the loop `scripts/count-instructions`
//! runs under callgrind to count ringlane's user-space instructions per read
//! (`DESIGN_OPTIONS.md`, "An op's cost per completion"). Valgrind cannot
//! follow a shard parked in `io_uring_enter`, hence the spin window.
//!
//! ```text
//! cargo run --release --example read_loop -- 16000
//! RINGLANE_QD=1 RINGLANE_PARK=1 cargo run --release --example read_loop -- 400000
//! ```
//!
//! `RINGLANE_QD` sets the reads in flight (default 32); `RINGLANE_PARK`
//! parks the idle shard instead of spinning (a wall-time run at qd1, as the
//! `fs` bench's, outside valgrind).

use std::time::{Duration, Instant};

use ringlane::native::fs::File;

/// Reads in flight (one task each), unless `RINGLANE_QD` says otherwise.
fn qd() -> u64 {
    std::env::var("RINGLANE_QD")
        .ok()
        .and_then(|q| q.parse().ok())
        .unwrap_or(32)
}
/// The file's 4 KiB blocks (8 MiB).
const BLOCKS: u64 = 2048;

/// `reads` reads of pseudo-random blocks, each checked.
async fn reader(file: File, task: u64, reads: u64) {
    let mut buf = vec![0u8; 4096];
    let mut block = task * 61 % BLOCKS;
    for _ in 0..reads {
        block = (block * 1_103_515_245 + 12_345) % BLOCKS;
        let (res, b) = file.read_at(buf, block * 4096).await;
        assert_eq!(res.expect("read"), 4096, "a short read of a cached block");
        buf = b;
    }
}

fn main() {
    let reads: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let path = std::env::temp_dir().join("ringlane-read-loop.dat");
    let len = BLOCKS * 4096;
    if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) != len {
        std::fs::write(&path, vec![7u8; len as usize]).expect("write the file");
    }
    // `RINGLANE_PARK=1` parks instead (for wall-time runs outside valgrind).
    let mut builder = ringlane::Runtime::builder();
    builder = builder.shards(1);
    if std::env::var_os("RINGLANE_PARK").is_none() {
        builder = builder.spin_before_park(Duration::from_secs(5));
    }
    let rt = builder.build().expect("runtime");
    let std_file = std::fs::File::open(&path).expect("open the file");
    let qd = qd();
    let started = Instant::now();
    let driver = rt
        .handle()
        .spawn_pinned(0, async move {
            let file = File::from(std::os::fd::OwnedFd::from(std_file));
            let mut joins = Vec::new();
            for task in 0..qd {
                let read = reader(file.clone(), task, reads / qd);
                joins.push(ringlane::spawn_local(read).expect("spawn a reader"));
            }
            for join in joins {
                join.await.expect("a reader");
            }
        })
        .expect("spawn the driver");
    rt.block_on(driver).expect("the driver");
    let per_read = started.elapsed().as_secs_f64() * 1e6 / (reads / qd * qd) as f64;
    println!("{} reads: {per_read:.3} µs per read", reads / qd * qd);
}
