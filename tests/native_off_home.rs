//! An op future polled away from the shard whose ring took it (op
//! invariant 12): the home owns the op, so the future asks it for a
//! hand-off through the mailbox and takes the result from there. The
//! hand-off against the op's completion, the future's drop and the
//! runtime's shutdown is tested here. (A task stolen after its op
//! completed takes the result without its home:
//! `native_net_more::a_stolen_task_observes_the_op_its_home_shard_completed`.
//! A delegation that finds its home's queue closed, or its runtime gone,
//! is reached from outside only by an op the kernel never answered; those
//! branches are unit-tested in `op::handoff::tests`.)

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use common::in_flight::{InFlight, read_in_flight_on_shard_0};
use ringlane::native::fs::File;

/// fd counts are process-wide: every test here holds this lock.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// One poll on this thread (no shard here), with a waker that does
/// nothing.
fn poll_here(read: &mut InFlight) -> Poll<std::io::Result<usize>> {
    Pin::new(&mut read.0).poll(&mut Context::from_waker(Waker::noop()))
}

/// Writes `bytes` into the pipe from a task on shard 0.
fn write_on_shard_0(rt: &ringlane::Runtime, writer: &File, bytes: &'static [u8]) {
    let writer = writer.clone();
    let task = rt.handle().spawn_pinned(0, async move {
        let (n, _) = writer.write(bytes.to_vec()).await;
        n.unwrap()
    });
    assert_eq!(rt.block_on(task.unwrap()).unwrap(), bytes.len());
}

/// Expected: a read polled off the runtime before its bytes arrive gets
/// them once they do. The poll's hand-off goes through shard 0's mailbox
/// ahead of the write task, so the home sees it before the completion.
/// Why it may fail: the completion went to the cell nobody polls again,
/// or the hand-off's waker was not woken.
#[test]
fn a_read_polled_off_the_runtime_before_its_bytes_gets_them_through_a_hand_off() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let before = common::fd_count();
    let (r, w) = common::pipe();
    let (reader, writer) = (File::from(r), File::from(w));
    let mut read = read_in_flight_on_shard_0(&rt, &reader);
    assert!(poll_here(&mut read).is_pending(), "no bytes yet");
    write_on_shard_0(&rt, &writer, b"hello");
    let read = ringlane::time::timeout(std::time::Duration::from_secs(10), read.0);
    let n = rt.block_on(read).expect("the hand-off's result never came");
    assert_eq!(n.unwrap(), 5);
    drop((reader, writer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Expected: a read moved to another shard and polled there gets its
/// bytes from its home shard's ring.
#[test]
fn a_read_polled_on_another_shard_gets_its_bytes_from_its_home() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let (r, w) = common::pipe();
    let (reader, writer) = (File::from(r), File::from(w));
    let read = read_in_flight_on_shard_0(&rt, &reader);
    let moved = rt.handle().spawn_pinned(1, async move {
        let n = read.0.await.unwrap();
        (n, ringlane::current_shard())
    });
    write_on_shard_0(&rt, &writer, b"moved");
    let joined = common::join_within(
        &rt,
        moved.unwrap(),
        std::time::Duration::from_secs(10),
        "the moved read",
    );
    assert_eq!(joined, (5, Some(1)));
}

/// Expected: a read dropped after it asked its home for a hand-off is
/// cancelled on its home: the pipe's next bytes reach the next read.
/// Why it may fail: the drop only marked the hand-off, and the read stayed
/// armed to swallow the next bytes.
#[test]
fn a_read_dropped_after_its_hand_off_is_cancelled_on_its_home() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let before = common::fd_count();
    let (r, w) = common::pipe();
    let reader = File::from(r);
    let mut read = read_in_flight_on_shard_0(&rt, &reader);
    assert!(poll_here(&mut read).is_pending());
    drop(read);
    common::cancelled_read_leaves_the_next_bytes(&rt, reader, File::from(w));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// A read in flight on a runtime that then shuts down, polled off the
/// runtime before the shutdown (`asked_first`: it waits on a hand-off)
/// or only after it: either way it must end with the shutdown's cancel,
/// an error, and leave no fd open.
fn a_read_across_its_runtime_shutdown(asked_first: bool) {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let (r, w) = common::pipe();
    let reader = File::from(r);
    let rt = common::runtime(1);
    let mut read = read_in_flight_on_shard_0(&rt, &reader);
    if asked_first {
        assert!(poll_here(&mut read).is_pending());
    }
    drop(rt);
    match poll_here(&mut read) {
        Poll::Ready(Err(_)) => {}
        other => panic!("expected the shutdown's cancel, got {other:?}"),
    }
    drop((read, reader, w));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Expected: a read waiting on its hand-off when its runtime shuts down
/// ends with the shutdown's cancel, through the hand-off.
/// Why it may fail: the exiting home kept the op's result, and the future
/// waited forever.
#[test]
fn a_read_waiting_on_its_hand_off_ends_when_its_runtime_shuts_down() {
    a_read_across_its_runtime_shutdown(true);
}

/// Expected: a read first polled off the runtime after it shut down takes
/// the shutdown's cancel at once, with no home to ask.
#[test]
fn a_read_polled_after_its_runtime_shut_down_reports_the_cancel() {
    a_read_across_its_runtime_shutdown(false);
}

/// Expected: a read moved to shard 1 while shard 0 completes it gets its
/// byte every time, whichever comes first: the completion (the mover
/// finds `done` and takes the result) or the move (it asks shard 0 for a
/// hand-off). A stress of op invariants 11 and 12's race, 2,000 rounds.
/// Why it may fail: a result taken before the home's last touch (a torn
/// read, a double free under ASan), or a hand-off that never comes.
#[test]
fn a_read_moved_while_its_home_completes_it_gets_its_byte_every_time() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let h = rt.handle();
    let before = common::fd_count();
    let limit = std::time::Duration::from_secs(10);
    for round in 0..2000u32 {
        let (r, w) = common::pipe();
        let (reader, writer) = (File::from(r), File::from(w));
        let read = read_in_flight_on_shard_0(&rt, &reader);
        let byte = round as u8;
        let write = || {
            h.spawn_pinned(0, async move { writer.write(vec![byte]).await.0 })
                .unwrap()
        };
        // Odd rounds write first (the move mostly finds the op done), even
        // rounds move first (it mostly asks for a hand-off).
        let (n, w) = if round % 2 == 1 {
            let w = common::join_within(&rt, write(), limit, "the write");
            let mover = h.spawn_pinned(1, read.0).unwrap();
            (common::join_within(&rt, mover, limit, "the moved read"), w)
        } else {
            let mover = h.spawn_pinned(1, read.0).unwrap();
            let write = write();
            let n = common::join_within(&rt, mover, limit, "the moved read");
            (n, common::join_within(&rt, write, limit, "the write"))
        };
        assert_eq!(n.unwrap(), 1, "round {round}");
        assert_eq!(w.unwrap(), 1);
    }
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
