//! The process-wide signal state behind `ringlane::signal`.
//!
//! Invariants:
//! 1. A signal's handler (installed once per signal through
//!    `signal-hook-registry`, which chains a handler installed before it)
//!    does only async-signal-safe work: it bumps the signal's delivery
//!    count, then writes one byte to the wake pipe (nonblocking: a full pipe
//!    already holds a wake-up).
//! 2. One thread (`ringlane-signal`, started with the registry and living
//!    as long as the process) reads the pipe and, after each read, takes
//!    the waiters' lock and wakes every waiter (listeners look at their own
//!    signal's count again; a spurious wake costs a look). A waiter keeps
//!    its slot until its listener is dropped.
//! 3. A listener compares its signal's count with what it saw last and
//!    registers its waker under that same lock. A delivery after its look
//!    bumps the count before the byte the thread reads, and the thread
//!    takes the lock after that read: it finds the waker registered, or
//!    the listener's look under the lock finds the new count. No wake-up is
//!    lost.
//! 4. Registrations never go away (as Tokio's and `signal-hook`'s): once a
//!    signal has a handler, its default action (ending the process, for
//!    `SIGINT`) no longer happens.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

use parking_lot::Mutex;
use slab::Slab;

/// Signal numbers go up to `SIGRTMAX` (64 on Linux).
pub(super) const MAX_SIGNAL: usize = 64;

pub(super) struct Registry {
    /// Deliveries per signal number since the process began (invariant 1).
    counts: [AtomicU64; MAX_SIGNAL + 1],
    /// The pipe's write end, for the handlers.
    wake_write: RawFd,
    /// Which signals have a handler (invariant 4); taken to install one.
    installed: Mutex<[bool; MAX_SIGNAL + 1]>,
    /// Wakers of the listeners waiting, by signal (invariant 3).
    waiters: Mutex<Vec<Slab<Waker>>>,
}

/// The registry, made at the first use: the pipe and the thread.
pub(super) fn registry() -> io::Result<&'static Registry> {
    static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Registry::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(format!("signal handling could not start: {e}")))
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
            installed: Mutex::new([false; MAX_SIGNAL + 1]),
            waiters: Mutex::new((0..=MAX_SIGNAL).map(|_| Slab::new()).collect()),
        })
    }

    /// Installs the handler of `signal` unless it has one.
    pub(super) fn install(&'static self, signal: usize) -> io::Result<()> {
        let mut installed = self.installed.lock();
        if installed[signal] {
            return Ok(());
        }
        let action = move || {
            // Async-signal-safe only (invariant 1): an atomic add, write(2).
            self.counts[signal].fetch_add(1, Ordering::SeqCst);
            let byte = 1u8;
            // SAFETY: one byte from a live local; the fd is never closed.
            unsafe { libc::write(self.wake_write, (&raw const byte).cast(), 1) };
        };
        // SAFETY: the action is async-signal-safe (above); `signal` was
        // checked against `FORBIDDEN` by the caller.
        unsafe { signal_hook_registry::register(signal as libc::c_int, action) }
            .map_err(io::Error::other)?;
        installed[signal] = true;
        Ok(())
    }

    /// Deliveries of `signal` so far.
    pub(super) fn count(&self, signal: usize) -> u64 {
        self.counts[signal].load(Ordering::SeqCst)
    }

    /// Registers (or replaces) a listener's waker, unless `signal`'s count
    /// moved past `seen`: then returns the new count (invariant 3).
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
        if now != seen {
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
}

/// The thread of invariant 2.
fn wake_loop(read: OwnedFd) {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return; // cannot happen: the write end is never closed
        }
        let Ok(registry) = registry() else { return };
        // Taken, not cloned (no foreign code under the lock), and woken
        // outside it; each listener keeps its slot, and its next wait puts
        // its waker back (the no-op one never `will_wake` a real one).
        let woken: Vec<Waker> = registry
            .waiters
            .lock()
            .iter_mut()
            .flat_map(|slab| slab.iter_mut())
            .map(|(_, w)| std::mem::replace(w, Waker::noop().clone()))
            .collect();
        for w in woken {
            crate::executor::contain(|| w.wake());
        }
        #[cfg(test)]
        tests::WAKE_ROUNDS.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
