//! The cooperative budget (`executor/coop.rs`): a task whose channel,
//! timer or socket is always ready still gives its shard back, as Tokio's
//! do.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ringlane::TrySendError;
use ringlane::time::{sleep, timeout};

use common::{LIMIT, wait_until};

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

/// A task that awaits zero-length sleeps in a loop must not take its shard
/// from every other task. Tokio's timer futures consume the task's
/// cooperative budget, so `loop { sleep(Duration::ZERO).await }` yields to
/// the scheduler every 128 polls and a task spawned beside it runs; ringlane
/// documents that a shard keeps polling fair (`task_budget`) and that a
/// self-waking task starves nothing.
///
/// Suspected gap: `Sleep::poll` (src/time/sleep.rs, the `None if
/// Instant::now() >= this.deadline` branch) returns `Ready` on the first
/// poll of a due sleep without ever returning `Pending`, and nothing else
/// yields: the loop is one endless poll, and the shard's mailbox, timers
/// and other tasks starve until it ends (here it gives up after 3 s).
#[test]
fn a_task_looping_on_zero_length_sleeps_lets_its_shard_run_other_tasks() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let other_ran = Arc::new(AtomicBool::new(false));
    let seen = other_ran.clone();
    let (looping_tx, looping) = mpsc::channel();
    let looper = h
        .spawn_pinned(0, async move {
            let start = Instant::now();
            let mut rounds = 0u64;
            looping_tx.send(()).unwrap();
            // Bounded: a starved shard ends the loop after 3 s, not never.
            while !seen.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(3) {
                sleep(Duration::ZERO).await;
                rounds += 1;
            }
            (seen.load(Ordering::Acquire), rounds)
        })
        .unwrap();
    looping
        .recv_timeout(LIMIT)
        .expect("the looping task never ran");
    let flag = other_ran.clone();
    let other = h
        .spawn_pinned(0, async move { flag.store(true, Ordering::Release) })
        .unwrap();
    let (saw_other, rounds) = common::join_within(&rt, looper, LIMIT, "the looping task");
    assert!(
        saw_other,
        "{rounds} zero-length sleeps ran back to back for 3 s and the task spawned \
         beside them never ran: a due sleep never yields"
    );
    common::join_within(&rt, other, LIMIT, "the task spawned beside the loop");
}

/// A compat reader whose socket always has bytes (a plain thread keeps the
/// peer writing faster than the reader reads) must still let its shard
/// answer a `call_on`: each ready read spends a unit of the budget, as a
/// Tokio socket's does.
#[test]
fn a_compat_reader_that_always_finds_bytes_does_not_starve_its_shard() {
    use std::io::Write;
    use tokio::io::AsyncReadExt;

    let rt = common::runtime(1);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let reader = {
        let (stop, read) = (stop.clone(), read.clone());
        h.spawn_pinned(0, async move {
            let mut s = ringlane::compat::UnixStream::from_std(mine).unwrap();
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "the writer never closes");
                read.fetch_add(n as u64, Ordering::Relaxed);
                // Slower than the writer: the socket never runs dry.
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(5) {
                    std::hint::spin_loop();
                }
            }
        })
        .unwrap()
    };
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let chunk = [7u8; 4096];
            // Ends when the reader's socket closes after `stop`.
            while peer.write_all(&chunk).is_ok() {}
            assert!(stop.load(Ordering::Relaxed), "the write failed early");
        })
    };
    wait_until("the reader got going", || {
        read.load(Ordering::Relaxed) >= 64 << 10
    });
    let call = h.call_on(0, |ctx| ctx.index()).unwrap();
    let answered = rt.block_on(timeout(Duration::from_secs(3), call));
    stop.store(true, Ordering::Relaxed);
    common::join_within(&rt, reader, LIMIT, "the reader");
    writer.join().unwrap();
    let answered = answered.expect(
        "call_on to a shard whose reader always finds bytes was not answered in 3 s: \
         ready reads never yield",
    );
    assert_eq!(answered.unwrap(), 0);
}

/// `Runtime::block_on` called from a Tokio task (as under `#[tokio::main]`)
/// must not spend that task's budget: nothing refills it while the call
/// blocks, so the 129th ready join handle would wait for ever.
#[test]
fn block_on_called_in_a_tokio_task_does_not_spend_its_budget() {
    let rt = common::runtime(1);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let tokio_rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let joined = tokio_rt.block_on(async {
            let mut joined = 0;
            for i in 0..300u32 {
                let j = rt.handle().spawn_pinned(0, async move { i }).unwrap();
                joined += u32::from(rt.block_on(j).unwrap() == i);
            }
            joined
        });
        let _ = done_tx.send(joined);
    });
    let joined = done_rx
        .recv_timeout(LIMIT)
        .expect("block_on inside a Tokio task stopped after Tokio's budget ran out");
    assert_eq!(joined, 300);
}

/// A `timeout` whose future spends the whole budget at every poll (a
/// receive loop fed by a producer on the same shard) must still elapse:
/// its delay is then polled with the budget lifted, as Tokio's is.
#[test]
fn a_timeout_fires_around_a_future_that_spends_the_budget() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(1024).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        h.spawn_pinned(0, async move {
            while !stop.load(Ordering::Relaxed) {
                for i in 0..200 {
                    let _ = tx.try_send(i);
                }
                ringlane::yield_now().await;
            }
        })
        .unwrap()
    };
    let consumer = h
        .spawn_pinned(0, async move {
            let drain = async { while rx.recv().await.is_some() {} };
            timeout(Duration::from_millis(50), drain).await.is_err()
        })
        .unwrap();
    let elapsed = rt.block_on(timeout(LIMIT, consumer));
    stop.store(true, Ordering::Relaxed);
    common::join_within(&rt, producer, LIMIT, "the producer");
    let elapsed = elapsed
        .expect("the timeout never fired: its delay yielded with the spent budget")
        .unwrap();
    assert!(elapsed, "the receive loop ended before its timeout");
}

/// A batch send that finds the channel full and stays pending gives back
/// the budget unit it took (coop invariant 3): polled again and again in a
/// Tokio task, it must not use up that task's budget.
#[test]
fn a_pending_send_many_spends_no_budget() {
    use std::future::Future;
    use std::task::{Context, Waker};

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let left = tokio_rt.block_on(async {
        tokio::spawn(async {
            let (tx, _rx) = ringlane::channel::<u32>(1).unwrap();
            tx.try_send(0).unwrap();
            let mut send = std::pin::pin!(tx.send_many(vec![1, 2]));
            let mut cx = Context::from_waker(Waker::noop());
            for _ in 0..300 {
                assert!(send.as_mut().poll(&mut cx).is_pending());
            }
            tokio::task::coop::has_budget_remaining()
        })
        .await
        .unwrap()
    });
    assert!(
        left,
        "polls that sent nothing spent the Tokio task's budget"
    );
}

/// A `recv` on an empty channel and a `send` on a full one, polled again
/// and again in a Tokio task and pending each time, spend none of that
/// task's budget, as Tokio's own resources give their unit back on
/// `Pending`; a `recv` that finds messages still spends one per message.
///
/// Why it may fail: outside ringlane tasks the guard-free form spent
/// Tokio's unit at the attempt, so a Tokio task polling more than 128 idle
/// receivers in one poll (a `StreamMap`, a `select_all`) ran out of budget
/// in every poll and was woken at once, forever, while the channels idled.
#[test]
fn a_pending_recv_or_send_spends_no_tokio_budget() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (recv_left, send_left, ready_before_yield) = tokio_rt.block_on(async {
        tokio::spawn(async {
            let mut cx = Context::from_waker(Waker::noop());
            let (tx, mut rx) = ringlane::channel::<u32>(1).unwrap();
            for _ in 0..300 {
                assert!(rx.poll_recv(&mut cx).is_pending());
            }
            let recv_left = tokio::task::coop::has_budget_remaining();
            tx.try_send(0).unwrap();
            {
                let mut send = std::pin::pin!(tx.send(1));
                for _ in 0..300 {
                    assert!(send.as_mut().poll(&mut cx).is_pending());
                }
            }
            let send_left = tokio::task::coop::has_budget_remaining();
            drop(rx);
            // Progress still spends: a receiver that always finds a
            // message yields once the budget is out.
            let (tx, mut rx) = ringlane::channel::<u32>(1000).unwrap();
            for i in 0..1000 {
                tx.try_send(i).unwrap();
            }
            let mut ready = 0;
            while let Poll::Ready(Some(_)) = rx.poll_recv(&mut cx) {
                ready += 1;
            }
            (recv_left, send_left, ready)
        })
        .await
        .unwrap()
    });
    assert!(recv_left, "pending recvs spent the Tokio task's budget");
    assert!(send_left, "pending sends spent the Tokio task's budget");
    assert_eq!(
        ready_before_yield, 128,
        "a receiver always finding messages yields after Tokio's budget"
    );
}

/// A task that spends its whole budget in every poll (a loop of zero-length
/// sleeps) is polled once per tick: a `call_on` posted to its shard runs
/// within about two of its polls (two budgets of sleeps), not after the
/// shard's whole task budget of re-polls (128 polls of 128 sleeps each).
///
/// Why: the spent task woke itself into its run queue, and the tick's task
/// loop polled it again at once, up to `Builder::task_budget` times, before
/// the mailbox was looked at (coop invariant 6; Tokio defers such a task
/// until after its driver).
#[test]
fn a_task_that_spent_its_budget_is_polled_again_only_after_the_mailbox() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let (count, stop) = (count.clone(), stop.clone());
        h.spawn_pinned(0, async move {
            while !stop.load(Ordering::Relaxed) {
                sleep(Duration::ZERO).await;
                count.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap()
    };
    wait_until("the spinner got going", || {
        count.load(Ordering::Relaxed) > 10_000
    });
    let mut worst = 0;
    for _ in 0..20 {
        let posted = count.load(Ordering::Relaxed);
        let seen = {
            let count = count.clone();
            h.call_on(0, move |_| count.load(Ordering::Relaxed))
                .unwrap()
        };
        let seen = common::join_within(&rt, seen, LIMIT, "call_on to the spinner's shard");
        worst = worst.max(seen.saturating_sub(posted));
    }
    stop.store(true, Ordering::Relaxed);
    common::join_within(&rt, spinner, LIMIT, "the spinner");
    assert!(
        worst <= 3 * 128,
        "a call_on ran after {worst} more sleeps of a task that spends its budget every poll \
         (about 2 x 128 expected: one tick, one poll of it)"
    );
}
