//! Helpers of the compat lane tests: socket pairs on both runtimes,
//! resets, shards that must go quiet.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use ringlane::compat::{TcpListener, TcpStream, UnixStream};

use super::LIMIT;

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Deterministic, not periodic on any socket-buffer boundary.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37) ^ (i >> 12) as u8)
        .collect()
}

pub fn std_tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

/// A connected (client, server) pair of compat TCP streams; on a shard.
pub async fn ringlane_tcp_pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind(localhost()).await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    Ok((client?, accepted?.0))
}

/// A connected (client, server) pair of `tokio::net` TCP streams.
pub async fn tokio_tcp_pair() -> io::Result<(tokio::net::TcpStream, tokio::net::TcpStream)> {
    let listener = tokio::net::TcpListener::bind(localhost()).await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    Ok((client?, accepted?.0))
}

/// Closes `s` with `SO_LINGER` 0: the peer gets an RST, not a FIN.
pub fn reset<S: AsRawFd>(s: S) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the option value is a live `linger` of the size passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
    drop(s);
}

pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a fresh Tokio runtime, at most 10 s.
pub fn on_tokio<F: Future>(f: F) -> F::Output {
    tokio_rt().block_on(async {
        tokio::time::timeout(LIMIT, f)
            .await
            .expect("the Tokio run of the scenario did not finish within 10 s")
    })
}

/// Runs the future `build` makes on shard 0 of a fresh one-shard runtime,
/// at most 10 s.
pub fn on_ringlane<B, F>(build: B) -> F::Output
where
    B: FnOnce() -> F + Send + 'static,
    F: Future + 'static,
    F::Output: Send + 'static,
{
    let rt = super::runtime(1);
    let j = rt.handle().spawn_local_on(0, build).unwrap();
    super::join_within(&rt, j, LIMIT, "the ringlane run of the scenario")
}

/// Polls `fut` and reports, through `polled`, that its first poll returned:
/// a deterministic "it waits now" for a task on another executor.
pub async fn after_first_poll<F: Future>(fut: F, polled: std::sync::mpsc::Sender<()>) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut polled = Some(polled);
    std::future::poll_fn(move |cx| {
        let p = fut.as_mut().poll(cx);
        if let Some(tx) = polled.take() {
            let _ = tx.send(());
        }
        p
    })
    .await
}

/// Fails unless `shard` parks and then stays idle for 200 ms: a shard that
/// keeps polling a task, or keeps waking for CQEs, after every socket went
/// idle is busy-looping on a readiness that was never cleared.
pub fn assert_quiet(h: &ringlane::Handle, shard: usize, what: &str) {
    super::until_parked(h, shard);
    let before = h.shard_stats(shard).unwrap();
    // A window to observe idleness, not a synchronisation.
    std::thread::sleep(Duration::from_millis(200));
    let after = h.shard_stats(shard).unwrap();
    let polls = after.tasks_polled - before.tasks_polled;
    let parks = after.parks - before.parks;
    assert!(
        polls <= 2 && parks <= 10,
        "{what}: shard {shard} kept busy while idle: {polls} task polls, {parks} wake-ups in 200 ms"
    );
    super::until_parked(h, shard);
}

/// A compat Unix stream made on `shard` whose read waited there once (its
/// multishot poll stays armed on that shard's ring), handed back.
pub fn armed_on_shard(
    rt: &ringlane::Runtime,
    shard: usize,
    s: std::os::unix::net::UnixStream,
) -> UnixStream {
    let task = rt
        .handle()
        .spawn_pinned(shard, async move {
            let mut s = UnixStream::from_std(s)?;
            let waited =
                ringlane::time::timeout(Duration::from_millis(20), s.read(&mut [0u8; 1])).await;
            assert!(waited.is_err(), "nothing was written: the read must wait");
            Ok::<_, io::Error>(s)
        })
        .unwrap();
    super::join_within(rt, task, LIMIT, "arming a read").unwrap()
}

// ---------------------------------------------------------------------------
// Half-close and reset, side by side with tokio::net
// ---------------------------------------------------------------------------

/// An I/O result, reduced to what the two runtimes must agree on.
pub fn brief<T: std::fmt::Debug>(r: io::Result<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({:?})", e.kind()),
    }
}

/// A readiness wait under a timeout: pending, ready, or failed.
pub fn state<T, E>(r: Result<io::Result<T>, E>) -> String {
    match r {
        Err(_) => "pending".to_string(),
        Ok(Ok(_)) => "ready".to_string(),
        Ok(Err(e)) => format!("error {:?}", e.kind()),
    }
}

/// A guard's `try_io` outcome, the same for both `AsyncFd` types.
pub fn tried<R: std::fmt::Debug, E>(r: Result<io::Result<R>, E>) -> String {
    match r {
        Ok(Ok(v)) => format!("{v:?}"),
        Ok(Err(e)) => format!("error {:?}", e.kind()),
        Err(_) => "would block".to_string(),
    }
}

/// A pipe with both ends nonblocking.
pub fn nonblocking_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let (r, w) = super::pipe();
    for fd in [&r, &w] {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an fd we own, with valid commands and flags.
        unsafe {
            let flags = libc::fcntl(raw, libc::F_GETFL);
            assert!(flags >= 0);
            assert_eq!(libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
        }
    }
    (r, w)
}
