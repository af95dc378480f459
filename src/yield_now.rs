//! `yield_now`: give other tasks on the shard a turn.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Yields once to the shard's scheduler: the task goes to the back of the
/// run queue and resumes after the tasks ahead of it.
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
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
