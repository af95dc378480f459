//! The raw io_uring floor: one bare ring (the `io-uring` crate, no runtime)
//! on the bench thread. qd1: one `READ` and `submit_and_wait(1)` per read;
//! qd32: 32 `READ`s kept in flight; write: `WRITE` then `FSYNC(DATASYNC)`,
//! waited for one after the other or linked. Default rings, or ringlane's
//! set-up for `_dt` (`SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|SUBMIT_ALL`,
//! entered through a registered ring fd: `shared::floor_ring`).

use std::io;
use std::os::fd::AsRawFd;

use io_uring::{IoUring, opcode, squeue, types};

use crate::shared::floor_ring::FloorRing;

use crate::buf::PageBuf;
use crate::cases::Env;
use crate::files::{
    Offsets, READ_BLOCKS, WRITE_BLOCKS, check_read, check_write, check_written, offset, seq_base,
    tag_block,
};
use crate::measure::{LatRun, Samples, Span, TputRun};
use crate::ringlane_cases::reads_of;
use crate::watchdog::step;
use crate::{BLOCK, QD};

#[derive(Clone, Copy, PartialEq, Eq)]
enum RingKind {
    /// `IoUring::new` defaults.
    Default,
    /// Ringlane's shards' set-up (`shared::floor_ring`).
    DeferTaskrun,
}

fn new_ring(kind: RingKind, entries: u32) -> FloorRing {
    match kind {
        RingKind::Default => FloorRing::default_ring(entries, None),
        RingKind::DeferTaskrun => FloorRing::like_ringlane(entries, None),
    }
}

/// Submits what is queued and waits for `want` completions.
pub(crate) fn enter(ring: &mut FloorRing, want: usize) {
    ring.enter(want);
}

/// A CQE result as a byte count or an error.
fn os_result(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// The next CQE as `(user_data, result)`; panics if there is none.
fn reap(ring: &mut IoUring) -> (u64, i32) {
    let cqe = ring
        .completion()
        .next()
        .expect("a CQE after submit_and_wait");
    (cqe.user_data(), cqe.result())
}

/// qd1 reads into a buffer `page_offset` bytes into its page.
fn raw_qd1(kind: RingKind, page_offset: usize, env: &Env, warm: usize, n: usize) -> LatRun {
    // Declared before the ring, so that the ring is closed before the
    // buffer is freed, even on a panic.
    let mut buf = PageBuf::at(page_offset);
    let mut ring = new_ring(kind, 8);
    let fd = types::Fd(env.std_read.as_raw_fd());
    qd1_loop(&mut ring, &mut buf, warm, n, "raw_uring qd1", |ptr, at| {
        opcode::Read::new(fd, ptr, BLOCK as u32).offset(at).build()
    })
}

/// One read at a time into `buf` (which outlives `ring`): `sqe` builds the
/// read of `BLOCK` bytes at `ptr` from an offset.
fn qd1_loop(
    ring: &mut FloorRing,
    buf: &mut PageBuf,
    warm: usize,
    n: usize,
    case: &str,
    sqe: impl Fn(*mut u8, u64) -> squeue::Entry,
) -> LatRun {
    let mut offsets = Offsets::new(0, READ_BLOCKS);
    let mut s = Samples::new(warm, n);
    for _ in 0..s.total() {
        let block = offsets.next_block();
        let sqe = sqe(buf.as_mut_ptr(), offset(block));
        // SAFETY: `buf` holds BLOCK writable bytes and is neither read,
        // reused nor freed before this read's CQE is reaped just below (it
        // outlives the ring); the fd stays open in `env` for the whole run.
        unsafe { ring.submission().push(&sqe) }.expect("SQ full");
        enter(ring, 1);
        let (_, res) = reap(ring);
        check_read(os_result(res), buf, block, case);
        s.tick();
    }
    s.finish()
}

/// The floor of the opt-in fast path: the file registered in the ring's
/// file table and the buffer in its buffer table (`READ_FIXED`, fixed
/// file), on a ring set up like ringlane's.
pub(crate) fn qd1_raw_fixed(env: &Env, warm: usize, n: usize) -> LatRun {
    // Declared before the ring, so that the ring is closed first.
    let mut buf = PageBuf::new();
    let mut ring = new_ring(RingKind::DeferTaskrun, 8);
    let submitter = ring.submitter();
    submitter
        .register_files(&[env.std_read.as_raw_fd()])
        .expect("register the file");
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: BLOCK,
    };
    // SAFETY: `buf` outlives the ring (declared first), which unregisters
    // it when it closes.
    unsafe { submitter.register_buffers(&[iov]) }.expect("register the buffer");
    qd1_loop(
        &mut ring,
        &mut buf,
        warm,
        n,
        "raw_uring fixed qd1",
        |ptr, at| {
            opcode::ReadFixed::new(types::Fixed(0), ptr, BLOCK as u32, 0)
                .offset(at)
                .build()
        },
    )
}

pub(crate) fn qd1_raw(env: &Env, warm: usize, n: usize) -> LatRun {
    raw_qd1(RingKind::Default, 0, env, warm, n)
}

pub(crate) fn qd1_raw_dt(env: &Env, warm: usize, n: usize) -> LatRun {
    raw_qd1(RingKind::DeferTaskrun, 0, env, warm, n)
}

/// The floor with its buffer 16 bytes into a page (see [`crate::buf`]).
pub(crate) fn qd1_raw_pgoff16(env: &Env, warm: usize, n: usize) -> LatRun {
    raw_qd1(RingKind::Default, 16, env, warm, n)
}

/// One of the [`QD`] read streams of the qd32 floor (the same sequences as
/// the tasks of the other qd32 cases).
struct Stream {
    offsets: Offsets,
    left: u64,
    done: u64,
    /// The block of the read in flight.
    block: u64,
}

/// Queues the next read of stream `t` into `buf`.
fn push_read(ring: &mut IoUring, fd: types::Fd, buf: &mut [u8], stream: &mut Stream, t: usize) {
    stream.block = stream.offsets.next_block();
    stream.left -= 1;
    let sqe = opcode::Read::new(fd, buf.as_mut_ptr(), BLOCK as u32)
        .offset(offset(stream.block))
        .build()
        .user_data(t as u64);
    // SAFETY: `buf` (stream `t`'s own BLOCK-byte buffer, which outlives the
    // ring) is neither read, reused nor freed before this read's CQE, which
    // carries user_data `t`, is reaped; the fd stays open in `env`.
    unsafe { ring.submission().push(&sqe) }.expect("SQ full");
}

fn raw_qd32(kind: RingKind, env: &Env, reads: u64) -> TputRun {
    // Declared before the ring, so that the ring is closed first.
    let mut bufs: Vec<PageBuf> = (0..QD).map(|_| PageBuf::new()).collect();
    let mut ring = new_ring(kind, 2 * QD as u32);
    let fd = types::Fd(env.std_read.as_raw_fd());
    let mut streams: Vec<Stream> = (0..QD)
        .map(|t| Stream {
            offsets: Offsets::new(t as u64, READ_BLOCKS),
            left: reads_of(t, reads),
            done: 0,
            block: 0,
        })
        .collect();
    let mut cqes: Vec<(u64, i32)> = Vec::with_capacity(2 * QD);
    let span = Span::start();
    let mut in_flight = 0;
    for (t, (stream, buf)) in streams.iter_mut().zip(&mut bufs).enumerate() {
        if stream.left > 0 {
            push_read(&mut ring, fd, buf, stream, t);
            in_flight += 1;
        }
    }
    while in_flight > 0 {
        enter(&mut ring, 1);
        cqes.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for (t, res) in cqes.drain(..) {
            let t = t as usize;
            in_flight -= 1;
            let stream = &mut streams[t];
            check_read(os_result(res), &bufs[t], stream.block, "raw_uring qd32");
            stream.done += 1;
            step(stream.done);
            if stream.left > 0 {
                push_read(&mut ring, fd, &mut bufs[t], stream, t);
                in_flight += 1;
            }
        }
    }
    span.end()
}

pub(crate) fn qd32_raw(env: &Env, reads: u64) -> TputRun {
    raw_qd32(RingKind::Default, env, reads)
}

pub(crate) fn qd32_raw_dt(env: &Env, reads: u64) -> TputRun {
    raw_qd32(RingKind::DeferTaskrun, env, reads)
}

const WRITE_UD: u64 = 1;
const FSYNC_UD: u64 = 2;

/// Checks a write+fsync CQE by its user_data.
fn check_cqe((ud, res): (u64, i32), block: u64, case: &str) {
    match ud {
        WRITE_UD => check_write(os_result(res), block, case),
        FSYNC_UD => assert!(
            res == 0,
            "{case}: fdatasync after block {block} failed: {}",
            io::Error::from_raw_os_error(-res)
        ),
        _ => unreachable!("unknown user_data {ud}"),
    }
}

/// WRITE then FSYNC(DATASYNC): linked and waited for together, or each
/// submitted and waited for in turn.
fn raw_write(kind: RingKind, linked: bool, env: &Env, warm: usize, n: usize) -> LatRun {
    let case = if linked {
        "raw_uring_linked write"
    } else {
        "raw_uring_seq write"
    };
    // The ring lives on across runs, as ringlane's does: a fresh ring per
    // run made the first ~100 pairs of each run slower (about 170 instead
    // of 110 µs p50 over 100 pairs per run), a cost ringlane never pays.
    // The buffer outlives every op: each run reaps all of its CQEs.
    let mut buf = PageBuf::new();
    WRITE_RINGS.with(|rings| {
        let mut rings = rings.borrow_mut();
        let ring = rings[kind as usize].get_or_insert_with(|| new_ring(kind, 8));
        write_pairs(ring, &mut buf, linked, case, env, warm, n)
    })
}

thread_local! {
    /// The write floors' rings, one per `RingKind`, kept until
    /// `close_write_rings` (before the bench's fd check).
    static WRITE_RINGS: std::cell::RefCell<[Option<FloorRing>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

/// Closes the write floors' rings, so that the fd check after the run sees
/// only what ringlane may have leaked (the rings held two fds).
pub(crate) fn close_write_rings() {
    WRITE_RINGS.with(|rings| *rings.borrow_mut() = [None, None]);
}

/// `warm + n` write+fdatasync pairs through `ring`, each reaped before the
/// next (nothing stays in flight after a run).
fn write_pairs(
    ring: &mut FloorRing,
    buf: &mut PageBuf,
    linked: bool,
    case: &str,
    env: &Env,
    warm: usize,
    n: usize,
) -> LatRun {
    let fd = types::Fd(env.std_write.as_raw_fd());
    let seq0 = seq_base(warm + n);
    let mut offsets = Offsets::new(0, WRITE_BLOCKS);
    let mut s = Samples::new(warm, n);
    let mut last = (0, 0);
    for i in 0..s.total() {
        let block = offsets.next_block();
        let seq = seq0 + i as u64;
        tag_block(buf, block, seq);
        let write = opcode::Write::new(fd, buf.as_ptr(), BLOCK as u32)
            .offset(offset(block))
            .build()
            .user_data(WRITE_UD);
        let fsync = opcode::Fsync::new(fd)
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(FSYNC_UD);
        if linked {
            // SAFETY: `buf` (BLOCK bytes) is not written to or freed
            // before both CQEs are reaped just below;
            // FSYNC points at no memory; the fd stays open in `env`.
            unsafe {
                let mut sq = ring.submission();
                sq.push(&write.flags(squeue::Flags::IO_LINK))
                    .expect("SQ full");
                sq.push(&fsync).expect("SQ full");
            }
            enter(ring, 2);
            check_cqe(reap(ring), block, case);
            check_cqe(reap(ring), block, case);
        } else {
            // SAFETY: as above; the WRITE's CQE is reaped before `buf` is touched.
            unsafe { ring.submission().push(&write) }.expect("SQ full");
            enter(ring, 1);
            check_cqe(reap(ring), block, case);
            // SAFETY: FSYNC points at no memory; the fd stays open in `env`.
            unsafe { ring.submission().push(&fsync) }.expect("SQ full");
            enter(ring, 1);
            check_cqe(reap(ring), block, case);
        }
        s.tick();
        last = (block, seq);
    }
    let run = s.finish();
    check_written(&env.std_write, last.0, last.1, case);
    run
}

pub(crate) fn write_raw_seq(env: &Env, warm: usize, n: usize) -> LatRun {
    raw_write(RingKind::Default, false, env, warm, n)
}

pub(crate) fn write_raw_seq_dt(env: &Env, warm: usize, n: usize) -> LatRun {
    raw_write(RingKind::DeferTaskrun, false, env, warm, n)
}

pub(crate) fn write_raw_linked(env: &Env, warm: usize, n: usize) -> LatRun {
    raw_write(RingKind::Default, true, env, warm, n)
}
