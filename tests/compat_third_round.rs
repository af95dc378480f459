//! The compat lane against Tokio, third round: empty writes on a stream
//! that was shut down or reset, empty reads and writes spending the
//! cooperative budget, an `AsyncFd` that hung up staying ready after
//! `clear_ready`, `writable()` waiting for a connect in progress, and one
//! armed poll per waiting shard (an accept loop on an idle shard beside a
//! blocked one; a stream that moved not waking the shard it left).

mod common;

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd as TokioAsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use ringlane::compat::{AsyncFd, TcpListener, TcpStream, UnixStream};

use common::LIMIT;
use common::compat_io::*;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// The tests of this file run one at a time: several block a shard on
/// purpose (a spinning thread on a two-core machine) and several count
/// wake-ups.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long a wake-up that should be immediate may take before the test
/// calls it held up (far beyond any scheduling delay).
const PROMPT: Duration = Duration::from_millis(1500);

/// Lets a shard blocked by `common::block_shard` go when dropped, so that a
/// panic between blocking and releasing never leaves a runtime whose drop
/// waits for ever on a spinning task. Declare it after the runtime.
struct ReleaseOnDrop(Arc<AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn tagged_lines(tag: &str, lines: Vec<String>) -> impl Iterator<Item = String> + '_ {
    lines.into_iter().map(move |l| format!("{tag}: {l}"))
}

// ---------------------------------------------------------------------------
// 1. Zero-length writes on a dead stream
// ---------------------------------------------------------------------------

/// Zero-length writes before and after the stream's own `shutdown()`.
async fn zero_length_writes_around_a_shutdown<S>(mut a: S, b: S) -> Vec<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut log = Vec::new();
    log.push(format!(
        "zero-length write on an open stream: {}",
        brief(a.write(&[]).await)
    ));
    log.push(format!(
        "zero-length vectored write on an open stream: {}",
        brief(a.write_vectored(&[IoSlice::new(&[])]).await)
    ));
    log.push(format!("shutdown: {}", brief(a.shutdown().await)));
    log.push(format!(
        "zero-length write after shutdown: {}",
        brief(a.write(&[]).await)
    ));
    log.push(format!(
        "zero-length vectored write after shutdown: {}",
        brief(
            a.write_vectored(&[IoSlice::new(&[]), IoSlice::new(&[])])
                .await
        )
    ));
    log.push(format!(
        "one-byte write after shutdown: {}",
        brief(a.write(b"x").await)
    ));
    drop(b);
    log
}

/// A zero-length write once the peer has reset the connection, then a
/// one-byte write.
async fn zero_length_write_after_a_reset<S>(mut c: S, d: S) -> Vec<String>
where
    S: AsyncWrite + AsRawFd + Unpin,
{
    reset(d);
    // Lets the RST land (it is processed synchronously on loopback; the
    // same pause on both runtimes).
    std::thread::sleep(Duration::from_millis(50));
    let mut log = Vec::new();
    log.push(format!(
        "zero-length write after the peer's reset: {}",
        brief(c.write(&[]).await)
    ));
    log.push(format!(
        "one-byte write after that: {}",
        brief(c.write(b"x").await)
    ));
    log
}

/// A zero-length write is a syscall in Tokio (`PollEvented::poll_write`
/// has no shortcut), so it reports a dead stream: `BrokenPipe` after the
/// stream's own `shutdown()` (TCP and Unix; an empty vectored write is a
/// `writev` the VFS answers with 0 before the socket sees it, so those
/// lines agree either way), the pending `ConnectionReset` after a peer's
/// RST. ringlane answers `Ok(0)`
/// without asking the kernel (stream.rs:97-99, :113-115): code that probes
/// a connection with an empty write (or an empty `Bytes` frame passed
/// through) sees a healthy stream, and the reset surfaces on a later write
/// with a different error. Compared line by line with `tokio::net`.
#[test]
fn zero_length_writes_after_a_shutdown_or_a_reset_fail_as_on_tokio() {
    let _serial = serial();
    let theirs = on_tokio(async {
        let mut log = Vec::new();
        let (a, b) = tokio_tcp_pair().await.unwrap();
        log.extend(tagged_lines(
            "tcp",
            zero_length_writes_around_a_shutdown(a, b).await,
        ));
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        log.extend(tagged_lines(
            "unix",
            zero_length_writes_around_a_shutdown(a, b).await,
        ));
        let (c, d) = tokio_tcp_pair().await.unwrap();
        log.extend(tagged_lines(
            "tcp",
            zero_length_write_after_a_reset(c, d).await,
        ));
        log
    });
    let ours = on_ringlane(|| async {
        let mut log = Vec::new();
        let (a, b) = ringlane_tcp_pair().await.unwrap();
        log.extend(tagged_lines(
            "tcp",
            zero_length_writes_around_a_shutdown(a, b).await,
        ));
        let (a, b) = UnixStream::pair().unwrap();
        log.extend(tagged_lines(
            "unix",
            zero_length_writes_around_a_shutdown(a, b).await,
        ));
        let (c, d) = ringlane_tcp_pair().await.unwrap();
        log.extend(tagged_lines(
            "tcp",
            zero_length_write_after_a_reset(c, d).await,
        ));
        log
    });
    assert_eq!(
        ours, theirs,
        "zero-length writes on the compat lane (left) differ from tokio::net's (right): \
         an empty write must still report a stream that was shut down or reset"
    );
}

/// `try_write_vectored` with no bytes on stream `$a`: what it returns
/// while open, and after `$a` is shut down for writing. Writability is
/// awaited first: Tokio's `try_*` answers `WouldBlock` until its driver has
/// seen the fresh socket writable.
macro_rules! empty_try_write_vectored {
    ($a:expr) => {{
        let mut a = $a;
        a.writable().await.unwrap();
        let mut log = Vec::new();
        for (when, shut) in [("open", false), ("after shutdown", true)] {
            if shut {
                a.shutdown().await.unwrap();
            }
            log.push(format!(
                "try_write_vectored(&[]) {when}: {}",
                brief(a.try_write_vectored(&[]))
            ));
            log.push(format!(
                "try_write_vectored(&[empty]) {when}: {}",
                brief(a.try_write_vectored(&[IoSlice::new(&[])]))
            ));
        }
        log
    }};
}

/// Expected (Tokio): a `try_write_vectored` with no bytes returns `Ok(0)`,
/// even on a stream shut down for writing, as the awaited `write_vectored`
/// of the same slices does on both runtimes.
///
/// Why it may fail: the compat lane sent the empty slices with
/// `sendmsg(2)`, which a shut-down socket answers with `EPIPE`; Tokio's
/// `writev(2)` returns 0 for no bytes before it reaches the socket.
#[test]
fn an_empty_try_write_vectored_returns_zero_as_on_tokio() {
    let _serial = serial();
    let theirs = on_tokio(async {
        let mut log = Vec::new();
        let (a, _b) = tokio_tcp_pair().await.unwrap();
        log.extend(tagged_lines("tcp", empty_try_write_vectored!(a)));
        let (a, _b) = tokio::net::UnixStream::pair().unwrap();
        log.extend(tagged_lines("unix", empty_try_write_vectored!(a)));
        log
    });
    let ours = on_ringlane(|| async {
        let mut log = Vec::new();
        let (a, _b) = ringlane_tcp_pair().await.unwrap();
        log.extend(tagged_lines("tcp", empty_try_write_vectored!(a)));
        let (a, _b) = UnixStream::pair().unwrap();
        log.extend(tagged_lines("unix", empty_try_write_vectored!(a)));
        log
    });
    assert_eq!(
        ours, theirs,
        "the compat lane (left) against tokio::net (right)"
    );
}

// ---------------------------------------------------------------------------
// 2. Zero-length operations and the cooperative budget
// ---------------------------------------------------------------------------

/// How long a spinning task may run before the test gives up on it.
const SPIN_LIMIT: Duration = Duration::from_secs(1);

/// Runs `$op` (a ready socket operation) in a loop, beside a task of the
/// same shard that sets a flag after a 5 ms timer, until the flag is seen
/// or `SPIN_LIMIT` passes. Evaluates to (flag seen, loop count). Each op is
/// bounded by a 50 ms timeout, so an implementation that makes an empty
/// read wait for readiness (as Tokio's does) also lets the timer run.
macro_rules! spin_beside_a_timer_task {
    ($op:expr) => {{
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let timer = ringlane::spawn_local(async move {
            ringlane::time::sleep(Duration::from_millis(5)).await;
            flag.store(true, Ordering::SeqCst);
        })
        .unwrap();
        let start = Instant::now();
        let mut spins = 0u64;
        while !fired.load(Ordering::SeqCst) && start.elapsed() < SPIN_LIMIT {
            let _ = ringlane::time::timeout(Duration::from_millis(50), $op).await;
            spins += 1;
        }
        let seen = fired.load(Ordering::SeqCst);
        drop(timer);
        (seen, spins)
    }};
}

/// README: "a task whose channel, timer, socket or join handle is always
/// ready yields after 128 ready operations in one poll (a cooperative
/// budget, ADR 0018), so a hot loop cannot starve the other tasks, timers
/// and I/O of its shard". In Tokio a zero-length `read`, `write` or `peek`
/// goes through `poll_read_ready`/`poll_write_ready` and spends a unit.
/// Here each of the three runs in a loop on a readable, writable socket,
/// next to a task of the same shard waiting for a 5 ms timer: the timer
/// task must get to run. ringlane returns before the readiness engine
/// (stream.rs:74-76, :97-99), so the loop never yields and the shard runs
/// nothing else (bounded here at 1 s per operation).
#[test]
fn zero_length_reads_writes_and_peeks_spend_the_cooperative_budget() {
    let _serial = serial();
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_local_on(0, || async {
            let mut found: Vec<(&'static str, bool, u64)> = Vec::new();
            let (mut a, mut b) = UnixStream::pair().unwrap();
            // `a` has a byte to read: an empty read is ready at once in Tokio
            // too (it waits for readability only when there is none).
            b.write_all(b"x").await.unwrap();
            let (seen, spins) = spin_beside_a_timer_task!(a.read(&mut []));
            found.push(("UnixStream read(&mut [])", seen, spins));
            let (seen, spins) = spin_beside_a_timer_task!(a.write(&[]));
            found.push(("UnixStream write(&[])", seen, spins));
            let (x, mut y) = std_tcp_pair();
            y.write_all(b"x").unwrap();
            let s = TcpStream::from_std(x).unwrap();
            let (seen, spins) = spin_beside_a_timer_task!(s.peek(&mut []));
            found.push(("TcpStream peek(&mut [])", seen, spins));
            drop((b, y));
            found
        })
        .unwrap();
    let found = common::join_within(&rt, j, LIMIT, "the spinning task");
    let starved: Vec<String> = found
        .iter()
        .filter(|(_, seen, _)| !seen)
        .map(|(what, _, spins)| {
            format!(
                "{what}: {spins} calls in {SPIN_LIMIT:?} without a yield; the timer task on the same shard never ran"
            )
        })
        .collect();
    assert!(
        starved.is_empty(),
        "zero-length socket operations never spend the cooperative budget, so a loop of them starves its shard: {starved:#?}"
    );
}

// ---------------------------------------------------------------------------
// 3. A hang-up is final, as in Tokio
// ---------------------------------------------------------------------------

/// The same steps on either `AsyncFd` type (`$Fd`), with `$timeout` the
/// timeout of the executor it runs on. Evaluates to a future of the log.
macro_rules! hang_up_is_final_scenario {
    ($Fd:ident, $timeout:path) => {
        async {
            let long = Duration::from_secs(3);
            let short = Duration::from_millis(300);
            let mut log: Vec<String> = Vec::new();

            // (a) A pipe: one byte, then its writer closes.
            let (r, w) = nonblocking_pipe();
            std::fs::File::from(w).write_all(b"x")?; // the File drops: no writer left
            let fd = $Fd::new(std::fs::File::from(r))?;
            {
                let mut guard = $timeout(long, fd.readable())
                    .await
                    .expect("the pipe never became readable")?;
                let mut buf = [0u8; 8];
                let n = guard.try_io(|fd| Read::read(&mut fd.get_ref(), &mut buf));
                log.push(format!(
                    "pipe whose writer closed, first read: {}",
                    tried(n)
                ));
                // All there was has been read (ringlane's `clear_ready` example).
                guard.clear_ready();
            }
            match $timeout(short, fd.readable()).await {
                Err(_) => log.push(
                    "pipe whose writer closed, readable after clear_ready: pending".to_string(),
                ),
                Ok(Err(e)) => log.push(format!(
                    "pipe whose writer closed, readable after clear_ready: error {:?}",
                    e.kind()
                )),
                Ok(Ok(mut guard)) => {
                    let mut buf = [0u8; 8];
                    let n = guard.try_io(|fd| Read::read(&mut fd.get_ref(), &mut buf));
                    log.push(format!(
                        "pipe whose writer closed, readable after clear_ready: ready, read {}",
                        tried(n)
                    ));
                }
            }
            drop(fd);

            // (b) A Unix stream whose peer wrote a byte and shut its side down.
            let (mine, mut peer) = std::os::unix::net::UnixStream::pair()?;
            mine.set_nonblocking(true)?;
            peer.write_all(b"x")?;
            peer.shutdown(std::net::Shutdown::Write)?;
            let fd = $Fd::new(mine)?;
            {
                let mut guard = $timeout(long, fd.readable())
                    .await
                    .expect("the socket never became readable")?;
                let mut buf = [0u8; 8];
                let n = guard.try_io(|fd| Read::read(&mut fd.get_ref(), &mut buf));
                log.push(format!(
                    "socket whose peer shut down, first read: {}",
                    tried(n)
                ));
                guard.clear_ready();
            }
            match $timeout(short, fd.readable()).await {
                Err(_) => log.push(
                    "socket whose peer shut down, readable after clear_ready: pending".to_string(),
                ),
                Ok(Err(e)) => log.push(format!(
                    "socket whose peer shut down, readable after clear_ready: error {:?}",
                    e.kind()
                )),
                Ok(Ok(mut guard)) => {
                    let mut buf = [0u8; 8];
                    let n = guard.try_io(|fd| Read::read(&mut fd.get_ref(), &mut buf));
                    log.push(format!(
                        "socket whose peer shut down, readable after clear_ready: ready, read {}",
                        tried(n)
                    ));
                }
            }
            drop((fd, peer));

            // (c) A pipe's write end whose reader closed.
            let (r, w) = nonblocking_pipe();
            drop(r);
            let fd = $Fd::new(std::fs::File::from(w))?;
            {
                let mut guard = $timeout(long, fd.writable())
                    .await
                    .expect("the pipe never became writable")?;
                let n = guard.try_io(|fd| Write::write(&mut fd.get_ref(), b"y"));
                log.push(format!(
                    "pipe whose reader closed, first write: {}",
                    tried(n)
                ));
                guard.clear_ready();
            }
            match $timeout(short, fd.writable()).await {
                Err(_) => log.push(
                    "pipe whose reader closed, writable after clear_ready: pending".to_string(),
                ),
                Ok(Err(e)) => log.push(format!(
                    "pipe whose reader closed, writable after clear_ready: error {:?}",
                    e.kind()
                )),
                Ok(Ok(mut guard)) => {
                    let n = guard.try_io(|fd| Write::write(&mut fd.get_ref(), b"y"));
                    log.push(format!(
                        "pipe whose reader closed, writable after clear_ready: ready, write {}",
                        tried(n)
                    ));
                }
            }
            Ok::<_, io::Error>(log)
        }
    };
}

/// An `AsyncFd` whose fd has hung up (a pipe's writer closed, a socket's
/// peer shut down, a pipe's reader closed) stays ready in Tokio even after
/// `clear_ready()`: `ScheduledIo::clear_readiness` keeps `READ_CLOSED` and
/// `WRITE_CLOSED` ("closed states are final"), so the next `readable()`
/// returns and the read gives end of file (the write `BrokenPipe`). Here
/// the code follows ringlane's own `clear_ready` example (read all there
/// was, then clear). ringlane forgets the readiness and waits on an
/// edge-triggered multishot poll that will never fire again: a reader
/// written that way hangs at end of file instead of seeing it.
#[test]
#[allow(deprecated)] // Tokio 1.54 deprecates `AsyncFd::new`; the comparison still uses it
fn an_async_fd_that_hung_up_stays_ready_after_clear_ready_as_on_tokio() {
    let _serial = serial();
    let theirs = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(
                LIMIT,
                hang_up_is_final_scenario!(TokioAsyncFd, tokio::time::timeout),
            )
            .await
            .expect("the Tokio run did not finish")
        })
        .unwrap();
    let ours =
        on_ringlane(|| hang_up_is_final_scenario!(AsyncFd, ringlane::time::timeout)).unwrap();
    assert_eq!(
        ours, theirs,
        "ringlane's AsyncFd (left) differs from Tokio's (right): a hang-up must stay ready after clear_ready"
    );
}

// ---------------------------------------------------------------------------
// 4. `writable()` of a socket whose connect is still pending
// ---------------------------------------------------------------------------

/// How long the connect test waits for `writable()`.
const WAIT: Duration = Duration::from_millis(500);

/// A client socket whose nonblocking connect stays in `SYN_SENT`: its
/// listener has a backlog of 0 and one connection already queued (never
/// accepted), so the kernel drops the client's SYNs.
struct PendingConnect {
    client: std::net::TcpStream,
    listener: std::net::TcpListener,
    queued: std::net::TcpStream,
}

fn pending_connect() -> Result<PendingConnect, String> {
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket creation; the result is checked.
    let lfd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if lfd < 0 {
        return Err(format!("socket: {}", io::Error::last_os_error()));
    }
    // SAFETY: `lfd` is new and ours; the listener owns (and closes) it.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(lfd) };
    let any = common::sockaddr_in("127.0.0.1:0".parse().unwrap());
    // SAFETY: a valid `sockaddr_in` of the length passed.
    if unsafe { libc::bind(lfd, (&raw const any).cast(), len) } != 0 {
        return Err(format!("bind: {}", io::Error::last_os_error()));
    }
    // SAFETY: listen on a bound socket we own.
    if unsafe { libc::listen(lfd, 0) } != 0 {
        return Err(format!("listen: {}", io::Error::last_os_error()));
    }
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let queued = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("the first connect: {e}"))?;
    // Its last ACK puts it in the (now full) accept queue.
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: plain socket creation; the result is checked.
    let cfd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if cfd < 0 {
        return Err(format!("socket: {}", io::Error::last_os_error()));
    }
    // SAFETY: `cfd` is new and ours.
    let client = unsafe { std::net::TcpStream::from_raw_fd(cfd) };
    let to = common::sockaddr_in(addr);
    // SAFETY: a valid `sockaddr_in` of the length passed.
    let r = unsafe { libc::connect(cfd, (&raw const to).cast(), len) };
    let err = io::Error::last_os_error();
    if r == 0 || err.raw_os_error() != Some(libc::EINPROGRESS) {
        return Err(format!(
            "the nonblocking connect did not stay in progress ({r}, {err})"
        ));
    }
    std::thread::sleep(Duration::from_millis(50));
    if client.peer_addr().is_ok() {
        return Err("the kernel completed the connect despite the full accept queue".into());
    }
    Ok(PendingConnect {
        client,
        listener,
        queued,
    })
}

fn connect_log(
    waited: String,
    err: io::Result<Option<io::Error>>,
    peer: io::Result<SocketAddr>,
) -> Vec<String> {
    vec![
        format!("writable within {WAIT:?} while the connect is in progress: {waited}"),
        format!(
            "take_error after that wait: {}",
            brief(err.map(|e| e.map(|e| e.kind())))
        ),
        format!("peer_addr after that wait: {}", brief(peer.map(drop))),
    ]
}

/// `TcpStream::take_error` documents the way to finish a connect made
/// elsewhere: nonblocking connect, `from_std`, wait with `writable()`, then
/// `take_error()`. For that to tell anything, `writable()` must wait until
/// the connect has completed or failed, as Tokio's does (a socket in
/// `SYN_SENT` polls neither `POLLOUT` nor `POLLERR`). ringlane's own sockets
/// start "ready" (syscall first), so `writable()` returns at once,
/// `take_error()` says `None` and the caller goes on with a connection that
/// does not exist (`peer_addr` fails with `NotConnected`); a connect
/// timeout built on that wait never fires. Compared with `tokio::net`.
#[test]
fn writable_waits_for_a_pending_connect_as_on_tokio_so_take_error_can_tell() {
    let _serial = serial();
    let (tokio_side, our_side) = match (pending_connect(), pending_connect()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            println!(
                "SKIP writable_waits_for_a_pending_connect_as_on_tokio_so_take_error_can_tell: cannot stage a pending connect: {e}"
            );
            return;
        }
    };
    let theirs = on_tokio(async move {
        let PendingConnect {
            client,
            listener,
            queued,
        } = tokio_side;
        let s = tokio::net::TcpStream::from_std(client).unwrap();
        let waited = tokio::time::timeout(WAIT, s.writable()).await;
        let log = connect_log(state(waited), s.take_error(), s.peer_addr());
        drop((s, listener, queued));
        log
    });
    let ours = on_ringlane(move || async move {
        let PendingConnect {
            client,
            listener,
            queued,
        } = our_side;
        let s = TcpStream::from_std(client).unwrap();
        let waited = ringlane::time::timeout(WAIT, s.writable()).await;
        let log = connect_log(state(waited), s.take_error(), s.peer_addr());
        drop((s, listener, queued));
        log
    });
    assert_eq!(
        ours, theirs,
        "the compat TcpStream (left) differs from tokio::net's (right): writable() of a socket \
         whose connect is still in progress must wait, or take_error() cannot tell"
    );
}

// ---------------------------------------------------------------------------
// 5-8. A poll armed on one shard, its waiters elsewhere
// ---------------------------------------------------------------------------

/// Accept loops on both shards share one listener (the thread-per-core
/// server shape). Shard 0's accept waits first (its multishot poll is
/// pushed on shard 0's ring), then shard 1's. Shard 0 then runs a long
/// CPU-bound poll. A client connects: shard 1, idle, must accept it. Its
/// wait rests on shard 0's op, whose CQE only shard 0 reaps, so nothing
/// reaches shard 1 until shard 0 is free (readiness.rs:248-261; invariant
/// 3 says a poll is armed on the ring of the shard that polls it). Tokio's
/// workers share one driver: an idle worker sees the connection.
#[test]
fn an_accept_loop_on_shard_1_is_not_held_up_by_a_blocked_shard_0() {
    let _serial = serial();
    let rt = common::runtime(2);
    let h = rt.handle();
    let listener = common::join_within(
        &rt,
        h.spawn_pinned(0, async { TcpListener::bind(localhost()).await })
            .unwrap(),
        LIMIT,
        "binding on shard 0",
    )
    .unwrap();
    let listener = Arc::new(listener);
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, accepted) = mpsc::channel::<usize>();
    let mut loops = Vec::new();
    for shard in [0usize, 1] {
        let (l, tx) = (listener.clone(), accepted_tx.clone());
        loops.push(
            h.spawn_pinned(shard, async move {
                loop {
                    match l.accept().await {
                        Ok((conn, _)) => {
                            let _ = tx.send(shard);
                            drop(conn);
                        }
                        Err(e) => return e,
                    }
                }
            })
            .unwrap(),
        );
        // Shard 0's accept waits (and arms the poll) before shard 1's.
        common::until_parked(&h, shard);
    }
    common::until_parked(&h, 0);
    let blocker = common::block_shard(&rt, 0);
    let _release = ReleaseOnDrop(blocker.release_flag());
    let client = std::net::TcpStream::connect(addr).unwrap();
    let prompt = accepted.recv_timeout(PROMPT);
    common::join_within(&rt, blocker.release(), LIMIT, "releasing shard 0");
    let later = match prompt {
        Ok(_) => None,
        Err(_) => accepted.recv_timeout(LIMIT).ok(),
    };
    drop(client);
    assert!(
        prompt.is_ok(),
        "a connection waited {PROMPT:?} while shard 1's accept loop was idle and shard 0 was blocked \
         (accepted by shard {later:?} once shard 0 was released): shard 1's wait rests on the \
         poll shard 0 armed, whose completion only shard 0 reaps"
    );
    drop(loops);
}

/// A stream whose read waited once on shard 0 is handed to shard 1, which
/// serves 200 request/response rounds with a peer on a plain thread. Shard
/// 0 has nothing to do with it any more and must stay asleep. The stream's
/// waits still rest on the op armed on shard 0's ring, so every request
/// wakes shard 0, which reaps the CQE and rings shard 1 (readiness.rs:
/// 248-261): about one wake-up of an idle shard per round. Counted with
/// `ShardStats::parks` (the measure `assert_quiet` uses: at most 10
/// wake-ups in 200 ms of idleness).
///
/// Each request is written once shard 1 sleeps in its read's wait, so this
/// pins the retirement that runs when a waiter takes an event (invariant 1
/// of the readiness engine). A shard 1 that never waits is the case of the
/// idle pause of op invariant 8 (`compat_idle_polls.rs`).
#[test]
fn a_stream_moved_to_shard_1_does_not_wake_shard_0_for_every_event() {
    const ROUNDS: u64 = 200;
    let _serial = serial();
    let rt = common::runtime(2);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let s = armed_on_shard(&rt, 0, mine);
    let server = h
        .spawn_pinned(1, async move {
            let mut s = s;
            let mut buf = [0u8; 8];
            for _ in 0..ROUNDS {
                s.read_exact(&mut buf).await?;
                s.write_all(&buf).await?;
            }
            Ok::<_, io::Error>(s)
        })
        .unwrap();
    common::until_parked(&h, 1);
    common::until_parked(&h, 0);
    let before = h.shard_stats(0).unwrap();
    for i in 0..ROUNDS {
        common::until_parked(&h, 1);
        peer.write_all(&i.to_le_bytes()).unwrap();
        let mut back = [0u8; 8];
        peer.read_exact(&mut back)
            .expect("the echo on shard 1 stalled");
        assert_eq!(u64::from_le_bytes(back), i);
    }
    let s = common::join_within(&rt, server, LIMIT, "the echo on shard 1").unwrap();
    common::until_parked(&h, 0);
    let after = h.shard_stats(0).unwrap();
    drop(s);
    let wakeups = after.parks - before.parks;
    let polls = after.tasks_polled - before.tasks_polled;
    assert!(
        wakeups < 40,
        "idle shard 0 woke {wakeups} times ({polls} task polls) during {ROUNDS} rounds served \
         entirely on shard 1: the stream's waits still go through the poll shard 0 armed once"
    );
}
