//! The native lane's sockets and per-op timeouts: round trips over TCP,
//! UDP and Unix sockets, cancellation (a dropped receive, an accept whose
//! connection arrives after the cancel was requested), kernel timeouts that
//! give the buffer back, bad input, and fd counts before and after.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use ringlane::native::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use ringlane::native::{NativeTimeoutExt, timeout};

/// fd counts are process-wide: tests here run one at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// 1,000 echoes of 256 B between a server on shard 0 and a client on shard
/// `client_shard`; every byte checked.
fn echo(shards: usize, client_shard: usize) {
    let rt = common::runtime(shards);
    let h = rt.handle();
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = h
        .spawn_pinned(0, async move {
            let (conn, _) = listener.accept().await?;
            conn.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(256);
            loop {
                buf.clear();
                let (n, b) = conn.read(buf).await;
                if n? == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                let (r, b) = conn.write_all(b).await;
                r?;
                buf = b;
            }
        })
        .unwrap();
    let client = h
        .spawn_pinned(client_shard, async move {
            let s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(256);
            for i in 0..1_000u32 {
                let msg: Vec<u8> = (0..256u32).map(|j| (i * 7 + j) as u8).collect();
                let (r, m) = s.write_all(msg).await;
                r?;
                let mut got = 0;
                while got < 256 {
                    buf.clear();
                    let (n, b) = s.read(buf).await;
                    let n = n?;
                    assert!(n > 0, "server closed early");
                    assert_eq!(b[..n], m[got..got + n], "echo {i} corrupted");
                    got += n;
                    buf = b;
                }
            }
            s.shutdown(Shutdown::Write).await?;
            s.close().await
        })
        .unwrap();
    rt.block_on(client).unwrap().unwrap();
    rt.block_on(server).unwrap().unwrap();
}

#[test]
fn tcp_echo_round_trips_on_one_shard_and_across_two() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    echo(1, 0);
    echo(2, 1);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

#[test]
fn udp_and_unix_round_trips() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let dir = std::env::temp_dir().join(format!("ringlane-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let rt = common::runtime(1);
    let p = path.clone();
    let (udp, unix) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let a = UdpSocket::bind(localhost())?;
                    let b = UdpSocket::bind(localhost())?;
                    for i in 0..100u8 {
                        a.send_to(vec![i; 100 + i as usize], b.local_addr()?)
                            .await
                            .0?;
                    }
                    let mut sizes = Vec::new();
                    for i in 0..100u8 {
                        let (r, buf) = b.recv_from(Vec::with_capacity(512)).await;
                        let (n, from) = r?;
                        assert_eq!(from, a.local_addr()?);
                        assert!(buf[..n].iter().all(|&x| x == i), "datagram {i} corrupted");
                        sizes.push(n);
                    }
                    let l = UnixListener::bind(&p)?;
                    let c = ringlane::spawn_local(async move {
                        let s = UnixStream::connect(&p).await?;
                        s.write_all(vec![5u8; 100_000]).await.0?;
                        s.close().await
                    })?;
                    let conn = l.accept().await?;
                    let mut total = 0;
                    loop {
                        let (n, buf) = conn.read(Vec::with_capacity(8192)).await;
                        let n = n?;
                        if n == 0 {
                            break;
                        }
                        assert!(buf[..n].iter().all(|&x| x == 5));
                        total += n;
                    }
                    c.await.unwrap()?;
                    Ok::<_, std::io::Error>((sizes, total))
                })
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(udp, (0..100).map(|i| 100 + i).collect::<Vec<_>>());
    assert_eq!(unix, 100_000);
    drop(rt);
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

#[test]
fn dropped_recv_in_flight_does_not_swallow_the_next_bytes() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let (a, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = std::sync::Arc::new(UnixStream::from_std(a));
    let a2 = a.clone();
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let stuck = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut read = Box::pin(a2.read(vec![0u8; 64]));
            std::future::poll_fn(|cx| {
                let p = read.as_mut().poll(cx);
                let _ = polled_tx.send(()); // the recv is in flight (or done)
                p
            })
            .await
            .0
        })
        .unwrap();
    polled
        .recv_timeout(Duration::from_secs(10))
        .expect("the recv was never polled");
    stuck.abort();
    assert!(rt.block_on(stuck).unwrap_err().is_cancelled());
    // Written through the ring by a task spawned after the abort: its SQE
    // follows the cancel's (FIFO mailbox, in-order SQEs).
    let peer = UnixStream::from_std(peer);
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    peer.write_all(b"after".to_vec()).await.0.unwrap();
                    let (n, buf) = a.read(vec![0u8; 64]).timeout(Duration::from_secs(10)).await;
                    (
                        buf[..n.expect("the next read never completed")].to_vec(),
                        peer,
                    )
                })
                .unwrap(),
        )
        .unwrap();
    let (got, peer) = got;
    assert_eq!(got, b"after");
    drop((rt, peer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// The connection is already queued when the accept is submitted, so the
/// kernel accepts it inline, before the cancel queued behind it: the
/// accepted fd arrives for a dropped future and must be closed by the
/// runtime. The client sees EOF (its connection was accepted and closed),
/// and the fd count is unchanged.
#[test]
fn cancelled_accept_closes_the_late_fd() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let listener = TcpListener::bind(localhost()).unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let listener = std::sync::Arc::new(listener);
    let l2 = listener.clone();
    let second = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let mut accept = Box::pin(l2.accept());
                    // Poll once: the SQE is queued; then drop it (cancel).
                    let first = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(accept.as_mut().poll(cx).is_pending())
                    })
                    .await;
                    assert!(first, "accept completed on its first poll");
                    drop(accept);
                    // The backlog is empty now: a second accept waits.
                    timeout(Duration::from_millis(50), l2.accept())
                        .await
                        .map(drop)
                        .unwrap_err()
                        .kind()
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        second,
        ErrorKind::TimedOut,
        "the connection was not consumed"
    );
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        client.read(&mut byte).unwrap(),
        0,
        "the late fd was not closed"
    );
    drop((rt, client, listener));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

use std::future::Future;

#[test]
fn per_op_timeout_returns_timed_out_with_the_buffer_and_loses_no_bytes() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let (a, peer) = UnixStream::pair().unwrap();
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let start = Instant::now();
                    let (r, buf) = a
                        .read(Vec::with_capacity(100))
                        .timeout(Duration::from_millis(30))
                        .await;
                    let waited = start.elapsed();
                    assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
                    assert_eq!(buf.capacity(), 100, "the buffer came back");
                    assert!(
                        waited >= Duration::from_millis(30),
                        "fired early: {waited:?}"
                    );
                    assert!(waited < Duration::from_secs(5), "fired late: {waited:?}");
                    // An op that finishes in time is unaffected, and the
                    // timed-out read swallowed nothing.
                    peer.write_all(b"still here".to_vec()).await.0?;
                    let (n, buf) = a
                        .read(Vec::with_capacity(100))
                        .timeout(Duration::from_secs(5))
                        .await;
                    // A deadline already past fails before submission.
                    let late = timeout(Duration::ZERO, a.read(vec![0u8; 4])).await.0;
                    assert_eq!(late.unwrap_err().kind(), ErrorKind::TimedOut);
                    Ok::<_, std::io::Error>(buf[..n?].to_vec())
                })
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(got, b"still here");
}

#[test]
fn socket_bad_input_gets_a_clear_io_error_not_a_panic() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let refused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kinds = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let refused = TcpStream::connect(refused_port).await.unwrap_err().kind();
                    let long = "x".repeat(300);
                    let path = UnixStream::connect(&long).await.unwrap_err().kind();
                    let (a, b) = UnixStream::pair().unwrap();
                    let zero_read = a.read(Vec::new()).await.0.unwrap_err().kind();
                    let zero_write = a.write(Vec::new()).await.0.unwrap_err().kind();
                    drop(b);
                    // No SIGPIPE: the process survives and gets EPIPE.
                    let broken = a.write(vec![1u8; 10]).await.0.unwrap_err().kind();
                    let l = TcpListener::bind(localhost()).unwrap();
                    let s = TcpStream::from_std(
                        std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap(),
                    );
                    s.shutdown(Shutdown::Both).await.unwrap();
                    let after_shutdown = s.write(vec![1u8; 10]).await.0.unwrap_err().kind();
                    vec![refused, path, zero_read, zero_write, broken, after_shutdown]
                })
                .unwrap(),
        )
        .unwrap();
    use ErrorKind::*;
    assert_eq!(
        kinds,
        vec![
            ConnectionRefused,
            InvalidInput,
            InvalidInput,
            InvalidInput,
            BrokenPipe,
            BrokenPipe
        ]
    );
}

/// An op's home is the shard that submitted it; a task stolen (or a future
/// moved) to another shard still observes the completion there. Here the
/// receive is submitted on shard 0 and its future is then awaited by a
/// task on shard 1.
#[test]
fn an_op_moved_to_another_shard_mid_flight_completes_there() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let h = rt.handle();
    let (a, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = std::sync::Arc::new(UnixStream::from_std(a));
    let fut = rt
        .block_on(
            h.spawn_pinned(0, async move {
                let a2 = a.clone();
                let mut f = Box::pin(async move { a2.read(vec![0u8; 16]).await });
                let pending = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(f.as_mut().poll(cx).is_pending())
                })
                .await;
                assert!(pending);
                Some(f) // handed over as a value, to be awaited elsewhere
            })
            .unwrap(),
        )
        .unwrap()
        .unwrap();
    let on_other = h
        .spawn_pinned(1, async move {
            let (n, buf) = fut.await;
            (ringlane::current_shard(), buf[..n.unwrap()].to_vec())
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    (&peer).write_all(b"moved").unwrap();
    let (shard, got) = common::join_within(&rt, on_other, Duration::from_secs(10), "the stolen op");
    assert_eq!((shard, got.as_slice()), (Some(1), &b"moved"[..]));
}

/// The accept completes (its CQE is reaped) but the future is dropped
/// without being polled again: the fd it produced is closed on drop.
#[test]
fn accept_completed_but_dropped_before_re_poll_closes_its_fd() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let listener = std::sync::Arc::new(TcpListener::bind(localhost()).unwrap());
    let addr = listener.local_addr().unwrap();
    let l2 = listener.clone();
    let mut client = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let mut accept = Box::pin(l2.accept());
                    let pending = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(accept.as_mut().poll(cx).is_pending())
                    })
                    .await;
                    assert!(pending);
                    let client = std::net::TcpStream::connect(addr).unwrap();
                    // The shard reaps the accept's CQE while this task sleeps.
                    ringlane::time::sleep(Duration::from_millis(30)).await;
                    drop(accept);
                    client
                })
                .unwrap(),
        )
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        client.read(&mut [0u8; 1]).unwrap(),
        0,
        "the accepted fd leaked"
    );
    drop((rt, client, listener));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
