//! The native lane's files: round trips, bad input, and the op lifecycle's
//! hard cases (a future dropped in flight, a cancelled open, shutdown with
//! ops in flight), with fd counts checked before and after.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ringlane::native::fs::{File, OpenOptions};

/// fd counts are process-wide and libtest runs tests in parallel threads:
/// every test here holds this lock, so counts see only their own test.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ringlane-test-{name}-{}", std::process::id()))
}

#[test]
fn write_then_read_back_through_the_ring() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let path = temp_path("rw");
    let p = path.clone();
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let f = common::native_io::create_rw(&p).await?;
                    let data: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
                    let (n, data) = f.write_at(data, 4096).await;
                    assert_eq!(n?, 64 * 1024);
                    f.sync_data().await?;
                    let (n, buf) = f.read_at(Vec::with_capacity(64 * 1024), 4096).await;
                    assert_eq!(n?, 64 * 1024);
                    let (n, hole) = f.read_at(vec![9u8; 16], 0).await;
                    assert_eq!(n?, 16);
                    Ok::<_, std::io::Error>((buf == data, hole))
                })
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        (true, vec![0u8; 16]),
        "read back what was written, and zeros in the hole"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn bad_input_gets_a_clear_io_error_not_a_panic() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let errs = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async {
                    let missing = File::open("/definitely/not/here").await.unwrap_err().kind();
                    let no_mode = OpenOptions::new().open("/tmp").await.unwrap_err().kind();
                    let nul = File::open("bad\0path").await.unwrap_err().kind();
                    let f = File::open("/proc/self/stat").await.unwrap();
                    let zero = f.read_at(Vec::new(), 0).await.0.unwrap_err().kind();
                    let ro_write = f
                        .write_at(b"x".to_vec(), 0)
                        .await
                        .0
                        .unwrap_err()
                        .raw_os_error();
                    (missing, no_mode, nul, zero, ro_write)
                })
                .unwrap(),
        )
        .unwrap();
    use std::io::ErrorKind::*;
    assert_eq!(
        errs,
        (
            NotFound,
            InvalidInput,
            InvalidInput,
            InvalidInput,
            Some(libc::EBADF)
        )
    );
    // Off a shard: an error, not a panic.
    let off = rt.block_on(File::open("/proc/self/stat")).unwrap_err();
    assert!(off.to_string().contains("shard"), "{off}");
}

/// A read on an empty pipe is held in flight; its task is aborted (the op
/// future is dropped: ASYNC_CANCEL). Bytes written afterwards must go to the
/// next read, not be swallowed by the cancelled one, and no fd may leak.
#[test]
fn dropped_read_in_flight_is_cancelled_and_does_not_swallow_the_next_bytes() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let before = common::fd_count();
    let (r, w) = common::pipe();
    let reader = File::from(r);
    let r2 = reader.clone();
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let stuck = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut read = std::pin::pin!(r2.read(vec![0u8; 64]));
            std::future::poll_fn(|cx| {
                let r = read.as_mut().poll(cx);
                let _ = polled_tx.send(());
                r
            })
            .await
            .0
        })
        .unwrap();
    polled.recv().unwrap(); // polled once: the read is in flight
    stuck.abort();
    assert!(rt.block_on(stuck).unwrap_err().is_cancelled());
    // The cancel's SQE is already in the ring (pushed when the task was
    // dropped, on its shard): no sleep needed.
    common::cancelled_read_leaves_the_next_bytes(&rt, reader, File::from(w));
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

#[test]
fn shutdown_with_ten_thousand_reads_in_flight_is_prompt_and_leaks_nothing() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let (r, w) = common::pipe();
    let reader = File::from(r);
    let rt = common::runtime(2);
    for i in 0..10_000usize {
        let f = reader.clone();
        drop(
            rt.handle()
                .spawn_pinned(i % 2, async move { f.read(vec![0u8; 8]).await.0.map(drop) })
                .unwrap(),
        );
    }
    // Let both shards submit their reads.
    rt.block_on(rt.handle().spawn_pinned(0, async {}).unwrap())
        .unwrap();
    rt.block_on(rt.handle().spawn_pinned(1, async {}).unwrap())
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let report = rt.shutdown(Duration::ZERO);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(report.unfinished_tasks, 10_000);
    assert!(report.stuck_shards.is_empty());
    drop(reader);
    drop(w);
    if common::fd_count() != before {
        for e in std::fs::read_dir("/proc/self/fd").unwrap() {
            let e = e.unwrap();
            eprintln!(
                "fd {:?} -> {:?}",
                e.file_name(),
                std::fs::read_link(e.path()).ok()
            );
        }
    }
    assert_eq!(common::fd_count(), before, "fds leaked");
}

#[test]
fn a_tokio_task_reads_a_file_through_the_handle() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let handle = rt.handle();
    let path = temp_path("tokio");
    std::fs::write(&path, b"from tokio via io_uring").unwrap();
    let p = path.clone();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = tokio_rt.block_on(async move {
        handle
            .spawn_pinned(1, async move {
                let f = File::open(&p).await?;
                let (n, buf) = f.read_at(Vec::with_capacity(128), 0).await;
                Ok::<_, std::io::Error>(buf[..n?].to_vec())
            })
            .unwrap()
            .await
    });
    assert_eq!(got.unwrap().unwrap(), b"from tokio via io_uring");
    std::fs::remove_file(path).unwrap();
}

/// A one-shard runtime whose op table has room for two ops (a ring of 8
/// entries has a CQ of 64, the smallest table), both taken by one-byte
/// reads held in flight on an empty pipe: the runtime, those reads, and
/// the pipe's write end. Also writes a 4 KiB file at `path` to read from.
fn both_op_slots_held(
    path: &std::path::Path,
) -> (
    ringlane::Runtime,
    Vec<ringlane::JoinHandle<std::io::Result<()>>>,
    std::os::fd::OwnedFd,
) {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .ring_entries(8)
        .build()
        .unwrap();
    std::fs::write(path, vec![7u8; 4096]).unwrap();
    let (r, w) = common::pipe();
    let pipe_reader = File::from(r);
    let xs: Vec<_> = (0..2)
        .map(|_| {
            let p = pipe_reader.clone();
            rt.handle()
                .spawn_pinned(0, async move { p.read(vec![0u8; 1]).await.0.map(drop) })
                .unwrap()
        })
        .collect();
    common::until_parked(&rt.handle(), 0); // both in flight
    (rt, xs, w)
}

/// Regression (op invariant 6): with the op table full, an op that waited
/// for room and was dropped (its timeout fired) must not eat the wake-up
/// meant for the next waiter. A ring of 8 entries has a CQ of 64 and so the
/// smallest table: two ops.
#[test]
fn ops_waiting_for_room_lose_no_wakeup_when_a_waiter_is_dropped() {
    let _serial = SERIAL.lock();
    let path = temp_path("cap");
    // X1, X2: both slots, held in flight on an empty pipe.
    let (rt, xs, w) = both_op_slots_held(&path);
    // Opened without a ring op, so that T and U are the only waiters.
    let f = File::from(std::fs::File::open(&path).unwrap());
    let (t_gone, t_gone_rx) = std::sync::mpsc::channel();
    let u = rt
        .handle()
        .spawn_pinned(0, async move {
            // T: waits for room, then gives up and is dropped.
            let t = ringlane::time::timeout(Duration::from_millis(5), f.read_at(vec![0u8; 16], 0))
                .await;
            assert!(t.is_err(), "there was no room: the read could not run");
            t_gone.send(()).unwrap();
            // U: waits for room; must run once an X completes.
            let (n, _) = f.read_at(vec![0u8; 16], 0).await;
            n
        })
        .unwrap();
    t_gone_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("T never gave up");
    common::until_parked(&rt.handle(), 0); // U waits for room
    let w = std::fs::File::from(w);
    std::io::Write::write_all(&mut &w, b"x").unwrap(); // one X completes, room frees up
    let got = rt
        .block_on(ringlane::time::timeout(Duration::from_secs(5), u))
        .expect("a waiting op was never woken");
    assert_eq!(got.unwrap().unwrap(), 16);
    std::io::Write::write_all(&mut &w, b"y").unwrap(); // the other X completes
    for x in xs {
        rt.block_on(x).unwrap().unwrap();
    }
    std::fs::remove_file(path).unwrap();
}

/// An op waiting for room is polled under one `native::timeout`, which a
/// `select!`-like outer timeout then drops, and afterwards under a longer
/// one. It used to keep the first timeout's timer and fail at that first
/// deadline, although the second one had not passed.
#[test]
fn an_op_waiting_for_room_follows_the_deadline_it_is_polled_under() {
    let _serial = SERIAL.lock();
    let path = temp_path("deadlines");
    let (rt, xs, w) = both_op_slots_held(&path);
    let f = File::from(std::fs::File::open(&path).unwrap());
    let (first_done_tx, first_done) = std::sync::mpsc::channel();
    let u = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut op = std::pin::pin!(f.read_at(vec![0u8; 16], 0));
            let short = ringlane::native::timeout(Duration::from_millis(50), op.as_mut());
            let first = ringlane::time::timeout(Duration::from_millis(10), short).await;
            assert!(first.is_err(), "there was no room: the read could not run");
            first_done_tx.send(Instant::now()).unwrap();
            let (n, _) = ringlane::native::timeout(Duration::from_secs(5), op.as_mut()).await;
            n
        })
        .unwrap();
    // Room frees only once the first wait is over and its 50 ms deadline
    // well past (a fixed sleep could end before the task first ran).
    let first_ended = first_done
        .recv_timeout(Duration::from_secs(10))
        .expect("the first wait never ended");
    std::thread::sleep(
        (first_ended + Duration::from_millis(150)).saturating_duration_since(Instant::now()),
    );
    // Room frees up: both slots, as a timed op needs two (its linked
    // timeout has an entry of its own).
    let w = std::fs::File::from(w);
    std::io::Write::write_all(&mut &w, b"xy").unwrap();
    let got = rt
        .block_on(ringlane::time::timeout(Duration::from_secs(10), u))
        .expect("the waiting op was never woken");
    assert_eq!(got.unwrap().unwrap(), 16, "it failed at the first deadline");
    for x in xs {
        rt.block_on(x).unwrap().unwrap();
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn open_options_are_validated_like_std() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let path = temp_path("oo");
    std::fs::write(&path, b"keep me").unwrap();
    let p = path.clone();
    let (truncate_ro, create_ro, append_trunc, ro_even_with_wronly_flag, far) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let truncate_ro = OpenOptions::new()
                        .read(true)
                        .truncate(true)
                        .open(&p)
                        .await
                        .unwrap_err()
                        .kind();
                    let create_ro = OpenOptions::new()
                        .read(true)
                        .create(true)
                        .open(&p)
                        .await
                        .unwrap_err()
                        .kind();
                    let append_trunc = OpenOptions::new()
                        .append(true)
                        .truncate(true)
                        .open(&p)
                        .await
                        .unwrap_err()
                        .kind();
                    let f = OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_WRONLY)
                        .open(&p)
                        .await
                        .unwrap();
                    let ro = f
                        .write_at(b"x".to_vec(), 0)
                        .await
                        .0
                        .unwrap_err()
                        .raw_os_error();
                    let far = f
                        .read_at(vec![0u8; 4], u64::MAX - 1)
                        .await
                        .0
                        .unwrap_err()
                        .kind();
                    (truncate_ro, create_ro, append_trunc, ro, far)
                })
                .unwrap(),
        )
        .unwrap();
    use std::io::ErrorKind::InvalidInput;
    assert_eq!(
        (truncate_ro, create_ro, append_trunc, far),
        (InvalidInput, InvalidInput, InvalidInput, InvalidInput)
    );
    assert_eq!(
        ro_even_with_wronly_flag,
        Some(libc::EBADF),
        "custom flags must not change the access mode"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"keep me",
        "nothing may have truncated the file"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn path_ops_metadata_exact_vectored_and_close_round_trip() {
    use ringlane::native::fs;
    use std::io::ErrorKind::InvalidInput;
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let rt = common::runtime(1);
    let dir = temp_path("paths");
    let d = dir.clone();
    let out = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    fs::create_dir(&d).await?;
                    let exists = fs::create_dir(&d).await.unwrap_err().kind();
                    let a = d.join("a");
                    let f = common::native_io::create_rw(&a).await?;
                    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
                    f.write_all_at(data.clone(), 0).await.0?;
                    let m = f.metadata().await?;
                    assert!(m.is_file() && m.len() == 300_000);
                    let (r, buf) = f.read_exact_at(Vec::with_capacity(300_000), 0).await;
                    r?;
                    assert!(buf == data, "read_exact_at returned other bytes");
                    let (r, short) = f.read_exact_at(Vec::with_capacity(10), 299_995).await;
                    let eof = r.unwrap_err().kind();
                    assert_eq!(short.len(), 5, "the bytes before EOF are kept");
                    let (n, _bufs) = f
                        .write_vectored_at(vec![b"xy".to_vec(), Vec::new(), b"z".to_vec()], 1)
                        .await;
                    assert_eq!(n?, 3);
                    let (n, bufs) = f
                        .read_vectored_at(vec![Vec::with_capacity(1), Vec::with_capacity(3)], 0)
                        .await;
                    assert_eq!(n?, 4);
                    assert_eq!(
                        (bufs[0].as_slice(), bufs[1].as_slice()),
                        (&[0u8][..], &b"xyz"[..])
                    );
                    drop(bufs);
                    f.close().await?;
                    let b = d.join("b");
                    fs::rename(&a, &b).await?;
                    let gone = fs::metadata(&a).await.unwrap_err().kind();
                    assert_eq!(fs::metadata(&b).await?.len(), 300_000);
                    // A link to `b` and a dangling one (to `a`, renamed away):
                    // `symlink_metadata` describes each link, `metadata` follows.
                    let (link, dangling) = (d.join("l"), d.join("dl"));
                    std::os::unix::fs::symlink(&b, &link)?;
                    std::os::unix::fs::symlink(&a, &dangling)?;
                    let l = fs::symlink_metadata(&link).await?;
                    assert!(l.is_symlink() && !l.is_file(), "the link itself");
                    let followed = fs::metadata(&link).await?;
                    assert!(!followed.is_symlink() && followed.len() == 300_000);
                    assert!(fs::symlink_metadata(&dangling).await?.is_symlink());
                    let dangling_followed = fs::metadata(&dangling).await.unwrap_err().kind();
                    assert_eq!(dangling_followed, std::io::ErrorKind::NotFound);
                    fs::remove_file(&link).await?;
                    fs::remove_file(&dangling).await?;
                    assert!(
                        fs::metadata(&b).await.is_ok(),
                        "removing a link keeps its target"
                    );
                    let not_empty = fs::remove_dir(&d).await.unwrap_err().kind();
                    fs::remove_file(&b).await?;
                    fs::remove_dir(&d).await?;
                    let nul = fs::remove_file("a\0b").await.unwrap_err().kind();
                    // u64::MAX is io_uring's "current position": refused.
                    let g = File::open("/proc/self/stat").await?;
                    let far = g
                        .read_at(vec![0u8; 8], u64::MAX)
                        .await
                        .0
                        .unwrap_err()
                        .kind();
                    assert_eq!(far, InvalidInput);
                    let far = g.read_exact_at(vec![0u8; 8], i64::MAX as u64).await.0;
                    assert!(far.is_err(), "read_exact_at past i64::MAX");
                    Ok::<_, std::io::Error>(vec![exists, eof, gone, not_empty, nul])
                })
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    use std::io::ErrorKind::*;
    assert_eq!(
        out,
        vec![
            AlreadyExists,
            UnexpectedEof,
            NotFound,
            DirectoryNotEmpty,
            InvalidInput
        ]
    );
    assert!(!dir.exists());
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// 4096 bytes starting one byte into an aligned allocation.
struct Skewed(ringlane::native::AlignedBuf);

// SAFETY: the 4096 bytes after the first lie inside the 8192-byte
// allocation, which lives on the heap (stable) and is fully initialized.
unsafe impl ringlane::native::IoBuf for Skewed {
    fn stable_ptr(&self) -> *const u8 {
        // SAFETY: in bounds (see the impl's comment).
        unsafe { self.0.as_ptr().add(1) }
    }
    fn bytes_init(&self) -> usize {
        0
    }
}

// SAFETY: as above, and the bytes are writable.
unsafe impl ringlane::native::IoBufMut for Skewed {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // SAFETY: in bounds (see the impl's comment).
        unsafe {
            ringlane::native::IoBuf::stable_ptr(&self.0)
                .cast_mut()
                .add(1)
        }
    }
    fn bytes_total(&self) -> usize {
        4096
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}

/// `O_DIRECT` with an aligned buffer works; an unaligned buffer gets a clear
/// `InvalidInput` error, not a panic. Skips (saying so) where the
/// filesystem refuses `O_DIRECT` (tmpfs).
#[test]
fn o_direct_needs_aligned_buffers_and_says_so_clearly() {
    use ringlane::native::AlignedBuf;
    let _serial = SERIAL.lock();
    let dir = std::env::current_dir().unwrap().join("target");
    let path = dir.join(format!("ringlane-direct-{}", std::process::id()));
    std::fs::write(&path, vec![5u8; 8192]).unwrap();
    let rt = common::runtime(1);
    let p = path.clone();
    let out = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let f = match OpenOptions::new()
                        .read(true)
                        .write(true)
                        .custom_flags(libc::O_DIRECT)
                        .open(&p)
                        .await
                    {
                        Ok(f) => f,
                        // Only where the filesystem itself refuses (checked below).
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return None,
                        Err(e) => panic!("open O_DIRECT: {e}"),
                    };
                    let mut w = AlignedBuf::with_capacity(4096, 4096);
                    w.extend_from_slice(&[9u8; 4096]);
                    f.write_all_at(w, 4096).await.0.unwrap();
                    let (r, back) = f
                        .read_exact_at(AlignedBuf::with_capacity(4096, 4096), 4096)
                        .await;
                    r.unwrap();
                    // A buffer whose bytes start 1 byte past an aligned block.
                    let e = f
                        .read_at(Skewed(AlignedBuf::with_capacity(8192, 4096)), 0)
                        .await
                        .0
                        .unwrap_err();
                    Some((back.iter().all(|&x| x == 9), e.kind()))
                })
                .unwrap(),
        )
        .unwrap();
    // Whether the plain syscall takes O_DIRECT on this file.
    let std_open = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
    };
    std::fs::remove_file(&path).unwrap();
    match out {
        None => {
            // Ringlane's open refused O_DIRECT: fine only if open(2) does
            // too (a filesystem without O_DIRECT, like an old tmpfs).
            assert!(
                std_open.is_err(),
                "ringlane refused O_DIRECT where open(2) accepts it"
            );
            println!(
                "SKIP o_direct test: {} refuses O_DIRECT",
                std::env::temp_dir().display()
            );
        }
        Some((read_back, kind)) => {
            assert!(read_back, "O_DIRECT read back other bytes");
            assert_eq!(kind, std::io::ErrorKind::InvalidInput);
        }
    }
}

#[test]
fn bytes_and_bytes_mut_are_owned_buffers() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let path = temp_path("bytes");
    let p = path.clone();
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let f = common::native_io::create_rw(&p).await.unwrap();
                    f.write_all_at(bytes::Bytes::from_static(b"shared bytes"), 0)
                        .await
                        .0
                        .unwrap();
                    let (n, buf) = f.read_at(bytes::BytesMut::with_capacity(64), 0).await;
                    (n.unwrap(), buf.freeze())
                })
                .unwrap(),
        )
        .unwrap();
    std::fs::remove_file(path).unwrap();
    assert_eq!((got.0, &got.1[..]), (12, &b"shared bytes"[..]));
}

/// `close()` awaited off the shards (in `block_on`, in a Tokio task): the
/// op cannot be submitted there, so the fd is closed directly. The call
/// used to report an error although the fd was closed.
#[test]
fn a_close_awaited_off_the_shards_closes_and_says_so() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let before = common::fd_count();
    let f = File::from(std::fs::File::open("/proc/self/stat").unwrap());
    assert!(rt.block_on(f.close()).is_ok(), "the fd was closed");
    assert_eq!(common::fd_count(), before, "and it is gone");
}
