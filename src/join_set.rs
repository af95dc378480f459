//! `JoinSet`: a collection of tasks awaited in the order they finish, as
//! Tokio's `tokio::task::JoinSet`.
//!
//! Invariants:
//! 1. Every task in the set has one key in `tasks` and its own waker, which
//!    queues that key in `ready` (once until it is polled again) and wakes
//!    whoever waits on the set. A new task's key starts queued, and adding
//!    it wakes whoever waits (its join handle has no waker of ours until
//!    its first poll).
//! 2. `poll_join_next` registers its waker before it takes keys from the
//!    queue, and clears a key's queued mark before it polls that task: a
//!    task finishing at any moment either is found by this poll or queues
//!    its key and wakes the next one. No wake-up is lost.
//! 3. One `poll_join_next` polls at most the keys queued when it began, and
//!    none once the cooperative budget is spent (it wakes its caller and
//!    yields instead): a task whose poll re-queued itself waits for the next
//!    call, and a set of many finished tasks costs one poll per result,
//!    not a sweep per budget. `try_join_next` runs outside the budget (it
//!    cannot yield) and leaves the waiter registered by the last
//!    `poll_join_next` in place.
//! 4. A key of a task that has left the set (joined, or detached) may still
//!    be queued, or be queued later by its stale waker; a slab may give the
//!    key to a new task. Such a key only costs one extra poll of whatever
//!    holds it, which returns `Pending` if it is not done.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use parking_lot::Mutex;
use slab::Slab;

use crate::{AbortHandle, Error, Handle, JoinError, JoinHandle};

/// A set of tasks, joined in the order they finish; dropping the set
/// aborts every task still in it (Tokio's `JoinSet`).
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let total = rt.block_on(async {
///     let mut set = ringlane::JoinSet::new();
///     for i in 0..10u32 {
///         set.spawn(async move { i * i }).unwrap();
///     }
///     let mut total = 0;
///     while let Some(r) = set.join_next().await {
///         total += r.unwrap();
///     }
///     total
/// });
/// assert_eq!(total, 285);
/// ```
pub struct JoinSet<T> {
    tasks: Slab<Member<T>>,
    ready: Arc<Ready>,
    /// Member polls made (the unit tests' count).
    #[cfg(test)]
    member_polls: usize,
}

struct Member<T> {
    handle: JoinHandle<T>,
    wake: Arc<MemberWake>,
    waker: Waker,
}

/// The keys of tasks that may have finished, and whoever waits on the set.
#[derive(Default)]
struct Ready {
    state: Mutex<ReadyState>,
}

#[derive(Default)]
struct ReadyState {
    keys: VecDeque<usize>,
    waiter: Option<Waker>,
}

/// One member's waker (invariant 1).
struct MemberWake {
    key: usize,
    queued: AtomicBool,
    ready: Arc<Ready>,
}

impl Wake for MemberWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return; // queued already, and the waiter woken then
        }
        let waiter = {
            let mut state = self.ready.state.lock();
            state.keys.push_back(self.key);
            state.waiter.take()
        };
        // After the lock: a foreign waker, which may do anything.
        if let Some(w) = waiter {
            crate::executor::contain(|| w.wake());
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = ringlane::JoinSet::<u32>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            tasks: Slab::new(),
            ready: Arc::default(),
            #[cfg(test)]
            member_polls: 0,
        }
    }

    /// How many tasks are in the set (not yet joined or detached).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_pinned(0, async { 1 }, &rt.handle()).unwrap();
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ringlane::JoinSet::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Adds a task spawned elsewhere (any placement: pinned, local,
    /// stealable, blocking) and returns a handle that aborts it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.insert(rt.handle().spawn_blocking(|| 4).unwrap());
    /// assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 4);
    /// ```
    pub fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let entry = self.tasks.vacant_entry();
        let key = entry.key();
        let wake = Arc::new(MemberWake {
            key,
            queued: AtomicBool::new(true),
            ready: self.ready.clone(),
        });
        let waker = Waker::from(wake.clone());
        entry.insert(Member {
            handle,
            wake,
            waker,
        });
        // Queued from the start, and whoever waits is told (invariant 1).
        let waiter = {
            let mut state = self.ready.state.lock();
            state.keys.push_back(key);
            state.waiter.take()
        };
        if let Some(w) = waiter {
            crate::executor::contain(|| w.wake());
        }
        abort
    }

    /// Spawns a stealable task on the current runtime (as
    /// [`ringlane::spawn`](crate::spawn)) into the set.
    ///
    /// # Errors
    ///
    /// As [`ringlane::spawn`](crate::spawn): [`Error::NotOnShard`] with no
    /// current runtime, [`Error::Shutdown`] during shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::<u8>::new();
    /// assert!(set.spawn(async { 1 }).is_err(), "no runtime entered here");
    /// ```
    pub fn spawn<F>(&mut self, future: F) -> Result<AbortHandle, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        crate::spawn(future).map(|h| self.insert(h))
    }

    /// Spawns a stealable task on `handle`'s runtime into the set (Tokio's
    /// `spawn_on`).
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] during shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_on(async { 2 }, &rt.handle()).unwrap();
    /// assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 2);
    /// ```
    pub fn spawn_on<F>(&mut self, future: F, handle: &Handle) -> Result<AbortHandle, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        handle.spawn_stealable(future).map(|h| self.insert(h))
    }

    /// Spawns a task pinned to `shard` of `handle`'s runtime into the set
    /// (the handle last, as in `spawn_on`).
    ///
    /// # Errors
    ///
    /// As [`Handle::spawn_pinned`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_pinned(1, async { ringlane::current_shard() }, &rt.handle()).unwrap();
    /// assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), Some(1));
    /// ```
    pub fn spawn_pinned<F>(
        &mut self,
        shard: usize,
        future: F,
        handle: &Handle,
    ) -> Result<AbortHandle, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        handle.spawn_pinned(shard, future).map(|h| self.insert(h))
    }

    /// Spawns a `!Send` task on the calling shard (as
    /// [`ringlane::spawn_local`](crate::spawn_local)) into the set.
    ///
    /// # Errors
    ///
    /// As [`ringlane::spawn_local`](crate::spawn_local).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_local_on(0, || async {
    ///     let mut set = ringlane::JoinSet::new();
    ///     let shared = std::rc::Rc::new(5);
    ///     let s = shared.clone();
    ///     set.spawn_local(async move { *s + 1 }).unwrap();
    ///     set.join_next().await.unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 6);
    /// ```
    pub fn spawn_local<F>(&mut self, future: F) -> Result<AbortHandle, Error>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        crate::spawn_local(future).map(|h| self.insert(h))
    }

    /// Runs a blocking closure on the current runtime's blocking pool (as
    /// [`ringlane::spawn_blocking`](crate::spawn_blocking)) into the set.
    ///
    /// # Errors
    ///
    /// As [`ringlane::spawn_blocking`](crate::spawn_blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let n = rt.block_on(async {
    ///     let mut set = ringlane::JoinSet::new();
    ///     set.spawn_blocking(|| 3).unwrap();
    ///     set.join_next().await.unwrap().unwrap()
    /// });
    /// assert_eq!(n, 3);
    /// ```
    pub fn spawn_blocking<F>(&mut self, f: F) -> Result<AbortHandle, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::spawn_blocking(f).map(|h| self.insert(h))
    }

    /// Runs a blocking closure on `handle`'s blocking pool into the set
    /// (Tokio's `spawn_blocking_on`).
    ///
    /// # Errors
    ///
    /// As [`Handle::spawn_blocking`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_blocking_on(|| 8, &rt.handle()).unwrap();
    /// assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 8);
    /// ```
    pub fn spawn_blocking_on<F>(&mut self, f: F, handle: &Handle) -> Result<AbortHandle, Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        handle.spawn_blocking(f).map(|h| self.insert(h))
    }

    /// Waits for every task and returns their outputs in the order they
    /// finished (Tokio's `join_all`).
    ///
    /// # Panics
    ///
    /// If a task failed: its panic is resumed here (a cancelled task panics
    /// with its `JoinError`), and the tasks still in the set are aborted
    /// as the set drops.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// for i in 0..3u32 {
    ///     set.spawn_pinned(0, async move { i }, &rt.handle()).unwrap();
    /// }
    /// let mut all = rt.block_on(set.join_all());
    /// all.sort();
    /// assert_eq!(all, [0, 1, 2]);
    /// ```
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(r) = self.join_next().await {
            match r {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a task in the JoinSet failed: {e}"),
            }
        }
        out
    }

    /// Waits for the next task to finish and returns its result; `None`
    /// once the set is empty. Cancel safe: a result is taken out of the set
    /// only in the poll that returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::<()>::new();
    /// assert!(rt.block_on(set.join_next()).is_none());
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next task to finish (invariants 2 and 3): `Ready(None)`
    /// once the set is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Context, Poll, Waker};
    /// let mut set = ringlane::JoinSet::<()>::new();
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(matches!(set.poll_join_next(&mut cx), Poll::Ready(None)));
    /// ```
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.sweep(cx, true)
    }

    /// Looks at the queued keys (invariants 2 and 3); `register`: leave
    /// `cx`'s waker for the next finish.
    fn sweep(
        &mut self,
        cx: &mut Context<'_>,
        register: bool,
    ) -> Poll<Option<Result<T, JoinError>>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        let (queued, replaced) = {
            let mut state = self.ready.state.lock();
            let replaced = match &state.waiter {
                _ if !register => None,
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => state.waiter.replace(cx.waker().clone()),
            };
            (state.keys.len(), replaced)
        };
        drop(replaced); // after the lock: a foreign waker's drop
        for _ in 0..queued {
            if !crate::executor::coop::has_budget_remaining() {
                // Every join handle would yield: let the caller's task yield
                // once instead (invariant 3).
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let Some(key) = self.ready.state.lock().keys.pop_front() else {
                break;
            };
            let Some(member) = self.tasks.get_mut(key) else {
                continue; // a stale key (invariant 4)
            };
            member.wake.queued.store(false, Ordering::Release);
            #[cfg(test)]
            {
                self.member_polls += 1;
            }
            let mut member_cx = Context::from_waker(&member.waker);
            let polled = Pin::new(&mut member.handle).poll(&mut member_cx);
            #[cfg(test)]
            if polled.is_pending() {
                tests::after_member_pending(Arc::as_ptr(&self.ready) as usize);
            }
            if let Poll::Ready(result) = polled {
                self.tasks.remove(key);
                return Poll::Ready(Some(result));
            }
        }
        Poll::Pending
    }

    /// The next result if a task has already finished, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_pinned(0, std::future::pending::<()>(), &rt.handle()).unwrap();
    /// assert!(set.try_join_next().is_none(), "nothing finished");
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let mut cx = Context::from_waker(Waker::noop());
        // It cannot yield, so no budget bounds it (Tokio's rule); nor does
        // it take the place of the waiter a `poll_join_next` left.
        let polled = crate::executor::coop::unconstrained(&mut cx, |cx| self.sweep(cx, false));
        match polled {
            Poll::Ready(r) => r,
            Poll::Pending => None,
        }
    }

    /// Aborts every task in the set; they stay in it, and `join_next`
    /// returns their results (cancelled, unless one finished first; a
    /// blocking closure already running cannot be interrupted and
    /// finishes).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_pinned(0, std::future::pending::<()>(), &rt.handle()).unwrap();
    /// set.abort_all();
    /// assert!(rt.block_on(set.join_next()).unwrap().unwrap_err().is_cancelled());
    /// ```
    pub fn abort_all(&mut self) {
        for (_, member) in self.tasks.iter() {
            member.handle.abort();
        }
    }

    /// Removes every task from the set without aborting it: they run on,
    /// detached.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_pinned(0, async {}, &rt.handle()).unwrap();
    /// set.detach_all();
    /// assert!(set.is_empty());
    /// ```
    pub fn detach_all(&mut self) {
        self.tasks.clear();
        self.ready.state.lock().keys.clear();
    }

    /// Aborts every task and waits until each has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut set = ringlane::JoinSet::new();
    /// set.spawn_pinned(0, std::future::pending::<()>(), &rt.handle()).unwrap();
    /// rt.block_on(set.shutdown());
    /// assert!(set.is_empty());
    /// ```
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

// As Tokio's (and as `JoinHandle`): the set's lock does not poison, and a
// set caught in an unwind is still consistent.
impl<T> std::panic::UnwindSafe for JoinSet<T> {}
impl<T> std::panic::RefUnwindSafe for JoinSet<T> {}

#[cfg(test)]
#[path = "join_set_tests.rs"]
mod tests;

impl<T> Drop for JoinSet<T> {
    /// Aborts every task still in the set (Tokio's rule).
    fn drop(&mut self) {
        self.abort_all();
    }
}
