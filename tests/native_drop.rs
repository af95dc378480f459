//! An op future dropped in flight away from the shard whose ring took it:
//! on another shard of its runtime, or on a thread outside the runtime.
//! Its cancel must travel to that shard's ring (op invariant 3, through the
//! shard's mailbox); the pipe's next bytes must reach the next read, not
//! the cancelled one.
//!
//! No sleeps: the drop's cancel and a task spawned on the shard afterwards
//! go through the same FIFO mailbox, so the cancel's SQE is in the ring
//! before the task's write, and the kernel issues them in that order.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use ringlane::native::fs::File;

/// fd counts are process-wide: every test here holds this lock.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

type ReadFuture = Pin<Box<dyn Future<Output = std::io::Result<usize>> + Send>>;

/// A read future handed out of the task that started it (a plain future
/// returned from an async block would read as a forgotten `.await`).
struct InFlight(ReadFuture);

/// A read of the (empty) pipe, polled once on shard 0 so that it is in
/// flight there, then handed back to the caller undropped.
fn read_in_flight_on_shard_0(rt: &ringlane::Runtime, reader: &File) -> InFlight {
    let reader = reader.clone();
    let task = rt.handle().spawn_pinned(0, async move {
        let mut read: ReadFuture = Box::pin(async move { reader.read(vec![0u8; 64]).await.0 });
        let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx).is_pending()));
        assert!(first.await, "a read of an empty pipe completed");
        InFlight(read)
    });
    rt.block_on(task.unwrap()).unwrap()
}

/// A read held in flight on shard 0 of a `shards`-shard runtime, handed
/// to `drop_it` to be dropped away from its shard; then the pipe's next
/// bytes must reach the next read, and no fd may leak.
fn dropped_away_from_its_shard(shards: usize, drop_it: impl FnOnce(&ringlane::Runtime, InFlight)) {
    let _serial = SERIAL.lock();
    let rt = common::runtime(shards);
    let before = common::fd_count();
    let (r, w) = common::pipe();
    let reader = File::from(r);
    let read = read_in_flight_on_shard_0(&rt, &reader);
    drop_it(&rt, read);
    common::cancelled_read_leaves_the_next_bytes(&rt, reader, File::from(w));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

#[test]
fn a_read_dropped_off_the_runtime_is_cancelled_on_its_shard() {
    // On the test thread: no shard context here.
    dropped_away_from_its_shard(1, |_, read| drop(read.0));
}

#[test]
fn a_read_dropped_on_another_shard_is_cancelled_on_its_own() {
    dropped_away_from_its_shard(2, |rt, read| {
        let dropper = rt.handle().spawn_pinned(1, async move { drop(read.0) });
        rt.block_on(dropper.unwrap()).unwrap();
    });
}

/// The runtime shuts down while the read's future is held elsewhere: the
/// shutdown cancels the read and completes it (op invariant 5), and the
/// future dropped afterwards takes the completed op's drop path. Neither
/// may panic or leak an fd.
#[test]
fn a_read_held_past_its_runtime_drops_cleanly() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let (r, w) = common::pipe();
    let reader = File::from(r);
    let rt = common::runtime(1);
    let read = read_in_flight_on_shard_0(&rt, &reader);
    drop(rt);
    drop(read.0);
    drop(reader);
    drop(w);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// `close()` waits, unsubmitted, for room in a full ring and is dropped
/// there (a timeout, a `select!`, a cancelled task). The close SQE had
/// already taken the fd from its owner when it was built, and the drop of
/// an unsubmitted op returned nothing: the fd leaked. It is closed now.
#[test]
fn a_close_dropped_while_waiting_for_room_closes_the_fd() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime_with_room_for_two_ops();
    let (r1, w1) = common::pipe();
    let (r2, w2) = common::pipe();
    let outcome = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let f = File::open("/proc/self/stat").await.unwrap();
                    let (a, b) = (File::from(r1), File::from(r2));
                    let ra =
                        ringlane::spawn_local(async move { a.read(vec![0u8; 8]).await.0 }).unwrap();
                    let rb =
                        ringlane::spawn_local(async move { b.read(vec![0u8; 8]).await.0 }).unwrap();
                    ringlane::yield_now().await; // both reads in flight: no room
                    let closed =
                        ringlane::time::timeout(std::time::Duration::from_millis(20), f.close())
                            .await;
                    ra.abort();
                    rb.abort();
                    closed.is_err()
                })
                .unwrap(),
        )
        .unwrap();
    assert!(
        outcome,
        "the close found room: the test did not wait for it"
    );
    drop((w1, w2));
    drop(rt);
    assert_eq!(
        common::fd_count(),
        before,
        "the dropped close leaked its fd"
    );
}
