//! A multishot stream's wait under `native::timeout` (a listener's
//! connections): a deadline already past arms nothing, and a wait that got
//! its item leaves no timer behind, as Tokio's `timeout` drops its `Sleep`
//! once the future is done.

mod common;

use std::future::Future;
use std::io::{ErrorKind, Read};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::TcpListener;

static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Expected: a wait for the next connection under a deadline that has
/// already passed fails with `TimedOut` without arming the accept (the
/// `native::timeout` docs: "ops submitted after the deadline fail at once,
/// without reaching the kernel"), so a client that connects afterwards
/// stays in the backlog for whoever accepts next.
///
/// Why it may fail: the stream armed its multishot accept first and looked
/// at the deadline only afterwards; the kernel then accepted the client
/// into the stream, and dropping the stream closed it: the client read EOF.
#[test]
fn a_multishot_wait_under_a_past_deadline_arms_nothing() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = std::sync::Arc::new(listener);
    let l = listener.clone();
    let (timed_out, mut client) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let mut incoming = l.incoming();
                    let waited = incoming.next().timeout(Duration::ZERO).await;
                    // The stream lives on while a client connects, and a
                    // few ticks (and their enters) pass before it drops.
                    let client = std::net::TcpStream::connect(addr).unwrap();
                    ringlane::time::sleep(Duration::from_millis(50)).await;
                    drop(incoming);
                    (waited.map(|_| ()).map_err(|e| e.kind()), client)
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!(timed_out, Err(ErrorKind::TimedOut));
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    match client.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the client was accepted and closed behind our back: {other:?}"),
    }
    // It is still in the backlog: the next accept gets it.
    let l = listener.clone();
    rt.block_on(
        rt.handle()
            .spawn_pinned(0, async move { l.incoming().next().await.map(drop) })
            .unwrap(),
    )
    .unwrap()
    .expect("the client waits in the backlog");
    drop((client, listener));
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Polls `inner`, counting the polls in `polls`.
struct Counted<'a, F> {
    inner: Pin<Box<F>>,
    polls: &'a mut u32,
}

impl<F: Future> Future for Counted<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        *self.polls += 1;
        self.inner.as_mut().poll(cx)
    }
}

/// Expected: once a wait under `native::timeout` got its connection, the
/// deadline is forgotten: the task is not woken when it passes.
///
/// Why it may fail: the stream kept the wait's timer (and the task's
/// waker) in its shard's wheel until its next poll outside a timeout, so
/// the task was woken for nothing at the old deadline, and during a
/// graceful shutdown the pending timer held the shard in its drain.
#[test]
fn a_multishot_wait_that_got_its_item_leaves_no_timer_behind() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let polls = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let mut incoming = listener.incoming();
                    let conn = incoming
                        .next()
                        .timeout(Duration::from_millis(100))
                        .await
                        .expect("the client is in the backlog");
                    let mut polls = 0;
                    // Outlives the old deadline: polled once, then once more
                    // when it fires, and at no other time.
                    Counted {
                        inner: Box::pin(ringlane::time::sleep(Duration::from_millis(400))),
                        polls: &mut polls,
                    }
                    .await;
                    drop((conn, incoming));
                    polls
                })
                .unwrap(),
        )
        .unwrap();
    drop(client);
    assert_eq!(
        polls, 2,
        "the task was woken at the finished wait's deadline"
    );
}
