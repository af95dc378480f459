//! The runtime a thread has *entered* without being one of its shards:
//! inside [`Runtime::block_on`](crate::Runtime::block_on), or while an
//! [`EnterGuard`] lives. There [`Handle::current`](crate::Handle::current)
//! finds the runtime and [`spawn`](crate::spawn) spawns stealable tasks on
//! it, as `tokio::spawn` does inside Tokio's `block_on` or `enter`.
//!
//! Invariants:
//! 1. Only the owning thread reads or writes its entry (thread-local); a
//!    guard is `!Send`, so it is dropped on the thread that made it.
//! 2. A guard restores what was entered before it when it drops, so nested
//!    entries (one runtime's `block_on` inside another's) unwind in order.
//! 3. A shard's own context takes precedence: on a shard thread the
//!    current runtime is always the shard's.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::Handle;

thread_local! {
    static ENTERED: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// Keeps a runtime entered on this thread until dropped; made by
/// [`Handle::enter`] and [`Runtime::enter`](crate::Runtime::enter).
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// assert!(ringlane::Handle::current().is_none());
/// let guard = rt.enter();
/// let join = ringlane::spawn(async { 7 }).unwrap(); // no shard needed here
/// drop(guard);
/// assert!(ringlane::Handle::current().is_none());
/// assert_eq!(rt.block_on(join).unwrap(), 7);
/// ```
#[must_use = "the runtime stays entered only while the guard lives"]
pub struct EnterGuard<'a> {
    previous: Option<Handle>,
    /// `!Send` (invariant 1), and tied to the handle's borrow as Tokio's.
    _not_send: PhantomData<(*const (), &'a Handle)>,
}

impl std::fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

/// Enters `handle`'s runtime on this thread (invariant 2).
pub(crate) fn enter(handle: &Handle) -> EnterGuard<'_> {
    let previous = ENTERED.with(|e| e.borrow_mut().replace(handle.clone()));
    EnterGuard {
        previous,
        _not_send: PhantomData,
    }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // Dropped during thread exit, the slot may already be gone: there
        // is nothing left to restore then.
        let _ = ENTERED.try_with(|e| *e.borrow_mut() = previous);
    }
}

/// The runtime entered on this thread, if any (shards aside).
pub(crate) fn entered() -> Option<Handle> {
    ENTERED.try_with(|e| e.borrow().clone()).ok().flatten()
}
