//! Shards at the edges of their ring set-up: a spinning shard is not deaf
//! to I/O after a stale `IORING_SQ_TASKRUN` flag (set by the test on the
//! ring); a spinning shard refused as a searcher still runs stealable work
//! its blocked peer cannot; the shards' ring set-up does not depend on the
//! building thread's own registered ring fds.

mod common;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ringlane::Runtime;

use common::LIMIT;
use common::lifecycle::{ReleaseOnDrop, within};
use common::ring_probe::*;

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
