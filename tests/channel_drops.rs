//! Every channel message dropped exactly once, in the right place:
//! zero-sized messages through fill, drain, close and drop; Tokio senders
//! racing the receiver's drop; a watched receiver moved off its blocked
//! home shard; a `send_many` whose iterator panics after waiting for room;
//! queued messages dropped on the receiver's shard at task end, abort and
//! shutdown.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, TryRecvError, TrySendError, channel};

use common::chans::*;
use common::{LIMIT, join_within, wait_until};

static Z_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A zero-sized message that counts its drops.
struct Z;

impl Drop for Z {
    fn drop(&mut self) {
        Z_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Zero-sized messages: the same capacity errors, Full exactly at the
/// capacity over many laps, `len` and `capacity`, a batch of 1,000 through
/// a channel of 3 to a receiver on a shard, and a ZST with `Drop` dropped
/// exactly once on every path.
#[test]
fn zero_sized_messages_fill_drain_close_and_drop_exactly_once() {
    assert!(matches!(channel::<()>(0), Err(Error::InvalidConfig(_))));
    assert!(matches!(
        channel::<()>(usize::MAX),
        Err(Error::InvalidConfig(_))
    ));
    let (tx, mut rx) = channel::<()>(3).unwrap();
    for _ in 0..3 {
        tx.try_send(()).unwrap();
    }
    assert_eq!(tx.try_send(()), Err(TrySendError::Full(())));
    assert_eq!((tx.len(), tx.capacity(), rx.len()), (3, 0, 3));
    for lap in 0..100 {
        assert_eq!(rx.try_recv(), Ok(()), "lap {lap}");
        tx.try_send(()).unwrap();
        assert_eq!(tx.try_send(()), Err(TrySendError::Full(())), "lap {lap}");
    }
    for _ in 0..3 {
        assert_eq!(rx.try_recv(), Ok(()));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let rt = common::runtime(2);
    let consumer = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut n = 0u32;
            while let Some(()) = rx.recv().await {
                n += 1;
            }
            n
        })
        .unwrap();
    rt.block_on(timeout(LIMIT, tx.send_many(std::iter::repeat_n((), 1_000))))
        .expect("a ZST batch stalled")
        .unwrap();
    drop(tx);
    assert_eq!(join_within(&rt, consumer, LIMIT, "the ZST receiver"), 1_000);

    let base = Z_DROPS.load(Ordering::SeqCst);
    let drops = || Z_DROPS.load(Ordering::SeqCst) - base;
    let (tz, mut rz) = channel::<Z>(4).unwrap();
    for _ in 0..4 {
        assert!(tz.try_send(Z).is_ok());
    }
    assert_eq!(drops(), 0);
    match tz.try_send(Z) {
        Err(TrySendError::Full(z)) => drop(z),
        _ => panic!("expected Full"),
    }
    assert_eq!(drops(), 1, "the refused ZST comes back, dropped once");
    drop(rz.try_recv().unwrap());
    assert_eq!(drops(), 2);
    rz.close();
    let returned = rt
        .block_on(tz.send_many(vec![Z, Z, Z]))
        .expect_err("the receiver closed");
    assert_eq!(returned.0.len(), 3, "every unsent ZST comes back");
    assert_eq!(drops(), 2, "returned, not dropped");
    drop(returned);
    assert_eq!(drops(), 5);
    for _ in 0..3 {
        drop(rz.try_recv().expect("queued before the close"));
    }
    assert_eq!(drops(), 8);
    assert!(matches!(rz.try_recv(), Err(TryRecvError::Disconnected)));
    assert!(matches!(tz.try_send(Z), Err(TrySendError::Closed(_))));
    assert_eq!(drops(), 9);
    let (tz2, rz2) = channel::<Z>(2).unwrap();
    assert!(tz2.try_send(Z).is_ok());
    assert!(tz2.try_send(Z).is_ok());
    drop(rz2);
    assert_eq!(drops(), 11, "queued ZSTs are dropped with the receiver");
    drop((tz, rz, tz2));
    assert_eq!(drops(), 11, "nothing dropped twice");
}

/// Each round: a Tokio task `send`s 0..20 and another `send_many`s
/// 100..120 into a channel of 2, while the receiving task on shard 1 takes
/// `round % 5` messages and then ends, dropping the receiver with messages
/// queued and both senders waiting or mid-push. This is the bar of
/// `SendError`'s docs and of Tokio's mpsc:
/// * a `send` that fails returns the message it was given, and every
///   earlier one was accepted;
/// * a `send_many` that fails returns exactly its unsent tail, in order;
/// * what was received is a FIFO prefix of what each sender was told was
///   sent;
/// * no more was accepted than was received plus the capacity;
/// * every message ever made is dropped exactly once.
#[test]
fn tokio_senders_racing_the_receivers_drop_deliver_or_get_back_every_message_exactly_once() {
    const ROUNDS: u32 = 150;
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let mut made = 0usize;
    for round in 0..ROUNDS {
        let (tx, mut rx) = channel::<Msg>(2).unwrap();
        let take = (round % 5) as usize;
        let receiver = h
            .spawn_pinned(1, async move {
                let mut got = Vec::new();
                while got.len() < take {
                    match rx.recv().await {
                        Some(m) => got.push(m.id),
                        None => break,
                    }
                }
                got // the receiver is dropped here, with messages queued
            })
            .unwrap();
        let single = {
            let (tx, drops) = (tx.clone(), drops.clone());
            tokio_rt.spawn(async move {
                let mut ok = Vec::new();
                for id in 0..20u32 {
                    let m = Msg {
                        id,
                        drops: drops.clone(),
                    };
                    match tx.send(m).await {
                        Ok(()) => ok.push(id),
                        Err(e) => return (ok, Some(e.0.id)),
                    }
                }
                (ok, None)
            })
        };
        let batch = {
            let tx = tx.clone();
            let items: Vec<Msg> = (100..120u32)
                .map(|id| Msg {
                    id,
                    drops: drops.clone(),
                })
                .collect();
            tokio_rt.spawn(async move {
                tx.send_many(items)
                    .await
                    .map_err(|e| e.0.iter().map(|m| m.id).collect::<Vec<u32>>())
            })
        };
        made += 20;
        drop(tx);
        let got = join_within(&rt, receiver, LIMIT, "the receiving task");
        let (ok, refused) = tokio_rt
            .block_on(async { tokio::time::timeout(LIMIT, single).await })
            .expect("a Tokio send racing the receiver's drop never returned")
            .unwrap();
        made += ok.len() + usize::from(refused.is_some());
        let batch = tokio_rt
            .block_on(async { tokio::time::timeout(LIMIT, batch).await })
            .expect("a Tokio send_many racing the receiver's drop never returned")
            .unwrap();
        assert_eq!(got.len(), take, "round {round}: the receiver was starved");
        assert_eq!(
            ok,
            (0..ok.len() as u32).collect::<Vec<_>>(),
            "round {round}: send accepted out of order"
        );
        assert_eq!(
            refused,
            Some(ok.len() as u32),
            "round {round}: the failed send must return its own message (accepted {ok:?})"
        );
        let sent_batch: Vec<u32> = match &batch {
            Ok(()) => (100..120).collect(),
            Err(rest) => {
                let k = *rest
                    .first()
                    .expect("an error holds at least the refused item");
                assert_eq!(
                    *rest,
                    (k..120).collect::<Vec<_>>(),
                    "round {round}: send_many must return exactly its unsent tail"
                );
                (100..k).collect()
            }
        };
        let from_single: Vec<u32> = got.iter().copied().filter(|&i| i < 100).collect();
        let from_batch: Vec<u32> = got.iter().copied().filter(|&i| i >= 100).collect();
        assert!(
            ok.starts_with(&from_single),
            "round {round}: received {from_single:?} is not a prefix of accepted {ok:?}"
        );
        assert!(
            sent_batch.starts_with(&from_batch),
            "round {round}: received {from_batch:?} is not a prefix of the batch's sent {sent_batch:?}"
        );
        assert!(
            ok.len() + sent_batch.len() <= got.len() + 2,
            "round {round}: {} accepted but {} received with a capacity of 2: accepted \
             messages were lost",
            ok.len() + sent_batch.len(),
            got.len()
        );
    }
    wait_until("every message dropped", || Arc::strong_count(&drops) == 1);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        made,
        "a message was dropped twice, or never"
    );
}

/// A receiver is first watched on spinning shard 0 (its `rx_home`). That
/// wait times out, leaving a stale watch entry and the `WATCHED` mark.
/// Shard 0 is then blocked by a long poll, and the receiver moves to a
/// pinned task on shard 1, which takes the waker path because it is not
/// the home shard. While shard 0 is blocked, shard 1 must get messages
/// 0..200 from a plain thread in order. Then shard 0 is let go, the
/// receiver goes back there (watched again, with the feeder pausing so
/// the shard parks) and must get 200..400 and the end of the stream.
#[test]
fn a_receiver_watched_on_its_home_shard_then_moved_keeps_receiving_while_home_is_blocked() {
    let rt = spinning(2, Duration::from_micros(50));
    let h = rt.handle();
    let (tx, rx) = channel::<u32>(4).unwrap();
    let first = h
        .spawn_pinned(0, async move {
            let mut rx = rx;
            let waited = timeout(Duration::from_millis(2), rx.recv()).await;
            (waited.is_err(), rx)
        })
        .unwrap();
    let (timed_out, rx) = join_within(&rt, first, LIMIT, "the first wait on shard 0");
    assert!(timed_out, "nothing was sent yet");
    let blocker = common::block_shard(&rt, 0);
    let (done_tx, done_rx) = mpsc::channel();
    drop(
        h.spawn_pinned(1, async move {
            let mut rx = rx;
            let mut got = Vec::new();
            while got.len() < 200 {
                match rx.recv().await {
                    Some(v) => got.push(v),
                    None => break,
                }
            }
            let _ = done_tx.send((got, rx));
        })
        .unwrap(),
    );
    let feeder = std::thread::spawn(move || {
        let deadline = Instant::now() + LIMIT;
        for v in 0..400u32 {
            if v % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1)); // let receiving shards park
            }
            let mut m = v;
            loop {
                match tx.try_send(m) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        if Instant::now() >= deadline {
                            return Err(format!("stalled at {v}"));
                        }
                        m = back;
                        std::thread::yield_now();
                    }
                    Err(TrySendError::Closed(_)) => return Err(format!("closed at {v}")),
                }
            }
        }
        Ok(())
    });
    let phase2 = done_rx.recv_timeout(LIMIT);
    let release = blocker.release();
    let (got, rx) =
        phase2.expect("the receiver moved to shard 1 stalled while its home shard 0 was blocked");
    assert_eq!(
        got,
        (0..200).collect::<Vec<_>>(),
        "lost, duplicated or reordered"
    );
    rt.block_on(timeout(LIMIT, release))
        .expect("the blocker never ended")
        .unwrap();
    let third = h
        .spawn_pinned(0, async move {
            let mut rx = rx;
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        })
        .unwrap();
    let got = join_within(
        &rt,
        third,
        LIMIT,
        "the receiver back on shard 0 (watched again)",
    );
    assert_eq!(feeder.join().unwrap(), Ok(()));
    assert_eq!(
        got,
        (200..400).collect::<Vec<_>>(),
        "lost, duplicated or reordered"
    );
}

/// A Tokio task `send_many`s ten drop-counted messages into a channel of 2
/// whose receiver (shard 1) is slow. The batch has to wait for room, and
/// its iterator panics while producing item 6. Another `Sender` lives on,
/// so the stream must not end early. What is expected: items 0-5 arrive
/// in order, with no hang (the pushed items are announced on unwind). The
/// stream ends once the other sender goes. All ten messages are dropped
/// exactly once: six received, item 6 in the panicking closure, and 7-9
/// in the iterator that unwinds.
#[test]
fn send_many_whose_iterator_panics_after_waiting_for_room_delivers_the_prefix_and_drops_each_item_once()
 {
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio_mt(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = channel::<Msg>(2).unwrap();
    let keep = tx.clone();
    let receiver = h
        .spawn_pinned(1, async move {
            let mut ids = Vec::new();
            while let Some(m) = rx.recv().await {
                ids.push(m.id);
                drop(m);
                ringlane::time::sleep(Duration::from_micros(300)).await;
            }
            ids
        })
        .unwrap();
    let batch: Vec<Msg> = (0..10u32)
        .map(|id| Msg {
            id,
            drops: drops.clone(),
        })
        .collect();
    let (pend_tx, pend_rx) = mpsc::channel::<u32>();
    let panicking = tokio_rt.spawn(async move {
        let items = batch.into_iter().inspect(|m| {
            if m.id == 6 {
                panic!("the batch's iterator panics at item 6");
            }
        });
        let _ = signal_pending(tx.send_many(items), pend_tx, 0).await;
    });
    assert_eq!(
        pend_rx.recv_timeout(LIMIT),
        Ok(0),
        "the batch never waited for room (the test needs it to)"
    );
    let err = tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, panicking).await })
        .expect("the panicking batch never ended")
        .unwrap_err();
    assert!(err.is_panic());
    std::thread::sleep(Duration::from_millis(20));
    assert!(!keep.is_closed(), "the receiver lives");
    drop(keep);
    let ids = join_within(
        &rt,
        receiver,
        LIMIT,
        "the receiver after the panicking batch and the last sender",
    );
    assert_eq!(ids, [0, 1, 2, 3, 4, 5], "the pushed prefix, in order, once");
    wait_until("every message dropped", || Arc::strong_count(&drops) == 1);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        10,
        "a message was dropped twice, or never"
    );
}

type ThreadLog = Arc<Mutex<Vec<ThreadId>>>;

/// A message that logs the thread that dropped it.
struct Where(ThreadLog);

impl Drop for Where {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(std::thread::current().id());
    }
}

/// A receiver held by a pinned task on shard 1 has messages queued when the
/// task (a) ends, (b) is aborted from the test thread, (c) is cancelled by
/// `shutdown`. ADR 0005 says tasks are cancelled "on each task's own
/// shard", and the channel docs say queued messages are dropped "on the
/// receiver's side". So every message is dropped exactly once, on shard
/// 1's thread, and with the receiver, while the senders still live.
#[test]
fn queued_messages_are_dropped_once_on_the_receivers_shard_at_task_end_abort_and_shutdown() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let shard1 = join_within(
        &rt,
        h.call_on(1, |_| std::thread::current().id()).unwrap(),
        LIMIT,
        "shard 1's thread id",
    );
    let log: ThreadLog = Arc::default();
    let check = |n: usize, what: &str| {
        wait_until(&format!("{what}: {n} messages dropped"), || {
            log.lock().unwrap().len() >= n
        });
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen.len(), n, "{what}: a message was dropped twice");
        assert!(
            seen.iter().all(|t| *t == shard1),
            "{what}: a queued message was dropped off shard 1 ({seen:?}, shard 1 is {shard1:?})"
        );
    };

    // (a) The task takes one message and ends with two queued.
    let (tx_a, mut rx_a) = channel::<Where>(4).unwrap();
    for _ in 0..3 {
        assert!(tx_a.try_send(Where(log.clone())).is_ok());
    }
    let ended = h
        .spawn_pinned(1, async move {
            let first = rx_a.recv().await;
            first.is_some()
        })
        .unwrap();
    assert!(join_within(&rt, ended, LIMIT, "(a) the receiving task"));
    check(3, "(a) task end");
    assert!(tx_a.is_closed());
    assert_eq!(
        tx_a.len(),
        0,
        "(a) nothing is left queued once the receiver is gone"
    );

    // (b) The task holding the receiver is aborted from the test thread.
    let (tx_b, rx_b) = channel::<Where>(4).unwrap();
    for _ in 0..2 {
        assert!(tx_b.try_send(Where(log.clone())).is_ok());
    }
    let started = Arc::new(AtomicBool::new(false));
    let holder = {
        let started = started.clone();
        h.spawn_pinned(1, async move {
            let _rx = rx_b;
            started.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        })
        .unwrap()
    };
    wait_until("(b) the holder runs", || started.load(Ordering::SeqCst));
    holder.abort();
    let r = rt
        .block_on(timeout(LIMIT, holder))
        .expect("(b) the aborted task never ended");
    assert!(r.unwrap_err().is_cancelled());
    check(5, "(b) abort");
    assert!(tx_b.is_closed());

    // (c) The task holding the receiver is cancelled by shutdown.
    let (tx_c, rx_c) = channel::<Where>(4).unwrap();
    for _ in 0..2 {
        assert!(tx_c.try_send(Where(log.clone())).is_ok());
    }
    let started = Arc::new(AtomicBool::new(false));
    let holder = {
        let started = started.clone();
        h.spawn_pinned(1, async move {
            let _rx = rx_c;
            started.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        })
        .unwrap()
    };
    wait_until("(c) the holder runs", || started.load(Ordering::SeqCst));
    let report = rt.shutdown(Duration::ZERO);
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    check(7, "(c) shutdown");
    assert!(tx_c.is_closed());
    let r = common::block_on(timeout(LIMIT, holder)).expect("(c) the cancelled task's handle");
    assert!(r.unwrap_err().is_cancelled());
    drop((tx_a, tx_b, tx_c));
    assert_eq!(log.lock().unwrap().len(), 7, "nothing dropped twice");
}
