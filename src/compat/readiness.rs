//! The readiness engine: epoll's contract (readiness, then a nonblocking
//! syscall) driven by `IORING_OP_POLL_ADD` on the shard's own ring.
//!
//! Invariants:
//! 1. Each direction (read, write) of an fd has its own state: a cached
//!    readiness flag and at most one armed one-shot `POLL_ADD` op, which
//!    holds that direction's waker. Split halves therefore wait at once
//!    without stealing each other's wake-ups.
//! 2. Syscall first: a direction starts ready. Only an `EAGAIN` clears the
//!    flag ([`Readiness::clear`]); only a completed poll sets it again.
//! 3. The poll is an op of the native lane's lifecycle (op invariants 1 to
//!    7): it is armed on the ring of the shard that polls it, completes
//!    there even if the task moved (a stolen task is woken on its new
//!    shard), and dropping it (the stream dropped, or `clear` racing a
//!    poll that is no longer wanted) cancels it in the kernel.
//! 4. A completed poll reporting `POLLERR` or `POLLHUP` counts as ready for
//!    both calls that may follow (the syscall then reports the condition).
//! 5. Polled outside the runtime (a Tokio task), a direction with nothing
//!    armed forwards its wait: a helper task on the fd's home shard (the
//!    shard it was created or first polled on) arms the poll and wakes the
//!    poller. Dropping the stream aborts the helper, which cancels its
//!    poll. A socket never seen by a shard has no home: a clear error.

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use io_uring::{opcode, types};
use parking_lot::Mutex;

use crate::mailbox::Remote;
use crate::op::{self, Op};

/// Which way an fd is waited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    fn events(self) -> u32 {
        match self {
            Direction::Read => (libc::POLLIN | libc::POLLRDHUP) as u32,
            Direction::Write => libc::POLLOUT as u32,
        }
    }
}

/// A wait armed on the home shard for a poller outside the runtime
/// (invariant 5): the helper task's result and the poller's waker.
#[derive(Default)]
struct Forward {
    state: parking_lot::Mutex<(Option<io::Result<()>>, Option<std::task::Waker>)>,
}

#[derive(Default)]
struct Side {
    ready: bool,
    armed: Option<Op<()>>,
    /// Off-shard: the forwarded wait and its helper task (aborted on drop).
    forwarded: Option<(Arc<Forward>, crate::JoinHandle<()>)>,
}

impl Drop for Side {
    fn drop(&mut self) {
        if let Some((_, helper)) = self.forwarded.take() {
            helper.abort(); // its poll op is cancelled on its shard
        }
    }
}

/// Readiness of one fd, per direction (invariant 1). Not nameable outside
/// the crate (its module is private).
pub struct Readiness {
    fd: RawFd,
    read: Mutex<Side>,
    write: Mutex<Side>,
    /// The shard that arms waits for pollers outside the runtime: the one
    /// this was created or first polled on (invariant 5).
    home: std::sync::OnceLock<Arc<Remote>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Both directions start ready (invariant 2).
    pub(crate) fn new(fd: RawFd) -> Self {
        let side = || {
            Mutex::new(Side {
                ready: true,
                armed: None,
                forwarded: None,
            })
        };
        let home = std::sync::OnceLock::new();
        if let Some(remote) = crate::context::with_current(|cx| cx.remote.clone()) {
            let _ = home.set(remote);
        }
        Self {
            fd,
            read: side(),
            write: side(),
            home,
        }
    }

    fn side(&self, dir: Direction) -> &Mutex<Side> {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    /// Ready, or arms a poll and registers `cx`'s waker.
    ///
    /// # Errors
    ///
    /// If the poll cannot be submitted (off a shard, a broken ring) or the
    /// kernel fails it.
    pub(crate) fn poll_ready(&self, dir: Direction, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut side = self.side(dir).lock();
        if side.ready {
            return Poll::Ready(Ok(()));
        }
        let fd = self.fd;
        let events = dir.events();
        let on_shard = crate::context::with_current(|cx| {
            let _ = self.home.set(cx.remote.clone());
        })
        .is_some();
        if !on_shard && side.armed.is_none() {
            return self.poll_forwarded(&mut side, dir, cx);
        }
        let armed = side.armed.get_or_insert_with(|| {
            // Shared by every waiter of this direction: never bounded by
            // one caller's `native::timeout`.
            op::submit((), false, move |_| {
                opcode::PollAdd::new(types::Fd(fd), events).build()
            })
            .untimed()
        });
        let result = ready!(Pin::new(armed).poll(cx));
        side.armed = None;
        match result {
            Ok((mask, ())) if mask >= 0 => {
                side.ready = true;
                Poll::Ready(Ok(()))
            }
            Ok((err, ())) => Poll::Ready(Err(io::Error::from_raw_os_error(-err))),
            Err((e, ())) => Poll::Ready(Err(e)),
        }
    }

    /// Off a shard (invariant 5): a helper task on the home shard arms the
    /// poll and reports back.
    fn poll_forwarded(
        &self,
        side: &mut Side,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if side.forwarded.is_none() {
            let Some(home) = self.home.get() else {
                return Poll::Ready(Err(io::Error::other(
                    "this compat socket was never on a ringlane shard: create it (or poll it first) in a shard task to poll it from outside the runtime",
                )));
            };
            let forward = Arc::new(Forward::default());
            let report = forward.clone();
            let (fd, events) = (self.fd, dir.events());
            let helper = async move {
                let op = op::submit((), false, move |_| {
                    opcode::PollAdd::new(types::Fd(fd), events).build()
                })
                .untimed();
                let result = match op.await {
                    Ok((mask, ())) if mask >= 0 => Ok(()),
                    Ok((err, ())) => Err(io::Error::from_raw_os_error(-err)),
                    Err((e, ())) => Err(e),
                };
                let waker = {
                    let mut state = report.state.lock();
                    state.0 = Some(result);
                    state.1.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            };
            let home = home.clone();
            let (runnable, join) = crate::executor::spawn_send(helper, move |r| home.schedule(r));
            if self.home.get().expect("set above").spawn(runnable).is_err() {
                return Poll::Ready(Err(crate::Error::Shutdown.into()));
            }
            side.forwarded = Some((forward, join));
        }
        let (forward, _) = side.forwarded.as_ref().expect("set above");
        let mut state = forward.state.lock();
        match state.0.take() {
            Some(result) => {
                drop(state);
                side.forwarded = None; // its helper has finished
                if result.is_ok() {
                    side.ready = true;
                }
                Poll::Ready(result)
            }
            None => {
                match &state.1 {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => state.1 = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// Forgets `dir`'s readiness after the syscall returned `EAGAIN`.
    pub(crate) fn clear(&self, dir: Direction) {
        self.side(dir).lock().ready = false;
    }

    /// Runs `f` (a nonblocking syscall) once `dir` is ready, clearing the
    /// readiness and waiting again on `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            ready!(self.poll_ready(dir, cx))?;
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(dir),
                r => return Poll::Ready(r),
            }
        }
    }
}
