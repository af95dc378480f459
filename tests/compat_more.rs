//! The compat lane's readiness engine under sharing: several tasks waiting
//! on one direction, waits forwarded from Tokio tasks (accepted sockets
//! inherit their listener's home shard), and a runtime shutting down under
//! a forwarded wait.

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ringlane::compat::{TcpListener, TcpStream, UdpSocket};

/// Two tasks wait on the same direction of one socket; each datagram must
/// wake a waiter, and both must finish (one armed poll, a list of wakers).
#[test]
fn two_tasks_waiting_on_one_socket_direction_are_both_woken() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (sock, addr) = rt
        .block_on(
            h.spawn_pinned(0, async {
                let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let a = s.local_addr().unwrap();
                (Arc::new(s), a)
            })
            .unwrap(),
        )
        .unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|i| {
            let s = sock.clone();
            h.spawn_pinned(i, async move {
                let mut buf = [0u8; 8];
                s.recv_from(&mut buf).await.map(|(n, _)| buf[..n].to_vec())
            })
            .unwrap()
        })
        .collect();
    common::until_parked(&h, 0); // both wait
    common::until_parked(&h, 1);
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"one", addr).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    sender.send_to(b"two", addr).unwrap();
    let mut got: Vec<Vec<u8>> = waiters
        .into_iter()
        .map(|w| {
            rt.block_on(ringlane::time::timeout(Duration::from_secs(5), w))
                .expect("a waiter on a shared direction was never woken")
                .unwrap()
                .unwrap()
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
}

/// A listener made on a shard, driven entirely from Tokio tasks: its
/// accept waits and the accepted stream's waits are forwarded to the
/// listener's home shard.
#[test]
fn a_listener_made_on_a_shard_serves_from_tokio_tasks() {
    let rt = common::runtime(1);
    let listener = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async { TcpListener::bind("127.0.0.1:0").await.unwrap() })
                .unwrap(),
        )
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    let echoed = tokio_rt.block_on(async move {
        let exchange = async move {
            let server = tokio::spawn(async move {
                let (mut conn, _) = listener.accept().await.unwrap(); // waits (forwarded)
                let mut buf = [0u8; 5];
                conn.read_exact(&mut buf).await.unwrap(); // waits (inherited home)
                conn.write_all(&buf).await.unwrap();
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            client.write_all(b"hello").await.unwrap();
            let mut back = [0u8; 5];
            client.read_exact(&mut back).await.unwrap();
            server.await.unwrap();
            back
        };
        tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .expect("a forwarded wait was never woken")
    });
    assert_eq!(&echoed, b"hello");
}

/// A Tokio task waits (forwarded) on a compat stream when the runtime that
/// armed the wait shuts down: it gets an error, it does not hang.
#[test]
fn a_forwarded_wait_fails_when_its_runtime_shuts_down() {
    let rt = common::runtime(1);
    let (a, _b) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async {
                    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let c =
                        ringlane::spawn_local(TcpStream::connect(l.local_addr().unwrap())).unwrap();
                    let (s, _) = l.accept().await.unwrap();
                    (s, c.await.unwrap().unwrap())
                })
                .unwrap(),
        )
        .unwrap();
    let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    let reader = tokio_rt.spawn(async move {
        let mut a = a;
        let mut buf = [0u8; 1];
        a.read(&mut buf).await
    });
    std::thread::sleep(Duration::from_millis(30)); // the wait is forwarded
    drop(rt); // shuts the runtime down under it
    let r = tokio_rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), reader).await })
        .expect("the forwarded wait hung after its runtime shut down")
        .unwrap();
    assert!(r.is_err(), "expected an error, got {r:?}");
}

/// Every compat socket that once waited keeps a multishot poll armed for
/// as long as it lives, idle keep-alive connections included. Those polls
/// used to count against the shard's op capacity: a few hundred idle
/// connections (two here, with a tiny ring) and no other op of the shard
/// could be submitted, not even another socket's first wait.
#[test]
fn idle_compat_sockets_do_not_use_up_the_op_table() {
    use ringlane::compat::UnixStream;
    let rt = common::runtime_with_room_for_two_ops();
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async {
                    let mut peers = Vec::new();
                    let mut readers = Vec::new();
                    for _ in 0..4 {
                        let (mut a, b) = UnixStream::pair().unwrap();
                        peers.push(b);
                        readers.push(
                            ringlane::spawn_local(async move {
                                let mut buf = [0u8; 1];
                                a.read(&mut buf).await.map(|n| buf[..n].to_vec())
                            })
                            .unwrap(),
                        );
                    }
                    for _ in 0..10 {
                        ringlane::yield_now().await; // every reader waits
                    }
                    // Single-shot ops are not kept out by the idle polls.
                    let n = ringlane::time::timeout(Duration::from_secs(5), async {
                        let f = ringlane::native::fs::File::open("/proc/self/stat").await?;
                        f.read_at(vec![0u8; 8], 0).await.0
                    })
                    .await
                    .expect("an open and a read waited for room behind idle polls");
                    assert_eq!(n.unwrap(), 8);
                    for (i, p) in peers.iter_mut().enumerate() {
                        p.write_all(&[i as u8]).await.unwrap();
                    }
                    let mut got = Vec::new();
                    for r in readers {
                        let bytes = ringlane::time::timeout(Duration::from_secs(5), r)
                            .await
                            .expect("a waiting socket never saw its data")
                            .unwrap()
                            .unwrap();
                        got.push(bytes);
                    }
                    got
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(got, vec![vec![0], vec![1], vec![2], vec![3]]);
}

/// A compat stream pair made on shard 0, whose first stream waited for a
/// read there (its poll stays armed on the shard), handed back to the
/// caller.
fn kept_stream_with_an_armed_poll(
    rt: &ringlane::Runtime,
) -> (ringlane::compat::UnixStream, ringlane::compat::UnixStream) {
    use ringlane::compat::UnixStream;
    let task = rt
        .handle()
        .spawn_pinned(0, async {
            let (mut a, b) = UnixStream::pair().unwrap();
            let mut buf = [0u8; 1];
            let waited = ringlane::time::timeout(Duration::from_millis(20), a.read(&mut buf)).await;
            assert!(waited.is_err(), "nothing was written");
            (a, b)
        })
        .unwrap();
    common::join_within(rt, task, Duration::from_secs(10), "the first read")
}

/// Shuts `rt` down gracefully with 20 s to spare; fails unless it returns
/// within 5 s with no task left unfinished.
fn shutdown_within_5s_of_a_20s_timeout(
    rt: ringlane::Runtime,
    what: &str,
) -> ringlane::ShutdownReport {
    let start = std::time::Instant::now();
    let report = rt.shutdown(Duration::from_secs(20));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "shutdown waited {took:?} {what}"
    );
    assert_eq!(report.unfinished_tasks, 0);
    report
}

/// A compat stream that once waited, handed back to the caller and kept:
/// its poll stays armed on the shard, and no task is left that could await
/// it. A graceful shutdown used to wait out its whole timeout for that
/// poll; it now cancels it and returns.
#[test]
fn a_compat_stream_kept_by_the_caller_does_not_hold_shutdown_back() {
    let rt = common::runtime(1);
    let kept = kept_stream_with_an_armed_poll(&rt);
    let report = shutdown_within_5s_of_a_20s_timeout(rt, "for a poll nobody awaits");
    assert!(report.stuck_shards.is_empty());
    drop(kept); // after its shard is gone: no panic, no hang
}

/// As above, with a second shard running a stealable task when the
/// shutdown begins: shard 0 may exit over its kept poll only once no
/// stealable task lives, and the task's end rings only its own shard. Shard
/// 0 used to sleep until the deadline; a draining shard now looks again
/// every few milliseconds.
#[test]
fn a_kept_compat_stream_and_a_stealable_task_elsewhere_do_not_hold_shutdown_back() {
    let rt = common::runtime(2);
    let kept = kept_stream_with_an_armed_poll(&rt);
    let (started_tx, started) = std::sync::mpsc::channel();
    drop(
        rt.handle()
            .spawn_with(ringlane::Placement::StealablePreferred(1), async move {
                started_tx.send(()).unwrap();
                ringlane::time::sleep(Duration::from_millis(200)).await;
            })
            .unwrap(),
    );
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the stealable task never ran");
    shutdown_within_5s_of_a_20s_timeout(rt, "after the last task ended");
    drop(kept);
}

/// A user's `AsyncFd` is ready only once the kernel says so, as in Tokio:
/// for a pidfd or a timerfd the readiness is the signal itself. It used to
/// start ready (the runtime's own sockets try the syscall first), so
/// `readable()` on an fd with nothing to read returned at once.
#[test]
fn a_new_async_fd_waits_for_the_kernel_to_report_readiness() {
    let rt = common::runtime(1);
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let (waited_tx, waited_rx) = std::sync::mpsc::channel();
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let fd = ringlane::compat::AsyncFd::new(a).unwrap();
            let early = ringlane::time::timeout(Duration::from_millis(50), fd.readable())
                .await
                .is_ok();
            waited_tx.send(()).unwrap();
            let guard = ringlane::time::timeout(Duration::from_secs(5), fd.readable()).await;
            (early, guard.is_ok())
        })
        .unwrap();
    waited_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    std::io::Write::write_all(&mut b, b"x").unwrap();
    let (early, later) = rt.block_on(j).unwrap();
    assert!(!early, "readable() returned before anything was written");
    assert!(later, "readable() missed the byte");
}

/// Abstract Unix socket names (a leading NUL byte, Linux), as Tokio takes
/// them: bound, connected to and accepted, in both lanes. They used to be
/// refused as paths "containing a NUL byte".
#[test]
fn abstract_unix_socket_names_bind_connect_and_accept() {
    let rt = common::runtime(1);
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async {
                    let pid = std::process::id();
                    let native = format!("\0ringlane-test-abstract-native-{pid}");
                    let l = ringlane::native::net::UnixListener::bind(&native)?;
                    let c = ringlane::native::net::UnixStream::connect(&native).await?;
                    let s = l.accept().await?;
                    c.write_all(b"n".to_vec()).await.0?;
                    let (n, buf) = s.read(vec![0u8; 1]).await;
                    assert_eq!(n?, 1);
                    let compat = format!("\0ringlane-test-abstract-compat-{pid}");
                    let l = ringlane::compat::UnixListener::bind(&compat)?;
                    let mut c = ringlane::compat::UnixStream::connect(&compat).await?;
                    let (mut s, _) = l.accept().await?;
                    c.write_all(b"c").await?;
                    let mut byte = [0u8; 1];
                    s.read_exact(&mut byte).await?;
                    Ok::<_, std::io::Error>((buf[0], byte[0]))
                })
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(got, (b'n', b'c'));
}

/// A task that gives up an async wait (a timeout, a `select!`) leaves no
/// waker behind: a shared idle socket must not keep every waker that ever
/// waited on it until its next event. Counted with a waker of our own: its
/// clones live only in the socket's waiter list.
#[test]
fn a_dropped_wait_leaves_no_waker_in_the_sockets_waiter_list() {
    use std::future::Future;
    use std::task::{Context, Wake, Waker};

    struct Counted;
    impl Wake for Counted {
        fn wake(self: Arc<Self>) {}
    }
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let counted = Arc::new(Counted);
            let waker = Waker::from(counted.clone());
            let mut counts = Vec::new();
            for round in 0..3 {
                let mut buf = [0u8; 8];
                let mut recv = Box::pin(sock.recv_from(&mut buf));
                let mut cx = Context::from_waker(&waker);
                assert!(recv.as_mut().poll(&mut cx).is_pending(), "round {round}");
                // A second poll with the same waker registers nothing new.
                assert!(recv.as_mut().poll(&mut cx).is_pending(), "round {round}");
                let waiting = Arc::strong_count(&counted);
                drop(recv);
                counts.push((waiting, Arc::strong_count(&counted)));
            }
            counts
        })
        .unwrap();
    let counts = common::join_within(&rt, j, Duration::from_secs(10), "the waits");
    // Ours and the list's while waiting; ours alone once the wait is gone.
    assert_eq!(counts, vec![(3, 2); 3]);
}
