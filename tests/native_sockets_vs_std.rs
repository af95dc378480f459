//! The native socket types (`TcpStream`, `TcpListener`, `UdpSocket`,
//! `UnixStream`, `UnixListener`, `write_zc`) against std and Tokio on the
//! same kernel: no SIGPIPE on any send path under the default disposition,
//! `shutdown` ending ops in flight, blocked writes and connects ending
//! cleanly, a connected UDP socket's errors, `EMFILE` on a multishot accept,
//! deferred closes, `into_compat` and `from_std`.
//!
//! Every test holds `SERIAL` (fd counts are process-wide); child processes
//! run the tests that change process-wide state (signal disposition, fd
//! limits).

mod common;

use common::child::{lowest_free_fd, run_ignored, set_fd_limit};
use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

use common::LIMIT;
use common::fixed_io::on_shard;
use common::multishot_io::{set_int_opt, tiny_window_listener, unsent_bytes};
use common::native_io::{Held, SERIAL, TempDir, poll_once, settled_fd_count};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn kind<T>(r: io::Result<T>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

/// Whether `fd` has `O_NONBLOCK` set.
fn nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL only reads the flags of an fd we hold.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(fl >= 0, "F_GETFL: {}", io::Error::last_os_error());
    fl & libc::O_NONBLOCK != 0
}

/// Whether the number `fd` is open in this process.
fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD has no side effect; on a closed number it fails.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// A duplicate of `/dev/null` at exactly the number `raw` (which must be
/// free): if anything closes `raw` a second time, it closes this one.
fn sentinel_at(raw: RawFd, devnull: &std::fs::File) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC duplicates an fd we hold onto the lowest free
    // number >= raw; the result is new and ours.
    let fd = unsafe { libc::fcntl(devnull.as_raw_fd(), libc::F_DUPFD_CLOEXEC, raw) };
    assert!(fd >= 0, "F_DUPFD: {}", io::Error::last_os_error());
    // SAFETY: as above.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    assert_eq!(
        fd, raw,
        "fd {raw} is still taken after its socket was closed"
    );
    owned
}

/// Whether `fd` is still the `/dev/null` sentinel (not closed, not reused).
fn still_devnull(fd: RawFd, devnull: &std::fs::File) -> bool {
    // SAFETY: all-zero bytes are a valid `stat`, which fstat fills in.
    let mut a: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut b: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into our locals.
    let ok =
        unsafe { libc::fstat(fd, &mut a) == 0 && libc::fstat(devnull.as_raw_fd(), &mut b) == 0 };
    ok && a.st_rdev == b.st_rdev && a.st_ino == b.st_ino && a.st_dev == b.st_dev
}

/// Waits on the shard (at most `LIMIT`) until `fd` is closed.
async fn until_closed(fd: RawFd, what: &str) {
    let deadline = Instant::now() + LIMIT;
    while fd_is_open(fd) {
        assert!(Instant::now() < deadline, "{what}: fd {fd} never closed");
        ringlane::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits on the shard until the send queue of `fd` is non-empty and stopped
/// growing: a write on it is parked waiting for room.
async fn until_the_send_queue_is_stuck(fd: RawFd) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = -1;
    loop {
        ringlane::time::sleep(Duration::from_millis(30)).await;
        let now = unsent_bytes(fd);
        if now > 0 && now == last {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the write never filled the socket"
        );
        last = now;
    }
}

/// The same wait, blocking (for the std reference runs).
fn until_the_send_queue_is_stuck_blocking(fd: RawFd) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = -1;
    loop {
        std::thread::sleep(Duration::from_millis(30));
        let now = unsent_bytes(fd);
        if now > 0 && now == last {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the std write never filled the socket"
        );
        last = now;
    }
}

/// Reads `r` until end of file (each read bounded by `limit`).
fn read_to_eof(r: &mut impl Read, limit: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + limit;
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "no end of file after {limit:?} ({} bytes)",
                all.len()
            ));
        }
        match r.read(&mut buf) {
            Ok(0) => return Ok(all),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{e} after {} bytes", all.len())),
        }
    }
}

// ---------------------------------------------------------------------------
// 1. SIGPIPE with the default disposition
// ---------------------------------------------------------------------------

const SIGPIPE_CHILD: &str = "RINGLANE_ADV_SIGPIPE_CHILD";

/// The shard side of the SIGPIPE child: every native send path at a peer
/// that is gone or half-closed. Each step is announced before it runs, so a
/// death by signal names the step that raised it.
async fn sigpipe_steps() {
    fn begin(what: &str) {
        println!("BEGIN={what}");
    }
    fn report(what: &str, r: io::Result<()>) {
        let k = match r {
            Ok(()) => "Ok".to_string(),
            Err(e) => format!("{:?}", e.kind()),
        };
        println!("STEP={what}={k}");
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();

    // TCP, the peer reset the connection (RST): the first write reports the
    // reset, the next ones are EPIPE, which raises SIGPIPE without
    // MSG_NOSIGNAL.
    let s = TcpStream::connect(addr).await.unwrap();
    let (peer, _) = l.accept().unwrap();
    common::compat_io::reset(peer);
    ringlane::time::sleep(Duration::from_millis(30)).await;
    for i in 0..3 {
        let what = format!("tcp reset peer: write #{i}");
        begin(&what);
        report(&what, s.write(vec![1u8; 64]).await.0.map(drop));
    }
    begin("tcp reset peer: write_all 1 MiB");
    report(
        "tcp reset peer: write_all 1 MiB",
        s.write_all(vec![2u8; 1 << 20]).await.0,
    );
    begin("tcp reset peer: write_zc");
    report(
        "tcp reset peer: write_zc",
        s.write_zc(vec![3u8; 64 * 1024]).await.0.map(drop),
    );
    drop(s);

    // TCP, our own shutdown(Write): EPIPE at once.
    let s = TcpStream::connect(addr).await.unwrap();
    let (_peer, _) = l.accept().unwrap();
    s.shutdown(Shutdown::Write).await.unwrap();
    begin("tcp own shutdown(Write): write");
    report(
        "tcp own shutdown(Write): write",
        s.write(vec![1u8; 64]).await.0.map(drop),
    );
    begin("tcp own shutdown(Write): write_all");
    report(
        "tcp own shutdown(Write): write_all",
        s.write_all(vec![2u8; 4096]).await.0,
    );
    begin("tcp own shutdown(Write): write_zc");
    report(
        "tcp own shutdown(Write): write_zc",
        s.write_zc(vec![3u8; 4096]).await.0.map(drop),
    );
    drop(s);

    // TCP, the peer closed gracefully (FIN, nothing unread): the first
    // writes may still succeed (the peer answers them with an RST), the
    // later ones fail.
    let s = TcpStream::connect(addr).await.unwrap();
    let (peer, _) = l.accept().unwrap();
    drop(peer);
    ringlane::time::sleep(Duration::from_millis(30)).await;
    for i in 0..4 {
        let what = format!("tcp closed peer (may succeed): write #{i}");
        begin(&what);
        report(&what, s.write(vec![1u8; 64]).await.0.map(drop));
        ringlane::time::sleep(Duration::from_millis(20)).await;
    }
    drop(s);

    // Unix, the peer is gone.
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    begin("unix closed peer: write");
    report(
        "unix closed peer: write",
        a.write(vec![1u8; 64]).await.0.map(drop),
    );
    begin("unix closed peer: write_all");
    report(
        "unix closed peer: write_all",
        a.write_all(vec![2u8; 1 << 20]).await.0,
    );

    // Unix, our own shutdown(Write).
    let (c, _d) = UnixStream::pair().unwrap();
    c.shutdown(Shutdown::Write).await.unwrap();
    begin("unix own shutdown(Write): write");
    report(
        "unix own shutdown(Write): write",
        c.write(vec![1u8; 64]).await.0.map(drop),
    );
    begin("unix own shutdown(Write): write_all");
    report(
        "unix own shutdown(Write): write_all",
        c.write_all(vec![2u8; 4096]).await.0,
    );

    // Unix, the peer shut down reading.
    let (e, f) = UnixStream::pair().unwrap();
    f.shutdown(Shutdown::Read).await.unwrap();
    begin("unix peer shutdown(Read): write");
    report(
        "unix peer shutdown(Read): write",
        e.write(vec![1u8; 64]).await.0.map(drop),
    );
}

/// Child side (run only by the parent test below): restores the default
/// SIGPIPE disposition, which kills the process, and runs the sends.
#[test]
#[ignore = "run in a child process by no_native_send_path_raises_sigpipe_with_the_default_disposition"]
fn child_sends_to_closed_peers_under_default_sigpipe() {
    if std::env::var_os(SIGPIPE_CHILD).is_none() {
        return;
    }
    // SAFETY: sets this process's SIGPIPE disposition back to the default
    // (terminate), as C programs and Rust binaries built with
    // `-Zon-broken-pipe=kill` have it.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let rt = common::runtime(1);
    let task = rt.handle().spawn_pinned(0, sigpipe_steps()).unwrap();
    common::join_within(&rt, task, Duration::from_secs(20), "the send steps");
    println!("SIGPIPE_CHILD=done");
}

/// Expected: with SIGPIPE at its default disposition (C programs, daemons,
/// binaries built with `-Zon-broken-pipe=kill`), no native send (`write`,
/// `write_all`, `write_zc` on TCP; `write`, `write_all` on Unix) at a reset,
/// closed or half-closed peer kills the process: each fails with
/// `BrokenPipe` or `ConnectionReset`, as the docs promise ("Never raises
/// SIGPIPE").
///
/// Why: the existing checks run in the test harness, which ignores SIGPIPE,
/// so a send path that forgot `MSG_NOSIGNAL` would pass them all.
#[test]
fn no_native_send_path_raises_sigpipe_with_the_default_disposition() {
    let _serial = SERIAL.lock();
    let (status, out) = run_ignored(
        "child_sends_to_closed_peers_under_default_sigpipe",
        SIGPIPE_CHILD,
        Duration::from_secs(40),
    );
    if let Some(sig) = status.signal() {
        let last = out.lines().rfind(|l| l.starts_with("BEGIN="));
        panic!(
            "the child died of signal {sig} (SIGPIPE is {}) during {last:?}:\n{out}",
            libc::SIGPIPE
        );
    }
    assert!(status.success(), "the child failed:\n{out}");
    assert!(
        out.contains("SIGPIPE_CHILD=done"),
        "the child never finished:\n{out}"
    );
    let mut steps = 0;
    for line in out.lines().filter_map(|l| l.strip_prefix("STEP=")) {
        steps += 1;
        let (what, k) = line.rsplit_once('=').unwrap();
        if what.contains("write_zc") && k == "InvalidInput" {
            println!("SKIP {what}: no IORING_OP_SEND_ZC on this kernel");
            continue;
        }
        let ok = matches!(k, "BrokenPipe" | "ConnectionReset")
            || (what.contains("may succeed") && k == "Ok");
        assert!(ok, "{what}: {k}, want BrokenPipe or ConnectionReset\n{out}");
    }
    assert!(steps >= 15, "only {steps} steps reported:\n{out}");
}

// ---------------------------------------------------------------------------
// 2. shutdown(Read) wakes an armed receive
// ---------------------------------------------------------------------------

/// std's view: a blocking read parked in another thread, then
/// `shutdown(Read)` on the same socket. Linux wakes it with 0.
fn std_read_woken_by_shutdown_read(
    ours: impl Read + Send + 'static,
    shut: impl FnOnce() -> io::Result<()>,
) -> Result<usize, ErrorKind> {
    let mut ours = ours;
    let reader = std::thread::spawn(move || kind(ours.read(&mut [0u8; 16])));
    std::thread::sleep(Duration::from_millis(100));
    shut().unwrap();
    reader.join().unwrap()
}

/// One stream type: a read armed in the kernel, then `shutdown(how)` on
/// the same stream from a second branch of the task. Returns (the armed
/// read, three later reads, a write after the shutdown).
macro_rules! shutdown_while_reading {
    ($s:expr, $how:expr) => {{
        let s = &$s;
        let (woken, shut) = tokio::join!(
            biased;
            s.read(vec![0u8; 64]).timeout(Duration::from_secs(3)),
            async {
                // Long enough for the receive to be issued and armed.
                ringlane::time::sleep(Duration::from_millis(100)).await;
                s.shutdown($how).await
            }
        );
        shut.expect("shutdown");
        let mut later = Vec::new();
        for _ in 0..3 {
            later.push(kind(s.read(vec![0u8; 64]).timeout(Duration::from_secs(3)).await.0));
        }
        let wrote = kind(s.write_all(b"still writable".to_vec()).await.0);
        (kind(woken.0), later, wrote)
    }};
}

/// Expected: a receive already armed in the kernel when its own stream is
/// shut down for reading completes with `Ok(0)` (as std's blocking read,
/// parked in another thread, does on the same kernel), later reads return
/// 0 again, and writing still works (the peer gets the bytes). For a Unix
/// stream shut down both ways the armed read also ends with 0 and a write
/// is `BrokenPipe`.
///
/// Why: `IORING_OP_SHUTDOWN` runs in io-wq while the receive waits on an
/// internal poll; only the socket's state-change wake-up (which carries no
/// event mask) can end the receive. Nothing tests `Shutdown::Read` today.
#[test]
fn shutdown_read_wakes_an_in_flight_read_with_end_of_file_as_std_does() {
    let _serial = SERIAL.lock();
    // std's view, TCP and Unix.
    let (a, _b) = common::compat_io::std_tcp_pair();
    let a2 = a.try_clone().unwrap();
    a2.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let std_tcp = std_read_woken_by_shutdown_read(a2, || a.shutdown(Shutdown::Read));
    let (u, _v) = std::os::unix::net::UnixStream::pair().unwrap();
    let u2 = u.try_clone().unwrap();
    u2.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let std_unix = std_read_woken_by_shutdown_read(u2, || u.shutdown(Shutdown::Read));
    if std_tcp != Ok(0) || std_unix != Ok(0) {
        println!(
            "SKIP: std's parked read is not woken with 0 by shutdown(Read) here ({std_tcp:?}, {std_unix:?})"
        );
        return;
    }

    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, Duration::from_secs(30), async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let tcp = shutdown_while_reading!(client, Shutdown::Read);
        let (n, got) = server.read(vec![0u8; 64]).timeout(LIMIT).await;
        let tcp_peer_got = got[..n.unwrap()].to_vec();

        let (a, b) = UnixStream::pair().unwrap();
        let unix = shutdown_while_reading!(a, Shutdown::Read);
        let (n, got) = b.read(vec![0u8; 64]).timeout(LIMIT).await;
        let unix_peer_got = got[..n.unwrap()].to_vec();

        let (c, _d) = UnixStream::pair().unwrap();
        let both = shutdown_while_reading!(c, Shutdown::Both);
        (tcp, tcp_peer_got, unix, unix_peer_got, both)
    });
    let (tcp, tcp_peer_got, unix, unix_peer_got, both) = out;
    let zeros: Vec<Result<usize, ErrorKind>> = vec![Ok(0); 3];
    assert_eq!(
        tcp.0,
        Ok(0),
        "TCP: the armed read after shutdown(Read) (std's parked read got Ok(0))"
    );
    assert_eq!(tcp.1, zeros, "TCP: the reads after shutdown(Read)");
    assert_eq!(tcp.2, Ok(()), "TCP: a write after shutdown(Read)");
    assert_eq!(tcp_peer_got, b"still writable");
    assert_eq!(
        unix.0,
        Ok(0),
        "Unix: the armed read after shutdown(Read) (std's parked read got Ok(0))"
    );
    assert_eq!(unix.1, zeros, "Unix: the reads after shutdown(Read)");
    assert_eq!(unix.2, Ok(()), "Unix: a write after shutdown(Read)");
    assert_eq!(unix_peer_got, b"still writable");
    assert_eq!(both.0, Ok(0), "Unix: the armed read after shutdown(Both)");
    assert_eq!(both.1, zeros, "Unix: the reads after shutdown(Both)");
    assert_eq!(
        both.2,
        Err(ErrorKind::BrokenPipe),
        "Unix: a write after shutdown(Both)"
    );
}

// ---------------------------------------------------------------------------
// 3. A write parked on a full socket ends when either side closes it
// ---------------------------------------------------------------------------

/// std's view of the Unix case: a blocking `write_all` parked on a full
/// socket in another thread, then `shutdown(Write)` on the same socket.
fn std_unix_parked_write_after_own_shutdown() -> Option<ErrorKind> {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    set_int_opt(a.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
    let a2 = a.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let r = (&a2).write_all(&pattern(4 << 20));
        let _ = tx.send(r.map_err(|e| e.kind()).err());
    });
    until_the_send_queue_is_stuck_blocking(a.as_raw_fd());
    a.shutdown(Shutdown::Write).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(3));
    drop(b); // lets the writer go whatever happened
    writer.join().unwrap();
    got.ok().flatten()
}

/// Expected: a `write_all` parked on a full socket (the peer reads nothing)
/// ends, within a bound, with an error as soon as the connection can no
/// longer carry its bytes: `BrokenPipe` when we `shutdown(Write)` the
/// stream from another branch of the task (TCP and Unix; std's parked
/// blocking write gets EPIPE too), `BrokenPipe` or `ConnectionReset` when
/// the peer closes with unread data (TCP and Unix) or (Unix) shuts down its
/// reading side. After our shutdown the peer reads a prefix of what was
/// written, in order, then end of file.
///
/// Why: the parked send waits on an internal poll for EPOLLOUT. A TCP
/// socket reports EPOLLOUT once SEND_SHUTDOWN is set, but a Unix socket
/// reports neither EPOLLOUT (its queue is still full) nor EPOLLHUP (only
/// one direction is shut) after our own SHUT_WR or the peer's SHUT_RD: only
/// the kernel's re-issue after an empty wake-up ends that send. If it does
/// not, the write hangs until the peer reads, where std's returns EPIPE.
#[test]
fn a_write_blocked_on_a_full_socket_ends_when_either_side_closes_it() {
    let _serial = SERIAL.lock();
    let std_view = std_unix_parked_write_after_own_shutdown();
    let rt = common::runtime(1);
    let bound = Duration::from_secs(3);

    // TCP, our own shutdown(Write).
    let (listener, addr) = tiny_window_listener();
    let (tcp_own, mut peer) = on_shard(&rt, 0, Duration::from_secs(20), async move {
        let s = TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        set_int_opt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
        let fd = s.as_raw_fd();
        let (w, shut) = tokio::join!(
            biased;
            s.write_all(pattern(4 << 20)).timeout(bound),
            async {
                until_the_send_queue_is_stuck(fd).await;
                s.shutdown(Shutdown::Write).await
            }
        );
        shut.unwrap();
        (kind(w.0), peer)
    });
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let got = read_to_eof(&mut peer, LIMIT).expect("TCP peer after our shutdown(Write)");
    drop(peer);

    // TCP, the peer closes with unread data (RST).
    let (listener, addr) = tiny_window_listener();
    let tcp_peer_closed = on_shard(&rt, 0, Duration::from_secs(20), async move {
        let s = TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        set_int_opt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
        let fd = s.as_raw_fd();
        let (w, ()) = tokio::join!(
            biased;
            s.write_all(pattern(4 << 20)).timeout(bound),
            async move {
                until_the_send_queue_is_stuck(fd).await;
                drop(peer);
            }
        );
        kind(w.0)
    });

    // Unix: our own shutdown(Write), the peer's close, the peer's
    // shutdown(Read).
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let (unix_own, mut theirs) = on_shard(&rt, 0, Duration::from_secs(20), async move {
        set_int_opt(ours.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
        let s = UnixStream::from_std(ours);
        let fd = s.as_raw_fd();
        let (w, shut) = tokio::join!(
            biased;
            s.write_all(pattern(4 << 20)).timeout(bound),
            async {
                until_the_send_queue_is_stuck(fd).await;
                s.shutdown(Shutdown::Write).await
            }
        );
        shut.unwrap();
        (kind(w.0), theirs)
    });
    theirs.set_read_timeout(Some(LIMIT)).unwrap();
    let unix_got = read_to_eof(&mut theirs, LIMIT).expect("Unix peer after our shutdown(Write)");
    drop(theirs);

    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let unix_peer_closed = on_shard(&rt, 0, Duration::from_secs(20), async move {
        set_int_opt(ours.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
        let s = UnixStream::from_std(ours);
        let fd = s.as_raw_fd();
        let (w, ()) = tokio::join!(
            biased;
            s.write_all(pattern(4 << 20)).timeout(bound),
            async move {
                until_the_send_queue_is_stuck(fd).await;
                drop(theirs);
            }
        );
        kind(w.0)
    });

    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let unix_peer_shut_read = on_shard(&rt, 0, Duration::from_secs(20), async move {
        set_int_opt(ours.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
        let s = UnixStream::from_std(ours);
        let fd = s.as_raw_fd();
        let (w, ()) = tokio::join!(
            biased;
            s.write_all(pattern(4 << 20)).timeout(bound),
            async {
                until_the_send_queue_is_stuck(fd).await;
                theirs.shutdown(Shutdown::Read).unwrap();
            }
        );
        kind(w.0)
    });

    let gone = |r: &Result<(), ErrorKind>| {
        matches!(r, Err(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset))
    };
    assert_eq!(
        tcp_own,
        Err(ErrorKind::BrokenPipe),
        "TCP write_all parked on a full socket, then our shutdown(Write) (TimedOut: it stayed parked)"
    );
    let data = pattern(4 << 20);
    assert!(
        got.len() < data.len() && got[..] == data[..got.len()],
        "the TCP peer got {} bytes that are not a prefix of what was written",
        got.len()
    );
    assert!(
        gone(&tcp_peer_closed),
        "TCP write_all parked on a full socket whose peer closed: {tcp_peer_closed:?}"
    );
    assert_eq!(
        unix_own,
        Err(ErrorKind::BrokenPipe),
        "Unix write_all parked on a full socket, then our shutdown(Write) (TimedOut: it stayed \
         parked; std's parked write got {std_view:?})"
    );
    assert!(
        unix_got.len() < data.len() && unix_got[..] == data[..unix_got.len()],
        "the Unix peer got {} bytes that are not a prefix of what was written",
        unix_got.len()
    );
    assert!(
        gone(&unix_peer_closed),
        "Unix write_all parked on a full socket whose peer closed: {unix_peer_closed:?}"
    );
    assert!(
        gone(&unix_peer_shut_read),
        "Unix write_all parked on a full socket whose peer shut down reading: \
         {unix_peer_shut_read:?} (TimedOut: it stayed parked)"
    );
}

// ---------------------------------------------------------------------------
// 4. Unix connect to a full backlog
// ---------------------------------------------------------------------------

/// A Unix listener at `path` with a backlog of 0: one pending connection
/// fills it, and the next connect must wait (or, nonblocking, gets EAGAIN).
fn unix_listener_backlog_0(path: &Path) -> std::os::unix::net::UnixListener {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero bytes are a valid `sockaddr_un`.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < sun.sun_path.len(), "temp path too long");
    for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: `sun` is a valid address of `len` bytes.
    let r = unsafe { libc::bind(fd.as_raw_fd(), (&raw const sun).cast(), len) };
    assert_eq!(r, 0, "bind: {}", io::Error::last_os_error());
    // SAFETY: listen on our socket.
    assert_eq!(unsafe { libc::listen(fd.as_raw_fd(), 0) }, 0);
    std::os::unix::net::UnixListener::from(fd)
}

/// Whether a nonblocking connect to `path` gets EAGAIN (the backlog is full).
fn unix_connect_would_block(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    assert!(fd >= 0);
    // SAFETY: `fd` is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: all-zero bytes are a valid `sockaddr_un`.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // SAFETY: `sun` is a valid address of `len` bytes.
    let r = unsafe { libc::connect(fd.as_raw_fd(), (&raw const sun).cast(), len) };
    r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// Accepts from a nonblocking std listener, retrying for at most `LIMIT`.
async fn accept_within(
    l: &std::os::unix::net::UnixListener,
) -> io::Result<std::os::unix::net::UnixStream> {
    let deadline = Instant::now() + LIMIT;
    loop {
        match l.accept() {
            Ok((s, _)) => return Ok(s),
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                ringlane::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Expected: a native Unix connect to a listener whose backlog is full
/// behaves as std's blocking connect does (Tokio's fails at once with
/// `WouldBlock`; ringlane's sockets are blocking and the module docs say
/// no op returns `WouldBlock`): bounded by `native::timeout` it fails with
/// `TimedOut`, promptly; unbounded it completes as soon as the listener
/// accepts a pending connection, and carries bytes; and a runtime shut down
/// while one is waiting exits without a stuck shard, leaving no fd and no
/// connection behind.
///
/// Why: the connect first gets EAGAIN, then a poll that reports the
/// unconnected socket ready at once; after the kernel's spurious-wake
/// retries it runs as a *blocking* connect in io-wq (`net/mod.rs:5`), which
/// only a signal to the worker (the cancel) can stop. A timeout that
/// returns `WouldBlock`, a connect stuck after room was made, or a
/// shutdown that cannot cancel it (a stuck shard, a leaked socket) is the
/// failure.
#[test]
fn a_unix_connect_to_a_full_backlog_waits_like_std_and_ends_cleanly() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("full-backlog");
    let path = dir.0.join("s.sock");
    let listener = unix_listener_backlog_0(&path);
    let filler = std::os::unix::net::UnixStream::connect(&path).unwrap();
    if !unix_connect_would_block(&path) {
        println!("SKIP: a Unix listener with backlog 0 still takes a second connection here");
        return;
    }
    listener.set_nonblocking(true).unwrap();
    let rt = common::runtime(1);
    let l2 = listener.try_clone().unwrap();
    let p = path.clone();
    let (timed, took, waited, carried) = on_shard(&rt, 0, Duration::from_secs(30), async move {
        // Bounded: TimedOut, not WouldBlock, not a hang.
        let t0 = Instant::now();
        let timed = kind(
            UnixStream::connect(&p)
                .timeout(Duration::from_millis(300))
                .await
                .map(drop),
        );
        let took = t0.elapsed();
        // Unbounded: waits, then completes once the listener makes room.
        let (conn, filler_side) = tokio::join!(
            biased;
            UnixStream::connect(&p).timeout(Duration::from_secs(5)),
            async {
                ringlane::time::sleep(Duration::from_millis(300)).await;
                accept_within(&l2).await // the filler: queued, so at once
            }
        );
        drop(filler_side);
        let waited = conn.as_ref().map(|_| ()).map_err(|e| e.kind());
        let mut carried = Vec::new();
        if let Ok(conn) = conn {
            let mut server = accept_within(&l2).await.expect("the waited connection");
            conn.write_all(b"through".to_vec()).await.0.unwrap();
            server.set_read_timeout(Some(LIMIT)).unwrap();
            let mut got = [0u8; 7];
            server.read_exact(&mut got).unwrap();
            carried = got.to_vec();
        }
        (timed, took, waited, carried)
    });
    assert_eq!(
        timed,
        Err(ErrorKind::TimedOut),
        "a connect to a full backlog under a 300 ms native timeout"
    );
    assert!(
        took < Duration::from_secs(3),
        "the timed connect took {took:?}"
    );
    assert_eq!(
        waited,
        Ok(()),
        "a connect to a full backlog, after the listener accepted the pending connection \
         (TimedOut: it stayed blocked)"
    );
    assert_eq!(carried, b"through");

    // A runtime shut down while a connect waits on the (again) full backlog.
    let filler2 = std::os::unix::net::UnixStream::connect(&path).unwrap();
    assert!(unix_connect_would_block(&path), "the backlog is full again");
    let rt2 = common::runtime(1);
    let p = path.clone();
    let _pending = rt2
        .handle()
        .spawn_pinned(0, async move { UnixStream::connect(&p).await.map(drop) })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // into io-wq by now
    let report = common::lifecycle::within(LIMIT, "a shutdown with a connect waiting", move || {
        rt2.shutdown(Duration::from_millis(100))
    });
    assert!(
        report.stuck_shards.is_empty(),
        "a shard could not exit past a waiting connect: {report:?}"
    );
    let first = listener.accept().map(|(s, _)| s);
    assert!(first.is_ok(), "the second filler is queued");
    let ghost = listener.accept().map(|(s, _)| s);
    assert_eq!(
        ghost.err().map(|e| e.kind()),
        Some(ErrorKind::WouldBlock),
        "the cancelled connect still reached the listener"
    );
    drop((first, filler, filler2, listener, rt, dir));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 5. TCP connect to a listener that drops SYNs
// ---------------------------------------------------------------------------

/// A TCP listener on 127.0.0.1 with a backlog of 0: once one connection
/// waits in its accept queue, the kernel drops new SYNs.
fn tcp_listener_backlog_0() -> std::net::TcpListener {
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a valid sockaddr_in of the size passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "bind: {}", io::Error::last_os_error());
    // SAFETY: listen on our socket.
    assert_eq!(unsafe { libc::listen(fd.as_raw_fd(), 0) }, 0);
    std::net::TcpListener::from(fd)
}

/// Expected: a native TCP connect whose SYNs the listener drops (its
/// accept queue is full) ends with `TimedOut` under a 300 ms
/// `native::timeout`, and is simply dropped under `time::timeout`; in both
/// cases the socket is gone for good: no fd leaks, and once the listener
/// has room, no retransmitted SYN of ours turns into a connection a second
/// later.
///
/// Why: the connect waits on an internal poll in SYN_SENT. Its cancel (by
/// the linked timeout, or by the drop) must end the op so that its
/// resources, the socket's last reference, are dropped. A cell that kept
/// the file alive would not show in `/proc/self/fd` but would keep the
/// kernel retransmitting the SYN: a ghost connection at the listener.
#[test]
fn a_tcp_connect_to_a_listener_dropping_syns_times_out_and_stops_retrying() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let listener = tcp_listener_backlog_0();
    let addr = listener.local_addr().unwrap();
    let filler = std::net::TcpStream::connect(addr).unwrap();
    let probe = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    if probe.as_ref().err().map(|e| e.kind()) != Some(ErrorKind::TimedOut) {
        println!(
            "SKIP: a full backlog of 0 does not drop SYNs here (std's connect: {:?})",
            probe.map(drop)
        );
        return;
    }
    let rt = common::runtime(1);
    let (timed, dropped) = on_shard(&rt, 0, Duration::from_secs(20), async move {
        let timed = kind(
            TcpStream::connect(addr)
                .timeout(Duration::from_millis(300))
                .await
                .map(drop),
        );
        let dropped = ringlane::time::timeout(Duration::from_millis(300), TcpStream::connect(addr))
            .await
            .map(|r| kind(r.map(drop)));
        (timed, dropped)
    });
    assert_eq!(
        timed,
        Err(ErrorKind::TimedOut),
        "the connect under a native timeout"
    );
    assert!(
        dropped.is_err(),
        "a connect to a listener dropping SYNs finished within 300 ms: {dropped:?}"
    );
    // Room at the listener: a retransmitted SYN of a socket still alive
    // would now complete (the first retransmission is due after ~1 s).
    let (filler_side, _) = listener.accept().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(1600));
    let ghost = listener.accept();
    assert_eq!(
        ghost.as_ref().err().map(|e| e.kind()),
        Some(ErrorKind::WouldBlock),
        "a connection arrived from a connect that had timed out or been dropped: {:?}",
        ghost.as_ref().map(|(_, a)| *a)
    );
    drop((filler, filler_side, listener, rt));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 6. Connected UDP and ICMP errors
// ---------------------------------------------------------------------------

/// A UDP port nobody listens on (bound, then released).
fn closed_udp_port() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn timeouts_as_timed_out(r: io::Result<usize>) -> Result<usize, ErrorKind> {
    r.map_err(|e| match e.kind() {
        ErrorKind::WouldBlock => ErrorKind::TimedOut,
        k => k,
    })
}

/// One native `recv`, bounded by a native timeout of `d`.
async fn recv(s: &UdpSocket, d: Duration) -> Result<usize, ErrorKind> {
    timeouts_as_timed_out(s.recv(vec![0u8; 16]).timeout(d).await.0)
}

/// std's sequence on a UDP socket connected to a closed port.
fn std_refused_sequence(closed: SocketAddr) -> Vec<Result<usize, ErrorKind>> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(closed).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let pause = || std::thread::sleep(Duration::from_millis(30));
    let mut out = Vec::new();
    out.push(timeouts_as_timed_out(s.send(b"one")));
    pause();
    out.push(timeouts_as_timed_out(s.recv(&mut [0u8; 16])));
    out.push(timeouts_as_timed_out(s.recv(&mut [0u8; 16])));
    out.push(timeouts_as_timed_out(s.send(b"two")));
    pause();
    out.push(timeouts_as_timed_out(s.send(b"three")));
    pause();
    out.push(timeouts_as_timed_out(s.send(b"four")));
    pause();
    out.push(timeouts_as_timed_out(s.recv(&mut [0u8; 16])));
    out
}

/// std's view of a receive parked before the refusal arrives.
fn std_parked_recv_then_refused(closed: SocketAddr) -> Result<usize, ErrorKind> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(closed).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let s2 = s.try_clone().unwrap();
    let reader = std::thread::spawn(move || timeouts_as_timed_out(s2.recv(&mut [0u8; 16])));
    std::thread::sleep(Duration::from_millis(100));
    s.send(b"x").unwrap();
    reader.join().unwrap()
}

/// Expected: a native UDP socket connected to a closed port reports the
/// ICMP refusals exactly as std's does on the same kernel, step by step
/// (the next `recv` or `send` after a refused datagram fails with
/// `ConnectionRefused`, once); a receive already armed when the refusal
/// arrives ends with `ConnectionRefused` (as std's parked `recv`), not a
/// hang; and connecting a v4 socket to a v6 address fails with std's errno.
///
/// Why: the native lane builds its own `msghdr` and `sockaddr` inline in
/// the op (`MsgRes`) and the armed receive must be woken by EPOLLERR
/// alone; the existing UDP tests only cover unconnected sockets.
#[test]
fn a_connected_udp_socket_reports_a_refused_peer_as_std_does() {
    let _serial = SERIAL.lock();
    let closed = closed_udp_port();
    let std_seq = std_refused_sequence(closed);
    let std_parked = std_parked_recv_then_refused(closed);
    let std_v6 = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .connect("[::1]:9")
        .map_err(|e| e.raw_os_error());

    let rt = common::runtime(1);
    let (ours_seq, ours_parked, ours_v6) = on_shard(&rt, 0, Duration::from_secs(20), async move {
        let pause = || ringlane::time::sleep(Duration::from_millis(30));
        let s = UdpSocket::bind(localhost()).unwrap();
        s.connect(closed).await.unwrap();
        let short = Duration::from_millis(200);
        let mut seq = Vec::new();
        seq.push(timeouts_as_timed_out(s.send(b"one".to_vec()).await.0));
        pause().await;
        seq.push(recv(&s, short).await);
        seq.push(recv(&s, short).await);
        seq.push(timeouts_as_timed_out(s.send(b"two".to_vec()).await.0));
        pause().await;
        seq.push(timeouts_as_timed_out(s.send(b"three".to_vec()).await.0));
        pause().await;
        seq.push(timeouts_as_timed_out(s.send(b"four".to_vec()).await.0));
        pause().await;
        seq.push(recv(&s, short).await);

        let p = UdpSocket::bind(localhost()).unwrap();
        p.connect(closed).await.unwrap();
        let (parked, sent) = tokio::join!(
            biased;
            recv(&p, Duration::from_secs(2)),
            async {
                ringlane::time::sleep(Duration::from_millis(100)).await;
                p.send(b"x".to_vec()).await.0
            }
        );
        sent.unwrap();

        let v4 = UdpSocket::bind(localhost()).unwrap();
        let v6 = v4
            .connect("[::1]:9".parse().unwrap())
            .await
            .map_err(|e| e.raw_os_error());
        (seq, parked, v6)
    });
    assert_eq!(
        ours_seq, std_seq,
        "connected UDP to a closed port: (send one, recv, recv, send two, send three, send four, recv)"
    );
    assert_eq!(
        ours_parked, std_parked,
        "a receive armed before the refusal arrived (TimedOut: it was never woken)"
    );
    assert_eq!(
        ours_v6, std_v6,
        "connecting a v4 UDP socket to a v6 address"
    );
}

// ---------------------------------------------------------------------------
// 7. Incoming through EMFILE
// ---------------------------------------------------------------------------

const EMFILE_CHILD: &str = "RINGLANE_ADV_EMFILE_CHILD";

/// Child side: a connection waits in the backlog, the process runs out of
/// fds, `Incoming::next` is asked for it, then fds are freed and it is
/// asked again (and once more for a new connection).
#[test]
#[ignore = "run in a child process by an_incoming_reports_emfile_and_then_delivers_the_waiting_connection"]
fn child_incoming_through_emfile() {
    if std::env::var_os(EMFILE_CHILD).is_none() {
        return;
    }
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, Duration::from_secs(30), async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let addr = listener.local_addr().unwrap();
        let first = std::net::TcpStream::connect(addr).unwrap(); // waits in the backlog
        let mut incoming = listener.incoming();
        let saved = set_fd_limit(lowest_free_fd() as libc::rlim_t);
        let limited = incoming.next().timeout(Duration::from_secs(3)).await;
        set_fd_limit(saved);
        let limited = match limited {
            Ok(_) => "Ok".to_string(),
            Err(e) => format!("{:?}/{:?}", e.raw_os_error(), e.kind()),
        };
        let after = incoming.next().timeout(Duration::from_secs(3)).await;
        let after = match after {
            Ok(conn) if conn.peer_addr().ok() == first.local_addr().ok() => {
                "the waiting one".to_string()
            }
            Ok(conn) => format!("another connection ({:?})", conn.peer_addr()),
            Err(e) => format!("{e} ({:?})", e.kind()),
        };
        let second = std::net::TcpStream::connect(addr).unwrap();
        let next = incoming.next().timeout(Duration::from_secs(3)).await;
        let next = match next {
            Ok(conn) if conn.peer_addr().ok() == second.local_addr().ok() => {
                "the new one".to_string()
            }
            Ok(conn) => format!("another connection ({:?})", conn.peer_addr()),
            Err(e) => format!("{e} ({:?})", e.kind()),
        };
        (limited, after, next)
    });
    println!("LIMITED={}", out.0);
    println!("AFTER={}", out.1);
    println!("NEXT={}", out.2);
    println!("EMFILE_CHILD=done");
}

/// Expected: with a connection waiting and no fd free, `Incoming::next`
/// fails with `EMFILE` (as Tokio's `accept` does) instead of hanging or
/// closing the connection; once fds are free again the very next call
/// delivers that waiting connection, and later ones follow.
///
/// Why: out of fds, a multishot accept ends with a final `-EMFILE` CQE.
/// `MultiAccept::poll_accept` reports it and leaves the ended op in place,
/// to be re-armed on the next poll (socket.rs:446, :456); the waiting
/// connection must stay in the kernel's backlog meanwhile. A missed re-arm
/// hangs the stream, a wrong branch (the `EINVAL` fallback) changes mode.
#[test]
fn an_incoming_reports_emfile_and_then_delivers_the_waiting_connection() {
    let _serial = SERIAL.lock();
    let (status, out) = run_ignored(
        "child_incoming_through_emfile",
        EMFILE_CHILD,
        Duration::from_secs(40),
    );
    assert!(status.success(), "the child failed ({status:?}):\n{out}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.split_once(name).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
            .to_string()
    };
    let limited = field("LIMITED=");
    assert!(
        limited.starts_with(&format!("Some({})/", libc::EMFILE)),
        "Incoming::next out of fds with a connection waiting: {limited}, want EMFILE\n{out}"
    );
    assert_eq!(
        field("AFTER="),
        "the waiting one",
        "the call after fds were freed\n{out}"
    );
    assert_eq!(field("NEXT="), "the new one", "the next connection\n{out}");
}

// ---------------------------------------------------------------------------
// 8. Sockets dropped with ops in flight
// ---------------------------------------------------------------------------

type Pending = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Expected: a Unix stream, a TCP stream, a UDP socket and a TCP listener,
/// each owned only by an op future in flight (read, read, recv_from,
/// accept), all dropped on the test thread while their shard is blocked:
/// until the shard can cancel the ops, each socket stays open (its fd number
/// is not free, its peer sees no end of file, its UDP port stays taken);
/// once the shard runs again every one of them closes (the peers read end
/// of file, the port can be bound, the listening port refuses), and no fd
/// leaks.
///
/// Why: the ops hold the fd (`Arc<OwnedFd>` in their resources) so the
/// kernel never sees a closed or reused number; the cancels travel through
/// the blocked shard's mailbox and the last reference is dropped with the
/// ops' final CQEs. Closing early is a use-after-close; never closing is a
/// leak.
#[test]
fn sockets_dropped_with_ops_in_flight_stay_open_until_the_ops_end_then_close() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (unix_ours, mut unix_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (tcp_ours, mut tcp_peer) = common::compat_io::std_tcp_pair();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let listener = TcpListener::bind(localhost()).unwrap();
    let listen_addr = listener.local_addr().unwrap();
    let raws = [
        unix_ours.as_raw_fd(),
        tcp_ours.as_raw_fd(),
        udp.as_raw_fd(),
        listener.as_raw_fd(),
    ];
    let futs: Held<Vec<Pending>> = on_shard(&rt, 0, LIMIT, async move {
        let u = UnixStream::from_std(unix_ours);
        let t = TcpStream::from_std(tcp_ours);
        let d = UdpSocket::from_std(udp);
        let mut futs: Vec<Pending> = Vec::new();
        futs.push(Box::pin(async move {
            let _ = u.read(vec![0u8; 64]).await;
        }));
        futs.push(Box::pin(async move {
            let _ = t.read(vec![0u8; 64]).await;
        }));
        futs.push(Box::pin(async move {
            let _ = d.recv_from(vec![0u8; 64]).await;
        }));
        futs.push(Box::pin(async move {
            let _ = listener.accept().await;
        }));
        for f in &mut futs {
            assert!(poll_once(f).await, "an op completed at once");
        }
        // Issued to the kernel (receives join the SQ at the next enter).
        ringlane::time::sleep(Duration::from_millis(20)).await;
        Held(futs)
    });
    let blocker = common::block_shard(&rt, 0);
    drop(futs); // here, off the shard: the cancels wait in the blocked mailbox
    for raw in raws {
        assert!(
            fd_is_open(raw),
            "fd {raw} closed while its op may still be in the kernel"
        );
    }
    unix_peer.set_nonblocking(true).unwrap();
    tcp_peer.set_nonblocking(true).unwrap();
    assert_eq!(
        kind(unix_peer.read(&mut [0u8; 8])),
        Err(ErrorKind::WouldBlock),
        "the Unix peer saw the socket close while a read was in flight"
    );
    assert_eq!(
        kind(tcp_peer.read(&mut [0u8; 8])),
        Err(ErrorKind::WouldBlock),
        "the TCP peer saw the socket close while a read was in flight"
    );
    assert_eq!(
        kind(std::net::UdpSocket::bind(udp_addr).map(drop)),
        Err(ErrorKind::AddrInUse),
        "the UDP port was freed while a receive was in flight"
    );
    common::join_within(&rt, blocker.release(), LIMIT, "the blocker");

    // Now every op ends, and every socket closes.
    common::wait_until("the sockets closing after their ops' cancels", || {
        raws.iter().all(|&r| !fd_is_open(r))
    });
    unix_peer.set_nonblocking(false).unwrap();
    unix_peer.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(
        kind(unix_peer.read(&mut [0u8; 8])),
        Ok(0),
        "the Unix peer's end of file"
    );
    tcp_peer.set_nonblocking(false).unwrap();
    tcp_peer.set_read_timeout(Some(LIMIT)).unwrap();
    assert_eq!(
        kind(tcp_peer.read(&mut [0u8; 8])),
        Ok(0),
        "the TCP peer's end of file"
    );
    assert!(
        std::net::UdpSocket::bind(udp_addr).is_ok(),
        "the UDP port is still taken"
    );
    assert_eq!(
        kind(std::net::TcpStream::connect(listen_addr).map(drop)),
        Err(ErrorKind::ConnectionRefused),
        "the listening port still accepts"
    );
    drop((unix_peer, tcp_peer, rt));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 9. into_compat while an abandoned read holds the fd
// ---------------------------------------------------------------------------

/// Expected: a native Unix stream whose read was dropped in flight (its
/// cancel queued, its CQE not yet reaped) moves to the compat lane: the
/// compat stream is nonblocking, receives the bytes the peer sends next
/// (the cancelled read takes none), sends; back on the native lane with
/// `into_native` it is blocking and reads again; and once it is dropped the
/// peer reads end of file (the original fd, closed by the cancelled op, and
/// the duplicate are both gone) and no fd leaks.
///
/// Why: `into_owned_fd` (socket.rs:105) cannot take the fd from an op that
/// still holds it and hands out a `dup` instead. The two numbers share one
/// open file: `O_NONBLOCK` set on one is set on both, the old number is
/// closed later by the op's CQE, and either mistake shows up as bytes
/// swallowed, a `WouldBlock` on the native side, or a peer that never sees
/// end of file.
#[test]
fn into_compat_with_an_abandoned_read_in_flight_hands_over_a_working_duplicate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let out = on_shard(&rt, 0, Duration::from_secs(30), async move {
        let mut peer = peer;
        let s = UnixStream::from_std(ours);
        {
            let mut read = Box::pin(s.read(vec![0u8; 64]));
            assert!(
                poll_once(&mut read).await,
                "a read of an empty socket completed"
            );
            ringlane::time::sleep(Duration::from_millis(20)).await; // armed in the kernel
        } // dropped in flight; no await until into_compat, so its CQE is not reaped
        let mut c = s.into_compat().expect("into_compat");
        let compat_nonblocking = nonblocking(c.as_raw_fd());
        peer.write_all(b"after").unwrap();
        let mut buf = [0u8; 16];
        let n = ringlane::time::timeout(LIMIT, c.read(&mut buf))
            .await
            .expect("the compat read timed out: the cancelled native read took the bytes")
            .expect("compat read");
        let first = buf[..n].to_vec();
        c.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        peer.read_exact(&mut back).unwrap();
        let native = c.into_native().expect("into_native");
        let native_nonblocking = nonblocking(native.as_raw_fd());
        peer.write_all(b"again").unwrap();
        let (n, got) = native.read(vec![0u8; 16]).timeout(LIMIT).await;
        let again = kind(n.map(|n| got[..n].to_vec()));
        drop(native);
        (
            compat_nonblocking,
            first,
            back,
            native_nonblocking,
            again,
            peer,
        )
    });
    let (compat_nonblocking, first, back, native_nonblocking, again, mut peer) = out;
    assert!(
        compat_nonblocking,
        "the compat stream is not in nonblocking mode"
    );
    assert_eq!(first, b"after", "the compat stream's first read");
    assert_eq!(&back, b"back", "the compat stream's write");
    assert!(
        !native_nonblocking,
        "into_native left the socket nonblocking"
    );
    assert_eq!(
        again,
        Ok(b"again".to_vec()),
        "the native read after the round trip"
    );
    let eof = kind(peer.read(&mut [0u8; 8]));
    assert_eq!(
        eof,
        Ok(0),
        "no end of file for the peer: an fd of the moved stream is still open"
    );
    drop((peer, rt));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 10. from_std flags and close paths
// ---------------------------------------------------------------------------

/// Expected: native sockets made `from_std` of *nonblocking* std sockets
/// (listener, TCP stream, UDP socket, Unix stream) are blocking, and their
/// ops wait for the peer instead of failing `WouldBlock`. Every `close()`
/// path closes the fd exactly once: on a shard, off the shards (inside
/// `block_on`), with an abandoned read still holding the fd (the close
/// returns at once and the fd closes when the read's cancel completes), and
/// a close future dropped after its first poll. A `/dev/null` sentinel then
/// put at each freed number is still open and still `/dev/null` after more
/// native I/O and the runtime's drop: nothing closed a number twice.
///
/// Why: `close_shared` (fd.rs:44-73) has four endings: a close op in the
/// kernel, a `close(2)` of a number the SQE builder already took out of its
/// `OwnedFd` when the op could not be submitted, a deferred close by the
/// last op, and the `Closing` guard of a dropped future. A second close of
/// a number the process has reused closes someone else's file.
#[test]
fn from_std_clears_nonblocking_and_every_close_path_closes_exactly_once() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let rt = common::runtime(1);

    // Nonblocking std sockets become blocking native ones whose ops wait.
    let waits = on_shard(&rt, 0, Duration::from_secs(20), async {
        let mut flags = Vec::new();
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_l.set_nonblocking(true).unwrap();
        let addr = std_l.local_addr().unwrap();
        let l = TcpListener::from_std(std_l);
        flags.push(nonblocking(l.as_raw_fd()));
        let (acc, conn) = tokio::join!(
            biased;
            l.accept().timeout(LIMIT),
            async {
                ringlane::time::sleep(Duration::from_millis(50)).await;
                TcpStream::connect(addr).await
            }
        );
        let accepted = kind(acc.map(drop));
        let conn = conn.unwrap();

        let (a, mut b) = common::compat_io::std_tcp_pair();
        a.set_nonblocking(true).unwrap();
        let t = TcpStream::from_std(a);
        flags.push(nonblocking(t.as_raw_fd()));
        let (r, ()) = tokio::join!(biased; t.read(vec![0u8; 8]).timeout(LIMIT), async {
            ringlane::time::sleep(Duration::from_millis(50)).await;
            b.write_all(b"t").unwrap();
        });
        let tcp_read = kind(r.0);

        let std_u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_u.set_nonblocking(true).unwrap();
        let to = std_u.local_addr().unwrap();
        let u = UdpSocket::from_std(std_u);
        flags.push(nonblocking(u.as_raw_fd()));
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (r, ()) = tokio::join!(biased; u.recv_from(vec![0u8; 8]).timeout(LIMIT), async {
            ringlane::time::sleep(Duration::from_millis(50)).await;
            sender.send_to(b"u", to).unwrap();
        });
        let udp_read = kind(r.0.map(|(n, _)| n));

        let (x, mut y) = std::os::unix::net::UnixStream::pair().unwrap();
        x.set_nonblocking(true).unwrap();
        let x = UnixStream::from_std(x);
        flags.push(nonblocking(x.as_raw_fd()));
        let (r, ()) = tokio::join!(biased; x.read(vec![0u8; 8]).timeout(LIMIT), async {
            ringlane::time::sleep(Duration::from_millis(50)).await;
            y.write_all(b"x").unwrap();
        });
        let unix_read = kind(r.0);
        drop((l, conn, t, b, u, x, y));
        (flags, accepted, tcp_read, udp_read, unix_read)
    });
    let (flags, accepted, tcp_read, udp_read, unix_read) = waits;
    assert_eq!(
        flags,
        vec![false; 4],
        "(listener, TCP, UDP, Unix) from nonblocking std sockets: still nonblocking"
    );
    assert_eq!(
        accepted,
        Ok(()),
        "accept on a listener that was nonblocking"
    );
    assert_eq!(tcp_read, Ok(1), "read on a TCP stream that was nonblocking");
    assert_eq!(
        udp_read,
        Ok(1),
        "recv_from on a UDP socket that was nonblocking"
    );
    assert_eq!(
        unix_read,
        Ok(1),
        "read on a Unix stream that was nonblocking"
    );

    // The close paths, each followed by a sentinel at the freed number.
    let dn = devnull.try_clone().unwrap();
    let mut sentinels: Vec<(String, OwnedFd)> =
        on_shard(&rt, 0, Duration::from_secs(20), async move {
            let mut out = Vec::new();
            // On the shard: IORING_OP_CLOSE.
            let (a, b) = UnixStream::pair().unwrap();
            let raw = a.as_raw_fd();
            a.close().await.unwrap();
            assert!(!fd_is_open(raw), "close() returned with the fd still open");
            out.push(("close on a shard".to_string(), sentinel_at(raw, &dn)));
            drop(b);
            // With an abandoned read holding the fd: deferred to its CQE.
            let (a, b) = UnixStream::pair().unwrap();
            let raw = a.as_raw_fd();
            {
                let mut read = Box::pin(a.read(vec![0u8; 8]));
                assert!(poll_once(&mut read).await);
                ringlane::time::sleep(Duration::from_millis(20)).await;
            }
            a.close().await.unwrap();
            until_closed(raw, "close with an abandoned read").await;
            out.push((
                "close with an abandoned read".to_string(),
                sentinel_at(raw, &dn),
            ));
            drop(b);
            // A close future dropped after its first poll (its SQE pushed).
            let (a, b) = UnixStream::pair().unwrap();
            let raw = a.as_raw_fd();
            let mut closing = Box::pin(a.close());
            let _ = poll_once(&mut closing).await;
            drop(closing);
            until_closed(raw, "a close future dropped after its first poll").await;
            out.push(("a dropped close future".to_string(), sentinel_at(raw, &dn)));
            drop(b);
            out
        });
    // Off the shards: inside block_on, the close cannot be submitted.
    let (a, b) = UnixStream::pair().unwrap();
    let raw = a.as_raw_fd();
    let off = rt.block_on(a.close());
    assert!(off.is_ok(), "close off the shards: {off:?}");
    assert!(!fd_is_open(raw), "close off the shards left the fd open");
    sentinels.push((
        "close off the shards".to_string(),
        sentinel_at(raw, &devnull),
    ));
    drop(b);

    // More native I/O on the shard, then the runtime's end: nothing may
    // close a sentinel's number again.
    on_shard(&rt, 0, LIMIT, async {
        for _ in 0..4 {
            let (a, b) = UnixStream::pair().unwrap();
            a.write_all(b"ping".to_vec()).await.0.unwrap();
            let (n, _) = b.read(vec![0u8; 8]).timeout(LIMIT).await;
            n.unwrap();
            a.close().await.unwrap();
            b.close().await.unwrap();
        }
    });
    common::native_io::two_ticks(&rt, 0);
    drop(rt);
    for (what, fd) in &sentinels {
        assert!(
            still_devnull(fd.as_raw_fd(), &devnull),
            "{what}: the number was closed a second time (the sentinel put there is gone)"
        );
    }
    drop((sentinels, devnull));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
