//! `spawn_blocking`: closures on the runtime's blocking pool (ADR 0020,
//! `src/blocking/mod.rs` invariants).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use ringlane::{Error, Runtime};

use common::LIMIT;

/// How many of this process's pool threads (OS name `{prefix}-blk`) live.
fn pool_threads(prefix: &str) -> usize {
    common::lifecycle::threads_named(prefix)
        .iter()
        .filter(|name| name.ends_with("-blk"))
        .count()
}

/// A runtime whose blocking pool has one thread.
fn pool_of_one() -> Runtime {
    Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .build()
        .unwrap()
}

/// A closure on `h`'s pool that returns `value` once released (the
/// sender), started by the time this returns.
fn held_closure(h: &ringlane::Handle, value: u32) -> (ringlane::JoinHandle<u32>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let join = h
        .spawn_blocking(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
            value
        })
        .unwrap();
    started_rx.recv_timeout(LIMIT).unwrap();
    (join, release_tx)
}

/// Expected (Tokio): a closure runs off the shards, on a thread of its
/// own, with the runtime current there; its handle is awaited from a shard
/// task, from `block_on` and from a Tokio task alike.
#[test]
fn a_closure_runs_off_the_shards_with_the_runtime_current() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let inside = h
        .spawn_pinned(0, async {
            let shard_thread = std::thread::current().id();
            let (shard, thread, spawned) = ringlane::spawn_blocking(move || {
                let spawned = ringlane::spawn(async { 5 }).is_ok();
                (
                    ringlane::current_shard(),
                    std::thread::current().id(),
                    spawned,
                )
            })
            .unwrap()
            .await
            .unwrap();
            (shard, thread != shard_thread, spawned)
        })
        .unwrap();
    assert_eq!(rt.block_on(inside).unwrap(), (None, true, true));
    let name = rt
        .block_on(
            h.spawn_blocking(|| std::thread::current().name().map(String::from))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(name.as_deref(), Some("ringlane-shard-blocking"));
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let h2 = h.clone();
    let from_tokio = tokio_rt.block_on(async move {
        tokio::spawn(async move { h2.spawn_blocking(|| 7).unwrap().await.unwrap() })
            .await
            .unwrap()
    });
    assert_eq!(from_tokio, 7);
}

/// Expected (Tokio): a closure that panics gives `JoinError::is_panic`
/// with its payload; the pool thread survives and runs the next closure.
#[test]
fn a_panicking_closure_gives_a_panic_join_error_and_the_pool_goes_on() {
    let rt = pool_of_one();
    let h = rt.handle();
    let err = rt
        .block_on(h.spawn_blocking(|| -> u32 { panic!("boom") }).unwrap())
        .unwrap_err();
    assert!(err.is_panic());
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(rt.block_on(h.spawn_blocking(|| 3).unwrap()).unwrap(), 3);
}

/// Expected: closures run at once on threads of their own up to
/// `max_blocking_threads` (three closures meeting at a barrier of three
/// finish), never more at once than that (a queue beyond it), and a shard
/// task keeps running while they block.
#[test]
fn closures_run_side_by_side_up_to_the_thread_limit_and_queue_beyond() {
    let rt = Runtime::builder()
        .shards(1)
        .thread_name("sidebyside")
        .max_blocking_threads(3)
        .build()
        .unwrap();
    let h = rt.handle();
    let barrier = Arc::new(Barrier::new(3));
    let met: Vec<_> = (0..3)
        .map(|_| {
            let b = barrier.clone();
            h.spawn_blocking(move || b.wait().is_leader()).unwrap()
        })
        .collect();
    let leaders = met
        .into_iter()
        .map(|j| rt.block_on(j).unwrap())
        .filter(|l| *l)
        .count();
    assert_eq!(leaders, 1, "the three met at the barrier");
    let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let joins: Vec<_> = (0..12)
        .map(|_| {
            let (now, most) = (now.clone(), most.clone());
            h.spawn_blocking(move || {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                now.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    // The shard is not blocked meanwhile.
    let tick = h.spawn_pinned(0, async { 1 }).unwrap();
    assert_eq!(rt.block_on(tick).unwrap(), 1);
    for j in joins {
        rt.block_on(j).unwrap();
    }
    // The barrier above showed three at once; a slow thread start may let
    // fewer overlap here, never more.
    let most = most.load(Ordering::SeqCst);
    assert!((1..=3).contains(&most), "{most} closures ran at once");
    assert!(pool_threads("sidebyside") <= 3);
}

/// Expected (Tokio): a thread idle for the keep-alive exits; a later
/// closure starts a new one.
#[test]
fn an_idle_pool_thread_exits_after_the_keep_alive() {
    let rt = Runtime::builder()
        .shards(1)
        .thread_name("keepalive")
        .thread_keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    let h = rt.handle();
    rt.block_on(h.spawn_blocking(|| ()).unwrap()).unwrap();
    common::wait_until("an idle pool thread's exit", || {
        pool_threads("keepalive") == 0
    });
    assert_eq!(rt.block_on(h.spawn_blocking(|| 9).unwrap()).unwrap(), 9);
}

/// Expected (Tokio): `abort` before the closure starts cancels it (it
/// never runs); once it runs, `abort` changes nothing and its result
/// arrives.
#[test]
fn abort_cancels_a_queued_closure_and_not_a_running_one() {
    let rt = pool_of_one();
    let h = rt.handle();
    let (running, release_tx) = held_closure(&h, 1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let queued = h
        .spawn_blocking(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    queued.abort();
    running.abort();
    release_tx.send(()).unwrap();
    assert_eq!(
        rt.block_on(running).unwrap(),
        1,
        "a running closure finishes"
    );
    assert!(rt.block_on(queued).unwrap_err().is_cancelled());
    // The pool's one thread is free again, and the aborted one never ran.
    rt.block_on(h.spawn_blocking(|| ()).unwrap()).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// Expected: shutdown refuses new closures, lets a queued one run during
/// the grace period, waits for a running one until the deadline, and
/// reports one still running after it (its thread detached) without
/// waiting for it; `spawn_blocking` afterwards is `Error::Shutdown`.
#[test]
fn shutdown_waits_for_closures_until_the_deadline_and_reports_the_rest() {
    let rt = pool_of_one();
    let h = rt.handle();
    let (started_tx, started_rx) = mpsc::channel();
    let first = h
        .spawn_blocking(move || {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            1
        })
        .unwrap();
    let second = h.spawn_blocking(|| 2).unwrap();
    started_rx.recv_timeout(LIMIT).unwrap();
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(common::block_on(first).unwrap(), 1);
    assert_eq!(
        common::block_on(second).unwrap(),
        2,
        "queued, run in the grace period"
    );
    assert!(matches!(h.spawn_blocking(|| ()), Err(Error::Shutdown)));

    let rt = pool_of_one();
    let h = rt.handle();
    let (stuck, release_tx) = held_closure(&h, 3);
    let never = h.spawn_blocking(|| 4).unwrap();
    let start = Instant::now();
    let report = rt.shutdown(Duration::from_millis(100));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "waited past the deadline"
    );
    assert_eq!(report.blocking_still_running, 1, "{report:?}");
    assert_eq!(report.unfinished_tasks, 1, "the queued closure: {report:?}");
    assert!(common::block_on(never).unwrap_err().is_cancelled());
    release_tx.send(()).unwrap();
    assert_eq!(
        common::block_on(stuck).unwrap(),
        3,
        "it finishes on its own"
    );
}

/// Expected: a runtime shut down (with a 5 s grace period) inside one of
/// its own closures, its owner moved there, returns at once instead of
/// waiting out the grace period for that closure's thread, the caller.
#[test]
fn a_runtime_shut_down_inside_its_own_closure_does_not_wait_for_itself() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let (tx, rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<Runtime>();
    let _closure = h
        .spawn_blocking(move || {
            let rt = go_rx.recv().unwrap();
            let start = Instant::now();
            let report = rt.shutdown(Duration::from_secs(5));
            tx.send((start.elapsed(), report.blocking_still_running))
                .unwrap();
        })
        .unwrap();
    go_tx.send(rt).unwrap();
    let (took, running) = rx.recv_timeout(LIMIT).expect("the shutdown returned");
    assert!(
        took < Duration::from_secs(3),
        "it waited for itself: {took:?}"
    );
    assert_eq!(running, 0, "the caller is not counted");
}

/// Expected: no runtime entered is `NotOnShard`; zero pool threads is an
/// invalid configuration.
#[test]
fn spawn_blocking_without_a_runtime_or_threads_is_a_clear_error() {
    assert!(matches!(
        ringlane::spawn_blocking(|| ()),
        Err(Error::NotOnShard)
    ));
    assert!(matches!(
        Runtime::builder().max_blocking_threads(0).build(),
        Err(Error::InvalidConfig(_))
    ));
}

/// Expected: a keep-alive too long to add to the clock (`Duration::MAX`:
/// "never exit") keeps the thread waiting, and it runs the next closure.
///
/// Why it may fail: the thread added the keep-alive to `Instant::now()`,
/// which panics on overflow: the thread died after its first closure,
/// still counted as live, so the next closure queued for no thread.
#[test]
fn a_keep_alive_of_duration_max_keeps_the_thread_and_runs_the_next_closure() {
    let rt = Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .thread_keep_alive(Duration::MAX)
        .build()
        .unwrap();
    let h = rt.handle();
    assert_eq!(rt.block_on(h.spawn_blocking(|| 1).unwrap()).unwrap(), 1);
    let second = h.spawn_blocking(|| 2).unwrap();
    assert_eq!(
        common::join_within(&rt, second, LIMIT, "the second closure"),
        2
    );
}

/// Expected (Tokio: its blocking tasks stop the budget): a closure that
/// polls ringlane resources in a loop (a nested executor receiving from a
/// channel) is never told to yield, however many operations it makes.
///
/// Why it may fail: the closure's whole run was one poll of its task, under
/// the task's budget of 128 ready operations; from the 129th on every
/// receive returned `Pending` and woke itself, and nothing ever gave the
/// budget back: a nested `block_on` spun forever.
#[test]
fn a_closure_is_not_bound_by_the_cooperative_budget() {
    use std::task::{Context, Poll, Waker};
    let rt = common::runtime(1);
    let (tx, mut rx) = ringlane::channel::<u32>(256).unwrap();
    for i in 0..200 {
        tx.try_send(i).unwrap();
    }
    let j = rt
        .handle()
        .spawn_blocking(move || {
            let mut cx = Context::from_waker(Waker::noop());
            (0..200)
                .filter(|_| matches!(rx.poll_recv(&mut cx), Poll::Ready(Some(_))))
                .count()
        })
        .unwrap();
    assert_eq!(common::join_within(&rt, j, LIMIT, "the closure"), 200);
}

/// Expected: a shutdown called from a closure while another closure waits
/// for the pool's only thread (the caller's) returns at once instead of
/// waiting out its timeout for work only the caller could run; the queued
/// closure is cancelled and counted, and a queued closure the user aborted
/// is not counted as the shutdown's.
#[test]
fn a_shutdown_from_a_closure_does_not_wait_for_work_queued_behind_it() {
    let rt = pool_of_one();
    let h = rt.handle();
    let (tx, rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<Runtime>();
    let _caller = h
        .spawn_blocking(move || {
            let rt = go_rx.recv().unwrap();
            let start = Instant::now();
            let report = rt.shutdown(Duration::from_secs(5));
            tx.send((start.elapsed(), report)).unwrap();
        })
        .unwrap();
    let queued = h.spawn_blocking(|| 1).unwrap();
    let aborted = h.spawn_blocking(|| 2).unwrap();
    aborted.abort();
    go_tx.send(rt).unwrap();
    let (took, report) = rx.recv_timeout(LIMIT).expect("the shutdown returned");
    assert!(took < Duration::from_secs(2), "it waited {took:?}");
    assert_eq!(report.unfinished_tasks, 1, "{report:?}");
    assert_eq!(
        report.blocking_still_running, 0,
        "the caller is not counted"
    );
    assert!(common::block_on(queued).unwrap_err().is_cancelled());
    assert!(common::block_on(aborted).unwrap_err().is_cancelled());
}

/// A stress of the pool's idle accounting (invariant 3): closures pushed
/// one at a time, each awaited, from two threads and a shard task, with
/// pauses around the 1 ms keep-alive, so that pushes keep landing as idle
/// threads time out and exit. Every closure must run exactly once; a push
/// whose claim on an idle thread was lost to that thread's exit would
/// leave its closure queued for no thread (each push is the last one for
/// a while), and the wait for it fails after `LIMIT` instead of hanging.
#[test]
fn racing_pushes_and_keep_alive_exits_lose_no_closure() {
    let rt = Runtime::builder()
        .shards(2)
        .max_blocking_threads(2)
        .thread_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    let h = rt.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let pushers: Vec<_> = (0..2u32)
        .map(|p| {
            let (h, ran) = (h.clone(), ran.clone());
            std::thread::spawn(move || {
                for i in 0..300u32 {
                    let ran = ran.clone();
                    let j = h
                        .spawn_blocking(move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                            i
                        })
                        .unwrap();
                    let got = common::block_on(ringlane::time::timeout(LIMIT, j));
                    assert_eq!(got.expect("a closure never ran").unwrap(), i);
                    let us = 600 + (u64::from(i) * 37 + u64::from(p) * 101) % 800;
                    std::thread::sleep(Duration::from_micros(us));
                }
            })
        })
        .collect();
    let from_shard = h
        .spawn_pinned(1, async {
            let mut sum = 0u64;
            for i in 0..300u64 {
                sum += ringlane::spawn_blocking(move || i).unwrap().await.unwrap();
                ringlane::time::sleep(Duration::from_micros(900 + i % 300)).await;
            }
            sum
        })
        .unwrap();
    for p in pushers {
        p.join().unwrap();
    }
    let sum = common::join_within(&rt, from_shard, LIMIT, "the shard's closures");
    assert_eq!(sum, 299 * 300 / 2);
    assert_eq!(ran.load(Ordering::SeqCst), 600, "each closure ran once");
}

/// The CPUs the calling thread may run on.
fn cpus_allowed() -> usize {
    // SAFETY: cpu_set_t is plain data; the call gets its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        libc::CPU_COUNT(&set) as usize
    }
}

/// Expected: with `pin_cpus(true)`, a pool thread started by a call from a
/// shard task (every `native::fs` call on the pool) runs on the CPUs the
/// builder's thread could, not only on that shard's one CPU.
///
/// Why it may fail: a new thread inherits its creator's CPU mask, so the
/// pool thread was pinned to the shard's CPU and its long closures
/// competed with the shard for it, the stall the pool exists to avoid.
#[test]
fn a_pool_thread_started_from_a_pinned_shard_is_not_pinned_to_its_cpu() {
    let all = cpus_allowed();
    if all < 2 {
        eprintln!("SKIPPED: one CPU allowed here, pinning changes nothing");
        return;
    }
    let rt = Runtime::builder().shards(1).pin_cpus(true).build().unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let shard = cpus_allowed();
            let pool = ringlane::spawn_blocking(cpus_allowed)
                .unwrap()
                .await
                .unwrap();
            (shard, pool)
        })
        .unwrap();
    let (shard, pool) = rt.block_on(j).unwrap();
    assert_eq!(shard, 1, "the shard is pinned");
    assert_eq!(pool, all, "the pool thread kept the shard's one CPU");
}
