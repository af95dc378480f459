//! Unit tests of the op cell's state machine and drop rules.

use super::*;

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

fn cell(state: State) -> Arc<OpCell<()>> {
    Arc::new(OpCell {
        state: Mutex::new(state),
        done: std::sync::atomic::AtomicBool::new(false),
        resources: UnsafeCell::new(Some(())),
        produces_fd: true,
        uncancellable: false,
        reserved: std::sync::atomic::AtomicU64::new(0),
        issued_fd: Mutex::new(None),
        timespec: types::Timespec::new(),
        deadline: None,
        shutdown_cancel_first: AtomicBool::new(false),
        sqe: UnsafeCell::new(None),
        bound: None,
    })
}

fn op_with(cell: Arc<OpCell<()>>) -> Op<()> {
    Op {
        cell: Some(cell),
        home: None,
        user_data: 0,
        pending: false,
        two_cqes: false,
        late: false,
        waiting: None,
    }
}

/// An open or accept whose future was dropped (abandoned) completes
/// later with a new fd: the cell closes it.
#[test]
fn abandoned_op_closes_the_fd_it_produced_when_the_cqe_arrives() {
    let (r, w) = pipe_fds();
    cell(State::Abandoned).complete(r, 0);
    assert!(reader_closed(w), "the late fd leaked");
    close_fd(w);
}

/// The op completed but its future was dropped before it was polled
/// again: dropping it closes the fd nobody will ever see.
#[test]
fn completed_but_unobserved_op_closes_its_fd_on_drop() {
    let (r, w) = pipe_fds();
    drop(op_with(cell(State::Completed { result: r })));
    assert!(reader_closed(w), "the unobserved fd leaked");
    close_fd(w);
}

/// The normal path: the future observes the fd, which stays open.
#[test]
fn observed_fd_is_handed_over_not_closed() {
    let (r, w) = pipe_fds();
    let c = cell(State::Submitted {
        waker: None,
        early: None,
    });
    let mut op = op_with(c.clone());
    c.complete(r, 0);
    let waker = Waker::noop();
    let out = Pin::new(&mut op).poll(&mut Context::from_waker(waker));
    assert!(matches!(out, Poll::Ready(Ok((fd, ()))) if fd == r));
    drop(op);
    assert!(is_open(r));
    close_fd(r);
    close_fd(w);
}

/// A failed op (negative result) has no fd to close.
#[test]
fn an_abandoned_op_that_failed_closes_nothing() {
    let (r, w) = pipe_fds();
    cell(State::Abandoned).complete(-libc::ECANCELED, 0);
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
    let read = table.insert(cell(State::Submitted {
        waker: None,
        early: None,
    }));
    let close = {
        let mut c = cell(State::Submitted {
            waker: None,
            early: None,
        });
        Arc::get_mut(&mut c).expect("new cell").uncancellable = true;
        table.insert(c)
    };
    let timeout = table.insert(Arc::new(NoopEntry));
    assert_eq!(table.cancellable_for_shutdown(), [read]);
    for ud in [read, close, timeout] {
        assert!(table.take(ud).is_some());
    }
}

/// `uncancellable()` marks the cell too, where shutdown looks.
#[test]
fn an_uncancellable_op_marks_its_cell() {
    let op = submit((), false, |_| opcode::Nop::new().build()).uncancellable();
    assert!(!op.cell.as_ref().expect("unsubmitted").cancellable());
    let op = submit((), false, |_| opcode::Nop::new().build());
    assert!(op.cell.as_ref().expect("unsubmitted").cancellable());
}

/// A cell whose linked timeout's deadline is `deadline`.
fn timed_cell(deadline: Instant) -> Arc<OpCell<()>> {
    let mut c = cell(State::Submitted {
        waker: None,
        early: None,
    });
    Arc::get_mut(&mut c).expect("fresh").deadline = Some(deadline);
    c
}

fn completed_result(c: &OpCell<()>) -> i32 {
    match &*c.state.lock() {
        State::Completed { result } => *result,
        _ => panic!("not completed"),
    }
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
    // Each deadline is `now`, so each CQE below is reaped after it.
    let reaped_late = timed_cell(now);
    reaped_late.cancelled_by_shutdown(now - std::time::Duration::from_millis(1));
    reaped_late.complete(-libc::ECANCELED, 0);
    assert_eq!(
        completed_result(&reaped_late),
        -libc::ECANCELED,
        "cancelled in time"
    );

    let fired_first = timed_cell(now);
    fired_first.cancelled_by_shutdown(now + std::time::Duration::from_millis(1));
    fired_first.complete(-libc::ECANCELED, 0);
    assert_eq!(
        completed_result(&fired_first),
        -libc::ETIMEDOUT,
        "the timeout came first"
    );

    let untouched = timed_cell(now);
    untouched.complete(-libc::ECANCELED, 0);
    assert_eq!(completed_result(&untouched), -libc::ETIMEDOUT);
}

/// Expected: the table marks each cancellable op as shutdown picks it, so
/// a timed op picked before its deadline reports the cancel.
///
/// Why it may fail: the table listed the ops without telling them.
#[test]
fn shutdown_picking_an_op_from_the_table_marks_it() {
    let mut table = super::super::table::OpTable::default();
    let timed = timed_cell(Instant::now() + std::time::Duration::from_secs(3600));
    let user_data = table.insert(timed.clone());
    assert!(!timed.shutdown_cancel_first.load(Ordering::Relaxed));
    assert_eq!(table.cancellable_for_shutdown(), [user_data]);
    assert!(
        timed.shutdown_cancel_first.load(Ordering::Relaxed),
        "picked before its deadline, so marked"
    );
    assert!(table.take(user_data).is_some());
}

/// Expected: an io-wq op a shutdown cancelled (no deadline) ends with
/// `-EINTR` from the kernel and reports `-ECANCELED`: `Interrupted` would
/// send `write_all_at`'s and `read_exact_at`'s loops round again.
#[test]
fn a_shutdown_cancelled_io_wq_op_reports_a_cancel_not_an_interruption() {
    let untimed = cell(State::Submitted {
        waker: None,
        early: None,
    });
    untimed.cancelled_by_shutdown(Instant::now());
    untimed.complete(-libc::EINTR, 0);
    assert_eq!(completed_result(&untimed), -libc::ECANCELED);
    let other = cell(State::Submitted {
        waker: None,
        early: None,
    });
    other.complete(-libc::EINTR, 0);
    assert_eq!(completed_result(&other), -libc::EINTR, "not ours to rename");
}
