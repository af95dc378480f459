//! The deadline of the `native::timeout` a poll runs under (a thread-local
//! set around the inner poll), and `DeadlineTimer`: how a wait that is not
//! an op in the kernel (room in the ring for an op, the next item of a
//! multishot stream, a buffer for a receive) is bounded by it (op
//! invariants 7 and 8). Ops in the kernel carry a linked timeout instead.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::time::Sleep;

thread_local! {
    /// The deadline of ops submitted by the future being polled now
    /// (set by `native::timeout` around its inner poll).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The deadline of the `native::timeout` the calling poll runs under.
#[inline]
pub(crate) fn current_deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

/// Runs `f` (a poll) with ops it submits bounded by `deadline`, or by an
/// enclosing deadline if that is earlier.
pub(crate) fn with_deadline<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    let outer = DEADLINE.with(Cell::get);
    let effective = outer.map_or(deadline, |o| o.min(deadline));
    under(Some(effective), f)
}

/// Runs `f` (a poll) with no deadline on the ops it submits: for an op
/// kept across waits, each bounded in user space by the deadline of the
/// poll that waits (a `DeadlineTimer`), not by the first one's.
pub(crate) fn without_deadline<R>(f: impl FnOnce() -> R) -> R {
    under(None, f)
}

/// Runs `f` with `deadline` as the current one, restoring the one before
/// afterwards (also on unwind).
fn under<R>(deadline: Option<Instant>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(DEADLINE.with(|d| d.replace(deadline)));
    f()
}

/// A timer kept across the polls of one wait. It follows the deadline each
/// poll runs under: replaced when that deadline changes (an op polled under
/// another `native::timeout` after a `select!` dropped the first), dropped
/// when there is none.
#[derive(Debug, Default)]
pub(crate) struct DeadlineTimer(Option<Sleep>);

impl DeadlineTimer {
    /// `Ready(TimedOut)` once the deadline of the `native::timeout` the
    /// calling poll runs under has passed; `Pending` before it (`cx` is
    /// woken then) or without one.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        self.poll_until(current_deadline(), cx)
    }

    /// As [`poll`](Self::poll), for a deadline the caller worked out.
    pub(crate) fn poll_until(
        &mut self,
        deadline: Option<Instant>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Error> {
        let Some(deadline) = deadline else {
            self.0 = None;
            return Poll::Pending;
        };
        let timer = match &mut self.0 {
            Some(t) if t.deadline() == deadline => t,
            slot => slot.insert(crate::time::sleep_until(deadline)),
        };
        match Pin::new(timer).poll(cx) {
            Poll::Ready(()) => {
                self.0 = None;
                Poll::Ready(io::ErrorKind::TimedOut.into())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The wait ended: its timer goes.
    #[inline]
    pub(crate) fn clear(&mut self) {
        if self.0.is_some() {
            self.0 = None;
        }
    }
}
