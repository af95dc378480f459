//! A zero-copy send whose bytes the kernel has taken (its first CQE) but
//! whose notification waits on the network (the peer's window is shut): the
//! socket's fd is not held open by it once its stream is dropped.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::TcpStream;

use common::fixed_io::on_shard;
use common::multishot_io::{set_int_opt, tiny_window_listener, unsent_bytes};
use common::native_io::SERIAL;
use common::{LIMIT, fd_count};

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only looks the number up.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Expected: dropping the stream closes its socket (as `std`'s close
/// orphans a socket whose send queue is stuck, for the kernel to reap),
/// although a zero-copy send on it still waits for its notification.
///
/// Why it may fail: the send's resources held the stream's fd until the
/// notification, which comes only once the peer acknowledges the bytes:
/// with a peer that never reads, the fd (and the connection) stayed open
/// for as long as the peer kept the window shut.
#[test]
fn a_zero_copy_send_waiting_for_its_notification_does_not_hold_the_socket_open() {
    let _serial = SERIAL.lock();
    let before = fd_count();
    let rt = common::runtime(1);
    let (listener, addr) = tiny_window_listener();
    let (first_cqe_seen, open_after_drop, peer) = on_shard(&rt, 0, LIMIT * 2, async move {
        let s = TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap(); // never reads
        set_int_opt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20);
        let (n, _) = s.write_all(vec![0xAB; 256 << 10]).timeout(LIMIT).await;
        n.unwrap();
        ringlane::time::sleep(Duration::from_millis(20)).await;
        assert!(unsent_bytes(s.as_raw_fd()) > 0, "the peer's window is shut");
        // The kernel takes the bytes at once (the first CQE); the
        // notification waits for the peer, so the send does not end.
        let send =
            ringlane::time::timeout(Duration::from_millis(200), s.write_zc(vec![0xCD; 16 << 10]));
        let first_cqe_seen = send.await.is_err();
        let fd = s.as_raw_fd();
        drop(s);
        // Closing takes a CLOSE op of the shard's ring: give it time.
        let mut open = true;
        for _ in 0..200 {
            ringlane::time::sleep(Duration::from_millis(10)).await;
            open = fd_is_open(fd);
            if !open {
                break;
            }
        }
        (first_cqe_seen, open, peer)
    });
    assert!(first_cqe_seen, "the send ended: the window was not shut");
    assert!(
        !open_after_drop,
        "the dropped stream's socket stayed open behind its zero-copy send"
    );
    // The peer goes: our orphaned socket is reset, its pages are freed, and
    // the notification ends the send before the runtime shuts down.
    drop(peer);
    std::thread::sleep(Duration::from_millis(100));
    drop(rt);
    assert_eq!(fd_count(), before, "an fd leaked");
}
