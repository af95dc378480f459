//! UDP and `AsyncFd` against Tokio's: empty datagrams, truncation, refused
//! ports, Unix datagrams and pipes.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use tokio::io::unix::AsyncFd as TokioAsyncFd;

use ringlane::compat::{AsyncFd, UdpSocket};

use common::LIMIT;
use common::compat_io::*;

/// A UDP port nobody listens on (bound, then closed).
fn closed_udp_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// The same UDP steps on either `UdpSocket` type (their methods share
/// names and shapes): `$rx` and `$tx` bound on localhost, `$refused`
/// connected to a closed port. Evaluates to the log of what each step gave.
macro_rules! udp_scenario {
    ($rx:ident, $tx:ident, $refused:ident) => {{
        let mut log: Vec<String> = Vec::new();
        let to = $rx.local_addr().unwrap();
        let from_tx = $tx.local_addr().unwrap();
        let mut buf = [0u8; 16];
        // The receive waits first; an empty datagram must wake it.
        let (got, sent) = tokio::join!(biased; $rx.recv_from(&mut buf), $tx.send_to(b"", to));
        log.push(format!(
            "an empty datagram to a waiting recv_from: {:?}, sent {:?}",
            got.map(|(n, from)| (n, from == from_tx)).map_err(|e| e.kind()),
            sent.map_err(|e| e.kind())
        ));
        let datagrams: [&[u8]; 3] = [b"0123456789abcdef", b"x", b"tail"];
        for d in datagrams {
            $tx.send_to(d, to).await.unwrap();
        }
        let mut small = [0u8; 4];
        let r = $rx.recv_from(&mut small).await;
        log.push(format!(
            "16 bytes into 4: {:?} {:?}",
            r.map(|(n, _)| n).map_err(|e| e.kind()),
            small
        ));
        let r = $rx.recv_from(&mut []).await;
        log.push(format!(
            "a datagram into no room: {:?}",
            r.map(|(n, _)| n).map_err(|e| e.kind())
        ));
        let r = $rx.recv_from(&mut buf).await;
        log.push(format!(
            "the next one: {:?} {:?}",
            r.map(|(n, _)| n).map_err(|e| e.kind()),
            &buf[..4]
        ));
        // The ICMP error is the only event: it must wake the waiting receive.
        let (got, sent) =
            tokio::join!(biased; $refused.recv_from(&mut buf), $refused.send(b"ping"));
        log.push(format!(
            "a recv_from waiting on a socket connected to a closed port: {:?}, send {:?}",
            got.map(|(n, _)| n).map_err(|e| e.kind()),
            sent.map_err(|e| e.kind())
        ));
        log
    }};
}

/// UDP as in Tokio: an empty datagram is a message that wakes a waiting
/// `recv_from` with length 0; a datagram larger than the buffer is
/// truncated and its tail discarded (the next receive gets the next
/// datagram); a receive into a zero-length buffer consumes a datagram; and
/// on a socket connected to a closed port the ICMP error (`POLLERR`, no
/// data) must wake a waiting `recv_from`, which fails with
/// `ConnectionRefused` instead of hanging. Compared with
/// `tokio::net::UdpSocket` line by line.
#[test]
fn udp_empty_datagrams_truncation_and_refused_ports_match_tokio() {
    let theirs = on_tokio(async {
        let rx = tokio::net::UdpSocket::bind(localhost()).await.unwrap();
        let tx = tokio::net::UdpSocket::bind(localhost()).await.unwrap();
        let refused = tokio::net::UdpSocket::bind(localhost()).await.unwrap();
        refused.connect(closed_udp_port()).await.unwrap();
        udp_scenario!(rx, tx, refused)
    });
    let ours = on_ringlane(|| async {
        let rx = UdpSocket::bind(localhost()).await.unwrap();
        let tx = UdpSocket::bind(localhost()).await.unwrap();
        let refused = UdpSocket::bind(localhost()).await.unwrap();
        refused.connect(closed_udp_port()).await.unwrap();
        udp_scenario!(rx, tx, refused)
    });
    assert_eq!(ours, theirs, "the compat lane differs from tokio::net");
    assert_eq!(
        ours,
        vec![
            "an empty datagram to a waiting recv_from: Ok((0, true)), sent Ok(0)",
            "16 bytes into 4: Ok(4) [48, 49, 50, 51]",
            "a datagram into no room: Ok(0)",
            "the next one: Ok(4) [116, 97, 105, 108]",
            "a recv_from waiting on a socket connected to a closed port: Err(ConnectionRefused), send Ok(4)",
        ]
    );
}

/// The same pipe steps on either `AsyncFd` type (`$Fd`, whose guards
/// share `try_io`'s shape). Evaluates to a future of the log.
macro_rules! pipe_scenario {
    ($Fd:ident) => {
        async {
            let mut log: Vec<String> = Vec::new();
            // 256 KiB through a 64 KiB pipe, both ends waiting on each other,
            // then the writer closes.
            let (r, w) = nonblocking_pipe();
            let r = $Fd::new(std::fs::File::from(r))?;
            let w = $Fd::new(std::fs::File::from(w))?;
            let data = pattern(256 << 10, 5);
            let mut got = Vec::new();
            let (wrote, read) = tokio::join!(
                async {
                    let w = w; // dropped at the end: the reader's end of file
                    let mut rest = &data[..];
                    while !rest.is_empty() {
                        let mut guard = w.writable().await?;
                        if let Ok(n) = guard.try_io(|fd| Write::write(&mut fd.get_ref(), rest)) {
                            rest = &rest[n?..];
                        }
                    }
                    Ok::<(), io::Error>(())
                },
                async {
                    let mut buf = [0u8; 8192];
                    loop {
                        let mut guard = r.readable().await?;
                        match guard.try_io(|fd| Read::read(&mut fd.get_ref(), &mut buf)) {
                            Ok(Ok(0)) => break,
                            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                            Ok(Err(e)) => return Err(e),
                            Err(_would_block) => {}
                        }
                    }
                    Ok::<(), io::Error>(())
                },
            );
            log.push(format!(
                "256 KiB through a pipe, then the writer closes: write {:?}, read {:?}, intact {}",
                wrote.map_err(|e| e.kind()),
                read.map_err(|e| e.kind()),
                got == data
            ));
            // A write waits on a full pipe; then its reader closes.
            let (r, w) = nonblocking_pipe();
            let r = std::fs::File::from(r);
            let w = $Fd::new(std::fs::File::from(w))?;
            let chunk = [7u8; 4096];
            let mut filled = 0usize;
            loop {
                let mut guard = w.writable().await?;
                match guard.try_io(|fd| Write::write(&mut fd.get_ref(), &chunk)) {
                    Ok(n) => filled += n?,
                    Err(_would_block) => break,
                }
            }
            log.push(format!("filled the pipe before waiting: {}", filled > 0));
            let (res, ()) = tokio::join!(
                biased;
                async {
                    loop {
                        let mut guard = w.writable().await?;
                        if let Ok(res) = guard.try_io(|fd| Write::write(&mut fd.get_ref(), &chunk)) {
                            return res;
                        }
                    }
                },
                async { drop(r) },
            );
            log.push(format!(
                "a write waiting on a full pipe whose reader then closes: {:?}",
                res.map_err(|e| e.kind())
            ));
            Ok::<_, io::Error>(log)
        }
    };
}

/// `AsyncFd` on fds the user owns, as in Tokio:
/// (1) a connected Unix datagram socket whose receiver is not connected
/// back is limited by the receiver's queue (`max_dgram_qlen`), and its
/// writability comes back only through the kernel's peer-wake relay: a
/// sender on shard 0 parks on the full queue (checked), a receiver on shard
/// 1 then drains 2,000 datagrams, which must arrive in order; a 1,000-byte
/// datagram is truncated to the 256-byte buffer and an empty datagram
/// (length 0) ends the stream;
/// (2) a pipe, compared with `tokio::io::unix::AsyncFd`: 256 KiB through
/// it with both ends waiting, end of file when the writer closes, and a
/// write parked on a full pipe gets `BrokenPipe` when the reader closes
/// (`POLLERR` on a direction that asked only for `POLLOUT`).
#[test]
#[allow(deprecated)] // Tokio 1.54 deprecates `AsyncFd::new`; the comparison still uses it
fn async_fd_on_unix_datagrams_and_pipes_waits_and_fails_as_on_tokio() {
    const COUNT: usize = 2000;
    fn dgram(i: usize) -> Vec<u8> {
        let mut v = (i as u32).to_le_bytes().to_vec();
        v.extend(std::iter::repeat_n((i % 251) as u8, 60 + i % 100));
        v
    }
    let rt = common::runtime(2);
    let h = rt.handle();
    let path = std::env::temp_dir().join(format!("ringlane-adv-dgram-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let receiver = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
    sender.connect(&path).unwrap();
    receiver.set_nonblocking(true).unwrap();
    sender.set_nonblocking(true).unwrap();
    let send = h
        .spawn_pinned(0, async move {
            let fd = AsyncFd::new(sender)?;
            let mut blocked = 0usize;
            for i in 0..COUNT + 2 {
                let d = if i < COUNT {
                    dgram(i)
                } else if i == COUNT {
                    vec![9u8; 1000] // truncated by the receiver's buffer
                } else {
                    Vec::new() // the end marker
                };
                loop {
                    let mut guard = fd.writable().await?;
                    match guard.try_io(|fd| fd.get_ref().send(&d)) {
                        Ok(n) => {
                            assert_eq!(n?, d.len());
                            break;
                        }
                        Err(_would_block) => blocked += 1,
                    }
                }
            }
            Ok::<_, io::Error>(blocked)
        })
        .unwrap();
    common::until_parked(&h, 0);
    assert!(
        !send.is_finished(),
        "the receiver's queue never filled: the sender never waited"
    );
    let recv = h
        .spawn_pinned(1, async move {
            let fd = AsyncFd::new(receiver)?;
            let mut buf = [0u8; 256];
            let mut next = 0usize;
            loop {
                let mut guard = fd.readable().await?;
                let n = match guard.try_io(|fd| fd.get_ref().recv(&mut buf)) {
                    Ok(n) => n?,
                    Err(_would_block) => continue,
                };
                if next < COUNT {
                    assert_eq!(&buf[..n], &dgram(next)[..], "datagram {next}");
                } else if next == COUNT {
                    assert_eq!(n, 256, "a 1000-byte datagram into 256 bytes");
                } else {
                    assert_eq!(n, 0, "the empty datagram");
                    break;
                }
                next += 1;
            }
            Ok::<_, io::Error>(next)
        })
        .unwrap();
    let blocked = common::join_within(&rt, send, LIMIT, "the sender on a full queue").unwrap();
    let received = common::join_within(&rt, recv, LIMIT, "the draining receiver").unwrap();
    assert!(blocked > 0);
    assert_eq!(received, COUNT + 1);
    drop(rt);
    let _ = std::fs::remove_file(path);

    let theirs = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(LIMIT, pipe_scenario!(TokioAsyncFd))
                .await
                .expect("the Tokio pipe run did not finish")
        })
        .unwrap();
    let ours = on_ringlane(|| pipe_scenario!(AsyncFd)).unwrap();
    assert_eq!(ours, theirs, "ringlane's AsyncFd differs from Tokio's");
    assert_eq!(
        ours,
        vec![
            "256 KiB through a pipe, then the writer closes: write Ok(()), read Ok(()), intact true",
            "filled the pipe before waiting: true",
            "a write waiting on a full pipe whose reader then closes: Err(BrokenPipe)",
        ]
    );
}
