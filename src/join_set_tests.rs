//! `JoinSet`'s wake-ups and budget (invariants 1 to 3), polled by hand.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::JoinSet;
use crate::executor::coop;
use crate::test_hook::KeyedHook;

/// Run right after a member's poll returned `Pending`, on the polling
/// thread, for one test's set.
static AFTER_MEMBER_PENDING: KeyedHook = KeyedHook::new();

pub(super) fn after_member_pending(set: usize) {
    AFTER_MEMBER_PENDING.run(set);
}

#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Expected (Tokio): a task added after `poll_join_next` returned `Pending`
/// wakes the waiter (its insertion does), even while older tasks never
/// finish, and the next poll returns its result.
///
/// Why it may fail: its key was queued without a wake-up, and its join
/// handle had no waker of the set's until the set polled it: nobody was
/// woken by its finish (a "reap, then refill" driver hung).
#[test]
fn a_task_added_after_a_pending_poll_wakes_the_waiter() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let mut set = JoinSet::new();
    set.spawn_pinned(0, std::future::pending::<u32>(), &h)
        .unwrap();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(set.poll_join_next(&mut cx).is_pending());
    let before = count.0.load(Ordering::SeqCst);
    let added = set.spawn_pinned(0, async { 7 }, &h).unwrap();
    wait_for("the added task", || added.is_finished());
    assert!(
        count.0.load(Ordering::SeqCst) > before,
        "the waiter was never told of the added task"
    );
    assert!(matches!(
        set.poll_join_next(&mut cx),
        Poll::Ready(Some(Ok(7)))
    ));
}

/// Expected (Tokio): `try_join_next` leaves the waiter of the last
/// `poll_join_next` in place, so a task finishing later still wakes it.
///
/// Why it may fail: `try_join_next` polled with a no-op waker, which
/// replaced the registered one; the finish woke the no-op.
#[test]
fn try_join_next_leaves_the_waiter_registered() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let mut set = JoinSet::new();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let gated = set.insert(h.spawn_blocking(move || rx.recv().map(|_| 1)).unwrap());
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(set.poll_join_next(&mut cx).is_pending());
    assert!(set.try_join_next().is_none());
    let before = count.0.load(Ordering::SeqCst);
    tx.send(()).unwrap();
    wait_for("the gated closure", || gated.is_finished());
    wait_for("the waiter's wake-up", || {
        count.0.load(Ordering::SeqCst) > before
    });
}

/// Expected: with the task's budget spent, `poll_join_next` yields at once
/// (its caller is woken) without polling any member. And `try_join_next`,
/// which cannot yield, drains
/// every finished task whatever the budget (Tokio runs it unconstrained).
///
/// Why it may fail: each call swept every queued member even with no
/// budget left, each join handle yielding and re-queueing itself: joining
/// N finished tasks cost N² / 128 member polls; and `try_join_next` gave
/// `None` once the budget was out, with finished tasks left.
#[test]
fn a_spent_budget_yields_without_polling_members_and_try_join_next_ignores_it() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let mut set = JoinSet::new();
    let handles: Vec<_> = (0..300u32)
        .map(|i| set.spawn_pinned(0, async move { i }, &h).unwrap())
        .collect();
    wait_for("the tasks", || handles.iter().all(|a| a.is_finished()));
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let budget = coop::start_poll();
    while let Poll::Ready(unit) = coop::take_unit(&mut cx) {
        coop::settle(unit, true, &mut cx); // spent, as by progress
    }
    let woken = count.0.load(Ordering::SeqCst);
    assert!(set.poll_join_next(&mut cx).is_pending());
    assert_eq!(set.member_polls, 0, "members polled with no budget left");
    assert!(
        count.0.load(Ordering::SeqCst) > woken,
        "the caller must be woken"
    );
    let mut drained = 0;
    while let Some(r) = set.try_join_next() {
        r.unwrap();
        drained += 1;
    }
    drop(budget);
    assert_eq!(drained, 300, "try_join_next stopped early");
    assert!(set.is_empty());
}

/// Expected: a task that finishes right after the set polled it (its
/// poll returned `Pending`, the set has not returned yet) wakes the set's
/// waiter, and the next poll returns its result.
///
/// Why it may fail: if the member's queued mark were cleared after its
/// poll instead of before, this finish would find the mark still set and
/// queue nothing: the set would never look at that task again.
#[test]
fn a_task_finishing_right_after_its_poll_is_not_lost() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let mut set = JoinSet::new();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let gated = set.insert(h.spawn_blocking(move || rx.recv().map(|_| 9)).unwrap());
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    AFTER_MEMBER_PENDING.set(Arc::as_ptr(&set.ready) as usize, move || {
        tx.send(()).unwrap();
        wait_for("the gated closure", || gated.is_finished());
    });
    assert!(set.poll_join_next(&mut cx).is_pending());
    wait_for("the waiter's wake-up", || {
        count.0.load(Ordering::SeqCst) > 0
    });
    assert!(matches!(
        set.poll_join_next(&mut cx),
        Poll::Ready(Some(Ok(Ok(9))))
    ));
}
