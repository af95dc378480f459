//! `compat::TcpSocket` against Tokio's: options before listening or
//! connecting, `SO_REUSEPORT` listeners on one port (one per shard, the
//! sharded server's pattern), connects that succeed and fail.

mod common;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringlane::compat::TcpSocket;

use common::LIMIT;
use common::compat_io::localhost;

fn reuseport_socket(addr: SocketAddr) -> TcpSocket {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseport(true).unwrap();
    s.bind(addr).unwrap();
    s
}

/// Expected (Linux): two `SO_REUSEPORT` listeners on one port, each
/// accepting on its own shard, both get connections; every connection is
/// accepted exactly once. (The clients connect first, into both accept
/// queues; the acceptors stop when all were taken, not after an idle
/// spell, so a slow machine only slows the test.)
#[test]
fn reuseport_listeners_on_two_shards_share_one_port() {
    const CLIENTS: usize = 64;
    let rt = common::runtime(2);
    let first = reuseport_socket(localhost());
    let addr = first.local_addr().unwrap();
    let second = reuseport_socket(addr);
    let listeners = [first, second].map(|s| s.listen(CLIENTS as u32).unwrap());
    let clients: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let taken = Arc::new(AtomicUsize::new(0));
    let mut acceptors = Vec::new();
    for (shard, listener) in listeners.into_iter().enumerate() {
        let taken = taken.clone();
        acceptors.push(
            rt.handle()
                .spawn_pinned(shard, async move {
                    let mut peers = Vec::new();
                    let deadline = std::time::Instant::now() + LIMIT;
                    while taken.load(Ordering::SeqCst) < CLIENTS {
                        assert!(std::time::Instant::now() < deadline, "connections lost");
                        let next = Duration::from_millis(10);
                        if let Ok(accepted) = ringlane::time::timeout(next, listener.accept()).await
                        {
                            peers.push(accepted.unwrap().1);
                            taken.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    peers
                })
                .unwrap(),
        );
    }
    let mut all = HashSet::new();
    let mut counts = Vec::new();
    for a in acceptors {
        let peers = rt.block_on(a).unwrap();
        counts.push(peers.len());
        for p in peers {
            assert!(all.insert(p), "{p} accepted twice");
        }
    }
    let expected: HashSet<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    assert_eq!(all, expected, "every connection accepted once");
    assert!(
        counts.iter().all(|&n| n > 0),
        "one listener got none: {counts:?}"
    );
}

/// Expected (Tokio): a connect to a port nobody listens on fails with
/// `ConnectionRefused`, after the handshake's answer, not at once with
/// `WouldBlock` or never; one to a listener succeeds with the options set
/// before it kept; an address of the other family is an error.
#[test]
fn connects_succeed_fail_and_keep_their_options() {
    let rt = common::runtime(1);
    let closed = {
        let l = std::net::TcpListener::bind(localhost()).unwrap();
        l.local_addr().unwrap()
    };
    let listener = std::net::TcpListener::bind(localhost()).unwrap();
    let open = listener.local_addr().unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let refused = TcpSocket::new_v4()?.connect(closed).await.map(drop);
            let socket = TcpSocket::new_v4()?;
            socket.set_nodelay(true)?;
            socket.set_keepalive(true)?;
            socket.set_linger(Some(Duration::ZERO))?;
            let stream = socket.connect(open).await?;
            let v6 = TcpSocket::new_v4()?
                .connect("[::1]:9".parse().unwrap())
                .await
                .map(drop);
            io::Result::Ok((refused, stream.nodelay()?, stream.peer_addr()?, v6))
        })
        .unwrap();
    let (refused, nodelay, peer, v6) = rt.block_on(j).unwrap().unwrap();
    assert_eq!(
        refused.unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    assert!(nodelay, "an option set before the connect");
    assert_eq!(peer, open);
    assert!(v6.is_err(), "an IPv6 address on an IPv4 socket");
    let (accepted, _) = listener.accept().unwrap();
    drop(accepted);
}

/// Expected (Tokio): the options read back as set; a backlog or buffer
/// size past `i32::MAX` is clamped (Tokio's `listen` clamps the backlog,
/// and the kernel any size to its limits), not refused, and never a panic.
#[test]
fn options_read_back_and_large_values_are_clamped() {
    let s = TcpSocket::new_v4().unwrap();
    assert!(!s.reuseaddr().unwrap() && !s.reuseport().unwrap() && !s.keepalive().unwrap());
    s.set_reuseaddr(true).unwrap();
    s.set_reuseport(true).unwrap();
    s.set_send_buffer_size(1 << 16).unwrap();
    s.set_recv_buffer_size(1 << 16).unwrap();
    assert!(s.reuseaddr().unwrap() && s.reuseport().unwrap());
    assert!(s.send_buffer_size().unwrap() >= 1 << 16);
    assert!(s.recv_buffer_size().unwrap() >= 1 << 16);
    assert_eq!(s.linger().unwrap(), None);
    s.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(3)));
    s.set_linger(None).unwrap();
    assert_eq!(s.linger().unwrap(), None);
    s.set_send_buffer_size(u32::MAX).unwrap();
    assert!(
        s.send_buffer_size().unwrap() >= 1 << 16,
        "clamped to the kernel's limit"
    );
    s.set_zero_linger().unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    s.bind(localhost()).unwrap();
    assert!(s.take_error().unwrap().is_none());
    let listener = s.listen(u32::MAX).unwrap();
    assert!(std::net::TcpStream::connect(listener.local_addr().unwrap()).is_ok());
}

/// Expected (Tokio): a stream with `set_zero_linger` resets its
/// connection when dropped (the peer's read fails with `ConnectionReset`)
/// instead of closing it (end of stream).
#[test]
fn a_zero_linger_stream_resets_its_connection_when_dropped() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    for zero in [false, true] {
        let ours =
            ringlane::compat::TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap())
                .unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        if zero {
            ours.set_zero_linger().unwrap();
        }
        drop(ours);
        let read = peer.read(&mut [0u8; 8]);
        match zero {
            true => assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionReset),
            false => assert_eq!(read.unwrap(), 0, "an orderly end of stream"),
        }
    }
}
