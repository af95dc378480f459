//! The native lane's sockets, continued: ops that need more than one CQE
//! or table entry (a timed op waiting for room, multishot accept, zero-copy
//! send), empty datagrams, and a task stolen after its op completed.

mod common;

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

/// fd counts are process-wide: tests here run one at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An op that needs two op-table entries (it carries a linked timeout)
/// waits for room while the table has one free; it must neither spin the
/// shard (waiters count as work only when they fit) nor outlive its
/// deadline (a timer bounds the wait for room).
#[test]
fn a_timed_op_waiting_for_room_times_out_without_spinning() {
    let _serial = SERIAL.lock();
    let rt = common::runtime_with_room_for_two_ops();
    let (a, _pa) = UnixStream::pair().unwrap();
    let (b, _pb) = UnixStream::pair().unwrap();
    let out = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    // One op in flight leaves one free entry: not enough.
                    let stuck =
                        ringlane::spawn_local(async move { a.read(vec![0u8; 8]).await.0 }).unwrap();
                    ringlane::yield_now().await;
                    // SAFETY: gettid has no preconditions. (This task runs on
                    // the shard's thread.)
                    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
                    let cpu0 = common::thread_cpu_time(tid);
                    let start = Instant::now();
                    let (r, buf) = b
                        .read(vec![0u8; 8])
                        .timeout(Duration::from_millis(300))
                        .await;
                    let (waited, cpu) = (start.elapsed(), common::thread_cpu_time(tid) - cpu0);
                    stuck.abort();
                    (r.unwrap_err().kind(), buf.len(), waited, cpu)
                })
                .unwrap(),
        )
        .unwrap();
    let (kind, len, waited, cpu) = out;
    assert_eq!(
        (kind, len),
        (ErrorKind::TimedOut, 8),
        "timed out, buffer back"
    );
    assert!(waited >= Duration::from_millis(300), "early: {waited:?}");
    assert!(
        waited < Duration::from_secs(5),
        "the deadline was not enforced: {waited:?}"
    );
    assert!(
        cpu < Duration::from_millis(150),
        "the shard spun: {cpu:?} of CPU in {waited:?}"
    );
}

#[test]
fn empty_udp_datagrams_are_messages() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async {
                    let a = UdpSocket::bind(localhost()).unwrap();
                    let b = UdpSocket::bind(localhost()).unwrap();
                    a.send_to(Vec::new(), b.local_addr().unwrap())
                        .await
                        .0
                        .unwrap();
                    let (r, _) = b.recv_from(Vec::with_capacity(8)).await;
                    let (n, from) = r.unwrap();
                    a.connect(b.local_addr().unwrap()).await.unwrap();
                    a.send(Vec::new()).await.0.unwrap();
                    let n2 = b.recv(Vec::with_capacity(8)).await.0.unwrap();
                    (n, from == a.local_addr().unwrap(), n2)
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(got, (0, true, 0));
}

/// A multishot accept serves many connections from one SQE; dropping the
/// stream closes the connections the kernel accepted that nobody took
/// (their clients read end of stream) and leaks no fd.
#[test]
fn multishot_accept_streams_connections_and_closes_untaken_ones_on_drop() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (served, mut leftovers) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let mut incoming = listener.incoming();
                    let clients: Vec<_> = (0..100u8)
                        .map(|i| {
                            ringlane::spawn_local(async move {
                                let s = TcpStream::connect(addr).await.unwrap();
                                s.write_all(vec![i]).await.0.unwrap();
                                let (n, b) = s.read(vec![0u8; 1]).await;
                                (n.unwrap(), b[0])
                            })
                            .unwrap()
                        })
                        .collect();
                    for _ in 0..100 {
                        let conn = incoming.next().await.unwrap();
                        let (n, b) = conn.read(vec![0u8; 1]).await;
                        assert_eq!(n.unwrap(), 1);
                        conn.write_all(b).await.0.unwrap();
                    }
                    let mut served = 0;
                    for (i, c) in clients.into_iter().enumerate() {
                        assert_eq!(c.await.unwrap(), (1, i as u8));
                        served += 1;
                    }
                    // Five more connect; the kernel accepts them into the
                    // stream; one is taken, then the stream is dropped.
                    let leftovers: Vec<_> = (0..5)
                        .map(|_| std::net::TcpStream::connect(addr).unwrap())
                        .collect();
                    let taken = incoming.next().await.unwrap();
                    ringlane::time::sleep(Duration::from_millis(20)).await; // the rest arrive
                    drop(incoming);
                    drop(taken);
                    (served, leftovers)
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(served, 100);
    for c in &mut leftovers {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(
            c.read(&mut [0u8; 1]).unwrap(),
            0,
            "an accepted connection was not closed"
        );
    }
    drop((leftovers, rt));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Zero-copy sends deliver every byte; a zero-copy send dropped in flight
/// keeps its buffer until the kernel's notification (no use-after-free:
/// the bytes the peer reads are intact) and its op-table entries are freed.
#[test]
fn zero_copy_sends_deliver_and_survive_being_dropped_in_flight() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut peer, &mut all).unwrap();
        all
    });
    let sent = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let s = TcpStream::connect(addr).await.unwrap();
                    let mut sent = 0usize;
                    for i in 0..64u8 {
                        let mut buf = vec![i; 16 * 1024];
                        let mut off = 0;
                        while off < buf.len() {
                            let rest = buf.split_off(off);
                            let (n, b) = s.write_zc(rest).await;
                            let n = n.unwrap();
                            buf.extend_from_slice(&b);
                            off += n;
                            sent += n;
                        }
                        if i % 16 == 0 {
                            // Poll one more once (submitted), then drop it.
                            let mut f = Box::pin(s.write_zc(vec![0xEE; 1]));
                            let pending = std::future::poll_fn(|cx| {
                                std::task::Poll::Ready(f.as_mut().poll(cx).is_pending())
                            })
                            .await;
                            drop(f);
                            if !pending {
                                sent += 1; // it finished on the first poll
                            }
                        }
                    }
                    s.close().await.unwrap();
                    sent
                })
                .unwrap(),
        )
        .unwrap();
    let all = reader.join().unwrap();
    // Dropped sends may or may not have gone out; everything else is intact
    // and in order.
    let data: Vec<u8> = all.iter().copied().filter(|&b| b != 0xEE).collect();
    assert_eq!(data.len(), 64 * 16 * 1024);
    for (i, chunk) in data.chunks(16 * 1024).enumerate() {
        assert!(chunk.iter().all(|&b| b == i as u8), "chunk {i} corrupted");
    }
    assert!(sent >= data.len());
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Stealable tasks whose ops completed on their home shard are stolen
/// before they run again: the thief polls them and observes the results.
/// Two stealable tasks on shard 0 each read a socket; shard 0 is held by a
/// blocker while both reads complete, so one reap wakes both onto its
/// deque (the second push notifies shard 1). Each task, once its read is
/// done, spins until the other's is too, so they can only both finish if
/// shard 1 steals one of them: every round must see exactly one stolen.
#[test]
fn a_stolen_task_observes_the_op_its_home_shard_completed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let h = rt.handle();
    for round in 0..10 {
        let pairs: Vec<_> = (0..2)
            .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
            .collect();
        let done = Arc::new(AtomicUsize::new(0));
        let (mut peers, socks): (Vec<_>, Vec<_>) = pairs.into_iter().map(|(a, b)| (b, a)).unzip();
        // Shard 1 is held while the tasks start, so both first run (and
        // submit their reads) on shard 0: their home.
        let hold_1 = common::block_shard(&rt, 1);
        let tasks = rt
            .block_on(
                h.spawn_pinned(0, async move {
                    socks
                        .into_iter()
                        .map(|sock| {
                            let done = done.clone();
                            let sock = UnixStream::from_std(sock);
                            ringlane::spawn(async move {
                                let first = ringlane::current_shard();
                                let (n, buf) = sock.read(vec![0u8; 8]).await;
                                let after = ringlane::current_shard();
                                done.fetch_add(1, Ordering::AcqRel);
                                let deadline = Instant::now() + Duration::from_secs(5);
                                while done.load(Ordering::Acquire) < 2 {
                                    assert!(
                                        Instant::now() < deadline,
                                        "the other task was never stolen"
                                    );
                                    std::hint::spin_loop();
                                }
                                (first, after, buf[..n.unwrap()].to_vec())
                            })
                            .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap(),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(5)); // both reads in flight
        let blocker = common::block_shard(&rt, 0);
        rt.block_on(hold_1.release()).unwrap();
        for p in &mut peers {
            p.write_all(b"data").unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
        rt.block_on(blocker.release()).unwrap();
        let results: Vec<_> = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).collect();
        for (first, _, data) in &results {
            assert_eq!(
                (first, data.as_slice()),
                (&Some(0), &b"data"[..]),
                "round {round}"
            );
        }
        let moved = results
            .iter()
            .filter(|(_, after, _)| *after == Some(1))
            .count();
        assert_eq!(
            moved, 1,
            "round {round}: one task must have been stolen after its op completed"
        );
    }
}

/// An op that waited for room is woken when room appears, but its task
/// never polls it again (it sleeps, holding the future: a disabled
/// `select!` branch, a future polled once and set aside). Its entry used
/// to stay in the shard's waiter list, counted as work at every tick: the
/// shard never parked and spun at 100% CPU until the future was dropped.
#[test]
fn an_unpolled_room_waiter_lets_the_shard_park() {
    let _serial = SERIAL.lock();
    let rt = common::runtime_with_room_for_two_ops();
    let (a, _pa) = UnixStream::pair().unwrap();
    let (b, _pb) = UnixStream::pair().unwrap();
    let (c, _pc) = UnixStream::pair().unwrap();
    let cpu = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let first =
                        ringlane::spawn_local(async move { a.read(vec![0u8; 8]).await.0 }).unwrap();
                    let second =
                        ringlane::spawn_local(async move { b.read(vec![0u8; 8]).await.0 }).unwrap();
                    ringlane::yield_now().await; // both in flight: no room
                    let mut held = Box::pin(c.read(vec![0u8; 8]));
                    let waiting = std::future::poll_fn(|cx| {
                        std::task::Poll::Ready(held.as_mut().poll(cx).is_pending())
                    })
                    .await;
                    assert!(waiting, "the third read found room");
                    first.abort(); // its cancel's CQE makes room: the waiter is woken
                    // SAFETY: gettid has no preconditions. (This task runs on
                    // the shard's thread.)
                    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
                    ringlane::time::sleep(Duration::from_millis(20)).await;
                    let cpu0 = common::thread_cpu_time(tid);
                    ringlane::time::sleep(Duration::from_millis(300)).await; // `held` not polled
                    let cpu = common::thread_cpu_time(tid) - cpu0;
                    drop(held);
                    second.abort();
                    cpu
                })
                .unwrap(),
        )
        .unwrap();
    assert!(
        cpu < Duration::from_millis(100),
        "the shard spun: {cpu:?} of CPU in 300 ms"
    );
}

/// A zero-copy send under a kernel timeout needs three op-table entries
/// (the send, its notification, the linked timeout); on a ring that allows
/// two in flight it waited for room that could never appear, and the
/// caller learned nothing but `TimedOut` when the deadline passed. It is
/// refused at once with a clear error, its buffer returned.
#[test]
fn an_op_needing_more_entries_than_the_ring_allows_is_refused_at_once() {
    let _serial = SERIAL.lock();
    let rt = common::runtime_with_room_for_two_ops();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepter = std::thread::spawn(move || listener.accept().unwrap().0);
    let (kind, len, took) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let s = TcpStream::connect(addr).await.unwrap();
                    let start = Instant::now();
                    let (r, buf) = s
                        .write_zc(vec![7u8; 64])
                        .timeout(Duration::from_secs(5))
                        .await;
                    (r.unwrap_err().kind(), buf.len(), start.elapsed())
                })
                .unwrap(),
        )
        .unwrap();
    drop(accepter.join().unwrap());
    assert_eq!(
        (kind, len),
        (ErrorKind::InvalidInput, 64),
        "refused, buffer back"
    );
    assert!(
        took < Duration::from_secs(4),
        "it waited for room: {took:?}"
    );
}

/// A receive's SQE waits to be issued after the tick's sends (ring
/// invariant 5). Dropped in the same poll that queued it, before any enter,
/// its cancel must still reach it: issued ahead of the receive, the cancel
/// would find nothing, and the receive would sit armed on an idle socket,
/// holding the fd (the peer never saw EOF) until shutdown.
#[test]
fn receive_dropped_before_its_sqe_was_issued_is_still_cancelled() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let s = UnixStream::from_std(ours);
            let mut read = Box::pin(s.read(vec![0u8; 64]));
            // One poll queues the receive; dropping it requests the cancel,
            // all before this task yields to the shard's enter.
            let first =
                std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx))).await;
            assert!(first.is_pending(), "nothing was written yet");
            drop(read);
            drop(s); // closes once the receive's final CQE is in
        })
        .unwrap();
    rt.block_on(task).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 8];
    let n = peer
        .read(&mut buf)
        .expect("no EOF: the dropped receive still holds the socket");
    assert_eq!(n, 0, "EOF");
}

/// `native::timeout` bounds each wait of a multishot stream (a listener's
/// connections, a buffer-ring receive): the wait fails with `TimedOut` at
/// the deadline and the stream stays armed, so what arrives later is still
/// delivered. Multishot ops used to ignore the deadline: the wait never
/// ended.
#[test]
fn a_native_timeout_bounds_each_wait_of_a_multishot_stream() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let short = Duration::from_millis(50);
    rt.block_on(
        rt.handle()
            .spawn_pinned(0, async move {
                let mut incoming = listener.incoming();
                let t = Instant::now();
                let waited =
                    ringlane::time::timeout(Duration::from_secs(5), incoming.next().timeout(short))
                        .await
                        .expect("the accept wait ignored its native timeout");
                assert_eq!(waited.unwrap_err().kind(), ErrorKind::TimedOut);
                assert!(t.elapsed() >= short, "timed out early");
                // Still armed: a client that connects now is accepted.
                let mut client = std::net::TcpStream::connect(addr).unwrap();
                let conn = incoming.next().await.unwrap();
                let ring = match ringlane::native::fixed::BufRing::new(4, 64) {
                    Ok(ring) => ring,
                    Err(e) => {
                        eprintln!("SKIP the receive half: no buffer ring on this kernel ({e})");
                        return;
                    }
                };
                let mut chunks = conn.recv_multi(&ring);
                let waited =
                    ringlane::time::timeout(Duration::from_secs(5), chunks.next().timeout(short))
                        .await
                        .expect("the receive wait ignored its native timeout");
                let e = waited.expect("the stream goes on").unwrap_err();
                assert_eq!(e.kind(), ErrorKind::TimedOut);
                client.write_all(b"late").unwrap();
                let chunk = chunks.next().await.expect("the stream goes on").unwrap();
                assert_eq!(&chunk[..], b"late");
            })
            .unwrap(),
    )
    .unwrap();
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
