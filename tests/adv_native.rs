//! Adversarial tests of the native lane (meant to live at
//! `tests/adv_native.rs`): ops dropped in every state of their life, op
//! futures that outlive their runtime or are dropped on Tokio threads,
//! multishot streams dropped mid-stream away from their shard, zero-copy
//! sends' op-table entries, and inputs whose results must match std's for
//! the same input (FIFOs, positioned I/O on pipes, odd UDP addresses,
//! offsets at the edge of `i64`, paths with NUL bytes, fds of the wrong
//! kind).
//!
//! Every test holds `SERIAL` (fd counts are process-wide and libtest runs
//! the tests of a file in parallel threads) and bounds every wait, so a
//! lost wake-up fails it instead of hanging. In-flight states come from
//! empty sockets and pipes, not from sleeps.

mod common;

use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, RingBuf};
use ringlane::native::fs::{self as nfs, File, OpenOptions};
use ringlane::native::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

/// fd counts are process-wide: every test here holds this lock.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The bound on every single wait in this file.
const LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- helpers

/// The fd count once the process-wide lazy state a first runtime creates
/// exists (as `fd_leaks.rs` warms up before counting).
fn settled_fd_count() -> usize {
    drop(common::runtime(1));
    common::fd_count()
}

/// A one-shard runtime whose op table takes two single-shot ops (a CQ of
/// 64, the smallest), on a ring of 8 SQ entries so that room in the SQ
/// never decides which op waits.
fn two_op_slots() -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(1)
        .ring_entries(8)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"))
}

/// A value handed out of a task (futures among it): wrapped, so the task
/// does not read as returning a future nobody awaits.
struct Held<T>(T);

/// Polls `fut` once from inside a task; `true` if it is still pending.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

/// A connected Unix stream pair: our native end, the peer's native end,
/// and a std handle on the peer's socket for plain synchronous writes.
fn unix_pair() -> (UnixStream, UnixStream, std::os::unix::net::UnixStream) {
    let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let peer_std = peer.try_clone().unwrap();
    (
        UnixStream::from_std(ours),
        UnixStream::from_std(peer),
        peer_std,
    )
}

/// One receive on `s`, bounded by a kernel timeout of `limit`.
async fn read_within(s: &UnixStream, limit: Duration) -> io::Result<Vec<u8>> {
    let (n, buf) = s.read(vec![0u8; 64]).timeout(limit).await;
    Ok(buf[..n?].to_vec())
}

/// One receive on `s` bounded by a timer that drops (cancels) it: it takes
/// one op slot, where a kernel timeout would take two (op invariant 7).
async fn read_bounded(s: &UnixStream, limit: Duration) -> io::Result<Vec<u8>> {
    let (n, buf) = ringlane::time::timeout(limit, s.read(vec![0u8; 64])).await?;
    Ok(buf[..n?].to_vec())
}

/// Waits, on the shard and for at most 10 s, until socket `fd` holds no
/// unread byte: an op of the shard's ring took them.
async fn until_drained(fd: RawFd) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer.
        let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int) };
        assert_eq!(r, 0, "FIONREAD: {}", io::Error::last_os_error());
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the ring never took the bytes");
        ringlane::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Connections waiting in a listening TCP socket's accept queue
/// (`TCP_INFO` of a listener reports them as `tcpi_unacked`).
fn accept_queue_len(listener: RawFd) -> u32 {
    // SAFETY: all-zero bytes are a valid `tcp_info`.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let r = unsafe {
        libc::getsockopt(
            listener,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_INFO: {}", io::Error::last_os_error());
    info.tcpi_unacked
}

/// Drops `value` in a task of a one-worker Tokio runtime: on a thread that
/// is neither a shard nor the test thread. (No I/O driver: it opens no fd.)
fn drop_on_tokio<T: Send + 'static>(value: T) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    tokio_rt.block_on(async move {
        tokio::spawn(async move { drop(value) }).await.unwrap();
    });
    tokio_rt.shutdown_timeout(LIMIT);
}

/// Runs two empty tasks on `shard`, one after the other. The mailbox is
/// FIFO and every tick ends with a submit, so whatever was posted to the
/// shard before (a cancel from another thread) has reached the kernel.
fn two_ticks(rt: &ringlane::Runtime, shard: usize) {
    for _ in 0..2 {
        let t = rt.handle().spawn_pinned(shard, async {}).unwrap();
        common::join_within(rt, t, LIMIT, "an empty task");
    }
}

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("ringlane-adv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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
/// Why it may fail: `Drop` asks for an `ASYNC_CANCEL` and
/// `push_after_late` first moves the dropped receive into the SQ, so the
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

type WriteAllFut = Pin<Box<dyn Future<Output = (io::Result<()>, Vec<u8>)> + Send>>;

/// Expected: a `write_all` of 4 MiB into a socket nobody reads, stuck in
/// flight, whose future is then dropped on a Tokio worker thread (its
/// cancel travels through the shard's mailbox), leaves the peer exactly a
/// prefix of the data; a later write (a marker) arrives right after that
/// prefix and nothing of the dropped write ever follows it. The socket
/// closes once its last handle and the cancelled op are gone (EOF).
///
/// Why: a cancel that is lost, or an op that goes on sending after it was
/// dropped (or a buffer freed while the kernel still sends from it), shows
/// up as bytes after the marker, wrong bytes in the prefix, or no EOF.
#[test]
fn a_write_all_dropped_on_a_tokio_thread_leaves_the_peer_an_exact_prefix() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let ours = Arc::new(UnixStream::from_std(ours));
    let data: Vec<u8> = (0..4usize << 20).map(|i| (i % 251) as u8).collect();
    let (s, d) = (ours.clone(), data.clone());
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut write: WriteAllFut = Box::pin(async move { s.write_all(d).await });
            let waited = ringlane::time::timeout(Duration::from_millis(200), write.as_mut()).await;
            assert!(waited.is_err(), "4 MiB fitted into a socket nobody reads");
            Held(write)
        })
        .unwrap();
    let Held(write) = common::join_within(&rt, task, LIMIT, "the writer");
    drop_on_tokio(write);
    two_ticks(&rt, 0); // the cancel has reached the kernel
    // 0xFF..0xFC never occur in the data (bytes 0..=250).
    let marker = vec![0xFFu8, 0xFE, 0xFD, 0xFC];
    let m = marker.clone();
    let finish = rt
        .handle()
        .spawn_pinned(0, async move {
            let (r, _) = ours.write_all(m).await;
            r // `ours`, the last handle, goes here
        })
        .unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got)
        .expect("no EOF after the marker: the socket was kept open");
    common::join_within(&rt, finish, LIMIT, "the marker").expect("the marker write failed");
    let cut = got
        .len()
        .checked_sub(marker.len())
        .expect("the marker never arrived");
    assert_eq!(
        &got[cut..],
        &marker[..],
        "bytes of the dropped write_all arrived after the marker: it was not cancelled"
    );
    assert!(
        cut > 0 && cut < data.len(),
        "the socket took {cut} bytes of 4 MiB before it filled"
    );
    assert!(
        got[..cut] == data[..cut],
        "the peer got other bytes than a prefix of the dropped write_all's data"
    );
    drop((rt, peer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

type ReadFut = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)> + Send>>;
type AcceptFut = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A boxed receive of up to 32 bytes on `s` (which it owns).
fn boxed_read(s: UnixStream) -> ReadFut {
    Box::pin(async move { s.read(Vec::with_capacity(32)).await })
}

/// Expected: op futures handed out of their task and still held when
/// their runtime shuts down (two reads armed in the kernel, a third
/// waiting for room, a multishot accept armed on a listener) let the
/// shutdown finish cleanly; polled afterwards, off the shards, each
/// resolves at once with an `io::Error` (not a hang, not a panic, not
/// data) and gives its buffer back; a read future created before but never
/// polled runs normally on the next runtime it is polled on; no fd leaks.
///
/// Why: the shard cancels what its table holds before it exits (op
/// invariant 5) and the futures then find a completed op; one it leaked
/// would stay `Submitted` forever (the bounded poll fails), and an op that
/// waited for room must not try to use the dead shard's ring.
#[test]
fn op_futures_that_outlive_their_runtime_end_with_errors_not_hangs() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let (a, ap, a_std) = unix_pair();
    let (b, bp, b_std) = unix_pair();
    let (c, cp, c_std) = unix_pair();
    let (d, dp, mut d_std) = unix_pair();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let fresh = boxed_read(d); // never polled before the second runtime
    let rt = two_op_slots();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut accept: AcceptFut = Box::pin(async move {
                let mut incoming = listener.incoming();
                incoming.next().await.map(drop)
            });
            assert!(poll_once(&mut accept).await, "nobody connects");
            let (mut ra, mut rb) = (boxed_read(a), boxed_read(b));
            assert!(poll_once(&mut ra).await && poll_once(&mut rb).await);
            // The sleep's enter issues all three: both op slots are taken.
            ringlane::time::sleep(Duration::from_millis(5)).await;
            let mut rc = boxed_read(c);
            assert!(poll_once(&mut rc).await, "no slot is free: it waits");
            Held((vec![ra, rb], rc, accept))
        })
        .unwrap();
    let Held((armed, waiting, accept)) = common::join_within(&rt, task, LIMIT, "the set-up");
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.is_clean(), "{report:?}");

    let rt2 = common::runtime(1);
    for (i, read) in armed.into_iter().enumerate() {
        let (r, buf) = rt2
            .block_on(ringlane::time::timeout(LIMIT, read))
            .unwrap_or_else(|_| panic!("read {i}, in flight at shutdown, never ended"));
        assert!(r.is_err(), "read {i} got data nobody sent: {r:?}");
        assert_eq!(buf.capacity(), 32, "read {i} lost its buffer");
    }
    let (r, buf) = rt2
        .block_on(ringlane::time::timeout(LIMIT, waiting))
        .expect("the read that waited for room never ended");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(buf.capacity(), 32, "the waiting read lost its buffer");
    let r = rt2
        .block_on(ringlane::time::timeout(LIMIT, accept))
        .expect("the multishot accept never ended");
    assert!(r.is_err(), "an accept with no client: {r:?}");

    d_std.write_all(b"fresh").unwrap();
    let fresh = rt2.handle().spawn_pinned(0, fresh).unwrap();
    let (n, buf) = common::join_within(&rt2, fresh, LIMIT, "the never-polled read");
    assert_eq!(&buf[..n.unwrap()], b"fresh");
    drop(rt2);
    drop((ap, a_std, bp, b_std, cp, c_std, dp, d_std));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// How many bytes of each kind the zero-copy test's peer must see.
struct ZcCounts {
    ones: usize,
    fives: usize,
    filler: usize,
}

type Waited = Result<Vec<u8>, ringlane::time::Elapsed>;

/// The shard side of `zero_copy_sends_give_back_their_op_slots_whatever_the_outcome`;
/// `None` if the kernel has no `SEND_ZC`.
async fn zero_copy_outcomes(
    listener: std::net::TcpListener,
) -> Option<(std::net::TcpStream, ZcCounts, (Waited, Waited))> {
    let addr = listener.local_addr().unwrap();
    let s = TcpStream::connect(addr).await.unwrap();
    let (peer, _) = listener.accept().unwrap(); // already in the backlog
    let ones = match s.write_zc(vec![1u8; 1000]).await.0 {
        Err(e) if e.kind() == ErrorKind::InvalidInput => return None,
        r => r.unwrap(),
    };
    // Success, fifty times.
    let mut fives = 0;
    for _ in 0..50 {
        fives += s.write_zc(vec![5u8; 1000]).await.0.unwrap();
    }
    // An error, twenty times: this connection's sending side is shut down.
    let t = TcpStream::connect(addr).await.unwrap();
    let (_t_peer, _) = listener.accept().unwrap();
    t.shutdown(std::net::Shutdown::Write).await.unwrap();
    for _ in 0..20 {
        let (r, buf) = t.write_zc(vec![2u8; 100]).await;
        assert_eq!(
            (r.map_err(|e| e.kind()), buf.len()),
            (Err(ErrorKind::BrokenPipe), 100)
        );
    }
    // Dropped in flight: plain writes fill the connection (the peer does
    // not read) until one waits, then a zero-copy send is issued and
    // dropped while it waits for room in the socket.
    let mut filler = 0;
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "the connection never filled up");
        let write = s.write(vec![0xABu8; 1 << 20]);
        match ringlane::time::timeout(Duration::from_millis(50), write).await {
            Ok((r, _)) => filler += r.unwrap(),
            Err(_) => break, // it waited: the socket is full
        }
    }
    let mut zc = Box::pin(s.write_zc(vec![3u8; 4096]));
    assert!(poll_once(&mut zc).await);
    ringlane::time::sleep(Duration::from_millis(5)).await; // issued, waiting
    drop(zc);
    // Both op slots must be free again: two reads in flight at once. The
    // second one's bytes come first: with a slot still taken it would be
    // the one waiting for room, behind a read that never completes.
    let (x, _xp, mut x_std) = unix_pair();
    let (y, _yp, mut y_std) = unix_pair();
    let hx = ringlane::spawn_local(async move {
        let (n, buf) = x.read(vec![0u8; 8]).await;
        buf[..n.unwrap()].to_vec()
    })
    .unwrap();
    let hy = ringlane::spawn_local(async move {
        let (n, buf) = y.read(vec![0u8; 8]).await;
        buf[..n.unwrap()].to_vec()
    })
    .unwrap();
    ringlane::yield_now().await;
    y_std.write_all(b"y").unwrap();
    let y_got = ringlane::time::timeout(Duration::from_secs(5), hy)
        .await
        .map(|j| j.unwrap());
    x_std.write_all(b"x").unwrap();
    let x_got = ringlane::time::timeout(Duration::from_secs(5), hx)
        .await
        .map(|j| j.unwrap());
    drop(s); // EOF for the peer once the kernel is done with the sends
    Some((
        peer,
        ZcCounts {
            ones,
            fives,
            filler,
        },
        (y_got, x_got),
    ))
}

/// Expected: on a ring with two op slots, zero-copy sends that succeed
/// (fifty), fail (`BrokenPipe`, twenty, buffer back) or are dropped while
/// waiting for room in a full socket each give back both table entries
/// they take (the op and the reservation for its notification), so two
/// reads can then be in flight together; and the peer receives every
/// completed send's bytes, in order, and nothing else.
///
/// Why: a two-CQE op frees its reservation only when its final CQE comes;
/// an error CQE without `F_MORE`, a cancel's `-ECANCELED` followed by the
/// notification, or a drop between the two CQEs each take another path,
/// and an entry leaked by any of them silently halves this ring.
#[test]
fn zero_copy_sends_give_back_their_op_slots_whatever_the_outcome() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = two_op_slots();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let task = rt
        .handle()
        .spawn_pinned(0, zero_copy_outcomes(listener))
        .unwrap();
    let out = common::join_within(&rt, task, Duration::from_secs(40), "the sends");
    let Some((mut peer, counts, waited)) = out else {
        println!("SKIP zero-copy send test: the kernel refuses IORING_OP_SEND_ZC (needs 6.0)");
        return;
    };
    assert_eq!(
        waited,
        (Ok(b"y".to_vec()), Ok(b"x".to_vec())),
        "(second read, first read): an op slot stayed taken after the zero-copy sends"
    );
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut all = Vec::new();
    peer.read_to_end(&mut all)
        .expect("no EOF: the connection was kept open");
    let class = |b: u8| match b {
        1 => 0,
        5 => 1,
        0xAB => 2,
        3 => 3,
        other => panic!("byte {other:#x} was never sent"),
    };
    assert!(
        all.windows(2).all(|w| class(w[0]) <= class(w[1])),
        "the sends arrived out of order"
    );
    let count = |v: u8| all.iter().filter(|&&b| b == v).count();
    assert_eq!((count(1), count(5)), (counts.ones, counts.fives));
    assert!(
        count(0xAB) >= counts.filler,
        "a completed write's bytes are missing"
    );
    assert!(count(3) <= 4096);
    drop((rt, peer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// The shard side of `udp_datagrams_to_odd_addresses_behave_as_with_std`.
async fn udp_cases() {
    let v4 = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let errno = |r: io::Result<usize>| r.map(drop).map_err(|e| e.raw_os_error());
    let rx = UdpSocket::bind(v4(0)).unwrap();
    let rx_addr = rx.local_addr().unwrap();
    let tx = UdpSocket::bind(v4(0)).unwrap();
    let std_tx = std::net::UdpSocket::bind(v4(0)).unwrap();

    // Destinations the kernel refuses: the same errno as std's send_to.
    let refused: [(&str, SocketAddr); 3] = [
        ("port 0", v4(0)),
        (
            "an IPv6 address from an IPv4 socket",
            "[::1]:9".parse().unwrap(),
        ),
        (
            "the broadcast address without SO_BROADCAST",
            SocketAddr::from((Ipv4Addr::BROADCAST, 9)),
        ),
    ];
    for (what, to) in refused {
        let ours = errno(tx.send_to(b"x".to_vec(), to).await.0);
        let theirs = errno(std_tx.send_to(b"x", to));
        assert_eq!(ours, theirs, "send_to {what}");
    }

    // 0.0.0.0 means this host on Linux: delivered, from the sender's address.
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, rx_addr.port()));
    let ours = errno(tx.send_to(b"ours".to_vec(), any).await.0);
    let theirs = errno(std_tx.send_to(b"std", any));
    assert_eq!(ours, theirs, "send_to 0.0.0.0");
    if ours.is_ok() {
        let mut got = Vec::new();
        for _ in 0..2 {
            let (r, buf) = rx.recv_from(Vec::with_capacity(16)).timeout(LIMIT).await;
            let (n, from) = r.unwrap();
            got.push((buf[..n].to_vec(), from));
        }
        got.sort();
        let want = vec![
            (b"ours".to_vec(), tx.local_addr().unwrap()),
            (b"std".to_vec(), std_tx.local_addr().unwrap()),
        ];
        assert_eq!(got, want, "datagrams sent to 0.0.0.0");
    }

    // A datagram longer than the buffer is cut, and the rest is gone (not
    // read as the next datagram), as recvfrom(2) does.
    tx.send_to(vec![7u8; 100], rx_addr).await.0.unwrap();
    tx.send_to(vec![8u8; 3], rx_addr).await.0.unwrap();
    let (r, buf) = rx
        .recv_from(vec![0u8; 10].into_boxed_slice())
        .timeout(LIMIT)
        .await;
    assert_eq!(
        (r.unwrap().0, &buf[..]),
        (10, &[7u8; 10][..]),
        "a long datagram"
    );
    let (r, buf) = rx
        .recv_from(vec![0u8; 10].into_boxed_slice())
        .timeout(LIMIT)
        .await;
    assert_eq!(
        (r.unwrap().0, &buf[..3]),
        (3, &[8u8; 3][..]),
        "the next datagram"
    );

    // An empty buffer takes a whole datagram and reports 0 bytes and the
    // sender, as std's recv_from(&mut []) does (checked on std sockets).
    let std_rx = std::net::UdpSocket::bind(v4(0)).unwrap();
    std_rx.set_read_timeout(Some(LIMIT)).unwrap();
    std_tx
        .send_to(&[9u8; 5], std_rx.local_addr().unwrap())
        .unwrap();
    std_tx.send_to(b"z", std_rx.local_addr().unwrap()).unwrap();
    let std_empty = std_rx.recv_from(&mut []).unwrap();
    let mut one = [0u8; 4];
    let std_next = std_rx.recv_from(&mut one).unwrap();
    assert_eq!(
        (std_empty.0, std_next.0, one[0]),
        (0, 1, b'z'),
        "std's view"
    );
    tx.send_to(vec![9u8; 5], rx_addr).await.0.unwrap();
    tx.send_to(b"z".to_vec(), rx_addr).await.0.unwrap();
    let (r, _) = rx.recv_from(Vec::<u8>::new()).timeout(LIMIT).await;
    assert_eq!(r.unwrap(), (0, tx.local_addr().unwrap()), "an empty buffer");
    let (r, buf) = rx.recv_from(Vec::with_capacity(4)).timeout(LIMIT).await;
    assert_eq!(&buf[..r.unwrap().0], b"z", "the datagram after it");

    // Dual stack: a v4 sender seen from an IPv6 socket bound to [::] is a
    // v4-mapped address, and such a socket sends to v4 addresses.
    let bound = (
        UdpSocket::bind("[::]:0".parse().unwrap()),
        std::net::UdpSocket::bind("[::]:0"),
    );
    let (Ok(rx6), Ok(std_rx6)) = bound else {
        println!("SKIP the dual-stack UDP cases: no IPv6 socket on this machine");
        return;
    };
    let std_port6 = std_rx6.local_addr().unwrap().port();
    std_rx6
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    std_tx.send_to(b"v4", v4(std_port6)).unwrap();
    let std_from = match std_rx6.recv_from(&mut [0u8; 8]) {
        Ok((_, from)) => from,
        Err(e) => {
            println!("SKIP the dual-stack UDP cases: IPv6 sockets are v6-only here ({e})");
            return;
        }
    };
    let mapped = |port: u16| {
        SocketAddr::V6(SocketAddrV6::new(
            Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
            port,
            0,
            0,
        ))
    };
    assert_eq!(
        std_from,
        mapped(std_tx.local_addr().unwrap().port()),
        "std's view"
    );
    let port6 = rx6.local_addr().unwrap().port();
    tx.send_to(b"v4".to_vec(), v4(port6)).await.0.unwrap();
    let (r, _) = rx6.recv_from(Vec::with_capacity(8)).timeout(LIMIT).await;
    assert_eq!(
        r.unwrap().1,
        mapped(tx.local_addr().unwrap().port()),
        "a v4 sender seen from a dual-stack socket"
    );
    let ours = errno(rx6.send_to(b"6to4".to_vec(), rx_addr).await.0);
    let theirs = errno(std_rx6.send_to(b"6to4", rx_addr));
    assert_eq!(
        ours, theirs,
        "send_to a v4 address from a dual-stack socket"
    );
    if ours.is_ok() {
        let mut from = Vec::new();
        for _ in 0..2 {
            let (r, _) = rx.recv_from(Vec::with_capacity(8)).timeout(LIMIT).await;
            from.push(r.unwrap().1);
        }
        from.sort();
        let mut want = vec![v4(port6), v4(std_port6)];
        want.sort();
        assert_eq!(from, want, "senders of the 6-to-4 datagrams");
    }
}

/// Expected: UDP `send_to`/`recv_from` give what std's give for the same
/// input: the same errno for refused destinations (port 0, an IPv6
/// address from an IPv4 socket, broadcast without `SO_BROADCAST`),
/// delivery to `0.0.0.0` as to this host, a long datagram cut to the
/// buffer with its rest discarded, an empty buffer consuming a whole
/// datagram, and v4-mapped sender addresses on a dual-stack socket.
///
/// Why: the native lane builds its own `sockaddr` and `msghdr` inline in
/// the op (`RawAddr`, `MsgRes`) and parses the kernel's answer itself; a
/// wrong length, family or name length shows up as a different errno, a
/// wrong sender, or a datagram read twice.
#[test]
fn udp_datagrams_to_odd_addresses_behave_as_with_std() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let task = rt.handle().spawn_pinned(0, udp_cases()).unwrap();
    common::join_within(&rt, task, Duration::from_secs(40), "the UDP cases");
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// The shard side of `bad_input_gets_the_errors_std_gives`.
async fn bad_input_cases(dir: PathBuf) {
    use std::os::unix::fs::FileExt;
    let path = dir.join("f");
    let f = File::create(&path).await.unwrap();
    let std_f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let kind = |r: io::Result<usize>| r.map_err(|e| e.kind());
    let errno = |e: io::Error| e.raw_os_error();

    // IOV_MAX one-byte buffers: one writev, one readv, every byte in order.
    let expect: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    let singles: Vec<Vec<u8>> = expect.iter().map(|&b| vec![b]).collect();
    let (n, bufs) = f.write_vectored_at(singles, 0).await;
    assert_eq!((n.unwrap(), bufs.len()), (1024, 1024));
    assert_eq!(std::fs::read(&path).unwrap(), expect);
    let empties: Vec<Vec<u8>> = (0..1024).map(|_| Vec::with_capacity(1)).collect();
    let (n, back) = f.read_vectored_at(empties, 0).await;
    assert_eq!(n.unwrap(), 1024);
    assert!(
        back.iter().zip(&expect).all(|(b, e)| b[..] == [*e]),
        "readv filled the buffers out of order"
    );

    // One buffer more than IOV_MAX: refused (InvalidInput, preadv's
    // EINVAL) or cut to IOV_MAX (as std's write_vectored does), never
    // more; every buffer comes back as it was.
    let many: Vec<Vec<u8>> = (0..1025).map(|_| vec![0xEEu8]).collect();
    let (n, many) = f.write_vectored_at(many, 0).await;
    assert!(
        many.len() == 1025 && many.iter().all(|b| b[..] == [0xEEu8]),
        "the buffers came back changed"
    );
    match n {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                expect,
                "a refused writev wrote"
            );
        }
        Ok(n) => assert!(n <= 1024, "{n} bytes written from 1,025 one-byte buffers"),
    }

    // Offsets at the edge of i64: what pread/pwrite say on the same file.
    let edge = i64::MAX as u64;
    for off in [edge - 8, edge - 1, edge, edge + 1, u64::MAX - 1, u64::MAX] {
        let ours = kind(f.read_at(vec![0u8; 8], off).await.0);
        let theirs = kind(std_f.read_at(&mut [0u8; 8], off));
        assert_eq!(ours, theirs, "read_at {off}");
        let ours = f
            .read_exact_at(vec![0u8; 8], off)
            .await
            .0
            .map_err(|e| e.kind());
        let theirs = std_f
            .read_exact_at(&mut [0u8; 8], off)
            .map_err(|e| e.kind());
        assert_eq!(ours, theirs, "read_exact_at {off}");
    }
    for off in [edge, edge + 1, u64::MAX] {
        let ours = kind(f.write_at(b"abcd".to_vec(), off).await.0);
        let theirs = kind(std_f.write_at(b"abcd", off));
        assert_eq!(ours, theirs, "write_at {off}");
        let ours = f
            .write_all_at(b"abcd".to_vec(), off)
            .await
            .0
            .map_err(|e| e.kind());
        let theirs = std_f.write_all_at(b"abcd", off).map_err(|e| e.kind());
        assert_eq!(ours, theirs, "write_all_at {off}");
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        1024,
        "a refused write grew the file"
    );

    // Paths with a NUL byte: InvalidInput, and nothing touched on disk.
    let nul = dir.join("bad\0name");
    let open_nul = OpenOptions::new().write(true).create(true).open(&nul).await;
    let kinds = [
        ("create_dir", nfs::create_dir(&nul).await.err()),
        ("remove_dir", nfs::remove_dir(&nul).await.err()),
        ("remove_file", nfs::remove_file(&nul).await.err()),
        ("metadata", nfs::metadata(&nul).await.err()),
        ("symlink_metadata", nfs::symlink_metadata(&nul).await.err()),
        ("rename to", nfs::rename(&path, &nul).await.err()),
        ("rename from", nfs::rename(&nul, &path).await.err()),
        ("open with create", open_nul.err()),
        ("UnixListener::bind", UnixListener::bind(&nul).err()),
        ("UnixStream::connect", UnixStream::connect(&nul).await.err()),
    ];
    for (what, e) in kinds {
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::InvalidInput), "{what}");
    }
    assert!(path.exists(), "a rename to a bad name moved the file");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "a bad path created something"
    );

    // Fds of the wrong kind: the errno std's calls get on the same fd.
    let dir_std = std::fs::File::open(&dir).unwrap();
    let dir_file = File::from(dir_std.try_clone().unwrap());
    let ours = dir_file.read_at(vec![0u8; 8], 0).await.0.map_err(errno);
    let theirs = dir_std.read_at(&mut [0u8; 8], 0).map_err(errno);
    assert_eq!(ours, theirs, "read_at on a directory");
    let path_std = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&path)
        .unwrap();
    let path_file = File::from(path_std.try_clone().unwrap());
    let ours = (
        path_file.read_at(vec![0u8; 8], 0).await.0.map_err(errno),
        path_file.write_at(b"x".to_vec(), 0).await.0.map_err(errno),
        path_file.sync_all().await.map_err(errno),
    );
    let theirs = (
        path_std.read_at(&mut [0u8; 8], 0).map_err(errno),
        path_std.write_at(b"x", 0).map_err(errno),
        path_std.sync_all().map_err(errno),
    );
    assert_eq!(
        ours, theirs,
        "(read_at, write_at, sync_all) on an O_PATH fd"
    );
}

/// Expected: bad input gets the `io::Error` std gives for the same input,
/// never a panic and never a side effect: vectored lists at and past
/// `IOV_MAX` (1,024 buffers work in order; 1,025 are refused or cut, never
/// overrun, all buffers returned intact), offsets at and past `i64::MAX`
/// (same error kinds as `pread`/`pwrite` on the same file, nothing written),
/// paths with an inner NUL for every path op and for Unix sockets
/// (`InvalidInput`, nothing created, moved or removed), and fds of the
/// wrong kind (a directory, an `O_PATH` fd: the same errno as std).
///
/// Why: each of these passes through ringlane's own checks (`at`, the
/// iovec limits, `c_path`, `RawAddr::from_unix`) before the kernel's; a
/// check that is missing, off by one, or different from the kernel's shows
/// up as another error, a panic, or a file changed by a refused call.
#[test]
fn bad_input_gets_the_errors_std_gives() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("bad-input");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, bad_input_cases(dir.0.clone()))
        .unwrap();
    common::join_within(&rt, task, Duration::from_secs(40), "the bad-input cases");
    drop(rt);
    drop(dir);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Reads what a fresh stream on `ring` receives on `conn` until EOF,
/// holding up to both buffers at once; each wait is bounded by 5 s.
async fn drain_with_a_fresh_stream(conn: TcpStream, ring: BufRing) -> Result<Vec<u8>, ErrorKind> {
    let mut chunks = conn.recv_multi(&ring);
    let mut rest: Vec<u8> = Vec::new();
    let mut held: Vec<RingBuf> = Vec::new();
    while let Some(chunk) = chunks.next().timeout(Duration::from_secs(5)).await {
        let chunk = chunk.map_err(|e| e.kind())?;
        rest.extend_from_slice(&chunk[..]);
        held.push(chunk);
        if held.len() == 2 {
            held.clear();
        }
    }
    Ok(rest)
}

/// Expected: multishot streams dropped mid-stream on a Tokio worker thread
/// (off their shard, so their cancel goes through its mailbox) leak
/// nothing. A listener's `Incoming` holding three connections the kernel
/// accepted and nobody took closes them (their clients read EOF); a
/// buffer-ring receive holding an untaken chunk gives its buffer back (a
/// fresh stream on the same two-buffer ring can then hold both buffers at
/// once and receives every later byte); no fd leaks.
///
/// Why: the drop runs the orphan handlers for untaken CQEs on the foreign
/// thread and posts the cancel; CQEs the shard reaps later take the
/// abandoned path there. A missed handler on either side is a leaked
/// connection (the client's read hangs until its timeout) or a lost ring
/// buffer (the fresh stream starves and times out).
#[test]
fn multishot_streams_dropped_mid_stream_on_a_tokio_thread_leak_nothing() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);

    // The listener's stream: one connection taken, three accepted, untaken.
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let addr = listener.local_addr().unwrap();
            let mut incoming = listener.incoming();
            let first = std::net::TcpStream::connect(addr).unwrap();
            let taken = incoming.next().timeout(LIMIT).await.unwrap();
            let clients: Vec<_> = (0..3)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            let deadline = Instant::now() + LIMIT;
            while accept_queue_len(listener.as_raw_fd()) > 0 {
                assert!(
                    Instant::now() < deadline,
                    "the multishot accept never took them"
                );
                ringlane::time::sleep(Duration::from_millis(1)).await;
            }
            ringlane::time::sleep(Duration::from_millis(2)).await; // CQEs reaped, untaken
            drop((taken, first));
            Held((incoming, listener, clients))
        })
        .unwrap();
    let Held((incoming, listener, mut clients)) =
        common::join_within(&rt, task, LIMIT, "the accepts");
    drop_on_tokio((incoming, listener));
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(LIMIT)).unwrap();
        let r = c.read(&mut [0u8; 1]);
        assert!(
            matches!(r, Ok(0)),
            "connection {i}, accepted into the dropped stream, was not closed: {r:?}"
        );
    }
    drop(clients);

    // A buffer-ring receive: one chunk taken, the next one untaken.
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let ring = match BufRing::new(2, 8) {
                Ok(ring) => ring,
                Err(e) => {
                    println!("SKIP the multishot receive half: no buffer ring here ({e})");
                    return None;
                }
            };
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (conn, _) = listener.accept().timeout(LIMIT).await.unwrap();
            client.write_all(b"abcdefghijklmnop").unwrap(); // two buffers' worth
            let mut chunks = conn.recv_multi(&ring);
            let first = match chunks.next().timeout(LIMIT).await {
                Some(Ok(chunk)) => chunk.to_vec(),
                Some(Err(e)) if e.kind() == ErrorKind::InvalidInput => {
                    println!("SKIP the multishot receive half: no multishot receive here ({e})");
                    return None;
                }
                other => panic!("the first chunk: {other:?}"),
            };
            until_drained(conn.as_raw_fd()).await; // the second chunk is in a buffer
            ringlane::time::sleep(Duration::from_millis(2)).await; // its CQE reaped, untaken
            Some(Held((chunks, conn, ring, client, first)))
        })
        .unwrap();
    let Some(Held((chunks, conn, ring, mut client, first))) =
        common::join_within(&rt, task, LIMIT, "the first chunk")
    else {
        return;
    };
    assert_eq!(first, b"abcdefgh");
    drop_on_tokio(chunks);
    two_ticks(&rt, 0); // its cancel has reached the kernel: it takes no more
    client.write_all(b"qrstuvwxyz012345").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let fresh = rt
        .handle()
        .spawn_pinned(0, drain_with_a_fresh_stream(conn, ring))
        .unwrap();
    let rest = common::join_within(&rt, fresh, LIMIT, "the fresh stream");
    assert_eq!(
        rest,
        Ok(b"qrstuvwxyz012345".to_vec()),
        "the dropped stream's untaken buffer never came back (or it took later bytes)"
    );
    drop((client, rt));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
