//! Multishot ops (invariant 8): one SQE, a CQE per event until a CQE
//! without `IORING_CQE_F_MORE` ends it.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use io_uring::squeue;
use parking_lot::Mutex;

use super::cancel::{cancel_here, request_cancel};
use super::cell::Completable;
use super::room::RoomWait;
use super::table::{Entry, Kind};
use crate::context;
use crate::mailbox::Remote;
use crate::sys::CQE_F_MORE;

#[derive(Default)]
struct MultiState {
    /// Results (and CQE flags) posted and not yet taken.
    results: VecDeque<(i32, u32)>,
    /// The last CQE (no `F_MORE`) arrived.
    ended: bool,
    waker: Option<Waker>,
    /// The future is gone: what is posted from now on goes to `orphan`.
    abandoned: bool,
    /// The op was cancelled to pause it (`bound` results wait untaken, or
    /// a coalescing op's results go unseen across an idle): its
    /// `-ECANCELED` end is not a result, and the owner re-arms once it has
    /// taken the rest. Stays set if the cancel missed, until the op ends.
    pausing: bool,
    /// The shard's `idles` count when the first result since the owner
    /// last polled was posted; `None` once it polls. A coalescing op that
    /// gets another result after an idle since then is paused (invariant
    /// 8): its shard's tasks had their turn and did not look.
    unseen_since: Option<u64>,
    /// Polled off the shards (a Tokio task using its shard's op, readiness
    /// invariant 5): such an owner runs on its own schedule, which a
    /// shard's idle says nothing about, so the op is never idle-paused.
    polled_off_shard: bool,
}

/// What to do with a CQE nobody will take (posted after the future was
/// dropped, or left untaken): close the fd it made, give back the buffer it
/// picked, ...
pub(crate) type Orphan = Box<dyn Fn(i32, u32) + Send + Sync>;

/// The shared cell of a multishot op. Its SQE may point only at what
/// `_keep` owns (typically the fd's `Arc`), which lives as long as the cell.
struct MultiCell {
    state: Mutex<MultiState>,
    orphan: Option<Orphan>,
    /// Keep only what is new since the last take: non-negative results are
    /// OR-ed together (poll masks), so a socket woken a thousand times
    /// between two looks queues one result, not a thousand.
    coalesce: bool,
    /// Pause (cancel) the op once this many results wait untaken; 0: never.
    bound: usize,
    /// The op's `user_data`, written at its push on the home shard, where
    /// `complete` reads it.
    user_data: AtomicU64,
    _keep: Box<dyn Send + Sync>,
}

fn close_fd(fd: i32) {
    // SAFETY: `fd` was created by this op and handed to nobody else.
    unsafe { libc::close(fd) };
}

impl MultiCell {
    fn orphaned(&self, result: i32, flags: u32) {
        if let Some(orphan) = &self.orphan {
            crate::executor::contain(|| orphan(result, flags));
        }
    }
}

impl Completable for MultiCell {
    fn complete(&self, result: i32, flags: u32) {
        let mut state = self.state.lock();
        if flags & CQE_F_MORE == 0 {
            state.ended = true;
        }
        if state.abandoned {
            drop(state);
            self.orphaned(result, flags);
            return;
        }
        let paused = state.pausing && state.ended && result == -libc::ECANCELED;
        if !paused {
            match state.results.back_mut() {
                Some((last, _)) if self.coalesce && *last >= 0 && result >= 0 => *last |= result,
                _ => state.results.push_back((result, flags)),
            }
        }
        // Nobody takes the results: leave the rest to the kernel (an
        // accept's backlog, or a socket's events) until the owner comes
        // back (invariant 8). A bounded op holds `bound` untaken results;
        // a coalescing op (a readiness poll) got a result with no waker
        // held, and its shard went idle since the first one its owner has
        // not seen: the shard's own tasks woken by it had their turn and
        // did not look (a stream that moved to another shard, a task stolen
        // away, an owner busy elsewhere), so each further event would only
        // wake this shard to reap it.
        let idle_since_unseen = self.coalesce
            && !state.polled_off_shard
            && match (
                context::with_current(|cx| cx.idles.get()),
                state.unseen_since,
            ) {
                (Some(now), Some(since)) => now > since,
                (Some(now), None) => {
                    state.unseen_since = Some(now);
                    false
                }
                (None, _) => false,
            };
        let untaken = self.bound != 0 && state.results.len() >= self.bound;
        let unwanted = idle_since_unseen && state.waker.is_none();
        if (untaken || unwanted) && !state.ended && !state.pausing {
            // A cancel that misses (`-EALREADY`, an op being issued: not
            // seen for a poll-armed accept) leaves the op unpaused until
            // its next end, losing nothing (and `pausing` set: it is not
            // paused again before it is re-armed).
            state.pausing = true;
            cancel_here(self.user_data.load(Ordering::Relaxed));
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            crate::executor::contain(|| w.wake());
        }
    }
}

/// A multishot op: submitted on its first poll (when the ring has room),
/// then yields one raw result per CQE, and `None` once the kernel ended it.
pub(crate) struct MultiShot {
    cell: Arc<MultiCell>,
    sqe: Option<squeue::Entry>,
    home: Option<Arc<Remote>>,
    user_data: u64,
    room: RoomWait,
    /// The only shard whose ring may take the SQE (op invariant 10).
    bound: Option<Arc<Remote>>,
    /// Each wait for a result is bounded by the caller's `native::timeout`
    /// (invariant 8), through `timer`.
    timed: bool,
    timer: super::DeadlineTimer,
    /// A receive: its SQE joins the SQ last, and dropped before the next
    /// enter it is withdrawn (ring invariant 5), taking no bytes.
    late: bool,
}

impl MultiShot {
    /// `sqe` may point only into `keep`, which the op keeps alive until its
    /// last CQE. A non-negative result of a `produces_fd` op is an fd,
    /// closed if nobody takes it.
    pub(crate) fn new(
        keep: impl Send + Sync + 'static,
        produces_fd: bool,
        sqe: squeue::Entry,
    ) -> Self {
        let orphan: Option<Orphan> = match produces_fd {
            true => Some(Box::new(|fd, _| {
                if fd >= 0 {
                    close_fd(fd);
                }
            })),
            false => None,
        };
        Self::with_orphan(keep, orphan, sqe)
    }

    /// As [`new`](Self::new), with `orphan` called for every CQE nobody
    /// takes.
    pub(crate) fn with_orphan(
        keep: impl Send + Sync + 'static,
        orphan: Option<Orphan>,
        sqe: squeue::Entry,
    ) -> Self {
        Self {
            cell: Arc::new(MultiCell {
                state: Mutex::new(MultiState::default()),
                orphan,
                coalesce: false,
                bound: 0,
                user_data: AtomicU64::new(0),
                _keep: Box::new(keep),
            }),
            sqe: Some(sqe),
            home: None,
            user_data: 0,
            room: RoomWait::default(),
            bound: None,
            timed: false,
            timer: super::DeadlineTimer::default(),
            late: false,
        }
    }

    /// A receive (`RECV` multishot): its SQE goes in after the batch's
    /// others, and a stream dropped before the kernel saw it is withdrawn
    /// (it completes with 0 and takes no bytes), as a one-shot receive's
    /// (`Op::receive`). Its results must not be fds.
    pub(crate) fn receive(mut self) -> Self {
        self.late = true;
        self
    }

    /// Only `home`'s ring may take the SQE (it names a buffer group of that
    /// ring); polled elsewhere before it is pushed, the op fails with
    /// `InvalidInput`. Checked at every push attempt, so a task stolen
    /// while the op waited for room cannot push it on another ring.
    pub(crate) fn bound_to(mut self, home: Arc<Remote>) -> Self {
        self.bound = Some(home);
        self
    }

    /// Each wait for a result fails with `TimedOut` at the deadline of the
    /// `native::timeout` it is polled under; the op stays armed
    /// (invariant 8). Not for ops shared by several waiters (readiness).
    pub(crate) fn timed(mut self) -> Self {
        self.timed = true;
        self
    }

    /// A timed wait's deadline: `Ready` once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.timed {
            true => self.timer.poll(cx),
            false => Poll::Pending,
        }
    }

    /// Pauses the op (cancels it) once `bound` results wait untaken, so
    /// that the kernel keeps the rest (an accept's backlog) until the owner
    /// takes them and polls again; the owner re-arms an op that ended.
    pub(crate) fn bounded(mut self, bound: usize) -> Self {
        Arc::get_mut(&mut self.cell)
            .expect("not submitted yet")
            .bound = bound;
        self
    }

    /// Coalescing results (see `MultiCell::coalesce`): for poll masks.
    pub(crate) fn coalescing(mut self) -> Self {
        Arc::get_mut(&mut self.cell)
            .expect("not submitted yet")
            .coalesce = true;
        self
    }

    /// Whether the op holds the waker of its last pending poll (no result
    /// has woken it since; or it still waits for ring room, whose wait
    /// holds the waker): whoever polled it may rely on it alone.
    pub(crate) fn holds_waker(&self) -> bool {
        self.sqe.is_some() || self.cell.state.lock().waker.is_some()
    }

    /// Whether the SQE was pushed to a ring (not waiting for room, nor
    /// refused).
    pub(crate) fn is_pushed(&self) -> bool {
        self.sqe.is_none() && self.home.is_some()
    }

    /// The next result, `None` once the op has ended (and every result was
    /// taken). Errors only if it cannot be submitted.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<i32>>> {
        self.poll_next_cqe(cx)
            .map(|next| next.map(|r| r.map(|(result, _)| result)))
    }

    /// As [`poll_next`](Self::poll_next), with each CQE's flags.
    pub(crate) fn poll_next_cqe(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<(i32, u32)>>> {
        if let Some(sqe) = self.sqe.take() {
            if let Some(e) = self.bound.as_deref().and_then(super::wrong_shard) {
                self.room.cancel();
                self.sqe = Some(sqe);
                return Poll::Ready(Some(Err(e)));
            }
            // A deadline already past fails the wait before anything is
            // armed (invariant 7's rule for single-shot ops): the kernel
            // must not take items (connections) for a stream whose wait
            // is over. A look at the clock, no timer (`poll_deadline`
            // below arms one only for a wait that goes on).
            if self.timed && super::current_deadline().is_some_and(|d| d <= Instant::now()) {
                self.room.cancel();
                self.sqe = Some(sqe);
                return Poll::Ready(Some(Err(io::ErrorKind::TimedOut.into())));
            }
            let submitted = context::with_current(|shard| {
                // A standing op is not counted against the op capacity
                // (invariant 6): it needs room in the SQ only.
                if !shard.ring.borrow_mut().sq_has_room_for(1) {
                    return Ok(false);
                }
                let cell: Arc<dyn Completable> = self.cell.clone();
                let user_data = shard
                    .ops
                    .borrow_mut()
                    .insert_kind(Entry::Shared(cell), Kind::Standing);
                let sqe = sqe.clone().user_data(user_data);
                let mut ring = shard.ring.borrow_mut();
                // SAFETY: the SQE points only into `_keep`, owned by the cell
                // the op table holds until the op's last CQE (invariant 8).
                let pushed = unsafe {
                    match self.late {
                        true => ring.push_late(std::slice::from_ref(&sqe)),
                        false => ring.push(&sqe),
                    }
                };
                drop(ring);
                match pushed {
                    Ok(()) => {
                        self.home = Some(shard.remote.clone());
                        self.user_data = user_data;
                        self.cell.user_data.store(user_data, Ordering::Relaxed);
                        Ok(true)
                    }
                    Err(e) => {
                        shard.ops.borrow_mut().take(user_data);
                        Err(e)
                    }
                }
            });
            match submitted {
                None => {
                    // Still ours to push from a shard later; no longer
                    // waiting for room where it was polled before.
                    self.sqe = Some(sqe);
                    self.room.cancel();
                    return Poll::Ready(Some(Err(io::Error::other(
                        "native ring ops run on a ringlane shard: spawn the task there (Handle::spawn_pinned)",
                    ))));
                }
                Some(Err(e)) => {
                    self.sqe = Some(sqe); // never reached the ring
                    self.room.cancel();
                    return Poll::Ready(Some(Err(e)));
                }
                Some(Ok(false)) => {
                    self.sqe = Some(sqe);
                    // Waiting for room in the SQ only (it is submitted every
                    // tick): a need of 0 entries fits at the next reap.
                    self.room.register(cx.waker(), 0);
                    if let Poll::Ready(e) = self.poll_deadline(cx) {
                        self.room.cancel();
                        return Poll::Ready(Some(Err(e)));
                    }
                    return Poll::Pending;
                }
                Some(Ok(true)) => self.room.cancel(),
            }
        }
        let mut state = self.cell.state.lock();
        // The owner looks (it takes a result or leaves its waker).
        state.unseen_since = None;
        if self.cell.coalesce && context::current_index().is_none() {
            state.polled_off_shard = true;
        }
        let ready = match state.results.pop_front() {
            Some(r) => Some(Some(Ok(r))),
            None => state.ended.then_some(None),
        };
        if let Some(ready) = ready {
            drop(state);
            // The wait is over: its deadline's timer goes, or it would wake
            // the task for nothing (and count as a pending timer).
            self.timer.clear();
            return Poll::Ready(ready);
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        drop(state);
        // Checked after the waker is in: a result posted meanwhile wakes us.
        match self.poll_deadline(cx) {
            Poll::Ready(e) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
impl MultiShot {
    /// Hands the cell a CQE as if the kernel had posted it (a final one
    /// without `F_MORE` ends the op, as the kernel does on CQ overflow).
    pub(crate) fn complete_for_test(&self, result: i32, flags: u32) {
        self.cell.complete(result, flags);
    }
}

impl std::fmt::Debug for MultiShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiShot")
            .field("user_data", &self.user_data)
            .finish_non_exhaustive()
    }
}

impl Drop for MultiShot {
    fn drop(&mut self) {
        self.room.cancel();
        let mut state = self.cell.state.lock();
        state.abandoned = true;
        let unclaimed: Vec<(i32, u32)> = state.results.drain(..).collect();
        let live = !state.ended;
        drop(state);
        for (result, flags) in unclaimed {
            self.cell.orphaned(result, flags);
        }
        if live {
            if let Some(home) = &self.home {
                request_cancel(home, self.user_data);
            }
        }
    }
}
