//! Timer order and deadlines, held to Tokio's behaviour.
//!
//! - Timers due in the same tick fire in the order they were registered.
//! - `Sleep::is_elapsed` is true once the deadline has passed, polled or not.
//! - Timers armed on a long-idle wheel never fire early and keep their order
//!   across the wheel's level boundaries; a reset sleep never fires early,
//!   whether it had fired, completed or moved shards; a sleep moved between
//!   shards and off the shards is neither early nor late.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringlane::time::{sleep, sleep_until, timeout};

use common::LIMIT;
use common::native_io::{Held, poll_once};
use common::timer_logs::*;

/// `N` sleeps registered one after the other in the same tick, all due at
/// the same instant (and, in a second part, due a few microseconds apart in
/// registration order, so registration order is also deadline order),
/// must be fired in registration order, and tasks that went to sleep until
/// one instant in order must resume in that order.
///
/// That is what Tokio does (its wheel pushes at the front of a slot and
/// pops from the back, also when cascading) and what ringlane's own
/// fallback timer does off the shards (a heap ordered by deadline, then
/// id). It is checked off the shards first, as a control.
///
/// The bug it pins (fixed): the shard wheel links a new entry at the head of its slot
/// (wheel.rs:199) and fires a slot from its head (wheel.rs:265-272): timers
/// placed directly in a level-0 slot fire newest first, so a batch of
/// same-instant sleepers resumes in reverse, and of two timers 20 µs apart
/// in the same millisecond the later one fires first.
#[test]
fn timers_due_in_the_same_tick_fire_in_the_order_they_were_registered() {
    let expected: Vec<usize> = (0..N).collect();

    // Control: off any shard (the fallback timer thread).
    for step in [Duration::ZERO, Duration::from_micros(20)] {
        let mut checked = false;
        for _ in 0..3 {
            let log = new_log();
            let base = Instant::now() + Duration::from_millis(30);
            let Some(sleeps) = register_in_order(base, step, &log) else {
                continue;
            };
            assert!(
                until_logged_blocking(&log, N),
                "off-shard: only {} of {N} timers fired",
                logged(&log)
            );
            assert_eq!(
                indices(&log),
                expected,
                "off-shard timers {step:?} apart fired out of registration order"
            );
            drop(sleeps);
            checked = true;
            break;
        }
        assert!(
            checked,
            "off-shard: a 30 ms sleep was due at its first poll"
        );
    }

    let rt = common::runtime(1);
    // On a shard: the wakers' order.
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let same = same_tick_rounds_on_shard(Duration::ZERO).await;
            let spaced = same_tick_rounds_on_shard(Duration::from_micros(20)).await;
            (same, spaced)
        })
        .unwrap();
    let (same, spaced) = common::join_within(&rt, j, LIMIT, "same-tick timer rounds");
    assert!(
        same.len() >= 2 && spaced.len() >= 2,
        "too few rounds where every timer was pending at its first poll: {} and {}",
        same.len(),
        spaced.len()
    );

    // On a shard: tasks that go to sleep until one instant, in order.
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut rounds = Vec::new();
            for _ in 0..5 {
                sleep(Duration::from_millis(1)).await;
                let order = Arc::new(Mutex::new(Vec::new()));
                let t = Instant::now() + Duration::from_millis(8);
                let joins: Vec<_> = (0..N)
                    .map(|i| {
                        let order = order.clone();
                        // Local children are queued in order and all first
                        // polled in the same tick as the next runnable work.
                        ringlane::spawn_local(async move {
                            let mut s = sleep_until(t);
                            let pending = poll_once(&mut s).await;
                            s.await;
                            order.lock().unwrap().push(i);
                            pending
                        })
                        .unwrap()
                    })
                    .collect();
                let mut all_pending = true;
                for j in joins {
                    all_pending &= j.await.unwrap();
                }
                if all_pending {
                    let got = order.lock().unwrap().clone();
                    rounds.push(got);
                }
            }
            rounds
        })
        .unwrap();
    let tasks = common::join_within(&rt, j, LIMIT, "same-instant sleeper rounds");

    for (i, got) in same.iter().enumerate() {
        assert_eq!(
            got, &expected,
            "round {i}: {N} timers due at the same instant were fired in this order on a \
             shard; Tokio (and ringlane off the shards) fire them in registration order"
        );
    }
    for (i, got) in spaced.iter().enumerate() {
        assert_eq!(
            got, &expected,
            "round {i}: timers 20 µs apart, registered in deadline order, were fired in \
             this order on a shard: a later deadline fired before an earlier one"
        );
    }
    assert!(
        tasks.len() >= 2,
        "too few valid sleeper rounds: {}",
        tasks.len()
    );
    for (i, got) in tasks.iter().enumerate() {
        assert_eq!(
            got, &expected,
            "round {i}: tasks that went to sleep until the same instant in order 0..{N} \
             resumed in this order"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. is_elapsed once the timer fired
// ---------------------------------------------------------------------------

/// A sleep polled once (registered), whose timer then fires (its waker is
/// called), is elapsed: `Sleep::is_elapsed` must say so before the next
/// poll, as Tokio's does (`!might_be_registered()` once the driver fired
/// it), since a task may check it instead of polling (a deadline read
/// between two other awaits). On a shard and off the shards.
///
/// The bug it pins (fixed): `is_elapsed` (sleep.rs:109-110) is true only in
/// `Registration::Done`, which only a poll sets.
#[test]
fn a_sleep_reads_as_elapsed_once_its_timer_fired_even_before_its_next_poll() {
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let log = new_log();
            // Long enough that a descheduled shard does not outlast it
            // before the first poll.
            let mut s = sleep(Duration::from_millis(300));
            let pending = poll_with(&mut s, &rec_waker(0, &log)).is_pending();
            let woken = until_logged(&log, 1).await;
            let elapsed_before_poll = s.is_elapsed();
            let ready = !poll_once(&mut s).await;
            (
                pending,
                woken,
                elapsed_before_poll,
                ready,
                s.is_elapsed(),
                Instant::now() >= s.deadline(),
            )
        })
        .unwrap();
    let (pending, woken, on_shard, ready, after_poll, past) =
        common::join_within(&rt, j, LIMIT, "a sleep on a shard");
    assert!(pending, "a 300 ms sleep was ready at its first poll");
    assert!(woken, "the shard never fired the sleep's timer");
    assert!(past && ready && after_poll);

    // Off any shard: the fallback timer thread fires it.
    let log = new_log();
    let mut s = sleep(Duration::from_millis(300));
    assert!(poll_with(&mut s, &rec_waker(0, &log)).is_pending());
    assert!(
        until_logged_blocking(&log, 1),
        "the fallback timer never fired"
    );
    let off_shard = s.is_elapsed();
    assert!(poll_with(&mut s, &noop_waker()).is_ready());

    assert!(
        on_shard,
        "on a shard: the wheel fired the sleep (its waker ran, its deadline passed) but \
         is_elapsed() is false until it is polled again; Tokio's is true once fired"
    );
    assert!(
        off_shard,
        "off the shards: the fallback timer fired the sleep but is_elapsed() is false \
         until it is polled again"
    );
}

// ---------------------------------------------------------------------------
// 3. A stealable task's timers while the shard holding them is blocked
// ---------------------------------------------------------------------------

/// The shard's wheel advances its clock only while it holds timers
/// (core.rs:190-194): after 150 ms with none, a batch of timers is placed
/// relative to a stale clock, on level 1, and must cascade correctly. The
/// deadlines straddle the 64 ms slot boundaries (and are at least 1 ms
/// apart, so each has a tick of its own). Each must fire at or after its
/// deadline, within a generous bound, and in deadline order.
#[test]
fn timers_armed_on_a_long_idle_wheel_fire_never_early_and_in_order_across_level_boundaries() {
    const OFFSETS_US: [u64; 16] = [
        2_000, 3_100, 62_600, 63_700, 64_800, 65_900, 127_200, 128_300, 129_400, 191_100, 192_200,
        255_500, 256_600, 257_700, 320_100, 383_900,
    ];
    for attempt in 0..3 {
        let rt = common::runtime(1);
        // Nothing on the wheel: its clock stays where it started.
        std::thread::sleep(Duration::from_millis(150));
        let j = rt
            .handle()
            .spawn_pinned(0, async {
                let log = new_log();
                let base = Instant::now();
                let mut sleeps = Vec::new();
                let mut deadlines = Vec::new();
                for (i, us) in OFFSETS_US.iter().enumerate() {
                    let d = base + Duration::from_micros(*us);
                    let mut s = sleep_until(d);
                    if poll_with(&mut s, &rec_waker(i, &log)).is_ready() {
                        return None; // the machine stalled: retry
                    }
                    sleeps.push(s);
                    deadlines.push(d);
                }
                sleep_until(*deadlines.last().unwrap() + Duration::from_millis(30)).await;
                let all = until_logged(&log, OFFSETS_US.len()).await;
                let fired = log.lock().unwrap().clone();
                drop(sleeps);
                Some((deadlines, fired, all))
            })
            .unwrap();
        let Some((deadlines, fired, all)) =
            common::join_within(&rt, j, LIMIT, "timers on a stale wheel")
        else {
            assert!(
                attempt < 2,
                "the first timer was due at its first poll three times"
            );
            continue;
        };
        assert!(
            all,
            "only {} of {} timers fired: {fired:?}",
            fired.len(),
            OFFSETS_US.len()
        );
        for &(i, at) in &fired {
            assert!(
                at >= deadlines[i],
                "timer {i} (+{} µs) fired {:?} early",
                OFFSETS_US[i],
                deadlines[i] - at
            );
            let lateness = at - deadlines[i];
            assert!(
                lateness < Duration::from_secs(1),
                "timer {i} (+{} µs) fired {lateness:?} late",
                OFFSETS_US[i]
            );
        }
        let order: Vec<usize> = fired.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            order,
            (0..OFFSETS_US.len()).collect::<Vec<_>>(),
            "timers with distinct ticks fired out of deadline order"
        );
        let report = rt.shutdown(Duration::from_secs(5));
        assert!(report.is_clean(), "{report:?}");
        return;
    }
}

// ---------------------------------------------------------------------------
// 5. Sleep::reset edges
// ---------------------------------------------------------------------------

/// `Sleep::reset` (Tokio: "can be called both before and after the future
/// has completed"): a sleep whose timer fired but which was not polled, one
/// that completed, one registered an hour out and reset to 25 ms, one reset
/// to an instant far past the wheel's horizon and back, and one reset into
/// the past. Then a sleep registered on shard 0, moved to shard 1 and reset
/// there without being polled first (its stored waker is the shard-0
/// task's), while shard 0 is blocked.
///
/// Expected: each completes at or after its new deadline, promptly; a reset
/// sleep does not read as elapsed; a reset into the past is ready at the
/// next poll; the far reset does not complete; the cross-shard reset fires
/// on shard 1 while shard 0 is still blocked.
#[test]
fn a_reset_sleep_never_fires_early_whether_it_had_fired_completed_or_moved_shards() {
    let rt = common::runtime(2);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut out: Vec<(&'static str, Instant, Instant, bool)> = Vec::new();
            // Fired in the wheel, never polled since: reset later.
            let mut s = sleep(Duration::from_millis(200));
            assert!(poll_once(&mut s).await, "a 200 ms sleep was ready at once");
            sleep(Duration::from_millis(250)).await; // its timer fires meanwhile
            let d = Instant::now() + Duration::from_millis(40);
            s.reset(d);
            let looked_elapsed = s.is_elapsed();
            (&mut s).await;
            out.push((
                "fired, unpolled, then reset",
                d,
                Instant::now(),
                looked_elapsed,
            ));
            // Completed: reset later.
            let d = Instant::now() + Duration::from_millis(30);
            s.reset(d);
            let looked_elapsed = s.is_elapsed();
            (&mut s).await;
            out.push(("completed, then reset", d, Instant::now(), looked_elapsed));
            // An hour out (a high wheel level), reset to 25 ms.
            let mut far = sleep(Duration::from_secs(3600));
            assert!(poll_once(&mut far).await);
            let d = Instant::now() + Duration::from_millis(25);
            far.reset(d);
            (&mut far).await;
            out.push(("an hour out, reset to 25 ms", d, Instant::now(), false));
            // Past the horizon (a real far Instant, not the 30-year clamp) and back.
            let mut x = sleep(Duration::from_millis(10));
            assert!(poll_once(&mut x).await);
            x.reset(far_instant());
            let stayed = timeout(Duration::from_millis(40), &mut x).await.is_err();
            let d = Instant::now() + Duration::from_millis(20);
            x.reset(d);
            (&mut x).await;
            out.push(("far past the horizon, then back", d, Instant::now(), false));
            // Into the past: ready at the next poll.
            let mut p = sleep(Duration::from_secs(60));
            assert!(poll_once(&mut p).await);
            p.reset(
                Instant::now()
                    .checked_sub(Duration::from_millis(1))
                    .unwrap_or_else(Instant::now),
            );
            let ready_at_once = !poll_once(&mut p).await;
            (out, stayed, ready_at_once)
        })
        .unwrap();
    let (out, stayed, ready_at_once) = common::join_within(&rt, j, LIMIT, "reset cases");
    for (what, deadline, at, looked_elapsed) in out {
        assert!(at >= deadline, "{what}: fired {:?} early", deadline - at);
        assert!(
            at - deadline < Duration::from_secs(2),
            "{what}: fired {:?} late",
            at - deadline
        );
        assert!(
            !looked_elapsed,
            "{what}: read as elapsed right after the reset"
        );
    }
    assert!(
        stayed,
        "a sleep reset to a far instant completed within 40 ms"
    );
    assert!(
        ready_at_once,
        "a sleep reset into the past was not ready at its next poll"
    );

    // Registered on shard 0, reset on shard 1 (not polled first) while
    // shard 0 is blocked.
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut s = sleep(Duration::from_secs(60));
            let pending = poll_once(&mut s).await;
            (pending, Held(s))
        })
        .unwrap();
    let (pending, Held(s)) = common::join_within(&rt, j, LIMIT, "registering on shard 0");
    assert!(pending);
    let hold = common::block_shard(&rt, 0);
    let j = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut s = s;
            let d = Instant::now() + Duration::from_millis(40);
            s.reset(d);
            s.await;
            (d, Instant::now())
        })
        .unwrap();
    let moved = rt.block_on(timeout(Duration::from_secs(3), j));
    common::join_within(&rt, hold.release(), LIMIT, "releasing shard 0");
    let (d, at) = moved
        .expect("a sleep reset on shard 1 never fired while shard 0 was blocked")
        .unwrap();
    assert!(at >= d, "the moved reset fired {:?} early", d - at);
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 6. A sleep moved between wheels and the fallback
// ---------------------------------------------------------------------------

/// One sleep is polled alternately on shard 0, shard 1 and the test thread
/// (the fallback timer), twelve hops, then awaited on shard 0: it must
/// never complete before its deadline and must complete promptly after it.
/// A second sleep registered on shard 0, whose deadline then passes while
/// shard 0 is blocked, must be ready at once when polled on shard 1 and off
/// the shards (its registration on the blocked shard cannot hold it).
#[test]
fn a_sleep_moved_between_both_shards_and_off_shard_is_never_early_nor_late() {
    let rt = common::runtime(2);
    let deadline = Instant::now() + Duration::from_millis(600);
    let mut s = sleep_until(deadline);
    let noop = noop_waker();
    let hops = [
        Some(0),
        None,
        Some(1),
        Some(0),
        None,
        None,
        Some(1),
        Some(1),
        Some(0),
        None,
        Some(1),
        Some(0),
    ];
    for hop in hops {
        let polled_at = Instant::now();
        let pending = match hop {
            Some(shard) => {
                let j = rt
                    .handle()
                    .spawn_pinned(shard, async move {
                        let pending = poll_once(&mut s).await;
                        (pending, Held(s))
                    })
                    .unwrap();
                let (pending, Held(back)) = common::join_within(&rt, j, LIMIT, "a hop");
                s = back;
                pending
            }
            None => poll_with(&mut s, &noop).is_pending(),
        };
        if !pending {
            assert!(
                Instant::now() >= deadline,
                "completed on hop {hop:?} (polled {:?} before its deadline)",
                deadline.saturating_duration_since(polled_at)
            );
        }
    }
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            s.await;
            Instant::now()
        })
        .unwrap();
    let at = common::join_within(&rt, j, LIMIT, "the moved sleep");
    assert!(at >= deadline, "fired {:?} early", deadline - at);
    assert!(
        at - deadline < Duration::from_secs(2),
        "fired {:?} late",
        at - deadline
    );

    // A registration on a blocked shard, past its deadline.
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut a = sleep(Duration::from_millis(100));
            let mut b = sleep(Duration::from_millis(100));
            let pending = poll_once(&mut a).await && poll_once(&mut b).await;
            (pending, Held((a, b)))
        })
        .unwrap();
    let (pending, Held((a, mut b))) = common::join_within(&rt, j, LIMIT, "registering");
    assert!(pending);
    let hold = common::block_shard(&rt, 0);
    std::thread::sleep(Duration::from_millis(150));
    let j = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut a = a;
            !poll_once(&mut a).await
        })
        .unwrap();
    let on_shard_1 = rt.block_on(timeout(Duration::from_secs(3), j));
    let off_shard = poll_with(&mut b, &noop).is_ready();
    common::join_within(&rt, hold.release(), LIMIT, "releasing shard 0");
    assert!(
        on_shard_1.expect("shard 1 never answered").unwrap(),
        "a due sleep registered on blocked shard 0 was not ready when polled on shard 1"
    );
    assert!(
        off_shard,
        "a due sleep registered on blocked shard 0 was not ready when polled off the shards"
    );
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 7. Nested native timeouts
// ---------------------------------------------------------------------------
