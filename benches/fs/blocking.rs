//! The bare-syscall cases on the bench thread: `pread` (qd1, and the qd32
//! reads one at a time as a reference), `pwrite` + `fdatasync`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use crate::QD;
use crate::buf::PageBuf;
use crate::cases::Env;
use crate::files::{
    Offsets, READ_BLOCKS, WRITE_BLOCKS, check_read, check_write, check_written, offset, seq_base,
    tag_block,
};
use crate::measure::{LatRun, Samples, Span, TputRun};
use crate::ringlane_cases::reads_of;
use crate::watchdog::step;

/// One `pread` of a block into `buf`.
#[inline]
pub(crate) fn pread(fd: RawFd, buf: &mut [u8], block: u64) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the
    // duration of the call.
    let n = unsafe {
        libc::pread(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset(block) as libc::off_t,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

pub(crate) fn qd1_pread(env: &Env, warm: usize, n: usize) -> LatRun {
    let fd = env.std_read.as_raw_fd();
    let mut buf = PageBuf::new();
    let mut offsets = Offsets::new(0, READ_BLOCKS);
    let mut s = Samples::new(warm, n);
    for _ in 0..s.total() {
        let block = offsets.next_block();
        let res = pread(fd, &mut buf, block);
        check_read(res, &buf, block, "pread qd1");
        s.tick();
    }
    s.finish()
}

/// The qd32 reads (the same [`QD`] sequences) one at a time.
pub(crate) fn qd32_pread(env: &Env, reads: u64) -> TputRun {
    let fd = env.std_read.as_raw_fd();
    let mut buf = PageBuf::new();
    let span = Span::start();
    for task in 0..QD {
        let mut offsets = Offsets::new(task as u64, READ_BLOCKS);
        for done in 1..=reads_of(task, reads) {
            let block = offsets.next_block();
            let res = pread(fd, &mut buf, block);
            check_read(res, &buf, block, "pread qd32 reference");
            step(done);
        }
    }
    span.end()
}

pub(crate) fn write_pwrite_fdatasync(env: &Env, warm: usize, n: usize) -> LatRun {
    let case = "pwrite_fdatasync";
    let fd = env.std_write.as_raw_fd();
    let mut buf = PageBuf::new();
    let seq0 = seq_base(warm + n);
    let mut offsets = Offsets::new(0, WRITE_BLOCKS);
    let mut s = Samples::new(warm, n);
    let mut last = (0, 0);
    for i in 0..s.total() {
        let block = offsets.next_block();
        let seq = seq0 + i as u64;
        tag_block(&mut buf, block, seq);
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the
        // duration of the call.
        let n = unsafe {
            libc::pwrite(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                offset(block) as libc::off_t,
            )
        };
        let res = if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        };
        check_write(res, block, case);
        // SAFETY: fdatasync takes only an fd, open in `env` for the whole run.
        let rc = unsafe { libc::fdatasync(fd) };
        assert_eq!(rc, 0, "{case}: fdatasync: {}", io::Error::last_os_error());
        s.tick();
        last = (block, seq);
    }
    let run = s.finish();
    check_written(&env.std_write, last.0, last.1, case);
    run
}
