//! The readiness engine: epoll's contract (readiness, then a nonblocking
//! syscall) driven by `IORING_OP_POLL_ADD` on the shard's own ring.
//!
//! Invariants:
//! 1. Each direction (read, write) of an fd has its own state: a cached
//!    readiness flag, at most one armed multishot `POLL_ADD` op (one SQE for
//!    as long as the fd is waited on; re-armed if the kernel ends it), and the list
//!    of every task waiting on that direction. The op is polled with a
//!    waker of the direction's own that wakes the whole list, so split
//!    halves wait at once, and so do several tasks on one direction (two
//!    `recv_from` on a shared socket, accept loops on one listener).
//! 2. Syscall first: a direction of the runtime's own sockets starts ready
//!    (a user's `AsyncFd` starts not ready). Only an `EAGAIN` clears the
//!    flag ([`Readiness::clear`]); only a poll CQE sets it again. CQEs that
//!    arrive between two looks are coalesced into one (the OR of their
//!    masks); a stale one costs a syscall that says `EAGAIN`, never a
//!    missed event. Each setting of the flag starts a new [`Tick`], and an
//!    `EAGAIN` clears only the tick its syscall was made in: a syscall
//!    that began before an event (another task's, on a shared socket) must
//!    not erase it, or the event's data would sit unseen until the next.
//! 3. The poll is an op of the native lane's lifecycle (op invariants 1 to
//!    7): it is armed on the ring of the shard that polls it, completes
//!    there even if the task moved (a stolen task is woken on its new
//!    shard), and dropping it (the stream dropped, or `clear` racing a
//!    poll that is no longer wanted) cancels it in the kernel.
//! 4. A poll CQE reporting `POLLERR` or `POLLHUP` marks its direction
//!    ready: the syscall that follows reports the condition. (The other
//!    direction learns it from its own poll, which the kernel completes at
//!    once for a socket in that state.)
//! 5. Polled outside the runtime (a Tokio task), a direction with nothing
//!    armed forwards its wait: a helper task on the fd's home shard (the
//!    shard it was created or first polled on) arms the poll and wakes the
//!    poller. Dropping the stream aborts the helper, which cancels its
//!    poll; a helper dropped by its runtime's shutdown reports an error to
//!    the poller instead of leaving it pending. A socket never seen by a
//!    shard has no home (a clear error); one accepted from a listener
//!    inherits the listener's.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use io_uring::{opcode, types};
use parking_lot::Mutex;

use crate::mailbox::Remote;
use crate::op::{self, MultiShot};

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

/// Every task waiting on one direction (invariant 1), woken all at once.
#[derive(Default)]
struct Waiters(parking_lot::Mutex<Vec<std::task::Waker>>);

impl Waiters {
    fn add(&self, waker: &std::task::Waker) {
        let mut list = self.0.lock();
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }
}

impl std::task::Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let list = std::mem::take(&mut *self.0.lock());
        list.into_iter().for_each(std::task::Waker::wake);
    }
}

/// A wait armed on the home shard for pollers outside the runtime
/// (invariant 5): the helper task's result, and the direction's waker.
#[derive(Default)]
struct Forward {
    state: parking_lot::Mutex<(Option<io::Result<()>>, Option<std::task::Waker>)>,
}

impl Forward {
    /// Stores the result (unless one is there) and wakes the waiters.
    fn report(&self, result: io::Result<()>) {
        let waker = {
            let mut state = self.state.lock();
            if state.0.is_some() {
                return;
            }
            state.0 = Some(result);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Reports an error if the helper is dropped before it reported (its
/// runtime shut down): the poller must not stay pending forever.
struct ReportOnDrop(Arc<Forward>);

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        self.0.report(Err(io::Error::other(
            "the ringlane runtime that armed this wait shut down",
        )));
    }
}

/// Which setting of a direction's readiness a syscall was made in
/// (invariant 2): taken before the syscall, handed to
/// [`Readiness::clear`] after its `EAGAIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tick(u64);

#[derive(Default)]
struct Side {
    ready: bool,
    /// Counts the settings of `ready` (invariant 2).
    tick: u64,
    armed: Option<MultiShot>,
    /// Who waits on this direction (invariant 1).
    waiters: Arc<Waiters>,
    /// Off-shard: the forwarded wait and its helper task (aborted on drop).
    forwarded: Option<(Arc<Forward>, crate::JoinHandle<()>)>,
}

impl Side {
    /// Gives up a poll that failed and returns every waiter, to be woken
    /// (once the lock is released) to try again: none of them would hear
    /// from the dropped op, and a waiter on a shard arms a new one.
    fn drop_armed(&mut self) -> Vec<std::task::Waker> {
        self.armed = None;
        std::mem::take(&mut *self.waiters.0.lock())
    }

    /// An event: the direction is ready, in a new tick (invariant 2).
    fn set_ready(&mut self) -> Tick {
        self.ready = true;
        self.tick += 1;
        Tick(self.tick)
    }
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
    /// Both directions start ready if `syscall_first` (invariant 2: the
    /// runtime's own sockets), else not until the kernel reports it (a
    /// user's `AsyncFd`, as in Tokio: for a pidfd or a timerfd the
    /// readiness is the signal). The home is `inherited` (an accepted
    /// socket gets its listener's), else the current shard.
    pub(crate) fn new(fd: RawFd, inherited: Option<Arc<Remote>>, syscall_first: bool) -> Self {
        let side = || {
            Mutex::new(Side {
                ready: syscall_first,
                tick: 0,
                armed: None,
                waiters: Arc::default(),
                forwarded: None,
            })
        };
        let home = std::sync::OnceLock::new();
        if let Some(remote) =
            inherited.or_else(|| crate::context::with_current(|cx| cx.remote.clone()))
        {
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

    /// Ready (in the returned tick), or arms a poll and registers `cx`'s
    /// waker.
    ///
    /// # Errors
    ///
    /// If the poll cannot be submitted (off a shard, a broken ring) or the
    /// kernel fails it.
    pub(crate) fn poll_ready(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Tick>> {
        let on_shard = crate::context::with_current(|cx| {
            if self.home.get().is_none() {
                let _ = self.home.set(cx.remote.clone());
            }
        })
        .is_some();
        let mut side = self.side(dir).lock();
        if side.ready {
            return Poll::Ready(Ok(Tick(side.tick)));
        }
        let fd = self.fd;
        let events = dir.events();
        side.waiters.add(cx.waker());
        let all = std::task::Waker::from(side.waiters.clone());
        // Off the shards, a poll not yet in a ring (none, or one waiting
        // for room on the shard that armed it) is left to that shard.
        if !on_shard && !side.armed.as_ref().is_some_and(MultiShot::is_pushed) {
            return self.poll_forwarded(&mut side, dir, &all);
        }
        let mut waker_cx = Context::from_waker(&all);
        loop {
            let armed = side.armed.get_or_insert_with(|| {
                // Shared by every waiter of this direction: never bounded by
                // one caller's `native::timeout` (a multishot op has none).
                let sqe = opcode::PollAdd::new(types::Fd(fd), events)
                    .multi(true)
                    .build();
                MultiShot::new((), false, sqe).coalescing()
            });
            match ready!(armed.poll_next(&mut waker_cx)) {
                Some(Ok(mask)) if mask >= 0 => {
                    // The poll stays armed for next time.
                    return Poll::Ready(Ok(side.set_ready()));
                }
                Some(Ok(err)) => {
                    let waiters = side.drop_armed();
                    drop(side);
                    waiters.into_iter().for_each(std::task::Waker::wake);
                    return Poll::Ready(Err(io::Error::from_raw_os_error(-err)));
                }
                Some(Err(e)) => {
                    let waiters = side.drop_armed();
                    drop(side);
                    waiters.into_iter().for_each(std::task::Waker::wake);
                    return Poll::Ready(Err(e));
                }
                None => {
                    // The kernel ended it: arm anew, here on a shard, or
                    // through the home shard when polled from outside.
                    side.armed = None;
                    if !on_shard {
                        return self.poll_forwarded(&mut side, dir, &all);
                    }
                }
            }
        }
    }

    /// Off a shard (invariant 5): a helper task on the home shard arms the
    /// poll and reports back.
    fn poll_forwarded(
        &self,
        side: &mut Side,
        dir: Direction,
        all: &std::task::Waker,
    ) -> Poll<io::Result<Tick>> {
        if side.forwarded.is_none() {
            let Some(home) = self.home.get() else {
                return Poll::Ready(Err(io::Error::other(
                    "this compat socket was never on a ringlane shard: create it (or poll it first) in a shard task to poll it from outside the runtime",
                )));
            };
            let forward = Arc::new(Forward::default());
            // Made before the task: a helper dropped unpolled (a shutdown
            // that cancels its shard's mailbox) reports too.
            let guard = ReportOnDrop(forward.clone());
            let (fd, events) = (self.fd, dir.events());
            let helper = async move {
                let guard = guard;
                let op = op::submit((), false, move |_| {
                    opcode::PollAdd::new(types::Fd(fd), events).build()
                })
                .untimed();
                let result = match op.await {
                    Ok((mask, ())) if mask >= 0 => Ok(()),
                    Ok((err, ())) => Err(io::Error::from_raw_os_error(-err)),
                    Err((e, ())) => Err(e),
                };
                guard.0.report(result); // the guard's own report is then a no-op
            };
            let (runnable, join) = crate::executor::spawn_send(helper, home.clone());
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
                Poll::Ready(result.map(|()| side.set_ready()))
            }
            None => {
                match &state.1 {
                    Some(w) if w.will_wake(all) => {}
                    _ => state.1 = Some(all.clone()),
                }
                Poll::Pending
            }
        }
    }

    /// The home shard, for sockets this one accepts (invariant 5).
    pub(crate) fn home(&self) -> Option<Arc<Remote>> {
        self.home.get().cloned()
    }

    /// The tick `dir` is in now: taken before a syscall that was not
    /// preceded by [`poll_ready`](Self::poll_ready) (a `try_read`).
    pub(crate) fn tick(&self, dir: Direction) -> Tick {
        Tick(self.side(dir).lock().tick)
    }

    /// Forgets `dir`'s readiness after a syscall made in `tick` returned
    /// `EAGAIN`, unless an event has set it again since (invariant 2).
    pub(crate) fn clear(&self, dir: Direction, tick: Tick) {
        let mut side = self.side(dir).lock();
        if side.tick == tick.0 {
            side.ready = false;
        }
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
            let tick = ready!(self.poll_ready(dir, cx))?;
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(dir, tick),
                r => return Poll::Ready(r),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    use super::Direction;
    use crate::compat::AsyncFd;

    /// A stream first waited on on a shard, then polled from a Tokio task
    /// (off the runtime), while the kernel ends its multishot poll (a final
    /// CQE without `F_MORE`, as on CQ overflow). The off-shard poller used
    /// to re-arm the poll where it stood and fail with "native ring ops run
    /// on a ringlane shard"; it now forwards the wait to the home shard.
    #[test]
    fn a_poll_the_kernel_ended_is_re_armed_through_the_home_shard_off_the_runtime() {
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let fd = rt
            .block_on(
                rt.handle()
                    .spawn_pinned(0, async move {
                        let fd = AsyncFd::new(a).unwrap();
                        let tick = fd.readiness().tick(Direction::Read);
                        fd.readiness().clear(Direction::Read, tick);
                        let mut cx = Context::from_waker(Waker::noop());
                        assert!(
                            fd.readiness()
                                .poll_ready(Direction::Read, &mut cx)
                                .is_pending()
                        );
                        fd
                    })
                    .unwrap(),
            )
            .unwrap();
        // The kernel ends the armed poll with a last readiness report.
        {
            let side = fd.readiness().read.lock();
            let armed = side.armed.as_ref().expect("armed on the shard");
            armed.complete_for_test(libc::POLLIN as i32, 0);
        }
        let mut cx = Context::from_waker(Waker::noop());
        let r = fd.readiness();
        let Poll::Ready(Ok(tick)) = r.poll_ready(Direction::Read, &mut cx) else {
            panic!("the kernel's last report left the direction ready");
        };
        r.clear(Direction::Read, tick); // the read said EAGAIN
        match r.poll_ready(Direction::Read, &mut cx) {
            Poll::Pending => {}
            Poll::Ready(out) => panic!("expected a forwarded wait, got {out:?}"),
        }
        use std::io::Write;
        (&b).write_all(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match r.poll_ready(Direction::Read, &mut cx) {
                Poll::Ready(Ok(_)) => break,
                Poll::Ready(Err(e)) => panic!("the forwarded wait failed: {e}"),
                Poll::Pending if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Poll::Pending => panic!("the forwarded wait never saw the byte"),
            }
        }
        drop(fd);
        drop(b);
    }

    /// A wait forwarded from outside the runtime whose helper task is still
    /// in its shard's mailbox when the runtime drops: the cancelling
    /// shutdown drops the helper unpolled. Its guard used to be made in
    /// the helper's first poll, so nothing reported and the poller stayed
    /// pending forever.
    #[test]
    fn a_forwarded_wait_whose_helper_never_ran_fails_at_shutdown() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        struct Flag(AtomicBool);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let fd = rt
            .block_on(
                rt.handle()
                    .spawn_pinned(0, async move {
                        let fd = AsyncFd::new(a).unwrap();
                        let tick = fd.readiness().tick(Direction::Read);
                        fd.readiness().clear(Direction::Read, tick);
                        fd
                    })
                    .unwrap(),
            )
            .unwrap();
        // Shard 0 busy, so the helper stays queued in its mailbox.
        let started = Arc::new(AtomicBool::new(false));
        let s = started.clone();
        let _blocker = rt
            .handle()
            .spawn_pinned(0, async move {
                s.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
            })
            .unwrap();
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let r = fd.readiness();
        assert!(r.poll_ready(Direction::Read, &mut cx).is_pending());
        drop(rt);
        assert!(woken.0.load(Ordering::SeqCst), "the poller was never woken");
        match r.poll_ready(Direction::Read, &mut cx) {
            Poll::Ready(Err(_)) => {}
            Poll::Ready(Ok(_)) => panic!("nothing was written: not ready"),
            Poll::Pending => panic!("the forwarded wait stayed pending after its runtime dropped"),
        }
        drop(fd);
        drop(b);
    }

    /// A shard task's wait finds the SQ full, so its poll op waits for room;
    /// in the same tick a thread off the runtime polls the same direction
    /// and the data arrives. The off-shard poll used to fail and drop that
    /// op, with its room wait: the shard task was never woken.
    #[test]
    fn an_off_shard_poll_leaves_a_poll_waiting_for_room_to_its_shard() {
        use std::future::Future;
        use std::io::Write;
        use std::pin::Pin;
        use std::sync::Arc;
        let rt = crate::Runtime::builder()
            .shards(1)
            .ring_entries(64)
            .build()
            .unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let parent = rt.handle().spawn_pinned(0, async move {
            let fd = Arc::new(AsyncFd::new(a).unwrap());
            let tick = fd.readiness().tick(Direction::Read);
            fd.readiness().clear(Direction::Read, tick);
            // Both run in one tick, in this order, before the SQ is sent.
            let waiter = fd.clone();
            let waiting = crate::spawn_local(async move {
                // Fill the SQ with NOPs nobody waits for.
                let mut quiet = Context::from_waker(Waker::noop());
                let mut nops = Vec::new();
                loop {
                    let mut nop =
                        crate::op::submit((), false, |_| io_uring::opcode::Nop::new().build());
                    let _ = Pin::new(&mut nop).poll(&mut quiet);
                    let pushed = nop.is_pushed();
                    nops.push(nop);
                    if !pushed {
                        break;
                    }
                }
                let r = waiter.readiness();
                let mut first = true;
                std::future::poll_fn(|cx| {
                    let p = r.poll_ready(Direction::Read, cx);
                    if std::mem::take(&mut first) {
                        assert!(p.is_pending(), "nothing written yet");
                        let side = r.read.lock();
                        let armed = side.armed.as_ref().expect("a poll op");
                        assert!(!armed.is_pushed(), "the SQ was meant to be full");
                    }
                    p
                })
                .await
                .unwrap();
                drop(nops);
                let mut byte = [0u8; 1];
                std::io::Read::read(&mut waiter.get_ref(), &mut byte).unwrap()
            })
            .unwrap();
            let outside = fd.clone();
            let poke = crate::spawn_local(async move {
                std::thread::spawn(move || {
                    let mut cx = Context::from_waker(Waker::noop());
                    let polled = outside.readiness().poll_ready(Direction::Read, &mut cx);
                    (&b).write_all(b"z").unwrap();
                    assert!(polled.is_pending(), "off-shard poll: {polled:?}");
                    b
                })
                .join()
                .unwrap()
            })
            .unwrap();
            let b = poke.await.unwrap();
            let read = crate::time::timeout(Duration::from_secs(5), waiting).await;
            drop(b);
            read
        });
        let read = rt.block_on(parent.unwrap()).unwrap();
        assert_eq!(
            read.expect("the shard task's wait was never woken")
                .unwrap(),
            1
        );
    }

    /// Two tasks share one direction: A's syscall says `EAGAIN`, then,
    /// before A clears, B's wait sees new data and B reads part of it. A's
    /// late clear used to erase the readiness B's event had set: both then
    /// waited, with a byte unread and no new event coming.
    #[test]
    fn a_clear_after_a_stale_eagain_keeps_a_newer_readiness() {
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let unread = rt
            .block_on(
                rt.handle()
                    .spawn_pinned(0, async move {
                        use std::io::{Read, Write};
                        let fd = AsyncFd::new(a).unwrap();
                        let r = fd.readiness();
                        // A's syscall: nothing to read yet.
                        let stale = r.tick(Direction::Read);
                        let mut one = [0u8; 1];
                        let eagain = fd.get_ref().read(&mut one).unwrap_err();
                        assert_eq!(eagain.kind(), std::io::ErrorKind::WouldBlock);
                        // B clears after its own EAGAIN (same tick) and waits.
                        r.clear(Direction::Read, stale);
                        let pending = std::future::poll_fn(|cx| {
                            Poll::Ready(r.poll_ready(Direction::Read, cx).is_pending())
                        })
                        .await;
                        assert!(pending, "nothing was written yet");
                        (&b).write_all(b"xy").unwrap();
                        std::future::poll_fn(|cx| r.poll_ready(Direction::Read, cx))
                            .await
                            .unwrap();
                        // B reads one of the two bytes.
                        assert_eq!(fd.get_ref().read(&mut one).unwrap(), 1);
                        // A's late clear, for the syscall it made before the data.
                        r.clear(Direction::Read, stale);
                        let wait = std::future::poll_fn(|cx| r.poll_ready(Direction::Read, cx));
                        crate::time::timeout(Duration::from_secs(2), wait)
                            .await
                            .expect("the second byte's readiness was erased")
                            .unwrap();
                        let n = fd.get_ref().read(&mut one).unwrap();
                        drop(b);
                        n
                    })
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(unread, 1);
    }
}
