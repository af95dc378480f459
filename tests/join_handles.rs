//! Join handles with Tokio's semantics across shards and executors, and a
//! task woken from another thread in a tight loop.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use ringlane::time::{sleep, timeout};

use common::lifecycle::*;
use common::{LIMIT, wait_until};

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
