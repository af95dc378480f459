//! Work stealing: a blocked shard's stealable work runs elsewhere, the
//! search/notify protocol loses no wake-up, placements land where they say,
//! and shutdown drains stealable tasks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringlane::Placement;
use ringlane::time::{sleep, timeout};

/// Spins the calling shard (no yielding) until `done` reaches `target`;
/// fails instead of hanging if it does not within 20 s.
fn block_until(done: &AtomicUsize, target: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::Acquire) < target {
        assert!(
            Instant::now() < deadline,
            "{what}: stalled at {} of {target}",
            done.load(Ordering::Acquire)
        );
        std::hint::spin_loop();
    }
}

/// Waits for `target` tasks pushed by this shard just before: blocks the
/// shard until all but one have run elsewhere, then yields for the last.
///
/// Why not block for all of them: a push that finds the deque empty (the
/// thief took everything meanwhile) announces nothing (the lone-task rule
/// of `shard::schedule`), so a thief parking at that instant may miss
/// the final task; it then waits for its own shard's next tick, as a task
/// in Tokio's LIFO slot does. Every earlier push is followed by one that
/// finds the deque non-empty and notifies, so the first `target - 1` must
/// run while this shard stays blocked.
async fn block_until_all_but_the_last(done: &AtomicUsize, target: usize, what: &str) {
    block_until(done, target - 1, what);
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::Acquire) < target {
        assert!(Instant::now() < deadline, "{what}: the last task never ran");
        ringlane::yield_now().await;
    }
}

/// Shard 0 spawns 10,000 stealable tasks onto its own deque and then
/// blocks (a long CPU-bound poll): shard 1 must steal and run all of them.
#[test]
fn stealable_work_of_a_blocked_shard_runs_on_the_other() {
    let rt = common::runtime(2);
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let ran_on = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let r = ran_on.clone();
    let blocker = rt
        .handle()
        .spawn_pinned(0, async move {
            for _ in 0..10_000 {
                let (d, r) = (d.clone(), r.clone());
                drop(
                    ringlane::spawn(async move {
                        r[ringlane::current_shard().unwrap()].fetch_add(1, Ordering::Relaxed);
                        d.fetch_add(1, Ordering::Release);
                    })
                    .unwrap(),
                );
            }
            block_until_all_but_the_last(&d, 10_000, "stealable tasks behind a blocked shard")
                .await;
        })
        .unwrap();
    rt.block_on(blocker).unwrap();
    // Shard 0 was blocked until all but (at most) the last had run.
    let (r0, r1) = (
        ran_on[0].load(Ordering::Relaxed),
        ran_on[1].load(Ordering::Relaxed),
    );
    assert!(r0 <= 1, "shard 0 ran {r0} while it was blocked");
    assert_eq!(r0 + r1, 10_000);
    let s1 = rt.handle().shard_stats(1).unwrap();
    // Every task that ran on shard 1 was stolen from shard 0's deque (the
    // last one may have run on shard 0 after it yielded, see above).
    assert!(
        s1.tasks_stolen >= r1 as u64 && s1.steals_succeeded > 0,
        "ran on shard 1: {r1}, {s1:?}"
    );
}

/// The same from outside: while shard 0 is blocked by a pinned task,
/// 10,000 stealable spawns from the main thread all complete on shard 1.
#[test]
fn stealable_spawns_from_outside_run_while_one_shard_is_blocked() {
    let rt = common::runtime(2);
    let blocker = common::block_shard(&rt, 0);
    let joins: Vec<_> = (0..10_000usize)
        .map(|i| {
            rt.handle()
                .spawn_stealable(async move { (i, ringlane::current_shard()) })
                .unwrap()
        })
        .collect();
    let results = rt.block_on(timeout(Duration::from_secs(30), async {
        let mut v = Vec::new();
        for j in joins {
            v.push(j.await.unwrap());
        }
        v
    }));
    rt.block_on(blocker.release()).unwrap();
    let results = results.expect("stealable tasks stalled behind a blocked shard");
    assert!(results.iter().all(|(_, s)| *s == Some(1)));
    assert!(rt.handle().shard_stats(1).unwrap().injector_pops >= 10_000);
}

#[test]
fn a_million_stealable_spawns_from_outside_all_complete() {
    let rt = common::runtime(2);
    let done = Arc::new(AtomicUsize::new(0));
    let spawners: Vec<_> = (0..2)
        .map(|_| {
            let (h, done) = (rt.handle(), done.clone());
            std::thread::spawn(move || {
                for i in 0..500_000usize {
                    let d = done.clone();
                    drop(
                        h.spawn_stealable(async move { d.fetch_add(1, Ordering::Release) })
                            .unwrap(),
                    );
                    if i % 50_000 == 0 {
                        std::thread::sleep(Duration::from_millis(1)); // let the shards drain and park
                    }
                }
            })
        })
        .collect();
    for s in spawners {
        s.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::Acquire) < 1_000_000 {
        assert!(
            Instant::now() < deadline,
            "lost wake-up: {} of 1,000,000 ran",
            done.load(Ordering::Acquire)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The search/notify protocol under stress: 2,000 rounds in which shard 0
/// pushes 50 stealable tasks onto its deque and then blocks until they are
/// done. Shard 1 is parked at the start of each round, so every round
/// needs a push to wake it (notify step P3); a lost wake-up stalls the
/// round and fails it.
#[test]
fn search_and_notify_lose_no_wakeup_over_two_thousand_parked_rounds() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let parks_before = h.shard_stats(1).unwrap().parks;
    let j = h
        .spawn_pinned(0, async move {
            let done = Arc::new(AtomicUsize::new(0));
            for round in 0..2_000usize {
                // Let shard 1 go idle and park (it has nothing to do).
                sleep(Duration::from_micros(50)).await;
                for _ in 0..50 {
                    let d = done.clone();
                    drop(
                        ringlane::spawn(async move { d.fetch_add(1, Ordering::Release) }).unwrap(),
                    );
                }
                block_until_all_but_the_last(&done, (round + 1) * 50, "stealing round").await;
            }
        })
        .unwrap();
    rt.block_on(j).unwrap();
    let parks = h.shard_stats(1).unwrap().parks - parks_before;
    assert!(
        parks > 500,
        "shard 1 parked only {parks} times: the rounds did not exercise the wake-up"
    );
}

/// A stealable task holding a registered timer on the shard it started on
/// is woken by another source while that shard is blocked: the other shard
/// takes it, its `Sleep` moves to that shard's wheel, and it completes
/// there on time.
#[test]
fn stolen_task_with_an_in_flight_timer_completes_elsewhere() {
    let rt = common::runtime(2);
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (first_tx, first_rx) = std::sync::mpsc::channel::<usize>();
    let started = Instant::now();
    let task = rt
        .handle()
        .spawn_stealable(async move {
            let first = ringlane::current_shard().unwrap();
            let mut s = Box::pin(sleep(Duration::from_millis(40)));
            // Register the sleep where we run, then wait for `go`.
            std::future::poll_fn(|cx| {
                let _ = s.as_mut().poll(cx);
                std::task::Poll::Ready(())
            })
            .await;
            first_tx.send(first).unwrap();
            go_rx.await.unwrap();
            s.await;
            (first, ringlane::current_shard().unwrap(), started.elapsed())
        })
        .unwrap();
    let home = first_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let blocker = common::block_shard(&rt, home);
    go_tx.send(()).unwrap(); // wakes the task from a plain thread: injector
    let out = rt.block_on(timeout(Duration::from_secs(10), task));
    rt.block_on(blocker.release()).unwrap();
    let (first, last, elapsed) = out.expect("the stolen task never completed").unwrap();
    assert_eq!(first, home);
    assert_eq!(
        last,
        1 - home,
        "the other shard should have taken it while its home was blocked"
    );
    assert!(
        elapsed >= Duration::from_millis(40),
        "the moved timer fired early: {elapsed:?}"
    );
}

use std::future::Future;

/// Waits (up to 10 s) until every shard in `shards` is asleep in the kernel.
fn wait_until_parked(h: &ringlane::Handle, shards: &[usize]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shards.iter().all(|&i| h.shard_stats(i).unwrap().parked) {
        assert!(
            Instant::now() < deadline,
            "shards {shards:?} never parked: {:#?}",
            shards
                .iter()
                .map(|&i| h.shard_stats(i).unwrap())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn sticky_keys_always_land_on_the_same_shard_and_placements_hold() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let on = |p: Placement| {
        rt.block_on(
            h.spawn_with(p, async { ringlane::current_shard() })
                .unwrap(),
        )
        .unwrap()
    };
    for key in 0..50u64 {
        let first = on(Placement::Sticky(key));
        for _ in 0..20 {
            assert_eq!(on(Placement::Sticky(key)), first, "key {key} moved");
        }
    }
    let shards: std::collections::HashSet<_> =
        (0..50u64).map(|k| on(Placement::Sticky(k))).collect();
    assert_eq!(shards.len(), 2, "50 keys all mapped to one shard");
    assert_eq!(on(Placement::Pinned(1)), Some(1));
    // "Shard 1 unless it is busy": with both shards asleep, only shard 1 is
    // woken, so it must be the one that runs the task. (While shard 1 is
    // still finishing the previous task another shard may take it; that is
    // the placement's contract, so the test waits for both to park.)
    for _ in 0..20 {
        wait_until_parked(&h, &[0, 1]);
        assert_eq!(on(Placement::StealablePreferred(1)), Some(1));
    }
    let rr: Vec<_> = (0..4).map(|_| on(Placement::RoundRobin)).collect();
    assert!(
        rr.windows(2).all(|w| w[0] != w[1]),
        "round robin repeated a shard: {rr:?}"
    );
    assert!(matches!(
        h.spawn_with(Placement::Pinned(2), async {}),
        Err(ringlane::Error::ShardOutOfRange { .. })
    ));
}

/// A stealable task that wakes itself forever must not starve timers,
/// channel messages or pinned tasks on its shard.
#[test]
fn a_self_waking_stealable_task_starves_nothing() {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .task_budget(16)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let spinner = rt
        .handle()
        .spawn_stealable(async move {
            while !s.load(Ordering::Relaxed) {
                ringlane::yield_now().await;
            }
        })
        .unwrap();
    let (tx, mut rx) = ringlane::channel::<u32>(4).unwrap();
    let receiver = rt
        .handle()
        .spawn_pinned(0, async move { rx.recv().await })
        .unwrap();
    let timer = rt
        .handle()
        .spawn_pinned(0, sleep(Duration::from_millis(10)))
        .unwrap();
    tx.try_send(5).unwrap();
    let r = rt.block_on(timeout(Duration::from_secs(5), async {
        timer.await.unwrap();
        receiver.await.unwrap()
    }));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(r.expect("starved by a self-waking stealable task"), Some(5));
    rt.block_on(spinner).unwrap();
}

#[test]
fn shutdown_cancels_pending_stealable_tasks_without_hanging_their_handles() {
    let rt = common::runtime(2);
    let mut joins: Vec<_> = (0..100)
        .map(|_| {
            rt.handle()
                .spawn_stealable(std::future::pending::<()>())
                .unwrap()
        })
        .collect();
    // Some queued but never polled: behind a blocked shard and in the injector.
    let release = common::block_shard(&rt, 1).release_flag();
    joins.extend((0..100).map(|_| rt.handle().spawn_stealable(async {}).unwrap()));
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        release.store(true, Ordering::Release);
    });
    let report = rt.shutdown(Duration::from_millis(10));
    releaser.join().unwrap();
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    let waiter = common::runtime(1);
    let mut cancelled = 0;
    for j in joins {
        match waiter
            .block_on(timeout(Duration::from_secs(5), j))
            .expect("a stealable task's handle hung")
        {
            Ok(()) => {}
            Err(e) => {
                assert!(e.is_cancelled());
                cancelled += 1;
            }
        }
    }
    assert!(
        cancelled >= 100,
        "the 100 pending tasks must be cancelled, got {cancelled}"
    );
    assert!(report.unfinished_tasks >= 100);
}

/// Regression: stealable tasks registered on shard 0 that finish on shard 1
/// during a graceful shutdown left shard 0 asleep until the deadline
/// (nobody told it its registry had emptied).
#[test]
fn graceful_shutdown_returns_promptly_when_stolen_tasks_finish_elsewhere() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let mut senders = Vec::new();
    let mut joins = Vec::new();
    for _ in 0..10 {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        senders.push(tx);
        // First polled on shard 0: registered there.
        joins.push(
            h.spawn_with(
                Placement::StealablePreferred(0),
                async move { rx.await.is_ok() },
            )
            .unwrap(),
        );
    }
    std::thread::sleep(Duration::from_millis(20));
    // A pinned task on shard 1 fires the senders once shutdown has begun:
    // the woken tasks go to shard 1's deque and finish there.
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    drop(
        h.spawn_pinned(1, async move {
            go_rx.await.unwrap();
            for tx in senders {
                tx.send(()).unwrap();
            }
        })
        .unwrap(),
    );
    let shutter = std::thread::spawn(move || {
        let t = Instant::now();
        let report = rt.shutdown(Duration::from_secs(30));
        (report, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    go_tx.send(()).unwrap();
    let (report, took) = shutter.join().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        took < Duration::from_secs(5),
        "shutdown waited {took:?} for a shard whose tasks were done"
    );
    for j in joins {
        assert!(common::block_on(j).unwrap());
    }
}

/// `StealablePreferred` tasks waiting for their first run are stealable:
/// with the preferred shard blocked, another shard runs them.
#[test]
fn stealable_preferred_tasks_run_elsewhere_while_their_shard_is_blocked() {
    let rt = common::runtime(2);
    let blocker = common::block_shard(&rt, 0);
    let joins: Vec<_> = (0..100)
        .map(|_| {
            rt.handle()
                .spawn_with(Placement::StealablePreferred(0), async {
                    ringlane::current_shard()
                })
                .unwrap()
        })
        .collect();
    let out = rt.block_on(timeout(Duration::from_secs(10), async {
        let mut v = Vec::new();
        for j in joins {
            v.push(j.await.unwrap());
        }
        v
    }));
    rt.block_on(blocker.release()).unwrap();
    let out = out.expect("preferred tasks stranded behind a blocked shard");
    assert!(out.iter().all(|s| *s == Some(1)));
}
