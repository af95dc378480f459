//! Multishot receives into a `BufRing` around drops, starvation and CQ
//! overflow.
//!
//! - A `RecvMulti` dropped before the kernel saw its SQE is withdrawn and
//!   takes no bytes, as a one-shot receive.
//! - A stream starved for buffers and polled after its runtime is gone ends
//!   with an error instead of waiting for ever; a starved stream is woken by
//!   chunks dropped on a plain thread.
//! - A stream that has ended lets its socket go: `close()` then closes it.
//! - A burst that overflows a small CQ loses no chunk and no connection.

mod common;

use std::future::poll_fn;
use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::TcpListener;

use common::LIMIT;
use common::fixed_io::{arm, first_chunk_or_skip, on_shard, ring_or_skip};
use common::multishot_io::*;
use common::native_io::{Held, SERIAL, read_within, settled_fd_count, two_op_slots, unix_pair};

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
