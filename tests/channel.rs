//! Cross-shard channels: per-sender FIFO under concurrency, batches,
//! back-pressure, closing, shutdown, Tokio senders, and the wait/notify
//! protocol under stress.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, TryRecvError, TrySendError, channel};

/// Eight senders (two tasks on each shard, two Tokio tasks, two plain
/// threads) push 100,000 numbered messages each through one channel of
/// capacity 1,024 into a receiver on shard 1, which checks every message
/// arrives exactly once and in order per sender.
#[test]
fn per_sender_fifo_under_eight_concurrent_senders() {
    const PER: u64 = 100_000;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = channel::<(u8, u64)>(1024).unwrap();
    let receiver = h
        .spawn_pinned(1, async move {
            let mut next = [0u64; 8];
            let mut buf = Vec::with_capacity(256);
            let mut total = 0u64;
            while rx.recv_many(&mut buf, 256).await > 0 {
                for (s, seq) in buf.drain(..) {
                    assert_eq!(
                        seq, next[s as usize],
                        "sender {s} out of order or duplicated"
                    );
                    next[s as usize] += 1;
                    total += 1;
                }
            }
            (next, total)
        })
        .unwrap();
    let send_all = |id: u8, tx: ringlane::Sender<(u8, u64)>| async move {
        for seq in 0..PER {
            tx.send((id, seq)).await.unwrap();
        }
    };
    let mut joins = Vec::new();
    for id in 0..4u8 {
        joins.push(
            h.spawn_pinned(id as usize % 2, send_all(id, tx.clone()))
                .unwrap(),
        );
    }
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let tokio_joins: Vec<_> = (4..6u8)
        .map(|id| tokio_rt.spawn(send_all(id, tx.clone())))
        .collect();
    let threads: Vec<_> = (6..8u8)
        .map(|id| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for seq in 0..PER {
                    let mut msg = (id, seq);
                    loop {
                        match tx.try_send(msg) {
                            Ok(()) => break,
                            Err(TrySendError::Full(m)) => {
                                msg = m;
                                std::thread::yield_now();
                            }
                            Err(TrySendError::Closed(_)) => panic!("receiver gone"),
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for j in joins {
        rt.block_on(j).unwrap();
    }
    for j in tokio_joins {
        tokio_rt.block_on(j).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let (next, total) = rt
        .block_on(timeout(Duration::from_secs(60), receiver))
        .expect("receiver stalled")
        .unwrap();
    assert_eq!(next, [PER; 8]);
    assert_eq!(total, 8 * PER);
}

#[test]
fn batched_and_unbatched_sends_from_one_sender_stay_in_order() {
    let rt = common::runtime(2);
    let (tx, mut rx) = channel::<u64>(16).unwrap();
    let receiver = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut v = Vec::new();
            while let Some(x) = rx.recv().await {
                v.push(x);
            }
            v
        })
        .unwrap();
    rt.block_on(
        rt.handle()
            .spawn_pinned(0, async move {
                let mut n = 0u64;
                for round in 0..200u64 {
                    match round % 3 {
                        0 => {
                            tx.send(n).await.unwrap();
                            n += 1;
                        }
                        1 => {
                            let batch = n..n + 1 + round % 40; // up to 40, larger than the capacity
                            n = batch.end;
                            tx.send_many(batch).await.unwrap();
                        }
                        _ => {
                            while let Err(e) = tx.try_send(n) {
                                assert!(matches!(e, TrySendError::Full(_)));
                                ringlane::yield_now().await;
                            }
                            n += 1;
                            tx.flush().await;
                        }
                    }
                }
                n
            })
            .unwrap(),
    )
    .unwrap();
    let v = rt.block_on(receiver).unwrap();
    assert_eq!(
        v,
        (0..v.len() as u64).collect::<Vec<_>>(),
        "order broken between batched and single sends"
    );
    assert!(v.len() > 1_000);
}

/// A slow receiver makes senders wait: the channel never holds more than
/// its capacity (memory is the preallocated ring), and nothing is lost.
#[test]
fn slow_receiver_applies_back_pressure_without_loss() {
    let rt = common::runtime(2);
    let (tx, mut rx) = channel::<u32>(8).unwrap();
    let max_seen = Arc::new(AtomicUsize::new(0));
    let m = max_seen.clone();
    let receiver = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut got = Vec::new();
            while let Some(x) = rx.recv().await {
                // Read after the pop: a waiting sender may already have
                // refilled the slot, so a full channel shows as 7 or 8.
                m.fetch_max(rx.len(), Ordering::Relaxed);
                if x % 50 == 0 {
                    ringlane::time::sleep(Duration::from_millis(1)).await;
                }
                got.push(x);
            }
            got
        })
        .unwrap();
    let t = Instant::now();
    let tx2 = tx.clone();
    rt.block_on(
        rt.handle()
            .spawn_pinned(0, async move { tx2.send_many(0..2_000).await.unwrap() })
            .unwrap(),
    )
    .unwrap();
    drop(tx);
    let got = rt.block_on(receiver).unwrap();
    assert_eq!(got, (0..2_000).collect::<Vec<_>>());
    assert!(
        max_seen.load(Ordering::Relaxed) <= 8,
        "more than capacity was queued"
    );
    assert!(
        max_seen.load(Ordering::Relaxed) >= 7,
        "the sender never filled the channel: no back-pressure exercised"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(30),
        "the sender outran a receiver that sleeps 40 times"
    );
}

#[test]
fn try_send_on_a_full_or_closed_channel_returns_the_message() {
    let (tx, rx) = channel::<String>(1).unwrap();
    tx.try_send("first".into()).unwrap();
    match tx.try_send("second".into()) {
        Err(TrySendError::Full(m)) => assert_eq!(m, "second"),
        other => panic!("expected Full, got {other:?}"),
    }
    drop(rx);
    match tx.try_send("third".into()) {
        Err(TrySendError::Closed(m)) => assert_eq!(m, "third"),
        other => panic!("expected Closed, got {other:?}"),
    }
    let rt = common::runtime(1);
    assert_eq!(
        rt.block_on(tx.send("fourth".into())).unwrap_err().0,
        "fourth"
    );
    assert_eq!(
        rt.block_on(tx.send_many(["a".to_string(), "b".to_string()]))
            .unwrap_err()
            .0,
        ["a", "b"]
    );
    assert!(matches!(channel::<u8>(0), Err(Error::InvalidConfig(_))));
    // Positions that would not fit a usize, and slots that cannot be
    // allocated: an error, not a capacity-overflow panic or an abort.
    assert!(matches!(
        channel::<u8>(usize::MAX),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        channel::<u64>(1 << 50),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn dropping_every_sender_ends_the_stream_after_the_queued_messages() {
    let rt = common::runtime(2);
    let (tx, mut rx) = channel::<u32>(64).unwrap();
    for i in 0..4u32 {
        let tx = tx.clone();
        rt.block_on(
            rt.handle()
                .spawn_pinned(i as usize % 2, async move { tx.send(i).await.unwrap() })
                .unwrap(),
        )
        .unwrap();
    }
    drop(tx);
    let j = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut v = Vec::new();
            while let Some(x) = rx.recv().await {
                v.push(x);
            }
            (v, rx.try_recv())
        })
        .unwrap();
    let (mut v, after) = rt.block_on(j).unwrap();
    v.sort();
    assert_eq!(v, [0, 1, 2, 3]);
    assert_eq!(after, Err(TryRecvError::Disconnected));
}

/// A message that counts its drops: every message must be dropped exactly
/// once, wherever it ends (received, returned in an error, or queued when
/// its receiver went away), or it was lost or duplicated.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Senders on both shards are mid-`send` into a full channel whose
/// receiver (on shard 1) is cancelled by shutdown: each message is either
/// delivered or returned, and every one is dropped exactly once.
#[test]
fn messages_in_flight_across_shutdown_are_delivered_or_returned() {
    const SENDERS: usize = 6;
    const PER: usize = 500;
    let dropped = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let returned = Arc::new(AtomicUsize::new(0));
    let rt = common::runtime(2);
    let (tx, mut rx) = channel::<Counted>(4).unwrap();
    let r = received.clone();
    drop(
        rt.handle()
            .spawn_pinned(1, async move {
                while let Some(m) = rx.recv().await {
                    r.fetch_add(1, Ordering::SeqCst);
                    drop(m);
                    ringlane::time::sleep(Duration::from_millis(1)).await; // slow: senders pile up
                }
            })
            .unwrap(),
    );
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let (tx, dropped, returned) = (tx.clone(), dropped.clone(), returned.clone());
            rt.handle()
                .spawn_pinned(i % 2, async move {
                    for _ in 0..PER {
                        if let Err(e) = tx.send(Counted(dropped.clone())).await {
                            returned.fetch_add(1, Ordering::SeqCst);
                            drop(e);
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    drop(tx);
    // Shut down mid-stream, once something was delivered (a fixed sleep
    // can be outlasted by a slow start on a loaded machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(5));
    rt.shutdown(Duration::ZERO);
    for s in senders {
        let _ = common::block_on(s); // cancelled mid-send: its message dropped unsent
    }
    let (d, r, ret) = (
        dropped.load(Ordering::SeqCst),
        received.load(Ordering::SeqCst),
        returned.load(Ordering::SeqCst),
    );
    assert!(r > 0, "nothing was delivered before shutdown");
    assert!(d <= SENDERS * PER, "a message was dropped twice: {d} drops");
    // Messages created = dropped: none leaked, none duplicated (creation
    // stops when a sender is cancelled, so count what exists: every Counted
    // ever made has been dropped once, and none remain).
    assert_eq!(
        Arc::strong_count(&dropped),
        1,
        "a message is still alive somewhere (leaked)"
    );
    assert!(d >= r + ret);
}

#[test]
fn senders_on_tokio_worker_threads_reach_a_receiver_on_a_shard() {
    let rt = common::runtime(2);
    let (tx, mut rx) = channel::<u64>(32).unwrap();
    let receiver = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut sum = 0;
            while let Some(x) = rx.recv().await {
                sum += x;
            }
            sum
        })
        .unwrap();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    tokio_rt.block_on(async move {
        let tasks: Vec<_> = (0..4u64)
            .map(|t| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..10_000u64 {
                        tx.send(t * 10_000 + i).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(rt.block_on(receiver).unwrap(), (0..40_000u64).sum::<u64>());
}

/// Ping-pong through two capacity-1 channels: every message forces the
/// other side to wait and be woken, so 50,000 round trips exercise the
/// wait/notify protocol (and the shards' park/wake) 200,000 times. A lost
/// wake-up stalls the exchange and fails the watchdog instead of hanging.
#[test]
fn ping_pong_between_shards_and_a_plain_thread_loses_no_wakeup() {
    const ROUNDS: u64 = 50_000;
    let rt = common::runtime(2);
    let (ping_tx, mut ping_rx) = channel::<u64>(1).unwrap();
    let (pong_tx, mut pong_rx) = channel::<u64>(1).unwrap();
    let echo = rt
        .handle()
        .spawn_pinned(1, async move {
            while let Some(x) = ping_rx.recv().await {
                pong_tx.send(x + 1).await.unwrap();
            }
        })
        .unwrap();
    let h = rt.handle();
    let shard0 = h
        .spawn_pinned(0, async move {
            for i in 0..ROUNDS {
                ping_tx.send(i * 2).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i * 2 + 1));
            }
            (ping_tx, pong_rx)
        })
        .unwrap();
    let (ping_tx, mut pong_rx) = rt
        .block_on(timeout(Duration::from_secs(60), shard0))
        .expect("shard-to-shard stalled")
        .unwrap();
    // Now the same echo task against a plain thread (eventfd doorbells).
    let driver = common::runtime(1);
    driver
        .block_on(timeout(Duration::from_secs(60), async {
            for i in 0..ROUNDS {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
        }))
        .expect("thread-to-shard stalled");
    drop(ping_tx);
    rt.block_on(echo).unwrap();
}

#[test]
fn stats_count_messages_per_shard() {
    let rt = common::runtime(2);
    let (tx, mut rx) = ringlane::raw_channel(128).unwrap();
    let r = rt
        .handle()
        .spawn_pinned(1, async move { while rx.recv().await.is_some() {} })
        .unwrap();
    rt.block_on(
        rt.handle()
            .spawn_pinned(0, async move { tx.send_many(0..100).await.unwrap() })
            .unwrap(),
    )
    .unwrap();
    rt.block_on(r).unwrap();
    assert_eq!(rt.handle().shard_stats(0).unwrap().messages_sent, 100);
    assert_eq!(rt.handle().shard_stats(1).unwrap().messages_received, 100);
}

#[test]
fn call_on_runs_a_closure_on_the_shard_and_returns_its_result() {
    let rt = common::runtime(2);
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let h = rt.handle();
    let got = tokio_rt.block_on(async move {
        let a = h
            .call_on(0, |ctx| (ctx.index(), ringlane::current_shard()))
            .unwrap()
            .await
            .unwrap();
        let b = h
            .call_on(1, |ctx| (ctx.index(), ringlane::current_shard()))
            .unwrap()
            .await
            .unwrap();
        (a, b)
    });
    assert_eq!(got, ((0, Some(0)), (1, Some(1))));
    assert!(matches!(
        rt.handle().call_on(5, |_| ()),
        Err(Error::ShardOutOfRange { .. })
    ));
}

/// Regression: a doorbell owed by one task's poll waited for the rest of
/// the sender's tick, so a busy task queued behind the sender delayed a
/// parked receiver by its whole run time.
#[test]
fn a_busy_task_queued_behind_the_sender_does_not_delay_the_parked_receiver() {
    let rt = common::runtime(2);
    let (tx, mut rx) = channel::<Instant>(4).unwrap();
    let hog_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen_while_hogging = hog_done.clone();
    let receiver = rt
        .handle()
        .spawn_pinned(1, async move {
            let sent = rx.recv().await;
            // The receiver must run while the hog still holds shard 0.
            (sent.is_some(), !seen_while_hogging.load(Ordering::SeqCst))
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rt.handle().shard_stats(1).unwrap().parked {
        assert!(Instant::now() < deadline, "shard 1 never parked");
        std::thread::yield_now();
    }
    let done = hog_done.clone();
    rt.block_on(
        rt.handle()
            .spawn_pinned(0, async move {
                // Both queued in this tick: the sender first, then a task that
                // hogs the shard for a second without yielding.
                drop(
                    ringlane::spawn_local(async move { tx.try_send(Instant::now()).unwrap() })
                        .unwrap(),
                );
                drop(
                    ringlane::spawn_local(async move {
                        std::thread::sleep(Duration::from_secs(1));
                        done.store(true, Ordering::SeqCst);
                    })
                    .unwrap(),
                );
            })
            .unwrap(),
    )
    .unwrap();
    let (got, during_hog) =
        common::join_within(&rt, receiver, Duration::from_secs(10), "the receiver");
    assert!(got, "the message arrived");
    assert!(
        during_hog,
        "the receiver waited for the hog to end: its doorbell rode on the sender's tick"
    );
}

/// Regression: after `close()` with senders still alive, `recv` on an empty
/// channel waited forever instead of ending the stream.
#[test]
fn recv_after_close_ends_the_stream_once_drained_even_with_live_senders() {
    let rt = common::runtime(1);
    let (tx, mut rx) = channel::<u8>(4).unwrap();
    tx.try_send(1).unwrap();
    rx.close();
    let got = rt
        .block_on(timeout(Duration::from_secs(5), async move {
            let mut v = Vec::new();
            while let Some(x) = rx.recv().await {
                v.push(x);
            }
            v
        }))
        .expect("recv hung after close");
    assert_eq!(got, [1]);
    assert!(tx.try_send(2).is_err());
}

/// Regression: a sender could pass the closed check, the receiver close and
/// drain, and the sender then push and be told `Ok`: a lost message. Now
/// every message is either received before the stream ends or returned.
#[test]
fn close_racing_sends_loses_no_message() {
    for _ in 0..200 {
        let (tx, mut rx) = channel::<u64>(64).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..3)
            .map(|t| {
                let (tx, accepted) = (tx.clone(), accepted.clone());
                std::thread::spawn(move || {
                    for i in 0..2_000u64 {
                        match tx.try_send(t * 10_000 + i) {
                            Ok(()) => {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(TrySendError::Full(_)) => std::thread::yield_now(),
                            Err(TrySendError::Closed(_)) => break,
                        }
                    }
                })
            })
            .collect();
        let mut received = 0usize;
        for _ in 0..50 {
            if rx.try_recv().is_ok() {
                received += 1;
            }
        }
        rx.close();
        loop {
            match rx.try_recv() {
                Ok(_) => received += 1,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => std::thread::yield_now(),
            }
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(
            received,
            accepted.load(Ordering::SeqCst),
            "a message accepted by the channel was never received"
        );
    }
}

/// Regression: each cancelled `send` left its waker behind; slots are now
/// given back when a send future is dropped.
#[test]
fn cancelled_sends_on_a_full_channel_leave_nothing_behind() {
    use std::future::Future;
    use std::task::{Context, Wake, Waker};
    struct Count;
    impl Wake for Count {
        fn wake(self: Arc<Self>) {}
    }
    let rt = common::runtime(1);
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let count = Arc::new(Count);
    for i in 0..1_000 {
        // Each send waits for room (its waker registered), then is dropped.
        let waker = Waker::from(count.clone());
        let mut send = Box::pin(tx.send(i));
        assert!(
            send.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        drop(send);
        drop(waker);
        assert_eq!(
            Arc::strong_count(&count),
            1,
            "a cancelled send left its waker behind (send {i})"
        );
    }
    // The channel still works: a sender waiting on a shard is woken when
    // room appears.
    let tx2 = tx.clone();
    let sender = rt
        .handle()
        .spawn_pinned(0, async move { tx2.send(7).await })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rt.handle().shard_stats(0).unwrap().parked {
        assert!(Instant::now() < deadline, "shard 0 never parked");
        std::thread::yield_now();
    }
    assert!(!sender.is_finished(), "the channel is full: the send waits");
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(
        common::join_within(&rt, sender, Duration::from_secs(10), "the waiting sender"),
        Ok(())
    );
    assert_eq!(rx.try_recv(), Ok(7));
    assert!(
        rx.try_recv().is_err(),
        "a cancelled send must not have sent"
    );
}

/// `send_many`'s iterator panics after it yielded three messages, while
/// another sender lives on (so the panicking task's drop of its sender does
/// not end the stream). The three pushed messages must still wake the
/// receiver: the wake-up used to run only after the last item, so a
/// receiver asleep on another shard never saw them.
#[test]
fn send_many_whose_iterator_panics_still_wakes_the_receiver() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::channel::<u32>(16).unwrap();
    let receiver = h
        .spawn_pinned(0, async move {
            let start = Instant::now();
            let mut got = Vec::new();
            while got.len() < 3 {
                match ringlane::time::timeout(Duration::from_secs(5), rx.recv()).await {
                    Ok(Some(v)) => got.push(v),
                    Ok(None) | Err(_) => break,
                }
            }
            (got, start.elapsed())
        })
        .unwrap();
    // The receiver waits, asleep on shard 0, before anything is sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !h.shard_stats(0).unwrap().parked {
        assert!(Instant::now() < deadline, "shard 0 never parked");
        std::thread::yield_now();
    }
    let tx2 = tx.clone();
    let panicking = h
        .spawn_pinned(1, async move {
            let items = (0..5u32).map(|i| if i == 3 { panic!("item 3") } else { i });
            let _ = tx2.send_many(items).await;
        })
        .unwrap();
    assert!(rt.block_on(panicking).unwrap_err().is_panic());
    let (got, took) = rt.block_on(receiver).unwrap();
    assert_eq!(got, vec![0, 1, 2]);
    // Not woken, the receiver would only see them when its 5 s timer
    // fired and polled it again.
    assert!(
        took < Duration::from_secs(4),
        "the pushed messages did not wake the receiver ({took:?})"
    );
    drop(tx);
}

/// `send_many` of an endless iterator to a channel whose receiver is gone:
/// the error used to collect "every item not sent" from the iterator,
/// which never ends (and eventually aborted on allocation). It returns the
/// item that could not be sent and drops the rest unconsumed.
#[test]
fn send_many_of_an_endless_iterator_to_a_closed_channel_returns() {
    let rt = common::runtime(1);
    let (tx, rx) = channel::<u32>(4).unwrap();
    drop(rx);
    let r = rt.block_on(timeout(
        Duration::from_secs(10),
        tx.send_many(std::iter::repeat(7)),
    ));
    let err = r.expect("send_many never returned").unwrap_err();
    assert_eq!(err.0, vec![7], "the item that could not be sent comes back");
    // A bounded iterator still gives everything back, in order.
    let err = rt.block_on(tx.send_many(vec![1, 2, 3])).unwrap_err();
    assert_eq!(err.0, vec![1, 2, 3]);
}
