//! Cross-shard channels ending: `try_send` on a full or closed channel,
//! the stream's end when every sender is gone, `close` racing sends,
//! cancelled and panicking sends, and messages in flight across shutdown.
//! Every message is delivered or handed back, never lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, TryRecvError, TrySendError, channel};

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
