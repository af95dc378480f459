//! Work stealing at its edges: preferred tasks counted as stolen, a graceful
//! shutdown with stealable tasks queued behind a blocked shard, aborts and
//! panics of stolen tasks, and spawn storms from many threads. Every
//! wait is bounded; a blocked shard is released before any assertion that
//! could fail.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringlane::Placement;
use ringlane::time::{sleep, timeout};

use common::LIMIT;
use common::native_io::poll_once;
use common::stealers::*;

/// Both shards are held while 100 `StealablePreferred(0)` tasks are queued;
/// then shard 1 is let go while shard 0 stays blocked, so shard 1 takes and
/// runs all 100 from shard 0's preferred queue (it may: shard 0 is running).
///
/// Expected: shard 1's counters account for each of those tasks. A preferred
/// take already bumps `tasks_stolen` ("tasks taken from other shards'
/// deques", counted per task by `steal_from_others`), but `take_preferred`
/// adds 1 per batch (`steal_batch_and_pop` moves up to 33 tasks), so a
/// monitor sees a handful of stolen tasks where 100 moved, with no
/// successful steal behind them.
#[test]
fn preferred_tasks_taken_by_an_idle_shard_are_each_counted_as_stolen() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let hold_1 = common::block_shard(&rt, 1);
    let hold_0 = common::block_shard(&rt, 0);
    let before = h.shard_stats(1).unwrap();
    let joins: Vec<_> = (0..100)
        .map(|_| {
            h.spawn_with(Placement::StealablePreferred(0), async {
                ringlane::current_shard()
            })
            .unwrap()
        })
        .collect();
    common::join_within(&rt, hold_1.release(), LIMIT, "shard 1's blocker");
    let out = rt.block_on(timeout(LIMIT, async move {
        let mut v = Vec::new();
        for j in joins {
            v.push(j.await.unwrap());
        }
        v
    }));
    common::join_within(&rt, hold_0.release(), LIMIT, "shard 0's blocker");
    let out = out.expect("preferred tasks stranded behind a blocked shard");
    assert!(
        out.iter().all(|s| *s == Some(1)),
        "shard 0 was blocked: {out:?}"
    );
    let after = h.shard_stats(1).unwrap();
    let stolen = after.tasks_stolen - before.tasks_stolen;
    let popped = after.injector_pops - before.injector_pops;
    assert!(
        stolen + popped >= 100,
        "shard 1 ran 100 tasks it took from shard 0's preferred queue, but its counters \
         show {stolen} stolen and {popped} injector pops: {after:?}"
    );
    assert!(
        after.steals_succeeded <= after.steals_attempted,
        "{after:?}"
    );
}

/// Shard 0 is held while a pinned task on shard 1 queues 20 stealable tasks
/// on shard 1's deque and then blocks shard 1. A graceful shutdown (30 s) is
/// begun, and only then is shard 0 let go.
///
/// Expected: idle shard 0 runs the 20 queued stealable tasks during the
/// grace period (the README: a blocked shard does not hold up the stealable
/// work queued behind it; `Runtime::shutdown`: tasks run until the timeout).
/// But `exit_ready` (drain step D4) looks only at shard 0's own queues and,
/// with no timer or op of its own, never at other shards' deques: shard 0
/// exits at once, without a search, and the tasks wait for blocked shard 1.
///
/// (The 20 ms pause after shutdown begins lets the injector gate seal; it
/// can only make the test pass, never fail.)
#[test]
fn graceful_shutdown_runs_stealable_tasks_queued_behind_a_blocked_shard() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let hold_0 = common::block_shard(&rt, 0);
    let release_0 = hold_0.release_flag();
    let release_1 = Arc::new(AtomicBool::new(false));
    let r1 = release_1.clone();
    let (joins_tx, joins_rx) = mpsc::channel();
    let queuer = h
        .spawn_pinned(1, async move {
            let joins: Vec<_> = (0..20usize)
                .map(|i| ringlane::spawn(async move { (i, ringlane::current_shard()) }).unwrap())
                .collect();
            joins_tx.send(joins).unwrap();
            // Blocks shard 1 (30 s at most, so a failing test ends).
            let deadline = Instant::now() + Duration::from_secs(30);
            while !r1.load(Ordering::Acquire) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let joins = joins_rx.recv_timeout(LIMIT);
    let shutter = std::thread::spawn(move || {
        let t = Instant::now();
        let report = rt.shutdown(Duration::from_secs(30));
        (report, t.elapsed())
    });
    let began = holds_within(LIMIT, || h.is_shutdown());
    std::thread::sleep(Duration::from_millis(20));
    release_0.store(true, Ordering::Release);
    let out = joins.ok().and_then(|joins| {
        let waiter = common::runtime(1);
        waiter
            .block_on(timeout(LIMIT, async move {
                let mut v = Vec::new();
                for j in joins {
                    v.push(j.await);
                }
                v
            }))
            .ok()
    });
    release_1.store(true, Ordering::Release);
    let (report, took) = shutter.join().unwrap();
    drop((queuer, hold_0));
    assert!(began, "shutdown never began");
    let out = out.expect(
        "stealable tasks queued on a blocked shard were neither run nor cancelled by the idle \
         shard during a graceful shutdown: it exited and left them to the blocked shard",
    );
    for (k, r) in out.into_iter().enumerate() {
        let (i, on) = r.unwrap_or_else(|e| panic!("task {k}: {e}"));
        assert_eq!(i, k);
        assert_eq!(on, Some(0), "task {k} ran on a blocked shard?");
    }
    assert!(report.is_clean(), "{report:?} after {took:?}");
}

/// A stealable task first polled on shard A (registered there, with a 60 s
/// sleep on A's wheel) is stolen by shard B while A is blocked, and aborted
/// while it spins inside a poll on B.
///
/// Expected: the abort wake lands while the task runs, so it is requeued on
/// B and dropped there at once: the `JoinHandle` gives `is_cancelled`, the
/// future is dropped on B while A is still blocked (nothing waits for the
/// task's home), and A's registry of stealable tasks is emptied from B, so a
/// later graceful shutdown is clean and prompt (a stale entry would hold
/// shard A until the deadline).
#[test]
fn aborting_a_stolen_task_while_it_runs_elsewhere_drops_it_there_and_frees_its_home() {
    const NOT_DROPPED: usize = usize::MAX;
    struct DropSpy(Arc<AtomicUsize>);
    impl Drop for DropSpy {
        fn drop(&mut self) {
            let on = ringlane::current_shard().unwrap_or(NOT_DROPPED - 1);
            self.0.store(on, Ordering::SeqCst);
        }
    }
    let rt = common::runtime(2);
    let h = rt.handle();
    let (report_tx, reports) = mpsc::channel::<usize>();
    let (kick_tx, kick) = tokio::sync::oneshot::channel::<()>();
    let go = Arc::new(AtomicBool::new(false));
    let dropped_on = Arc::new(AtomicUsize::new(NOT_DROPPED));
    let (g, spy) = (go.clone(), DropSpy(dropped_on.clone()));
    let task = h
        .spawn_stealable(async move {
            let _spy = spy;
            let mut nap = Box::pin(sleep(Duration::from_secs(60)));
            assert!(poll_once(&mut nap).await);
            report_tx.send(ringlane::current_shard().unwrap()).unwrap();
            kick.await.unwrap();
            report_tx.send(ringlane::current_shard().unwrap()).unwrap();
            let deadline = Instant::now() + LIMIT;
            while !g.load(Ordering::Acquire) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
            nap.await;
            "the 60 s sleep ended"
        })
        .unwrap();
    let home = report_of(&reports, "the task's first poll");
    let hold = common::block_shard(&rt, home);
    kick_tx.send(()).unwrap();
    let thief = reports.recv_timeout(LIMIT);
    if thief.is_ok() {
        task.abort(); // it spins inside its poll on the thief right now
    }
    go.store(true, Ordering::Release);
    let finished = holds_within(LIMIT, || task.is_finished());
    let spied = dropped_on.load(Ordering::SeqCst);
    common::join_within(&rt, hold.release(), LIMIT, "the blocker");
    let thief = thief.expect("the task was never stolen from its blocked shard");
    assert_eq!(thief, other(home));
    assert!(finished, "the task aborted on its thief never finished");
    assert_eq!(
        spied, thief,
        "the aborted task's future was not dropped on the shard running it"
    );
    let out = rt.block_on(timeout(LIMIT, task)).expect("the handle hung");
    match out {
        Err(e) => assert!(e.is_cancelled(), "{e}"),
        Ok(v) => panic!("an aborted task completed: {v}"),
    }
    let t = Instant::now();
    let report = rt.shutdown(Duration::from_secs(10));
    let took = t.elapsed();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        took < Duration::from_secs(3),
        "shutdown took {took:?}: the aborted task's home still thought it alive"
    );
}

/// 40 stealable tasks are first polled on shard 0 (shard 1 is held), each
/// waiting for a kick under a `timeout` whose timer sits on shard 0's wheel.
/// Then shard 0 is blocked, shard 1 let go, and every task kicked: shard 1
/// runs them all, and every odd one panics there.
///
/// Expected: each panic is `JoinError::is_panic` carrying its payload, each
/// even task returns normally on shard 1; shard 1 keeps serving pinned and
/// stealable work afterwards; a pinned task queued for blocked shard 0 does
/// not run while it is blocked (pinned work waits) and runs there once it is
/// released; and shutdown is clean and prompt (the panicked tasks left shard
/// 0's stealable registry, and their timers its wheel).
#[test]
fn panics_in_stolen_tasks_are_join_errors_and_both_shards_keep_serving() {
    const N: usize = 40;
    let rt = common::runtime(2);
    let h = rt.handle();
    let hold_1 = common::block_shard(&rt, 1);
    let (first_tx, first_rx) = mpsc::channel::<usize>();
    let mut kicks = Vec::new();
    let mut joins = Vec::new();
    for i in 0..N {
        let (kick_tx, kick) = tokio::sync::oneshot::channel::<()>();
        kicks.push(kick_tx);
        let first_tx = first_tx.clone();
        joins.push(
            h.spawn_with(Placement::StealablePreferred(0), async move {
                let first = ringlane::current_shard().unwrap();
                first_tx.send(first).unwrap();
                timeout(Duration::from_secs(30), kick)
                    .await
                    .expect("never kicked")
                    .expect("the kick was dropped");
                if i % 2 == 1 {
                    std::panic::panic_any(i);
                }
                (i, first, ringlane::current_shard())
            })
            .unwrap(),
        );
    }
    let firsts: Vec<usize> = (0..N)
        .map(|_| report_of(&first_rx, "a first poll"))
        .collect();
    let hold_0 = common::block_shard(&rt, 0);
    common::join_within(&rt, hold_1.release(), LIMIT, "shard 1's blocker");
    let pinned = h
        .spawn_pinned(0, async { ringlane::current_shard() })
        .unwrap();
    for k in kicks {
        k.send(()).unwrap();
    }
    let out = rt.block_on(timeout(LIMIT, async move {
        let mut v = Vec::new();
        for j in joins {
            v.push(j.await);
        }
        v
    }));
    let pinned_waited = !pinned.is_finished();
    let served = rt.block_on(timeout(LIMIT, async {
        let a = h.spawn_pinned(1, async { ringlane::current_shard() });
        let a = a.unwrap().await.unwrap();
        let b = h.spawn_stealable(async { ringlane::current_shard() });
        (a, b.unwrap().await.unwrap())
    }));
    common::join_within(&rt, hold_0.release(), LIMIT, "shard 0's blocker");
    assert!(firsts.iter().all(|&s| s == 0), "first polls: {firsts:?}");
    let out = out.expect("stolen tasks stalled while their home shard was blocked");
    for (i, r) in out.into_iter().enumerate() {
        if i % 2 == 1 {
            let e = r
                .err()
                .unwrap_or_else(|| panic!("task {i} should have panicked"));
            assert!(e.is_panic(), "task {i}: {e}");
            let payload = e.into_panic().downcast::<usize>();
            assert_eq!(payload.ok().map(|p| *p), Some(i), "task {i}'s payload");
        } else {
            let v = r.unwrap_or_else(|e| panic!("task {i}: {e}"));
            assert_eq!(v, (i, 0, Some(1)), "task {i}");
        }
    }
    assert!(
        pinned_waited,
        "a task pinned to blocked shard 0 ran elsewhere"
    );
    assert_eq!(
        served.expect("shard 1 stopped serving after the panics"),
        (Some(1), Some(1))
    );
    assert_eq!(
        common::join_within(&rt, pinned, LIMIT, "the pinned task"),
        Some(0)
    );
    let t = Instant::now();
    let report = rt.shutdown(Duration::from_secs(10));
    let took = t.elapsed();
    assert!(report.is_clean(), "{report:?}");
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
}

/// 150 rounds, each starting with both shards asleep: four threads, released
/// together by a barrier, spawn 40 tasks each with every placement
/// (`Stealable`, `StealablePreferred`, `Pinned`, `RoundRobin`, `Sticky`);
/// a third of the tasks yield once, a third spawn a stealable child from the
/// shard and await it. The shards wake, run, search and park while the
/// pushes race them.
///
/// Expected: every `JoinHandle` resolves with its task's value within the
/// bound: no push (mailbox, injector, preferred queue, own deque) loses its
/// wake-up (doorbell protocol S1–S3/R3–R4, notify P1–P3, search N1–N4).
#[test]
fn spawn_storms_from_many_threads_with_every_placement_resolve_every_handle() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 150;
    const PER: usize = 40;
    let rt = common::runtime(2);
    let h = rt.handle();
    for round in 0..ROUNDS {
        common::until_parked(&h, 0);
        common::until_parked(&h, 1);
        let barrier = std::sync::Barrier::new(THREADS);
        let joins: Vec<(usize, ringlane::JoinHandle<usize>)> = std::thread::scope(|s| {
            let spawners: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (h, barrier) = (&h, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..PER)
                            .map(|i| {
                                let n = (round * THREADS + t) * PER + i;
                                let placement = match n % 5 {
                                    0 => Placement::Stealable,
                                    1 => Placement::StealablePreferred(n % 2),
                                    2 => Placement::Pinned(n % 2),
                                    3 => Placement::RoundRobin,
                                    _ => Placement::sticky(&n),
                                };
                                let j = h
                                    .spawn_with(placement, async move {
                                        match n % 3 {
                                            0 => ringlane::yield_now().await,
                                            1 => {
                                                let child =
                                                    ringlane::spawn(async move { n * 2 }).unwrap();
                                                assert_eq!(child.await.unwrap(), n * 2);
                                            }
                                            _ => {}
                                        }
                                        n
                                    })
                                    .unwrap();
                                (n, j)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            spawners
                .into_iter()
                .flat_map(|spawner| spawner.join().unwrap())
                .collect()
        });
        let count = joins.len();
        let out = rt.block_on(timeout(LIMIT, async move {
            for (n, j) in joins {
                assert_eq!(j.await.unwrap(), n);
            }
        }));
        assert!(
            out.is_ok(),
            "round {round}: some of {count} handles never resolved (a lost wake-up): {:?} / {:?}",
            h.shard_stats(0).unwrap(),
            h.shard_stats(1).unwrap()
        );
    }
}
