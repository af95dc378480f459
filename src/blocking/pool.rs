//! `BlockingPool`: the threads that run a runtime's blocking closures
//! (invariants in `blocking/mod.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::executor::Runnable;
use crate::shard::Shared;

/// One runtime's blocking threads and their queue.
pub(crate) struct BlockingPool {
    state: Mutex<PoolState>,
    /// Idle threads wait here for work (or for the pool to close).
    work: Condvar,
    /// `close` waits here for the closures to end and the threads to exit.
    exited: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    /// The threads' name (`{prefix}-blocking`) and their OS name.
    name: String,
    os_name: std::ffi::CString,
    /// With pinned shards: the CPUs the runtime's builder could run on,
    /// which each thread takes back at its start (a thread inherits the
    /// mask of the thread that spawns it, often a shard pinned to one CPU).
    cpus: Option<libc::cpu_set_t>,
}

#[derive(Default)]
struct PoolState {
    /// Closures not started yet, oldest first.
    queue: VecDeque<Runnable>,
    /// Live threads (spawned and not yet exited).
    threads: usize,
    /// Of those, the ones whose thread began running (the rest are being
    /// spawned, and may fail to start).
    started: usize,
    /// Threads waiting for work and not yet claimed (invariant 3).
    idle: usize,
    /// Wake-ups sent to idle threads and not yet taken (invariant 3).
    wakeups: usize,
    /// Closures running now.
    running: usize,
    /// No new closure is taken (shutdown began).
    refusing: bool,
    /// The threads exit (shutdown's end): what is queued was cancelled.
    closed: bool,
}

/// What a shutdown found still running when it stopped waiting.
pub(crate) struct Unfinished {
    /// Closures still running (their threads were detached).
    pub(crate) running: usize,
    /// Closures never started, cancelled.
    pub(crate) cancelled: usize,
}

thread_local! {
    /// The pool whose thread this is (null: none): a shutdown called
    /// from one of its closures does not wait for its own thread.
    static POOL_HERE: std::cell::Cell<*const BlockingPool> =
        const { std::cell::Cell::new(std::ptr::null()) };
}

impl BlockingPool {
    /// A pool; `unpin` (the shards are pinned) makes its threads take the
    /// calling thread's CPU mask.
    pub(crate) fn new(max_threads: usize, keep_alive: Duration, prefix: &str, unpin: bool) -> Self {
        Self {
            cpus: unpin.then(crate::shard::cpu_mask).flatten(),
            state: Mutex::new(PoolState::default()),
            work: Condvar::new(),
            exited: Condvar::new(),
            max_threads,
            keep_alive,
            name: format!("{prefix}-blocking"),
            os_name: crate::shard::os_thread_name(prefix, "-blk"),
        }
    }

    /// Queues a new closure's task, unless shutdown began, or the OS
    /// refused the thread it needed with none left to run it: then it is
    /// handed back, with the OS error in the second case
    /// (`spawn_blocking` answers `Error::Shutdown` or that error).
    pub(crate) fn push_new(
        &self,
        runnable: Runnable,
        shared: &Arc<Shared>,
    ) -> Result<(), (Runnable, Option<std::io::Error>)> {
        let state = self.state.lock();
        if state.refusing {
            return Err((runnable, None));
        }
        let mine: *const crate::executor::TaskMeta = runnable.metadata();
        let Some((mut orphaned, error)) = self.queue(state, runnable, shared, Some(mine)) else {
            return Ok(());
        };
        // Ours goes back to the caller with the error; the others, pushed
        // meanwhile, are cancelled (their handles report it).
        let at = orphaned
            .iter()
            .position(|r| std::ptr::eq(r.metadata(), mine));
        let ours = at.and_then(|at| orphaned.remove(at));
        drop(orphaned);
        match ours {
            Some(ours) => Err((ours, Some(error))),
            None => Ok(()), // still queued, for a thread that started
        }
    }

    /// Queues a closure's task handed to the schedule function. A closure's
    /// task is handed over once, by `push_new`, and stays scheduled until its
    /// only poll, so `async-task` never reschedules it (an abort's wake-up
    /// is ignored; the pool thread finds the abort flag when it runs the
    /// task): this is the schedule function's required arm. Once the pool
    /// closed the task is dropped, which cancels it. `shared` is the
    /// runtime that owns this pool.
    pub(crate) fn push(&self, runnable: Runnable, shared: &Arc<Shared>) {
        let state = self.state.lock();
        if state.closed {
            drop(state);
            drop(runnable); // never started: cancelled (task invariant 3)
            return;
        }
        // Nobody to tell: cancelled (their handles report it).
        drop(self.queue(state, runnable, shared, None));
    }

    /// Queues `runnable` under the lock `state` holds, and wakes an idle
    /// thread or starts one. If the OS refuses the thread and no other is
    /// left, nothing would ever run the queue: it is taken out and handed
    /// back, with the error, rather than left to hang.
    fn queue(
        &self,
        mut state: parking_lot::MutexGuard<'_, PoolState>,
        runnable: Runnable,
        shared: &Arc<Shared>,
        mine: Option<*const crate::executor::TaskMeta>,
    ) -> Option<(VecDeque<Runnable>, std::io::Error)> {
        state.queue.push_back(runnable);
        if state.idle > 0 {
            state.idle -= 1;
            state.wakeups += 1;
            self.work.notify_one();
            return None;
        }
        if state.threads >= self.max_threads {
            return None; // the next thread to finish takes it
        }
        state.threads += 1;
        drop(state);
        let shared = shared.clone();
        let spawned = match () {
            #[cfg(test)]
            () if tests::refusing_threads() => Err(std::io::Error::from_raw_os_error(libc::EAGAIN)),
            () => std::thread::Builder::new()
                .name(self.name.clone())
                .spawn(move || run(shared)),
        };
        let error = spawned.err()?;
        #[cfg(test)]
        tests::after_refused(self);
        // The OS refused a thread. Another one takes the closure later if
        // there is one.
        let mut state = self.state.lock();
        state.threads -= 1;
        let orphaned = if state.threads == 0 {
            std::mem::take(&mut state.queue)
        } else if state.started == 0 {
            // Only threads still being spawned, which may fail as well:
            // the caller's closure goes back to it rather than wait on them
            // (each failing pusher takes its own; the last takes the rest).
            let at = mine.and_then(|m| {
                state
                    .queue
                    .iter()
                    .position(|r| std::ptr::eq(r.metadata(), m))
            });
            at.and_then(|at| state.queue.remove(at))
                .into_iter()
                .collect()
        } else {
            VecDeque::new() // a running thread takes it
        };
        drop(state);
        self.exited.notify_all();
        Some((orphaned, error))
    }

    /// Shutdown's start: new closures are refused; queued and running ones
    /// go on (a task finishing in the grace period may await them).
    pub(crate) fn refuse(&self) {
        self.state.lock().refusing = true;
    }

    /// Shutdown's end: lets the queued and running closures go on until
    /// `deadline`, then cancels those never started, tells the idle threads
    /// to exit, and waits until `deadline` for the running ones (never for
    /// the calling thread, if it is one of ours).
    pub(crate) fn close(&self, deadline: Instant) -> Unfinished {
        let mine = usize::from(POOL_HERE.with(|p| std::ptr::eq(p.get(), self)));
        let mut state = self.state.lock();
        state.refusing = true;
        // Queued closures wait for a thread other than the caller's.
        while (!state.queue.is_empty() && state.threads > mine) || state.running > mine {
            if self.exited.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        state.closed = true;
        let queued = std::mem::take(&mut state.queue);
        state.wakeups += state.idle;
        state.idle = 0;
        self.work.notify_all();
        drop(state);
        // An aborted closure was the caller's choice, not the shutdown's.
        let cancelled = queued.iter().filter(|r| !r.metadata().is_aborted()).count();
        drop(queued); // after the lock: their destructors are foreign code
        let mut state = self.state.lock();
        while state.threads > mine {
            if self.exited.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        let running = state.running.saturating_sub(mine);
        Unfinished { running, cancelled }
    }
}

/// A pool thread's life: run what is queued, wait up to the keep-alive for
/// more, exit when idle that long or when the pool closes.
fn run(shared: Arc<Shared>) {
    let pool = &shared.blocking;
    crate::shard::set_os_thread_name(&pool.os_name);
    if let Some(cpus) = &pool.cpus {
        crate::shard::set_cpu_mask(cpus);
    }
    POOL_HERE.with(|p| p.set(pool));
    // The runtime is current in its closures (`Handle::current`,
    // `ringlane::spawn`), and so is Tokio's if the builder was given one.
    let handle = crate::Handle {
        shared: shared.clone(),
    };
    let entered = handle.enter();
    let tokio = shared.config.tokio.as_ref().map(|t| t.enter());
    let mut state = pool.state.lock();
    state.started += 1;
    loop {
        if let Some(runnable) = state.queue.pop_front() {
            state.running += 1;
            drop(state);
            // `Tracked` turns a panic into the handle's error; this catches
            // one from a destructor it does not cover.
            crate::executor::contain(|| runnable.run());
            state = pool.state.lock();
            state.running -= 1;
            if state.refusing {
                pool.exited.notify_all(); // `close` waits for the last one
            }
            continue;
        }
        if state.closed {
            break;
        }
        state.idle += 1;
        let deadline = crate::time::after(Instant::now(), pool.keep_alive);
        let timed_out = pool.work.wait_until(&mut state, deadline).timed_out();
        #[cfg(test)]
        if timed_out {
            // A push landing between the timeout and the look below.
            parking_lot::MutexGuard::unlocked(&mut state, || tests::after_timeout(pool));
        }
        if state.wakeups > 0 {
            // Claimed by a push (or by `close`), which counted one thread
            // out of `idle` for us (invariant 3).
            state.wakeups -= 1;
            continue;
        }
        state.idle -= 1;
        if timed_out && state.queue.is_empty() {
            break; // idle for the whole keep-alive
        }
    }
    state.threads -= 1;
    state.started -= 1;
    drop(state);
    POOL_HERE.with(|p| p.set(std::ptr::null()));
    // `close` may wait for every thread but its caller's.
    pool.exited.notify_all();
    drop(tokio);
    drop(entered);
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
