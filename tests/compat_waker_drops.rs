//! A compat wait's old waker dropped where its drop can reach back into
//! the stream: a waker whose drop drops another wait on the same stream
//! and direction. Wakers are foreign code; the readiness engine must not
//! hold its locks while one is dropped.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use common::droppers::{arm, drops_on_drop};
use std::time::Duration;

use ringlane::compat::UnixStream;

/// How a wait lets go of the waker it registered.
#[derive(Clone, Copy, Debug)]
enum LetGo {
    /// Polled again with another waker: its entry's waker is replaced.
    Replaced,
    /// Dropped: its entry leaves the list.
    Dropped,
}

/// Expected: a `readable()` wait whose registered waker, when let go,
/// drops a second `readable()` wait on the same stream: both leave the
/// list, and the shard goes on.
///
/// Why it may fail: the waiter list dropped replaced and removed wakers
/// under the direction's lock, and the second wait's drop took the same
/// lock to leave the list: the shard deadlocked.
#[test]
fn a_waiters_waker_that_drops_another_wait_does_not_deadlock() {
    for how in [LetGo::Replaced, LetGo::Dropped] {
        let rt = common::runtime(1);
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        let (done_tx, done) = std::sync::mpsc::channel();
        let task = rt
            .handle()
            .spawn_pinned(0, async move {
                // A stream starts ready; an empty read clears that.
                let empty = a.try_read(&mut [0u8; 1]).unwrap_err().kind();
                assert_eq!(empty, std::io::ErrorKind::WouldBlock);
                let a2 = a.clone();
                let mut victim: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
                    let _ = a2.readable().await;
                });
                let mut held = Box::pin(a.readable());
                let (victim_waits, held_waits, shared) = std::future::poll_fn(|cx| {
                    let victim_waits = victim.as_mut().poll(cx).is_pending();
                    let shared = drops_on_drop(Some(cx.waker().clone()));
                    let w = Waker::from(shared.clone());
                    let held_waits = held
                        .as_mut()
                        .poll(&mut Context::from_waker(&w))
                        .is_pending();
                    Poll::Ready((victim_waits, held_waits, shared))
                })
                .await;
                assert!(victim_waits && held_waits, "the stream was readable");
                // The list holds the last clone of the waker now.
                arm(&shared, victim);
                drop(shared);
                match how {
                    LetGo::Replaced => {
                        let still = std::future::poll_fn(|cx| {
                            Poll::Ready(held.as_mut().poll(cx).is_pending())
                        })
                        .await;
                        assert!(still, "the stream became readable");
                        drop(held);
                    }
                    LetGo::Dropped => drop(held),
                }
                done_tx.send(()).unwrap();
            })
            .unwrap();
        if done.recv_timeout(Duration::from_secs(20)).is_err() {
            // Its shard is stuck: do not wait for it.
            std::mem::forget((rt, task));
            panic!("{how:?}: the shard deadlocked letting a waiter's waker go");
        }
        rt.block_on(task).unwrap();
    }
}
