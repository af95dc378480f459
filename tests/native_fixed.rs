//! Registered resources: registered files, fixed buffers and provided-buffer
//! rings with multishot receive. Each test holds `SERIAL` so the fd counts
//! it checks see only itself.

mod common;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, FixedBufPool, RingBuf};
use ringlane::native::fs::File;
use ringlane::native::net::{TcpListener, TcpStream};

static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ringlane-fixed-{name}-{}", std::process::id()))
}

fn on_shard<T: Send + 'static>(
    rt: &ringlane::Runtime,
    shard: usize,
    f: impl Future<Output = T> + Send + 'static,
) -> T {
    let task = rt.handle().spawn_pinned(shard, f).unwrap();
    common::join_within(rt, task, Duration::from_secs(60), "the shard task")
}

#[test]
fn registered_file_and_fixed_buffers_round_trip() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let path = temp_path("rt");
    let p = path.clone();
    let (written, read, registered) = on_shard(&rt, 0, async move {
        let f = common::native_io::create_rw(&p)
            .await
            .unwrap()
            .register()
            .unwrap();
        let pool = FixedBufPool::new(2, 8192).unwrap();
        let mut out = pool.get().await;
        let data: Vec<u8> = (0..8192).map(|i| (i % 251) as u8).collect();
        assert_eq!(out.put_slice(&data), 8192);
        let (n, out) = f.write_fixed_at(out, 4096).await;
        let written = n.unwrap();
        drop(out);
        // A plain read on the registered file, then a fixed one.
        let (n, plain) = f.read_at(Vec::with_capacity(100), 4096).await;
        assert_eq!(&plain[..n.unwrap()], &data[..100]);
        let back = pool.get().await;
        let (n, back) = f.read_fixed_at(back, 4096).await;
        let read = n.unwrap();
        assert_eq!(back.len(), read, "len is what was read");
        assert_eq!(&back[..], &data[..read]);
        f.sync_all().await.unwrap();
        (written, read, f.is_registered())
    });
    assert_eq!((written, read, registered), (8192, 8192, true));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096 + 8192);
    std::fs::remove_file(path).unwrap();
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

#[test]
fn registered_slots_are_given_back_so_the_tables_never_fill() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    // Each table has at most 1,024 slots: 3,000 registrations succeed only
    // if dropping gives every slot back.
    let n = on_shard(&rt, 0, async {
        let f = File::open("/proc/self/stat").await.unwrap();
        let mut ok = 0;
        for _ in 0..3000 {
            let r = f.register().unwrap();
            let (n, _) = r.read_at(Vec::with_capacity(8), 0).await;
            assert_eq!(n.unwrap(), 8);
            // Two multi-buffer pools alive at once, freed oldest first:
            // the freed ranges must be found again.
            let first = FixedBufPool::new(4, 4096).unwrap();
            let second = FixedBufPool::new(4, 4096).unwrap();
            let ring = BufRing::new(1, 64).unwrap();
            drop((r, first));
            drop((second, ring));
            ok += 1;
        }
        ok
    });
    assert_eq!(n, 3000);
}

#[test]
fn registered_resources_refuse_other_shards_and_plain_threads() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let (file, pool, ring) = on_shard(&rt, 0, async {
        let f = File::open("/proc/self/stat")
            .await
            .unwrap()
            .register()
            .unwrap();
        (
            f,
            FixedBufPool::new(1, 4096).unwrap(),
            BufRing::new(2, 64).unwrap(),
        )
    });
    assert_eq!((pool.shard(), ring.shard()), (0, 0));
    let (e_file, e_buf, e_ring) = on_shard(&rt, 1, async move {
        let (r, _) = file.read_at(Vec::with_capacity(8), 0).await;
        let plain = File::open("/proc/self/stat").await.unwrap();
        let (r2, _) = plain.read_fixed_at(pool.try_get().unwrap(), 0).await;
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let s = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let r3 = s.recv_multi(&ring).next().await.unwrap();
        (r.unwrap_err(), r2.unwrap_err(), r3.unwrap_err())
    });
    for e in [e_file, e_buf, e_ring] {
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("shard 0"), "{e}");
    }
    // Off the shards, creating any of them is a clear error, not a panic.
    assert!(FixedBufPool::new(1, 4096).is_err());
    assert!(BufRing::new(2, 64).is_err());
    let plain = std::fs::File::open("/proc/self/stat").unwrap();
    assert!(File::from(plain).register().is_err());
}

#[test]
fn bad_fixed_input_gets_clear_errors() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    on_shard(&rt, 0, async {
        let kind = |r: std::io::Result<FixedBufPool>| r.unwrap_err().kind();
        assert_eq!(
            kind(FixedBufPool::new(0, 4096)),
            std::io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(FixedBufPool::new(1, 0)),
            std::io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(FixedBufPool::new(5000, 4096)),
            std::io::ErrorKind::InvalidInput
        );
        // Over the kernel's 1 GiB per buffer (it said "Bad address").
        assert_eq!(
            kind(FixedBufPool::new(1, (1 << 30) + 1)),
            std::io::ErrorKind::InvalidInput
        );
        assert!(BufRing::new(0, 64).is_err());
        assert!(BufRing::new(6, 64).is_err(), "not a power of two");
        assert!(BufRing::new(8, 0).is_err());
        let pool = FixedBufPool::new(1, 4096).unwrap();
        let f = File::open("/proc/self/stat").await.unwrap();
        let (r, buf) = f.write_fixed_at(pool.try_get().unwrap(), 0).await;
        assert_eq!(
            r.unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput,
            "empty buffer"
        );
        let (r, _buf) = f.read_fixed_at(buf, u64::MAX).await;
        assert_eq!(
            r.unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput,
            "offset"
        );
    });
}

#[test]
fn a_waiting_get_is_woken_when_a_buffer_comes_back() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let pool = on_shard(&rt, 0, async { FixedBufPool::new(1, 4096).unwrap() });
    let held = pool.try_get().unwrap();
    assert!(pool.try_get().is_none());
    let p = pool.clone();
    let waiter = rt
        .handle()
        .spawn_pinned(1, async move { p.get().await.capacity() })
        .unwrap();
    common::until_parked(&rt.handle(), 1); // the get waits
    assert!(!waiter.is_finished(), "no buffer is free yet");
    drop(held); // given back on this plain thread
    assert_eq!(
        common::join_within(&rt, waiter, Duration::from_secs(10), "the waiting get"),
        4096
    );
    assert_eq!(pool.available(), 1);
}

/// An eventfd to read (a read waits until a value is written) and a file
/// to write values into it: like an empty pipe, but with positions, which
/// positioned (fixed) reads need (a pipe gives `ESPIPE`).
fn eventfd() -> (OwnedFd, std::fs::File) {
    // SAFETY: eventfd has no memory-safety preconditions.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is new and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let writer = std::fs::File::from(fd.try_clone().unwrap());
    (fd, writer)
}

#[test]
fn dropping_a_fixed_read_in_flight_keeps_the_buffer_until_the_kernel_lets_go() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let (rx, mut tx) = eventfd();
    let (timed_out, pool) = on_shard(&rt, 0, async move {
        let f = File::from(rx).register().unwrap();
        let pool = FixedBufPool::new(1, 4096).unwrap();
        // In flight on an empty eventfd until the kernel timeout cancels it.
        let (r, buf) = f
            .read_fixed_at(pool.get().await, 0)
            .timeout(Duration::from_millis(20))
            .await;
        let timed_out = r.unwrap_err().kind() == std::io::ErrorKind::TimedOut;
        drop(buf);
        // Dropped in flight: the buffer comes back to the pool only after
        // the cancel's CQE, and the next bytes are not swallowed.
        let read = f.read_fixed_at(pool.get().await, 0);
        // A user-space timer drops the op's future in flight (no kernel timeout).
        let _ = ringlane::time::timeout(Duration::from_millis(5), read).await;
        let p = pool.clone();
        let reader = ringlane::spawn_local(async move {
            let (n, buf) = f.read_fixed_at(p.get().await, 0).await;
            buf[..n.unwrap()].to_vec()
        })
        .unwrap();
        (timed_out, (pool, reader))
    });
    let (pool, reader) = pool;
    tx.write_all(&7u64.to_ne_bytes()).unwrap();
    assert!(timed_out);
    assert_eq!(rt.block_on(reader).unwrap(), 7u64.to_ne_bytes());
    assert_eq!(pool.available(), 1);
    drop((tx, pool));
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// A connected pair: a native stream on the shard side and a std stream.
async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    let (conn, _) = listener.accept().await.unwrap();
    (conn, client.join().unwrap())
}

#[test]
fn multishot_receive_delivers_every_byte_in_order_with_few_buffers() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let (tx, rx) = std::sync::mpsc::channel();
    let sum = on_shard(&rt, 0, async move {
        let ring = BufRing::new(4, 1024).unwrap();
        let (conn, mut peer) = pair().await;
        let writer = std::thread::spawn(move || {
            let data: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
            for chunk in data.chunks(7000) {
                peer.write_all(chunk).unwrap();
            }
            drop(peer); // EOF
            tx.send(()).unwrap();
        });
        let mut chunks = conn.recv_multi(&ring);
        let mut got = Vec::new();
        let mut held: Vec<RingBuf> = Vec::new();
        let mut n = 0usize;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= ring.buf_size());
            got.extend_from_slice(&chunk);
            n += 1;
            // Hold up to three of the four buffers now and then, so the
            // kernel runs dry and the stream must wait and re-arm.
            held.push(chunk);
            if held.len() == 3 || n % 5 != 0 {
                held.clear();
            }
        }
        writer.join().unwrap();
        assert!(n > 1024, "1 MiB in 1 KiB buffers: {n} chunks");
        got.iter().enumerate().all(|(i, b)| *b == (i % 253) as u8) && got.len() == 1 << 20
    });
    rx.recv().unwrap();
    assert!(sum, "every byte, in order");
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

#[test]
fn holding_every_ring_buffer_is_an_error_not_a_hang() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let (first_err, rest) = on_shard(&rt, 0, async {
        let ring = BufRing::new(2, 16).unwrap();
        let (conn, mut peer) = pair().await;
        peer.write_all(&[1u8; 64]).unwrap();
        let mut chunks = conn.recv_multi(&ring);
        let mut held = Vec::new();
        let err = loop {
            match chunks.next().await.unwrap() {
                Ok(c) => held.push(c),
                Err(e) => break e,
            }
        };
        assert_eq!(held.len(), 2, "both buffers are held");
        let mut total: usize = held.iter().map(|c| c.len()).sum();
        held.clear(); // given back: the stream goes on where it stopped
        drop(peer);
        while let Some(c) = chunks.next().await {
            total += c.unwrap().len();
        }
        (err.kind(), total)
    });
    assert_eq!(first_err, std::io::ErrorKind::OutOfMemory);
    assert_eq!(rest, 64, "no byte lost around the error");
}

/// A second stream on `ring` (of two 16-byte buffers) whose caller holds
/// both buffers: the chunks, and the live stream with its peer (dropping
/// the stream would make its chunks count as nobody's).
async fn another_stream_holds_every_buffer(
    ring: &BufRing,
) -> (
    Vec<RingBuf>,
    (ringlane::native::net::RecvMulti, std::net::TcpStream),
) {
    let (b, mut b_peer) = pair().await;
    b_peer.write_all(&[2u8; 32]).unwrap();
    let mut b_chunks = b.recv_multi(ring);
    let mut held = Vec::new();
    while held.iter().map(|c: &RingBuf| c.len()).sum::<usize>() < 32 {
        held.push(b_chunks.next().await.unwrap().unwrap());
    }
    assert_eq!(held.len(), 2, "B holds both buffers");
    (held, (b_chunks, b_peer))
}

/// Two streams share a ring of two buffers. B's caller holds both of B's
/// chunks for a while; A, holding none, runs out of buffers meanwhile. A
/// must wait for B's chunks to come back, not fail: the "every buffer is
/// held" error is for a caller that holds some itself (it may be waiting on
/// itself). A used to get the error although it held nothing.
#[test]
fn a_stream_holding_no_chunk_waits_for_another_streams_to_come_back() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let got = on_shard(&rt, 0, async {
        let ring = BufRing::new(2, 16).unwrap();
        let (a, mut a_peer) = pair().await;
        let (held, _b) = another_stream_holds_every_buffer(&ring).await;
        let mut a_chunks = a.recv_multi(&ring);
        a_peer.write_all(b"x").unwrap();
        // B's caller gives its chunks back a little later.
        let later = ringlane::spawn_local(async move {
            ringlane::time::sleep(Duration::from_millis(50)).await;
            drop(held);
        })
        .unwrap();
        let chunk = a_chunks
            .next()
            .timeout(Duration::from_secs(5))
            .await
            .expect("A's stream ended")
            .expect("A failed although it held no chunk");
        later.await.unwrap();
        chunk.to_vec()
    });
    assert_eq!(got, b"x");
}

/// A fresh stream per chunk, each dropped while its chunk is kept: once
/// every buffer is held, the next stream must say so, not wait. The
/// held chunks came from streams that are gone (the caller holds them).
/// A stream holding none of them itself waited forever (a regression of
/// the shared-ring fix, found in review).
#[test]
fn chunks_kept_from_dropped_streams_give_the_all_held_error_not_a_hang() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, async {
        let ring = BufRing::new(4, 16).unwrap();
        let (b, mut peer) = pair().await;
        let mut kept = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            // One chunk's worth per stream, sent once the last stream's
            // multishot receive is surely cancelled (the sleep's park
            // submits the cancel), so no dropped stream takes it.
            ringlane::time::sleep(Duration::from_millis(20)).await;
            peer.write_all(&[3u8; 16]).unwrap();
            let mut stream = b.recv_multi(&ring);
            let wait = stream.next().timeout(Duration::from_secs(5));
            let next = ringlane::time::timeout(Duration::from_secs(10), wait)
                .await
                .expect("the stream's wait hung")
                .expect("the stream ended");
            drop(stream);
            match next {
                Ok(chunk) => kept.push(chunk),
                Err(e) => {
                    last = Some(e.kind());
                    break;
                }
            }
        }
        (kept.len(), last)
    });
    assert_eq!(out, (4, Some(std::io::ErrorKind::OutOfMemory)));
}

/// A stream waiting for a buffer another live stream holds is bounded by
/// the `native::timeout` it is polled under, like its other waits; the
/// stream goes on afterwards.
#[test]
fn a_stream_waiting_for_a_buffer_times_out_and_goes_on() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let (timed_out, got) = on_shard(&rt, 0, async {
        let ring = BufRing::new(2, 16).unwrap();
        let (a, mut a_peer) = pair().await;
        let (held, _b) = another_stream_holds_every_buffer(&ring).await;
        let mut a_chunks = a.recv_multi(&ring);
        a_peer.write_all(b"x").unwrap();
        let wait = a_chunks.next().timeout(Duration::from_millis(100));
        let first = ringlane::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("the wait for a buffer ignored its native timeout")
            .expect("the stream ended");
        let timed_out = matches!(&first, Err(e) if e.kind() == std::io::ErrorKind::TimedOut);
        drop(held);
        let chunk = a_chunks
            .next()
            .timeout(Duration::from_secs(5))
            .await
            .expect("the stream ended")
            .expect("the buffers came back");
        (timed_out, chunk.to_vec())
    });
    assert!(
        timed_out,
        "the wait for a buffer ignored its native timeout"
    );
    assert_eq!(got, b"x");
}

#[test]
fn a_dropped_multishot_stream_gives_its_buffers_back() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let got = on_shard(&rt, 0, async {
        let ring = BufRing::new(2, 8).unwrap();
        let (conn, mut peer) = pair().await;
        peer.write_all(b"abcdefghijklmnop").unwrap(); // two buffers' worth
        let mut chunks = conn.recv_multi(&ring);
        let first = chunks.next().await.unwrap().unwrap().to_vec();
        // Let the second chunk's CQE arrive, untaken, then drop the stream:
        // its buffer must go back to the ring.
        ringlane::time::sleep(Duration::from_millis(20)).await;
        drop(chunks);
        peer.write_all(b"qrstuvwxyz012345").unwrap();
        drop(peer);
        // A second stream holds both buffers at once: only possible if
        // both came back (else it waits for a buffer that never returns).
        let rest = ringlane::time::timeout(Duration::from_secs(5), async {
            let mut chunks = conn.recv_multi(&ring);
            let mut rest = Vec::new();
            let mut held = Vec::new();
            while let Some(c) = chunks.next().await {
                let c = c.unwrap();
                rest.extend_from_slice(&c);
                held.push(c);
                if held.len() == 2 {
                    held.clear();
                }
            }
            rest
        })
        .await
        .expect("a buffer was lost with the dropped stream");
        (first, rest)
    });
    assert_eq!(got.0, b"abcdefgh");
    assert_eq!(
        got.1, b"qrstuvwxyz012345",
        "the dropped stream's chunk is gone, the rest arrives"
    );
}

#[test]
fn streams_share_one_ring() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let totals = on_shard(&rt, 0, async {
        let ring = BufRing::new(8, 512).unwrap();
        let mut tasks = Vec::new();
        for i in 0..4u8 {
            let ring = ring.clone();
            let (conn, mut peer) = pair().await;
            std::thread::spawn(move || {
                peer.write_all(&vec![i; 100_000]).unwrap();
            });
            tasks.push(
                ringlane::spawn_local(async move {
                    let mut chunks = conn.recv_multi(&ring);
                    let mut n = 0;
                    while let Some(c) = chunks.next().await {
                        let c = c.unwrap();
                        assert!(c.iter().all(|b| *b == i));
                        n += c.len();
                    }
                    n
                })
                .unwrap(),
            );
        }
        let mut totals = Vec::new();
        for t in tasks {
            totals.push(t.await.unwrap());
        }
        totals
    });
    assert_eq!(totals, [100_000; 4]);
}

#[test]
fn multishot_receive_reports_a_reset() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let ended = on_shard(&rt, 0, async {
        let ring = BufRing::new(4, 64).unwrap();
        let (conn, peer) = pair().await;
        // SO_LINGER 0: close sends a reset.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads one linger struct.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&peer),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                size_of::<libc::linger>() as u32,
            )
        };
        drop(peer);
        let mut chunks = conn.recv_multi(&ring);
        let first = chunks.next().await;
        let after = chunks.next().await;
        (
            first.map(|r| r.map(|c| c.len()).map_err(|e| e.kind())),
            after.is_none(),
        )
    });
    assert_eq!(ended.0, Some(Err(std::io::ErrorKind::ConnectionReset)));
    assert!(ended.1, "the stream ends after the error");
}

/// A registered file handed back out of its task and dropped after the
/// runtime shut down, while a `Handle` lives on. The slot could no longer
/// be cleared (its shard is gone), and the ring outlives the shard (other
/// shards keep its fd for their doorbells), so the ring's file table kept
/// the file open: here, the pipe's reader never saw end-of-file. The shard
/// now unregisters its tables when it exits.
#[test]
fn a_registered_file_dropped_after_shutdown_is_closed() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let _serial = SERIAL.lock();
    let (r, w) = common::pipe();
    let rt = common::runtime(1);
    let handle = rt.handle();
    let registered = on_shard(&rt, 0, async move {
        let w = File::from(w);
        let fixed = w.register().expect("register the write end");
        drop(w);
        fixed
    });
    assert!(registered.is_registered());
    rt.shutdown(Duration::from_secs(5));
    drop(registered);
    // SAFETY: `r` is a valid fd we own; F_SETFL with O_NONBLOCK is benign.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut reader = std::fs::File::from(r);
    let mut buf = [0u8; 1];
    match reader.read(&mut buf) {
        Ok(0) => {}
        other => panic!("the write end is still open somewhere: {other:?}"),
    }
    drop(handle);
}
