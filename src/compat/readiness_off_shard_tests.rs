//! Tests of the readiness engine (`readiness.rs`) for waits made off the
//! shards (a Tokio task's, a plain thread's), each named after the race or
//! order it pins down.

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::Direction;
use super::tests::{async_pair_on, wait_once_on};
use crate::compat::AsyncFd;

/// A stream first waited on on a shard, then polled from a Tokio task
/// (off the runtime), while the kernel ends its multishot poll (a final
/// CQE without `F_MORE`, as on CQ overflow). The off-shard poller used
/// to re-arm the poll where it stood and fail with "native ring ops run
/// on a ringlane shard"; it now forwards the wait to the home shard.
#[test]
fn a_poll_the_kernel_ended_is_re_armed_through_the_home_shard_off_the_runtime() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let fd = AsyncFd::new(a).unwrap();
                    let tick = fd.readiness().tick(Direction::Read);
                    fd.readiness().clear(Direction::Read, tick);
                    let mut cx = Context::from_waker(Waker::noop());
                    assert!(
                        fd.readiness()
                            .poll_ready(Direction::Read, &mut cx)
                            .is_pending()
                    );
                    fd
                })
                .unwrap(),
        )
        .unwrap();
    // The kernel ends the armed poll with a last readiness report.
    {
        let side = fd.readiness().read.lock();
        let armed = &side.armed.first().expect("armed on the shard").op;
        armed.complete_for_test(libc::POLLIN as i32, 0);
    }
    let mut cx = Context::from_waker(Waker::noop());
    let r = fd.readiness();
    let Poll::Ready(Ok(tick)) = r.poll_ready(Direction::Read, &mut cx) else {
        panic!("the kernel's last report left the direction ready");
    };
    r.clear(Direction::Read, tick); // the read said EAGAIN
    match r.poll_ready(Direction::Read, &mut cx) {
        Poll::Pending => {}
        Poll::Ready(out) => panic!("expected a forwarded wait, got {out:?}"),
    }
    use std::io::Write;
    (&b).write_all(b"x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match r.poll_ready(Direction::Read, &mut cx) {
            Poll::Ready(Ok(_)) => break,
            Poll::Ready(Err(e)) => panic!("the forwarded wait failed: {e}"),
            Poll::Pending if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Poll::Pending => panic!("the forwarded wait never saw the byte"),
        }
    }
    drop(fd);
    drop(b);
}

/// A wait forwarded from outside the runtime whose helper task is still
/// in its shard's mailbox when the runtime drops: the cancelling
/// shutdown drops the helper unpolled. Its guard used to be made in
/// the helper's first poll, so nothing reported and the poller stayed
/// pending forever.
#[test]
fn a_forwarded_wait_whose_helper_never_ran_fails_at_shutdown() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Flag(AtomicBool);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let fd = AsyncFd::new(a).unwrap();
                    let tick = fd.readiness().tick(Direction::Read);
                    fd.readiness().clear(Direction::Read, tick);
                    fd
                })
                .unwrap(),
        )
        .unwrap();
    // Shard 0 busy, so the helper stays queued in its mailbox.
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let _blocker = rt
        .handle()
        .spawn_pinned(0, async move {
            s.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
        })
        .unwrap();
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let woken = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(woken.clone());
    let mut cx = Context::from_waker(&waker);
    let r = fd.readiness();
    assert!(r.poll_ready(Direction::Read, &mut cx).is_pending());
    drop(rt);
    assert!(woken.0.load(Ordering::SeqCst), "the poller was never woken");
    match r.poll_ready(Direction::Read, &mut cx) {
        Poll::Ready(Err(_)) => {}
        Poll::Ready(Ok(_)) => panic!("nothing was written: not ready"),
        Poll::Pending => panic!("the forwarded wait stayed pending after its runtime dropped"),
    }
    drop(fd);
    drop(b);
}

/// A shard task's wait finds the SQ full, so its poll op waits for room;
/// in the same tick a thread off the runtime polls the same direction
/// and the data arrives. The off-shard poll used to fail and drop that
/// op, with its room wait: the shard task was never woken.
#[test]
fn an_off_shard_poll_leaves_a_poll_waiting_for_room_to_its_shard() {
    use std::future::Future;
    use std::io::Write;
    use std::pin::Pin;
    use std::sync::Arc;
    let rt = crate::Runtime::builder()
        .shards(1)
        .ring_entries(64)
        .build()
        .unwrap();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let parent = rt.handle().spawn_pinned(0, async move {
        let fd = Arc::new(AsyncFd::new(a).unwrap());
        let tick = fd.readiness().tick(Direction::Read);
        fd.readiness().clear(Direction::Read, tick);
        // Both run in one tick, in this order, before the SQ is sent.
        let waiter = fd.clone();
        let waiting = crate::spawn_local(async move {
            // Fill the SQ with NOPs nobody waits for.
            let mut quiet = Context::from_waker(Waker::noop());
            let mut nops = Vec::new();
            loop {
                let mut nop =
                    crate::op::submit((), false, |_| io_uring::opcode::Nop::new().build());
                let _ = Pin::new(&mut nop).poll(&mut quiet);
                let pushed = nop.is_pushed();
                nops.push(nop);
                if !pushed {
                    break;
                }
            }
            let r = waiter.readiness();
            let mut first = true;
            std::future::poll_fn(|cx| {
                let p = r.poll_ready(Direction::Read, cx);
                if std::mem::take(&mut first) {
                    assert!(p.is_pending(), "nothing written yet");
                    let side = r.read.lock();
                    let armed = &side.armed.first().expect("a poll op").op;
                    assert!(!armed.is_pushed(), "the SQ was meant to be full");
                }
                p
            })
            .await
            .unwrap();
            drop(nops);
            let mut byte = [0u8; 1];
            std::io::Read::read(&mut waiter.get_ref(), &mut byte).unwrap()
        })
        .unwrap();
        let outside = fd.clone();
        let poke = crate::spawn_local(async move {
            std::thread::spawn(move || {
                let mut cx = Context::from_waker(Waker::noop());
                let polled = outside.readiness().poll_ready(Direction::Read, &mut cx);
                (&b).write_all(b"z").unwrap();
                assert!(polled.is_pending(), "off-shard poll: {polled:?}");
                b
            })
            .join()
            .unwrap()
        })
        .unwrap();
        let b = poke.await.unwrap();
        let read = crate::time::timeout(Duration::from_secs(5), waiting).await;
        drop(b);
        read
    });
    let read = rt.block_on(parent.unwrap()).unwrap();
    assert_eq!(
        read.expect("the shard task's wait was never woken")
            .unwrap(),
        1
    );
}

/// Shards of runtimes X and Y wait on one socket; X shuts down, which
/// cancels X's poll. A thread off the runtimes then waits: it took the
/// first poll in a ring, X's cancelled one, failed with `ECANCELED`, and
/// dropped Y's live poll with it. It now drops only X's poll and waits on
/// Y's.
#[test]
fn an_off_shard_wait_passes_over_a_poll_its_runtimes_shutdown_cancelled() {
    use std::io::Write;
    let x = crate::Runtime::builder().shards(1).build().unwrap();
    let y = crate::Runtime::builder().shards(1).build().unwrap();
    let (fd, b) = async_pair_on(&y, 0);
    wait_once_on(&x, fd.clone()); // X's poll is armed first
    wait_once_on(&y, fd.clone());
    drop(x); // cancels X's poll
    let r = fd.readiness();
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut wrote = false;
    loop {
        match r.poll_ready(Direction::Read, &mut cx) {
            Poll::Ready(Ok(_)) => break,
            Poll::Ready(Err(e)) => panic!("the off-shard wait failed: {e}"),
            Poll::Pending if Instant::now() < deadline => {
                if !wrote {
                    (&b).write_all(b"x").unwrap();
                    wrote = true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Poll::Pending => panic!("the off-shard wait never saw the data"),
        }
    }
    assert!(wrote, "ready before any data was written");
    drop(fd);
    drop(b);
}

/// A direction ready for good (an error report that sticks, as `POLLERR`
/// does while the socket's error queue holds a timestamp) whose syscall
/// keeps answering `EAGAIN`: off the shards, where no budget ends a poll,
/// `poll_io` used to loop forever inside one poll (a Tokio worker hung, and
/// a `tokio::time::timeout` around the write never fired). It yields now.
#[test]
fn a_sticky_readiness_that_keeps_answering_eagain_yields_off_the_shards() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let (fd, b) = async_pair_on(&rt, 0);
    {
        let mut side = fd.readiness().write.lock();
        side.closed = true;
        side.ready = true;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let polled = fd.clone();
    std::thread::spawn(move || {
        let mut calls = 0u32;
        let mut cx = Context::from_waker(Waker::noop());
        let r = polled.readiness().poll_io(Direction::Write, &mut cx, || {
            calls += 1;
            Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
        });
        let _ = tx.send((r.is_pending(), calls));
    });
    let (pending, calls) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("poll_io never returned: it spins on a readiness that stays set");
    assert!(pending, "EAGAIN is no result");
    assert_eq!(calls, 1, "one syscall per poll");
    drop((fd, b));
}

/// A stream made on shard 1 (its home) that a task on shard 0 waited on
/// once, then polled from outside the runtime (a Tokio task) while shard 0
/// is busy in a long poll. The outside wait took the first poll in a ring,
/// shard 0's, which only shard 0 reaps: the data that arrived went unseen
/// until shard 0 was free, though the home shard was idle. It waits
/// through the home shard now.
#[test]
fn an_off_shard_wait_does_not_hang_on_a_busy_shard_that_is_not_the_home() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let rt = crate::Runtime::builder().shards(2).build().unwrap();
    let (fd, b) = async_pair_on(&rt, 1);
    wait_once_on(&rt, fd.clone()); // shard 0's poll, in its ring
    let (started, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let busy = {
        let (started, release) = (started.clone(), release.clone());
        rt.handle()
            .spawn_pinned(0, async move {
                started.store(true, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(10);
                while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
            })
            .unwrap()
    };
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let r = fd.readiness();
    let mut cx = Context::from_waker(Waker::noop());
    let first = r.poll_ready(Direction::Read, &mut cx);
    assert!(first.is_pending(), "nothing was written yet: {first:?}");
    (&b).write_all(b"x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let seen = loop {
        match r.poll_ready(Direction::Read, &mut cx) {
            Poll::Ready(out) => break Some(out.map(|_| ())),
            Poll::Pending if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Poll::Pending => break None,
        }
    };
    release.store(true, Ordering::SeqCst);
    rt.block_on(busy).unwrap();
    let seen = seen.expect("the outside wait hung on busy shard 0's poll");
    assert!(seen.is_ok(), "{seen:?}");
    drop(fd);
    drop(b);
}
