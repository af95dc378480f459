//! `Tracked`: the wrapper around every task's future. It registers the task
//! in its shard's registry on first poll (invariant 2), removes it when the
//! future is dropped, and turns a panic in `poll` into a `JoinError`
//! (invariant 4).
//!
//! It also contains panics from the future's *destructor*: `async-task`
//! drops a future under an abort-on-panic guard, so an unwinding `Drop`
//! would take the whole process down. `Tracked` drops the future itself,
//! inside `catch_unwind`, before `async-task` ever sees it unwind. The
//! task's output, kept in the same allocation and dropped there too when
//! nobody takes it (a detached task), is an `Outcome`, whose drop contains
//! a panic the same way.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::JoinError;
use super::join::Outcome;
use crate::context;
use crate::mailbox::Remote;

/// Ends in 128 bytes that are never written (`_gap`, last thanks to
/// `repr(C)`; async-task puts the future last in the task allocation), so
/// a task's hot lines and those of whatever malloc puts after it are at
/// least 128 bytes apart: never one cache line, nor one prefetched pair.
/// Tasks spawned one after the other sit side by side on the heap, and two
/// of them polled on two shards made every hop of a cross-shard ping-pong
/// drag a shared line back and forth (spin RTT 0.58 instead of 0.41 µs,
/// depending on where malloc put them). Aligning the task instead (Tokio's
/// way) costs glibc's aligned-allocation path, much dearer (ADR 0014). A
/// task whose output is larger than its future has a smaller gap.
#[repr(C)]
pub(super) struct Tracked<F> {
    /// Dropped in place by our `Drop` (it is pinned), exactly once.
    future: ManuallyDrop<F>,
    registration: Registration,
    /// The task's own metadata (its abort flag).
    meta: TaskMetaPtr,
    _gap: std::mem::MaybeUninit<[u8; 128]>,
}

/// A pointer to the `TaskMeta` of the task this future is the body of.
struct TaskMetaPtr(std::ptr::NonNull<super::TaskMeta>);

// SAFETY: the metadata lives in the task's allocation, which outlives the
// future (async-task drops the future before it frees the allocation), and
// only shared access to it (atomics, and a global table keyed by its
// address) is ever made, from whichever thread polls.
unsafe impl Send for TaskMetaPtr {}
// SAFETY: as above.
unsafe impl Sync for TaskMetaPtr {}

thread_local! {
    /// The registry home of the stealable task being polled on this thread
    /// (null: none): a shutdown called from inside such a task cannot wait
    /// for that shard, which waits for the task to end.
    static POLLING_STEALABLE_HOME: std::cell::Cell<*const Remote> =
        const { std::cell::Cell::new(std::ptr::null()) };
}

/// The address of the `Remote` of the shard whose registry holds the
/// stealable task being polled (or whose future is being dropped) on this
/// thread, if one is: compared, never dereferenced.
pub(crate) fn polling_stealable_home() -> *const Remote {
    POLLING_STEALABLE_HOME.with(std::cell::Cell::get)
}

/// Restores the previous `POLLING_STEALABLE_HOME` (also on unwind).
struct PollingHome(*const Remote);

impl PollingHome {
    fn enter(home: *const Remote) -> Self {
        Self(POLLING_STEALABLE_HOME.with(|h| h.replace(home)))
    }
}

impl Drop for PollingHome {
    fn drop(&mut self) {
        POLLING_STEALABLE_HOME.with(|h| h.set(self.0));
    }
}

/// Where a task is registered (task invariant 2).
enum Registration {
    /// Not polled yet; `stealable` says which registry it will join.
    Unregistered {
        stealable: bool,
    },
    /// In the shard-local registry of the shard whose `Remote` lives at
    /// address `owner` (pinned and local tasks never leave it).
    Local {
        slot: usize,
        owner: usize,
    },
    /// In the locked registry of the shard that first polled it; a stolen
    /// task removes itself from there, whichever shard drops it.
    Stealable {
        slot: usize,
        home: Arc<Remote>,
    },
    Removed,
}

impl<F> Tracked<F> {
    pub(super) fn new(future: F, meta: &super::TaskMeta) -> Self {
        Self::unregistered(future, meta, false)
    }

    pub(super) fn new_stealable(future: F, meta: &super::TaskMeta) -> Self {
        Self::unregistered(future, meta, true)
    }

    fn unregistered(future: F, meta: &super::TaskMeta, stealable: bool) -> Self {
        Self {
            future: ManuallyDrop::new(future),
            registration: Registration::Unregistered { stealable },
            meta: TaskMetaPtr(std::ptr::NonNull::from(meta)),
            _gap: std::mem::MaybeUninit::uninit(),
        }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = Outcome<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: never moved out of `self`
        // (dropped in place), and `Tracked` is `Unpin` only when `F` is (the
        // auto trait, no impl of ours); the other fields are not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if let Registration::Unregistered { stealable } = this.registration {
            let registered = context::with_current(|shard| {
                let waker = cx.waker().clone();
                if stealable {
                    let slot = shard.remote.stealable_tasks.lock().insert(waker);
                    Registration::Stealable {
                        slot,
                        home: shard.remote.clone(),
                    }
                } else {
                    // SAFETY: see `TaskMetaPtr`.
                    let internal = unsafe { this.meta.0.as_ref() }.is_internal();
                    let slot = shard.registry.borrow_mut().insert(waker, internal);
                    Registration::Local {
                        slot,
                        owner: Arc::as_ptr(&shard.remote) as usize,
                    }
                }
            });
            if let Some(r) = registered {
                this.registration = r;
            }
        }
        // An abort can land between the shard's check and this poll, its
        // wake-up swallowed because the task was still scheduled: the flag
        // is checked here too, or the task would sleep forever
        // (`abort_racing_the_first_poll_is_never_lost`).
        // SAFETY: see `TaskMetaPtr`.
        if unsafe { this.meta.0.as_ref() }.is_aborted() {
            return Poll::Ready(Outcome::new(Err(JoinError::cancelled())));
        }
        let _home = match &this.registration {
            Registration::Stealable { home, .. } => Some(PollingHome::enter(Arc::as_ptr(home))),
            _ => None,
        };
        // SAFETY: see above; `future` stays where it is for the task's life.
        let future = unsafe { Pin::new_unchecked(&mut *this.future) };
        let _budget = super::coop::start_poll();
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Outcome::new(Ok(v))),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Outcome::new(Err(JoinError::panic(payload)))),
        }
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        let future = &mut self.future;
        // A runtime dropped by the future's destructor (an aborted task's
        // locals) must not wait for this task's home either.
        let home_guard = match &self.registration {
            Registration::Stealable { home, .. } => Some(PollingHome::enter(Arc::as_ptr(home))),
            _ => None,
        };
        // SAFETY: this is the only place `future` is dropped, once, in place
        // (so the pinning drop guarantee holds); it is never used afterwards.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(future) }));
        drop(home_guard);
        if let Err(payload) = dropped {
            // For the `JoinHandle` of a cancelled task (task invariant 4);
            // a completed task's output is what it gets, and this payload
            // goes with the metadata.
            // SAFETY: see `TaskMetaPtr`.
            unsafe { self.meta.0.as_ref() }.keep_drop_panic(payload);
        }
        match std::mem::replace(&mut self.registration, Registration::Removed) {
            Registration::Local { slot, owner } => {
                // Invariant 1 puts us on the owning shard; the address check
                // makes sure we never remove a slot from another shard's registry.
                context::with_current(|cx| {
                    if Arc::as_ptr(&cx.remote) as usize == owner {
                        cx.registry.borrow_mut().remove(slot);
                    }
                });
            }
            Registration::Stealable { slot, home } => {
                home.stealable_tasks.lock().try_remove(slot);
                // A home shard that is shutting down waits for its registry
                // to empty; if it sleeps, tell it (it re-checks at step R4).
                if home.draining.load(Ordering::SeqCst)
                    && !home.is_current()
                    && home.doorbell.should_ring()
                {
                    home.ring_doorbell_now();
                }
            }
            Registration::Unregistered { .. } | Registration::Removed => {}
        }
        // SAFETY: the metadata lives in the task's allocation, which
        // outlives its future (see `TaskMetaPtr`).
        let meta = unsafe { self.meta.0.as_ref() };
        if let super::Route::Stealable(runtime) = meta.route() {
            // Counted in by `spawn_stealable`: the future is gone, so no
            // op it held can be awaited any more.
            runtime.stealable_live.fetch_sub(1, Ordering::SeqCst);
        }
        meta.mark_future_gone();
    }
}
