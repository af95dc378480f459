//! Runtime life cycle and configuration at their edges.
//!
//! - A spinning shard is not deaf to I/O after a stale
//!   `IORING_SQ_TASKRUN` flag (the flag is set by the test on the ring, the
//!   state the kernel race of ring invariant 4 leaves).
//! - A spinning shard refused as a searcher still runs stealable work its
//!   blocked peer cannot.
//! - The shards' ring set-up does not depend on the building thread's own
//!   registered ring fds (a full table there is `EBUSY`, not "unsupported").
//! - The counters of an exited shard stay frozen when things bound to it are
//!   dropped later (their closures are dropped, not queued).
//! - A task queued behind a poll that outlasts the shutdown deadline is
//!   cancelled, not polled first.
//! - Runtimes built and ended every way, in sequence and in parallel, leave
//!   no thread, fd or registration behind; far more shards than CPUs on the
//!   smallest rings, pinned in a narrow mask, serve and count consistently.

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::Poll;
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, Handle, Runtime, ShardStats};

use common::LIMIT;
use common::lifecycle::{ReleaseOnDrop, threads_left_after_a_while, within};

/// fd counts, io_uring fd scans and CPU-hungry spin windows: one test at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

// ---------------------------------------------------------------------------
// Raw io_uring, for what the public API cannot reach.
// ---------------------------------------------------------------------------

/// `struct io_sqring_offsets`.
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
struct SqRingOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
    resv1: u32,
    user_addr: u64,
}

/// `struct io_cqring_offsets`.
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
struct CqRingOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

/// `struct io_uring_params` (120 bytes).
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
struct UringParams {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: SqRingOffsets,
    cq_off: CqRingOffsets,
}

const _: () = assert!(std::mem::size_of::<UringParams>() == 120);

/// A plain two-entry ring of our own, with the offsets the kernel gave.
fn raw_ring() -> io::Result<(OwnedFd, UringParams)> {
    let mut p = UringParams::default();
    // SAFETY: io_uring_setup writes the params struct we pass, which has the
    // kernel's layout and size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            2 as libc::c_long,
            &mut p as *mut UringParams,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd as RawFd) }, p))
}

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

const IORING_REGISTER_RING_FDS: libc::c_long = 20;

/// Registers `fd` in the calling thread's table of registered rings (16 slots).
fn register_ring_fd(fd: RawFd) -> io::Result<u32> {
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: fd as u64,
    };
    // SAFETY: the kernel reads and writes one `io_uring_rsrc_update` at `up`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd as libc::c_long,
            IORING_REGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1 as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(up.offset)
    }
}

/// The io_uring fds this process has open.
fn io_uring_fds() -> BTreeSet<RawFd> {
    let mut fds = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if target.to_string_lossy().contains("[io_uring]") {
                if let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                    fds.insert(fd);
                }
            }
        }
    }
    fds
}

/// Sets `IORING_SQ_TASKRUN` in the SQ ring of `ring_fd` with no deferred
/// work behind it: the stale flag the kernel leaves when a shard runs its
/// deferred work between the kernel's queueing it and setting the flag
/// (ADR 0003, src/sys/ring.rs invariant 4).
fn set_stale_taskrun_flag(ring_fd: RawFd, flags_off: u32) {
    const IORING_SQ_TASKRUN: u32 = 1 << 2;
    let len = flags_off as usize + 4;
    // SAFETY: maps the ring's SQ ring region (offset 0) shared, as the
    // owner does; checked below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            ring_fd,
            0,
        )
    };
    assert_ne!(
        base,
        libc::MAP_FAILED,
        "mmap of the shard's SQ ring failed: {}",
        io::Error::last_os_error()
    );
    // SAFETY: `flags_off` lies inside the mapping; the kernel aligns the
    // field to 4 bytes and only accesses it atomically.
    let flags = unsafe {
        &*base
            .cast::<u8>()
            .add(flags_off as usize)
            .cast::<AtomicU32>()
    };
    flags.fetch_or(IORING_SQ_TASKRUN, Ordering::SeqCst);
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(base, len) };
}

// ---------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------

/// Polls `fut` once; `true` if it is still pending.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

/// A value handed out of a task (futures among it).
struct Held<T>(T);

/// The CPUs the calling thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; the call gets its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Confines the calling thread to `cpu`.
fn confine_this_thread_to(cpu: usize) {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0,
            "sched_setaffinity: {}",
            io::Error::last_os_error()
        );
    }
}

// ---------------------------------------------------------------------------
// 1.
// ---------------------------------------------------------------------------

/// A shard with a long spin window (an hour; `Duration::MAX` is accepted
/// too) has a task waiting on a pipe read. The kernel leaves a stale
/// `IORING_SQ_TASKRUN` flag on its ring (injected here, exactly the state
/// the kernel's race leaves: flag set, no deferred work). Then a byte is
/// written into the pipe.
///
/// Expected: the read completes promptly, as it does on a parking shard
/// (whose enter runs deferred work whatever the flag says), and as it does
/// on this shard without the stale flag. The bug it pins (fixed): the spin enters once,
/// finds nothing, marks the flag stale "for the rest of the window", and
/// the real completion, which only sets a flag that is already set, is
/// never reaped: the task sleeps until something lands in the mailbox.
#[test]
fn a_stale_taskrun_flag_does_not_leave_a_spinning_shard_deaf_to_io() {
    let _serial = SERIAL.lock();
    let flags_off = match raw_ring() {
        Ok((_fd, p)) => p.sq_off.flags,
        Err(e) => {
            println!("SKIP: io_uring_setup refused on this machine ({e})");
            return;
        }
    };
    let before = io_uring_fds();
    let rt = Runtime::builder()
        .shards(1)
        .spin_before_park(Duration::from_secs(3600))
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let features = rt.handle().ring_features();
    if !features.taskrun_flag {
        println!("SKIP: the rings were set up without IORING_SETUP_TASKRUN_FLAG ({features:?})");
        return;
    }
    let ours: Vec<RawFd> = io_uring_fds().difference(&before).copied().collect();
    assert!(
        !ours.is_empty(),
        "cannot find the shard's ring among this process's io_uring fds"
    );

    let (r, w) = common::pipe();
    let reader = ringlane::native::fs::File::from(r);
    let (armed_tx, armed_rx) = mpsc::channel::<bool>();
    let (done_tx, done_rx) = mpsc::channel::<io::Result<Vec<u8>>>();
    let _reading = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut read = Box::pin(reader.read(vec![0u8; 8]));
            let pending = poll_once(&mut read).await;
            armed_tx.send(pending).unwrap();
            let (res, buf) = read.await;
            let _ = done_tx.send(res.map(|n| buf[..n].to_vec()));
        })
        .unwrap();
    let pending = armed_rx
        .recv_timeout(LIMIT)
        .expect("the reading task never ran");
    assert!(pending, "the read was ready before any byte was written");
    // The shard submits the read on its way into the spin, and spins.
    std::thread::sleep(Duration::from_millis(100));
    for &fd in &ours {
        set_stale_taskrun_flag(fd, flags_off);
    }
    // The spinning shard sees the flag, enters, finds nothing behind it.
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: writes one byte from a live buffer into our pipe.
    let n = unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    assert_eq!(n, 1, "write: {}", io::Error::last_os_error());
    match done_rx.recv_timeout(Duration::from_secs(2)) {
        Ok(got) => assert_eq!(got.expect("the read failed"), b"x"),
        Err(_) => {
            // A mailbox push ends the spin; the next enter reaps the read.
            let _ = rt.handle().spawn_pinned(0, async {});
            let late = done_rx
                .recv_timeout(LIMIT)
                .map(|r| r.map_err(|e| e.to_string()));
            panic!(
                "a byte written into the pipe did not complete the read awaited on a spinning \
                 shard within 2 s: after a stale IORING_SQ_TASKRUN the spin window ignores the \
                 flag for the rest of the window (an hour here), so the real completion is \
                 never reaped; after a spawn woke the shard the read gave {late:?}"
            );
        }
    }
    drop(rt);
}

// ---------------------------------------------------------------------------
// 2.
// ---------------------------------------------------------------------------

/// Two shards with an hour-long spin window. A churn phase (stealable
/// drivers spawning and awaiting stealable children, so both shards search
/// and steal all the time) gives a shard the chance to be refused as a
/// searcher while the other one searches. Then a stealable task that
/// blocks its shard is started, and a second stealable task is spawned
/// from outside: only the other, idle shard can run it.
///
/// Expected (README, ADR 0008: a blocked shard does not hold up stealable
/// work; the park path's R4 looks at stealable work when no searcher is
/// left): the second task runs within 2 s, every cycle. The bug it pins (fixed): a shard
/// refused at N1 spins with `stealable == false` and never looks at the
/// injector for the whole window, while nobody rings a spinning shard.
#[test]
fn a_spinning_shard_refused_as_a_searcher_still_runs_stealable_work_its_blocked_peer_cannot() {
    let _serial = SERIAL.lock();
    let rt = Runtime::builder()
        .shards(2)
        .spin_before_park(Duration::from_secs(3600))
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let began = Instant::now();
    let mut cycle = 0;
    while cycle < 6 && (cycle == 0 || began.elapsed() < Duration::from_millis(2500)) {
        cycle += 1;
        // Churn: both shards search and steal, over and over.
        let stop = Arc::new(AtomicBool::new(false));
        let drivers: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                h.spawn_stealable(async move {
                    let mut rounds = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let kids: Vec<_> = (0..16u64)
                            .map(|k| {
                                ringlane::spawn(async move {
                                    ringlane::yield_now().await;
                                    k
                                })
                                .unwrap()
                            })
                            .collect();
                        for kid in kids {
                            kid.await.unwrap();
                        }
                        rounds += 1;
                    }
                    rounds
                })
                .unwrap()
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for d in drivers {
            let _ = common::join_within(&rt, d, LIMIT, "a churn driver");
        }

        // Probe: block one shard in a stealable task, then offer more work.
        let release = Arc::new(AtomicBool::new(false));
        let _let_go = ReleaseOnDrop(release.clone());
        let blocked_on = Arc::new(AtomicUsize::new(usize::MAX));
        let (r, b) = (release.clone(), blocked_on.clone());
        let blocker = h
            .spawn_stealable(async move {
                b.store(ringlane::current_shard().unwrap(), Ordering::SeqCst);
                while !r.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            })
            .unwrap();
        let deadline = Instant::now() + LIMIT;
        while blocked_on.load(Ordering::SeqCst) == usize::MAX {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: no shard ran a stealable task spawned from outside in {LIMIT:?}"
            );
            std::thread::yield_now();
        }
        let ran_on = Arc::new(AtomicUsize::new(usize::MAX));
        let ro = ran_on.clone();
        let probe = h
            .spawn_stealable(async move {
                ro.store(ringlane::current_shard().unwrap(), Ordering::SeqCst);
            })
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while ran_on.load(Ordering::SeqCst) == usize::MAX && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let ran = ran_on.load(Ordering::SeqCst);
        let blocked = blocked_on.load(Ordering::SeqCst);
        release.store(true, Ordering::Release);
        common::join_within(&rt, blocker, LIMIT, "the blocking task");
        common::join_within(&rt, probe, LIMIT, "the probe task");
        assert_ne!(
            ran,
            usize::MAX,
            "cycle {cycle}: a stealable task waited 2 s in the injector while shard {blocked} \
             was blocked and shard {} sat in its spin window without looking at stealable \
             work (refused as a searcher, nobody rings a spinning shard)",
            1 - blocked.min(1)
        );
    }
}

// ---------------------------------------------------------------------------
// 3.
// ---------------------------------------------------------------------------

/// A thread that uses io_uring itself has filled its table of registered
/// ring fds (16 per thread). It then builds a runtime.
///
/// Expected: the runtime's rings are set up as on any other thread (every
/// shard is a fresh thread with an empty table), so `ring_features()` is
/// the same as for a runtime built on a clean thread, and the caller's own
/// registrations are left alone. The bug it pins (fixed): the builder probes ring-fd
/// registration on the calling thread, gets `EBUSY` and turns the feature
/// off for every shard.
#[test]
fn the_shards_ring_setup_does_not_depend_on_the_building_threads_own_ring_registrations() {
    let _serial = SERIAL.lock();
    let baseline = within(LIMIT, "a build on a clean thread", || {
        common::runtime(1).handle().ring_features()
    });
    if !baseline.registered_ring_fd {
        println!("SKIP: this kernel does not let a thread register its ring fd ({baseline:?})");
        return;
    }
    let (registered, full, features, works, still_full) = within(
        LIMIT,
        "a build on a thread with a full table",
        || {
            let mut rings = Vec::new();
            for _ in 0..64 {
                let (fd, _) = raw_ring().expect("io_uring_setup");
                match register_ring_fd(fd.as_raw_fd()) {
                    Ok(_) => rings.push(fd),
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => break,
                    Err(e) => panic!("registering our own ring fd failed: {e}"),
                }
            }
            let (extra, _) = raw_ring().expect("io_uring_setup");
            let busy = |fd: RawFd| matches!(register_ring_fd(fd), Err(e) if e.raw_os_error() == Some(libc::EBUSY));
            let full = busy(extra.as_raw_fd());
            let rt = Runtime::builder()
                .shards(1)
                .build()
                .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
            let features = rt.handle().ring_features();
            let j = rt.handle().spawn_pinned(0, async { 3 }).unwrap();
            let works = common::join_within(&rt, j, LIMIT, "a task on the runtime") == 3;
            drop(rt);
            let still_full = busy(extra.as_raw_fd());
            (rings.len(), full, features, works, still_full)
            // The thread exits: the kernel drops its registrations.
        },
    );
    assert!(
        full,
        "the table did not fill ({registered} rings registered)"
    );
    assert!(works, "the runtime built on that thread does not run tasks");
    assert!(
        still_full,
        "building and dropping a runtime freed one of the caller's own registered ring slots"
    );
    assert_eq!(
        features, baseline,
        "the runtime's ring set-up depends on the building thread: with that thread's \
         {registered} registered rings filling its table, every shard (a fresh thread) ran \
         without a registered ring fd"
    );
}

// ---------------------------------------------------------------------------
// 4.
// ---------------------------------------------------------------------------

/// Sixteen sleeps are registered in shard 0's timer wheel and handed out
/// of their task; the runtime is dropped; its stats are read; then the
/// sleeps are dropped on the test thread.
///
/// Expected: a shard that has exited does nothing and is handed nothing,
/// so its counters are frozen: the snapshot after the drops equals the one
/// before (the wheel is gone, "nothing is owed": sleep.rs). Suspected:
/// each drop still posts a removal into the dead shard's mailbox, where it
/// stays unrun, and counts it in `doorbells_avoided` as a hand-off to a
/// running shard.
#[test]
fn the_stats_of_an_exited_shard_stay_frozen_when_things_bound_to_it_are_dropped_later() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let h = rt.handle();
    let j = h
        .spawn_pinned(0, async {
            let mut held = Vec::new();
            for k in 0..16u64 {
                let mut s = Box::pin(ringlane::time::sleep(Duration::from_secs(3600 + k)));
                let pending =
                    std::future::poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx).is_pending())).await;
                assert!(pending, "an hour-long sleep was due at once");
                held.push(s);
            }
            Held(held)
        })
        .unwrap();
    let Held(sleeps) = common::join_within(&rt, j, LIMIT, "registering sleeps on shard 0");
    within(Duration::from_secs(20), "dropping the runtime", move || {
        drop(rt)
    });
    let frozen: Vec<ShardStats> = (0..2).map(|s| h.shard_stats(s).unwrap()).collect();
    assert!(
        frozen.iter().all(|s| !s.parked),
        "exited shards read as parked: {frozen:?}"
    );
    drop(sleeps);
    let later: Vec<ShardStats> = (0..2).map(|s| h.shard_stats(s).unwrap()).collect();
    assert_eq!(
        later, frozen,
        "the counters of shards that had exited moved when timers registered on them were \
         dropped: something was handed to a dead shard"
    );
}

// ---------------------------------------------------------------------------
// 5.
// ---------------------------------------------------------------------------

/// A task on shard 1 spawns a second task onto its own shard (it lands in
/// the run queue behind it) and then blocks the shard. `shutdown(ZERO)`
/// begins on another thread; 100 ms later the blocking task is let go,
/// well before the 5 s grace runs out.
///
/// Expected (`Runtime::shutdown`: tasks run until the timeout, then those
/// still alive are cancelled; drain.rs D3: "once the deadline passes, stop
/// polling"): the queued task, never polled before the deadline, is
/// cancelled, not started 100 ms after it; its handle gives `Cancelled`
/// and the report counts it. The bug it pins (fixed): the shard keeps polling what is
/// queued behind the blocking poll until its budget runs out, because it
/// only looks at the shutdown at the end of the tick.
#[test]
fn a_task_queued_behind_a_blocking_poll_is_cancelled_not_first_polled_after_the_deadline() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let h = rt.handle();
    let release = Arc::new(AtomicBool::new(false));
    let _let_go = ReleaseOnDrop(release.clone());
    let polled_late = Arc::new(AtomicBool::new(false));
    let (victim_tx, victim_rx) = mpsc::channel();
    let (r, p) = (release.clone(), polled_late.clone());
    let blocker = h
        .spawn_pinned(1, async move {
            let here = ringlane::Handle::current().unwrap();
            let victim = here
                .spawn_pinned(1, async move {
                    p.store(true, Ordering::SeqCst);
                })
                .unwrap();
            victim_tx.send(victim).unwrap();
            while !r.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        })
        .unwrap();
    let victim = victim_rx
        .recv_timeout(LIMIT)
        .expect("the blocking task never ran");
    let (report_tx, report_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let report = rt.shutdown(Duration::ZERO);
        let _ = report_tx.send((report, t.elapsed()));
    });
    let deadline = Instant::now() + LIMIT;
    while !h.is_shutdown() {
        assert!(Instant::now() < deadline, "shutdown never began");
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(100)); // the deadline is long past
    release.store(true, Ordering::Release);
    let (report, took) = report_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("shutdown never returned");
    assert!(
        !polled_late.load(Ordering::SeqCst),
        "a task never polled before shutdown(ZERO)'s deadline was first polled ~100 ms after \
         it, once the blocking poll ahead of it returned (shutdown took {took:?}, {report:?})"
    );
    let v = common::block_on(timeout(LIMIT, victim)).expect("the queued task never resolved");
    assert!(
        v.unwrap_err().is_cancelled(),
        "the queued task was not cancelled"
    );
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    assert_eq!(
        report.unfinished_tasks, 1,
        "the queued task was not counted as cancelled: {report:?}"
    );
    common::block_on(timeout(LIMIT, blocker))
        .expect("the blocking task never resolved")
        .expect("the blocking task failed");
}

// ---------------------------------------------------------------------------
// 6.
// ---------------------------------------------------------------------------

/// Three threads each build six two-shard runtimes in a row (ring sizes 2,
/// 3, 1000 and 32767, pinned or not, some with a spin window), run
/// cross-shard work and a channel on each, leave a pending task, and end
/// each one a different way: dropped, `shutdown(ZERO)`, dropped from one of
/// its own tasks, or dropped with a handle kept.
///
/// Expected: every runtime reports the ring set-up of a runtime built on a
/// clean thread (a registration leaked on a builder thread would show), the
/// pending tasks resolve as cancelled, the own-task drop returns promptly,
/// every shard thread ends, the process's fd count comes back to where it
/// was, and the kept handles refuse spawns with `Shutdown`.
#[test]
fn runtimes_built_and_ended_every_way_in_sequence_and_in_parallel_leave_nothing_behind() {
    let _serial = SERIAL.lock();
    // Warm up process-wide lazy state (the fallback timer thread).
    let baseline = {
        let rt = common::runtime(1);
        rt.block_on(ringlane::time::sleep(Duration::from_millis(1)));
        rt.handle().ring_features()
    };
    let before = common::fd_count();
    let workers: Vec<_> = (0..3usize)
        .map(|t| {
            std::thread::spawn(move || {
                let waiter = common::runtime(1);
                let mut kept: Vec<Handle> = Vec::new();
                for i in 0..6usize {
                    let entries = [2u32, 3, 1000, 32_767][(t + i) % 4];
                    let mut b = Runtime::builder()
                        .shards(2)
                        .thread_name(format!("advrt{t}"))
                        .ring_entries(entries)
                        .pin_cpus(i % 2 == 0);
                    if i % 3 == 1 {
                        b = b.spin_before_park(Duration::from_micros(200));
                    }
                    let rt = b.build().unwrap_or_else(|e| {
                        panic!("thread {t}, runtime {i} ({entries} entries) failed to start: {e}")
                    });
                    let h = rt.handle();
                    assert_eq!(
                        h.ring_features(),
                        baseline,
                        "thread {t}, runtime {i}: the ring set-up drifted"
                    );
                    let (tx, mut rx) = ringlane::channel::<u32>(2).unwrap();
                    let consumer = h
                        .spawn_pinned(1, async move {
                            let mut n = 0u32;
                            while let Some(v) = rx.recv().await {
                                n += v;
                            }
                            n
                        })
                        .unwrap();
                    let h2 = h.clone();
                    let producer = h
                        .spawn_pinned(0, async move {
                            for v in 0..50u32 {
                                tx.send(v).await.unwrap();
                            }
                            h2.spawn_pinned(1, async { 7u32 }).unwrap().await.unwrap()
                        })
                        .unwrap();
                    assert_eq!(common::join_within(&rt, producer, LIMIT, "the producer"), 7);
                    assert_eq!(
                        common::join_within(&rt, consumer, LIMIT, "the consumer"),
                        1225
                    );
                    let pending = h.spawn_pinned(i % 2, std::future::pending::<()>()).unwrap();
                    match i % 4 {
                        0 => drop(rt),
                        1 => {
                            let report = rt.shutdown(Duration::ZERO);
                            assert!(report.stuck_shards.is_empty(), "{report:?}");
                            assert_eq!(report.unfinished_tasks, 1, "{report:?}");
                        }
                        2 => {
                            let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
                            let (took_tx, took_rx) = mpsc::channel::<Duration>();
                            drop(
                                h.spawn_pinned(0, async move {
                                    let rt = rt_rx.recv_timeout(LIMIT).expect("no runtime");
                                    let t = Instant::now();
                                    drop(rt);
                                    let _ = took_tx.send(t.elapsed());
                                })
                                .unwrap(),
                            );
                            rt_tx.send(rt).unwrap();
                            let took = took_rx
                                .recv_timeout(Duration::from_secs(20))
                                .expect("the drop from one of its own tasks never returned");
                            assert!(
                                took < Duration::from_millis(4500),
                                "thread {t}, runtime {i}: the drop from its own task took {took:?}"
                            );
                        }
                        _ => {
                            kept.push(rt.handle());
                            drop(rt);
                        }
                    }
                    let r = waiter
                        .block_on(timeout(LIMIT, pending))
                        .unwrap_or_else(|_| panic!("thread {t}, runtime {i}: pending task hung"));
                    assert!(
                        r.unwrap_err().is_cancelled(),
                        "thread {t}, runtime {i}: the pending task was not cancelled"
                    );
                }
                drop(waiter);
                kept
            })
        })
        .collect();
    let kept: Vec<Handle> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a building thread panicked"))
        .collect();
    for t in 0..3 {
        assert_eq!(
            threads_left_after_a_while(&format!("advrt{t}")),
            Vec::<String>::new(),
            "shard threads outlived their runtimes"
        );
    }
    assert_eq!(
        common::fd_count(),
        before,
        "runtimes built and ended in parallel leaked file descriptors"
    );
    for h in &kept {
        assert!(matches!(h.spawn_pinned(0, async {}), Err(Error::Shutdown)));
        assert!(!h.shard_stats(1).unwrap().parked);
    }
}

// ---------------------------------------------------------------------------
// 8.
// ---------------------------------------------------------------------------

/// Builder limits and a runtime far beyond the machine: the first value
/// past each documented limit is `InvalidConfig`; then 32 shards on the
/// smallest rings (2 SQ entries), a task budget of 1 and pinning, built by
/// a thread confined to one CPU, so all 32 pin to that CPU. Every shard
/// sends 10 messages to a receiver on shard 0 through a channel of 8
/// (back-pressure: wake storms of MSG_RINGs through an SQ of 2).
///
/// Expected: each shard's affinity is exactly the caller's CPU; every
/// message arrives; the stats agree with what happened (messages sent on
/// the shards == received on shard 0 == 320, wakeups <= parks, successful
/// steals <= attempts); a bounded graceful shutdown is clean; no shard
/// thread is left.
#[test]
fn far_more_shards_than_cpus_on_the_smallest_rings_pinned_in_a_narrow_mask_serve_and_count_consistently()
 {
    let _serial = SERIAL.lock();
    for (what, b) in [
        ("4097 shards", Runtime::builder().shards(4097)),
        ("1 ring entry", Runtime::builder().shards(1).ring_entries(1)),
        (
            "32769 ring entries",
            Runtime::builder().shards(1).ring_entries(32_769),
        ),
    ] {
        match b.build() {
            Err(Error::InvalidConfig(_)) => {}
            Err(e) => panic!("{what}: expected InvalidConfig, got {e:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }

    const N: usize = 32;
    const EACH: u64 = 10;
    let cpu = *allowed_cpus().last().expect("no CPU in this thread's mask");
    let rt = within(Duration::from_secs(30), "building 32 shards", move || {
        confine_this_thread_to(cpu);
        Runtime::builder()
            .shards(N)
            .ring_entries(2)
            .task_budget(1)
            .pin_cpus(true)
            .thread_name("advfar")
            .build()
    })
    .unwrap_or_else(|e| panic!("a 32-shard runtime failed to start: {e}"));
    let h = rt.handle();
    assert_eq!(h.shards(), N);
    for s in 0..N {
        let j = h.call_on(s, |_| allowed_cpus()).unwrap();
        assert_eq!(
            common::join_within(&rt, j, LIMIT, "reading a shard's affinity"),
            vec![cpu],
            "shard {s} is not pinned to the building thread's only CPU"
        );
    }

    let (tx, mut rx) = ringlane::channel::<u64>(8).unwrap();
    let receiver = h
        .spawn_pinned(0, async move {
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(v) = rx.recv().await {
                n += 1;
                sum += v;
            }
            (n, sum)
        })
        .unwrap();
    let senders: Vec<_> = (0..N)
        .map(|s| {
            let tx = tx.clone();
            h.spawn_pinned(s, async move {
                for k in 0..EACH {
                    tx.send(s as u64 * 100 + k).await.unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    drop(tx);
    for j in senders {
        common::join_within(&rt, j, LIMIT, "a sender");
    }
    let (n, sum) = common::join_within(&rt, receiver, LIMIT, "the receiver");
    let want_sum: u64 = (0..N as u64)
        .flat_map(|s| (0..EACH).map(move |k| s * 100 + k))
        .sum();
    assert_eq!((n, sum), (N as u64 * EACH, want_sum));

    let stats: Vec<ShardStats> = (0..N).map(|s| h.shard_stats(s).unwrap()).collect();
    let sent: u64 = stats.iter().map(|s| s.messages_sent).sum();
    let received: u64 = stats.iter().map(|s| s.messages_received).sum();
    assert_eq!(sent, N as u64 * EACH, "messages_sent over all shards");
    assert_eq!(
        received,
        N as u64 * EACH,
        "messages_received over all shards"
    );
    assert_eq!(stats[0].messages_received, N as u64 * EACH);
    for s in &stats {
        assert!(s.wakeups <= s.parks, "{s:?}");
        assert!(s.steals_succeeded <= s.steals_attempted, "{s:?}");
        assert!(
            s.tasks_polled >= 2,
            "shard {} ran its call and sender: {s:?}",
            s.shard
        );
    }
    let report = within(Duration::from_secs(30), "shutdown", move || {
        rt.shutdown(Duration::from_secs(2))
    });
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(threads_left_after_a_while("advfar"), Vec::<String>::new());
}
