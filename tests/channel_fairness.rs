//! Room goes to waiting sends oldest first, as permits do with Tokio's
//! bounded `mpsc`: a `try_send` or a new `send` does not take room a
//! waiting send is owed, but takes room beyond it; a woken send that is
//! dropped passes its room on; a waiting send never polled again holds up
//! only the slot it is owed; a close still returns every waiting send's
//! message; and under many senders with cancellations nothing is lost,
//! duplicated, reordered per sender or stuck.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use ringlane::{SendError, TrySendError, channel};

use common::{LIMIT, join_within};

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

type Send<'a> = Pin<Box<dyn Future<Output = Result<(), SendError<u32>>> + 'a>>;

/// Polls `f` once with `waker`.
fn poll(f: &mut Send<'_>, waker: &Waker) -> Poll<Result<(), SendError<u32>>> {
    f.as_mut().poll(&mut Context::from_waker(waker))
}

/// Expected (Tokio): `capacity()` counts only room a new send could take.
/// Room owed to a waiting send is not free (Tokio hands freed permits
/// straight to its waiters), so code that checks `capacity() > 0` before a
/// `try_send` does not get `Full`.
///
/// Why it may fail: `capacity()` was the free slots, owed ones included.
#[test]
fn capacity_leaves_out_room_owed_to_waiting_sends() {
    let (tx, mut rx) = channel::<u32>(2).unwrap();
    tx.try_send(0).unwrap();
    tx.try_send(1).unwrap();
    let mut waiting: Send<'_> = Box::pin(tx.send(2));
    assert!(poll(&mut waiting, Waker::noop()).is_pending(), "full");
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(tx.capacity(), 0, "the one free slot is the waiting send's");
    assert_eq!(rx.capacity(), 0, "the receiver counts the same");
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(tx.capacity(), 1, "room beyond what is owed is free");
    assert_eq!(tx.try_send(4), Ok(()));
    assert!(poll(&mut waiting, Waker::noop()).is_ready());
}

/// A waker that panics when woken (a buggy foreign executor's).
struct Panics;

impl Wake for Panics {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics");
    }
}

/// Expected: one waiting send whose waker panics strands no other waiting
/// send; each is still woken when room for it frees up.
///
/// Why it may fail: the freed room's waiters were all marked woken before
/// their wakers ran, one after the other outside the lock; the panic left
/// the rest marked but never woken, and later pops skipped them.
#[test]
fn a_waiting_sends_panicking_waker_strands_no_other_waiting_send() {
    let (tx, mut rx) = channel::<u32>(2).unwrap();
    tx.try_send(0).unwrap();
    tx.try_send(1).unwrap();
    let (first, third) = (Arc::new(Count::default()), Arc::new(Count::default()));
    let mut a: Send<'_> = Box::pin(tx.send(10));
    let mut b: Send<'_> = Box::pin(tx.send(11));
    let mut c: Send<'_> = Box::pin(tx.send(12));
    assert!(poll(&mut a, &Waker::from(first.clone())).is_pending());
    assert!(poll(&mut b, &Waker::from(Arc::new(Panics))).is_pending());
    assert!(poll(&mut c, &Waker::from(third.clone())).is_pending());
    // Two slots free: the room covers the first two places.
    let popped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = rx.try_recv();
        let _ = rx.try_recv();
    }));
    assert!(
        popped.is_ok(),
        "a waiting send's waker unwound into try_recv"
    );
    assert_eq!(first.wakes(), 1, "the first waiting send was woken");
    assert!(poll(&mut a, Waker::noop()).is_ready());
    assert!(poll(&mut b, Waker::noop()).is_ready());
    // The first's push and the second's took both slots; a pop frees one
    // for the third.
    assert_eq!(rx.try_recv(), Ok(10));
    assert_eq!(third.wakes(), 1, "the third waiting send was never woken");
    assert!(poll(&mut c, Waker::noop()).is_ready());
}

/// Expected (Tokio): room the receiver frees belongs to the send that waited
/// for it; a `try_send` arriving in between gets `Full`.
///
/// Why it may fail: room woke every waiting sender and went to the first
/// push to run, so the `try_send` took it and the receiver got 2 before 1.
#[test]
fn a_try_send_does_not_take_room_a_waiting_send_was_woken_for() {
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let mut waiting: Send<'_> = Box::pin(tx.send(1));
    assert!(poll(&mut waiting, Waker::noop()).is_pending(), "full");
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(
        tx.try_send(2),
        Err(TrySendError::Full(2)),
        "the room is the waiting send's"
    );
    assert_eq!(poll(&mut waiting, Waker::noop()), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(tx.try_send(2), Ok(()), "nobody waits any more");
}

/// Expected (Tokio): room beyond what the waiting sends are owed is anyone's.
///
/// Why it may fail: a `try_send` failed `Full` while any send waited, with
/// four free slots and one waiter.
#[test]
fn a_try_send_takes_room_beyond_what_the_waiting_sends_are_owed() {
    let (tx, mut rx) = channel::<u32>(4).unwrap();
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    let mut waiting: Send<'_> = Box::pin(tx.send(4));
    assert!(poll(&mut waiting, Waker::noop()).is_pending(), "full");
    for i in 0..4 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(tx.try_send(5), Ok(()), "four free slots, one owed");
    assert_eq!(tx.try_send(6), Ok(()));
    assert_eq!(tx.try_send(7), Ok(()));
    assert_eq!(
        tx.try_send(8),
        Err(TrySendError::Full(8)),
        "the last is owed"
    );
    assert_eq!(poll(&mut waiting, Waker::noop()), Poll::Ready(Ok(())));
    let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(got, [5, 6, 7, 4]);
}

/// Expected (Tokio): a waiting send that is never polled again (held in a
/// `select!` loop's state, say) holds up only the slot it is owed; the sends
/// behind it go on through the rest of the room.
///
/// Why it may fail: only the oldest waiting send could push, so a stuck
/// one blocked every send while the ring stood empty.
#[test]
fn a_waiting_send_never_polled_again_holds_up_only_the_slot_it_is_owed() {
    let (tx, mut rx) = channel::<u32>(2).unwrap();
    tx.try_send(0).unwrap();
    tx.try_send(1).unwrap();
    let mut stuck: Send<'_> = Box::pin(tx.send(2));
    let mut behind: Send<'_> = Box::pin(tx.send(3));
    assert!(poll(&mut stuck, Waker::noop()).is_pending());
    assert!(poll(&mut behind, Waker::noop()).is_pending());
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(0), Ok(1)));
    assert_eq!(
        poll(&mut behind, Waker::noop()),
        Poll::Ready(Ok(())),
        "held up"
    );
    assert_eq!(
        tx.try_send(9),
        Err(TrySendError::Full(9)),
        "the slot is owed"
    );
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(poll(&mut stuck, Waker::noop()), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
}

/// Expected: sends that wait for room push in the order they began
/// waiting, whatever order they are polled in afterwards; a new `send`
/// queues behind them; each freed slot wakes the oldest only.
#[test]
fn waiting_sends_push_in_the_order_they_began_waiting() {
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let counts: Vec<Arc<Count>> = (0..3).map(|_| Arc::default()).collect();
    let wakers: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
    let mut sends: Vec<Send<'_>> = (1..=3).map(|i| Box::pin(tx.send(i)) as Send<'_>).collect();
    for (s, w) in sends.iter_mut().zip(&wakers) {
        assert!(poll(s, w).is_pending(), "full");
    }
    let mut got = vec![rx.try_recv().unwrap()];
    let mut late: Send<'_> = Box::pin(tx.send(4));
    for round in 0..3 {
        assert_eq!(
            counts[round].wakes(),
            1,
            "round {round}: the oldest is woken"
        );
        for later in &counts[round + 1..] {
            assert_eq!(later.wakes(), 0, "round {round}: a younger send was woken");
        }
        // A newcomer and the younger sends, polled first, wait their turn.
        assert!(poll(&mut late, Waker::noop()).is_pending(), "round {round}");
        for i in (round + 1..3).rev() {
            assert!(
                poll(&mut sends[i], &wakers[i]).is_pending(),
                "round {round}: send {i}"
            );
        }
        assert_eq!(poll(&mut sends[round], &wakers[round]), Poll::Ready(Ok(())));
        got.push(rx.try_recv().unwrap());
    }
    assert_eq!(poll(&mut late, Waker::noop()), Poll::Ready(Ok(())));
    got.push(rx.try_recv().unwrap());
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

/// Expected: a send woken for room and then dropped (a timeout, a
/// `select!`) passes its turn to the next waiting send, which would
/// otherwise wait for room that is already there.
#[test]
fn a_woken_send_that_is_dropped_passes_its_turn_on() {
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
    let (w1, w2) = (Waker::from(first.clone()), Waker::from(second.clone()));
    let mut a: Send<'_> = Box::pin(tx.send(1));
    let mut b: Send<'_> = Box::pin(tx.send(2));
    assert!(poll(&mut a, &w1).is_pending());
    assert!(poll(&mut b, &w2).is_pending());
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!((first.wakes(), second.wakes()), (1, 0));
    drop(a);
    assert_eq!(second.wakes(), 1, "the dropped send's turn went nowhere");
    assert_eq!(poll(&mut b, &w2), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
}

/// Expected: closing the receiver returns every waiting send's message,
/// the oldest's and the younger ones' alike.
#[test]
fn a_close_returns_every_waiting_sends_message() {
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let mut sends: Vec<Send<'_>> = (1..=3).map(|i| Box::pin(tx.send(i)) as Send<'_>).collect();
    for s in &mut sends {
        assert!(poll(s, Waker::noop()).is_pending());
    }
    rx.close();
    for (i, s) in sends.iter_mut().enumerate().rev() {
        assert_eq!(
            poll(s, Waker::noop()),
            Poll::Ready(Err(SendError(i as u32 + 1)))
        );
    }
    assert_eq!(rx.try_recv(), Ok(0));
}

/// Expected: a `send_many` that finds sends waiting queues behind them
/// (one turn per wait), and none of its items is lost or reordered.
#[test]
fn send_many_queues_behind_waiting_sends() {
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let mut waiting: Send<'_> = Box::pin(tx.send(1));
    assert!(poll(&mut waiting, Waker::noop()).is_pending());
    let mut batch = Box::pin(tx.send_many([10, 11]));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(batch.as_mut().poll(&mut cx).is_pending(), "full");
    let (mut waiting, mut batch) = (Some(waiting), Some(batch));
    let mut got = Vec::new();
    while got.len() < 4 {
        got.push(rx.try_recv().unwrap());
        // The batch first: it must still wait for the older send.
        if batch
            .as_mut()
            .is_some_and(|b| b.as_mut().poll(&mut cx).is_ready())
        {
            batch = None;
        }
        if waiting
            .as_mut()
            .is_some_and(|w| poll(w, Waker::noop()).is_ready())
        {
            waiting = None;
        }
    }
    assert_eq!(got, [0, 1, 10, 11]);
    assert!(waiting.is_none() && batch.is_none());
}

/// Expected: 12 tasks on two shards send 1,500 numbered messages each into
/// a channel of 4, a third of them through sends cut short by a timeout
/// (and retried), to a receiver that keeps pausing: every message arrives
/// once and in its sender's order, and nobody is left waiting (a turn lost
/// with a cancelled send would hang the run).
#[test]
fn many_senders_with_cancelled_sends_lose_nothing_and_get_stuck_nowhere() {
    const SENDERS: u32 = 12;
    const EACH: u32 = 1_500;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (tx, mut rx) = channel::<(u32, u32)>(4).unwrap();
    let receiver = h
        .spawn_pinned(1, async move {
            let mut next = vec![0u32; SENDERS as usize];
            let mut n = 0u64;
            while let Some((who, seq)) = rx.recv().await {
                assert_eq!(seq, next[who as usize], "sender {who} out of order");
                next[who as usize] += 1;
                n += 1;
                if n % 97 == 0 {
                    ringlane::time::sleep(Duration::from_micros(50)).await;
                }
            }
            next
        })
        .unwrap();
    let senders: Vec<_> = (0..SENDERS)
        .map(|who| {
            let tx = tx.clone();
            let send = async move {
                let mut timeouts = 0u32;
                for seq in 0..EACH {
                    loop {
                        if (seq + who) % 3 != 0 {
                            tx.send((who, seq)).await.unwrap();
                            break;
                        }
                        let limit = Duration::from_micros(20 + u64::from(seq % 7) * 30);
                        match ringlane::time::timeout(limit, tx.send((who, seq))).await {
                            Ok(r) => break r.unwrap(),
                            Err(_) => timeouts += 1,
                        }
                    }
                }
                timeouts
            };
            match who % 3 {
                0 => h.spawn_pinned(0, send),
                1 => h.spawn_pinned(1, send),
                _ => h.spawn_stealable(send),
            }
            .unwrap()
        })
        .collect();
    drop(tx);
    let mut timeouts = 0;
    for s in senders {
        timeouts += join_within(&rt, s, LIMIT * 3, "a sender");
    }
    let next = join_within(&rt, receiver, LIMIT, "the receiver");
    assert_eq!(next, vec![EACH; SENDERS as usize], "messages lost");
    println!("{timeouts} sends were cut short by their timeout and retried");
}

/// Expected: a receiver whose waker panics when woken (a buggy foreign
/// executor's) fails neither the `try_send` that woke it nor the last
/// sender's drop: the message is in the channel, so the send succeeded.
///
/// Why it may fail: the sender called the receiver's waker bare, so its
/// panic unwound out of `try_send` after the message was pushed (a caller
/// retrying the "failed" send delivered it twice), and out of a sender's
/// drop (a panic during an unwind aborts the process).
#[test]
fn a_receivers_panicking_waker_fails_no_send_and_no_sender_drop() {
    let (tx, mut rx) = channel::<u32>(4).unwrap();
    let panics = Waker::from(Arc::new(Panics));
    let mut cx = std::task::Context::from_waker(&panics);
    assert!(rx.poll_recv(&mut cx).is_pending());
    let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.try_send(1)));
    assert!(
        matches!(sent, Ok(Ok(()))),
        "the receiver's waker unwound into try_send"
    );
    assert_eq!(rx.try_recv(), Ok(1), "sent once");
    assert!(rx.poll_recv(&mut cx).is_pending());
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(tx)));
    assert!(
        dropped.is_ok(),
        "the receiver's waker unwound into the last sender's drop"
    );
    assert_eq!(rx.try_recv(), Err(ringlane::TryRecvError::Disconnected));
}
