//! `Op` (a single-shot op's future) and `submit`.
//!
//! The future holds its cell's address (a share, with the home's op
//! table, of the home-owned cell: invariant 11) until it takes the result
//! or gives the share away: to the home on a drop, or to a hand-off when
//! polled away from home. It is that address and a tag, two words, and
//! everything else about the op lives in the cell: an op future is
//! returned in registers and moved as two words (a larger one was built
//! piecewise and copied whole, each copy stalling on store forwarding).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use io_uring::{opcode, squeue, types};

use super::cancel::{cancel_at, wrong_shard};
use super::cell::{self, CellPtr, Pushed, State};
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
}

/// How the future reaches its op.
enum Link<T> {
    /// Not pushed yet: the cell holds the SQE and the op's set-up, and is
    /// ours alone.
    Unpushed(Share<T>),
    /// Pushed: the cell's address, shared with the home's op table
    /// (invariant 11); its `Pushed` record says where.
    Cell(Share<T>),
    /// Polled away from home: the share went to the home, and the result
    /// comes through the hand-off.
    Handed(Box<Handed<T>>),
    /// The result was taken.
    Taken,
    /// The op failed before its push (or its drop began). Not a field of
    /// one "done" variant: a payload byte beside the tag made every copy
    /// of the future copy the tag's seven neighbours too, in overlapping
    /// pieces that stalled.
    Failed,
}

/// A future's hand-off, and what its drop needs of the op it no longer
/// reaches.
struct Handed<T> {
    handoff: Arc<Handoff<T>>,
    pushed: Pushed,
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

/// An unsubmitted op's wait for room (invariants 6 and 7), kept in its
/// cell (boxed: it is rare).
#[derive(Default)]
pub(super) struct Waiting {
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
        link: Link::Unpushed(Share(NonNull::from(Box::leak(cell)))),
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
    // Pushed from the cell where it was built, its `user_data` set in
    // place: a copy with the new `user_data` was built piecewise and read
    // back whole by the push, a store-forwarding stall on each op.
    let Some(sqe) = unique.sqe.as_mut() else {
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
    // A two-CQE op's reservation (invariant 9); 0: none.
    let mut reserved = 0;
    let pushed = context::with_current(|cx| {
        let user_data = cx.ops.borrow_mut().insert(cell::owned_entry(cell));
        crate::sys::user_data::set_in_place(sqe, user_data);
        let result = if timeout.is_some() {
            let timer = cx.ops.borrow_mut().insert(Entry::Slot);
            // SAFETY: the boxed cell holds the timespec until the final
            // CQE (and the kernel reads it at the SQE's preparation).
            let link = opcode::LinkTimeout::new(unsafe { &*timespec })
                .build()
                .user_data(timer);
            let sqes = [sqe.clone().flags(squeue::Flags::IO_LINK), link];
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
                    true => ring.push_late(std::slice::from_ref(sqe)),
                    false => ring.push(sqe),
                }
            }
        };
        match result {
            Ok(()) => {
                if two_cqes {
                    reserved = cx.ops.borrow_mut().insert(Entry::Slot);
                }
                Ok((user_data, Home::of(&cx.remote)))
            }
            Err(e) => {
                cx.ops.borrow_mut().take(user_data);
                Err(e)
            }
        }
    });
    // Pushed (or refused by a broken ring): the SQE is done with. Written
    // through `unique`, the one reference to the data this function holds
    // (the cell is live, the table holds it, and only this thread touches
    // it until we return).
    unique.sqe = None;
    unique.reserved = reserved;
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
        let polled = match &this.link {
            Link::Unpushed(_) => return this.poll_submit(cx),
            Link::Cell(Share(cell)) => {
                let cell = *cell;
                // Read only when needed: a done op needs no home.
                // SAFETY: our share of the live, pushed cell, whose record
                // is readable anywhere (invariant 12).
                let at_home = || unsafe { cell::pushed(cell) }.home.is_current();
                // SAFETY: we hold our share of the live cell (invariant 11).
                if unsafe { cell::is_done(cell) } {
                    // The home let go of it: ours, wherever we are (a task
                    // stolen after its op completed needs no home).
                    // SAFETY: our share, and `done` was seen.
                    Poll::Ready(unsafe { cell::take_done(cell) })
                } else if at_home() {
                    // SAFETY: on the home shard, with our share.
                    unsafe { cell::poll_on_home(cell, cx.waker()) }
                } else {
                    return this.hand_off(cell, cx.waker());
                }
            }
            Link::Handed(handed) => handed.handoff.poll(cx.waker()),
            Link::Taken | Link::Failed => return Poll::Pending,
        };
        match polled {
            Poll::Ready((result, resources)) => {
                this.link = Link::Taken;
                Poll::Ready(Ok((result, resources)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Op<T> {
    /// [`poll`](Future::poll), with the outcome handed to `map` as it
    /// leaves the op: a caller that keeps part of the resources (a read's
    /// buffer) moves that part once, straight from the freed cell, instead
    /// of moving the whole `OpResult` through each layer's `Poll` (at 32
    /// reads in flight those moves of just-stored values stalled on store
    /// forwarding).
    #[inline(always)]
    pub(crate) fn poll_map<R>(
        &mut self,
        cx: &mut Context<'_>,
        map: impl FnOnce(Result<i32, io::Error>, T) -> R,
    ) -> Poll<R> {
        // The common end of an op: reaped by its home, which let go of it.
        if let Link::Cell(Share(cell)) = self.link {
            // SAFETY: we hold our share of the live cell (invariant 11).
            if unsafe { cell::is_done(cell) } {
                self.link = Link::Taken;
                // SAFETY: our share, given up here, and `done` was seen.
                return Poll::Ready(unsafe { cell::take_done_map(cell, |r, t| map(Ok(r), t)) });
            }
        }
        self.poll_map_slow(cx, map)
    }

    /// `poll_map` off its fast path (the first poll, away from home, after
    /// the home let go): not inlined, so that the fast path's `map` is not
    /// merged with this one's into a shared `OpResult` on the stack.
    #[inline(never)]
    fn poll_map_slow<R>(
        &mut self,
        cx: &mut Context<'_>,
        map: impl FnOnce(Result<i32, io::Error>, T) -> R,
    ) -> Poll<R> {
        Pin::new(self).poll(cx).map(|outcome| match outcome {
            Ok((result, resources)) => map(Ok(result), resources),
            Err((e, resources)) => map(Err(e), resources),
        })
    }

    /// The first poll (or a later one while it waits for room): pushes the
    /// SQE if the shard has room.
    fn poll_submit(&mut self, cx: &mut Context<'_>) -> Poll<OpResult<T>> {
        let cell = self.unpushed();
        // SAFETY: the op was never pushed: the cell is ours alone, and this
        // borrow ends before `try_submit` takes the cell.
        let set_up = unsafe { cell::data(cell) };
        // A bound op (a registered resource) off its shard is misuse of
        // that resource (`InvalidInput`), wherever it is polled.
        let misused = set_up.bound.as_ref().and_then(|b| wrong_shard(b));
        let (produces_fd, uncancellable) = (set_up.produces_fd, set_up.uncancellable);
        let (two_cqes, late, inline) = (set_up.two_cqes, set_up.late, set_up.inline);
        if let Some(e) = misused {
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
        let deadline = if uncancellable {
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
        let inline = inline.filter(|_| timeout.is_none() && !two_cqes && !late);
        let waker = inline.is_none().then(|| cx.waker());
        // SAFETY: the link is `Unpushed`, so this op was never pushed and
        // the op table does not hold its cell.
        match unsafe { try_submit(cell, timeout, two_cqes, late, waker) } {
            Submit::Done(home, user_data) => {
                // Pushed: recorded before anything foreign runs. Leaving
                // the wait drops old wakers (its entry's, its timer's),
                // which may panic; the op must unwind as a pushed one.
                let pushed = Pushed {
                    home,
                    user_data,
                    produces_fd,
                    uncancellable,
                };
                // SAFETY: just pushed, by this thread: nobody reads the
                // record before this poll returns.
                unsafe { cell::set_pushed(cell, pushed) };
                self.link = Link::Cell(Share(cell));
                // Whatever it waited for is over (its entry, its timer).
                // (Looked at first: most ops never waited, and the drop of
                // an empty `Option<Box<_>>` was a call on every op.)
                // SAFETY: on the home shard, with our share; the borrow
                // ends before the drop runs foreign code.
                let set_up = unsafe { cell::data(cell) };
                if set_up.waiting.is_some() {
                    drop(set_up.waiting.take());
                }
                let Some(kind) = inline else {
                    super::inline::pushed();
                    // The cell holds our waker, and the CQE is reaped by
                    // this shard's loop only after we return.
                    return Poll::Pending;
                };
                // Taken or not, the poll below tells.
                super::inline::try_complete(user_data, kind);
                // On the home shard (it just took the op), with our share:
                // the result if the try took the CQE, else the waker goes
                // in for the loop's reap.
                // SAFETY: as said.
                match unsafe { cell::poll_on_home(cell, cx.waker()) } {
                    Poll::Ready((result, resources)) => {
                        self.link = Link::Taken;
                        Poll::Ready(Ok((result, resources)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            Submit::NoRoom => {
                let entries = entries(timeout.is_some(), two_cqes);
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
        // SAFETY: never pushed: the cell is ours alone; the borrow ends
        // before the drop runs foreign code (a panic there leaves the op
        // unpushed, for our drop to free).
        let waiting = unsafe { cell::data(self.unpushed()) }.waiting.take();
        drop(waiting);
        Poll::Ready(Err((e, self.unsubmitted_resources())))
    }

    /// The op posts its result, then a notification once the kernel is done
    /// with the resources (`SEND_ZC`); it completes at the notification.
    pub(crate) fn two_cqes(mut self) -> Self {
        self.unpushed_mut().two_cqes = true;
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
        let set_up = self.unpushed_mut();
        debug_assert!(!set_up.produces_fd, "a late op must not produce an fd");
        set_up.late = true;
        self
    }

    /// Likely to complete while it is submitted (a read or write of a
    /// page-cached file, a read-only open, a close): submitted by its first poll and resolved there
    /// when the kernel finished it at once (invariant 13). Called before
    /// the first poll.
    pub(crate) fn inline(mut self, kind: Inline) -> Self {
        self.unpushed_mut().inline = Some(kind);
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
        self
    }

    /// The cell of an op that was never pushed (ours alone).
    fn unpushed(&self) -> CellPtr<T> {
        match &self.link {
            Link::Unpushed(Share(cell)) => *cell,
            _ => unreachable!("an unpushed op holds its cell"),
        }
    }

    /// The cell of an op not polled yet, to set it up.
    fn unpushed_mut(&mut self) -> &mut cell::CellData<T> {
        assert!(
            matches!(self.link, Link::Unpushed(_)),
            "set before the first poll"
        );
        // SAFETY: never pushed: the cell is ours alone, borrowed for as
        // long as `self` is.
        unsafe { cell::data(self.unpushed()) }
    }

    /// Whether the SQE was pushed to the ring (the kernel has it, or will
    /// at the next enter). `false` before the first poll, while it waits
    /// for room, and after a failed submission.
    pub(crate) fn is_pushed(&self) -> bool {
        matches!(self.link, Link::Cell(_) | Link::Handed(_) | Link::Taken)
    }

    /// The resources of an op that never reached the kernel (its cell is
    /// held only here).
    fn unsubmitted_resources(&mut self) -> T {
        let Link::Unpushed(Share(cell)) = std::mem::replace(&mut self.link, Link::Failed) else {
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
        // SAFETY: never pushed: the cell is ours alone, borrowed here only.
        let set_up = unsafe { cell::data(self.unpushed()) };
        let waiting = set_up.waiting.get_or_insert_with(Box::default);
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
    fn hand_off(&mut self, cell: CellPtr<T>, waker: &Waker) -> Poll<OpResult<T>> {
        // SAFETY: our share of the live, pushed cell, whose record is
        // readable anywhere (invariant 12).
        let pushed = unsafe { cell::pushed(cell) };
        let handoff = Arc::new(Handoff::new(waker));
        self.link = Link::Handed(Box::new(Handed {
            handoff: handoff.clone(),
            pushed,
        }));
        let watch = Delegation {
            cell,
            user_data: pushed.user_data,
            handoff: Some(handoff.clone()),
        };
        delegate(pushed.home, Box::new(watch));
        // A home that had exited handed it over already.
        match handoff.poll(waker) {
            Poll::Ready((result, resources)) => {
                self.link = Link::Taken;
                Poll::Ready(Ok((result, resources)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: Send + 'static> Drop for Op<T> {
    #[inline]
    fn drop(&mut self) {
        // Most ops are dropped after their result was taken: nothing to do,
        // and no call.
        if !matches!(self.link, Link::Taken | Link::Failed) {
            self.drop_live();
        }
    }
}

impl<T: Send + 'static> Op<T> {
    /// The drop of an op that still holds its cell or its hand-off.
    #[inline(never)]
    fn drop_live(&mut self) {
        match std::mem::replace(&mut self.link, Link::Failed) {
            Link::Taken | Link::Failed => {}
            Link::Unpushed(Share(cell)) => {
                // Never pushed: the cell (and the resources) are ours
                // alone. Dropping `waiting` leaves the room waiters.
                // SAFETY: as said; given up here.
                unsafe { cell::free(cell) };
            }
            Link::Cell(Share(cell)) => {
                // SAFETY: we hold our share of the live, pushed cell.
                let Pushed {
                    home, user_data, ..
                } = unsafe { cell::pushed(cell) };
                // SAFETY: as said.
                if unsafe { cell::is_done(cell) } {
                    // SAFETY: done, and our share is given up here.
                    unsafe { cell::end_done(cell) };
                } else if home.is_current() {
                    // SAFETY: on the home shard, with our share.
                    unsafe { cell::abandon_on_home(cell, user_data, true) };
                } else {
                    let abandon = Delegation {
                        cell,
                        user_data,
                        handoff: None,
                    };
                    delegate(home, Box::new(abandon));
                }
            }
            Link::Handed(handed) => match handed.handoff.abandon() {
                Dropped::Running if !handed.pushed.uncancellable => {
                    cancel_at(handed.pushed.home, handed.pushed.user_data);
                }
                Dropped::Ready(result, resources) => {
                    // Completed but never observed: an fd it produced is
                    // ours to close.
                    if handed.pushed.produces_fd && result >= 0 {
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
