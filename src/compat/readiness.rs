//! The readiness engine: epoll's contract (readiness, then a nonblocking
//! syscall) driven by `IORING_OP_POLL_ADD` on the shard's own ring.
//!
//! Invariants:
//! 1. Each direction (read, write) of an fd has its own state: a cached
//!    readiness flag, at most one armed multishot `POLL_ADD` op per shard
//!    that waits on it (one SQE for as long as the fd is waited on there;
//!    re-armed if the kernel ends it), and the list of every task waiting
//!    on that direction. Each op is polled with a waker of the direction's
//!    own that wakes the whole list, so split halves wait at once, and so
//!    do several tasks on one direction (two `recv_from` on a shared
//!    socket, accept loops on one listener on several shards). An event
//!    retires the ops of shards that have not waited for two settings of
//!    the flag and hold no waker: a stream that moved to another shard
//!    stops waking the one it left
//!    (`a_stream_moved_to_shard_1_does_not_wake_shard_0_for_every_event`),
//!    and a shard blocked in a long poll holds up no waiter elsewhere
//!    (`an_accept_loop_on_shard_1_is_not_held_up_by_a_blocked_shard_0`).
//!    Events nobody waits for at all (the new owner never has to wait)
//!    pause the op on its own shard instead (op invariant 8's idle pause:
//!    `compat_idle_polls.rs`); the next wait there re-arms it. An
//!    op that holds the list's waker is kept: a waiter there may depend on
//!    it alone, having not been woken since it registered. A shard is
//!    named by its runtime and index: shard 0 of another runtime arms its
//!    own op (`a_socket_polled_from_two_runtimes_survives_the_first_ones_shutdown`).
//! 2. Syscall first: a direction of the runtime's own sockets starts ready
//!    (a user's `AsyncFd` starts not ready). Only an `EAGAIN` clears the
//!    flag ([`Readiness::clear`]), or a wait finding the starting guess
//!    wrong ([`Readiness::poll_wait_ready`]: Tokio's `readable()` on a new
//!    socket waits for data); only a poll CQE sets it again. CQEs that
//!    arrive between two looks are coalesced into one (the OR of their
//!    masks); a stale one costs a syscall that says `EAGAIN`, never a
//!    missed event. Each setting of the flag starts a new [`Tick`], and an
//!    `EAGAIN` clears only the tick its syscall was made in: a syscall
//!    that began before an event (another task's, on a shared socket) must
//!    not erase it, or the event's data would sit unseen until the next.
//! 3. A poll is an op of the native lane's lifecycle (op invariants 1 to
//!    7): it is armed on the ring of the shard that polls it, completes
//!    there even if the task moved (a stolen task is woken on its new
//!    shard), and dropping it (the stream dropped, or `clear` racing a
//!    poll that is no longer wanted) cancels it in the kernel.
//! 4. A poll CQE reporting `POLLERR` or `POLLHUP` marks its direction
//!    ready: the syscall that follows reports the condition. (The other
//!    direction learns it from its own poll, which the kernel completes at
//!    once for a socket in that state.) A direction the kernel reports
//!    closed (as mio reads the mask: reads after `POLLHUP`, or `POLLIN`
//!    with `POLLRDHUP`; writes after `POLLHUP` or `POLLERR`) stays ready for
//!    good: `clear` does not forget it, as Tokio's `clear_ready` keeps
//!    `READ_CLOSED`/`WRITE_CLOSED`, so a wait after end of file returns at
//!    once instead of waiting for an event that never comes.
//! 5. Polled outside the runtime (a Tokio task), a direction with nothing
//!    armed forwards its wait: a helper task on the fd's home shard (the
//!    shard it was created or first polled on) arms the poll and wakes the
//!    poller. Dropping the stream aborts the helper, which cancels its
//!    poll; a helper dropped by its runtime's shutdown reports an error to
//!    the poller instead of leaving it pending. A socket never seen by a
//!    shard has no home (a clear error); one accepted from a listener
//!    inherits the listener's.
//! 6. A write event is checked before it is believed
//!    ([`Direction::believes`]): the kernel posts a poll op's CQE with the
//!    mask its wake-up carried and does not ask the fd again, as epoll
//!    does. A unix datagram socket's send that fails on a full peer frees
//!    the buffer it took, which wakes the socket's own polls with
//!    `POLLOUT`: believed, a sender blocked on a full peer wrote, failed,
//!    and woke itself again, forever, at 100% CPU
//!    (`a_sender_blocked_on_a_full_unix_datagram_peer_sleeps_until_it_drains`).

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use io_uring::{opcode, types};
use parking_lot::Mutex;

pub(crate) use super::direction::Direction;
use super::waiters::{Waiters, tagged};
use crate::mailbox::Remote;
use crate::op::MultiShot;

/// A wait armed on the home shard for pollers outside the runtime
/// (invariant 5): the helper task's result, and the direction's waker.
#[derive(Default)]
struct Forward {
    /// The poll's result (its event mask) and the direction's waker.
    state: parking_lot::Mutex<(Option<io::Result<u32>>, Option<std::task::Waker>)>,
}

impl Forward {
    /// Stores the result (unless one is there) and wakes the waiters.
    fn report(&self, result: io::Result<u32>) {
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
    /// The kernel reported this direction closed: `ready` stays set
    /// (invariant 4).
    closed: bool,
    /// Counts the settings of `ready` (invariant 2).
    tick: u64,
    /// A wait asked the kernel about the starting guess and found it
    /// right: no wait asks again (`poll_wait_ready`).
    guess_checked: bool,
    /// The armed polls, one per shard at most (invariant 1).
    armed: Vec<Armed>,
    /// Who waits on this direction (invariant 1).
    waiters: Arc<Waiters>,
    /// Off-shard: the forwarded wait and its helper task (aborted on drop).
    forwarded: Option<(Arc<Forward>, crate::JoinHandle<()>)>,
}

/// One shard's armed poll of a direction.
struct Armed {
    /// The shard's runtime id and index.
    shard: (usize, usize),
    op: MultiShot,
    /// The direction's tick when a waiter on `shard` last polled it.
    polled_at: u64,
}

impl Side {
    /// Gives up the polls after one failed and returns every waiter, to be
    /// woken (once the lock is released) to try again: none of them would
    /// hear from the dropped ops, and a waiter on a shard arms a new one.
    fn drop_armed(&mut self) -> Vec<std::task::Waker> {
        self.armed.clear();
        self.waiters.take()
    }

    /// An event (`mask`, for `dir`): the direction is ready, in a new tick
    /// (invariant 2), and closed for good if the mask says so (invariant 4).
    /// The polls of shards that have not waited since two ticks ago retire
    /// (invariant 1).
    fn set_ready(&mut self, dir: Direction, mask: u32) -> Tick {
        self.closed |= dir.closed_by(mask);
        self.ready = true;
        self.tick += 1;
        let tick = self.tick;
        self.armed
            .retain(|a| a.polled_at + 2 >= tick || a.op.holds_waker());
        Tick(tick)
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
    /// The directions that may be waited on (read, write): both, unless an
    /// `AsyncFd` was registered with a narrower interest.
    waitable: (bool, bool),
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
    /// socket gets its listener's), else the current shard, else a shard
    /// of the runtime the thread entered.
    pub(crate) fn new(fd: RawFd, inherited: Option<Arc<Remote>>, syscall_first: bool) -> Self {
        let side = || {
            Mutex::new(Side {
                ready: syscall_first,
                closed: false,
                tick: 0,
                guess_checked: false,
                armed: Vec::new(),
                waiters: Arc::default(),
                forwarded: None,
            })
        };
        let home = std::sync::OnceLock::new();
        // Made on a thread that entered a runtime without being one of its
        // shards (`block_on`, ADR 0019), it takes the next shard in turn: its
        // waits are forwarded there (invariant 5), as from a Tokio task.
        let entered = || {
            crate::enter::entered().map(|h| h.shared.remotes[h.shared.round_robin_shard()].clone())
        };
        if let Some(remote) = inherited
            .or_else(|| crate::context::with_current(|cx| cx.remote.clone()))
            .or_else(entered)
        {
            let _ = home.set(remote);
        }
        Self {
            fd,
            read: side(),
            write: side(),
            home,
            waitable: (true, true),
        }
    }

    /// Only the directions named may be waited on: a wait on another fails
    /// with `InvalidInput` (an `AsyncFd` registered with an interest).
    pub(crate) fn waitable(mut self, read: bool, write: bool) -> Self {
        self.waitable = (read, write);
        self
    }

    /// Whether `dir` may be waited on (see [`waitable`](Self::waitable)).
    pub(crate) fn can_wait(&self, dir: Direction) -> bool {
        match dir {
            Direction::Read => self.waitable.0,
            Direction::Write => self.waitable.1,
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
        // A socket that is always ready yields now and then (coop
        // invariant 2).
        crate::executor::coop::budgeted(cx, |cx| self.poll_ready_unbudgeted(dir, cx))
    }

    fn poll_ready_unbudgeted(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Tick>> {
        if !self.can_wait(dir) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "this AsyncFd was registered without {} interest: its {dir:?} readiness is never waited for",
                    match dir {
                        Direction::Read => "READABLE",
                        Direction::Write => "WRITABLE",
                    }
                ),
            )));
        }
        let here = crate::context::with_current(|cx| {
            if self.home.get().is_none() {
                let _ = self.home.set(cx.remote.clone());
            }
            (cx.remote.runtime_id, cx.index)
        });
        // Declared before `side`, so dropped after its guard (waiters
        // invariant 4).
        let _replaced: Option<std::task::Waker>;
        let mut side = self.side(dir).lock();
        if side.ready {
            return Poll::Ready(Ok(Tick(side.tick)));
        }
        let fd = self.fd;
        let events = dir.events();
        _replaced = side.waiters.add(cx.waker());
        let all = std::task::Waker::from(side.waiters.clone());
        // Off the shards, the home shard's poll if it is in its ring, else
        // the wait is forwarded there: never a poll another shard armed,
        // which only that shard can reap (blocked, it would hold the wait;
        // a Tokio task's wait must not hang on a busy shard). Once the
        // home's runtime shuts down (no helper can go there), a poll of
        // another runtime's shard in its ring will do.
        let home = self.home.get();
        let home_key = home.map(|h| (h.runtime_id, h.index));
        let home_open = std::cell::Cell::new(home.is_some_and(|h| h.accepts_spawns()));
        let off_shard_poll = |side: &Side| {
            let home_poll = |a: &Armed| Some(a.shard) == home_key && a.op.is_pushed();
            match side.armed.iter().position(home_poll) {
                None if !home_open.get() => side.armed.iter().position(|a| a.op.is_pushed()),
                at => at,
            }
        };
        // A forwarded wait that failed because the home's shutdown began
        // since the look above (the helper refused, or dropped unrun) moves
        // to a poll of another runtime's shard if one is in its ring:
        // `None` then, the forward's result otherwise.
        let forward = |side: &mut Side| match self.poll_forwarded(side, dir, &all) {
            Poll::Ready(Err(e)) if home_open.get() && !home.is_some_and(|h| h.accepts_spawns()) => {
                home_open.set(false);
                off_shard_poll(side)
                    .is_none()
                    .then_some(Poll::Ready(Err(e)))
            }
            polled => Some(polled),
        };
        if here.is_none() && off_shard_poll(&side).is_none() {
            if let Some(polled) = forward(&mut side) {
                return polled;
            }
        }
        let mut waker_cx = Context::from_waker(&all);
        loop {
            // On a shard its own poll, armed if need be; off the shards the
            // home's (see above).
            let at = match here {
                Some(shard) => side.armed.iter().position(|a| a.shard == shard),
                None => off_shard_poll(&side),
            };
            let at = match (at, here) {
                (Some(at), _) => at,
                (None, Some(shard)) => {
                    // Shared by every waiter of this direction: never bounded
                    // by one caller's `native::timeout` (a multishot op has
                    // none).
                    let sqe = opcode::PollAdd::new(types::Fd(fd), events)
                        .multi(true)
                        .build();
                    side.armed.push(Armed {
                        shard,
                        op: MultiShot::new((), false, sqe).coalescing(),
                        polled_at: 0,
                    });
                    side.armed.len() - 1
                }
                (None, None) => match forward(&mut side) {
                    Some(polled) => return polled,
                    None => continue,
                },
            };
            let tick = side.tick;
            let armed = &mut side.armed[at];
            armed.polled_at = tick;
            match ready!(armed.op.poll_next(&mut waker_cx)) {
                Some(Ok(mask)) if mask >= 0 && !dir.believes(fd, mask as u32) => {
                    // Not writable after all (invariant 6): wait on, with
                    // no syscall that would wake this poll again.
                }
                Some(Ok(mask)) if mask >= 0 => {
                    // The poll stays armed for next time.
                    return Poll::Ready(Ok(side.set_ready(dir, mask as u32)));
                }
                Some(Ok(err)) if err == -libc::ECANCELED => {
                    // A poll ended by a cancel not ours: off the shards,
                    // one a runtime's shutdown cancelled (another runtime's
                    // shard waits on this fd too); on a shard, one the
                    // kernel ended so when it could not post its CQE. Only
                    // that poll goes; the wait moves to another, a fresh
                    // one here, or is forwarded (invariant 1: re-armed).
                    side.armed.swap_remove(at);
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
                    side.armed.swap_remove(at);
                    if here.is_none() {
                        if let Some(polled) = forward(&mut side) {
                            return polled;
                        }
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
                // A standing op, like a shard's own wait, not counted
                // against the op capacity (op invariant 6): idle sockets
                // polled from Tokio tasks must not fill the op table.
                // Single-shot: it ends with its one event, armed again
                // after a write event not believed (invariant 6).
                let result = loop {
                    let mut op = MultiShot::new(
                        (),
                        false,
                        opcode::PollAdd::new(types::Fd(fd), events).build(),
                    );
                    break match std::future::poll_fn(|cx| op.poll_next(cx)).await {
                        Some(Ok(mask)) if mask >= 0 && !dir.believes(fd, mask as u32) => continue,
                        Some(Ok(mask)) if mask >= 0 => Ok(mask as u32),
                        Some(Ok(err)) => Err(io::Error::from_raw_os_error(-err)),
                        Some(Err(e)) => Err(e),
                        // Ended without a result: the poller's syscall will
                        // tell (an `EAGAIN` waits again).
                        None => Ok(0),
                    };
                };
                guard.0.report(result); // the guard's own report is then a no-op
            };
            // A runtime helper: shutdown drops it at once (its poller gets
            // the shutdown error) and does not count it as the caller's.
            let (runnable, join) = crate::executor::spawn_internal(helper, home.clone());
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
                Poll::Ready(result.map(|mask| side.set_ready(dir, mask)))
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

    /// `poll_ready` for a wait on readiness itself (Tokio's `readable`,
    /// `writable`, `poll_read_ready`), where no syscall follows to correct
    /// a wrong guess: a direction still on its starting guess (ready in
    /// tick 0, invariant 2) asks the kernel first (`poll(2)`, no wait) and
    /// drops the guess if the fd is not ready, so a new socket's
    /// `readable()` waits for data as Tokio's does.
    pub(crate) fn poll_wait_ready(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Tick>> {
        let guessed = {
            let side = self.side(dir).lock();
            side.ready && side.tick == 0 && !side.closed && !side.guess_checked
        };
        if guessed {
            match dir.ask(self.fd) {
                Some(0) => {
                    let _ = self.clear(dir, Tick(0));
                }
                // Ready (`POLLHUP`, `POLLERR` included): asked once only.
                Some(_) => self.side(dir).lock().guess_checked = true,
                None => {} // `EINTR`, say: the guess stands, the next wait asks
            }
        }
        self.poll_ready(dir, cx)
    }

    /// Whether `dir` is closed (invariant 4): Tokio's `READ_CLOSED`/
    /// `WRITE_CLOSED`. A direction that is ready but not known closed asks
    /// the kernel (`poll(2)`, no wait): its poll op's CQE is reaped only
    /// when a wait finds the direction not ready, so a peer's shutdown
    /// that came after the event that made it ready would otherwise stay
    /// unseen for as long as reads return bytes or end of file.
    pub(crate) fn learn_closed(&self, dir: Direction) -> bool {
        {
            let side = self.side(dir).lock();
            if side.closed || !side.ready {
                return side.closed;
            }
        }
        let Some(revents) = dir.ask(self.fd) else {
            return false;
        };
        let closed = dir.closed_by(revents);
        if closed {
            let mut side = self.side(dir).lock();
            side.closed = true;
            side.ready = true;
        }
        closed
    }

    /// The tick `dir` is in now: taken before a syscall that was not
    /// preceded by [`poll_ready`](Self::poll_ready) (a `try_read`).
    pub(crate) fn tick(&self, dir: Direction) -> Tick {
        Tick(self.side(dir).lock().tick)
    }

    /// Forgets `dir`'s readiness after a syscall made in `tick` returned
    /// `EAGAIN`, unless an event has set it again since (invariant 2).
    /// Returns whether `dir` stays ready for good (closed, or an error
    /// report that sticks: `POLLERR` while the error queue holds a
    /// timestamp, say), so that a caller looping on `EAGAIN` would spin.
    pub(crate) fn clear(&self, dir: Direction, tick: Tick) -> bool {
        let mut side = self.side(dir).lock();
        if side.tick == tick.0 && !side.closed {
            side.ready = false;
        }
        side.closed
    }

    /// Runs `f` (a nonblocking syscall in `dir`) once, now, and forgets
    /// `dir`'s readiness if it returned `WouldBlock` (as Tokio's `try_*`
    /// calls do), so that the next wait arms a poll.
    pub(crate) fn try_io<R>(
        &self,
        dir: Direction,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        let tick = self.tick(dir);
        let r = f();
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            let _ = self.clear(dir, tick);
        }
        r
    }

    /// Awaits `poll` (one of the socket's `poll_*` methods) as one tagged
    /// wait (waiters invariant 1): dropped before it ends, it takes its
    /// waker out of the lists.
    pub(crate) async fn wait<R>(&self, mut poll: impl FnMut(&mut Context<'_>) -> Poll<R>) -> R {
        /// Leaves the lists when the wait ends or is dropped.
        struct Leave<'a> {
            readiness: &'a Readiness,
            id: std::sync::atomic::AtomicU64,
        }
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                let id = self.id.load(std::sync::atomic::Ordering::Relaxed);
                if id != 0 {
                    // Registered at least once (ids are taken then only).
                    // The wakers go after the locks (waiters invariant 4).
                    let read = self.readiness.read.lock().waiters.forget(id);
                    let write = self.readiness.write.lock().waiters.forget(id);
                    drop((read, write));
                }
            }
        }
        let leave = Leave {
            readiness: self,
            id: std::sync::atomic::AtomicU64::new(0),
        };
        std::future::poll_fn(|cx| tagged(&leave.id, || poll(cx))).await
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
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.clear(dir, tick) {
                        // Ready for good yet `EAGAIN`: yield instead of
                        // spinning in this poll (off the shards no budget
                        // would end it, and a Tokio worker would hang; a
                        // Tokio `TcpStream` yields through its budget).
                        crate::executor::coop::yielded(); // ends a shard's tick
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                r => return Poll::Ready(r),
            }
        }
    }
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "readiness_off_shard_tests.rs"]
mod off_shard_tests;
