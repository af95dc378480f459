mod common;

// Adversarial tests of tasks, timers and the runtime's life cycle (meant to
// live at tests/adv_tasks.rs). Each test is bounded: a hang fails within
// seconds instead of stalling the suite.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ringlane::time::{interval, interval_at, sleep, sleep_until, timeout};
use ringlane::{Error, Placement};

/// The bound on every single wait in this file.
const LIMIT: Duration = Duration::from_secs(10);

/// Runs `f` on a fresh thread and returns its result, failing with `what`
/// if it is not done within `limit` (a runtime drop or shutdown that hangs
/// becomes a failure, not a stalled suite).
fn within<T, F>(limit: Duration, what: &str, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|e| panic!("{what}: not done after {limit:?} ({e})"))
}

/// Polls `done` until it holds, failing with `what` after [`LIMIT`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {LIMIT:?}");
        std::thread::yield_now();
    }
}

/// The id of the thread that runs shard `shard`.
fn shard_thread(rt: &ringlane::Runtime, shard: usize) -> ThreadId {
    let j = rt
        .handle()
        .spawn_pinned(shard, async { std::thread::current().id() })
        .unwrap();
    common::join_within(rt, j, LIMIT, "asking a shard for its thread")
}

/// The calling thread's OS thread id.
fn os_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Sets its flag when dropped: a task spinning on the flag is let go even
/// when the test fails first.
struct ReleaseOnDrop(Arc<AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Logs its label and the thread that dropped it.
struct DropRecorder {
    label: &'static str,
    log: Arc<Mutex<Vec<(&'static str, ThreadId)>>>,
}

impl Drop for DropRecorder {
    fn drop(&mut self) {
        self.log
            .lock()
            .push((self.label, std::thread::current().id()));
    }
}

/// A task's output that logs the thread that dropped it.
struct OutputRecorder {
    log: Arc<Mutex<Vec<ThreadId>>>,
}

impl Drop for OutputRecorder {
    fn drop(&mut self) {
        self.log.lock().push(std::thread::current().id());
    }
}

/// Names of this process's threads that start with `{prefix}-` (shard
/// threads are named `{prefix}-{index}`; each test here uses its own prefix).
fn threads_named(prefix: &str) -> Vec<String> {
    let want = format!("{prefix}-");
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
                let comm = comm.trim_end().to_owned();
                if comm.starts_with(&want) {
                    names.push(comm);
                }
            }
        }
    }
    names
}

/// Waits (at most 5 s) until no thread named `{prefix}-*` is left; returns
/// those still there. A thread that was joined may linger in `/proc` for a
/// moment after its join returned, so even joined threads get the bound.
fn threads_left_after_a_while(prefix: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = threads_named(prefix);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

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

/// A task that awaits zero-length sleeps in a loop must not take its shard
/// from every other task. Tokio's timer futures consume the task's
/// cooperative budget, so `loop { sleep(Duration::ZERO).await }` yields to
/// the scheduler every 128 polls and a task spawned beside it runs; ringlane
/// documents that a shard keeps polling fair (`task_budget`) and that a
/// self-waking task starves nothing.
///
/// Suspected gap: `Sleep::poll` (src/time/sleep.rs, the `None if
/// Instant::now() >= this.deadline` branch) returns `Ready` on the first
/// poll of a due sleep without ever returning `Pending`, and nothing else
/// yields: the loop is one endless poll, and the shard's mailbox, timers
/// and other tasks starve until it ends (here it gives up after 3 s).
#[test]
fn a_task_looping_on_zero_length_sleeps_lets_its_shard_run_other_tasks() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let other_ran = Arc::new(AtomicBool::new(false));
    let seen = other_ran.clone();
    let (looping_tx, looping) = mpsc::channel();
    let looper = h
        .spawn_pinned(0, async move {
            let start = Instant::now();
            let mut rounds = 0u64;
            looping_tx.send(()).unwrap();
            // Bounded: a starved shard ends the loop after 3 s, not never.
            while !seen.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(3) {
                sleep(Duration::ZERO).await;
                rounds += 1;
            }
            (seen.load(Ordering::Acquire), rounds)
        })
        .unwrap();
    looping
        .recv_timeout(LIMIT)
        .expect("the looping task never ran");
    let flag = other_ran.clone();
    let other = h
        .spawn_pinned(0, async move { flag.store(true, Ordering::Release) })
        .unwrap();
    let (saw_other, rounds) = common::join_within(&rt, looper, LIMIT, "the looping task");
    assert!(
        saw_other,
        "{rounds} zero-length sleeps ran back to back for 3 s and the task spawned \
         beside them never ran: a due sleep never yields"
    );
    common::join_within(&rt, other, LIMIT, "the task spawned beside the loop");
}

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

#[derive(Debug, PartialEq)]
struct Payload(u32, &'static str);

/// `JoinHandle` semantics as in Tokio, across shards and executors:
/// 1. A panic with a custom payload, awaited from a task on another shard,
///    is `is_panic()` (not cancelled) and gives back that very payload.
/// 2. A task blocked on a ringlane timer, aborted from a Tokio task, is not
///    finished before the abort, becomes finished only once its future
///    (and what it holds) is dropped, and resolves as cancelled in Tokio.
/// 3. Aborting a task that already finished (from another shard) keeps its
///    output.
/// 4. The output of a task detached before it finished is dropped once, by
///    its shard when it finishes; the output of a finished task is dropped
///    once, by the thread that drops its `JoinHandle` (Tokio's
///    `drop_join_handle_slow`), and not before, not even by a runtime
///    shutdown in between.
#[test]
fn join_handles_keep_tokio_semantics_across_shards_and_executors() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let shard1 = shard_thread(&rt, 1);

    // 1.
    let panicking = h
        .spawn_pinned(0, async {
            std::panic::panic_any(Payload(7, "seven (a panic expected by this test)"));
        })
        .unwrap();
    let observer = h
        .spawn_pinned(1, async move {
            let err = panicking.await.expect_err("the task panicked");
            let shown = err.to_string();
            let (is_panic, cancelled) = (err.is_panic(), err.is_cancelled());
            let payload = err
                .try_into_panic()
                .ok()
                .and_then(|p| p.downcast::<Payload>().ok())
                .map(|p| *p);
            (is_panic, cancelled, shown, payload)
        })
        .unwrap();
    let (is_panic, cancelled, shown, payload) =
        common::join_within(&rt, observer, LIMIT, "awaiting a panic from another shard");
    assert!(is_panic && !cancelled);
    assert!(shown.contains("panicked"), "{shown}");
    assert_eq!(
        payload,
        Some(Payload(7, "seven (a panic expected by this test)"))
    );

    // 2.
    let held_dropped = Arc::new(AtomicBool::new(false));
    let held = SetOnDrop(held_dropped.clone());
    let (polled_tx, polled) = mpsc::channel();
    let sleeper = h
        .spawn_pinned(1, async move {
            let _held = held;
            polled_tx.send(()).unwrap();
            sleep(Duration::from_secs(3600)).await;
            1u8
        })
        .unwrap();
    polled.recv_timeout(LIMIT).expect("the sleeper never ran");
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hd = held_dropped.clone();
    let (finished_before, dropped_once_finished, result) = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            let before = sleeper.is_finished();
            sleeper.abort();
            let deadline = Instant::now() + LIMIT;
            while !sleeper.is_finished() {
                assert!(Instant::now() < deadline, "an aborted task never finished");
                tokio::task::yield_now().await;
            }
            let dropped = hd.load(Ordering::SeqCst);
            (before, dropped, tokio::time::timeout(LIMIT, sleeper).await)
        })
        .await
        .unwrap()
    });
    assert!(!finished_before, "a sleeping task read as finished");
    assert!(
        dropped_once_finished,
        "finished before what the task held was dropped"
    );
    assert!(
        result
            .expect("the aborted task never resolved in Tokio")
            .unwrap_err()
            .is_cancelled()
    );

    // 3.
    let done = h.spawn_pinned(1, async { 5u32 }).unwrap();
    wait_until("a trivial task finishing", || done.is_finished());
    let aborter = h
        .spawn_pinned(0, async move {
            done.abort();
            let finished = done.is_finished();
            (finished, done.await)
        })
        .unwrap();
    let (finished, out) = common::join_within(&rt, aborter, LIMIT, "abort after completion");
    assert!(finished);
    assert_eq!(
        out.expect("an abort after completion must keep the output"),
        5
    );

    // 4.
    let outputs: Arc<Mutex<Vec<ThreadId>>> = Arc::new(Mutex::new(Vec::new()));
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let o = outputs.clone();
    let detached_early = h
        .spawn_pinned(1, async move {
            let _ = go_rx.await;
            OutputRecorder { log: o }
        })
        .unwrap();
    drop(detached_early);
    go_tx.send(()).unwrap();
    wait_until("the detached task's output being dropped", || {
        !outputs.lock().is_empty()
    });
    assert_eq!(
        outputs.lock().clone(),
        vec![shard1],
        "the output of a task detached before it finished was not dropped once, by its shard"
    );

    let o = outputs.clone();
    let detached_late = h
        .spawn_pinned(1, async move { OutputRecorder { log: o } })
        .unwrap();
    wait_until("a task finishing", || detached_late.is_finished());
    assert_eq!(
        outputs.lock().len(),
        1,
        "dropped while its JoinHandle held it"
    );
    drop(detached_late);
    assert_eq!(
        outputs.lock().clone(),
        vec![shard1, std::thread::current().id()],
        "a finished task's output must be dropped at once, by the JoinHandle's drop"
    );

    let o = outputs.clone();
    let kept = h
        .spawn_pinned(1, async move { OutputRecorder { log: o } })
        .unwrap();
    wait_until("a task finishing", || kept.is_finished());
    within(Duration::from_secs(20), "runtime drop", move || drop(rt));
    assert_eq!(
        outputs.lock().len(),
        2,
        "the runtime's shutdown dropped an output its JoinHandle still held"
    );
    drop(kept);
    assert_eq!(outputs.lock().len(), 3);
}

/// What the consumer task of the tight-loop wake-up test waits on.
struct Bell {
    waker: Mutex<Option<Waker>>,
    rung: AtomicU64,
    done: AtomicBool,
}

/// A task whose waker another thread fires in a tight loop (hundreds of
/// thousands of wake-ups, most while the task is queued or running): the
/// wake-up storm must neither starve the other work of that shard (timers,
/// a thousand spawns from outside) nor lose the final wake-up, after which
/// the task must see the producer's `done` flag and finish.
#[test]
fn a_task_woken_from_another_thread_in_a_tight_loop_loses_no_wakeup_and_starves_nobody() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let bell = Arc::new(Bell {
        waker: Mutex::new(None),
        rung: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let b = bell.clone();
    let (first_tx, first_poll) = mpsc::channel::<()>();
    let consumer = h
        .spawn_pinned(0, async move {
            let mut polls = 0u64;
            let mut first = Some(first_tx);
            std::future::poll_fn(move |cx| {
                // Waker first, flag second: the producer sets the flag
                // first and wakes second, so the last wake-up is never
                // missed by this protocol (only by the runtime).
                *b.waker.lock() = Some(cx.waker().clone());
                polls += 1;
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
                if b.done.load(Ordering::Acquire) {
                    Poll::Ready(polls)
                } else {
                    Poll::Pending
                }
            })
            .await
        })
        .unwrap();
    first_poll
        .recv_timeout(LIMIT)
        .expect("the consumer never ran");

    let stop = Arc::new(AtomicBool::new(false));
    let _stop_anyway = ReleaseOnDrop(stop.clone());
    let (b, s) = (bell.clone(), stop.clone());
    let producer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut wakes = 0u64;
        while !s.load(Ordering::Acquire) && Instant::now() < deadline {
            b.rung.fetch_add(1, Ordering::Relaxed);
            if let Some(w) = b.waker.lock().as_ref() {
                w.wake_by_ref();
            }
            wakes += 1;
        }
        b.done.store(true, Ordering::Release);
        if let Some(w) = b.waker.lock().as_ref() {
            w.wake_by_ref(); // the one wake-up that must arrive
        }
        wakes
    });

    let timers = h
        .spawn_pinned(0, async {
            for _ in 0..20 {
                sleep(Duration::from_millis(1)).await;
            }
        })
        .unwrap();
    common::join_within(&rt, timers, LIMIT, "timers on the shard being hammered");
    let spawned: Vec<_> = (0..1000u64)
        .map(|i| h.spawn_pinned(0, async move { i }).unwrap())
        .collect();
    let sum = rt
        .block_on(timeout(LIMIT, async {
            let mut sum = 0;
            for j in spawned {
                sum += j.await.unwrap();
            }
            sum
        }))
        .expect("spawns onto the hammered shard starved");
    assert_eq!(sum, 999 * 1000 / 2);
    assert!(
        !bell.done.load(Ordering::Acquire),
        "the producer stopped before the other work ran: the test proves nothing"
    );
    stop.store(true, Ordering::Release);
    let wakes = producer.join().unwrap();
    let polls = common::join_within(
        &rt,
        consumer,
        LIMIT,
        "the task whose last wake-up came from another thread",
    );
    assert!(wakes > 0 && polls >= 2, "wakes {wakes}, polls {polls}");
    assert!(bell.rung.load(Ordering::Relaxed) >= wakes);
}

/// `Handle::shard_stats` reports what each shard did: 50 pinned tasks
/// spawned onto shard 1 from outside are 50 more polls and at least 50
/// mailbox envelopes there, each hand-off either rang a doorbell or was
/// counted as avoided; shard 0, given nothing, polled nothing and received
/// nothing; no stealing counter moves without stealable work;
/// `ShardStats::os_tid` is the tid of the thread that runs the shard's
/// tasks; the snapshot invariants hold (`wakeups <= parks`,
/// `steals_succeeded <= steals_attempted`); and once the runtime is gone
/// the stats stay readable, keep their counts and do not read as parked.
#[test]
fn shard_stats_count_what_each_shard_did_and_outlive_the_runtime() {
    let rt = common::runtime(2);
    let h = rt.handle();
    for s in 0..2 {
        common::until_parked(&h, s);
    }
    let before = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    assert_eq!((before[0].shard, before[1].shard), (0, 1));
    assert_ne!(before[0].os_tid, before[1].os_tid);
    let joins: Vec<_> = (0..50)
        .map(|_| {
            h.spawn_pinned(1, async { (os_tid(), ringlane::current_shard()) })
                .unwrap()
        })
        .collect();
    for j in joins {
        let (tid, on) = common::join_within(&rt, j, LIMIT, "a pinned task on shard 1");
        assert_eq!(on, Some(1));
        assert_eq!(
            tid, before[1].os_tid,
            "ShardStats::os_tid is not the thread that runs shard 1"
        );
    }
    // Published before each poll.
    let polled = h.shard_stats(1).unwrap().tasks_polled - before[1].tasks_polled;
    assert!(
        polled >= 50,
        "50 tasks ran on shard 1, {polled} polls counted"
    );
    // Published at the end of the tick, which may come after the joins.
    let handed_off =
        |s: &ringlane::ShardStats| s.doorbells_eventfd + s.doorbells_avoided + s.doorbells_msg_ring;
    wait_until("shard 1 publishing its mailbox counters", || {
        let s = h.shard_stats(1).unwrap();
        s.mailbox_received - before[1].mailbox_received >= 50
            && handed_off(&s) > handed_off(&before[1])
    });
    let after = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    assert_eq!(
        after[0].tasks_polled, before[0].tasks_polled,
        "shard 0 polled tasks it was never given"
    );
    assert_eq!(after[0].mailbox_received, before[0].mailbox_received);
    for (a, b) in after.iter().zip(&before) {
        assert!(a.wakeups <= a.parks, "{a:?}");
        assert!(a.steals_succeeded <= a.steals_attempted, "{a:?}");
        assert_eq!(
            a.injector_pops, b.injector_pops,
            "no stealable task existed"
        );
        assert_eq!(a.tasks_stolen, b.tasks_stolen, "no stealable task existed");
        assert_eq!(a.os_tid, b.os_tid);
        assert!(a.tasks_polled >= b.tasks_polled && a.parks >= b.parks);
    }
    let polled_total = after[1].tasks_polled;
    within(Duration::from_secs(20), "runtime drop", move || drop(rt));
    let gone = h.shard_stats(1).expect("stats outlive the runtime");
    assert!(!gone.parked, "an exited shard reads as parked: {gone:?}");
    assert!(gone.tasks_polled >= polled_total);
    assert_eq!(gone.os_tid, after[1].os_tid);
    assert!(matches!(
        h.shard_stats(2),
        Err(Error::ShardOutOfRange {
            shard: 2,
            shards: 2
        })
    ));
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

/// Timers at the edges, and timers that outlive their shard:
/// 1. A sleep registered in a shard's wheel, moved out of its task, whose
///    runtime is then dropped, still completes (never early) when awaited
///    in a Tokio task, and likewise on a shard of another runtime.
/// 2. Off any shard (a Tokio task): a zero sleep and a sleep until a past
///    instant are ready at once; a zero timeout polls its future first (a
///    ready one gives its value, a pending one `Elapsed`); a
///    `Duration::MAX` sleep under a short timeout gives `Elapsed` and does
///    not disturb the fallback timer thread, whose next short sleep fires;
///    a 1 ns interval ticks on its grid.
/// 3. The same on a shard, plus `timeout(Duration::MAX, ..)`.
/// 4. A zero interval period panics, as Tokio's does (a documented panic).
#[test]
fn timers_at_zero_and_huge_durations_work_anywhere_and_outlive_their_shard() {
    let registered_sleep = |rt: &ringlane::Runtime, after: Duration| {
        let j = rt
            .handle()
            .spawn_pinned(0, async move {
                let mut s = Box::pin(sleep(after));
                let pending =
                    std::future::poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx).is_pending())).await;
                (pending, s)
            })
            .unwrap();
        let (pending, s) = common::join_within(rt, j, LIMIT, "registering a sleep");
        assert!(pending, "a {after:?} sleep was due at its first poll");
        s
    };

    // 1.
    let rt = common::runtime(1);
    let off_shard = registered_sleep(&rt, Duration::from_millis(300));
    let on_other_runtime = registered_sleep(&rt, Duration::from_millis(300));
    let (d1, d2) = (off_shard.deadline(), on_other_runtime.deadline());
    within(Duration::from_secs(20), "runtime drop", move || drop(rt));
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, off_shard).await })
        .expect("a sleep whose shard is gone never fired in a Tokio task");
    assert!(Instant::now() >= d1, "it fired early");
    let other = common::runtime(1);
    let j = other
        .handle()
        .spawn_pinned(0, async move {
            on_other_runtime.await;
            Instant::now()
        })
        .unwrap();
    let fired_at = common::join_within(
        &other,
        j,
        LIMIT,
        "a sleep whose shard is gone, awaited on another runtime",
    );
    assert!(fired_at >= d2, "it fired early");

    // 2.
    let off = tokio_rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            sleep(Duration::ZERO).await;
            let past = Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or_else(Instant::now);
            sleep_until(past).await;
            let ready = timeout(Duration::ZERO, async { 3 }).await;
            let pending = timeout(Duration::ZERO, std::future::pending::<()>()).await;
            let forever = timeout(Duration::from_millis(20), sleep(Duration::MAX)).await;
            let t = Instant::now();
            sleep(Duration::from_millis(5)).await;
            let short = t.elapsed();
            let mut every = interval(Duration::from_nanos(1));
            let t0 = every.tick().await;
            let t1 = every.tick().await;
            let t2 = every.tick().await;
            (
                ready,
                pending.is_err(),
                forever.is_err(),
                short,
                t1 - t0,
                t2 - t0,
            )
        })
        .await
    });
    let (ready, pending_elapsed, forever_elapsed, short, step1, step2) =
        off.expect("zero and huge timers off the shards hung");
    assert_eq!(ready, Ok(3));
    assert!(pending_elapsed && forever_elapsed);
    assert!(
        short >= Duration::from_millis(5),
        "a 5 ms sleep took {short:?}"
    );
    assert_eq!(
        (step1, step2),
        (Duration::from_nanos(1), Duration::from_nanos(2))
    );

    // 3.
    let j = other
        .handle()
        .spawn_pinned(0, async {
            sleep(Duration::ZERO).await;
            let past = Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or_else(Instant::now);
            sleep_until(past).await;
            let never = timeout(Duration::MAX, sleep(Duration::ZERO)).await;
            let ready = timeout(Duration::ZERO, async { 4 }).await;
            let pending = timeout(Duration::ZERO, std::future::pending::<()>()).await;
            let mut every = interval_at(Instant::now(), Duration::from_nanos(1));
            let t0 = every.tick().await;
            let t1 = every.tick().await;
            (never.is_ok(), ready, pending.is_err(), t1 - t0)
        })
        .unwrap();
    assert_eq!(
        common::join_within(&other, j, LIMIT, "zero and huge timers on a shard"),
        (true, Ok(4), true, Duration::from_nanos(1))
    );

    // 4.
    assert!(std::panic::catch_unwind(|| interval(Duration::ZERO)).is_err());
    assert!(std::panic::catch_unwind(|| interval_at(Instant::now(), Duration::ZERO)).is_err());
}
