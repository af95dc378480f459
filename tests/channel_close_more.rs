//! Closing and shutdown under load: waiting senders of every kind when the
//! receiving task goes away, close racing batches on a watched receiver,
//! and a shutdown that cancels blocked sender tasks while the receiver
//! lives outside the runtime. Every message is received or handed back,
//! exactly once. Every wait is bounded: a lost wake-up fails, never hangs.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{TryRecvError, TrySendError, channel};

use common::chans::*;
use common::{LIMIT, wait_until};

/// Senders of every kind wait for room in a full channel (two Tokio tasks,
/// one of them in `send_many`, a plain thread with no runtime at all, and a
/// pinned task on shard 0), each registered before the receiving task on
/// shard 1 is aborted. Expected, as with `tokio::sync::mpsc` (a `send`
/// waiting for capacity returns `Err(SendError(msg))` once the `Receiver` is
/// dropped) and as `SendError`'s docs say ("the receiver is gone; the
/// message comes back"): every waiter wakes and gets back exactly the
/// message(s) it tried to send (`send_many`: "every item not sent, in
/// order"), the two queued messages are dropped with the receiver, and
/// every message is dropped exactly once. A lost wake-up on close hangs a
/// waiter (fails at 10 s); a mixed-up or lost return shows in the ids or
/// the drop count.
#[test]
fn senders_waiting_for_room_everywhere_get_their_own_messages_back_when_the_receiving_task_is_aborted()
 {
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let msg = |id: u32| Msg {
        id,
        drops: drops.clone(),
    };
    let (tx, rx) = channel::<Msg>(2).unwrap();
    tx.try_send(msg(0)).unwrap();
    tx.try_send(msg(1)).unwrap();
    let holder = h
        .spawn_pinned(1, async move {
            let _rx = rx;
            std::future::pending::<()>().await;
        })
        .unwrap();
    let (pend_tx, pend_rx) = mpsc::channel::<u32>();
    let (res_tx, res_rx) = mpsc::channel::<(u32, Result<(), Vec<u32>>)>();
    {
        let (tx, m, pend, res) = (tx.clone(), msg(10), pend_tx.clone(), res_tx.clone());
        drop(tokio_rt.spawn(async move {
            let out = signal_pending(tx.send(m), pend, 10)
                .await
                .map_err(|e| vec![e.0]);
            let _ = res.send((10, returned_ids(out)));
        }));
    }
    {
        let batch = vec![msg(11), msg(12), msg(13)];
        let (tx, pend, res) = (tx.clone(), pend_tx.clone(), res_tx.clone());
        drop(tokio_rt.spawn(async move {
            let out = signal_pending(tx.send_many(batch), pend, 11)
                .await
                .map_err(|e| e.0);
            let _ = res.send((11, returned_ids(out)));
        }));
    }
    {
        let (tx, m, pend, res) = (tx.clone(), msg(20), pend_tx.clone(), res_tx.clone());
        std::thread::spawn(move || {
            if let Some(out) = park_block_on(signal_pending(tx.send(m), pend, 20), LIMIT) {
                let _ = res.send((20, returned_ids(out.map_err(|e| vec![e.0]))));
            }
        });
    }
    {
        let (tx, m, pend, res) = (tx.clone(), msg(30), pend_tx.clone(), res_tx.clone());
        drop(
            h.spawn_pinned(0, async move {
                let out = signal_pending(tx.send(m), pend, 30)
                    .await
                    .map_err(|e| vec![e.0]);
                let _ = res.send((30, returned_ids(out)));
            })
            .unwrap(),
        );
    }
    let mut waiting: Vec<u32> = (0..4)
        .map(|_| {
            pend_rx
                .recv_timeout(LIMIT)
                .expect("a send into a full channel never waited")
        })
        .collect();
    waiting.sort_unstable();
    assert_eq!(waiting, [10, 11, 20, 30]);
    assert!(!tx.is_closed(), "the receiver still lives");
    assert_eq!(tx.len(), 2);

    holder.abort();
    let aborted = rt
        .block_on(timeout(LIMIT, holder))
        .expect("the aborted receiving task never ended");
    assert!(aborted.unwrap_err().is_cancelled());

    let mut results: Vec<(u32, Result<(), Vec<u32>>)> = (0..4)
        .map(|_| {
            res_rx
                .recv_timeout(LIMIT)
                .expect("a sender waiting for room was never told the receiver is gone")
        })
        .collect();
    results.sort();
    let expected: Vec<(u32, Result<(), Vec<u32>>)> = vec![
        (10, Err(vec![10])),
        (11, Err(vec![11, 12, 13])),
        (20, Err(vec![20])),
        (30, Err(vec![30])),
    ];
    assert_eq!(
        results, expected,
        "each waiter gets its own message(s) back"
    );
    assert!(tx.is_closed());
    match tx.try_send(msg(99)) {
        Err(TrySendError::Closed(m)) => assert_eq!(m.id, 99),
        other => panic!("expected Closed after the receiver was dropped, got {other:?}"),
    }
    drop(tx);
    wait_until("every message dropped (none leaked)", || {
        Arc::strong_count(&drops) == 1
    });
    // 2 queued + 1 + 3 + 1 + 1 returned + 1 refused by try_send.
    assert_eq!(
        drops.load(Ordering::SeqCst),
        9,
        "a message was dropped twice"
    );
}

/// Three sender tasks (pinned on shard 0, pinned on shard 1, stealable)
/// loop on `send`; the receiver lives outside the runtime (the test
/// thread). Once they are blocked on a full channel the runtime is shut
/// down at once. Expected: `shutdown` cancels exactly those three tasks
/// (`ShutdownReport::unfinished_tasks`), dropping their futures and with
/// them their `Sender`s, so the outside receiver then gets every message a
/// sender was told was sent (`send` returned `Ok`), in order per sender,
/// and then `None` ("dropping every sender ends the receiver's stream after
/// the queued messages"; "a send either puts the message in the ring or
/// returns it"). A cancelled task whose `Sender` leaked would leave `recv`
/// waiting forever (fails at 10 s); a message lost or duplicated at
/// cancellation shows in the per-sender sequence.
#[test]
fn shutdown_cancelling_blocked_sender_tasks_leaves_every_accepted_message_to_an_outside_receiver() {
    const CAP: usize = 8;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = channel::<(usize, u64)>(CAP).unwrap();
    let accepted = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let sender = |id: usize| {
        let (tx, accepted) = (tx.clone(), accepted.clone());
        async move {
            for seq in 0..u64::MAX {
                tx.send((id, seq)).await.expect("the receiver is alive");
                // Same poll as the send's completion: a cancel cannot fall
                // between the two.
                accepted[id].store(seq + 1, Ordering::SeqCst);
                if seq % 32 == 0 {
                    ringlane::yield_now().await;
                }
            }
        }
    };
    let joins = vec![
        h.spawn_pinned(0, sender(0)).unwrap(),
        h.spawn_pinned(1, sender(1)).unwrap(),
        h.spawn_stealable(sender(2)).unwrap(),
    ];
    drop(tx);
    fn in_order(next: &mut [u64; 3], (id, seq): (usize, u64)) {
        assert_eq!(seq, next[id], "sender {id}: lost, duplicated or reordered");
        next[id] += 1;
    }
    let mut next = [0u64; 3];
    let mut received = 0usize;
    let deadline = Instant::now() + LIMIT;
    while received < 3_000 {
        match rx.try_recv() {
            Ok(m) => {
                in_order(&mut next, m);
                received += 1;
            }
            Err(TryRecvError::Empty) => {
                assert!(Instant::now() < deadline, "the sender tasks stalled");
                std::thread::yield_now();
            }
            Err(TryRecvError::Disconnected) => {
                panic!("the stream ended while every sender task lives")
            }
        }
    }
    wait_until("the senders filled the channel again", || rx.len() == CAP);
    let report = rt.shutdown(Duration::ZERO);
    assert_eq!(
        report.unfinished_tasks, 3,
        "the three blocked senders are the cancelled tasks: {report:?}"
    );
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    let outside = common::runtime(1);
    for j in joins {
        let r = outside
            .block_on(timeout(LIMIT, j))
            .expect("a cancelled sender's JoinHandle never resolved");
        assert!(r.unwrap_err().is_cancelled());
    }
    let rest = outside
        .block_on(timeout(LIMIT, async {
            let mut v = Vec::new();
            while let Some(m) = rx.recv().await {
                v.push(m);
            }
            v
        }))
        .expect("the stream never ended: a cancelled sender task's Sender is still alive");
    assert!(
        rest.len() >= CAP,
        "the full channel's messages were not all there"
    );
    for m in rest {
        in_order(&mut next, m);
    }
    for (id, n) in next.iter().enumerate() {
        assert_eq!(
            *n,
            accepted[id].load(Ordering::SeqCst),
            "sender {id}: a message it was told was sent never arrived (or an unsent one did)"
        );
    }
}

/// A watched receiver (spinning shard 1) takes 50 messages and closes
/// while a `send_many` of 0..1000 (pinned task, shard 0) and a plain thread
/// (`try_send` of 1000..2000) push into a channel of 2, and a third
/// `Sender` (the test's) stays alive throughout. Expected (`Receiver::close`
/// docs, and Tokio's `close`): `recv` returns what was queued and then
/// `None` although senders remain; every message is either received (in
/// order per sender) or handed back: the batch's error holds exactly its
/// unsent tail `k..1000` in order, the thread sees `Closed` with its next
/// value, and every value the thread was told was sent is received.
#[test]
fn close_mid_stream_on_a_watched_receiver_splits_every_message_into_received_or_returned() {
    let rt = spinning(2, Duration::from_micros(20));
    let h = rt.handle();
    let (tx, mut rx) = channel::<u32>(2).unwrap();
    let receiver = h
        .spawn_pinned(1, async move {
            let mut got = Vec::new();
            while got.len() < 50 {
                match rx.recv().await {
                    Some(v) => got.push(v),
                    None => break,
                }
            }
            rx.close();
            let closed_at = got.len();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            (got, closed_at, rx.try_recv())
        })
        .unwrap();
    let batch = {
        let tx = tx.clone();
        h.spawn_pinned(0, async move {
            tx.send_many(0..1_000u32).await.map_err(|e| e.0)
        })
        .unwrap()
    };
    let thread = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            let mut accepted = Vec::new();
            for v in 1_000..2_000u32 {
                let mut m = v;
                loop {
                    match tx.try_send(m) {
                        Ok(()) => {
                            accepted.push(v);
                            break;
                        }
                        Err(TrySendError::Full(back)) => {
                            if Instant::now() >= deadline {
                                return (accepted, None);
                            }
                            m = back;
                            std::thread::yield_now();
                        }
                        Err(TrySendError::Closed(back)) => return (accepted, Some(back)),
                    }
                }
            }
            (accepted, None)
        })
    };
    let (got, closed_at, after) = common::join_within(
        &rt,
        receiver,
        LIMIT,
        "the closed receiver's drain (live senders must not keep it open)",
    );
    assert_eq!(closed_at, 50);
    assert_eq!(after, Err(TryRecvError::Disconnected));
    let returned = common::join_within(&rt, batch, LIMIT, "the batch sender")
        .expect_err("the receiver took about 50 of 2,000: the batch cannot have finished");
    let (accepted, refused) = thread.join().unwrap();
    let refused = refused.expect("the thread never saw the close");
    assert_eq!(
        refused,
        1_000 + accepted.len() as u32,
        "Closed must hand back the value that was refused"
    );
    assert!(!returned.is_empty(), "the batch's error holds no item");
    let k = returned[0];
    assert_eq!(
        returned,
        (k..1_000).collect::<Vec<_>>(),
        "the batch's error must hold its whole unsent tail, in order"
    );
    let from_batch: Vec<u32> = got.iter().copied().filter(|&v| v < 1_000).collect();
    let from_thread: Vec<u32> = got.iter().copied().filter(|&v| v >= 1_000).collect();
    assert_eq!(
        from_batch,
        (0..k).collect::<Vec<_>>(),
        "the batch's sent prefix was not received exactly once, in order"
    );
    assert_eq!(
        from_thread, accepted,
        "a value the thread was told was sent was not received exactly once, in order"
    );
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(7), Err(TrySendError::Closed(7)));
}
