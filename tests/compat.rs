//! The compat lane runs Tokio-ecosystem code unmodified on shards:
//! `tokio::io` utilities, `tokio_util` codecs, split halves, and Tokio's
//! stream semantics (EOF, reset, shutdown, partial I/O), with fd counts.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::codec::{Framed, LengthDelimitedCodec, LinesCodec};

use ringlane::compat::{TcpListener, TcpStream, UnixStream};

static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// This process's open fds and what they point at.
fn fds() -> Vec<(String, String)> {
    let mut v: Vec<_> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path()).map(|p| p.display().to_string());
            (
                e.file_name().to_string_lossy().into_owned(),
                target.unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs `f` on shard 0 of a fresh one-shard runtime, then checks that the
/// process has as many fds as before.
fn on_shard<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let _serial = SERIAL.lock();
    common::fd_count(); // wait until the fd table has settled
    let before = fds();
    let rt = common::runtime(1);
    let task = rt.handle().spawn_local_on(0, f).unwrap();
    let out = common::join_within(&rt, task, Duration::from_secs(60), "the shard task");
    drop(rt);
    let after = fds();
    assert_eq!(
        after.len(),
        before.len(),
        "an fd leaked: {before:?} -> {after:?}"
    );
    out
}

#[test]
fn tokio_io_copy_bufreader_lines_and_copy_bidirectional_run_unmodified() {
    let lines = on_shard(|| async {
        let listener = TcpListener::bind(localhost()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An echo server built from tokio::io::copy over split halves.
        let server = ringlane::spawn_local(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = conn.split();
            tokio::io::copy(&mut r, &mut w).await.unwrap()
        })
        .unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (r, mut w) = client.into_split();
        let writer = ringlane::spawn_local(async move {
            for i in 0..1000 {
                w.write_all(format!("line {i}\n").as_bytes()).await.unwrap();
            }
            // Dropping the owned write half shuts the write side down.
        })
        .unwrap();
        let mut got = Vec::new();
        let mut lines = BufReader::new(r).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            got.push(line);
        }
        writer.await.unwrap();
        let copied = server.await.unwrap();
        assert_eq!(copied, got.iter().map(|l| l.len() as u64 + 1).sum::<u64>());
        got
    });
    assert_eq!(lines.len(), 1000);
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i}"))
    );

    let moved = on_shard(|| async {
        // copy_bidirectional between two Unix pairs, as a proxy would.
        let (mut a, mut proxy_a) = UnixStream::pair().unwrap();
        let (mut proxy_b, mut b) = UnixStream::pair().unwrap();
        let proxy = ringlane::spawn_local(async move {
            tokio::io::copy_bidirectional(&mut proxy_a, &mut proxy_b)
                .await
                .unwrap()
        })
        .unwrap();
        a.write_all(&[1u8; 100_000]).await.unwrap();
        b.write_all(&[2u8; 50_000]).await.unwrap();
        let (mut x, mut y) = (vec![0u8; 100_000], vec![0u8; 50_000]);
        b.read_exact(&mut x).await.unwrap();
        a.read_exact(&mut y).await.unwrap();
        assert!(x.iter().all(|&v| v == 1) && y.iter().all(|&v| v == 2));
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        proxy.await.unwrap()
    });
    assert_eq!(moved, (100_000, 50_000));
}

#[test]
fn tokio_util_framed_lines_and_length_delimited_codecs_round_trip() {
    let (lines, frames) = on_shard(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        let mut left = Framed::new(a, LinesCodec::new());
        let mut right = Framed::new(b, LinesCodec::new());
        let echo = ringlane::spawn_local(async move {
            while let Some(line) = right.next().await {
                right.send(line.unwrap().to_uppercase()).await.unwrap();
            }
        })
        .unwrap();
        let mut lines = Vec::new();
        for word in ["alpha", "beta", "gamma"] {
            left.send(word).await.unwrap();
            lines.push(left.next().await.unwrap().unwrap());
        }
        drop(left);
        echo.await.unwrap();

        let (a, b) = UnixStream::pair().unwrap();
        let mut tx = Framed::new(a, LengthDelimitedCodec::new());
        let mut rx = Framed::new(b, LengthDelimitedCodec::new());
        let sender = ringlane::spawn_local(async move {
            for n in [0usize, 1, 1000, 200_000] {
                tx.send(bytes::Bytes::from(vec![n as u8; n])).await.unwrap();
            }
        })
        .unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = rx.next().await {
            let frame = frame.unwrap();
            assert!(frame.iter().all(|&x| x == frame.len() as u8));
            frames.push(frame.len());
        }
        sender.await.unwrap();
        (lines, frames)
    });
    assert_eq!(lines, ["ALPHA", "BETA", "GAMMA"]);
    assert_eq!(frames, [0, 1, 1000, 200_000]);
}

#[test]
fn stream_semantics_match_tokio_eof_reset_shutdown_partial_and_zero_length() {
    on_shard(|| async {
        // Read after the peer closed returns 0, every time.
        let (mut a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut buf = [0u8; 8];
        assert_eq!(a.read(&mut buf).await.unwrap(), 0);
        assert_eq!(a.read(&mut buf).await.unwrap(), 0);
        // Zero-length reads and writes complete at once.
        let (mut c, mut d) = UnixStream::pair().unwrap();
        assert_eq!(c.read(&mut []).await.unwrap(), 0);
        assert_eq!(c.write(&[]).await.unwrap(), 0);
        // Partial reads: a small buffer takes what fits, the rest stays.
        d.write_all(b"0123456789").await.unwrap();
        let mut small = [0u8; 4];
        assert_eq!(c.read(&mut small).await.unwrap(), 4);
        let mut rest = [0u8; 6];
        c.read_exact(&mut rest).await.unwrap();
        assert_eq!((&small, &rest), (b"0123", b"456789"));
        // Shutdown: the peer reads end of stream but can still write back.
        c.shutdown().await.unwrap();
        assert_eq!(d.read(&mut buf).await.unwrap(), 0);
        d.write_all(b"late").await.unwrap();
        c.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"late");

        // Write after the peer reset returns an error instead of hanging.
        let listener = TcpListener::bind(localhost()).await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let server = server.into_std().unwrap();
        // SO_LINGER with a zero timeout: close sends RST.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the option value is a live `linger` of the size passed.
        let r = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&server),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        drop(server);
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = client.write_all(&[0u8; 65536]).await {
                failed = Some(e.kind());
                break;
            }
        }
        assert!(
            matches!(
                failed,
                Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe)
            ),
            "write after reset: {failed:?}"
        );
    });
}

#[test]
fn split_halves_wait_at_once_from_two_tasks_on_two_shards() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let (a, b) = UnixStream::pair().unwrap();
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    // Both readers wait first (armed on two shards), then the writers go.
    let reader_a = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut got = vec![0u8; 300_000];
            ar.read_exact(&mut got).await.map(|_| got)
        })
        .unwrap();
    let reader_b = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut got = vec![0u8; 300_000];
            br.read_exact(&mut got).await.map(|_| got)
        })
        .unwrap();
    common::until_parked(&rt.handle(), 0);
    common::until_parked(&rt.handle(), 1);
    let writer_a = rt
        .handle()
        .spawn_pinned(1, async move { aw.write_all(&vec![3u8; 300_000]).await })
        .unwrap();
    let writer_b = rt
        .handle()
        .spawn_pinned(0, async move { bw.write_all(&vec![4u8; 300_000]).await })
        .unwrap();
    let limit = Duration::from_secs(30);
    common::join_within(&rt, writer_a, limit, "writer a").unwrap();
    common::join_within(&rt, writer_b, limit, "writer b").unwrap();
    let got_a = common::join_within(&rt, reader_a, limit, "reader a").unwrap();
    let got_b = common::join_within(&rt, reader_b, limit, "reader b").unwrap();
    assert!(got_a.iter().all(|&x| x == 4), "a reads what b wrote");
    assert!(got_b.iter().all(|&x| x == 3), "b reads what a wrote");
}

#[test]
fn a_thousand_concurrent_connections_on_one_shard() {
    let total = on_shard(|| async {
        let listener = TcpListener::bind(localhost()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = ringlane::spawn_local(async move {
            let mut handlers = Vec::new();
            for _ in 0..1000 {
                let (mut conn, _) = listener.accept().await.unwrap();
                handlers.push(
                    ringlane::spawn_local(async move {
                        let mut buf = [0u8; 16];
                        let n = conn.read(&mut buf).await.unwrap();
                        conn.write_all(&buf[..n]).await.unwrap();
                    })
                    .unwrap(),
                );
            }
            for h in handlers {
                h.await.unwrap();
            }
        })
        .unwrap();
        let mut clients = Vec::new();
        for i in 0..1000u32 {
            clients.push(
                ringlane::spawn_local(async move {
                    let mut s = TcpStream::connect(addr).await.unwrap();
                    s.write_all(&i.to_le_bytes()).await.unwrap();
                    let mut back = [0u8; 4];
                    s.read_exact(&mut back).await.unwrap();
                    assert_eq!(u32::from_le_bytes(back), i);
                    1u32
                })
                .unwrap(),
            );
        }
        let mut total = 0;
        for c in clients {
            total += c.await.unwrap();
        }
        server.await.unwrap();
        total
    });
    assert_eq!(total, 1000);
}

#[test]
fn lanes_convert_both_ways_on_one_socket() {
    on_shard(|| async {
        let (a, b) = UnixStream::pair().unwrap();
        let native = a.into_native().unwrap();
        native.write_all(b"from native".to_vec()).await.0.unwrap();
        let mut b = b;
        let mut got = [0u8; 11];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"from native");
        let mut back = native.into_compat().unwrap();
        b.write_all(b"to compat").await.unwrap();
        let mut got = [0u8; 9];
        back.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"to compat");
    });
}

#[test]
fn udp_datagrams_and_futures_io_traits_work_on_shards() {
    on_shard(|| async {
        use ringlane::compat::UdpSocket;
        let a = UdpSocket::bind(localhost()).await.unwrap();
        let b = UdpSocket::bind(localhost()).await.unwrap();
        // b waits first (readiness armed), then a sends.
        let b_addr = b.local_addr().unwrap();
        let waiter = ringlane::spawn_local(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            for _ in 0..10 {
                let (n, _) = b.recv_from(&mut buf).await.unwrap();
                got.push(buf[..n].to_vec());
            }
            got
        })
        .unwrap();
        ringlane::yield_now().await;
        for i in 0..10u8 {
            a.send_to(&vec![i; i as usize], b_addr).await.unwrap();
        }
        let got = waiter.await.unwrap();
        assert_eq!(
            got,
            (0..10u8).map(|i| vec![i; i as usize]).collect::<Vec<_>>()
        );

        // The futures::io traits (feature `futures-io`) on the same streams.
        let (x, y) = UnixStream::pair().unwrap();
        let mut x = x;
        let mut y = y;
        futures_io_write_all(&mut x, b"futures-io").await;
        let mut buf = [0u8; 10];
        let mut got = 0;
        while got < 10 {
            got += std::future::poll_fn(|cx| {
                futures_io::AsyncRead::poll_read(std::pin::Pin::new(&mut y), cx, &mut buf[got..])
            })
            .await
            .unwrap();
        }
        assert_eq!(&buf, b"futures-io");
    });
}

async fn futures_io_write_all(w: &mut UnixStream, mut data: &[u8]) {
    while !data.is_empty() {
        let n = std::future::poll_fn(|cx| {
            futures_io::AsyncWrite::poll_write(std::pin::Pin::new(&mut *w), cx, data)
        })
        .await
        .unwrap();
        data = &data[n..];
    }
}

/// A compat stream handed to a Tokio task is polled outside the runtime:
/// its waits are armed by a helper on its home shard. Dropping a stream
/// whose wait is forwarded cancels that wait, so the socket really closes
/// (its peer reads end of stream).
#[test]
fn a_compat_stream_polled_from_a_tokio_task_waits_through_its_home_shard() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let streams = rt
        .block_on(
            rt.handle()
                .spawn_pinned(1, async {
                    let (a, b) = UnixStream::pair().unwrap();
                    let (c, d) = UnixStream::pair().unwrap();
                    (a, b, c, d)
                })
                .unwrap(),
        )
        .unwrap();
    let (mut a, mut b, c, d) = streams;
    let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    tokio_rt.block_on(async move {
        let reader = tokio::spawn(async move {
            let mut got = [0u8; 5];
            a.read_exact(&mut got).await.map(|_| got)
        });
        tokio::time::sleep(Duration::from_millis(20)).await; // the read waits
        b.write_all(b"hello").await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("a forwarded wait was never woken")
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"hello");

        let mut c = c;
        let pending = tokio::time::timeout(Duration::from_millis(20), c.read(&mut [0u8; 1])).await;
        assert!(pending.is_err(), "nothing was written to c");
        drop(c);
        let mut d = d.into_native().unwrap();
        let (n, _) = ringlane_read_on_tokio(&mut d).await;
        assert_eq!(n, 0, "c's socket stayed open after it was dropped");
    });
}

/// Reads `d` with a blocking std read on a helper thread (5 s limit).
async fn ringlane_read_on_tokio(d: &mut ringlane::native::net::UnixStream) -> (usize, ()) {
    use std::os::fd::AsRawFd;
    let fd = d.as_raw_fd();
    let n = tokio::task::spawn_blocking(move || {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 5000) };
        assert_eq!(ready, 1, "the peer never saw end of stream");
        let mut b = [0u8; 1];
        // SAFETY: reading into a local buffer from an open fd.
        unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) as usize }
    })
    .await
    .unwrap();
    (n, ())
}
