//! Streams on the native lane, held to std's answers: FIFOs, positioned I/O
//! on pipes, and reads dropped in every state of their life (before the
//! kernel saw them included) that must leave later bytes to the next read.
//! Every test holds `SERIAL` (fd counts are process-wide).

mod common;

use std::io::{self, ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fs::File;
use ringlane::native::net::UnixStream;

use common::LIMIT;
use common::native_io::*;

/// A FIFO in a fresh directory (removed with it).
struct Fifo {
    _dir: TempDir,
    path: PathBuf,
}

impl Fifo {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let path = dir.0.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        Self { _dir: dir, path }
    }
}

// ------------------------------------------------------------------ tests

/// Opens the FIFO at `path` for reading, says so, and reads it to EOF.
async fn open_fifo_and_read(
    path: PathBuf,
    opened: std::sync::mpsc::Sender<()>,
) -> io::Result<Vec<u8>> {
    let f = File::open(&path).await?;
    let _ = opened.send(());
    let mut got = Vec::new();
    loop {
        let (n, buf) = f.read(vec![0u8; 64]).timeout(LIMIT).await;
        let n = n?;
        if n == 0 {
            return Ok(got);
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Expected: `File::open` of a FIFO for reading (blocking, no custom
/// flags) waits until a writer opens it, as `open(2)` and
/// `std::fs::File::open` do, and the reader then gets the writer's bytes.
///
/// Why it may fail: io_uring first tries every open with `O_NONBLOCK`
/// forced and clears the flag on the fd it returns. For the read side of a
/// FIFO that attempt succeeds at once with no writer (ringlane retries
/// only the write side's `ENXIO`), so `open` returns immediately and the
/// first read sees end of file (no writer yet) instead of the data: a
/// reader loop ends before the writer ever arrives.
#[test]
fn a_fifo_opened_for_reading_waits_for_a_writer() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let fifo = Fifo::new("fifo-read");
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<()>();
    let reader = rt
        .handle()
        .spawn_pinned(0, open_fifo_and_read(fifo.path.clone(), opened_tx))
        .unwrap();
    // No writer exists: an open that behaves like open(2) is still waiting.
    let early = opened_rx.recv_timeout(Duration::from_millis(300));
    assert!(
        early.is_err(),
        "File::open of a FIFO for reading returned with no writer; open(2) blocks until one opens it"
    );
    // Non-blocking, so that it fails (ENXIO) instead of hanging if no
    // reader waits on the FIFO.
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo.path)
        .expect("no reader is waiting on the FIFO");
    writer.write_all(b"hello").unwrap();
    drop(writer);
    let got =
        common::join_within(&rt, reader, LIMIT, "the FIFO reader").expect("the reader failed");
    assert_eq!(
        got, b"hello",
        "the reader must see the writer's bytes, then EOF"
    );
    drop(rt);
    drop(fifo);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Expected: `File::read_at`, `read_vectored_at` and `write_at` are
/// positioned I/O, documented with `pread(2)`'s errors. On a pipe, pread
/// and pwrite fail with `ESPIPE` and leave the stream alone (std's
/// `FileExt` shows it on the same pipe, checked first), so after the three
/// calls the pipe still holds exactly what was written into it.
///
/// Why it may fail: io_uring never checks `FMODE_PREAD`; on a stream file
/// it ignores the offset. The positioned read then consumes the pipe's
/// bytes and the positioned write appends to it: a caller who mixes up a
/// pipe and a file silently loses stream data instead of getting an error.
#[test]
fn positioned_io_on_a_pipe_fails_like_pread_and_leaves_the_stream_alone() {
    use std::os::unix::fs::FileExt;
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let (r, w) = common::pipe();
    let errno = |r: io::Result<usize>| r.map_err(|e| e.raw_os_error());
    {
        let r_std = std::fs::File::from(r.try_clone().unwrap());
        let w_std = std::fs::File::from(w.try_clone().unwrap());
        (&w_std).write_all(b"stream-bytes").unwrap();
        let std_read = errno(r_std.read_at(&mut [0u8; 4], 100));
        let std_write = errno(w_std.write_at(b"!", 100));
        let espipe = Err(Some(libc::ESPIPE));
        assert_eq!(
            (std_read, std_write),
            (espipe, espipe),
            "std's pread/pwrite on a pipe"
        );
    }
    let rt = common::runtime(1);
    let (reader, writer) = (File::from(r), File::from(w));
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let errno = |r: io::Result<usize>| r.map_err(|e| e.raw_os_error());
            let read_at = errno(reader.read_at(vec![0u8; 4], 100).await.0);
            let vectored = errno(reader.read_vectored_at(vec![vec![0u8; 2]], 7).await.0);
            let write_at = errno(writer.write_at(b"!".to_vec(), 100).await.0);
            drop(writer); // the last write end: EOF after what is left
            let mut left = Vec::new();
            loop {
                let (n, buf) = reader.read(vec![0u8; 64]).timeout(LIMIT).await;
                match n.expect("reading what is left in the pipe") {
                    0 => break,
                    n => left.extend_from_slice(&buf[..n]),
                }
            }
            (read_at, vectored, write_at, left)
        })
        .unwrap();
    let got = common::join_within(&rt, task, LIMIT, "the pipe task");
    let espipe = Err(Some(libc::ESPIPE));
    assert_eq!(
        got,
        (espipe, espipe, espipe, b"stream-bytes".to_vec()),
        "(read_at, read_vectored_at, write_at, what the pipe held afterwards): \
         positioned I/O on a pipe must fail with ESPIPE and consume nothing"
    );
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// A receive queued (not yet submitted) and dropped at once; then bytes
/// written with a plain `write(2)`, after the drop, and read again.
async fn queued_then_dropped_receive(
    s: &UnixStream,
    mut peer: std::os::unix::net::UnixStream,
) -> Result<Vec<u8>, ErrorKind> {
    let mut read = Box::pin(s.read(vec![0u8; 64]));
    assert!(poll_once(&mut read).await, "nothing was written yet");
    drop(read); // the kernel has not seen the receive: no enter since
    peer.write_all(b"after").unwrap();
    read_within(s, Duration::from_secs(2))
        .await
        .map_err(|e| e.kind())
}

/// As `queued_then_dropped_receive`, for a pipe read (not a late SQE).
async fn queued_then_dropped_pipe_read(
    f: &File,
    mut writer: std::fs::File,
) -> Result<Vec<u8>, ErrorKind> {
    let mut read = Box::pin(f.read(vec![0u8; 64]));
    assert!(poll_once(&mut read).await, "nothing was written yet");
    drop(read);
    writer.write_all(b"after").unwrap();
    let (n, buf) = f.read(vec![0u8; 64]).timeout(Duration::from_secs(2)).await;
    n.map(|n| buf[..n].to_vec()).map_err(|e| e.kind())
}

/// Expected: a read whose future is dropped before the kernel ever saw its
/// SQE (pushed or queued as a late receive, no `io_uring_enter` since)
/// consumes nothing; bytes written after the drop, in program order on the
/// same thread, go to the next read.
///
/// Why it may fail: `Drop` asks for an `ASYNC_CANCEL`, and placing it once
/// moved the dropped receive into the SQ first, so the
/// next enter issues the dropped read *and then* its cancel. Data that
/// arrived in between (here: written right after the drop) is taken by the
/// dropped read and freed with its buffer; the cancel finds nothing and
/// the next read waits for bytes that are gone (`TimedOut`). The SQE was
/// still in user space and could have been withdrawn (turned into a NOP,
/// or removed from the `late` list).
#[test]
fn a_read_dropped_before_the_kernel_saw_it_takes_no_later_bytes() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (sock, sock_peer, sock_std) = unix_pair();
    let (r, w) = common::pipe();
    let (pipe_file, pipe_std) = (File::from(r), std::fs::File::from(w));
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let socket = queued_then_dropped_receive(&sock, sock_std).await;
            let pipe = queued_then_dropped_pipe_read(&pipe_file, pipe_std).await;
            (socket, pipe)
        })
        .unwrap();
    let got = common::join_within(&rt, task, LIMIT, "the reads");
    let after = Ok(b"after".to_vec());
    assert_eq!(
        got,
        (after.clone(), after),
        "(socket, pipe): a read dropped before submission was still issued ahead of its \
         cancel and swallowed bytes written after the drop (TimedOut: the next read never got them)"
    );
    drop((rt, sock_peer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// A receive queued (not yet submitted), then another op pushed and dropped
/// (its cancel queued), then the receive dropped, all before any enter.
async fn read_dropped_after_another_ops_cancel(
    s: &UnixStream,
    mut peer: std::os::unix::net::UnixStream,
    other: &UnixStream,
) -> Result<Vec<u8>, ErrorKind> {
    let mut read = Box::pin(s.read(vec![0u8; 64]));
    assert!(poll_once(&mut read).await, "nothing was written yet");
    let mut write = Box::pin(other.write(b"x".to_vec()));
    // Whether the write completes at once or not, its SQE was pushed.
    let _ = poll_once(&mut write).await;
    drop(write); // its cancel is queued
    drop(read); // the kernel has still not seen the receive
    peer.write_all(b"after").unwrap();
    read_within(s, Duration::from_secs(2))
        .await
        .map_err(|e| e.kind())
}

/// Expected: as `a_read_dropped_before_the_kernel_saw_it_takes_no_later_bytes`,
/// when another op's cancel was queued between the receive's poll and its
/// drop (two branches of a `select!` dropped in order, say).
///
/// Why it may fail: the other op's cancel moved the late receive into the
/// SQ ahead of it (to keep cancels behind late receives), so the receive
/// could no longer be withdrawn: the next enter issued it, it took the
/// bytes written after its drop, and the next read timed out.
#[test]
fn a_read_dropped_after_another_ops_cancel_takes_no_later_bytes() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    if !rt.handle().ring_features().defer_taskrun {
        // Without it a cancel is submitted at once, issuing every late
        // receive with it: the order this test pins down does not arise.
        println!("SKIP: the kernel refused IORING_SETUP_DEFER_TASKRUN");
        return;
    }
    let (sock, sock_peer, sock_std) = unix_pair();
    let (other, other_peer, other_std) = unix_pair();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            read_dropped_after_another_ops_cancel(&sock, sock_std, &other).await
        })
        .unwrap();
    let got = common::join_within(&rt, task, LIMIT, "the read");
    assert_eq!(
        got,
        Ok(b"after".to_vec()),
        "a receive dropped before the kernel saw it took bytes written after the drop"
    );
    drop((rt, sock_peer, other_peer, other_std));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// The body of `a_read_dropped_in_each_state_leaves_later_bytes_to_the_next_read`.
async fn drop_in_every_state() -> io::Result<Vec<Vec<u8>>> {
    let (a, a_peer, mut a_std) = unix_pair();
    let (b, _b_peer, mut b_std) = unix_pair();
    let (c, _c_peer, mut c_std) = unix_pair();
    let mut got = Vec::new();

    // 1. Never polled: nothing reached the ring.
    drop(a.read(vec![0u8; 64]));
    a_std.write_all(b"one")?;
    got.push(read_bounded(&a, LIMIT).await?);

    // 2. Waiting for room: reads of `b` and `c` hold both op slots.
    let hb = ringlane::spawn_local(async move {
        let (n, buf) = b.read(vec![0u8; 64]).await;
        n.map(|n| buf[..n].to_vec())
    })
    .unwrap();
    let hc = ringlane::spawn_local(async move {
        let (n, buf) = c.read(vec![0u8; 64]).await;
        n.map(|n| buf[..n].to_vec())
    })
    .unwrap();
    ringlane::yield_now().await; // both ran and pushed their reads
    let mut waiting = Box::pin(a.read(vec![0u8; 64]));
    assert!(
        poll_once(&mut waiting).await,
        "no slot is free: the read waits"
    );
    drop(waiting);
    a_std.write_all(b"two")?;
    b_std.write_all(b"b")?; // `b`'s read completes: a slot frees up
    assert_eq!(hb.await.unwrap()?, b"b");
    got.push(read_bounded(&a, LIMIT).await?);

    // 3. In flight: issued by the sleep's enter (the socket is empty, so it
    // is armed in the kernel), then dropped. The peer's bytes go through
    // the ring after the drop, so its cancel is submitted first.
    let mut inflight = Box::pin(a.read(vec![0u8; 64]));
    assert!(poll_once(&mut inflight).await);
    ringlane::time::sleep(Duration::from_millis(5)).await;
    drop(inflight);
    a_peer.write_all(b"three".to_vec()).await.0?;
    got.push(read_bounded(&a, LIMIT).await?);

    // 4. Completed, never polled again: the bytes it took go with it (as
    // documented), nothing else does, and its buffer is freed once.
    a_std.write_all(b"lost")?;
    let mut done = Box::pin(a.read(vec![0u8; 64]));
    assert!(poll_once(&mut done).await);
    until_drained(a.as_raw_fd()).await; // the kernel took "lost" for it
    ringlane::time::sleep(Duration::from_millis(2)).await; // its CQE is reaped
    drop(done);
    a_std.write_all(b"four")?;
    got.push(read_bounded(&a, LIMIT).await?);

    // `c`'s read, in flight all along, still completes normally.
    c_std.write_all(b"c")?;
    assert_eq!(hc.await.unwrap()?, b"c");
    Ok(got)
}

/// Expected: on a ring with two op slots, a read dropped (1) before its
/// first poll, (2) while waiting for room, (3) while armed in the kernel
/// and (4) after its completion was reaped but before it was polled again
/// never takes the bytes sent after it, never leaves an op slot taken, and
/// leaks no fd; a read in flight beside all this completes normally.
///
/// Why: the four drop paths of `Op` (never pushed, waiting in the room
/// list, `Submitted` → `Abandoned` + `ASYNC_CANCEL`, `Completed` → free the
/// resources) each have their own bookkeeping; a slot leaked by any of
/// them stalls the next read (it waits for room forever, so the bounded
/// read fails), and a cancel that lost the race to the next bytes shows up
/// as a missing message.
#[test]
fn a_read_dropped_in_each_state_leaves_later_bytes_to_the_next_read() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = two_op_slots();
    let task = rt.handle().spawn_pinned(0, drop_in_every_state()).unwrap();
    let got = common::join_within(&rt, task, Duration::from_secs(40), "the reads")
        .expect("a read failed");
    assert_eq!(
        got,
        vec![
            b"one".to_vec(),
            b"two".to_vec(),
            b"three".to_vec(),
            b"four".to_vec()
        ],
        "the read after each dropped one"
    );
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
