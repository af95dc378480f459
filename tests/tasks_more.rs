//! Local futures dropped on their own shard however they are cancelled, and
//! a handle kept after its runtime is gone.

mod common;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::Mutex;

use ringlane::time::{sleep, timeout};
use ringlane::{Error, Placement};

use common::LIMIT;
use common::lifecycle::*;

/// Task invariant 1 for `!Send` futures, on every cancellation path: a
/// local task's future (here holding an `Rc` whose contents log their
/// dropping thread) is dropped on its own shard's thread, exactly once,
/// whether it is aborted from the test thread while waiting on a ringlane
/// timer, from a Tokio task while waiting on a Tokio channel, from a task on
/// another shard, while its own poll is running (it must then never be
/// polled again), or cancelled because a task on *another* shard dropped the
/// runtime. Every `JoinHandle` resolves as cancelled. (Dropping such a
/// future elsewhere is undefined behaviour; ringlane aborts the process
/// instead, which fails this test too.)
#[test]
fn local_futures_are_dropped_on_their_own_shard_however_they_are_cancelled() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let shard1 = shard_thread(&rt, 1);
    let log: Arc<Mutex<Vec<(&'static str, ThreadId)>>> = Arc::new(Mutex::new(Vec::new()));
    let (started_tx, started) = mpsc::channel::<&'static str>();
    let wait_started = |what: &str| {
        let got = started
            .recv_timeout(LIMIT)
            .unwrap_or_else(|_| panic!("the {what} task never ran"));
        assert_eq!(got, what);
    };

    // 1. Waiting on a ringlane timer; aborted from the test thread.
    let (l, s) = (log.clone(), started_tx.clone());
    let on_timer = h
        .spawn_local_on(1, move || async move {
            let _held = Rc::new(DropRecorder {
                label: "timer",
                log: l,
            });
            s.send("timer").unwrap();
            sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
    wait_started("timer");
    on_timer.abort();
    let r = rt
        .block_on(timeout(LIMIT, on_timer))
        .expect("an aborted timer-blocked task never resolved");
    assert!(r.unwrap_err().is_cancelled());

    // 2. Waiting on a Tokio channel; aborted and awaited from a Tokio task.
    let (_keep_open, keep_rx) = tokio::sync::oneshot::channel::<()>();
    let (l, s) = (log.clone(), started_tx.clone());
    let on_tokio_channel = h
        .spawn_local_on(1, move || async move {
            let _held = Rc::new(DropRecorder {
                label: "tokio",
                log: l,
            });
            s.send("tokio").unwrap();
            let _ = keep_rx.await;
        })
        .unwrap();
    wait_started("tokio");
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let r = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            on_tokio_channel.abort();
            tokio::time::timeout(LIMIT, on_tokio_channel).await
        })
        .await
        .unwrap()
    });
    assert!(
        r.expect("aborted from Tokio, it never resolved")
            .unwrap_err()
            .is_cancelled()
    );

    // 3. Pending forever; aborted and awaited by a task on shard 0.
    let (l, s) = (log.clone(), started_tx.clone());
    let forever = h
        .spawn_local_on(1, move || async move {
            let _held = Rc::new(DropRecorder {
                label: "other-shard",
                log: l,
            });
            s.send("other-shard").unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    wait_started("other-shard");
    let from_shard_0 = h
        .spawn_pinned(0, async move {
            forever.abort();
            timeout(LIMIT, forever).await
        })
        .unwrap();
    let r = common::join_within(&rt, from_shard_0, LIMIT, "the aborting task on shard 0");
    assert!(
        r.expect("aborted from shard 0, it never resolved")
            .unwrap_err()
            .is_cancelled()
    );

    // 4. Aborted while its poll runs: the abort takes effect at the next
    //    yield, and the code after that yield never runs.
    let aborted = Arc::new(AtomicBool::new(false));
    let _let_go_anyway = ReleaseOnDrop(aborted.clone());
    let resumed = Arc::new(AtomicBool::new(false));
    let (l, s, ab, re) = (
        log.clone(),
        started_tx.clone(),
        aborted.clone(),
        resumed.clone(),
    );
    let mid_poll = h
        .spawn_local_on(1, move || async move {
            let _held = Rc::new(DropRecorder {
                label: "mid-poll",
                log: l,
            });
            s.send("mid-poll").unwrap();
            while !ab.load(Ordering::Acquire) {
                std::hint::spin_loop(); // the abort lands during this poll
            }
            ringlane::yield_now().await;
            re.store(true, Ordering::SeqCst);
        })
        .unwrap();
    wait_started("mid-poll");
    mid_poll.abort();
    aborted.store(true, Ordering::Release);
    let r = rt
        .block_on(timeout(LIMIT, mid_poll))
        .expect("a task aborted mid-poll never resolved");
    assert!(r.unwrap_err().is_cancelled());
    assert!(
        !resumed.load(Ordering::SeqCst),
        "a task aborted during its poll was polled again after it yielded"
    );

    // 5. Pending when a task on shard 0 drops the whole runtime.
    let (l, s) = (log.clone(), started_tx.clone());
    let left_behind = h
        .spawn_local_on(1, move || async move {
            let _held = Rc::new(DropRecorder {
                label: "runtime-drop",
                log: l,
            });
            s.send("runtime-drop").unwrap();
            std::future::pending::<()>().await
        })
        .unwrap();
    wait_started("runtime-drop");
    let (rt_tx, rt_rx) = mpsc::channel::<ringlane::Runtime>();
    let dropper = h
        .spawn_pinned(0, async move {
            let rt = rt_rx.recv_timeout(LIMIT).expect("never got the runtime");
            drop(rt);
        })
        .unwrap();
    rt_tx.send(rt).unwrap();
    common::block_on(timeout(Duration::from_secs(20), dropper))
        .expect("the runtime drop inside a shard task never returned")
        .expect("the dropping task failed");
    let r = common::block_on(timeout(LIMIT, left_behind))
        .expect("a local task cancelled by the runtime drop never resolved");
    assert!(r.unwrap_err().is_cancelled());

    let log = log.lock().clone();
    for label in ["timer", "tokio", "other-shard", "mid-poll", "runtime-drop"] {
        let times = log.iter().filter(|(l, _)| *l == label).count();
        assert_eq!(
            times, 1,
            "the {label} future was dropped {times} times: {log:?}"
        );
    }
    for (label, thread) in &log {
        assert_eq!(
            *thread, shard1,
            "the {label} future was dropped off its shard"
        );
    }
}

/// A `Handle` kept after its runtime is gone answers every spawn path with
/// a clear error and no panic (ADR 0006): `Error::Shutdown` for a valid
/// shard, `Error::ShardOutOfRange` for a bad one, from the test thread, a
/// Tokio task and a shard of another runtime; `NotOnShard` for the free
/// functions off a shard. A refused spawn must drop what it was given at
/// once (here every future and closure holds a clone of one `Arc`, whose
/// count must come back to 1: nothing is leaked in a dead shard's queue).
/// The stats of the exited shards stay readable and no longer read as
/// parked.
#[test]
fn a_handle_kept_after_its_runtime_is_gone_refuses_every_spawn_cleanly() {
    let rt = common::runtime(2);
    let h = rt.handle();
    // Both shards have run something before the drop.
    for s in 0..2 {
        shard_thread(&rt, s);
    }
    drop(rt);
    assert!(h.is_shutdown());
    assert_eq!(h.shards(), 2);

    let token = Arc::new(());
    let fut = || {
        let t = token.clone();
        async move { drop(t) }
    };
    let shut = |r: Result<ringlane::JoinHandle<()>, Error>, what: &str| match r {
        Err(Error::Shutdown) => {}
        Err(e) => panic!("{what}: expected Error::Shutdown, got {e:?}"),
        Ok(_) => panic!("{what}: accepted by a runtime that is gone"),
    };
    let out_of_range = |r: Result<ringlane::JoinHandle<()>, Error>, bad: usize, what: &str| match r
    {
        Err(Error::ShardOutOfRange { shard, shards: 2 }) if shard == bad => {}
        Err(e) => panic!("{what}: expected ShardOutOfRange for {bad}, got {e:?}"),
        Ok(_) => panic!("{what}: accepted by a runtime that is gone"),
    };
    shut(h.spawn_pinned(1, fut()), "spawn_pinned");
    out_of_range(h.spawn_pinned(2, fut()), 2, "spawn_pinned(2)");
    shut(h.spawn_stealable(fut()), "spawn_stealable");
    let t = token.clone();
    shut(
        h.spawn_local_on(1, move || {
            drop(t);
            async {}
        }),
        "spawn_local_on",
    );
    let t = token.clone();
    out_of_range(
        h.spawn_local_on(7, move || {
            drop(t);
            async {}
        }),
        7,
        "spawn_local_on(7)",
    );
    let t = token.clone();
    shut(h.call_on(0, move |_| drop(t)), "call_on");
    let t = token.clone();
    out_of_range(
        h.call_on(usize::MAX, move |_| drop(t)),
        usize::MAX,
        "call_on(usize::MAX)",
    );
    shut(h.spawn_with(Placement::Pinned(0), fut()), "Pinned(0)");
    out_of_range(h.spawn_with(Placement::Pinned(9), fut()), 9, "Pinned(9)");
    shut(h.spawn_with(Placement::Stealable, fut()), "Stealable");
    shut(
        h.spawn_with(Placement::StealablePreferred(1), fut()),
        "StealablePreferred(1)",
    );
    out_of_range(
        h.spawn_with(Placement::StealablePreferred(5), fut()),
        5,
        "StealablePreferred(5)",
    );
    shut(h.spawn_with(Placement::RoundRobin, fut()), "RoundRobin");
    shut(
        h.spawn_with(Placement::sticky(&"session-1"), fut()),
        "Sticky",
    );
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a refused spawn kept the future or closure it was given"
    );

    assert!(matches!(ringlane::spawn(async {}), Err(Error::NotOnShard)));
    assert!(matches!(
        ringlane::spawn_local(async {}),
        Err(Error::NotOnShard)
    ));

    for s in 0..2 {
        let st = h.shard_stats(s).expect("stats of an exited shard");
        assert_eq!(st.shard, s);
        assert!(!st.parked, "exited shard {s} reads as parked: {st:?}");
    }
    assert!(matches!(
        h.shard_stats(2),
        Err(Error::ShardOutOfRange {
            shard: 2,
            shards: 2
        })
    ));

    // From a Tokio task.
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h2 = h.clone();
    let from_tokio = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            let a = matches!(h2.spawn_pinned(0, async {}), Err(Error::Shutdown));
            let b = matches!(h2.call_on(1, |c| c.index()), Err(Error::Shutdown));
            let c = matches!(h2.spawn_stealable(async {}), Err(Error::Shutdown));
            (a, b, c)
        })
        .await
        .unwrap()
    });
    assert_eq!(from_tokio, (true, true, true), "from a Tokio task");

    // From a shard of another, live runtime.
    let other = common::runtime(1);
    let h3 = h.clone();
    let j = other
        .handle()
        .spawn_pinned(0, async move {
            let a = matches!(h3.spawn_pinned(0, async {}), Err(Error::Shutdown));
            let b = matches!(h3.spawn_local_on(1, || async {}), Err(Error::Shutdown));
            let c = matches!(h3.spawn_stealable(async {}), Err(Error::Shutdown));
            let d = matches!(
                h3.spawn_with(Placement::StealablePreferred(0), async {}),
                Err(Error::Shutdown)
            );
            (a, b, c, d)
        })
        .unwrap();
    assert_eq!(
        common::join_within(&other, j, LIMIT, "spawning from another runtime's shard"),
        (true, true, true, true)
    );
}
