//! Tokio code ported to the compat lane: `connect` inside `block_on` (off
//! the shards, as Tokio's works anywhere in its runtime), `AsFd` for the
//! socket-option crates, and `TryFrom` the std types.

mod common;

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ringlane::compat::{AsyncFd, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

use common::LIMIT;
use common::compat_io::localhost;
use common::native_io::TempDir;

/// Expected (Tokio): `TcpStream::connect` and `UnixStream::connect` inside
/// `Runtime::block_on` connect, and the streams carry bytes both ways.
///
/// Why it may fail: the connects ran their io_uring ops where they were
/// called, and off a shard an op fails ("native ring ops run on a
/// ringlane shard"): code ported from `#[tokio::main]` to `block_on`
/// compiled and then failed at its first connect.
#[test]
fn connects_inside_block_on_connect_as_on_tokio() {
    let rt = common::runtime(2);
    let dir = TempDir::new("compat-connect-block-on");
    let path = dir.0.join("s.sock");
    let out = rt.block_on(ringlane::time::timeout(Duration::from_secs(10), async {
        let listener = TcpListener::bind(localhost()).await?;
        let mut tcp = TcpStream::connect(listener.local_addr()?).await?;
        let (mut conn, _) = listener.accept().await?;
        tcp.write_all(b"tcp?").await?;
        let mut got = [0u8; 4];
        conn.read_exact(&mut got).await?;
        conn.write_all(b"tcp!").await?;
        tcp.read_exact(&mut got).await?;
        assert_eq!(&got, b"tcp!");

        let unix_listener = UnixListener::bind(&path)?;
        let mut unix = UnixStream::connect(&path).await?;
        let (mut conn, _) = unix_listener.accept().await?;
        unix.write_all(b"unix").await?;
        conn.read_exact(&mut got).await?;
        io::Result::Ok(got)
    }));
    assert_eq!(&out.expect("hung").expect("failed"), b"unix");
}

/// Expected (Tokio): a connect with no runtime current fails with an
/// error, not a panic or a hang.
#[test]
fn a_connect_with_no_runtime_is_an_error() {
    let listener = std::net::TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let r = tokio.block_on(TcpStream::connect(addr));
    assert_eq!(r.map(drop).unwrap_err().kind(), io::ErrorKind::Other);
}

/// `SO_TYPE` of the socket behind `s`, through `AsFd` alone (as
/// `socket2::SockRef::from` takes it).
fn sock_type(s: &impl AsFd) -> i32 {
    let mut t: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `t`.
    let r = unsafe {
        libc::getsockopt(
            s.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&raw mut t).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "SO_TYPE: {}", io::Error::last_os_error());
    t
}

/// Is `fd` in nonblocking mode?
fn nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only reads the fd's flags.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    flags & libc::O_NONBLOCK != 0
}

/// Expected (Tokio): every socket type lends its fd through `AsFd` (the
/// same fd as `AsRawFd`), and converts from its std type with `TryFrom`,
/// switched to nonblocking mode.
#[test]
fn sockets_lend_their_fd_and_convert_from_std() {
    let dir = TempDir::new("compat-fd-traits");
    let path = dir.0.join("l.sock");
    let std_listener = std::net::TcpListener::bind(localhost()).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let std_stream = std::net::TcpStream::connect(addr).unwrap();
    let listener = TcpListener::try_from(std_listener).unwrap();
    let stream = TcpStream::try_from(std_stream).unwrap();
    let udp = UdpSocket::try_from(std::net::UdpSocket::bind(localhost()).unwrap()).unwrap();
    let unix = UnixStream::try_from(std::os::unix::net::UnixStream::pair().unwrap().0).unwrap();
    let unix_listener =
        UnixListener::try_from(std::os::unix::net::UnixListener::bind(&path).unwrap()).unwrap();
    let fd = AsyncFd::new(std::os::unix::net::UnixStream::pair().unwrap().0).unwrap();
    assert_eq!(sock_type(&listener), libc::SOCK_STREAM);
    assert_eq!(sock_type(&stream), libc::SOCK_STREAM);
    assert_eq!(sock_type(&udp), libc::SOCK_DGRAM);
    assert_eq!(sock_type(&unix), libc::SOCK_STREAM);
    assert_eq!(sock_type(&unix_listener), libc::SOCK_STREAM);
    assert_eq!(sock_type(&fd), libc::SOCK_STREAM);
    assert_eq!(listener.as_fd().as_raw_fd(), listener.as_raw_fd());
    assert_eq!(unix_listener.as_fd().as_raw_fd(), unix_listener.as_raw_fd());
    for is_nonblocking in [
        nonblocking(&listener),
        nonblocking(&stream),
        nonblocking(&udp),
        nonblocking(&unix),
        nonblocking(&unix_listener),
    ] {
        assert!(is_nonblocking, "a converted socket left blocking");
    }
}

/// Expected (Tokio, whose epoll refuses them): `AsyncFd::new` fails with
/// `EPERM` for a regular file, a directory and `/dev/null` (a device with
/// no poll), and takes a pipe and a socket, as Tokio's `AsyncFd` on the
/// same kinds of fd; `try_new` gives the object back.
///
/// Why it may fail: ringlane's took any fd, and a poll reports a regular
/// file ready forever: code that falls back to blocking reads on `EPERM`
/// (stdin redirected from a file) spun instead.
#[test]
fn async_fd_takes_and_refuses_the_fds_tokios_does() {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    type Make = fn() -> std::os::fd::OwnedFd;
    let kinds: Vec<(&str, Make)> = vec![
        ("regular file", || {
            std::fs::File::open("/proc/self/stat").unwrap().into()
        }),
        ("directory", || std::fs::File::open("/").unwrap().into()),
        ("pipe", || common::pipe().0),
        ("socket", || {
            std::os::unix::net::UnixStream::pair().unwrap().0.into()
        }),
        ("character device", || {
            std::fs::File::open("/dev/null").unwrap().into()
        }),
    ];
    for (what, make) in kinds {
        let ours = AsyncFd::new(make()).map(drop).map_err(|e| e.raw_os_error());
        let theirs = tokio.block_on(async {
            // SAFETY: the `OwnedFd` keeps its fd open, unchanged, for as
            // long as the registration lives.
            unsafe { tokio::io::unix::AsyncFd::register(make()) }
                .map(drop)
                .map_err(|e| io::Error::from(e).raw_os_error())
        });
        assert_eq!(ours, theirs, "{what}");
        let refused = ["regular file", "directory", "character device"].contains(&what);
        let expected = if refused {
            Err(Some(libc::EPERM))
        } else {
            Ok(())
        };
        assert_eq!(ours, expected, "{what}");
    }
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    // SAFETY: the `File` owns its fd for as long as it is registered.
    let (back, e) = unsafe { AsyncFd::register(file) }.unwrap_err().into_parts();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(back.metadata().unwrap().is_file(), "the file came back");
}

/// Sockets of this machine connecting to 127.0.0.1:`port`, still in
/// `SYN_SENT` (`/proc/net/tcp` state 02).
fn syn_sent_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[2].ends_with(&remote) && cols[3] == "02"
        })
        .count()
}

/// Expected (Tokio closes its socket when the connect future is dropped):
/// a connect inside `block_on` (run on a shard for it) cancelled by a
/// timeout leaves no connection attempt behind.
///
/// Why it may fail: the shard's connect task was detached, not aborted,
/// so its socket went on sending SYNs for minutes, holding an fd, and a
/// late answer opened a connection nobody would use.
#[test]
fn a_cancelled_connect_inside_block_on_stops_its_attempt() {
    // A listener whose accept queue (backlog 0: one connection) is full:
    // the kernel drops further SYNs, so a connect stays in SYN_SENT.
    let socket = ringlane::compat::TcpSocket::new_v4().unwrap();
    socket.bind(localhost()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let _queued: Vec<std::net::TcpStream> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    let rt = common::runtime(1);
    rt.block_on(async {
        let mut connect = std::pin::pin!(TcpStream::connect(addr));
        let deadline = std::time::Instant::now() + LIMIT;
        // Polled until its attempt is seen in SYN_SENT, then dropped.
        loop {
            let polled = ringlane::time::timeout(Duration::from_millis(5), connect.as_mut()).await;
            assert!(polled.is_err(), "the connect was meant to hang: {polled:?}");
            if syn_sent_to(addr.port()) > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the attempt never started"
            );
        }
    });
    common::wait_until("the cancelled connect's socket closed", || {
        syn_sent_to(addr.port()) == 0
    });
    drop(listener);
}

/// Expected (Tokio): `peer_cred` of an accepted connection names the
/// connecting process, as Tokio's on the same kind of connection; the
/// std conversions give the socket back, still nonblocking.
#[test]
fn peer_credentials_and_std_conversions_match_tokios() {
    let dir = TempDir::new("compat-peer-cred");
    let path = dir.0.join("s.sock");
    let rt = common::runtime(1);
    let p = path.clone();
    let (ours, back) = rt
        .block_on(async move {
            let listener = UnixListener::bind(&p)?;
            let client = UnixStream::connect(&p).await?;
            let (conn, _) = listener.accept().await?;
            let cred = conn.peer_cred()?;
            io::Result::Ok((
                (cred.uid(), cred.gid(), cred.pid()),
                (client.into_std()?, listener.into_std()?),
            ))
        })
        .unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tpath = dir.0.join("t.sock");
    let theirs = tokio
        .block_on(async move {
            let listener = tokio::net::UnixListener::bind(&tpath)?;
            let _client = tokio::net::UnixStream::connect(&tpath).await?;
            let (conn, _) = listener.accept().await?;
            let cred = conn.peer_cred()?;
            io::Result::Ok((cred.uid(), cred.gid(), cred.pid()))
        })
        .unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(ours.2, Some(std::process::id() as i32));
    let (stream, listener) = back;
    assert!(nonblocking(&stream) && nonblocking(&listener));
    assert!(stream.peer_addr().unwrap().as_pathname() == Some(path.as_path()));
}

/// Expected (Tokio): `AsyncFd::with_interest(timerfd, READABLE)` (and its
/// `try_`/`register_` forms) wraps an fd for one direction; the read wait
/// answers when the timer fires, also when asked for both directions
/// (`ready(READABLE | WRITABLE)`), and its guard says `READABLE`. Beyond Tokio (whose wait on a direction never
/// registered would never see it ready): that wait fails at once with
/// `InvalidInput`, and `PRIORITY`/`ERROR` interests are refused clearly.
///
/// Why it may fail: ported code calling `with_interest` did not compile.
#[test]
fn async_fd_with_interest_waits_on_the_registered_direction_only() {
    use tokio::io::Interest;
    let rt = common::runtime(1);
    let out = rt
        .handle()
        .spawn_pinned(0, async {
            // SAFETY: plain syscalls creating and arming a timerfd we own.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            assert!(raw >= 0, "timerfd_create: {}", io::Error::last_os_error());
            // SAFETY: `raw` is a fresh fd owned by nothing else.
            let timer =
                unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 20_000_000,
                },
            };
            let started = std::time::Instant::now();
            // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
            let armed = unsafe { libc::timerfd_settime(raw, 0, &spec, std::ptr::null_mut()) };
            assert_eq!(armed, 0);
            let fd = AsyncFd::with_interest(timer, Interest::READABLE)?;
            let writable = fd.writable().await.map(|_| ()).unwrap_err().kind();
            // Both directions asked: the registered one is waited on.
            let both = Interest::READABLE | Interest::WRITABLE;
            let ready = fd.ready(both).await?.ready();
            let waited = started.elapsed();
            let mut ticks = [0u8; 8];
            let read = fd.try_io(Interest::READABLE, |t| {
                // SAFETY: `ticks` is valid for writes of 8 bytes.
                match unsafe { libc::read(t.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) } {
                    8 => Ok(u64::from_ne_bytes(ticks)),
                    _ => Err(io::Error::last_os_error()),
                }
            })?;
            Ok::<_, io::Error>((writable, ready, waited, read))
        })
        .unwrap();
    let (writable, ready, waited, read) =
        common::join_within(&rt, out, LIMIT, "the timerfd's wait").unwrap();
    assert_eq!(
        writable,
        io::ErrorKind::InvalidInput,
        "a wait on a direction not registered"
    );
    assert!(ready.is_readable() && !ready.is_writable(), "{ready:?}");
    assert!(
        waited >= Duration::from_millis(10),
        "answered before the timer fired: {waited:?}"
    );
    assert_eq!(read, 1, "one expiry");
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    for refused in [Interest::PRIORITY, Interest::ERROR] {
        let (back, e) = AsyncFd::try_with_interest(a.try_clone().unwrap(), refused)
            .unwrap_err()
            .into_parts();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        drop(back);
    }
    // SAFETY: `a` owns its fd for as long as the `AsyncFd` lives.
    let registered = unsafe { AsyncFd::register_with_interest(a, Interest::WRITABLE) };
    assert!(registered.is_ok());
}
