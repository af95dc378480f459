//! Inline completion (op invariant 13): a positioned read or write of a
//! page-cached file resolves in the poll that submitted it when nothing
//! else could share its enter; everything else still goes through the
//! shard's loop. Each test names the rule or race it pins down.

mod common;

use std::future::{Future, poll_fn};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use ringlane::native::fs::File;

/// fd counts are process-wide: one test at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ringlane-inline-{name}-{}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Polls `fut` once in the calling task: `Ok(output)` if it was ready
/// then, else `Err(output)` once it completes.
async fn first_poll<F: Future>(fut: F) -> Result<F::Output, F::Output> {
    let mut fut = pin!(fut);
    match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(fut.await),
    }
}

fn on_shard<T: Send + 'static>(
    rt: &ringlane::Runtime,
    f: impl Future<Output = T> + Send + 'static,
) -> T {
    let j = rt.handle().spawn_pinned(0, f).unwrap();
    common::join_within(rt, j, Duration::from_secs(20), "the test's task")
}

/// Alone on its shard, a read and a vectored read of a cached file each
/// resolve in their first poll, with the right bytes (each first polled at
/// the start of a task poll: rule 5 limits a poll to one hit until the
/// shard has seen its tasks wait for lone ops); writes and vectored writes
/// give the right results whether or not the filesystem does them at
/// submit.
#[test]
fn a_cached_read_resolves_in_its_first_poll_and_writes_give_their_results() {
    let _serial = SERIAL.lock();
    let path = temp_file("first", &[3u8; 8192]);
    let reads = done_at_submit(&path);
    let rt = common::runtime(1);
    let p = path.clone();
    let firsts = on_shard(&rt, async move {
        let f = ringlane::native::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .await
            .unwrap();
        let mut firsts = Vec::new();
        ringlane::yield_now().await; // a poll of its own (rule 5)
        let r = first_poll(f.read_at(vec![0u8; 100], 10)).await;
        firsts.push(r.is_ok());
        let (n, buf) = r.unwrap_or_else(|o| o);
        assert_eq!((n.unwrap(), buf), (100, vec![3u8; 100]));
        ringlane::yield_now().await; // a poll of its own (rule 5)
        let w = first_poll(f.write_at(vec![9u8; 50], 4096)).await;
        firsts.push(w.is_ok());
        assert_eq!(w.unwrap_or_else(|o| o).0.unwrap(), 50);
        ringlane::yield_now().await; // a poll of its own (rule 5)
        let rv = first_poll(f.read_vectored_at(vec![vec![0u8; 20], vec![0u8; 30]], 4096)).await;
        firsts.push(rv.is_ok());
        let (n, bufs) = rv.unwrap_or_else(|o| o);
        assert_eq!(n.unwrap(), 50);
        assert_eq!(bufs.concat(), vec![9u8; 50], "the write's bytes");
        ringlane::yield_now().await; // a poll of its own (rule 5)
        let wv = first_poll(f.write_vectored_at(vec![vec![1u8; 8], vec![2u8; 8]], 0)).await;
        firsts.push(wv.is_ok());
        assert_eq!(wv.unwrap_or_else(|o| o).0.unwrap(), 16);
        firsts
    });
    std::fs::remove_file(&path).unwrap();
    if !reads {
        eprintln!(
            "skipped: this filesystem's reads are never done at submit (a bare ring's either)"
        );
    }
    // Writes are only checked for their results: a filesystem that takes
    // non-blocking buffered writes still refuses one that must update the
    // file's times, which depends on the clock's tick.
    assert_eq!([firsts[0], firsts[2]], [reads; 2], "read, readv");
}

/// A temporary file of `bytes`, if the kernel reads its cached pages at
/// submit; else `None`, after saying the test is skipped.
fn cached_file_or_skip(name: &str, bytes: &[u8]) -> Option<PathBuf> {
    let path = temp_file(name, bytes);
    if done_at_submit(&path) {
        return Some(path);
    }
    eprintln!("skipped: this filesystem's reads are never done at submit");
    std::fs::remove_file(&path).unwrap();
    None
}

/// Whether the kernel finishes a 16-byte read of `path` during its
/// submission on a bare ring: a cached file on a filesystem whose files
/// take non-blocking I/O (ext4 and xfs; not tmpfs).
fn done_at_submit(path: &std::path::Path) -> bool {
    done_at_submit_on(&std::fs::File::open(path).unwrap())
}

/// As `done_at_submit`, on an open file.
fn done_at_submit_on(file: &std::fs::File) -> bool {
    use io_uring::{IoUring, opcode, types};
    use std::os::fd::AsRawFd;
    let mut ring = IoUring::new(4).unwrap();
    let mut buf = [3u8; 16];
    let fd = types::Fd(file.as_raw_fd());
    let sqe = opcode::Read::new(fd, buf.as_mut_ptr(), 16)
        .offset(0)
        .build();
    // SAFETY: `buf` and `file` outlive the op: we wait for its CQE below.
    unsafe { ring.submission().push(&sqe).unwrap() };
    ring.submit().unwrap();
    let inline = ring.completion().next().is_some();
    if !inline {
        ring.submit_and_wait(1).unwrap();
    }
    inline
}

/// Rule 1: with another task runnable on the shard, the read leaves its
/// SQE to the enter that task's ops will share, and waits for the loop.
#[test]
fn a_read_with_another_task_runnable_waits_for_the_shared_enter() {
    let _serial = SERIAL.lock();
    let Some(path) = cached_file_or_skip("batch", &[4u8; 4096]) else {
        return;
    };
    let rt = common::runtime(1);
    let p = path.clone();
    let (alone, beside) = on_shard(&rt, async move {
        let f = File::open(&p).await.unwrap();
        // Each read first polled at the start of a task poll, which may
        // hit once whatever the shard has seen (rule 5): only rule 1 is
        // left to tell them apart.
        ringlane::yield_now().await;
        let alone = first_poll(f.read_at(vec![0u8; 8], 0)).await.is_ok();
        ringlane::yield_now().await;
        // Runnable, not run yet: it waits behind this task's poll.
        let other = ringlane::spawn_local(async {}).unwrap();
        let r = first_poll(f.read_at(vec![0u8; 8], 8)).await;
        let beside = r.is_ok();
        let (n, buf) = r.unwrap_or_else(|o| o);
        assert_eq!((n.unwrap(), buf), (8, vec![4u8; 8]));
        other.await.unwrap();
        (alone, beside)
    });
    std::fs::remove_file(&path).unwrap();
    assert_eq!((alone, beside), (true, false));
}

/// Rule 2: inline reads spend the task's budget, so a task whose reads
/// all complete at once still gives its shard back: a `call_on` from
/// another thread runs while it reads (it would wait forever otherwise).
#[test]
fn inline_reads_give_the_shard_back_within_the_budget() {
    let _serial = SERIAL.lock();
    let Some(path) = cached_file_or_skip("budget", &[6u8; 4096]) else {
        return;
    };
    let rt = common::runtime(1);
    let seen = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (s, st) = (seen.clone(), started.clone());
    let p = path.clone();
    let reader = rt
        .handle()
        .spawn_pinned(0, async move {
            let f = File::open(&p).await.unwrap();
            let mut buf = vec![0u8; 64];
            for i in 0..2_000_000u64 {
                if s.load(Ordering::Acquire) {
                    return Some(i);
                }
                st.store(true, Ordering::Release);
                let (n, b) = f.read_at(buf, (i % 64) * 64).await;
                assert_eq!(n.unwrap(), 64);
                buf = b;
            }
            None
        })
        .unwrap();
    while !started.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let call = rt
        .handle()
        .call_on(0, move |_| seen.store(true, Ordering::Release))
        .unwrap();
    common::join_within(&rt, call, Duration::from_secs(20), "the call_on");
    let reads = common::join_within(&rt, reader, Duration::from_secs(20), "the reader");
    std::fs::remove_file(&path).unwrap();
    assert!(
        reads.is_some(),
        "the call ran before the reader's last read"
    );
}

/// Rule 3's race: on a ring without `DEFER_TASKRUN`, another op's CQE can
/// be posted during a try's enter (task work run on the way out of the
/// syscall). The try takes only its own; the other op's task must still
/// be woken with its result. A pipe read waits while a task reads a cached
/// file inline in a loop and another thread writes the pipe; every round,
/// the pipe reader gets its byte.
#[test]
fn an_inline_try_keeps_the_other_completions_it_finds() {
    let _serial = SERIAL.lock();
    let Some(path) = cached_file_or_skip("others", &[8u8; 4096]) else {
        return;
    };
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .defer_taskrun(false)
        .build()
        .unwrap();
    for round in 0..50u8 {
        let (rx, tx) = common::compat_io::nonblocking_pipe();
        let pipe = File::from(rx);
        let stop = Arc::new(AtomicBool::new(false));
        let pipe_reader = rt
            .handle()
            .spawn_pinned(0, async move { pipe.read(vec![0u8; 1]).await })
            .unwrap();
        let (p, st) = (path.clone(), stop.clone());
        let file_reader = rt
            .handle()
            .spawn_pinned(0, async move {
                let f = File::open(&p).await.unwrap();
                let mut reads = 0u64;
                while !st.load(Ordering::Acquire) {
                    let (n, _) = f.read_at(vec![0u8; 16], 0).await;
                    assert_eq!(n.unwrap(), 16);
                    reads += 1;
                }
                reads
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
        // SAFETY: one byte from a live buffer to an fd we own.
        let w = unsafe {
            libc::write(
                std::os::fd::AsRawFd::as_raw_fd(&tx),
                [round].as_ptr().cast(),
                1,
            )
        };
        assert_eq!(w, 1);
        let what = format!("round {round}: the pipe reader");
        let (n, buf) = common::join_within(&rt, pipe_reader, Duration::from_secs(10), &what);
        assert_eq!((n.unwrap(), buf), (1, vec![round]));
        stop.store(true, Ordering::Release);
        let reads =
            common::join_within(&rt, file_reader, Duration::from_secs(10), "the file reader");
        assert!(reads > 0);
    }
    std::fs::remove_file(&path).unwrap();
}

/// Rule 4's real case: a read of a page not in the page cache goes to the
/// kernel's async path, so the try finds no CQE; the read still completes
/// (through the loop) with the file's bytes. Skipped where the page cannot
/// be evicted (`POSIX_FADV_DONTNEED` leaves tmpfs pages, which are the
/// file) or the read was done at submit anyway.
#[test]
fn a_read_of_an_evicted_page_completes_through_the_loop() {
    let _serial = SERIAL.lock();
    let bytes: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
    let path = temp_file("evicted", &bytes);
    let std_file = std::fs::File::open(&path).unwrap();
    std_file.sync_all().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&std_file);
    // SAFETY: advice on an open fd; no memory is passed.
    let r = unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(r, 0);
    if resident(&std_file, 512 * 1024) {
        eprintln!("skipped: the page stayed in the page cache (tmpfs?)");
        return std::fs::remove_file(&path).unwrap();
    }
    let rt = common::runtime(1);
    let file = File::from(std_file);
    let (first_ready, n, got) = on_shard(&rt, async move {
        let r = first_poll(file.read_at(vec![0u8; 4096], 512 * 1024)).await;
        let first_ready = r.is_ok();
        let (n, buf) = r.unwrap_or_else(|o| o);
        (first_ready, n.unwrap(), buf)
    });
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        (n, got),
        (4096, bytes[512 * 1024..512 * 1024 + 4096].to_vec())
    );
    if first_ready {
        eprintln!("note: the evicted page's read was done at submit");
    }
}

/// Whether the page at `offset` of `file` is in the page cache (`mincore`
/// of a mapping of it).
fn resident(file: &std::fs::File, offset: usize) -> bool {
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: a read-only shared mapping of one page of an open file,
    // unmapped below; `mincore` writes one byte into `vec`.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            offset as libc::off_t,
        );
        assert_ne!(page, libc::MAP_FAILED);
        let mut vec = 0u8;
        assert_eq!(libc::mincore(page, 4096, &mut vec), 0);
        libc::munmap(page, 4096);
        vec & 1 == 1
    }
}

/// `fs::read` of a cached regular file: its open (no create, no
/// truncate), its reads (at offsets: a regular file's, learnt from the
/// open's `fstat`) and its close are each done at submit, so the whole
/// call resolves in its first poll, with the file's bytes.
#[test]
fn a_whole_file_read_of_a_cached_file_resolves_in_its_first_poll() {
    let _serial = SERIAL.lock();
    let bytes: Vec<u8> = (0..20_000).map(|i| (i % 241) as u8).collect();
    let path = temp_file("whole", &bytes);
    if !done_at_submit(&path) || !open_and_close_done_at_submit(&path) {
        eprintln!("skipped: this filesystem's opens or reads are never done at submit");
        return std::fs::remove_file(&path).unwrap();
    }
    let rt = common::runtime(1);
    let p = path.clone();
    let fds_before = common::fd_count();
    let (first, got) = on_shard(&rt, async move {
        // The first call warms the path's lookup, and shows the shard a
        // task that waits for one op at a time (rule 5). A poll in every
        // 16 is limited to one hit: of three calls, one is not.
        drop(ringlane::native::fs::read(&p).await.unwrap());
        let mut first = false;
        let mut got = Vec::new();
        for _ in 0..3 {
            ringlane::yield_now().await;
            match first_poll(ringlane::native::fs::read(&p)).await {
                Ok(r) => (first, got) = (true, r.unwrap()),
                Err(r) => got = r.unwrap(),
            }
        }
        (first, got)
    });
    std::fs::remove_file(&path).unwrap();
    assert_eq!(got, bytes);
    assert!(
        first,
        "open, reads and close were each done at submit in a call of three"
    );
    assert_eq!(common::fd_count(), fds_before, "the file was closed");
}

/// Whether a bare ring's `OPENAT` (read-only) of `path`, and the `CLOSE`
/// of what it opened, are each done at submit (a close goes to the
/// kernel's workers for a file with a flush: overlayfs, NFS, FUSE).
fn open_and_close_done_at_submit(path: &std::path::Path) -> bool {
    use io_uring::{IoUring, opcode, types};
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut ring = IoUring::new(4).unwrap();
    let sqe = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), c.as_ptr())
        .flags(libc::O_RDONLY | libc::O_CLOEXEC)
        .build();
    // SAFETY: `c` outlives the op: its CQE is waited for below.
    unsafe { ring.submission().push(&sqe).unwrap() };
    ring.submit().unwrap();
    let at_submit = ring.completion().next().map(|c| c.result());
    let result = at_submit.unwrap_or_else(|| {
        ring.submit_and_wait(1).unwrap();
        ring.completion().next().unwrap().result()
    });
    if result < 0 {
        return false;
    }
    let close = opcode::Close::new(types::Fd(result)).build();
    // SAFETY: the open's new fd, ours to close; nothing else uses it.
    unsafe { ring.submission().push(&close).unwrap() };
    ring.submit().unwrap();
    let closed_at_submit = ring.completion().next().is_some();
    if !closed_at_submit {
        ring.submit_and_wait(1).unwrap();
    }
    at_submit.is_some() && closed_at_submit
}

/// A read of `/dev/zero` (positions, and non-blocking reads, whatever the
/// filesystem of the temporary directory) resolves in its first poll:
/// the hit path on any machine whose kernel does it at submit.
#[test]
fn a_read_of_dev_zero_resolves_in_its_first_poll() {
    let _serial = SERIAL.lock();
    let zero = std::path::Path::new("/dev/zero");
    if !done_at_submit_on(&std::fs::File::open(zero).unwrap()) {
        eprintln!("skipped: this kernel reads /dev/zero in its workers");
        return;
    }
    let rt = common::runtime(1);
    let (first, n, buf) = on_shard(&rt, async move {
        let f = File::open(zero).await.unwrap();
        ringlane::yield_now().await;
        let r = first_poll(f.read_at(vec![7u8; 256], 4096)).await;
        let first = r.is_ok();
        let (n, buf) = r.unwrap_or_else(|o| o);
        (first, n.unwrap(), buf)
    });
    assert_eq!((n, buf), (256, vec![0u8; 256]));
    assert!(first, "the read resolved in its first poll");
}

/// Rule 5: a `join!` of cached reads in one task keeps its batch. The shard
/// starts limited (one hit per poll) and a poll that hit and then pushed
/// many ops keeps it so: in every round at most one read resolves in its
/// first poll, and the others share one enter. A loop of reads, waiting
/// for one at a time, is seen as such and then resolves nearly every read
/// in its first poll.
#[test]
fn a_join_keeps_its_batch_and_a_loop_goes_inline() {
    let _serial = SERIAL.lock();
    let Some(path) = cached_file_or_skip("join", &[2u8; 65536]) else {
        return;
    };
    let rt = common::runtime(1);
    let p = path.clone();
    let (join_firsts, loop_firsts) = on_shard(&rt, async move {
        let f = File::open(&p).await.unwrap();
        let mut join_firsts = Vec::new();
        for round in 0..20u64 {
            ringlane::yield_now().await;
            let mut reads: Vec<_> = (0..8u64)
                .map(|i| Box::pin(f.read_at(vec![0u8; 512], (round * 8 + i) % 128 * 512)))
                .collect();
            // Each read's first poll, in one task poll, as `join!` does.
            let mut firsts = 0;
            let mut left = Vec::new();
            for r in reads.iter_mut() {
                match poll_fn(|cx| Poll::Ready(r.as_mut().poll(cx))).await {
                    Poll::Ready((n, _)) => {
                        assert_eq!(n.unwrap(), 512);
                        firsts += 1;
                    }
                    Poll::Pending => left.push(r),
                }
            }
            for r in left {
                assert_eq!(r.await.0.unwrap(), 512);
            }
            join_firsts.push(firsts);
        }
        let mut loop_firsts = 0;
        for i in 0..600u64 {
            if let Ok((n, _)) = first_poll(f.read_at(vec![0u8; 512], i % 128 * 512)).await {
                assert_eq!(n.unwrap(), 512);
                loop_firsts += 1;
            }
        }
        (join_firsts, loop_firsts)
    });
    std::fs::remove_file(&path).unwrap();
    assert!(
        join_firsts.iter().all(|&n| n <= 1),
        "a join's reads went inline one after another: {join_firsts:?}"
    );
    assert!(
        loop_firsts > 500,
        "a loop's reads: {loop_firsts} of 600 inline"
    );
}

/// An `AsyncFile` owns its reads (one in flight, dropped only with it): on
/// a regular file a read at its position is tried inline, so a
/// `read_exact` of cached bytes resolves in its first poll; the position
/// moves as with `std` (the next read gets the next bytes).
#[test]
fn an_async_file_read_of_a_cached_regular_file_resolves_in_its_first_poll() {
    let _serial = SERIAL.lock();
    let bytes: Vec<u8> = (0..8192).map(|i| (i % 239) as u8).collect();
    let Some(path) = cached_file_or_skip("async", &bytes) else {
        return;
    };
    let rt = common::runtime(1);
    let p = path.clone();
    let (first, a, b) = on_shard(&rt, async move {
        use tokio::io::AsyncReadExt;
        let mut f = File::open(&p).await.unwrap().into_async();
        let mut a = vec![0u8; 4096];
        ringlane::yield_now().await;
        let first = first_poll(f.read_exact(&mut a)).await;
        let first_ready = first.is_ok();
        first.unwrap_or_else(|o| o).unwrap();
        let mut b = vec![0u8; 4096];
        f.read_exact(&mut b).await.unwrap();
        (first_ready, a, b)
    });
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        (a.as_slice(), b.as_slice()),
        (&bytes[..4096], &bytes[4096..])
    );
    assert!(first, "the read resolved in its first poll");
}
