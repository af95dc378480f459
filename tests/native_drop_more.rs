//! Op futures dropped on Tokio threads or outliving their runtime, zero-copy
//! sends' op-table entries, and multishot streams dropped mid-stream away
//! from their shard. Every test holds `SERIAL` (fd counts are process-wide).

mod common;

use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, RingBuf};
use ringlane::native::net::{TcpListener, TcpStream, UnixStream};

use common::LIMIT;
use common::native_io::*;

type WriteAllFut = Pin<Box<dyn Future<Output = (io::Result<()>, Vec<u8>)> + Send>>;

/// Expected: a `write_all` of 4 MiB into a socket nobody reads, stuck in
/// flight, whose future is then dropped on a Tokio worker thread (its
/// cancel travels through the shard's mailbox), leaves the peer exactly a
/// prefix of the data; a later write (a marker) arrives right after that
/// prefix and nothing of the dropped write ever follows it. The socket
/// closes once its last handle and the cancelled op are gone (EOF).
///
/// Why: a cancel that is lost, or an op that goes on sending after it was
/// dropped (or a buffer freed while the kernel still sends from it), shows
/// up as bytes after the marker, wrong bytes in the prefix, or no EOF.
#[test]
fn a_write_all_dropped_on_a_tokio_thread_leaves_the_peer_an_exact_prefix() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let ours = Arc::new(UnixStream::from_std(ours));
    let data: Vec<u8> = (0..4usize << 20).map(|i| (i % 251) as u8).collect();
    let (s, d) = (ours.clone(), data.clone());
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut write: WriteAllFut = Box::pin(async move { s.write_all(d).await });
            let waited = ringlane::time::timeout(Duration::from_millis(200), write.as_mut()).await;
            assert!(waited.is_err(), "4 MiB fitted into a socket nobody reads");
            Held(write)
        })
        .unwrap();
    let Held(write) = common::join_within(&rt, task, LIMIT, "the writer");
    drop_on_tokio(write);
    two_ticks(&rt, 0); // the cancel has reached the kernel
    // 0xFF..0xFC never occur in the data (bytes 0..=250).
    let marker = vec![0xFFu8, 0xFE, 0xFD, 0xFC];
    let m = marker.clone();
    let finish = rt
        .handle()
        .spawn_pinned(0, async move {
            let (r, _) = ours.write_all(m).await;
            r // `ours`, the last handle, goes here
        })
        .unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got)
        .expect("no EOF after the marker: the socket was kept open");
    common::join_within(&rt, finish, LIMIT, "the marker").expect("the marker write failed");
    let cut = got
        .len()
        .checked_sub(marker.len())
        .expect("the marker never arrived");
    assert_eq!(
        &got[cut..],
        &marker[..],
        "bytes of the dropped write_all arrived after the marker: it was not cancelled"
    );
    assert!(
        cut > 0 && cut < data.len(),
        "the socket took {cut} bytes of 4 MiB before it filled"
    );
    assert!(
        got[..cut] == data[..cut],
        "the peer got other bytes than a prefix of the dropped write_all's data"
    );
    drop((rt, peer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

type ReadFut = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)> + Send>>;

type AcceptFut = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// A boxed receive of up to 32 bytes on `s` (which it owns).
fn boxed_read(s: UnixStream) -> ReadFut {
    Box::pin(async move { s.read(Vec::with_capacity(32)).await })
}

/// Expected: op futures handed out of their task and still held when
/// their runtime shuts down (two reads armed in the kernel, a third
/// waiting for room, a multishot accept armed on a listener) let the
/// shutdown finish cleanly; polled afterwards, off the shards, each
/// resolves at once with an `io::Error` (not a hang, not a panic, not
/// data) and gives its buffer back; a read future created before but never
/// polled runs normally on the next runtime it is polled on; no fd leaks.
///
/// Why: the shard cancels what its table holds before it exits (op
/// invariant 5) and the futures then find a completed op; one it leaked
/// would stay `Submitted` forever (the bounded poll fails), and an op that
/// waited for room must not try to use the dead shard's ring.
#[test]
fn op_futures_that_outlive_their_runtime_end_with_errors_not_hangs() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let (a, ap, a_std) = unix_pair();
    let (b, bp, b_std) = unix_pair();
    let (c, cp, c_std) = unix_pair();
    let (d, dp, mut d_std) = unix_pair();
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let fresh = boxed_read(d); // never polled before the second runtime
    let rt = two_op_slots();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut accept: AcceptFut = Box::pin(async move {
                let mut incoming = listener.incoming();
                incoming.next().await.map(drop)
            });
            assert!(poll_once(&mut accept).await, "nobody connects");
            let (mut ra, mut rb) = (boxed_read(a), boxed_read(b));
            assert!(poll_once(&mut ra).await && poll_once(&mut rb).await);
            // The sleep's enter issues all three: both op slots are taken.
            ringlane::time::sleep(Duration::from_millis(5)).await;
            let mut rc = boxed_read(c);
            assert!(poll_once(&mut rc).await, "no slot is free: it waits");
            Held((vec![ra, rb], rc, accept))
        })
        .unwrap();
    let Held((armed, waiting, accept)) = common::join_within(&rt, task, LIMIT, "the set-up");
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.is_clean(), "{report:?}");

    let rt2 = common::runtime(1);
    for (i, read) in armed.into_iter().enumerate() {
        let (r, buf) = rt2
            .block_on(ringlane::time::timeout(LIMIT, read))
            .unwrap_or_else(|_| panic!("read {i}, in flight at shutdown, never ended"));
        assert!(r.is_err(), "read {i} got data nobody sent: {r:?}");
        assert_eq!(buf.capacity(), 32, "read {i} lost its buffer");
    }
    let (r, buf) = rt2
        .block_on(ringlane::time::timeout(LIMIT, waiting))
        .expect("the read that waited for room never ended");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(buf.capacity(), 32, "the waiting read lost its buffer");
    let r = rt2
        .block_on(ringlane::time::timeout(LIMIT, accept))
        .expect("the multishot accept never ended");
    assert!(r.is_err(), "an accept with no client: {r:?}");

    d_std.write_all(b"fresh").unwrap();
    let fresh = rt2.handle().spawn_pinned(0, fresh).unwrap();
    let (n, buf) = common::join_within(&rt2, fresh, LIMIT, "the never-polled read");
    assert_eq!(&buf[..n.unwrap()], b"fresh");
    drop(rt2);
    drop((ap, a_std, bp, b_std, cp, c_std, dp, d_std));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// How many bytes of each kind the zero-copy test's peer must see.
struct ZcCounts {
    ones: usize,
    fives: usize,
    filler: usize,
}

type Waited = Result<Vec<u8>, ringlane::time::Elapsed>;

/// The shard side of `zero_copy_sends_give_back_their_op_slots_whatever_the_outcome`;
/// `None` if the kernel has no `SEND_ZC`.
async fn zero_copy_outcomes(
    listener: std::net::TcpListener,
) -> Option<(std::net::TcpStream, ZcCounts, (Waited, Waited))> {
    let addr = listener.local_addr().unwrap();
    let s = TcpStream::connect(addr).await.unwrap();
    let (peer, _) = listener.accept().unwrap(); // already in the backlog
    let ones = match s.write_zc(vec![1u8; 1000]).await.0 {
        Err(e) if e.kind() == ErrorKind::InvalidInput => return None,
        r => r.unwrap(),
    };
    // Success, fifty times.
    let mut fives = 0;
    for _ in 0..50 {
        fives += s.write_zc(vec![5u8; 1000]).await.0.unwrap();
    }
    // An error, twenty times: this connection's sending side is shut down.
    let t = TcpStream::connect(addr).await.unwrap();
    let (_t_peer, _) = listener.accept().unwrap();
    t.shutdown(std::net::Shutdown::Write).await.unwrap();
    for _ in 0..20 {
        let (r, buf) = t.write_zc(vec![2u8; 100]).await;
        assert_eq!(
            (r.map_err(|e| e.kind()), buf.len()),
            (Err(ErrorKind::BrokenPipe), 100)
        );
    }
    // Dropped in flight: plain writes fill the connection (the peer does
    // not read) until one waits, then a zero-copy send is issued and
    // dropped while it waits for room in the socket.
    let mut filler = 0;
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "the connection never filled up");
        let write = s.write(vec![0xABu8; 1 << 20]);
        match ringlane::time::timeout(Duration::from_millis(50), write).await {
            Ok((r, _)) => filler += r.unwrap(),
            Err(_) => break, // it waited: the socket is full
        }
    }
    let mut zc = Box::pin(s.write_zc(vec![3u8; 4096]));
    assert!(poll_once(&mut zc).await);
    ringlane::time::sleep(Duration::from_millis(5)).await; // issued, waiting
    drop(zc);
    // Both op slots must be free again: two reads in flight at once. The
    // second one's bytes come first: with a slot still taken it would be
    // the one waiting for room, behind a read that never completes.
    let (x, _xp, mut x_std) = unix_pair();
    let (y, _yp, mut y_std) = unix_pair();
    let hx = ringlane::spawn_local(async move {
        let (n, buf) = x.read(vec![0u8; 8]).await;
        buf[..n.unwrap()].to_vec()
    })
    .unwrap();
    let hy = ringlane::spawn_local(async move {
        let (n, buf) = y.read(vec![0u8; 8]).await;
        buf[..n.unwrap()].to_vec()
    })
    .unwrap();
    ringlane::yield_now().await;
    y_std.write_all(b"y").unwrap();
    let y_got = ringlane::time::timeout(Duration::from_secs(5), hy)
        .await
        .map(|j| j.unwrap());
    x_std.write_all(b"x").unwrap();
    let x_got = ringlane::time::timeout(Duration::from_secs(5), hx)
        .await
        .map(|j| j.unwrap());
    drop(s); // EOF for the peer once the kernel is done with the sends
    Some((
        peer,
        ZcCounts {
            ones,
            fives,
            filler,
        },
        (y_got, x_got),
    ))
}

/// Expected: on a ring with two op slots, zero-copy sends that succeed
/// (fifty), fail (`BrokenPipe`, twenty, buffer back) or are dropped while
/// waiting for room in a full socket each give back both table entries
/// they take (the op and the reservation for its notification), so two
/// reads can then be in flight together; and the peer receives every
/// completed send's bytes, in order, and nothing else.
///
/// Why: a two-CQE op frees its reservation only when its final CQE comes;
/// an error CQE without `F_MORE`, a cancel's `-ECANCELED` followed by the
/// notification, or a drop between the two CQEs each take another path,
/// and an entry leaked by any of them silently halves this ring.
#[test]
fn zero_copy_sends_give_back_their_op_slots_whatever_the_outcome() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = two_op_slots();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let task = rt
        .handle()
        .spawn_pinned(0, zero_copy_outcomes(listener))
        .unwrap();
    let out = common::join_within(&rt, task, Duration::from_secs(40), "the sends");
    let Some((mut peer, counts, waited)) = out else {
        println!("SKIP zero-copy send test: the kernel refuses IORING_OP_SEND_ZC (needs 6.0)");
        return;
    };
    assert_eq!(
        waited,
        (Ok(b"y".to_vec()), Ok(b"x".to_vec())),
        "(second read, first read): an op slot stayed taken after the zero-copy sends"
    );
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut all = Vec::new();
    peer.read_to_end(&mut all)
        .expect("no EOF: the connection was kept open");
    let class = |b: u8| match b {
        1 => 0,
        5 => 1,
        0xAB => 2,
        3 => 3,
        other => panic!("byte {other:#x} was never sent"),
    };
    assert!(
        all.windows(2).all(|w| class(w[0]) <= class(w[1])),
        "the sends arrived out of order"
    );
    let count = |v: u8| all.iter().filter(|&&b| b == v).count();
    assert_eq!((count(1), count(5)), (counts.ones, counts.fives));
    assert!(
        count(0xAB) >= counts.filler,
        "a completed write's bytes are missing"
    );
    assert!(count(3) <= 4096);
    drop((rt, peer));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// Reads what a fresh stream on `ring` receives on `conn` until EOF,
/// holding up to both buffers at once; each wait is bounded by 5 s.
async fn drain_with_a_fresh_stream(conn: TcpStream, ring: BufRing) -> Result<Vec<u8>, ErrorKind> {
    let mut chunks = conn.recv_multi(&ring);
    let mut rest: Vec<u8> = Vec::new();
    let mut held: Vec<RingBuf> = Vec::new();
    while let Some(chunk) = chunks.next().timeout(Duration::from_secs(5)).await {
        let chunk = chunk.map_err(|e| e.kind())?;
        rest.extend_from_slice(&chunk[..]);
        held.push(chunk);
        if held.len() == 2 {
            held.clear();
        }
    }
    Ok(rest)
}

/// Expected: multishot streams dropped mid-stream on a Tokio worker thread
/// (off their shard, so their cancel goes through its mailbox) leak
/// nothing. A listener's `Incoming` holding three connections the kernel
/// accepted and nobody took closes them (their clients read EOF); a
/// buffer-ring receive holding an untaken chunk gives its buffer back (a
/// fresh stream on the same two-buffer ring can then hold both buffers at
/// once and receives every later byte); no fd leaks.
///
/// Why: the drop runs the orphan handlers for untaken CQEs on the foreign
/// thread and posts the cancel; CQEs the shard reaps later take the
/// abandoned path there. A missed handler on either side is a leaked
/// connection (the client's read hangs until its timeout) or a lost ring
/// buffer (the fresh stream starves and times out).
#[test]
fn multishot_streams_dropped_mid_stream_on_a_tokio_thread_leak_nothing() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);

    // The listener's stream: one connection taken, three accepted, untaken.
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let addr = listener.local_addr().unwrap();
            let mut incoming = listener.incoming();
            let first = std::net::TcpStream::connect(addr).unwrap();
            let taken = incoming.next().timeout(LIMIT).await.unwrap();
            let clients: Vec<_> = (0..3)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            let deadline = Instant::now() + LIMIT;
            while accept_queue_len(listener.as_raw_fd()) > 0 {
                assert!(
                    Instant::now() < deadline,
                    "the multishot accept never took them"
                );
                ringlane::time::sleep(Duration::from_millis(1)).await;
            }
            ringlane::time::sleep(Duration::from_millis(2)).await; // CQEs reaped, untaken
            drop((taken, first));
            Held((incoming, listener, clients))
        })
        .unwrap();
    let Held((incoming, listener, mut clients)) =
        common::join_within(&rt, task, LIMIT, "the accepts");
    drop_on_tokio((incoming, listener));
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(LIMIT)).unwrap();
        let r = c.read(&mut [0u8; 1]);
        assert!(
            matches!(r, Ok(0)),
            "connection {i}, accepted into the dropped stream, was not closed: {r:?}"
        );
    }
    drop(clients);

    // A buffer-ring receive: one chunk taken, the next one untaken.
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let ring = match BufRing::new(2, 8) {
                Ok(ring) => ring,
                Err(e) => {
                    println!("SKIP the multishot receive half: no buffer ring here ({e})");
                    return None;
                }
            };
            let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (conn, _) = listener.accept().timeout(LIMIT).await.unwrap();
            client.write_all(b"abcdefghijklmnop").unwrap(); // two buffers' worth
            let mut chunks = conn.recv_multi(&ring);
            let first = match chunks.next().timeout(LIMIT).await {
                Some(Ok(chunk)) => chunk.to_vec(),
                Some(Err(e)) if e.kind() == ErrorKind::InvalidInput => {
                    println!("SKIP the multishot receive half: no multishot receive here ({e})");
                    return None;
                }
                other => panic!("the first chunk: {other:?}"),
            };
            until_drained(conn.as_raw_fd()).await; // the second chunk is in a buffer
            ringlane::time::sleep(Duration::from_millis(2)).await; // its CQE reaped, untaken
            Some(Held((chunks, conn, ring, client, first)))
        })
        .unwrap();
    let Some(Held((chunks, conn, ring, mut client, first))) =
        common::join_within(&rt, task, LIMIT, "the first chunk")
    else {
        return;
    };
    assert_eq!(first, b"abcdefgh");
    drop_on_tokio(chunks);
    two_ticks(&rt, 0); // its cancel has reached the kernel: it takes no more
    client.write_all(b"qrstuvwxyz012345").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let fresh = rt
        .handle()
        .spawn_pinned(0, drain_with_a_fresh_stream(conn, ring))
        .unwrap();
    let rest = common::join_within(&rt, fresh, LIMIT, "the fresh stream");
    assert_eq!(
        rest,
        Ok(b"qrstuvwxyz012345".to_vec()),
        "the dropped stream's untaken buffer never came back (or it took later bytes)"
    );
    drop((client, rt));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
