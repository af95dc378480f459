//! Write events the kernel reports and the fd does not bear out (readiness
//! invariant 6). A unix datagram socket's send that fails on a full peer
//! frees the buffer it took, which wakes the socket's own waiters with
//! `POLLOUT`; a poll op posts that wake-up's mask as its CQE. Believed, a
//! sender blocked on a full peer writes, fails and wakes itself again,
//! forever. Epoll asks the fd again, so Tokio's sender sleeps: so must
//! ours, on a shard and from a Tokio task.

mod common;

use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use ringlane::compat::{AsyncFd, UnixDatagram};

use common::LIMIT;

const COUNT: u32 = 200;

/// Whether a peer's queue fills (at `net.unix.max_dgram_qlen` datagrams)
/// well before the sender's send buffer does: the failed sends under test
/// are those on a full peer. A host that raised the limit (systemd sets
/// 512 in the host's namespace) blocks the sender on its own buffer
/// instead, whose failed sends take no buffer and wake nobody: the test
/// says so and skips.
fn peer_queue_fills_first(test: &str) -> bool {
    let qlen = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match qlen {
        Some(n) if n < 64 => true,
        other => {
            eprintln!(
                "{test}: skipped: net.unix.max_dgram_qlen is {other:?} (needs < 64): the sender would block on its own send buffer, not on a full peer"
            );
            false
        }
    }
}

/// A bound receiver nobody reads yet (its queue fills after
/// `max_dgram_qlen` datagrams) and the path a sender connects to.
fn receiver(name: &str) -> (StdUnixDatagram, PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "ringlane-write-events-{name}-{}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    (StdUnixDatagram::bind(&path).unwrap(), path)
}

/// Datagram `i`: its number, then a few bytes.
fn dgram(i: u32) -> Vec<u8> {
    let mut v = i.to_le_bytes().to_vec();
    v.extend_from_slice(&[i as u8; 12]);
    v
}

/// Waits until the sender (on shard 0) is blocked: the shard sleeps with
/// the sending task unfinished. The receiver takes one datagram: the
/// sender's poll, armed since it blocked, reports the room, the sender
/// fills it and fails its next send with that poll still armed. Over the
/// next 300 ms the shard must stay asleep: a handful of wake-ups at most,
/// where a sender that believed its failed sends' wake-ups woke it half a
/// million times. Then the receiver drains: every datagram arrives once,
/// in order, and the sender ends.
fn sender_sleeps_until_the_peer_drains(
    rt: &ringlane::Runtime,
    rx: StdUnixDatagram,
    path: PathBuf,
    sender: ringlane::JoinHandle<std::io::Result<()>>,
) {
    let h = rt.handle();
    common::until_parked(&h, 0);
    assert!(
        !sender.is_finished(),
        "the receiver's queue never filled: the sender never waited"
    );
    rx.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], dgram(0).as_slice(), "datagram 0");
    common::until_parked(&h, 0);
    let before = h.shard_stats(0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after = h.shard_stats(0).unwrap();
    let polls = after.tasks_polled - before.tasks_polled;
    let parks = after.parks - before.parks;
    assert!(
        polls < 20 && parks < 20,
        "a sender blocked on a full peer spun: {polls} task polls and {parks} parks in 300 ms"
    );
    for i in 1..COUNT {
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], dgram(i).as_slice(), "datagram {i}");
    }
    common::join_within(rt, sender, LIMIT, "the sender after the peer drained").unwrap();
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_sender_blocked_on_a_full_unix_datagram_peer_sleeps_until_it_drains() {
    if !peer_queue_fills_first(
        "a_sender_blocked_on_a_full_unix_datagram_peer_sleeps_until_it_drains",
    ) {
        return;
    }
    let rt = common::runtime(1);
    let (rx, path) = receiver("compat");
    let to = path.clone();
    let sender = rt
        .handle()
        .spawn_pinned(0, async move {
            let s = UnixDatagram::unbound()?;
            s.connect(&to)?;
            for i in 0..COUNT {
                assert_eq!(s.send(&dgram(i)).await?, 16);
            }
            Ok(())
        })
        .unwrap();
    sender_sleeps_until_the_peer_drains(&rt, rx, path, sender);
}

#[test]
fn an_async_fd_sender_blocked_on_a_full_unix_datagram_peer_sleeps_until_it_drains() {
    if !peer_queue_fills_first(
        "an_async_fd_sender_blocked_on_a_full_unix_datagram_peer_sleeps_until_it_drains",
    ) {
        return;
    }
    let rt = common::runtime(1);
    let (rx, path) = receiver("async-fd");
    let tx = StdUnixDatagram::unbound().unwrap();
    tx.connect(&path).unwrap();
    tx.set_nonblocking(true).unwrap();
    let sender = rt
        .handle()
        .spawn_pinned(0, async move {
            let fd = AsyncFd::new(tx)?;
            for i in 0..COUNT {
                let d = dgram(i);
                loop {
                    let mut guard = fd.writable().await?;
                    if let Ok(n) = guard.try_io(|fd| fd.get_ref().send(&d)) {
                        assert_eq!(n?, d.len());
                        break;
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    sender_sleeps_until_the_peer_drains(&rt, rx, path, sender);
}

/// From a Tokio task the wait is forwarded to the socket's home shard,
/// whose helper arms a single-shot poll after the task's send failed (the
/// arm asks the fd itself), so no failed send of the task's own lands on
/// it: this sender sleeps with or without the check. The test pins that,
/// should the forwarded wait ever stay armed across sends; the helper
/// checks its event anyway, for a socket others send on meanwhile.
#[test]
fn a_tokio_task_blocked_on_a_full_unix_datagram_peer_sleeps_until_it_drains() {
    if !peer_queue_fills_first(
        "a_tokio_task_blocked_on_a_full_unix_datagram_peer_sleeps_until_it_drains",
    ) {
        return;
    }
    let rt = common::runtime(1);
    let h = rt.handle();
    let (rx, path) = receiver("tokio");
    let to = path.clone();
    // Made on the shard: that is its home, where its waits are forwarded.
    let s = common::on_shard_0(&rt, async move {
        let s = UnixDatagram::unbound().unwrap();
        s.connect(&to).unwrap();
        s
    });
    let tokio_rt = common::compat_io::tokio_rt();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = polls.clone();
    tokio_rt.spawn(async move {
        let mut r = Ok(());
        for i in 0..COUNT {
            // Counts the sender's polls: one per wake-up.
            let d = dgram(i);
            let mut send = std::pin::pin!(s.send(&d));
            let sent = std::future::poll_fn(|cx| {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                send.as_mut().poll(cx)
            })
            .await;
            if let Err(e) = sent {
                r = Err(e);
                break;
            }
        }
        done_tx.send(r).unwrap();
    });
    // Blocked: the polls stop growing while the home shard sleeps.
    let blocked = || {
        common::until_parked(&h, 0);
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let seen = polls.load(std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
            if polls.load(std::sync::atomic::Ordering::Relaxed) == seen {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the Tokio sender never blocked"
            );
        }
    };
    blocked();
    assert!(
        done_rx.try_recv().is_err(),
        "the receiver's queue never filled: the sender never waited"
    );
    // The receiver takes one datagram: the sender fills the room and
    // blocks again.
    rx.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], dgram(0).as_slice(), "datagram 0");
    blocked();
    let (before, shard_before) = (
        polls.load(std::sync::atomic::Ordering::Relaxed),
        h.shard_stats(0).unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let woken = polls.load(std::sync::atomic::Ordering::Relaxed) - before;
    let shard_polls = h.shard_stats(0).unwrap().tasks_polled - shard_before.tasks_polled;
    assert!(
        woken < 20 && shard_polls < 20,
        "a Tokio sender blocked on a full peer spun: {woken} polls of it, {shard_polls} on its home shard in 300 ms"
    );
    for i in 1..COUNT {
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], dgram(i).as_slice(), "datagram {i}");
    }
    done_rx
        .recv_timeout(LIMIT)
        .expect("the Tokio sender never finished after the peer drained")
        .unwrap();
    let _ = std::fs::remove_file(path);
}
