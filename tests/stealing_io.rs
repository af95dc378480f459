//! Stolen tasks and what they wait on: a read in flight when its task is
//! stolen, timeouts and sleeps that move with a stolen task, and a
//! stealable receiver bounced between shards. Every wait is bounded.

mod common;

use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringlane::time::{sleep, timeout};

use common::LIMIT;
use common::native_io::poll_once;
use common::stealers::*;

/// What a reading task reports to the test.
#[derive(Debug)]
enum Step {
    /// A read was polled once (pushed to this shard's ring) and waits.
    Submitted(usize),
    /// The task runs here after the hop.
    Moved(usize),
    /// A read completed with these bytes.
    Got(Vec<u8>),
}

fn submitted(step: Step) -> usize {
    match step {
        Step::Submitted(s) => s,
        other => panic!("expected a submission, got {other:?}"),
    }
}

fn moved(step: Step) -> usize {
    match step {
        Step::Moved(s) => s,
        other => panic!("expected a move, got {other:?}"),
    }
}

fn got(step: Step) -> Vec<u8> {
    match step {
        Step::Got(b) => b,
        other => panic!("expected bytes, got {other:?}"),
    }
}

/// A stealable task reads a socket while it moves between shards.
///
/// 1. A read is submitted to shard A's ring; A is blocked; a wake-up from a
///    plain thread makes shard B run the task, which polls the read there
///    (still in flight on A). The peer writes "payload" and A is let go:
///    the task must get exactly "payload" (op invariant 1: the op stays on
///    A's ring, its shared cell delivers the result wherever the task is).
/// 2. (Rings with `DEFER_TASKRUN`, where a blocked shard's ring cannot
///    consume socket data.) A read is submitted on A', A' is blocked, the
///    task hops to B' and *drops* the read there: its `ASYNC_CANCEL` waits
///    in blocked A''s mailbox. The task reads again on B', the peer writes
///    "second": the new read must get it while A' is still blocked.
/// 3. Once A' has run the cancel, "third" must reach the next read, whole:
///    the dropped read neither swallowed nor duplicated anything.
#[test]
fn a_read_in_flight_when_its_task_is_stolen_delivers_its_bytes_exactly_once() {
    use ringlane::native::net::UnixStream;
    let rt = common::runtime(2);
    let h = rt.handle();
    let with_drop = h.ring_features().defer_taskrun;
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (step_tx, steps) = mpsc::channel::<Step>();
    let (hop1_tx, hop1) = tokio::sync::oneshot::channel::<()>();
    let (hop2_tx, hop2) = tokio::sync::oneshot::channel::<()>();
    let reader = h
        .spawn_stealable(async move {
            let sock = UnixStream::from_std(ours);
            let here = || ringlane::current_shard().unwrap();
            let take = |(n, buf): (std::io::Result<usize>, Vec<u8>)| {
                buf[..n.expect("a read failed")].to_vec()
            };
            // 1: submitted here, polled elsewhere, completed on this ring.
            let mut read = Box::pin(sock.read(vec![0u8; 64]));
            assert!(
                poll_once(&mut read).await,
                "a read of an empty socket completed"
            );
            step_tx.send(Step::Submitted(here())).unwrap();
            hop1.await.unwrap();
            step_tx.send(Step::Moved(here())).unwrap();
            let first = take(read.await);
            step_tx.send(Step::Got(first)).unwrap();
            // 2: submitted here, dropped elsewhere; the next read elsewhere.
            if with_drop {
                let mut read = Box::pin(sock.read(vec![0u8; 64]));
                assert!(
                    poll_once(&mut read).await,
                    "a read of an empty socket completed"
                );
                step_tx.send(Step::Submitted(here())).unwrap();
                hop2.await.unwrap();
                drop(read);
                step_tx.send(Step::Moved(here())).unwrap();
                let second = take(sock.read(vec![0u8; 64]).await);
                step_tx.send(Step::Got(second)).unwrap();
            }
            // 3
            take(sock.read(vec![0u8; 64]).await)
        })
        .unwrap();

    let a = submitted(report_of(&steps, "the first read's submission"));
    common::until_parked(&h, a); // its enter has taken the read's SQE
    let hold = common::block_shard(&rt, a);
    hop1_tx.send(()).unwrap();
    let hop = steps.recv_timeout(LIMIT);
    if hop.is_ok() {
        peer.write_all(b"payload").unwrap();
    }
    common::join_within(&rt, hold.release(), LIMIT, "the blocker");
    let b = moved(hop.expect("the task never ran elsewhere while its shard was blocked"));
    assert_eq!(b, other(a), "it ran on its blocked shard?");
    assert_eq!(
        got(report_of(&steps, "the first read")),
        b"payload",
        "the read that moved with its task lost or mangled its bytes"
    );

    if with_drop {
        let a2 = submitted(report_of(&steps, "the second read's submission"));
        common::until_parked(&h, a2);
        let hold = common::block_shard(&rt, a2);
        hop2_tx.send(()).unwrap();
        let hop = steps.recv_timeout(LIMIT);
        let second = hop.as_ref().ok().and_then(|_| {
            peer.write_all(b"second").unwrap();
            steps.recv_timeout(LIMIT).ok()
        });
        common::join_within(&rt, hold.release(), LIMIT, "the blocker");
        // Back from its blocker, A' runs its mailbox (the cancel) before it
        // parks again.
        common::until_parked(&h, a2);
        let b2 = moved(hop.expect("the task never ran elsewhere while its shard was blocked"));
        assert_eq!(b2, other(a2));
        let second = second.map(got);
        assert_eq!(
            second.as_deref(),
            Some(&b"second"[..]),
            "a read dropped on another shard, its cancel queued on its blocked home, kept the \
             next read from getting the bytes"
        );
    }

    peer.write_all(b"third").unwrap();
    let third = common::join_within(&rt, reader, LIMIT, "the last read");
    assert_eq!(
        third, b"third",
        "bytes lost or duplicated by a moved or dropped read"
    );
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
}

/// A stealable task's `timeout` is armed on shard A; A is blocked and the
/// timeout's inner future is woken (not finished) from a plain thread, so
/// shard B polls the task: the timeout's delay must move to B's wheel and
/// fire there, on time, while A is still blocked. Then a `sleep` armed on B
/// is stolen the same way back to A (B now blocked) and must fire on A.
///
/// Expected: `Elapsed` from the timeout, never early (both waits last at
/// least their duration), each firing on the shard the task was stolen to
/// (sleep rule 2: a timer polled away from its wheel deregisters through its
/// shard's mailbox and registers where it is polled).
#[test]
fn a_stolen_tasks_timeout_and_sleep_move_with_it_while_its_shard_is_blocked() {
    const WAIT: Duration = Duration::from_millis(200);
    let rt = common::runtime(2);
    let h = rt.handle();
    let (report_tx, reports) = mpsc::channel::<usize>();
    let (kick1_tx, kick1) = tokio::sync::oneshot::channel::<()>();
    let (kick2_tx, kick2) = tokio::sync::oneshot::channel::<()>();
    let (never_tx, never) = tokio::sync::oneshot::channel::<()>();
    let task = h
        .spawn_stealable(async move {
            let here = || ringlane::current_shard().unwrap();
            let started = Instant::now();
            let mut bounded = Box::pin(timeout(WAIT, async move {
                kick1.await.unwrap();
                never.await
            }));
            assert!(poll_once(&mut bounded).await, "nothing was ready yet");
            report_tx.send(here()).unwrap();
            let outcome = bounded.await;
            let (fired_on, took) = (here(), started.elapsed());
            let started = Instant::now();
            let mut nap = Box::pin(sleep(WAIT));
            assert!(poll_once(&mut nap).await, "a 200 ms sleep ended at once");
            report_tx.send(here()).unwrap();
            kick2.await.unwrap();
            let kicked_on = here();
            nap.await;
            (
                outcome.is_err(),
                fired_on,
                took,
                kicked_on,
                here(),
                started.elapsed(),
            )
        })
        .unwrap();
    let a = report_of(&reports, "the timeout's first poll");
    let hold = common::block_shard(&rt, a);
    kick1_tx.send(()).unwrap();
    // The next report comes after the timeout fired: A must still be blocked.
    let b = reports.recv_timeout(LIMIT);
    common::join_within(&rt, hold.release(), LIMIT, "the first blocker");
    let b = b.expect("the stolen task's timeout never fired while its first shard was blocked");
    let hold = common::block_shard(&rt, b);
    kick2_tx.send(()).unwrap();
    let out = rt.block_on(timeout(LIMIT, task));
    common::join_within(&rt, hold.release(), LIMIT, "the second blocker");
    let (elapsed, fired_on, took, kicked_on, ended_on, napped) = out
        .expect("the stolen task's sleep never fired while its shard was blocked")
        .unwrap();
    assert!(
        elapsed,
        "the timeout's future never finished: it had to time out"
    );
    assert_eq!(
        fired_on,
        other(a),
        "the timeout fired on its blocked shard?"
    );
    assert_eq!(b, fired_on);
    assert!(took >= WAIT, "the moved timeout fired early: {took:?}");
    assert_eq!((kicked_on, ended_on), (other(b), other(b)));
    assert!(napped >= WAIT, "the moved sleep fired early: {napped:?}");
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    drop(never_tx);
}

/// Runs one receiver bounce (see the test below) on `rt`.
fn bounce_a_stealable_receiver(rt: &ringlane::Runtime) {
    const HOPS: u64 = 8;
    const PER: u64 = 50;
    let h = rt.handle();
    let total = (HOPS * PER * 2) as usize;
    let (tx, mut rx) = ringlane::channel::<(usize, u64)>(1024).unwrap();
    let (report_tx, reports) = mpsc::channel::<(usize, Vec<(usize, u64)>)>();
    let receiver = h
        .spawn_stealable(async move {
            report_tx
                .send((ringlane::current_shard().unwrap(), Vec::new()))
                .unwrap();
            let mut got = 0;
            let mut buf = Vec::new();
            while got < total {
                let n = rx.recv_many(&mut buf, 256).await;
                assert!(n > 0, "the stream ended with {got} of {total}");
                got += n;
                let batch = std::mem::take(&mut buf);
                report_tx
                    .send((ringlane::current_shard().unwrap(), batch))
                    .unwrap();
            }
            got
        })
        .unwrap();
    let (mut last, _) = report_of(&reports, "the receiver's first poll");
    let mut next = [0u64; 2];
    let mut received = 0usize;
    for hop in 0..HOPS {
        // The receiver waits; the shard it last ran on is now blocked.
        let hold = common::block_shard(rt, last);
        let free = other(last);
        for i in 0..PER {
            tx.try_send((0, hop * PER + i)).unwrap(); // wakes it through the injector
        }
        let tx1 = tx.clone();
        let sender = h
            .spawn_pinned(free, async move {
                for i in 0..PER {
                    tx1.send((1, hop * PER + i)).await.unwrap(); // through free's deque
                }
            })
            .unwrap();
        let want = received + 2 * PER as usize;
        let mut problems = Vec::new();
        while received < want {
            let Ok((shard, batch)) = reports.recv_timeout(LIMIT) else {
                problems.push(format!("stalled at {received} of {want}"));
                break;
            };
            if shard != free {
                problems.push(format!("a batch was received on blocked shard {shard}"));
            }
            for (id, seq) in batch {
                if seq != next[id] {
                    problems.push(format!("sender {id}: got {seq}, expected {}", next[id]));
                }
                next[id] = seq + 1;
                received += 1;
            }
        }
        common::join_within(rt, hold.release(), LIMIT, "the blocker");
        assert!(problems.is_empty(), "hop {hop}: {problems:?}");
        common::join_within(rt, sender, LIMIT, "the pinned sender");
        last = free;
    }
    drop(tx);
    assert_eq!(
        common::join_within(rt, receiver, LIMIT, "the receiver"),
        total
    );
}

/// A stealable task owns a channel's receiver and is bounced between the
/// two shards eight times: each time the shard it last ran on is blocked
/// and 100 messages arrive, half from a plain thread (a waker called off the
/// runtime: injector) and half from a pinned task on the free shard (its
/// deque). Run with parking shards (doorbells) and with spinning ones
/// (which find the injected wake-ups by their spin's looks, unrung).
///
/// Expected: the receiver runs on the free shard each time, and gets every
/// message exactly once, in each sender's order, with no lost wake-up
/// (channel guarantees; the waker path for stealable receivers).
#[test]
fn a_stealable_receiver_bounced_between_shards_gets_every_message_once_in_order() {
    bounce_a_stealable_receiver(&common::runtime(2));
    let spinning = ringlane::Runtime::builder()
        .shards(2)
        .spin_before_park(Duration::from_micros(200))
        .build()
        .unwrap();
    bounce_a_stealable_receiver(&spinning);
}
