//! `Tracked`: the wrapper around every task's future. It registers the task
//! in its shard's registry on first poll (invariant 2), removes it when the
//! future is dropped, and turns a panic in `poll` into a `JoinError`
//! (invariant 4).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::JoinError;
use crate::context;

pub(super) struct Tracked<F> {
    future: F,
    /// The registry slot, once polled on a shard.
    slot: Option<usize>,
}

impl<F> Tracked<F> {
    pub(super) fn new(future: F) -> Self {
        Self { future, slot: None }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = Result<F::Output, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `self` and `Tracked` has no `Unpin` impl that would allow it; `slot`
        // is plain data and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if this.slot.is_none() {
            this.slot = context::with_current(|cx_shard| {
                cx_shard.registry.borrow_mut().insert(cx.waker().clone())
            });
        }
        // SAFETY: see above; `future` stays where it is for the task's life.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(JoinError::panic(payload))),
        }
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            // Invariant 1 puts us on the owning shard, whose registry holds `slot`.
            context::with_current(|cx| cx.registry.borrow_mut().remove(slot));
        }
    }
}
