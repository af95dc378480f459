//! The runtime builder's knobs at their edges and what `build()` reports:
//! a task budget without bound refused (the largest accepted still lets a
//! shard look at its mailbox), a start-up step the OS refuses named in the
//! error with nothing left behind, each refusal's cause printed once in an
//! error chain, shard threads told apart by the OS, a runtime built inside
//! another's shard, a Tokio handle of a runtime already shut down, stats
//! across a shutdown, and every non-default knob at once.
//!
//! Every test holds one file-wide lock (thread and fd counts are
//! process-wide); the seccomp filters are installed on a helper thread only.

mod common;

use std::io;
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringlane::{Error, Runtime, ShardStats};

use common::lifecycle::{ReleaseOnDrop, threads_left_after_a_while, within};
use common::seccomp::refuse_syscalls_on_this_thread;
use common::{LIMIT, fd_count, join_within};

/// fd counts and thread names are process-wide: the tests of this file run
/// one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Polls `done` every millisecond for at most `limit`; whether it held.
fn holds_within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Builds `builder` on a fresh thread that refuses the syscalls in `rules`.
/// `None` (after a SKIP line) if seccomp is not available here.
fn build_refusing(
    rules: Vec<(libc::c_long, i32)>,
    builder: ringlane::Builder,
) -> Option<Result<Runtime, Error>> {
    within(LIMIT, "a build under a seccomp filter", move || {
        if let Err(e) = refuse_syscalls_on_this_thread(&rules) {
            println!("SKIP: cannot install a seccomp filter here: {e}");
            return None;
        }
        Some(builder.build())
    })
}

// ---------------------------------------------------------------------------
// 1.
// ---------------------------------------------------------------------------

/// `task_budget(usize::MAX)` is accepted by `build()`. Phase 1: shard 0 has
/// a task sleeping 200 ms; a task then yields in a loop on it, and a pinned
/// task is spawned onto it from outside. Phase 2: two tasks on shard 0
/// bounce a number through two ringlane channels, and another pinned task
/// is spawned from outside.
///
/// Expected (the budget's doc: "tasks a shard polls per tick before it
/// looks at its mailbox, timers and ring again"; a valid setting must not
/// turn that into "never"; Tokio runs a yielded task only after its driver,
/// and its event interval always ends a round): within 2 s the spawned
/// tasks run and the timer fires. Before the fix: `build()` accepted
/// `usize::MAX`, and the tick's task loop never ended (the test stops the
/// loops itself). Now that is refused, and the largest budget accepted
/// still lets the shard look at its mailbox and timers.
#[test]
fn a_huge_task_budget_does_not_make_a_shard_deaf_to_its_mailbox_and_timers() {
    let _serial = serial();
    // A budget without bound is refused, clearly.
    match Runtime::builder().shards(1).task_budget(usize::MAX).build() {
        Err(Error::InvalidConfig(why)) => assert!(why.contains("task budget"), "{why}"),
        Err(e) => panic!("task_budget(usize::MAX): not an InvalidConfig: {e}"),
        Ok(_) => panic!("task_budget(usize::MAX) was accepted"),
    }
    // The largest one accepted still lets the shard look at its mailbox.
    let rt = Runtime::builder()
        .shards(1)
        .task_budget(1 << 16)
        .thread_name("advbud")
        .build()
        .unwrap_or_else(|e| panic!("task_budget(65536) was refused: {e}"));
    let h = rt.handle();

    // Phase 1: a yielding loop.
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let sleeper = h
        .spawn_pinned(0, async move {
            ringlane::time::sleep(Duration::from_millis(200)).await;
            f.store(true, Ordering::SeqCst);
        })
        .unwrap();
    common::until_parked(&h, 0); // the sleep sits in the wheel
    let stop = Arc::new(AtomicBool::new(false));
    let _unstick = ReleaseOnDrop(stop.clone());
    let loops = Arc::new(AtomicU64::new(0));
    let (s, l) = (stop.clone(), loops.clone());
    let yielder = h
        .spawn_pinned(0, async move {
            while !s.load(Ordering::Acquire) {
                l.fetch_add(1, Ordering::Relaxed);
                ringlane::yield_now().await;
            }
        })
        .unwrap();
    common::wait_until("the yielding task running", || {
        loops.load(Ordering::Relaxed) > 1_000
    });
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let sentinel = h
        .spawn_pinned(0, async move { r.store(true, Ordering::SeqCst) })
        .unwrap();
    holds_within(Duration::from_secs(2), || {
        ran.load(Ordering::SeqCst) && fired.load(Ordering::SeqCst)
    });
    let yield_spawn_ran = ran.load(Ordering::SeqCst);
    let yield_timer_fired = fired.load(Ordering::SeqCst);
    stop.store(true, Ordering::Release);
    join_within(&rt, yielder, LIMIT, "the yielding task once stopped");
    join_within(&rt, sentinel, LIMIT, "the spawn beside the yielding task");
    join_within(&rt, sleeper, LIMIT, "the sleeping task");

    // Phase 2: a ping-pong through channels on one shard.
    let stop2 = Arc::new(AtomicBool::new(false));
    let _unstick2 = ReleaseOnDrop(stop2.clone());
    let rounds = Arc::new(AtomicU64::new(0));
    let (a_tx, mut b_rx) = ringlane::channel::<u64>(1).unwrap();
    let (b_tx, mut a_rx) = ringlane::channel::<u64>(1).unwrap();
    let (s2, r2) = (stop2.clone(), rounds.clone());
    let ping = h
        .spawn_pinned(0, async move {
            let mut n = 0u64;
            while !s2.load(Ordering::Acquire) {
                if a_tx.send(n).await.is_err() {
                    break;
                }
                match a_rx.recv().await {
                    Some(v) => n = v + 1,
                    None => break,
                }
                r2.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap();
    let pong = h
        .spawn_pinned(0, async move {
            while let Some(v) = b_rx.recv().await {
                if b_tx.send(v).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    common::wait_until("the ping-pong running", || {
        rounds.load(Ordering::Relaxed) > 1_000
    });
    let ran2 = Arc::new(AtomicBool::new(false));
    let r2 = ran2.clone();
    let sentinel2 = h
        .spawn_pinned(0, async move { r2.store(true, Ordering::SeqCst) })
        .unwrap();
    let pingpong_spawn_ran = holds_within(Duration::from_secs(2), || ran2.load(Ordering::SeqCst));
    stop2.store(true, Ordering::Release);
    join_within(&rt, ping, LIMIT, "the ping task once stopped");
    join_within(&rt, pong, LIMIT, "the pong task once stopped");
    join_within(&rt, sentinel2, LIMIT, "the spawn beside the ping-pong");
    within(LIMIT, "dropping the runtime", move || drop(rt));

    assert!(
        yield_spawn_ran && yield_timer_fired && pingpong_spawn_ran,
        "with task_budget(usize::MAX) (accepted by build()), a shard running a \
         yield_now loop took a pinned spawn from outside: {yield_spawn_ran}, fired a \
         due timer: {yield_timer_fired}; a shard running a channel ping-pong took a \
         pinned spawn: {pingpong_spawn_ran} (each within 2 s). A valid budget must \
         not make the shard deaf to its mailbox and timers; build() should refuse or \
         clamp it, or the tick should end anyway."
    );
}

// ---------------------------------------------------------------------------
// 2.
// ---------------------------------------------------------------------------

/// A start-up step refused: its name, the syscalls refused with their
/// errno, and words its error must mention.
type RefusedStep = (
    &'static str,
    &'static str,
    Vec<(libc::c_long, i32)>,
    Vec<&'static str>,
);

/// Two start-up steps refused by the OS, each on a helper thread under a
/// seccomp filter: (a) every thread spawn (clone3/clone: EAGAIN, what a
/// container's `pids.max` or RLIMIT_NPROC gives), so no shard thread starts;
/// (b) the doorbell eventfd (eventfd2: ENOMEM), refused after all four
/// shards started and reported their rings.
///
/// Expected: `build()` fails with an error whose message says what could
/// not be created (a thread; an eventfd/doorbell), as the fd-limit refusal
/// already says "raise RLIMIT_NOFILE" and Tokio's multi-thread builder says
/// "OS can't spawn worker thread"; no shard thread is left and the fd count
/// is back where it was; a normal build works afterwards. Before the fix: both
/// are `Error::Io(e)` displayed as a bare OS error.
#[test]
fn a_start_up_step_the_os_refuses_is_named_in_the_error_and_leaves_nothing_behind() {
    let _serial = serial();
    let fds_before = fd_count();
    let cases: Vec<RefusedStep> = vec![
        (
            "no shard thread can be spawned (clone3/clone: EAGAIN)",
            "advclo",
            vec![
                (libc::SYS_clone3, libc::EAGAIN),
                (libc::SYS_clone, libc::EAGAIN),
            ],
            vec!["thread"],
        ),
        (
            "the doorbell eventfd cannot be created (eventfd2: ENOMEM)",
            "advefd",
            vec![(libc::SYS_eventfd2, libc::ENOMEM)],
            vec!["eventfd", "doorbell"],
        ),
    ];
    let mut leaks = Vec::new();
    let mut unclear = Vec::new();
    for (what, prefix, rules, words) in cases {
        let builder = Runtime::builder().shards(4).thread_name(prefix);
        let Some(result) = build_refusing(rules, builder) else {
            return;
        };
        match result {
            Ok(rt) => {
                unclear.push(format!("{what}: build() succeeded"));
                within(LIMIT, "dropping an unexpected runtime", move || drop(rt));
            }
            Err(e) => {
                let msg = e.to_string();
                let lower = msg.to_lowercase();
                if !words.iter().any(|w| lower.contains(w)) {
                    unclear.push(format!(
                        "{what}: the error does not say what could not be created \
                         (no mention of {words:?}): \"{msg}\" ({e:?})"
                    ));
                }
            }
        }
        let left = threads_left_after_a_while(prefix);
        if !left.is_empty() {
            leaks.push(format!("{what}: shard threads left behind: {left:?}"));
        }
    }
    let fds_after = fd_count();
    if fds_after != fds_before {
        leaks.push(format!(
            "the failed builds leaked fds: {fds_before} before, {fds_after} after"
        ));
    }
    // Nothing is left broken: a normal build on a normal thread works.
    let rt = Runtime::builder()
        .shards(2)
        .thread_name("advok")
        .build()
        .unwrap_or_else(|e| panic!("a normal build after the refused ones failed: {e}"));
    let j = rt.handle().spawn_pinned(1, async { 3u8 }).unwrap();
    assert_eq!(
        join_within(&rt, j, LIMIT, "a task after the refused builds"),
        3
    );
    within(LIMIT, "dropping the runtime", move || drop(rt));

    assert!(leaks.is_empty(), "{leaks:#?}");
    assert!(unclear.is_empty(), "{unclear:#?}");
}

// ---------------------------------------------------------------------------
// 3.
// ---------------------------------------------------------------------------

/// Each message in `e`'s source chain, outermost first.
fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out
}

fn check_chain(what: &str, e: &(dyn std::error::Error + 'static), problems: &mut Vec<String>) {
    let c = chain(e);
    for pair in c.windows(2) {
        if pair[0].contains(&pair[1]) {
            problems.push(format!(
                "{what}: \"{}\" already shows its source \"{}\", which source() returns \
                 too, so a report of the chain prints it twice",
                pair[0], pair[1]
            ));
        }
    }
}

/// Real refusals (io_uring_setup: EPERM as under a container's seccomp
/// profile, EMFILE; a thread spawn refused with EAGAIN), each produced on a
/// helper thread under a seccomp filter, plus a plain `Error::Io`. Each is
/// reported the way anyhow/eyre/`std::error::Report` do: its Display, then
/// each `source()` in turn, also after conversion to `io::Error`.
///
/// Expected (Rust API guideline on error sources): no message in the chain
/// repeats the next one, so the OS error is printed once. Before the fix: both
/// `RingSetup` and `Io` embed their source in Display and return it too.
#[test]
fn every_refusal_reports_its_cause_once_in_an_error_chain() {
    let _serial = serial();
    let mut errors: Vec<(String, Error)> = Vec::new();
    for (what, rules) in [
        (
            "io_uring_setup refused with EPERM",
            vec![(libc::SYS_io_uring_setup, libc::EPERM)],
        ),
        (
            "io_uring_setup refused with EMFILE",
            vec![(libc::SYS_io_uring_setup, libc::EMFILE)],
        ),
        (
            "shard thread spawn refused with EAGAIN",
            vec![
                (libc::SYS_clone3, libc::EAGAIN),
                (libc::SYS_clone, libc::EAGAIN),
            ],
        ),
    ] {
        let builder = Runtime::builder().shards(2).thread_name("adverr");
        match build_refusing(rules, builder) {
            None => return,
            Some(Ok(rt)) => {
                within(LIMIT, "dropping an unexpected runtime", move || drop(rt));
                panic!("{what}: build() succeeded");
            }
            Some(Err(e)) => errors.push((what.to_owned(), e)),
        }
    }
    errors.push((
        "Error::Io(EIO)".to_owned(),
        Error::Io(io::Error::from_raw_os_error(libc::EIO)),
    ));
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (what, e) in errors {
        seen.push(format!("{what}: {:?}", chain(&e)));
        check_chain(&what, &e, &mut problems);
        let as_io: io::Error = e.into();
        check_chain(&format!("{what}, as io::Error"), &as_io, &mut problems);
    }
    assert_eq!(threads_left_after_a_while("adverr"), Vec::<String>::new());
    assert!(problems.is_empty(), "{problems:#?}\nchains: {seen:#?}");
}

// ---------------------------------------------------------------------------
// 4.
// ---------------------------------------------------------------------------

/// A default-built two-shard runtime. For each shard, the OS name of its
/// thread (/proc/self/task/<os_tid>/comm, what top -H, ps -L, perf and gdb
/// show) and its Rust name.
///
/// Expected (builder docs: thread names are `{prefix}-{index}`; `os_tid` is
/// "for /proc/self/task/<tid>"): the two OS names differ and each ends with
/// `-{index}`. Before the fix: the 14-byte default prefix leaves no room for the
/// index in Linux's 15 bytes: both shards are "ringlane-shard-".
#[test]
fn default_shard_thread_names_keep_the_shard_index_visible_to_the_os() {
    let _serial = serial();
    let rt = Runtime::builder()
        .shards(2)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let mut seen = Vec::new();
    for i in 0..2usize {
        let tid = h.shard_stats(i).unwrap().os_tid;
        let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
            .unwrap_or_else(|e| panic!("reading the comm of shard {i} (tid {tid}): {e}"))
            .trim_end()
            .to_owned();
        let j = h
            .spawn_pinned(i, async {
                std::thread::current().name().map(str::to_owned)
            })
            .unwrap();
        let rust_name = join_within(&rt, j, LIMIT, "asking a shard for its name");
        seen.push((i, tid, rust_name, comm));
    }
    within(LIMIT, "dropping the runtime", move || drop(rt));
    for (i, _, rust_name, _) in &seen {
        assert_eq!(
            rust_name.as_deref(),
            Some(format!("ringlane-shard-{i}").as_str()),
            "{seen:?}"
        );
    }
    assert_ne!(
        seen[0].3, seen[1].3,
        "the default shard threads are indistinguishable to the OS (top -H, perf, gdb, \
         /proc/self/task/<os_tid>/comm): {seen:?}"
    );
    for (i, _, _, comm) in &seen {
        assert!(
            comm.ends_with(&format!("-{i}")),
            "shard {i}'s OS thread name {comm:?} lost its index: {seen:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 5.
// ---------------------------------------------------------------------------

/// A task on shard 0 of an outer runtime builds an inner runtime (3
/// shards), runs a task on each inner shard, has an inner task await a task
/// of the outer runtime, drains a channel fed by an inner task, checks that
/// it still runs on the outer runtime, leaves an inner task pending and
/// drops the inner runtime, all inside the task.
///
/// Expected: the inner runtime reports the ring set-up of a runtime built
/// on a clean thread; each inner task runs on its shard and sees the inner
/// runtime as current; the wake-ups across the runtimes arrive; the drop
/// returns promptly (well inside the 5 s exit grace) and cancels the
/// pending task; the inner handle refuses spawns afterwards; no inner
/// thread is left; the outer runtime still serves; once it is dropped the
/// fd count is back where it was.
#[test]
fn a_runtime_built_inside_a_shard_task_of_another_works_there_and_its_drop_there_leaves_nothing() {
    let _serial = serial();
    let fds_before = fd_count();
    let clean = {
        let r = Runtime::builder()
            .shards(1)
            .thread_name("advcln")
            .build()
            .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
        let f = r.handle().ring_features();
        within(LIMIT, "dropping the reference runtime", move || drop(r));
        f
    };
    let outer = Runtime::builder()
        .shards(2)
        .thread_name("advout")
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let ho = outer.handle();
    let ho2 = ho.clone();
    let j = ho
        .spawn_pinned(0, async move {
            let inner = Runtime::builder()
                .shards(3)
                .thread_name("advinn")
                .build()
                .map_err(|e| format!("build() inside a shard task failed: {e}"))?;
            let hi = inner.handle();
            let features = hi.ring_features();
            let mut placed = Vec::new();
            for s in 0..3usize {
                let t = hi
                    .spawn_pinned(s, async {
                        ringlane::time::sleep(Duration::from_millis(2)).await;
                        (
                            ringlane::current_shard(),
                            ringlane::Handle::current().map(|h| h.shards()),
                        )
                    })
                    .map_err(|e| e.to_string())?;
                let got = ringlane::time::timeout(LIMIT, t)
                    .await
                    .map_err(|_| format!("the inner task on shard {s} never resolved"))?
                    .map_err(|e| e.to_string())?;
                placed.push(got);
            }
            let outer_task = ho2
                .spawn_pinned(1, async {
                    ringlane::time::sleep(Duration::from_millis(2)).await;
                    7u32
                })
                .map_err(|e| e.to_string())?;
            let bridge = hi
                .spawn_pinned(
                    2,
                    async move { outer_task.await.map_err(|e| e.to_string()) },
                )
                .map_err(|e| e.to_string())?;
            let bridged = ringlane::time::timeout(LIMIT, bridge)
                .await
                .map_err(|_| "the inner task awaiting an outer task never resolved".to_owned())?
                .map_err(|e| e.to_string())??;
            let (tx, mut rx) = ringlane::channel::<u32>(2).map_err(|e| e.to_string())?;
            let sender = hi
                .spawn_pinned(1, async move {
                    for i in 0..50u32 {
                        if tx.send(i).await.is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            let mut sum = 0u32;
            loop {
                match ringlane::time::timeout(LIMIT, rx.recv()).await {
                    Ok(Some(v)) => sum += v,
                    Ok(None) => break,
                    Err(_) => return Err("the channel from the inner runtime stalled".to_owned()),
                }
            }
            ringlane::time::timeout(LIMIT, sender)
                .await
                .map_err(|_| "the inner sender never resolved".to_owned())?
                .map_err(|e| e.to_string())?;
            let here = (
                ringlane::current_shard(),
                ringlane::Handle::current().map(|h| h.shards()),
            );
            let pending = hi
                .spawn_pinned(0, std::future::pending::<()>())
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            drop(inner);
            let took = t.elapsed();
            let refused = matches!(hi.spawn_pinned(0, async {}), Err(Error::Shutdown));
            let cancelled = match ringlane::time::timeout(LIMIT, pending).await {
                Ok(Err(e)) => e.is_cancelled(),
                _ => false,
            };
            Ok::<_, String>((
                features, placed, bridged, sum, here, took, refused, cancelled,
            ))
        })
        .unwrap();
    let (features, placed, bridged, sum, here, took, refused, cancelled) = join_within(
        &outer,
        j,
        Duration::from_secs(30),
        "the outer task that builds and drops a runtime",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let inner_left = threads_left_after_a_while("advinn");
    let after = ho.call_on(0, |c| c.index()).unwrap();
    let outer_shard_0 = join_within(&outer, after, LIMIT, "the outer shard 0 afterwards");
    within(LIMIT, "dropping the outer runtime", move || drop(outer));
    let outer_left = threads_left_after_a_while("advout");
    let fds_after = fd_count();

    assert_eq!(
        features, clean,
        "a runtime built on a shard got another ring set-up than one built on a clean thread"
    );
    assert_eq!(
        placed,
        vec![(Some(0), Some(3)), (Some(1), Some(3)), (Some(2), Some(3))],
        "inner tasks: (current_shard, current runtime's shard count)"
    );
    assert_eq!(bridged, 7, "an inner task awaiting an outer task");
    assert_eq!(sum, (0..50).sum::<u32>(), "the channel across the runtimes");
    assert_eq!(
        here,
        (Some(0), Some(2)),
        "the building task is no longer on its own runtime"
    );
    assert!(
        took < Duration::from_millis(4500),
        "dropping the inner runtime on a shard of the outer one took {took:?}"
    );
    assert!(
        refused,
        "the inner handle still accepted a spawn after the drop"
    );
    assert!(
        cancelled,
        "the pending inner task did not resolve as cancelled"
    );
    assert_eq!(inner_left, Vec::<String>::new(), "inner shard threads left");
    assert_eq!(outer_shard_0, 0);
    assert_eq!(outer_left, Vec::<String>::new(), "outer shard threads left");
    assert_eq!(fds_after, fds_before, "fds leaked by the two runtimes");
}

// ---------------------------------------------------------------------------
// 6.
// ---------------------------------------------------------------------------

/// A ringlane runtime built with the handle of a Tokio runtime that has
/// already shut down. A shard task calls `tokio::spawn` and awaits it;
/// another sleeps with `tokio::time`; `block_on` awaits a `tokio::spawn` and,
/// separately, a `tokio::time` sleep.
///
/// Expected: either `build()` refuses with an error that says so, or every
/// call fails instead of hanging: the task spawned on the dead Tokio
/// runtime never runs, the sleeping shard task ends with a JoinError (Tokio
/// panics), the sleep inside `block_on` panics in the caller, after which
/// the caller is in no runtime's context (neither ringlane's nor Tokio's);
/// both shards still serve; the drop leaves no thread.
#[test]
fn a_tokio_handle_of_a_runtime_already_shut_down_gives_clear_failures_never_hangs() {
    let _serial = serial();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("advtkdead")
        .build()
        .unwrap();
    let dead = tokio_rt.handle().clone();
    tokio_rt.shutdown_timeout(Duration::from_secs(2));
    let rt = match Runtime::builder()
        .shards(2)
        .thread_name("advdead")
        .tokio_handle(dead)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            assert!(
                e.to_string().to_lowercase().contains("tokio"),
                "build() refused a dead Tokio handle without saying why: {e}"
            );
            assert_eq!(threads_left_after_a_while("advdead"), Vec::<String>::new());
            return;
        }
    };
    let h = rt.handle();

    // 1. tokio::spawn on a shard.
    let j = h
        .spawn_pinned(0, async { tokio::spawn(async { 1u8 }).await.is_ok() })
        .unwrap();
    let r = rt
        .block_on(ringlane::time::timeout(LIMIT, j))
        .expect("a shard task awaiting tokio::spawn on a dead Tokio runtime hung");
    assert!(
        !matches!(r, Ok(true)),
        "a task spawned onto a shut-down Tokio runtime ran"
    );

    // 2. tokio::time on a shard.
    let j = h
        .spawn_pinned(1, async {
            tokio::time::sleep(Duration::from_millis(1)).await;
        })
        .unwrap();
    let r = rt
        .block_on(ringlane::time::timeout(LIMIT, j))
        .expect("a shard task sleeping with tokio::time on a dead Tokio runtime hung");
    if let Err(e) = &r {
        assert!(e.is_panic(), "expected the task's panic, got {e:?}");
    }

    // 3. tokio::spawn inside block_on.
    let r =
        rt.block_on(async { ringlane::time::timeout(LIMIT, tokio::spawn(async { 2u8 })).await });
    let r = r.expect("awaiting tokio::spawn inside block_on (dead Tokio runtime) hung");
    assert!(
        r.is_err(),
        "a task spawned onto a shut-down Tokio runtime ran"
    );

    // 4. tokio::time inside block_on: Tokio panics in the caller.
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            ringlane::time::timeout(LIMIT, tokio::time::sleep(Duration::from_millis(1))).await
        })
    }));
    if let Ok(r) = &unwound {
        assert!(r.is_ok(), "a tokio::time sleep inside block_on hung");
    }
    assert!(
        ringlane::Handle::current().is_none(),
        "the runtime stayed entered on the caller after block_on unwound"
    );
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "the dead Tokio handle stayed entered on the caller after block_on unwound"
    );

    // 5. Both shards still serve.
    for s in 0..2usize {
        let j = h.call_on(s, |c| c.index()).unwrap();
        assert_eq!(join_within(&rt, j, LIMIT, "a shard afterwards"), s);
    }
    within(LIMIT, "dropping the runtime", move || drop(rt));
    assert_eq!(threads_left_after_a_while("advdead"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// 8.
// ---------------------------------------------------------------------------

fn counters(s: &ShardStats) -> [(&'static str, u64); 13] {
    [
        ("tasks_polled", s.tasks_polled),
        ("parks", s.parks),
        ("doorbells_msg_ring", s.doorbells_msg_ring),
        ("doorbells_eventfd", s.doorbells_eventfd),
        ("doorbells_avoided", s.doorbells_avoided),
        ("mailbox_received", s.mailbox_received),
        ("messages_sent", s.messages_sent),
        ("messages_received", s.messages_received),
        ("wakeups", s.wakeups),
        ("steals_attempted", s.steals_attempted),
        ("steals_succeeded", s.steals_succeeded),
        ("tasks_stolen", s.tasks_stolen),
        ("injector_pops", s.injector_pops),
    ]
}

/// Reads the introspection API in a loop until `stop`; the problems seen
/// and how many rounds were read.
fn read_stats_until(h: &ringlane::Handle, stop: &AtomicBool) -> (Vec<String>, u64) {
    let shards = h.shards();
    let mut problems = Vec::new();
    let mut last: Vec<Option<ShardStats>> = vec![None; shards];
    let mut saw_down = false;
    let mut reads = 0u64;
    while !stop.load(Ordering::Acquire) && problems.len() < 20 {
        let down = h.is_shutdown();
        if saw_down && !down {
            problems.push("is_shutdown() went back to false".to_owned());
        }
        saw_down |= down;
        if h.shards() != shards {
            problems.push(format!("shards() changed: {} then {shards}", h.shards()));
        }
        match h.shard_stats(shards) {
            Err(Error::ShardOutOfRange { shard, shards: n }) if shard == shards && n == shards => {}
            other => problems.push(format!("shard_stats({shards}) gave {other:?}")),
        }
        for (i, prev) in last.iter_mut().enumerate() {
            let s = match h.shard_stats(i) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("shard_stats({i}) failed: {e}"));
                    continue;
                }
            };
            if s.shard != i {
                problems.push(format!("shard_stats({i}).shard is {}", s.shard));
            }
            if s.wakeups > s.parks {
                problems.push(format!("shard {i}: more wake-ups than parks: {s:?}"));
            }
            if s.steals_succeeded > s.steals_attempted {
                problems.push(format!(
                    "shard {i}: more steals succeeded than tried: {s:?}"
                ));
            }
            if s.os_tid <= 0 {
                problems.push(format!("shard {i}: os_tid {}", s.os_tid));
            }
            if let Some(p) = prev {
                if p.os_tid != s.os_tid {
                    problems.push(format!(
                        "shard {i}: os_tid changed {} -> {}",
                        p.os_tid, s.os_tid
                    ));
                }
                for ((name, before), (_, now)) in counters(p).into_iter().zip(counters(&s)) {
                    if now < before {
                        problems.push(format!(
                            "shard {i}: {name} went back from {before} to {now}"
                        ));
                    }
                }
            }
            *prev = Some(s);
        }
        reads += 1;
    }
    (problems, reads)
}

/// Two shards bounce a number through two channels (with a short sleep
/// every 64 rounds, so shards park and are rung), 20 tasks sleep for an
/// hour, stealable tasks are spawned from the test thread; meanwhile a
/// thread reads the introspection API in a loop. Then a graceful shutdown
/// (100 ms) cancels what is left, and the reads go on after it returned.
///
/// Expected: every read is consistent (see `read_stats_until`); no shard is
/// reported stuck; once `shutdown` returned, two snapshots 50 ms apart are
/// equal and neither shard reads as parked; spawns are refused.
#[test]
fn stats_read_across_a_shutdown_stay_consistent_and_freeze_once_it_returns() {
    let _serial = serial();
    let rt = Runtime::builder()
        .shards(2)
        .thread_name("advstat")
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let (a_tx, mut b_rx) = ringlane::channel::<u64>(4).unwrap();
    let (b_tx, mut a_rx) = ringlane::channel::<u64>(4).unwrap();
    let ping = h
        .spawn_pinned(0, async move {
            let mut n = 0u64;
            loop {
                if a_tx.send(n).await.is_err() {
                    break;
                }
                match a_rx.recv().await {
                    Some(v) => n = v + 1,
                    None => break,
                }
                if n % 64 == 0 {
                    ringlane::time::sleep(Duration::from_micros(200)).await;
                }
            }
        })
        .unwrap();
    let pong = h
        .spawn_pinned(1, async move {
            while let Some(v) = b_rx.recv().await {
                if b_tx.send(v).await.is_err() {
                    break;
                }
            }
        })
        .unwrap();
    for i in 0..20usize {
        drop(
            h.spawn_pinned(i % 2, async {
                ringlane::time::sleep(Duration::from_secs(3600)).await;
            })
            .unwrap(),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_reader = ReleaseOnDrop(stop.clone());
    let reader = {
        let (h, stop) = (h.clone(), stop.clone());
        std::thread::spawn(move || read_stats_until(&h, &stop))
    };
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(200) {
        for i in 0..16u64 {
            drop(h.spawn_stealable(async move {
                ringlane::yield_now().await;
                i
            }));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let report = within(
        Duration::from_secs(20),
        "a shutdown while stats are read",
        move || rt.shutdown(Duration::from_millis(100)),
    );
    let first: Vec<ShardStats> = (0..2).map(|i| h.shard_stats(i).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(50));
    let second: Vec<ShardStats> = (0..2).map(|i| h.shard_stats(i).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(20)); // the reader reads after too
    stop.store(true, Ordering::Release);
    let (problems, reads) = reader.join().expect("the stats reader panicked");
    let refused = matches!(h.spawn_pinned(0, async {}), Err(Error::Shutdown));
    let pinged = common::block_on(ringlane::time::timeout(LIMIT, ping));
    let ponged = common::block_on(ringlane::time::timeout(LIMIT, pong));

    assert!(problems.is_empty(), "after {reads} reads: {problems:#?}");
    assert!(reads > 0);
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    assert!(
        pinged.is_ok() && ponged.is_ok(),
        "a cancelled task's handle never resolved"
    );
    assert!(h.is_shutdown());
    assert!(
        refused,
        "a spawn after shutdown was not refused with Error::Shutdown"
    );
    assert_eq!(
        first, second,
        "the stats kept changing after shutdown returned"
    );
    assert!(
        first.iter().all(|s| !s.parked),
        "an exited shard reads as parked: {first:?}"
    );
    assert_eq!(threads_left_after_a_while("advstat"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// 9.
// ---------------------------------------------------------------------------

/// Two shards with every knob off its default at once: `defer_taskrun(false)`,
/// the smallest ring (2 SQ entries), a task budget of 1, a 200 µs spin
/// window and pinning. Work: 20 one-byte pipe writes from shard 0 (1 ms
/// apart) read on shard 1, 500 messages from shard 0 to shard 1 through a
/// channel of 4, 100 stealable tasks with short sleeps spawned from outside,
/// `call_on` on each shard.
///
/// Expected: the ring set-up reports no DEFER_TASKRUN, everything arrives,
/// the counters are consistent, a graceful shutdown is clean, no thread and
/// no fd is left.
#[test]
fn every_non_default_knob_at_once_still_serves_io_doorbells_timers_and_stealing() {
    let _serial = serial();
    let fds_before = fd_count();
    let rt = Runtime::builder()
        .shards(2)
        .ring_entries(2)
        .defer_taskrun(false)
        .task_budget(1)
        .spin_before_park(Duration::from_micros(200))
        .pin_cpus(true)
        .thread_name("advknob")
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let f = h.ring_features();
    assert!(
        !f.defer_taskrun,
        "defer_taskrun(false) still got DEFER_TASKRUN: {f:?}"
    );
    assert!(f.msg_ring && f.ext_arg, "{f:?}");

    let (r, w): (OwnedFd, OwnedFd) = common::pipe();
    let reader = ringlane::native::fs::File::from(r);
    let writer = ringlane::native::fs::File::from(w);
    let read_side = h
        .spawn_pinned(1, async move {
            let mut got = Vec::new();
            while got.len() < 20 {
                let (n, buf) = reader.read(vec![0u8; 64]).await;
                let n = n.map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            Ok::<_, String>(got)
        })
        .unwrap();
    let write_side = h
        .spawn_pinned(0, async move {
            for i in 0..20u8 {
                ringlane::time::sleep(Duration::from_millis(1)).await;
                let (n, _) = writer.write(vec![i]).await;
                n.map_err(|e| format!("write: {e}"))?;
            }
            Ok::<_, String>(())
        })
        .unwrap();

    let (tx, mut rx) = ringlane::channel::<u64>(4).unwrap();
    let consumer = h
        .spawn_pinned(1, async move {
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(v) = rx.recv().await {
                n += 1;
                sum += v;
            }
            (n, sum)
        })
        .unwrap();
    let producer = h
        .spawn_pinned(0, async move {
            for i in 0..500u64 {
                if tx.send(i).await.is_err() {
                    return false;
                }
            }
            true
        })
        .unwrap();
    let stealables: Vec<_> = (0..100u64)
        .map(|i| {
            h.spawn_stealable(async move {
                ringlane::time::sleep(Duration::from_millis(i % 3)).await;
                i
            })
            .unwrap()
        })
        .collect();

    let limit = Duration::from_secs(20);
    join_within(&rt, write_side, limit, "the pipe writer").unwrap_or_else(|e| panic!("{e}"));
    let got =
        join_within(&rt, read_side, limit, "the pipe reader").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, (0..20u8).collect::<Vec<u8>>(), "the pipe bytes");
    assert!(
        join_within(&rt, producer, limit, "the producer"),
        "the channel closed early"
    );
    assert_eq!(
        join_within(&rt, consumer, limit, "the consumer"),
        (500, (0..500u64).sum::<u64>())
    );
    let sum: u64 = stealables
        .into_iter()
        .map(|j| join_within(&rt, j, limit, "a stealable task"))
        .sum();
    assert_eq!(sum, (0..100u64).sum::<u64>());
    for s in 0..2usize {
        let j = h.call_on(s, |c| c.index()).unwrap();
        assert_eq!(join_within(&rt, j, limit, "call_on"), s);
    }
    for s in 0..2usize {
        let st = h.shard_stats(s).unwrap();
        assert!(st.wakeups <= st.parks, "{st:?}");
        assert!(st.steals_succeeded <= st.steals_attempted, "{st:?}");
    }
    let sent: u64 = (0..2)
        .map(|s| h.shard_stats(s).unwrap().messages_sent)
        .sum();
    let received: u64 = (0..2)
        .map(|s| h.shard_stats(s).unwrap().messages_received)
        .sum();
    assert_eq!((sent, received), (500, 500), "channel counters");

    let report = within(Duration::from_secs(30), "graceful shutdown", move || {
        rt.shutdown(Duration::from_secs(5))
    });
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(threads_left_after_a_while("advknob"), Vec::<String>::new());
    assert_eq!(fd_count(), fds_before, "fds leaked");
}
