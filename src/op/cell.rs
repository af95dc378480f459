//! `OpCell` (the shared completion cell), `Op` (the future) and `submit`.
//!
//! The resources never move while the kernel may use them (invariant 2):
//! they sit in the `Arc`ed cell, beside (not inside) the state, from before
//! the SQE is built until the op's final CQE, so an SQE may point at inline
//! data (a `sockaddr`, a `statx` buffer) as well as heap bytes.

use std::cell::UnsafeCell;
use std::future::Future;
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use io_uring::{opcode, squeue, types};
use parking_lot::Mutex;

use super::cancel::{cancel_at, wrong_shard};
use super::room::RoomWait;
use crate::context;
use crate::mailbox::{Home, Remote};
use crate::sys::CQE_F_MORE;

/// What the home shard's op table holds: something to hand the CQE to.
pub(crate) trait Completable: Send + Sync {
    /// A CQE arrived with `result` and `flags`; `IORING_CQE_F_MORE` in
    /// `flags` says it is not the op's last, and the table keeps the op
    /// (invariant 8).
    fn complete(&self, result: i32, flags: u32);

    /// Whether shutdown may `ASYNC_CANCEL` it by its `user_data` (not an
    /// uncancellable `CLOSE`, nor an entry that only holds a slot).
    fn cancellable(&self) -> bool {
        true
    }

    /// Shutdown is cancelling it now (on the home shard, before the
    /// cancel is pushed): a cancellation it causes is not a timeout.
    fn cancelled_by_shutdown(&self, _now: Instant) {}
}

/// The one enum of op states (invariant 3). The resources are not in it.
enum State {
    /// `early`: the result of a two-CQE op's first CQE (`SEND_ZC`), kept
    /// until its notification ends the op (invariant 9).
    Submitted {
        waker: Option<Waker>,
        early: Option<i32>,
    },
    Completed {
        result: i32,
    },
    Abandoned,
    Taken,
}

/// The completion cell shared by an op's future and its home op table.
pub(crate) struct OpCell<T> {
    state: Mutex<State>,
    /// Set (Release) by `complete` once it left the state `Completed` and
    /// will not touch it again: the future may then take the result
    /// without the lock.
    done: AtomicBool,
    /// Written once before submission; taken only by whoever moves the
    /// state to `Taken` after the final CQE (see the `Sync` impl).
    resources: UnsafeCell<Option<T>>,
    /// A non-negative result is an fd the op created (open, accept): it
    /// must be closed if nobody takes it (invariant 3).
    produces_fd: bool,
    /// Never cancelled, by its future or by shutdown (a `CLOSE`: cancelled
    /// while queued in io-wq, it would leave its fd open; invariant 3).
    uncancellable: bool,
    /// The op-table entry reserved for a two-CQE op's second CQE (0: none),
    /// removed with the op (invariant 9).
    reserved: AtomicU64,
    /// The fd a two-CQE op names, held until its first CQE only: the kernel
    /// has issued the op then (and holds the file itself while it needs
    /// it), so the notification, which may wait on the network for long
    /// (a `SEND_ZC` whose peer keeps its window shut), does not keep the
    /// socket open after its owner closed it (invariant 9).
    issued_fd: Mutex<Option<Arc<std::os::fd::OwnedFd>>>,
    /// The linked timeout's duration, read by the kernel when it prepares
    /// the `LINK_TIMEOUT` SQE (invariant 7); unused without a deadline.
    timespec: types::Timespec,
    /// The deadline the linked timeout stands for, written before the cell
    /// is shared: an op ended by `-ECANCELED` or `-EINTR` once it has
    /// passed was stopped by its timeout (invariant 7); one ended so before
    /// it (a shutdown's cancel) was not.
    deadline: Option<Instant>,
    /// Set (home shard only) when a shutdown picked the op for a cancel
    /// before its deadline, or with none: its end by cancellation reads as
    /// `-ECANCELED` however late it is reaped, and an io-wq op's `-EINTR`
    /// too (`Interrupted` would make a retry loop submit again). The mark
    /// stays for the op's remaining life: should its linked timeout fire
    /// after the pick (before the cancel took effect, or while later
    /// rounds of shutdown's cancels repeat it), the op still reports the
    /// shutdown's cancel, which was stopping it either way.
    shutdown_cancel_first: AtomicBool,
    /// The SQE, built at creation from the resources beside it, until it
    /// is pushed: touched only while the cell is unshared. Kept here, not
    /// in the future, so the future stays small (it is moved into and out
    /// of its caller's state on every op).
    sqe: UnsafeCell<Option<squeue::Entry>>,
    /// The only shard whose ring may take the op: it names a registered
    /// file or buffer of that ring (invariant 10). Read before the push.
    bound: Option<Arc<Remote>>,
}

/// An op-table entry that only holds a slot: a linked timeout's (its CQE
/// frees it) or a two-CQE op's reservation (removed with the op).
struct NoopEntry;

impl Completable for NoopEntry {
    fn complete(&self, _result: i32, _flags: u32) {}

    /// A linked timeout ends with its op; a reservation has no SQE.
    fn cancellable(&self) -> bool {
        false
    }
}

// SAFETY: `resources` is touched only (a) by the submitter before the cell
// is shared, (b) by the kernel between submission and the final CQE, and
// (c) after the final CQE by the single party that set `Taken`: under the
// mutex (the future in `poll` or `drop`, or `complete` for an abandoned
// op), or without it by the future's `poll` once `done` is set, after
// which `complete` touches the state no more (invariant 11; `done`'s
// Release/Acquire orders that access). So the cell can be shared across
// threads for any `T: Send`. `sqe` is touched only by
// the future while the cell is unshared (before the push), as (a).
unsafe impl<T: Send> Sync for OpCell<T> {}

impl<T> OpCell<T> {
    /// Takes the resources after this caller moved the state to `Taken`.
    ///
    /// # Safety
    ///
    /// The caller must be the party that made the transition to `Taken`,
    /// after the op's final CQE (or for an op that was never submitted).
    unsafe fn take_resources(&self) -> Option<T> {
        // SAFETY: per the contract, no one else can access `resources` now.
        unsafe { (*self.resources.get()).take() }
    }
}

fn close_fd(fd: i32) {
    // SAFETY: `fd` was created by this op and handed to nobody else.
    unsafe { libc::close(fd) };
}

impl<T: Send> Completable for OpCell<T> {
    fn cancellable(&self) -> bool {
        !self.uncancellable
    }

    fn cancelled_by_shutdown(&self, now: Instant) {
        if self.deadline.is_none_or(|d| now < d) {
            // Read by `complete` on this same thread.
            self.shutdown_cancel_first.store(true, Ordering::Relaxed);
        }
    }

    fn complete(&self, result: i32, flags: u32) {
        if flags & CQE_F_MORE != 0 {
            // The first CQE of a two-CQE op: the kernel still holds the
            // resources until the notification (invariant 9), but no
            // longer needs the fd.
            if let State::Submitted { early, .. } = &mut *self.state.lock() {
                *early = Some(result);
            }
            let fd = self.issued_fd.lock().take();
            drop(fd);
            return;
        }
        // Most ops reserve nothing: a plain load spares them a locked swap.
        let reserved = match self.reserved.load(Ordering::Relaxed) {
            0 => 0,
            _ => self.reserved.swap(0, Ordering::Relaxed),
        };
        if reserved != 0 {
            // We run on the home shard (the table's borrow is released).
            context::with_current(|cx| cx.ops.borrow_mut().take(reserved));
        }
        let mut state = self.state.lock();
        match mem::replace(&mut *state, State::Taken) {
            State::Submitted { waker, early } => {
                *state = State::Completed {
                    result: self.timed_out_as_such(early.unwrap_or(result)),
                };
                drop(state);
                self.done.store(true, Ordering::Release);
                if let Some(w) = waker {
                    // A foreign waker must not unwind into the shard loop.
                    crate::executor::contain(|| w.wake());
                }
            }
            State::Abandoned => {
                drop(state);
                if self.produces_fd && result >= 0 {
                    close_fd(result);
                }
                // SAFETY: we moved an abandoned op to `Taken` after its final
                // CQE: the kernel and the (dropped) future are done with it.
                let resources = unsafe { self.take_resources() };
                crate::executor::contain(move || drop(resources));
            }
            other => *state = other, // one CQE per single-shot op: nothing else can arrive
        }
    }
}

impl<T> OpCell<T> {
    /// The result an op stopped by a cancel reports: `-ECANCELED` if a
    /// shutdown's cancel came first (an io-wq op's `-EINTR` included);
    /// `-ETIMEDOUT` if its deadline has passed (its linked timeout
    /// cancelled or, in io-wq, interrupted it). Decided at the CQE, not
    /// when the future looks: an op a shutdown cancelled early stays
    /// `-ECANCELED` however late it is polled or reaped. Our own cancel
    /// comes only from `drop`, whose result nobody sees.
    fn timed_out_as_such(&self, result: i32) -> i32 {
        let stopped = result == -libc::ECANCELED || result == -libc::EINTR;
        if !stopped {
            result
        } else if self.shutdown_cancel_first.load(Ordering::Relaxed) {
            -libc::ECANCELED
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            -libc::ETIMEDOUT
        } else {
            result
        }
    }
}

/// An op: submitted lazily on its first poll (or later, when the ring has
/// room for it); resolves to the raw CQE result and its resources, or to
/// the error and the resources if it could not be submitted.
pub(crate) struct Op<T: Send + 'static> {
    cell: Option<Arc<OpCell<T>>>,
    /// The shard whose ring took the op (named, not counted: see `Home`).
    home: Option<Home>,
    user_data: u64,
    /// Not pushed yet: the cell holds the SQE and is ours alone.
    pending: bool,
    /// The op posts a result CQE and then a notification (invariant 9).
    two_cqes: bool,
    /// A receive: its SQE joins the SQ after the batch's others (ring
    /// invariant 5).
    late: bool,
    /// Set while the op waits for room (rare): boxed, so the common op's
    /// future stays a few words.
    waiting: Option<Box<Waiting>>,
}

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

// `Op` never pins its resources (they sit in the `Arc`ed cell from the
// start), so it is `Unpin` whatever `T` is.
impl<T: Send + 'static> Unpin for Op<T> {}

/// What an op resolves to.
pub(crate) type OpResult<T> = Result<(i32, T), (io::Error, T)>;

/// Prepares an op for the calling task's shard. `build` makes the SQE from
/// the resources at their final address inside the cell, so the SQE may
/// point into them, inline fields included.
pub(crate) fn submit<T, B>(resources: T, produces_fd: bool, build: B) -> Op<T>
where
    T: Send + 'static,
    B: FnOnce(&mut T) -> squeue::Entry + Send + 'static,
{
    let mut cell = Arc::new(OpCell {
        state: Mutex::new(State::Submitted {
            waker: None,
            early: None,
        }),
        done: AtomicBool::new(false),
        resources: UnsafeCell::new(Some(resources)),
        produces_fd,
        uncancellable: false,
        reserved: AtomicU64::new(0),
        issued_fd: Mutex::new(None),
        timespec: types::Timespec::new(),
        deadline: None,
        shutdown_cancel_first: AtomicBool::new(false),
        sqe: UnsafeCell::new(None),
        bound: None,
    });
    // The cell is not shared until the SQE is pushed: the resources are
    // ours, at the address they keep until the final CQE.
    // SAFETY: `cell` was just created; nothing else refers to it.
    let unique = unsafe { unshared(&mut cell) };
    let sqe = build(unique.resources.get_mut().as_mut().expect("just stored"));
    *unique.sqe.get_mut() = Some(sqe);
    Op {
        cell: Some(cell),
        home: None,
        user_data: 0,
        pending: true,
        two_cqes: false,
        late: false,
        waiting: None,
    }
}

/// The cell of an op that was not pushed yet, for writing. Unlike
/// `Arc::get_mut`, it costs no locked instruction (two per op, on the
/// hottest path); debug builds still check the uniqueness.
///
/// # Safety
///
/// No other `Arc` or `Weak` of `cell` may exist (the op table takes its
/// clone only when the SQE is pushed).
unsafe fn unshared<T>(cell: &mut Arc<OpCell<T>>) -> &mut OpCell<T> {
    debug_assert!(
        Arc::get_mut(cell).is_some(),
        "an op cell shared before its push"
    );
    // Per the contract, `cell` is the only reference to the allocation, so
    // a unique borrow of it (for as long as `cell`'s own) aliases nothing.
    // SAFETY: as above; `Arc::as_ptr` does not go through a shared
    // reference, so writing through it is allowed.
    unsafe { &mut *Arc::as_ptr(cell).cast_mut() }
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
/// `cell` must be unshared (no other `Arc` or `Weak`): its op was never
/// pushed.
unsafe fn try_submit<T: Send + 'static>(
    cell: &mut Arc<OpCell<T>>,
    timeout: Option<(std::time::Duration, Instant)>,
    two_cqes: bool,
    late: bool,
    waker: &Waker,
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
    // SAFETY: the caller's contract; the op table gets its clone below.
    let unique = unsafe { unshared(cell) };
    // The waker goes in before the cell is shared: its completion can only
    // be reaped by this thread's shard loop, after this poll returns, so the
    // submitting poll needs no lock. Cloned (foreign code, which may
    // unwind) before the SQE leaves the cell: a panic here leaves the op
    // as it was, unsubmitted with its SQE.
    *unique.state.get_mut() = State::Submitted {
        waker: Some(waker.clone()),
        early: None,
    };
    let Some(sqe) = unique.sqe.get_mut().take() else {
        unreachable!("an unpushed op's cell holds its SQE");
    };
    // Checked by the caller, and needed no more: a leaked cell must not pin
    // that shard's `Remote`.
    unique.bound = None;
    if let Some((t, deadline)) = timeout {
        unique.timespec = types::Timespec::from(t);
        unique.deadline = Some(deadline);
    }
    let cell = &*cell;
    let pushed = context::with_current(|cx| {
        let user_data = cx.ops.borrow_mut().insert(cell.clone());
        let sqe = sqe.user_data(user_data);
        let result = if timeout.is_some() {
            let timer = cx.ops.borrow_mut().insert(Arc::new(NoopEntry));
            let link = opcode::LinkTimeout::new(&cell.timespec)
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
                    let reserved = cx.ops.borrow_mut().insert(Arc::new(NoopEntry));
                    cell.reserved.store(reserved, Ordering::Relaxed);
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
        let Some(cell) = this.cell.as_ref() else {
            return Poll::Pending;
        };
        let mut guard = None;
        let state = if cell.done.load(Ordering::Acquire) {
            // `complete` stored the result and will not touch the state
            // again: it set `done` after its last access (Acquire pairs
            // with its Release).
            // SAFETY: no one else does either: the op table's entry is
            // gone, and `drop` needs `&mut self`.
            unsafe { &mut *cell.state.data_ptr() }
        } else {
            &mut **guard.insert(cell.state.lock())
        };
        match mem::replace(state, State::Taken) {
            State::Completed { result } => {
                drop(guard);
                // SAFETY: we moved the completed op to `Taken`.
                let resources = unsafe { cell.take_resources() }
                    .expect("a completed op still holds its resources");
                this.cell = None;
                Poll::Ready(Ok((result, resources)))
            }
            State::Submitted { waker, early } => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = State::Submitted {
                    waker: Some(waker),
                    early,
                };
                Poll::Pending
            }
            other => {
                *state = other;
                Poll::Pending
            }
        }
    }
}

impl<T: Send + 'static> Op<T> {
    /// The first poll (or a later one while it waits for room): pushes the
    /// SQE if the shard has room.
    fn poll_submit(&mut self, cx: &mut Context<'_>) -> Poll<OpResult<T>> {
        let cell = self.cell.as_mut().expect("unsubmitted ops hold their cell");
        // A bound op (a registered resource) off its shard is misuse of
        // that resource (`InvalidInput`), wherever it is polled.
        if let Some(e) = cell.bound.as_ref().and_then(|b| wrong_shard(b)) {
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
        let deadline = if cell.uncancellable {
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
        // SAFETY: `pending` is set, so this op was never pushed and the op
        // table holds no clone of its cell.
        match unsafe { try_submit(cell, timeout, self.two_cqes, self.late, cx.waker()) } {
            Submit::Done(home, user_data) => {
                // Pushed: recorded before anything foreign runs. Leaving
                // the wait drops old wakers (its entry's, its timer's),
                // which may panic; the op must unwind as a pushed one.
                self.pending = false;
                self.home = Some(home);
                self.user_data = user_data;
                // Whatever it waited for is over (its entry, its timer).
                self.waiting = None;
                // The cell holds our waker, and the CQE is reaped by this
                // shard's loop only after we return.
                Poll::Pending
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
        if let Some(cell) = self.cell.as_mut() {
            assert!(self.pending, "set before the first poll");
            // SAFETY: `pending` is set (asserted), so the op was never
            // pushed and nothing else refers to the cell.
            *unsafe { unshared(cell) }.issued_fd.get_mut() = Some(fd);
        }
        self.two_cqes()
    }

    /// A receive: its SQE is issued after the other SQEs of the same batch
    /// (ring invariant 5), so the sends queued beside it go first and a
    /// local peer's data is there when it runs. Dropped before the next
    /// enter, it is withdrawn (`Ring::withdraw_late`) and completes with 0:
    /// so it must not be an op whose result is an fd.
    pub(crate) fn receive(mut self) -> Self {
        debug_assert!(
            self.cell.as_ref().is_some_and(|c| !c.produces_fd),
            "a late op must not produce an fd"
        );
        self.late = true;
        self
    }

    /// Only `home`'s ring may take the op: it names a registered (fixed)
    /// file or buffer of that ring. Polled on another shard, the op fails
    /// with `InvalidInput` and is not submitted.
    pub(crate) fn bound_to(mut self, home: Arc<Remote>) -> Self {
        let cell = self.cell.as_mut().expect("unsubmitted ops hold their cell");
        assert!(self.pending, "set before the first poll");
        // SAFETY: `pending` is set (asserted), so the op was never pushed
        // and nothing else refers to the cell.
        unsafe { unshared(cell) }.bound = Some(home);
        self
    }

    /// Never cancelled once submitted (not by dropping the future, nor by
    /// shutdown's cancels), and never bounded by a deadline: for ops whose
    /// cancellation would leak what they consume (`CLOSE`). Called before
    /// the first poll.
    pub(crate) fn uncancellable(mut self) -> Self {
        let cell = self.cell.as_mut().expect("unsubmitted ops hold their cell");
        Arc::get_mut(cell)
            .expect("an op cell shared before its push")
            .uncancellable = true;
        self
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
        let cell = self.cell.take().expect("unsubmitted ops hold their cell");
        let cell = Arc::try_unwrap(cell)
            .ok()
            .expect("an unsubmitted op's cell is held only here");
        cell.resources
            .into_inner()
            .expect("resources stored at creation")
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

impl<T: Send + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if self.pending {
            // Never pushed: the cell (and the resources) are ours alone.
            // Dropping `waiting` leaves the room waiters.
            return;
        }
        let Some(cell) = self.cell.take() else { return };
        let mut state = cell.state.lock();
        match mem::replace(&mut *state, State::Taken) {
            State::Submitted { .. } => {
                *state = State::Abandoned;
                drop(state);
                match &self.home {
                    Some(home) if !cell.uncancellable => cancel_at(*home, self.user_data),
                    _ => {} // runs to completion; its CQE frees the cell
                }
            }
            State::Completed { result } => {
                // Completed but never observed: an fd it produced is ours to close.
                drop(state);
                if cell.produces_fd && result >= 0 {
                    close_fd(result);
                }
                // SAFETY: we moved the completed op to `Taken`.
                drop(unsafe { cell.take_resources() });
            }
            other => *state = other,
        }
    }
}

#[cfg(test)]
#[path = "cell_tests.rs"]
mod tests;
