//! `JoinHandle` and `JoinError`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use async_task::{FallibleTask, Task};
use parking_lot::Mutex;

use super::TaskMeta;

/// An owned permission to await a task's output; a plain [`Future`] that any
/// executor can poll (a Tokio task included).
///
/// Dropping a `JoinHandle` detaches the task: it keeps running. Polled
/// again after it gave its result, it returns an error (reported as a
/// cancellation) where Tokio's panics: fuse it in a `select!` loop.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let handle = rt.handle();
/// let out = rt.block_on(async move {
///     handle.spawn_pinned(1, async { 6 * 7 }).unwrap().await
/// });
/// assert_eq!(out.unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    task: Option<FallibleTask<Outcome<T>, TaskMeta>>,
    /// The task's metadata (its abort flag).
    meta: MetaRef,
    /// Wakes the task so that its shard sees the abort flag.
    waker: Waker,
    /// A poll left the caller's waker with the task (it returned `Pending`).
    registered: bool,
    /// The caller's waker and the wrapper the task was given instead (see
    /// [`ContainWake`]), kept while the caller's waker stays the same.
    contained: Option<(Waker, Waker)>,
}

/// A waker whose `wake` and drop catch a panic: `async-task` wakes the
/// awaiter of a task that ends, and drops the awaiter a new poll replaces,
/// under an abort-on-panic guard, so a foreign waker that panics there
/// would abort the process (Tokio contains the wake; its drop unwinds out
/// of the poll). The task of a shard's own that awaits a handle needs no
/// wrapper: its waker is ours. (`None` only inside `drop`.)
struct ContainWake(Option<Waker>);

impl std::task::Wake for ContainWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        if let Some(w) = &self.0 {
            super::contain(|| w.wake_by_ref());
        }
    }
}

impl Drop for ContainWake {
    fn drop(&mut self) {
        let waker = self.0.take();
        super::contain(move || drop(waker));
    }
}

/// A task's result as its allocation keeps it. Dropping it contains a
/// panic (an output, or a panic payload, whose destructor panics):
/// `async-task` drops the output of a detached task under an
/// abort-on-panic guard, which would take the whole process down.
pub(crate) struct Outcome<T>(ManuallyDrop<Result<T, JoinError>>);

impl<T> Outcome<T> {
    pub(crate) fn new(result: Result<T, JoinError>) -> Self {
        Self(ManuallyDrop::new(result))
    }

    fn into_inner(self) -> Result<T, JoinError> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the value is taken exactly once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Drop for Outcome<T> {
    fn drop(&mut self) {
        let result = &mut self.0;
        // SAFETY: dropped once, here; never used afterwards.
        super::contain(|| unsafe { ManuallyDrop::drop(result) });
    }
}

/// A pointer to the `TaskMeta` inside an `async-task` allocation.
///
/// `FallibleTask` does not expose the metadata, so we keep a pointer taken
/// from the `Task` before it was made fallible. The metadata lives in the
/// task's allocation, which is freed only when the last reference (`Task`,
/// `Runnable` or `Waker`) is gone; the `JoinHandle` holds its `waker` for its
/// whole life, so the pointer is valid whenever the handle exists.
#[derive(Clone, Copy)]
pub(super) struct MetaRef(NonNull<TaskMeta>);

impl MetaRef {
    /// The metadata.
    ///
    /// # Safety
    ///
    /// The caller must hold a reference to the task's allocation (a waker
    /// of the task) for as long as it uses the result, as `JoinHandle` and
    /// `AbortHandle` keep one beside their `MetaRef`.
    pub(super) unsafe fn get(&self) -> &TaskMeta {
        // SAFETY: per the contract, the allocation, and so the metadata, is
        // alive.
        unsafe { self.0.as_ref() }
    }
}

// SAFETY: `TaskMeta` is `Sync` (atomic flags and `Arc`s of `Sync` types),
// and the pointer stays valid for the life of the `JoinHandle` or
// `AbortHandle` that keeps it beside a waker of its task (see above), on
// any thread. `MetaRef` is private to the executor, which never keeps one
// without such a waker.
unsafe impl Send for MetaRef {}
// SAFETY: as above; only shared access (`&TaskMeta`) is ever made.
unsafe impl Sync for MetaRef {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Task<Outcome<T>, TaskMeta>, waker: Waker) -> Self {
        let meta = MetaRef(NonNull::from(task.metadata()));
        Self {
            task: Some(task.fallible()),
            meta,
            waker,
            registered: false,
            contained: None,
        }
    }

    /// Cancels the task: its shard drops the future at its next scheduling
    /// point (a blocking closure not started yet is dropped when a pool
    /// thread reaches it; a running one cannot be interrupted and finishes),
    /// and awaiting this handle then gives [`JoinError::is_cancelled`]
    /// (unless the task had already finished). If dropping the future
    /// panics, that panic is how the task ended: the handle gives
    /// [`JoinError::is_panic`] with its payload, as Tokio's does.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h = rt.handle().spawn_pinned(0, std::future::pending::<()>()).unwrap();
    /// h.abort();
    /// assert!(rt.block_on(h).unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        if self.task.is_some() {
            // SAFETY: `MetaRef` is valid while this handle (and its waker) lives.
            unsafe { self.meta.0.as_ref() }.abort();
            self.waker.wake_by_ref();
        }
    }

    /// A handle that cancels this task from anywhere without its output
    /// (Tokio's `abort_handle`); it may outlive this `JoinHandle`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let task = rt.handle().spawn_pinned(0, std::future::pending::<()>()).unwrap();
    /// let abort = task.abort_handle();
    /// drop(task); // detached: only the abort handle can stop it now
    /// abort.abort();
    /// while !abort.is_finished() { std::thread::yield_now(); }
    /// ```
    pub fn abort_handle(&self) -> super::AbortHandle {
        super::AbortHandle::new(self.meta, self.waker.clone())
    }

    /// Whether the task has finished (completed, panicked or been
    /// cancelled). A cancelled task is finished once its future has been
    /// dropped: what it held (locks, files, sockets) is released by then.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h = rt.handle().spawn_pinned(0, async {}).unwrap();
    /// while !h.is_finished() { std::thread::yield_now(); }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| {
            // SAFETY: `MetaRef` is valid while this handle (and its waker) lives.
            t.is_finished() && unsafe { self.meta.0.as_ref() }.future_gone()
        })
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(task) = this.task.as_mut() else {
            // Polled again after it returned Ready: there is nothing left.
            // Tokio panics here; ringlane answers misuse with an error.
            return Poll::Ready(Err(JoinError::cancelled()));
        };
        let waker = cx.waker();
        let ours = crate::context::with_current(|shard| {
            let own = shard.polling_own.get();
            !own.is_null() && waker.data() == own
        }) == Some(true);
        let contained = match (&this.contained, ours) {
            (_, true) => None,
            (Some((w, c)), _) if w.will_wake(waker) => Some(c.clone()),
            _ => {
                let c = Waker::from(std::sync::Arc::new(ContainWake(Some(waker.clone()))));
                this.contained = Some((waker.clone(), c.clone()));
                Some(c)
            }
        };
        // Awaiting handles of finished tasks in a loop yields now and then
        // (coop invariant 2).
        let polled = match &contained {
            Some(c) => {
                super::coop::budgeted(&mut Context::from_waker(c), |cx| Pin::new(task).poll(cx))
            }
            None => super::coop::budgeted(cx, |cx| Pin::new(task).poll(cx)),
        };
        match polled {
            Poll::Pending => {
                this.registered = true;
                Poll::Pending
            }
            Poll::Ready(out) => {
                this.task = None;
                this.contained = None;
                let out = out.map_or_else(|| Err(JoinError::cancelled()), Outcome::into_inner);
                Poll::Ready(match out {
                    // A cancelled future whose destructor panicked: that
                    // panic is the task's end, as in Tokio (invariant 4).
                    Err(e) if e.is_cancelled() => {
                        // SAFETY: `MetaRef` is valid while this handle lives.
                        let meta = unsafe { this.meta.0.as_ref() };
                        match meta.take_drop_panic() {
                            Some(payload) => Err(JoinError::panic(payload)),
                            None => Err(e),
                        }
                    }
                    out => out,
                })
            }
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(mut task) = self.task.take() {
            if self.registered {
                // The task keeps the waker of the last poll until it ends:
                // replace it with a no-op one, so the waiter it belongs to
                // (a Tokio task, say) is released now and never woken for
                // nothing, as Tokio's `JoinHandle` does. A task that ended
                // meanwhile hands over its output here, dropped as `detach`
                // would drop it.
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(out) = Pin::new(&mut task).poll(&mut cx) {
                    drop(out);
                    return;
                }
            }
            task.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

enum Repr {
    Cancelled,
    Panic(Mutex<Box<dyn Any + Send + 'static>>),
}

/// Why a task did not produce its output.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let h = rt.handle().spawn_pinned(0, async { panic!("boom") }).unwrap();
/// let err: ringlane::JoinError = rt.block_on(h).unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
/// ```
pub struct JoinError {
    repr: Repr,
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        Self {
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        Self {
            repr: Repr::Panic(Mutex::new(payload)),
        }
    }

    /// The task was aborted, or dropped at shutdown before it finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h = rt.handle().spawn_pinned(0, std::future::pending::<()>()).unwrap();
    /// h.abort();
    /// assert!(rt.block_on(h).unwrap_err().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h = rt.handle().spawn_pinned(0, async { panic!("x") }).unwrap();
    /// assert!(rt.block_on(h).unwrap_err().is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload; panics if the task was cancelled instead (check
    /// [`is_panic`](Self::is_panic) or use [`try_into_panic`](Self::try_into_panic)).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h = rt.handle().spawn_pinned(0, async { std::panic::panic_any(7u32) }).unwrap();
    /// let payload = rt.block_on(h).unwrap_err().into_panic();
    /// assert_eq!(*payload.downcast::<u32>().unwrap(), 7);
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("JoinError::into_panic called on a cancelled task's error")
    }

    /// The panic payload, or the error itself if the task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h = rt.handle().spawn_pinned(0, std::future::pending::<()>()).unwrap();
    /// h.abort();
    /// assert!(rt.block_on(h).unwrap_err().try_into_panic().is_err());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.into_inner()),
            Repr::Cancelled => Err(self),
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Panic(p) => match panic_message(&**p.lock()) {
                Some(msg) => write!(f, "task panicked with message {msg:?}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            // Tokio's shape, less its task id: `JoinError::Panic("boom", ...)`.
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(p) => match panic_message(&**p.lock()) {
                Some(msg) => write!(f, "JoinError::Panic({msg:?}, ...)"),
                None => f.write_str("JoinError::Panic(...)"),
            },
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> Self {
        std::io::Error::other(e)
    }
}

// As Tokio's: a handle holds no state a caught panic could leave half
// written for the code that catches it (the shared parts sit behind
// non-poisoning locks and atomics, and every panic inside the runtime is
// contained where it happens).
impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}
impl std::panic::UnwindSafe for JoinError {}
impl std::panic::RefUnwindSafe for JoinError {}
