//! Shard statistics that count what each shard did and outlive the
//! runtime; timers at zero and huge durations, anywhere.

mod common;

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::Error;
use ringlane::time::{interval, interval_at, sleep, sleep_until, timeout};

use common::lifecycle::*;
use common::{LIMIT, wait_until};

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
