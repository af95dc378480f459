//! Shutdown's edges: a spin window longer than the shutdown's timeout, a
//! graceful shutdown that keeps timers running and refuses respawns, and
//! every shard thread ending however the runtime is dropped.

mod common;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ringlane::Error;
use ringlane::time::{interval, sleep, timeout};

use common::LIMIT;
use common::lifecycle::*;

/// A shard that spins before it parks (`Builder::spin_before_park`) must
/// honour a graceful shutdown's deadline as a parking shard does: at the
/// deadline its unfinished task is cancelled, `shutdown` returns at once
/// with `unfinished_tasks == 1`, no shard is reported stuck, and the task's
/// `JoinHandle` resolves as cancelled.
///
/// Suspected bug: `Core::spin` (src/shard/core.rs) ends on work, on the
/// wheel's next timer and on the *first* sight of the shutdown flag, but
/// not on the shutdown deadline, which only `Core::park_timeout` adds. Once
/// the shard has seen the shutdown, its next idle moment spins the whole
/// window (8 s here) past a 20 ms deadline without ever reaching step D3,
/// and the runtime gives up after its 5 s grace and reports the shard stuck
/// while the task is still alive. (The same spin also defeats D3's
/// every-10-ms re-look that ADR 0005's 2026-12-06 amendment relies on.)
#[test]
fn a_spin_window_does_not_outlast_a_graceful_shutdowns_deadline() {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .spin_before_park(Duration::from_secs(8))
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let (polled_tx, polled) = mpsc::channel();
    let forever = rt
        .handle()
        .spawn_pinned(0, async move {
            polled_tx.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    polled.recv_timeout(LIMIT).expect("the task never ran");
    let (report, took) = within(Duration::from_secs(20), "shutdown", move || {
        let t = Instant::now();
        let report = rt.shutdown(Duration::from_millis(20));
        (report, t.elapsed())
    });
    assert!(
        report.stuck_shards.is_empty(),
        "the spinning shard was reported stuck after {took:?}: {report:?}"
    );
    assert_eq!(
        report.unfinished_tasks, 1,
        "the pending task was not cancelled at the deadline: {report:?}"
    );
    assert!(
        took < Duration::from_millis(4500),
        "shutdown(20 ms) took {took:?}"
    );
    let joined = common::block_on(timeout(Duration::from_secs(2), forever))
        .expect("the JoinHandle of a task cancelled at shutdown never resolved");
    assert!(joined.unwrap_err().is_cancelled());
}

/// `shutdown(timeout)` is graceful until the deadline, as ADR 0005 says:
/// tasks keep running and timers keep firing (a 50 ms sleep started just
/// before the call completes with its value; an interval keeps ticking),
/// every spawn made during the grace period is refused with
/// `Error::Shutdown` (`spawn_local`, `ringlane::spawn` and `call_on` in
/// supervisor loops that respawn a child whenever the last one ends; the
/// supervisors then end cleanly), and at the deadline exactly the two
/// tasks that could never finish are cancelled: the call returns no sooner
/// than the deadline and well before its grace runs out, with no shard
/// stuck.
#[test]
fn graceful_shutdown_keeps_timers_running_refuses_respawns_and_cancels_the_rest() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (ready_tx, ready) = mpsc::channel::<&'static str>();

    let r = ready_tx.clone();
    let local_supervisor = h
        .spawn_local_on(0, move || async move {
            let mut children = 0u32;
            loop {
                match ringlane::spawn_local(sleep(Duration::from_millis(1))) {
                    Ok(child) => child.await.expect("an accepted child must finish"),
                    Err(Error::Shutdown) => return children,
                    Err(e) => panic!("unexpected spawn_local error during shutdown: {e}"),
                }
                children += 1;
                if children == 1 {
                    r.send("local").unwrap();
                }
            }
        })
        .unwrap();

    let r = ready_tx.clone();
    let stealable_supervisor = h
        .spawn_pinned(1, async move {
            let mut children = 0u32;
            loop {
                match ringlane::spawn(sleep(Duration::from_millis(1))) {
                    Ok(child) => child.await.expect("an accepted child must finish"),
                    Err(Error::Shutdown) => break,
                    Err(e) => panic!("unexpected spawn error during shutdown: {e}"),
                }
                children += 1;
                if children == 1 {
                    r.send("stealable").unwrap();
                }
            }
            let handle = ringlane::Handle::current().expect("on a shard");
            let call = handle.call_on(0, |ctx| ctx.index());
            (children, matches!(call, Err(Error::Shutdown)))
        })
        .unwrap();

    let ticks = Arc::new(AtomicUsize::new(0));
    let (t, r) = (ticks.clone(), ready_tx.clone());
    let ticker = h
        .spawn_pinned(1, async move {
            let mut every = interval(Duration::from_millis(5));
            for _ in 0..u32::MAX {
                every.tick().await;
                if t.fetch_add(1, Ordering::SeqCst) == 0 {
                    r.send("ticker").unwrap();
                }
            }
        })
        .unwrap();
    let forever = h.spawn_pinned(0, std::future::pending::<()>()).unwrap();

    let mut got: Vec<&str> = (0..3)
        .map(|_| {
            ready
                .recv_timeout(LIMIT)
                .expect("a supervisor or the ticker never got going")
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, ["local", "stealable", "ticker"]);

    let (polled_tx, polled) = mpsc::channel();
    let timer_holder = h
        .spawn_pinned(0, async move {
            let s = sleep(Duration::from_millis(50));
            polled_tx.send(()).unwrap();
            s.await;
            7u32
        })
        .unwrap();
    polled
        .recv_timeout(LIMIT)
        .expect("the timer task never ran");

    let ticks_before = ticks.load(Ordering::SeqCst);
    let grace = Duration::from_millis(600);
    let (report, took) = within(Duration::from_secs(20), "graceful shutdown", move || {
        let t = Instant::now();
        let report = rt.shutdown(grace);
        (report, t.elapsed())
    });
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    assert_eq!(
        report.unfinished_tasks, 2,
        "only the ticker and the pending task could not finish: {report:?}"
    );
    assert!(took >= grace, "returned before its deadline: {took:?}");
    assert!(
        took < grace + Duration::from_secs(4),
        "shutdown({grace:?}) took {took:?}"
    );
    let ticks_during = ticks.load(Ordering::SeqCst) - ticks_before;
    assert!(
        ticks_during > 5,
        "the interval stopped ticking once shutdown began ({ticks_during} ticks in {grace:?})"
    );

    let join = |what: &str| format!("the {what}'s JoinHandle never resolved");
    assert_eq!(
        common::block_on(timeout(LIMIT, timer_holder))
            .unwrap_or_else(|_| panic!("{}", join("timer task")))
            .expect("a timer due before the deadline must fire during the grace period"),
        7
    );
    let local_children = common::block_on(timeout(LIMIT, local_supervisor))
        .unwrap_or_else(|_| panic!("{}", join("local supervisor")))
        .expect("the local supervisor failed");
    assert!(local_children >= 1);
    let (stealable_children, call_refused) = common::block_on(timeout(LIMIT, stealable_supervisor))
        .unwrap_or_else(|_| panic!("{}", join("stealable supervisor")))
        .expect("the stealable supervisor failed");
    assert!(stealable_children >= 1);
    assert!(call_refused, "call_on during shutdown was not refused");
    for (what, j) in [("ticker", ticker), ("pending task", forever)] {
        let r = common::block_on(timeout(LIMIT, j)).unwrap_or_else(|_| panic!("{}", join(what)));
        assert!(
            r.unwrap_err().is_cancelled(),
            "the {what} was not cancelled"
        );
    }
}

/// No shard thread outlives its runtime, however it is dropped (each
/// scenario names its shards with its own prefix and looks for them in
/// `/proc/self/task`):
/// 1. `shutdown` from the test thread with pending pinned and local tasks:
///    the threads are joined; both tasks are counted as unfinished.
/// 2. The runtime (entered into a Tokio runtime with `tokio_handle`)
///    dropped inside a Tokio task, while one shard task waits on a Tokio
///    timer and a local one on a ringlane timer: the drop returns promptly,
///    both `JoinHandle`s resolve as cancelled in Tokio, the threads end.
/// 3. The runtime dropped by a task on one of its own shards: that shard's
///    thread is detached by the call (it cannot join itself) but must still
///    end on its own once the task returns, and spawning from the task after
///    the drop is refused, not a panic.
#[test]
fn every_shard_thread_ends_however_the_runtime_is_dropped() {
    // 1.
    let rt = ringlane::Runtime::builder()
        .shards(2)
        .thread_name("advlkA")
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let (polled_tx, polled) = mpsc::channel::<()>();
    let p = polled_tx.clone();
    let a0 = rt
        .handle()
        .spawn_pinned(0, async move {
            p.send(()).unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    let p = polled_tx.clone();
    let a1 = rt
        .handle()
        .spawn_local_on(1, move || async move {
            let _not_send = Rc::new(());
            p.send(()).unwrap();
            sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
    for _ in 0..2 {
        polled.recv_timeout(LIMIT).expect("a task never ran");
    }
    assert_eq!(
        threads_named("advlkA").len(),
        2,
        "the thread scan sees no shard"
    );
    let report = within(Duration::from_secs(20), "shutdown", move || {
        rt.shutdown(Duration::from_millis(10))
    });
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    assert_eq!(report.unfinished_tasks, 2, "{report:?}");
    assert_eq!(threads_left_after_a_while("advlkA"), Vec::<String>::new());
    for j in [a0, a1] {
        assert!(
            common::block_on(timeout(LIMIT, j))
                .unwrap()
                .unwrap_err()
                .is_cancelled()
        );
    }

    // 2.
    let (took, on_tokio_timer, on_ringlane_timer) =
        within(Duration::from_secs(30), "drop inside a Tokio task", || {
            let tokio_rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let rt = ringlane::Runtime::builder()
                .shards(2)
                .thread_name("advlkB")
                .tokio_handle(tokio_rt.handle().clone())
                .build()
                .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
            let (polled_tx, polled) = mpsc::channel::<()>();
            let p = polled_tx.clone();
            let j0 = rt
                .handle()
                .spawn_pinned(0, async move {
                    p.send(()).unwrap();
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                })
                .unwrap();
            let p = polled_tx.clone();
            let j1 = rt
                .handle()
                .spawn_local_on(1, move || async move {
                    let _not_send = Rc::new(());
                    p.send(()).unwrap();
                    sleep(Duration::from_secs(3600)).await;
                })
                .unwrap();
            for _ in 0..2 {
                polled.recv_timeout(LIMIT).expect("a task never ran");
            }
            assert_eq!(threads_named("advlkB").len(), 2);
            tokio_rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    drop(rt);
                    let took = t.elapsed();
                    let a = tokio::time::timeout(LIMIT, j0).await;
                    let b = tokio::time::timeout(LIMIT, j1).await;
                    (took, a, b)
                })
                .await
                .unwrap()
            })
        });
    assert!(
        took < Duration::from_millis(4500),
        "dropping the runtime in a Tokio task took {took:?}"
    );
    for (what, r) in [
        ("Tokio timer", on_tokio_timer),
        ("ringlane timer", on_ringlane_timer),
    ] {
        let r = r.unwrap_or_else(|_| panic!("the task on a {what} never resolved"));
        assert!(r.unwrap_err().is_cancelled(), "the task on a {what}");
    }
    assert_eq!(threads_left_after_a_while("advlkB"), Vec::<String>::new());

    // 3.
    let rt = ringlane::Runtime::builder()
        .shards(2)
        .thread_name("advlkC")
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let pending_on_1 = h.spawn_pinned(1, std::future::pending::<()>()).unwrap();
    let (rt_tx, rt_rx) = mpsc::channel::<ringlane::Runtime>();
    let dropper = h
        .spawn_pinned(0, async move {
            let rt = rt_rx.recv_timeout(LIMIT).expect("never got the runtime");
            let t = Instant::now();
            drop(rt);
            let took = t.elapsed();
            let refused = matches!(ringlane::spawn_local(async {}), Err(Error::Shutdown));
            (took, refused)
        })
        .unwrap();
    assert_eq!(threads_named("advlkC").len(), 2);
    rt_tx.send(rt).unwrap();
    let (took, refused) = common::block_on(timeout(Duration::from_secs(20), dropper))
        .expect("the drop inside a shard task never returned")
        .expect("the dropping task failed");
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    assert!(
        refused,
        "spawn_local after the runtime's drop was not refused"
    );
    assert!(
        common::block_on(timeout(LIMIT, pending_on_1))
            .expect("shard 1's task never resolved")
            .unwrap_err()
            .is_cancelled()
    );
    assert_eq!(
        threads_left_after_a_while("advlkC"),
        Vec::<String>::new(),
        "a shard thread outlived the runtime dropped from one of its tasks"
    );
}
