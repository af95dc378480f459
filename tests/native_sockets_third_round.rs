//! Native sockets against std, third round: IPv6 UDP and TCP addresses,
//! receives dropped in every state, close-on-exec blocking fds, a paused
//! `Incoming` dropped, refused and unroutable connects under a deadline, a
//! read in flight across our own write shutdown, a stuck zero-copy send
//! timing out, Unix names that exist, std sockets carrying timeouts or a
//! connect in progress, the listener's backlog, and Unix sockets behind
//! the IP types (`InvalidInput`, as std says).

mod common;

use std::collections::BTreeSet;
use std::ffi::{CString, OsString};
use std::future::{Future, poll_fn};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

use common::LIMIT;
use common::fixed_io::on_shard;
use common::multishot_io::{kernel_at_least, set_int_opt};
use common::native_io::{Held, SERIAL, TempDir, accept_queue_len, settled_fd_count, two_ticks};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn v4(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, port))
}

/// An error as (kind, errno), for comparing with std's.
fn errno(e: io::Error) -> (ErrorKind, Option<i32>) {
    (e.kind(), e.raw_os_error())
}

/// (close-on-exec, non-blocking) of `fd`; `None` if it is not open.
fn fd_flags(fd: RawFd) -> Option<(bool, bool)> {
    // SAFETY: F_GETFD/F_GETFL only read the fd's flags.
    let (fdf, fl) = unsafe {
        (
            libc::fcntl(fd, libc::F_GETFD),
            libc::fcntl(fd, libc::F_GETFL),
        )
    };
    if fdf < 0 || fl < 0 {
        return None;
    }
    Some((fdf & libc::FD_CLOEXEC != 0, fl & libc::O_NONBLOCK != 0))
}

/// What is wrong with `fd` compared with a socket std would hand out.
fn flags_problem(what: &str, fd: RawFd) -> Option<String> {
    match fd_flags(fd) {
        None => Some(format!("{what}: fd {fd} is not open")),
        Some((true, false)) => None,
        Some((cloexec, nonblocking)) => Some(format!(
            "{what}: fd {fd} has FD_CLOEXEC {cloexec} (std: true), O_NONBLOCK {nonblocking} (std: false)"
        )),
    }
}

/// `getsockopt` of one `int` option.
fn get_int_opt(fd: RawFd, level: i32, name: i32) -> i32 {
    let mut v: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`.
    let r = unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) };
    assert_eq!(r, 0, "getsockopt: {}", io::Error::last_os_error());
    v
}

/// The fd numbers open in this process now.
fn open_fds() -> BTreeSet<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn is_socket(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.to_string_lossy().starts_with("socket:"))
        .unwrap_or(false)
}

/// A path naming the abstract socket `name` (a leading NUL, as the docs say).
fn abstract_path(name: &str) -> PathBuf {
    let mut b = vec![0u8];
    b.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from_vec(b))
}

/// `/proc/net/tcp` rows: (local, remote, state) as the kernel prints them.
fn tcp_table() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 3).then(|| (f[1].to_string(), f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

/// An IPv4 socket address as `/proc/net/tcp` prints it.
fn proc_addr(a: SocketAddrV4) -> String {
    format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(a.ip().octets()),
        a.port()
    )
}

/// A TCP listener on 127.0.0.1 with a backlog of 0: once one connection
/// waits in its accept queue, the kernel drops new SYNs (the client stays
/// in SYN_SENT and retransmits after about a second).
fn tcp_listener_backlog_0() -> std::net::TcpListener {
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let sin = common::sockaddr_in(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0).into());
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

/// A std stream whose non-blocking connect to `to` was started (and, with
/// a full listener, is still in progress). Left non-blocking.
fn connecting_socket(to: SocketAddr) -> std::net::TcpStream {
    let SocketAddr::V4(to) = to else {
        panic!("v4 only")
    };
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    let sin = common::sockaddr_in(to.into());
    // SAFETY: `sin` is a valid sockaddr_in of the size passed.
    let r = unsafe {
        libc::connect(
            fd,
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    let e = io::Error::last_os_error();
    assert!(
        r == 0 || e.raw_os_error() == Some(libc::EINPROGRESS),
        "non-blocking connect: {e}"
    );
    // SAFETY: `fd` is new and ours.
    unsafe { std::net::TcpStream::from_raw_fd(fd) }
}

/// `tcpi_state` of a TCP socket (2 = SYN_SENT).
fn tcp_state(fd: RawFd) -> u8 {
    // SAFETY: all-zero bytes are a valid `tcp_info`.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_INFO: {}", io::Error::last_os_error());
    info.tcpi_state
}

// ---------------------------------------------------------------------------
// 1. IPv6 datagrams
// ---------------------------------------------------------------------------

async fn ipv6_udp_cases() -> Option<Vec<String>> {
    let (a, b) = match (UdpSocket::bind(v6(0)), UdpSocket::bind(v6(0))) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            println!(
                "SKIP ipv6 UDP: no IPv6 loopback here ({:?}, {:?})",
                a.err(),
                b.err()
            );
            return None;
        }
    };
    let c = std::net::UdpSocket::bind(v6(0)).unwrap();
    let d = std::net::UdpSocket::bind(v6(0)).unwrap();
    for s in [&c, &d] {
        s.set_read_timeout(Some(LIMIT)).unwrap();
    }
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let (c_addr, d_addr) = (c.local_addr().unwrap(), d.local_addr().unwrap());
    let mut bad = Vec::new();

    // Our local address is std's view of the same socket.
    // SAFETY: F_DUPFD_CLOEXEC makes a new fd we own.
    let dup = unsafe {
        std::net::UdpSocket::from_raw_fd(libc::fcntl(a.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0))
    };
    if dup.local_addr().unwrap() != a_addr {
        bad.push(format!(
            "local_addr {a_addr} differs from std's view {}",
            dup.local_addr().unwrap()
        ));
    }
    drop(dup);

    // Ours to std: a datagram, then an empty one; std sees our address.
    let sent = (
        a.send_to(b"hello6".to_vec(), c_addr).await.0.map_err(errno),
        a.send_to(Vec::new(), c_addr).await.0.map_err(errno),
    );
    if sent != (Ok(6), Ok(0)) {
        bad.push(format!("send_to over IPv6: {sent:?}, want (Ok(6), Ok(0))"));
    }
    let mut buf = [0u8; 16];
    for want in [6usize, 0] {
        match c.recv_from(&mut buf) {
            Ok((n, from)) if n == want && from == a_addr => {}
            other => bad.push(format!(
                "std received {other:?} from our socket, want ({want}, {a_addr})"
            )),
        }
    }

    // Std to ours and to a std reference: a long one (cut), an empty one,
    // a short one, into the same buffer sizes.
    let series: [&[u8]; 3] = [b"0123456789AB", b"", b"z"];
    let caps = [4usize, 8, 8];
    for to in [b_addr, d_addr] {
        for m in series {
            c.send_to(m, to).unwrap();
        }
    }
    let mut theirs = Vec::new();
    for cap in caps {
        let mut v = vec![0u8; cap];
        let (n, from) = d.recv_from(&mut v).unwrap();
        theirs.push((v[..n].to_vec(), from));
    }
    let mut ours = Vec::new();
    for cap in caps {
        let (r, got) = b.recv_from(Vec::with_capacity(cap)).timeout(LIMIT).await;
        match r {
            Ok((n, from)) => ours.push((got[..n].to_vec(), from)),
            Err(e) => {
                bad.push(format!(
                    "recv_from over IPv6 after {} datagrams: {e}",
                    ours.len()
                ));
                break;
            }
        }
    }
    if ours != theirs {
        bad.push(format!(
            "(bytes, sender) of a cut, an empty and a short datagram: ours {ours:?}, std {theirs:?}"
        ));
    }

    // Destinations carrying flow information, or a scope id on an address
    // that needs none: whatever std's send_to does, ours does.
    let odd = [
        SocketAddrV6::new(Ipv6Addr::LOCALHOST, c_addr.port(), 0x000A_BCDE, 0),
        SocketAddrV6::new(Ipv6Addr::LOCALHOST, c_addr.port(), 0, 1),
    ];
    for to in odd {
        let ours = a
            .send_to(b"odd".to_vec(), SocketAddr::V6(to))
            .await
            .0
            .map_err(errno);
        let theirs = d.send_to(b"odd", SocketAddr::V6(to)).map_err(errno);
        if ours != theirs {
            bad.push(format!("send_to {to:?}: ours {ours:?}, std {theirs:?}"));
            continue;
        }
        if ours.is_ok() {
            let mut senders = Vec::new();
            for _ in 0..2 {
                match c.recv_from(&mut buf) {
                    Ok((3, from)) => senders.push(from),
                    other => bad.push(format!("the datagrams sent to {to:?}: {other:?}")),
                }
            }
            senders.sort();
            let mut want = vec![a_addr, d_addr];
            want.sort();
            if senders != want {
                bad.push(format!("senders to {to:?}: {senders:?}, want {want:?}"));
            }
        }
    }

    // The connected path: b takes datagrams from a only.
    if let Err(e) = a.connect(b_addr).await {
        bad.push(format!("connect over IPv6: {e}"));
        return Some(bad);
    }
    b.connect(a_addr).await.unwrap();
    c.send_to(b"stranger", b_addr).unwrap();
    let sent = a.send(b"kept".to_vec()).await.0.map_err(errno);
    let (r, got) = b.recv_from(Vec::with_capacity(16)).timeout(LIMIT).await;
    let r = r.map(|(n, from)| (got[..n].to_vec(), from)).map_err(errno);
    if (sent, r.clone()) != (Ok(4), Ok((b"kept".to_vec(), a_addr))) {
        bad.push(format!(
            "connected IPv6 send/recv_from: sent {sent:?}, got {r:?}, want 4 bytes \"kept\" from {a_addr}"
        ));
    }
    let (r, got) = {
        a.send(Vec::new()).await.0.unwrap();
        b.recv(Vec::with_capacity(16)).timeout(LIMIT).await
    };
    if r.map_err(errno) != Ok(0) || !got.is_empty() {
        bad.push("an empty datagram on a connected IPv6 socket was not Ok(0)".to_string());
    }
    Some(bad)
}

/// Expected: over pure IPv6 loopback, ringlane's `UdpSocket` sends and
/// receives as std's does on the same kernel: std sees our address, we see
/// std's (the whole `SocketAddrV6`, flow info and scope id included, equal
/// to what std's own `recv_from` reports for the same datagrams), a long
/// datagram is cut to the buffer, an empty one is `Ok(0)` with its sender,
/// destinations carrying flow info or a needless scope id get std's
/// outcome, and a connected socket filters strangers and passes empty
/// datagrams.
///
/// Why: the native lane builds `sockaddr_in6` itself and parses the one the
/// kernel writes into its inline `RawAddr`; the tests so far only checked
/// IPv4 and v4-mapped senders.
#[test]
fn ipv6_udp_datagrams_report_the_senders_and_sizes_std_reports() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, Duration::from_secs(20), ipv6_udp_cases());
    drop(rt);
    let Some(bad) = out else { return };
    assert!(
        bad.is_empty(),
        "IPv6 UDP differs from std:\n{}",
        bad.join("\n")
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 2. Receives dropped in every state on one UDP socket
// ---------------------------------------------------------------------------

type RecvOut = (io::Result<(usize, SocketAddr)>, Vec<u8>);
type RecvFut<'a> = Pin<Box<dyn Future<Output = RecvOut> + Send + 'a>>;
type Datagrams = Vec<(Vec<u8>, SocketAddr)>;

async fn receives_dropped_in_every_state()
-> Result<(Datagrams, Datagrams, Option<ErrorKind>), String> {
    let sock = UdpSocket::bind(v4(0)).unwrap();
    let to = sock.local_addr().unwrap();
    let sender = std::net::UdpSocket::bind(v4(0)).unwrap();
    let mut futs: Vec<RecvFut<'_>> = Vec::new();
    for i in 0..8 {
        if i % 2 == 0 {
            futs.push(Box::pin(sock.recv_from(Vec::with_capacity(8))));
        } else {
            futs.push(Box::pin(
                sock.recv_from(Vec::with_capacity(8)).timeout(LIMIT),
            ));
        }
    }
    // One poll queues all eight (late SQEs, half of them with a linked
    // timeout right behind).
    let pending = poll_fn(|cx| {
        let mut n = 0;
        for f in futs.iter_mut() {
            if f.as_mut().poll(cx).is_pending() {
                n += 1;
            }
        }
        Poll::Ready(n)
    })
    .await;
    if pending != 8 {
        return Err(format!("{pending} of 8 receives pending with nothing sent"));
    }
    // Still in that poll (no enter yet): four are dropped before the kernel
    // saw them, two plain and two timed, interleaved with kept ones.
    let mut kept: Vec<RecvFut<'_>> = Vec::new();
    let mut withdrawn: Vec<RecvFut<'_>> = Vec::new();
    for (i, f) in futs.into_iter().enumerate() {
        match i {
            1 | 2 | 4 | 7 => withdrawn.push(f),
            _ => kept.push(f),
        }
    }
    drop(withdrawn);
    // The rest reach the kernel; then two of them (one plain, one timed)
    // are cancelled there, and the cancels complete.
    ringlane::time::sleep(Duration::from_millis(20)).await;
    let cancelled: Vec<RecvFut<'_>> = kept.drain(0..2).collect();
    drop(cancelled);
    ringlane::time::sleep(Duration::from_millis(20)).await;

    let series: [&[u8]; 6] = [b"", b"abc", b"", b"0123456789", b"", b"ZYXWVUTSRQPONM"];
    for m in series {
        sender.send_to(m, to).unwrap();
    }
    let mut got: Datagrams = Vec::new();
    for f in kept {
        let (r, buf) = ringlane::time::timeout(LIMIT, f)
            .await
            .map_err(|_| "a receive kept in flight never completed".to_string())?;
        let (n, from) = r.map_err(|e| format!("a receive kept in flight: {e}"))?;
        got.push((buf[..n].to_vec(), from));
    }
    while got.len() < series.len() {
        let (r, buf) = sock
            .recv_from(Vec::with_capacity(8))
            .timeout(Duration::from_secs(2))
            .await;
        match r {
            Ok((n, from)) => got.push((buf[..n].to_vec(), from)),
            Err(e) => {
                return Err(format!(
                    "only {} of {} datagrams arrived ({e}); got {got:?}",
                    got.len(),
                    series.len()
                ));
            }
        }
    }
    let extra = sock
        .recv_from(Vec::with_capacity(8))
        .timeout(Duration::from_millis(200))
        .await
        .0
        .err()
        .map(|e| e.kind());

    // std's view of the same series, into 8-byte buffers.
    let std_rx = std::net::UdpSocket::bind(v4(0)).unwrap();
    std_rx.set_read_timeout(Some(LIMIT)).unwrap();
    for m in series {
        sender.send_to(m, std_rx.local_addr().unwrap()).unwrap();
    }
    let mut theirs: Datagrams = Vec::new();
    for _ in 0..series.len() {
        let mut b = [0u8; 8];
        let (n, from) = std_rx.recv_from(&mut b).unwrap();
        theirs.push((b[..n].to_vec(), from));
    }
    got.sort();
    theirs.sort();
    Ok((got, theirs, extra))
}

/// Expected: eight `recv_from`s on one UDP socket, half of them under a
/// `native::timeout`, are queued in one poll; four are dropped in that same
/// poll (before the kernel saw them), two more once they are in the kernel,
/// two are kept. Six datagrams then sent (three empty, two longer than the
/// 8-byte buffers) are each received exactly once, by the two kept
/// receives and fresh ones: the same multiset of (bytes, sender) std's
/// `recv_from` reports for the same series, and nothing more.
///
/// Why: a receive dropped before the enter is withdrawn by rewriting the
/// late SQE list in place (a timed one takes its linked timeout with it);
/// with plain and timed receives interleaved, a withdrawal that rewrote a
/// neighbour, or a dropped receive still issued, swallows a datagram (an
/// empty one is the easiest to lose unnoticed) or leaves a kept receive
/// unanswered.
#[test]
fn udp_receives_dropped_in_every_state_take_no_datagram_and_the_rest_arrive_once() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let out = on_shard(
        &rt,
        0,
        Duration::from_secs(20),
        receives_dropped_in_every_state(),
    );
    drop(rt);
    let (got, theirs, extra) = out.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        got, theirs,
        "the datagrams received around dropped receives differ from std's view of the same series"
    );
    assert_eq!(
        extra,
        Some(ErrorKind::TimedOut),
        "a seventh datagram appeared"
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 3. The flags of every socket constructor
// ---------------------------------------------------------------------------

async fn every_constructor(dir: PathBuf) -> Vec<String> {
    let start = open_fds();
    let mut bad = Vec::new();

    let l = TcpListener::bind(v4(0)).unwrap();
    let addr = l.local_addr().unwrap();
    let c1 = TcpStream::connect(addr).await.unwrap();
    let (a1, _) = l.accept().timeout(LIMIT).await.unwrap();
    let mut incoming = l.incoming();
    let c2 = TcpStream::connect(addr).await.unwrap();
    let a2 = incoming.next().timeout(LIMIT).await.unwrap();
    // Three more, accepted into the stream's cell and never taken.
    let untaken: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    if kernel_at_least(5, 19) {
        let deadline = Instant::now() + LIMIT;
        while accept_queue_len(l.as_raw_fd()) > 0 {
            assert!(
                Instant::now() < deadline,
                "the multishot accept never took them"
            );
            ringlane::time::sleep(Duration::from_millis(1)).await;
        }
    } else {
        println!("SKIP the untaken-connection part: no multishot accept before Linux 5.19");
    }
    ringlane::time::sleep(Duration::from_millis(5)).await;

    let u = UdpSocket::bind(v4(0)).unwrap();
    let path = dir.join("s.sock");
    let ul = UnixListener::bind(&path).unwrap();
    let uc = UnixStream::connect(&path).await.unwrap();
    let ua = ul.accept().timeout(LIMIT).await.unwrap();
    let (p1, p2) = UnixStream::pair().unwrap();
    let abs = abstract_path(&format!("ringlane-adv-net3-flags-{}", std::process::id()));
    let ul2 = UnixListener::bind(&abs).unwrap();
    let uc2 = UnixStream::connect(&abs).await.unwrap();
    let ua2 = ul2.accept().timeout(LIMIT).await.unwrap();

    let named = [
        ("TcpListener::bind", l.as_raw_fd()),
        ("TcpStream::connect", c1.as_raw_fd()),
        ("TcpListener::accept", a1.as_raw_fd()),
        ("TcpStream::connect (2)", c2.as_raw_fd()),
        ("Incoming::next", a2.as_raw_fd()),
        ("UdpSocket::bind", u.as_raw_fd()),
        ("UnixListener::bind", ul.as_raw_fd()),
        ("UnixStream::connect", uc.as_raw_fd()),
        ("UnixListener::accept", ua.as_raw_fd()),
        ("UnixStream::pair (a)", p1.as_raw_fd()),
        ("UnixStream::pair (b)", p2.as_raw_fd()),
        ("UnixListener::bind (abstract)", ul2.as_raw_fd()),
        ("UnixStream::connect (abstract)", uc2.as_raw_fd()),
        ("UnixListener::accept (abstract)", ua2.as_raw_fd()),
    ];
    for (what, fd) in named {
        if let Some(p) = flags_problem(what, fd) {
            bad.push(p);
        }
    }
    // Every socket fd opened since the start, those the Incoming accepted
    // and holds untaken included (std's clients are close-on-exec too).
    let now = open_fds();
    for &fd in now.difference(&start) {
        if is_socket(fd) {
            if let Some(p) = flags_problem("a socket opened by this test", fd) {
                bad.push(p);
            }
        }
    }

    // TCP_NODELAY reads back what set_nodelay set, on every kind of stream.
    for (what, s) in [("connect", &c1), ("accept", &a1), ("Incoming", &a2)] {
        let fd = s.as_raw_fd();
        let default = get_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
        s.set_nodelay(true).unwrap();
        let on = get_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
        s.set_nodelay(false).unwrap();
        let off = get_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
        if (default, on, off) != (0, 1, 0) {
            bad.push(format!(
                "{what}: TCP_NODELAY (default, after true, after false) = ({default}, {on}, {off})"
            ));
        }
    }
    // SO_REUSEADDR as std's (and Tokio's) listener has it.
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = get_int_opt(l.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR);
    let theirs = get_int_opt(std_l.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR);
    if (ours != 0) != (theirs != 0) {
        bad.push(format!("SO_REUSEADDR: ours {ours}, std {theirs}"));
    }
    drop((incoming, untaken, std_l));
    drop((l, c1, a1, c2, a2, u, ul, uc, ua, p1, p2, ul2, uc2, ua2));
    bad
}

/// Expected: every fd a native socket constructor hands out is
/// close-on-exec and blocking, as std's are: `TcpListener::bind`,
/// `TcpStream::connect`, `accept`, `Incoming::next` (and the accepted fds
/// an `Incoming` holds untaken), `UdpSocket::bind`, the Unix constructors
/// with path and abstract names, `UnixStream::pair`. `set_nodelay` reads
/// back through `getsockopt`, and the bound listener has `SO_REUSEADDR`
/// like std's.
///
/// Why: these fds come from `IORING_OP_SOCKET`, `IORING_OP_ACCEPT` (one-shot
/// and multishot, whose flags sit in another SQE field) and libc; one
/// without `FD_CLOEXEC` leaks a connection into every child process (the
/// peer never sees EOF while the child lives), and one left non-blocking
/// breaks a later `into_std`-style hand-over.
#[test]
fn every_socket_constructor_hands_out_cloexec_blocking_fds_like_std() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("net3-flags");
    let rt = common::runtime(1);
    let bad = on_shard(
        &rt,
        0,
        Duration::from_secs(20),
        every_constructor(dir.0.clone()),
    );
    drop(rt);
    drop(dir);
    assert!(
        bad.is_empty(),
        "socket fds unlike std's:\n{}",
        bad.join("\n")
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 4. An Incoming dropped while paused at its bound
// ---------------------------------------------------------------------------

/// Whether `c`'s peer has closed it (EOF or reset), without blocking;
/// `None` while it is open.
fn peer_closed(c: &mut std::net::TcpStream) -> Option<&'static str> {
    c.set_nonblocking(true).unwrap();
    match c.read(&mut [0u8; 1]) {
        Ok(0) => Some("EOF"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Some("reset"),
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Ok(_) => Some("data"),
        Err(_) => Some("error"),
    }
}

/// Expected: an `Incoming` armed and then left unpolled pauses once 64
/// connections wait in it untaken; the rest stay in the kernel's backlog.
/// Dropped in that state, it closes every connection it accepted (their
/// clients read EOF); a fresh `incoming()` on the same listener then hands
/// out every connection still in the backlog, in connect order. So each
/// client is exactly one of: closed, or handed to the new stream (and left
/// open). No fd leaks.
///
/// Why: the pause is an `ASYNC_CANCEL` issued from inside the cell's
/// `complete`, whose `-ECANCELED` end is filtered out as "not a result";
/// the drop marks the cell abandoned, runs the orphan handler on what is
/// queued and cancels again if the op still looks live. If the drop and
/// the pause cross badly, an accepted fd is neither handed out nor closed
/// (a client hangs, an fd leaks), or a connection is lost between the two
/// streams.
#[test]
fn an_incoming_dropped_while_paused_closes_what_it_accepted_and_a_new_one_gets_the_rest() {
    const CLIENTS: usize = 100;
    const WAVE: usize = 8;
    let _serial = SERIAL.lock();
    if !kernel_at_least(5, 19) {
        println!("SKIP: no multishot accept before Linux 5.19 (Incoming accepts one at a time)");
        return;
    }
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let listener = TcpListener::bind(v4(0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let lfd = listener.as_raw_fd();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut incoming = listener.incoming();
            let first = std::net::TcpStream::connect(addr).unwrap();
            let taken = incoming
                .next()
                .timeout(LIMIT)
                .await
                .expect("the first connection");
            Held((incoming, listener, first, taken))
        })
        .unwrap();
    let Held((incoming, listener, first, taken)) =
        common::join_within(&rt, task, LIMIT, "the first connection");

    // Waves of connects, the shard running between them, until the stream
    // has paused and the rest wait in the backlog.
    let mut clients = Vec::new();
    while clients.len() < CLIENTS {
        for _ in 0..WAVE.min(CLIENTS - clients.len()) {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
        }
        std::thread::sleep(Duration::from_millis(2));
        two_ticks(&rt, 0);
    }
    std::thread::sleep(Duration::from_millis(30));
    two_ticks(&rt, 0);
    let backlog = accept_queue_len(lfd) as usize;
    if backlog == 0 {
        println!("note: the stream took all {CLIENTS} connections (no pause seen)");
    }

    // Dropped while paused, on its shard.
    let t = rt
        .handle()
        .spawn_pinned(0, async move {
            drop(incoming);
            ringlane::time::sleep(Duration::from_millis(20)).await;
        })
        .unwrap();
    common::join_within(&rt, t, LIMIT, "the drop");

    // A fresh stream takes what is left, keeping the connections open.
    let t = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut incoming = listener.incoming();
            let mut handed = Vec::new();
            loop {
                match incoming.next().timeout(Duration::from_millis(300)).await {
                    Ok(c) => handed.push(c),
                    Err(e) if e.kind() == ErrorKind::TimedOut => break,
                    Err(e) => return Err(format!("the fresh stream: {e}")),
                }
            }
            let peers: Vec<SocketAddr> = handed.iter().map(|c| c.peer_addr().unwrap()).collect();
            Ok::<_, String>(Held((incoming, listener, handed, peers)))
        })
        .unwrap();
    let Held((incoming2, listener, handed, peers)) =
        common::join_within(&rt, t, Duration::from_secs(20), "the fresh stream")
            .unwrap_or_else(|e| panic!("{e}"));

    // Each client: closed, or handed out (and open). Wait for the closes.
    let locals: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    let handed_set: BTreeSet<SocketAddr> = peers.iter().copied().collect();
    let mut state: Vec<Option<&'static str>> = vec![None; CLIENTS];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for (i, c) in clients.iter_mut().enumerate() {
            if state[i].is_none() {
                state[i] = peer_closed(c);
            }
        }
        let waiting = (0..CLIENTS)
            .filter(|&i| state[i].is_none() && !handed_set.contains(&locals[i]))
            .count();
        if waiting == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut problems = Vec::new();
    for i in 0..CLIENTS {
        match (handed_set.contains(&locals[i]), state[i]) {
            (true, None) | (false, Some("EOF")) | (false, Some("reset")) => {}
            (true, Some(s)) => {
                problems.push(format!("client {i}: handed to the new stream, yet {s}"))
            }
            (false, None) => problems.push(format!(
                "client {i}: neither closed by the dropped stream nor handed to the new one"
            )),
            (false, Some(s)) => problems.push(format!("client {i}: {s}")),
        }
    }
    let order: Vec<SocketAddr> = locals
        .iter()
        .copied()
        .filter(|a| handed_set.contains(a))
        .collect();
    drop((incoming2, listener, handed, first, taken));
    drop(clients);
    drop(rt);
    assert!(
        problems.is_empty(),
        "{} of {CLIENTS} clients ({backlog} were in the backlog at the drop):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(
        peers, order,
        "the new stream handed out the backlog out of order"
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 5. Connects that cannot complete
// ---------------------------------------------------------------------------

/// Expected: under a 300 ms `native::timeout`, a native connect to a
/// refused port (IPv4, IPv6) and to addresses nothing answers (TEST-NET-1,
/// the IPv6 discard prefix) ends with the error kind std's
/// `connect_timeout` gives for the same address and deadline
/// (`ConnectionRefused`, `TimedOut`, or an immediate unreachable error),
/// within the deadline's neighbourhood; afterwards no fd is left and no
/// socket of ours is still in SYN_SENT towards 192.0.2.1 (its
/// retransmissions stopped with it).
///
/// Why: the connect runs after `IORING_OP_SOCKET` in the same future; its
/// linked timeout cancels the op, whose `-ECANCELED` must read as
/// `TimedOut` and whose socket (held by the op's resources and the future)
/// must be closed on both error paths.
#[test]
fn refused_and_unroutable_connects_fail_like_std_within_their_deadline_and_leave_no_socket() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let deadline = Duration::from_millis(300);
    let refused4 = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let refused6 = std::net::TcpListener::bind("[::1]:0")
        .ok()
        .map(|l| l.local_addr().unwrap());
    let testnet: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let discard6: SocketAddr = "[100::1]:9".parse().unwrap();
    let mut cases = vec![("a refused IPv4 port", refused4), ("TEST-NET-1", testnet)];
    match refused6 {
        Some(a) => {
            cases.push(("a refused IPv6 port", a));
            cases.push(("the IPv6 discard prefix", discard6));
        }
        None => println!("SKIP the IPv6 cases: no IPv6 loopback here"),
    }
    let theirs: Vec<Result<(), ErrorKind>> = cases
        .iter()
        .map(|(_, a)| {
            std::net::TcpStream::connect_timeout(a, deadline)
                .map(drop)
                .map_err(|e| e.kind())
        })
        .collect();
    let rt = common::runtime(1);
    let addrs: Vec<SocketAddr> = cases.iter().map(|(_, a)| *a).collect();
    let ours = on_shard(&rt, 0, Duration::from_secs(30), async move {
        let mut out = Vec::new();
        for a in addrs {
            let t = Instant::now();
            let r = ringlane::time::timeout(
                Duration::from_secs(5),
                TcpStream::connect(a).timeout(deadline),
            )
            .await;
            out.push(match r {
                Err(_) => Err("no answer within 5 s".to_string()),
                Ok(r) => Ok((r.map(drop).map_err(|e| e.kind()), t.elapsed())),
            });
        }
        out
    });
    drop(rt);
    let mut bad = Vec::new();
    for (((what, a), theirs), ours) in cases.iter().zip(&theirs).zip(&ours) {
        match ours {
            Err(e) => bad.push(format!("{what} ({a}): {e}")),
            Ok((k, took)) => {
                if k != theirs {
                    bad.push(format!(
                        "{what} ({a}): ours {k:?}, std's connect_timeout {theirs:?}"
                    ));
                }
                if *took > Duration::from_secs(3) {
                    bad.push(format!(
                        "{what} ({a}): took {took:?} under a {deadline:?} deadline"
                    ));
                }
            }
        }
    }
    if let Some(k) = ours.first().and_then(|o| o.as_ref().ok()).map(|(k, _)| *k) {
        if k != Err(ErrorKind::ConnectionRefused) {
            bad.push(format!(
                "a refused IPv4 port: {k:?}, want ConnectionRefused"
            ));
        }
    }
    let SocketAddr::V4(tn) = testnet else {
        unreachable!()
    };
    let wait = Instant::now() + Duration::from_secs(3);
    let syn_sent = loop {
        let n = tcp_table()
            .iter()
            .filter(|(_, rem, st)| *rem == proc_addr(tn) && st == "02")
            .count();
        if n == 0 || Instant::now() >= wait {
            break n;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if syn_sent > 0 {
        bad.push(format!(
            "{syn_sent} socket(s) still in SYN_SENT to {testnet}"
        ));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 6. Half-close with a read in flight
// ---------------------------------------------------------------------------

type HalfClose = (Result<Vec<u8>, ErrorKind>, Result<usize, ErrorKind>);

async fn half_close_tcp(addr: SocketAddr) -> HalfClose {
    let s = TcpStream::connect(addr).await.unwrap();
    let ((n, buf), ()) = tokio::join!(biased; s.read(vec![0u8; 64]).timeout(LIMIT), async {
        ringlane::time::sleep(Duration::from_millis(30)).await;
        s.write_all(b"request".to_vec()).await.0.unwrap();
        s.shutdown(Shutdown::Write).await.unwrap();
    });
    let first = n.map(|n| buf[..n].to_vec()).map_err(|e| e.kind());
    let (end, _) = s.read(vec![0u8; 64]).timeout(LIMIT).await;
    (first, end.map_err(|e| e.kind()))
}

async fn half_close_unix(s: UnixStream) -> HalfClose {
    let ((n, buf), ()) = tokio::join!(biased; s.read(vec![0u8; 64]).timeout(LIMIT), async {
        ringlane::time::sleep(Duration::from_millis(30)).await;
        s.write_all(b"request".to_vec()).await.0.unwrap();
        s.shutdown(Shutdown::Write).await.unwrap();
    });
    let first = n.map(|n| buf[..n].to_vec()).map_err(|e| e.kind());
    let (end, _) = s.read(vec![0u8; 64]).timeout(LIMIT).await;
    (first, end.map_err(|e| e.kind()))
}

/// A peer that reads the request to EOF, then replies and closes.
fn replying_peer<S: Read + Write + Send + 'static>(mut s: S) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        s.write_all(b"reply").unwrap();
        req
    })
}

/// Expected: on TCP and on a Unix stream, a read is in flight when the same
/// socket writes a request and shuts down its write side (HTTP/1.0 style).
/// The peer reads the request to EOF and replies: the read in flight gets
/// the reply (not 0, not an error), and the next read gets EOF, as with std.
///
/// Why: the shutdown is an ordinary SQE and the read a late one (issued
/// after its batch); the shutdown wakes the read's internal poll, which
/// must re-arm rather than end the read, and `SHUT_WR` must not be taken
/// for the read side.
#[test]
fn a_read_in_flight_survives_our_own_write_shutdown_and_gets_the_reply() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        replying_peer(s).join().unwrap()
    });
    let tcp = on_shard(&rt, 0, Duration::from_secs(20), half_close_tcp(addr));
    let tcp_req = acceptor.join().unwrap();

    let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let peer = replying_peer(peer);
    let ours = UnixStream::from_std(ours);
    let unix = on_shard(&rt, 0, Duration::from_secs(20), half_close_unix(ours));
    let unix_req = peer.join().unwrap();
    drop(rt);

    let want: HalfClose = (Ok(b"reply".to_vec()), Ok(0));
    assert_eq!(
        (tcp_req.as_slice(), tcp),
        (&b"request"[..], want.clone()),
        "TCP: (request seen by the peer, (read in flight, next read))"
    );
    assert_eq!(
        (unix_req.as_slice(), unix),
        (&b"request"[..], want),
        "Unix: (request seen by the peer, (read in flight, next read))"
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 7. A zero-copy send ended by its native deadline
// ---------------------------------------------------------------------------

struct ZcOut {
    result: Result<usize, ErrorKind>,
    waited: Duration,
    intact: bool,
    sent_before: usize,
}

async fn zc_case(addr: SocketAddr, go: std::sync::mpsc::Sender<()>) -> Option<ZcOut> {
    let s = TcpStream::connect(addr).await.unwrap();
    set_int_opt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 4096);
    let (r, _) = s.write_zc(vec![b'p'; 1]).timeout(LIMIT).await;
    match r {
        Ok(1) => {}
        Err(e) if e.kind() == ErrorKind::InvalidInput => {
            println!("SKIP: the kernel refuses IORING_OP_SEND_ZC ({e})");
            let _ = go.send(());
            return None;
        }
        other => panic!("the probing zero-copy send: {other:?}"),
    }
    let mut sent_before = 1usize;
    let mut stuck = false;
    for _ in 0..20_000 {
        let (r, _) = s
            .write(vec![b'p'; 4096])
            .timeout(Duration::from_millis(100))
            .await;
        match r {
            Ok(n) => sent_before += n,
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                stuck = true;
                break;
            }
            Err(e) => panic!("filling the socket: {e}"),
        }
    }
    assert!(stuck, "the socket never filled");
    let t = Instant::now();
    let zc = ringlane::time::timeout(
        Duration::from_secs(6),
        s.write_zc(vec![0xABu8; 32 * 1024])
            .timeout(Duration::from_millis(200)),
    )
    .await;
    let waited = t.elapsed();
    let _ = go.send(());
    let (r, buf) = zc.expect("the zero-copy send ignored its native deadline and the peer's reads");
    let intact = buf.len() == 32 * 1024 && buf.iter().all(|&b| b == 0xAB);
    s.write_all(b"tail".to_vec())
        .timeout(LIMIT)
        .await
        .0
        .unwrap();
    s.close().await.unwrap();
    Some(ZcOut {
        result: r.map_err(|e| e.kind()),
        waited,
        intact,
        sent_before,
    })
}

/// Expected: `write_zc` of 32 KiB on a TCP socket whose send queue is
/// stuck (the peer does not read), under a 200 ms `native::timeout`, ends
/// with `TimedOut` near the deadline (well before the peer starts reading
/// 3 s later) and gives the buffer back intact; the peer then receives the
/// bytes written before, none of the timed-out buffer, and the bytes
/// written after. (Should the kernel have queued part of it, `Ok(n)` with
/// exactly `n` of its bytes at the peer is accepted too.)
///
/// Why: `SEND_ZC` posts a result and then a notification; under a linked
/// timeout the cancel's `-ECANCELED` comes with `F_MORE`, is kept as the
/// op's early result, and must be turned into `TimedOut` when the
/// notification ends the op. Misread, the op waits for the peer (its
/// notification treated as still pending), reports the byte count of
/// nothing, or hands the buffer back before the kernel let go of it.
#[test]
fn a_zero_copy_send_stuck_on_a_full_socket_times_out_with_its_buffer_and_sends_none_of_it() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        set_int_opt(peer.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 4096);
        let _ = go_rx.recv_timeout(Duration::from_secs(3));
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let mut all = Vec::new();
        let r = peer.read_to_end(&mut all).map_err(|e| e.kind());
        (r, all)
    });
    let out = on_shard(&rt, 0, Duration::from_secs(30), zc_case(addr, go_tx));
    let (read, all) = reader.join().unwrap();
    drop(rt);
    let Some(out) = out else { return };
    assert!(
        out.intact,
        "the zero-copy send's buffer came back changed or cut"
    );
    assert!(read.is_ok(), "the peer's read: {read:?}");
    let mut want = vec![b'p'; out.sent_before];
    match out.result {
        Err(ErrorKind::TimedOut) => {
            assert!(
                out.waited < Duration::from_secs(2),
                "TimedOut only after {:?}: the deadline was 200 ms",
                out.waited
            );
        }
        Ok(n) => {
            assert!(n <= 32 * 1024);
            want.extend(std::iter::repeat_n(0xABu8, n));
        }
        Err(k) => panic!("the zero-copy send under a 200 ms deadline: {k:?}, want TimedOut"),
    }
    want.extend_from_slice(b"tail");
    assert_eq!(
        all.len(),
        want.len(),
        "bytes at the peer (result {:?})",
        out.result
    );
    assert!(
        all == want,
        "the peer's bytes differ from what was reported sent"
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 8. Unix names that already exist
// ---------------------------------------------------------------------------

async fn unix_name_cases(dir: PathBuf) -> Vec<String> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{
        SocketAddr as StdAddr, UnixListener as StdListener, UnixStream as StdStream,
    };
    let mut bad = Vec::new();
    let stale = dir.join("stale.sock");
    drop(StdListener::bind(&stale).unwrap());
    let file = dir.join("file");
    std::fs::write(&file, b"keep").unwrap();
    let sub = dir.join("dir");
    std::fs::create_dir(&sub).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    let fifo = dir.join("fifo");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let live = dir.join("live.sock");
    let live_l = StdListener::bind(&live).unwrap();
    let under_file = file.join("x");
    let missing = dir.join("missing").join("x");
    let cases: [(&str, &Path); 8] = [
        ("a stale socket file", stale.as_path()),
        ("a regular file", file.as_path()),
        ("a directory", sub.as_path()),
        ("a dangling symlink", dangling.as_path()),
        ("a FIFO", fifo.as_path()),
        ("a live listener's socket", live.as_path()),
        ("a path under a regular file", under_file.as_path()),
        ("a path in a missing directory", missing.as_path()),
    ];
    for (what, p) in cases {
        let ours = UnixListener::bind(p).map(drop).map_err(errno);
        let theirs = StdListener::bind(p).map(drop).map_err(errno);
        if ours != theirs {
            bad.push(format!("bind over {what}: ours {ours:?}, std {theirs:?}"));
        } else if ours.is_ok() {
            bad.push(format!("bind over {what} succeeded (for both)"));
        }
        let ours = UnixStream::connect(p).await.map(drop).map_err(errno);
        let theirs = StdStream::connect(p).map(drop).map_err(errno);
        if ours != theirs {
            bad.push(format!("connect to {what}: ours {ours:?}, std {theirs:?}"));
        }
    }
    // A taken abstract name, taken by std, then by us.
    let name = format!("ringlane-adv-net3-taken-{}", std::process::id());
    let std_abs =
        StdListener::bind_addr(&StdAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let ours = UnixListener::bind(abstract_path(&name))
        .map(drop)
        .map_err(errno);
    let theirs = StdListener::bind_addr(&StdAddr::from_abstract_name(name.as_bytes()).unwrap())
        .map(drop)
        .map_err(errno);
    if ours != theirs || ours.is_ok() {
        bad.push(format!(
            "bind to an abstract name std holds: ours {ours:?}, std {theirs:?}"
        ));
    }
    drop(std_abs);
    match UnixListener::bind(abstract_path(&name)) {
        Ok(l) => {
            let theirs =
                StdListener::bind_addr(&StdAddr::from_abstract_name(name.as_bytes()).unwrap())
                    .map(drop)
                    .map_err(errno);
            if !matches!(theirs, Err((ErrorKind::AddrInUse, _))) {
                bad.push(format!("std bind to an abstract name we hold: {theirs:?}"));
            }
            drop(l);
        }
        Err(e) => bad.push(format!("bind to a released abstract name: {e}")),
    }

    // Nothing on disk changed.
    let kind = |p: &Path| std::fs::symlink_metadata(p).map(|m| m.file_type());
    if std::fs::read(&file).ok().as_deref() != Some(&b"keep"[..]) {
        bad.push("the regular file changed".to_string());
    }
    if !kind(stale.as_path())
        .map(|t| t.is_socket())
        .unwrap_or(false)
    {
        bad.push("the stale socket file changed".to_string());
    }
    if !kind(sub.as_path()).map(|t| t.is_dir()).unwrap_or(false) {
        bad.push("the directory changed".to_string());
    }
    if !kind(dangling.as_path())
        .map(|t| t.is_symlink())
        .unwrap_or(false)
        || dir.join("nowhere").exists()
    {
        bad.push("the dangling symlink changed, or its target was created".to_string());
    }
    if !kind(fifo.as_path()).map(|t| t.is_fifo()).unwrap_or(false) {
        bad.push("the FIFO changed".to_string());
    }
    let entries = std::fs::read_dir(&dir).unwrap().count();
    if entries != 6 {
        bad.push(format!(
            "{entries} entries in the directory, want the 6 made"
        ));
    }
    drop(live_l);
    bad
}

/// Expected: `UnixListener::bind` and `UnixStream::connect` on names that
/// already exist (a stale socket file, a regular file, a directory, a
/// dangling symlink, a FIFO, a live listener's socket), under a regular
/// file, in a missing directory, or on an abstract name already taken,
/// fail (or connect) with the errno std's calls get for the same name, and
/// nothing on disk changes (the symlink's target is not created).
///
/// Why: bind goes through std and connect through `IORING_OP_CONNECT` with
/// ringlane's own `sockaddr_un`: a different length or terminator would
/// name another file (or create one through the symlink).
#[test]
fn unix_names_that_exist_fail_to_bind_and_connect_as_with_std_and_stay_unchanged() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("net3-names");
    let rt = common::runtime(1);
    let bad = on_shard(
        &rt,
        0,
        Duration::from_secs(20),
        unix_name_cases(dir.0.clone()),
    );
    drop(rt);
    drop(dir);
    assert!(bad.is_empty(), "Unix names unlike std:\n{}", bad.join("\n"));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 9. from_std of sockets with std's timeouts, or still connecting
// ---------------------------------------------------------------------------

/// Expected: `from_std` of std sockets carrying a 30 ms `SO_RCVTIMEO` and
/// `SO_SNDTIMEO` (`set_read_timeout`/`set_write_timeout`): a TCP read, a
/// UDP `recv_from` and a Unix read wait ~200 ms for their data and get it,
/// and a 1 MiB `write_all` blocked for longer than 30 ms completes, as
/// Tokio's `from_std` sockets do (never `WouldBlock`/`TimedOut` from the
/// std timeouts). `from_std` of a socket whose non-blocking connect is
/// still in SYN_SENT (its listener's queue was full): a `write_all` waits
/// for the handshake and delivers; one to a listener that closes fails
/// with the error kind a blocking std write on a like socket gets.
///
/// Why: `from_std` only clears `O_NONBLOCK`; whatever else the std socket
/// carries is left, and an op the kernel runs in blocking mode would honour
/// `SO_RCVTIMEO` and fail with `EAGAIN` after 30 ms. A send on a socket in
/// SYN_SENT fails at once in non-blocking mode (`EAGAIN`) and must be
/// waited out, not reported.
#[test]
fn from_std_sockets_with_std_timeouts_or_a_connect_in_progress_wait_like_tokio() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let short = Some(Duration::from_millis(30));

    // Part 1: std's timeouts.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut a_peer, _) = l.accept().unwrap();
    drop(l);
    a.set_read_timeout(short).unwrap();
    a.set_write_timeout(short).unwrap();
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(short).unwrap();
    let u_addr = u.local_addr().unwrap();
    let u_peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (x, mut x_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    x.set_read_timeout(short).unwrap();
    x.set_write_timeout(short).unwrap();
    let peer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        a_peer.write_all(b"late-tcp").unwrap();
        u_peer.send_to(b"late-udp", u_addr).unwrap();
        x_peer.write_all(b"late-unix").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        a_peer.set_read_timeout(Some(LIMIT)).unwrap();
        let mut got = vec![0u8; 1 << 20];
        let r = a_peer.read_exact(&mut got).map_err(|e| e.kind());
        (r, got.iter().all(|&b| b == 7))
    });
    let part1 = on_shard(&rt, 0, Duration::from_secs(30), async move {
        let a = TcpStream::from_std(a);
        let u = UdpSocket::from_std(u);
        let x = UnixStream::from_std(x);
        let (ra, ru, rx) = tokio::join!(
            a.read(vec![0u8; 32]).timeout(LIMIT),
            u.recv_from(vec![0u8; 32]).timeout(LIMIT),
            x.read(vec![0u8; 32]).timeout(LIMIT),
        );
        let tcp = ra.0.map(|n| ra.1[..n].to_vec()).map_err(|e| e.kind());
        let udp = ru.0.map(|(n, _)| ru.1[..n].to_vec()).map_err(|e| e.kind());
        let unix = rx.0.map(|n| rx.1[..n].to_vec()).map_err(|e| e.kind());
        let t = Instant::now();
        let (w, _) = a.write_all(vec![7u8; 1 << 20]).timeout(LIMIT).await;
        (tcp, udp, unix, w.map_err(|e| e.kind()), t.elapsed())
    });
    let (peer_read, all_sevens) = peer.join().unwrap();
    let (tcp, udp, unix, write, write_took) = part1;
    assert_eq!(tcp, Ok(b"late-tcp".to_vec()), "TCP read past SO_RCVTIMEO");
    assert_eq!(
        udp,
        Ok(b"late-udp".to_vec()),
        "UDP recv_from past SO_RCVTIMEO"
    );
    assert_eq!(
        unix,
        Ok(b"late-unix".to_vec()),
        "Unix read past SO_RCVTIMEO"
    );
    assert_eq!(
        write,
        Ok(()),
        "a 1 MiB write_all blocked {write_took:?} past SO_SNDTIMEO"
    );
    assert_eq!((peer_read, all_sevens), (Ok(()), true), "the peer's 1 MiB");

    // Part 2: a connect still in progress. l1 and l3 will make room; l2 and
    // l4 go away. Ours write on s1 and s2; std writes on s3 and s4.
    let listeners: Vec<std::net::TcpListener> = (0..4).map(|_| tcp_listener_backlog_0()).collect();
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let fillers: Vec<std::net::TcpStream> = addrs
        .iter()
        .map(|a| std::net::TcpStream::connect(a).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    let socks: Vec<std::net::TcpStream> = addrs.iter().map(|a| connecting_socket(*a)).collect();
    std::thread::sleep(Duration::from_millis(20));
    let states: Vec<u8> = socks.iter().map(|s| tcp_state(s.as_raw_fd())).collect();
    if states.iter().any(|&s| s != 2) {
        println!("note: not every connect was still in SYN_SENT: {states:?}");
    }
    let mut socks = socks.into_iter();
    let (s1, s2, s3, s4) = (
        socks.next().unwrap(),
        socks.next().unwrap(),
        socks.next().unwrap(),
        socks.next().unwrap(),
    );
    let ours = rt
        .handle()
        .spawn_pinned(0, async move {
            let s1 = TcpStream::from_std(s1);
            let s2 = TcpStream::from_std(s2);
            let (r1, r2) = tokio::join!(
                s1.write_all(b"hello".to_vec()).timeout(LIMIT),
                s2.write_all(b"nope".to_vec()).timeout(LIMIT),
            );
            (r1.0.map_err(|e| e.kind()), r2.0.map_err(|e| e.kind()))
        })
        .unwrap();
    let std_writes = [s3, s4].map(|mut s| {
        std::thread::spawn(move || {
            s.set_nonblocking(false).unwrap();
            s.set_write_timeout(Some(LIMIT)).unwrap();
            s.write_all(b"hello").map_err(|e| e.kind())
        })
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut listeners = listeners.into_iter();
    let mut fillers = fillers.into_iter();
    let (l1, l2, l3, l4) = (
        listeners.next().unwrap(),
        listeners.next().unwrap(),
        listeners.next().unwrap(),
        listeners.next().unwrap(),
    );
    let (f1, f2, f3, f4) = (
        fillers.next().unwrap(),
        fillers.next().unwrap(),
        fillers.next().unwrap(),
        fillers.next().unwrap(),
    );
    // Room in l1 and l3 (their fillers taken); l2 and l4 closed.
    let taken1 = l1.accept().unwrap();
    let taken3 = l3.accept().unwrap();
    drop((l2, l4, f2, f4));
    let (r1, r2) = common::join_within(
        &rt,
        ours,
        Duration::from_secs(15),
        "the writes of connecting sockets",
    );
    let [w3, w4] = std_writes.map(|t| t.join().unwrap());
    let read_hello = |l: &std::net::TcpListener| {
        l.set_nonblocking(false).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b)
            .map(|()| b.to_vec())
            .map_err(|e| e.kind())
    };
    let got1 = if r1.is_ok() {
        read_hello(&l1)
    } else {
        Err(ErrorKind::Other)
    };
    let got3 = if w3.is_ok() {
        read_hello(&l3)
    } else {
        Err(ErrorKind::Other)
    };
    drop((l1, l3, f1, f3, taken1, taken3));
    drop(rt);
    assert_eq!(w3, Ok(()), "std's reference write on a connecting socket");
    assert_eq!(got3, Ok(b"hello".to_vec()), "std's reference bytes");
    assert_eq!(
        r1,
        Ok(()),
        "a write on a from_std socket still connecting, whose listener made room"
    );
    assert_eq!(got1, Ok(b"hello".to_vec()), "its bytes at the listener");
    assert_eq!(
        r2, w4,
        "a write on a connecting socket whose listener closed: ours vs std's blocking write"
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 10. TcpListener::bind: backlog and SO_REUSEADDR
// ---------------------------------------------------------------------------

/// Expected: `TcpListener::bind` listens with the documented backlog of
/// 1024: 200 clients all connect (each within 1.5 s) before any accept,
/// where std's backlog of 128 would drop SYNs past 129. All are then
/// accepted; with the server's side closed first (its sockets in
/// TIME_WAIT) and the listener closed, the same address binds again, for
/// ours and for std's listener, thanks to `SO_REUSEADDR`.
///
/// Why: `tcp_listener` makes the socket itself (not through std) to set
/// both; a lost option shows only under a burst or on a restart.
#[test]
fn a_bound_listener_queues_a_burst_before_any_accept_and_rebinds_over_time_wait() {
    const BURST: usize = 200;
    let _serial = SERIAL.lock();
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if somaxconn <= BURST {
        println!("SKIP: net.core.somaxconn is {somaxconn}, at most {BURST}");
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if (lim.rlim_cur as usize) < 3 * BURST + 64 {
        println!(
            "SKIP: the fd limit {} is too low for {BURST} connections",
            lim.rlim_cur
        );
        return;
    }
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let l = TcpListener::bind(v4(0)).unwrap();
    let addr = l.local_addr().unwrap();
    let mut clients = Vec::new();
    let mut failed = None;
    for i in 0..BURST {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(1500)) {
            Ok(c) => clients.push(c),
            Err(e) => {
                failed = Some((i, e.kind()));
                break;
            }
        }
    }
    let queued = accept_queue_len(l.as_raw_fd()) as usize;
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut accepted = 0usize;
            while accepted < queued {
                let (c, _) = l.accept().timeout(LIMIT).await?;
                c.close().await?; // the server's side closes first
                accepted += 1;
            }
            l.close().await?;
            Ok::<_, io::Error>(accepted)
        })
        .unwrap();
    let accepted = common::join_within(&rt, task, Duration::from_secs(20), "the accepts");
    for c in &mut clients {
        c.set_read_timeout(Some(LIMIT)).unwrap();
        let _ = c.read(&mut [0u8; 1]);
    }
    drop(clients);
    std::thread::sleep(Duration::from_millis(50));
    let SocketAddr::V4(a4) = addr else {
        unreachable!()
    };
    let time_wait = tcp_table()
        .iter()
        .filter(|(local, _, st)| *local == proc_addr(a4) && st == "06")
        .count();
    if time_wait == 0 {
        println!("note: no TIME_WAIT socket on {addr} (the rebind is not put to the test)");
    }
    let ours = TcpListener::bind(addr).map(drop).map_err(errno);
    let theirs = std::net::TcpListener::bind(addr).map(drop).map_err(errno);
    drop(rt);
    assert_eq!(
        failed, None,
        "a connect of the burst failed before any accept"
    );
    assert_eq!(accepted.map_err(errno), Ok(BURST), "accepted of the burst");
    assert_eq!(
        (ours, theirs),
        (Ok(()), Ok(())),
        "binding {addr} again with {time_wait} TIME_WAIT socket(s): (ours, std's)"
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 11. IPv6 streams
// ---------------------------------------------------------------------------

async fn ipv6_tcp_cases() -> Option<Vec<String>> {
    let l = match TcpListener::bind(v6(0)) {
        Ok(l) => l,
        Err(e) => {
            println!("SKIP ipv6 TCP: no IPv6 loopback here ({e})");
            return None;
        }
    };
    let addr = l.local_addr().unwrap();
    let mut bad = Vec::new();

    // Ours to ours.
    let c = TcpStream::connect(addr).await.unwrap();
    let (conn, peer) = l.accept().timeout(LIMIT).await.unwrap();
    let got = (
        peer,
        conn.peer_addr().unwrap(),
        conn.local_addr().unwrap(),
        c.peer_addr().unwrap(),
    );
    let want = (c.local_addr().unwrap(), c.local_addr().unwrap(), addr, addr);
    if got != want {
        bad.push(format!(
            "ours to ours: (accept's peer, peer_addr, local_addr, client's peer_addr) = {got:?}, want {want:?}"
        ));
    }
    c.write_all(b"v6".to_vec()).await.0.unwrap();
    let (n, buf) = conn.read(vec![0u8; 8]).timeout(LIMIT).await;
    if n.map(|n| buf[..n].to_vec()).ok().as_deref() != Some(&b"v6"[..]) {
        bad.push("bytes over IPv6 were lost".to_string());
    }

    // Std to ours, through an Incoming.
    let mut incoming = l.incoming();
    let sc = std::net::TcpStream::connect(addr).unwrap();
    let conn2 = incoming.next().timeout(LIMIT).await.unwrap();
    if conn2.peer_addr().unwrap() != sc.local_addr().unwrap() {
        bad.push(format!(
            "Incoming's peer_addr {} != std client's local_addr {}",
            conn2.peer_addr().unwrap(),
            sc.local_addr().unwrap()
        ));
    }

    // Ours to std.
    let sl = std::net::TcpListener::bind("[::1]:0").unwrap();
    let c3 = TcpStream::connect(sl.local_addr().unwrap()).await.unwrap();
    let (s3, p3) = sl.accept().unwrap();
    if (p3, s3.local_addr().unwrap()) != (c3.local_addr().unwrap(), c3.peer_addr().unwrap()) {
        bad.push(format!(
            "std's accept saw {p3} at {}, ours says {} to {}",
            s3.local_addr().unwrap(),
            c3.local_addr().unwrap(),
            c3.peer_addr().unwrap()
        ));
    }

    // A v4 client of dual-stack listeners: ours and std's report the same
    // (v4-mapped) peer.
    let dl = TcpListener::bind("[::]:0".parse().unwrap()).unwrap();
    let std_dl = std::net::TcpListener::bind("[::]:0").unwrap();
    let v4_to_ours = std::net::TcpStream::connect(v4(dl.local_addr().unwrap().port()));
    let v4_to_std = std::net::TcpStream::connect(v4(std_dl.local_addr().unwrap().port()));
    match (v4_to_ours, v4_to_std) {
        (Ok(a), Ok(b)) => {
            let (dconn, dpeer) = dl.accept().timeout(LIMIT).await.unwrap();
            let (_, std_peer) = std_dl.accept().unwrap();
            let mapped = |port: u16| {
                SocketAddr::V6(SocketAddrV6::new(
                    Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
                    port,
                    0,
                    0,
                ))
            };
            if std_peer != mapped(b.local_addr().unwrap().port()) {
                println!("note: std reports a v4 client of [::] as {std_peer}");
            }
            let want = match std_peer {
                SocketAddr::V6(_) => mapped(a.local_addr().unwrap().port()),
                SocketAddr::V4(_) => a.local_addr().unwrap(),
            };
            if (dpeer, dconn.peer_addr().unwrap()) != (want, want) {
                bad.push(format!(
                    "a v4 client of our [::] listener: accept says {dpeer}, peer_addr {}, want {want} (std's form: {std_peer})",
                    dconn.peer_addr().unwrap()
                ));
            }
        }
        (a, b) => {
            println!("SKIP the dual-stack case: IPv6 sockets are v6-only here ({a:?}, {b:?})")
        }
    }
    Some(bad)
}

/// Expected: IPv6 TCP between ringlane and std reports every address as
/// std does: `accept`'s peer equals the client's `local_addr` and the
/// accepted stream's `peer_addr`; the `Incoming` connection's `peer_addr`
/// is the std client's address; std's `accept` sees our client's
/// `local_addr`; a v4 client of a dual-stack `[::]` listener is reported
/// in the form std's `[::]` listener reports it (v4-mapped).
///
/// Why: the accept's address is parsed from the op's inline `RawAddr`
/// (written by the kernel through a pointer into the op cell) and the
/// connect's built by `from_inet`; only refused IPv6 connects were tested.
#[test]
fn ipv6_tcp_connect_accept_and_incoming_report_the_addresses_std_reports() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, Duration::from_secs(20), ipv6_tcp_cases());
    drop(rt);
    let Some(bad) = out else { return };
    assert!(
        bad.is_empty(),
        "IPv6 TCP differs from std:\n{}",
        bad.join("\n")
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 12. Unix sockets behind the IP socket types
// ---------------------------------------------------------------------------

async fn wrong_family_cases(dir: PathBuf) -> Vec<String> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{
        SocketAddr as StdAddr, UnixDatagram, UnixListener as StdListener, UnixStream as StdStream,
    };
    let mut bad = Vec::new();
    let addr_kind = |r: io::Result<SocketAddr>| r.map_err(|e| e.kind());
    let dup = |fd: RawFd| -> OwnedFd {
        // SAFETY: F_DUPFD_CLOEXEC makes a new fd we own; the result is checked.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        assert!(new >= 0, "dup: {}", io::Error::last_os_error());
        // SAFETY: as above.
        unsafe { OwnedFd::from_raw_fd(new) }
    };

    // Unix datagram sockets: ours behind a native UdpSocket, its twin
    // behind std's UdpSocket.
    let ours_path = dir.join("ours.dgram");
    let theirs_path = dir.join("theirs.dgram");
    let ours = UdpSocket::from_std(std::net::UdpSocket::from(OwnedFd::from(
        UnixDatagram::bind(&ours_path).unwrap(),
    )));
    let theirs =
        std::net::UdpSocket::from(OwnedFd::from(UnixDatagram::bind(&theirs_path).unwrap()));
    theirs.set_read_timeout(Some(LIMIT)).unwrap();
    let (o, t) = (addr_kind(ours.local_addr()), addr_kind(theirs.local_addr()));
    if o != t {
        bad.push(format!(
            "local_addr of a Unix datagram socket: ours {o:?}, std {t:?}"
        ));
    }
    let name = format!("ringlane-adv-net3-dgram-{}", std::process::id());
    let named =
        UnixDatagram::bind_addr(&StdAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let unnamed = UnixDatagram::unbound().unwrap();
    for (what, sender) in [
        ("an abstract-named sender", &named),
        ("an unnamed sender", &unnamed),
    ] {
        for to in [&ours_path, &theirs_path] {
            sender.send_to(b"first", to).unwrap();
            sender.send_to(b"second", to).unwrap();
        }
        let (r, _) = ours.recv_from(Vec::with_capacity(16)).timeout(LIMIT).await;
        let o = r.map(|(n, _)| n).map_err(|e| e.kind());
        let t = theirs
            .recv_from(&mut [0u8; 16])
            .map(|(n, _)| n)
            .map_err(|e| e.kind());
        if o != t {
            bad.push(format!("recv_from from {what}: ours {o:?}, std {t:?}"));
        }
        // Either way the first datagram is gone: the next receive gets the second.
        let (r, buf) = ours.recv(Vec::with_capacity(16)).timeout(LIMIT).await;
        let o = r.map(|n| buf[..n].to_vec()).map_err(|e| e.kind());
        let mut b = [0u8; 16];
        let t = theirs
            .recv(&mut b)
            .map(|n| b[..n].to_vec())
            .map_err(|e| e.kind());
        if o != t {
            bad.push(format!(
                "the receive after recv_from from {what}: ours {o:?}, std {t:?}"
            ));
        }
    }
    let o = ours.send_to(b"x".to_vec(), v4(9)).await.0.map_err(errno);
    let t = theirs.send_to(b"x", v4(9)).map_err(errno);
    if o != t {
        bad.push(format!(
            "send_to an IPv4 address from a Unix datagram socket: ours {o:?}, std {t:?}"
        ));
    }

    // Unix listeners: ours behind a native TcpListener, its twin behind
    // std's TcpListener.
    let ours_l_path = dir.join("ours.sock");
    let theirs_l_path = dir.join("theirs.sock");
    let ours_l = TcpListener::from_std(std::net::TcpListener::from(OwnedFd::from(
        StdListener::bind(&ours_l_path).unwrap(),
    )));
    let theirs_l =
        std::net::TcpListener::from(OwnedFd::from(StdListener::bind(&theirs_l_path).unwrap()));
    let (o, t) = (
        addr_kind(ours_l.local_addr()),
        addr_kind(theirs_l.local_addr()),
    );
    if o != t {
        bad.push(format!(
            "local_addr of a Unix listener: ours {o:?}, std {t:?}"
        ));
    }
    let mut oc = StdStream::connect(&ours_l_path).unwrap();
    let mut tc = StdStream::connect(&theirs_l_path).unwrap();
    let o = ours_l
        .accept()
        .timeout(LIMIT)
        .await
        .map(drop)
        .map_err(|e| e.kind());
    let t = theirs_l.accept().map(drop).map_err(|e| e.kind());
    if o != t {
        bad.push(format!("accept of a Unix client: ours {o:?}, std {t:?}"));
    }
    // A connection accepted but not handed out is closed, in both.
    for c in [&oc, &tc] {
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    }
    let o = oc.read(&mut [0u8; 1]).map_err(|e| e.kind());
    let t = tc.read(&mut [0u8; 1]).map_err(|e| e.kind());
    if o != t {
        bad.push(format!(
            "the client of a refused accept reads: ours {o:?}, std {t:?}"
        ));
    }
    // Through an Incoming no address is parsed: a stream comes out, whose
    // addresses fail as std's do on the same socket.
    let mut incoming = ours_l.incoming();
    let _client = StdStream::connect(&ours_l_path).unwrap();
    match incoming.next().timeout(LIMIT).await {
        Ok(s) => {
            let twin = std::net::TcpStream::from(dup(s.as_raw_fd()));
            let o = (addr_kind(s.peer_addr()), addr_kind(s.local_addr()));
            let t = (addr_kind(twin.peer_addr()), addr_kind(twin.local_addr()));
            if o != t {
                bad.push(format!(
                    "(peer_addr, local_addr) of a Unix stream behind TcpStream: ours {o:?}, std {t:?}"
                ));
            }
        }
        Err(e) => bad.push(format!("Incoming on a Unix listener: {e}")),
    }
    drop((incoming, ours_l, theirs_l, ours, theirs, named, unnamed));
    bad
}

/// Expected: Unix sockets handed to the IP socket types through
/// `from_std` (a Unix datagram socket behind `UdpSocket`, a Unix listener
/// behind `TcpListener`, as std's `From<OwnedFd>` allows) give the results
/// std's `UdpSocket`/`TcpListener`/`TcpStream` give on a twin socket:
/// `local_addr`/`peer_addr` fail with std's error kind (`InvalidInput`,
/// "invalid argument", as Tokio through mio), `recv_from` from an
/// abstract-named and from an unnamed Unix sender fails the same way and
/// consumes the datagram the same way, `send_to` an IPv4 address gets the
/// same errno, `accept` fails the same way and closes the connection it
/// took (the client reads EOF), and a connection from `Incoming` (which
/// parses no address) reports its addresses as std does.
///
/// Why: this is the only way a Unix datagram address (abstract or
/// unnamed) reaches the native lane, and `RawAddr::parse_inet`
/// (src/native/net/addr.rs:102-122) answers an unknown family with its
/// own `InvalidData` where std and Tokio say `InvalidInput`; `accept`
/// (tcp.rs:92-95) must still close what it accepted.
#[test]
fn unix_sockets_behind_the_ip_socket_types_fail_as_std_does() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("net3-wrong-family");
    let rt = common::runtime(1);
    let bad = on_shard(
        &rt,
        0,
        Duration::from_secs(30),
        wrong_family_cases(dir.0.clone()),
    );
    drop(rt);
    drop(dir);
    assert!(
        bad.is_empty(),
        "Unix sockets behind the IP types, unlike std:\n{}",
        bad.join("\n")
    );
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
