//! `Runtime`: owns the shard threads; `block_on`, `shutdown` and `Drop`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::builder::Builder;
use crate::context;
use crate::handle::Handle;
use crate::shard::Started;

/// How long shutdown waits for shards, past the caller's timeout, to drop
/// their cancelled tasks and exit before it reports them stuck.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// What [`Runtime::shutdown`] found.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let report = rt.shutdown(std::time::Duration::from_secs(1));
/// assert!(report.is_clean());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks that had not finished by the deadline and were cancelled.
    pub unfinished_tasks: usize,
    /// Shards whose thread did not exit in time (blocked in a task); their
    /// threads were detached.
    pub stuck_shards: Vec<usize>,
    /// `spawn_blocking` closures still running at the deadline (a closure
    /// cannot be interrupted): their threads were detached and finish them
    /// on their own. Closures not started by then were cancelled and are
    /// counted in `unfinished_tasks`.
    pub blocking_still_running: usize,
}

impl ShutdownReport {
    /// Every task finished, every shard exited and no blocking closure was
    /// left running.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ringlane::ShutdownReport::default().is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.unfinished_tasks == 0
            && self.stuck_shards.is_empty()
            && self.blocking_still_running == 0
    }
}

/// A running ringlane runtime: its shard threads and their rings.
///
/// Dropping it shuts it down at once (tasks still running are cancelled);
/// use [`shutdown`](Self::shutdown) to give them time to finish.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let h = rt.handle();
/// let sum = rt.block_on(async move {
///     let a = h.spawn_pinned(0, async { 1 }).unwrap();
///     let b = h.spawn_pinned(1, async { 2 }).unwrap();
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(sum, 3);
/// ```
pub struct Runtime {
    handle: Handle,
    started: Option<Started>,
}

struct ThreadWaker {
    thread: Thread,
    notified: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

impl Runtime {
    /// A builder with default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().build().unwrap();
    /// assert!(rt.handle().shards() >= 1);
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn from_started(started: Started) -> Self {
        Self {
            handle: Handle {
                shared: started.shared.clone(),
            },
            started: Some(started),
        }
    }

    /// A handle for spawning onto this runtime from anywhere.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let h: ringlane::Handle = rt.handle();
    /// ```
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Enters the runtime on the calling thread until the guard drops (see
    /// [`Handle::enter`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let _guard = rt.enter();
    /// assert!(ringlane::Handle::current().is_some());
    /// ```
    pub fn enter(&self) -> crate::EnterGuard<'_> {
        self.handle.enter()
    }

    /// Runs `future` to completion on the calling thread, which sleeps
    /// between wake-ups. Timers work here (through the fallback timer), the
    /// runtime is entered ([`Handle::current`] and [`spawn`](crate::spawn)
    /// find it, as in Tokio's `block_on`), and the runtime's Tokio handle,
    /// if any, is entered too.
    ///
    /// # Panics
    ///
    /// If called from a task running on a shard: blocking a shard would
    /// stall every task on it (the same rule as Tokio's `block_on`).
    ///
    /// Called from a Tokio task, it blocks that Tokio worker thread (it
    /// cannot tell a Tokio task from a `spawn_blocking` thread, where
    /// blocking is fine): if the future needs that worker, for instance a
    /// Tokio timer on a current-thread runtime, it never completes. From
    /// Tokio code, await the [`JoinHandle`](crate::JoinHandle) instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// assert_eq!(rt.block_on(async { 5 }), 5);
    /// ```
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        assert!(
            context::current_index().is_none(),
            "Runtime::block_on called from a ringlane shard; await the future instead"
        );
        let tokio = self.handle.shared.config.tokio.clone();
        let _tokio_guard = tokio.as_ref().map(tokio::runtime::Handle::enter);
        let _entered = self.handle.enter();
        let waker_state = Arc::new(ThreadWaker {
            thread: thread::current(),
            notified: AtomicBool::new(false),
        });
        let waker = Waker::from(waker_state.clone());
        let mut cx = Context::from_waker(&waker);
        // Polled in a Tokio task (a `#[tokio::main]` calling this), the
        // future must not spend that task's budget: nothing refills it while
        // this blocks (coop invariant 4), so it would wait forever.
        let mut future = pin!(tokio::task::coop::unconstrained(future));
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            while !waker_state.notified.swap(false, Ordering::Acquire) {
                thread::park();
            }
        }
    }

    /// Shuts down: refuses new spawns at once, lets tasks run until
    /// `timeout` passes, then cancels those still running (their join
    /// handles give [`JoinError::is_cancelled`](crate::JoinError::is_cancelled)),
    /// and joins the shard threads. Called from a task on one of its own
    /// shards, it cancels at once whatever `timeout` says: that shard is
    /// blocked in the call, so its tasks could not use the grace period.
    /// That shard is not waited for (it exits once the call returns), nor,
    /// when the caller is a stealable task that moved, the shard that first
    /// ran it, which exits once the task ends; the report does not count
    /// the tasks such a shard cancels after the call returns.
    ///
    /// Blocking closures ([`Handle::spawn_blocking`]) go on until the
    /// deadline too; then those never started are cancelled (counted in
    /// `unfinished_tasks`) and those still running are left to finish on
    /// their own threads (`blocking_still_running`). Called from a closure,
    /// it does not wait for that closure, nor for closures queued behind it
    /// with no other thread to run them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let forever = rt.handle().spawn_pinned(0, std::future::pending::<()>()).unwrap();
    /// let report = rt.shutdown(Duration::from_millis(10));
    /// assert_eq!(report.unfinished_tasks, 1);
    /// ```
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> ShutdownReport {
        let Some(mut started) = self.started.take() else {
            return ShutdownReport::default();
        };
        let shared = &started.shared;
        let now = Instant::now();
        // Called on one of its own shards, the shutdown blocks that shard:
        // its tasks cannot run until the call returns, and tasks elsewhere
        // that wait on them would hold a graceful shutdown for the whole
        // timeout. It cancels at once instead.
        let on_own_shard = context::with_current(|cx| cx.shared.id == shared.id).unwrap_or(false);
        let timeout = if on_own_shard {
            Duration::ZERO
        } else {
            timeout
        };
        let deadline = crate::time::after(now, timeout);
        shared.begin_shutdown(deadline);
        // After this no spawn from outside reaches the injector, so the
        // shards' final drain of it is final.
        shared.injector_gate.close();
        // New blocking closures are refused; queued ones still run during
        // the grace period (blocking invariant 4).
        shared.blocking.refuse();
        // Ring every shard, whatever its doorbell state: a shard left
        // `NOTIFIED` by a doorbell another shard deferred (and may never
        // flush, e.g. when that shard is the one calling us) must still wake.
        // A spurious wake-up costs one loop.
        for remote in shared.remotes.iter() {
            remote.ring_eventfd();
        }
        // A shard dropping its own runtime cannot wait for itself, nor for
        // the shard whose registry holds the stealable task making the call
        // (that shard exits only once the task has ended). Both exit on their
        // own once the call returns; their threads are detached.
        let own =
            context::with_current(|cx| (cx.shared.id == shared.id).then_some(cx.index)).flatten();
        let caller_home = own.and_then(|_| {
            let home = crate::executor::polling_stealable_home();
            shared
                .remotes
                .iter()
                .position(|r| std::ptr::eq(Arc::as_ptr(r), home))
        });
        let unwaited = |index: usize| Some(index) == own || Some(index) == caller_home;
        let wait_until = deadline.checked_add(EXIT_GRACE).unwrap_or(deadline);
        let mut report = ShutdownReport::default();
        let mut exited = vec![false; shared.remotes.len()];
        let waited = |exited: &[bool]| (0..exited.len()).all(|i| exited[i] || unwaited(i));
        while !waited(&exited) {
            let left = wait_until.saturating_duration_since(Instant::now());
            match started.exits.get_mut().recv_timeout(left) {
                Ok(exit) => {
                    exited[exit.index] = true;
                    report.unfinished_tasks += exit.unfinished;
                }
                Err(_) => break,
            }
        }
        for (index, thread) in started.threads.into_iter().enumerate() {
            if exited[index] {
                let _ = thread.join();
            } else if !unwaited(index) {
                report.stuck_shards.push(index);
            }
        }
        let blocking = shared.blocking.close(deadline);
        report.unfinished_tasks += blocking.cancelled;
        report.blocking_still_running = blocking.running;
        report
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown_inner(Duration::ZERO);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("shards", &self.handle.shards())
            .finish()
    }
}

// As Tokio's `Runtime` (see `Handle`'s): `catch_unwind(|| rt.block_on(..))`
// compiles as it does with Tokio.
impl std::panic::UnwindSafe for Runtime {}
impl std::panic::RefUnwindSafe for Runtime {}
