//! `Handle`: the `Send + Sync + Clone` entry point to a running runtime,
//! usable from any thread (Tokio tasks included).

use std::future::Future;
use std::sync::Arc;

use crate::context;
use crate::error::Error;
use crate::executor::{self, JoinHandle};
use crate::mailbox::Remote;
use crate::placement::{Placement, sticky_shard};
use crate::shard::{Shared, notify_one};
use crate::stats::ShardStats;
use crate::sys::RingFeatures;

/// A cheap, cloneable reference to a runtime.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let handle = rt.handle();
/// // Spawn from a plain thread; await from the main thread.
/// let join = std::thread::spawn(move || {
///     handle.spawn_pinned(1, async { ringlane::current_shard() }).unwrap()
/// }).join().unwrap();
/// assert_eq!(rt.block_on(join).unwrap(), Some(1));
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    /// The handle of the runtime whose shard runs the calling task, or
    /// else of the runtime this thread has entered: inside
    /// [`Runtime::block_on`](crate::Runtime::block_on) or while an
    /// [`EnterGuard`](crate::EnterGuard) lives, as with Tokio's
    /// `Handle::current`. `None` anywhere else.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// assert!(ringlane::Handle::current().is_none());
    /// let j = rt.handle().spawn_pinned(0, async { ringlane::Handle::current().is_some() }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// assert!(rt.block_on(async { ringlane::Handle::current().is_some() }));
    /// ```
    pub fn current() -> Option<Handle> {
        context::with_current(|cx| Handle {
            shared: cx.shared.clone(),
        })
        .or_else(crate::enter::entered)
    }

    /// Enters this runtime on the calling thread until the guard drops:
    /// [`Handle::current`] finds it there and [`spawn`] spawns onto it, as
    /// with Tokio's `Handle::enter`. Guards may be dropped in any order:
    /// the current runtime is the one of the latest guard still alive. On
    /// a shard thread the shard's own runtime stays current whatever is
    /// entered (ADR 0019): a guard held across an `.await` would otherwise
    /// change the runtime of every task that shard runs meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let handle = rt.handle();
    /// let join = {
    ///     let _guard = handle.enter();
    ///     ringlane::spawn(async { 2 + 2 }).unwrap()
    /// };
    /// assert_eq!(rt.block_on(join).unwrap(), 4);
    /// ```
    pub fn enter(&self) -> crate::EnterGuard<'_> {
        crate::enter::enter(self)
    }

    /// How many shards the runtime has.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(3).build().unwrap();
    /// assert_eq!(rt.handle().shards(), 3);
    /// ```
    pub fn shards(&self) -> usize {
        self.shared.remotes.len()
    }

    /// The io_uring set-up the kernel accepted for this runtime's rings.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// assert!(rt.handle().ring_features().msg_ring);
    /// ```
    pub fn ring_features(&self) -> RingFeatures {
        self.shared.features
    }

    /// Whether shutdown has begun (spawns are then refused).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h = rt.handle();
    /// assert!(!h.is_shutdown());
    /// rt.shutdown(std::time::Duration::ZERO);
    /// assert!(h.is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.shared.is_shutting_down()
    }

    /// Counters of one shard.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// assert!(rt.handle().shard_stats(0).is_ok());
    /// assert!(rt.handle().shard_stats(1).is_err());
    /// ```
    pub fn shard_stats(&self, shard: usize) -> Result<ShardStats, Error> {
        let remote = self.shared.remote(shard)?;
        // Asleep first (Acquire): a shard seen asleep had run everything
        // handed to it before its last look. `PARKED` read after that is
        // that sleep's, or (the shard woke meanwhile, and its next tick took
        // what was handed over since) a later park's intent.
        let parked = remote
            .stats
            .asleep
            .load(std::sync::atomic::Ordering::Acquire)
            && remote.doorbell.is_parked();
        Ok(remote.stats.snapshot(shard, parked))
    }

    fn open_remote(&self, shard: usize) -> Result<&Arc<Remote>, Error> {
        let remote = self.shared.remote(shard)?;
        if self.shared.is_shutting_down() {
            return Err(Error::Shutdown);
        }
        Ok(remote)
    }

    /// Spawns a `Send` future on shard `shard`, where it stays for its whole
    /// life. Works from any thread.
    ///
    /// # Errors
    ///
    /// [`Error::ShardOutOfRange`] for a bad index, [`Error::Shutdown`] once
    /// the runtime is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let j = rt.handle().spawn_pinned(1, async { ringlane::current_shard() }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), Some(1));
    /// ```
    pub fn spawn_pinned<F>(&self, shard: usize, future: F) -> Result<JoinHandle<F::Output>, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let remote = self.open_remote(shard)?;
        let (runnable, join) = executor::spawn_send(future, remote.clone());
        remote.spawn(runnable).map_err(|_| Error::Shutdown)?;
        Ok(join)
    }

    /// Spawns a `Send` future that any shard may run: onto the calling
    /// shard's deque (from a shard of this runtime) or the global injector
    /// (from anywhere else), from where idle shards steal it.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] once the runtime is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let joins: Vec<_> = (0..100u64)
    ///     .map(|i| rt.handle().spawn_stealable(async move { i * 2 }).unwrap())
    ///     .collect();
    /// let sum: u64 = joins.into_iter().map(|j| rt.block_on(j).unwrap()).sum();
    /// assert_eq!(sum, 9_900);
    /// ```
    pub fn spawn_stealable<F>(&self, future: F) -> Result<JoinHandle<F::Output>, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.shared.is_shutting_down() {
            return Err(Error::Shutdown);
        }
        let (runnable, join) = executor::spawn_stealable(future, self.shared.clone());
        let on_this_runtime =
            context::with_current(|cx| cx.shared.id == self.shared.id).unwrap_or(false);
        if on_this_runtime {
            runnable.schedule(); // onto this shard's deque
        } else {
            let Some(_inside) = self.shared.injector_gate.enter() else {
                return Err(Error::Shutdown);
            };
            runnable.schedule(); // onto the injector
        }
        Ok(join)
    }

    /// Spawns `future` with the given [`Placement`] policy.
    ///
    /// # Errors
    ///
    /// [`Error::ShardOutOfRange`] for a bad shard index, [`Error::Shutdown`]
    /// once the runtime is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::Placement;
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let h = rt.handle();
    /// let on = |p| rt.block_on(h.spawn_with(p, async { ringlane::current_shard() }).unwrap()).unwrap();
    /// assert_eq!(on(Placement::Pinned(1)), Some(1));
    /// assert!(on(Placement::StealablePreferred(0)).is_some()); // shard 0 unless it is busy
    /// let a = on(Placement::RoundRobin);
    /// let b = on(Placement::RoundRobin);
    /// assert_ne!(a, b);
    /// ```
    pub fn spawn_with<F>(
        &self,
        placement: Placement,
        future: F,
    ) -> Result<JoinHandle<F::Output>, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shards = self.shards();
        match placement {
            Placement::Pinned(shard) => self.spawn_pinned(shard, future),
            Placement::Stealable => self.spawn_stealable(future),
            Placement::StealablePreferred(shard) => {
                let remote = self.open_remote(shard)?;
                let (runnable, join) = executor::spawn_stealable(future, self.shared.clone());
                let Some(_inside) = self.shared.injector_gate.enter() else {
                    return Err(Error::Shutdown);
                };
                remote.preferred.push(runnable);
                if remote.doorbell.should_ring() {
                    remote.ring_doorbell_now(); // the preferred shard sleeps: it takes it
                } else {
                    notify_one(&self.shared); // it is busy: an idle shard may take it
                }
                Ok(join)
            }
            Placement::RoundRobin => self.spawn_pinned(self.shared.round_robin_shard(), future),
            Placement::Sticky(key) => self.spawn_pinned(sticky_shard(key, shards), future),
        }
    }

    /// Runs `f` on a thread of the runtime's blocking pool, not on a
    /// shard, and returns a handle to await its result from anywhere (a
    /// shard task, `block_on`, a Tokio task): for blocking calls and long
    /// computations that would stall a shard's tasks, as
    /// `tokio::task::spawn_blocking`. Threads start on demand, up to
    /// [`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads);
    /// the runtime is current on them ([`Handle::current`], [`spawn`]).
    ///
    /// The closure cannot be interrupted: `abort` cancels it only before
    /// it starts. It runs outside the cooperative budget (a nested
    /// executor inside it is never told to yield). At shutdown, queued and
    /// running closures go on until the deadline; then those not started
    /// are cancelled, and running ones are left to finish on their own
    /// thread (`ShutdownReport::blocking_still_running`).
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] once the runtime is shutting down;
    /// [`Error::Io`] (`WouldBlock` for `EAGAIN`, with the OS error as its
    /// source) if the closure needed a new thread, the OS refused it
    /// (`RLIMIT_NPROC`, memory) and no pool thread is left to run it.
    /// With one left, the closure waits for it instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_blocking(|| {
    ///     std::thread::sleep(std::time::Duration::from_millis(5)); // blocks a pool thread only
    ///     ringlane::current_shard()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), None, "not on a shard");
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> Result<JoinHandle<R>, Error>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        crate::blocking::spawn(&self.shared, f)
    }

    /// Runs `f` on shard `shard` and returns its result: the request/response
    /// building block of a sharded service (each shard owning a piece of
    /// state, e.g. in a `thread_local!`). Await the handle from anywhere.
    ///
    /// # Errors
    ///
    /// As [`spawn_pinned`](Self::spawn_pinned).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::collections::HashMap;
    /// thread_local! { static KV: RefCell<HashMap<u64, String>> = RefCell::new(HashMap::new()); }
    ///
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let h = rt.handle();
    /// let shard_of = |key: u64| (key % 2) as usize;
    /// rt.block_on(h.call_on(shard_of(7), |_| KV.with(|kv| kv.borrow_mut().insert(7, "seven".into()))).unwrap()).unwrap();
    /// let v = rt.block_on(h.call_on(shard_of(7), |_| KV.with(|kv| kv.borrow().get(&7).cloned())).unwrap()).unwrap();
    /// assert_eq!(v.as_deref(), Some("seven"));
    /// ```
    pub fn call_on<F, R>(&self, shard: usize, f: F) -> Result<JoinHandle<R>, Error>
    where
        F: FnOnce(&ShardCtx) -> R + Send + 'static,
        R: Send + 'static,
    {
        let handle = self.clone();
        self.spawn_pinned(shard, async move {
            f(&ShardCtx {
                index: shard,
                handle,
            })
        })
    }

    /// Spawns a `!Send` future on shard `shard`: `build` is sent there and
    /// called on the shard, so the future may hold `Rc`, `RefCell` and other
    /// thread-bound state.
    ///
    /// # Errors
    ///
    /// As [`spawn_pinned`](Self::spawn_pinned).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let j = rt.handle().spawn_local_on(0, || async {
    ///     let shared = Rc::new(5);
    ///     ringlane::time::sleep(std::time::Duration::from_millis(1)).await;
    ///     *shared + 1
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 6);
    /// ```
    pub fn spawn_local_on<B, F>(
        &self,
        shard: usize,
        build: B,
    ) -> Result<JoinHandle<F::Output>, Error>
    where
        B: FnOnce() -> F + Send + 'static,
        F: Future + 'static,
        F::Output: Send + 'static,
    {
        let remote = self.open_remote(shard)?;
        // `build` runs in the task's first poll even on its own shard: a
        // panic in it is the task's, never the caller's.
        let (runnable, join) = executor::spawn_built_on_shard(build, remote.clone());
        if remote.is_current() {
            runnable.schedule();
            return Ok(join);
        }
        remote.spawn(runnable).map_err(|_| Error::Shutdown)?;
        Ok(join)
    }
}

/// What [`Handle::call_on`] hands its closure: the shard it runs on.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let j = rt.handle().call_on(1, |ctx| (ctx.index(), ctx.handle().shards())).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), (1, 2));
/// ```
#[derive(Debug)]
pub struct ShardCtx {
    index: usize,
    handle: Handle,
}

impl ShardCtx {
    /// The index of the shard running the closure.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// assert_eq!(rt.block_on(rt.handle().call_on(0, |c| c.index()).unwrap()).unwrap(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The runtime's handle, for spawning or calling onward.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let n = rt.block_on(rt.handle().call_on(0, |c| c.handle().shards()).unwrap()).unwrap();
    /// assert_eq!(n, 1);
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("shards", &self.shards())
            .finish()
    }
}

/// Runs a blocking closure on the current runtime's blocking pool (the
/// counterpart of `tokio::task::spawn_blocking`): see
/// [`Handle::spawn_blocking`].
///
/// # Errors
///
/// [`Error::NotOnShard`] where there is no current runtime
/// ([`Handle::current`] is `None`), [`Error::Shutdown`] during shutdown.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     // A blocking call, off the shard: the shard runs other tasks meanwhile.
///     ringlane::spawn_blocking(|| std::fs::read_to_string("/proc/self/comm"))
///         .unwrap()
///         .await
///         .unwrap()
///         .is_ok()
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap());
/// assert!(ringlane::spawn_blocking(|| ()).is_err(), "no runtime entered here");
/// ```
pub fn spawn_blocking<F, R>(f: F) -> Result<JoinHandle<R>, Error>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let handle = Handle::current().ok_or(Error::NotOnShard)?;
    handle.spawn_blocking(f)
}

/// Spawns a `!Send` future on the shard running the caller.
///
/// # Errors
///
/// [`Error::NotOnShard`] off a shard, [`Error::Shutdown`] during shutdown.
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_local_on(0, || async {
///     let n = Rc::new(Cell::new(1));
///     let n2 = n.clone();
///     ringlane::spawn_local(async move { n2.set(n2.get() + 1) }).unwrap().await.unwrap();
///     n.get()
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), 2);
/// assert!(ringlane::spawn_local(async {}).is_err(), "not on a shard here");
/// ```
pub fn spawn_local<F>(future: F) -> Result<JoinHandle<F::Output>, Error>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let (remote, shutting_down) =
        context::with_current(|cx| (cx.remote.clone(), cx.shared.is_shutting_down()))
            .ok_or(Error::NotOnShard)?;
    if shutting_down {
        return Err(Error::Shutdown);
    }
    let (runnable, join) = executor::spawn_here(future, remote);
    runnable.schedule();
    Ok(join)
}

/// Spawns a stealable task on the current runtime (the counterpart of
/// `tokio::spawn`): from a task on a shard, onto that shard's deque, from
/// where idle shards steal it; inside
/// [`Runtime::block_on`](crate::Runtime::block_on) or under
/// [`Handle::enter`], onto the runtime's injector.
///
/// # Errors
///
/// [`Error::NotOnShard`] where there is no current runtime
/// ([`Handle::current`] is `None`), [`Error::Shutdown`] during shutdown.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let children: Vec<_> = (0..10u32).map(|i| ringlane::spawn(async move { i }).unwrap()).collect();
///     let mut sum = 0;
///     for c in children { sum += c.await.unwrap(); }
///     sum
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), 45);
/// assert!(ringlane::spawn(async {}).is_err(), "no runtime entered here");
/// assert_eq!(rt.block_on(async { ringlane::spawn(async { 1 }).unwrap().await }).unwrap(), 1);
/// ```
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>, Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = Handle::current().ok_or(Error::NotOnShard)?;
    handle.spawn_stealable(future)
}

/// The index of the shard running the caller, or `None` off the runtime.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// assert_eq!(ringlane::current_shard(), None);
/// let j = rt.handle().spawn_pinned(1, async { ringlane::current_shard() }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), Some(1));
/// ```
pub fn current_shard() -> Option<usize> {
    context::current_index()
}

impl Handle {
    /// The calling thread's shard, if it is one of this handle's runtime.
    #[cfg_attr(not(feature = "hyper"), allow(dead_code))]
    pub(crate) fn current_shard_here(&self) -> Option<usize> {
        context::with_current(|cx| (cx.shared.id == self.shared.id).then_some(cx.index)).flatten()
    }
}

// As Tokio's `Handle`: the shared state sits behind non-poisoning locks and
// atomics, and panics inside the runtime are contained where they happen,
// so a caught panic leaves nothing half written for a handle to see.
impl std::panic::UnwindSafe for Handle {}
impl std::panic::RefUnwindSafe for Handle {}
