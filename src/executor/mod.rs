//! The task layer: spawning futures as `async-task` tasks, join handles, and
//! the per-shard registry of live tasks. It knows no rings and no threads:
//! where a woken task goes is the [`Route`] its spawner stores in the task,
//! read by the shard layer's one schedule function (`shard::schedule`).
//! That function captures nothing, so `async-task` wakes a task by value
//! with one compare-and-swap (a capturing one costs a wake by reference
//! plus a reference drop) and requeues a task woken while it ran without a
//! temporary waker: two locked instructions saved on the hottest paths.
//!
//! Task invariants (every shard upholds them; shutdown relies on them):
//! 1. A pinned or local task's future is polled and dropped only on its
//!    owning shard's thread: `schedule` routes every [`Runnable`] there, and
//!    the runtime never cancels through the `Task` half (a `JoinHandle`
//!    detaches on drop, and `abort` only sets a flag and wakes the task so
//!    the owner drops it). Stealable tasks (always `Send`) may be polled and
//!    dropped on any shard of their runtime.
//! 2. A task that has been polled at least once is in its shard's
//!    [`TaskRegistry`] until its future is dropped, so the owner can find and
//!    cancel every live task at shutdown. Blocking closures are the
//!    exception: they run on the blocking pool, never on a shard, and
//!    shutdown counts them there (`blocking/mod.rs`, invariants 1 and 4).
//! 3. A task never polled is owned by exactly one queued `Runnable`; dropping
//!    that `Runnable` (on the owner, or on the spawner if the push was
//!    refused) cancels it.
//! 4. A panic in `poll` is caught inside the task and becomes
//!    [`JoinError::panic`]; it never unwinds into the shard loop. So does a
//!    panic in the destructor of a cancelled task's future (Tokio's rule):
//!    `Tracked` keeps its payload in the task's metadata, where the
//!    `JoinHandle` finds it. A payload whose own destructor panics is
//!    leaked rather than unwound ([`drop_payload`]): `async-task` drops
//!    futures, outputs and metadata under an abort-on-panic guard.

mod abort_handle;
pub(crate) mod coop;
mod join;
mod on_shard;
mod registry;
mod tracked;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use abort_handle::AbortHandle;
pub use join::{JoinError, JoinHandle};
pub(crate) use registry::TaskRegistry;
pub(crate) use tracked::polling_stealable_home;

use on_shard::BuildOnShard;
use tracked::Tracked;

use crate::mailbox::Remote;
use crate::shard::Shared;

/// Where a task's wake-ups go (routing rules in `mailbox/remote.rs` and
/// placement rules in `shard/steal.rs`).
pub(crate) enum Route {
    /// A pinned or local task: always to this shard.
    Shard(Arc<Remote>),
    /// A stealable task: to the waking shard's deque, or this runtime's
    /// injector.
    Stealable(Arc<Shared>),
    /// A blocking closure: to this runtime's blocking pool (`blocking/`).
    Blocking(Arc<Shared>),
}

/// Per-task state stored inside the `async-task` allocation.
pub(crate) struct TaskMeta {
    aborted: AtomicBool,
    /// Set once the task's future has been dropped (completed, cancelled
    /// or never run): only then is the task finished for its
    /// `JoinHandle`, as in Tokio.
    future_gone: AtomicBool,
    route: Route,
    /// A runtime helper (a forwarded wait's), not a task of the caller's:
    /// shutdown drops it at once and does not count it as unfinished.
    internal: bool,
    /// The future's destructor panicked: its payload waits in
    /// `DROP_PANICS` for the `JoinHandle` (invariant 4).
    has_drop_panic: AtomicBool,
}

/// Payloads of futures' destructors that panicked, by the address of their
/// task's metadata, until the `JoinHandle` takes them or the task is freed.
/// Kept out of `TaskMeta`, which every task carries, for this rare path: a
/// larger metadata pushed `async-task`'s header past one cache line.
static DROP_PANICS: parking_lot::Mutex<Vec<(usize, Payload)>> = parking_lot::Mutex::new(Vec::new());

impl Drop for TaskMeta {
    fn drop(&mut self) {
        if let Some(payload) = self.take_drop_panic() {
            drop_payload(payload); // nobody joined: dropped here, contained
        }
    }
}

/// A panic's payload.
pub(crate) type Payload = Box<dyn std::any::Any + Send + 'static>;

/// Drops a panic payload; if its destructor panics as well, that second
/// payload is leaked instead of unwinding (invariant 4).
pub(crate) fn drop_payload(payload: Payload) {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
    if let Err(nested) = dropped {
        std::mem::forget(nested);
    }
}

/// Runs `f`, containing a panic: its payload is dropped, contained too.
/// What `f` returns is dropped.
pub(crate) fn contain<R>(f: impl FnOnce() -> R) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        drop_payload(payload);
    }
}

impl std::fmt::Debug for TaskMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskMeta")
            .field("aborted", &self.aborted)
            .finish_non_exhaustive()
    }
}

impl TaskMeta {
    /// Where the task's wake-ups go. Read it only while holding the task
    /// (a `Runnable` or waker): once the `Runnable` is handed to a queue
    /// another thread drains, the task and its route may be freed.
    pub(crate) fn route(&self) -> &Route {
        &self.route
    }

    /// Whether this is a runtime helper (see the field).
    pub(crate) fn is_internal(&self) -> bool {
        self.internal
    }

    /// Whether `JoinHandle::abort` was called; the owning shard drops such a
    /// task instead of polling it.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }

    /// The future's destructor has returned (`Tracked::drop`).
    fn mark_future_gone(&self) {
        self.future_gone.store(true, Ordering::Release);
    }

    fn future_gone(&self) -> bool {
        self.future_gone.load(Ordering::Acquire)
    }

    /// This metadata's key in `DROP_PANICS`: it lives in the task's
    /// allocation, which does not move, and leaves the table before it is
    /// freed (`Drop`), so no later task at this address finds its entry.
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Keeps the panic of the future's destructor (one future, dropped
    /// once: at most one per task).
    fn keep_drop_panic(&self, payload: Payload) {
        DROP_PANICS.lock().push((self.key(), payload));
        self.has_drop_panic.store(true, Ordering::Release);
    }

    /// The panic of the future's destructor, if it panicked.
    fn take_drop_panic(&self) -> Option<Payload> {
        if !self.has_drop_panic.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut panics = DROP_PANICS.lock();
        let i = panics.iter().position(|(key, _)| *key == self.key())?;
        Some(panics.swap_remove(i).1)
    }
}

/// A scheduled task, as queued on a shard.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

fn builder(route: Route) -> async_task::Builder<TaskMeta> {
    builder_for(route, false)
}

fn builder_for(route: Route, internal: bool) -> async_task::Builder<TaskMeta> {
    async_task::Builder::new().metadata(TaskMeta {
        aborted: AtomicBool::new(false),
        future_gone: AtomicBool::new(false),
        route,
        internal,
        has_drop_panic: AtomicBool::new(false),
    })
}

/// The schedule function of every task: it captures nothing (see the
/// module docs), so it is a zero-sized closure.
fn schedule(runnable: Runnable) {
    crate::shard::schedule(runnable);
}

// What the module docs rely on: `async-task` takes the cheap paths only for
// a zero-sized schedule function.
const _: () = assert!(std::mem::size_of_val(&schedule) == 0);

/// Spawns a `Send` future owned by shard `home` (task invariant 1).
pub(crate) fn spawn_send<F>(future: F, home: Arc<Remote>) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_routed(future, Route::Shard(home))
}

/// Spawns a `Send` future whose wake-ups go by `route`.
fn spawn_routed<F>(future: F, route: Route) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (runnable, task) = builder(route).spawn(|meta| Tracked::new(future, meta), schedule);
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}

/// Spawns a runtime helper owned by shard `home`: shutdown drops it as
/// soon as it begins, and does not count it as unfinished.
pub(crate) fn spawn_internal<F>(future: F, home: Arc<Remote>) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (runnable, task) =
        builder_for(Route::Shard(home), true).spawn(|meta| Tracked::new(future, meta), schedule);
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}

/// Spawns a `Send` future that any shard of `runtime` may run (work
/// stealing); it registers in the locked registry of the shard that first
/// polls it.
pub(crate) fn spawn_stealable<F>(
    future: F,
    runtime: Arc<Shared>,
) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // Counted before the task exists; `Tracked` counts it out when its
    // future is dropped, however the task ends.
    runtime
        .stealable_live
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (runnable, task) = builder(Route::Stealable(runtime))
        .spawn(|meta| Tracked::new_stealable(future, meta), schedule);
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}

/// Spawns a blocking closure's future for `runtime`'s blocking pool.
pub(crate) fn spawn_blocking<F>(
    future: F,
    runtime: Arc<Shared>,
) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_routed(future, Route::Blocking(runtime))
}

/// Spawns a `!Send` future on the current thread, which must be the shard
/// that will run it (`async-task` panics if a `Runnable` of such a task is
/// used elsewhere; invariant 1 makes that impossible).
pub(crate) fn spawn_here<F>(future: F, home: Arc<Remote>) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (runnable, task) =
        builder(Route::Shard(home)).spawn_local(|meta| Tracked::new(future, meta), schedule);
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}

/// Spawns a task whose `!Send` future is built by `build` on the first poll,
/// i.e. on the owning shard.
pub(crate) fn spawn_built_on_shard<B, F>(
    build: B,
    home: Arc<Remote>,
) -> (Runnable, JoinHandle<F::Output>)
where
    B: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let (runnable, task) = builder(Route::Shard(home)).spawn(
        |meta| Tracked::new(BuildOnShard::new(build), meta),
        schedule,
    );
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}
