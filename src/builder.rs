//! `Builder`: configures and starts a [`Runtime`].

use std::time::Duration;

use crate::error::Error;
use crate::runtime::Runtime;
use crate::shard::{self, Config};
use crate::sys::probe_features;

/// The most shards a runtime may have (a thread, a ring and a few fds
/// each); far beyond any machine's cores, it keeps an absurd count a clear
/// error rather than an allocation failure.
const MAX_SHARDS: usize = 4096;

/// The largest task budget: a tick of that many polls of a task that
/// yields in a loop still lets the shard look at its mailbox and timers
/// every few milliseconds.
const MAX_TASK_BUDGET: usize = 1 << 16;

/// Configures a runtime. Created by [`Runtime::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = ringlane::Runtime::builder()
///     .shards(2)
///     .ring_entries(512)
///     .thread_name("my-shard")
///     .spin_before_park(Duration::from_micros(50))
///     .build()
///     .unwrap();
/// assert_eq!(rt.handle().shards(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    shards: Option<usize>,
    ring_entries: u32,
    pin_cpus: bool,
    thread_name: String,
    spin: Option<Duration>,
    budget: usize,
    defer_taskrun: bool,
    tokio: Option<tokio::runtime::Handle>,
    max_blocking_threads: usize,
    keep_alive: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            shards: None,
            ring_entries: 256,
            pin_cpus: false,
            thread_name: "ringlane-shard".into(),
            spin: None,
            budget: 128,
            defer_taskrun: true,
            tokio: None,
            max_blocking_threads: crate::blocking::DEFAULT_MAX_THREADS,
            keep_alive: crate::blocking::DEFAULT_KEEP_ALIVE,
        }
    }
}

impl Builder {
    /// Number of shards (threads), 1 to 4,096. Default: the available
    /// parallelism.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// assert_eq!(rt.handle().shards(), 1);
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Submission queue entries per ring (rounded up to a power of two by
    /// the kernel; the completion queue gets four times as many, at least
    /// 64 and at most 65536). Default 256.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).ring_entries(64).build().unwrap();
    /// ```
    pub fn ring_entries(mut self, entries: u32) -> Self {
        self.ring_entries = entries;
        self
    }

    /// Pins shard `i` to the `i`-th CPU that the thread calling
    /// [`build`](Self::build) may run on (its affinity mask, which `taskset`
    /// or a pinned caller narrows), wrapping around when there are more
    /// shards than CPUs. Best effort: a shard whose pinning the kernel
    /// refuses runs unpinned. Default off.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).pin_cpus(true).build().unwrap();
    /// ```
    pub fn pin_cpus(mut self, pin: bool) -> Self {
        self.pin_cpus = pin;
        self
    }

    /// Prefix of shard thread names (`{prefix}-{index}`; no NUL byte).
    /// Default `ringlane-shard`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).thread_name("db").build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async { std::thread::current().name().map(String::from) }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().as_deref(), Some("db-0"));
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// Lets an idle shard spin for `window` before it parks in the kernel,
    /// trading CPU time for wake-up latency. Default: no spinning.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1)
    ///     .spin_before_park(std::time::Duration::from_micros(20)).build().unwrap();
    /// ```
    pub fn spin_before_park(mut self, window: Duration) -> Self {
        self.spin = (!window.is_zero()).then_some(window);
        self
    }

    /// Tasks a shard polls per tick before it looks at its mailbox, timers
    /// and ring again (each poll's cooperative budget stays 128, Tokio's).
    /// Default 128; at most 65,536 (a shard running a task that yields in
    /// a loop still looks at its mailbox every few milliseconds).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).task_budget(32).build().unwrap();
    /// ```
    pub fn task_budget(mut self, budget: usize) -> Self {
        self.budget = budget;
        self
    }

    /// Whether to use `IORING_SETUP_DEFER_TASKRUN` when the kernel has it
    /// (default `true`; see ADR 0003 for the trade-off).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).defer_taskrun(false).build().unwrap();
    /// assert!(!rt.handle().ring_features().defer_taskrun);
    /// ```
    pub fn defer_taskrun(mut self, enabled: bool) -> Self {
        self.defer_taskrun = enabled;
        self
    }

    /// The most threads that run [`spawn_blocking`](crate::Handle::spawn_blocking)
    /// closures at once (default 512, Tokio's); more closures queue.
    /// Threads start on demand and exit after
    /// [`thread_keep_alive`](Self::thread_keep_alive) without work.
    ///
    /// `native::fs`'s calls without an io_uring opcode (`read_dir`,
    /// `canonicalize`, ...) share these threads. As with Tokio, closures
    /// that wait for other closures deadlock once every thread is taken
    /// by such a wait: the ones waited for stay queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).max_blocking_threads(4).build().unwrap();
    /// let j = rt.handle().spawn_blocking(|| 6 * 7).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 42);
    /// assert!(ringlane::Runtime::builder().max_blocking_threads(0).build().is_err());
    /// ```
    pub fn max_blocking_threads(mut self, threads: usize) -> Self {
        self.max_blocking_threads = threads;
        self
    }

    /// How long a blocking-pool thread waits for work before it exits
    /// (default 10 s, Tokio's).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = ringlane::Runtime::builder().shards(1).thread_keep_alive(Duration::from_millis(100)).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn thread_keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// A Tokio runtime handle that every shard thread (and blocking-pool
    /// thread) enters, so shard tasks (and blocking closures) can use
    /// `tokio::time`, `tokio::spawn` and other Tokio-context calls.
    ///
    /// # Examples
    ///
    /// ```
    /// let tokio_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
    /// let rt = ringlane::Runtime::builder().shards(1).tokio_handle(tokio_rt.handle().clone()).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    ///     tokio::spawn(async { 1 }).await.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub fn tokio_handle(mut self, handle: tokio::runtime::Handle) -> Self {
        self.tokio = Some(handle);
        self
    }

    /// Probes the kernel, starts every shard and returns the running runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for zero or more than 4096 shards, fewer
    /// than 2 or over 32768 ring entries, a task budget of zero or above
    /// 65536, a blocking pool of zero threads, or a NUL byte in the thread
    /// name; [`Error::RingSetup`] when the kernel
    /// refuses io_uring (`EPERM` under seccomp or `io_uring_disabled`,
    /// `ENOSYS`, `ENOMEM`, `EMFILE` when the process is out of fds); [`Error::KernelTooOld`] on a kernel without `MSG_RING`, the probe register call, or a settable CQ size (all three are in Linux 5.18).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = ringlane::Runtime::builder().shards(0).build().unwrap_err();
    /// assert!(matches!(err, ringlane::Error::InvalidConfig(_)));
    /// ```
    pub fn build(self) -> Result<Runtime, Error> {
        let shards = match self.shards {
            Some(n) => n,
            // The default never exceeds the limit a caller could not see.
            None => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_SHARDS)),
        };
        if shards == 0 {
            return Err(Error::InvalidConfig("the shard count must be at least 1"));
        }
        if shards > MAX_SHARDS {
            return Err(Error::InvalidConfig("the shard count must be at most 4096"));
        }
        if self.thread_name.contains('\0') {
            return Err(Error::InvalidConfig(
                "a thread name cannot contain a NUL byte",
            ));
        }
        if self.ring_entries < 2 || self.ring_entries > 32_768 {
            return Err(Error::InvalidConfig(
                "ring entries must be between 2 and 32768",
            ));
        }
        if self.budget == 0 {
            return Err(Error::InvalidConfig("the task budget must be at least 1"));
        }
        if self.max_blocking_threads == 0 {
            return Err(Error::InvalidConfig(
                "the blocking pool needs at least 1 thread",
            ));
        }
        if self.budget > MAX_TASK_BUDGET {
            return Err(Error::InvalidConfig(
                "the task budget must be at most 65536",
            ));
        }
        let features = probe_features(self.defer_taskrun)?;
        let config = Config {
            shards,
            ring_entries: self.ring_entries,
            pin_cpus: self.pin_cpus,
            thread_name: self.thread_name,
            spin: self.spin,
            budget: self.budget,
            tokio: self.tokio,
            max_blocking_threads: self.max_blocking_threads,
            blocking_keep_alive: self.keep_alive,
        };
        shard::start(config, features).map(Runtime::from_started)
    }
}
