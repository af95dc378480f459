//! Helpers of the multishot tests: socket options, unsent bytes, a stream holding every buffer.
#![allow(dead_code)]

use std::future::{Future, poll_fn};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fixed::{BufRing, RingBuf};
use ringlane::native::net::{RecvMulti, UnixStream};

use super::LIMIT;
use super::fixed_io::first_chunk_or_skip;
use super::native_io::{Held, unix_pair};

pub fn localhost() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Polls `fut` once from inside a task and hands back what it said.
pub async fn poll_ready<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

/// `setsockopt` of one `int` option.
pub fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) {
    // SAFETY: setsockopt reads one c_int from a live local.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

/// A loopback listener whose accepted sockets have a tiny receive window
/// (4 KiB): what their peer does not read stays queued on the sender.
pub fn tiny_window_listener() -> (std::net::TcpListener, std::net::SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    set_int_opt(
        listener.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        4096,
    );
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Bytes in a TCP socket's send queue, unsent or unacknowledged
/// (`SIOCOUTQ`).
pub fn unsent_bytes(fd: RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one c_int through the pointer.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    assert_eq!(r, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
    n
}

/// Reads `s` until end of file, each read bounded by `limit`; the bytes,
/// or why not.
pub fn read_until_eof(s: &mut std::net::TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut all = Vec::new();
    match s.read_to_end(&mut all) {
        Ok(_) => Ok(all),
        Err(e) => Err(format!("{e} after {} bytes", all.len())),
    }
}

/// What a stream owner keeps alive beside its chunks.
pub type Keep = (
    RecvMulti,
    UnixStream,
    UnixStream,
    std::os::unix::net::UnixStream,
);

/// Sets up a stream B on `ring` (two 16-byte buffers). B's caller holds both
/// of its chunks, and B stays alive, so the chunks belong to a live stream.
/// Returns `None` (after printing a SKIP line) on a kernel without multishot
/// receive.
pub async fn b_holds_both_buffers(ring: &BufRing) -> Option<(Vec<RingBuf>, Held<Keep>)> {
    let (b, b_peer_native, mut b_peer) = unix_pair();
    b_peer.write_all(&[2u8; 32]).unwrap();
    let mut b_chunks = b.recv_multi(ring);
    let mut held = vec![first_chunk_or_skip(&mut b_chunks).await?];
    while held.iter().map(|c| c.len()).sum::<usize>() < 32 {
        match b_chunks.next().timeout(LIMIT).await {
            Some(Ok(c)) => held.push(c),
            other => panic!("B's second chunk: {other:?}"),
        }
    }
    assert_eq!(held.len(), 2, "B holds both buffers");
    Some((held, Held((b_chunks, b, b_peer_native, b_peer))))
}

/// Whether the running kernel is at least `major.minor`.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    // SAFETY: all-zero bytes are a valid `utsname`, which `uname` fills in.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut u) } != 0 {
        return false;
    }
    // SAFETY: `uname` wrote a NUL-terminated release string.
    let release = unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    let version: (u32, u32) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (major, minor)
}
