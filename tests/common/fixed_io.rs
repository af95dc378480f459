//! Helpers of the registered-resource tests: slot numbers read from
//! `Debug`, eventfds, skips for old kernels.
#![allow(dead_code)]

use std::future::poll_fn;
use std::io::{self, ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::task::Poll;
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, FixedBuf, RingBuf};
use ringlane::native::fs::File;
use ringlane::native::net::RecvMulti;

use super::LIMIT;

/// Runs `f` on `shard` and returns its output, failing after `limit`; a
/// panic in the task is re-raised here with its own message.
pub fn on_shard<T, F>(rt: &ringlane::Runtime, shard: usize, limit: Duration, f: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let task = rt.handle().spawn_pinned(shard, f).unwrap();
    match rt.block_on(ringlane::time::timeout(limit, task)) {
        Err(_) => panic!("the task on shard {shard}: not done after {limit:?}"),
        Ok(Ok(v)) => v,
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("the task on shard {shard}: {e}"),
    }
}

/// The number after `key: ` in `value`'s `Debug` output.
pub fn debug_num(value: &impl std::fmt::Debug, key: &str) -> u32 {
    let text = format!("{value:?}");
    let pattern = format!("{key}: ");
    let start = text
        .find(&pattern)
        .unwrap_or_else(|| panic!("no `{pattern}` in {text}"))
        + pattern.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{pattern}` in {text}"))
}

/// A registered file's slot in its shard's file table.
pub fn slot(f: &File) -> u32 {
    debug_num(f, "slot")
}

/// A fixed buffer's index in its shard's buffer table.
pub fn index(b: &FixedBuf) -> u32 {
    debug_num(b, "index")
}

/// A buffer ring's group id.
pub fn group(r: &BufRing) -> u32 {
    debug_num(r, "group")
}

/// A new blocking eventfd (counter 0: a read waits for a write).
pub fn eventfd() -> OwnedFd {
    // SAFETY: eventfd returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
    // SAFETY: `fd` is new and owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Adds `value` to an eventfd's counter.
pub fn eventfd_write(fd: &OwnedFd, value: u64) {
    // SAFETY: write reads 8 bytes from a live u64.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&raw const value).cast(), 8) };
    assert_eq!(n, 8, "eventfd write: {}", io::Error::last_os_error());
}

pub fn open_rw(path: &Path) -> File {
    File::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap(),
    )
}

pub fn set_nonblocking(f: &impl AsRawFd) {
    // SAFETY: F_GETFL/F_SETFL on an open fd.
    unsafe {
        let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK),
            0
        );
    }
}

/// What a non-blocking pipe holds now, and whether it reached end of file.
pub fn read_available(f: &mut std::fs::File) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (got, false),
            Err(e) => panic!("reading the pipe: {e}"),
        }
    }
}

/// A result as something comparable: the count, or the errno.
pub fn outcome(r: io::Result<usize>) -> Result<usize, Option<i32>> {
    r.map_err(|e| e.raw_os_error())
}

pub fn assert_refused(what: &str, r: io::Result<usize>) {
    match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}"),
        Ok(n) => panic!("{what}: went through ({n} bytes)"),
    }
}

/// A buffer ring, or `None` (with a SKIP line) on a kernel without them.
pub fn ring_or_skip(entries: u16, size: usize) -> Option<BufRing> {
    match BufRing::new(entries, size) {
        Ok(ring) => Some(ring),
        // Buffer rings came with Linux 5.19: a newer kernel refusing one
        // is a bug (a ring not aligned to its page size, say), not a skip.
        Err(e)
            if e.kind() == ErrorKind::InvalidInput
                && !super::multishot_io::kernel_at_least(5, 19) =>
        {
            println!("SKIP the buffer-ring part: no provided-buffer rings on this kernel ({e})");
            None
        }
        Err(e) => panic!("BufRing::new({entries}, {size}): {e}"),
    }
}

/// The first chunk of a stream whose peer already sent it, or `None` (with
/// a SKIP line) on a kernel without multishot receive.
pub async fn first_chunk_or_skip(chunks: &mut RecvMulti) -> Option<RingBuf> {
    match chunks.next().timeout(LIMIT).await {
        Some(Ok(chunk)) => Some(chunk),
        Some(Err(e)) if e.kind() == ErrorKind::InvalidInput => {
            println!("SKIP the multishot part: no multishot receive on this kernel ({e})");
            None
        }
        other => panic!("the first chunk: {other:?}"),
    }
}

/// Polls a stream once: `true` if its receive is armed and waits.
pub async fn arm(chunks: &mut RecvMulti) -> bool {
    poll_fn(|cx| Poll::Ready(chunks.poll_next(cx).is_pending())).await
}

pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap()
}

/// Registers with `make` until it fails (at most 1,024 successes, then the
/// test fails); returns what succeeded and the error.
pub fn fill_table<T>(mut make: impl FnMut() -> io::Result<T>) -> (Vec<T>, io::Error) {
    let mut held = Vec::new();
    loop {
        match make() {
            Ok(v) => held.push(v),
            Err(e) => return (held, e),
        }
        assert!(
            held.len() <= 1024,
            "more than 1,024 registrations in one table"
        );
    }
}
