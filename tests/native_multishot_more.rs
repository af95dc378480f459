//! Multishot accepts and zero-copy sends around drops and shutdown.
//!
//! - A zero-copy send dropped between its two CQEs keeps its buffer.
//! - Shutdown with streams armed on both shards closes every fd.
//! - A listener closed while its `Incoming` is armed closes once the stream
//!   is dropped.
//! - An unpolled `Incoming` keeps about its bound (64) of connections and
//!   leaves the rest in the kernel's backlog.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::BufRing;
use ringlane::native::net::{TcpListener, TcpStream};

use common::LIMIT;
use common::fixed_io::{arm, first_chunk_or_skip, on_shard, ring_or_skip};
use common::multishot_io::*;
use common::native_io::{
    Held, SERIAL, accept_queue_len, poll_once, settled_fd_count, two_ticks, unix_pair,
    until_drained,
};

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
    // A tiny receive window: what the peer does not read stays queued.
    let (listener, addr) = tiny_window_listener();
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
