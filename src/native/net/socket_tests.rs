//! The single-shot fallback of a listener's connection stream (kernels
//! before 5.19, which refuse multishot accept), forced on here so that it
//! runs on any kernel.

use std::future::poll_fn;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::{MultiAccept, Socket};
use crate::native::timeout as native_timeout;
use crate::time::timeout as user_timeout;

/// A listener on loopback, as a `Socket`, and its address.
fn listener() -> (Socket, std::net::SocketAddr) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (Socket::from_owned(OwnedFd::from(l)), addr)
}

fn single_shot(listener: &Socket) -> MultiAccept {
    let mut accept = MultiAccept::new(listener);
    accept.single_shot = true;
    accept
}

/// Expected: each wait for the next connection follows the deadline of the
/// `native::timeout` it is polled under, as a multishot accept's waits do,
/// however the accept kept across them was first polled; and a connection
/// arriving after those waits is still accepted.
///
/// Why it may fail: the fallback's accept op was submitted with the
/// deadline of its first poll and kept across waits, so a later wait under
/// a deadline was never bounded (the first poll had none), and a later
/// wait under none failed at the first poll's deadline.
#[test]
fn a_single_shot_accept_kept_across_waits_follows_each_waits_deadline() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let (l, addr) = listener();
            // First wait with no deadline, dropped (a `select!` branch that
            // lost); then one under a 50 ms deadline.
            let mut accept = single_shot(&l);
            let first = user_timeout(
                Duration::from_millis(20),
                poll_fn(|cx| accept.poll_accept(cx)),
            );
            assert!(first.await.is_err(), "no client yet");
            let bounded = native_timeout(
                Duration::from_millis(50),
                poll_fn(|cx| accept.poll_accept(cx)),
            );
            let bounded = user_timeout(Duration::from_secs(2), bounded).await;
            let bounded = bounded.map(|r| r.map(|_| ()).map_err(|e| e.kind()));
            // The mirror: first under a 300 ms deadline, dropped after
            // 10 ms; then a wait with none must not time out at 300 ms (it waits 1 s).
            let mut accept2 = single_shot(&l);
            let first = native_timeout(
                Duration::from_millis(300),
                poll_fn(|cx| accept2.poll_accept(cx)),
            );
            assert!(
                user_timeout(Duration::from_millis(10), first)
                    .await
                    .is_err()
            );
            let start = Instant::now();
            let unbounded = user_timeout(
                Duration::from_millis(1000),
                poll_fn(|cx| accept2.poll_accept(cx)),
            )
            .await;
            let unbounded = unbounded.map(|r| r.map(|_| ()).map_err(|e| e.kind()));
            let waited = start.elapsed();
            drop(accept2);
            // The first stream's accept is still armed: a client that
            // connects now is its next connection.
            let client = std::net::TcpStream::connect(addr).unwrap();
            let got = user_timeout(Duration::from_secs(2), poll_fn(|cx| accept.poll_accept(cx)))
                .await
                .expect("the connection arrives")
                .expect("accepted");
            let peer = crate::native::net::addr::inet_name(got.raw(), true);
            (
                bounded,
                unbounded,
                waited,
                peer.ok(),
                client.local_addr().ok(),
            )
        })
        .unwrap();
    let (bounded, unbounded, waited, peer, client) = rt.block_on(j).unwrap();
    assert_eq!(
        bounded,
        Ok(Err(ErrorKind::TimedOut)),
        "a wait under a 50 ms deadline was not bounded by it"
    );
    assert!(
        unbounded.is_err() && waited >= Duration::from_millis(900),
        "a wait with no deadline ended after {waited:?} with {unbounded:?}"
    );
    assert_eq!(peer, client, "the client's connection was accepted");
}

/// Expected: a wait under a deadline already past arms nothing, as for a
/// multishot accept: the client that connects afterwards stays in the
/// backlog for the next wait.
#[test]
fn a_single_shot_wait_under_a_past_deadline_arms_nothing() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async {
            let (l, addr) = listener();
            let mut accept = single_shot(&l);
            let waited = native_timeout(Duration::ZERO, poll_fn(|cx| accept.poll_accept(cx))).await;
            let armed = accept.single.is_some();
            let _client = std::net::TcpStream::connect(addr).unwrap();
            let next =
                user_timeout(Duration::from_secs(2), poll_fn(|cx| accept.poll_accept(cx))).await;
            (
                waited.map(|_| ()).map_err(|e| e.kind()),
                armed,
                next.map(|r| r.is_ok()),
            )
        })
        .unwrap();
    let (waited, armed, next) = rt.block_on(j).unwrap();
    assert_eq!(waited, Err(ErrorKind::TimedOut));
    assert!(!armed, "a wait past its deadline armed an accept");
    assert_eq!(next, Ok(true), "the next wait accepts the client");
}
