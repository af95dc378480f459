//! Per-op timeouts enforced by the kernel (`IORING_OP_LINK_TIMEOUT`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::op;

/// Bounds every native op that `future` submits by `duration` (measured
/// from the first poll): each op is linked to a kernel timeout, and one
/// still in flight at the deadline is cancelled by the kernel and fails
/// with [`io::ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut), **with
/// its buffer given back** (unlike dropping the op, as
/// [`time::timeout`](crate::time::timeout) does, which loses the buffer).
///
/// Ops submitted after the deadline fail at once, without reaching the
/// kernel. Nested timeouts take the earlier deadline. Only native ops are
/// bounded: the future itself is not interrupted. A wait for the next item
/// of a multishot stream ([`Incoming`](crate::native::net::Incoming),
/// [`RecvMulti`](crate::native::net::RecvMulti)) fails with `TimedOut` at
/// the deadline too, but the stream stays armed: what the kernel delivers
/// later is returned by the next call, nothing is lost.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringlane::native::{fs::File, timeout};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap(); // silent peer
/// let j = rt.handle().spawn_pinned(0, async move {
///     let f = File::from(std::os::fd::OwnedFd::from(r));
///     let (res, buf) = timeout(Duration::from_millis(20), f.read(vec![0u8; 8])).await;
///     (res.unwrap_err().kind(), buf.len())
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), (std::io::ErrorKind::TimedOut, 8));
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        duration,
        deadline: None,
    }
}

/// The future returned by [`timeout`] and [`NativeTimeoutExt::timeout`].
///
/// # Examples
///
/// ```
/// use std::{future::Future, time::Duration};
/// use ringlane::native::{fs::File, timeout, Timeout};
/// fn within_a_second<F: Future>(op: F) -> Timeout<F> {
///     timeout(Duration::from_secs(1), op)
/// }
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let f = File::open("/proc/self/stat").await.unwrap();
///     within_a_second(f.read_at(vec![0u8; 16], 0)).await.0.unwrap()
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), 16); // done well before the deadline
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    future: F,
    duration: Duration,
    deadline: Option<Instant>,
}

impl<F: Future> Future for Timeout<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `self` or handed out unpinned, and `Timeout` has no `Drop` impl
        // and no `Unpin` impl that could break that.
        let this = unsafe { self.get_unchecked_mut() };
        let deadline = *this
            .deadline
            .get_or_insert_with(|| crate::time::after(Instant::now(), this.duration));
        // SAFETY: see above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        op::with_deadline(deadline, || future.poll(cx))
    }
}

/// `.timeout(d)` on any future: [`timeout`] as a method.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringlane::native::{fs::File, NativeTimeoutExt};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let f = File::open("/proc/self/stat").await.unwrap();
///     f.read_at(vec![0u8; 64], 0).timeout(Duration::from_secs(5)).await.0.unwrap()
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), 64);
/// ```
pub trait NativeTimeoutExt: Future + Sized {
    /// See [`timeout`].
    fn timeout(self, duration: Duration) -> Timeout<Self> {
        timeout(duration, self)
    }
}

impl<F: Future> NativeTimeoutExt for F {}
