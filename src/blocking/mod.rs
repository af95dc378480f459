//! Blocking closures (`spawn_blocking`): a pool of plain threads beside
//! the shards, for work that would stall a shard's loop (a blocking
//! library call, a long computation, a name lookup), as Tokio's blocking
//! pool is beside its workers (ADR 0020).
//!
//! Invariants:
//! 1. A closure is an `async-task` task like any other (its `JoinHandle`,
//!    `AbortHandle` and `JoinError` are the shards' own), routed
//!    `Route::Blocking`, and runs on a pool thread, never on a shard. It is
//!    handed to the pool once, at its spawn (`push_new`), and stays
//!    scheduled until its only poll (its future is ready then), so the
//!    schedule function's `Route::Blocking` arm is never reached in
//!    practice; an abort before the start is seen through the abort flag
//!    when a pool thread runs the task. It is never in a shard's registry
//!    (task invariant 2): shutdown counts it through the pool.
//! 2. Threads start on demand, up to `Builder::max_blocking_threads`;
//!    beyond that closures queue, oldest first. A thread idle for
//!    `Builder::thread_keep_alive` exits.
//! 3. A push claims an idle thread by moving it from `idle` to `wakeups`
//!    before it notifies, and a waking thread takes a wake-up if there is
//!    one, else counts itself out of `idle`: two pushes in a row never
//!    count on the same idle thread (the second starts a thread instead),
//!    and a spurious or timed-out wake-up loses no claim (whichever thread
//!    takes it runs the queue).
//! 4. Shutdown refuses new closures at once (`Error::Shutdown`) and lets
//!    queued and running ones go on until its deadline (a task finishing in
//!    the grace period may await them); then it cancels those never
//!    started. A closure cannot be interrupted: one still running at the
//!    deadline is left to finish on its detached thread and counted in the
//!    report. A shutdown called from a closure does not wait for itself.
//! 5. A pool thread has its runtime entered (`Handle::current`,
//!    `ringlane::spawn` work in a closure) and Tokio's, if the builder was
//!    given a Tokio handle.
//! 6. A closure runs with the cooperative budget lifted (coop invariant
//!    1): its whole run is one poll of its task, so a budget it spent (a
//!    nested `block_on` receiving from a channel) would never come back.

mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub(crate) use pool::BlockingPool;

use crate::error::Error;
use crate::executor::JoinHandle;
use crate::shard::Shared;

/// Tokio's default: enough threads that closures waiting on one another
/// (or on slow devices) rarely queue behind each other.
pub(crate) const DEFAULT_MAX_THREADS: usize = 512;

/// Tokio's default keep-alive of an idle blocking thread.
pub(crate) const DEFAULT_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `f` on `shared`'s blocking pool (invariant 1).
pub(crate) fn spawn<F, R>(shared: &Arc<Shared>, f: F) -> Result<JoinHandle<R>, Error>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    if shared.is_shutting_down() {
        return Err(Error::Shutdown);
    }
    let (runnable, join) = crate::executor::spawn_blocking(Closure(Some(f)), shared.clone());
    // Queued, or refused under the pool's lock if shutdown began since:
    // never accepted and then dropped unseen by the shutdown's count.
    match shared.blocking.push_new(runnable, shared) {
        Ok(()) => Ok(join),
        Err((refused, error)) => {
            drop(refused); // never started: cancelled
            Err(match error {
                None => Error::Shutdown,
                Some(e) => Error::start_step("starting a blocking-pool thread", e),
            })
        }
    }
}

/// A closure as a future: it runs at the first poll.
struct Closure<F>(Option<F>);

impl<F> Unpin for Closure<F> {}

impl<F: FnOnce() -> R, R> Future for Closure<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        let f = self.0.take().expect("a blocking closure is polled once");
        // Invariant 6: no budget for the closure's own polls.
        Poll::Ready(crate::executor::coop::without_budget(f))
    }
}
