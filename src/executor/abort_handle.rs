//! `AbortHandle`: cancel a task without owning its `JoinHandle`.

use std::task::Waker;

use super::join::MetaRef;

/// Cancels a task from anywhere, without its output: made by
/// [`JoinHandle::abort_handle`](crate::JoinHandle::abort_handle), as
/// Tokio's. Cloneable and `Send + Sync`; it keeps the task's allocation
/// (not its future) alive.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let task = rt.handle().spawn_pinned(0, std::future::pending::<()>()).unwrap();
/// let abort = task.abort_handle();
/// std::thread::spawn(move || abort.abort()).join().unwrap();
/// assert!(rt.block_on(task).unwrap_err().is_cancelled());
/// ```
#[derive(Clone)]
pub struct AbortHandle {
    /// The task's metadata (its abort flag), valid while `waker` lives.
    meta: MetaRef,
    /// Wakes the task so that its shard sees the abort flag; holds a
    /// reference to the task's allocation.
    waker: Waker,
}

impl AbortHandle {
    pub(super) fn new(meta: MetaRef, waker: Waker) -> Self {
        Self { meta, waker }
    }

    /// Cancels the task, as [`JoinHandle::abort`](crate::JoinHandle::abort):
    /// its shard drops the future at its next scheduling point (a blocking
    /// closure only if it has not started). Nothing happens to a task that
    /// has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let task = rt.handle().spawn_pinned(0, async { 5 }).unwrap();
    /// let abort = task.abort_handle();
    /// assert_eq!(rt.block_on(task).unwrap(), 5);
    /// abort.abort(); // finished already: no effect
    /// assert!(abort.is_finished());
    /// ```
    pub fn abort(&self) {
        // SAFETY: `self.waker` is a waker of the task, alive as `self` is.
        unsafe { self.meta.get() }.abort();
        self.waker.wake_by_ref();
    }

    /// Whether the task has finished (completed, panicked or been
    /// cancelled): its future has been dropped, so what it held is
    /// released. A completed task's output is stored a moment after its
    /// future is dropped, so its `JoinHandle` may still be pending for
    /// that moment when this already says `true` (Tokio's two handles
    /// read one flag).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let task = rt.handle().spawn_pinned(0, std::future::pending::<()>()).unwrap();
    /// let abort = task.abort_handle();
    /// assert!(!abort.is_finished());
    /// abort.abort();
    /// while !abort.is_finished() { std::thread::yield_now(); }
    /// drop(task);
    /// ```
    pub fn is_finished(&self) -> bool {
        // SAFETY: `self.waker` is a waker of the task, alive as `self` is.
        unsafe { self.meta.get() }.future_gone()
    }
}

impl std::fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AbortHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

// As Tokio's (see `JoinHandle`'s).
impl std::panic::UnwindSafe for AbortHandle {}
impl std::panic::RefUnwindSafe for AbortHandle {}
