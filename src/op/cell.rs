//! `OpCell`: a single-shot op's completion cell, owned by its home shard
//! (invariants 11 and 12), and the home's side of its state machine.
//!
//! Every function here that takes a `CellPtr` is `unsafe` with one
//! contract: the caller runs on the op's home shard (or the home has
//! exited and the caller is ordered after its last touch, `home_gone`),
//! and the cell is live (its future, or a delegation on its behalf, still
//! holds its share, or the op table holds it). Such functions may free the
//! cell; the caller must not follow the pointer after one that says so.
//!
//! The resources never move while the kernel may use them (invariant 2):
//! they sit in the boxed cell, beside (not inside) the state, from before
//! the SQE is built until the op's final CQE, so an SQE may point at inline
//! data (a `sockaddr`, a `statx` buffer) as well as heap bytes.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};
use std::time::Instant;

use io_uring::{squeue, types};

use super::Inline;
use super::cancel::cancel_here;
use super::future::Waiting;
use super::handoff::Handoff;
use super::table::{Entry, Owned, OwnedVtable};
use crate::context;
use crate::executor::contain;
use crate::mailbox::{Home, Remote};
use crate::sys::CQE_F_MORE;

/// What a shared (reference-counted) op-table entry hands CQEs to: the
/// cells of multishot ops (invariant 8).
pub(crate) trait Completable: Send + Sync {
    /// A CQE arrived with `result` and `flags`; `IORING_CQE_F_MORE` in
    /// `flags` says it is not the op's last, and the table keeps the op
    /// (invariant 8).
    fn complete(&self, result: i32, flags: u32);

    /// Whether shutdown may `ASYNC_CANCEL` it by its `user_data`.
    fn cancellable(&self) -> bool {
        true
    }

    /// Shutdown is cancelling it now (on the home shard, before the
    /// cancel is pushed): a cancellation it causes is not a timeout.
    fn cancelled_by_shutdown(&self, _now: Instant) {}
}

/// The one enum of op states (invariant 3). The resources are not in it.
pub(super) enum State {
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

/// A single-shot op's cell: boxed at `submit`, shared by its future and
/// its home op table as a raw pointer. Its data is touched on the home
/// shard only, until `done` says the home has let go of it (invariant 11).
pub(super) struct OpCell<T> {
    /// Set (`Release`) by the home once the op completed, after the home's
    /// last touch of the cell: whoever holds the future's share and reads
    /// it set (`Acquire`) may take the result, on any thread.
    pub(super) done: AtomicBool,
    pub(super) data: UnsafeCell<CellData<T>>,
    /// Written before submission; taken by whoever ends the op after its
    /// final CQE. Apart from `data`: the kernel may write into it while the
    /// home reads and writes the state, so no reference to the data may
    /// cover it.
    pub(super) resources: UnsafeCell<Option<T>>,
    /// The linked timeout's duration, read by the kernel when it prepares
    /// the `LINK_TIMEOUT` SQE (invariant 7); unused without a deadline.
    /// Apart from `data`, as `resources`.
    pub(super) timespec: UnsafeCell<types::Timespec>,
    /// Written by the poll that pushed the op, before that poll returns,
    /// and never again; from then on read by the future's holder of the
    /// share, on any thread (invariant 11). Apart from `data`, as
    /// `resources`.
    pub(super) pushed: UnsafeCell<Option<Pushed>>,
}

/// What the home (or, once `done`, the future) reads and writes.
pub(super) struct CellData<T> {
    pub(super) state: State,
    /// A non-negative result is an fd the op created (open, accept): it
    /// must be closed if nobody takes it (invariant 3).
    pub(super) produces_fd: bool,
    /// Never cancelled, by its future or by shutdown (a `CLOSE`: cancelled
    /// while queued in io-wq, it would leave its fd open; invariant 3).
    pub(super) uncancellable: bool,
    /// The op-table entry reserved for a two-CQE op's second CQE (0: none),
    /// removed with the op (invariant 9).
    pub(super) reserved: u64,
    /// The fd a two-CQE op names, held until its first CQE only: the kernel
    /// has issued the op then (and holds the file itself while it needs
    /// it), so the notification, which may wait on the network for long
    /// (a `SEND_ZC` whose peer keeps its window shut), does not keep the
    /// socket open after its owner closed it (invariant 9).
    pub(super) issued_fd: Option<Arc<OwnedFd>>,
    /// The deadline the linked timeout stands for: an op ended by
    /// `-ECANCELED` or `-EINTR` once it has passed was stopped by its
    /// timeout (invariant 7); one ended so before it (a shutdown's cancel)
    /// was not.
    pub(super) deadline: Option<Instant>,
    /// Set when a shutdown picked the op for a cancel before its deadline,
    /// or with none: its end by cancellation reads as `-ECANCELED` however
    /// late it is reaped, and an io-wq op's `-EINTR` too (`Interrupted`
    /// would make a retry loop submit again). The mark stays for the op's
    /// remaining life: should its linked timeout fire after the pick, the
    /// op still reports the shutdown's cancel, which was stopping it
    /// either way.
    pub(super) shutdown_cancel_first: bool,
    /// The SQE, built at creation from the resources beside it, until it
    /// is pushed. Kept here, not in the future, so the future stays small
    /// (it is moved into and out of its caller's state on every op).
    pub(super) sqe: Option<squeue::Entry>,
    /// The only shard whose ring may take the op: it names a registered
    /// file or buffer of that ring (invariant 10). Read before the push.
    pub(super) bound: Option<Arc<Remote>>,
    /// Set when the future, polled away from home, asked for the result
    /// through a hand-off (invariant 12): the final CQE moves the result
    /// and the resources there.
    pub(super) watcher: Option<Arc<Handoff<T>>>,
    /// The op posts a result CQE and then a notification (invariant 9).
    /// Read before the push, as are `late`, `inline` and `waiting`.
    pub(super) two_cqes: bool,
    /// A receive: its SQE joins the SQ after the batch's others (ring
    /// invariant 5).
    pub(super) late: bool,
    /// Likely to complete during its submission: tried inline (invariant
    /// 13), its tries counted as this kind.
    pub(super) inline: Option<Inline>,
    /// The op's wait for room, while it has one (invariant 6).
    pub(super) waiting: Option<Box<Waiting>>,
}

// `Share`'s `unsafe impl Send` (future.rs) vouches for everything the cell
// holds: what the set-up keeps here must be `Send` in its own right, and
// this fails to compile if it stops being so.
const _: () = {
    const fn send<X: Send>() {}
    send::<Waiting>();
    send::<CellData<()>>();
    send::<Pushed>();
};

/// Where a pushed op lives, and what its future's drop needs to know
/// of it away from home (invariants 11 and 12).
#[derive(Clone, Copy)]
pub(super) struct Pushed {
    /// The shard whose ring took the op (named, not counted: see `Home`).
    pub(super) home: Home,
    pub(super) user_data: u64,
    /// `CellData`'s, copied: the future away from home reads no data.
    pub(super) produces_fd: bool,
    /// As `produces_fd`.
    pub(super) uncancellable: bool,
}

/// A cell's address, shared by its future and its home's op table.
pub(super) type CellPtr<T> = NonNull<OpCell<T>>;

/// A new cell for `resources`, owned by the caller until its op is pushed.
#[inline(always)]
pub(super) fn new_cell<T>(resources: T, produces_fd: bool) -> Box<OpCell<T>> {
    // Written field by field into the block: a whole `OpCell` built first
    // and then moved in was a `memcpy` of the cell on every op. (A field
    // added to `CellData` or `OpCell` fails to compile in `_every_field`
    // below until it is named there: the reminder to write it here too.)
    let mut cell = super::recycle::uninit::<OpCell<T>>();
    let at = cell.as_mut_ptr();
    // `at` points to the box's memory, valid for writes and not read before
    // this; `UnsafeCell` has its content's layout.
    // SAFETY: as said; every field is written once before `assume_init`.
    unsafe {
        (&raw mut (*at).done).write(AtomicBool::new(false));
        let data = (&raw mut (*at).data).cast::<CellData<T>>();
        (&raw mut (*data).state).write(State::Submitted {
            waker: None,
            early: None,
        });
        (&raw mut (*data).produces_fd).write(produces_fd);
        (&raw mut (*data).uncancellable).write(false);
        (&raw mut (*data).reserved).write(0);
        (&raw mut (*data).issued_fd).write(None);
        (&raw mut (*data).deadline).write(None);
        (&raw mut (*data).shutdown_cancel_first).write(false);
        (&raw mut (*data).sqe).write(None);
        (&raw mut (*data).bound).write(None);
        (&raw mut (*data).watcher).write(None);
        (&raw mut (*data).two_cqes).write(false);
        (&raw mut (*data).late).write(false);
        (&raw mut (*data).inline).write(None);
        (&raw mut (*data).waiting).write(None);
        (&raw mut (*at).resources).write(UnsafeCell::new(Some(resources)));
        (&raw mut (*at).timespec).write(UnsafeCell::new(types::Timespec::new()));
        (&raw mut (*at).pushed).write(UnsafeCell::new(None));
        cell.assume_init()
    }
}

/// Names every field `new_cell` writes: a field added to `OpCell` or
/// `CellData` makes this fail to compile until it is named here, which is
/// the reminder that `new_cell` must write it too.
fn _every_field<T>(cell: OpCell<T>) {
    let OpCell {
        done: _,
        data,
        resources: _,
        timespec: _,
        pushed: _,
    } = cell;
    let CellData {
        state: _,
        produces_fd: _,
        uncancellable: _,
        reserved: _,
        issued_fd: _,
        deadline: _,
        shutdown_cancel_first: _,
        sqe: _,
        bound: _,
        watcher: _,
        two_cqes: _,
        late: _,
        inline: _,
        waiting: _,
    } = data.into_inner();
}

/// The cell's data.
///
/// # Safety
///
/// The module's contract (the home, or the future's share once `done`),
/// and no other borrow of the data in use while this one is.
pub(super) unsafe fn data<'a, T>(cell: CellPtr<T>) -> &'a mut CellData<T> {
    // SAFETY: the caller's contract; `UnsafeCell::get` borrows only the
    // field, so a shared look at `done` elsewhere does not alias this, nor
    // does the kernel's use of `resources` and `timespec`.
    unsafe { &mut *(*cell.as_ptr()).data.get() }
}

/// The pushed op's record.
///
/// # Safety
///
/// The caller holds the future's share of the live cell, whose op was
/// pushed (`set_pushed`); on any thread (the record is written once,
/// before the future can move).
#[inline(always)]
pub(super) unsafe fn pushed<T>(cell: CellPtr<T>) -> Pushed {
    // SAFETY: per the contract; only the field is read, and nobody writes
    // it any more.
    let pushed = unsafe { *(*cell.as_ptr()).pushed.get() };
    pushed.expect("a pushed op's cell records where it went")
}

/// Records where the op went, in the poll that pushed it.
///
/// # Safety
///
/// The caller holds the future's share of the live cell and pushed its
/// op in this poll: nobody reads the record yet.
#[inline]
pub(super) unsafe fn set_pushed<T>(cell: CellPtr<T>, pushed: Pushed) {
    // SAFETY: per the contract; only the field is written.
    unsafe { *(*cell.as_ptr()).pushed.get() = Some(pushed) };
}

/// Takes the resources of an op that ended (or was never pushed).
///
/// # Safety
///
/// The module's contract, and the kernel is done with them (the final CQE
/// was reaped, or the op never pushed): the caller ends the op.
#[inline(always)]
unsafe fn take_resources<T>(cell: CellPtr<T>) -> Option<T> {
    // SAFETY: per the contract, nobody else uses them now.
    unsafe { (*(*cell.as_ptr()).resources.get()).take() }
}

/// Where the kernel reads the linked timeout's duration.
///
/// # Safety
///
/// The cell is live.
pub(super) unsafe fn timespec<T>(cell: CellPtr<T>) -> *mut types::Timespec {
    // SAFETY: live, per the contract; only the field is borrowed.
    unsafe { (*cell.as_ptr()).timespec.get() }
}

/// The op-table entry for `cell`: the table holds its address, no count.
pub(super) fn owned_entry<T: Send + 'static>(cell: CellPtr<T>) -> Entry {
    Entry::Owned(Owned {
        cell: cell.cast(),
        vtable: &Fns::<T>::VTABLE,
    })
}

/// `OpCell<T>`'s entry functions, one set per `T`.
struct Fns<T>(PhantomData<T>);

impl<T: Send + 'static> Fns<T> {
    const VTABLE: OwnedVtable = OwnedVtable {
        complete: complete::<T>,
        cancellable: cancellable::<T>,
        cancelled_by_shutdown: cancelled_by_shutdown::<T>,
    };
}

/// Frees a cell nobody will touch again, its resources with it (whose
/// drop is foreign code: contained, so it cannot unwind into the shard).
///
/// # Safety
///
/// The module's contract, and the caller held the last share.
pub(super) unsafe fn free<T>(cell: CellPtr<T>) {
    // SAFETY: per the contract, the box is ours alone now.
    let cell = unsafe { Box::from_raw(cell.as_ptr()) };
    contain(move || super::recycle::free(cell));
}

/// Closes an fd an op produced and nobody took.
pub(super) fn close_fd(fd: i32) {
    // SAFETY: `fd` was created by this op and handed to nobody else.
    unsafe { libc::close(fd) };
}

/// An op whose future is gone, after its final CQE: closes the fd it
/// produced, if any, and frees the cell.
///
/// # Safety
///
/// The module's contract; the cell's state is already `Taken`.
unsafe fn end_abandoned<T>(cell: CellPtr<T>, result: i32) {
    // SAFETY: the caller's contract.
    if unsafe { data(cell) }.produces_fd && result >= 0 {
        close_fd(result);
    }
    // SAFETY: the future is gone and the kernel is done: ours alone.
    unsafe { free(cell) };
}

unsafe fn cancellable<T>(cell: NonNull<()>) -> bool {
    // SAFETY: `Entry`'s contract: a live cell of this type, on its home.
    !unsafe { data(cell.cast::<OpCell<T>>()) }.uncancellable
}

unsafe fn cancelled_by_shutdown<T>(cell: NonNull<()>, now: Instant) {
    // SAFETY: as in `cancellable`.
    let c = unsafe { data(cell.cast::<OpCell<T>>()) };
    if c.deadline.is_none_or(|d| now < d) {
        c.shutdown_cancel_first = true;
    }
}

/// A CQE for the op (the op table's entry function).
///
/// # Safety
///
/// `Entry`'s contract: a live `OpCell<T>` from this shard's table, on its
/// home; the cell may be freed.
pub(super) unsafe fn complete<T: Send + 'static>(cell: NonNull<()>, result: i32, flags: u32) {
    let cell = cell.cast::<OpCell<T>>();
    // SAFETY: per the contract; nothing else touches the cell while this
    // runs (one thread), and `c` is not used after the cell may be freed.
    let c = unsafe { data(cell) };
    if flags & CQE_F_MORE != 0 {
        // The first CQE of a two-CQE op: the kernel still holds the
        // resources until the notification (invariant 9), but no longer
        // needs the fd.
        if let State::Submitted { early, .. } = &mut c.state {
            *early = Some(result);
        }
        drop(c.issued_fd.take());
        return;
    }
    if c.reserved != 0 {
        let reserved = mem::take(&mut c.reserved);
        // We run on the home shard (the table's borrow is released).
        context::with_current(|cx| cx.ops.borrow_mut().take(reserved));
    }
    match mem::replace(&mut c.state, State::Taken) {
        State::Submitted { waker, early } => {
            let result = c.timed_out_as_such(early.unwrap_or(result));
            match c.watcher.take() {
                // SAFETY: the state is `Taken`; the watcher stands for the
                // future, which gave up its share.
                Some(handoff) => unsafe { publish(cell, result, handoff) },
                None => {
                    c.state = State::Completed { result };
                    // The home's last touch of the cell (invariant 11).
                    // SAFETY: the cell is live (the future holds a share).
                    unsafe { cell.as_ref() }.done.store(true, Ordering::Release);
                }
            }
            if let Some(w) = waker {
                // A foreign waker must not unwind into the shard loop.
                contain(|| w.wake());
            }
        }
        // SAFETY: the state is `Taken`, the future gone, the CQE final.
        State::Abandoned => unsafe { end_abandoned(cell, result) },
        other => c.state = other, // one final CQE per single-shot op
    }
}

impl<T> CellData<T> {
    /// The result an op stopped by a cancel reports: `-ECANCELED` if a
    /// shutdown's cancel came first (an io-wq op's `-EINTR` included);
    /// `-ETIMEDOUT` if its deadline has passed (its linked timeout
    /// cancelled or, in io-wq, interrupted it). Decided at the CQE, not
    /// when the future looks: an op a shutdown cancelled early stays
    /// `-ECANCELED` however late it is polled or reaped. Our own cancel
    /// comes only from a drop, whose result nobody sees.
    pub(super) fn timed_out_as_such(&self, result: i32) -> i32 {
        let stopped = result == -libc::ECANCELED || result == -libc::EINTR;
        if !stopped {
            result
        } else if self.shutdown_cancel_first {
            -libc::ECANCELED
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            -libc::ETIMEDOUT
        } else {
            result
        }
    }
}

/// Moves a completed op's result and resources into `handoff` and frees
/// the cell.
///
/// # Safety
///
/// The module's contract; the state is `Taken` and the future gave up its
/// share to `handoff`.
unsafe fn publish<T>(cell: CellPtr<T>, result: i32, handoff: Arc<Handoff<T>>) {
    // SAFETY: per the contract, the cell is ours alone now.
    let mut owned = unsafe { Box::from_raw(cell.as_ptr()) };
    let resources = owned.resources.get_mut().take();
    let produces_fd = owned.data.get_mut().produces_fd;
    contain(move || super::recycle::free(owned));
    if let Some(resources) = resources {
        handoff.publish(result, resources, produces_fd);
    }
}

/// Whether the home has let go of the cell (the op completed).
///
/// # Safety
///
/// The cell is live (the caller holds the future's share).
pub(super) unsafe fn is_done<T>(cell: CellPtr<T>) -> bool {
    // SAFETY: live, per the contract; a shared look at the atomic only.
    unsafe { cell.as_ref() }.done.load(Ordering::Acquire)
}

/// The result and resources of an op whose home let go of it, on any
/// thread; the cell is freed.
///
/// # Safety
///
/// The caller holds the future's share and saw `is_done`.
#[inline]
pub(super) unsafe fn take_done<T>(cell: CellPtr<T>) -> (i32, T) {
    // SAFETY: the caller's contract.
    unsafe { take_done_map(cell, |result, resources| (result, resources)) }
}

/// As `take_done`, handing the result and resources to `map` as they
/// leave the freed cell (`Op::poll_map`).
///
/// # Safety
///
/// As `take_done`'s.
#[inline(always)]
pub(super) unsafe fn take_done_map<T, R>(cell: CellPtr<T>, map: impl FnOnce(i32, T) -> R) -> R {
    // SAFETY: per the contract, `done`'s Acquire ordered the home's last
    // touch before this one, and nobody else holds a share.
    let mut owned = unsafe { Box::from_raw(cell.as_ptr()) };
    let State::Completed { result } = owned.data.get_mut().state else {
        unreachable!("`done` is set on completion only");
    };
    let resources = owned.resources.get_mut().take();
    // What is left runs no foreign code when dropped (no resources, no
    // waker).
    super::recycle::free(owned);
    map(
        result,
        resources.expect("a completed op still holds its resources"),
    )
}

/// Ends an op whose home let go of it and whose future is gone (closing
/// the fd it produced, if any), on any thread.
///
/// # Safety
///
/// As `take_done`'s.
pub(super) unsafe fn end_done<T>(cell: CellPtr<T>) {
    // SAFETY: per the contract (as in `take_done`).
    let c = unsafe { data(cell) };
    let State::Completed { result } = c.state else {
        unreachable!("`done` is set on completion only");
    };
    c.state = State::Taken;
    // SAFETY: taken, and the future is gone.
    unsafe { end_abandoned(cell, result) };
}

/// The future's poll on the home shard: the result and resources once
/// the op completed (the cell is freed then), else the waker is kept.
///
/// # Safety
///
/// The module's contract, called by the future that holds its share.
#[inline(always)]
pub(super) unsafe fn poll_on_home<T>(cell: CellPtr<T>, waker: &Waker) -> Poll<(i32, T)> {
    // SAFETY: per the contract; `c` is not used after the cell is freed.
    let c = unsafe { data(cell) };
    match &mut c.state {
        State::Completed { result } => {
            let result = *result;
            c.state = State::Taken;
            // SAFETY: completed: the kernel is done, and we end the op.
            let resources = unsafe { take_resources(cell) };
            // SAFETY: completed and taken: nobody else holds a share. What
            // is left in the box runs no foreign code when dropped (the
            // resources are out, and so is any waker).
            super::recycle::free(unsafe { Box::from_raw(cell.as_ptr()) });
            Poll::Ready((
                result,
                resources.expect("a completed op still holds its resources"),
            ))
        }
        State::Submitted { waker: kept, .. } => {
            if !kept.as_ref().is_some_and(|w| w.will_wake(waker)) {
                let old = kept.replace(waker.clone());
                drop(old); // after the cell's last touch: foreign code
            }
            Poll::Pending
        }
        State::Abandoned | State::Taken => Poll::Pending,
    }
}

/// Invariant 3's drop rule, on the home shard: a submitted op is marked
/// abandoned (and cancelled, if `cancel` and the op may be); a completed
/// one is ended now. The caller's share is given up.
///
/// # Safety
///
/// The module's contract, called for the party that holds the future's
/// share; the cell may be freed.
pub(super) unsafe fn abandon_on_home<T>(cell: CellPtr<T>, user_data: u64, cancel: bool) {
    // SAFETY: per the contract; `c` is not used after the cell is freed.
    let c = unsafe { data(cell) };
    match mem::replace(&mut c.state, State::Taken) {
        State::Submitted { waker, .. } => {
            c.state = State::Abandoned;
            let cancel = cancel && !c.uncancellable;
            if cancel {
                cancel_here(user_data);
            }
            contain(move || drop(waker));
        }
        // SAFETY: the state is `Taken` and the CQE was final.
        State::Completed { result } => unsafe { end_abandoned(cell, result) },
        other => c.state = other,
    }
}

/// A foreign poll's hand-off reached the home: a completed op is handed
/// over now, a submitted one at its final CQE. The future's share passes
/// to `handoff`.
///
/// # Safety
///
/// The module's contract, for a future that gave up its share.
pub(super) unsafe fn watch_on_home<T>(cell: CellPtr<T>, handoff: Arc<Handoff<T>>) {
    // SAFETY: per the contract; `c` is not used after the cell is freed.
    let c = unsafe { data(cell) };
    match &mut c.state {
        State::Submitted { waker, .. } => {
            let old = waker.take(); // the hand-off's waker replaces it
            c.watcher = Some(handoff);
            contain(move || drop(old));
        }
        State::Completed { result } => {
            let result = *result;
            c.state = State::Taken;
            // SAFETY: the state is `Taken`; the share is `handoff`'s.
            unsafe { publish(cell, result, handoff) };
        }
        // The future gave its share to this hand-off and nothing else.
        State::Abandoned | State::Taken => unreachable!("a watched op ended without its future"),
    }
}

/// The home shard has exited: a completed op is handed over (or ended),
/// a submitted one was leaked with its ring (invariant 5) and stays so.
///
/// # Safety
///
/// The cell is live and the caller is ordered after the home's last touch
/// of it; no one else touches it (the future gave up its share).
pub(super) unsafe fn home_gone<T>(cell: CellPtr<T>, handoff: Option<Arc<Handoff<T>>>) {
    // SAFETY: per the contract.
    let c = unsafe { data(cell) };
    let State::Completed { result } = c.state else {
        return; // leaked: the kernel may still write into it
    };
    c.state = State::Taken;
    match handoff {
        // SAFETY: the state is `Taken`; the share is `handoff`'s.
        Some(handoff) => unsafe { publish(cell, result, handoff) },
        // SAFETY: the state is `Taken`; the future is gone.
        None => unsafe { end_abandoned(cell, result) },
    }
}

/// `cancelled_by_shutdown` as the op table calls it, for unit tests.
///
/// # Safety
///
/// As `Entry`'s: a live cell, on one thread.
#[cfg(test)]
pub(super) unsafe fn cancelled_by_shutdown_for_test<T>(cell: CellPtr<T>, now: Instant) {
    // SAFETY: the caller's contract.
    unsafe { cancelled_by_shutdown::<T>(cell.cast(), now) };
}
