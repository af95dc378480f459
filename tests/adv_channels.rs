//! Adversarial tests of the cross-shard channels (`ringlane::channel`,
//! `ringlane::raw_channel`) and `Handle::call_on`: waiting senders of every
//! kind when the receiving task goes away, close racing batches on watched
//! receivers, shutdown with sender tasks blocked and the receiver outside
//! the runtime, clones dropped concurrently, receivers on local, pinned and
//! stealable tasks (and handed between them) on spinning shards, and two
//! Tokio-parity expectations (a hot receiver yields its shard; a send from a
//! shard task wakes a parked receiver at once).
//!
//! Every wait is bounded (10 s): a lost wake-up fails the test instead of
//! hanging it.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, Receiver, TryRecvError, TrySendError, channel};

/// The bound on every wait in this file.
const LIMIT: Duration = Duration::from_secs(10);

fn spinning(shards: usize, window: Duration) -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(shards)
        .spin_before_park(window)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"))
}

fn tokio_mt(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (yielding) until `cond` holds; fails after [`LIMIT`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {LIMIT:?}");
        std::thread::yield_now();
    }
}

/// Polls `f` on the calling plain thread (no runtime at all), parking
/// between polls; `None` if it is not done within `limit`.
fn park_block_on<F: Future>(f: F, limit: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return Some(out);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// Wraps a future and reports `id` the first time it returns `Pending`.
/// For a send into a full channel that is a deterministic signal: its
/// `Pending` comes only after it registered its waker (`poll_push`), so
/// whatever the test does after the signal races no registration.
struct SignalPending<F: Future> {
    fut: Pin<Box<F>>,
    signal: Option<(mpsc::Sender<u32>, u32)>,
}

fn signal_pending<F: Future>(fut: F, signal: mpsc::Sender<u32>, id: u32) -> SignalPending<F> {
    SignalPending {
        fut: Box::pin(fut),
        signal: Some((signal, id)),
    }
}

impl<F: Future> Future for SignalPending<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = self.fut.as_mut().poll(cx);
        if out.is_pending() {
            if let Some((signal, id)) = self.signal.take() {
                let _ = signal.send(id);
            }
        }
        out
    }
}

/// A message that counts its drops: a lost message is never dropped (the
/// count stays short and its `Arc` lives on), a duplicated one is dropped
/// twice (the count overshoots).
struct Msg {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn returned_ids(r: Result<(), Vec<Msg>>) -> Result<(), Vec<u32>> {
    r.map_err(|v| v.iter().map(|m| m.id).collect())
}

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

/// A receiver that always finds a message (a plain thread keeps a raw-lane
/// channel of 4,096 topped up while each message costs the receiver 5 µs)
/// must still let the other work of its shard run: here a `call_on` to that
/// shard must be answered within 3 s. `tokio::sync::mpsc::Receiver::recv`
/// takes part in Tokio's cooperative budget (it returns `Pending` after a
/// budget of ready operations so the task yields), so the equivalent Tokio
/// program answers within a budget's worth of messages. ringlane's
/// `poll_recv` has no budget and the shard's `task_budget` counts tasks per
/// tick, not operations within one poll: the receiver's single poll never
/// ends while the ring is non-empty, so nothing else on its shard (spawns,
/// timers, I/O completions, `call_on`) runs. Also checks the raw lane's
/// single-sender FIFO and count under that load.
#[test]
fn a_receiver_that_always_finds_a_message_does_not_starve_its_shard() {
    const CAP: usize = 4096;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(CAP).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let receiver = {
        let received = received.clone();
        h.spawn_pinned(1, async move {
            let mut last: Option<u64> = None;
            while let Some(v) = rx.recv().await {
                if let Some(prev) = last {
                    assert_eq!(v, prev + 1, "the raw lane reordered one sender's values");
                }
                last = Some(v);
                received.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(5) {
                    std::hint::spin_loop();
                }
            }
            last
        })
        .unwrap()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match tx.try_send(next) {
                    Ok(()) => next += 1,
                    Err(TrySendError::Full(_)) => std::hint::spin_loop(),
                    Err(TrySendError::Closed(_)) => panic!("the receiver went away"),
                }
            }
            next // tx dropped here: the stream ends after what was sent
        })
    };
    wait_until("the receiver got going", || {
        received.load(Ordering::Relaxed) >= 10_000
    });
    let call = h.call_on(1, |ctx| ctx.index()).unwrap();
    let answered = rt.block_on(timeout(Duration::from_secs(3), call));
    stop.store(true, Ordering::Relaxed);
    let sent = feeder.join().unwrap();
    let last = common::join_within(
        &rt,
        receiver,
        LIMIT,
        "the receiver after the feeder stopped",
    );
    assert_eq!(last, sent.checked_sub(1), "the raw lane lost its tail");
    assert_eq!(received.load(Ordering::Relaxed), sent);
    let answered = answered.expect(
        "call_on to a shard whose receiver always finds a message was not answered in 3 s: \
         recv never yields (no cooperative budget), so the shard runs nothing else",
    );
    assert_eq!(answered.unwrap(), 1);
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

thread_local! {
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// `call_on` from Tokio tasks, from tasks on both shards (to their own
/// shard and to the other) and from a plain thread with no runtime: each
/// closure must run exactly once, on the shard asked for (`ShardCtx::index`
/// and `current_shard` agree, and the per-shard `thread_local!` counts add
/// up), a nested `call_on` through `ShardCtx::handle` works, a panicking
/// closure becomes `JoinError::is_panic` with the shard still serving, and
/// after shutdown `call_on` is refused with `Error::Shutdown` ("As
/// spawn_pinned"), not a panic.
#[test]
fn call_on_runs_every_closure_once_on_its_shard_from_anywhere_and_refuses_after_shutdown() {
    const N: u64 = 200;
    async fn calls(h: ringlane::Handle, n: u64) -> u64 {
        let mut wrong = 0;
        for i in 0..n {
            let target = (i % 2) as usize;
            let (index, on) = h
                .call_on(target, |ctx| {
                    CALLS.with(|c| c.set(c.get() + 1));
                    (ctx.index(), ringlane::current_shard())
                })
                .expect("call_on")
                .await
                .expect("the call");
            if index != target || on != Some(target) {
                wrong += 1;
            }
        }
        wrong
    }
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let from_tokio = tokio_rt.spawn(calls(h.clone(), N));
    let from_shards: Vec<_> = (0..2)
        .map(|s| h.spawn_pinned(s, calls(h.clone(), N)).unwrap())
        .collect();
    let from_thread = {
        let h = h.clone();
        std::thread::spawn(move || park_block_on(calls(h, N), LIMIT))
    };
    let wrong = tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, from_tokio).await })
        .expect("call_on from Tokio stalled")
        .unwrap();
    assert_eq!(wrong, 0, "a closure ran on the wrong shard (from Tokio)");
    for j in from_shards {
        assert_eq!(
            common::join_within(&rt, j, LIMIT, "call_on from a shard task"),
            0,
            "a closure ran on the wrong shard (from a shard)"
        );
    }
    assert_eq!(
        from_thread.join().unwrap(),
        Some(0),
        "call_on from a plain thread stalled or ran on the wrong shard"
    );
    let boom = h
        .call_on(1, |_| -> u64 { panic!("a call_on closure panics") })
        .unwrap();
    let err = rt
        .block_on(timeout(LIMIT, boom))
        .expect("the panicking call never resolved")
        .unwrap_err();
    assert!(err.is_panic());
    let nested = common::join_within(
        &rt,
        h.call_on(0, |ctx| {
            ctx.handle()
                .call_on(1, |c| (c.index(), ringlane::current_shard()))
                .expect("a nested call_on")
        })
        .unwrap(),
        LIMIT,
        "the outer call",
    );
    assert_eq!(
        common::join_within(&rt, nested, LIMIT, "the nested call"),
        (1, Some(1))
    );
    let count = |s: usize| -> u64 {
        common::join_within(
            &rt,
            h.call_on(s, |_| CALLS.with(Cell::get)).unwrap(),
            LIMIT,
            "the count",
        )
    };
    // Four callers, N calls each, alternating shards; the panicking call
    // counted nothing.
    assert_eq!(
        (count(0), count(1)),
        (2 * N, 2 * N),
        "a closure ran twice, never, or on the wrong shard"
    );
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    assert!(matches!(h.call_on(0, |_| ()), Err(Error::Shutdown)));
}

/// The raw `u64` lane at capacities that are not powers of two (and 1, 2):
/// a slot ring's positions skip from the last index to the next lap, and
/// `len` derives the count from head and tail indices, so these are where
/// an off-by-one hides. Single-threaded: over many laps `try_send` refuses
/// with `Full` exactly at `capacity` (handing the value back), `len` is
/// exact on both halves, FIFO holds, and after `close` the queued value
/// is still received, then `Disconnected`, while `try_send` gets `Closed`.
/// Then three producers (shard task, Tokio `send_many` in fives, plain
/// thread) feed a watched `recv_many(.., 2)` receiver through a channel of
/// 3: FIFO per producer, nothing lost, and `len` never above the capacity.
#[test]
fn the_raw_lane_is_exact_across_laps_at_odd_capacities() {
    for cap in [1usize, 2, 3, 5, 6, 7, 9, 13] {
        let (tx, mut rx) = ringlane::raw_channel(cap).unwrap();
        assert_eq!((tx.capacity(), tx.max_capacity()), (cap, cap));
        let (mut next_in, mut next_out) = (0u64, 0u64);
        for round in 0..(cap * 40 + 17) {
            loop {
                match tx.try_send(next_in) {
                    Ok(()) => next_in += 1,
                    Err(TrySendError::Full(v)) => {
                        assert_eq!(v, next_in, "cap {cap}: Full handed back another value");
                        break;
                    }
                    Err(TrySendError::Closed(_)) => panic!("cap {cap}: closed"),
                }
            }
            assert_eq!(tx.len(), cap, "cap {cap} round {round}: len when full");
            assert_eq!(rx.len(), cap, "cap {cap} round {round}: len when full");
            let take = 1 + round % cap;
            for _ in 0..take {
                assert_eq!(rx.try_recv(), Ok(next_out), "cap {cap} round {round}: FIFO");
                next_out += 1;
            }
            assert_eq!(
                rx.len(),
                cap - take,
                "cap {cap} round {round}: len after taking"
            );
            // Tokio's meaning: the room left, on both halves.
            assert_eq!((tx.capacity(), rx.capacity()), (take, take));
        }
        while let Ok(v) = rx.try_recv() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in, "cap {cap}: messages lost");
        assert!(rx.is_empty() && tx.is_empty());
        tx.try_send(u64::MAX).unwrap();
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(0), Err(TrySendError::Closed(0)));
        assert_eq!(rx.len(), 1, "cap {cap}: len of a closed ring");
        assert_eq!(rx.try_recv(), Ok(u64::MAX));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.len(), 0);
    }

    const PER: u64 = 20_000;
    let rt = spinning(2, Duration::from_micros(20));
    let h = rt.handle();
    let tokio_rt = tokio_mt(1);
    let (tx, mut rx) = ringlane::raw_channel(3).unwrap();
    let tag = |id: u64, seq: u64| (id << 32) | seq;
    let receiver = h
        .spawn_pinned(1, async move {
            let mut next = [0u64; 3];
            let mut buf = Vec::new();
            let mut max_len = 0;
            while rx.recv_many(&mut buf, 2).await > 0 {
                assert!(buf.len() <= 2, "recv_many exceeded its limit");
                max_len = max_len.max(rx.len());
                for v in buf.drain(..) {
                    let (id, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
                    assert_eq!(
                        seq, next[id],
                        "producer {id}: lost, duplicated or reordered"
                    );
                    next[id] += 1;
                }
            }
            (next, max_len)
        })
        .unwrap();
    let p0 = {
        let tx = tx.clone();
        h.spawn_pinned(0, async move {
            for i in 0..PER {
                tx.send(tag(0, i)).await.unwrap();
            }
        })
        .unwrap()
    };
    let p1 = {
        let tx = tx.clone();
        tokio_rt.spawn(async move {
            let mut i = 0;
            while i < PER {
                let end = (i + 5).min(PER);
                tx.send_many((i..end).map(|s| tag(1, s))).await.unwrap();
                i = end;
            }
        })
    };
    let p2 = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            for i in 0..PER {
                let mut v = tag(2, i);
                loop {
                    match tx.try_send(v) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            assert!(Instant::now() < deadline, "the receiver stalled");
                            v = back;
                            std::thread::yield_now();
                        }
                        Err(TrySendError::Closed(_)) => panic!("the receiver went away"),
                    }
                }
            }
        })
    };
    drop(tx);
    let (next, max_len) = common::join_within(&rt, receiver, LIMIT, "the raw-lane receiver");
    assert_eq!(next, [PER; 3]);
    assert!(max_len <= 3, "len {max_len} above the capacity of 3");
    common::join_within(&rt, p0, LIMIT, "producer 0");
    tokio_rt.block_on(p1).unwrap();
    p2.join().unwrap();
}
