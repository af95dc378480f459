//! Timers where they meet other threads: wakers dropped by a deferred
//! removal, sleeps polled again after their deadline before any tick, and
//! deadlines reset from a busy shard or another runtime (sleep rules 3 to
//! 5), plus the 4096 ms wheel-level edge and a shut-down runtime's timers
//! used from Tokio.
//!
//! Every test holds this file's `SERIAL` lock: one stalls the process-wide
//! off-shard timer thread on purpose, others hold a shard in a long poll.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ringlane::time::{Sleep, interval, sleep, sleep_until, timeout};

use common::LIMIT;
use common::lifecycle::{ReleaseOnDrop, within};
use common::native_io::{Held, poll_once};
use common::stealers::{holds_within, report_of};
use common::timer_logs::{Log, logged, new_log, noop_waker, poll_with, rec_waker, until_logged};

static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn serial() -> parking_lot::MutexGuard<'static, ()> {
    SERIAL.lock()
}

const MS: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------
// 1. A stealable task's sleep while the shard that armed it is blocked
// ---------------------------------------------------------------------------

/// A waker whose state owns another `Sleep` (a task's state held by its
/// waker, as hand-rolled executors do): dropping the last clone drops it.
struct OwnsASleep(
    #[allow(dead_code, reason = "held to be dropped with the waker")] Mutex<Option<Sleep>>,
);

impl Wake for OwnsASleep {
    fn wake(self: Arc<Self>) {}
    fn wake_by_ref(self: &Arc<Self>) {}
}

/// Registers on shard 0 an inner sleep (250 ms, a recording waker) owned
/// by the waker of an outer 60 s sleep, also registered on shard 0; returns
/// the inner deadline and the outer sleep, handed out of its task.
fn inner_owned_by_outer_waker(rt: &ringlane::Runtime, idx: usize, log: &Log) -> (Instant, Sleep) {
    let log = log.clone();
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut inner = sleep(Duration::from_millis(250));
            let inner_deadline = inner.deadline();
            let inner_pending = poll_with(&mut inner, &rec_waker(idx, &log)).is_pending();
            let owner = Waker::from(Arc::new(OwnsASleep(Mutex::new(Some(inner)))));
            let mut outer = sleep(Duration::from_secs(60));
            let outer_pending = poll_with(&mut outer, &owner).is_pending();
            drop(owner); // now held by `outer` and by shard 0's wheel only
            (inner_pending && outer_pending, inner_deadline, Held(outer))
        })
        .unwrap();
    let (pending, inner_deadline, Held(outer)) =
        common::join_within(rt, j, LIMIT, "registering the two sleeps");
    assert!(
        pending,
        "a 250 ms or 60 s sleep was ready at its first poll"
    );
    (inner_deadline, outer)
}

/// Case A: the outer sleep is dropped on a plain thread while shard 0 is
/// held, so its removal runs on shard 0 after the sleep (and its own waker
/// clone) are gone. Case B: the same, but the outer sleep is moved to shard
/// 1 and polled there (it re-registers on shard 1 and replaces its waker).
/// In both, shard 0's removal drops the last clone of the owning waker,
/// which drops the inner sleep, registered on shard 0.
///
/// Expected: the inner sleep is gone, so its waker is never woken (no
/// runtime wakes the waker of a dropped timer), and shard 0 keeps serving
/// timers.
#[test]
fn a_waker_dropped_by_a_deferred_timer_removal_can_drop_another_sleep_of_that_shard() {
    let _g = serial();
    let rt = common::runtime(2);
    let (log_a, log_b) = (new_log(), new_log());

    // A: dropped on another thread.
    let (deadline_a, outer) = inner_owned_by_outer_waker(&rt, 0, &log_a);
    let hold = common::block_shard(&rt, 0);
    let guard = ReleaseOnDrop(hold.release_flag());
    std::thread::spawn(move || drop(outer)).join().unwrap();
    drop(guard);
    common::join_within(&rt, hold.release(), LIMIT, "releasing shard 0 (A)");

    // B: moved to shard 1 and polled there.
    let (deadline_b, outer) = inner_owned_by_outer_waker(&rt, 1, &log_b);
    let hold = common::block_shard(&rt, 0);
    let guard = ReleaseOnDrop(hold.release_flag());
    let moved = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut outer = outer;
            let pending = poll_once(&mut outer).await;
            (pending, Held(outer))
        })
        .unwrap();
    let moved = rt.block_on(timeout(LIMIT, moved));
    drop(guard);
    common::join_within(&rt, hold.release(), LIMIT, "releasing shard 0 (B)");
    let (moved_pending, Held(outer_on_1)) = moved
        .expect("shard 1 never polled the moved sleep")
        .unwrap();
    assert!(moved_pending, "the moved 60 s sleep completed");

    // Let shard 0's wheel pass both inner deadlines (proves it still fires).
    let past = deadline_a.max(deadline_b) + Duration::from_millis(100);
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            sleep_until(past).await;
            Instant::now()
        })
        .unwrap();
    let at = common::join_within(&rt, j, LIMIT, "a later timer on shard 0");
    assert!(at >= past);
    std::thread::sleep(Duration::from_millis(30));
    let (woken_a, woken_b) = (logged(&log_a), logged(&log_b));
    drop(outer_on_1);
    let report = within(Duration::from_secs(10), "shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    assert_eq!(
        woken_a, 0,
        "A: a sleep dropped together with the waker that owned it was still fired by shard \
         0's wheel: the outer sleep's removal, posted from the thread that dropped it, \
         dropped the last clone of that waker inside the wheel's borrow (wheel.rs:180); the \
         inner sleep's own removal then hit `already borrowed` and its entry stayed armed"
    );
    assert_eq!(
        woken_b, 0,
        "B: the same when the outer sleep moved to shard 1 (its re-registration replaced its \
         own waker clone, leaving shard 0's wheel the last one)"
    );
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 3. and 4. An elapsed timer polled again must be ready
// ---------------------------------------------------------------------------

/// Spins (inside a poll: no yielding) until `deadline` has passed by 2 ms.
fn spin_past(deadline: Instant) {
    while Instant::now() < deadline + 2 * MS {
        std::hint::spin_loop();
    }
}

/// Inside one poll: asks `ready` every millisecond for up to 300 ms;
/// whether it became ready.
fn ready_within_300ms(
    cx: &mut Context<'_>,
    mut ready: impl FnMut(&mut Context<'_>) -> bool,
) -> bool {
    let give_up = Instant::now() + Duration::from_millis(300);
    loop {
        if ready(cx) {
            return true;
        }
        if Instant::now() >= give_up {
            return false;
        }
        std::thread::sleep(MS);
    }
}

/// A task arms a 20 ms sleep, a 20 ms interval tick and a 20 ms timeout
/// on its shard (each polled once, pending), then, in a later poll that
/// lasts past their deadlines (a CPU-bound loop that checks its deadline
/// with a poll, as `now_or_never` does), polls each again every ms for
/// 300 ms. Control: the same sleep off the shards.
///
/// Expected (sleep.rs:101-103: once the deadline has passed "a poll then
/// completes within a millisecond"; `is_elapsed()` is true throughout):
/// each is ready at once.
#[test]
fn an_elapsed_timer_is_ready_when_polled_again_in_the_poll_that_outlasted_it() {
    let _g = serial();
    // Control, off the shards (the fallback timer thread fires it).
    let mut s = sleep(Duration::from_millis(20));
    let noop = noop_waker();
    assert!(poll_with(&mut s, &noop).is_pending());
    let mut cx = Context::from_waker(&noop);
    spin_past(s.deadline());
    let off_ready = ready_within_300ms(&mut cx, |cx| Pin::new(&mut s).poll(cx).is_ready());
    assert!(
        off_ready,
        "control: an elapsed off-shard sleep stayed pending for 300 ms"
    );

    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            // A sleep.
            let mut s = sleep(Duration::from_millis(20));
            let armed = poll_once(&mut s).await;
            let d = s.deadline();
            let sleep_case = std::future::poll_fn(|cx| {
                spin_past(d);
                let elapsed = s.is_elapsed();
                let ready = ready_within_300ms(cx, |cx| Pin::new(&mut s).poll(cx).is_ready());
                Poll::Ready((ready, elapsed))
            })
            .await;
            // An interval's second tick.
            let mut i = interval(Duration::from_millis(20));
            let t0 = i.tick().await;
            let armed_i =
                std::future::poll_fn(|cx| Poll::Ready(i.poll_tick(cx).is_pending())).await;
            let interval_case = std::future::poll_fn(|cx| {
                spin_past(t0 + 20 * MS);
                Poll::Ready(ready_within_300ms(cx, |cx| i.poll_tick(cx).is_ready()))
            })
            .await;
            // A timeout of a future that never completes.
            let mut t = timeout(Duration::from_millis(20), std::future::pending::<()>());
            let td = Instant::now() + 20 * MS; // not before the timeout's deadline
            let armed_t = poll_once(&mut t).await;
            let timeout_case = std::future::poll_fn(|cx| {
                spin_past(td);
                Poll::Ready(ready_within_300ms(cx, |cx| {
                    Pin::new(&mut t).poll(cx).is_ready()
                }))
            })
            .await;
            (
                armed && armed_i && armed_t,
                sleep_case,
                interval_case,
                timeout_case,
            )
        })
        .unwrap();
    let (armed, (sleep_ready, sleep_elapsed), interval_ready, timeout_ready) =
        common::join_within(&rt, j, LIMIT, "the long polls");
    let report = within(Duration::from_secs(10), "shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    assert!(armed, "a 20 ms timer was ready at its first poll");
    assert!(
        sleep_elapsed,
        "is_elapsed() was false 2 ms after the deadline"
    );
    assert!(
        sleep_ready,
        "a sleep whose deadline passed 2-300 ms ago (is_elapsed() true) stayed Pending on every \
         poll within the task poll that outlasted it: a poll asks the shard's wheel, which is \
         only advanced at the next tick, never the clock"
    );
    assert!(
        interval_ready,
        "an interval tick due 2-300 ms ago stayed Pending within the same task poll"
    );
    assert!(
        timeout_ready,
        "a timeout due 2-300 ms ago stayed Pending (no Elapsed) within the same task poll"
    );
    assert!(report.is_clean(), "{report:?}");
}

/// Sleeps in its `wake` (a foreign waker that takes a contended lock, or
/// does blocking work).
struct SlowWaker {
    entered: AtomicBool,
    left: AtomicBool,
    stall: Duration,
}

impl Wake for SlowWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.entered.store(true, Ordering::SeqCst);
        std::thread::sleep(self.stall);
        self.left.store(true, Ordering::SeqCst);
    }
}

/// Off the shards, sleep A (5 ms) has a waker that takes 600 ms to wake;
/// sleep B (40 ms) a no-op one. While the timer thread is inside A's wake,
/// B's deadline passes; B is then polled every ms for up to 300 ms.
///
/// Expected (sleep.rs:101-103, as for test 3): B is ready at once; an
/// unrelated slow waker must not hold an elapsed sleep pending.
#[test]
fn an_elapsed_off_shard_sleep_is_ready_while_the_timer_thread_runs_a_slow_waker() {
    let _g = serial();
    let slow = Arc::new(SlowWaker {
        entered: AtomicBool::new(false),
        left: AtomicBool::new(false),
        stall: Duration::from_millis(600),
    });
    let slow_waker = Waker::from(slow.clone());
    let mut a = sleep(Duration::from_millis(5));
    assert!(poll_with(&mut a, &slow_waker).is_pending());
    let noop = noop_waker();
    let mut b = sleep(Duration::from_millis(40));
    assert!(poll_with(&mut b, &noop).is_pending());
    let entered = holds_within(Duration::from_secs(3), || {
        slow.entered.load(Ordering::SeqCst)
    });
    let mut cx = Context::from_waker(&noop);
    spin_past(b.deadline());
    let elapsed = b.is_elapsed();
    let ready = ready_within_300ms(&mut cx, |cx| Pin::new(&mut b).poll(cx).is_ready());
    let still_stalled = !slow.left.load(Ordering::SeqCst);
    // Leave the timer thread free for whatever runs next.
    let freed = holds_within(Duration::from_secs(3), || slow.left.load(Ordering::SeqCst));
    drop(a);
    assert!(entered, "setup: the timer thread never woke the 5 ms sleep");
    assert!(freed, "setup: the slow waker never returned");
    assert!(elapsed, "is_elapsed() was false 2 ms after the deadline");
    assert!(
        ready,
        "an off-shard sleep whose deadline had passed (is_elapsed() true) stayed Pending for \
         300 ms{}: a poll asks the fallback map, which only the timer thread fires, never the \
         clock",
        if still_stalled {
            " while the process-wide timer thread was busy in another timer's slow waker"
        } else {
            ""
        }
    );
}

// ---------------------------------------------------------------------------
// 5. and 6. A shared deadline reset from elsewhere
// ---------------------------------------------------------------------------

type SharedSleep = Arc<Mutex<Sleep>>;

/// A watchdog pinned on shard 0 of `h`'s runtime awaiting `shared` (polled
/// through the mutex); the receiver gets a message after each poll.
fn watchdog(
    h: &ringlane::Handle,
    shared: SharedSleep,
) -> (ringlane::JoinHandle<Instant>, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    let j = h
        .spawn_pinned(0, async move {
            std::future::poll_fn(|cx| {
                let r = Pin::new(&mut *shared.lock().unwrap()).poll(cx);
                let _ = tx.send(());
                r
            })
            .await;
            Instant::now()
        })
        .unwrap();
    (j, rx)
}

/// An idle-connection watchdog on shard 0 waits on a shared 1 h deadline;
/// shard 0 parks. The deadline is moved to 50 ms from now:
/// (a) from a plain thread, (b) from a task on shard 1 that then ends,
/// (c) from a task on shard 1 that then computes (spins) for up to 3 s.
///
/// Expected (Tokio: `reset` re-registers in the runtime's one driver, which
/// fires it on time whoever is busy): in each case the watchdog wakes at
/// the new deadline, never before; in (c) while shard 1 is still busy.
#[test]
fn a_deadline_reset_from_a_shard_that_then_stays_busy_still_wakes_its_waiter() {
    let _g = serial();
    let rt = common::runtime(2);
    let h = rt.handle();
    let fresh = || -> SharedSleep { Arc::new(Mutex::new(sleep(Duration::from_secs(3600)))) };

    // (a) and (b): controls.
    for from_shard in [false, true] {
        let shared = fresh();
        let (wd, polled) = watchdog(&h, shared.clone());
        report_of(&polled, "the watchdog's first poll");
        common::until_parked(&h, 0);
        let d = Instant::now() + Duration::from_millis(50);
        if from_shard {
            let s = shared.clone();
            let j = h
                .spawn_pinned(1, async move { s.lock().unwrap().reset(d) })
                .unwrap();
            common::join_within(&rt, j, LIMIT, "the reset on shard 1");
        } else {
            let s = shared.clone();
            std::thread::spawn(move || s.lock().unwrap().reset(d))
                .join()
                .unwrap();
        }
        let at = common::join_within(&rt, wd, LIMIT, "the watchdog (control)");
        assert!(at >= d, "the watchdog fired {:?} early", d - at);
    }

    // (c): reset on shard 1, which then stays busy.
    let shared = fresh();
    let (wd, polled) = watchdog(&h, shared.clone());
    report_of(&polled, "the watchdog's first poll");
    common::until_parked(&h, 0);
    let release = Arc::new(AtomicBool::new(false));
    let guard = ReleaseOnDrop(release.clone());
    let started = Arc::new(AtomicBool::new(false));
    let d = Instant::now() + Duration::from_millis(50);
    let (s, rel, st) = (shared.clone(), release.clone(), started.clone());
    let busy = h
        .spawn_pinned(1, async move {
            s.lock().unwrap().reset(d);
            st.store(true, Ordering::SeqCst);
            let end = Instant::now() + Duration::from_secs(3);
            while !rel.load(Ordering::Acquire) && Instant::now() < end {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let began = holds_within(LIMIT, || started.load(Ordering::SeqCst));
    let woke_while_busy = holds_within(Duration::from_millis(1500), || wd.is_finished());
    drop(guard);
    common::join_within(&rt, busy, LIMIT, "the busy task on shard 1");
    let at = common::join_within(&rt, wd, LIMIT, "the watchdog");
    let report = within(Duration::from_secs(10), "shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    assert!(began, "setup: the task on shard 1 never ran");
    assert!(at >= d, "the watchdog fired {:?} early", d - at);
    assert!(
        woke_while_busy,
        "a watchdog on idle shard 0 whose deadline was moved to 50 ms by a task on shard 1 \
         was not woken in 1.5 s, while that task kept shard 1 busy: reset re-armed the \
         timer in shard 1's wheel (the caller's), which nothing advances during the poll"
    );
    assert!(report.is_clean(), "{report:?}");
}

/// The watchdog waits on runtime A's shard 0; a task of runtime B moves the
/// deadline to 300 ms from now, and B is then shut down (gracefully, with
/// nothing left to run).
///
/// Expected: the watchdog wakes at the new deadline. The timer must not
/// live and die in B's wheel: A's task would never be woken.
#[test]
fn a_deadline_reset_on_another_runtimes_shard_is_not_lost_when_that_runtime_shuts_down() {
    let _g = serial();
    let rt = common::runtime(1);
    let other = common::runtime(1);
    let shared: SharedSleep = Arc::new(Mutex::new(sleep(Duration::from_secs(3600))));
    let (wd, polled) = watchdog(&rt.handle(), shared.clone());
    report_of(&polled, "the watchdog's first poll");
    let d = Instant::now() + Duration::from_millis(300);
    let s = shared.clone();
    let j = other
        .handle()
        .spawn_pinned(0, async move { s.lock().unwrap().reset(d) })
        .unwrap();
    common::join_within(&other, j, LIMIT, "the reset on the other runtime");
    let other_report = within(
        Duration::from_secs(10),
        "the other runtime's shutdown",
        move || other.shutdown(Duration::from_secs(5)),
    );
    let shut_by = Instant::now();
    let out = rt.block_on(timeout(Duration::from_secs(3), wd));
    let report = within(Duration::from_secs(10), "shutdown", move || {
        rt.shutdown(Duration::from_millis(200))
    });
    assert!(other_report.is_clean(), "{other_report:?}");
    assert!(
        shut_by < d,
        "setup: the other runtime took until after the new deadline to shut down"
    );
    let at = out
        .expect(
            "a watchdog whose deadline was moved by a task of another runtime was never woken \
             once that runtime shut down: the timer was armed in that runtime's wheel and left \
             with its shard",
        )
        .unwrap();
    assert!(at >= d, "the watchdog fired {:?} early", d - at);
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 7. Timers of a shut-down runtime: reset off-shard, ticked in Tokio
// ---------------------------------------------------------------------------

/// A sleep (60 s) and an interval (30 ms, second tick armed) registered on
/// shard 0; the runtime shuts down. The sleep is reset to 40 ms from now on
/// a plain thread (no runtime there), then awaited in a Tokio multi-thread
/// task, which then takes two more interval ticks.
///
/// Expected: no panic, no hang; the reset sleep does not read as elapsed
/// after the reset and completes at or after its new deadline; the interval
/// keeps its grid (t0 + 30 ms, t0 + 60 ms) and never ticks early.
#[test]
fn timers_of_a_shut_down_runtime_can_be_reset_off_shard_and_tick_in_tokio() {
    let _g = serial();
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let mut s = sleep(Duration::from_secs(60));
            let a = poll_once(&mut s).await;
            let mut i = interval(Duration::from_millis(30));
            let t0 = i.tick().await;
            let b = std::future::poll_fn(|cx| Poll::Ready(i.poll_tick(cx).is_pending())).await;
            (a && b, t0, Held((s, i)))
        })
        .unwrap();
    let (armed, t0, Held((mut s, mut i))) = common::join_within(&rt, j, LIMIT, "registering");
    assert!(
        armed,
        "a 60 s sleep or a 30 ms tick was ready at its first poll"
    );
    let report = within(Duration::from_secs(10), "shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    assert!(report.is_clean(), "{report:?}");

    let d = Instant::now() + Duration::from_millis(40);
    let (s, elapsed_after_reset) = within(
        Duration::from_secs(5),
        "reset on a plain thread",
        move || {
            s.reset(d);
            let e = s.is_elapsed();
            (s, e)
        },
    );
    assert!(
        !elapsed_after_reset,
        "a sleep reset 40 ms ahead read as elapsed"
    );
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = tokio_rt.block_on(async move {
        tokio::time::timeout(
            LIMIT,
            tokio::spawn(async move {
                s.await;
                let at = Instant::now();
                let t1 = i.tick().await;
                let t2 = i.tick().await;
                (at, t1, t2, Instant::now())
            }),
        )
        .await
    });
    tokio_rt.shutdown_timeout(LIMIT);
    let (at, t1, t2, end) = out
        .expect("timers of a shut-down runtime hung in a Tokio task")
        .expect("the Tokio task panicked");
    assert!(at >= d, "the reset sleep fired {:?} early", d - at);
    assert_eq!(t1, t0 + 30 * MS, "the interval left its grid");
    assert_eq!(t2, t0 + 60 * MS, "the interval left its grid");
    assert!(end >= t2, "a tick came before its instant");
}

// ---------------------------------------------------------------------------
// 8. The 4096 ms wheel edge
// ---------------------------------------------------------------------------

/// On a fresh one-shard runtime (the wheel's origin lies between `before`
/// and `after`, the instants around `build`): timers 1 ms apart whose
/// deadlines straddle 4096 ms of wheel time (level 1 slot 63 / level 2
/// slot 1), all armed at once near the start; and three sleepers of one
/// deadline (about 4150 ms) armed near the start (level 2), at about 4060
/// ms (same level-2 slot, before it cascades) and at about 4115 ms (after
/// the cascade, level 0).
///
/// Expected: every timer fires at or after its deadline, the straddling
/// ones in deadline order, once each; the three sleepers in the order they
/// were armed.
#[test]
fn timers_straddling_the_4096_ms_level_edge_fire_in_order_and_stay_fifo_across_its_cascade() {
    let _g = serial();
    let before = Instant::now();
    let rt = common::runtime(1);
    let after = Instant::now();
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let log = new_log();
            let mut deadlines = Vec::new();
            let mut sleeps = Vec::new();
            let mut d = before + Duration::from_millis(4088);
            while d <= after + Duration::from_millis(4104) {
                let mut s = sleep_until(d);
                if poll_with(&mut s, &rec_waker(deadlines.len(), &log)).is_ready() {
                    return None;
                }
                sleeps.push(s);
                deadlines.push(d);
                d += MS;
            }
            let edge = deadlines.len();
            let same = after + Duration::from_millis(4150);
            let mut s0 = sleep_until(same);
            if poll_with(&mut s0, &rec_waker(edge, &log)).is_ready() {
                return None;
            }
            sleep_until(after + Duration::from_millis(4060)).await;
            let mut s1 = sleep_until(same);
            let p1 = poll_with(&mut s1, &rec_waker(edge + 1, &log)).is_pending();
            sleep_until(after + Duration::from_millis(4115)).await;
            let mut s2 = sleep_until(same);
            let p2 = poll_with(&mut s2, &rec_waker(edge + 2, &log)).is_pending();
            sleep_until(same + Duration::from_millis(40)).await;
            let want = edge + 1 + usize::from(p1) + usize::from(p2);
            let all = until_logged(&log, want).await;
            let fired = log.lock().unwrap().clone();
            drop((sleeps, s0, s1, s2));
            Some((deadlines, same, fired, p1, p2, all, want))
        })
        .unwrap();
    let out = common::join_within(&rt, j, Duration::from_secs(15), "the 4096 ms timers");
    let report = within(Duration::from_secs(10), "shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    let Some((deadlines, same, fired, p1, p2, all, want)) = out else {
        panic!("setup: a timer 4 s ahead was ready at its first poll");
    };
    assert!(
        all,
        "only {} of {want} timers fired: {fired:?}",
        fired.len()
    );
    let edge = deadlines.len();
    let mut edge_order = Vec::new();
    let mut sleeper_order = Vec::new();
    for &(i, at) in &fired {
        if i < edge {
            assert!(
                at >= deadlines[i],
                "edge timer {i} fired {:?} early",
                deadlines[i] - at
            );
            edge_order.push(i);
        } else {
            assert!(
                at >= same,
                "sleeper {} fired {:?} early",
                i - edge,
                same - at
            );
            sleeper_order.push(i - edge);
        }
    }
    assert_eq!(
        edge_order,
        (0..edge).collect::<Vec<_>>(),
        "timers 1 ms apart across the 4096 ms wheel edge fired out of deadline order (or \
         not exactly once)"
    );
    let mut expected = vec![0];
    if p1 {
        expected.push(1);
    }
    if p2 {
        expected.push(2);
    }
    assert_eq!(
        sleeper_order, expected,
        "sleepers of one deadline, armed before the level-2 slot, just before its cascade and \
         after it, resumed out of the order they were armed in"
    );
    assert!(report.is_clean(), "{report:?}");
}
