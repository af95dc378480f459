//! Sequential reads through Tokio's `AsyncRead` (what `BufReader`,
//! `tokio::io::copy` and codecs do over a file): [`STREAM_READ`] bytes per
//! `read_exact`, front to back through the page-cached read file, from its
//! start again at its end. Every read is checked.
//!
//! * `ringlane_async_file`: `File::into_async()` (ADR 0021) in a task on
//!   shard 0 of the 1-shard runtime;
//! * `raw_uring`: the floor, one default ring on the bench thread, one
//!   `READ` of the same size at the next offset and `submit_and_wait(1)`;
//! * `pread`: `libc::pread` of the same size on the bench thread;
//! * `tokio_fs`: `tokio::fs::File` on a current-thread runtime (a
//!   blocking-pool hop per read).
//!
//! And whole-file reads of a one-block file, one call at a time (latency):
//! `ringlane::native::fs::read` (open, read, read, close: four ops),
//! `std::fs::read` on the bench thread (open, statx, read, read, close: the
//! syscall floor, one call more than ringlane makes for a small file), and
//! `tokio::fs::read` (one blocking-pool hop running `std::fs::read`).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use io_uring::opcode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::BLOCK;
use crate::cases::Env;
use crate::files::{MEDIUM_BLOCKS, READ_BLOCKS, check_blocks};
use crate::measure::{LatRun, Samples, Span, TputRun, parks};
use crate::shared::floor_ring::FloorRing;
use crate::watchdog::step;

/// Bytes per read: `tokio::io::copy`'s and `BufReader`'s buffer size.
pub(crate) const STREAM_READ: usize = 8 * 1024;
/// Reads from the file's start to its end.
const READS_PER_PASS: u64 = READ_BLOCKS * BLOCK as u64 / STREAM_READ as u64;
const BLOCKS_PER_READ: u64 = (STREAM_READ / BLOCK) as u64;

/// The first block of read `i` (counting from the file's start).
fn first_block(i: u64) -> u64 {
    (i % READS_PER_PASS) * BLOCKS_PER_READ
}

pub(crate) fn stream_ringlane(env: &Env, reads: u64) -> TputRun {
    let handle = env.ringlane.handle();
    let path = env.files.read_path.clone();
    let parks0 = parks(&handle);
    let driver = handle
        .spawn_pinned(0, async move {
            let file = ringlane::native::fs::File::open(&path).await.expect("open");
            let mut f = file.into_async();
            let mut buf = vec![0u8; STREAM_READ];
            let span = Span::start();
            for i in 0..reads {
                if i > 0 && i % READS_PER_PASS == 0 {
                    f.seek(std::io::SeekFrom::Start(0)).await.expect("seek");
                }
                f.read_exact(&mut buf)
                    .await
                    .expect("ringlane AsyncFile read");
                check_blocks(&buf, first_block(i), "ringlane_async_file");
                step(i + 1);
            }
            span.end()
        })
        .expect("spawn driver");
    let mut run = env.ringlane.block_on(driver).expect("driver task");
    run.parks = Some(parks(&handle) - parks0);
    run
}

pub(crate) fn stream_tokio_fs(env: &Env, reads: u64) -> TputRun {
    let path = env.files.read_path.clone();
    env.tokio_ct.block_on(async move {
        let mut f = tokio::fs::File::open(&path).await.expect("open");
        let mut buf = vec![0u8; STREAM_READ];
        let span = Span::start();
        for i in 0..reads {
            if i > 0 && i % READS_PER_PASS == 0 {
                f.seek(std::io::SeekFrom::Start(0)).await.expect("seek");
            }
            f.read_exact(&mut buf).await.expect("tokio::fs read");
            check_blocks(&buf, first_block(i), "tokio_fs stream");
            step(i + 1);
        }
        span.end()
    })
}

pub(crate) fn stream_raw(env: &Env, reads: u64) -> TputRun {
    stream_raw_with(env, reads, FloorRing::default_ring(8, None), false)
}

/// The like-for-like floor of an `AsyncRead` over owned-buffer ops: the
/// ring set up as ringlane's, each read into the reader's own buffer and
/// then copied into the caller's (as `AsyncFile` and `tokio::fs::File` do).
pub(crate) fn stream_raw_dt_copy(env: &Env, reads: u64) -> TputRun {
    stream_raw_with(env, reads, FloorRing::like_ringlane(8, None), true)
}

fn stream_raw_with(env: &Env, reads: u64, ring: FloorRing, copy: bool) -> TputRun {
    // Declared before the ring, so that the ring is closed first.
    let mut own = vec![0u8; STREAM_READ];
    let mut out = vec![0u8; STREAM_READ];
    let mut ring = ring;
    let fd = io_uring::types::Fd(env.std_read.as_raw_fd());
    let span = Span::start();
    for i in 0..reads {
        let at = first_block(i) * BLOCK as u64;
        let sqe = opcode::Read::new(fd, own.as_mut_ptr(), STREAM_READ as u32)
            .offset(at)
            .build();
        // SAFETY: `own` holds STREAM_READ writable bytes and outlives the
        // ring; it is not touched until this read's CQE is reaped below.
        unsafe { ring.submission().push(&sqe) }.expect("SQ full");
        ring.enter(1);
        let cqe = ring.completion().next().expect("a CQE after the wait");
        assert_eq!(cqe.result(), STREAM_READ as i32, "raw_uring stream read");
        let got = if copy {
            out.copy_from_slice(&own);
            &out
        } else {
            &own
        };
        check_blocks(got, first_block(i), "raw_uring stream");
        step(i + 1);
    }
    span.end()
}

pub(crate) fn stream_pread(env: &Env, reads: u64) -> TputRun {
    let mut buf = vec![0u8; STREAM_READ];
    let fd = env.std_read.as_raw_fd();
    let span = Span::start();
    for i in 0..reads {
        let at = first_block(i) * BLOCK as u64;
        // SAFETY: `buf` holds STREAM_READ writable bytes; the fd is open.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), STREAM_READ, at as i64) };
        assert_eq!(n, STREAM_READ as isize, "pread stream read");
        check_blocks(&buf, first_block(i), "pread stream");
        step(i + 1);
    }
    span.end()
}

/// Checks a whole-file read of a file of `blocks` tagged blocks.
fn check_whole(bytes: &[u8], blocks: usize, case: &str) {
    assert_eq!(
        bytes.len(),
        blocks * BLOCK,
        "{case}: whole-file read length"
    );
    check_blocks(bytes, 0, case);
}

fn whole_ringlane_of(env: &Env, path: PathBuf, blocks: usize, warm: usize, n: usize) -> LatRun {
    let handle = env.ringlane.handle();
    let parks0 = parks(&handle);
    let driver = handle
        .spawn_pinned(0, async move {
            let mut s = Samples::new(warm, n);
            for _ in 0..s.total() {
                let bytes = ringlane::native::fs::read(&path).await.expect("fs::read");
                check_whole(&bytes, blocks, "ringlane fs::read");
                s.tick();
            }
            s.finish()
        })
        .expect("spawn driver");
    let mut run = env.ringlane.block_on(driver).expect("driver task");
    run.parks = Some((parks(&handle) - parks0, (warm + n) as u64));
    run
}

fn whole_std_of(path: &Path, blocks: usize, warm: usize, n: usize) -> LatRun {
    let mut s = Samples::new(warm, n);
    for _ in 0..s.total() {
        let bytes = std::fs::read(path).expect("std::fs::read");
        check_whole(&bytes, blocks, "std::fs::read");
        s.tick();
    }
    s.finish()
}

fn whole_tokio_of(env: &Env, path: PathBuf, blocks: usize, warm: usize, n: usize) -> LatRun {
    env.tokio_ct.block_on(async move {
        let mut s = Samples::new(warm, n);
        for _ in 0..s.total() {
            let bytes = tokio::fs::read(&path).await.expect("tokio::fs::read");
            check_whole(&bytes, blocks, "tokio::fs::read");
            s.tick();
        }
        s.finish()
    })
}

/// One op on `ring`, waited for; its result.
fn raw_op(ring: &mut FloorRing, sqe: &io_uring::squeue::Entry) -> i32 {
    // SAFETY: every pointer in the callers' SQEs stays valid until this
    // returns with the op's CQE.
    unsafe { ring.submission().push(sqe) }.expect("SQ full");
    ring.enter(1);
    ring.completion()
        .next()
        .expect("a CQE after the wait")
        .result()
}

/// `fs::read`'s op sequence on a bare ring (ringlane's set-up), for files of
/// at most 64 KiB: OPENAT, an 8 KiB READ, READs of the rest of 64 KiB, a
/// 32 B probe READ when that fills, CLOSE; the buffer shrunk as ringlane's.
fn whole_raw_of(path: &Path, blocks: usize, warm: usize, n: usize) -> LatRun {
    let mut ring = FloorRing::like_ringlane(8, None);
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let mut s = Samples::new(warm, n);
    for _ in 0..s.total() {
        let open = opcode::OpenAt::new(io_uring::types::Fd(libc::AT_FDCWD), c_path.as_ptr())
            .flags(libc::O_RDONLY | libc::O_CLOEXEC)
            .build();
        let fd = raw_op(&mut ring, &open);
        assert!(fd >= 0, "raw OPENAT: {fd}");
        let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
        loop {
            if buf.len() == buf.capacity() {
                if buf.capacity() < 64 * 1024 {
                    buf.reserve_exact(64 * 1024 - buf.len());
                } else {
                    let mut probe = [0u8; 32];
                    let read = opcode::Read::new(io_uring::types::Fd(fd), probe.as_mut_ptr(), 32)
                        .offset(u64::MAX)
                        .build();
                    assert_eq!(raw_op(&mut ring, &read), 0, "a file of at most 64 KiB");
                    break;
                }
            }
            let room = buf.spare_capacity_mut();
            let read = opcode::Read::new(
                io_uring::types::Fd(fd),
                room.as_mut_ptr().cast(),
                room.len() as u32,
            )
            .offset(u64::MAX)
            .build();
            let got = raw_op(&mut ring, &read);
            assert!(got >= 0, "raw READ: {got}");
            if got == 0 {
                break;
            }
            // SAFETY: the kernel wrote `got` bytes into the spare capacity.
            unsafe { buf.set_len(buf.len() + got as usize) };
        }
        if buf.capacity() > 2 * buf.len() + 64 {
            buf.shrink_to_fit();
        }
        assert_eq!(
            raw_op(
                &mut ring,
                &opcode::Close::new(io_uring::types::Fd(fd)).build()
            ),
            0
        );
        check_whole(&buf, blocks, "raw io_uring whole-file read");
        s.tick();
    }
    s.finish()
}

pub(crate) fn whole_raw(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_raw_of(&env.files.small_path, 1, warm, n)
}

pub(crate) fn whole64_raw(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_raw_of(&env.files.medium_path, MEDIUM_BLOCKS, warm, n)
}

pub(crate) fn whole_ringlane(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_ringlane_of(env, env.files.small_path.clone(), 1, warm, n)
}

pub(crate) fn whole_std(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_std_of(&env.files.small_path, 1, warm, n)
}

pub(crate) fn whole_tokio(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_tokio_of(env, env.files.small_path.clone(), 1, warm, n)
}

pub(crate) fn whole64_ringlane(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_ringlane_of(env, env.files.medium_path.clone(), MEDIUM_BLOCKS, warm, n)
}

pub(crate) fn whole64_std(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_std_of(&env.files.medium_path, MEDIUM_BLOCKS, warm, n)
}

pub(crate) fn whole64_tokio(env: &Env, warm: usize, n: usize) -> LatRun {
    whole_tokio_of(env, env.files.medium_path.clone(), MEDIUM_BLOCKS, warm, n)
}
