//! Timers on shards: order, precision bounds, 100,000 pending at once,
//! timeout, interval, and timers polled off any shard.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ringlane::time::{MissedTickBehavior, interval, sleep, sleep_until, timeout};

/// Sleeps started together fire in deadline order, never early, and no
/// later than a generous bound (the machine is shared and noisy; the bound
/// catches a timer that waits for an unrelated wake-up, not jitter).
///
/// The deadlines lie 200 ms and more ahead, and each task checks that its
/// first poll found its sleep pending: only timers that really went through
/// the wheel say anything about its order (a deadline already past when
/// first polled is ready at once, in spawn order). If the shard was so late
/// that one was already due, the attempt proves nothing and is repeated.
#[test]
fn timers_fire_in_order_never_early_and_within_a_sane_bound() {
    for _attempt in 0..3 {
        if let Some(order) = timers_in_order_attempt() {
            assert_eq!(order, vec![1, 5, 10, 15, 25, 30, 35, 45]);
            return;
        }
    }
    panic!("in three attempts, a sleep was already due at its first poll (200 ms late)");
}

/// One attempt: the order the timers fired in, or `None` if a sleep was
/// already due when its task first polled it.
fn timers_in_order_attempt() -> Option<Vec<u64>> {
    let rt = common::runtime(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let base = Instant::now() + Duration::from_millis(200);
    let joins: Vec<_> = [35u64, 5, 25, 15, 45, 10, 1, 30]
        .into_iter()
        .map(|ms| {
            let order = order.clone();
            rt.handle()
                .spawn_pinned(0, async move {
                    let deadline = base + Duration::from_millis(ms);
                    let mut sleep = std::pin::pin!(sleep_until(deadline));
                    let pending_at_first = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(sleep.as_mut().poll(cx).is_pending())
                    })
                    .await;
                    sleep.await;
                    let late = Instant::now().saturating_duration_since(deadline);
                    assert!(Instant::now() >= deadline, "timer {ms} ms fired early");
                    order.lock().push(ms);
                    (pending_at_first, late)
                })
                .unwrap()
        })
        .collect();
    let results: Vec<(bool, Duration)> =
        joins.into_iter().map(|j| rt.block_on(j).unwrap()).collect();
    if results.iter().any(|(pending, _)| !pending) {
        return None;
    }
    for (_, late) in results {
        assert!(late < Duration::from_secs(1), "a timer fired {late:?} late");
    }
    let order = order.lock().clone();
    Some(order)
}

#[test]
fn one_hundred_thousand_pending_timers_all_fire() {
    let rt = common::runtime(2);
    let start = Instant::now();
    let joins: Vec<_> = (0..100_000u64)
        .map(|i| {
            rt.handle()
                .spawn_pinned((i % 2) as usize, async move {
                    let d = start + Duration::from_millis(200 + i % 300);
                    sleep_until(d).await;
                    Instant::now() >= d
                })
                .unwrap()
        })
        .collect();
    let all_on_time = rt.block_on(async {
        let mut ok = true;
        for j in joins {
            ok &= j.await.unwrap();
        }
        ok
    });
    assert!(all_on_time, "some timer fired before its deadline");
}

#[test]
fn timeout_gives_elapsed_for_a_slow_future_and_the_value_for_a_fast_one() {
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let slow = timeout(Duration::from_millis(5), sleep(Duration::from_secs(60))).await;
            let fast = timeout(Duration::from_secs(60), async { 4 }).await;
            (slow.is_err(), fast)
        })
        .unwrap();
    assert_eq!(rt.block_on(j).unwrap(), (true, Ok(4)));
}

#[test]
fn interval_ticks_once_per_period() {
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut i = interval(Duration::from_millis(10));
            let t0 = i.tick().await;
            let mut last = t0;
            for _ in 0..5 {
                last = i.tick().await;
            }
            (last - t0, Instant::now() >= last)
        })
        .unwrap();
    let (span, reached) = rt.block_on(j).unwrap();
    assert_eq!(
        span,
        Duration::from_millis(50),
        "ticks are scheduled on the period grid"
    );
    assert!(reached);
}

#[test]
fn interval_skip_drops_missed_ticks() {
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut i = interval(Duration::from_millis(5));
            i.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let t0 = i.tick().await;
            std::thread::sleep(Duration::from_millis(23)); // miss four ticks
            let t1 = i.tick().await; // late tick, delivered at once
            let t2 = i.tick().await; // next tick on the grid after now
            (t1 - t0, t2 - t0)
        })
        .unwrap();
    let (first, second) = rt.block_on(j).unwrap();
    assert_eq!(first, Duration::from_millis(5));
    assert!(
        second >= Duration::from_millis(25),
        "missed ticks were not skipped: {second:?}"
    );
}

#[test]
fn timers_work_off_any_shard_through_the_fallback_timer() {
    let rt = common::runtime(1);
    let t = Instant::now();
    rt.block_on(sleep(Duration::from_millis(10)));
    assert!(t.elapsed() >= Duration::from_millis(10));
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = tokio_rt.block_on(timeout(
        Duration::from_millis(5),
        std::future::pending::<()>(),
    ));
    assert!(r.is_err());
}

/// A sleep registered on shard 0, moved to and dropped on another thread:
/// its removal is posted to shard 0, which keeps working.
#[test]
fn sleep_dropped_on_another_thread_is_removed_by_its_shard() {
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut s = Box::pin(sleep(Duration::from_secs(3600)));
            std::future::poll_fn(|cx| {
                assert!(s.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            Some(s) // moved out, still registered on shard 0
        })
        .unwrap();
    let registered = rt.block_on(j).unwrap().unwrap();
    std::thread::spawn(move || drop(registered)).join().unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            sleep(Duration::from_millis(2)).await;
            1
        })
        .unwrap();
    assert_eq!(rt.block_on(j).unwrap(), 1);
}

use std::future::Future;

/// Regression: a deadline past the wheel's ~795-day horizon made the shard
/// re-process one slot forever, stalling every task on it.
#[test]
fn sleeping_for_duration_max_does_not_stall_the_shard() {
    let rt = common::runtime(1);
    let forever = rt
        .handle()
        .spawn_pinned(0, async {
            sleep(Duration::from_millis(3)).await; // move the wheel off zero
            sleep(Duration::MAX).await
        })
        .unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            sleep(Duration::from_millis(10)).await;
            timeout(Duration::MAX, async { 5 }).await
        })
        .unwrap();
    let r = rt.block_on(timeout(Duration::from_secs(10), j));
    assert_eq!(r.expect("the shard stalled").unwrap(), Ok(5));
    assert!(!forever.is_finished());
}

/// An interval with a period near `Duration::MAX` (every behaviour for
/// missed ticks): its first tick is immediate, and computing the next one
/// used to overflow `Instant` and panic.
#[test]
fn an_interval_of_duration_max_ticks_once_without_panicking() {
    let rt = common::runtime(1);
    for missed in [
        MissedTickBehavior::Burst,
        MissedTickBehavior::Delay,
        MissedTickBehavior::Skip,
    ] {
        let out = rt.block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let mut i = interval(Duration::MAX);
                    i.set_missed_tick_behavior(missed);
                    i.tick().await;
                    // The second tick is decades away.
                    ringlane::time::timeout(Duration::from_millis(20), i.tick())
                        .await
                        .is_err()
                })
                .unwrap(),
        );
        assert!(matches!(out, Ok(true)), "{missed:?}: {out:?}");
    }
}

/// An interval of 20 ms with `Delay` whose task is busy for 30 ms: its
/// second tick comes about 10 ms late, and the next is due one period after
/// that (Tokio's rule). It used to keep the old grid unless a whole period
/// was missed, so the third tick came only 10 ms after the late one.
#[test]
fn a_delayed_interval_restarts_one_period_after_a_late_tick() {
    let rt = common::runtime(1);
    let (first, third) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async {
                    let mut i = interval(Duration::from_millis(20));
                    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    let first = i.tick().await;
                    std::thread::sleep(Duration::from_millis(30)); // the task is busy
                    i.tick().await; // late
                    (first, i.tick().await)
                })
                .unwrap(),
        )
        .unwrap();
    // The late tick was taken 30 ms or more after `first`.
    assert!(
        third - first >= Duration::from_millis(50),
        "the third tick was scheduled {:?} after the first",
        third - first
    );
}

/// A task moves its pending sleep's deadline and then waits on something
/// else, without polling the sleep again (a heartbeat pushed back from
/// another branch). Tokio re-arms a reset sleep with the waker it has, so
/// the task is woken at the new deadline; ours was disarmed until its next
/// poll, which never came.
#[test]
fn a_reset_sleep_wakes_its_task_without_being_polled_again() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    struct ResetThenWait {
        sleep: Pin<Box<ringlane::time::Sleep>>,
        reset: bool,
    }
    impl Future for ResetThenWait {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.reset {
                return self.sleep.as_mut().poll(cx);
            }
            assert!(self.sleep.as_mut().poll(cx).is_pending());
            let soon = Instant::now() + Duration::from_millis(20);
            self.sleep.as_mut().reset(soon);
            self.reset = true;
            Poll::Pending // not polling the sleep again
        }
    }
    let rt = common::runtime(1);
    let took = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async {
                    let start = Instant::now();
                    let wait = ResetThenWait {
                        sleep: Box::pin(sleep(Duration::from_secs(60))),
                        reset: false,
                    };
                    // The outer timeout's own wake-up would end the wait too,
                    // but only after 5 s.
                    timeout(Duration::from_secs(5), wait).await.unwrap();
                    start.elapsed()
                })
                .unwrap(),
        )
        .unwrap();
    assert!(
        took < Duration::from_secs(4),
        "the reset sleep did not wake its task ({took:?})"
    );
}
