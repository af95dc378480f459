//! The compat lane's Tokio names beyond the I/O traits: what code ported
//! from `tokio::net` calls on a Unix stream, a listener, the owned halves
//! and a UDP socket, with Tokio's behaviour (a `try_*` that finds nothing
//! clears the readiness, so the next `readable()` waits; `accept` gives
//! the peer's address; `forget` does not shut the write side down).

mod common;

use common::{on_shard_0, soon, waits};

use std::io::ErrorKind;

use ringlane::compat::{UdpSocket, UnixListener, UnixStream};

/// Expected: `try_read` on an empty stream answers `WouldBlock` and clears
/// the read readiness, so `readable()` then waits for data (it does not
/// resolve at once), and resolves when a byte arrives; `try_write` sends.
#[test]
fn a_unix_streams_try_read_clears_readiness_and_readable_waits_for_data() {
    let rt = common::runtime(1);
    let (waited, got) = on_shard_0(&rt, async {
        let (a, b) = UnixStream::pair().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            a.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let waited = waits(a.readable()).await;
        soon(b.writable()).await.unwrap();
        assert_eq!(b.try_write(b"abc").unwrap(), 3);
        soon(a.readable()).await.unwrap();
        let n = a.try_read(&mut buf).unwrap();
        (waited, buf[..n].to_vec())
    });
    assert!(waited, "readable() resolved on an empty stream");
    assert_eq!(got, b"abc");
}

/// Expected: the same on the owned halves, which two tasks may use apart;
/// and `forget` on the write half leaves the write side open (the peer
/// sees no end of stream), where dropping it shuts it down.
#[test]
fn owned_halves_wait_read_and_write_like_tokios_and_forget_keeps_the_write_side() {
    let rt = common::runtime(1);
    let (waited, got, after_forget, after_drop) = on_shard_0(&rt, async {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = a.into_split();
        let mut buf = [0u8; 8];
        assert_eq!(
            r.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let waited = waits(r.readable()).await;
        soon(w.writable()).await.unwrap();
        w.try_write(b"hi").unwrap();
        soon(b.readable()).await.unwrap();
        let n = b.try_read(&mut buf).unwrap();
        let got = buf[..n].to_vec();
        assert!(r.peer_addr().unwrap().is_unnamed() && w.local_addr().unwrap().is_unnamed());
        w.forget();
        let after_forget = b.try_read(&mut buf).map_err(|e| e.kind());
        let (c, d) = UnixStream::pair().unwrap();
        let (_r2, w2) = c.into_split();
        drop(w2);
        soon(d.readable()).await.unwrap();
        let after_drop = d.try_read(&mut buf).map_err(|e| e.kind());
        (waited, got, after_forget, after_drop)
    });
    assert!(waited, "readable() resolved on an empty half");
    assert_eq!(got, b"hi");
    assert_eq!(
        after_forget,
        Err(ErrorKind::WouldBlock),
        "forget shut the write side down"
    );
    assert_eq!(after_drop, Ok(0), "dropping the write half shuts it down");
}

/// Expected: a TCP read half peeks without taking the bytes.
#[test]
fn a_tcp_read_half_peeks_without_taking() {
    let rt = common::runtime(1);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    let listener_addr = l.local_addr().unwrap();
    std::io::Write::write_all(&mut peer, b"peek").unwrap();
    let (peeked, read, addr) = on_shard_0(&rt, async move {
        let (r, _w) = ringlane::compat::TcpStream::from_std(s)
            .unwrap()
            .into_split();
        let mut buf = [0u8; 8];
        let n = soon(r.peek(&mut buf)).await.unwrap();
        let peeked = buf[..n].to_vec();
        let n = r.try_read(&mut buf).unwrap();
        (peeked, buf[..n].to_vec(), r.peer_addr().unwrap())
    });
    assert_eq!(peeked, b"peek");
    assert_eq!(read, b"peek", "the peeked bytes are still there");
    assert_eq!(addr, listener_addr, "the half's peer is the listener");
}

/// A `sockaddr_un` naming `path`, and its length.
fn unix_addr(path: &std::path::Path) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid `sockaddr_un`.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    assert!(bytes.len() < addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    (addr, len as libc::socklen_t)
}

/// A Unix stream socket bound to `name`, then connected to `server` (std
/// cannot bind a stream socket before it connects).
fn named_client(name: &std::path::Path, server: &std::path::Path) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just created and is ours.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let (me, me_len) = unix_addr(name);
    let (to, to_len) = unix_addr(server);
    // SAFETY: each address is a `sockaddr_un` of the length given.
    let r = unsafe { libc::bind(owned.as_raw_fd(), (&raw const me).cast(), me_len) };
    assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    let r = unsafe { libc::connect(owned.as_raw_fd(), (&raw const to).cast(), to_len) };
    assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
    owned
}

/// Expected: `UnixListener::accept` gives the stream and the peer's
/// address, as Tokio's does: the client's bound name, or unnamed.
#[test]
fn unix_accept_gives_the_peers_address() {
    let rt = common::runtime(1);
    let dir = std::env::temp_dir().join(format!("ringlane-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server, client) = (dir.join("server.sock"), dir.join("client.sock"));
    let (s2, c2) = (server.clone(), client.clone());
    let (named, unnamed) = on_shard_0(&rt, async move {
        let l = UnixListener::bind(&s2).unwrap();
        let _named_client = named_client(&c2, &s2);
        let (_conn, named) = soon(l.accept()).await.unwrap();
        let _anon = std::os::unix::net::UnixStream::connect(&s2).unwrap();
        let (_conn, unnamed) = soon(l.accept()).await.unwrap();
        (
            named.as_pathname().map(|p| p.to_path_buf()),
            unnamed.is_unnamed(),
        )
    });
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(named.as_deref(), Some(client.as_path()));
    assert!(unnamed, "a client that bound no name is unnamed");
}

/// Expected: a connected UDP socket's `recv`/`poll_recv`/`try_recv` and
/// `try_send`, and `readable()` waiting after a `try_recv` found nothing.
#[test]
fn a_connected_udp_socket_sends_and_receives_with_tokios_names() {
    let rt = common::runtime(1);
    let (waited, got, tried, peer_ok) = on_shard_0(&rt, async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            b.try_recv(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let waited = waits(b.readable()).await;
        a.try_send(b"one").unwrap();
        let n = soon(b.recv(&mut buf)).await.unwrap();
        let got = buf[..n].to_vec();
        std::future::poll_fn(|cx| a.poll_send(cx, b"two"))
            .await
            .unwrap();
        soon(b.readable()).await.unwrap();
        let n = b.try_recv(&mut buf).unwrap();
        let tried = buf[..n].to_vec();
        let peer_ok = b.peer_addr().unwrap() == a.local_addr().unwrap();
        (waited, got, tried, peer_ok)
    });
    assert!(waited, "readable() resolved with nothing queued");
    assert_eq!(got, b"one");
    assert_eq!(tried, b"two");
    assert!(peer_ok);
}

/// Expected: `AsyncFd::readable_mut` lends `&mut T` to the I/O, and a
/// `WouldBlock` inside the guard's `try_io` clears the readiness, so the
/// next `readable_mut()` waits for data rather than resolving at once.
#[test]
fn async_fd_readable_mut_waits_again_after_would_block() {
    let rt = common::runtime(1);
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let (waited, got) = on_shard_0(&rt, async move {
        let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
        let mut buf = [0u8; 8];
        // Readable (a first report), then nothing there: cleared.
        let mut writer = b;
        std::io::Write::write_all(&mut writer, b"1").unwrap();
        let mut guard = soon(fd.readable_mut()).await.unwrap();
        let n = guard
            .try_io(|i| std::io::Read::read(i.get_mut(), &mut buf))
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        let blocked = guard
            .try_io(|i| std::io::Read::read(i.get_mut(), &mut buf))
            .is_err();
        assert!(blocked, "nothing left to read");
        let waited = waits(fd.readable_mut()).await;
        std::io::Write::write_all(&mut writer, b"2").unwrap();
        let mut guard = soon(fd.readable_mut()).await.unwrap();
        let n = std::io::Read::read(guard.get_inner_mut(), &mut buf).unwrap();
        (waited, buf[..n].to_vec())
    });
    assert!(
        waited,
        "readable_mut() resolved after a WouldBlock cleared it"
    );
    assert_eq!(got, b"2");
}

/// Expected: the borrowed halves (`split`) wait and try like the owned
/// ones: an empty `try_read` clears the readiness, `readable()` then waits.
#[test]
fn borrowed_halves_wait_and_try_like_tokios() {
    let rt = common::runtime(1);
    let (waited, got) = on_shard_0(&rt, async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (r, w) = a.split();
        let mut buf = [0u8; 8];
        assert_eq!(
            r.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let waited = waits(r.readable()).await;
        soon(w.writable()).await.unwrap();
        assert_eq!(w.try_write(b"x").unwrap(), 1);
        soon(b.readable()).await.unwrap();
        assert_eq!(b.try_write(b"back").unwrap(), 4);
        soon(r.readable()).await.unwrap();
        let n = r.try_read(&mut buf).unwrap();
        (waited, buf[..n].to_vec())
    });
    assert!(waited, "readable() resolved on an empty half");
    assert_eq!(got, b"back");
}

/// Expected: `compat::TcpStream::connect` takes what Tokio's does in
/// practice (a string, a host-port pair, a list of addresses tried in
/// turn), and an empty list is `InvalidInput`, not a panic.
#[test]
fn tcp_connect_takes_strings_pairs_and_lists_of_addresses() {
    let rt = common::runtime(1);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let out = on_shard_0(&rt, async move {
        use ringlane::compat::TcpStream;
        let by_str = soon(TcpStream::connect(format!("127.0.0.1:{}", addr.port()))).await;
        let by_pair = soon(TcpStream::connect(("127.0.0.1", addr.port()))).await;
        // A closed port first (port 1: privileged, never bound by a test),
        // then the listener: the second one connects.
        let dead: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        let by_list = soon(TcpStream::connect(&[dead, addr][..])).await;
        let none = soon(TcpStream::connect(&[][..] as &[std::net::SocketAddr])).await;
        (
            by_str.map(|s| s.peer_addr().unwrap()).ok(),
            by_pair.map(|s| s.peer_addr().unwrap()).ok(),
            by_list.map(|s| s.peer_addr().unwrap()).ok(),
            none.map(drop).map_err(|e| e.kind()),
        )
    });
    assert_eq!(
        out,
        (
            Some(addr),
            Some(addr),
            Some(addr),
            Err(ErrorKind::InvalidInput)
        )
    );
}
