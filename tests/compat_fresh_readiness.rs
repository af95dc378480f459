//! `readable()` on a socket nothing was read from yet: Tokio's waits for
//! data (its readiness starts at what the kernel reports), so code ported
//! from Tokio that waits on `readable()` for "the peer sent something"
//! must wait here too, though the compat lane's own reads start by trying
//! the syscall (readiness invariant 2).

mod common;

use common::{on_shard_0, soon, waits};

use ringlane::compat::{TcpListener, UdpSocket, UnixStream};

/// Expected: a new stream pair's `readable()` waits until the peer writes,
/// then resolves, and the read gets the bytes; `writable()` resolves at
/// once (a new socket has room).
/// Why it may fail: the stream's starting guess (ready, so that the first
/// read tries the syscall) was taken for readiness.
#[test]
fn a_new_unix_streams_readable_waits_for_the_peer() {
    let rt = common::runtime(1);
    let (waited, got) = on_shard_0(&rt, async {
        let (a, b) = UnixStream::pair().unwrap();
        let waited = waits(a.readable()).await;
        soon(b.writable()).await.unwrap();
        assert_eq!(b.try_write(b"hi").unwrap(), 2);
        soon(a.readable()).await.unwrap();
        let mut buf = [0u8; 4];
        let n = a.try_read(&mut buf).unwrap();
        (waited, buf[..n].to_vec())
    });
    assert!(waited, "readable() resolved on a new, empty stream");
    assert_eq!(got, b"hi");
}

/// Expected: the same for a stream fresh from `accept`, and for a new UDP
/// socket.
#[test]
fn an_accepted_stream_and_a_new_udp_socket_wait_for_data() {
    let rt = common::runtime(1);
    let (tcp_waited, udp_waited) = on_shard_0(&rt, async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = soon(l.accept()).await.unwrap();
        let tcp_waited = waits(s.readable()).await;
        std::io::Write::write_all(&mut &c, b"x").unwrap();
        soon(s.readable()).await.unwrap();
        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let udp_waited = waits(u.readable()).await;
        let from = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        from.send_to(b"d", u.local_addr().unwrap()).unwrap();
        soon(u.readable()).await.unwrap();
        (tcp_waited, udp_waited)
    });
    assert!(
        tcp_waited,
        "an accepted stream's readable() resolved at once"
    );
    assert!(udp_waited, "a new UDP socket's readable() resolved at once");
}

/// Expected: a peek leaves the stream readable: `readable()` resolves
/// again at once and the read gets the same bytes. And a stream whose
/// bytes are already there is readable at once (`a_pair_with_data_…`).
/// Why it may fail: a peek cleared the readiness it did not consume.
#[test]
fn a_peek_keeps_the_stream_readable() {
    let rt = common::runtime(1);
    let got = on_shard_0(&rt, async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = soon(l.accept()).await.unwrap();
        std::io::Write::write_all(&mut &c, b"ok").unwrap();
        // Until the bytes cross loopback.
        soon(a.readable()).await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(soon(a.peek(&mut buf)).await.unwrap(), 2);
        assert!(!waits(a.readable()).await, "the peek cleared readiness");
        let n = a.try_read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    assert_eq!(got, b"ok");
}

/// Expected: a new stream whose peer wrote before the first wait is
/// readable at once: the kernel confirms the starting guess.
/// Why it may fail: the first wait dropped a correct guess and armed a
/// poll for data already there (which would still come, but late).
#[test]
fn a_pair_with_data_already_there_is_readable_at_once() {
    let rt = common::runtime(1);
    let at_once = on_shard_0(&rt, async {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(b.try_write(b"ok").unwrap(), 2);
        !waits(a.readable()).await
    });
    assert!(at_once);
}
