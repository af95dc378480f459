//! Wake-ups of receivers in every place: a stream ended by clones dropped
//! concurrently everywhere, local receivers on a parked spinning shard woken
//! by every kind of sender, and one receiver handed between pinned and
//! stealable tasks on spinning shards. Every wait is bounded.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringlane::{Receiver, TrySendError, channel};

use common::chans::*;
use common::{LIMIT, wait_until};

/// Seven producers (four plain threads, two Tokio tasks, one pinned task
/// on shard 0) each send every message through a fresh clone of their
/// `Sender` and drop the clone at once, so the sender count moves up and
/// down from many threads while a watched receiver (spinning shard 1)
/// waits. Expected ("dropping every sender ends the receiver's stream
/// after the queued messages", as in Tokio): the stream ends exactly once,
/// after the last message, with every message received once. An early end
/// (a count that reached zero too soon) loses later messages or closes the
/// ring under a live producer; a missed last-drop wake-up leaves the
/// receiver waiting (fails at 10 s).
#[test]
fn clones_dropped_concurrently_everywhere_end_a_watched_stream_only_after_every_message() {
    const PER: u64 = 2_000;
    const PRODUCERS: u64 = 7;
    let rt = spinning(2, Duration::from_micros(20));
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let (tx, mut rx) = channel::<u64>(8).unwrap();
    let receiver = h
        .spawn_pinned(1, async move {
            let mut seen = vec![false; (PRODUCERS * PER) as usize];
            let mut n = 0u64;
            while let Some(v) = rx.recv().await {
                assert!(
                    !std::mem::replace(&mut seen[v as usize], true),
                    "message {v} received twice"
                );
                n += 1;
            }
            n
        })
        .unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|id| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + LIMIT;
                for i in 0..PER {
                    let clone = tx.clone();
                    let mut m = id * PER + i;
                    loop {
                        match clone.try_send(m) {
                            Ok(()) => break,
                            Err(TrySendError::Full(back)) => {
                                assert!(Instant::now() < deadline, "the receiver stalled");
                                m = back;
                                std::thread::yield_now();
                            }
                            Err(TrySendError::Closed(_)) => {
                                panic!("the stream was ended under a live sender")
                            }
                        }
                    }
                    drop(clone);
                }
            })
        })
        .collect();
    let tokio_joins: Vec<_> = (4..6u64)
        .map(|id| {
            let tx = tx.clone();
            tokio_rt.spawn(async move {
                for i in 0..PER {
                    let clone = tx.clone();
                    clone
                        .send(id * PER + i)
                        .await
                        .expect("the receiver is alive");
                    drop(clone);
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let on_shard = {
        let tx = tx.clone();
        h.spawn_pinned(0, async move {
            for i in 0..PER {
                let clone = tx.clone();
                clone
                    .send(6 * PER + i)
                    .await
                    .expect("the receiver is alive");
                drop(clone);
                if i % 64 == 0 {
                    ringlane::yield_now().await;
                }
            }
        })
        .unwrap()
    };
    drop(tx);
    let n = common::join_within(
        &rt,
        receiver,
        LIMIT,
        "the watched receiver after the last clone was dropped",
    );
    assert_eq!(n, PRODUCERS * PER, "messages lost");
    for t in threads {
        t.join().unwrap();
    }
    for j in tokio_joins {
        tokio_rt.block_on(j).unwrap();
    }
    common::join_within(&rt, on_shard, LIMIT, "the sender on shard 0");
}

/// A local task (`spawn_local_on`, holding `Rc` state) and its
/// `spawn_local` child wait on two channels on a spinning shard, so both
/// are watched by the shard (`watch.rs`: only a shard's own pinned or
/// local task is). Before each message the shard is let park; then one
/// message per channel comes from, in turn, a pinned task on the other
/// shard (MSG_RING), a Tokio worker, a plain thread, a shard of a
/// *different* ringlane runtime (which must take the eventfd path, not a
/// deferred MSG_RING of its own runtime), and the test thread. Expected
/// (watch steps W2–W3: a sender seeing `WATCHED` rings the parked shard):
/// each message wakes both receivers; dropping the senders ends both
/// streams. A missed ring shows as a round that never completes.
#[test]
fn local_receivers_on_a_parked_spinning_shard_are_woken_by_every_kind_of_sender() {
    const ROUNDS: u64 = 12;
    let rt = spinning(2, Duration::from_micros(50));
    let h = rt.handle();
    let other = common::runtime(1);
    let tokio_rt = tokio_mt(1);
    let (tx_a, rx_a) = channel::<u64>(4).unwrap();
    let (tx_b, rx_b) = channel::<u64>(4).unwrap();
    let seen_a = Arc::new(AtomicU64::new(0));
    let seen_b = Arc::new(AtomicU64::new(0));
    let (sa, sb) = (seen_a.clone(), seen_b.clone());
    let local = h
        .spawn_local_on(1, move || async move {
            let total = Rc::new(Cell::new(0u64)); // !Send across awaits
            let mut rx_b = rx_b;
            let child = ringlane::spawn_local(async move {
                let mut n = 0u64;
                while let Some(v) = rx_b.recv().await {
                    n += v;
                    sb.store(n, Ordering::SeqCst);
                }
                n
            })
            .expect("spawn_local on a shard");
            let mut rx_a = rx_a;
            while let Some(v) = rx_a.recv().await {
                total.set(total.get() + v);
                sa.store(total.get(), Ordering::SeqCst);
            }
            (total.get(), child.await.expect("the local child"))
        })
        .unwrap();
    let both_at = |k: u64| seen_a.load(Ordering::SeqCst) == k && seen_b.load(Ordering::SeqCst) == k;
    let mut k = 0u64;
    for round in 0..ROUNDS {
        for kind in 0..5 {
            wait_until("both receivers caught up", || both_at(k));
            // Both stored `k` in the poll that then waits again, so this
            // park comes after both waits were registered.
            common::until_parked(&h, 1);
            k += 1;
            let (a, b) = (tx_a.clone(), tx_b.clone());
            match kind {
                0 => drop(
                    h.spawn_pinned(0, async move {
                        a.send(1).await.unwrap();
                        b.send(1).await.unwrap();
                    })
                    .unwrap(),
                ),
                1 => drop(tokio_rt.spawn(async move {
                    a.send(1).await.unwrap();
                    b.send(1).await.unwrap();
                })),
                2 => drop(std::thread::spawn(move || {
                    a.try_send(1).unwrap();
                    b.try_send(1).unwrap();
                })),
                3 => drop(
                    other
                        .handle()
                        .spawn_pinned(0, async move {
                            a.send(1).await.unwrap();
                            b.send(1).await.unwrap();
                        })
                        .unwrap(),
                ),
                _ => {
                    a.try_send(1).unwrap();
                    b.try_send(1).unwrap();
                }
            }
            wait_until(
                &format!("round {round}, sender kind {kind}: the parked shard's local receivers"),
                || both_at(k),
            );
        }
    }
    drop((tx_a, tx_b));
    let (a, b) = common::join_within(
        &rt,
        local,
        LIMIT,
        "the local receivers after every sender went",
    );
    assert_eq!((a, b), (k, k));
}

/// One receiver is handed (as a message) round a ring of three workers, a
/// pinned task on shard 0, one on shard 1 and a stealable task, each
/// taking up to 37 messages before passing it on, while a pinned task, a
/// Tokio task (`send_many` in sevens) and a plain thread feed it through a
/// channel of 5 on spinning shards. The receiver's `rx_home` is fixed by
/// its first watch (shard 0), so its later waits on shard 1 and in the
/// stealable task take the waker path while shard 0 may still hold a stale
/// watch entry. Expected (FIFO per sender; no message lost or duplicated;
/// the stream ends once every sender is gone): the concatenation of what
/// the workers took, in hand-over order, is each sender's sequence exactly,
/// and exactly one worker sees the end.
#[test]
fn a_receiver_handed_between_pinned_and_stealable_tasks_on_spinning_shards_loses_nothing() {
    const PER: u64 = 5_000;
    type Rx = Receiver<(u8, u64)>;
    type Log = Arc<Mutex<Vec<(u8, u64)>>>;
    let rt = spinning(2, Duration::from_micros(50));
    let h = rt.handle();
    let tokio_rt = tokio_mt(1);
    let (tx, rx) = channel::<(u8, u64)>(5).unwrap();
    let log: Log = Arc::new(Mutex::new(Vec::with_capacity(3 * PER as usize)));
    let (to0, in0) = channel::<Rx>(1).unwrap();
    let (to1, in1) = channel::<Rx>(1).unwrap();
    let (to_s, in_s) = channel::<Rx>(1).unwrap();
    let worker = |mut inbox: Receiver<Rx>, next: ringlane::Sender<Rx>, log: Log| async move {
        let mut hops = 0u64;
        while let Some(mut rx) = inbox.recv().await {
            hops += 1;
            for _ in 0..37 {
                match rx.recv().await {
                    Some(m) => {
                        log.lock().unwrap().push(m);
                    }
                    None => return (hops, true),
                }
            }
            if next.send(rx).await.is_err() {
                panic!("the next worker's inbox closed while the stream lives");
            }
        }
        (hops, false)
    };
    let w0 = h.spawn_pinned(0, worker(in0, to1, log.clone())).unwrap();
    let w1 = h.spawn_pinned(1, worker(in1, to_s, log.clone())).unwrap();
    let ws = h
        .spawn_stealable(worker(in_s, to0.clone(), log.clone()))
        .unwrap();
    to0.try_send(rx).unwrap();
    drop(to0);
    let s0 = {
        let tx = tx.clone();
        h.spawn_pinned(0, async move {
            for i in 0..PER {
                tx.send((0, i)).await.unwrap();
            }
        })
        .unwrap()
    };
    let s1 = {
        let tx = tx.clone();
        tokio_rt.spawn(async move {
            let mut i = 0;
            while i < PER {
                let end = (i + 7).min(PER);
                tx.send_many((i..end).map(|s| (1u8, s))).await.unwrap();
                i = end;
            }
        })
    };
    let s2 = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            for i in 0..PER {
                let mut m = (2u8, i);
                loop {
                    match tx.try_send(m) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            assert!(
                                Instant::now() < deadline,
                                "the handed-over receiver stalled"
                            );
                            m = back;
                            std::thread::yield_now();
                        }
                        Err(TrySendError::Closed(_)) => panic!("the receiver went away"),
                    }
                }
            }
        })
    };
    drop(tx);
    let results: Vec<(u64, bool)> = [w0, w1, ws]
        .into_iter()
        .map(|w| common::join_within(&rt, w, LIMIT, "a worker of the hand-over ring"))
        .collect();
    common::join_within(&rt, s0, LIMIT, "the sender on shard 0");
    tokio_rt.block_on(s1).unwrap();
    s2.join().unwrap();
    assert_eq!(
        results.iter().filter(|r| r.1).count(),
        1,
        "exactly one worker sees the end: {results:?}"
    );
    assert!(
        results.iter().all(|r| r.0 > 0),
        "every worker held the receiver at least once: {results:?}"
    );
    let log = log.lock().unwrap();
    let mut next = [0u64; 3];
    for &(id, seq) in log.iter() {
        assert_eq!(
            seq, next[id as usize],
            "sender {id}: lost, duplicated or reordered"
        );
        next[id as usize] += 1;
    }
    assert_eq!(next, [PER; 3]);
}

/// Polls a receive twice at once before it may wait: the second poll finds
/// `rx_waiting` set by the first, stores nothing and (since the channel's
/// wait protocol skips it then) fences nothing before its second look.
struct PolledTwiceAtOnce<'a> {
    rx: &'a mut Receiver<u64>,
    polls: u32,
}

impl std::future::Future for PolledTwiceAtOnce<'_> {
    type Output = Option<u64>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<u64>> {
        self.polls += 1;
        let polled = self.rx.poll_recv(cx);
        if polled.is_pending() && self.polls == 1 {
            // A spurious wake-up: polled again right away. After the
            // second poll only the channel's own wake-up brings it back.
            cx.waker().wake_by_ref();
        }
        polled
    }
}

/// A receiver on a Tokio thread (the waker path) is polled twice in a row
/// for each message, while a plain thread sends that message at a random
/// moment around the two polls. The second poll skips the store and the
/// fence of the wait protocol (its flag is already set). Expected (no
/// wake-up is lost, as in Tokio): every message arrives, in order; a lost
/// wake-up leaves the receiver waiting for good (fails at the limit).
#[test]
fn a_receiver_polled_again_while_its_wait_is_registered_loses_no_wakeup() {
    const MESSAGES: u64 = 20_000;
    let (tx, mut rx) = channel::<u64>(4).unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let sender = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            for k in 0..MESSAGES {
                while acked.load(Ordering::Acquire) != k {
                    std::hint::spin_loop();
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                for _ in 0..seed % 2_000 {
                    std::hint::spin_loop();
                }
                tx.try_send(k).expect("one message in flight at a time");
            }
        })
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = tokio.block_on(async {
        tokio::time::timeout(LIMIT, async {
            for k in 0..MESSAGES {
                let got = PolledTwiceAtOnce {
                    rx: &mut rx,
                    polls: 0,
                }
                .await;
                assert_eq!(got, Some(k), "out of order or ended early");
                acked.store(k + 1, Ordering::Release);
            }
            MESSAGES
        })
        .await
    });
    let received = received.unwrap_or_else(|_| {
        panic!(
            "a wake-up was lost: stuck after {} of {MESSAGES} messages",
            acked.load(Ordering::SeqCst)
        )
    });
    sender.join().unwrap();
    assert_eq!(received, MESSAGES);
}
