//! How long registered resources live: a pool dropped with reads in
//! flight, ring chunks that outlive their stream and ring, resources used
//! from a Tokio task, and a buffer given back past stuck and dropped
//! waiters. Every wait is bounded.

mod common;

use std::io::{self, ErrorKind, Write};
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, FixedBufPool};
use ringlane::native::fs::File;

use common::LIMIT;
use common::fixed_io::*;
use common::native_io::{TempDir, poll_once, two_ticks, unix_pair};

/// Expected: with every `FixedBufPool` handle dropped while reads into its
/// buffers are in flight (one completing, one cancelled), the pool stays
/// registered: a new pool gets other slots meanwhile. The completing read
/// delivers exactly the value written, into its own buffer (the new pool's
/// bytes are untouched); the cancelled one takes nothing (the next value
/// goes to the next read). Once both ops ended, the slots come back.
///
/// Why: the kernel writes into a fixed buffer until the op's CQE, so the
/// pool's memory and slots must outlive the last handle (fixed invariant
/// 2); freeing them with the handle would hand the same slots (and
/// memory) to the next pool while the kernel still writes there, and never
/// freeing them would leak the slots.
#[test]
fn a_pool_dropped_with_reads_in_flight_keeps_its_slots_until_the_kernel_is_done() {
    const VALUE: u64 = 0x0102_0304_0506_0708;
    let rt = common::runtime(1);
    let (e1, e2) = (eventfd(), eventfd());
    let (e1_writer, e2_writer) = (e1.try_clone().unwrap(), e2.try_clone().unwrap());
    let (reader, slots, other, e2_again) = on_shard(&rt, 0, LIMIT, async move {
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let (b1, b2) = (pool.try_get().unwrap(), pool.try_get().unwrap());
        let slots = [index(&b1), index(&b2)];
        let f1 = File::from(e1).register().unwrap();
        let f2 = File::from(e2);
        let e2_again = f2.clone();
        let mut completing = Box::pin(async move { f1.read_fixed_at(b1, 0).await });
        assert!(
            poll_once(&mut completing).await,
            "a read of an empty eventfd waits"
        );
        let mut cancelled = Box::pin(async move { f2.read_fixed_at(b2, 0).await });
        assert!(poll_once(&mut cancelled).await);
        drop(cancelled); // in flight: its buffer is the kernel's until the cancel's CQE
        drop(pool); // no handle left: only the two ops hold the pool
        let reader = ringlane::spawn_local(async move {
            let (n, buf) = completing.await;
            (n.map_err(|e| e.to_string()), buf.to_vec())
        })
        .unwrap();
        let other = FixedBufPool::new(2, 4096).unwrap();
        let mut c = other.try_get().unwrap();
        assert!(
            !slots.contains(&index(&c)),
            "slot {} of a pool whose reads are in flight was handed out again",
            index(&c)
        );
        c.put_slice(&[0xCC; 4096]);
        (reader, slots, (other, c), e2_again)
    });
    eventfd_write(&e1_writer, VALUE);
    let (n, bytes) = common::join_within(&rt, reader, LIMIT, "the read into the dropped pool");
    assert_eq!(n, Ok(8));
    assert_eq!(bytes, VALUE.to_ne_bytes(), "the read's bytes");
    let (other, c) = other;
    assert!(
        c.len() == 4096 && c.iter().all(|&b| b == 0xCC),
        "a read into the dropped pool wrote into another pool's buffer"
    );
    drop((c, other));
    // The cancelled read took nothing: the next value goes to the next read.
    two_ticks(&rt, 0);
    eventfd_write(&e2_writer, 42);
    let next = on_shard(&rt, 0, LIMIT, async move {
        let (n, buf) = e2_again
            .read_at(Vec::with_capacity(8), 0)
            .timeout(LIMIT)
            .await;
        assert_eq!(n.expect("the cancelled read swallowed the value"), 8);
        u64::from_ne_bytes(buf[..8].try_into().unwrap())
    });
    assert_eq!(next, 42);
    let reused = on_shard(&rt, 0, LIMIT, async move {
        let deadline = Instant::now() + LIMIT;
        loop {
            let pool = FixedBufPool::new(2, 4096).unwrap();
            if index(&pool.try_get().unwrap()) == slots[0] {
                return true;
            }
            drop(pool);
            if Instant::now() >= deadline {
                return false;
            }
            ringlane::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(reused, "the dropped pool's slots {slots:?} never came back");
}

/// Expected: chunks of a `BufRing` outlive the stream that received them
/// (dropped with its receive in flight) and the ring handle; a chunk read
/// and dropped on a plain thread gives its buffer back to the kernel (the
/// next stream receives into exactly that buffer), while any chunk lives
/// the ring's group id is not handed out again, and once the last chunk is
/// dropped on a plain thread the group is unregistered and reused.
///
/// Why: the give-back from another thread writes the ring's tail under its
/// lock; the group must stay registered (and its memory alive) while a
/// chunk can still be read, and be unregistered through the shard's
/// mailbox when the last holder is on another thread: a lost give-back
/// starves the next stream, an early unregistration frees memory a chunk
/// still reads, a lost one leaks the group.
#[test]
fn ring_chunks_outliving_their_stream_and_ring_come_back_from_other_threads() {
    let rt = common::runtime(1);
    let phase1 = on_shard(&rt, 0, LIMIT, async {
        let ring = ring_or_skip(2, 16)?;
        let g = group(&ring);
        let (ours, _, mut peer) = unix_pair();
        peer.write_all(b"0123456789abcdef").unwrap();
        let mut chunks = ours.recv_multi(&ring);
        let c1 = first_chunk_or_skip(&mut chunks).await?;
        assert_eq!(&c1[..], b"0123456789abcdef");
        peer.write_all(b"ghijklmnopqrstuv").unwrap();
        let c2 = chunks
            .next()
            .timeout(LIMIT)
            .await
            .expect("the stream ended")
            .expect("the second chunk");
        assert_eq!(&c2[..], b"ghijklmnopqrstuv");
        assert!(arm(&mut chunks).await, "armed on an empty socket");
        drop(chunks); // its receive in flight: cancelled
        Some((ring, g, c1, c2, ours, peer))
    });
    let Some((ring, g, c1, c2, ours, mut peer)) = phase1 else {
        return;
    };
    two_ticks(&rt, 0); // the dropped stream's cancel has reached the kernel
    let c1_bid = c1.buffer_id();
    std::thread::spawn(move || {
        assert_eq!(&c1[..], b"0123456789abcdef");
        drop(c1);
    })
    .join()
    .unwrap();
    let c2 = on_shard(&rt, 0, LIMIT, async move {
        let mut chunks = ours.recv_multi(&ring);
        assert!(arm(&mut chunks).await, "armed on an empty socket");
        peer.write_all(b"wxyz0123wxyz0123").unwrap();
        let c3 = chunks
            .next()
            .timeout(LIMIT)
            .await
            .expect("the stream ended")
            .expect("a chunk in the buffer given back on another thread");
        assert_eq!(&c3[..], b"wxyz0123wxyz0123");
        assert_eq!(c3.buffer_id(), c1_bid, "the only free buffer");
        drop((chunks, ring, c3)); // the receive in flight again
        let other = BufRing::new(2, 16).unwrap();
        assert_ne!(
            group(&other),
            g,
            "a group handed out again while a chunk of it lives"
        );
        drop(other);
        c2
    });
    std::thread::spawn(move || {
        assert_eq!(
            &c2[..],
            b"ghijklmnopqrstuv",
            "a chunk past its stream and ring"
        );
        drop(c2);
    })
    .join()
    .unwrap();
    let reused = on_shard(&rt, 0, LIMIT, async move {
        let deadline = Instant::now() + LIMIT;
        loop {
            let ring = BufRing::new(2, 16).unwrap();
            if group(&ring) == g {
                return true;
            }
            drop(ring);
            if Instant::now() >= deadline {
                return false;
            }
            ringlane::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(
        reused,
        "group {g} never came back after its last chunk was dropped"
    );
}

/// Expected: from a Tokio task, every op naming a registered file or a
/// fixed buffer, and a multishot receive on a ring, fails at once with
/// `InvalidInput` and a message that says to use a shard; registering a
/// file and creating a pool or a ring fail with a clear error; nothing
/// panics or hangs. The buffers come back intact (same bytes, same
/// length), a buffer dropped on the Tokio thread returns to the pool, the
/// refused stream takes neither bytes nor ring buffers, everything works
/// afterwards on its shard, and the refused write never reaches the file.
///
/// Why: these handles are `Send`, so they end up in Tokio tasks; the
/// checks must run before anything is pushed to any ring, and hand the
/// resources back. `File::register` documents "elsewhere they fail with
/// `InvalidInput`" and op invariant 10 says "polled anywhere else it fails
/// with `InvalidInput`" (as a multishot receive does), but an op future
/// checks for a shard context before its binding and says `Other`: a
/// caller matching `InvalidInput` misses it. The kinds are checked last,
/// after everything else held.
#[test]
fn registered_resources_used_from_a_tokio_task_fail_clearly_and_stay_usable() {
    let rt = common::runtime(1);
    let dir = TempDir::new("fixedadv-tokio");
    let path = &dir.0.join("f");
    std::fs::write(path, b"tokio-side bytes").unwrap();
    let p = path.clone();
    let (plain, fixed, pool, ring, ours, mut peer) = on_shard(&rt, 0, LIMIT, async move {
        let plain = open_rw(&p);
        let fixed = plain.register().unwrap();
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let ring = ring_or_skip(2, 16);
        let (ours, _, peer) = unix_pair();
        (plain, fixed, pool, ring, ours, peer)
    });
    let tokio_rt = tokio_runtime();
    let back = tokio_rt.block_on(async move {
        let task = tokio::spawn(async move {
            let says_shard = |what: &str, e: io::Error| {
                assert!(e.to_string().contains("shard"), "{what}: {e}");
            };
            // The ops' error kinds, checked at the very end.
            let mut kinds = Vec::new();
            let mut refused = |what: &'static str, r: io::Result<usize>| match r {
                Err(e) => {
                    kinds.push((what, e.kind()));
                    says_shard(what, e);
                }
                Ok(n) => panic!("{what} went through off the shards ({n} bytes)"),
            };
            let (r, v) = fixed.read_at(Vec::with_capacity(32), 0).await;
            refused("read_at on a registered file", r);
            assert!(v.is_empty());
            let mut buf = pool.get().await;
            buf.put_slice(b"keep me");
            let (r, buf) = plain.read_fixed_at(buf, 0).await;
            refused("read_fixed_at", r);
            let (r, buf) = fixed.read_fixed_at(buf, 0).await;
            refused("read_fixed_at on a registered file", r);
            let (r, buf) = fixed.write_fixed_at(buf, 0).await;
            refused("write_fixed_at on a registered file", r);
            assert_eq!(&buf[..], b"keep me", "a refused op changed the buffer");
            says_shard("register again", fixed.register().unwrap_err());
            says_shard("register", plain.register().unwrap_err());
            says_shard("a pool", FixedBufPool::new(1, 4096).unwrap_err());
            says_shard("a ring", BufRing::new(2, 16).unwrap_err());
            drop(pool.try_get().expect("the second buffer")); // back from this thread
            assert_eq!(pool.available(), 1);
            if let Some(ring) = &ring {
                peer.write_all(b"0123456789abcdef").unwrap();
                let mut stream = ours.recv_multi(ring);
                match stream.next().await {
                    Some(Err(e)) => {
                        kinds.push(("recv_multi", e.kind()));
                        says_shard("recv_multi", e);
                    }
                    other => panic!("a multishot receive on a Tokio task: {other:?}"),
                }
                assert!(stream.next().await.is_none(), "the refused stream ended");
            }
            (buf, plain, fixed, pool, ring, ours, peer, kinds)
        });
        match tokio::time::timeout(LIMIT, task).await {
            Err(_) => panic!("the Tokio task hung"),
            Ok(Ok(v)) => v,
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("the Tokio task: {e}"),
        }
    });
    tokio_rt.shutdown_timeout(LIMIT);
    let (buf, plain, fixed, pool, ring, ours, mut peer, kinds) = back;
    on_shard(&rt, 0, LIMIT, async move {
        let (n, buf) = plain.read_fixed_at(buf, 0).await;
        assert_eq!(n.unwrap(), 16);
        assert_eq!(&buf[..], b"tokio-side bytes");
        let (n, buf) = fixed.read_fixed_at(buf, 6).await;
        assert_eq!(n.unwrap(), 10);
        assert_eq!(&buf[..], b"side bytes");
        drop(buf);
        assert_eq!(pool.available(), 2);
        let Some(ring) = ring else { return };
        let mut chunks = ours.recv_multi(&ring);
        let Some(c1) = first_chunk_or_skip(&mut chunks).await else {
            return;
        };
        assert_eq!(
            &c1[..],
            b"0123456789abcdef",
            "the refused stream took no byte"
        );
        peer.write_all(b"ghijklmnopqrstuv").unwrap();
        let c2 = chunks
            .next()
            .timeout(LIMIT)
            .await
            .expect("the stream ended")
            .expect("a second buffer: the refused stream lost none");
        assert_eq!(&c2[..], b"ghijklmnopqrstuv");
        assert_ne!(c1.buffer_id(), c2.buffer_id());
    });
    assert_eq!(
        std::fs::read(path).unwrap(),
        b"tokio-side bytes",
        "a refused write reached the file"
    );
    let not_invalid: Vec<_> = kinds
        .iter()
        .filter(|(_, kind)| *kind != ErrorKind::InvalidInput)
        .collect();
    assert!(
        not_invalid.is_empty(),
        "ops naming registered resources, polled off the shards, must fail with InvalidInput \
         (File::register's docs, op invariant 10), as recv_multi does: {not_invalid:?}"
    );
}

/// Expected: with the pool's only buffer out and three waiters (one on a
/// shard that is then blocked by CPU-bound code, one on a free shard, one
/// on a Tokio task that gives up), giving the buffer back (from a plain
/// thread) reaches the waiter on the free shard within the limit, whether
/// the stuck waiter registered first or last; the stuck waiter, aborted,
/// ends; the buffer ends up back in the pool. Twice, one per order.
///
/// Why: a give-back that woke only one waiter would hand its buffer to the
/// stuck (or dropped) one while the free one sleeps; a dropped waiter that
/// left its slot behind would be woken in place of a live one.
#[test]
fn a_buffer_given_back_reaches_a_live_waiter_past_a_stuck_one_and_a_dropped_one() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let pool = on_shard(&rt, 0, LIMIT, async { FixedBufPool::new(1, 4096).unwrap() });
    let tokio_rt = tokio_runtime();
    for stuck_first in [true, false] {
        let held = pool.try_get().expect("the only buffer is free");
        let waiter = |shard: usize| {
            let p = pool.clone();
            h.spawn_pinned(shard, async move { p.get().await.capacity() })
                .unwrap()
        };
        let (stuck, blocker, live) = if stuck_first {
            let stuck = waiter(1);
            common::until_parked(&h, 1);
            let blocker = common::block_shard(&rt, 1);
            let live = waiter(0);
            common::until_parked(&h, 0);
            (stuck, blocker, live)
        } else {
            let live = waiter(0);
            common::until_parked(&h, 0);
            let stuck = waiter(1);
            common::until_parked(&h, 1);
            let blocker = common::block_shard(&rt, 1);
            (stuck, blocker, live)
        };
        let p = pool.clone();
        let gave_up = tokio_rt.block_on(async move {
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(20), p.get())
                    .await
                    .is_err()
            })
            .await
            .unwrap()
        });
        assert!(gave_up, "the Tokio waiter got a buffer that is held");
        assert!(!live.is_finished() && !stuck.is_finished(), "no buffer yet");
        drop(held);
        let got = common::join_within(
            &rt,
            live,
            LIMIT,
            "the live waiter (the give-back woke only the stuck one?)",
        );
        assert_eq!(got, 4096);
        stuck.abort();
        common::join_within(&rt, blocker.release(), LIMIT, "the blocker");
        match rt.block_on(ringlane::time::timeout(LIMIT, stuck)) {
            Err(_) => panic!("the aborted waiter never ended"),
            Ok(Ok(capacity)) => assert_eq!(capacity, 4096), // ran before the abort
            Ok(Err(e)) => assert!(e.is_cancelled(), "{e}"),
        }
        common::wait_until("the buffer back in the pool", || pool.available() == 1);
    }
    tokio_rt.shutdown_timeout(LIMIT);
}
