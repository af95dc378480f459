//! Tests of the readiness engine (`readiness.rs`), each named after the
//! race or order it pins down.

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::Direction;
use crate::compat::AsyncFd;

/// Two tasks share one direction: A's syscall says `EAGAIN`, then,
/// before A clears, B's wait sees new data and B reads part of it. A's
/// late clear used to erase the readiness B's event had set: both then
/// waited, with a byte unread and no new event coming.
#[test]
fn a_clear_after_a_stale_eagain_keeps_a_newer_readiness() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let unread = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    use std::io::{Read, Write};
                    let fd = AsyncFd::new(a).unwrap();
                    let r = fd.readiness();
                    // A's syscall: nothing to read yet.
                    let stale = r.tick(Direction::Read);
                    let mut one = [0u8; 1];
                    let eagain = fd.get_ref().read(&mut one).unwrap_err();
                    assert_eq!(eagain.kind(), std::io::ErrorKind::WouldBlock);
                    // B clears after its own EAGAIN (same tick) and waits.
                    r.clear(Direction::Read, stale);
                    let pending = std::future::poll_fn(|cx| {
                        Poll::Ready(r.poll_ready(Direction::Read, cx).is_pending())
                    })
                    .await;
                    assert!(pending, "nothing was written yet");
                    (&b).write_all(b"xy").unwrap();
                    std::future::poll_fn(|cx| r.poll_ready(Direction::Read, cx))
                        .await
                        .unwrap();
                    // B reads one of the two bytes.
                    assert_eq!(fd.get_ref().read(&mut one).unwrap(), 1);
                    // A's late clear, for the syscall it made before the data.
                    r.clear(Direction::Read, stale);
                    let wait = std::future::poll_fn(|cx| r.poll_ready(Direction::Read, cx));
                    crate::time::timeout(Duration::from_secs(2), wait)
                        .await
                        .expect("the second byte's readiness was erased")
                        .unwrap();
                    let n = fd.get_ref().read(&mut one).unwrap();
                    drop(b);
                    n
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(unread, 1);
}

/// Shard 1's poll of a direction holds no waker (its last result woke
/// the list before anyone else waited); then a task on shard 0 waits, so
/// shard 0's poll holds the list's waker, the only one that would wake it.
/// Shard 1 takes three more results without waiting (a reader that keeps
/// finding data). The third retired shard 0's poll as stale, although its
/// waiter had never been woken: the next event reached only shard 1's
/// poll, which woke nobody, and the waiter on shard 0 slept beside data.
/// A poll that holds the waker is kept now (invariant 1).
#[test]
fn a_poll_whose_waiter_was_never_woken_is_not_retired_by_events_on_another_shard() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Flag(AtomicBool);
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let rt = crate::Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let on = |shard: usize, f: Box<dyn FnOnce() + Send>| {
        rt.block_on(h.spawn_pinned(shard, async move { f() }).unwrap())
            .unwrap();
    };
    let (fd, b) = async_pair_on(&rt, 1);
    let op_of = |fd: &AsyncFd<std::os::unix::net::UnixStream>, shard: usize, result: i32| {
        let side = fd.readiness().read.lock();
        let armed = side.armed.iter().find(|a| a.shard.1 == shard);
        armed
            .expect("armed")
            .op
            .complete_for_test(result, CQE_F_MORE);
    };
    use crate::sys::CQE_F_MORE;
    // Shard 1 waits, then a result wakes the list (nobody else waits yet).
    let f = fd.clone();
    on(
        1,
        Box::new(move || {
            let r = f.readiness();
            r.clear(Direction::Read, r.tick(Direction::Read));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(r.poll_ready(Direction::Read, &mut cx).is_pending());
            op_of(&f, 1, libc::POLLIN as i32);
        }),
    );
    // A task on shard 0 waits: its own poll holds the list's waker.
    let woken = Arc::new(Flag(AtomicBool::new(false)));
    let (f, w) = (fd.clone(), woken.clone());
    on(
        0,
        Box::new(move || {
            let waker = Waker::from(w);
            let mut cx = Context::from_waker(&waker);
            assert!(
                f.readiness()
                    .poll_ready(Direction::Read, &mut cx)
                    .is_pending(),
                "nothing was taken yet: not ready"
            );
        }),
    );
    // Shard 1 takes its result and three more, never waiting.
    let f = fd.clone();
    on(
        1,
        Box::new(move || {
            let r = f.readiness();
            let mut cx = Context::from_waker(Waker::noop());
            for round in 0..4 {
                if round > 0 {
                    op_of(&f, 1, libc::POLLIN as i32);
                }
                let Poll::Ready(Ok(tick)) = r.poll_ready(Direction::Read, &mut cx) else {
                    panic!("round {round}: shard 1's result left the direction ready");
                };
                r.clear(Direction::Read, tick);
            }
        }),
    );
    assert!(
        !woken.0.load(Ordering::SeqCst),
        "shard 0's waiter was woken before any event reached it"
    );
    // A real event: it must reach the waiter on shard 0.
    use std::io::Write;
    (&b).write_all(b"x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !woken.0.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        woken.0.load(Ordering::SeqCst),
        "the waiter on shard 0 was never woken for the data"
    );
    drop(fd);
    drop(b);
}

/// Shard 0 of runtime X and shard 0 of runtime Y wait on one socket. They
/// were taken for one shard (polls were keyed by the shard's index only):
/// Y's waiter used X's poll, and X's shutdown, which cancels that poll,
/// failed Y's wait with `ECANCELED` although Y runs on. Polls are keyed by
/// runtime and index now (invariant 1).
#[test]
fn a_socket_polled_from_two_runtimes_survives_the_first_ones_shutdown() {
    let x = crate::Runtime::builder().shards(1).build().unwrap();
    let y = crate::Runtime::builder().shards(1).build().unwrap();
    let (fd, b) = async_pair_on(&x, 0);
    wait_once_on(&x, fd.clone()); // X's poll, armed on X's ring

    // Y's shard 0 waits too.
    let f = fd.clone();
    let waiter = y
        .handle()
        .spawn_pinned(0, async move {
            std::future::poll_fn(|cx| f.readiness().poll_ready(Direction::Read, cx))
                .await
                .map(|_| ())
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(x);
    use std::io::Write;
    (&b).write_all(b"x").unwrap();
    let out = y.block_on(crate::time::timeout(Duration::from_secs(5), waiter));
    match out {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => panic!("Y's wait failed with X's shutdown: {e}"),
        Ok(Err(e)) => panic!("Y's waiter task failed: {e}"),
        Err(_) => panic!("Y's waiter never saw the data"),
    }
    drop(fd);
    drop(b);
}

/// Some kernels end a multishot poll with `-ECANCELED` when they cannot
/// post its CQE (CQ overflow and a failed overflow allocation). On a shard
/// that end used to fail the user's wait with `ECANCELED` (and drop every
/// shard's poll); the poll is re-armed instead, as one the kernel ended
/// with a final CQE is.
#[test]
fn a_poll_the_kernel_ended_with_ecanceled_is_re_armed_on_the_shard() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let (fd, b) = async_pair_on(&rt, 0);
    wait_once_on(&rt, fd.clone());
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    {
                        let side = fd.readiness().read.lock();
                        let armed = &side.armed.first().expect("armed on the shard").op;
                        armed.complete_for_test(-libc::ECANCELED, 0);
                    }
                    let r = fd.readiness();
                    let first =
                        r.poll_ready(Direction::Read, &mut Context::from_waker(Waker::noop()));
                    if let Poll::Ready(out) = first {
                        return Err(format!("ended the wait: {out:?}"));
                    }
                    use std::io::Write;
                    (&b).write_all(b"x").unwrap();
                    std::future::poll_fn(|cx| r.poll_ready(Direction::Read, cx))
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("the re-armed wait failed: {e}"))
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(got, Ok(()));
}

/// A socket pair: `a` nonblocking in an `AsyncFd` made on `rt`'s shard
/// `shard`, and its peer.
pub(super) fn async_pair_on(
    rt: &crate::Runtime,
    shard: usize,
) -> (
    std::sync::Arc<AsyncFd<std::os::unix::net::UnixStream>>,
    std::os::unix::net::UnixStream,
) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = rt
        .block_on(
            rt.handle()
                .spawn_pinned(shard, async move { AsyncFd::new(a).unwrap() })
                .unwrap(),
        )
        .unwrap();
    (std::sync::Arc::new(fd), b)
}

/// On `rt`'s shard 0: the read direction cleared, and one poll of it that
/// waits (its poll armed on that shard's ring).
pub(super) fn wait_once_on(
    rt: &crate::Runtime,
    fd: std::sync::Arc<AsyncFd<std::os::unix::net::UnixStream>>,
) {
    rt.block_on(
        rt.handle()
            .spawn_pinned(0, async move {
                let r = fd.readiness();
                r.clear(Direction::Read, r.tick(Direction::Read));
                let mut cx = Context::from_waker(Waker::noop());
                assert!(r.poll_ready(Direction::Read, &mut cx).is_pending());
            })
            .unwrap(),
    )
    .unwrap();
}
