//! Cross-shard channels: per-sender FIFO under concurrency, batches,
//! back-pressure, Tokio senders, `call_on`, stats, and the wait/notify
//! protocol under stress. Closing, cancelling and shutdown are in
//! `channel_close.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, TrySendError, channel};

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
