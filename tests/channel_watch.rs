//! Watched receivers (`channel/watch.rs`): on shards with a spin window a
//! waiting receiver is watched by its shard instead of leaving a waker.
//! These tests make the shards park mid-exchange, end streams under a
//! watching shard, and move a watched receiver away, and fail (instead of
//! hanging) on a lost wake-up.

mod common;

use std::time::Duration;

use ringlane::channel;
use ringlane::time::timeout;

fn spinning(shards: usize, window: Duration) -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(shards)
        .spin_before_park(window)
        .build()
        .expect("runtime")
}

/// 60,000 round trips between two spinning shards; every 500th the sender
/// blocks its shard for longer than the window, so the receiver's shard
/// parks while watching and must be rung. Then the same against a plain
/// thread (eventfd doorbells) that pauses now and then.
#[test]
fn watched_receivers_lose_no_wakeup_when_their_shard_parks() {
    const ROUNDS: u64 = 60_000;
    let rt = spinning(2, Duration::from_micros(20));
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
    let driver = rt
        .handle()
        .spawn_pinned(0, async move {
            for i in 0..ROUNDS {
                if i % 500 == 0 {
                    std::thread::sleep(Duration::from_micros(200)); // shard 1 parks
                }
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
            (ping_tx, pong_rx)
        })
        .unwrap();
    let (ping_tx, mut pong_rx) = rt
        .block_on(timeout(Duration::from_secs(60), driver))
        .expect("shard-to-shard stalled: a watched receiver was not woken")
        .unwrap();
    let outside = common::runtime(1);
    outside
        .block_on(timeout(Duration::from_secs(60), async {
            for i in 0..ROUNDS / 4 {
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_micros(100));
                }
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
        }))
        .expect("thread-to-shard stalled: a watched receiver was not woken");
    drop(ping_tx);
    rt.block_on(timeout(Duration::from_secs(10), echo))
        .expect("the end of the stream did not reach the watched receiver")
        .unwrap();
}

/// A receiver watched by a parked shard learns that the last sender is
/// gone, and one whose receiver closed sees sends fail.
#[test]
fn a_watched_receiver_sees_the_end_of_its_stream() {
    let rt = spinning(1, Duration::from_micros(50));
    let (tx, mut rx) = channel::<u8>(4).unwrap();
    let waiting = rt
        .handle()
        .spawn_pinned(0, async move { rx.recv().await })
        .unwrap();
    common::until_parked(&rt.handle(), 0); // watched, then parked
    drop(tx);
    let got = rt
        .block_on(timeout(Duration::from_secs(10), waiting))
        .expect("the watched receiver never saw the end");
    assert_eq!(got.unwrap(), None);
}

/// A receiver first watched on shard 0 and then awaited on shard 1 (and
/// from a plain thread) goes back to the waker path and gets every message.
#[test]
fn a_watched_receiver_moved_to_another_shard_still_gets_messages() {
    let rt = spinning(2, Duration::from_micros(50));
    let (tx, mut rx) = channel::<u32>(8).unwrap();
    let tx2 = tx.clone();
    let first = rt
        .handle()
        .spawn_pinned(0, async move {
            let got = rx.recv().await;
            (got, rx)
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    tx.try_send(1).unwrap();
    let (got, mut rx) = rt.block_on(first).unwrap();
    assert_eq!(got, Some(1));
    let second = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut all = Vec::new();
            for _ in 0..3 {
                all.push(rx.recv().await.unwrap());
            }
            (all, rx)
        })
        .unwrap();
    for i in 2..5 {
        std::thread::sleep(Duration::from_millis(2));
        tx2.try_send(i).unwrap();
    }
    let (all, mut rx) = rt
        .block_on(timeout(Duration::from_secs(10), second))
        .expect("a moved receiver was not woken")
        .unwrap();
    assert_eq!(all, [2, 3, 4]);
    drop(tx);
    drop(tx2);
    assert_eq!(common::block_on(rx.recv()), None);
}

/// A receiver whose last wait was watched by shard 0 is dropped elsewhere
/// while shard 0 sleeps and a sender lives on: shard 0 is rung, so it
/// forgets the channel (and the waiting task's waker) instead of keeping
/// them until something else wakes it, perhaps never.
#[test]
fn a_watched_receiver_dropped_elsewhere_rings_its_parked_watcher() {
    let rt = spinning(2, Duration::from_micros(20));
    let handle = rt.handle();
    let (tx, mut rx) = channel::<u8>(4).unwrap();
    let watched = handle
        .spawn_pinned(0, async move {
            // Watched by shard 0; the wait times out and is dropped, and
            // the watch entry stays (nothing is news yet).
            let waited = timeout(Duration::from_millis(1), rx.recv()).await;
            assert!(waited.is_err(), "nothing was sent");
            rx
        })
        .unwrap();
    let rx = rt.block_on(watched).unwrap();
    let parked = |shard| handle.shard_stats(shard).unwrap().parked;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !parked(0) {
        assert!(std::time::Instant::now() < deadline, "shard 0 never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
    let wakeups = handle.shard_stats(0).unwrap().wakeups;
    drop(rx); // on this thread; `tx` lives on
    while handle.shard_stats(0).unwrap().wakeups == wakeups {
        assert!(
            std::time::Instant::now() < deadline,
            "the parked watcher was never told its receiver is gone"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(tx.try_send(1).is_err(), "the receiver is gone");
}

/// Polls `f` to completion on the calling thread, parking it between
/// polls: a nested executor, as a task on a shard might run one.
fn nested_block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// A receiver polled by a nested executor inside a pinned task of a
/// spinning shard: its shard's loop is blocked in that executor, so only
/// the executor's own waker can wake it. It used to be watched by the
/// shard (whose loop never looked again, and which a sender rings only when
/// parked): a deadlock.
#[test]
fn a_receiver_under_a_nested_executor_on_a_spinning_shard_is_woken() {
    let rt = spinning(1, Duration::from_micros(50));
    let (tx, mut rx) = channel::<u32>(4).unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async move { nested_block_on(rx.recv()) })
        .unwrap();
    std::thread::sleep(Duration::from_millis(10)); // the nested wait has begun
    tx.try_send(1).unwrap();
    let got = rt
        .block_on(timeout(Duration::from_secs(5), j))
        .expect("the nested executor was never woken")
        .unwrap();
    assert_eq!(got, Some(1));
}

/// A stealable receiver waits on a spinning shard, which then gets blocked
/// by a long poll. The message must reach it on the other shard: it may
/// move, so its shard does not watch it. It used to be watched, and waited
/// for its blocked shard's loop.
#[test]
fn a_stealable_receiver_is_not_held_by_its_blocked_shard() {
    let rt = spinning(2, Duration::from_micros(50));
    let h = rt.handle();
    let (tx, mut rx) = channel::<u32>(4).unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let (got_tx, got_rx) = std::sync::mpsc::channel();
    let task = h
        .spawn_stealable(async move {
            first_tx.send(ringlane::current_shard().unwrap()).unwrap();
            let got = rx.recv().await;
            got_tx.send((got, ringlane::current_shard())).unwrap();
        })
        .unwrap();
    let first = first_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    common::until_parked(&h, first); // its wait is registered
    let blocker = common::block_shard(&rt, first);
    tx.try_send(7).unwrap();
    let got = got_rx.recv_timeout(Duration::from_secs(5));
    rt.block_on(blocker.release()).unwrap();
    let (got, on) = got.expect("the receiver waited for its blocked shard");
    assert_eq!(got, Some(7));
    assert_ne!(on, Some(first), "it ran on the blocked shard?");
    rt.block_on(task).unwrap();
}

/// A watched receiver is woken once and then stops waiting (it sleeps).
/// Senders stop ringing its parked shard for it, as they do for a receiver
/// with a waker. The watch mark used to stay, so every later message rang
/// the shard awake for nothing.
#[test]
fn a_receiver_that_stopped_waiting_is_not_rung_for_each_message() {
    let rt = spinning(1, Duration::from_millis(1));
    let h = rt.handle();
    let (tx, mut rx) = channel::<u32>(64).unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    // The receiver sleeps (no channel wait) until the test has counted:
    // a timed sleep here ran out under load before the sends were done.
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let j = h
        .spawn_pinned(0, async move {
            first_tx.send(rx.recv().await).unwrap();
            go_rx.await.unwrap();
            let mut rest = Vec::new();
            while let Ok(v) = rx.try_recv() {
                rest.push(v);
            }
            rest
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(5)); // the receiver waits
    tx.try_send(0).unwrap();
    assert_eq!(
        first_rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        Some(0)
    );
    common::until_parked(&h, 0);
    let before = h.shard_stats(0).unwrap().wakeups;
    for i in 1..=20 {
        tx.try_send(i).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let rung = h.shard_stats(0).unwrap().wakeups - before;
    go_tx.send(()).unwrap();
    assert!(
        rung <= 3,
        "a sleeping receiver's shard was rung {rung} times"
    );
    assert_eq!(rt.block_on(j).unwrap(), (1..=20).collect::<Vec<_>>());
}
