//! Wakers let go of where their drop can reach back into the object that
//! held them: a channel's waiting sends and receiver, a fixed-buffer
//! pool's waiting `get`s. A waker is foreign code; each list here must
//! drop the wakers it replaces or removes after its lock, or a waker whose
//! drop drops another wait (or the last sender) deadlocks the thread.
//!
//! Each scenario runs on its own thread; a deadlock fails the test after
//! 20 s instead of hanging the run (the stuck thread is left behind).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::droppers::{arm, drops_on_drop};
use ringlane::channel;

fn poll<F: Future + ?Sized>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// Runs `scenario` on a thread; fails if it has not finished in 20 s.
fn without_deadlock(what: &str, scenario: impl FnOnce() + Send + 'static) {
    let (done_tx, done) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        scenario();
        done_tx.send(()).unwrap();
    });
    if done.recv_timeout(Duration::from_secs(20)).is_err() {
        panic!("{what}: deadlocked letting a waker go");
    }
    thread.join().unwrap();
}

type BoxedSend = Pin<Box<dyn Future<Output = Result<(), ringlane::SendError<u32>>> + Send>>;

/// Expected: a waiting send whose registered waker, when let go (replaced
/// by a re-poll, or removed by the send's drop), drops another waiting send
/// of the same channel: both leave the queue.
///
/// Why it may fail: the send queue dropped replaced and removed wakers
/// under its lock, and the other send's drop took the lock to leave.
#[test]
fn a_waiting_sends_waker_that_drops_another_waiting_send_does_not_deadlock() {
    for replaced in [true, false] {
        without_deadlock(if replaced { "replaced" } else { "removed" }, move || {
            let (tx, _rx) = channel::<u32>(1).unwrap();
            tx.try_send(0).unwrap(); // full
            let tx2 = tx.clone();
            let mut victim: BoxedSend = Box::pin(async move { tx2.send(2).await });
            assert!(poll(victim.as_mut(), Waker::noop()).is_pending());
            let mut held: BoxedSend = {
                let tx = tx.clone();
                Box::pin(async move { tx.send(1).await })
            };
            let shared = drops_on_drop(None);
            assert!(poll(held.as_mut(), &Waker::from(shared.clone())).is_pending());
            arm(&shared, victim);
            drop(shared); // the queue holds the last clone
            if replaced {
                assert!(poll(held.as_mut(), Waker::noop()).is_pending());
            }
            drop(held);
        });
    }
}

/// Expected: a receiver whose registered waker owns the channel's last
/// sender, re-polled with another waker: the old waker's drop drops the
/// sender, which notifies the receiver; the receiver then sees the end.
///
/// Why it may fail: the receiver's waker slot was replaced under its
/// lock, and the last sender's notify took the same lock.
#[test]
fn a_receivers_waker_that_owns_the_last_sender_does_not_deadlock_when_replaced() {
    without_deadlock("receiver", || {
        let (tx, mut rx) = channel::<u32>(1).unwrap();
        let shared = drops_on_drop(None);
        arm(&shared, tx);
        let waker = Waker::from(shared);
        {
            let mut recv = Box::pin(rx.recv());
            assert!(poll(recv.as_mut(), &waker).is_pending());
            drop(waker); // the receiver's slot holds the last clone
            // Replacing it drops the last sender: the channel is closed,
            // seen by this poll or the next.
            let first = poll(recv.as_mut(), Waker::noop());
            let end = match first {
                Poll::Pending => poll(recv.as_mut(), Waker::noop()),
                ready => ready,
            };
            assert_eq!(end, Poll::Ready(None), "the last sender is gone");
        }
    });
}

/// Expected: a pool `get` waiting for a buffer whose registered waker,
/// when let go, drops another waiting `get` of the same pool: both leave.
///
/// Why it may fail: the pool's waiter list dropped replaced and removed
/// wakers under the pool's lock, and the other `get`'s drop took it.
#[test]
fn a_pool_waiters_waker_that_drops_another_waiting_get_does_not_deadlock() {
    for replaced in [true, false] {
        let rt = common::runtime(1);
        let (done_tx, done) = std::sync::mpsc::channel();
        let task = rt
            .handle()
            .spawn_pinned(0, async move {
                let pool = ringlane::native::fixed::FixedBufPool::new(1, 64).unwrap();
                let _taken = pool.try_get().unwrap(); // none left
                let pool2 = pool.clone();
                let mut victim: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
                    let _ = pool2.get().await;
                });
                let mut held = Box::pin(pool.get());
                let shared = std::future::poll_fn(|cx| {
                    assert!(victim.as_mut().poll(cx).is_pending());
                    let shared = drops_on_drop(None);
                    assert!(poll(held.as_mut(), &Waker::from(shared.clone())).is_pending());
                    Poll::Ready(shared)
                })
                .await;
                arm(&shared, victim);
                drop(shared);
                if replaced {
                    let still =
                        std::future::poll_fn(|cx| Poll::Ready(held.as_mut().poll(cx).is_pending()))
                            .await;
                    assert!(still, "a buffer appeared");
                }
                drop(held);
                done_tx.send(()).unwrap();
            })
            .unwrap();
        if done.recv_timeout(Duration::from_secs(20)).is_err() {
            // Its shard is stuck: do not wait for it.
            std::mem::forget((rt, task));
            panic!("replaced {replaced}: the shard deadlocked letting a pool waiter's waker go");
        }
        rt.block_on(task).unwrap();
    }
}
