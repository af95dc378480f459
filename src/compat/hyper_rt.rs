//! hyper's runtime traits backed by ringlane (feature `hyper`): with
//! [`HyperExecutor`] and [`HyperTimer`], hyper needs no Tokio runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::Handle;
use crate::time::Sleep;

/// Spawns hyper's background tasks (HTTP/2 connection drivers, client
/// connection tasks) on the shard that asks, or round-robin across shards
/// when asked from outside the runtime.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let exec = ringlane::compat::HyperExecutor::new(rt.handle());
/// hyper::rt::Executor::execute(&exec, async {});
/// ```
#[derive(Debug, Clone)]
pub struct HyperExecutor {
    handle: Handle,
}

impl HyperExecutor {
    /// An executor spawning onto `handle`'s runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use hyper::rt::Executor;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let exec = ringlane::compat::HyperExecutor::new(rt.handle());
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// exec.execute(async move { tx.send(ringlane::current_shard()).unwrap() });
    /// assert_eq!(rx.recv().unwrap(), Some(0));
    /// ```
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

impl<F> hyper::rt::Executor<F> for HyperExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        // The current shard only if it belongs to this executor's runtime:
        // another runtime's shard index may not exist here.
        let placement = match self.handle.current_shard_here() {
            Some(i) => crate::Placement::Pinned(i),
            None => crate::Placement::RoundRobin,
        };
        // A runtime shutting down refuses new tasks; hyper's task (a
        // connection driver) is dropped, which closes the connection.
        drop(self.handle.spawn_with(placement, fut));
    }
}

/// hyper's timer (timeouts, keep-alive) on ringlane's timer wheels.
///
/// # Examples
///
/// ```
/// use hyper::rt::Timer;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let t0 = std::time::Instant::now();
/// rt.block_on(ringlane::compat::HyperTimer.sleep(std::time::Duration::from_millis(5)));
/// assert!(t0.elapsed() >= std::time::Duration::from_millis(5));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperTimer;

/// A ringlane [`Sleep`] as hyper's `Sleep`.
struct HyperSleep(Sleep);

impl Future for HyperSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: std::time::Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(crate::time::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(mut ours) => ours.0.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}
