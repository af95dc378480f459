//! Registered resources, second round (`ringlane::native::fixed`,
//! `File::register`, ADR 0012): a registration dropped on another shard is
//! free by the time that shard's message says so, slots and buffers named
//! by SQEs dropped in the poll that queued them are not reused by
//! registrations made right after, the largest provided-buffer ring through
//! its `u16` tail wrap, chunks checked and dropped on several threads,
//! resources held across a shutdown, and a low `RLIMIT_NOFILE`.
//!
//! Every test holds `SERIAL` (fd counts, pipes' end of file and blocked
//! shards are process-wide); every wait is bounded. Kernels without buffer
//! rings or multishot receive print a SKIP line for those parts.

mod common;

use std::future::Future;
use std::io::{self, ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, FixedBuf, FixedBufPool, RingBuf};
use ringlane::native::fs::File;
use ringlane::native::net::{RecvMulti, UnixStream};

use common::LIMIT;
use common::fixed_io::{
    eventfd, fill_table, first_chunk_or_skip, index, on_shard, open_rw, read_available,
    ring_or_skip, set_nonblocking, slot, tokio_runtime,
};
use common::native_io::{Held, SERIAL, TempDir, drop_on_tokio, poll_once, settled_fd_count};

/// How long "at once" may take for an end of file to show.
const SHORT: Duration = Duration::from_millis(200);

/// `/dev/null`, opened for writing: a file any number of slots can hold.
fn dev_null() -> File {
    File::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("open /dev/null"),
    )
}

/// Burns `d` of CPU time in the calling poll (work done per message).
fn busy(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// `len` bytes with no short period (a reordering of chunks shows).
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect()
}

/// Where `a` and `b` first differ (or where the shorter one ends).
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))
}

/// Everything readable from a non-blocking pipe within `limit`, until end
/// of file; `(bytes, saw end of file)`.
fn drain_pipe(reader: &mut std::fs::File, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut all = Vec::new();
    loop {
        let (bytes, eof) = read_available(reader);
        all.extend_from_slice(&bytes);
        if eof {
            return (all, true);
        }
        if Instant::now() >= deadline {
            return (all, false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// 1. close() of a registered file away from its home shard
// ---------------------------------------------------------------------------

/// Expected: in one poll on shard 0, (a) a write through registered pipe A
/// (slot S) is queued and its future dropped, then pipe B is registered; (b)
/// a `write_fixed_at` from pool P (buffer index I) is queued and dropped,
/// `P` dropped, and pool Q created. B never gets slot S and Q never gets
/// index I while those SQEs can still reach the kernel; B's reader gets
/// exactly B's bytes and A's reader A's (or none) and then end of file; the
/// file gets P's bytes (or none), never Q's. Once the dropped ops ended, S
/// comes back (a new registration C gets it) and carries C's bytes only.
///
/// Why: the SQEs are issued at the tick's enter, after the registration
/// syscalls (synchronous) of the same poll. If a dropped op gave its slot
/// (or pool) back at drop instead of at its CQE, the old SQE would resolve
/// slot S to B's file (or index I to Q's memory) and write into the wrong
/// file (or write Q's bytes).
#[test]
fn ops_dropped_in_the_poll_that_queued_them_keep_their_slot_and_buffer_from_registrations_made_right_after()
 {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let dir = TempDir::new("fixed2-same-poll");
    let path = dir.0.join("f");
    std::fs::write(&path, b"").unwrap();
    let (ra, wa) = common::pipe();
    let (rb, wb) = common::pipe();
    let (rc, wc) = common::pipe();
    let [mut reader_a, mut reader_b, mut reader_c] = [ra, rb, rc].map(|r| {
        let f = std::fs::File::from(r);
        set_nonblocking(&f);
        f
    });
    let p = path.clone();
    let Held((slot_a, slot_b, slot_c, old_index, new_index, keep)) =
        on_shard(&rt, 0, LIMIT, async move {
            let fa = File::from(wa).register().unwrap();
            let slot_a = slot(&fa);
            let mut old_write = Box::pin(async move { fa.write(b"OLD-OP-BYTES".to_vec()).await });
            assert!(
                poll_once(&mut old_write).await,
                "the write waits for the tick's enter"
            );
            drop(old_write); // its SQE is still in the SQ: the kernel has not seen it
            let fb = File::from(wb).register().unwrap();
            let slot_b = slot(&fb);

            let file = open_rw(&p);
            let pool = FixedBufPool::new(1, 4096).unwrap();
            let mut old_buf = pool.try_get().unwrap();
            old_buf.put_slice(b"OLD-BUFFER");
            let old_index = index(&old_buf);
            let f2 = file.clone();
            let mut old_fixed = Box::pin(async move { f2.write_fixed_at(old_buf, 0).await });
            assert!(poll_once(&mut old_fixed).await, "the fixed write waits too");
            drop(old_fixed);
            drop(pool); // only the abandoned op holds the pool now
            let pool2 = FixedBufPool::new(1, 4096).unwrap();
            let mut new_buf = pool2.try_get().unwrap();
            let new_index = index(&new_buf);
            new_buf.put_slice(b"NEW-BUFFER");

            // The enter: the dropped SQEs, their cancels, and B's write.
            let (n, _) = fb.write(b"NEW".to_vec()).await;
            assert_eq!(n.expect("a write through B"), 3);
            // The dropped ops' CQEs come in; their slot and pool go back.
            ringlane::time::sleep(Duration::from_millis(20)).await;
            let fc = File::from(wc).register().unwrap();
            let slot_c = slot(&fc);
            let (n, _) = fc.write(b"C".to_vec()).await;
            assert_eq!(n.expect("a write through C"), 1);
            Held((
                slot_a,
                slot_b,
                slot_c,
                old_index,
                new_index,
                (fb, fc, new_buf, pool2, file),
            ))
        });
    assert_ne!(
        slot_b, slot_a,
        "slot {slot_a}, named by a write queued in this very poll, was handed to another file"
    );
    assert_ne!(
        new_index, old_index,
        "buffer index {old_index}, named by a fixed write queued in this very poll, was handed to a new pool"
    );
    let (b_bytes, _) = drain_pipe(&mut reader_b, SHORT);
    assert_eq!(
        b_bytes, b"NEW",
        "pipe B got bytes of the op dropped on A's slot"
    );
    let (c_bytes, _) = drain_pipe(&mut reader_c, SHORT);
    assert_eq!(c_bytes, b"C", "pipe C (registered after the op ended)");
    let (a_bytes, a_eof) = drain_pipe(&mut reader_a, LIMIT);
    assert!(
        a_bytes.is_empty() || a_bytes == b"OLD-OP-BYTES",
        "pipe A got {a_bytes:?}"
    );
    assert!(
        a_eof,
        "A's write end stayed open after its last op ended: its slot was never cleared"
    );
    let content = std::fs::read(&path).unwrap();
    assert!(
        content.is_empty() || content == b"OLD-BUFFER",
        "the dropped fixed write wrote {:?}: another pool's bytes at its index",
        String::from_utf8_lossy(&content)
    );
    assert_eq!(
        slot_c, slot_a,
        "the dropped write's slot never came back (first fit would give it to C)"
    );
    drop(keep);
}

// ---------------------------------------------------------------------------
// 3 and 4. Drops that happened before are not yet free
// ---------------------------------------------------------------------------

/// Expected: shard 0's file table is full; it sends 64 of its registered
/// files to a task on shard 1, which drops each one and then sends a
/// message back; for each message, shard 0 (doing ~100 µs of work per
/// message) registers one file. Every registration succeeds: each comes
/// after a message sent after a drop.
///
/// Why: as in the test above, the drops' clears wait in shard 0's mailbox
/// until its next tick, and the messages, already queued in the channel,
/// are received without a tick boundary. So registrations fail with
/// "table is full" although the program freed a slot before each one
/// (happens-before through the channel), with no blocking call anywhere.
#[test]
fn a_registration_dropped_on_another_shard_before_it_says_so_is_free_when_the_message_arrives() {
    let _serial = SERIAL.lock();
    const N: usize = 64;
    let rt = common::runtime(2);
    let h = rt.handle();
    let out = on_shard(&rt, 0, Duration::from_secs(60), async move {
        let null = dev_null();
        let (mut held, e) = fill_table(|| null.register());
        if e.kind() != ErrorKind::OutOfMemory || e.raw_os_error().is_some() {
            return Err(format!("the file table did not fill with our error: {e}"));
        }
        if held.len() <= N {
            return Err(format!("only {} slots", held.len()));
        }
        let (to_worker, mut files) = ringlane::channel::<File>(N).unwrap();
        let (to_main, mut tokens) = ringlane::channel::<usize>(N).unwrap();
        let worker = h
            .spawn_pinned(1, async move {
                let mut i = 0usize;
                while let Some(f) = files.recv().await {
                    drop(f); // a registration of shard 0, dropped here
                    if to_main.send(i).await.is_err() {
                        break;
                    }
                    i += 1;
                }
            })
            .unwrap();
        for f in held.drain(..N) {
            if to_worker.try_send(f).is_err() {
                panic!("the channel has room for {N}");
            }
        }
        drop(to_worker);
        let mut refused = Vec::new();
        let mut again = Vec::new();
        while let Some(i) = tokens.recv().await {
            busy(Duration::from_micros(100));
            match null.register() {
                Ok(f) => again.push(f),
                Err(e) => refused.push(format!("after message {i}: {:?}: {e}", e.kind())),
            }
        }
        if let Err(e) = worker.await {
            return Err(format!("the worker on shard 1: {e}"));
        }
        drop((held, again));
        Ok::<Vec<String>, String>(refused)
    });
    let refused = out.unwrap_or_else(|e| panic!("set-up: {e}"));
    assert!(
        refused.is_empty(),
        "{} of {N} registrations were refused although a registration had been dropped (on shard 1) \
         before each message that asked for them: {:#?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
}

// ---------------------------------------------------------------------------
// 5 and 6. Provided-buffer rings: the largest one, and give-backs from threads
// ---------------------------------------------------------------------------

/// Expected: a `BufRing` of 32,768 entries (the most its docs allow) of 16
/// bytes carries 70,000 chunks (1.12 MB) from a Unix stream in order, with
/// no error; the first chunk, held for the whole transfer, keeps its bytes,
/// and its buffer id is never handed out again meanwhile.
///
/// Why: 70,000 chunks move the kernel's `u16` head and our `u16` tail (which
/// starts at 32,768 after the first fill) past 65,536; the ring's memory
/// spans 128 pages. A wrap or mapping error shows as lost, reordered or
/// overwritten bytes, or as the held buffer coming back in another chunk.
#[test]
fn a_32768_entry_ring_carries_every_byte_through_tail_wraparound_and_a_held_chunk_never_changes() {
    let _serial = SERIAL.lock();
    const ENTRIES: u16 = 32768;
    const BUF: usize = 16;
    const CHUNKS: usize = 70_000;
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, Duration::from_secs(60), async move {
        let ring = match BufRing::new(ENTRIES, BUF) {
            Ok(ring) => ring,
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                println!("SKIP: no provided-buffer rings on this kernel ({e})");
                return None;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
                println!("SKIP: the kernel refused a 32,768-entry ring for memory ({e})");
                return None;
            }
            Err(e) => panic!("BufRing::new({ENTRIES}, {BUF}), within its documented range: {e}"),
        };
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = UnixStream::from_std(a);
        let writer = std::thread::spawn(move || {
            let mut b = b;
            let _ = b.write_all(&pattern(CHUNKS * BUF)); // then end of file
        });
        let mut chunks = ours.recv_multi(&ring);
        let held = first_chunk_or_skip(&mut chunks).await?;
        let (held_copy, held_bid) = (held.to_vec(), held.buffer_id());
        let mut got = held_copy.clone();
        let (mut n, mut aliased, mut error) = (1usize, 0usize, None);
        loop {
            match chunks.next().timeout(LIMIT).await {
                None => break,
                Some(Ok(c)) => {
                    if c.buffer_id() == held_bid {
                        aliased += 1;
                    }
                    got.extend_from_slice(&c);
                    n += 1;
                }
                Some(Err(e)) => {
                    error = Some(format!("{:?}: {e} after {} bytes", e.kind(), got.len()));
                    break;
                }
            }
        }
        // Our end closed before the join: a writer stuck on a full socket
        // (after an error above) gets `EPIPE` instead of blocking for ever.
        drop(chunks);
        drop(ours);
        writer.join().unwrap();
        let intact = held[..] == held_copy[..];
        Some((got, n, aliased, error, intact))
    });
    let Some((got, n, aliased, error, intact)) = out else {
        return;
    };
    assert_eq!(error, None, "the stream failed");
    let want = pattern(CHUNKS * BUF);
    assert!(
        got == want,
        "bytes lost or reordered: {} of {} arrived, first difference at {:?}",
        got.len(),
        want.len(),
        first_difference(&got, &want)
    );
    assert!(
        n >= CHUNKS,
        "{n} chunks of at most {BUF} bytes for {} bytes?",
        want.len()
    );
    assert_eq!(
        aliased, 0,
        "the held chunk's buffer was handed out again while held"
    );
    assert!(intact, "the chunk held through the transfer changed");
}

/// Expected: a 16-buffer ring of 61-byte buffers carries 256 KiB in order
/// while every chunk (but the first, held by the receiving task all along)
/// is handed to one of three threads, which checks its bytes after a short
/// delay and drops it there; no chunk changes while a thread holds it, the
/// held buffer never comes back in another chunk, and the stream yields no
/// error (at most 11 of 16 buffers are ever held, so "every buffer is held"
/// cannot apply).
///
/// Why: give-backs from three threads race each other and the shard's own
/// re-arms after `ENOBUFS`; a buffer given back twice (or put at a wrong
/// tail entry, or a wrong stride for 61-byte buffers) would let the kernel
/// write into a chunk a thread still holds.
#[test]
fn chunks_checked_and_dropped_on_three_threads_are_never_overwritten_while_held_and_every_byte_arrives_in_order()
 {
    let _serial = SERIAL.lock();
    const ENTRIES: u16 = 16;
    const BUF: usize = 61;
    const TOTAL: usize = 256 * 1024;
    let data = Arc::new(pattern(TOTAL));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for t in 0..3 {
        let (tx, rx) = crossbeam_channel::bounded::<(usize, RingBuf)>(2);
        let (data, bad) = (data.clone(), bad.clone());
        threads.push(std::thread::spawn(move || {
            for (off, chunk) in rx {
                busy(Duration::from_micros(20 + 15 * ((off / BUF) % 5) as u64));
                let end = (off + chunk.len()).min(data.len());
                if chunk[..] != data[off..end] {
                    bad.lock().push(format!(
                        "thread {t}: the chunk at byte {off} (buffer {}) changed while held",
                        chunk.buffer_id()
                    ));
                }
                drop(chunk);
            }
        }));
        senders.push(tx);
    }
    let rt = common::runtime(1);
    let d = data.clone();
    let out = on_shard(&rt, 0, Duration::from_secs(60), async move {
        let ring = ring_or_skip(ENTRIES, BUF)?;
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = UnixStream::from_std(a);
        let writer = std::thread::spawn(move || {
            let mut b = b;
            let _ = b.write_all(&d); // then end of file
        });
        let mut chunks = ours.recv_multi(&ring);
        let held = first_chunk_or_skip(&mut chunks).await?;
        let (held_copy, held_bid) = (held.to_vec(), held.buffer_id());
        let mut got = held_copy.clone();
        let (mut i, mut aliased, mut error) = (0usize, 0usize, None);
        loop {
            match chunks.next().timeout(LIMIT).await {
                None => break,
                Some(Ok(c)) => {
                    if c.buffer_id() == held_bid {
                        aliased += 1;
                    }
                    let off = got.len();
                    got.extend_from_slice(&c);
                    let mut item = (off, c);
                    loop {
                        match senders[i % 3].try_send(item) {
                            Ok(()) => break,
                            Err(crossbeam_channel::TrySendError::Full(back)) => {
                                item = back;
                                ringlane::yield_now().await;
                            }
                            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                                panic!("a checking thread is gone")
                            }
                        }
                    }
                    i += 1;
                }
                Some(Err(e)) => {
                    error = Some(format!("{:?}: {e} after {} bytes", e.kind(), got.len()));
                    break;
                }
            }
        }
        drop(senders);
        drop(chunks);
        drop(ours);
        writer.join().unwrap();
        let intact = held[..] == held_copy[..];
        Some((got, aliased, error, intact))
    });
    for t in threads {
        t.join().unwrap();
    }
    let Some((got, aliased, error, intact)) = out else {
        return;
    };
    let bad = bad.lock().clone();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(error, None, "the stream failed");
    assert!(
        got[..] == data[..],
        "bytes lost or reordered: {} of {} arrived, first difference at {:?}",
        got.len(),
        data.len(),
        first_difference(&got, &data)
    );
    assert_eq!(
        aliased, 0,
        "the held chunk's buffer was handed out again while held"
    );
    assert!(intact, "the chunk held by the task changed");
}

// ---------------------------------------------------------------------------
// 7. Registered resources held across a shutdown
// ---------------------------------------------------------------------------

/// A multishot stream handed out of its task with one chunk taken.
struct Stream {
    _ring: BufRing,
    chunks: RecvMulti,
    first: RingBuf,
    _ours: UnixStream,
    /// The same socket, for reading what the stream left in it.
    ours_std: std::os::unix::net::UnixStream,
    _peer: std::os::unix::net::UnixStream,
}

/// What one shard hands out of its task before the shutdown.
struct Kept {
    _file: File,
    pool: FixedBufPool,
    done: Option<FixedBuf>,
    in_flight: Pin<Box<dyn Future<Output = (io::Result<usize>, FixedBuf)> + Send>>,
    stream: Option<Stream>,
}

/// Bytes waiting in a socket now (without blocking or changing its flags).
fn recv_waiting(s: &std::os::unix::net::UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
        let n = unsafe {
            libc::recv(
                s.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

/// Expected: on each of two shards, a registered file with a finished
/// fixed read (its buffer kept), a fixed read of an empty registered
/// eventfd in flight and an armed multishot stream (one of two chunks
/// taken) are handed out of their tasks; a Tokio task waits for a buffer of
/// shard 0's exhausted pool. After `shutdown`: the report is clean; each
/// read in flight resolves with an error (not a hang, not data) and its
/// buffer reaches the Tokio waiter; each stream yields the rest of the 100
/// bytes sent (or leaves them in the socket) and ends; no byte is lost; the
/// kept buffers still read their bytes; and once everything is dropped on
/// a Tokio thread the process has the fds it had before.
///
/// Why: D5 cancels ops whose futures were handed out of their tasks and
/// then unregisters the tables; the cancelled ops' resources stay in their
/// cells until the futures are polled or dropped, off the shards, after the
/// shard is gone: every part of that must end, give buffers back to their
/// pool and wake its waiters, and close what it holds.
#[test]
fn registered_resources_held_across_shutdown_end_cleanly_lose_no_byte_and_leak_no_fd() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("fixed2-shutdown");
    let rt = common::runtime(2);
    let mut kept = Vec::new();
    for shard in 0..2usize {
        let path = dir.0.join(format!("f{shard}"));
        std::fs::write(&path, format!("bytes of shard {shard}")).unwrap();
        let Held(k) = on_shard(&rt, shard, LIMIT, async move {
            let file = open_rw(&path).register().unwrap();
            let pool = FixedBufPool::new(2, 4096).unwrap();
            let (n, done) = file.read_fixed_at(pool.try_get().unwrap(), 0).await;
            assert_eq!(n.unwrap(), 16);
            let ev = File::from(eventfd()).register().unwrap();
            let buf = pool.try_get().unwrap();
            let mut in_flight: Pin<Box<dyn Future<Output = (io::Result<usize>, FixedBuf)> + Send>> =
                Box::pin(async move { ev.read_fixed_at(buf, 0).await });
            assert!(
                poll_once(&mut in_flight).await,
                "a read of an empty eventfd waits"
            );
            let stream = match ring_or_skip(4, 64) {
                None => None,
                Some(ring) => {
                    let (a, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
                    let ours_std = a.try_clone().unwrap();
                    let ours = UnixStream::from_std(a);
                    peer.write_all(&[shard as u8; 100]).unwrap();
                    let mut chunks = ours.recv_multi(&ring);
                    first_chunk_or_skip(&mut chunks).await.map(|first| Stream {
                        _ring: ring,
                        chunks,
                        first,
                        _ours: ours,
                        ours_std,
                        _peer: peer,
                    })
                }
            };
            Held(Kept {
                _file: file,
                pool,
                done: Some(done),
                in_flight,
                stream,
            })
        });
        kept.push(k);
    }
    let tokio_rt = tokio_runtime();
    let p0 = kept[0].pool.clone();
    let waiter = tokio_rt.spawn(async move { p0.get().await.capacity() });
    let report = rt.shutdown(LIMIT);
    let mut problems = Vec::new();
    if !report.is_clean() {
        problems.push(format!("the shutdown: {report:?}"));
    }
    for (shard, k) in kept.iter_mut().enumerate() {
        let r = tokio_rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), &mut k.in_flight).await
        });
        match r {
            Err(_) => problems.push(format!(
                "shard {shard}: a fixed read in flight at shutdown never resolved afterwards"
            )),
            Ok((Ok(n), _)) => problems.push(format!(
                "shard {shard}: a read of an empty eventfd returned {n} bytes"
            )),
            Ok((Err(_), buf)) => drop(buf), // back to its pool
        }
        let done = k.done.as_ref().unwrap();
        let want = format!("bytes of shard {shard}");
        if done[..] != *want.as_bytes() {
            problems.push(format!(
                "shard {shard}: a kept fixed buffer reads {:?}",
                &done[..]
            ));
        }
        let Some(s) = &mut k.stream else { continue };
        let mut bytes = s.first.to_vec();
        let ended = tokio_rt.block_on(async {
            loop {
                match tokio::time::timeout(Duration::from_secs(2), s.chunks.next()).await {
                    Err(_) => break false,
                    Ok(None) | Ok(Some(Err(_))) => break true,
                    Ok(Some(Ok(c))) => bytes.extend_from_slice(&c),
                }
            }
        });
        if !ended {
            problems.push(format!(
                "shard {shard}: a multishot stream armed at shutdown neither ended nor failed afterwards"
            ));
        }
        bytes.extend(recv_waiting(&s.ours_std));
        if bytes != vec![shard as u8; 100] {
            problems.push(format!(
                "shard {shard}: {} of the 100 bytes sent before the shutdown were found (stream and socket)",
                bytes.len()
            ));
        }
    }
    match tokio_rt.block_on(async { tokio::time::timeout(LIMIT, waiter).await }) {
        Ok(Ok(4096)) => {}
        other => problems.push(format!(
            "a Tokio task waiting for a buffer of shard 0's pool, given back by a read cancelled at shutdown: {other:?}"
        )),
    }
    for (shard, k) in kept.iter_mut().enumerate() {
        drop(k.done.take());
        if k.pool.available() != 2 {
            problems.push(format!(
                "shard {shard}: {} of 2 buffers back in the pool",
                k.pool.available()
            ));
        }
    }
    drop_on_tokio(kept);
    tokio_rt.shutdown_timeout(LIMIT);
    let mut now = common::fd_count();
    let deadline = Instant::now() + LIMIT;
    while now != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        now = common::fd_count();
    }
    if now != before {
        problems.push(format!(
            "fds: {before} before, {now} after everything was dropped"
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

// ---------------------------------------------------------------------------
// 8. A low RLIMIT_NOFILE (child process)
// ---------------------------------------------------------------------------

const NOFILE_CHILD: &str = "RINGLANE_ADV_FIXED2_NOFILE_CHILD";

const LOW_NOFILE: libc::rlim_t = 24;

fn nofile() -> (libc::rlim_t, libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    (lim.rlim_cur, lim.rlim_max)
}

fn set_soft_nofile(soft: libc::rlim_t) {
    let (_, hard) = nofile();
    let lim = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit; the soft limit stays within the hard one.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// Child side: prints `SKIP=`, `BAD=`, `NOTE=` and `DONE=` lines. Run only
/// by the parent test below.
#[test]
#[ignore = "run in a child process by a_low_nofile_limit_sizes_the_file_table_and_its_refusals_are_clear"]
fn child_file_table_under_a_low_nofile_limit() {
    if std::env::var_os(NOFILE_CHILD).is_none() {
        return;
    }
    let (orig, _) = nofile();
    if orig < 128 {
        println!("SKIP=the soft RLIMIT_NOFILE is only {orig}");
        return;
    }
    let rt = common::runtime(2);
    let null = dev_null();
    let mut lines: Vec<String> = Vec::new();

    // A zero limit: the kernel refuses even a one-slot table.
    set_soft_nofile(0);
    let n = null.clone();
    let zero = on_shard(&rt, 0, LIMIT, async move {
        n.register()
            .map(drop)
            .map_err(|e| (e.kind(), e.raw_os_error(), e.to_string()))
    });
    set_soft_nofile(LOW_NOFILE);
    match zero {
        Ok(()) => lines.push("NOTE=a file registered under a zero RLIMIT_NOFILE".into()),
        Err((kind, None, msg)) => lines.push(format!(
            "BAD=a table the kernel refused under a zero fd limit was reported as ours: {kind:?}: {msg}"
        )),
        Err(_) => {}
    }

    // A low limit: exactly that many slots, a clear refusal, given back.
    let n = null.clone();
    let low = on_shard(&rt, 0, LIMIT, async move {
        let mut out = Vec::new();
        let (held, e) = fill_table(|| n.register());
        if held.len() as libc::rlim_t != LOW_NOFILE {
            out.push(format!(
                "BAD=a table made under a soft RLIMIT_NOFILE of {LOW_NOFILE} took {} registrations \
                 (the refusal under a zero limit poisoned it?)",
                held.len()
            ));
        }
        if e.kind() != ErrorKind::OutOfMemory {
            out.push(format!(
                "BAD=registration {} under a low limit: {:?}: {e}",
                held.len() + 1,
                e.kind()
            ));
        }
        if let Some(last) = held.last() {
            let (w, _) = last.write(b"x".to_vec()).await;
            if let Err(e) = w {
                out.push(format!("BAD=a write through the last slot: {e}"));
            }
        }
        let count = held.len();
        drop(held);
        let (again, _) = fill_table(|| n.register());
        if again.len() != count {
            out.push(format!(
                "BAD=after dropping all {count} registrations, {} fit again",
                again.len()
            ));
        }
        out
    });
    lines.extend(low);

    // The limit raised again: a shard whose first table comes now gets 1,024.
    set_soft_nofile(orig);
    let n = null.clone();
    let (count, e) = on_shard(&rt, 1, LIMIT, async move {
        let (held, e) = fill_table(|| n.register());
        (held.len(), e.to_string())
    });
    let want = orig.min(1024) as usize;
    if count != want {
        lines.push(format!(
            "BAD=shard 1's first table under a soft limit of {orig}: {count} registrations, not {want} ({e})"
        ));
    }
    lines.push("DONE=yes".into());
    for line in lines {
        println!("{line}");
    }
}

/// Runs test `name` of this binary in a child process with `env` set; its
/// stdout (it must exit successfully within 60 s).
fn run_child(name: &str, env: &str) -> String {
    let (status, out) = common::child::run_ignored(name, env, Duration::from_secs(60));
    assert!(status.success(), "the child failed:\n{out}");
    out
}

/// Expected (in a child process, since the limit is process-wide): under
/// a zero soft `RLIMIT_NOFILE` the first registration fails with the
/// kernel's error, not "table is full"; under a soft limit of 24 the shard
/// then makes a 24-slot table: exactly 24 registrations, the 25th
/// `OutOfMemory`, the last one writes, and all 24 come back when dropped;
/// with the limit raised again, shard 1's first table takes 1,024.
///
/// Why: the table's size is read from the soft limit at its creation
/// (`sys/fixed.rs:74-88`); a refused creation must leave no half-made
/// state (`created` set, a zero-size allocator) that turns every later
/// registration into "full", and the docs promise "1,024 slots, or the
/// RLIMIT_NOFILE soft limit if lower".
#[test]
fn a_low_nofile_limit_sizes_the_file_table_and_its_refusals_are_clear() {
    let _serial = SERIAL.lock();
    let out = run_child("child_file_table_under_a_low_nofile_limit", NOFILE_CHILD);
    if let Some(why) = out
        .lines()
        .find_map(|l| l.split_once("SKIP=").map(|(_, w)| w))
    {
        println!("SKIP: {why}");
        return;
    }
    for note in out.lines().filter(|l| l.contains("NOTE=")) {
        println!("{note}");
    }
    let bad: Vec<&str> = out.lines().filter(|l| l.contains("BAD=")).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(out.contains("DONE=yes"), "the child did not finish:\n{out}");
}

/// Whether `e` is our "table is full" (not the kernel's `ENOMEM`, which a
/// memlock limit gives first); prints a SKIP line for `what` otherwise.
fn table_full(what: &str, e: &io::Error) -> bool {
    if e.kind() == ErrorKind::OutOfMemory && e.raw_os_error().is_none() {
        return true;
    }
    println!("SKIP the {what} part: the table did not fill with our error ({e})");
    false
}

/// How many registrations are handed to a helper thread and made again.
const HANDED: usize = 8;

/// Hands `HANDED` of `held` (a full table's registrations) to a helper
/// thread that drops them and is joined, then makes as many again at once.
/// `Some(problem)` if the table refused any.
async fn refill_after_a_helper_dropped_some<T: Send + 'static>(
    what: &'static str,
    mut held: Vec<T>,
    mut make: impl FnMut() -> io::Result<T>,
) -> Option<String> {
    if held.len() < HANDED {
        return Some(format!("{what}: only {} registrations fit", held.len()));
    }
    let handed: Vec<T> = held.drain(..HANDED).collect();
    std::thread::scope(|s| {
        s.spawn(move || drop(handed));
    });
    // Those registrations are gone, and the helper was joined.
    let mut again = Vec::new();
    let mut first_error = None;
    for _ in 0..HANDED {
        match make() {
            Ok(v) => again.push(v),
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{:?}: {e}", e.kind()));
            }
        }
    }
    let refused = HANDED - again.len();
    let problem = match first_error {
        None => None,
        Some(first) => {
            for _ in 0..3 {
                ringlane::yield_now().await;
            }
            let later: Vec<T> = (0..refused).filter_map(|_| make().ok()).collect();
            Some(format!(
                "{what}: {refused} of {HANDED} registrations refused right after {HANDED} were \
                 dropped on a helper thread this task had joined ({first}); after three yields, \
                 {} of those went through",
                later.len()
            ))
        }
    };
    drop((held, again));
    problem
}

/// Expected: with a shard's file table full, a task on that shard hands 8
/// registered files to a helper thread (`std::thread::scope`, as a rayon
/// section would), which drops them and is joined: 8 new registrations
/// succeed at once. The same for the buffer table (8 one-buffer pools) and
/// the buffer groups (8 rings).
///
/// Before the fix: a registration dropped off its home shard was cleared
/// only by a closure in the home's mailbox, read once per tick before the
/// tasks run; the task that let them go was still in its poll, so the new
/// registrations failed with "this shard's registered ... table is full"
/// for a table the program knew had room. Now a registration on the home
/// first runs the releases queued for it.
#[test]
fn registrations_dropped_on_a_helper_thread_are_free_for_the_task_that_joined_it() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let problems = on_shard(&rt, 0, Duration::from_secs(60), async {
        let mut problems = Vec::new();
        let null = dev_null();
        let (files, e) = fill_table(|| null.register());
        if table_full("file table", &e) {
            problems.extend(
                refill_after_a_helper_dropped_some("files", files, || null.register()).await,
            );
        }
        let (pools, e) = fill_table(|| FixedBufPool::new(1, 4096));
        if table_full("buffer table", &e) {
            problems.extend(
                refill_after_a_helper_dropped_some("pools", pools, || FixedBufPool::new(1, 4096))
                    .await,
            );
        } else {
            drop(pools);
        }
        if let Some(first) = ring_or_skip(1, 64) {
            let (mut rings, e) = fill_table(|| BufRing::new(1, 64));
            rings.push(first);
            if table_full("buffer group", &e) {
                problems.extend(
                    refill_after_a_helper_dropped_some("rings", rings, || BufRing::new(1, 64))
                        .await,
                );
            }
        }
        problems
    });
    assert!(problems.is_empty(), "{problems:#?}");
}
