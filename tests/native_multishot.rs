//! Multishot ops and provided buffers in the native lane (`Incoming`,
//! `RecvMulti` into a `BufRing`, zero-copy send) around drops, shutdown,
//! buffer exhaustion and CQ overflow.
//!
//! - A `RecvMulti` dropped before the kernel saw its SQE is withdrawn and
//!   takes no bytes, as a one-shot receive.
//! - A stream starved for buffers and polled after its runtime is gone ends
//!   with an error instead of waiting for ever.
//! - A stream that has ended lets its socket go: `close()` then closes it.
//! - A burst that overflows a small CQ loses no chunk and no connection; a
//!   zero-copy send dropped between its two CQEs keeps its buffer; shutdown
//!   with streams armed on both shards closes every fd; a starved stream is
//!   woken by chunks dropped on a plain thread; a listener closed while its
//!   `Incoming` is armed closes once the stream is dropped.

mod common;

use std::future::{Future, poll_fn};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, RingBuf};
use ringlane::native::net::{RecvMulti, TcpListener, TcpStream, UnixStream};

use common::LIMIT;
use common::fixed_io::{arm, first_chunk_or_skip, on_shard, ring_or_skip};
use common::native_io::{
    Held, SERIAL, accept_queue_len, poll_once, read_within, settled_fd_count, two_op_slots,
    two_ticks, unix_pair, until_drained,
};

fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Polls `fut` once from inside a task and hands back what it said.
async fn poll_ready<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// `setsockopt` of one `int` option.
fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) {
    // SAFETY: setsockopt reads one c_int from a live local.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

/// Bytes in a TCP socket's send queue, unsent or unacknowledged
/// (`SIOCOUTQ`).
fn unsent_bytes(fd: RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int through the pointer.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    assert_eq!(r, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
    n
}

/// Reads `s` until end of file, each read bounded by `limit`; the bytes,
/// or why not.
fn read_until_eof(s: &mut std::net::TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut all = Vec::new();
    match s.read_to_end(&mut all) {
        Ok(_) => Ok(all),
        Err(e) => Err(format!("{e} after {} bytes", all.len())),
    }
}

/// What a stream owner keeps alive beside its chunks.
type Keep = (
    RecvMulti,
    UnixStream,
    UnixStream,
    std::os::unix::net::UnixStream,
);

/// Sets up a stream B on `ring` (two 16-byte buffers). B's caller holds both
/// of its chunks, and B stays alive, so the chunks belong to a live stream.
/// Returns `None` (after printing a SKIP line) on a kernel without multishot
/// receive.
async fn b_holds_both_buffers(ring: &BufRing) -> Option<(Vec<RingBuf>, Held<Keep>)> {
    let (b, b_peer_native, mut b_peer) = unix_pair();
    b_peer.write_all(&[2u8; 32]).unwrap();
    let mut b_chunks = b.recv_multi(ring);
    let mut held = vec![first_chunk_or_skip(&mut b_chunks).await?];
    while held.iter().map(|c| c.len()).sum::<usize>() < 32 {
        match b_chunks.next().timeout(LIMIT).await {
            Some(Ok(c)) => held.push(c),
            other => panic!("B's second chunk: {other:?}"),
        }
    }
    assert_eq!(held.len(), 2, "B holds both buffers");
    Some((held, Held((b_chunks, b, b_peer_native, b_peer))))
}

/// Expected: a `RecvMulti` polled once (its SQE queued, not yet issued) and
/// dropped in that same poll takes none of the bytes already waiting in the
/// socket: a one-shot read right after it gets them, as it does after a
/// one-shot read dropped the same way.
///
/// Why: the README promises that "a receive dropped before the kernel saw
/// it is withdrawn and takes no bytes", and one-shot receives keep that
/// promise through the ring's `late` list. A multishot receive is pushed
/// straight into the SQ and cannot be withdrawn: its SQE is issued ahead of
/// its cancel, receives the waiting bytes into a ring buffer, and the
/// orphan handler gives that buffer back with the bytes in it. A
/// `select!`-style "try the stream, else fall back to a plain read" loses
/// data this way.
#[test]
fn a_multishot_receive_dropped_before_the_kernel_saw_it_takes_no_bytes() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, LIMIT, async {
        let ring = ring_or_skip(4, 64)?;
        {
            // Multishot receive works here (else: SKIP).
            let (probe, _probe_peer_native, mut probe_peer) = unix_pair();
            probe_peer.write_all(b"probe").unwrap();
            let mut chunks = probe.recv_multi(&ring);
            drop(first_chunk_or_skip(&mut chunks).await?);
        }
        let (ours, _peer_native, mut peer) = unix_pair();
        peer.write_all(b"precious bytes").unwrap();
        let mut chunks = ours.recv_multi(&ring);
        // One poll queues the multishot SQE; no enter happens before the drop.
        assert!(
            arm(&mut chunks).await,
            "the stream's first poll queues its SQE and waits"
        );
        drop(chunks);
        let got = read_within(&ours, Duration::from_secs(2)).await;
        Some(got.map_err(|e| e.kind()))
    });
    let Some(got) = out else { return };
    assert_eq!(
        got,
        Ok(b"precious bytes".to_vec()),
        "a multishot receive dropped before the kernel saw it swallowed the bytes \
         waiting in the socket (the next one-shot read got none)"
    );
}

/// Expected: a `RecvMulti` waiting for a ring buffer that another live
/// stream's caller holds, polled after its runtime has shut down, resolves
/// at once with an error (or `None`), as every other native op and stream
/// does after shutdown. It must not wait for a give-back: it could never
/// receive into that buffer again.
///
/// Why: the starved wait (rule 3) ends only when a buffer is given back or
/// at the deadline of a `native::timeout`. Nothing checks that the ring's
/// shard is gone, so off the shards and without a timeout the poll stays
/// `Pending` for as long as the other caller keeps its chunks.
#[test]
fn a_stream_waiting_for_a_buffer_ends_once_its_runtime_is_gone() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let setup = on_shard(&rt, 0, LIMIT, async {
        let ring = ring_or_skip(2, 16)?;
        let (held, b) = b_holds_both_buffers(&ring).await?;
        let (a, a_peer_native, mut a_peer) = unix_pair();
        a_peer.write_all(b"for A").unwrap();
        let mut a_chunks = a.recv_multi(&ring);
        let waited =
            ringlane::time::timeout(LIMIT, a_chunks.next().timeout(Duration::from_millis(100)))
                .await
                .expect("the wait for a buffer ignored its native timeout");
        match waited {
            Some(Err(e)) if e.kind() == ErrorKind::TimedOut => {}
            other => panic!("A should have waited for B's buffers, then timed out: {other:?}"),
        }
        Some(Held((ring, held, b, a, a_peer_native, a_peer, a_chunks)))
    });
    let Some(Held((ring, held, b, a, a_peer_native, a_peer, mut a_chunks))) = setup else {
        return;
    };
    let _report = rt.shutdown(Duration::from_secs(2));
    let polled = common::block_on(ringlane::time::timeout(
        Duration::from_secs(2),
        poll_fn(|cx| a_chunks.poll_next(cx)),
    ));
    let ended = matches!(&polled, Ok(None) | Ok(Some(Err(_))));
    let shown = format!("{polled:?}");
    drop(polled);
    drop((held, b, a_chunks, a, a_peer_native, a_peer, ring));
    assert!(
        ended,
        "a stream starved for buffers, polled after its runtime shut down, still waits \
         for a buffer it can never use (Elapsed = no answer within 2 s): {shown}"
    );
}

/// Expected: once a `RecvMulti` has ended (end of file, no op in flight),
/// `close()` on its socket closes it: the peer, which half-closed, reads
/// the reply and then end of file, even though the ended stream object is
/// still in scope (as in `while let Some(c) = chunks.next().await {..}`
/// followed by a reply and a close).
///
/// Why: `TcpStream::close` says in-flight ops "a RecvMulti stream included,
/// keep it open until they end: the fd is closed then". `RecvMulti` holds
/// the fd for its whole life, not only while its op is in flight, so
/// `close()` finds the fd shared and returns `Ok` without closing
/// anything. The peer waits until the ended stream is dropped.
#[test]
fn closing_a_socket_after_its_receive_stream_ended_closes_it() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, LIMIT, async {
        let ring = ring_or_skip(4, 64)?;
        let listener = TcpListener::bind(localhost()).unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().timeout(LIMIT).await.unwrap();
        client.write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut chunks = conn.recv_multi(&ring);
        let first = first_chunk_or_skip(&mut chunks).await?;
        let mut got = first.to_vec();
        drop(first);
        loop {
            match chunks.next().timeout(LIMIT).await {
                None => break,
                Some(Ok(c)) => got.extend_from_slice(&c),
                Some(Err(e)) => panic!("the stream failed: {e}"),
            }
        }
        assert_eq!(got, b"request");
        assert!(chunks.next().await.is_none(), "the stream has ended");
        conn.write_all(b"reply".to_vec()).await.0.unwrap();
        conn.close().await.unwrap();
        // The ended stream is still in scope, as in a `while let` loop.
        Some(Held((chunks, ring, listener, client)))
    });
    let Some(Held((chunks, ring, listener, mut client))) = out else {
        return;
    };
    let got = read_until_eof(&mut client, Duration::from_secs(2));
    drop((chunks, ring, listener, client));
    assert_eq!(
        got,
        Ok(b"reply".to_vec()),
        "close() returned Ok but the socket stayed open: the ended RecvMulti still holds \
         its fd, so the peer never saw end of file"
    );
}

/// Expected: on a ring whose CQ has 64 entries, a shard blocked while 64 KiB
/// arrive for a multishot receive with 1,024 8-byte buffers, and later
/// while 150 clients connect to a listener with an armed multishot accept,
/// loses nothing. Once released, the receive stream delivers every byte in
/// order and ends at EOF, the accept stream hands out 150 live connections,
/// each client's byte arrives exactly once, and no fd leaks.
///
/// Why: thousands of CQEs overflow the CQ. The kernel ends a multishot op
/// whose CQE does not fit (its last CQE goes to the overflow list), and its
/// owner must notice and re-arm after taking every queued result. Lost
/// ordering, a lost final CQE or a stream that never re-arms would show up
/// as missing, reordered or duplicated data or connections, or as a hang.
#[test]
fn a_burst_that_overflows_the_cq_loses_no_chunk_and_no_connection() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = two_op_slots(); // a CQ of 64 entries
    let h = rt.handle();

    // The receive: armed and waiting before the shard is blocked.
    let setup = on_shard(&rt, 0, LIMIT, async {
        let ring = ring_or_skip(1024, 8)?;
        let (ours, ours_peer_native, mut peer) = unix_pair();
        peer.write_all(b"start!!!").unwrap();
        let mut chunks = ours.recv_multi(&ring);
        let first = first_chunk_or_skip(&mut chunks).await?;
        assert_eq!(&first[..], b"start!!!");
        drop(first);
        Some(Held((ring, ours, ours_peer_native, peer, chunks)))
    });
    let Some(Held((ring, ours, ours_peer_native, peer, mut chunks))) = setup else {
        return;
    };
    let consumer = h
        .spawn_pinned(0, async move {
            let mut got = Vec::new();
            let mut n = 0usize;
            loop {
                match chunks.next().timeout(LIMIT).await {
                    None => break,
                    Some(Ok(c)) => {
                        got.extend_from_slice(&c);
                        n += 1;
                    }
                    Some(Err(e)) => return Err((e.kind(), got.len())),
                }
            }
            drop((chunks, ring, ours, ours_peer_native));
            Ok((got, n))
        })
        .unwrap();
    common::until_parked(&h, 0);
    let blocker = common::block_shard(&rt, 0);
    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let (wrote_tx, wrote) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let mut peer = peer;
        peer.write_all(&data).unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let _ = wrote_tx.send(());
        peer
    });
    // Released once everything is written (or after 2 s, should the
    // socket's buffer not take it all at once).
    let _ = wrote.recv_timeout(Duration::from_secs(2));
    common::join_within(&rt, blocker.release(), LIMIT, "the blocker");
    let received = common::join_within(&rt, consumer, LIMIT, "the receive stream");
    let peer = writer.join().unwrap();
    drop(peer);
    match received {
        Ok((got, n)) => {
            assert_eq!(got.len(), expected.len(), "bytes lost or duplicated");
            assert!(got == expected, "the bytes arrived out of order");
            assert!(n >= expected.len() / 8, "{n} chunks of at most 8 bytes");
        }
        Err((kind, so_far)) => {
            panic!("the receive stream failed with {kind:?} after {so_far} bytes")
        }
    }

    // The accept: armed and waiting before the shard is blocked.
    const CLIENTS: usize = 150;
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = h
        .spawn_pinned(0, async move {
            let mut incoming = listener.incoming();
            let mut conns = Vec::new();
            for _ in 0..CLIENTS {
                match incoming.next().timeout(LIMIT).await {
                    Ok(c) => conns.push(c),
                    Err(e) => return Err((e.kind(), conns.len())),
                }
            }
            let mut seen = Vec::new();
            for c in &conns {
                let (n, b) = c.read(vec![0u8; 1]).timeout(LIMIT).await;
                match n {
                    Ok(1) => seen.push(b[0]),
                    other => panic!("a connection's byte: {other:?}"),
                }
            }
            seen.sort_unstable();
            drop((conns, incoming, listener));
            Ok(seen)
        })
        .unwrap();
    common::until_parked(&h, 0);
    let blocker = common::block_shard(&rt, 0);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(&[i as u8]).unwrap();
            c
        })
        .collect();
    common::join_within(&rt, blocker.release(), LIMIT, "the blocker");
    let seen = common::join_within(&rt, acceptor, LIMIT, "the accept stream");
    let want: Vec<u8> = (0..CLIENTS).map(|i| i as u8).collect();
    assert_eq!(
        seen,
        Ok(want),
        "connections lost, duplicated or mixed up around the CQ overflow"
    );
    drop((clients, rt, h));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Expected: a zero-copy send whose byte count has come back (first CQE)
/// but whose notification waits, because the peer's window is closed and
/// the bytes are still queued, is dropped. The kernel later transmits
/// exactly the bytes the buffer held, even though the allocator hands out
/// many same-size buffers filled with 0xDD right after the drop. Once the
/// notification comes, the socket closes (the peer sees EOF) and no fd
/// leaks.
///
/// Why: between its two CQEs a SEND_ZC op's buffer is still read by the
/// kernel at transmit time. A drop that freed it at the first CQE, or
/// treated the op as done, would let the decoys overwrite the bytes in
/// flight. `native_net_more` only drops a zero-copy send that was still
/// blocked, before its first CQE.
#[test]
fn a_zero_copy_send_dropped_between_its_two_completions_keeps_its_buffer() {
    const FILLER: usize = 32 * 1024;
    const ZC_LEN: usize = 4096;
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // A tiny receive window: what the peer does not read stays queued.
    set_int_opt(
        listener.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        4096,
    );
    let addr = listener.local_addr().unwrap();
    let out = on_shard(&rt, 0, LIMIT, async move {
        let s = TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap(); // already in the backlog
        let fd = s.as_raw_fd();
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20);
        let (r, _) = s.write_all(vec![0xABu8; FILLER]).timeout(LIMIT).await;
        r.expect("the filler fits the send buffer");
        ringlane::time::sleep(Duration::from_millis(20)).await;
        let queued = unsent_bytes(fd);
        if queued == 0 {
            println!("SKIP the zero-copy test: the peer's window never closed");
            return None;
        }
        let data: Vec<u8> = (0..ZC_LEN).map(|i| (i % 251) as u8).collect();
        let mut zc = Box::pin(s.write_zc(data));
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Poll::Ready((r, _)) = poll_ready(&mut zc).await {
                match r {
                    Err(e) if e.kind() == ErrorKind::InvalidInput => {
                        println!("SKIP the zero-copy test: no IORING_OP_SEND_ZC here ({e})")
                    }
                    other => println!(
                        "SKIP the zero-copy test: the send ended at once ({other:?}), \
                         never between its two completions"
                    ),
                }
                return None;
            }
            if unsent_bytes(fd) > queued {
                break; // the kernel took the bytes: the first CQE is posted
            }
            assert!(
                Instant::now() < deadline,
                "the zero-copy send never queued its bytes"
            );
            ringlane::time::sleep(Duration::from_millis(1)).await;
        }
        ringlane::time::sleep(Duration::from_millis(20)).await;
        if poll_ready(&mut zc).await.is_ready() {
            println!("SKIP the zero-copy test: the notification came before the peer read");
            return None;
        }
        drop(zc); // between its two completions
        let decoys: Vec<Vec<u8>> = (0..256).map(|_| vec![0xDDu8; ZC_LEN]).collect();
        Some(Held((s, peer, decoys)))
    });
    let Some(Held((s, mut peer, decoys))) = out else {
        return;
    };
    drop(s); // closed once the notification has come
    let got = read_until_eof(&mut peer, LIMIT);
    drop(decoys);
    let all = got.expect(
        "no end of file: the dropped zero-copy send never ended (its notification was lost) \
         or its socket leaked",
    );
    assert!(all.len() > FILLER, "the zero-copy bytes never arrived");
    assert!(all[..FILLER].iter().all(|&b| b == 0xAB), "the filler");
    let tail = &all[FILLER..];
    assert!(tail.len() <= ZC_LEN, "{} extra bytes", tail.len());
    if let Some((i, b)) = tail
        .iter()
        .enumerate()
        .find(|&(i, &b)| b != (i % 251) as u8)
    {
        panic!(
            "byte {i} of the dropped zero-copy send went out as {b:#x}: its buffer was \
             freed (and reused) before the kernel's notification"
        );
    }
    drop((rt, peer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Expected: shutting down a two-shard runtime whose tasks hold armed
/// multishot streams, in every arrangement, closes every fd. The shards
/// are: an `Incoming` armed on shard 0 and held by a task on shard 1, with
/// two connections accepted and not taken; a receive armed on shard 0 with
/// a chunk posted and not taken, also held on shard 1; an idle receive
/// awaited on shard 0; a receive on shard 1's own ring. Both accepted
/// clients read EOF, every socket pair's peer reads EOF, the listening
/// port refuses connections, and the fd count is back where it was.
///
/// Why: the tasks are dropped at the deadline on their own shards, and
/// their cancels and orphan handlers run on the shard that holds the stream,
/// for ops that live on the other shard, which may already have cancelled
/// them and exited. A cancel posted to a shard that has exited, an orphaned
/// fd left in a cell nobody drops, or a cell leaked at exit keeps a socket
/// open.
#[test]
fn shutdown_with_multishot_streams_armed_on_both_shards_closes_every_fd() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(2);
    let h = rt.handle();
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let lfd = listener.as_raw_fd();
    let (ours_a, peer_a_native, mut peer_a) = unix_pair();
    let (ours_b, peer_b_native, mut peer_b) = unix_pair();
    let (ours_c, peer_c_native, mut peer_c) = unix_pair();
    let setup = on_shard(&rt, 0, LIMIT, async move {
        let ring = ring_or_skip(4, 16)?;
        // A receive with a chunk posted and not taken.
        peer_a.write_all(&[1u8; 16]).unwrap();
        let mut a_chunks = ours_a.recv_multi(&ring);
        drop(first_chunk_or_skip(&mut a_chunks).await?);
        peer_a.write_all(&[2u8; 16]).unwrap();
        until_drained(ours_a.as_raw_fd()).await;
        ringlane::time::sleep(Duration::from_millis(2)).await; // its CQE reaped, untaken
        // An idle receive.
        let mut b_chunks = ours_b.recv_multi(&ring);
        assert!(arm(&mut b_chunks).await, "armed on an idle socket");
        // The listener's stream, armed, with two connections accepted.
        let mut incoming = listener.incoming();
        {
            let mut next = Box::pin(incoming.next());
            assert!(poll_once(&mut next).await, "nobody connected yet");
        }
        let clients: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let deadline = Instant::now() + LIMIT;
        while accept_queue_len(lfd) > 0 {
            assert!(
                Instant::now() < deadline,
                "the multishot accept never took them"
            );
            ringlane::time::sleep(Duration::from_millis(1)).await;
        }
        ringlane::time::sleep(Duration::from_millis(2)).await; // CQEs reaped, untaken
        Some(Held((
            ring, a_chunks, ours_a, peer_a, b_chunks, ours_b, incoming, listener, clients,
        )))
    });
    let Some(Held((
        ring,
        a_chunks,
        ours_a,
        mut peer_a,
        mut b_chunks,
        ours_b,
        incoming,
        listener,
        mut clients,
    ))) = setup
    else {
        return;
    };
    // Shard 1 holds what shard 0's ring serves, and waits on a ring of its own.
    let held_on_1 = h
        .spawn_pinned(1, async move {
            let _keep = (incoming, listener, a_chunks, ours_a, ring);
            std::future::pending::<()>().await;
        })
        .unwrap();
    let own_ring_on_1 = h
        .spawn_pinned(1, async move {
            let Ok(ring1) = BufRing::new(4, 16) else {
                return;
            };
            let mut c_chunks = ours_c.recv_multi(&ring1);
            while c_chunks.next().await.is_some() {}
        })
        .unwrap();
    let idle_on_0 = h
        .spawn_pinned(0, async move {
            let _keep = ours_b;
            while b_chunks.next().await.is_some() {}
        })
        .unwrap();
    common::until_parked(&h, 0);
    common::until_parked(&h, 1);
    drop((held_on_1, own_ring_on_1, idle_on_0));
    let _report = rt.shutdown(Duration::from_millis(100));

    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(LIMIT)).unwrap();
        let r = c.read(&mut [0u8; 1]);
        assert!(
            matches!(r, Ok(0)),
            "connection {i}, accepted into the stream and never taken, was not closed: {r:?}"
        );
    }
    let mut peers = [
        ("the receive with an untaken chunk", &mut peer_a),
        ("the idle receive", &mut peer_b),
        ("the receive on shard 1's ring", &mut peer_c),
    ];
    for (what, p) in peers.iter_mut() {
        p.set_read_timeout(Some(LIMIT)).unwrap();
        let r = p.read(&mut [0u8; 1]);
        assert!(
            matches!(r, Ok(0)),
            "{what}: its socket was not closed at shutdown: {r:?}"
        );
    }
    match std::net::TcpStream::connect(addr) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("the listener's socket stayed open after shutdown"),
    }
    drop((clients, peer_a, peer_b, peer_c));
    drop((peer_a_native, peer_b_native, peer_c_native, h));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Expected: a stream starved for buffers (another live stream's caller
/// holds both) whose peer has sent 26 bytes and closed is woken when those
/// chunks are dropped on a plain thread. It then delivers all 26 bytes and
/// ends with `None`; it needs a buffer even to see end of file.
///
/// Why: the give-back from a plain thread publishes the ring's tail and
/// wakes the ring's waiters; the starved stream must re-arm on its shard
/// and, the peer being gone, still get to EOF. A lost wake-up hangs it
/// until its timeout, and an EOF seen as "out of buffers" would end it with
/// an error or lose the tail.
#[test]
fn a_starved_stream_is_woken_by_chunks_dropped_on_a_plain_thread_and_ends_at_eof() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let h = rt.handle();
    let setup = on_shard(&rt, 0, LIMIT, async {
        let ring = ring_or_skip(2, 16)?;
        let (held, b) = b_holds_both_buffers(&ring).await?;
        let (a, a_peer_native, mut a_peer) = unix_pair();
        a_peer.write_all(b"abcdefghijklmnopqrstuvwxyz").unwrap();
        a_peer.shutdown(Shutdown::Write).unwrap();
        let mut a_chunks = a.recv_multi(&ring);
        let waited =
            ringlane::time::timeout(LIMIT, a_chunks.next().timeout(Duration::from_millis(50)))
                .await
                .expect("the wait for a buffer ignored its native timeout");
        match waited {
            Some(Err(e)) if e.kind() == ErrorKind::TimedOut => {}
            other => panic!("A should have waited for B's buffers: {other:?}"),
        }
        Some(Held((ring, held, b, a, a_peer_native, a_peer, a_chunks)))
    });
    let Some(Held((ring, held, b, a, a_peer_native, a_peer, mut a_chunks))) = setup else {
        return;
    };
    let consumer = h
        .spawn_pinned(0, async move {
            let mut got = Vec::new();
            let out = loop {
                match a_chunks.next().timeout(LIMIT).await {
                    None => break Ok(got),
                    Some(Ok(c)) => got.extend_from_slice(&c),
                    Some(Err(e)) => break Err((e.kind(), got)),
                }
            };
            drop((a_chunks, a, ring));
            out
        })
        .unwrap();
    common::until_parked(&h, 0);
    std::thread::spawn(move || drop(held)).join().unwrap();
    let out = common::join_within(&rt, consumer, LIMIT, "the starved stream");
    drop((b, a_peer_native, a_peer));
    assert_eq!(
        out,
        Ok(b"abcdefghijklmnopqrstuvwxyz".to_vec()),
        "the starved stream, woken by buffers given back on a plain thread, must deliver \
         every byte and end at EOF"
    );
}

/// Expected: `TcpListener::close` with an armed `Incoming` returns at once
/// and the stream keeps accepting, as documented. Once the stream is
/// dropped the listening socket really closes: connects are refused within
/// the limit, the connection the stream had accepted but nobody took is
/// closed (its client reads EOF), and no fd leaks.
///
/// Why: after `close()` the fd is owned only by the stream and its op's
/// cell. Dropping the stream cancels the accept, and the last reference
/// goes with the cell when the cancel's CQE comes. If that reference is
/// kept elsewhere, or the final CQE is mishandled, the port stays bound
/// for good.
#[test]
fn a_listener_closed_while_its_incoming_is_armed_closes_once_the_stream_is_dropped() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (refused, mut untaken_client, addr) = on_shard(&rt, 0, LIMIT, async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let addr = listener.local_addr().unwrap();
        let lfd = listener.as_raw_fd();
        let mut incoming = listener.incoming();
        let c1 = std::net::TcpStream::connect(addr).unwrap();
        let t1 = incoming.next().timeout(LIMIT).await.unwrap();
        listener.close().await.unwrap(); // the stream holds the fd: returns at once
        let c2 = std::net::TcpStream::connect(addr).unwrap();
        let t2 = incoming
            .next()
            .timeout(LIMIT)
            .await
            .expect("documented: the stream keeps accepting after close()");
        // One more, accepted into the stream and never taken.
        let c3 = std::net::TcpStream::connect(addr).unwrap();
        let deadline = Instant::now() + LIMIT;
        while accept_queue_len(lfd) > 0 {
            assert!(
                Instant::now() < deadline,
                "the multishot accept never took it"
            );
            ringlane::time::sleep(Duration::from_millis(1)).await;
        }
        ringlane::time::sleep(Duration::from_millis(2)).await; // its CQE reaped
        drop(incoming);
        let deadline = Instant::now() + LIMIT;
        let refused = loop {
            ringlane::time::sleep(Duration::from_millis(1)).await;
            match std::net::TcpStream::connect(addr) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break true,
                Err(e) => panic!("connect: {e}"),
                Ok(extra) => drop(extra),
            }
            if Instant::now() >= deadline {
                break false;
            }
        };
        drop((t1, t2, c1, c2));
        (refused, c3, addr)
    });
    untaken_client.set_read_timeout(Some(LIMIT)).unwrap();
    let r = untaken_client.read(&mut [0u8; 1]);
    assert!(
        matches!(r, Ok(0)),
        "the connection accepted into the dropped stream was not closed: {r:?}"
    );
    assert!(
        refused,
        "the listening socket on {addr} stayed open after close() and the stream's drop"
    );
    drop((untaken_client, rt));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// While nobody polls an `Incoming`, it keeps at most its bound (64) of new
/// connections accepted and waiting; the rest stay in the kernel's accept
/// queue, as they would with `accept(2)` not called. Polled again, the
/// stream hands out every one of them, in order of arrival, none lost.
///
/// Why: the multishot accept stayed armed from the first poll until the
/// stream was dropped, queueing every connection (an fd each) without a
/// bound: a server that stopped accepting to limit its connections kept
/// accepting all of them.
#[test]
fn an_unpolled_incoming_leaves_connections_beyond_its_bound_in_the_backlog() {
    const CLIENTS: usize = 100;
    const BOUND: usize = 64;
    let _serial = SERIAL.lock();
    if !kernel_at_least(5, 19) {
        println!("SKIP: no multishot accept before Linux 5.19 (Incoming accepts one at a time)");
        return;
    }
    let rt = common::runtime(1);
    let listener = TcpListener::bind(localhost()).unwrap();
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
    let Held((mut incoming, listener, first, taken)) =
        common::join_within(&rt, task, LIMIT, "the first connection");
    // In waves of `WAVE`, the shard running between them: the kernel
    // accepts a whole wave at once (a multishot accept drains the backlog),
    // so the pause can come at most one wave late.
    const WAVE: usize = 8;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS / WAVE + 1 {
        for _ in 0..WAVE.min(CLIENTS - clients.len()) {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
        }
        std::thread::sleep(Duration::from_millis(2));
        two_ticks(&rt, 0);
    }
    std::thread::sleep(Duration::from_millis(30));
    two_ticks(&rt, 0);
    let queued = accept_queue_len(lfd) as usize;
    assert!(
        (CLIENTS - BOUND - WAVE..=CLIENTS - BOUND).contains(&queued),
        "{queued} of {CLIENTS} connections wait in the backlog: an unpolled Incoming should \
         keep about {BOUND} accepted and leave the rest there"
    );
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut peers = Vec::new();
            for _ in 0..CLIENTS {
                match incoming.next().timeout(LIMIT).await {
                    Ok(c) => peers.push(c.peer_addr().unwrap()),
                    Err(e) => return Err(e.kind()),
                }
            }
            Ok(Held((incoming, peers)))
        })
        .unwrap();
    let all = common::join_within(&rt, task, LIMIT, "taking the connections");
    let peers = all.as_ref().map(|Held((_, p))| p.clone()).map_err(|e| *e);
    let expected: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    drop((all, clients, first, taken, listener));
    assert_eq!(
        peers,
        Ok(expected),
        "a connection was lost, failed or came out of order"
    );
}

/// Whether the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    // SAFETY: all-zero bytes are a valid `utsname`, which `uname` fills in.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut u) } != 0 {
        return false;
    }
    // SAFETY: `uname` wrote a NUL-terminated release string.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    let version: (u32, u32) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (major, minor)
}
