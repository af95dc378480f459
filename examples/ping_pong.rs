//! Cross-shard ping-pong over two `raw_channel`s with shards that spin
//! before parking: the loop to profile a spin-window round trip with
//! (`perf record`), outside the `mailbox` bench's harness.
//!
//! ```text
//! cargo run --release --example ping_pong -- 2000000
//! ```
//!
//! `RINGLANE_PARK=1` parks idle shards at once instead (parked round trips);
//! `RINGLANE_ONE_SHARD=1` puts both tasks on shard 0. Beside ringlane's round
//! trip it prints two baselines measured in the same process, as the
//! `mailbox` bench does but without a clock read per round trip: the atomic
//! floor and Tokio multi-thread mpsc with 2 workers (issue 3's goals).

use std::time::{Duration, Instant};

/// The cache-line floor: two threads bouncing one atomic, `n` round trips.
fn atomic_floor(n: u64) -> f64 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let line = Arc::new(AtomicU64::new(0));
    let other = line.clone();
    let echo = std::thread::spawn(move || {
        for i in 0..n {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let started = Instant::now();
    for i in 0..n {
        line.store(2 * i + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    }
    let took = started.elapsed();
    echo.join().expect("echo thread");
    took.as_secs_f64() * 1e6 / n as f64
}

/// Tokio multi-thread, 2 workers, two tasks over two bounded mpsc channels
/// (the `mailbox` bench's `tokio_mt_mpsc` case): `n` round trips.
fn tokio_mt_mpsc(n: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u64>(64);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u64>(64);
        let echo = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let ping = tokio::spawn(async move {
            let started = Instant::now();
            for i in 0..n {
                ping_tx.send(i).await.expect("echo task gone");
                let v = pong_rx.recv().await.expect("echo task gone");
                assert_eq!(v, i, "echo out of order");
            }
            started.elapsed()
        });
        let took = ping.await.expect("ping task");
        echo.await.expect("echo task");
        took.as_secs_f64() * 1e6 / n as f64
    })
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // `RINGLANE_ONE_SHARD=1`: one shard runs both tasks (the software cost
    // of a hop, with no cross-core transfer).
    let one_shard = std::env::var_os("RINGLANE_ONE_SHARD").is_some();
    let mut builder = ringlane::Runtime::builder().shards(if one_shard { 1 } else { 2 });
    if std::env::var_os("RINGLANE_PARK").is_none() {
        builder = builder.spin_before_park(Duration::from_millis(100));
    }
    let rt = builder.build().expect("runtime");
    let handle = rt.handle();
    let echo_shard = usize::from(!one_shard);
    let (ping_tx, mut ping_rx) = ringlane::raw_channel(64).expect("channel");
    let (pong_tx, mut pong_rx) = ringlane::raw_channel(64).expect("channel");
    let echo = handle
        .spawn_pinned(echo_shard, async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        })
        .expect("spawn the echo task");
    let ping = handle
        .spawn_pinned(0, async move {
            let started = Instant::now();
            for i in 0..n {
                ping_tx.send(i).await.expect("echo task gone");
                let v = pong_rx.recv().await.expect("echo task gone");
                assert_eq!(v, i, "echo out of order");
            }
            started.elapsed()
        })
        .expect("spawn the ping task");
    let took = rt.block_on(ping).expect("ping task");
    rt.block_on(echo).expect("echo task");
    drop(rt);
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        println!(
            "{n} round trips: {:.3} µs per round trip",
            took.as_secs_f64() * 1e6 / n as f64
        );
        return;
    }
    let floor = atomic_floor(n);
    let tokio = tokio_mt_mpsc(n);
    let rtt = took.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{n} round trips: {rtt:.3} µs per round trip; atomic floor {floor:.3} µs ({:.2}x); \
         Tokio multi-thread mpsc {tokio:.3} µs ({:.2}x)",
        rtt / floor,
        rtt / tokio
    );
}
