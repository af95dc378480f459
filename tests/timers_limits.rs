//! Timers at their limits: nested native timeouts bound each op by the
//! earlier deadline and give buffers back; huge durations neither fail at
//! once nor wedge a wheel or the fallback timer thread; timers no task can
//! await do not hold a graceful shutdown, and stay sound after their
//! runtime is gone.

mod common;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::UnixStream;
use ringlane::time::{Sleep, sleep, sleep_until, timeout};

use common::LIMIT;
use common::lifecycle::within;
use common::native_io::{Held, poll_once};
use common::timer_logs::*;

/// One nesting's outcome: its name, the op's result, the buffer's length
/// and the length it must have, when it ended, and its deadline in ms.
type Nested = (
    &'static str,
    Result<usize, ErrorKind>,
    usize,
    usize,
    Duration,
    u64,
);

/// Nested `native::timeout`s on reads of a silent socket:
/// A. inner 60 ms inside outer 400 ms: the first read times out at 60 ms;
///    a second read, under the outer scope only, times out at the outer
///    deadline (400 ms from the start), not before, not at once.
/// B. inner 10 s inside outer 60 ms: 60 ms.
/// C. the outer deadline (30 ms) passes in a `time::sleep` before the inner
///    scope starts: the read fails with `TimedOut` at once, unsubmitted.
/// D. inner 50 ms inside `Duration::MAX`: 50 ms.
/// Each gives `TimedOut` with its buffer back; none swallows the bytes the
/// peer writes afterwards; the runtime shuts down clean.
#[test]
fn nested_native_timeouts_bound_each_op_by_the_earlier_deadline_and_give_buffers_back() {
    use ringlane::native::timeout as native_timeout;
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let (a, b) = UnixStream::pair().unwrap();
            let kind = |r: &std::io::Result<usize>| r.as_ref().map_err(|e| e.kind()).copied();
            let mut out: Vec<Nested> = Vec::new();

            let start = Instant::now();
            let (r1, b1, t1, r2, b2, t2) = native_timeout(Duration::from_millis(400), async {
                let (r1, b1) =
                    native_timeout(Duration::from_millis(60), a.read(vec![0u8; 32])).await;
                let t1 = start.elapsed();
                let (r2, b2) = a.read(vec![0u8; 16]).await;
                (r1, b1, t1, r2, b2, start.elapsed())
            })
            .await;
            out.push(("A inner 60 ms", kind(&r1), b1.len(), 32usize, t1, 60u64));
            out.push((
                "A outer 400 ms, second op",
                kind(&r2),
                b2.len(),
                16,
                t2,
                400,
            ));

            let start = Instant::now();
            let (r3, b3) = native_timeout(
                Duration::from_millis(60),
                native_timeout(Duration::from_secs(10), a.read(vec![0u8; 8])),
            )
            .await;
            let t3 = start.elapsed();
            out.push((
                "B outer 60 ms over inner 10 s",
                kind(&r3),
                b3.len(),
                8,
                t3,
                60,
            ));

            let (r4, b4, t4) = native_timeout(Duration::from_millis(30), async {
                sleep(Duration::from_millis(80)).await;
                let s = Instant::now();
                let (r, b) = native_timeout(Duration::from_secs(10), a.read(vec![0u8; 4])).await;
                (r, b, s.elapsed())
            })
            .await;
            out.push((
                "C outer already past",
                kind(&r4),
                b4.len(),
                4,
                Duration::ZERO,
                0,
            ));

            let start = Instant::now();
            let (r5, b5) = native_timeout(
                Duration::MAX,
                native_timeout(Duration::from_millis(50), a.read(vec![0u8; 8])),
            )
            .await;
            let t5 = start.elapsed();
            out.push((
                "D inner 50 ms under Duration::MAX",
                kind(&r5),
                b5.len(),
                8,
                t5,
                50,
            ));

            b.write_all(b"still here".to_vec()).await.0.unwrap();
            let (n, buf) = a.read(vec![0u8; 64]).timeout(Duration::from_secs(5)).await;
            let tail = n.map(|n| buf[..n].to_vec());
            (out, t4, tail)
        })
        .unwrap();
    let (out, t4, tail) = common::join_within(&rt, j, LIMIT, "nested native timeouts");
    for (what, kind, len, want_len, took, at_least_ms) in out {
        assert_eq!(kind, Err(ErrorKind::TimedOut), "{what}");
        assert_eq!(len, want_len, "{what}: the buffer did not come back whole");
        assert!(
            took >= Duration::from_millis(at_least_ms),
            "{what}: timed out early, after {took:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{what}: timed out late, after {took:?}"
        );
    }
    assert!(
        t4 < Duration::from_secs(1),
        "an op started after the outer deadline waited {t4:?} instead of failing at once"
    );
    assert_eq!(
        tail.expect("the last read failed"),
        b"still here",
        "a timed-out read swallowed bytes"
    );
    let report = within(Duration::from_secs(8), "shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 8. Huge durations
// ---------------------------------------------------------------------------

/// Durations that still fit an `Instant` but lie far past the wheel's
/// horizon (about 1.5e11 years: `Duration::from_secs(u64::MAX / 4)`), and
/// `Duration::MAX`:
/// * a native read under such a timeout with data waiting succeeds; on a
///   silent socket it neither fails at once nor completes (a bad kernel
///   timespec would fail the linked op at once); dropped, it swallows
///   nothing;
/// * `sleep`/`sleep_until` that far out on a shard stay pending, and the
///   shard keeps firing short timers;
/// * the same off the shards (the fallback thread waits on a condvar until
///   that instant) stays pending, and a short off-shard sleep still fires.
#[test]
fn huge_timer_durations_neither_fail_at_once_nor_wedge_a_wheel_or_the_fallback_thread() {
    use ringlane::native::timeout as native_timeout;
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let (a, b) = UnixStream::pair().unwrap();
            b.write_all(b"abc".to_vec()).await.0.unwrap();
            let (n1, buf1) = native_timeout(Duration::MAX, a.read(vec![0u8; 8])).await;
            let first = n1.map(|n| buf1[..n].to_vec()).map_err(|e| e.to_string());
            b.write_all(b"defg".to_vec()).await.0.unwrap();
            let (n2, buf2) = a.read(vec![0u8; 8]).timeout(HUGE).await;
            let second = n2.map(|n| buf2[..n].to_vec()).map_err(|e| e.to_string());
            // Silent socket: still waiting after 50 ms.
            let silent_huge = timeout(
                Duration::from_millis(50),
                native_timeout(HUGE, a.read(vec![0u8; 8])),
            )
            .await
            .map(|(r, _)| r.map_err(|e| e.to_string()));
            let silent_max = timeout(
                Duration::from_millis(50),
                native_timeout(Duration::MAX, a.read(vec![0u8; 8])),
            )
            .await
            .map(|(r, _)| r.map_err(|e| e.to_string()));
            // Far sleeps on the shard.
            let far = timeout(Duration::from_millis(30), sleep(HUGE))
                .await
                .is_err();
            let far_until = timeout(Duration::from_millis(30), sleep_until(far_instant()))
                .await
                .is_err();
            let mut parked = sleep(HUGE);
            let parked_pending = poll_once(&mut parked).await;
            let t = Instant::now();
            sleep(Duration::from_millis(5)).await;
            let short = t.elapsed();
            drop(parked);
            b.write_all(b"tail".to_vec()).await.0.unwrap();
            let (n3, buf3) = a.read(vec![0u8; 16]).timeout(Duration::from_secs(5)).await;
            let tail = n3.map(|n| buf3[..n].to_vec()).map_err(|e| e.to_string());
            (
                first,
                second,
                silent_huge.is_err(),
                silent_max.is_err(),
                far,
                far_until,
                parked_pending,
                short,
                tail,
            )
        })
        .unwrap();
    let (first, second, silent_huge, silent_max, far, far_until, parked_pending, short, tail) =
        common::join_within(&rt, j, LIMIT, "huge durations on a shard");
    assert_eq!(
        first,
        Ok(b"abc".to_vec()),
        "a read under a Duration::MAX native timeout"
    );
    assert_eq!(
        second,
        Ok(b"defg".to_vec()),
        "a read under a far native timeout"
    );
    assert!(
        silent_huge,
        "a read of a silent socket under a far native timeout did not wait"
    );
    assert!(
        silent_max,
        "a read of a silent socket under a Duration::MAX native timeout did not wait"
    );
    assert!(
        far && far_until && parked_pending,
        "a far sleep completed on the shard"
    );
    assert!(
        short >= Duration::from_millis(5) && short < Duration::from_secs(3),
        "{short:?}"
    );
    assert_eq!(
        tail,
        Ok(b"tail".to_vec()),
        "a dropped timed read swallowed bytes"
    );

    // Off the shards.
    let far_off = rt.block_on(timeout(Duration::from_millis(30), sleep(HUGE)));
    let mut kept = sleep_until(far_instant());
    assert!(poll_with(&mut kept, &noop_waker()).is_pending());
    let t = Instant::now();
    within(
        Duration::from_secs(5),
        "a short off-shard sleep",
        move || {
            let rt = common::runtime(1);
            rt.block_on(sleep(Duration::from_millis(5)));
            drop(rt);
        },
    );
    let took = t.elapsed();
    drop(kept);
    assert!(far_off.is_err(), "a far sleep completed off the shards");
    assert!(took >= Duration::from_millis(5));
    let report = within(Duration::from_secs(8), "shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 9. Shutdown with timers
// ---------------------------------------------------------------------------

/// A. A sleep registered on shard 0 and handed out of its task (held by the
///    test thread: no task can await it there), and a task on shard 1 that
///    sleeps 250 ms. A graceful shutdown with 5 s of grace must return once
///    that task is done (well before the grace ends) and be clean; the held
///    sleep must still complete, never early, in a Tokio task.
/// B. Sleeps on every wheel level (1 ms to `Duration::MAX` and far past the
///    horizon) in 160 tasks over two shards, and 10 registered sleeps moved
///    out: dropping the runtime is prompt; the long tasks are cancelled;
///    the moved sleeps still complete, never early, off the shards, or are
///    dropped from several threads at once without a panic.
#[test]
fn shutdown_with_timers_no_task_can_await_is_prompt_and_the_timers_stay_sound() {
    // A.
    let rt = common::runtime(2);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut s = sleep(Duration::from_millis(700));
            let pending = poll_once(&mut s).await;
            (pending, Held(s))
        })
        .unwrap();
    let (pending, Held(held)) = common::join_within(&rt, j, LIMIT, "registering");
    assert!(pending);
    let held_deadline = held.deadline();
    let worker = rt
        .handle()
        .spawn_pinned(1, async {
            sleep(Duration::from_millis(250)).await;
            7
        })
        .unwrap();
    let t = Instant::now();
    let report = within(Duration::from_secs(10), "graceful shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    let took = t.elapsed();
    assert!(report.is_clean(), "{report:?}");
    assert!(
        took < Duration::from_secs(3),
        "a graceful shutdown whose tasks were done after 250 ms took {took:?}: a timer \
         no task could await held its shard"
    );
    assert_eq!(common::block_on(worker).unwrap(), 7);
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, held).await })
        .expect("a sleep whose shard shut down never fired in a Tokio task");
    assert!(Instant::now() >= held_deadline, "it fired early");

    // B.
    let rt = common::runtime(2);
    let durations = [
        Duration::from_millis(1),
        Duration::from_millis(70),
        Duration::from_secs(5),
        Duration::from_secs(300),
        Duration::from_secs(3 * 86_400),
        Duration::from_secs(800 * 86_400),
        Duration::MAX,
        HUGE,
    ];
    let mut joins = Vec::new();
    for shard in 0..2 {
        for (k, d) in durations.iter().enumerate() {
            for _ in 0..10 {
                let d = *d;
                joins.push((
                    k,
                    rt.handle()
                        .spawn_pinned(shard, async move {
                            sleep(d).await;
                            1u8
                        })
                        .unwrap(),
                ));
            }
        }
    }
    let mut moved = Vec::new();
    for i in 0..10 {
        let j = rt
            .handle()
            .spawn_pinned(i % 2, async {
                let mut s = sleep(Duration::from_millis(400));
                let pending = poll_once(&mut s).await;
                (pending, Held(s))
            })
            .unwrap();
        let (pending, Held(s)) = common::join_within(&rt, j, LIMIT, "registering");
        assert!(pending);
        moved.push(s);
    }
    // Every task has registered its sleep.
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    within(Duration::from_secs(10), "dropping the runtime", move || {
        drop(rt)
    });
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "dropping the runtime took {took:?}"
    );
    let waiter = common::runtime(1);
    for (k, j) in joins {
        let outcome = waiter
            .block_on(timeout(LIMIT, j))
            .expect("a join handle of a dropped runtime never resolved");
        match outcome {
            Ok(1) => assert!(k <= 1, "a sleep of {:?} completed", durations[k]),
            Ok(_) => unreachable!(),
            Err(e) => assert!(e.is_cancelled(), "{e}"),
        }
    }
    let awaited: Vec<Sleep> = moved.drain(..5).collect();
    let deadlines: Vec<Instant> = awaited.iter().map(Sleep::deadline).collect();
    let dropped_on: Vec<_> = moved
        .into_iter()
        .map(|s| std::thread::spawn(move || drop(s)))
        .collect();
    for t in dropped_on {
        t.join()
            .expect("dropping a moved sleep after its runtime panicked");
    }
    let done = tokio_rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            for s in awaited {
                s.await;
            }
            Instant::now()
        })
        .await
    });
    let at = done.expect("moved sleeps never fired off the shards after their runtime dropped");
    for d in deadlines {
        assert!(at >= d, "a moved sleep fired early");
    }
}
