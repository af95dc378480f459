//! Inputs whose results must match std's: odd UDP addresses, offsets at the
//! edge of `i64`, paths with NUL bytes, fds of the wrong kind.

mod common;

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV6};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fs::{self as nfs, File, OpenOptions};
use ringlane::native::net::{UdpSocket, UnixListener, UnixStream};

use common::LIMIT;
use common::native_io::*;

/// The shard side of `udp_datagrams_to_odd_addresses_behave_as_with_std`.
async fn udp_cases() {
    let v4 = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let errno = |r: io::Result<usize>| r.map(drop).map_err(|e| e.raw_os_error());
    let rx = UdpSocket::bind(v4(0)).unwrap();
    let rx_addr = rx.local_addr().unwrap();
    let tx = UdpSocket::bind(v4(0)).unwrap();
    let std_tx = std::net::UdpSocket::bind(v4(0)).unwrap();

    // Destinations the kernel refuses: the same errno as std's send_to.
    let refused: [(&str, SocketAddr); 3] = [
        ("port 0", v4(0)),
        (
            "an IPv6 address from an IPv4 socket",
            "[::1]:9".parse().unwrap(),
        ),
        (
            "the broadcast address without SO_BROADCAST",
            SocketAddr::from((Ipv4Addr::BROADCAST, 9)),
        ),
    ];
    for (what, to) in refused {
        let ours = errno(tx.send_to(b"x".to_vec(), to).await.0);
        let theirs = errno(std_tx.send_to(b"x", to));
        assert_eq!(ours, theirs, "send_to {what}");
    }

    // 0.0.0.0 means this host on Linux: delivered, from the sender's address.
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, rx_addr.port()));
    let ours = errno(tx.send_to(b"ours".to_vec(), any).await.0);
    let theirs = errno(std_tx.send_to(b"std", any));
    assert_eq!(ours, theirs, "send_to 0.0.0.0");
    if ours.is_ok() {
        let mut got = Vec::new();
        for _ in 0..2 {
            let (r, buf) = rx.recv_from(Vec::with_capacity(16)).timeout(LIMIT).await;
            let (n, from) = r.unwrap();
            got.push((buf[..n].to_vec(), from));
        }
        got.sort();
        let want = vec![
            (b"ours".to_vec(), tx.local_addr().unwrap()),
            (b"std".to_vec(), std_tx.local_addr().unwrap()),
        ];
        assert_eq!(got, want, "datagrams sent to 0.0.0.0");
    }

    // A datagram longer than the buffer is cut, and the rest is gone (not
    // read as the next datagram), as recvfrom(2) does.
    tx.send_to(vec![7u8; 100], rx_addr).await.0.unwrap();
    tx.send_to(vec![8u8; 3], rx_addr).await.0.unwrap();
    let (r, buf) = rx
        .recv_from(vec![0u8; 10].into_boxed_slice())
        .timeout(LIMIT)
        .await;
    assert_eq!(
        (r.unwrap().0, &buf[..]),
        (10, &[7u8; 10][..]),
        "a long datagram"
    );
    let (r, buf) = rx
        .recv_from(vec![0u8; 10].into_boxed_slice())
        .timeout(LIMIT)
        .await;
    assert_eq!(
        (r.unwrap().0, &buf[..3]),
        (3, &[8u8; 3][..]),
        "the next datagram"
    );

    // An empty buffer takes a whole datagram and reports 0 bytes and the
    // sender, as std's recv_from(&mut []) does (checked on std sockets).
    let std_rx = std::net::UdpSocket::bind(v4(0)).unwrap();
    std_rx.set_read_timeout(Some(LIMIT)).unwrap();
    std_tx
        .send_to(&[9u8; 5], std_rx.local_addr().unwrap())
        .unwrap();
    std_tx.send_to(b"z", std_rx.local_addr().unwrap()).unwrap();
    let std_empty = std_rx.recv_from(&mut []).unwrap();
    let mut one = [0u8; 4];
    let std_next = std_rx.recv_from(&mut one).unwrap();
    assert_eq!(
        (std_empty.0, std_next.0, one[0]),
        (0, 1, b'z'),
        "std's view"
    );
    tx.send_to(vec![9u8; 5], rx_addr).await.0.unwrap();
    tx.send_to(b"z".to_vec(), rx_addr).await.0.unwrap();
    let (r, _) = rx.recv_from(Vec::<u8>::new()).timeout(LIMIT).await;
    assert_eq!(r.unwrap(), (0, tx.local_addr().unwrap()), "an empty buffer");
    let (r, buf) = rx.recv_from(Vec::with_capacity(4)).timeout(LIMIT).await;
    assert_eq!(&buf[..r.unwrap().0], b"z", "the datagram after it");

    // Dual stack: a v4 sender seen from an IPv6 socket bound to [::] is a
    // v4-mapped address, and such a socket sends to v4 addresses.
    let bound = (
        UdpSocket::bind("[::]:0".parse().unwrap()),
        std::net::UdpSocket::bind("[::]:0"),
    );
    let (Ok(rx6), Ok(std_rx6)) = bound else {
        println!("SKIP the dual-stack UDP cases: no IPv6 socket on this machine");
        return;
    };
    let std_port6 = std_rx6.local_addr().unwrap().port();
    std_rx6
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    std_tx.send_to(b"v4", v4(std_port6)).unwrap();
    let std_from = match std_rx6.recv_from(&mut [0u8; 8]) {
        Ok((_, from)) => from,
        Err(e) => {
            println!("SKIP the dual-stack UDP cases: IPv6 sockets are v6-only here ({e})");
            return;
        }
    };
    let mapped = |port: u16| {
        SocketAddr::V6(SocketAddrV6::new(
            Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
            port,
            0,
            0,
        ))
    };
    assert_eq!(
        std_from,
        mapped(std_tx.local_addr().unwrap().port()),
        "std's view"
    );
    let port6 = rx6.local_addr().unwrap().port();
    tx.send_to(b"v4".to_vec(), v4(port6)).await.0.unwrap();
    let (r, _) = rx6.recv_from(Vec::with_capacity(8)).timeout(LIMIT).await;
    assert_eq!(
        r.unwrap().1,
        mapped(tx.local_addr().unwrap().port()),
        "a v4 sender seen from a dual-stack socket"
    );
    let ours = errno(rx6.send_to(b"6to4".to_vec(), rx_addr).await.0);
    let theirs = errno(std_rx6.send_to(b"6to4", rx_addr));
    assert_eq!(
        ours, theirs,
        "send_to a v4 address from a dual-stack socket"
    );
    if ours.is_ok() {
        let mut from = Vec::new();
        for _ in 0..2 {
            let (r, _) = rx.recv_from(Vec::with_capacity(8)).timeout(LIMIT).await;
            from.push(r.unwrap().1);
        }
        from.sort();
        let mut want = vec![v4(port6), v4(std_port6)];
        want.sort();
        assert_eq!(from, want, "senders of the 6-to-4 datagrams");
    }
}

/// Expected: UDP `send_to`/`recv_from` give what std's give for the same
/// input: the same errno for refused destinations (port 0, an IPv6
/// address from an IPv4 socket, broadcast without `SO_BROADCAST`),
/// delivery to `0.0.0.0` as to this host, a long datagram cut to the
/// buffer with its rest discarded, an empty buffer consuming a whole
/// datagram, and v4-mapped sender addresses on a dual-stack socket.
///
/// Why: the native lane builds its own `sockaddr` and `msghdr` inline in
/// the op (`RawAddr`, `MsgRes`) and parses the kernel's answer itself; a
/// wrong length, family or name length shows up as a different errno, a
/// wrong sender, or a datagram read twice.
#[test]
fn udp_datagrams_to_odd_addresses_behave_as_with_std() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let task = rt.handle().spawn_pinned(0, udp_cases()).unwrap();
    common::join_within(&rt, task, Duration::from_secs(40), "the UDP cases");
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// The shard side of `bad_input_gets_the_errors_std_gives`.
async fn bad_input_cases(dir: PathBuf) {
    use std::os::unix::fs::FileExt;
    let path = dir.join("f");
    let f = common::native_io::create_rw(&path).await.unwrap();
    let std_f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let kind = |r: io::Result<usize>| r.map_err(|e| e.kind());
    let errno = |e: io::Error| e.raw_os_error();

    // IOV_MAX one-byte buffers: one writev, one readv, every byte in order.
    let expect: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    let singles: Vec<Vec<u8>> = expect.iter().map(|&b| vec![b]).collect();
    let (n, bufs) = f.write_vectored_at(singles, 0).await;
    assert_eq!((n.unwrap(), bufs.len()), (1024, 1024));
    assert_eq!(std::fs::read(&path).unwrap(), expect);
    let empties: Vec<Vec<u8>> = (0..1024).map(|_| Vec::with_capacity(1)).collect();
    let (n, back) = f.read_vectored_at(empties, 0).await;
    assert_eq!(n.unwrap(), 1024);
    assert!(
        back.iter().zip(&expect).all(|(b, e)| b[..] == [*e]),
        "readv filled the buffers out of order"
    );

    // One buffer more than IOV_MAX: refused (InvalidInput, preadv's
    // EINVAL) or cut to IOV_MAX (as std's write_vectored does), never
    // more; every buffer comes back as it was.
    let many: Vec<Vec<u8>> = (0..1025).map(|_| vec![0xEEu8]).collect();
    let (n, many) = f.write_vectored_at(many, 0).await;
    assert!(
        many.len() == 1025 && many.iter().all(|b| b[..] == [0xEEu8]),
        "the buffers came back changed"
    );
    match n {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                expect,
                "a refused writev wrote"
            );
        }
        Ok(n) => assert!(n <= 1024, "{n} bytes written from 1,025 one-byte buffers"),
    }

    // Offsets at the edge of i64: what pread/pwrite say on the same file.
    let edge = i64::MAX as u64;
    for off in [edge - 8, edge - 1, edge, edge + 1, u64::MAX - 1, u64::MAX] {
        let ours = kind(f.read_at(vec![0u8; 8], off).await.0);
        let theirs = kind(std_f.read_at(&mut [0u8; 8], off));
        assert_eq!(ours, theirs, "read_at {off}");
        let ours = f
            .read_exact_at(vec![0u8; 8], off)
            .await
            .0
            .map_err(|e| e.kind());
        let theirs = std_f
            .read_exact_at(&mut [0u8; 8], off)
            .map_err(|e| e.kind());
        assert_eq!(ours, theirs, "read_exact_at {off}");
    }
    for off in [edge, edge + 1, u64::MAX] {
        let ours = kind(f.write_at(b"abcd".to_vec(), off).await.0);
        let theirs = kind(std_f.write_at(b"abcd", off));
        assert_eq!(ours, theirs, "write_at {off}");
        let ours = f
            .write_all_at(b"abcd".to_vec(), off)
            .await
            .0
            .map_err(|e| e.kind());
        let theirs = std_f.write_all_at(b"abcd", off).map_err(|e| e.kind());
        assert_eq!(ours, theirs, "write_all_at {off}");
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        1024,
        "a refused write grew the file"
    );

    // Paths with a NUL byte: InvalidInput, and nothing touched on disk.
    let nul = dir.join("bad\0name");
    let open_nul = OpenOptions::new().write(true).create(true).open(&nul).await;
    let kinds = [
        ("create_dir", nfs::create_dir(&nul).await.err()),
        ("remove_dir", nfs::remove_dir(&nul).await.err()),
        ("remove_file", nfs::remove_file(&nul).await.err()),
        ("metadata", nfs::metadata(&nul).await.err()),
        ("symlink_metadata", nfs::symlink_metadata(&nul).await.err()),
        ("rename to", nfs::rename(&path, &nul).await.err()),
        ("rename from", nfs::rename(&nul, &path).await.err()),
        ("open with create", open_nul.err()),
        ("UnixListener::bind", UnixListener::bind(&nul).err()),
        ("UnixStream::connect", UnixStream::connect(&nul).await.err()),
    ];
    for (what, e) in kinds {
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::InvalidInput), "{what}");
    }
    assert!(path.exists(), "a rename to a bad name moved the file");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "a bad path created something"
    );

    // Fds of the wrong kind: the errno std's calls get on the same fd.
    let dir_std = std::fs::File::open(&dir).unwrap();
    let dir_file = File::from(dir_std.try_clone().unwrap());
    let ours = dir_file.read_at(vec![0u8; 8], 0).await.0.map_err(errno);
    let theirs = dir_std.read_at(&mut [0u8; 8], 0).map_err(errno);
    assert_eq!(ours, theirs, "read_at on a directory");
    let path_std = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&path)
        .unwrap();
    let path_file = File::from(path_std.try_clone().unwrap());
    let ours = (
        path_file.read_at(vec![0u8; 8], 0).await.0.map_err(errno),
        path_file.write_at(b"x".to_vec(), 0).await.0.map_err(errno),
        path_file.sync_all().await.map_err(errno),
    );
    let theirs = (
        path_std.read_at(&mut [0u8; 8], 0).map_err(errno),
        path_std.write_at(b"x", 0).map_err(errno),
        path_std.sync_all().map_err(errno),
    );
    assert_eq!(
        ours, theirs,
        "(read_at, write_at, sync_all) on an O_PATH fd"
    );
}

/// Expected: bad input gets the `io::Error` std gives for the same input,
/// never a panic and never a side effect: vectored lists at and past
/// `IOV_MAX` (1,024 buffers work in order; 1,025 are refused or cut, never
/// overrun, all buffers returned intact), offsets at and past `i64::MAX`
/// (same error kinds as `pread`/`pwrite` on the same file, nothing written),
/// paths with an inner NUL for every path op and for Unix sockets
/// (`InvalidInput`, nothing created, moved or removed), and fds of the
/// wrong kind (a directory, an `O_PATH` fd: the same errno as std).
///
/// Why: each of these passes through ringlane's own checks (`at`, the
/// iovec limits, `c_path`, `RawAddr::from_unix`) before the kernel's; a
/// check that is missing, off by one, or different from the kernel's shows
/// up as another error, a panic, or a file changed by a refused call.
#[test]
fn bad_input_gets_the_errors_std_gives() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("bad-input");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, bad_input_cases(dir.0.clone()))
        .unwrap();
    common::join_within(&rt, task, Duration::from_secs(40), "the bad-input cases");
    drop(rt);
    drop(dir);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
