//! An op future dropped in flight away from the shard whose ring took it:
//! on another shard of its runtime, or on a thread outside the runtime.
//! Its cancel must travel to that shard's ring (op invariant 3, through the
//! shard's mailbox); the pipe's next bytes must reach the next read, not
//! the cancelled one.
//!
//! Also an open dropped while the kernel still works on it: the fd it
//! opens late is closed by the runtime.
//!
//! No sleeps: the drop's cancel and a task spawned on the shard afterwards
//! go through the same FIFO mailbox, so the cancel's SQE is in the ring
//! before the task's write, and the kernel issues them in that order.

mod common;

use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::task::Poll;

use common::in_flight::{InFlight, read_in_flight_on_shard_0};
use ringlane::native::fs::File;

/// fd counts are process-wide: every test here holds this lock.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

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

/// A FIFO made in a fresh directory (removed with the guard).
struct Fifo {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Fifo {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ringlane-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        Self { dir, path }
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Opening a FIFO for writing waits for a reader, as `open(2)` does.
/// io_uring's first, non-blocking attempt fails with `ENXIO` when no
/// reader is there yet, and the kernel hands that back: ringlane opens
/// again in io-wq, where the open may block.
#[test]
fn a_fifo_opened_for_writing_waits_for_its_reader() {
    use std::io::Read;
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let fifo = Fifo::new("fifo-open");
    let path = fifo.path.clone();
    let (polled_tx, polled) = std::sync::mpsc::channel::<u64>();
    let writer = rt
        .handle()
        .spawn_pinned(0, async move {
            let options = ringlane::native::fs::OpenOptions::new().write(true);
            let mut open = std::pin::pin!(options.open(path));
            let first = std::future::poll_fn(|cx| Poll::Ready(open.as_mut().poll(cx))).await;
            assert!(
                first.is_pending(),
                "the open is submitted at the next enter"
            );
            let h = ringlane::Handle::current().unwrap();
            polled_tx.send(h.shard_stats(0).unwrap().parks).unwrap();
            let f = open.await?;
            // A FIFO has no positions: a plain write (`write_at` is `ESPIPE`).
            let (n, _) = f.write(b"hello".to_vec()).await;
            assert_eq!(n?, 5);
            Ok::<_, std::io::Error>(())
        })
        .unwrap();
    // The next park's enter submits the open and returns with its first
    // attempt's CQE: once it has, the open was tried with no reader.
    // (If the kernel sends that attempt straight to io-wq instead, the
    // park never returns; after 10 s the reader opens anyway.)
    until_a_park_returns(&rt, &polled);
    // Not blocking: with no writer, a blocking open would wait forever.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo.path)
        .unwrap();
    common::join_within(
        &rt,
        writer,
        std::time::Duration::from_secs(10),
        "the writer",
    )
    .expect("the open did not wait for the reader");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut buf = [0u8; 16];
        match reader.read(&mut buf) {
            Ok(0) => break, // the writer closed
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the writer never closed"
                );
                std::thread::yield_now();
            }
            Err(e) => panic!("reading the FIFO: {e}"),
        }
    }
    assert_eq!(got, b"hello");
}

/// Takes shard 0's park count, sent by a task right after the poll that
/// queued an open, and waits (at most 10 s, then goes on) until a park
/// after it has returned: its enter submitted the open and came back with
/// the first attempt's CQE.
fn until_a_park_returns(rt: &ringlane::Runtime, polled: &std::sync::mpsc::Receiver<u64>) {
    let parks = polled
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the open was never polled");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rt.handle().shard_stats(0).unwrap().parks <= parks && std::time::Instant::now() < deadline
    {
        std::thread::yield_now();
    }
}

/// Waits (at most 10 s) until a thread of this process sleeps in the
/// kernel function `symbol` (its `/proc` stack says so): an io-wq worker
/// blocked in an open. Where kernel stacks cannot be read (not root), it
/// waits 200 ms instead and says so.
fn until_a_thread_waits_in(symbol: &str) {
    let stacks = || -> Option<bool> {
        let mut any = false;
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let stack = std::fs::read_to_string(task.ok()?.path().join("stack")).ok()?;
            any |= stack.contains(symbol);
        }
        Some(any)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match stacks() {
            Some(true) => return,
            Some(false) if std::time::Instant::now() < deadline => std::thread::yield_now(),
            Some(false) => panic!("no thread ever blocked in {symbol}"),
            None => {
                eprintln!("kernel stacks unreadable: waiting 200 ms for {symbol} instead");
                std::thread::sleep(std::time::Duration::from_millis(200));
                return;
            }
        }
    }
}

/// An `open` of a FIFO for writing blocks (in io-wq) until a reader opens
/// the other end. Its future is dropped while it blocks, and in the same
/// poll, before the cancel reaches the kernel, a reader opens the FIFO: the
/// open completes with an fd nobody will take, which the runtime must
/// close (the reader then sees EOF). No fd may leak.
#[test]
fn dropped_open_in_flight_leaves_no_late_fd_open() {
    use std::io::Read;
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let before = common::fd_count();
    let fifo = Fifo::new("fifo-drop");
    let (path, reader_path) = (fifo.path.clone(), fifo.path.clone());
    let (polled_tx, polled) = std::sync::mpsc::channel::<u64>();
    let (drop_tx, drop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let options = ringlane::native::fs::OpenOptions::new().write(true);
            let mut open = Box::pin(options.open(path));
            let mut drop_rx = std::pin::pin!(drop_rx);
            let mut first = true;
            // Poll the open until told to drop it; it must stay pending.
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = open.as_mut().poll(cx) {
                    panic!("the open ended with no reader: {:?}", r.map(drop));
                }
                if std::mem::take(&mut first) {
                    let h = ringlane::Handle::current().unwrap();
                    polled_tx.send(h.shard_stats(0).unwrap().parks).unwrap();
                }
                drop_rx.as_mut().poll(cx).map(drop)
            })
            .await;
            drop(open); // its cancel is queued, not yet submitted
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(reader_path)
                .unwrap()
        })
        .unwrap();
    // The first attempt's enter has returned (ENXIO, so a blocking retry
    // follows), and the shard sleeps with the retry blocked in io-wq.
    until_a_park_returns(&rt, &polled);
    until_a_thread_waits_in("wait_for_partner");
    drop_tx.send(()).unwrap();
    let mut reader = common::join_within(&rt, task, std::time::Duration::from_secs(10), "the task");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut byte = [0u8; 1];
    loop {
        match reader.read(&mut byte) {
            Ok(0) => break, // no writer (any more): EOF
            Ok(_) => panic!("nobody wrote to the FIFO"),
            // A writer is still open: the late fd has not been closed yet.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => assert!(
                std::time::Instant::now() < deadline,
                "the late fd of the dropped open is still open"
            ),
            Err(e) => panic!("reading the FIFO: {e}"),
        }
        std::thread::yield_now();
    }
    drop((reader, fifo));
    assert_eq!(common::fd_count(), before, "an fd leaked");
    drop(rt);
}
