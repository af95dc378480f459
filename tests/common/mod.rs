//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

pub mod chans;
pub mod child;
pub mod compat_io;
pub mod droppers;
pub mod fixed_io;
pub mod fs_edges;
pub mod in_flight;
pub mod lifecycle;
pub mod multishot_io;
pub mod native_io;
pub mod ring_probe;
pub mod seccomp;
pub mod stealers;
pub mod task_logs;
pub mod timer_logs;
pub mod tokio_side;

/// The bound on every single wait of the adversarial tests: a lost
/// wake-up fails within it instead of hanging the suite.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Polls `done` until it holds, failing with `what` after [`LIMIT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + LIMIT;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not after {LIMIT:?}"
        );
        std::thread::yield_now();
    }
}

/// A runtime with `n` shards, panicking with the reason if the kernel refuses.
pub fn runtime(n: usize) -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(n)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"))
}

/// `f`, failing the test if it is still waiting after 5 s (a lost
/// wake-up) instead of hanging the run.
pub async fn soon<F: std::future::Future>(f: F) -> F::Output {
    ringlane::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("a lost wake-up: still waiting after 5 s")
}

/// Whether `f` is still waiting after 50 ms (a readiness wait that must
/// not resolve yet).
pub async fn waits<F: std::future::Future>(f: F) -> bool {
    ringlane::time::timeout(Duration::from_millis(50), f)
        .await
        .is_err()
}

/// Runs `f` in a task pinned on shard 0 and returns its output.
pub fn on_shard_0<T: Send + 'static>(
    rt: &ringlane::Runtime,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(rt.handle().spawn_pinned(0, f).unwrap())
        .unwrap()
}

/// Awaits a task's result from the test thread, failing with `what` after
/// `limit` instead of hanging when the wake-up under test is lost.
pub fn join_within<T>(
    rt: &ringlane::Runtime,
    task: ringlane::JoinHandle<T>,
    limit: Duration,
    what: &str,
) -> T {
    rt.block_on(ringlane::time::timeout(limit, task))
        .unwrap_or_else(|_| panic!("{what}: not done after {limit:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Waits (at most 10 s, then fails) until `shard` is asleep in the kernel:
/// every task handed to it before this call has run and now waits. Tests
/// use it instead of a sleep, which a loaded machine can outlast.
///
/// `parked` turns true just before the sleep's `io_uring_enter`, which
/// also submits the SQEs those tasks queued (an fd replaced right after
/// must not beat the poll that holds it: `compat_edges`). So the shard's
/// thread must also be seen blocked (`S` in its `/proc` stat) between two
/// snapshots of one sleep (parked both times, no park counted between):
/// the enter's wait is the only place it blocks in that sleep, and the
/// enter blocks only after it submitted.
pub fn until_parked(h: &ringlane::Handle, shard: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = h.shard_stats(shard).unwrap();
        if seen.parked && thread_state(seen.os_tid) == 'S' {
            let now = h.shard_stats(shard).unwrap();
            if now.parked && now.parks == seen.parks {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "shard {shard} never parked"
        );
        std::thread::yield_now();
    }
}

/// The scheduler state of thread `tid` of this process (`R` running or
/// runnable, `S` blocked in an interruptible wait, ...).
pub fn thread_state(tid: i32) -> char {
    let stat =
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("read thread stat");
    // The field after the parenthesised command name.
    let rest = &stat[stat.rfind(')').expect("stat has a comm field") + 2..];
    rest.chars().next().expect("stat has a state field")
}

/// A one-shard runtime on the smallest ring, whose op table takes two
/// single-shot ops in flight (the cap is half the CQ, less a reserve, and
/// at least 2): tests fill it with two reads of empty pipes or sockets.
pub fn runtime_with_room_for_two_ops() -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(1)
        .ring_entries(2)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"))
}

/// CPU time (user + system) consumed so far by thread `tid` of this process.
pub fn thread_cpu_time(tid: i32) -> Duration {
    let stat =
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("read thread stat");
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 overall, i.e. 11 and 12 after the ')'.
    let rest = &stat[stat.rfind(')').expect("stat has a comm field") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    // Settled: the same count twice, 2 ms apart. A runtime dropped by an
    // earlier test may still be closing an fd on another thread (a waker
    // it handed out, dropped late, holds the last reference to a shard's
    // eventfd); counting that fd would blame the next test.
    let count = || {
        std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let mut last = count();
    for _ in 0..500 {
        std::thread::sleep(std::time::Duration::from_millis(2));
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Blocks on `f` with a fresh one-shard runtime's `block_on` (for awaiting
/// join handles of a runtime that was already shut down).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime(1).block_on(f)
}

/// A pinned task that holds shard `shard` in one long poll (no yielding)
/// until released: a shard blocked by CPU-bound code.
pub struct Blocker {
    release: std::sync::Arc<std::sync::atomic::AtomicBool>,
    join: ringlane::JoinHandle<()>,
}

/// Blocks shard `shard` of `rt` until the returned [`Blocker`] is released.
/// Returns once the shard is blocked (its blocking poll has begun), not
/// merely asked to block: a sleep that hopes for it can be outlasted on a
/// loaded machine.
pub fn block_shard(rt: &ringlane::Runtime, shard: usize) -> Blocker {
    use std::sync::atomic::{AtomicBool, Ordering};
    let release = std::sync::Arc::new(AtomicBool::new(false));
    let started = std::sync::Arc::new(AtomicBool::new(false));
    let (r, s) = (release.clone(), started.clone());
    let join = rt
        .handle()
        .spawn_pinned(shard, async move {
            s.store(true, Ordering::Release);
            while !r.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !started.load(Ordering::Acquire) {
        assert!(
            std::time::Instant::now() < deadline,
            "shard {shard} never ran its blocker"
        );
        std::thread::yield_now();
    }
    Blocker { release, join }
}

impl Blocker {
    /// Lets the shard go; the handle resolves once the blocking poll ends.
    pub fn release(self) -> ringlane::JoinHandle<()> {
        self.release
            .store(true, std::sync::atomic::Ordering::Release);
        self.join
    }

    /// The release flag, to let the shard go from another thread.
    pub fn release_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.release.clone()
    }
}

/// A new pipe: (read end, write end), both close-on-exec.
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we pass.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Writes "after" into a pipe and reads it back, both through the ring in
/// one task on shard 0, and asserts the read got those bytes (within 10
/// s). Spawned after an in-flight read of that pipe was dropped, this
/// proves the drop's cancel reached the ring first: the cancel's SQE is
/// queued before the write's (FIFO mailbox, in-order SQEs).
pub fn cancelled_read_leaves_the_next_bytes(
    rt: &ringlane::Runtime,
    reader: ringlane::native::fs::File,
    writer: ringlane::native::fs::File,
) {
    let next = rt.handle().spawn_pinned(0, async move {
        let (n, _) = writer.write(b"after".to_vec()).await;
        assert_eq!(n.unwrap(), 5);
        let read = reader.read(vec![0u8; 64]);
        let (n, buf) = ringlane::native::timeout(Duration::from_secs(10), read).await;
        let n = n.expect("the next read timed out: the cancelled one swallowed the bytes");
        buf[..n].to_vec()
    });
    assert_eq!(rt.block_on(next.unwrap()).unwrap(), b"after");
}

/// `addr` (IPv4 only) as the kernel's `sockaddr_in`.
pub fn sockaddr_in(addr: std::net::SocketAddr) -> libc::sockaddr_in {
    let std::net::SocketAddr::V4(a) = addr else {
        panic!("IPv4 only: {addr}")
    };
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}
