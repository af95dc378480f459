//! The readiness engine's waits across shards, runtimes and op-table
//! limits: many pairs on a tiny ring, sockets and runtimes dropped under
//! waiters, a graceful shutdown with a poll another shard's task awaits,
//! and waits forwarded from Tokio tasks.

mod common;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ringlane::compat::UnixStream;

use common::LIMIT;
use common::compat_io::*;

/// Many socket pairs on one shard whose ring has 2 SQ entries and 8 CQ
/// entries (`runtime_with_room_for_two_ops`). 32 pairs echo 256 KiB each
/// (more than a Unix socket buffer, so writers, echoers and readers all
/// wait: 96 tasks): the multishot polls' CQEs overflow the CQ, the
/// kernel ends those polls (a final CQE without `F_MORE`), and each must be
/// re-armed through an SQ with room for two SQEs per tick. Every byte must
/// come back. Then 32 fresh idle readers wait: the shard must park and stay
/// asleep, and one byte to each must wake each reader (no poll lost while
/// idle).
#[test]
fn many_socket_pairs_on_a_two_entry_ring_lose_no_wake_up_and_the_shard_goes_quiet() {
    const PAIRS: usize = 32;
    const BYTES: usize = 256 << 10;
    let rt = common::runtime_with_room_for_two_ops();
    let h = rt.handle();
    let echo = h
        .spawn_local_on(0, || async {
            let mut readers = Vec::new();
            let mut others = Vec::new();
            for i in 0..PAIRS {
                let (a, b) = UnixStream::pair()?;
                others.push(ringlane::spawn_local(async move {
                    let mut b = b;
                    let (mut r, mut w) = b.split();
                    tokio::io::copy(&mut r, &mut w).await
                })?);
                let (mut r, mut w) = a.into_split();
                others.push(ringlane::spawn_local(async move {
                    w.write_all(&pattern(BYTES, i as u8)).await?;
                    // Dropping the write half shuts the write side down.
                    Ok::<_, io::Error>(BYTES as u64)
                })?);
                readers.push(ringlane::spawn_local(async move {
                    let mut got = Vec::with_capacity(BYTES);
                    r.read_to_end(&mut got).await?;
                    Ok::<_, io::Error>(got == pattern(BYTES, i as u8))
                })?);
            }
            let mut intact = 0;
            for r in readers {
                if r.await?? {
                    intact += 1;
                }
            }
            for o in others {
                assert_eq!(o.await??, BYTES as u64);
            }
            Ok::<_, io::Error>(intact)
        })
        .unwrap();
    let intact = common::join_within(&rt, echo, LIMIT, "the echo over a tiny ring").unwrap();
    assert_eq!(intact, PAIRS, "some connections got other bytes back");

    let idle = h
        .spawn_local_on(0, || async {
            let mut peers = Vec::new();
            let mut idle = Vec::new();
            for _ in 0..PAIRS {
                let (a, b) = std::os::unix::net::UnixStream::pair()?;
                let mut a = UnixStream::from_std(a)?;
                idle.push(ringlane::spawn_local(async move {
                    let mut byte = [0u8; 1];
                    a.read_exact(&mut byte).await.map(|_| byte[0])
                })?);
                peers.push(b);
            }
            Ok::<_, io::Error>((peers, idle))
        })
        .unwrap();
    let (mut peers, idle) = common::join_within(&rt, idle, LIMIT, "the idle readers").unwrap();
    assert_quiet(&h, 0, "32 idle readers on a tiny ring");
    for (i, p) in peers.iter_mut().enumerate() {
        p.write_all(&[i as u8]).unwrap();
    }
    for (i, j) in idle.into_iter().enumerate() {
        let byte = common::join_within(&rt, j, LIMIT, "an idle reader (lost wake-up)").unwrap();
        assert_eq!(byte, i as u8);
    }
}

/// Dropping a socket while a task waits on it, and dropping the runtime
/// under waiters:
/// (A) a stream whose read poll is armed on shard 0 is read by a task on
/// shard 1, which is aborted: the stream drops on shard 1, so the cancel of
/// the poll must travel to shard 0; until it lands the kernel's poll keeps
/// the socket open. The peer must read end of stream.
/// (B) a Tokio task reading a stream whose poll is armed (pushed) on the
/// shard, a Tokio task blocked writing (a forwarded wait), and a shard
/// task reading: the runtime is dropped. Both Tokio tasks must get an
/// error (the cancelled poll's CQE, the cancelled helper's report), not
/// hang; the shard task is cancelled and its socket closed.
#[test]
fn sockets_and_runtimes_dropped_under_waiters_close_the_sockets_and_fail_the_waiters() {
    // (A)
    let rt = common::runtime(2);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = armed_on_shard(&rt, 0, mine);
    let waiter = h
        .spawn_pinned(1, async move {
            let mut s = s;
            let mut byte = [0u8; 1];
            s.read(&mut byte).await
        })
        .unwrap();
    common::until_parked(&h, 1);
    common::until_parked(&h, 0);
    assert!(!waiter.is_finished(), "nothing was written: it must wait");
    waiter.abort();
    let out = rt
        .block_on(ringlane::time::timeout(LIMIT, waiter))
        .expect("the aborted task never ended");
    assert!(out.unwrap_err().is_cancelled());
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let n = peer.read(&mut [0u8; 8]);
    assert!(
        matches!(n, Ok(0)),
        "the stream dropped on shard 1 stayed open (its poll on shard 0 was never cancelled): {n:?}"
    );
    drop(rt);

    // (B)
    let rt = common::runtime(1);
    let h = rt.handle();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
    let (e, mut f) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = armed_on_shard(&rt, 0, a);
    let c = common::join_within(
        &rt,
        h.spawn_pinned(0, async move { UnixStream::from_std(c) })
            .unwrap(),
        LIMIT,
        "making c on the shard",
    )
    .unwrap();
    let shard_reader = h
        .spawn_pinned(0, async move {
            let mut e = UnixStream::from_std(e)?;
            let mut byte = [0u8; 1];
            e.read(&mut byte).await
        })
        .unwrap();
    let tokio_rt = tokio_rt();
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let tokio_reader = tokio_rt.spawn(after_first_poll(
        async move {
            let mut a = a;
            let mut byte = [0u8; 1];
            a.read(&mut byte).await
        },
        polled_tx.clone(),
    ));
    let tokio_writer = tokio_rt.spawn(after_first_poll(
        async move {
            let mut c = c;
            let data = vec![1u8; 16 << 20]; // its peer never reads
            c.write_all(&data).await
        },
        polled_tx,
    ));
    for _ in 0..2 {
        polled.recv_timeout(LIMIT).expect("a Tokio task never ran");
    }
    common::until_parked(&h, 0); // the forwarded write wait reached the shard
    assert!(!tokio_reader.is_finished() && !tokio_writer.is_finished());
    drop(rt);
    let (r, w) = tokio_rt
        .block_on(async {
            tokio::time::timeout(LIMIT, async { (tokio_reader.await, tokio_writer.await) }).await
        })
        .expect("a Tokio task waiting on a compat socket hung after its runtime was dropped");
    let (r, w) = (r.unwrap(), w.unwrap());
    assert!(
        r.is_err(),
        "the read of a stream whose runtime is gone: {r:?}"
    );
    assert!(
        w.is_err(),
        "the blocked write of a stream whose runtime is gone: {w:?}"
    );
    f.set_read_timeout(Some(LIMIT)).unwrap();
    let n = f.read(&mut [0u8; 1]);
    assert!(
        matches!(n, Ok(0)),
        "the cancelled shard task's socket stayed open: {n:?}"
    );
    let out = common::block_on(ringlane::time::timeout(LIMIT, shard_reader))
        .expect("the shard task's join handle never resolved");
    assert!(out.unwrap_err().is_cancelled());
}

/// A graceful shutdown lets tasks run until the deadline, whatever shard
/// the socket they read was first polled on. Here a stream's read poll is
/// armed on shard 0 (the stream waited there once), and a pinned task on
/// shard 1 then reads it: its wait rests on shard 0's ring (readiness
/// invariant 3). Shard 0 has no task, so it exits at once; shard 1 keeps
/// running its reader within the 10 s grace period, and the peer then
/// writes. The reader must get the bytes. Shard 0's exit must not cancel a
/// poll that a live task on another shard awaits (the drain considers only
/// this shard's tasks and stealable ones: a read failing with "Operation
/// canceled" in the middle of a graceful shutdown is the bug).
#[test]
fn a_graceful_shutdown_keeps_a_poll_armed_on_an_idle_shard_for_a_task_on_another() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = armed_on_shard(&rt, 0, mine);
    let reader = h
        .spawn_pinned(1, async move {
            let mut s = s;
            let mut got = [0u8; 5];
            s.read_exact(&mut got).await.map(|_| got)
        })
        .unwrap();
    common::until_parked(&h, 1);
    common::until_parked(&h, 0);
    let shard0 = format!("/proc/self/task/{}", h.shard_stats(0).unwrap().os_tid);
    assert!(std::path::Path::new(&shard0).exists());
    let shutdown = std::thread::spawn(move || rt.shutdown(LIMIT));
    // Until shard 0 has exited (then whatever it cancelled has completed),
    // at most 2 s: a runtime that keeps shard 0 for the reader passes too.
    let began = Instant::now();
    while !h.is_shutdown()
        || (std::path::Path::new(&shard0).exists() && began.elapsed() < Duration::from_secs(2))
    {
        assert!(began.elapsed() < LIMIT, "the shutdown never began");
        std::thread::sleep(Duration::from_millis(1));
    }
    peer.write_all(b"hello").unwrap();
    let got = common::block_on(ringlane::time::timeout(LIMIT, reader))
        .expect("the reader on shard 1 hung during the graceful shutdown")
        .expect("the reader on shard 1 was cancelled within its grace period");
    match got {
        Ok(got) => assert_eq!(&got, b"hello"),
        Err(e) => panic!(
            "a graceful shutdown failed a read on shard 1 with `{e}` ({:?}): idle shard 0 exited and cancelled the poll it had armed for that socket",
            e.kind()
        ),
    }
    let report = shutdown.join().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A Tokio task's wait on a compat socket is forwarded to the socket's
/// home shard, where a helper arms a `POLL_ADD`. On a shard the same wait
/// is a multishot poll that does not count against the op table (the fix
/// for idle connections using it up, `compat_more.rs`); the forwarded one
/// must not count either. Four Tokio tasks wait on four idle sockets of a
/// shard whose op table takes two ops (a few hundred idle connections
/// served from Tokio tasks on the default ring): a native `open` + `read`
/// on that shard must still run, and data to each socket, last first,
/// must wake its reader (a forwarded wait left waiting for room is never
/// armed, so its data is never seen).
#[test]
fn forwarded_waits_of_tokio_tasks_do_not_use_up_the_shards_op_table() {
    let rt = common::runtime_with_room_for_two_ops();
    let h = rt.handle();
    let pairs = common::join_within(
        &rt,
        h.spawn_pinned(0, async {
            let mut pairs = Vec::new();
            for _ in 0..4 {
                let (a, b) = std::os::unix::net::UnixStream::pair()?;
                pairs.push((UnixStream::from_std(a)?, b)); // home: shard 0
            }
            Ok::<_, io::Error>(pairs)
        })
        .unwrap(),
        LIMIT,
        "making the pairs on shard 0",
    )
    .unwrap();
    let tokio_rt = tokio_rt();
    let mut readers = Vec::new();
    let mut peers = Vec::new();
    for (a, b) in pairs {
        let (polled_tx, polled) = std::sync::mpsc::channel();
        let read = async move {
            let mut a = a;
            let mut byte = [0u8; 1];
            a.read_exact(&mut byte).await.map(|_| byte[0])
        };
        readers.push(tokio_rt.spawn(after_first_poll(read, polled_tx)));
        polled
            .recv_timeout(LIMIT)
            .expect("the Tokio task never ran");
        common::until_parked(&h, 0); // its helper ran on the shard
        peers.push(b);
    }
    let native = h
        .spawn_pinned(0, async {
            ringlane::time::timeout(Duration::from_secs(5), async {
                let f = ringlane::native::fs::File::open("/proc/self/stat").await?;
                f.read_at(vec![0u8; 8], 0).await.0
            })
            .await
        })
        .unwrap();
    let n = common::join_within(&rt, native, LIMIT, "a native op on the shard").expect(
        "an open and a read waited for room behind four idle forwarded waits: a Tokio task's wait holds a counted op slot",
    );
    assert_eq!(n.unwrap(), 8);
    for (i, (peer, reader)) in peers.iter_mut().zip(readers.iter_mut()).enumerate().rev() {
        peer.write_all(&[i as u8]).unwrap();
        let got = tokio_rt
            .block_on(async { tokio::time::timeout(LIMIT, reader).await })
            .unwrap_or_else(|_| {
                panic!("reader {i} never saw its byte: its forwarded wait was never armed")
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, i as u8);
    }
}

// ---------------------------------------------------------------------------
// Datagrams and AsyncFd
// ---------------------------------------------------------------------------
