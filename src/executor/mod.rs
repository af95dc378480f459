//! The task layer: spawning futures as `async-task` tasks, join handles, and
//! the per-shard registry of live tasks. It knows no rings and no threads:
//! where a woken task goes is the caller's `schedule` function.
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
//!    cancel every live task at shutdown.
//! 3. A task never polled is owned by exactly one queued `Runnable`; dropping
//!    that `Runnable` (on the owner, or on the spawner if the push was
//!    refused) cancels it.
//! 4. A panic in `poll` is caught inside the task and becomes
//!    [`JoinError::panic`]; it never unwinds into the shard loop.

mod join;
mod on_shard;
mod registry;
mod tracked;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

pub use join::{JoinError, JoinHandle};
pub(crate) use registry::TaskRegistry;
pub(crate) use tracked::polling_stealable_home;

use on_shard::BuildOnShard;
use tracked::Tracked;

/// Per-task state stored inside the `async-task` allocation.
#[derive(Debug, Default)]
pub(crate) struct TaskMeta {
    aborted: AtomicBool,
}

impl TaskMeta {
    /// Whether `JoinHandle::abort` was called; the owning shard drops such a
    /// task instead of polling it.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }
}

/// A scheduled task, as queued on a shard.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

fn builder() -> async_task::Builder<TaskMeta> {
    async_task::Builder::new().metadata(TaskMeta::default())
}

/// Spawns a `Send` future; `schedule` decides where each wake-up goes.
pub(crate) fn spawn_send<F, S>(future: F, schedule: S) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Fn(Runnable) + Send + Sync + 'static,
{
    let (runnable, task) = builder().spawn(|meta| Tracked::new(future, meta), schedule);
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}

/// Spawns a `Send` future that any shard may run (work stealing); it
/// registers in the locked registry of the shard that first polls it.
pub(crate) fn spawn_stealable<F, S>(future: F, schedule: S) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    S: Fn(Runnable) + Send + Sync + 'static,
{
    let (runnable, task) = builder().spawn(|meta| Tracked::new_stealable(future, meta), schedule);
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}

/// Spawns a `!Send` future on the current thread, which must be the shard
/// that will run it (`async-task` panics if a `Runnable` of such a task is
/// used elsewhere; invariant 1 makes that impossible).
pub(crate) fn spawn_here<F, S>(future: F, schedule: S) -> (Runnable, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Fn(Runnable) + Send + Sync + 'static,
{
    let (runnable, task) = builder().spawn_local(|meta| Tracked::new(future, meta), schedule);
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}

/// Spawns a task whose `!Send` future is built by `build` on the first poll,
/// i.e. on the owning shard.
pub(crate) fn spawn_built_on_shard<B, F, S>(
    build: B,
    schedule: S,
) -> (Runnable, JoinHandle<F::Output>)
where
    B: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
    S: Fn(Runnable) + Send + Sync + 'static,
{
    let (runnable, task) = builder().spawn(
        |meta| Tracked::new(BuildOnShard::new(build), meta),
        schedule,
    );
    let handle = JoinHandle::new(task, runnable.waker());
    (runnable, handle)
}
