//! The hand-off's cases, exhaustively on one thread (invariant 12): the
//! home's side runs where the test runs, which is what the protocol
//! guarantees (every touch of the cell on one thread).

use std::sync::atomic::AtomicUsize;
use std::task::Wake;

use super::*;
use crate::op::cell::{OpCell, State, new_cell, owned_entry};

/// Counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn woken(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

fn reader_closed(w: i32) -> bool {
    // SAFETY: one byte from a static buffer into our own pipe's write end.
    let n = unsafe { libc::write(w, b"x".as_ptr().cast(), 1) };
    n == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE)
}

fn close(fd: i32) {
    // SAFETY: the test's own fd.
    unsafe { libc::close(fd) };
}

/// A submitted cell of an op whose result is an fd, holding `resources`.
fn submitted<T>(resources: T) -> CellPtr<T> {
    let c: Box<OpCell<T>> = new_cell(resources, true);
    std::ptr::NonNull::from(Box::leak(c))
}

fn complete<T: Send + 'static>(c: CellPtr<T>, result: i32) {
    owned_entry(c).complete(result, 0);
}

fn watch<T: Send + 'static>(c: CellPtr<T>, h: &Arc<Handoff<T>>) {
    let d = Delegation {
        cell: c,
        user_data: 0,
        handoff: Some(h.clone()),
    };
    Box::new(d).on_home();
}

/// Expected: a watch that reaches the home before the CQE gets the result
/// at the CQE, with one wake-up; the fd it carries stays open.
#[test]
fn a_watch_before_the_cqe_gets_the_result_at_the_cqe() {
    let (r, w) = pipe();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let c = submitted(7u8);
    let h = Arc::new(Handoff::new(&waker));
    watch(c, &h);
    assert!(h.poll(&waker).is_pending());
    assert_eq!(count.woken(), 0);
    complete(c, r);
    assert_eq!(count.woken(), 1, "the CQE wakes the watcher");
    assert!(matches!(h.poll(&waker), Poll::Ready((fd, 7)) if fd == r));
    assert!(!reader_closed(w), "a taken fd is not closed");
    close(r);
    close(w);
}

/// Expected: a watch that reaches the home after the CQE gets the result
/// at once.
#[test]
fn a_watch_after_the_cqe_gets_the_result_at_once() {
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let c = submitted(vec![1u8, 2]);
    complete(c, 2);
    let h = Arc::new(Handoff::new(&waker));
    watch(c, &h);
    assert_eq!(count.woken(), 1);
    assert!(matches!(h.poll(&waker), Poll::Ready((2, v)) if v == [1, 2]));
}

/// Expected: a future dropped after its watch left, before the CQE,
/// leaves the op to end at its CQE, which closes the fd it produced.
/// Why it may fail: the CQE's result went to a hand-off nobody polls.
#[test]
fn a_watcher_dropped_before_the_cqe_leaves_no_fd_open() {
    let (r, w) = pipe();
    let c = submitted(());
    let h = Arc::new(Handoff::new(Waker::noop()));
    watch(c, &h);
    assert!(matches!(h.abandon(), Dropped::Running), "asks for a cancel");
    complete(c, r);
    assert!(reader_closed(w), "the late fd leaked");
    close(w);
}

/// Expected: a future dropped before its watch reached the home ends the
/// op there: a completed one at once, closing its fd.
#[test]
fn a_watch_whose_future_is_gone_ends_a_completed_op() {
    let (r, w) = pipe();
    let c = submitted(());
    complete(c, r);
    let h = Arc::new(Handoff::new(Waker::noop()));
    assert!(matches!(h.abandon(), Dropped::Running));
    watch(c, &h);
    assert!(reader_closed(w), "the fd leaked");
    close(w);
}

/// Expected: a future dropped before its watch reached the home, with the
/// op still running: the op is abandoned there and ends at its CQE.
#[test]
fn a_watch_whose_future_is_gone_abandons_a_running_op() {
    let (r, w) = pipe();
    let c = submitted(());
    let h = Arc::new(Handoff::new(Waker::noop()));
    let _ = h.abandon();
    watch(c, &h);
    // SAFETY: the test is the home; the cell is live until the CQE.
    assert!(matches!(unsafe { &cell::data(c).state }, State::Abandoned));
    complete(c, r);
    assert!(reader_closed(w), "the late fd leaked");
    close(w);
}

/// Expected: a future dropped with the result waiting in its hand-off
/// gets it back to end (the fd to close).
#[test]
fn a_watcher_dropped_after_the_result_arrived_gets_it_to_end() {
    let c = submitted(());
    let h = Arc::new(Handoff::new(Waker::noop()));
    watch(c, &h);
    complete(c, 5);
    assert!(matches!(h.abandon(), Dropped::Ready(5, ())));
    assert!(matches!(h.abandon(), Dropped::Nothing), "once only");
}

/// Expected: an abandon that reaches the home after the CQE ends the op
/// (closing its fd); one before the CQE leaves it to the CQE.
#[test]
fn an_abandon_ends_a_completed_op_or_leaves_it_to_its_cqe() {
    for cqe_first in [true, false] {
        let (r, w) = pipe();
        let c = submitted(());
        if cqe_first {
            complete(c, r);
        }
        let d = Delegation::<()> {
            cell: c,
            user_data: 0,
            handoff: None,
        };
        Box::new(d).on_home();
        if !cqe_first {
            assert!(!reader_closed(w));
            complete(c, r);
        }
        assert!(reader_closed(w), "the fd leaked (CQE first: {cqe_first})");
        close(w);
    }
}

/// Expected: a delegation that finds its home exited hands a completed
/// op over where it runs, and leaves a submitted (leaked) one alone.
#[test]
fn a_delegation_to_an_exited_home_hands_over_a_completed_op() {
    let c = submitted(3u32);
    complete(c, 1);
    let h = Arc::new(Handoff::new(Waker::noop()));
    let d = Delegation {
        cell: c,
        user_data: 0,
        handoff: Some(h.clone()),
    };
    Box::new(d).home_gone();
    assert!(matches!(h.poll(Waker::noop()), Poll::Ready((1, 3))));

    let leaked = submitted(0u32);
    let h = Arc::new(Handoff::new(Waker::noop()));
    let d = Delegation {
        cell: leaked,
        user_data: 0,
        handoff: Some(h.clone()),
    };
    Box::new(d).home_gone();
    assert!(
        h.poll(Waker::noop()).is_pending(),
        "the kernel may still own it"
    );
    // SAFETY: no kernel here: the test frees what a real exit would leak.
    unsafe { crate::op::cell::free(leaked) };
}

/// Expected: a queue closed by its exiting home runs what it held there,
/// and refuses later delegations (they run where they are).
#[test]
fn a_closed_queue_runs_what_it_held_and_refuses_more() {
    let rt = crate::Runtime::builder()
        .shards(1)
        .build()
        .expect("runtime");
    let remote = rt.handle().shared.remote(0).expect("shard 0").clone();
    let c = submitted(9u8);
    complete(c, 0);
    let h = Arc::new(Handoff::new(Waker::noop()));
    remote.op_handoffs.lock().queue.push(Box::new(Delegation {
        cell: c,
        user_data: 0,
        handoff: Some(h.clone()),
    }));
    close_queue(&remote);
    assert!(matches!(h.poll(Waker::noop()), Poll::Ready((0, 9))));
    // A later delegation runs where it is, at once, and posts nothing.
    let c = submitted(4u8);
    complete(c, 0);
    let h = Arc::new(Handoff::new(Waker::noop()));
    let watch = Delegation {
        cell: c,
        user_data: 0,
        handoff: Some(h.clone()),
    };
    delegate(Home::of(&remote), Box::new(watch));
    assert!(matches!(h.poll(Waker::noop()), Poll::Ready((0, 4))));
    assert!(remote.op_handoffs.lock().queue.is_empty());
    assert!(
        remote.is_empty(),
        "a call was posted to a closed queue's shard"
    );
}
