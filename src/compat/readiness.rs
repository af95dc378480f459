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

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use io_uring::{opcode, types};
use parking_lot::Mutex;

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

#[derive(Default)]
struct Side {
    ready: bool,
    armed: Option<Op<()>>,
}

/// Readiness of one fd, per direction (invariant 1). Not nameable outside
/// the crate (its module is private).
pub struct Readiness {
    fd: RawFd,
    read: Mutex<Side>,
    write: Mutex<Side>,
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
            })
        };
        Self {
            fd,
            read: side(),
            write: side(),
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
