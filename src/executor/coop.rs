//! The cooperative budget: a task whose channel, timer, socket or join
//! handle is always ready must still give its shard back now and then, or
//! nothing else on that shard (tasks, timers, I/O, `call_on`) would run.
//! The rule is Tokio's: a budget of ready operations per poll.
//!
//! Invariants:
//! 1. Each poll of a ringlane task (`Tracked::poll`) starts with
//!    [`BUDGET`] units and restores the previous budget when it returns, so
//!    a nested poll (a task polled inside another's `block_on`) has its own
//!    and the shard loop itself is never constrained. Outside ringlane
//!    tasks ringlane's budget is unconstrained.
//! 2. A ringlane resource that is about to report progress first asks
//!    [`poll_proceed`]. An exhausted budget makes it wake its task and
//!    return `Pending` *before* doing anything, so nothing is taken, lost or
//!    reordered: the next poll (after the tasks queued behind it) does it.
//! 3. A unit is spent only when the resource reports progress
//!    ([`Proceed::made_progress`]); an operation that ends `Pending` anyway
//!    gets its unit back when the guard drops. The channel's `recv` and
//!    `send` use the guard-free form ([`take_unit`], [`settle`]): the guard's
//!    drop glue cost the one-shard ping-pong about 20 ns per round trip.
//!    There, outside ringlane tasks, the attempt only looks at Tokio's
//!    budget and `settle` spends the unit on progress: a pending `recv`
//!    polled in a Tokio task costs it nothing, as Tokio's own resources
//!    (`a_pending_recv_or_send_spends_no_tokio_budget`).
//! 4. Polled outside a ringlane task (in a Tokio task, say), the same
//!    resources ask Tokio's budget instead (`tokio::task::coop::poll_proceed`),
//!    so they cooperate with Tokio's scheduler as Tokio's own resources
//!    do. Inside a ringlane task Tokio's budget is not looked at: no Tokio
//!    scheduler polls there, so it is always unconstrained. `Runtime::block_on`
//!    polls its future unconstrained by Tokio's budget, which nothing
//!    would refill while it blocks.
//! 5. A `timeout` whose future spent the budget polls its delay
//!    unconstrained, so its deadline is still seen (Tokio's rule).
//! 6. A task whose poll spent the whole budget has woken itself; its shard
//!    ends the tick's task loop there, so the mailbox (`call_on`, hand-offs),
//!    timers and the ring are serviced before that task is polled again (as
//!    Tokio defers a task that yielded for its budget until after its
//!    driver). Without this, the tick re-polled it up to `Builder::budget`
//!    times in a row.
//! 7. A task that yields (`yield_now`) ends the tick's task loop the same
//!    way: Tokio runs a yielded task again only after its driver, and a
//!    shard that re-polled it in the same tick left a spawn or `call_on`
//!    from elsewhere waiting about 64 yields
//!    (`a_yield_now_loop_lets_spawns_call_ons_and_stealables_from_another_thread_in_within_a_few_yields`).
//!
//! As with Tokio, a nested executor that polls a ringlane resource in a
//! loop inside a task (`futures::executor::block_on` on a shard) spins
//! once the budget is spent: the budget returns only when the task's poll
//! does. Blocking a shard that way was never supported.

use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll};

/// Ready operations a task may see in one poll (Tokio's figure).
pub(crate) const BUDGET: u8 = 128;

thread_local! {
    /// The budget left to the task being polled on this thread (`None`:
    /// unconstrained, outside any ringlane task poll).
    static LEFT: Cell<Option<u8>> = const { Cell::new(None) };
}

/// Gives the poll about to run a fresh budget (invariant 1); the previous
/// one comes back when the guard drops, also on unwind.
pub(crate) fn start_poll() -> Restore {
    Restore(LEFT.with(|l| l.replace(Some(BUDGET))))
}

/// Runs `f` with ringlane's budget lifted: for a blocking closure, whose
/// whole run is one poll of its task, so a budget spent inside it (a
/// nested `block_on` receiving from a channel) would never come back and
/// every later operation would yield forever. Tokio's blocking tasks stop
/// its budget the same way.
pub(crate) fn without_budget<R>(f: impl FnOnce() -> R) -> R {
    let _restore = Restore(LEFT.with(|l| l.replace(None)));
    f()
}

/// The budget of the enclosing poll, put back on drop.
pub(crate) struct Restore(Option<u8>);

impl Drop for Restore {
    fn drop(&mut self) {
        LEFT.with(|l| {
            if l.get() == Some(0) {
                SPENT.with(|s| s.set(true));
            }
            l.set(self.0);
        });
    }
}

thread_local! {
    /// A task poll on this thread ended with its budget spent (invariant 6).
    static SPENT: Cell<bool> = const { Cell::new(false) };
}

/// The ringlane task being polled yields (invariant 7): its shard ends
/// the tick once the poll returns, as for a spent budget.
pub(crate) fn yielded() {
    if LEFT.with(Cell::get).is_some() {
        SPENT.with(|s| s.set(true));
    }
}

/// Whether the task poll that just returned spent its whole budget, or
/// yielded (and forgets it): the shard then ends its tick before polling
/// it again (invariants 6 and 7).
pub(crate) fn take_spent() -> bool {
    SPENT.with(|s| s.replace(false))
}

/// Permission to make progress, taken out of the budget (invariant 3: the
/// unit comes back on drop unless [`Proceed::made_progress`] was called).
#[must_use]
pub(crate) struct Proceed {
    /// Ours before the unit was taken (`None`: nothing to give back).
    ours: Cell<Option<u8>>,
    /// Tokio's, outside ringlane tasks (invariant 4).
    tokio: Option<tokio::task::coop::RestoreOnPending>,
}

impl Proceed {
    /// The operation made progress: the unit stays spent.
    pub(crate) fn made_progress(&self) {
        self.ours.set(None);
        if let Some(tokio) = &self.tokio {
            tokio.made_progress();
        }
    }
}

impl Drop for Proceed {
    fn drop(&mut self) {
        if let Some(before) = self.ours.get() {
            LEFT.with(|l| l.set(Some(before)));
        }
    }
}

/// Takes a unit of the current task's budget, or, with none left, wakes
/// the task and returns `Pending` (invariant 2).
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Proceed> {
    let ours = LEFT.with(|l| match l.get() {
        None => Ok(None),
        Some(0) => Err(()),
        Some(n) => {
            l.set(Some(n - 1));
            Ok(Some(n))
        }
    });
    match ours {
        Err(()) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Ok(Some(before)) => Poll::Ready(Proceed {
            ours: Cell::new(Some(before)),
            tokio: None,
        }),
        // Outside ringlane tasks: Tokio's budget (it arranges the wake-up
        // when it is out).
        Ok(None) => tokio::task::coop::poll_proceed(cx).map(|tokio| Proceed {
            ours: Cell::new(None),
            tokio: Some(tokio),
        }),
    }
}

/// A unit taken by [`take_unit`]: plain data (no drop glue), for the
/// channel's hottest paths.
#[derive(Clone, Copy)]
pub(crate) enum Unit {
    /// Ours, spent already, with the budget as it was before.
    Ours(u8),
    /// Outside a ringlane task: Tokio's budget had a unit, not spent yet
    /// (Tokio's guard is not plain data, so it was given back at once).
    Tokio,
}

/// As [`poll_proceed`], without a guard: hand the unit and whether the
/// operation made progress to [`settle`].
#[inline]
pub(crate) fn take_unit(cx: &mut Context<'_>) -> Poll<Unit> {
    match LEFT.with(Cell::get) {
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(n) => {
            LEFT.with(|l| l.set(Some(n - 1)));
            Poll::Ready(Unit::Ours(n))
        }
        None => take_tokio_unit(cx),
    }
}

/// Looks at Tokio's budget without spending it: with none left Tokio
/// wakes the task and the operation yields.
#[inline(never)]
fn take_tokio_unit(cx: &mut Context<'_>) -> Poll<Unit> {
    // Dropped without `made_progress`: the unit goes back.
    tokio::task::coop::poll_proceed(cx).map(|_restore| Unit::Tokio)
}

/// Ends the operation a [`take_unit`] began: ringlane's unit comes back if
/// it made no progress (`progress` false: it returns `Pending`), and
/// Tokio's is spent only if it did.
#[inline]
pub(crate) fn settle(unit: Unit, progress: bool, cx: &mut Context<'_>) {
    match unit {
        Unit::Ours(before) if !progress => LEFT.with(|l| l.set(Some(before))),
        Unit::Tokio if progress => spend_tokio_unit(cx),
        _ => {}
    }
}

#[inline(never)]
fn spend_tokio_unit(cx: &mut Context<'_>) {
    // `take_tokio_unit` saw a unit in this same poll, and nothing has
    // spent one since, so this is `Ready`.
    if let Poll::Ready(restore) = tokio::task::coop::poll_proceed(cx) {
        restore.made_progress();
    }
}

/// Takes a unit of the ringlane task's budget for an operation that may
/// finish at once (an inline completion, `op/inline.rs`): the budget as it
/// was, or `None` outside a ringlane task poll or with none left (then
/// the operation takes its usual, waking path). Give the unit back with
/// [`refund_unit`] if it did not finish.
#[inline]
pub(crate) fn spend_unit() -> Option<u8> {
    LEFT.with(|l| match l.get() {
        Some(n) if n > 0 => {
            l.set(Some(n - 1));
            Some(n)
        }
        _ => None,
    })
}

/// Gives back the unit [`spend_unit`] took (the budget was `before`).
#[inline]
pub(crate) fn refund_unit(before: u8) {
    LEFT.with(|l| l.set(Some(before)));
}

/// Whether the current task may still make progress: ringlane's budget
/// (if polled in a ringlane task) and Tokio's (if in a Tokio task).
pub(crate) fn has_budget_remaining() -> bool {
    match LEFT.with(Cell::get) {
        Some(left) => left > 0,
        None => tokio::task::coop::has_budget_remaining(),
    }
}

/// Polls `f` with both budgets lifted (a timeout's own delay, once the
/// future it bounds has spent the budget).
pub(crate) fn unconstrained<R>(
    cx: &mut Context<'_>,
    f: impl FnOnce(&mut Context<'_>) -> Poll<R>,
) -> Poll<R> {
    let _restore = Restore(LEFT.with(|l| l.replace(None)));
    let mut f = Some(f);
    let lifted = tokio::task::coop::unconstrained(std::future::poll_fn(|cx| {
        (f.take().expect("polled once"))(cx)
    }));
    std::pin::pin!(lifted).poll(cx)
}

/// Polls `f` under the budget: with none left the task yields without
/// calling it; a unit is spent only if it returns `Ready`.
pub(crate) fn budgeted<R>(
    cx: &mut Context<'_>,
    f: impl FnOnce(&mut Context<'_>) -> Poll<R>,
) -> Poll<R> {
    let coop = std::task::ready!(poll_proceed(cx));
    let r = f(cx);
    if r.is_ready() {
        coop.made_progress();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_poll_gets_budget_units_then_yields_with_a_wake_and_unspent_units_come_back() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        // Outside a task poll: unconstrained.
        for _ in 0..1000 {
            let Poll::Ready(p) = poll_proceed(&mut cx) else {
                panic!("unconstrained outside a task poll");
            };
            p.made_progress();
        }
        let outer = start_poll();
        for _ in 0..BUDGET {
            let Poll::Ready(p) = poll_proceed(&mut cx) else {
                panic!("yielded before the budget was spent");
            };
            p.made_progress();
        }
        assert!(poll_proceed(&mut cx).is_pending());
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the yield wakes the task"
        );
        {
            // A nested poll has its own budget, and the outer one (spent)
            // comes back after it.
            let _inner = start_poll();
            let p = poll_proceed(&mut cx);
            assert!(p.is_ready());
            drop(p); // no progress: the unit comes back
            assert_eq!(LEFT.with(Cell::get), Some(BUDGET));
        }
        assert!(poll_proceed(&mut cx).is_pending());
        drop(outer);
        assert_eq!(LEFT.with(Cell::get), None);
    }
}
