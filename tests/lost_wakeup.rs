//! Over a million cross-thread wake-ups through the real runtime, each of
//! which would stall the test on a lost wake-up. A stall is detected by a
//! watchdog and reported as a failure instead of a hang.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Waits until `counter` reaches `target`, failing (not hanging) if it
/// stalls: with no timers pending, a shard that missed its doorbell sleeps
/// forever and the counter stops moving.
fn wait_for(counter: &AtomicUsize, target: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while counter.load(Ordering::Acquire) < target {
        assert!(
            Instant::now() < deadline,
            "lost wake-up: {what} stalled at {} of {target}",
            counter.load(Ordering::Acquire)
        );
        std::thread::yield_now();
    }
}

/// Spawns `n` tasks, task `i` on shard `shard_of(i)`, each waiting on a
/// oneshot and then counting itself done; returns the senders.
fn spawn_waiters(
    h: &ringlane::Handle,
    n: usize,
    shard_of: impl Fn(usize) -> usize,
    done: &Arc<AtomicUsize>,
) -> Vec<tokio::sync::oneshot::Sender<()>> {
    (0..n)
        .map(|i| {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let d = done.clone();
            drop(
                h.spawn_pinned(shard_of(i), async move {
                    rx.await.unwrap();
                    d.fetch_add(1, Ordering::Release);
                })
                .unwrap(),
            );
            tx
        })
        .collect()
}

/// Plain threads (no ring: eventfd doorbells) wake tasks parked on shards:
/// 1,000 rounds of 1,000 tasks, each round ending with every shard idle and
/// parked, so each round's first hand-off must ring a doorbell.
#[test]
fn million_wakeups_from_plain_threads_lose_none() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let done = Arc::new(AtomicUsize::new(0));
    const ROUNDS: usize = 1_000;
    const PER_ROUND: usize = 1_000;
    for round in 0..ROUNDS {
        let senders = spawn_waiters(&h, PER_ROUND, |i| i % 2, &done);
        // Let both shards poll their tasks and go back to sleep.
        if round % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        for tx in senders {
            tx.send(()).unwrap();
        }
        wait_for(&done, (round + 1) * PER_ROUND, "eventfd wake-ups");
    }
    let parks: u64 = (0..2).map(|s| h.shard_stats(s).unwrap().parks).sum();
    assert!(
        parks > 100,
        "shards parked only {parks} times: the test did not exercise the doorbell"
    );
}

/// Shard 0 wakes tasks parked on shard 1 (MSG_RING doorbells), 200,000
/// times in rounds that each end with shard 1 parked.
#[test]
fn shard_to_shard_wakeups_lose_none() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let done = Arc::new(AtomicUsize::new(0));
    const ROUNDS: usize = 200;
    const PER_ROUND: usize = 1_000;
    let before = h.shard_stats(1).unwrap().doorbells_msg_ring;
    for round in 0..ROUNDS {
        let senders = spawn_waiters(&h, PER_ROUND, |_| 1, &done);
        // Wait until shard 1 is idle again, then fire every sender from shard 0.
        let h2 = h.clone();
        common::runtime(1)
            .block_on(h2.spawn_pinned(1, async {}).unwrap())
            .unwrap();
        drop(
            h.spawn_pinned(0, async move {
                ringlane::time::sleep(Duration::from_micros(200)).await;
                for tx in senders {
                    tx.send(()).unwrap();
                }
            })
            .unwrap(),
        );
        wait_for(&done, (round + 1) * PER_ROUND, "MSG_RING wake-ups");
    }
    let rung = h.shard_stats(1).unwrap().doorbells_msg_ring - before;
    assert!(
        rung > 0,
        "no MSG_RING doorbell was rung: the test did not exercise that path"
    );
}

/// `JoinHandle::abort` sets the flag and wakes the task. If that lands
/// after the shard checked the flag but before the poll began, the wake-up
/// is swallowed (the task is still scheduled) and the poll parks the task
/// for good, unless the poll checks the flag itself. 50,000 spawn + abort
/// pairs, each of which must resolve as cancelled.
#[test]
fn abort_racing_the_first_poll_is_never_lost() {
    let rt = common::runtime(1);
    let h = rt.handle();
    for i in 0..50_000 {
        let j = h.spawn_pinned(0, std::future::pending::<()>()).unwrap();
        j.abort();
        let out = rt
            .block_on(ringlane::time::timeout(Duration::from_secs(5), j))
            .unwrap_or_else(|_| panic!("abort {i} was lost: the task never finished"));
        assert!(out.unwrap_err().is_cancelled());
    }
}
