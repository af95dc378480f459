//! The process-wide signal state behind `ringlane::signal`.
//!
//! Invariants:
//! 1. A signal's handler (installed once per signal through
//!    `signal-hook-registry`, which chains a handler installed before it)
//!    does only async-signal-safe work: it bumps the signal's delivery
//!    count, then writes one byte to the wake pipe (nonblocking: a full pipe
//!    already holds a wake-up, read after this write failed).
//! 2. One thread (`ringlane-signal`, started with the registry and living
//!    as long as the process) reads the pipe and, after each read, takes
//!    the waiters' lock and wakes the waiters of each signal whose count
//!    moved since its last round. A woken waiter keeps its slot (its waker
//!    taken, a no-op one left) until its listener is dropped.
//! 3. A listener compares its signal's count with what it saw last and
//!    registers its waker under that same lock. A delivery after its look
//!    bumps the count before the byte the thread reads, and the thread
//!    takes the lock after that read: it finds the waker registered, or
//!    the listener's look under the lock finds the new count. No wake-up is
//!    lost.
//! 4. Registrations never go away (as Tokio's and `signal-hook`'s): once a
//!    signal has a handler, its default action (ending the process, for
//!    `SIGINT`) no longer happens.
//! 5. If the thread ever stops (its pipe read fails for good: some code
//!    closed it), the registry is marked dead and every waiter woken:
//!    listeners then end (`None`, for good) and new ones are refused,
//!    never left to hang. In a forked child (no thread, the parent's pipe)
//!    the same: listeners from before the fork end, new ones are refused.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;

use parking_lot::Mutex;
use slab::Slab;

/// The highest signal number with room here (`SIGRTMAX` is 64 on the
/// architectures Linux's io_uring runs on but MIPS, where it is 127).
pub(super) const MAX_SIGNAL: usize = 64;

pub(super) struct Registry {
    /// Deliveries per signal number since the process began (invariant 1).
    counts: [AtomicU64; MAX_SIGNAL + 1],
    /// The pipe's write end, for the handlers.
    wake_write: RawFd,
    /// The process that made the registry (invariant 5).
    pid: u32,
    /// The thread stopped (invariant 5).
    dead: AtomicBool,
    /// Which signals have a handler (invariant 4); taken to install one.
    installed: Mutex<[bool; MAX_SIGNAL + 1]>,
    /// Wakers of the listeners waiting, by signal (invariant 3).
    waiters: Mutex<Vec<Slab<Waker>>>,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The registry, made at the first use (the pipe and the thread); one that
/// could not be made (no fd or thread for a moment) is tried again at the
/// next use.
pub(super) fn registry() -> io::Result<&'static Registry> {
    static STARTING: Mutex<()> = Mutex::new(());
    let registry = match REGISTRY.get() {
        Some(r) => r,
        None => {
            let _starting = STARTING.lock();
            match REGISTRY.get() {
                Some(r) => r,
                None => {
                    let made = Registry::start().map_err(|e| {
                        io::Error::new(e.kind(), format!("signal handling could not start: {e}"))
                    })?;
                    REGISTRY.get_or_init(move || made)
                }
            }
        }
    };
    if registry.is_dead() {
        return Err(io::Error::other(
            "signal handling stopped (its pipe was closed, or this is a forked child)",
        ));
    }
    Ok(registry)
}

impl Registry {
    fn start() -> io::Result<Registry> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two fds `pipe2` writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds are new and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: plain fcntl on our own fd.
        if unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        std::thread::Builder::new()
            .name("ringlane-signal".into())
            .spawn(move || wake_loop(read))?;
        Ok(Registry {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            // The write end lives as long as the process (the handlers
            // may run at any time).
            wake_write: std::os::fd::IntoRawFd::into_raw_fd(write),
            pid: std::process::id(),
            dead: AtomicBool::new(false),
            installed: Mutex::new([false; MAX_SIGNAL + 1]),
            waiters: Mutex::new((0..=MAX_SIGNAL).map(|_| Slab::new()).collect()),
        })
    }

    /// Installs the handler of `signal` (at most `MAX_SIGNAL`) unless it
    /// has one.
    pub(super) fn install(&'static self, signal: usize) -> io::Result<()> {
        let mut installed = self.installed.lock();
        if installed[signal] {
            return Ok(());
        }
        let (count, wake_write) = (&self.counts[signal], self.wake_write);
        let action = move || {
            // Async-signal-safe only (invariant 1): an atomic add, write(2).
            count.fetch_add(1, Ordering::SeqCst);
            let byte = 1u8;
            // SAFETY: one byte from a live local; the fd is never closed.
            unsafe { libc::write(wake_write, (&raw const byte).cast(), 1) };
        };
        // SAFETY: the action is async-signal-safe (above); `signal` was
        // checked against `FORBIDDEN` by the caller.
        unsafe { signal_hook_registry::register(signal as libc::c_int, action) }?;
        installed[signal] = true;
        Ok(())
    }

    /// Deliveries of `signal` so far.
    pub(super) fn count(&self, signal: usize) -> u64 {
        self.counts[signal].load(Ordering::SeqCst)
    }

    /// Whether the thread stopped, or this is a forked child, where it
    /// does not run (invariant 5).
    pub(super) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst) || self.pid != std::process::id()
    }

    /// Registers (or replaces) a listener's waker, unless `signal`'s count
    /// moved past `seen` (then returns the new count: invariant 3) or the
    /// registry is dead (then `Some(seen)`: the caller looks at `is_dead`).
    pub(super) fn wait(
        &self,
        signal: usize,
        seen: u64,
        slot: &mut Option<usize>,
        waker: &Waker,
    ) -> Option<u64> {
        #[cfg(test)]
        tests::BEFORE_WAIT_LOCK.run(signal);
        let mut waiters = self.waiters.lock();
        let now = self.count(signal);
        if now != seen || self.is_dead() {
            return Some(now);
        }
        let replaced = match slot.and_then(|k| waiters[signal].get_mut(k)) {
            Some(w) if w.will_wake(waker) => None,
            Some(w) => Some(std::mem::replace(w, waker.clone())),
            None => {
                *slot = Some(waiters[signal].insert(waker.clone()));
                None
            }
        };
        drop(waiters);
        drop(replaced); // foreign code, after the lock
        None
    }

    /// Forgets a listener's waker (the listener is dropped).
    pub(super) fn forget(&self, signal: usize, slot: usize) {
        let removed = self.waiters.lock()[signal].try_remove(slot);
        drop(removed); // after the lock
    }

    /// Takes the wakers of the signals `moved` says, leaving no-op ones
    /// (invariant 2), and wakes them outside the lock.
    fn wake(&self, moved: impl Fn(usize) -> bool) {
        let woken: Vec<Waker> = self
            .waiters
            .lock()
            .iter_mut()
            .enumerate()
            .filter(|(signal, _)| moved(*signal))
            .flat_map(|(_, slab)| slab.iter_mut())
            .map(|(_, w)| std::mem::replace(w, Waker::noop().clone()))
            .collect();
        for w in woken {
            crate::executor::contain(|| w.wake());
        }
    }
}

/// The thread of invariant 2.
fn wake_loop(read: OwnedFd) {
    let mut buf = [0u8; 4096];
    let mut last = [0u64; MAX_SIGNAL + 1];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // A byte means a registry: handlers are installed only through it.
        let Some(registry) = REGISTRY.get() else {
            if n <= 0 {
                return;
            }
            continue;
        };
        if n <= 0 {
            // The pipe is gone (invariant 5): end every listener. Its fd
            // number was closed by someone else (or will be reused): not
            // ours to close again.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(read);
            registry.dead.store(true, Ordering::SeqCst);
            registry.wake(|_| true);
            return;
        }
        let now: [u64; MAX_SIGNAL + 1] = std::array::from_fn(|s| registry.count(s));
        registry.wake(|s| now[s] != last[s]);
        last = now;
        #[cfg(test)]
        tests::WAKE_ROUNDS.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
