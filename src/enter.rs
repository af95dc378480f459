//! The runtime a thread has *entered* without being one of its shards:
//! inside [`Runtime::block_on`](crate::Runtime::block_on), or while an
//! [`EnterGuard`] lives. There [`Handle::current`](crate::Handle::current)
//! finds the runtime and [`spawn`](crate::spawn) spawns stealable tasks on
//! it, as `tokio::spawn` does inside Tokio's `block_on` or `enter`.
//!
//! Invariants:
//! 1. Only the owning thread reads or writes its entries (thread-local); a
//!    guard is `!Send`, so it is dropped on the thread that made it.
//! 2. Entries form a stack; the current runtime is the top one. A guard
//!    removes its own entry, wherever it is, so guards dropped in any
//!    order (two futures each holding one across an await) leave exactly
//!    the entries of the guards still alive, never a stale runtime.
//! 3. A shard's own context takes precedence: on a shard thread the
//!    current runtime is always the shard's.
//! 4. No `Handle` is dropped while the stack is borrowed: the last one of a
//!    runtime may run destructors that look at the stack again.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use crate::Handle;

thread_local! {
    static ENTERED: RefCell<Vec<(u64, Handle)>> = const { RefCell::new(Vec::new()) };
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
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
    /// The guard's entry (0: none, the thread is exiting).
    id: u64,
    /// `!Send` (invariant 1), and tied to the handle's borrow as Tokio's.
    _not_send: PhantomData<(*const (), &'a Handle)>,
}

impl std::fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

/// Enters `handle`'s runtime on this thread (invariant 2). During thread
/// exit, once the stack is gone, nothing is entered and the guard is inert.
pub(crate) fn enter(handle: &Handle) -> EnterGuard<'_> {
    let id = NEXT_ID
        .try_with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        })
        .unwrap_or(0);
    let pushed = id != 0
        && ENTERED
            .try_with(|e| e.borrow_mut().push((id, handle.clone())))
            .is_ok();
    EnterGuard {
        id: if pushed { id } else { 0 },
        _not_send: PhantomData,
    }
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        let id = self.id;
        // Taken out under the borrow, dropped after it (invariant 4).
        let removed = ENTERED
            .try_with(|e| {
                let mut e = e.borrow_mut();
                let at = e.iter().rposition(|(i, _)| *i == id)?;
                Some(e.remove(at).1)
            })
            .ok()
            .flatten();
        drop(removed);
    }
}

/// The runtime entered on this thread, if any (shards aside).
pub(crate) fn entered() -> Option<Handle> {
    ENTERED
        .try_with(|e| e.borrow().last().map(|(_, h)| h.clone()))
        .ok()
        .flatten()
}
