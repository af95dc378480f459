//! The `mailbox` suite: cross-shard message passing, ringlane next to the
//! raw `IORING_OP_MSG_RING` floor and the usual baselines, in one run.
//!
//! Cases (see `shared/BENCHMARKS.md` beside the repository):
//! * **Round trip (RTT)**: a task (or thread) sends a `u64`, the other side
//!   echoes it back; one sample per round trip.
//!   * `ringlane_parked`: ping task on shard 0, echo task on shard 1, two
//!     `raw_channel`s; 2 shards that park in `io_uring_enter` (the default,
//!     rings `SINGLE_ISSUER|DEFER_TASKRUN`). `ringlane_parked_no_dt`: the
//!     same with `defer_taskrun(false)`. `ringlane_spin`: the same with
//!     `spin_before_park(100 µs)`.
//!   * `raw_msg_ring_parked`: two threads, each with a bare ring (default
//!     set-up), each sending `MSG_RING` to the other's ring and sleeping in
//!     `submit_and_wait(1)`; `raw_msg_ring_parked_dt`: the same with
//!     `SINGLE_ISSUER|DEFER_TASKRUN` rings (ringlane's set-up);
//!     `raw_msg_ring_busy_poll`: both threads spin on their CQ and only
//!     `submit()`.
//!   * `atomic`: two threads spinning on one cache line (the floor).
//!   * `tokio_mt_mpsc`, `tokio_mt_oneshot`: a multi-thread runtime with 2
//!     workers; the scheduler may run both tasks on one worker (the share of
//!     round trips that crossed threads is reported).
//!   * `tokio_ct_pair_mpsc`: two current-thread runtimes on two threads.
//!   * `crossbeam`: bounded crossbeam channels between two threads.
//! * **One-way throughput**, shard 0 → shard 1 (thread → thread for the raw
//!   floor), at batch 1, 8, 32 and 128: ringlane sends with `send` (batch 1)
//!   or `send_many` and receives with `recv_many`; the raw floor pushes a
//!   batch of `MsgRingData` SQEs, submits once, and its receiver reaps its CQ,
//!   sleeping in `submit_and_wait(1)` when it is empty. Every case bounds
//!   the messages in flight by [`WINDOW`] (the ringlane channel's capacity;
//!   a credit counter for the raw floor, whose CQ holds twice that).
//!
//! Two modes:
//! * default: criterion (`cargo bench --bench mailbox`), groups
//!   `mailbox_rtt` (time per round trip) and `mailbox_throughput`.
//! * `RINGLANE_BENCH_SUMMARY=1`: a fixed number of round trips and messages
//!   per case, rounds interleaved across cases, printing markdown tables with
//!   p50/p99 per round trip, process CPU time (`getrusage(RUSAGE_SELF)`, every
//!   thread) per round trip or message, and ratios to the raw floors.
//!   `scripts/bench-summary` runs this.
//!
//! A watchdog thread aborts the process with a message (and every ringlane
//! shard's counters) if a case makes no progress for [`STALL`]: a lost
//! wake-up shows as that message, not as a hang.

use std::hint::spin_loop;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use io_uring::{IoUring, opcode, squeue, types};

/// Shards of each ringlane runtime, workers of the Tokio multi-thread one.
const THREADS: usize = 2;
/// The spin window of the `ringlane_spin` cases.
const SPIN_WINDOW: Duration = Duration::from_micros(100);
/// Capacity of the channels used for round trips (at most one message is in flight).
const RTT_CAPACITY: usize = 16;
/// Throughput: messages in flight at most, for every implementation.
const WINDOW: usize = 4096;
/// Throughput batch sizes.
const BATCHES: [usize; 4] = [1, 8, 32, 128];
/// Summary mode: round trips per RTT case (fewer when the case parks a
/// thread per hop), messages per throughput case, split into rounds.
const SUMMARY_RTT: usize = 20_000;
const SUMMARY_RTT_PARKED: usize = 10_000;
const SUMMARY_MSGS: u64 = 2_000_000;
const SUMMARY_ROUNDS: usize = 4;
/// Criterion mode: messages per iteration of a throughput case.
const CRITERION_MSGS: u64 = 4096;
/// A case with no progress for this long is reported as a stall.
const STALL: Duration = Duration::from_secs(10);
/// Ends the raw MSG_RING round-trip loops.
const STOP: u64 = u64::MAX;
/// user_data of a thread's own MSG_RING SQEs (their CQE only appears on error).
const OWN_SQE: u64 = u64::MAX - 1;

// ---------------------------------------------------------------------------
// Watchdog

/// Progress of the running case, on its own cache line.
#[repr(align(128))]
struct Progress(AtomicU64);

static PROGRESS: Progress = Progress(AtomicU64::new(0));
static CURRENT_CASE: Mutex<Option<String>> = Mutex::new(None);
/// Ringlane runtimes whose counters a stall report prints.
static HANDLES: Mutex<Vec<(&'static str, ringlane::Handle)>> = Mutex::new(Vec::new());

/// Records progress of the running case (a plain store by the one thread that drives it).
#[inline]
fn progress(done: u64) {
    PROGRESS.0.store(done, Ordering::Relaxed);
}

/// Marks a case as running until dropped.
struct Watch;

fn watch(case: &str) -> Watch {
    PROGRESS.0.store(0, Ordering::Relaxed);
    *CURRENT_CASE.lock().unwrap() = Some(case.to_string());
    Watch
}

impl Drop for Watch {
    fn drop(&mut self) {
        *CURRENT_CASE.lock().unwrap() = None;
    }
}

fn start_watchdog() {
    std::thread::Builder::new()
        .name("mailbox-watchdog".into())
        .spawn(|| {
            let mut seen: (Option<String>, u64) = (None, 0);
            let mut since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let now = (
                    CURRENT_CASE.lock().unwrap().clone(),
                    PROGRESS.0.load(Ordering::Relaxed),
                );
                if now != seen {
                    seen = now;
                    since = Instant::now();
                    continue;
                }
                let Some(case) = &seen.0 else { continue };
                if since.elapsed() >= STALL {
                    eprintln!(
                        "mailbox bench STALLED: case `{case}` made no progress for {:?} \
                         (stuck at {} round trips / messages): a lost wake-up?",
                        since.elapsed(),
                        seen.1
                    );
                    for (name, handle) in HANDLES.lock().unwrap().iter() {
                        for shard in 0..handle.shards() {
                            eprintln!("  {name} {:?}", handle.shard_stats(shard));
                        }
                    }
                    std::process::abort();
                }
            }
        })
        .expect("spawn watchdog");
}

// ---------------------------------------------------------------------------
// Measurement helpers

/// User plus system CPU time of the whole process (every thread).
fn process_cpu_time() -> Duration {
    // SAFETY: `rusage` is plain data, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// An id of the calling thread that costs one TLS access.
fn thread_tag() -> usize {
    thread_local!(static TAG: u8 = const { 0 });
    TAG.with(|t| std::ptr::from_ref(t).addr())
}

/// Ringlane's doorbell counters, summed over a runtime's shards.
#[derive(Debug, Default, Clone, Copy)]
struct Doorbells {
    msg_ring: u64,
    eventfd: u64,
    avoided: u64,
    parks: u64,
}

impl Doorbells {
    fn of(handle: &ringlane::Handle) -> Self {
        let mut d = Self::default();
        for shard in 0..handle.shards() {
            let s = handle.shard_stats(shard).expect("shard stats");
            d.msg_ring += s.doorbells_msg_ring;
            d.eventfd += s.doorbells_eventfd;
            d.avoided += s.doorbells_avoided;
            d.parks += s.parks;
        }
        d
    }

    fn since(self, before: Self) -> Self {
        Self {
            msg_ring: self.msg_ring - before.msg_ring,
            eventfd: self.eventfd - before.eventfd,
            avoided: self.avoided - before.avoided,
            parks: self.parks - before.parks,
        }
    }

    fn add(&mut self, other: Self) {
        self.msg_ring += other.msg_ring;
        self.eventfd += other.eventfd;
        self.avoided += other.avoided;
        self.parks += other.parks;
    }

    fn describe(&self, per: u64, unit: &str) -> String {
        let f = |x: u64| x as f64 / per as f64;
        format!(
            "per {unit}: {:.2} MSG_RING + {:.2} eventfd doorbells, {:.2} avoided, {:.2} parks",
            f(self.msg_ring),
            f(self.eventfd),
            f(self.avoided),
            f(self.parks)
        )
    }
}

/// The outcome of one round-trip run.
#[derive(Default)]
struct RttRun {
    /// Nanoseconds per round trip.
    samples: Vec<u64>,
    /// Process CPU time over the measured round trips.
    cpu: Duration,
    /// Measured round trips whose two ends ran on different threads.
    cross: u64,
    /// Ringlane's doorbell counters over the measured round trips.
    doorbells: Option<Doorbells>,
}

impl RttRun {
    fn wall(&self) -> Duration {
        Duration::from_nanos(self.samples.iter().sum())
    }
}

/// Per-round-trip clock for the side that starts each round trip: `warm`
/// unrecorded round trips, then one sample per round trip (one
/// `Instant::now()` each, end of one round trip = start of the next).
struct Samples {
    warm: usize,
    done: usize,
    ns: Vec<u64>,
    last: Instant,
    cpu0: Duration,
    cross: u64,
}

impl Samples {
    fn new(warm: usize, n: usize) -> Self {
        assert!(warm >= 1, "at least one warm-up round trip");
        Self {
            warm,
            done: 0,
            ns: Vec::with_capacity(n),
            last: Instant::now(),
            cpu0: Duration::ZERO,
            cross: 0,
        }
    }

    /// Round trips to run, warm-up included.
    fn total(&self) -> u64 {
        (self.warm + self.ns.capacity()) as u64
    }

    /// Ends one round trip; returns `true` when the warm-up has just ended.
    #[inline]
    fn tick(&mut self, crossed: bool) -> bool {
        let mut now = Instant::now();
        self.done += 1;
        progress(self.done as u64);
        let started = self.done == self.warm;
        if self.done > self.warm {
            self.ns.push((now - self.last).as_nanos() as u64);
            self.cross += u64::from(crossed);
        } else if started {
            self.cpu0 = process_cpu_time();
            now = Instant::now();
        }
        self.last = now;
        started
    }

    fn finish(self) -> RttRun {
        let cpu = process_cpu_time() - self.cpu0;
        assert_eq!(
            self.ns.len(),
            self.ns.capacity(),
            "every round trip measured"
        );
        RttRun {
            samples: self.ns,
            cpu,
            cross: self.cross,
            doorbells: None,
        }
    }
}

/// The outcome of one throughput run.
struct TputRun {
    wall: Duration,
    cpu: Duration,
    doorbells: Option<Doorbells>,
    /// Raw floor only: messages received out of send order.
    misordered: u64,
}

// ---------------------------------------------------------------------------
// Runtimes

/// The ringlane and Tokio runtimes, built once before anything is timed.
struct Env {
    parked: ringlane::Runtime,
    parked_no_dt: ringlane::Runtime,
    spin: ringlane::Runtime,
    tokio_mt: tokio::runtime::Runtime,
}

impl Env {
    fn new() -> Self {
        let build = |b: ringlane::Builder| b.shards(THREADS).build().expect("ringlane runtime");
        let env = Self {
            parked: build(ringlane::Runtime::builder()),
            parked_no_dt: build(ringlane::Runtime::builder().defer_taskrun(false)),
            spin: build(ringlane::Runtime::builder().spin_before_park(SPIN_WINDOW)),
            tokio_mt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(THREADS)
                .build()
                .expect("tokio multi-thread runtime"),
        };
        let mut handles = HANDLES.lock().unwrap();
        handles.push(("parked", env.parked.handle()));
        handles.push(("parked_no_dt", env.parked_no_dt.handle()));
        handles.push(("spin", env.spin.handle()));
        drop(handles);
        env
    }

    fn shutdown(self) {
        HANDLES.lock().unwrap().clear();
        for (name, rt) in [
            ("parked", self.parked),
            ("parked_no_dt", self.parked_no_dt),
            ("spin", self.spin),
        ] {
            let report = rt.shutdown(Duration::from_secs(1));
            assert!(report.is_clean(), "ringlane {name} shutdown: {report:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips: ringlane

fn ringlane_rtt(rt: &ringlane::Runtime, warm: usize, n: usize) -> RttRun {
    let handle = rt.handle();
    let (ping_tx, mut ping_rx) = ringlane::raw_channel(RTT_CAPACITY).expect("channel");
    let (pong_tx, mut pong_rx) = ringlane::raw_channel(RTT_CAPACITY).expect("channel");
    let echo = handle
        .spawn_pinned(1, async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        })
        .expect("spawn echo");
    let stats = handle.clone();
    let ping = handle
        .spawn_pinned(0, async move {
            let mut s = Samples::new(warm, n);
            let mut before = Doorbells::default();
            for i in 0..s.total() {
                ping_tx.send(i).await.expect("echo task gone");
                let v = pong_rx.recv().await.expect("echo task gone");
                assert_eq!(v, i, "echo out of order");
                if s.tick(true) {
                    before = Doorbells::of(&stats);
                }
            }
            let after = Doorbells::of(&stats);
            let mut run = s.finish();
            run.doorbells = Some(after.since(before));
            run
        })
        .expect("spawn ping");
    let run = rt.block_on(ping).expect("ping task");
    rt.block_on(echo).expect("echo task");
    run
}

fn rtt_ringlane_parked(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.parked, warm, n)
}

fn rtt_ringlane_parked_no_dt(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.parked_no_dt, warm, n)
}

fn rtt_ringlane_spin(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.spin, warm, n)
}

// ---------------------------------------------------------------------------
// Round trips and throughput: the raw MSG_RING floor

#[derive(Clone, Copy, PartialEq, Eq)]
enum RingKind {
    /// `IoUring::new` defaults: the kernel posts a MSG_RING CQE straight into the CQ.
    Default,
    /// `SINGLE_ISSUER|DEFER_TASKRUN`: the owner must enter the kernel to see a message.
    DeferTaskrun,
}

fn new_ring(kind: RingKind, entries: u32, cq_entries: Option<u32>) -> IoUring {
    let mut builder = IoUring::builder();
    if let Some(cq) = cq_entries {
        builder.setup_cqsize(cq);
    }
    if kind == RingKind::DeferTaskrun {
        builder.setup_single_issuer().setup_defer_taskrun();
    }
    builder.build(entries).expect("io_uring set-up")
}

/// Queues a MSG_RING that posts a CQE with `user_data = data` on `target`.
/// Its own CQE is skipped unless it fails.
fn push_msg(ring: &mut IoUring, target: RawFd, data: u64) {
    let sqe = opcode::MsgRingData::new(types::Fd(target), 0, data, None)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(OWN_SQE);
    // SAFETY: a MSG_RING data SQE points at no user memory; the target ring
    // is kept open by its thread until both sides have passed the final
    // barrier of the run, after every MSG_RING has completed.
    unsafe { ring.submission().push(&sqe) }.expect("SQ full");
}

/// `submit_and_wait`, retried on `EINTR`.
fn enter(ring: &IoUring, want: usize) {
    loop {
        match ring.submit_and_wait(want) {
            Ok(_) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("io_uring_enter: {e}"),
        }
    }
}

/// The next message from the CQ, if any; panics on a failed MSG_RING of our own.
fn next_msg(ring: &mut IoUring) -> Option<u64> {
    let cqe = ring.completion().next()?;
    assert!(
        cqe.user_data() != OWN_SQE && cqe.result() >= 0,
        "MSG_RING failed: {}",
        io::Error::from_raw_os_error(-cqe.result())
    );
    Some(cqe.user_data())
}

/// Two threads, two rings, MSG_RING each way. `busy_poll`: spin on the CQ
/// and only `submit()`; otherwise sleep in `submit_and_wait(1)`.
fn raw_rtt(kind: RingKind, busy_poll: bool, warm: usize, n: usize) -> RttRun {
    let fds = [AtomicI32::new(-1), AtomicI32::new(-1)];
    let ready = Barrier::new(2);
    let done = Barrier::new(2);
    std::thread::scope(|scope| {
        let echo = scope.spawn(|| {
            let mut ring = new_ring(kind, 8, None);
            fds[1].store(ring.as_raw_fd(), Ordering::Relaxed);
            ready.wait();
            let peer = fds[0].load(Ordering::Relaxed);
            loop {
                let v = if busy_poll {
                    while ring.completion().is_empty() {
                        spin_loop();
                    }
                    next_msg(&mut ring).expect("a CQE")
                } else {
                    // Submits the previous reply and sleeps until the next ping.
                    enter(&ring, 1);
                    next_msg(&mut ring).expect("a CQE after waiting for one")
                };
                if v == STOP {
                    break;
                }
                push_msg(&mut ring, peer, v);
                if busy_poll {
                    ring.submit().expect("submit");
                }
            }
            done.wait();
        });
        let ping = scope.spawn(|| {
            let mut ring = new_ring(kind, 8, None);
            fds[0].store(ring.as_raw_fd(), Ordering::Relaxed);
            ready.wait();
            let peer = fds[1].load(Ordering::Relaxed);
            let mut s = Samples::new(warm, n);
            for i in 0..s.total() {
                push_msg(&mut ring, peer, i);
                let v = if busy_poll {
                    ring.submit().expect("submit");
                    while ring.completion().is_empty() {
                        spin_loop();
                    }
                    next_msg(&mut ring).expect("a CQE")
                } else {
                    enter(&ring, 1);
                    next_msg(&mut ring).expect("a CQE after waiting for one")
                };
                assert_eq!(v, i, "echo out of order");
                s.tick(true);
            }
            let run = s.finish();
            push_msg(&mut ring, peer, STOP);
            ring.submit().expect("submit");
            done.wait();
            run
        });
        echo.join().expect("echo thread");
        ping.join().expect("ping thread")
    })
}

fn rtt_raw_parked(_: &Env, warm: usize, n: usize) -> RttRun {
    raw_rtt(RingKind::Default, false, warm, n)
}

fn rtt_raw_parked_dt(_: &Env, warm: usize, n: usize) -> RttRun {
    raw_rtt(RingKind::DeferTaskrun, false, warm, n)
}

fn rtt_raw_busy_poll(_: &Env, warm: usize, n: usize) -> RttRun {
    raw_rtt(RingKind::Default, true, warm, n)
}

/// One-way: a sender thread pushes `batch` MSG_RING SQEs and submits once;
/// the receiver reaps its CQ, sleeping in `submit_and_wait(1)` when empty.
fn raw_tput(kind: RingKind, batch: usize, msgs: u64) -> TputRun {
    let fd = AtomicI32::new(-1);
    let received = AtomicU64::new(0);
    let ready = Barrier::new(2);
    let done = Barrier::new(2);
    std::thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            let mut ring = new_ring(kind, 8, Some(2 * WINDOW as u32));
            fd.store(ring.as_raw_fd(), Ordering::Relaxed);
            ready.wait();
            let (mut got, mut misordered) = (0u64, 0u64);
            while got < msgs {
                let before = got;
                while let Some(v) = next_msg(&mut ring) {
                    misordered += u64::from(v != got);
                    got += 1;
                }
                if got == before {
                    enter(&ring, 1);
                } else {
                    received.store(got, Ordering::Release);
                    progress(got);
                }
            }
            let end = (Instant::now(), process_cpu_time());
            done.wait();
            (end, misordered)
        });
        let sender = scope.spawn(|| {
            let mut ring = new_ring(RingKind::Default, 256, None);
            ready.wait();
            let target = fd.load(Ordering::Relaxed);
            let start = (Instant::now(), process_cpu_time());
            let mut sent = 0u64;
            while sent < msgs {
                let b = (batch as u64).min(msgs - sent);
                // Credits: never more than WINDOW messages in flight.
                while sent + b - received.load(Ordering::Acquire) > WINDOW as u64 {
                    spin_loop();
                }
                for k in 0..b {
                    push_msg(&mut ring, target, sent + k);
                }
                ring.submit().expect("submit");
                assert!(
                    next_msg(&mut ring).is_none(),
                    "unexpected CQE on the sender"
                );
                sent += b;
            }
            done.wait();
            start
        });
        let (start_wall, start_cpu) = sender.join().expect("sender thread");
        let ((end_wall, end_cpu), misordered) = receiver.join().expect("receiver thread");
        TputRun {
            wall: end_wall - start_wall,
            cpu: end_cpu - start_cpu,
            doorbells: None,
            misordered,
        }
    })
}

// ---------------------------------------------------------------------------
// Round trips: the other baselines

/// Two threads spinning on one cache line: odd values are pings, even ones pongs.
fn rtt_atomic(_: &Env, warm: usize, n: usize) -> RttRun {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Line(AtomicU64::new(0));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut next = 1;
            loop {
                let v = loop {
                    let v = line.0.load(Ordering::Acquire);
                    if v == next || v == STOP {
                        break v;
                    }
                    spin_loop();
                };
                if v == STOP {
                    break;
                }
                line.0.store(v + 1, Ordering::Release);
                next += 2;
            }
        });
        let ping = scope.spawn(|| {
            let mut s = Samples::new(warm, n);
            for i in 0..s.total() {
                line.0.store(2 * i + 1, Ordering::Release);
                while line.0.load(Ordering::Acquire) != 2 * i + 2 {
                    spin_loop();
                }
                s.tick(true);
            }
            let run = s.finish();
            line.0.store(STOP, Ordering::Release);
            run
        });
        ping.join().expect("ping thread")
    })
}

/// Echo over Tokio mpsc channels; the reply carries the echo's thread tag.
async fn tokio_echo(
    mut rx: tokio::sync::mpsc::Receiver<u64>,
    tx: tokio::sync::mpsc::Sender<(u64, usize)>,
) {
    while let Some(v) = rx.recv().await {
        if tx.send((v, thread_tag())).await.is_err() {
            break;
        }
    }
}

async fn tokio_ping(
    tx: tokio::sync::mpsc::Sender<u64>,
    mut rx: tokio::sync::mpsc::Receiver<(u64, usize)>,
    warm: usize,
    n: usize,
) -> RttRun {
    let mut s = Samples::new(warm, n);
    for i in 0..s.total() {
        tx.send(i).await.expect("echo task gone");
        let (v, tag) = rx.recv().await.expect("echo task gone");
        assert_eq!(v, i, "echo out of order");
        s.tick(tag != thread_tag());
    }
    s.finish()
}

fn rtt_tokio_mt_mpsc(env: &Env, warm: usize, n: usize) -> RttRun {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let rt = &env.tokio_mt;
    let echo = rt.spawn(tokio_echo(ping_rx, pong_tx));
    let ping = rt.spawn(tokio_ping(ping_tx, pong_rx, warm, n));
    let run = rt.block_on(ping).expect("ping task");
    rt.block_on(echo).expect("echo task");
    run
}

/// A request of the oneshot ping-pong: the value, where to reply, and where
/// the next request will come from.
struct OneshotReq {
    v: u64,
    reply: tokio::sync::oneshot::Sender<(u64, usize)>,
    next: tokio::sync::oneshot::Receiver<OneshotReq>,
}

fn rtt_tokio_mt_oneshot(env: &Env, warm: usize, n: usize) -> RttRun {
    use tokio::sync::oneshot;
    let (first_tx, first_rx) = oneshot::channel::<OneshotReq>();
    let rt = &env.tokio_mt;
    let echo = rt.spawn(async move {
        let mut rx = first_rx;
        while let Ok(req) = rx.await {
            let _ = req.reply.send((req.v, thread_tag()));
            rx = req.next;
        }
    });
    let ping = rt.spawn(async move {
        let mut tx = first_tx;
        let mut s = Samples::new(warm, n);
        for i in 0..s.total() {
            let (reply, reply_rx) = oneshot::channel();
            let (next_tx, next) = oneshot::channel();
            if tx.send(OneshotReq { v: i, reply, next }).is_err() {
                panic!("echo task gone");
            }
            tx = next_tx;
            let (v, tag) = reply_rx.await.expect("echo task gone");
            assert_eq!(v, i, "echo out of order");
            s.tick(tag != thread_tag());
        }
        s.finish()
    });
    let run = rt.block_on(ping).expect("ping task");
    rt.block_on(echo).expect("echo task");
    run
}

fn rtt_tokio_ct_pair(_: &Env, warm: usize, n: usize) -> RttRun {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let current_thread = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio current-thread runtime")
    };
    std::thread::scope(|scope| {
        scope.spawn(|| current_thread().block_on(tokio_echo(ping_rx, pong_tx)));
        let ping = scope.spawn(|| current_thread().block_on(tokio_ping(ping_tx, pong_rx, warm, n)));
        ping.join().expect("ping thread")
    })
}

fn rtt_crossbeam(_: &Env, warm: usize, n: usize) -> RttRun {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(RTT_CAPACITY);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(RTT_CAPACITY);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for v in ping_rx.iter() {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        let ping = scope.spawn(move || {
            let mut s = Samples::new(warm, n);
            for i in 0..s.total() {
                ping_tx.send(i).expect("echo thread gone");
                let v = pong_rx.recv().expect("echo thread gone");
                assert_eq!(v, i, "echo out of order");
                s.tick(true);
            }
            s.finish()
        });
        ping.join().expect("ping thread")
    })
}

// ---------------------------------------------------------------------------
// Throughput: ringlane

fn ringlane_tput(rt: &ringlane::Runtime, batch: usize, msgs: u64) -> TputRun {
    let handle = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(WINDOW).expect("channel");
    let receiver = handle
        .spawn_pinned(1, async move {
            let mut buf = Vec::with_capacity(WINDOW);
            let mut got = 0u64;
            while got < msgs {
                buf.clear();
                let k = rx.recv_many(&mut buf, WINDOW).await;
                assert!(k > 0, "the stream ended after {got} of {msgs} messages");
                for &v in &buf {
                    assert_eq!(v, got, "message out of order");
                    got += 1;
                }
                progress(got);
            }
            (Instant::now(), process_cpu_time())
        })
        .expect("spawn receiver");
    let before = Doorbells::of(&handle);
    let sender = handle
        .spawn_pinned(0, async move {
            let start = (Instant::now(), process_cpu_time());
            let mut sent = 0u64;
            while sent < msgs {
                let b = (batch as u64).min(msgs - sent);
                if batch == 1 {
                    tx.send(sent).await.expect("receiver gone");
                } else {
                    tx.send_many(sent..sent + b).await.expect("receiver gone");
                }
                sent += b;
            }
            start
        })
        .expect("spawn sender");
    let (start_wall, start_cpu) = rt.block_on(sender).expect("sender task");
    let (end_wall, end_cpu) = rt.block_on(receiver).expect("receiver task");
    TputRun {
        wall: end_wall - start_wall,
        cpu: end_cpu - start_cpu,
        doorbells: Some(Doorbells::of(&handle).since(before)),
        misordered: 0,
    }
}

fn tput_ringlane_parked(env: &Env, batch: usize, msgs: u64) -> TputRun {
    ringlane_tput(&env.parked, batch, msgs)
}

fn tput_ringlane_spin(env: &Env, batch: usize, msgs: u64) -> TputRun {
    ringlane_tput(&env.spin, batch, msgs)
}

fn tput_raw(_: &Env, batch: usize, msgs: u64) -> TputRun {
    raw_tput(RingKind::Default, batch, msgs)
}

fn tput_raw_dt(_: &Env, batch: usize, msgs: u64) -> TputRun {
    raw_tput(RingKind::DeferTaskrun, batch, msgs)
}

// ---------------------------------------------------------------------------
// Case tables

type RttFn = fn(&Env, usize, usize) -> RttRun;
type TputFn = fn(&Env, usize, u64) -> TputRun;

struct RttCase {
    id: &'static str,
    label: &'static str,
    /// Each hop wakes a sleeping thread: run fewer round trips in the summary.
    parked: bool,
    run: RttFn,
}

const RTT_CASES: &[RttCase] = &[
    RttCase {
        id: "ringlane_parked",
        label: "ringlane, shards park (default; DEFER_TASKRUN rings)",
        parked: true,
        run: rtt_ringlane_parked,
    },
    RttCase {
        id: "ringlane_parked_no_dt",
        label: "ringlane, shards park, defer_taskrun(false)",
        parked: true,
        run: rtt_ringlane_parked_no_dt,
    },
    RttCase {
        id: "ringlane_spin",
        label: "ringlane, spin_before_park(100 µs)",
        parked: false,
        run: rtt_ringlane_spin,
    },
    RttCase {
        id: "raw_msg_ring_parked",
        label: "raw MSG_RING, 2 threads sleep in submit_and_wait (default rings)",
        parked: true,
        run: rtt_raw_parked,
    },
    RttCase {
        id: "raw_msg_ring_parked_dt",
        label: "raw MSG_RING, 2 threads sleep in submit_and_wait (DEFER_TASKRUN rings)",
        parked: true,
        run: rtt_raw_parked_dt,
    },
    RttCase {
        id: "raw_msg_ring_busy_poll",
        label: "raw MSG_RING, 2 threads spin on their CQ (default rings)",
        parked: false,
        run: rtt_raw_busy_poll,
    },
    RttCase {
        id: "atomic",
        label: "atomic ping-pong, 2 spinning threads (cache-line floor)",
        parked: false,
        run: rtt_atomic,
    },
    RttCase {
        id: "tokio_mt_mpsc",
        label: "tokio_mt mpsc, 2 workers (both tasks may share one worker)",
        parked: false,
        run: rtt_tokio_mt_mpsc,
    },
    RttCase {
        id: "tokio_mt_oneshot",
        label: "tokio_mt oneshot, 2 workers (both tasks may share one worker)",
        parked: false,
        run: rtt_tokio_mt_oneshot,
    },
    RttCase {
        id: "tokio_ct_pair_mpsc",
        label: "2 tokio current-thread runtimes on 2 threads, mpsc",
        parked: true,
        run: rtt_tokio_ct_pair,
    },
    RttCase {
        id: "crossbeam",
        label: "crossbeam bounded channel, 2 threads (spins, then sleeps)",
        parked: false,
        run: rtt_crossbeam,
    },
];

/// The parked floor and the cache-line floor the RTT ratios divide by.
const RTT_PARKED_FLOOR: &str = "raw_msg_ring_parked";
const RTT_ATOMIC_FLOOR: &str = "atomic";

struct TputCase {
    id: &'static str,
    label: &'static str,
    run: TputFn,
}

const TPUT_CASES: &[TputCase] = &[
    TputCase {
        id: "ringlane_parked",
        label: "ringlane send/send_many → recv_many, shards park",
        run: tput_ringlane_parked,
    },
    TputCase {
        id: "ringlane_spin",
        label: "ringlane send/send_many → recv_many, spin_before_park(100 µs)",
        run: tput_ringlane_spin,
    },
    TputCase {
        id: "raw_msg_ring",
        label: "raw MSG_RING → default ring",
        run: tput_raw,
    },
    TputCase {
        id: "raw_msg_ring_dt",
        label: "raw MSG_RING → DEFER_TASKRUN ring",
        run: tput_raw_dt,
    },
];

/// The floor the throughput ratios divide by.
const TPUT_FLOOR: &str = "raw_msg_ring";

// ---------------------------------------------------------------------------
// Criterion mode

fn bench_rtt(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("mailbox_rtt");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in RTT_CASES {
        group.bench_function(case.id, |b| {
            b.iter_custom(|iters| {
                let _watch = watch(case.id);
                (case.run)(env, 10, iters as usize).wall()
            })
        });
    }
    group.finish();
}

fn bench_throughput(c: &mut Criterion, env: &Env) {
    let mut group = c.benchmark_group("mailbox_throughput");
    group
        .throughput(Throughput::Elements(CRITERION_MSGS))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for case in TPUT_CASES {
        for batch in BATCHES {
            let id = format!("{}/batch_{batch}", case.id);
            group.bench_function(&id, |b| {
                b.iter_custom(|iters| {
                    let _watch = watch(&id);
                    (case.run)(env, batch, iters * CRITERION_MSGS).wall
                })
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// Summary mode

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds, with three decimals below 10 µs.
fn us(ns: f64) -> String {
    let us = ns / 1000.0;
    if us < 10.0 {
        format!("{us:.3}")
    } else {
        format!("{us:.1}")
    }
}

fn summary_rtt(env: &Env) {
    let rounds_of = |case: &RttCase| {
        let total = if case.parked {
            SUMMARY_RTT_PARKED
        } else {
            SUMMARY_RTT
        };
        total / SUMMARY_ROUNDS
    };
    let mut runs: Vec<RttRun> = RTT_CASES.iter().map(|_| RttRun::default()).collect();
    for _ in 0..SUMMARY_ROUNDS {
        for (case, acc) in RTT_CASES.iter().zip(&mut runs) {
            let n = rounds_of(case);
            let _watch = watch(case.id);
            let run = (case.run)(env, (n / 10).max(1), n);
            acc.samples.extend_from_slice(&run.samples);
            acc.cpu += run.cpu;
            acc.cross += run.cross;
            if let Some(d) = run.doorbells {
                acc.doorbells.get_or_insert_with(Doorbells::default).add(d);
            }
        }
    }
    for run in &mut runs {
        run.samples.sort_unstable();
    }
    let p50_of = |id: &str| {
        let k = RTT_CASES
            .iter()
            .position(|c| c.id == id)
            .expect("floor case");
        percentile(&runs[k].samples, 50.0) as f64
    };
    let (parked_floor, atomic_floor) = (p50_of(RTT_PARKED_FLOOR), p50_of(RTT_ATOMIC_FLOOR));
    println!("### Round trip, 2 threads / shards (one u64 each way)");
    println!();
    println!(
        "| case | round trips | p50 µs | p99 µs | CPU µs per round trip | p50 / raw MSG_RING parked | \
         p50 / atomic floor | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for (case, run) in RTT_CASES.iter().zip(&runs) {
        let n = run.samples.len() as u64;
        let p50 = percentile(&run.samples, 50.0) as f64;
        let p99 = percentile(&run.samples, 99.0) as f64;
        let cpu = run.cpu.as_nanos() as f64 / n as f64;
        let note = match (&run.doorbells, case.id) {
            (Some(d), _) => d.describe(n, "round trip"),
            (None, "tokio_mt_mpsc" | "tokio_mt_oneshot") => format!(
                "{:.1}% of round trips crossed workers",
                100.0 * run.cross as f64 / n as f64
            ),
            _ => String::new(),
        };
        println!(
            "| {} `{}` | {n} | {} | {} | {} | {:.2} | {:.2} | {note} |",
            case.label,
            case.id,
            us(p50),
            us(p99),
            us(cpu),
            p50 / parked_floor,
            p50 / atomic_floor,
        );
    }
    println!();
}

fn summary_throughput(env: &Env) {
    let msgs = SUMMARY_MSGS / SUMMARY_ROUNDS as u64;
    let cells = TPUT_CASES.len() * BATCHES.len();
    let mut rate = vec![Vec::with_capacity(SUMMARY_ROUNDS); cells];
    let mut cpu = vec![Vec::with_capacity(SUMMARY_ROUNDS); cells];
    let mut doorbells: Vec<Option<Doorbells>> = vec![None; cells];
    let mut misordered = vec![0u64; cells];
    for _ in 0..SUMMARY_ROUNDS {
        for (c, case) in TPUT_CASES.iter().enumerate() {
            for (b, &batch) in BATCHES.iter().enumerate() {
                let k = c * BATCHES.len() + b;
                let _watch = watch(&format!("{}/batch_{batch}", case.id));
                let run = (case.run)(env, batch, msgs);
                rate[k].push(msgs as f64 / run.wall.as_secs_f64());
                cpu[k].push(run.cpu.as_nanos() as f64 / msgs as f64);
                if let Some(d) = run.doorbells {
                    doorbells[k].get_or_insert_with(Doorbells::default).add(d);
                }
                misordered[k] += run.misordered;
            }
        }
    }
    let rate: Vec<f64> = rate.iter_mut().map(|v| median(v)).collect();
    let cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
    let floor = TPUT_CASES
        .iter()
        .position(|c| c.id == TPUT_FLOOR)
        .expect("floor case");
    println!("### One-way throughput, shard 0 → shard 1 (thread → thread for raw MSG_RING)");
    println!();
    println!(
        "| case | batch | M msg/s | CPU ns per msg | ratio vs raw MSG_RING (default ring), same batch | notes |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for (c, case) in TPUT_CASES.iter().enumerate() {
        for (b, &batch) in BATCHES.iter().enumerate() {
            let k = c * BATCHES.len() + b;
            let mut note = doorbells[k]
                .map(|d| d.describe(msgs * SUMMARY_ROUNDS as u64 / 1000, "1000 msgs"))
                .unwrap_or_default();
            if misordered[k] > 0 {
                note = format!("{} messages arrived out of order", misordered[k]);
            }
            println!(
                "| {} `{}` | {batch} | {:.2} | {:.0} | {:.2} | {note} |",
                case.label,
                case.id,
                rate[k] / 1e6,
                cpu[k],
                rate[k] / rate[floor * BATCHES.len() + b],
            );
        }
    }
    println!();
}

fn summary(env: &Env) {
    let started = Instant::now();
    // Warm-up: every case once, briefly.
    for case in RTT_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 10, 200);
    }
    for case in TPUT_CASES {
        let _watch = watch(case.id);
        (case.run)(env, 32, 50_000);
    }
    summary_rtt(env);
    summary_throughput(env);
    println!(
        "{THREADS} ringlane shards / {THREADS} tokio workers / 2 threads per baseline. \
         RTT: {SUMMARY_RTT} round trips per case ({SUMMARY_RTT_PARKED} where each hop wakes a \
         sleeping thread), in {SUMMARY_ROUNDS} rounds interleaved across cases, each after a 10% \
         warm-up; p50/p99 of the per-round-trip samples of all rounds. Throughput: \
         {SUMMARY_MSGS} messages per case in {SUMMARY_ROUNDS} rounds, median of the rounds; at \
         most {WINDOW} messages in flight (ringlane channel capacity; credits for raw MSG_RING). \
         CPU = getrusage(RUSAGE_SELF) user+sys of every thread in the process over the measured \
         span, divided by round trips or messages. Doorbell notes: the shards' counters \
         (ShardStats) over the measured span. Summary pass: {:.1} s.",
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    start_watchdog();
    let env = Env::new();
    if std::env::var_os("RINGLANE_BENCH_SUMMARY").is_some() {
        summary(&env);
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench_rtt(&mut c, &env);
        bench_throughput(&mut c, &env);
        c.final_summary();
    }
    env.shutdown();
}
