//! Helpers of the native lane tests: fd counts, tiny rings, socket pairs.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::net::UnixStream;

use super::LIMIT;

/// fd counts are process-wide: every test here holds this lock.
pub static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The fd count once the process-wide lazy state a first runtime creates
/// exists (as `fd_leaks.rs` warms up before counting).
pub fn settled_fd_count() -> usize {
    drop(super::runtime(1));
    super::fd_count()
}

/// Runs `f` on shard 0 of a fresh one-shard runtime (failing after 10 s),
/// then checks that the process's fd count is back where it started.
pub fn on_fresh_shard<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    let before = settled_fd_count();
    let rt = super::runtime(1);
    let out = super::fixed_io::on_shard(&rt, 0, LIMIT, f);
    drop(rt);
    assert_eq!(super::fd_count(), before, "an fd was left open");
    out
}

/// Creates (or truncates) the file at `path` for reading and writing
/// (`File::create` opens write-only, as std's).
pub async fn create_rw(path: &std::path::Path) -> io::Result<ringlane::native::fs::File> {
    ringlane::native::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await
}

/// A one-shard runtime whose op table takes two single-shot ops (a CQ of
/// 64, the smallest), on a ring of 8 SQ entries so that room in the SQ
/// never decides which op waits.
pub fn two_op_slots() -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(1)
        .ring_entries(8)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"))
}

/// A value handed out of a task (futures among it): wrapped, so the task
/// does not read as returning a future nobody awaits.
pub struct Held<T>(pub T);

/// Polls `fut` once from inside a task; `true` if it is still pending.
pub async fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

/// A connected Unix stream pair: our native end, the peer's native end,
/// and a std handle on the peer's socket for plain synchronous writes.
pub fn unix_pair() -> (UnixStream, UnixStream, std::os::unix::net::UnixStream) {
    let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let peer_std = peer.try_clone().unwrap();
    (
        UnixStream::from_std(ours),
        UnixStream::from_std(peer),
        peer_std,
    )
}

/// One receive on `s`, bounded by a kernel timeout of `limit`.
pub async fn read_within(s: &UnixStream, limit: Duration) -> io::Result<Vec<u8>> {
    let (n, buf) = s.read(vec![0u8; 64]).timeout(limit).await;
    Ok(buf[..n?].to_vec())
}

/// One receive on `s` bounded by a timer that drops (cancels) it: it takes
/// one op slot, where a kernel timeout would take two (op invariant 7).
pub async fn read_bounded(s: &UnixStream, limit: Duration) -> io::Result<Vec<u8>> {
    let (n, buf) = ringlane::time::timeout(limit, s.read(vec![0u8; 64])).await?;
    Ok(buf[..n?].to_vec())
}

/// Waits, on the shard and for at most 10 s, until socket `fd` holds no
/// unread byte: an op of the shard's ring took them.
pub async fn until_drained(fd: RawFd) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer.
        let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int) };
        assert_eq!(r, 0, "FIONREAD: {}", io::Error::last_os_error());
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the ring never took the bytes");
        ringlane::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Connections waiting in a listening TCP socket's accept queue
/// (`TCP_INFO` of a listener reports them as `tcpi_unacked`).
pub fn accept_queue_len(listener: RawFd) -> u32 {
    // SAFETY: all-zero bytes are a valid `tcp_info`.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`.
    let r = unsafe {
        libc::getsockopt(
            listener,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "TCP_INFO: {}", io::Error::last_os_error());
    info.tcpi_unacked
}

/// Drops `value` in a task of a one-worker Tokio runtime: on a thread that
/// is neither a shard nor the test thread. (No I/O driver: it opens no fd.)
pub fn drop_on_tokio<T: Send + 'static>(value: T) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    tokio_rt.block_on(async move {
        tokio::spawn(async move { drop(value) }).await.unwrap();
    });
    tokio_rt.shutdown_timeout(LIMIT);
}

/// Runs two empty tasks on `shard`, one after the other. The mailbox is
/// FIFO and every tick ends with a submit, so whatever was posted to the
/// shard before (a cancel from another thread) has reached the kernel.
pub fn two_ticks(rt: &ringlane::Runtime, shard: usize) {
    for _ in 0..2 {
        let t = rt.handle().spawn_pinned(shard, async {}).unwrap();
        super::join_within(rt, t, LIMIT, "an empty task");
    }
}

/// A fresh directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("ringlane-adv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
