//! `timeout`: run a future with a deadline.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::{Sleep, sleep};

/// The error of a [`Timeout`] whose deadline passed first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let r = rt.block_on(ringlane::time::timeout(Duration::from_millis(1), std::future::pending::<()>()));
/// let e: ringlane::time::Elapsed = r.unwrap_err();
/// assert_eq!(e.to_string(), "deadline has elapsed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// A future with a deadline; created by [`timeout`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let fast = ringlane::time::timeout(Duration::from_secs(5), async { 3 });
/// assert_eq!(rt.block_on(fast), Ok(3));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    future: F,
    delay: Sleep,
}

/// Runs `future`, giving up with [`Elapsed`] once `duration` has passed.
/// The future is polled first, so a ready future never times out.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let h = rt.handle().spawn_pinned(0, async {
///     ringlane::time::timeout(Duration::from_millis(2), ringlane::time::sleep(Duration::from_secs(60))).await
/// }).unwrap();
/// assert!(rt.block_on(h).unwrap().is_err());
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        delay: sleep(duration),
    }
}

/// Runs `future` until `deadline` (Tokio's `timeout_at`): `Err(Elapsed)`
/// if it is still pending then. The future is polled first, so one that is
/// ready gives its output even past the deadline.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let soon = Instant::now() + Duration::from_millis(5);
///     let late = ringlane::time::timeout_at(soon, std::future::pending::<()>()).await;
///     let ready = ringlane::time::timeout_at(Instant::now(), async { 1 }).await;
///     (late.is_err(), ready)
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), (true, Ok(1)));
/// ```
pub fn timeout_at<F: Future>(deadline: std::time::Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        delay: super::sleep_until(deadline),
    }
}

impl<F> Timeout<F> {
    /// The wrapped future.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = ringlane::time::timeout(std::time::Duration::from_secs(1), std::future::ready(3));
    /// assert!(std::ptr::eq(t.get_ref(), t.get_ref()));
    /// ```
    pub fn get_ref(&self) -> &F {
        &self.future
    }

    /// The wrapped future, mutably (before the `Timeout` is pinned).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut t = ringlane::time::timeout(std::time::Duration::from_secs(1), std::future::ready(3));
    /// let _inner: &mut std::future::Ready<i32> = t.get_mut();
    /// ```
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.future
    }

    /// The wrapped future, without its deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let t = ringlane::time::timeout(std::time::Duration::ZERO, async { 5 });
    /// let j = rt.handle().spawn_pinned(0, t.into_inner()).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 5);
    /// ```
    pub fn into_inner(self) -> F {
        self.future
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned (never moved out of `self`);
        // `delay` is `Unpin` and not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let had_budget = crate::executor::coop::has_budget_remaining();
        // SAFETY: as above.
        if let Poll::Ready(v) = unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        // A future that spent the budget must not keep its deadline from
        // being seen (the delay would yield too, for ever): the delay is
        // then polled unconstrained, as Tokio's `timeout` does.
        let delay = if had_budget && !crate::executor::coop::has_budget_remaining() {
            crate::executor::coop::unconstrained(cx, |cx| Pin::new(&mut this.delay).poll(cx))
        } else {
            Pin::new(&mut this.delay).poll(cx)
        };
        match delay {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}
