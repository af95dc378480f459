//! Shutdown in every order: pending tasks, racing spawns, local tasks,
//! timers, and join handles awaited after the runtime is gone.

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ringlane::Error;

#[test]
fn shutdown_with_pending_tasks_cancels_them_and_reports_how_many() {
    let rt = common::runtime(2);
    let joins: Vec<_> = (0..10)
        .map(|i| {
            rt.handle()
                .spawn_pinned(i % 2, std::future::pending::<()>())
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    let report = rt.shutdown(Duration::from_millis(20));
    assert!(
        t.elapsed() < Duration::from_millis(4500),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert_eq!(report.unfinished_tasks, 10);
    assert!(report.stuck_shards.is_empty());
    for j in joins {
        assert!(
            common::block_on(j).unwrap_err().is_cancelled(),
            "a task dropped at shutdown must give Cancelled"
        );
    }
}

#[test]
fn graceful_shutdown_lets_tasks_finish_before_the_deadline() {
    let rt = common::runtime(2);
    let done = Arc::new(AtomicUsize::new(0));
    let joins: Vec<_> = (0..20)
        .map(|i| {
            let d = done.clone();
            rt.handle()
                .spawn_pinned(i % 2, async move {
                    ringlane::time::sleep(Duration::from_millis(20)).await;
                    d.fetch_add(1, Ordering::SeqCst);
                    i
                })
                .unwrap()
        })
        .collect();
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(done.load(Ordering::SeqCst), 20);
    for (i, j) in joins.into_iter().enumerate() {
        assert_eq!(common::block_on(j).unwrap(), i);
    }
}

#[test]
fn spawns_after_shutdown_are_refused_with_a_clear_error() {
    let rt = common::runtime(1);
    let h = rt.handle();
    rt.shutdown(Duration::ZERO);
    assert!(h.is_shutdown());
    assert!(matches!(h.spawn_pinned(0, async {}), Err(Error::Shutdown)));
    assert!(matches!(
        h.spawn_local_on(0, || async {}),
        Err(Error::Shutdown)
    ));
    assert!(Error::Shutdown.to_string().contains("shut down"));
}

/// Spawners race `shutdown` from several threads: every spawn either is
/// refused or yields a join handle that resolves (completed or cancelled).
/// No task is lost, none hangs.
#[test]
fn shutdown_racing_spawns_loses_no_task_and_hangs_no_join_handle() {
    for _ in 0..20 {
        let rt = common::runtime(2);
        let stop = Arc::new(AtomicBool::new(false));
        let spawners: Vec<_> = (0..3)
            .map(|t| {
                let h = rt.handle();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut joins = Vec::new();
                    let mut refused = 0;
                    for i in 0..20_000usize {
                        match h.spawn_pinned((i + t) % 2, async move { i }) {
                            Ok(j) => joins.push(j),
                            Err(Error::Shutdown) => refused += 1,
                            Err(e) => panic!("unexpected error {e}"),
                        }
                        if stop.load(Ordering::Relaxed) && refused > 0 {
                            break;
                        }
                    }
                    (joins, refused)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        rt.shutdown(Duration::ZERO);
        stop.store(true, Ordering::Relaxed);
        let waiter = common::runtime(1);
        for s in spawners {
            let (joins, _refused) = s.join().unwrap();
            for j in joins {
                let r = waiter.block_on(ringlane::time::timeout(Duration::from_secs(5), j));
                match r.expect("a join handle hung after shutdown") {
                    Ok(_) => {}
                    Err(e) => assert!(e.is_cancelled()),
                }
            }
        }
    }
}

struct DropOn(Arc<parking_lot::Mutex<Option<ThreadId>>>);
impl Drop for DropOn {
    fn drop(&mut self) {
        *self.0.lock() = Some(std::thread::current().id());
    }
}

/// `!Send` futures still pending at shutdown are dropped on their own shard
/// thread (task invariant 1), never on the thread that drops the runtime.
#[test]
fn dropping_the_runtime_drops_local_tasks_on_their_own_shard() {
    let rt = common::runtime(2);
    let dropped_on = Arc::new(parking_lot::Mutex::new(None));
    let d = dropped_on.clone();
    let j = rt
        .handle()
        .spawn_local_on(1, move || async move {
            let guard = Rc::new(DropOn(d));
            std::future::pending::<()>().await;
            drop(guard);
        })
        .unwrap();
    let shard_thread = rt
        .block_on(
            rt.handle()
                .spawn_pinned(1, async { std::thread::current().id() })
                .unwrap(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(10));
    drop(rt);
    assert_eq!(*dropped_on.lock(), Some(shard_thread));
    assert!(common::block_on(j).unwrap_err().is_cancelled());
}

#[test]
fn shutdown_with_a_hundred_thousand_pending_timers_is_prompt() {
    let rt = common::runtime(2);
    for i in 0..100_000usize {
        drop(
            rt.handle()
                .spawn_pinned(i % 2, ringlane::time::sleep(Duration::from_secs(3600)))
                .unwrap(),
        );
    }
    // Let the shards register them all.
    rt.block_on(rt.handle().spawn_pinned(0, async {}).unwrap())
        .unwrap();
    rt.block_on(rt.handle().spawn_pinned(1, async {}).unwrap())
        .unwrap();
    let t = Instant::now();
    let report = rt.shutdown(Duration::ZERO);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(report.unfinished_tasks, 100_000);
}

#[test]
fn a_task_that_blocks_its_shard_is_reported_stuck_not_waited_for_forever() {
    let rt = common::runtime(2);
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let (started_tx, started) = std::sync::mpsc::channel();
    let _j = rt
        .handle()
        .spawn_pinned(1, async move {
            started_tx.send(()).unwrap();
            while !r.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .unwrap();
    // Blocking now: a task not started yet would be cancelled, not stuck.
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the blocking task never started");
    let t = Instant::now();
    let report = rt.shutdown(Duration::ZERO);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(report.stuck_shards, vec![1]);
    release.store(true, Ordering::SeqCst); // let the detached thread finish
}

/// Regression: shutdown rang only shards in `PARKED`. One left `NOTIFIED`
/// by a doorbell deferred on the shard that then shuts the runtime down
/// slept through shutdown and was reported stuck.
#[test]
fn runtime_shut_down_from_inside_one_of_its_own_tasks() {
    let rt = common::runtime(2);
    let h = rt.handle();
    drop(h.spawn_pinned(1, std::future::pending::<()>()).unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<ringlane::Runtime>();
    let j = h
        .spawn_pinned(0, async move {
            let rt = rx.recv().unwrap();
            // Wake shard 1 from here first: its doorbell is deferred to our tick.
            drop(
                ringlane::Handle::current()
                    .unwrap()
                    .spawn_pinned(1, async {}),
            );
            let t = Instant::now();
            let report = rt.shutdown(Duration::from_millis(10));
            (report, t.elapsed())
        })
        .unwrap();
    tx.send(rt).unwrap();
    let (report, took) = common::block_on(j).unwrap();
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    assert!(
        report.unfinished_tasks >= 1,
        "shard 1's pending task was cancelled: {report:?}"
    );
    assert!(took < Duration::from_millis(4500), "took {took:?}");
}

#[test]
fn shutdown_with_an_unbounded_timeout_returns_once_tasks_finish() {
    let rt = common::runtime(2);
    drop(
        rt.handle()
            .spawn_pinned(1, ringlane::time::sleep(Duration::from_millis(10)))
            .unwrap(),
    );
    let t = Instant::now();
    let report = rt.shutdown(Duration::MAX);
    assert!(report.is_clean(), "{report:?}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
}

/// Tasks on both shards wake each other while they are being cancelled:
/// the doorbells those drops owe must go out, so no shard sleeps through.
#[test]
fn shutdown_while_tasks_on_both_shards_wake_each_other() {
    for _ in 0..10 {
        let rt = common::runtime(2);
        for i in 0..200usize {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            // The receiver on one shard, the sender held by a task on the other.
            drop(
                rt.handle()
                    .spawn_pinned(i % 2, async move { rx.await.ok() })
                    .unwrap(),
            );
            drop(
                rt.handle()
                    .spawn_pinned((i + 1) % 2, async move {
                        let _tx = tx;
                        std::future::pending::<()>().await
                    })
                    .unwrap(),
            );
        }
        let t = Instant::now();
        let report = rt.shutdown(Duration::from_millis(5));
        assert!(report.stuck_shards.is_empty(), "{report:?}");
        assert!(
            t.elapsed() < Duration::from_millis(4500),
            "took {:?}",
            t.elapsed()
        );
    }
}

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("destructor panicked");
        }
    }
}

/// A future that completes at once and panics when dropped afterwards, the
/// way `async-task` drops a finished future.
struct ReadyThenPanicOnDrop;
impl std::future::Future for ReadyThenPanicOnDrop {
    type Output = u32;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<u32> {
        std::task::Poll::Ready(1)
    }
}
impl Drop for ReadyThenPanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor panicked after completion");
    }
}

/// `async-task` drops futures under an abort-on-panic guard; a panicking
/// destructor must be contained by ringlane, not abort the process.
#[test]
fn a_panicking_destructor_is_contained_on_completion_abort_and_shutdown() {
    let rt = common::runtime(1);
    // Dropped after Ready, by the harness: the output is kept.
    let done = rt.handle().spawn_pinned(0, ReadyThenPanicOnDrop).unwrap();
    assert_eq!(rt.block_on(done).unwrap(), 1);
    // Dropped inside poll (an async block's locals): a JoinError::Panic.
    let in_poll = rt
        .handle()
        .spawn_pinned(0, async {
            let _p = PanicOnDrop;
            ringlane::yield_now().await;
        })
        .unwrap();
    assert!(rt.block_on(in_poll).unwrap_err().is_panic());
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let aborted = rt
        .handle()
        .spawn_pinned(0, async move {
            let _p = PanicOnDrop;
            polled_tx.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    // Aborted once it holds `_p`, so the abort drops a live future.
    polled
        .recv_timeout(Duration::from_secs(10))
        .expect("the task never ran");
    aborted.abort();
    // Its destructor's panic is how it ended (Tokio's `JoinError::Panic`).
    let e = rt.block_on(aborted).unwrap_err();
    assert!(e.is_panic(), "the destructor's panic was lost: {e:?}");
    let payload = e.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"destructor panicked"));
    drop(
        rt.handle()
            .spawn_local_on(0, || async {
                let _p = Rc::new(PanicOnDrop);
                std::future::pending::<()>().await
            })
            .unwrap(),
    );
    assert_eq!(
        rt.block_on(rt.handle().spawn_pinned(0, async { 2 }).unwrap())
            .unwrap(),
        2
    );
    let report = rt.shutdown(Duration::ZERO);
    assert_eq!(report.unfinished_tasks, 1);
}

/// A shutdown with a long timeout, called from a task on shard 0, while a
/// task on shard 1 waits for a task on shard 0: shard 0 is blocked in the
/// call, so the waiter could never finish, and the shutdown waited out its
/// whole timeout (an hour here). Called on its own shard, it cancels at
/// once.
#[test]
fn a_shutdown_called_on_its_own_shard_does_not_wait_out_its_timeout() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let on_0 = h
        .spawn_pinned(0, ringlane::time::sleep(Duration::from_millis(10)))
        .unwrap();
    drop(h.spawn_pinned(1, on_0).unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<ringlane::Runtime>();
    let j = h
        .spawn_pinned(0, async move {
            let rt = rx.recv().unwrap();
            let t = Instant::now();
            let report = rt.shutdown(Duration::from_secs(3600));
            (report, t.elapsed())
        })
        .unwrap();
    tx.send(rt).unwrap();
    let (report, took) = common::block_on(ringlane::time::timeout(Duration::from_secs(20), j))
        .expect("the shutdown waited out its timeout")
        .unwrap();
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    assert!(report.stuck_shards.is_empty(), "{report:?}");
}

/// Sets its flag when dropped: a blocker is let go even if the test fails
/// first (it would otherwise spin for the rest of the binary).
struct ReleaseOnDrop(Arc<AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A stealable task first polled on shard `home`, then moved to another
/// shard, shuts the runtime down from there. `home` keeps the task in its
/// registry and cannot exit before the task ends, which it cannot do while
/// the shutdown waits: the call waited out its 5 s grace and reported
/// `home` stuck. It must return promptly with a clean report, still
/// waiting for the third shard, like a shutdown from a task that never
/// moved.
#[test]
fn runtime_dropped_in_a_stealable_task_that_moved_returns_promptly() {
    let rt = common::runtime(3);
    let slot = Arc::new(parking_lot::Mutex::new(None::<ringlane::Runtime>));
    let proceed = Arc::new(AtomicBool::new(false));
    let _proceed_anyway = ReleaseOnDrop(proceed.clone());
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (home_tx, home_rx) = std::sync::mpsc::channel::<usize>();
    let (moved_tx, moved_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let (s, p) = (slot.clone(), proceed.clone());
    drop(
        rt.handle()
            .spawn_stealable(async move {
                let home = ringlane::current_shard().unwrap();
                home_tx.send(home).unwrap();
                go_rx.await.unwrap(); // woken from a plain thread while `home` is blocked
                let here = ringlane::current_shard().unwrap();
                moved_tx.send(()).unwrap();
                // Hold this shard (no await, so no move back) until the
                // runtime is ours.
                while !p.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                let Some(rt) = s.lock().take() else { return };
                let t = Instant::now();
                let report = rt.shutdown(Duration::ZERO);
                done_tx.send((home, here, t.elapsed(), report)).unwrap();
            })
            .unwrap(),
    );
    let home = home_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // Block `home` (a pinned task that yields the CPU but not the shard),
    // and know that it runs.
    let (running, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let _release_anyway = ReleaseOnDrop(release.clone());
    let (r, rl) = (running.clone(), release.clone());
    let blocker = rt
        .handle()
        .spawn_pinned(home, async move {
            r.store(true, Ordering::Release);
            while !rl.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        })
        .unwrap();
    while !running.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    go_tx.send(()).unwrap(); // only another shard can take the task now
    moved_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the woken task never ran");
    release.store(true, Ordering::Release);
    rt.block_on(blocker).unwrap();
    *slot.lock() = Some(rt);
    proceed.store(true, Ordering::Release);
    let (first, moved_to, took, report) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the task never shut the runtime down");
    assert_ne!(
        first, moved_to,
        "the task did not move: the test proves nothing"
    );
    assert!(took < Duration::from_secs(4), "the shutdown took {took:?}");
    assert!(report.stuck_shards.is_empty(), "{report:?}");
}

/// A stealable task first polled on `home` has moved to the other shard
/// and is running there when an immediate shutdown begins. `home` wakes it
/// (running, it is only marked), finds nothing to cancel and parks; the
/// task then goes idle on the other shard, which exits. `home` used to park
/// with no timeout and never look again: the shutdown waited out its grace
/// and reported `home` stuck, and the task's `JoinHandle` never resolved.
#[test]
fn a_stolen_task_gone_idle_while_its_home_cancels_is_still_cancelled() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (home_tx, home_rx) = std::sync::mpsc::channel::<usize>();
    let (moved_tx, moved_rx) = std::sync::mpsc::channel::<usize>();
    let go_idle = Arc::new(AtomicBool::new(false));
    let _idle_anyway = ReleaseOnDrop(go_idle.clone());
    let idle = go_idle.clone();
    let task = h
        .spawn_stealable(async move {
            home_tx.send(ringlane::current_shard().unwrap()).unwrap();
            go_rx.await.unwrap(); // woken while `home` is blocked
            moved_tx.send(ringlane::current_shard().unwrap()).unwrap();
            while !idle.load(Ordering::Acquire) {
                std::thread::yield_now(); // running here while `home` cancels
            }
            std::future::pending::<()>().await
        })
        .unwrap();
    let home = home_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let blocker = common::block_shard(&rt, home);
    go_tx.send(()).unwrap(); // only the other shard can take the task now
    let moved_to = moved_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the woken task never ran");
    assert_ne!(
        home, moved_to,
        "the task did not move: the test proves nothing"
    );
    rt.block_on(blocker.release()).unwrap();
    common::until_parked(&h, home);
    let parks = h.shard_stats(home).unwrap().parks;
    let t = Instant::now();
    let shutdown = std::thread::spawn(move || rt.shutdown(Duration::ZERO));
    // `home` saw the shutdown (woke, cancelled nothing) and parks again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h
        .shard_stats(home)
        .map(|s| s.parks == parks || !s.parked)
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "home never parked again");
        std::thread::yield_now();
    }
    go_idle.store(true, Ordering::Release); // the task goes idle where it is
    let report = shutdown.join().unwrap();
    let took = t.elapsed();
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    assert!(took < Duration::from_secs(4), "the shutdown took {took:?}");
    let joined = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await });
    assert!(
        joined
            .expect("the task's JoinHandle never resolved")
            .unwrap_err()
            .is_cancelled()
    );
}
