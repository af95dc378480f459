//! Adversarial tests of the compat lane (meant to live at
//! `tests/adv_compat.rs`): the same scenarios on `tokio::net` types and on
//! ringlane's compat types, compared line by line, and the places where the
//! readiness engine's waits cross shards, runtimes and op-table limits.
//!
//! Every wait is bounded (10 s): a lost wake-up fails a test, it never
//! hangs it.

mod common;

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::unix::AsyncFd as TokioAsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};

use ringlane::compat::{AsyncFd, TcpListener, TcpStream, UdpSocket, UnixStream};

/// The bound on every wait that a lost wake-up would turn into a hang.
const LIMIT: Duration = Duration::from_secs(10);

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Deterministic, not periodic on any socket-buffer boundary.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37) ^ (i >> 12) as u8)
        .collect()
}

fn std_tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

/// A connected (client, server) pair of compat TCP streams; on a shard.
async fn ringlane_tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(localhost())?;
    let addr = listener.local_addr()?;
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    Ok((client?, accepted?.0))
}

/// A connected (client, server) pair of `tokio::net` TCP streams.
async fn tokio_tcp_pair() -> io::Result<(tokio::net::TcpStream, tokio::net::TcpStream)> {
    let listener = tokio::net::TcpListener::bind(localhost()).await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    Ok((client?, accepted?.0))
}

/// Closes `s` with `SO_LINGER` 0: the peer gets an RST, not a FIN.
fn reset<S: AsRawFd>(s: S) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the option value is a live `linger` of the size passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
    drop(s);
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a fresh Tokio runtime, at most 10 s.
fn on_tokio<F: Future>(f: F) -> F::Output {
    tokio_rt().block_on(async {
        tokio::time::timeout(LIMIT, f)
            .await
            .expect("the Tokio run of the scenario did not finish within 10 s")
    })
}

/// Runs the future `build` makes on shard 0 of a fresh one-shard runtime,
/// at most 10 s.
fn on_ringlane<B, F>(build: B) -> F::Output
where
    B: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let rt = common::runtime(1);
    let j = rt.handle().spawn_local_on(0, build).unwrap();
    common::join_within(&rt, j, LIMIT, "the ringlane run of the scenario")
}

/// Polls `fut` and reports, through `polled`, that its first poll returned:
/// a deterministic "it waits now" for a task on another executor.
async fn after_first_poll<F: Future>(fut: F, polled: std::sync::mpsc::Sender<()>) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut polled = Some(polled);
    std::future::poll_fn(move |cx| {
        let p = fut.as_mut().poll(cx);
        if let Some(tx) = polled.take() {
            let _ = tx.send(());
        }
        p
    })
    .await
}

/// Fails unless `shard` parks and then stays idle for 200 ms: a shard that
/// keeps polling a task, or keeps waking for CQEs, after every socket went
/// idle is busy-looping on a readiness that was never cleared.
fn assert_quiet(h: &ringlane::Handle, shard: usize, what: &str) {
    common::until_parked(h, shard);
    let before = h.shard_stats(shard).unwrap();
    // A window to observe idleness, not a synchronisation.
    std::thread::sleep(Duration::from_millis(200));
    let after = h.shard_stats(shard).unwrap();
    let polls = after.tasks_polled - before.tasks_polled;
    let parks = after.parks - before.parks;
    assert!(
        polls <= 2 && parks <= 10,
        "{what}: shard {shard} kept busy while idle: {polls} task polls, {parks} wake-ups in 200 ms"
    );
    common::until_parked(h, shard);
}

/// A compat Unix stream made on `shard` whose read waited there once (its
/// multishot poll stays armed on that shard's ring), handed back.
fn armed_on_shard(
    rt: &ringlane::Runtime,
    shard: usize,
    s: std::os::unix::net::UnixStream,
) -> UnixStream {
    let task = rt
        .handle()
        .spawn_pinned(shard, async move {
            let mut s = UnixStream::from_std(s)?;
            let waited =
                ringlane::time::timeout(Duration::from_millis(20), s.read(&mut [0u8; 1])).await;
            assert!(waited.is_err(), "nothing was written: the read must wait");
            Ok::<_, io::Error>(s)
        })
        .unwrap();
    common::join_within(rt, task, LIMIT, "arming a read").unwrap()
}

// ---------------------------------------------------------------------------
// Half-close and reset, side by side with tokio::net
// ---------------------------------------------------------------------------

const RESPONSE: usize = 8 << 20;

/// A client sends a request and half-closes; the server reads it to the
/// end, sees end of stream again, and answers with more than both socket
/// buffers hold while the half-closed client reads. Returns what each step
/// gave.
async fn half_close_scenario<S>(mut client: S, mut server: S) -> Vec<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut log = Vec::new();
    let mut request = Vec::new();
    // The server's read waits first; then the client writes and half-closes.
    let (read, sent) = tokio::join!(biased; server.read_to_end(&mut request), async {
        client.write_all(b"request").await?;
        client.shutdown().await
    });
    log.push(format!(
        "server read while the client wrote and half-closed: {:?} {:?}",
        read.map_err(|e| e.kind()),
        String::from_utf8_lossy(&request)
    ));
    log.push(format!("client shutdown: {:?}", sent.map_err(|e| e.kind())));
    let mut buf = [0u8; 16];
    log.push(format!(
        "server read after end of stream: {:?}",
        server.read(&mut buf).await.map_err(|e| e.kind())
    ));
    log.push(format!(
        "client write after its shutdown: {:?}",
        client.write(b"late").await.map_err(|e| e.kind())
    ));
    let response = pattern(RESPONSE, 1);
    let mut got = Vec::new();
    let (wrote, read) = tokio::join!(
        biased;
        async {
            server.write_all(&response).await?;
            server.shutdown().await
        },
        client.read_to_end(&mut got),
    );
    log.push(format!(
        "server response: {:?}",
        wrote.map_err(|e| e.kind())
    ));
    log.push(format!(
        "half-closed client read: {:?}, intact: {}",
        read.map_err(|e| e.kind()),
        got == response
    ));
    log
}

/// Half-close as in Tokio: `shutdown()` sends a FIN while the socket stays
/// readable. The server, already waiting in `read_to_end`, gets the 7
/// request bytes and then 0 (the FIN must wake it: `POLLRDHUP`/`POLLIN`),
/// reads 0 again (end of stream is sticky), and the client's write after
/// its own shutdown fails with `BrokenPipe`. The half-closed client still
/// receives an 8 MiB reply, which fills both socket buffers so that both
/// sides wait on each other many times, then end of stream. Compared line
/// by line with `tokio::net::TcpStream`.
#[test]
fn half_close_ends_the_peers_reads_and_still_carries_the_reply_as_on_tokio() {
    let theirs = on_tokio(async {
        let (c, s) = tokio_tcp_pair().await.unwrap();
        half_close_scenario(c, s).await
    });
    let ours = on_ringlane(|| async {
        let (c, s) = ringlane_tcp_pair().await.unwrap();
        half_close_scenario(c, s).await
    });
    assert_eq!(ours, theirs, "the compat lane differs from tokio::net");
    assert_eq!(
        ours,
        vec![
            "server read while the client wrote and half-closed: Ok(7) \"request\"".to_string(),
            "client shutdown: Ok(())".to_string(),
            "server read after end of stream: Ok(0)".to_string(),
            "client write after its shutdown: Err(BrokenPipe)".to_string(),
            "server response: Ok(())".to_string(),
            format!("half-closed client read: Ok({RESPONSE}), intact: true"),
        ]
    );
}

/// Resets under waiting I/O: a read waits and the peer resets, then a
/// write waits on a full socket and the peer resets. Returns each result.
async fn reset_scenario<S>(reading: (S, S), writing: (S, S)) -> Vec<String>
where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin,
{
    let mut log = Vec::new();
    let (mut reader, peer) = reading;
    let mut buf = [0u8; 64];
    // The read is polled first (it waits), then the peer resets.
    let (read, ()) = tokio::join!(biased; reader.read(&mut buf), async move { reset(peer) });
    log.push(format!(
        "a waiting read when the peer resets: {:?}",
        read.map_err(|e| e.kind())
    ));
    log.push(format!(
        "the next read: {:?}",
        reader.read(&mut buf).await.map_err(|e| e.kind())
    ));
    log.push(format!(
        "a write after the reset: {:?}",
        reader.write(b"x").await.map_err(|e| e.kind())
    ));
    let (mut writer, peer) = writing;
    // Far more than the socket buffers hold while the peer does not read.
    let big = vec![7u8; 32 << 20];
    let (wrote, ()) = tokio::join!(biased; writer.write_all(&big), async move { reset(peer) });
    log.push(format!(
        "a write blocked on a full socket when the peer resets: {:?}",
        wrote.map_err(|e| e.kind())
    ));
    log
}

/// A peer's RST reaches waiting I/O as an error, as in Tokio: a read that
/// waits when the RST arrives fails with `ConnectionReset` (the `POLLERR`/
/// `POLLHUP` CQE must mark the read direction ready, invariant 4), the next
/// read gives 0, a write gives `BrokenPipe`; a `write_all` parked on a
/// full send buffer (only `POLLOUT` asked for) must be woken by the reset
/// and fail too, not hang. Compared line by line with `tokio::net`.
#[test]
fn a_peer_reset_fails_waiting_reads_and_writes_as_on_tokio() {
    let theirs = on_tokio(async {
        let first = tokio_tcp_pair().await.unwrap();
        let second = tokio_tcp_pair().await.unwrap();
        reset_scenario(first, second).await
    });
    let ours = on_ringlane(|| async {
        let first = ringlane_tcp_pair().await.unwrap();
        let second = ringlane_tcp_pair().await.unwrap();
        reset_scenario(first, second).await
    });
    assert_eq!(ours, theirs, "the compat lane differs from tokio::net");
    assert_eq!(
        ours[0], "a waiting read when the peer resets: Err(ConnectionReset)",
        "{ours:#?}"
    );
    assert!(ours[3].contains("Err("), "{ours:#?}");
}

// ---------------------------------------------------------------------------
// Back-pressure: parked writers, forwarded waits, idle shards
// ---------------------------------------------------------------------------

/// A writer parked on a full send buffer is woken when the peer drains, on
/// every hop: (1) a compat writer on shard 0 parks (checked: its shard
/// sleeps and 16 MiB has not gone out), then a compat reader on shard 1
/// drains; (2) the reader's stream, handed to a Tokio task, writes 16 MiB
/// back: its write direction was never armed, so every `WouldBlock` forwards
/// a wait to its home shard 1 (dozens of them), while shard 0 reads. Then,
/// with all four directions armed and idle, both shards must park and stay
/// asleep: a readiness that `WouldBlock` did not clear, or a poll that
/// keeps firing, shows as task polls or wake-ups.
#[test]
fn a_writer_parked_on_a_full_socket_is_woken_by_the_drain_on_a_shard_and_from_tokio() {
    const N: usize = 16 << 20;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (mine, theirs) = std_tcp_pair();
    let writer = h
        .spawn_pinned(0, async move {
            let mut s = TcpStream::from_std(mine)?;
            s.write_all(&pattern(N, 2)).await?;
            Ok::<_, io::Error>(s)
        })
        .unwrap();
    common::until_parked(&h, 0);
    assert!(
        !writer.is_finished(),
        "16 MiB fit in the socket buffers: the writer never waited"
    );
    let reader = h
        .spawn_pinned(1, async move {
            let mut p = TcpStream::from_std(theirs)?;
            let mut got = vec![0u8; N];
            p.read_exact(&mut got).await?;
            Ok::<_, io::Error>((p, got == pattern(N, 2)))
        })
        .unwrap();
    let s = common::join_within(&rt, writer, LIMIT, "the parked writer (lost wake-up)").unwrap();
    let (p, intact) = common::join_within(&rt, reader, LIMIT, "the draining reader").unwrap();
    assert!(intact, "the reader on shard 1 got other bytes");

    let tokio_rt = tokio_rt();
    let reader = h
        .spawn_pinned(0, async move {
            let mut s = s;
            let mut got = vec![0u8; N];
            s.read_exact(&mut got).await?;
            Ok::<_, io::Error>((s, got == pattern(N, 3)))
        })
        .unwrap();
    let p = tokio_rt
        .block_on(async move {
            let writer = tokio::spawn(async move {
                let mut p = p;
                p.write_all(&pattern(N, 3)).await?;
                Ok::<_, io::Error>(p)
            });
            tokio::time::timeout(LIMIT, writer).await
        })
        .expect("a Tokio task writing through forwarded waits was never woken")
        .unwrap()
        .unwrap();
    let (s, intact) = common::join_within(&rt, reader, LIMIT, "the reader on shard 0").unwrap();
    assert!(intact, "the reader on shard 0 got other bytes");

    assert_quiet(&h, 0, "an idle connection with both directions armed");
    assert_quiet(&h, 1, "an idle connection with its read armed");
    drop((s, p));
}

/// Many socket pairs on one shard whose ring has 2 SQ entries and 8 CQ
/// entries (`runtime_with_room_for_two_ops`). 32 pairs echo 256 KiB each
/// (more than a Unix socket buffer, so writers, echoers and readers all
/// wait: 96 tasks): the multishot polls' CQEs overflow the CQ, the
/// kernel ends those polls (a final CQE without `F_MORE`), and each must be
/// re-armed through an SQ with room for two SQEs per tick. Every byte must
/// come back. Then 32 fresh idle readers wait: the shard must park and stay
/// asleep, and one byte to each must wake each reader (no poll lost while
/// idle).
#[test]
fn many_socket_pairs_on_a_two_entry_ring_lose_no_wake_up_and_the_shard_goes_quiet() {
    const PAIRS: usize = 32;
    const BYTES: usize = 256 << 10;
    let rt = common::runtime_with_room_for_two_ops();
    let h = rt.handle();
    let echo = h
        .spawn_local_on(0, || async {
            let mut readers = Vec::new();
            let mut others = Vec::new();
            for i in 0..PAIRS {
                let (a, b) = UnixStream::pair()?;
                others.push(ringlane::spawn_local(async move {
                    let mut b = b;
                    let (mut r, mut w) = b.split();
                    tokio::io::copy(&mut r, &mut w).await
                })?);
                let (mut r, mut w) = a.into_split();
                others.push(ringlane::spawn_local(async move {
                    w.write_all(&pattern(BYTES, i as u8)).await?;
                    // Dropping the write half shuts the write side down.
                    Ok::<_, io::Error>(BYTES as u64)
                })?);
                readers.push(ringlane::spawn_local(async move {
                    let mut got = Vec::with_capacity(BYTES);
                    r.read_to_end(&mut got).await?;
                    Ok::<_, io::Error>(got == pattern(BYTES, i as u8))
                })?);
            }
            let mut intact = 0;
            for r in readers {
                if r.await?? {
                    intact += 1;
                }
            }
            for o in others {
                assert_eq!(o.await??, BYTES as u64);
            }
            Ok::<_, io::Error>(intact)
        })
        .unwrap();
    let intact = common::join_within(&rt, echo, LIMIT, "the echo over a tiny ring").unwrap();
    assert_eq!(intact, PAIRS, "some connections got other bytes back");

    let idle = h
        .spawn_local_on(0, || async {
            let mut peers = Vec::new();
            let mut idle = Vec::new();
            for _ in 0..PAIRS {
                let (a, b) = std::os::unix::net::UnixStream::pair()?;
                let mut a = UnixStream::from_std(a)?;
                idle.push(ringlane::spawn_local(async move {
                    let mut byte = [0u8; 1];
                    a.read_exact(&mut byte).await.map(|_| byte[0])
                })?);
                peers.push(b);
            }
            Ok::<_, io::Error>((peers, idle))
        })
        .unwrap();
    let (mut peers, idle) = common::join_within(&rt, idle, LIMIT, "the idle readers").unwrap();
    assert_quiet(&h, 0, "32 idle readers on a tiny ring");
    for (i, p) in peers.iter_mut().enumerate() {
        p.write_all(&[i as u8]).unwrap();
    }
    for (i, j) in idle.into_iter().enumerate() {
        let byte = common::join_within(&rt, j, LIMIT, "an idle reader (lost wake-up)").unwrap();
        assert_eq!(byte, i as u8);
    }
}

/// A reader task on shard 1 and a writer task on shard 0 share one compat
/// TCP connection (`into_split`), both through tokio-util codecs, against
/// a Tokio client that sends 120 lines (a tenth of them 300 KB, one empty)
/// while it reads the echoes: `FramedRead<OwnedReadHalf>` decodes on shard
/// 1, hands each reversed line over a Tokio channel to
/// `FramedWrite<OwnedWriteHalf>` on shard 0. Both directions fill up and
/// wait, each on its own shard's ring. The client's half-close must end
/// the decoder, whose end ends the writer, whose dropped half must end the
/// client's stream: every line back, in order, then end of stream.
#[test]
fn framed_lines_over_halves_on_two_shards_echo_a_tokio_peer() {
    const LINES: usize = 120;
    fn line_for(i: usize) -> String {
        let len = if i % 10 == 3 { 300_000 } else { i * 37 % 700 };
        (0..len)
            .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
            .collect()
    }
    let rt = common::runtime(2);
    let h = rt.handle();
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let spawner = h.clone();
    let server = h
        .spawn_pinned(0, async move {
            let (conn, _) = listener.accept().await?;
            let (r, w) = conn.into_split();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
            let decoder = spawner.spawn_pinned(1, async move {
                let mut lines = FramedRead::new(r, LinesCodec::new());
                let mut n = 0usize;
                while let Some(line) = lines.next().await {
                    let reversed: String = line.map_err(io::Error::other)?.chars().rev().collect();
                    tx.send(reversed).await.map_err(io::Error::other)?;
                    n += 1;
                }
                Ok::<_, io::Error>(n)
            })?;
            let mut out = FramedWrite::new(w, LinesCodec::new());
            while let Some(line) = rx.recv().await {
                out.send(line).await.map_err(io::Error::other)?;
            }
            drop(out); // the write half shuts the write side: the client's end of stream
            decoder.await?
        })
        .unwrap();

    let lines: Vec<String> = (0..LINES).map(line_for).collect();
    let expected: Vec<String> = lines.iter().map(|l| l.chars().rev().collect()).collect();
    let tokio_rt = tokio_rt();
    let echoed = tokio_rt
        .block_on(async move {
            let exchange = async move {
                let (r, w) = tokio::net::TcpStream::connect(addr).await?.into_split();
                let sender = tokio::spawn(async move {
                    let mut out = FramedWrite::new(w, LinesCodec::new());
                    for line in lines {
                        out.send(line).await.map_err(io::Error::other)?;
                    }
                    Ok::<_, io::Error>(()) // Tokio's write half shuts down on drop
                });
                let mut input = FramedRead::new(r, LinesCodec::new());
                let mut got = Vec::new();
                while let Some(line) = input.next().await {
                    got.push(line.map_err(io::Error::other)?);
                }
                sender.await.map_err(io::Error::other)??;
                Ok::<_, io::Error>(got)
            };
            tokio::time::timeout(LIMIT, exchange).await
        })
        .expect("the line echo stalled: a wait on one of the halves was never woken")
        .unwrap();
    let first_bad = echoed.iter().zip(&expected).position(|(a, b)| a != b);
    assert!(
        echoed.len() == LINES && first_bad.is_none(),
        "{} lines back of {LINES}, first wrong one: {first_bad:?}",
        echoed.len()
    );
    let decoded = common::join_within(&rt, server, LIMIT, "the server's halves").unwrap();
    assert_eq!(decoded, LINES);
}

// ---------------------------------------------------------------------------
// Sockets and runtimes dropped under waiters
// ---------------------------------------------------------------------------

/// Dropping a socket while a task waits on it, and dropping the runtime
/// under waiters:
/// (A) a stream whose read poll is armed on shard 0 is read by a task on
/// shard 1, which is aborted: the stream drops on shard 1, so the cancel of
/// the poll must travel to shard 0; until it lands the kernel's poll keeps
/// the socket open. The peer must read end of stream.
/// (B) a Tokio task reading a stream whose poll is armed (pushed) on the
/// shard, a Tokio task blocked writing (a forwarded wait), and a shard
/// task reading: the runtime is dropped. Both Tokio tasks must get an
/// error (the cancelled poll's CQE, the cancelled helper's report), not
/// hang; the shard task is cancelled and its socket closed.
#[test]
fn sockets_and_runtimes_dropped_under_waiters_close_the_sockets_and_fail_the_waiters() {
    // (A)
    let rt = common::runtime(2);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = armed_on_shard(&rt, 0, mine);
    let waiter = h
        .spawn_pinned(1, async move {
            let mut s = s;
            let mut byte = [0u8; 1];
            s.read(&mut byte).await
        })
        .unwrap();
    common::until_parked(&h, 1);
    common::until_parked(&h, 0);
    assert!(!waiter.is_finished(), "nothing was written: it must wait");
    waiter.abort();
    let out = rt
        .block_on(ringlane::time::timeout(LIMIT, waiter))
        .expect("the aborted task never ended");
    assert!(out.unwrap_err().is_cancelled());
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let n = peer.read(&mut [0u8; 8]);
    assert!(
        matches!(n, Ok(0)),
        "the stream dropped on shard 1 stayed open (its poll on shard 0 was never cancelled): {n:?}"
    );
    drop(rt);

    // (B)
    let rt = common::runtime(1);
    let h = rt.handle();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let (c, _d) = std::os::unix::net::UnixStream::pair().unwrap();
    let (e, mut f) = std::os::unix::net::UnixStream::pair().unwrap();
    let a = armed_on_shard(&rt, 0, a);
    let c = common::join_within(
        &rt,
        h.spawn_pinned(0, async move { UnixStream::from_std(c) })
            .unwrap(),
        LIMIT,
        "making c on the shard",
    )
    .unwrap();
    let shard_reader = h
        .spawn_pinned(0, async move {
            let mut e = UnixStream::from_std(e)?;
            let mut byte = [0u8; 1];
            e.read(&mut byte).await
        })
        .unwrap();
    let tokio_rt = tokio_rt();
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let tokio_reader = tokio_rt.spawn(after_first_poll(
        async move {
            let mut a = a;
            let mut byte = [0u8; 1];
            a.read(&mut byte).await
        },
        polled_tx.clone(),
    ));
    let tokio_writer = tokio_rt.spawn(after_first_poll(
        async move {
            let mut c = c;
            let data = vec![1u8; 16 << 20]; // its peer never reads
            c.write_all(&data).await
        },
        polled_tx,
    ));
    for _ in 0..2 {
        polled.recv_timeout(LIMIT).expect("a Tokio task never ran");
    }
    common::until_parked(&h, 0); // the forwarded write wait reached the shard
    assert!(!tokio_reader.is_finished() && !tokio_writer.is_finished());
    drop(rt);
    let (r, w) = tokio_rt
        .block_on(async {
            tokio::time::timeout(LIMIT, async { (tokio_reader.await, tokio_writer.await) }).await
        })
        .expect("a Tokio task waiting on a compat socket hung after its runtime was dropped");
    let (r, w) = (r.unwrap(), w.unwrap());
    assert!(
        r.is_err(),
        "the read of a stream whose runtime is gone: {r:?}"
    );
    assert!(
        w.is_err(),
        "the blocked write of a stream whose runtime is gone: {w:?}"
    );
    f.set_read_timeout(Some(LIMIT)).unwrap();
    let n = f.read(&mut [0u8; 1]);
    assert!(
        matches!(n, Ok(0)),
        "the cancelled shard task's socket stayed open: {n:?}"
    );
    let out = common::block_on(ringlane::time::timeout(LIMIT, shard_reader))
        .expect("the shard task's join handle never resolved");
    assert!(out.unwrap_err().is_cancelled());
}

/// A graceful shutdown lets tasks run until the deadline, whatever shard
/// the socket they read was first polled on. Here a stream's read poll is
/// armed on shard 0 (the stream waited there once), and a pinned task on
/// shard 1 then reads it: its wait rests on shard 0's ring (readiness
/// invariant 3). Shard 0 has no task, so it exits at once; shard 1 keeps
/// running its reader within the 10 s grace period, and the peer then
/// writes. The reader must get the bytes. Shard 0's exit must not cancel a
/// poll that a live task on another shard awaits (the drain considers only
/// this shard's tasks and stealable ones: a read failing with "Operation
/// canceled" in the middle of a graceful shutdown is the bug).
#[test]
fn a_graceful_shutdown_keeps_a_poll_armed_on_an_idle_shard_for_a_task_on_another() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let (mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = armed_on_shard(&rt, 0, mine);
    let reader = h
        .spawn_pinned(1, async move {
            let mut s = s;
            let mut got = [0u8; 5];
            s.read_exact(&mut got).await.map(|_| got)
        })
        .unwrap();
    common::until_parked(&h, 1);
    common::until_parked(&h, 0);
    let shard0 = format!("/proc/self/task/{}", h.shard_stats(0).unwrap().os_tid);
    assert!(std::path::Path::new(&shard0).exists());
    let shutdown = std::thread::spawn(move || rt.shutdown(LIMIT));
    // Until shard 0 has exited (then whatever it cancelled has completed),
    // at most 2 s: a runtime that keeps shard 0 for the reader passes too.
    let began = Instant::now();
    while !h.is_shutdown()
        || (std::path::Path::new(&shard0).exists() && began.elapsed() < Duration::from_secs(2))
    {
        assert!(began.elapsed() < LIMIT, "the shutdown never began");
        std::thread::sleep(Duration::from_millis(1));
    }
    peer.write_all(b"hello").unwrap();
    let got = common::block_on(ringlane::time::timeout(LIMIT, reader))
        .expect("the reader on shard 1 hung during the graceful shutdown")
        .expect("the reader on shard 1 was cancelled within its grace period");
    match got {
        Ok(got) => assert_eq!(&got, b"hello"),
        Err(e) => panic!(
            "a graceful shutdown failed a read on shard 1 with `{e}` ({:?}): idle shard 0 exited and cancelled the poll it had armed for that socket",
            e.kind()
        ),
    }
    let report = shutdown.join().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A Tokio task's wait on a compat socket is forwarded to the socket's
/// home shard, where a helper arms a `POLL_ADD`. On a shard the same wait
/// is a multishot poll that does not count against the op table (the fix
/// for idle connections using it up, `compat_more.rs`); the forwarded one
/// must not count either. Four Tokio tasks wait on four idle sockets of a
/// shard whose op table takes two ops (a few hundred idle connections
/// served from Tokio tasks on the default ring): a native `open` + `read`
/// on that shard must still run, and data to each socket, last first,
/// must wake its reader (a forwarded wait left waiting for room is never
/// armed, so its data is never seen).
#[test]
fn forwarded_waits_of_tokio_tasks_do_not_use_up_the_shards_op_table() {
    let rt = common::runtime_with_room_for_two_ops();
    let h = rt.handle();
    let pairs = common::join_within(
        &rt,
        h.spawn_pinned(0, async {
            let mut pairs = Vec::new();
            for _ in 0..4 {
                let (a, b) = std::os::unix::net::UnixStream::pair()?;
                pairs.push((UnixStream::from_std(a)?, b)); // home: shard 0
            }
            Ok::<_, io::Error>(pairs)
        })
        .unwrap(),
        LIMIT,
        "making the pairs on shard 0",
    )
    .unwrap();
    let tokio_rt = tokio_rt();
    let mut readers = Vec::new();
    let mut peers = Vec::new();
    for (a, b) in pairs {
        let (polled_tx, polled) = std::sync::mpsc::channel();
        let read = async move {
            let mut a = a;
            let mut byte = [0u8; 1];
            a.read_exact(&mut byte).await.map(|_| byte[0])
        };
        readers.push(tokio_rt.spawn(after_first_poll(read, polled_tx)));
        polled
            .recv_timeout(LIMIT)
            .expect("the Tokio task never ran");
        common::until_parked(&h, 0); // its helper ran on the shard
        peers.push(b);
    }
    let native = h
        .spawn_pinned(0, async {
            ringlane::time::timeout(Duration::from_secs(5), async {
                let f = ringlane::native::fs::File::open("/proc/self/stat").await?;
                f.read_at(vec![0u8; 8], 0).await.0
            })
            .await
        })
        .unwrap();
    let n = common::join_within(&rt, native, LIMIT, "a native op on the shard").expect(
        "an open and a read waited for room behind four idle forwarded waits: a Tokio task's wait holds a counted op slot",
    );
    assert_eq!(n.unwrap(), 8);
    for (i, (peer, reader)) in peers.iter_mut().zip(readers.iter_mut()).enumerate().rev() {
        peer.write_all(&[i as u8]).unwrap();
        let got = tokio_rt
            .block_on(async { tokio::time::timeout(LIMIT, reader).await })
            .unwrap_or_else(|_| {
                panic!("reader {i} never saw its byte: its forwarded wait was never armed")
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, i as u8);
    }
}

// ---------------------------------------------------------------------------
// Datagrams and AsyncFd
// ---------------------------------------------------------------------------

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
        let rx = UdpSocket::bind(localhost()).unwrap();
        let tx = UdpSocket::bind(localhost()).unwrap();
        let refused = UdpSocket::bind(localhost()).unwrap();
        refused.connect(closed_udp_port()).unwrap();
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

/// A pipe with both ends nonblocking.
fn nonblocking_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = common::pipe();
    for fd in [&r, &w] {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own, with valid commands and flags.
        unsafe {
            let flags = libc::fcntl(raw, libc::F_GETFL);
            assert!(flags >= 0);
            assert_eq!(libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
        }
    }
    (r, w)
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
