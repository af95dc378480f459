//! Readiness polls nobody on their shard looks at (op invariant 8, idle
//! pauses): a stream that moved to another shard, or an owner that stopped
//! reading for a while, must not wake an idle shard once per event, and the
//! next wait on the paused poll's shard must still hear the next event.
//!
//! Each event is written while the shard that armed the poll sleeps
//! (`common::until_parked`), so every event the poll still reports is a
//! wake-up of that shard, counted with `ShardStats::parks`.

mod common;

use std::io::{self, Read, Write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::LIMIT;
use common::compat_io::armed_on_shard;

/// The tests of this file count wake-ups: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Events written while the paused shard sleeps.
const ROUNDS: u64 = 60;
/// Wake-ups allowed for them: the pause takes two events (the first only
/// tells the owner), and its cancel may cost one more.
const ALLOWED: u64 = 10;

/// The stream's read waited on shard 0 (the poll is armed there), then the
/// stream moved to shard 1, whose task reads each request only once it is
/// there: after its first read it never waits, so no event is ever taken
/// by a waiter, and the retirement of readiness invariant 1 never runs.
/// Before the idle pause, shard 0 woke once per request, to reap a CQE
/// nobody there wanted (the known limit in the log of 2026-12-07).
#[test]
fn a_stream_moved_to_shard_1_that_never_waits_does_not_wake_shard_0_per_event() {
    let _serial = serial();
    let rt = common::runtime(2);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let s = armed_on_shard(&rt, 0, mine);
    let (go, mut told) = ringlane::channel::<()>(1).unwrap();
    let server = h
        .spawn_pinned(1, async move {
            let mut s = s;
            let mut buf = [0u8; 8];
            while told.recv().await.is_some() {
                s.read_exact(&mut buf).await?;
                s.write_all(&buf).await?;
            }
            Ok::<_, io::Error>(s)
        })
        .unwrap();
    let mut round = |i: u64| {
        common::until_parked(&h, 0);
        peer.write_all(&i.to_le_bytes()).unwrap();
        go.try_send(()).unwrap();
        let mut back = [0u8; 8];
        (&peer)
            .read_exact(&mut back)
            .expect("the echo on shard 1 stalled");
        assert_eq!(u64::from_le_bytes(back), i);
    };
    // The first round's read on shard 1 waits (the handed-over stream was
    // left not ready): its own poll is armed then.
    round(0);
    let before = h.shard_stats(0).unwrap();
    for i in 1..=ROUNDS {
        round(i);
    }
    common::until_parked(&h, 0);
    let after = h.shard_stats(0).unwrap();
    drop(go);
    let s = common::join_within(&rt, server, LIMIT, "the echo on shard 1").unwrap();
    drop(s);
    let wakeups = after.parks - before.parks;
    assert!(
        wakeups <= ALLOWED,
        "idle shard 0 woke {wakeups} times for {ROUNDS} requests read on shard 1 without a wait: \
         the poll it armed once still reports every event"
    );
}

/// An owner on shard 0 took one event, then stops reading while the peer
/// writes (a handler busy elsewhere, a consumer applying back-pressure):
/// the shard is not woken per write. When the owner reads again it gets
/// every byte, and its next wait hears the next write (the paused poll's
/// result is kept, and the wait arms a new one).
#[test]
fn an_owner_that_stops_reading_is_not_woken_per_event_and_hears_the_next_one() {
    let _serial = serial();
    let rt = common::runtime(1);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (go, mut told) = ringlane::channel::<()>(1).unwrap();
    let (read_all, all_read) = std::sync::mpsc::channel();
    let owner = h
        .spawn_pinned(0, async move {
            let mut s = ringlane::compat::UnixStream::from_std(mine)?;
            let mut first = [0u8; 1];
            s.read_exact(&mut first).await?; // waits: the poll is armed
            told.recv().await; // busy elsewhere while the peer writes
            let mut all = vec![0u8; 8 * ROUNDS as usize];
            s.read_exact(&mut all).await?;
            read_all.send(()).unwrap();
            let mut next = [0u8; 8];
            s.read_exact(&mut next).await?; // waits again
            Ok::<_, io::Error>((first[0], all, next))
        })
        .unwrap();
    common::until_parked(&h, 0);
    peer.write_all(&[7]).unwrap();
    common::until_parked(&h, 0);
    let before = h.shard_stats(0).unwrap();
    for i in 0..ROUNDS {
        common::until_parked(&h, 0);
        peer.write_all(&i.to_le_bytes()).unwrap();
    }
    common::until_parked(&h, 0);
    let after = h.shard_stats(0).unwrap();
    go.try_send(()).unwrap();
    // The owner reads what was written, then waits for more.
    all_read
        .recv_timeout(LIMIT)
        .expect("the owner read the writes");
    common::until_parked(&h, 0);
    peer.write_all(&u64::MAX.to_le_bytes()).unwrap();
    let (first, all, next) = common::join_within(&rt, owner, LIMIT, "the owner").unwrap();
    assert_eq!(first, 7);
    let got: Vec<u64> = all
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, (0..ROUNDS).collect::<Vec<_>>());
    assert_eq!(
        u64::from_le_bytes(next),
        u64::MAX,
        "the wait after the pause"
    );
    let wakeups = after.parks - before.parks;
    assert!(
        wakeups <= ALLOWED,
        "shard 0 woke {wakeups} times for {ROUNDS} writes its only task did not read yet"
    );
}

/// A Tokio task reads the stream through the poll shard 0 armed (readiness
/// invariant 5) and is held up while two more events come and shard 0
/// goes idle in between. Its schedule is the Tokio worker's, so the poll
/// must not be idle-paused: paused, every later wait of the Tokio task
/// went through a helper task spawned on shard 0 (counted by shard 0's
/// `tasks_polled`) instead of the poll already armed there.
#[test]
fn a_tokio_task_reading_through_a_shards_poll_keeps_it_while_held_up() {
    const ROUNDS: u64 = 4;
    let _serial = serial();
    let rt = common::runtime(1);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = armed_on_shard(&rt, 0, mine);
    let (go_on, held) = std::sync::mpsc::channel::<()>();
    let (read, reads) = std::sync::mpsc::channel::<u64>();
    let tokio_side = std::thread::spawn(move || {
        let trt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        trt.block_on(async move {
            let mut s = s;
            let mut buf = [0u8; 8];
            for _ in 0..ROUNDS {
                s.read_exact(&mut buf).await?; // waits on shard 0's poll
                read.send(u64::from_le_bytes(buf)).unwrap();
                held.recv().unwrap(); // the worker is held: nothing polls
                for _ in 0..2 {
                    s.read_exact(&mut buf).await?;
                    read.send(u64::from_le_bytes(buf)).unwrap();
                }
            }
            Ok::<_, io::Error>(())
        })
    });
    let mut write = |v: u64| {
        common::until_parked(&h, 0);
        peer.write_all(&v.to_le_bytes()).unwrap();
    };
    let before = h.shard_stats(0).unwrap();
    let mut got = Vec::new();
    for round in 0..ROUNDS {
        write(3 * round);
        got.push(reads.recv_timeout(LIMIT).expect("the Tokio task's read"));
        write(3 * round + 1);
        write(3 * round + 2);
        common::until_parked(&h, 0);
        go_on.send(()).unwrap();
        for _ in 0..2 {
            got.push(reads.recv_timeout(LIMIT).expect("the Tokio task's reads"));
        }
    }
    let after = h.shard_stats(0).unwrap();
    tokio_side.join().unwrap().unwrap();
    assert_eq!(got, (0..3 * ROUNDS).collect::<Vec<_>>());
    let helpers = after.tasks_polled - before.tasks_polled;
    assert_eq!(
        helpers, 0,
        "shard 0 polled {helpers} tasks for a Tokio task's reads: its poll was paused and its \
         waits were forwarded"
    );
}
