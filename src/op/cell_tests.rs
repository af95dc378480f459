//! Unit tests of the op cell's state machine and drop rules.

use super::*;
use crate::op::cell::close_fd;

fn pipe_fds() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Whether the pipe whose write end is `w` has lost its read end. Asked
/// through the write end we still own, not through the read end's number,
/// which another test's new fd may already have taken.
fn reader_closed(w: i32) -> bool {
    // SAFETY: one byte from a static buffer into our own pipe's write end.
    let n = unsafe { libc::write(w, b"x".as_ptr().cast(), 1) };
    n == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE)
}

/// A cell in `state` whose result is an fd (as an open's), boxed and
/// leaked as `submit` leaves it.
fn cell(state: State) -> CellPtr<()> {
    let mut c = cell::new_cell((), true);
    c.data.get_mut().state = state;
    NonNull::from(Box::leak(c))
}

fn submitted() -> CellPtr<()> {
    cell(State::Submitted {
        waker: None,
        early: None,
    })
}

/// Hands a final CQE to `c` as the op table does.
fn complete(c: CellPtr<()>, result: i32) {
    cell::owned_entry(c).complete(result, 0);
}

/// What a completed `c` holds.
fn completed_result(c: CellPtr<()>) -> i32 {
    // SAFETY: the test holds the cell's share.
    match unsafe { &cell::data(c).state } {
        State::Completed { result } => *result,
        _ => panic!("not completed"),
    }
}

/// Frees a cell a test kept (as its future's poll would).
fn take(c: CellPtr<()>) -> i32 {
    // SAFETY: the test holds the future's share, on one thread.
    match unsafe { cell::poll_on_home(c, Waker::noop()) } {
        Poll::Ready((result, ())) => result,
        Poll::Pending => panic!("not completed"),
    }
}

/// An open or accept whose future was dropped (abandoned) completes
/// later with a new fd: the cell closes it.
#[test]
fn abandoned_op_closes_the_fd_it_produced_when_the_cqe_arrives() {
    let (r, w) = pipe_fds();
    complete(cell(State::Abandoned), r);
    assert!(reader_closed(w), "the late fd leaked");
    close_fd(w);
}

/// The op completed but its future was dropped before it was polled
/// again: dropping it closes the fd nobody will ever see.
#[test]
fn completed_but_unobserved_op_closes_its_fd_on_drop() {
    let (r, w) = pipe_fds();
    // SAFETY: the test holds the future's share, on one thread.
    unsafe { cell::abandon_on_home(cell(State::Completed { result: r }), 0, true) };
    assert!(reader_closed(w), "the unobserved fd leaked");
    close_fd(w);
}

/// The normal path: the future observes the fd, which stays open.
#[test]
fn observed_fd_is_handed_over_not_closed() {
    let (r, w) = pipe_fds();
    let c = submitted();
    complete(c, r);
    assert_eq!(take(c), r);
    assert!(is_open(r));
    close_fd(r);
    close_fd(w);
}

/// A failed op (negative result) has no fd to close.
#[test]
fn an_abandoned_op_that_failed_closes_nothing() {
    let (r, w) = pipe_fds();
    complete(cell(State::Abandoned), -libc::ECANCELED);
    assert!(is_open(r) && is_open(w));
    close_fd(r);
    close_fd(w);
}

/// Shutdown cancels each op by its `user_data`, never with a catch-all: a
/// `CLOSE` still queued in io-wq must run (cancelled, it would leave its fd
/// open; and its `-ECANCELED` would not prove it never ran, since a FUSE
/// flush can answer that), and a slot-only entry has nothing to cancel.
#[test]
fn shutdown_cancels_skip_uncancellable_closes_and_slot_only_entries() {
    let mut table = crate::op::OpTable::default();
    let (read_cell, close_cell) = (submitted(), submitted());
    // SAFETY: the test holds the cell, unshared yet.
    unsafe { cell::data(close_cell).uncancellable = true };
    let read = table.insert(cell::owned_entry(read_cell));
    let close = table.insert(cell::owned_entry(close_cell));
    let timeout = table.insert(Entry::Slot);
    assert_eq!(table.cancellable_for_shutdown(), [read]);
    for ud in [read, close, timeout] {
        table.take(ud).expect("in the table").complete(0, 0);
    }
    take(read_cell);
    take(close_cell);
}

/// `uncancellable()` marks the cell, where shutdown (and the push's
/// record, for a drop away from home) looks.
#[test]
fn an_uncancellable_op_marks_its_cell() {
    let mut op = submit((), false, |_| opcode::Nop::new().build()).uncancellable();
    assert!(op.unpushed_mut().uncancellable);
    let mut op = submit((), false, |_| opcode::Nop::new().build());
    assert!(!op.unpushed_mut().uncancellable);
}

/// A cell whose linked timeout's deadline is `deadline`.
fn timed_cell(deadline: Instant) -> CellPtr<()> {
    let c = submitted();
    // SAFETY: the test holds the cell, unshared.
    unsafe { cell::data(c).deadline = Some(deadline) };
    c
}

/// Completes `c` with `result` as the op table does, after a shutdown
/// picked it at `picked` (if any); what it reports, freeing it.
fn reported(c: CellPtr<()>, picked: Option<Instant>, result: i32) -> i32 {
    let entry = cell::owned_entry(c);
    let mut table = crate::op::OpTable::default();
    let user_data = table.insert(entry);
    if let Some(now) = picked {
        // As `cancellable_for_shutdown` tells each pick.
        // SAFETY: the test holds the cell, on one thread.
        unsafe { cell::cancelled_by_shutdown_for_test(c, now) };
    }
    table.take(user_data).expect("in").complete(result, 0);
    let r = completed_result(c);
    take(c);
    r
}

/// Expected: an op a shutdown cancelled before its deadline reports the
/// cancellation even when its CQE is reaped after the deadline; one whose
/// deadline had passed when the shutdown came (its timeout fired first)
/// reports the timeout; one no shutdown touched, the timeout.
///
/// Why it may fail: the CQE's `-ECANCELED` was read as the linked
/// timeout's whenever the deadline had passed by the reap.
#[test]
fn a_shutdown_cancel_before_the_deadline_is_not_a_timeout_however_late_it_is_reaped() {
    let now = Instant::now();
    let ms = std::time::Duration::from_millis(1);
    // Each deadline is `now`, so each CQE below is reaped after it.
    assert_eq!(
        reported(timed_cell(now), Some(now - ms), -libc::ECANCELED),
        -libc::ECANCELED,
        "cancelled in time"
    );
    assert_eq!(
        reported(timed_cell(now), Some(now + ms), -libc::ECANCELED),
        -libc::ETIMEDOUT,
        "the timeout came first"
    );
    assert_eq!(
        reported(timed_cell(now), None, -libc::ECANCELED),
        -libc::ETIMEDOUT
    );
}

/// Expected: the table marks each cancellable op as shutdown picks it, so
/// a timed op picked before its deadline reports the cancel.
///
/// Why it may fail: the table listed the ops without telling them.
#[test]
fn shutdown_picking_an_op_from_the_table_marks_it() {
    let mut table = super::super::table::OpTable::default();
    let timed = timed_cell(Instant::now() + std::time::Duration::from_secs(3600));
    let user_data = table.insert(cell::owned_entry(timed));
    let marked = || {
        // SAFETY: the test holds the cell, on one thread.
        unsafe { cell::data(timed) }.shutdown_cancel_first
    };
    assert!(!marked());
    assert_eq!(table.cancellable_for_shutdown(), [user_data]);
    assert!(marked(), "picked before its deadline, so marked");
    table.take(user_data).expect("in").complete(0, 0);
    take(timed);
}

/// Expected: an io-wq op a shutdown cancelled (no deadline) ends with
/// `-EINTR` from the kernel and reports `-ECANCELED`: `Interrupted` would
/// send `write_all_at`'s and `read_exact_at`'s loops round again.
#[test]
fn a_shutdown_cancelled_io_wq_op_reports_a_cancel_not_an_interruption() {
    let now = Instant::now();
    assert_eq!(
        reported(submitted(), Some(now), -libc::EINTR),
        -libc::ECANCELED
    );
    assert_eq!(
        reported(submitted(), None, -libc::EINTR),
        -libc::EINTR,
        "not ours to rename"
    );
}

/// An op future is two words (its link's tag and the cell's address),
/// whatever its resources: it is returned in registers and moved as two
/// words. A larger future was built piecewise and then copied whole, and
/// each copy stalled on store forwarding (one a sixth of a 4 KiB read's
/// user time at 32 in flight).
#[test]
fn an_op_future_is_two_words_whatever_its_resources() {
    let two_words = 2 * std::mem::size_of::<usize>();
    assert_eq!(std::mem::size_of::<Op<()>>(), two_words);
    assert_eq!(std::mem::size_of::<Op<[u8; 4096]>>(), two_words);
    assert_eq!(
        std::mem::size_of::<Op<(Vec<u8>, Arc<std::os::fd::OwnedFd>)>>(),
        two_words
    );
}
