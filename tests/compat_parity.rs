//! Tokio APIs of the compat lane beyond the I/O traits. Peeking (`recv`
//! with `MSG_PEEK`), as Tokio's `TcpStream::peek` and
//! `UdpSocket::peek_from`: the bytes stay queued for the next read, and a
//! peek with nothing queued waits for data. Reuniting split halves, as
//! Tokio's `OwnedReadHalf::reunite`: the stream's write side stays open.

mod common;

use std::io::Write;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ringlane::compat::{TcpStream, UdpSocket};

fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

/// A peek started on an empty socket parks its task and is woken by the
/// peer's bytes; the bytes it saw are then read again, in full.
#[test]
fn peek_on_an_empty_socket_waits_and_leaves_the_bytes_for_the_read() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let (mine, mut peer) = tcp_pair();
    let (read_tx, read_rx) = std::sync::mpsc::channel();
    let j = h
        .spawn_pinned(0, async move {
            let mut s = TcpStream::from_std(mine).unwrap();
            let mut peeked = [0u8; 16];
            let n = s.peek(&mut peeked).await.unwrap();
            let mut read = vec![0u8; n];
            s.read_exact(&mut read).await.unwrap();
            read_tx.send(()).unwrap();
            // The next peek sees what follows, not the bytes already read.
            let mut next = [0u8; 4];
            let m = s.peek(&mut next).await.unwrap();
            (peeked[..n].to_vec(), read, next[..m].to_vec())
        })
        .unwrap();
    common::until_parked(&h, 0); // the first peek waits
    peer.write_all(b"hello").unwrap();
    read_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    peer.write_all(b"!").unwrap();
    let (peeked, read, next) = common::join_within(&rt, j, Duration::from_secs(10), "peek");
    assert!(!peeked.is_empty() && b"hello".starts_with(&peeked));
    assert_eq!(read, peeked, "the read must return the peeked bytes");
    let rest = &b"hello!"[peeked.len()..];
    assert_eq!(
        next,
        rest[..rest.len().min(4)],
        "the next peek sees what follows"
    );
}

/// Peeking twice without reading returns the same bytes both times, and a
/// closed peer makes a peek of an empty socket return 0, as a read does.
#[test]
fn peek_does_not_consume_and_sees_the_peers_close() {
    let rt = common::runtime(1);
    let (mine, mut peer) = tcp_pair();
    peer.write_all(b"abc").unwrap();
    drop(peer);
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut s = TcpStream::from_std(mine).unwrap();
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            let n1 = s.peek(&mut a).await.unwrap();
            let n2 = s.peek(&mut b).await.unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).await.unwrap();
            let after = s.peek(&mut a).await.unwrap();
            (a[..n1].to_vec(), b[..n2].to_vec(), all, after)
        })
        .unwrap();
    let (first, second, all, after) =
        common::join_within(&rt, j, Duration::from_secs(10), "peek twice");
    assert_eq!(first, b"abc");
    assert_eq!(second, b"abc");
    assert_eq!(all, b"abc");
    assert_eq!(after, 0, "a peek after the peer's close returns 0");
}

/// A datagram peeked at is received again whole, with the same sender;
/// the peek waits for a datagram when none is queued.
#[test]
fn udp_peek_from_waits_and_leaves_the_datagram_queued() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let j = h
        .spawn_pinned(0, async move {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            tx.send(s.local_addr().unwrap()).unwrap();
            let mut peeked = [0u8; 3];
            let (n, from) = s.peek_from(&mut peeked).await.unwrap();
            let mut got = [0u8; 16];
            let (m, from2) = s.recv_from(&mut got).await.unwrap();
            (peeked[..n].to_vec(), got[..m].to_vec(), from == from2, from)
        })
        .unwrap();
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    common::until_parked(&h, 0); // the peek waits
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"datagram", addr).unwrap();
    let (peeked, got, same, from) =
        common::join_within(&rt, j, Duration::from_secs(10), "peek_from");
    assert_eq!(peeked, b"dat", "the peek is truncated to its buffer");
    assert_eq!(got, b"datagram", "the datagram is still queued whole");
    assert!(same);
    assert_eq!(from, sender.local_addr().unwrap());
}

/// Halves of one stream reunite into a stream whose write side is still
/// open (the write half's drop must not shut it down); halves of two
/// streams are handed back in the error, both still usable.
#[test]
fn reunited_halves_keep_the_write_side_open_and_mismatched_halves_come_back() {
    let rt = common::runtime(1);
    let (mine, mut peer) = tcp_pair();
    let (other, _other_peer) = tcp_pair();
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let (r, w) = TcpStream::from_std(mine).unwrap().into_split();
            let (r2, w2) = TcpStream::from_std(other).unwrap().into_split();
            let err = r.reunite(w2).unwrap_err();
            let (r, w2) = (err.0, err.1);
            // Handed back intact: each reunites with its own partner.
            let other_back = w2.reunite(r2).is_ok();
            let mut s = w.reunite(r).expect("halves of one stream");
            s.write_all(b"after").await.map(|()| other_back)
        })
        .unwrap();
    let other_back = common::join_within(&rt, j, Duration::from_secs(10), "reunite").unwrap();
    assert!(other_back);
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut peer, &mut got).unwrap();
    assert_eq!(&got, b"after");
}
