//! `Op` (a single-shot op's future) and `submit`.
//!
//! The future holds its cell's address (a share, with the home's op
//! table, of the home-owned cell: invariant 11) until it takes the result
//! or gives the share away: to the home on a drop, or to a hand-off when
//! polled away from home.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use io_uring::{opcode, squeue, types};

use super::cancel::{cancel_at, wrong_shard};
use super::cell::{self, CellPtr, State};
use super::handoff::{Delegation, Dropped, Handoff, delegate};
use super::inline::Inline;
use super::room::RoomWait;
use super::table::Entry;
use crate::context;
use crate::mailbox::{Home, Remote};

/// An op: submitted lazily on its first poll (or later, when the ring has
/// room for it); resolves to the raw CQE result and its resources, or to
/// the error and the resources if it could not be submitted.
pub(crate) struct Op<T: Send + 'static> {
    link: Link<T>,
    /// The shard whose ring took the op (named, not counted: see `Home`).
    home: Option<Home>,
    user_data: u64,
    /// Not pushed yet: the cell holds the SQE and is ours alone.
    pending: bool,
    /// Copied from the cell, which a future away from home may not read.
    produces_fd: bool,
    /// As `produces_fd`: the op is never cancelled (invariant 3).
    uncancellable: bool,
    /// The op posts a result CQE and then a notification (invariant 9).
    two_cqes: bool,
    /// A receive: its SQE joins the SQ after the batch's others (ring
    /// invariant 5).
    late: bool,
    /// Likely to complete during its submission: tried inline
    /// (invariant 13), its tries counted as this kind.
    inline: Option<Inline>,
    /// Set while the op waits for room (rare): boxed, so the common op's
    /// future stays a few words.
    waiting: Option<Box<Waiting>>,
}

/// How the future reaches its op.
enum Link<T> {
    /// The cell's address: ours alone before the push, then shared with
    /// the home's op table (invariant 11).
    Cell(Share<T>),
    /// Polled away from home: the share went to the home, and the result
    /// comes through this hand-off.
    Handed(Arc<Handoff<T>>),
    /// The result was taken, or the op failed before its push.
    Done,
}

/// The future's share of its cell: the address, no count.
struct Share<T>(CellPtr<T>);

// SAFETY: the future follows its share only on the cell's home shard, or
// before the push (when the cell is its alone); away from home it passes
// the share to the home (invariant 12). The resources are `Send`. (Not
// an impl on `Op` itself: its `'static` bound would make async blocks
// holding an `Op` of a borrowed type fail to be `Send`.)
unsafe impl<T: Send> Send for Share<T> {}
// SAFETY: nothing is reachable through a `&Share`.
unsafe impl<T: Send> Sync for Share<T> {}

/// An unsubmitted op's wait for room (invariants 6 and 7).
#[derive(Default)]
struct Waiting {
    /// Our entry among the shard's ops waiting for room.
    room: RoomWait,
    /// Fires the deadline of an op still waiting for room.
    timer: super::DeadlineTimer,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.room.cancel(); // pushed, failed or dropped: no longer waiting
    }
}

// `Op` never pins its resources (they sit in the boxed cell from the
// start), so it is `Unpin` whatever `T` is.
impl<T: Send + 'static> Unpin for Op<T> {}

/// What an op resolves to.
pub(crate) type OpResult<T> = Result<(i32, T), (io::Error, T)>;

/// Prepares an op for the calling task's shard. `build` makes the SQE from
/// the resources at their final address inside the cell, so the SQE may
/// point into them, inline fields included.
#[inline]
pub(crate) fn submit<T, B>(resources: T, produces_fd: bool, build: B) -> Op<T>
where
    T: Send + 'static,
    B: FnOnce(&mut T) -> squeue::Entry + Send + 'static,
{
    // The resources are at the address they keep until the final CQE.
    let mut cell = cell::new_cell(resources, produces_fd);
    let sqe = build(cell.resources.get_mut().as_mut().expect("just stored"));
    cell.data.get_mut().sqe = Some(sqe);
    Op {
        link: Link::Cell(Share(NonNull::from(Box::leak(cell)))),
        home: None,
        user_data: 0,
        pending: true,
        produces_fd,
        uncancellable: false,
        two_cqes: false,
        late: false,
        inline: None,
        waiting: None,
    }
}

/// The op-table entries an op takes (invariants 6, 7, 9).
fn entries(linked_timeout: bool, two_cqes: bool) -> usize {
    1 + usize::from(linked_timeout) + usize::from(two_cqes)
}

/// Outcome of one submission attempt on the current shard.
enum Submit {
    Done(Home, u64),
    /// No room (op cap reached, or the SQ is full): wait for a completion.
    NoRoom,
    /// The ring refused the SQE although it had room: a broken ring; or
    /// the op needs more entries than the ring ever allows in flight.
    Failed(io::Error),
}

/// Pushes the cell's SQE (and its linked timeout) if the shard has room.
/// On `NoRoom` and `Failed` the cell is unshared again, and on `NoRoom` it
/// still holds the SQE.
///
/// # Safety
///
/// `cell` must be unshared: its op was never pushed.
unsafe fn try_submit<T: Send + 'static>(
    cell: CellPtr<T>,
    timeout: Option<(std::time::Duration, Instant)>,
    two_cqes: bool,
    late: bool,
    waker: Option<&Waker>,
) -> Submit {
    // A linked timeout is a second SQE and a second CQE (invariant 7); a
    // two-CQE op reserves an entry for its second CQE (invariant 9), but
    // no SQE.
    let sqes = 1 + usize::from(timeout.is_some());
    let entries = entries(timeout.is_some(), two_cqes);
    let Some(room) = context::with_current(|cx| {
        let capacity = cx.op_capacity.get();
        if entries > capacity {
            return Err(capacity);
        }
        Ok(cx.ops.borrow().transient() + entries <= capacity
            && cx.ring.borrow_mut().sq_has_room_for(sqes))
    }) else {
        unreachable!("the caller checked that it runs on a shard");
    };
    match room {
        Ok(true) => {}
        Ok(false) => return Submit::NoRoom,
        // It would wait for room that can never appear.
        Err(capacity) => {
            return Submit::Failed(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "this op needs {entries} op-table entries and the ring allows {capacity} in flight: raise Builder::ring_entries"
                ),
            ));
        }
    }
    // SAFETY: the caller's contract; the op table gets the address below.
    let unique = unsafe { cell::data(cell) };
    // The waker goes in before the cell is shared: its completion can only
    // be reaped by this thread (its shard loop, after this poll returns, or
    // this poll's inline try), so the submitting poll needs no lock. Cloned
    // (foreign code, which may unwind) before the SQE leaves the cell: a
    // panic here leaves the op as it was, unsubmitted with its SQE. An op
    // tried inline gets it only if the try misses (`poll_submit`).
    unique.state = State::Submitted {
        waker: waker.cloned(),
        early: None,
    };
    let Some(sqe) = unique.sqe.take() else {
        unreachable!("an unpushed op's cell holds its SQE");
    };
    // Checked by the caller, and needed no more: a leaked cell must not pin
    // that shard's `Remote`.
    unique.bound = None;
    if let Some((t, deadline)) = timeout {
        // SAFETY: not pushed yet: ours alone.
        unsafe { *cell::timespec(cell) = types::Timespec::from(t) };
        unique.deadline = Some(deadline);
    }
    // SAFETY: the cell is live.
    let timespec = unsafe { cell::timespec(cell) };
    let pushed = context::with_current(|cx| {
        let user_data = cx.ops.borrow_mut().insert(cell::owned_entry(cell));
        let sqe = sqe.user_data(user_data);
        let result = if timeout.is_some() {
            let timer = cx.ops.borrow_mut().insert(Entry::Slot);
            // SAFETY: the boxed cell holds the timespec until the final
            // CQE (and the kernel reads it at the SQE's preparation).
            let link = opcode::LinkTimeout::new(unsafe { &*timespec })
                .build()
                .user_data(timer);
            let sqes = [sqe.flags(squeue::Flags::IO_LINK), link];
            let mut ring = cx.ring.borrow_mut();
            // SAFETY: as below; the timespec lives in `cell` too, and the
            // kernel reads it when it prepares the SQE, before the op's CQE.
            let r = unsafe {
                match late {
                    true => ring.push_late(&sqes),
                    false => ring.push_all(&sqes),
                }
            };
            drop(ring);
            if r.is_err() {
                cx.ops.borrow_mut().take(timer);
            }
            r
        } else {
            let mut ring = cx.ring.borrow_mut();
            // SAFETY: every pointer in `sqe` points into the resources, which
            // stay in `cell` (kept alive by the op table) until the op's final
            // CQE is reaped (invariants 2 and 4).
            unsafe {
                match late {
                    true => ring.push_late(std::slice::from_ref(&sqe)),
                    false => ring.push(&sqe),
                }
            }
        };
        match result {
            Ok(()) => {
                if two_cqes {
                    let reserved = cx.ops.borrow_mut().insert(Entry::Slot);
                    // SAFETY: the cell is live (the table holds it), and
                    // only this thread touches it; no other reference to
                    // it is in use now.
                    unsafe { cell::data(cell).reserved = reserved };
                }
                Ok((user_data, Home::of(&cx.remote)))
            }
            Err(e) => {
                cx.ops.borrow_mut().take(user_data);
                Err(e)
            }
        }
    });
    match pushed {
        Some(Ok((user_data, home))) => Submit::Done(home, user_data),
        Some(Err(e)) => Submit::Failed(e),
        None => unreachable!("the caller checked that it runs on a shard"),
    }
}

impl<T: Send + 'static> Future for Op<T> {
    type Output = OpResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpResult<T>> {
        let this = self.get_mut();
        if this.pending {
            return this.poll_submit(cx);
        }
        let polled = match &this.link {
            Link::Cell(Share(cell)) => {
                let (cell, home) = (*cell, this.home.expect("a pushed op has a home"));
                // SAFETY: we hold our share of the live cell (invariant 11).
                let done = unsafe { cell::is_done(cell) };
                if done {
                    // The home let go of it: ours, wherever we are (a task
                    // stolen after its op completed needs no home).
                    // SAFETY: our share, and `done` was seen.
                    Poll::Ready(unsafe { cell::take_done(cell) })
                } else if home.is_current() {
                    // SAFETY: on the home shard, with our share.
                    unsafe { cell::poll_on_home(cell, cx.waker()) }
                } else {
                    return this.hand_off(cell, home, cx.waker());
                }
            }
            Link::Handed(handoff) => handoff.poll(cx.waker()),
            Link::Done => return Poll::Pending,
        };
        match polled {
            Poll::Ready((result, resources)) => {
                this.link = Link::Done;
                Poll::Ready(Ok((result, resources)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Op<T> {
    /// The first poll (or a later one while it waits for room): pushes the
    /// SQE if the shard has room.
    fn poll_submit(&mut self, cx: &mut Context<'_>) -> Poll<OpResult<T>> {
        let cell = self.unpushed();
        // SAFETY: the op was never pushed: the cell is ours alone, and this
        // borrow ends before `try_submit` takes the cell.
        let bound = unsafe { cell::data(cell) }.bound.as_ref();
        // A bound op (a registered resource) off its shard is misuse of
        // that resource (`InvalidInput`), wherever it is polled.
        if let Some(e) = bound.and_then(|b| wrong_shard(b)) {
            return self.fail_unsubmitted(e);
        }
        if context::with_current(|_| ()).is_none() {
            let e = io::Error::other(
                "native ring ops run on a ringlane shard: spawn the task there (Handle::spawn_pinned)",
            );
            // It may have waited for room on the shard it was polled on.
            return self.fail_unsubmitted(e);
        }
        // An uncancellable op is never bounded by a deadline either.
        let deadline = if self.uncancellable {
            None
        } else {
            super::current_deadline()
        };
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some((left, deadline)),
                _ => return self.fail_unsubmitted(io::ErrorKind::TimedOut.into()),
            },
        };
        // Tried inline only as one SQE and one CQE (invariant 13).
        let inline = self
            .inline
            .filter(|_| timeout.is_none() && !self.two_cqes && !self.late);
        let waker = inline.is_none().then(|| cx.waker());
        // SAFETY: `pending` is set, so this op was never pushed and the op
        // table does not hold its cell.
        match unsafe { try_submit(cell, timeout, self.two_cqes, self.late, waker) } {
            Submit::Done(home, user_data) => {
                // Pushed: recorded before anything foreign runs. Leaving
                // the wait drops old wakers (its entry's, its timer's),
                // which may panic; the op must unwind as a pushed one.
                self.pending = false;
                self.home = Some(home);
                self.user_data = user_data;
                // Whatever it waited for is over (its entry, its timer).
                // (Looked at first: most ops never waited, and the drop of
                // an empty `Option<Box<_>>` was a call on every op.)
                if self.waiting.is_some() {
                    self.waiting = None;
                }
                let Some(kind) = inline else {
                    super::inline::pushed();
                    // The cell holds our waker, and the CQE is reaped by
                    // this shard's loop only after we return.
                    return Poll::Pending;
                };
                if !super::inline::try_complete(user_data, kind) {
                    super::inline::pushed();
                }
                // On the home shard (it just took the op), with our share:
                // the result if the try took the CQE, else the waker goes
                // in for the loop's reap.
                // SAFETY: as said.
                match unsafe { cell::poll_on_home(cell, cx.waker()) } {
                    Poll::Ready((result, resources)) => {
                        self.link = Link::Done;
                        Poll::Ready(Ok((result, resources)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            Submit::NoRoom => {
                let entries = entries(timeout.is_some(), self.two_cqes);
                match self.wait(cx, entries, deadline) {
                    Poll::Ready(e) => self.fail_unsubmitted(e),
                    Poll::Pending => Poll::Pending,
                }
            }
            Submit::Failed(e) => self.fail_unsubmitted(e),
        }
    }

    /// Ends an op that was never pushed with `e`: it leaves the room
    /// waiters and gives its resources back.
    fn fail_unsubmitted(&mut self, e: io::Error) -> Poll<OpResult<T>> {
        self.waiting = None;
        self.pending = false;
        Poll::Ready(Err((e, self.unsubmitted_resources())))
    }

    /// The op posts its result, then a notification once the kernel is done
    /// with the resources (`SEND_ZC`); it completes at the notification.
    pub(crate) fn two_cqes(mut self) -> Self {
        self.two_cqes = true;
        self
    }

    /// A two-CQE op on `fd`, kept open until the op's first CQE only (the
    /// resources need not hold it: invariant 9).
    pub(crate) fn two_cqes_on(mut self, fd: Arc<std::os::fd::OwnedFd>) -> Self {
        self.unpushed_mut().issued_fd = Some(fd);
        self.two_cqes()
    }

    /// A receive: its SQE is issued after the other SQEs of the same batch
    /// (ring invariant 5), so the sends queued beside it go first and a
    /// local peer's data is there when it runs. Dropped before the next
    /// enter, it is withdrawn (`Ring::withdraw_late`) and completes with 0:
    /// so it must not be an op whose result is an fd.
    pub(crate) fn receive(mut self) -> Self {
        debug_assert!(!self.produces_fd, "a late op must not produce an fd");
        self.late = true;
        self
    }

    /// Likely to complete while it is submitted (a read or write of a
    /// page-cached file, a read-only open, a close): submitted by its first poll and resolved there
    /// when the kernel finished it at once (invariant 13). Called before
    /// the first poll.
    pub(crate) fn inline(mut self, kind: Inline) -> Self {
        self.inline = Some(kind);
        self
    }

    /// Only `home`'s ring may take the op: it names a registered (fixed)
    /// file or buffer of that ring. Polled on another shard, the op fails
    /// with `InvalidInput` and is not submitted.
    pub(crate) fn bound_to(mut self, home: Arc<Remote>) -> Self {
        self.unpushed_mut().bound = Some(home);
        self
    }

    /// Never cancelled once submitted (not by dropping the future, nor by
    /// shutdown's cancels), and never bounded by a deadline: for ops whose
    /// cancellation would leak what they consume (`CLOSE`). Called before
    /// the first poll.
    pub(crate) fn uncancellable(mut self) -> Self {
        self.unpushed_mut().uncancellable = true;
        self.uncancellable = true;
        self
    }

    /// The cell of an op that was never pushed (ours alone).
    fn unpushed(&self) -> CellPtr<T> {
        match (&self.link, self.pending) {
            (Link::Cell(Share(cell)), true) => *cell,
            _ => unreachable!("an unpushed op holds its cell"),
        }
    }

    /// The cell of an op not polled yet, to set it up.
    fn unpushed_mut(&mut self) -> &mut cell::CellData<T> {
        assert!(self.pending, "set before the first poll");
        // SAFETY: never pushed: the cell is ours alone, borrowed for as
        // long as `self` is.
        unsafe { cell::data(self.unpushed()) }
    }

    /// Whether the SQE was pushed to the ring (the kernel has it, or will
    /// at the next enter). `false` before the first poll, while it waits
    /// for room, and after a failed submission.
    pub(crate) fn is_pushed(&self) -> bool {
        !self.pending && self.home.is_some()
    }

    /// The resources of an op that never reached the kernel (its cell is
    /// held only here).
    fn unsubmitted_resources(&mut self) -> T {
        let Link::Cell(Share(cell)) = std::mem::replace(&mut self.link, Link::Done) else {
            unreachable!("an unsubmitted op holds its cell");
        };
        // SAFETY: never pushed: the cell is ours alone, and now given up.
        let mut cell = unsafe { Box::from_raw(cell.as_ptr()) };
        let resources = cell.resources.get_mut().take();
        super::recycle::free(cell);
        resources.expect("resources stored at creation")
    }

    /// Unsubmitted, no room: wait for a completion, or for the deadline.
    fn wait(
        &mut self,
        cx: &mut Context<'_>,
        entries: usize,
        deadline: Option<Instant>,
    ) -> Poll<io::Error> {
        let waiting = self.waiting.get_or_insert_with(Box::default);
        waiting.room.register(cx.waker(), entries);
        // The deadline of this poll's `native::timeout`: an op polled under
        // another one before (a `select!` that dropped it) does not keep
        // that one's timer.
        waiting.timer.poll_until(deadline, cx)
    }
}

impl<T: Send + 'static> Op<T> {
    /// Polled away from home (a stolen task, a moved future): our share
    /// of the cell goes to the home with a hand-off, through which the
    /// result comes (invariant 12).
    fn hand_off(&mut self, cell: CellPtr<T>, home: Home, waker: &Waker) -> Poll<OpResult<T>> {
        let handoff = Arc::new(Handoff::new(waker));
        self.link = Link::Handed(handoff.clone());
        let watch = Delegation {
            cell,
            user_data: self.user_data,
            handoff: Some(handoff.clone()),
        };
        delegate(home, Box::new(watch));
        // A home that had exited handed it over already.
        match handoff.poll(waker) {
            Poll::Ready((result, resources)) => {
                self.link = Link::Done;
                Poll::Ready(Ok((result, resources)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.link, Link::Done) {
            Link::Done => {}
            Link::Cell(Share(cell)) if self.pending => {
                // Never pushed: the cell (and the resources) are ours
                // alone. Dropping `waiting` leaves the room waiters.
                // SAFETY: as said; given up here.
                unsafe { cell::free(cell) };
            }
            Link::Cell(Share(cell)) => {
                let home = self.home.expect("a pushed op has a home");
                // SAFETY: we hold our share of the live cell.
                if unsafe { cell::is_done(cell) } {
                    // SAFETY: done, and our share is given up here.
                    unsafe { cell::end_done(cell) };
                } else if home.is_current() {
                    // SAFETY: on the home shard, with our share.
                    unsafe { cell::abandon_on_home(cell, self.user_data, true) };
                } else {
                    let abandon = Delegation {
                        cell,
                        user_data: self.user_data,
                        handoff: None,
                    };
                    delegate(home, Box::new(abandon));
                }
            }
            Link::Handed(handoff) => match handoff.abandon() {
                Dropped::Running if !self.uncancellable => {
                    if let Some(home) = self.home {
                        cancel_at(home, self.user_data);
                    }
                }
                Dropped::Ready(result, resources) => {
                    // Completed but never observed: an fd it produced is
                    // ours to close.
                    if self.produces_fd && result >= 0 {
                        cell::close_fd(result);
                    }
                    drop(resources);
                }
                Dropped::Running | Dropped::Nothing => {}
            },
        }
    }
}

#[cfg(test)]
#[path = "cell_tests.rs"]
mod tests;
