//! Runtime life cycle at its edges: an exited shard's counters stay frozen
//! when things bound to it are dropped later; a task queued behind a poll
//! that outlasts the shutdown deadline is cancelled, not polled first;
//! runtimes built and ended every way, in sequence and in parallel, leave
//! nothing behind; far more shards than CPUs on the smallest rings, pinned
//! in a narrow mask, serve and count consistently.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, Handle, Runtime, ShardStats};

use common::LIMIT;
use common::lifecycle::{ReleaseOnDrop, threads_left_after_a_while, within};
use common::ring_probe::*;

/// Sixteen sleeps are registered in shard 0's timer wheel and handed out
/// of their task; the runtime is dropped; its stats are read; then the
/// sleeps are dropped on the test thread.
///
/// Expected: a shard that has exited does nothing and is handed nothing,
/// so its counters are frozen: the snapshot after the drops equals the one
/// before (the wheel is gone, "nothing is owed": sleep.rs). Suspected:
/// each drop still posts a removal into the dead shard's mailbox, where it
/// stays unrun, and counts it in `doorbells_avoided` as a hand-off to a
/// running shard.
#[test]
fn the_stats_of_an_exited_shard_stay_frozen_when_things_bound_to_it_are_dropped_later() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let h = rt.handle();
    let j = h
        .spawn_pinned(0, async {
            let mut held = Vec::new();
            for k in 0..16u64 {
                let mut s = Box::pin(ringlane::time::sleep(Duration::from_secs(3600 + k)));
                let pending =
                    std::future::poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx).is_pending())).await;
                assert!(pending, "an hour-long sleep was due at once");
                held.push(s);
            }
            Held(held)
        })
        .unwrap();
    let Held(sleeps) = common::join_within(&rt, j, LIMIT, "registering sleeps on shard 0");
    within(Duration::from_secs(20), "dropping the runtime", move || {
        drop(rt)
    });
    let frozen: Vec<ShardStats> = (0..2).map(|s| h.shard_stats(s).unwrap()).collect();
    assert!(
        frozen.iter().all(|s| !s.parked),
        "exited shards read as parked: {frozen:?}"
    );
    drop(sleeps);
    let later: Vec<ShardStats> = (0..2).map(|s| h.shard_stats(s).unwrap()).collect();
    assert_eq!(
        later, frozen,
        "the counters of shards that had exited moved when timers registered on them were \
         dropped: something was handed to a dead shard"
    );
}

// ---------------------------------------------------------------------------
// 5.
// ---------------------------------------------------------------------------

/// A task on shard 1 spawns a second task onto its own shard (it lands in
/// the run queue behind it) and then blocks the shard. `shutdown(ZERO)`
/// begins on another thread; 100 ms later the blocking task is let go,
/// well before the 5 s grace runs out.
///
/// Expected (`Runtime::shutdown`: tasks run until the timeout, then those
/// still alive are cancelled; drain.rs D3: "once the deadline passes, stop
/// polling"): the queued task, never polled before the deadline, is
/// cancelled, not started 100 ms after it; its handle gives `Cancelled`
/// and the report counts it. The bug it pins (fixed): the shard keeps polling what is
/// queued behind the blocking poll until its budget runs out, because it
/// only looks at the shutdown at the end of the tick.
#[test]
fn a_task_queued_behind_a_blocking_poll_is_cancelled_not_first_polled_after_the_deadline() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let h = rt.handle();
    let release = Arc::new(AtomicBool::new(false));
    let _let_go = ReleaseOnDrop(release.clone());
    let polled_late = Arc::new(AtomicBool::new(false));
    let (victim_tx, victim_rx) = mpsc::channel();
    let (r, p) = (release.clone(), polled_late.clone());
    let blocker = h
        .spawn_pinned(1, async move {
            let here = ringlane::Handle::current().unwrap();
            let victim = here
                .spawn_pinned(1, async move {
                    p.store(true, Ordering::SeqCst);
                })
                .unwrap();
            victim_tx.send(victim).unwrap();
            while !r.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        })
        .unwrap();
    let victim = victim_rx
        .recv_timeout(LIMIT)
        .expect("the blocking task never ran");
    let (report_tx, report_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let report = rt.shutdown(Duration::ZERO);
        let _ = report_tx.send((report, t.elapsed()));
    });
    let deadline = Instant::now() + LIMIT;
    while !h.is_shutdown() {
        assert!(Instant::now() < deadline, "shutdown never began");
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(100)); // the deadline is long past
    release.store(true, Ordering::Release);
    let (report, took) = report_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("shutdown never returned");
    assert!(
        !polled_late.load(Ordering::SeqCst),
        "a task never polled before shutdown(ZERO)'s deadline was first polled ~100 ms after \
         it, once the blocking poll ahead of it returned (shutdown took {took:?}, {report:?})"
    );
    let v = common::block_on(timeout(LIMIT, victim)).expect("the queued task never resolved");
    assert!(
        v.unwrap_err().is_cancelled(),
        "the queued task was not cancelled"
    );
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    assert_eq!(
        report.unfinished_tasks, 1,
        "the queued task was not counted as cancelled: {report:?}"
    );
    common::block_on(timeout(LIMIT, blocker))
        .expect("the blocking task never resolved")
        .expect("the blocking task failed");
}

// ---------------------------------------------------------------------------
// 6.
// ---------------------------------------------------------------------------

/// Three threads each build six two-shard runtimes in a row (ring sizes 2,
/// 3, 1000 and 32767, pinned or not, some with a spin window), run
/// cross-shard work and a channel on each, leave a pending task, and end
/// each one a different way: dropped, `shutdown(ZERO)`, dropped from one of
/// its own tasks, or dropped with a handle kept.
///
/// Expected: every runtime reports the ring set-up of a runtime built on a
/// clean thread (a registration leaked on a builder thread would show), the
/// pending tasks resolve as cancelled, the own-task drop returns promptly,
/// every shard thread ends, the process's fd count comes back to where it
/// was, and the kept handles refuse spawns with `Shutdown`.
#[test]
fn runtimes_built_and_ended_every_way_in_sequence_and_in_parallel_leave_nothing_behind() {
    let _serial = SERIAL.lock();
    // Warm up process-wide lazy state (the fallback timer thread).
    let baseline = {
        let rt = common::runtime(1);
        rt.block_on(ringlane::time::sleep(Duration::from_millis(1)));
        rt.handle().ring_features()
    };
    let before = common::fd_count();
    let workers: Vec<_> = (0..3usize)
        .map(|t| {
            std::thread::spawn(move || {
                let waiter = common::runtime(1);
                let mut kept: Vec<Handle> = Vec::new();
                for i in 0..6usize {
                    let entries = [2u32, 3, 1000, 32_767][(t + i) % 4];
                    let mut b = Runtime::builder()
                        .shards(2)
                        .thread_name(format!("advrt{t}"))
                        .ring_entries(entries)
                        .pin_cpus(i % 2 == 0);
                    if i % 3 == 1 {
                        b = b.spin_before_park(Duration::from_micros(200));
                    }
                    let rt = b.build().unwrap_or_else(|e| {
                        panic!("thread {t}, runtime {i} ({entries} entries) failed to start: {e}")
                    });
                    let h = rt.handle();
                    assert_eq!(
                        h.ring_features(),
                        baseline,
                        "thread {t}, runtime {i}: the ring set-up drifted"
                    );
                    let (tx, mut rx) = ringlane::channel::<u32>(2).unwrap();
                    let consumer = h
                        .spawn_pinned(1, async move {
                            let mut n = 0u32;
                            while let Some(v) = rx.recv().await {
                                n += v;
                            }
                            n
                        })
                        .unwrap();
                    let h2 = h.clone();
                    let producer = h
                        .spawn_pinned(0, async move {
                            for v in 0..50u32 {
                                tx.send(v).await.unwrap();
                            }
                            h2.spawn_pinned(1, async { 7u32 }).unwrap().await.unwrap()
                        })
                        .unwrap();
                    assert_eq!(common::join_within(&rt, producer, LIMIT, "the producer"), 7);
                    assert_eq!(
                        common::join_within(&rt, consumer, LIMIT, "the consumer"),
                        1225
                    );
                    let pending = h.spawn_pinned(i % 2, std::future::pending::<()>()).unwrap();
                    match i % 4 {
                        0 => drop(rt),
                        1 => {
                            let report = rt.shutdown(Duration::ZERO);
                            assert!(report.stuck_shards.is_empty(), "{report:?}");
                            assert_eq!(report.unfinished_tasks, 1, "{report:?}");
                        }
                        2 => {
                            let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
                            let (took_tx, took_rx) = mpsc::channel::<Duration>();
                            drop(
                                h.spawn_pinned(0, async move {
                                    let rt = rt_rx.recv_timeout(LIMIT).expect("no runtime");
                                    let t = Instant::now();
                                    drop(rt);
                                    let _ = took_tx.send(t.elapsed());
                                })
                                .unwrap(),
                            );
                            rt_tx.send(rt).unwrap();
                            let took = took_rx
                                .recv_timeout(Duration::from_secs(20))
                                .expect("the drop from one of its own tasks never returned");
                            assert!(
                                took < Duration::from_millis(4500),
                                "thread {t}, runtime {i}: the drop from its own task took {took:?}"
                            );
                        }
                        _ => {
                            kept.push(rt.handle());
                            drop(rt);
                        }
                    }
                    let r = waiter
                        .block_on(timeout(LIMIT, pending))
                        .unwrap_or_else(|_| panic!("thread {t}, runtime {i}: pending task hung"));
                    assert!(
                        r.unwrap_err().is_cancelled(),
                        "thread {t}, runtime {i}: the pending task was not cancelled"
                    );
                }
                drop(waiter);
                kept
            })
        })
        .collect();
    let kept: Vec<Handle> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a building thread panicked"))
        .collect();
    for t in 0..3 {
        assert_eq!(
            threads_left_after_a_while(&format!("advrt{t}")),
            Vec::<String>::new(),
            "shard threads outlived their runtimes"
        );
    }
    assert_eq!(
        common::fd_count(),
        before,
        "runtimes built and ended in parallel leaked file descriptors"
    );
    for h in &kept {
        assert!(matches!(h.spawn_pinned(0, async {}), Err(Error::Shutdown)));
        assert!(!h.shard_stats(1).unwrap().parked);
    }
}

// ---------------------------------------------------------------------------
// 8.
// ---------------------------------------------------------------------------

/// Builder limits and a runtime far beyond the machine: the first value
/// past each documented limit is `InvalidConfig`; then 32 shards on the
/// smallest rings (2 SQ entries), a task budget of 1 and pinning, built by
/// a thread confined to one CPU, so all 32 pin to that CPU. Every shard
/// sends 10 messages to a receiver on shard 0 through a channel of 8
/// (back-pressure: wake storms of MSG_RINGs through an SQ of 2).
///
/// Expected: each shard's affinity is exactly the caller's CPU; every
/// message arrives; the stats agree with what happened (messages sent on
/// the shards == received on shard 0 == 320, wakeups <= parks, successful
/// steals <= attempts); a bounded graceful shutdown is clean; no shard
/// thread is left.
#[test]
fn far_more_shards_than_cpus_on_the_smallest_rings_pinned_in_a_narrow_mask_serve_and_count_consistently()
 {
    let _serial = SERIAL.lock();
    for (what, b) in [
        ("4097 shards", Runtime::builder().shards(4097)),
        ("1 ring entry", Runtime::builder().shards(1).ring_entries(1)),
        (
            "32769 ring entries",
            Runtime::builder().shards(1).ring_entries(32_769),
        ),
    ] {
        match b.build() {
            Err(Error::InvalidConfig(_)) => {}
            Err(e) => panic!("{what}: expected InvalidConfig, got {e:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }

    const N: usize = 32;
    const EACH: u64 = 10;
    let cpu = *allowed_cpus().last().expect("no CPU in this thread's mask");
    let rt = within(Duration::from_secs(30), "building 32 shards", move || {
        confine_this_thread_to(cpu);
        Runtime::builder()
            .shards(N)
            .ring_entries(2)
            .task_budget(1)
            .pin_cpus(true)
            .thread_name("advfar")
            .build()
    })
    .unwrap_or_else(|e| panic!("a 32-shard runtime failed to start: {e}"));
    let h = rt.handle();
    assert_eq!(h.shards(), N);
    for s in 0..N {
        let j = h.call_on(s, |_| allowed_cpus()).unwrap();
        assert_eq!(
            common::join_within(&rt, j, LIMIT, "reading a shard's affinity"),
            vec![cpu],
            "shard {s} is not pinned to the building thread's only CPU"
        );
    }

    let (tx, mut rx) = ringlane::channel::<u64>(8).unwrap();
    let receiver = h
        .spawn_pinned(0, async move {
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(v) = rx.recv().await {
                n += 1;
                sum += v;
            }
            (n, sum)
        })
        .unwrap();
    let senders: Vec<_> = (0..N)
        .map(|s| {
            let tx = tx.clone();
            h.spawn_pinned(s, async move {
                for k in 0..EACH {
                    tx.send(s as u64 * 100 + k).await.unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    drop(tx);
    for j in senders {
        common::join_within(&rt, j, LIMIT, "a sender");
    }
    let (n, sum) = common::join_within(&rt, receiver, LIMIT, "the receiver");
    let want_sum: u64 = (0..N as u64)
        .flat_map(|s| (0..EACH).map(move |k| s * 100 + k))
        .sum();
    assert_eq!((n, sum), (N as u64 * EACH, want_sum));

    let stats: Vec<ShardStats> = (0..N).map(|s| h.shard_stats(s).unwrap()).collect();
    let sent: u64 = stats.iter().map(|s| s.messages_sent).sum();
    let received: u64 = stats.iter().map(|s| s.messages_received).sum();
    assert_eq!(sent, N as u64 * EACH, "messages_sent over all shards");
    assert_eq!(
        received,
        N as u64 * EACH,
        "messages_received over all shards"
    );
    assert_eq!(stats[0].messages_received, N as u64 * EACH);
    for s in &stats {
        assert!(s.wakeups <= s.parks, "{s:?}");
        assert!(s.steals_succeeded <= s.steals_attempted, "{s:?}");
        assert!(
            s.tasks_polled >= 2,
            "shard {} ran its call and sender: {s:?}",
            s.shard
        );
    }
    let report = within(Duration::from_secs(30), "shutdown", move || {
        rt.shutdown(Duration::from_secs(2))
    });
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(threads_left_after_a_while("advfar"), Vec::<String>::new());
}
