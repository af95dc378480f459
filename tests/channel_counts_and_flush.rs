//! What the per-shard counters say about channels and the mailbox, and when
//! `send_many` and `flush` wake a receiver: one announcement per batch and
//! none for an empty one, `flush` ringing the doorbells its shard owes,
//! `messages_sent` counted where the pushes happened, an exited shard's
//! counters frozen, envelopes drained at shutdown counted, exact counts from
//! Tokio threads and from a spinning receiver.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::{SendError, ShardStats, TryRecvError, TrySendError};

use common::chans::spinning;
use common::lifecycle::within;
use common::{LIMIT, join_within, until_parked, wait_until};

/// Busy-waits for `d` (an item that costs a little to produce).
fn busy(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Doorbells a shard received between two snapshots (of either kind).
fn rung(a: &ShardStats, b: &ShardStats) -> u64 {
    (b.doorbells_eventfd + b.doorbells_msg_ring) - (a.doorbells_eventfd + a.doorbells_msg_ring)
}

/// An echo task on shard 0 that answers each `v` with `v + 1` over two
/// `raw_channel`s of 4: returns the ping sender, the pong receiver and the
/// task (it ends when the ping sender is dropped).
fn echo_on_shard_0(
    h: &ringlane::Handle,
) -> (
    ringlane::RawSender,
    ringlane::RawReceiver,
    ringlane::JoinHandle<()>,
) {
    let (ping_tx, mut ping_rx) = ringlane::raw_channel(4).unwrap();
    let (pong_tx, pong_rx) = ringlane::raw_channel(4).unwrap();
    let echo = h
        .spawn_pinned(0, async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v + 1).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    (ping_tx, pong_rx, echo)
}

fn tokio_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn fail_on(problems: Vec<String>) {
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// 1. One doorbell for a whole batch
// ---------------------------------------------------------------------------

/// A receiver waits on shard 1, which is parked. A Tokio thread sends one
/// batch of 1,000 into a channel with room for all of them (so the batch
/// never waits for room), from an iterator that spends 10 us per item.
/// Expected (sender.rs: "waking the receiver once for the whole batch (and
/// once more each time the batch has to wait for room)"; the issue: "a
/// batch: one doorbell per target for the whole batch"): at most a couple
/// of doorbells reach shard 1, and at most a couple of its parks end by a
/// doorbell.
#[test]
fn send_many_of_1000_from_a_tokio_thread_to_a_parked_shard_rings_at_most_a_couple_of_doorbells() {
    const N: u64 = 1000;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(1024).unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let consumer = {
        let received = received.clone();
        h.spawn_pinned(1, async move {
            let mut next = 0u64;
            while let Some(v) = rx.recv().await {
                assert_eq!(v, next, "the batch was reordered");
                next += 1;
                received.store(next, Ordering::SeqCst);
            }
            next
        })
        .unwrap()
    };
    until_parked(&h, 1);
    let before = h.shard_stats(1).unwrap();
    let tokio = tokio_ct();
    let sent = tokio.block_on(async {
        let items = (0..N).inspect(|_| busy(Duration::from_micros(10)));
        tokio::time::timeout(LIMIT, tx.send_many(items)).await
    });
    assert!(
        matches!(sent, Ok(Ok(()))),
        "a batch into a live receiver with room for all of it failed or stalled"
    );
    wait_until("the receiver taking the whole batch", || {
        received.load(Ordering::SeqCst) == N
    });
    until_parked(&h, 1);
    let after = h.shard_stats(1).unwrap();
    drop(tx);
    assert_eq!(join_within(&rt, consumer, LIMIT, "the consumer"), N);
    let doorbells = rung(&before, &after);
    let wakeups = after.wakeups - before.wakeups;
    assert!(
        doorbells <= 2 && wakeups <= 2,
        "one send_many of {N} (never short of room) into a parked shard rang {doorbells} \
         doorbells and ended {wakeups} parks by a doorbell: the batch announces itself every \
         16 items instead of once for the whole batch ({before:?} -> {after:?})"
    );
}

// ---------------------------------------------------------------------------
// 2-3. messages_sent for batches
// ---------------------------------------------------------------------------

/// A pinned task on shard 0 sends `0..1000` as one batch into a channel of
/// 8; a task on shard 1 receives 500 of them and hands the receiver back,
/// so the batch refills the ring (8 more) and waits for room. At that
/// point 508 messages were sent by shard 0 and 500 received on shard 1.
/// Expected: `messages_sent` on shard 0 already counts them (it is a
/// counter of "channel messages sent by tasks on this shard", and
/// `messages_received` on the other side counts as it goes); once the
/// receiver is dropped the batch fails with exactly `508..1000`, in order,
/// and shard 0 has counted exactly 508 sent.
#[test]
fn messages_sent_counts_a_send_many_batch_as_it_pushes_and_a_closed_batch_returns_exactly_the_unsent()
 {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, rx) = ringlane::raw_channel(8).unwrap();
    let probe = tx.clone();
    let before = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    let taker = h
        .spawn_pinned(1, async move {
            let mut rx = rx;
            for want in 0..500u64 {
                assert_eq!(rx.recv().await, Some(want), "FIFO broken");
            }
            rx
        })
        .unwrap();
    let batch = h
        .spawn_pinned(0, async move {
            tx.send_many(0..1000u64)
                .await
                .map_err(|SendError(rest)| rest)
        })
        .unwrap();
    let rx = join_within(&rt, taker, LIMIT, "the receiver taking 500");
    wait_until("the batch refilling the ring and waiting for room", || {
        probe.len() == 8
    });
    let mid = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    let sent_mid = mid[0].messages_sent - before[0].messages_sent;
    let received_mid = mid[1].messages_received - before[1].messages_received;
    let mut problems = Vec::new();
    if received_mid != 500 {
        problems.push(format!(
            "shard 1 received 500 messages, counted {received_mid}"
        ));
    }
    if sent_mid < 500 {
        problems.push(format!(
            "mid-batch: 508 messages sent by shard 0 (500 of them already counted as received \
             on shard 1), but shard 0's messages_sent counts {sent_mid}: a batch is counted \
             only when its future ends"
        ));
    }
    drop(rx);
    let result = join_within(&rt, batch, LIMIT, "the batch after the receiver went");
    match result {
        Ok(()) => problems.push("the batch succeeded although its receiver is gone".into()),
        Err(rest) => {
            let want: Vec<u64> = (508..1000).collect();
            if rest != want {
                problems.push(format!(
                    "the batch gave back {} items starting at {:?}, expected exactly 508..1000",
                    rest.len(),
                    rest.first()
                ));
            }
        }
    }
    let end = h.shard_stats(0).unwrap();
    let sent_end = end.messages_sent - before[0].messages_sent;
    if sent_end != 508 {
        problems.push(format!(
            "after the batch ended shard 0 counted {sent_end} sent, expected exactly 508"
        ));
    }
    drop(probe);
    fail_on(problems);
}

/// A batch of 20 into a channel of 8 is polled once inside a pinned task
/// on shard 0 (it pushes 8 and waits for room), then handed out of the task
/// (it is a `Send` future) and finished on a Tokio thread that drains the
/// receiver. Shard 0 pushed 8 of those messages. Expected: shard 0's
/// `messages_sent` counts 8, as soon as they are pushed and after the
/// batch ends elsewhere (the 12 pushed by the Tokio thread count nowhere).
#[test]
fn a_send_many_begun_on_a_shard_and_finished_elsewhere_still_counts_what_the_shard_pushed() {
    type Batch = Pin<Box<dyn Future<Output = Result<(), SendError<Vec<u64>>>> + Send>>;
    let rt = common::runtime(1);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(8).unwrap();
    let before = h.shard_stats(0).unwrap();
    let begun = h
        .spawn_pinned(0, async move {
            let mut batch: Batch = Box::pin(async move { tx.send_many(0..20u64).await });
            let pending =
                std::future::poll_fn(|cx| Poll::Ready(batch.as_mut().poll(cx).is_pending())).await;
            (pending, batch)
        })
        .unwrap();
    let (pending, batch) = join_within(&rt, begun, LIMIT, "the first poll of the batch");
    assert!(pending, "a batch of 20 into a ring of 8 cannot be done yet");
    assert_eq!(rx.len(), 8, "the first poll filled the ring");
    let mut problems = Vec::new();
    let on_shard = h.shard_stats(0).unwrap().messages_sent - before.messages_sent;
    if on_shard != 8 {
        problems.push(format!(
            "shard 0 pushed 8 messages, its messages_sent counts {on_shard} while the batch waits"
        ));
    }
    let tokio = tokio_ct();
    let got = tokio.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let drain = async {
                let mut v = Vec::new();
                while v.len() < 20 {
                    v.push(rx.recv().await.expect("the stream ended early"));
                }
                v
            };
            let (r, v) = tokio::join!(batch, drain);
            (r.is_ok(), v)
        })
        .await
        .expect("finishing the batch on a Tokio thread stalled")
    });
    assert!(got.0, "the batch failed with its receiver alive");
    assert_eq!(got.1, (0..20).collect::<Vec<u64>>());
    let total = h.shard_stats(0).unwrap().messages_sent - before.messages_sent;
    if total != 8 {
        problems.push(format!(
            "after the batch ended on a Tokio thread shard 0 counts {total} sent; it pushed 8: \
             a batch's pushes are counted where its future is dropped, not where they happen"
        ));
    }
    fail_on(problems);
}

// ---------------------------------------------------------------------------
// 4. flush publishes
// ---------------------------------------------------------------------------

/// How long the sending task keeps its shard after `flush` (well past any
/// wake-up latency; a working flush makes this test take microseconds).
const WORK_AFTER_FLUSH: Duration = Duration::from_millis(1500);

/// A receiver waits on shard 1, which is parked (or, `stealable`, anywhere,
/// both shards parked). A pinned task on shard 0 sends a message, awaits
/// `flush()`, and then goes on with CPU work on its shard (here: watching
/// for the receiver's "seen" flag, up to 1.5 s). Returns a problem if the
/// receiver did not see the message while the sender worked.
fn flush_then_work(rt: &ringlane::Runtime, what: &str, stealable: bool) -> Option<String> {
    let h = rt.handle();
    let (tx, mut rx) = ringlane::channel::<u32>(4).unwrap();
    let seen = Arc::new(AtomicBool::new(false));
    let receiver = {
        let seen = seen.clone();
        let receive = async move {
            let v = rx.recv().await;
            seen.store(true, Ordering::SeqCst);
            v
        };
        match stealable {
            true => h.spawn_stealable(receive),
            false => h.spawn_pinned(1, receive),
        }
        .unwrap()
    };
    // The receiver waits in `recv` (no message was sent yet).
    if stealable {
        until_parked(&h, 0);
    }
    until_parked(&h, 1);
    let sender = {
        let seen = seen.clone();
        h.spawn_pinned(0, async move {
            tx.send(7).await.unwrap();
            tx.flush().await;
            let t = Instant::now();
            while !seen.load(Ordering::SeqCst) && t.elapsed() < WORK_AFTER_FLUSH {
                std::hint::spin_loop();
            }
            seen.load(Ordering::SeqCst)
        })
        .unwrap()
    };
    let during = join_within(rt, sender, LIMIT, what);
    let got = join_within(rt, receiver, LIMIT, what);
    assert_eq!(got, Some(7), "{what}: the message was lost");
    (!during).then(|| {
        format!(
            "{what}: after `send(7).await; flush().await` the sender's shard kept working for \
             {WORK_AFTER_FLUSH:?} and the receiver never saw the message: flush did not send \
             the doorbell the send owed (it waits for the end of the sender's poll), or left a \
             stealable receiver it woke in the busy shard's deque"
        )
    })
}

/// `Sender::flush`: "Resolves once every message sent before it is in the
/// receiver's queue ... it lets code written against buffering senders
/// (which publish on flush) run unchanged". Code written that way expects a
/// flushed message to be visible to its consumer, whatever the producer
/// does next. Checked with a receiver that leaves a waker (no spin window)
/// and with one its shard watches (spin window).
#[test]
fn flush_on_a_shard_announces_what_was_sent_before_the_task_goes_on_working() {
    let mut problems = Vec::new();
    let plain = common::runtime(2);
    problems.extend(flush_then_work(&plain, "receiver with a waker", false));
    drop(plain);
    let spin = spinning(2, Duration::from_micros(100));
    problems.extend(flush_then_work(
        &spin,
        "watched receiver (spin window)",
        false,
    ));
    drop(spin);
    fail_on(problems);
}

/// Expected: as above, for a stealable receiver. The send wakes it into the
/// sending shard's own deque (its waker schedules there), where it waits
/// behind the sender's poll unless another shard steals it; `flush` is the
/// way a task that goes on working tells the runtime so.
///
/// Why it may fail: the receiver's wake is no doorbell, so `flush` found
/// nothing owed, and a deque holding one task wakes no idle shard: the
/// message sat unread while shard 1 slept.
#[test]
fn flush_on_a_shard_lets_an_idle_shard_take_the_stealable_receiver_it_woke() {
    let rt = common::runtime(2);
    fail_on(
        flush_then_work(&rt, "stealable receiver", true)
            .into_iter()
            .collect(),
    );
}

// ---------------------------------------------------------------------------
// 5-6. Counters across shutdown
// ---------------------------------------------------------------------------

/// A receiver waits on shard 1 of a runtime with a spin window (so shard 1
/// watches it), gets one message, and is handed back out of its task. The
/// runtime is dropped. Then the old channel is used: one more `try_send`,
/// the receiver dropped, the sender dropped. Expected: the runtime's shards
/// have exited, so their counters are final ("stats outlive the runtime"
/// and keep their counts); nothing was handed off to anyone, so
/// `doorbells_avoided` ("hand-offs to this shard that needed no doorbell
/// (it was running)") cannot move.
#[test]
fn an_exited_shards_counters_do_not_move_when_its_old_channels_are_used_and_dropped() {
    let rt = spinning(2, Duration::from_micros(200));
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(4).unwrap();
    let j = h
        .spawn_pinned(1, async move {
            let v = rx.recv().await;
            (v, rx)
        })
        .unwrap();
    until_parked(&h, 1);
    tx.try_send(7).unwrap();
    let (v, rx) = join_within(&rt, j, LIMIT, "the watched receiver");
    assert_eq!(v, Some(7));
    within(Duration::from_secs(20), "runtime drop", move || drop(rt));
    let frozen = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    assert!(!frozen[1].parked, "an exited shard reads as parked");
    let late = tx.try_send(8);
    drop(rx);
    drop(tx);
    let later = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    assert!(late.is_ok(), "the receiver was alive: {late:?}");
    assert_eq!(
        frozen, later,
        "the counters of a runtime that has exited moved when an old channel was used and \
         dropped (doorbells_avoided counts a 'hand-off' to a shard that is gone)"
    );
}

/// Shard 1 is blocked in a long poll; ten pinned tasks are handed to it
/// (each counted on arrival as a doorbell avoided: it was running). The
/// runtime is then shut down with a zero timeout and shard 1 let go: it
/// takes the ten envelopes out of its mailbox and cancels them. Expected:
/// `mailbox_received` ("envelopes (tasks, wakes, calls) taken from the
/// mailbox") counts them: every hand-off counted on arrival is counted on
/// intake, also across shutdown.
#[test]
fn envelopes_a_shard_takes_from_its_mailbox_while_shutting_down_are_still_counted() {
    let rt = common::runtime(2);
    let h = rt.handle();
    until_parked(&h, 1);
    let blocker = common::block_shard(&rt, 1);
    // Taken while the blocker's tick runs: the blocker's own envelope is
    // published at the end of that tick, so it is part of the delta below.
    let before = h.shard_stats(1).unwrap();
    let joins: Vec<_> = (0..10)
        .map(|_| h.spawn_pinned(1, async {}).unwrap())
        .collect();
    let arrived = h.shard_stats(1).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(rt.shutdown(Duration::ZERO));
    });
    wait_until("shutdown to begin", || h.is_shutdown());
    drop(blocker.release());
    let report = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("shutdown stalled");
    let after = h.shard_stats(1).unwrap();
    drop(joins);
    let mut problems = Vec::new();
    let avoided = arrived.doorbells_avoided - before.doorbells_avoided;
    if avoided != 10 {
        problems.push(format!(
            "10 hand-offs to a running shard, {avoided} counted as avoided"
        ));
    }
    if report.unfinished_tasks != 10 {
        problems.push(format!(
            "expected the 10 queued tasks to be cancelled, report: {report:?}"
        ));
    }
    let taken = after.mailbox_received - before.mailbox_received;
    if taken < 10 {
        problems.push(format!(
            "shard 1 took its blocker and 10 queued tasks out of its mailbox (cancelling the \
             10 at shutdown), but mailbox_received grew by {taken}: envelopes drained during \
             shutdown are never counted ({before:?} -> {after:?})"
        ));
    }
    fail_on(problems);
}

// ---------------------------------------------------------------------------
// 7. Nothing sent, nothing rung
// ---------------------------------------------------------------------------

/// A receiver waits on shard 1, parked. Five empty batches from a Tokio
/// thread, then five from a pinned task on shard 0, each followed by a wait
/// for shard 1 to be parked. Expected: nothing was sent, so the receiver is
/// not woken (shard 1 polls nothing) and no doorbell reaches shard 1 ("a
/// doorbell is rung only when ..." there is something to pick up; Tokio
/// wakes a receiver only for a value or the end of the stream). Then a real
/// message still arrives.
#[test]
fn an_empty_send_many_wakes_nobody_and_rings_no_doorbell() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(4).unwrap();
    let receiver = h.spawn_pinned(1, async move { rx.recv().await }).unwrap();
    until_parked(&h, 1);
    let mut problems = Vec::new();

    let tokio = tokio_ct();
    let before = h.shard_stats(1).unwrap();
    for _ in 0..5 {
        let r = tokio
            .block_on(async { tokio::time::timeout(LIMIT, tx.send_many(Vec::<u64>::new())).await });
        assert!(matches!(r, Ok(Ok(()))), "an empty batch failed or stalled");
        until_parked(&h, 1);
    }
    let after = h.shard_stats(1).unwrap();
    let (d, p) = (
        rung(&before, &after),
        after.tasks_polled - before.tasks_polled,
    );
    if d != 0 || p != 0 {
        problems.push(format!(
            "5 empty batches from a Tokio thread: shard 1 got {d} doorbells and polled its \
             waiting receiver {p} times"
        ));
    }

    let before = h.shard_stats(1).unwrap();
    for _ in 0..5 {
        let tx0 = tx.clone();
        let j = h
            .spawn_pinned(0, async move {
                tx0.send_many(std::iter::empty::<u64>()).await.is_ok()
            })
            .unwrap();
        assert!(join_within(&rt, j, LIMIT, "an empty batch on shard 0"));
        until_parked(&h, 1);
    }
    let after = h.shard_stats(1).unwrap();
    let (d, p) = (
        rung(&before, &after),
        after.tasks_polled - before.tasks_polled,
    );
    if d != 0 || p != 0 {
        problems.push(format!(
            "5 empty batches from shard 0: shard 1 got {d} doorbells and polled its waiting \
             receiver {p} times"
        ));
    }

    tx.try_send(42).unwrap();
    assert_eq!(
        join_within(&rt, receiver, LIMIT, "a real message"),
        Some(42)
    );
    fail_on(problems);
}

// ---------------------------------------------------------------------------
// 8-9. Exact counts (controls around the counters)
// ---------------------------------------------------------------------------

/// Exactly 320 messages from a Tokio thread (`send`, `send_many`,
/// `try_send` retried on `Full` with the message handed back each time, and
/// a clone's `send_many` and `send`, with `flush` on both halves in
/// between), received on shard 1 with `recv`, `recv_many` and `try_recv`.
/// Expected: FIFO; shard 1 counts exactly 320 received; no shard counts a
/// send (they were made off the runtime). Once the receiver is dropped:
/// `try_send` -> `Closed(m)`, `send` -> `SendError(m)`, `send_many` ->
/// every item back, `flush` returns at once, and the counters stay put.
#[test]
fn exact_counts_for_messages_from_a_tokio_thread_and_exact_returns_from_a_closed_channel() {
    const TOTAL: u64 = 320;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(16).unwrap();
    until_parked(&h, 0);
    until_parked(&h, 1);
    let before = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    let receiver = h
        .spawn_pinned(1, async move {
            let mut got = Vec::new();
            while got.len() < 100 {
                got.push(rx.recv().await.expect("the stream ended early"));
            }
            let mut buf = Vec::new();
            while got.len() < 300 {
                let n = rx.recv_many(&mut buf, 7).await;
                assert!(n > 0, "the stream ended early");
                got.append(&mut buf);
            }
            while (got.len() as u64) < TOTAL {
                match rx.try_recv() {
                    Ok(v) => got.push(v),
                    Err(TryRecvError::Empty) => ringlane::yield_now().await,
                    Err(TryRecvError::Disconnected) => panic!("the stream ended early"),
                }
            }
            (got, rx)
        })
        .unwrap();
    let tokio = tokio_ct();
    let tx2 = tx.clone();
    let sent = tokio.block_on(async {
        tokio::time::timeout(LIMIT, async {
            for i in 0..100u64 {
                tx.send(i).await.unwrap();
            }
            tx.send_many(100..250u64).await.unwrap();
            for i in 250..300u64 {
                let mut m = i;
                loop {
                    match tx.try_send(m) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            assert_eq!(back, i, "try_send handed back another message");
                            m = back;
                            tokio::task::yield_now().await;
                        }
                        Err(TrySendError::Closed(_)) => panic!("closed with the receiver alive"),
                    }
                }
            }
            tx2.send_many((300..310u64).collect::<Vec<_>>())
                .await
                .unwrap();
            tx2.flush().await;
            tx.flush().await;
            for i in 310..TOTAL {
                tx2.send(i).await.unwrap();
            }
        })
        .await
    });
    assert!(sent.is_ok(), "sending from the Tokio thread stalled");
    let (got, rx) = join_within(&rt, receiver, LIMIT, "the receiver on shard 1");
    assert_eq!(got, (0..TOTAL).collect::<Vec<_>>(), "FIFO broken");
    until_parked(&h, 1);
    let after = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    let mut problems = Vec::new();
    for s in 0..2 {
        let sent = after[s].messages_sent - before[s].messages_sent;
        let received = after[s].messages_received - before[s].messages_received;
        let want_received = if s == 1 { TOTAL } else { 0 };
        if sent != 0 || received != want_received {
            problems.push(format!(
                "shard {s}: counted {sent} sent / {received} received, expected 0 / \
                 {want_received} (every send came from a Tokio thread)"
            ));
        }
    }

    drop(rx);
    if tx.try_send(5) != Err(TrySendError::Closed(5)) {
        problems.push("try_send after the receiver was dropped did not give Closed(5)".into());
    }
    let closed = tokio.block_on(async {
        let send = tokio::time::timeout(Duration::from_secs(2), tx.send(9)).await;
        let many =
            tokio::time::timeout(Duration::from_secs(2), tx2.send_many(vec![1u64, 2, 3])).await;
        let flush = tokio::time::timeout(Duration::from_secs(2), tx2.flush()).await;
        (send, many, flush)
    });
    match closed {
        (Ok(Err(SendError(9))), Ok(Err(SendError(ref v))), Ok(())) if *v == vec![1, 2, 3] => {}
        (send, many, flush) => problems.push(format!(
            "after the receiver was dropped: send -> {send:?}, send_many -> {many:?}, flush -> \
             {flush:?}; expected SendError(9), SendError([1, 2, 3]) and a prompt flush"
        )),
    }
    if !tx.is_closed() || !tx2.is_closed() {
        problems.push("is_closed is false after the receiver was dropped".into());
    }
    let end = [h.shard_stats(0).unwrap(), h.shard_stats(1).unwrap()];
    for s in 0..2 {
        if end[s].messages_sent != after[s].messages_sent
            || end[s].messages_received != after[s].messages_received
        {
            problems.push(format!(
                "shard {s}: refused sends moved the message counters ({:?} -> {:?})",
                after[s], end[s]
            ));
        }
    }
    fail_on(problems);
}

/// One shard with a 1 s spin window runs an echo task; a Tokio thread
/// plays 2,000 round trips with it (after a warm-up, so the shard is
/// awake). Expected ("When a spin window is configured, a spinning
/// receiver takes messages with no syscall at all"; "a busy receiver picks
/// messages up on its next tick without any syscall"): during the
/// exchange the shard receives no doorbell, never parks, counts no
/// wake-up, counts the hand-offs as avoided, and counts exactly 2,000
/// received and 2,000 sent.
#[test]
fn a_spinning_receiver_takes_a_tokio_ping_pong_without_a_doorbell_or_a_park() {
    const ROUNDS: u64 = 2000;
    let rt = spinning(1, Duration::from_secs(1));
    let h = rt.handle();
    let (ping_tx, mut pong_rx, echo) = echo_on_shard_0(&h);
    let tokio = tokio_ct();
    let before = tokio.block_on(async {
        tokio::time::timeout(LIMIT, async {
            for i in 0..10u64 {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
            // Let the warm-up's ticks publish their counters.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let before = h.shard_stats(0).unwrap();
            for i in 0..ROUNDS {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
            before
        })
        .await
        .expect("the ping-pong stalled")
    });
    // Well inside the spin window: the shard is still spinning, and its
    // last tick has published.
    std::thread::sleep(Duration::from_millis(20));
    let after = h.shard_stats(0).unwrap();
    drop(ping_tx);
    join_within(&rt, echo, LIMIT, "the echo task");
    let mut problems = Vec::new();
    let d = rung(&before, &after);
    let parks = after.parks - before.parks;
    let wakeups = after.wakeups - before.wakeups;
    if d != 0 || parks != 0 || wakeups != 0 {
        problems.push(format!(
            "{ROUNDS} round trips with a spinning shard: {d} doorbells, {parks} parks, \
             {wakeups} wake-ups (expected none)"
        ));
    }
    let avoided = after.doorbells_avoided - before.doorbells_avoided;
    if avoided < ROUNDS / 2 {
        problems.push(format!(
            "{ROUNDS} sends to a receiver on a running shard, only {avoided} counted as avoided"
        ));
    }
    let received = after.messages_received - before.messages_received;
    let sent = after.messages_sent - before.messages_sent;
    if received != ROUNDS || sent != ROUNDS {
        problems.push(format!(
            "the echo shard counted {received} received / {sent} sent, expected {ROUNDS} / \
             {ROUNDS}"
        ));
    }
    fail_on(problems);
}

/// Two tasks on one spinning shard play 2,000 round trips over two
/// channels. Each send hands a message to the shard that is running the
/// sender (routing rule 4): expected, no doorbell of any kind, no park, no
/// wake-up, and no hand-off counted as avoided (nothing crossed to another
/// shard), with every message counted sent and received.
#[test]
fn sends_between_tasks_of_one_shard_ring_nothing_and_count_no_avoided_doorbell() {
    const ROUNDS: u64 = 2000;
    let rt = spinning(1, Duration::from_secs(1));
    let h = rt.handle();
    let (ping_tx, mut pong_rx, echo) = echo_on_shard_0(&h);
    let stats = h.clone();
    let ping = h
        .spawn_pinned(0, async move {
            for i in 0..10u64 {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
            // The warm-up's ticks publish their counters meanwhile.
            ringlane::time::sleep(Duration::from_millis(20)).await;
            let before = stats.shard_stats(0).unwrap();
            for i in 0..ROUNDS {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i + 1));
            }
            before
        })
        .unwrap();
    let before = join_within(&rt, ping, LIMIT, "the ping task");
    // Well inside the spin window: the shard is still spinning, and its
    // last tick has published.
    std::thread::sleep(Duration::from_millis(20));
    let after = h.shard_stats(0).unwrap();
    join_within(&rt, echo, LIMIT, "the echo task");
    let mut problems = Vec::new();
    let d = rung(&before, &after);
    let parks = after.parks - before.parks;
    let wakeups = after.wakeups - before.wakeups;
    let avoided = after.doorbells_avoided - before.doorbells_avoided;
    if d != 0 || parks != 0 || wakeups != 0 || avoided != 0 {
        problems.push(format!(
            "{ROUNDS} round trips within one shard: {d} doorbells, {parks} parks, \
             {wakeups} wake-ups, {avoided} counted as avoided (expected none)"
        ));
    }
    let sent = after.messages_sent - before.messages_sent;
    let received = after.messages_received - before.messages_received;
    if sent != 2 * ROUNDS || received != 2 * ROUNDS {
        problems.push(format!(
            "{} messages each way: {sent} counted sent, {received} received",
            ROUNDS
        ));
    }
    fail_on(problems);
}
