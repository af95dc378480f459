//! TCP on the compat lane against the same code on `tokio::net`: half-close,
//! peer resets, a writer parked on a full socket, and tokio-util codecs over
//! split halves on two shards. Every wait is bounded.

mod common;

use std::io;
use std::os::fd::AsRawFd;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec};

use ringlane::compat::{TcpListener, TcpStream};

use common::LIMIT;
use common::compat_io::*;

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
    let listener =
        TcpListener::from_std(std::net::TcpListener::bind(localhost()).unwrap()).unwrap();
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
