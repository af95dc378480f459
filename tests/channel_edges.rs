//! Cross-shard channels at their edges, second round: a receiver dropped
//! with a message whose destructor panics still drops the rest, on its own
//! thread, and the panic goes on afterwards; a `send_many` into a receiver
//! that keeps up still gives its shard back (bounded runs, each a unit of
//! the cooperative budget); `recv_many` matches Tokio for limit 0, a
//! non-empty buffer and the end; `close()` returns waiting senders'
//! messages, then drains to `Disconnected`.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{TryRecvError, TrySendError, channel};

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
