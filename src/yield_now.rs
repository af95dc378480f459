//! `yield_now`: give other tasks on the shard a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields once to the shard's scheduler: the task goes to the back of the
/// run queue and resumes after the tasks ahead of it, and after its shard
/// has looked at its mailbox (spawns and `call_on`s from elsewhere), its
/// timers and its ring, as a Tokio task that yields resumes after the
/// driver.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     ringlane::yield_now().await;
///     1
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), 1);
/// ```
pub async fn yield_now() {
    YieldNow(false).await
}

struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        // The mailbox, timers and ring come before this task runs again
        // (coop invariant 7).
        crate::executor::coop::yielded();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
