//! The compat lane at its edges, second round, against `tokio::net`:
//! split halves blocked at once on a shard and in a Tokio task each get
//! their own wake-up; `AsyncFd` on an eventfd matches Tokio's readiness on
//! a shard and from a Tokio task; a thousand idle sockets on a two-entry
//! ring stay quiet, leave room for native ops, and all get their bytes
//! after a burst that overflows the CQ (polls it ended are re-armed); a
//! stream whose fd is replaced behind its back fails clearly and releases
//! the old socket; `send_to` hostile targets fails at once as Tokio's.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd as TokioAsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ringlane::compat::{AsyncFd, TcpListener, UdpSocket, UnixStream};

use common::LIMIT;
use common::compat_io::*;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// A send under a timeout: answered (sent or failed) or still waiting.
fn sent<E>(r: Result<io::Result<usize>, E>) -> String {
    match r {
        Err(_) => "no answer within 2 s".to_string(),
        Ok(r) => brief(r),
    }
}

/// A compat Unix stream made on shard 0 (its home) is split. (1) Its write
/// half, in a Tokio task, blocks on 4 MiB the peer does not read (a wait
/// forwarded to shard 0), while its read half, on shard 1, blocks on an
/// empty socket (a multishot poll on shard 1). The peer writes 5 bytes:
/// the reader alone must finish. The peer drains: the writer must finish,
/// bytes intact. (2) Roles swapped: the read half in a Tokio task, the
/// write half on shard 1, both blocked; the drain must finish the writer
/// alone, then 5 bytes the reader.
#[test]
fn split_halves_blocked_at_once_on_a_shard_and_in_a_tokio_task_each_get_their_own_wake_up() {
    const N: usize = 4 << 20;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_read_timeout(Some(LIMIT)).unwrap(); // a lost wake-up fails, never hangs a drain
    let a = common::join_within(
        &rt,
        h.spawn_pinned(0, async move { UnixStream::from_std(a) })
            .unwrap(),
        LIMIT,
        "making the stream on shard 0",
    )
    .unwrap();
    let (r, w) = a.into_split();
    let tokio_rt = tokio_rt();

    // (1) writer in a Tokio task, reader on shard 1.
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let writer = tokio_rt.spawn(after_first_poll(
        async move {
            let mut w = w;
            w.write_all(&pattern(N, 7)).await?;
            Ok::<_, io::Error>(w)
        },
        polled_tx,
    ));
    polled
        .recv_timeout(LIMIT)
        .expect("the Tokio writer never ran");
    let reader = h
        .spawn_pinned(1, async move {
            let mut r = r;
            let mut got = [0u8; 5];
            r.read_exact(&mut got).await?;
            Ok::<_, io::Error>((r, got))
        })
        .unwrap();
    common::until_parked(&h, 1);
    common::until_parked(&h, 0);
    assert!(!writer.is_finished(), "4 MiB fit: the writer never waited");
    b.write_all(b"hello").unwrap();
    let (r, got) = common::join_within(
        &rt,
        reader,
        LIMIT,
        "the reader on shard 1 while the write half waits in a Tokio task",
    )
    .unwrap();
    assert_eq!(&got, b"hello");
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !writer.is_finished(),
        "the writer ended although its peer never read: {:?}",
        tokio_rt.block_on(writer).map(|r| r.map(drop))
    );
    let drain = std::thread::spawn(move || {
        let mut got = vec![0u8; N];
        b.read_exact(&mut got).map(|()| (b, got))
    });
    let w = tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, writer).await })
        .expect("the Tokio writer was never woken by the drain (its wake-up was lost or taken)")
        .unwrap()
        .unwrap();
    let (mut b, got) = drain.join().unwrap().unwrap();
    assert!(
        got == pattern(N, 7),
        "the drained bytes are not what was written"
    );

    // (2) reader in a Tokio task, writer on shard 1.
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let reader = tokio_rt.spawn(after_first_poll(
        async move {
            let mut r = r;
            let mut got = [0u8; 5];
            r.read_exact(&mut got).await.map(|_| got)
        },
        polled_tx,
    ));
    polled
        .recv_timeout(LIMIT)
        .expect("the Tokio reader never ran");
    let writer = h
        .spawn_pinned(1, async move {
            let mut w = w;
            w.write_all(&pattern(N, 9)).await?;
            Ok::<_, io::Error>(w)
        })
        .unwrap();
    common::until_parked(&h, 1);
    common::until_parked(&h, 0);
    assert!(!writer.is_finished(), "4 MiB fit: the writer never waited");
    let drain = std::thread::spawn(move || {
        let mut got = vec![0u8; N];
        b.read_exact(&mut got).map(|()| (b, got))
    });
    let w = common::join_within(
        &rt,
        writer,
        LIMIT,
        "the writer on shard 1 while the read half waits in a Tokio task",
    )
    .unwrap();
    let (mut b, got) = drain.join().unwrap().unwrap();
    assert!(
        got == pattern(N, 9),
        "the drained bytes are not what was written"
    );
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !reader.is_finished(),
        "the Tokio reader ended although nothing was written to it: {:?}",
        tokio_rt.block_on(reader)
    );
    b.write_all(b"world").unwrap();
    let got = tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, reader).await })
        .expect("the Tokio reader was never woken by the peer's bytes")
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"world");
    drop(w);
}

// ---------------------------------------------------------------------------
// 7. AsyncFd on an eventfd
// ---------------------------------------------------------------------------

/// A new nonblocking eventfd (counter 0).
fn eventfd() -> std::fs::File {
    // SAFETY: plain eventfd creation; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
    // SAFETY: `fd` is new and ours; the file owns (and closes) it.
    unsafe { std::fs::File::from_raw_fd(fd) }
}

/// Adds `n` to the eventfd's counter (nonblocking).
fn efd_add(fd: RawFd, n: u64) -> io::Result<usize> {
    // SAFETY: writes the 8 bytes of a live u64.
    let r = unsafe { libc::write(fd, (&raw const n).cast(), 8) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Takes the eventfd's counter (nonblocking).
fn efd_take(file: &std::fs::File) -> io::Result<u64> {
    let mut b = [0u8; 8];
    let mut f = file;
    f.read_exact(&mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// The same eventfd steps on either `AsyncFd` type (`$fd`, already made),
/// with `$timeout` the timeout of the executor it runs on.
macro_rules! eventfd_scenario {
    ($fd:expr, $timeout:path) => {{
        let fd = $fd;
        let raw = fd.as_raw_fd();
        let short = Duration::from_millis(100);
        let long = Duration::from_secs(3);
        let mut log: Vec<String> = Vec::new();
        log.push(format!(
            "fresh (counter 0), readable within 100 ms: {}",
            state($timeout(short, fd.readable()).await)
        ));
        efd_add(raw, 1).unwrap();
        log.push(format!(
            "after a write, readable: {}",
            state($timeout(long, fd.readable()).await) // the guard drops uncleared
        ));
        log.push(format!(
            "a guard dropped uncleared leaves it readable, within 100 ms: {}",
            state($timeout(short, fd.readable()).await)
        ));
        {
            let mut guard = $timeout(long, fd.readable())
                .await
                .expect("readable")
                .unwrap();
            log.push(format!(
                "try_io read: {}",
                tried(guard.try_io(|fd| efd_take(fd.get_ref())))
            ));
            log.push(format!(
                "try_io read again: {}",
                tried(guard.try_io(|fd| efd_take(fd.get_ref())))
            ));
        }
        log.push(format!(
            "readable after that WouldBlock, within 100 ms: {}",
            state($timeout(short, fd.readable()).await)
        ));
        {
            let mut guard = $timeout(long, fd.writable())
                .await
                .expect("writable")
                .unwrap();
            log.push(format!(
                "try_io write of the counter's maximum: {}",
                tried(guard.try_io(|fd| efd_add(fd.as_raw_fd(), u64::MAX - 1)))
            ));
            log.push(format!(
                "try_io write of 1 more: {}",
                tried(guard.try_io(|fd| efd_add(fd.as_raw_fd(), 1)))
            ));
        }
        log.push(format!(
            "writable after that WouldBlock, within 100 ms: {}",
            state($timeout(short, fd.writable()).await)
        ));
        {
            let mut guard = $timeout(long, fd.readable())
                .await
                .expect("readable")
                .unwrap();
            log.push(format!(
                "try_io read of the full counter: {}",
                tried(guard.try_io(|fd| efd_take(fd.get_ref())))
            ));
        }
        log.push(format!(
            "writable once the read drained the counter: {}",
            state($timeout(long, fd.writable()).await)
        ));
        {
            let mut guard = $timeout(short, fd.readable())
                .await
                .expect("readable")
                .unwrap();
            log.push(format!(
                "readable right after the drain (not cleared yet), try_io read: {}",
                tried(guard.try_io(|fd| efd_take(fd.get_ref())))
            ));
        }
        log.push(format!(
            "readable after that WouldBlock, within 100 ms: {}",
            state($timeout(short, fd.readable()).await)
        ));
        log
    }};
}

/// `AsyncFd` on a non-socket fd, as Tokio's: an eventfd starts not
/// readable; a write makes it readable; a guard dropped without clearing
/// leaves it readable; a `WouldBlock` in `try_io` clears it; the write
/// direction blocks at the counter's maximum and becomes writable again
/// when a read drains the counter (an `EPOLLOUT`-keyed wake-up). Run on a
/// shard, and from a Tokio task on an `AsyncFd` made on a shard (its waits
/// forwarded to that shard), compared with `tokio::io::unix::AsyncFd`.
#[test]
#[allow(deprecated)] // Tokio 1.54 deprecates `AsyncFd::new`; the comparison still uses it
fn async_fd_on_an_eventfd_matches_tokio_on_a_shard_and_from_a_tokio_task() {
    let theirs = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(LIMIT, async {
                eventfd_scenario!(TokioAsyncFd::new(eventfd()).unwrap(), tokio::time::timeout)
            })
            .await
            .expect("the Tokio eventfd run did not finish")
        });
    let on_shard = on_ringlane(|| async {
        eventfd_scenario!(AsyncFd::new(eventfd()).unwrap(), ringlane::time::timeout)
    });
    assert_eq!(
        on_shard, theirs,
        "ringlane's AsyncFd on a shard differs from Tokio's"
    );

    let rt = common::runtime(1);
    let fd = common::join_within(
        &rt,
        rt.handle()
            .spawn_pinned(0, async { AsyncFd::new(eventfd()) })
            .unwrap(),
        LIMIT,
        "making the AsyncFd on shard 0",
    )
    .unwrap();
    let from_tokio = tokio_rt().block_on(async move {
        tokio::time::timeout(
            LIMIT,
            async move { eventfd_scenario!(fd, tokio::time::timeout) },
        )
        .await
        .expect("the ringlane AsyncFd polled from a Tokio task did not finish")
    });
    assert_eq!(
        from_tokio, theirs,
        "ringlane's AsyncFd polled from a Tokio task (forwarded waits) differs from Tokio's"
    );
}

// ---------------------------------------------------------------------------
// 8. a thousand idle sockets on a tiny ring
// ---------------------------------------------------------------------------

/// 1024 compat Unix streams on shard 0 of a ring with 2 SQ entries, each
/// read by its own task, one byte at a time, twice. All idle: the shard
/// must park and stay asleep. One becomes readable: its reader (only) must
/// get the byte, and a native op must still find a slot. Then a byte to
/// all 1024 at once (the CQ overflows: the kernel ends multishot polls,
/// which must be re-armed through the 2-entry SQ for the next byte), then
/// a third byte to the 1023 that still read: every reader must get every
/// byte.
#[test]
fn a_thousand_idle_sockets_on_a_two_entry_ring_then_one_then_all_become_readable() {
    const N: usize = 1024;
    const ONE: usize = 777;
    let rt = common::runtime_with_room_for_two_ops();
    let h = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel::<(usize, u8)>();
    let setup = h
        .spawn_local_on(0, move || async move {
            let mut peers = Vec::with_capacity(N);
            let mut readers = Vec::with_capacity(N);
            for i in 0..N {
                let (a, b) = std::os::unix::net::UnixStream::pair()?;
                let mut a = UnixStream::from_std(a)?;
                let tx = tx.clone();
                readers.push(ringlane::spawn_local(async move {
                    for _ in 0..2 {
                        let mut byte = [0u8; 1];
                        a.read_exact(&mut byte).await?;
                        let _ = tx.send((i, byte[0]));
                    }
                    Ok::<_, io::Error>(())
                })?);
                peers.push(b);
            }
            Ok::<_, io::Error>((peers, readers))
        })
        .unwrap();
    let (mut peers, readers) =
        common::join_within(&rt, setup, LIMIT, "making 1024 idle readers").unwrap();
    assert_quiet(&h, 0, "1024 idle compat readers on a two-entry ring");

    peers[ONE].write_all(&[1]).unwrap();
    let first = rx.recv_timeout(Duration::from_secs(5));
    assert_eq!(
        first,
        Ok((ONE, 1)),
        "one socket of 1024 idle ones became readable: its reader must get the byte"
    );
    let native = h
        .spawn_pinned(0, async {
            ringlane::time::timeout(Duration::from_secs(5), async {
                let f = ringlane::native::fs::File::open("/proc/self/stat").await?;
                f.read_at(vec![0u8; 8], 0).await.0
            })
            .await
        })
        .unwrap();
    let n = common::join_within(&rt, native, LIMIT, "a native op beside 1024 idle polls")
        .expect("an open and a read found no room beside 1024 idle polls");
    assert_eq!(n.unwrap(), 8);

    for p in peers.iter_mut() {
        p.write_all(&[2]).unwrap();
    }
    let mut got = vec![Vec::new(); N];
    for k in 0..N {
        let (i, byte) = rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
            panic!("after a burst to all 1024, only {k} readers got their byte")
        });
        got[i].push(byte);
    }
    for (i, p) in peers.iter_mut().enumerate() {
        if i != ONE {
            p.write_all(&[3]).unwrap();
        }
    }
    for k in 0..N - 1 {
        let (i, byte) = rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
            panic!("the second byte reached only {k} of 1023 readers (a poll ended by the burst was not re-armed?)")
        });
        got[i].push(byte);
    }
    for (i, bytes) in got.iter().enumerate() {
        // ONE's first byte was checked on its own above.
        let want: &[u8] = if i == ONE { &[2] } else { &[2, 3] };
        assert_eq!(bytes.as_slice(), want, "reader {i}");
    }
    for r in readers {
        common::join_within(&rt, r, LIMIT, "a reader").unwrap();
    }
}

// ---------------------------------------------------------------------------
// 9. an fd replaced behind the stream's back
// ---------------------------------------------------------------------------

/// A compat stream waits for a read (its poll holds the socket); then its
/// fd number is made to point at /dev/null (`dup2`), as a buggy library
/// closing fds behind its back would. The peer writes: the poll fires, and
/// the read must end with a clear error (the syscall now hits /dev/null),
/// not hang and not return foreign data. Dropping the stream must then
/// cancel its poll, whose reference is the old socket's last: the peer
/// must see that socket closed, not an endless wait (a leaked socket).
#[test]
fn a_stream_whose_fd_is_replaced_behind_its_back_fails_clearly_and_releases_the_old_socket() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let raw = mine.as_raw_fd();
    let reader = h
        .spawn_pinned(0, async move {
            let mut s = UnixStream::from_std(mine)?;
            let mut buf = [0u8; 8];
            let r = s.read(&mut buf).await;
            drop(s); // closes `raw`: by then the /dev/null duplicate
            r.map(|n| buf[..n].to_vec())
        })
        .unwrap();
    common::until_parked(&h, 0); // the read waits on an armed poll
    assert!(
        !reader.is_finished(),
        "nothing was written: the read must wait"
    );
    let devnull = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: `raw` is the stream's fd; replacing it is the scenario. Both
    // fds are open; dup2 closes the socket's fd number atomically.
    assert_eq!(unsafe { libc::dup2(devnull.as_raw_fd(), raw) }, raw);
    drop(devnull);
    peer.write_all(b"x").unwrap();
    let r = common::join_within(
        &rt,
        reader,
        Duration::from_secs(5),
        "a read whose fd was replaced behind its back",
    );
    assert!(
        r.is_err(),
        "a read whose fd now names /dev/null returned {r:?} instead of an error"
    );
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let closed = peer.read(&mut [0u8; 1]);
    assert!(
        matches!(&closed, Ok(0))
            || matches!(&closed, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
        "the old socket stayed open after its stream was dropped (its poll was never cancelled?): {closed:?}"
    );
}

// ---------------------------------------------------------------------------
// 10. UDP sends to hostile targets
// ---------------------------------------------------------------------------

/// The same UDP steps on either `UdpSocket` type (`$sock`, bound on
/// localhost), with `$timeout` the timeout of the executor it runs on.
macro_rules! udp_send_scenario {
    ($sock:expr, $timeout:path) => {{
        let s = $sock;
        let mut log: Vec<String> = Vec::new();
        let targets: [(&str, &str); 4] = [
            (
                "the broadcast address without SO_BROADCAST",
                "255.255.255.255:9",
            ),
            ("port 0", "127.0.0.1:0"),
            ("an IPv6 address from an IPv4 socket", "[::1]:9"),
            (
                "TEST-NET-1 (unroutable, or sent into the void)",
                "192.0.2.1:9",
            ),
        ];
        for (what, to) in targets {
            let to: SocketAddr = to.parse().unwrap();
            let r = $timeout(Duration::from_secs(2), s.send_to(b"x", to)).await;
            log.push(format!("send_to {what}: {}", sent(r)));
        }
        let big = vec![0u8; 70_000];
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let r = $timeout(Duration::from_secs(2), s.send_to(&big, to)).await;
        log.push(format!("send_to of a 70,000-byte datagram: {}", sent(r)));
        // Still usable: a datagram to itself, received truncated.
        let me = s.local_addr().unwrap();
        let r = $timeout(Duration::from_secs(2), s.send_to(b"ok", me)).await;
        log.push(format!("send_to itself: {}", sent(r)));
        let mut one = [0u8; 1];
        let r = $timeout(Duration::from_secs(2), s.recv_from(&mut one)).await;
        log.push(format!(
            "recv_from into 1 byte: {}",
            match r {
                Err(_) => "no answer within 2 s".to_string(),
                Ok(r) => brief(r.map(|(n, from)| (n, one, from == me))),
            }
        ));
        log
    }};
}

/// `send_to` never waits on a target the kernel refuses or cannot route:
/// each attempt answers at once with Tokio's result, and the socket keeps
/// working afterwards.
#[test]
fn udp_send_to_hostile_targets_fails_at_once_as_on_tokio() {
    let theirs = on_tokio(async {
        udp_send_scenario!(
            tokio::net::UdpSocket::bind(localhost()).await.unwrap(),
            tokio::time::timeout
        )
    });
    let ours = on_ringlane(|| async {
        udp_send_scenario!(
            UdpSocket::bind(localhost()).await.unwrap(),
            ringlane::time::timeout
        )
    });
    assert_eq!(
        ours, theirs,
        "the compat UdpSocket differs from tokio::net's"
    );
}

/// ADR 0019: `rt.block_on(async { .. })` enters the runtime as Tokio's does,
/// so that a `#[tokio::main]` service ports to it. The first thing such a
/// `main` does is bind a listener and accept. Here the accept waits (the
/// client connects 100 ms later), then the connection is echoed, all inside
/// `block_on`. Tokio serves this. Before the fix the socket made inside
/// `block_on` had no home shard and its first wait failed; it now takes a
/// shard of the entered runtime, where its waits are forwarded.
#[test]
fn a_listener_accepting_inside_block_on_serves_its_client_as_on_tokio() {
    let rt = common::runtime(1);
    let out = rt.block_on(ringlane::time::timeout(Duration::from_secs(5), async {
        let listener = TcpListener::bind(localhost()).await?;
        let addr = listener.local_addr()?;
        let client = std::thread::spawn(move || -> io::Result<[u8; 4]> {
            std::thread::sleep(Duration::from_millis(100)); // the accept waits first
            let mut c = std::net::TcpStream::connect(addr)?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.write_all(b"ping")?;
            let mut back = [0u8; 4];
            c.read_exact(&mut back)?;
            Ok(back)
        });
        let (mut conn, _) = listener.accept().await?;
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await?;
        conn.write_all(&buf).await?;
        client.join().expect("the client thread panicked")
    }));
    match out {
        Err(_) => panic!("the accept/echo inside Runtime::block_on hung for 5 s"),
        Ok(Err(e)) => panic!(
            "a compat listener used inside Runtime::block_on (the runtime is entered, as in \
             Tokio) failed: `{e}`; Tokio's block_on serves this"
        ),
        Ok(Ok(back)) => assert_eq!(&back, b"ping"),
    }
}
