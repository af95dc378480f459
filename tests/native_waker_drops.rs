//! An op's old wakers dropped at awkward moments: a waker whose drop
//! panics, and one whose drop drops another op. Wakers are foreign code;
//! their drops may run wherever the runtime lets a clone go, so the op's
//! own state must be settled first and no lock of the runtime's held.

mod common;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::droppers::{arm, drops_on_drop};
use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::UnixStream;

/// fd counts and small rings: one test at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Wakes the task it wraps; its last clone's drop panics once armed.
struct PanicsWhenArmed {
    inner: Waker,
    armed: Arc<AtomicBool>,
}

impl Wake for PanicsWhenArmed {
    fn wake(self: Arc<Self>) {
        self.inner.wake_by_ref();
    }
}

impl Drop for PanicsWhenArmed {
    fn drop(&mut self) {
        if self.armed.load(Ordering::SeqCst) {
            panic!("an armed waker was dropped");
        }
    }
}

/// Polls `fut` once with `waker` instead of the task's own.
fn poll_with<F: Future + ?Sized>(fut: Pin<&mut F>, waker: &Waker) -> bool {
    fut.poll(&mut Context::from_waker(waker)).is_pending()
}

/// Expected: an op that waited for room under a deadline, then was pushed
/// by a poll that unwound (the deadline timer's old waker panicked when
/// dropped), is still a pushed op: dropping it cancels its read, so the
/// next bytes go to the next read.
///
/// Why it may fail: the push dropped the room wait (and its timer's
/// waker) before it marked the op pushed; the unwind left a pushed op
/// marked unsubmitted, whose drop neither cancelled it nor marked it
/// abandoned. Its read stayed in flight and swallowed the next bytes.
#[test]
fn a_push_whose_old_wakers_drop_panics_leaves_an_op_that_its_drop_cancels() {
    let _serial = SERIAL.lock();
    let rt = common::runtime_with_room_for_two_ops();
    let (a, _pa) = UnixStream::pair().unwrap();
    let (b, _pb) = UnixStream::pair().unwrap();
    let (c, pc) = std::os::unix::net::UnixStream::pair().unwrap();
    let c = UnixStream::from_std(c);
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let first =
                        ringlane::spawn_local(async move { a.read(vec![0u8; 8]).await.0 }).unwrap();
                    let second =
                        ringlane::spawn_local(async move { b.read(vec![0u8; 8]).await.0 }).unwrap();
                    ringlane::yield_now().await; // both in flight: no room
                    let armed = Arc::new(AtomicBool::new(false));
                    let mut held = Box::pin(c.read(vec![0u8; 8]).timeout(Duration::from_secs(30)));
                    let waiting = std::future::poll_fn(|cx| {
                        let w = Waker::from(Arc::new(PanicsWhenArmed {
                            inner: cx.waker().clone(),
                            armed: armed.clone(),
                        }));
                        Poll::Ready(poll_with(held.as_mut(), &w))
                    })
                    .await;
                    assert!(waiting, "the third read found room");
                    // Their cancels' CQEs make room for the read and its
                    // linked timeout.
                    first.abort();
                    second.abort();
                    ringlane::time::sleep(Duration::from_millis(20)).await;
                    // The room wait's clone was woken and let go; the
                    // deadline timer's are the last.
                    armed.store(true, Ordering::SeqCst);
                    let repoll = std::future::poll_fn(|cx| {
                        Poll::Ready(catch_unwind(AssertUnwindSafe(|| {
                            held.as_mut().poll(cx).is_pending()
                        })))
                    })
                    .await;
                    armed.store(false, Ordering::SeqCst);
                    assert!(
                        repoll.is_err(),
                        "the push did not drop the timer's waker (the test's premise)"
                    );
                    drop(held); // must cancel the read it pushed
                    ringlane::time::sleep(Duration::from_millis(20)).await;
                    use std::io::Write;
                    (&pc).write_all(b"x").unwrap();
                    let (r, buf) = c.read(vec![0u8; 8]).timeout(Duration::from_secs(2)).await;
                    r.map(|n| buf[..n].to_vec())
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        got.map_err(|e| e.kind()),
        Ok(b"x".to_vec()),
        "a read the dropped op left in flight took the byte"
    );
}

/// How an op lets go of the waker it registered for room.
#[derive(Clone, Copy, Debug)]
enum LetGo {
    /// Polled again with another waker: the entry's waker is replaced.
    Replaced,
    /// Dropped: its entry leaves the list.
    Dropped,
}

/// Expected: an op waiting for room whose registered waker, when let go,
/// drops a second op waiting for room on the same shard: both leave the
/// list, and the shard goes on.
///
/// Why it may fail: the room list dropped replaced and removed wakers
/// under its lock, and the second op's drop took the same lock to leave
/// the list: the shard deadlocked (the lock is not re-entrant).
#[test]
fn a_room_waiters_waker_that_drops_another_waiting_op_does_not_deadlock_the_shard() {
    let _serial = SERIAL.lock();
    for how in [LetGo::Replaced, LetGo::Dropped] {
        let rt = common::runtime_with_room_for_two_ops();
        let (a, _pa) = UnixStream::pair().unwrap();
        let (b, _pb) = UnixStream::pair().unwrap();
        let (c, _pc) = UnixStream::pair().unwrap();
        let (d, _pd) = UnixStream::pair().unwrap();
        let (done_tx, done) = std::sync::mpsc::channel();
        let task = rt
            .handle()
            .spawn_pinned(0, async move {
                let first =
                    ringlane::spawn_local(async move { a.read(vec![0u8; 8]).await.0 }).unwrap();
                let second =
                    ringlane::spawn_local(async move { b.read(vec![0u8; 8]).await.0 }).unwrap();
                ringlane::yield_now().await; // both in flight: no room
                let mut victim: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
                    let _ = d.read(vec![0u8; 8]).await;
                });
                let mut held = Box::pin(c.read(vec![0u8; 8]));
                let (victim_waits, held_waits, shared) = std::future::poll_fn(|cx| {
                    let victim_waits = victim.as_mut().poll(cx).is_pending();
                    let shared = drops_on_drop(Some(cx.waker().clone()));
                    let held_waits = poll_with(held.as_mut(), &Waker::from(shared.clone()));
                    Poll::Ready((victim_waits, held_waits, shared))
                })
                .await;
                assert!(victim_waits && held_waits, "an op found room");
                // Hand the victim to the waker the room list holds, then
                // let our own clone go: the list's is the last.
                arm(&shared, victim);
                drop(shared);
                match how {
                    LetGo::Replaced => {
                        let still = std::future::poll_fn(|cx| {
                            Poll::Ready(held.as_mut().poll(cx).is_pending())
                        })
                        .await;
                        assert!(still, "no room appeared");
                        drop(held);
                    }
                    LetGo::Dropped => drop(held),
                }
                first.abort();
                second.abort();
                done_tx.send(()).unwrap();
            })
            .unwrap();
        if done.recv_timeout(Duration::from_secs(20)).is_err() {
            // Its shard is stuck: do not wait for it.
            std::mem::forget((rt, task));
            panic!("{how:?}: the shard deadlocked letting a room waiter's waker go");
        }
        rt.block_on(task).unwrap();
    }
}
