//! Cross-shard channels at their edges, second round.
//!
//! - A receiver dropped with a message whose destructor panics still drops
//!   the rest, on its own thread, and the panic goes on afterwards.
//! - A `send_many` into a receiver that keeps up still gives its shard back
//!   (its runs are bounded, each a unit of the cooperative budget).
//! - `recv_many` matches Tokio for limit 0, a non-empty buffer and the end;
//!   `close()` returns waiting senders' messages, then drains to
//!   `Disconnected`; zero-sized messages fill, drain, close and drop once.
//! - Tokio senders racing the receiver's drop deliver or get back every
//!   message exactly once; a watched receiver moved off its blocked home
//!   shard keeps receiving; a `send_many` whose iterator panics delivers the
//!   prefix; queued messages are dropped once, on the receiver's shard, at
//!   task end, abort and shutdown.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, TryRecvError, TrySendError, channel};

use common::chans::*;
use common::{LIMIT, join_within, wait_until};

/// A message that logs which thread dropped it, and may panic while
/// being dropped.
/// Which message was dropped, on which thread (by name).
type DropLog = Arc<Mutex<Vec<(u32, Option<String>)>>>;

struct Bomb {
    id: u32,
    explode: bool,
    log: DropLog,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.id, std::thread::current().name().map(str::to_owned)));
        if self.explode {
            panic!("message {} panics in its destructor", self.id);
        }
    }
}

/// Four messages are queued, and the second one's destructor panics. The
/// receiver is dropped on a thread named "rx-dropper" while a sender lives
/// on. Tokio's `Rx::drop` drains through a guard that keeps dropping the
/// rest while the first panic unwinds. The channel docs say queued
/// messages "are dropped here, on the receiver's side". So all four must be
/// dropped on "rx-dropper" by the time that thread is done. Before the fix the panic
/// leaves 2 and 3 in the ring, and they are dropped only when the last
/// `Sender` goes, on the test thread. In every case each message is
/// dropped exactly once.
#[test]
fn a_receiver_dropped_with_a_message_whose_drop_panics_still_drops_the_rest_on_its_own_thread() {
    let log: DropLog = Arc::default();
    let (tx, rx) = channel::<Bomb>(8).unwrap();
    for id in 0..4u32 {
        let sent = tx.try_send(Bomb {
            id,
            explode: id == 1,
            log: log.clone(),
        });
        assert!(sent.is_ok(), "the channel has room for four");
    }
    let dropper = std::thread::Builder::new()
        .name("rx-dropper".into())
        .spawn(move || catch_unwind(AssertUnwindSafe(move || drop(rx))).is_err())
        .unwrap();
    let panicked = dropper.join().unwrap();
    let seen = log.lock().unwrap().clone();
    let mut on_dropper: Vec<u32> = seen
        .iter()
        .filter(|(_, t)| t.as_deref() == Some("rx-dropper"))
        .map(|(id, _)| *id)
        .collect();
    on_dropper.sort_unstable();
    assert!(tx.is_closed(), "the receiver is gone");
    let left_queued = tx.len();
    drop(tx);
    let all = log.lock().unwrap().clone();
    for id in 0..4u32 {
        let n = all.iter().filter(|(i, _)| *i == id).count();
        assert_eq!(n, 1, "message {id} was dropped {n} times: {all:?}");
    }
    assert_eq!(
        on_dropper,
        [0, 1, 2, 3],
        "dropping the receiver (its drop panicked: {panicked}) left messages queued \
         ({left_queued} still counted by Sender::len): they were dropped later by the last \
         Sender, not with the receiver on its thread as Tokio's drain guard does. \
         Drops in order (id, thread): {all:?}"
    );
}

/// A pinned task on shard 1 sends an endless batch (`send_many` over a lazy
/// iterator that costs 5 µs an item) to a plain thread that takes every
/// message as soon as it lands. So the ring (65,536 slots) never fills and
/// the batch's run never ends. A `call_on` to shard 1 must still be
/// answered while the batch is going. Tokio's bar is a loop of
/// `send().await`, which yields after 128, and ADR 0018 says "each run of
/// `send_many`" spends the budget so that a batch yields now and then.
/// Before the fix the one run spent one unit and held the shard until its
/// iterator gave up (after 3 s here). The `call_on` ran only then, and
/// saw that the batch was over.
#[test]
fn send_many_into_a_receiver_that_keeps_up_still_gives_its_shard_back() {
    const CAP: usize = 1 << 16;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(CAP).unwrap();
    let produced = Arc::new(AtomicU64::new(0));
    let sending = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(AtomicBool::new(false));
    let consumer = std::thread::spawn(move || {
        let deadline = Instant::now() + LIMIT;
        let mut next = 0u64;
        loop {
            match rx.try_recv() {
                Ok(v) => {
                    assert_eq!(v, next, "the batch was reordered");
                    next += 1;
                }
                Err(TryRecvError::Empty) => {
                    if Instant::now() >= deadline {
                        break;
                    }
                    std::hint::spin_loop();
                }
                Err(TryRecvError::Disconnected) => break,
            }
        }
        next
    });
    let sender = {
        let (produced, sending, answered) = (produced.clone(), sending.clone(), answered.clone());
        h.spawn_pinned(1, async move {
            let start = Instant::now();
            let mut i = 0u64;
            let items = std::iter::from_fn(move || {
                if answered.load(Ordering::SeqCst) || start.elapsed() >= Duration::from_secs(3) {
                    return None;
                }
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(5) {
                    std::hint::spin_loop();
                }
                i += 1;
                produced.store(i, Ordering::SeqCst);
                Some(i - 1)
            });
            let ok = tx.send_many(items).await.is_ok();
            sending.store(false, Ordering::SeqCst);
            ok
        })
        .unwrap()
    };
    wait_until("the batch got going", || {
        produced.load(Ordering::SeqCst) >= 2_000
    });
    let call = {
        let (sending, answered) = (sending.clone(), answered.clone());
        h.call_on(1, move |_| {
            let during = sending.load(Ordering::SeqCst);
            if during {
                answered.store(true, Ordering::SeqCst);
            }
            during
        })
        .unwrap()
    };
    let during = join_within(&rt, call, LIMIT, "call_on to the batch's shard");
    let ok = join_within(&rt, sender, LIMIT, "the batch");
    let received = consumer.join().unwrap();
    assert!(ok, "the receiver is alive: the batch must succeed");
    assert_eq!(
        received,
        produced.load(Ordering::SeqCst),
        "the keeping-up receiver did not get every item"
    );
    assert!(
        during,
        "call_on to shard 1 ran only after the batch ended: a send_many whose receiver keeps \
         up never finds the ring full, so its single run spends one budget unit and never \
         gives the shard back"
    );
}

/// Tokio's `recv_many`: "If limit is zero, the function immediately
/// returns 0", and the return value is "the number of values added to
/// buffer". The buffer is appended to, never cleared, and the call returns
/// 0 once the channel is closed and empty.
#[test]
fn recv_many_matches_tokio_for_limit_zero_a_non_empty_buffer_and_the_end() {
    let rt = common::runtime(1);
    let (tx, mut rx) = channel::<u32>(8).unwrap();
    let mut buf = vec![100, 101];
    let n = rt
        .block_on(timeout(Duration::from_secs(2), rx.recv_many(&mut buf, 0)))
        .expect("recv_many(.., 0) on an empty channel with a live sender waited for a message");
    assert_eq!(n, 0);
    for v in 1..=5 {
        tx.try_send(v).unwrap();
    }
    assert_eq!(rt.block_on(rx.recv_many(&mut buf, 0)), 0);
    assert_eq!(buf, [100, 101], "limit 0 must take nothing");
    assert_eq!(rx.len(), 5, "limit 0 must take nothing");
    assert_eq!(rt.block_on(rx.recv_many(&mut buf, 3)), 3);
    assert_eq!(
        buf,
        [100, 101, 1, 2, 3],
        "appended in order after what was there"
    );
    assert_eq!(rt.block_on(rx.recv_many(&mut buf, 10)), 2);
    assert_eq!(buf, [100, 101, 1, 2, 3, 4, 5]);
    assert_eq!((tx.len(), tx.capacity()), (0, 8));
    // A recv_many that has to wait is woken by a sender on a plain thread.
    let sender = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.try_send(6).unwrap();
        })
    };
    let n = rt
        .block_on(timeout(LIMIT, rx.recv_many(&mut buf, 4)))
        .expect("a waiting recv_many was not woken");
    assert_eq!(n, 1);
    sender.join().unwrap();
    drop(tx);
    let n = rt
        .block_on(timeout(Duration::from_secs(2), rx.recv_many(&mut buf, 4)))
        .expect("recv_many at the end of the stream hung");
    assert_eq!(n, 0);
    assert_eq!(rt.block_on(rx.recv_many(&mut buf, 0)), 0);
    assert_eq!(
        buf,
        [100, 101, 1, 2, 3, 4, 5, 6],
        "the end must leave the buffer alone"
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// A full channel of 2 has a Tokio `send(3)` and a plain-thread
/// `send_many([4, 5])` waiting for room. The receiver then `close()`s. As
/// with Tokio's `close`: both waiters wake with their own messages back,
/// the two queued messages are still received, and then `Disconnected`
/// follows although senders live. `recv` and `recv_many` end. `is_closed`
/// and `len` agree on both halves. `flush` ("resolves once every message
/// sent before it is in the receiver's queue") resolves at once on a full
/// channel and on a closed one, and never hangs.
#[test]
fn close_returns_waiting_senders_messages_then_drains_to_disconnected_with_live_senders() {
    let tokio_rt = tokio_mt(1);
    let (tx, mut rx) = channel::<u32>(2).unwrap();
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!((tx.len(), tx.capacity(), tx.is_closed()), (2, 0, false));
    assert_eq!(
        park_block_on(tx.flush(), Duration::from_secs(2)),
        Some(()),
        "flush on a full channel: everything sent is queued already"
    );
    let (pend_tx, pend_rx) = mpsc::channel::<u32>();
    let single = {
        let (tx, pend) = (tx.clone(), pend_tx.clone());
        tokio_rt.spawn(async move { signal_pending(tx.send(3), pend, 3).await.map_err(|e| e.0) })
    };
    let batch = {
        let (tx, pend) = (tx.clone(), pend_tx.clone());
        std::thread::spawn(move || {
            park_block_on(signal_pending(tx.send_many(vec![4, 5]), pend, 4), LIMIT)
                .map(|r| r.map_err(|e| e.0))
        })
    };
    let mut waiting: Vec<u32> = (0..2)
        .map(|_| {
            pend_rx
                .recv_timeout(LIMIT)
                .expect("a send into the full channel never waited")
        })
        .collect();
    waiting.sort_unstable();
    assert_eq!(waiting, [3, 4]);
    rx.close();
    assert!(tx.is_closed());
    let single = tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, single).await })
        .expect("the waiting Tokio send was not woken by close()")
        .unwrap();
    assert_eq!(single, Err(3));
    assert_eq!(
        batch.join().unwrap(),
        Some(Err(vec![4, 5])),
        "the waiting send_many must get every unsent item back"
    );
    assert_eq!((tx.len(), rx.len()), (2, 2), "close keeps what was queued");
    assert_eq!(park_block_on(tx.flush(), Duration::from_secs(2)), Some(()));
    assert_eq!(tx.try_send(6), Err(TrySendError::Closed(6)));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(rx.is_empty() && tx.is_empty());
    assert_eq!(park_block_on(rx.recv(), Duration::from_secs(2)), Some(None));
    let mut buf = Vec::new();
    assert_eq!(
        park_block_on(rx.recv_many(&mut buf, 4), Duration::from_secs(2)),
        Some(0)
    );
    assert_eq!(
        park_block_on(tx.send(7), Duration::from_secs(2)).map(|r| r.map_err(|e| e.0)),
        Some(Err(7))
    );
    assert!(tx.is_closed(), "a closed channel stays closed");
}

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
