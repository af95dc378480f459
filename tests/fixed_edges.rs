//! Registered files and fixed buffers at their edges: positioned I/O on a
//! pipe, offsets and lengths at the limits of a buffer and of `i64`, one
//! file in several slots and shards, and another runtime's registrations.

mod common;

use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{FixedBuf, FixedBufPool};
use ringlane::native::fs::File;

use common::LIMIT;
use common::fixed_io::*;
use common::native_io::{TempDir, drop_on_tokio, unix_pair};

/// Expected: `read_fixed_at` and `write_fixed_at` on a pipe fail with
/// `ESPIPE`, exactly as `read_at`/`write_at` (and `pread`/`pwrite`) do, and
/// leave the bytes in the pipe where they are.
///
/// Why: io_uring ignores the offset of a read or write on a stream and
/// takes (or appends) stream bytes instead. The plain positioned ops ask
/// `Seekable` first for that reason, and the fixed ones document their
/// errors as "as `read_at`", but `fixed_op` asks nothing: a fixed read "at
/// offset 4096" of a pipe silently consumes its next bytes, and a fixed
/// write "at offset 4096" appends to the stream.
#[test]
fn positioned_fixed_io_on_a_pipe_fails_like_read_at_and_leaves_the_stream_alone() {
    let rt = common::runtime(1);
    let (r, w) = common::pipe();
    let mut probe = std::fs::File::from(r.try_clone().unwrap());
    let std_errno = probe
        .read_at(&mut [0u8; 8], 4096)
        .unwrap_err()
        .raw_os_error();
    assert_eq!(std_errno, Some(libc::ESPIPE), "pread on a pipe");
    std::fs::File::from(w.try_clone().unwrap())
        .write_all(b"stream-bytes")
        .unwrap();
    let (plain, fixed, registered, write) = on_shard(&rt, 0, LIMIT, async move {
        let pool = FixedBufPool::new(1, 4096).unwrap();
        let reader = File::from(r);
        let (plain, _) = reader.read_at(Vec::with_capacity(64), 4096).await;
        let plain = plain.map_err(|e| e.raw_os_error());
        let (fixed, buf) = reader
            .read_fixed_at(pool.try_get().unwrap(), 4096)
            .timeout(LIMIT)
            .await;
        let fixed = fixed
            .map(|n| buf[..n].to_vec())
            .map_err(|e| e.raw_os_error());
        if fixed.is_ok() {
            return (plain, fixed, None, None); // the bytes are gone: stop here
        }
        let registered = reader.register().unwrap();
        let (r, mut buf) = registered.read_fixed_at(buf, 4096).timeout(LIMIT).await;
        let registered = r.map(|n| buf[..n].to_vec()).map_err(|e| e.raw_os_error());
        if registered.is_ok() {
            return (plain, fixed, Some(registered), None);
        }
        buf.put_slice(b"appended");
        let writer = File::from(w).register().unwrap();
        let (write, _buf) = writer.write_fixed_at(buf, 4096).timeout(LIMIT).await;
        (plain, fixed, Some(registered), Some(outcome(write)))
    });
    assert_eq!(plain.err(), Some(std_errno), "read_at on a pipe, as pread");
    assert_eq!(
        fixed,
        Err(std_errno),
        "read_fixed_at at offset 4096 of a pipe must fail as read_at does, not take stream bytes"
    );
    assert_eq!(
        registered,
        Some(Err(std_errno)),
        "the same through a registered file"
    );
    assert_eq!(
        write,
        Some(Err(std_errno)),
        "write_fixed_at at offset 4096 of a pipe must fail as write_at does, not append"
    );
    set_nonblocking(&probe);
    let (left, _) = read_available(&mut probe);
    assert_eq!(left, b"stream-bytes", "the pipe's bytes were touched");
}

/// Expected: fixed reads and writes at the edges behave as `pread` and
/// `pwrite` do and never touch the memory next to their buffer: a read of
/// a long file fills exactly the capacity; at and past the end it reads 0
/// and `len()` becomes 0 (not the stale length); at `i64::MAX` the outcome
/// equals `pread`'s/`pwrite`'s; past `i64::MAX` it is `InvalidInput` before
/// the kernel; a full buffer appends exactly its capacity; a write far past
/// the end leaves a hole of zeros. Every failed op gives the buffer back
/// with its bytes and length. The same with a plain and a registered file.
///
/// Why: `read_fixed_at` passes the capacity, not the length, and sets the
/// length from the result; an off-by-a-page length (stride against
/// capacity) or a length not reset on a 0-byte read would show here. The
/// buffer right after the target in the pool's region is filled with a
/// pattern that any overrun would break.
#[test]
fn fixed_reads_and_writes_at_the_edges_stay_inside_their_buffer_and_agree_with_std() {
    let rt = common::runtime(1);
    let dir = TempDir::new("fixedadv-edges");
    for registered in [false, true] {
        let path = dir.0.join(format!("edges-{registered}"));
        on_shard(&rt, 0, LIMIT, fixed_edges(path, registered));
    }
}

async fn fixed_edges(path: std::path::PathBuf, registered: bool) {
    const CAP: usize = 4096;
    let path = path.as_path();
    let data: Vec<u8> = (0..3 * CAP + 123).map(|i| (i % 251) as u8).collect();
    std::fs::write(path, &data).unwrap();
    let check = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let plain = File::from(check.try_clone().unwrap());
    let f = if registered {
        plain.register().unwrap()
    } else {
        plain
    };
    let pool = FixedBufPool::new(2, CAP).unwrap();
    let mut target = pool.try_get().unwrap();
    let mut guard = pool.try_get().unwrap();
    assert_eq!(target.capacity(), CAP);
    assert_eq!(
        index(&guard),
        index(&target) + 1,
        "the guard is the buffer right after the target"
    );
    assert_eq!(guard.put_slice(&[0xEE; CAP]), CAP);
    let guard_intact = |g: &FixedBuf| g.len() == CAP && g.iter().all(|&b| b == 0xEE);
    let len = data.len() as u64;

    // A read of a longer file stops at the capacity.
    let (n, t) = f.read_fixed_at(target, 0).await;
    target = t;
    assert_eq!(n.unwrap(), CAP);
    assert_eq!(&target[..], &data[..CAP]);
    assert!(guard_intact(&guard), "a read at 0 wrote past its buffer");
    // The tail: fewer bytes, and `len()` shrinks to them.
    let (n, t) = f.read_fixed_at(target, len - 100).await;
    target = t;
    assert_eq!(n.unwrap(), 100);
    assert_eq!(&target[..], &data[data.len() - 100..]);
    // At and past the end: 0 bytes, an empty buffer.
    for at in [len, len + 1, len + (1 << 40)] {
        target.put_slice(b"stale");
        let (n, t) = f.read_fixed_at(target, at).await;
        target = t;
        assert_eq!(n.unwrap(), 0, "a read at {at} of a {len}-byte file");
        assert!(
            target.is_empty(),
            "len() is the count read, not the stale 5"
        );
    }
    // What a read at the end leaves is no write.
    let (r, t) = f.write_fixed_at(target, 0).await;
    target = t;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidInput, "empty");
    // The largest offset the kernel sees: what pread says, buffer intact.
    let std_read = outcome(check.read_at(&mut [0u8; CAP], i64::MAX as u64));
    target.put_slice(b"kept");
    let (r, t) = f.read_fixed_at(target, i64::MAX as u64).await;
    target = t;
    let fixed_read = outcome(r);
    assert_eq!(fixed_read, std_read, "a read at i64::MAX");
    if fixed_read.is_err() {
        assert_eq!(&target[..], b"kept", "a failed read changed the buffer");
    }
    // Past i64::MAX: refused before the kernel, buffer intact.
    for at in [i64::MAX as u64 + 1, u64::MAX] {
        target.put_slice(b"kept");
        let (r, t) = f.read_fixed_at(target, at).await;
        target = t;
        assert_eq!(
            r.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "read at {at}"
        );
        assert_eq!(&target[..], b"kept");
        let (r, t) = f.write_fixed_at(target, at).await;
        target = t;
        assert_eq!(
            r.unwrap_err().kind(),
            ErrorKind::InvalidInput,
            "write at {at}"
        );
        assert_eq!(&target[..], b"kept");
    }
    // A full buffer appended at the end: exactly the capacity.
    assert_eq!(
        target.put_slice(&[0xAB; CAP + 1000]),
        CAP,
        "cut at capacity"
    );
    let (n, t) = f.write_fixed_at(target, len).await;
    target = t;
    assert_eq!(n.unwrap(), CAP);
    let mut back = vec![0u8; CAP + 10];
    assert_eq!(check.read_at(&mut back, len).unwrap(), CAP);
    assert!(back[..CAP].iter().all(|&b| b == 0xAB), "the appended bytes");
    // One byte far past the end: zeros before it.
    let far = 1u64 << 20;
    target.put_slice(b"Z");
    let (n, t) = f.write_fixed_at(target, far).await;
    target = t;
    assert_eq!(n.unwrap(), 1);
    assert_eq!(check.metadata().unwrap().len(), far + 1);
    let mut hole = [1u8; 64];
    check.read_exact_at(&mut hole, far - 64).unwrap();
    assert_eq!(hole, [0u8; 64], "the hole reads as zeros");
    // A write at i64::MAX: what pwrite says; the file unchanged.
    let std_write = outcome(check.write_at(b"Z", i64::MAX as u64));
    let (r, t) = f.write_fixed_at(target, i64::MAX as u64).await;
    target = t;
    assert_eq!(outcome(r), std_write, "a write at i64::MAX");
    assert_eq!(&target[..], b"Z", "the buffer comes back intact");
    assert_eq!(check.metadata().unwrap().len(), far + 1);
    assert!(guard_intact(&guard), "an op wrote into the next buffer");
    drop((target, guard));
    assert_eq!(pool.available(), 2);
}

/// Expected: one `File` registered twice on its shard takes two slots (a
/// registered `File` registered again there is the same slot), and on
/// another shard a slot of that shard's table; each registration writes to
/// the same pipe. The pipe's reader sees end of file only once the plain
/// `File`, every registration (two slots on shard 0, one on shard 1, the
/// last dropped on a plain thread) and their clones are gone; then both
/// shards hand the freed slots out again.
///
/// Why: each slot holds its own reference to the file in the kernel; a
/// slot not cleared (a registration dropped off its shard whose clearing
/// is lost, or a second slot of the same `File` forgotten) keeps the write
/// end open for ever: the reader never sees EOF.
#[test]
fn one_file_in_several_slots_and_shards_stays_open_until_every_registration_is_gone() {
    let rt = common::runtime(2);
    let handle = rt.handle();
    let (r, w) = common::pipe();
    let mut reader = std::fs::File::from(r);
    set_nonblocking(&reader);
    let (last, s1, s2, s3) = on_shard(&rt, 0, LIMIT, async move {
        let plain = File::from(w);
        let r1 = plain.register().unwrap();
        let r2 = plain.register().unwrap();
        let (s1, s2) = (slot(&r1), slot(&r2));
        assert_ne!(s1, s2, "one File registered twice takes two slots");
        let again = r1.register().unwrap();
        assert_eq!(
            (debug_num(&again, "shard"), slot(&again)),
            (0, s1),
            "a registered File registered again on its shard is the same slot"
        );
        for (f, word) in [(&r1, "one"), (&r2, "two"), (&plain, "three")] {
            let (n, _) = f.write(word.as_bytes().to_vec()).await;
            assert_eq!(n.unwrap(), word.len());
        }
        let elsewhere = r1.clone();
        let (r3, s3) = handle
            .spawn_pinned(1, async move {
                let (wrong, _) = elsewhere.write(b"x".to_vec()).await;
                let wrong = wrong.unwrap_err();
                assert_eq!(wrong.kind(), ErrorKind::InvalidInput, "{wrong}");
                let r3 = elsewhere.register().unwrap();
                assert_eq!(debug_num(&r3, "shard"), 1, "a slot of shard 1's table");
                let (n, _) = r3.write(b"four".to_vec()).await;
                assert_eq!(n.unwrap(), 4);
                let s3 = slot(&r3);
                (r3, s3)
            })
            .unwrap()
            .await
            .unwrap();
        drop((plain, r1, again));
        let (n, _) = r2.write(b"five".to_vec()).await;
        assert_eq!(n.unwrap(), 4, "r2 writes after its siblings are gone");
        drop(r2);
        (r3, s1, s2, s3)
    });
    let expected = b"onetwothreefourfive";
    let mut got = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while got.len() < expected.len() {
        let (bytes, eof) = read_available(&mut reader);
        got.extend_from_slice(&bytes);
        assert!(!eof, "end of file while shard 1's registration is alive");
        assert!(Instant::now() < deadline, "only {got:?} arrived");
        std::thread::yield_now();
    }
    assert_eq!(got, expected);
    std::thread::spawn(move || drop(last)).join().unwrap();
    let deadline = Instant::now() + LIMIT;
    loop {
        let (bytes, eof) = read_available(&mut reader);
        assert!(bytes.is_empty(), "stray bytes {bytes:?}");
        if eof {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the write end stayed open: a registration's slot was never cleared"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let fresh = |shard| {
        on_shard(&rt, shard, LIMIT, async {
            let (_r, w) = common::pipe();
            slot(&File::from(w).register().unwrap())
        })
    };
    assert_eq!(fresh(0), s1.min(s2), "shard 0's freed slots are reused");
    assert_eq!(fresh(1), s3, "shard 1's freed slot is reused");
}

/// Expected: two runtimes, each with one shard 0 whose tables hand out the
/// same numbers: runtime A's registered file (slot 0 of A) used on B's
/// shard 0 is refused (`InvalidInput`) and neither reads nor writes B's
/// file at B's slot 0; A's fixed buffer (index 0 of A) is refused with B's
/// files, B's buffer with A's file, A's ring with B's sockets. After A shut
/// down the same holds, A's registered file registers anew on B (another
/// slot) and reads its own bytes, A's ring chunk still reads its bytes,
/// and A's leftovers dropped on a Tokio thread panic nowhere.
///
/// Why: slots are per ring, so "the same shard" must mean the same ring
/// (the `Remote`), not the same index; comparing indexes would make A's
/// slot 0 name B's file, reading or overwriting it.
#[test]
fn another_runtimes_registrations_are_refused_at_the_same_numbers_and_after_it_shut_down() {
    let (rt_a, rt_b) = (common::runtime(1), common::runtime(1));
    let dir = TempDir::new("fixedadv-two-runtimes");
    let px = &dir.0.join("x");
    let py = &dir.0.join("y");
    std::fs::write(px, b"XXXXXXXX").unwrap();
    std::fs::write(py, b"YYYYYYYY").unwrap();
    let (x, y) = (open_rw(px), open_rw(py));
    let (xa, pa, ba, ring_a, chunk_a) = on_shard(&rt_a, 0, LIMIT, async move {
        let xa = x.register().unwrap();
        let pa = FixedBufPool::new(1, 4096).unwrap();
        let mut ba = pa.try_get().unwrap();
        ba.put_slice(b"A's buffer");
        let ring_a = ring_or_skip(2, 16);
        let chunk_a = match &ring_a {
            Some(ring) => {
                let (ours, _, mut peer) = unix_pair();
                peer.write_all(b"A-ring-chunk-16b").unwrap();
                let mut chunks = ours.recv_multi(ring);
                first_chunk_or_skip(&mut chunks).await
            }
            None => None,
        };
        (xa, pa, ba, ring_a, chunk_a)
    });
    let (yb, y, xa, ba, bb, pb, ring_a) = on_shard(&rt_b, 0, LIMIT, async move {
        let yb = y.register().unwrap();
        assert_eq!(
            slot(&yb),
            slot(&xa),
            "both first file slots have one number"
        );
        let pb = FixedBufPool::new(1, 4096).unwrap();
        let mut bb = pb.try_get().unwrap();
        assert_eq!(index(&bb), index(&ba), "both first buffers have one index");
        bb.put_slice(&[0xBB; 4096]);
        let (r, v) = xa.read_at(Vec::with_capacity(16), 0).await;
        assert_refused("A's registered file read on B", r);
        assert!(v.is_empty(), "bytes of B's file at the same slot: {v:?}");
        let (r, _) = xa.write_at(b"ZZZZ".to_vec(), 0).await;
        assert_refused("A's registered file written on B", r);
        let (r, ba) = y.read_fixed_at(ba, 0).await;
        assert_refused("A's buffer read into on B", r);
        let (r, ba) = yb.read_fixed_at(ba, 0).await;
        assert_refused("A's buffer with B's registered file", r);
        assert_eq!(&ba[..], b"A's buffer");
        let (r, bb) = xa.read_fixed_at(bb, 0).await;
        assert_refused("B's buffer with A's registered file", r);
        assert!(bb.len() == 4096 && bb.iter().all(|&b| b == 0xBB));
        if let Some(ring) = &ring_a {
            let (ours, _, mut peer) = unix_pair();
            peer.write_all(b"q").unwrap();
            let mut chunks = ours.recv_multi(ring);
            match chunks.next().timeout(LIMIT).await {
                Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}"),
                other => panic!("A's ring on B's shard: {other:?}"),
            }
        }
        (yb, y, xa, ba, bb, pb, ring_a)
    });
    let _ = rt_a.shutdown(LIMIT);
    let (xa, ba) = on_shard(&rt_b, 0, LIMIT, async move {
        let (r, _) = xa.read_at(Vec::with_capacity(16), 0).await;
        assert_refused("A's registered file after A shut down", r);
        let (r, ba) = y.read_fixed_at(ba, 0).await;
        assert_refused("A's buffer after A shut down", r);
        let xb = xa.register().expect("A's file registered anew on B");
        assert_ne!(slot(&xb), slot(&yb), "B's slot of Y is taken");
        let (n, v) = xb.read_at(Vec::with_capacity(16), 0).await;
        assert_eq!(&v[..n.unwrap()], b"XXXXXXXX");
        let (n, v) = yb.read_at(Vec::with_capacity(16), 0).await;
        assert_eq!(&v[..n.unwrap()], b"YYYYYYYY");
        assert!(bb.iter().all(|&b| b == 0xBB));
        drop((xb, yb, bb, pb));
        (xa, ba)
    });
    if let Some(chunk) = &chunk_a {
        assert_eq!(&chunk[..], b"A-ring-chunk-16b", "a chunk past its runtime");
    }
    drop_on_tokio((xa, pa, ba, ring_a, chunk_a));
    assert_eq!(std::fs::read(px).unwrap(), b"XXXXXXXX");
    assert_eq!(std::fs::read(py).unwrap(), b"YYYYYYYY");
    let first = on_shard(&rt_b, 0, LIMIT, async {
        let pool = FixedBufPool::new(1, 4096).unwrap();
        index(&pool.try_get().unwrap())
    });
    assert_eq!(first, 0, "B's buffer slot came back");
}
