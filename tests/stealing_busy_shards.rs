//! Work stealing, second round: shards that are busy rather than idle
//! (a task that yields in a loop) still take stealable work stranded behind
//! a shard blocked in a long poll, from its deque and its preferred queue;
//! stealable tasks woken from foreign threads mid-poll, aborted mid-poll on
//! the shard that stole them, and counted once by a shutdown; local tasks
//! never leave their thread; the steal counters stay consistent. Every wait
//! is bounded; blocked shards are released before any assertion that could
//! fail.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use ringlane::Placement;
use ringlane::time::{sleep, timeout};

use common::LIMIT;
use common::stealers::{holds_within, other, report_of};

/// A pinned task on `shard` that yields in a loop until `stop` (or `max`):
/// a cooperative long-running task (a game loop, a poller). Returns once
/// its first poll has begun.
fn spawn_pinned_yielder(
    rt: &ringlane::Runtime,
    shard: usize,
    stop: &Arc<AtomicBool>,
    max: Duration,
) -> ringlane::JoinHandle<u64> {
    let started = Arc::new(AtomicBool::new(false));
    let (s, st) = (stop.clone(), started.clone());
    let j = rt
        .handle()
        .spawn_pinned(shard, async move {
            st.store(true, Ordering::Release);
            let deadline = Instant::now() + max;
            let mut turns = 0u64;
            while !s.load(Ordering::Acquire) && Instant::now() < deadline {
                ringlane::yield_now().await;
                turns += 1;
            }
            turns
        })
        .unwrap();
    common::wait_until("the yielder's first poll", || {
        started.load(Ordering::Acquire)
    });
    j
}

/// (1) Shard 1 runs one pinned task that yields in a loop; a pinned task on
/// shard 0 queues 100 stealable tasks on shard 0's deque and then blocks
/// shard 0 (a long CPU-bound poll) until they have run, 3 s at most.
///
/// Expected (README, Tokio): shard 1, which has nothing but a yielding task,
/// runs them between its turns while shard 0 is blocked. Before the fix: a shard
/// steals only when idle, and a yielding task keeps it from ever being idle.
#[test]
fn a_shard_busy_with_a_yield_loop_still_steals_work_stranded_behind_a_blocked_shard() {
    const N: usize = 100;
    let rt = common::runtime(2);
    let h = rt.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let yielder = spawn_pinned_yielder(&rt, 1, &stop, Duration::from_secs(8));
    let done = Arc::new(AtomicUsize::new(0));
    let ran_on_1 = Arc::new(AtomicUsize::new(0));
    let (d, r1) = (done.clone(), ran_on_1.clone());
    let blocker = h
        .spawn_pinned(0, async move {
            for _ in 0..N {
                let (d, r1) = (d.clone(), r1.clone());
                drop(
                    ringlane::spawn(async move {
                        if ringlane::current_shard() == Some(1) {
                            r1.fetch_add(1, Ordering::Relaxed);
                        }
                        d.fetch_add(1, Ordering::Release);
                    })
                    .unwrap(),
                );
            }
            // Shard 0 blocked, no yield: only another shard can run them.
            let deadline = Instant::now() + Duration::from_secs(3);
            while d.load(Ordering::Acquire) < N && Instant::now() < deadline {
                std::hint::spin_loop();
            }
            d.load(Ordering::Acquire)
        })
        .unwrap();
    let seen_while_blocked = common::join_within(&rt, blocker, LIMIT, "shard 0's blocker");
    // Shard 0 is free again: every task must end up running somewhere.
    let all_ran = holds_within(LIMIT, || done.load(Ordering::Acquire) == N);
    stop.store(true, Ordering::Release);
    let turns = common::join_within(&rt, yielder, LIMIT, "the yielder");
    assert!(turns > 0, "the yielder never yielded");
    assert!(
        all_ran,
        "not every stealable task ran even after the release"
    );
    // At most the last push may be a lone task that announces nothing (the
    // lone-task rule): every other one must have run on shard 1.
    assert!(
        seen_while_blocked >= N - 1,
        "only {seen_while_blocked} of {N} stealable tasks ran while shard 0 was blocked \
         ({} on shard 1): shard 1, busy with nothing but a task that yields in a loop, \
         never steals (it searches only when idle), so a blocked shard holds up the \
         stealable work queued behind it; a Tokio worker steals between a task's yields",
        ran_on_1.load(Ordering::Relaxed)
    );
}

/// (2) Shard 0 is blocked; four stealable tasks yield in a loop on shard 1.
///
/// Expected: shard 1 keeps serving its pinned tasks, timers and `call_on`
/// (alternating picks, the task budget); and `StealablePreferred(0)` tasks
/// spawned from a Tokio thread run on shard 1 while shard 0 is blocked
/// ("first run on shard i unless i is busy: then an idle shard may take
/// it"). Before the fix: the preferred queue is looked at by other shards only
/// in `search`, which a shard running yield loops never reaches.
#[test]
fn stealable_yield_loops_starve_neither_the_free_shards_work_nor_a_blocked_shards_preferred_queue()
{
    const YIELDERS: usize = 4;
    const PREFERRED: usize = 20;
    let rt = common::runtime(2);
    let h = rt.handle();
    let hold_0 = common::block_shard(&rt, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let (first_tx, first_rx) = mpsc::channel::<Option<usize>>();
    let yielders: Vec<_> = (0..YIELDERS)
        .map(|_| {
            let (s, tx) = (stop.clone(), first_tx.clone());
            h.spawn_stealable(async move {
                tx.send(ringlane::current_shard()).unwrap();
                let deadline = Instant::now() + Duration::from_secs(8);
                let mut turns = 0u64;
                while !s.load(Ordering::Acquire) && Instant::now() < deadline {
                    ringlane::yield_now().await;
                    turns += 1;
                }
                turns
            })
            .unwrap()
        })
        .collect();
    let firsts: Vec<_> = (0..YIELDERS)
        .map(|_| report_of(&first_rx, "a yielder's first poll"))
        .collect();

    // The free shard's own work.
    let served = rt.block_on(timeout(Duration::from_secs(3), async {
        let pinned = h
            .spawn_pinned(1, async {
                sleep(Duration::from_millis(5)).await;
                ringlane::current_shard()
            })
            .unwrap()
            .await
            .unwrap();
        let called = h
            .call_on(1, |cx: &ringlane::ShardCtx| cx.index())
            .unwrap()
            .await
            .unwrap();
        (pinned, called)
    }));

    // Preferred tasks for the blocked shard, spawned from a Tokio thread.
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let h2 = h.clone();
    let joins: Vec<_> = tokio_rt.block_on(async move {
        (0..PREFERRED)
            .map(|_| {
                h2.spawn_with(Placement::StealablePreferred(0), async {
                    ringlane::current_shard()
                })
                .unwrap()
            })
            .collect::<Vec<_>>()
    });
    let out = rt.block_on(timeout(Duration::from_secs(3), async move {
        let mut v = Vec::new();
        for j in joins {
            v.push(j.await.unwrap());
        }
        v
    }));

    common::join_within(&rt, hold_0.release(), LIMIT, "shard 0's blocker");
    stop.store(true, Ordering::Release);
    for y in yielders {
        common::join_within(&rt, y, LIMIT, "a yielder");
    }
    assert!(
        firsts.iter().all(|s| *s == Some(1)),
        "yielders first ran on {firsts:?} while shard 0 was blocked"
    );
    assert_eq!(
        served.expect("shard 1's pinned task or call_on starved by stealable yield loops"),
        (Some(1), 1)
    );
    let out = out.expect(
        "StealablePreferred(0) tasks stayed queued for blocked shard 0 for 3 s: shard 1 \
         runs only yielding tasks, yet never takes them (another shard's preferred queue \
         is looked at only by an idle shard's search)",
    );
    assert!(
        out.iter().all(|s| *s == Some(1)),
        "preferred tasks ran on {out:?} while shard 0 was blocked"
    );
}

/// (3) Shard 1 runs a pinned yield loop; shard 0 is blocked while a Tokio
/// worker spawns 10,000 stealable tasks (30 µs of work each); then shard 0
/// is let go: it takes a batch from the injector, and the first of them to
/// run there blocks shard 0 until every other task has run (3 s at most).
///
/// Expected: no task waits behind the blocking one: the rest of its batch
/// is stolen by shard 1 while it works through the injector. Suspected:
/// the batch sits in shard 0's deque, which busy shard 1 never looks at.
#[test]
fn a_burst_from_a_tokio_thread_leaves_no_batch_stranded_behind_the_task_that_blocks_its_shard() {
    const N: usize = 10_000;
    const NOT_YET: usize = usize::MAX;
    let rt = common::runtime(2);
    let h = rt.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let yielder = spawn_pinned_yielder(&rt, 1, &stop, Duration::from_secs(9));
    let hold_0 = common::block_shard(&rt, 0);
    let done = Arc::new(AtomicUsize::new(0));
    let hog_taken = Arc::new(AtomicBool::new(false));
    let hog_saw = Arc::new(AtomicUsize::new(NOT_YET));
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let (h2, d, hog, saw) = (h.clone(), done.clone(), hog_taken.clone(), hog_saw.clone());
    tokio_rt
        .block_on(tokio_rt.spawn(async move {
            for _ in 0..N {
                let (d, hog, saw) = (d.clone(), hog.clone(), saw.clone());
                drop(
                    h2.spawn_stealable(async move {
                        if ringlane::current_shard() == Some(0) && !hog.swap(true, Ordering::AcqRel)
                        {
                            // The first task shard 0 runs: it blocks shard 0
                            // until every other task has run.
                            let deadline = Instant::now() + Duration::from_secs(3);
                            while d.load(Ordering::Acquire) < N - 1 && Instant::now() < deadline {
                                std::hint::spin_loop();
                            }
                            saw.store(d.load(Ordering::Acquire), Ordering::Release);
                            return;
                        }
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(30) {
                            std::hint::spin_loop();
                        }
                        d.fetch_add(1, Ordering::Release);
                    })
                    .unwrap(),
                );
            }
        }))
        .unwrap();
    common::join_within(&rt, hold_0.release(), LIMIT, "shard 0's blocker");
    let hog_ended = holds_within(LIMIT, || hog_saw.load(Ordering::Acquire) != NOT_YET);
    let all_ran = holds_within(LIMIT, || done.load(Ordering::Acquire) >= N - 1);
    stop.store(true, Ordering::Release);
    common::join_within(&rt, yielder, LIMIT, "the yielder");
    drop(tokio_rt);
    if !hog_taken.load(Ordering::Acquire) {
        println!("SKIP-ish: shard 0 never ran one of the burst's tasks; nothing blocked it");
        assert!(all_ran, "the burst did not complete");
        return;
    }
    assert!(hog_ended, "the blocking task never ended");
    assert!(
        all_ran,
        "the burst never completed, even after shard 0 was free again"
    );
    let saw = hog_saw.load(Ordering::Acquire);
    assert_eq!(
        saw,
        N - 1,
        "{} stealable tasks stayed queued behind the task that blocked shard 0 for 3 s, \
         while shard 1 (running only a yield loop) drained the injector but never stole \
         the rest of shard 0's batch",
        N - 1 - saw
    );
}

/// (7) A graceful shutdown (5 s) over a mixed population:
/// - 20 stealable tasks pending forever, polled once (registered on either
///   shard), and 5 more aborted by the test during the grace period;
/// - 7 pinned tasks pending forever on shard 1, which is blocked past the
///   deadline;
/// - 30 quick stealable tasks on blocked shard 1's deque (every third one
///   panics), 30 in the injector, 10 in each shard's preferred queue;
/// - shard 0 is blocked when shutdown begins and let go 20 ms later.
///
/// Expected: shard 0 runs every queued quick task during the grace period
/// (outputs and panics as `JoinError::is_panic`), the deadline cancels the
/// 20 + 7 pending tasks, and the report counts exactly those 27: panics and
/// aborts are not "unfinished", and no task is counted twice.
#[test]
fn a_shutdown_report_counts_each_unfinished_stealable_task_exactly_once() {
    const PENDING: usize = 20;
    const ABORTED: usize = 5;
    const PINNED: usize = 7;
    const ON_DEQUE: usize = 30;
    const INJECTED: usize = 30;
    const PREFERRED: usize = 10;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (polled_tx, polled_rx) = mpsc::channel::<()>();
    let pending: Vec<_> = (0..PENDING + ABORTED)
        .map(|_| {
            let tx = polled_tx.clone();
            h.spawn_stealable(async move {
                tx.send(()).unwrap();
                std::future::pending::<()>().await
            })
            .unwrap()
        })
        .collect();
    let pinned: Vec<_> = (0..PINNED)
        .map(|_| {
            let tx = polled_tx.clone();
            h.spawn_pinned(1, async move {
                tx.send(()).unwrap();
                std::future::pending::<()>().await
            })
            .unwrap()
        })
        .collect();
    for _ in 0..PENDING + ABORTED + PINNED {
        report_of(&polled_rx, "a pending task's first poll");
    }

    let hold_0 = common::block_shard(&rt, 0);
    let release_0 = hold_0.release_flag();
    let release_1 = Arc::new(AtomicBool::new(false));
    let (deque_tx, deque_rx) = mpsc::channel();
    let r1 = release_1.clone();
    let blocker_1 = h
        .spawn_pinned(1, async move {
            let joins: Vec<ringlane::JoinHandle<usize>> = (0..ON_DEQUE)
                .map(|i| {
                    ringlane::spawn(async move {
                        if i % 3 == 0 {
                            std::panic::panic_any(i);
                        }
                        i
                    })
                    .unwrap()
                })
                .collect();
            deque_tx.send(joins).unwrap();
            // Well past the grace period (5 s from the shutdown's start):
            // shard 1 must still be blocked at the deadline.
            let deadline = Instant::now() + Duration::from_secs(15);
            while !r1.load(Ordering::Acquire) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let on_deque = deque_rx
        .recv_timeout(LIMIT)
        .expect("shard 1 never queued its stealable tasks");
    let injected: Vec<_> = (0..INJECTED)
        .map(|i| h.spawn_stealable(async move { i }).unwrap())
        .collect();
    let preferred: Vec<_> = (0..2 * PREFERRED)
        .map(|i| {
            h.spawn_with(Placement::StealablePreferred(i % 2), async move { i })
                .unwrap()
        })
        .collect();

    const GRACE: Duration = Duration::from_secs(5);
    let shutter = std::thread::spawn(move || {
        let t = Instant::now();
        // A grace period long enough for shard 0 to steal and run shard 1's
        // queue (with a panic's backtrace in every third task) on a slow or
        // instrumented build: 400 ms was not enough under ASan, and 1.5 s
        // is tight on a loaded machine that resolves a backtrace.
        let report = rt.shutdown(GRACE);
        (report, t.elapsed())
    });
    let began = holds_within(LIMIT, || h.is_shutdown());
    let began_at = Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    release_0.store(true, Ordering::Release);
    // Aborted by their owner during the grace period: cancelled, but not
    // unfinished at the deadline.
    for j in &pending[PENDING..] {
        j.abort();
    }
    // Shard 1 stays blocked until the deadline has passed (its own tasks
    // are then unfinished), measured from the shutdown's start.
    std::thread::sleep(
        (began_at + GRACE + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    );
    release_1.store(true, Ordering::Release);
    let (report, took) = shutter.join().unwrap();
    drop(hold_0);
    assert!(began, "shutdown never began");

    let waiter = common::runtime(1);
    let resolve = |what: &str, j: ringlane::JoinHandle<usize>| {
        waiter
            .block_on(timeout(LIMIT, j))
            .unwrap_or_else(|_| panic!("{what}: its handle hung after shutdown"))
    };
    let mut problems = Vec::new();
    for (k, j) in on_deque.into_iter().enumerate() {
        match resolve("a task of shard 1's deque", j) {
            Ok(i) if k % 3 != 0 && i == k => {}
            Err(e) if k % 3 == 0 && e.is_panic() => {}
            other => problems.push(format!("deque task {k}: {other:?}")),
        }
    }
    for (k, j) in injected.into_iter().enumerate() {
        if !matches!(resolve("an injected task", j), Ok(i) if i == k) {
            problems.push(format!("injected task {k} did not run in the grace period"));
        }
    }
    for (k, j) in preferred.into_iter().enumerate() {
        if !matches!(resolve("a preferred task", j), Ok(i) if i == k) {
            problems.push(format!(
                "StealablePreferred({}) task {k} did not run in the grace period",
                k % 2
            ));
        }
    }
    let mut cancelled = 0;
    for j in pending.into_iter().chain(pinned) {
        match waiter.block_on(timeout(LIMIT, j)) {
            Ok(Err(e)) if e.is_cancelled() => cancelled += 1,
            other => problems.push(format!("a pending task ended with {other:?}")),
        }
    }
    let blocker_1 = waiter.block_on(timeout(LIMIT, blocker_1));
    assert!(
        matches!(blocker_1, Ok(Ok(()))),
        "shard 1's blocker: {blocker_1:?}"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(cancelled, PENDING + ABORTED + PINNED);
    assert!(report.stuck_shards.is_empty(), "{report:?} after {took:?}");
    assert_eq!(
        report.unfinished_tasks,
        PENDING + PINNED,
        "the report must count the {PENDING} stealable and {PINNED} pinned tasks the \
         deadline cancelled, each once, and neither the {ABORTED} aborted ones nor the \
         panicked ones: {report:?}"
    );
}

/// (8) A local task on each shard (holding `Rc` state) receives 300 messages
/// from 40 stealable tasks that move between the shards (shard 0 is blocked
/// for 100 ms in the middle); each stealable task also builds a local child
/// with `spawn_local` where it first runs and awaits it from wherever it is
/// later.
///
/// Expected: every local task resumes on its own thread after every await,
/// and a child runs on the shard its parent was on when it spawned it.
#[test]
fn local_tasks_never_leave_their_thread_while_stealable_tasks_churn_and_wake_them() {
    const SPAWNERS: usize = 40;
    const PER: usize = 15; // 40 x 15 = 600 messages, 300 per local task
    let rt = common::runtime(2);
    let h = rt.handle();
    let mut senders = Vec::new();
    let mut locals = Vec::new();
    for shard in 0..2 {
        let (tx, rx) = ringlane::channel::<usize>(8).unwrap();
        senders.push(tx);
        locals.push(
            h.spawn_local_on(shard, move || async move {
                let mut rx = rx;
                let me = std::thread::current().id();
                let count = std::rc::Rc::new(std::cell::Cell::new(0usize));
                let mut strays = 0usize;
                let mut check = || {
                    if std::thread::current().id() != me || ringlane::current_shard() != Some(shard)
                    {
                        strays += 1;
                    }
                };
                while rx.recv().await.is_some() {
                    check();
                    count.set(count.get() + 1);
                    ringlane::yield_now().await;
                    check();
                    sleep(Duration::from_micros(50)).await;
                    check();
                }
                (count.get(), strays)
            })
            .unwrap(),
        );
    }
    let spawners: Vec<_> = (0..SPAWNERS)
        .map(|i| {
            let txs = senders.clone();
            h.spawn_stealable(async move {
                let birth = (std::thread::current().id(), ringlane::current_shard());
                let child = ringlane::spawn_local(async move {
                    let rc = std::rc::Rc::new(std::thread::current().id());
                    let mut stayed = true;
                    for _ in 0..5 {
                        sleep(Duration::from_micros(200)).await;
                        ringlane::yield_now().await;
                        stayed &= std::thread::current().id() == *rc;
                    }
                    (*rc, ringlane::current_shard(), stayed)
                })
                .unwrap();
                for r in 0..PER {
                    assert!(
                        txs[(i + r) % 2].send(i).await.is_ok(),
                        "a local task is gone"
                    );
                    ringlane::yield_now().await;
                }
                let (t, s, stayed) = child.await.unwrap();
                (birth, (t, s), stayed)
            })
            .unwrap()
        })
        .collect();
    drop(senders);
    std::thread::sleep(Duration::from_millis(5));
    let hold = common::block_shard(&rt, 0);
    std::thread::sleep(Duration::from_millis(100));
    common::join_within(&rt, hold.release(), LIMIT, "the blocker");
    let mut problems = Vec::new();
    for (i, j) in spawners.into_iter().enumerate() {
        let (birth, child, stayed) = common::join_within(&rt, j, LIMIT, "a stealable spawner");
        if birth != child || !stayed {
            problems.push(format!(
                "spawner {i}: spawned its local child on {birth:?}, the child ran on \
                 {child:?} (stayed on its thread: {stayed})"
            ));
        }
    }
    for (shard, j) in locals.into_iter().enumerate() {
        let (count, strays) = common::join_within(&rt, j, LIMIT, "a local task");
        assert_eq!(count, SPAWNERS * PER / 2, "local task on shard {shard}");
        if strays != 0 {
            problems.push(format!(
                "the local task of shard {shard} resumed {strays} times off its thread"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// What the task of test 9 and its wakers share.
#[derive(Default)]
struct Pinger {
    waker: Mutex<Option<Waker>>,
    /// The wake-up (1-based) the task waits for now.
    armed: AtomicU64,
    /// The last wake-up delivered.
    woken: AtomicU64,
    in_poll: AtomicBool,
    overlaps: AtomicUsize,
    spurious: AtomicUsize,
    polls: AtomicU64,
    on: [AtomicUsize; 2],
    stop: AtomicBool,
}

impl Pinger {
    /// Which of the two wakers delivers wake-up `n`.
    fn owner(n: u64) -> u64 {
        ((n - 1) / 2) % 2
    }

    /// Wake-ups of odd number land while the task is being polled.
    fn mid_poll(n: u64) -> bool {
        n % 2 == 1
    }

    /// One look by waker `me`: delivers the armed wake-up if it is its own.
    fn try_deliver(&self, me: u64) -> bool {
        let n = self.armed.load(Ordering::SeqCst);
        if n == 0 || Self::owner(n) != me || self.woken.load(Ordering::SeqCst) >= n {
            return false;
        }
        let mid = Self::mid_poll(n);
        if !mid && self.in_poll.load(Ordering::SeqCst) {
            return false; // after the poll: wait until it has returned
        }
        let Some(w) = self.waker.lock().unwrap().take() else {
            return false;
        };
        if mid {
            w.wake(); // while the task spins inside its poll
            self.woken.store(n, Ordering::SeqCst);
        } else {
            self.woken.store(n, Ordering::SeqCst);
            w.wake();
        }
        true
    }
}

/// (9) A stealable task waits for 400 wake-ups, one at a time, delivered
/// alternately by a plain thread and a Tokio worker; odd ones land while the
/// task is inside its poll (it spins until the wake was made), even ones
/// right after it returned `Pending` (through the injector, to any shard).
///
/// Expected: exactly one poll per wake-up (401 polls), none lost, none
/// spurious, never two polls at once.
#[test]
fn a_stealable_task_woken_mid_poll_from_foreign_threads_is_polled_once_per_wake_never_twice_at_once()
 {
    const ROUNDS: u64 = 400;
    let rt = common::runtime(2);
    let p = Arc::new(Pinger::default());
    let pt = p.clone();
    let task = rt
        .handle()
        .spawn_stealable(std::future::poll_fn(move |cx| {
            let p = &pt;
            if p.in_poll.swap(true, Ordering::SeqCst) {
                p.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            let prior = p.polls.fetch_add(1, Ordering::SeqCst);
            if let Some(s) = ringlane::current_shard() {
                p.on[s].fetch_add(1, Ordering::Relaxed);
            }
            // Every poll after the first is caused by exactly one new wake-up.
            if p.woken.load(Ordering::SeqCst) != prior {
                p.spurious.fetch_add(1, Ordering::SeqCst);
            }
            let done = p.woken.load(Ordering::SeqCst);
            if done >= ROUNDS {
                p.in_poll.store(false, Ordering::SeqCst);
                return Poll::Ready(p.polls.load(Ordering::SeqCst));
            }
            let next = done + 1;
            *p.waker.lock().unwrap() = Some(cx.waker().clone());
            p.armed.store(next, Ordering::SeqCst);
            if Pinger::mid_poll(next) {
                let deadline = Instant::now() + Duration::from_secs(2);
                while p.woken.load(Ordering::SeqCst) < next && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
            }
            p.in_poll.store(false, Ordering::SeqCst);
            Poll::Pending
        }))
        .unwrap();
    let p0 = p.clone();
    let plain = std::thread::spawn(move || {
        while !p0.stop.load(Ordering::SeqCst) {
            if !p0.try_deliver(0) {
                std::thread::yield_now();
            }
        }
    });
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let p1 = p.clone();
    let tokio_waker = tokio_rt.spawn(async move {
        while !p1.stop.load(Ordering::SeqCst) {
            if !p1.try_deliver(1) {
                tokio::task::yield_now().await;
            }
        }
    });
    let polls = rt.block_on(timeout(LIMIT, task));
    p.stop.store(true, Ordering::SeqCst);
    plain.join().unwrap();
    tokio_rt.block_on(tokio_waker).unwrap();
    let polls = polls
        .unwrap_or_else(|_| {
            panic!(
                "lost wake-up: the task stalled at wake-up {} of {ROUNDS} (armed {})",
                p.woken.load(Ordering::SeqCst),
                p.armed.load(Ordering::SeqCst)
            )
        })
        .unwrap();
    assert_eq!(
        p.overlaps.load(Ordering::SeqCst),
        0,
        "a task was polled on two threads at once"
    );
    assert_eq!(
        p.spurious.load(Ordering::SeqCst),
        0,
        "polls without a wake-up"
    );
    assert_eq!(polls, ROUNDS + 1, "one poll per wake-up plus the first");
    println!(
        "polls on shard 0: {}, on shard 1: {}",
        p.on[0].load(Ordering::Relaxed),
        p.on[1].load(Ordering::Relaxed)
    );
}

/// Records the shard (or `None`) each drop of it ran on.
struct DropSpy(Arc<Mutex<Vec<Option<usize>>>>);

impl Drop for DropSpy {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(ringlane::current_shard());
    }
}

/// (10) A stealable task first polled on shard A is stolen by shard B while A
/// is blocked; in its poll on B it spins until a Tokio task has called
/// `abort` (and then awaits the handle). Case 1: that poll returns `Ready(42)`.
/// Case 2: it yields (`Pending`) and would count any later poll.
///
/// Expected (Tokio): case 1 gives `Ok(42)` (the abort came too late to stop
/// it); case 2 gives `is_cancelled`, with no poll after the abort. Either
/// way the future is dropped once, on B, and the Tokio awaiter is woken.
#[test]
fn aborting_a_stolen_task_mid_poll_keeps_what_that_poll_returned_and_cancels_a_pending_one() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for finish in [true, false] {
        let (report_tx, reports) = mpsc::channel::<usize>();
        let (kick_tx, kick) = tokio::sync::oneshot::channel::<()>();
        let aborted = Arc::new(AtomicBool::new(false));
        let polls_after = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(Mutex::new(Vec::new()));
        let (a, pa, spy) = (aborted.clone(), polls_after.clone(), DropSpy(drops.clone()));
        let task = h
            .spawn_stealable(async move {
                let _spy = spy;
                report_tx.send(ringlane::current_shard().unwrap()).unwrap();
                kick.await.unwrap();
                report_tx.send(ringlane::current_shard().unwrap()).unwrap();
                let deadline = Instant::now() + LIMIT;
                while !a.load(Ordering::Acquire) && Instant::now() < deadline {
                    std::hint::spin_loop();
                }
                if finish {
                    return 42;
                }
                ringlane::yield_now().await;
                pa.fetch_add(1, Ordering::SeqCst);
                7
            })
            .unwrap();
        let home = report_of(&reports, "the first poll");
        let hold = common::block_shard(&rt, home);
        kick_tx.send(()).unwrap();
        let thief = reports.recv_timeout(LIMIT);
        let a2 = aborted.clone();
        let out = tokio_rt.block_on(tokio_rt.spawn(async move {
            task.abort();
            a2.store(true, Ordering::Release);
            tokio::time::timeout(LIMIT, task).await
        }));
        let dropped = holds_within(LIMIT, || !drops.lock().unwrap().is_empty());
        common::join_within(&rt, hold.release(), LIMIT, "the blocker");
        let thief = thief.expect("the task was never stolen from its blocked shard");
        assert_eq!(thief, other(home));
        let out = out
            .unwrap()
            .expect("the Tokio task awaiting the aborted handle was never woken");
        if finish {
            assert_eq!(
                out.as_ref().ok(),
                Some(&42),
                "a poll that completed after a racing abort must keep its output: {out:?}"
            );
        } else {
            match out {
                Err(e) => assert!(e.is_cancelled(), "{e}"),
                Ok(v) => panic!("an aborted task was polled again and returned {v}"),
            }
            assert_eq!(
                polls_after.load(Ordering::SeqCst),
                0,
                "the task was polled after its abort"
            );
        }
        assert!(dropped, "the future was never dropped");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            *drops.lock().unwrap(),
            vec![Some(thief)],
            "the future must be dropped once, on the shard that ran it (finish: {finish})"
        );
    }
}

/// (11) 20 rounds alternating the victim: the victim shard queues 200
/// stealable tasks on its deque and blocks; the test thread adds 50
/// `StealablePreferred(victim)` tasks; the thief runs them. A plain thread
/// samples both shards' counters all along.
///
/// Expected: in every snapshot `steals_succeeded <= steals_attempted` and
/// `wakeups <= parks`; each round the thief's `tasks_stolen + injector_pops`
/// grows by at least the number of tasks it ran; at the end each shard has
/// stolen, with `tasks_stolen >= steals_succeeded`.
#[test]
fn steal_counters_are_consistent_in_every_snapshot_and_account_for_every_task_taken() {
    const ROUNDS: usize = 20;
    const DEQUE: usize = 200;
    const PREF: usize = 50;
    let rt = common::runtime(2);
    let h = rt.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (h, stop) = (h.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut looks = 0u64;
            let mut bad = Vec::new();
            while !stop.load(Ordering::Acquire) {
                for s in 0..2 {
                    let st = h.shard_stats(s).unwrap();
                    if (st.steals_succeeded > st.steals_attempted || st.wakeups > st.parks)
                        && bad.len() < 5
                    {
                        bad.push(st);
                    }
                }
                looks += 1;
            }
            (looks, bad)
        })
    };
    let mut problems = Vec::new();
    for round in 0..ROUNDS {
        let victim = round % 2;
        let thief = other(victim);
        common::until_parked(&h, thief);
        let before = h.shard_stats(thief).unwrap();
        let on_thief = Arc::new(AtomicUsize::new(0));
        let from_deque = Arc::new(AtomicUsize::new(0));
        let from_pref = Arc::new(AtomicUsize::new(0));
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (t, dd, dp) = (on_thief.clone(), from_deque.clone(), from_pref.clone());
        let victim_task = h
            .spawn_pinned(victim, async move {
                for _ in 0..DEQUE {
                    let (t, dd) = (t.clone(), dd.clone());
                    drop(
                        ringlane::spawn(async move {
                            if ringlane::current_shard() == Some(thief) {
                                t.fetch_add(1, Ordering::Relaxed);
                            }
                            dd.fetch_add(1, Ordering::Release);
                        })
                        .unwrap(),
                    );
                }
                go_tx.send(()).unwrap();
                // Blocked until the preferred tasks and all but the last
                // deque task ran elsewhere (the lone-task rule), then yields.
                let deadline = Instant::now() + Duration::from_secs(5);
                while (dd.load(Ordering::Acquire) < DEQUE - 1 || dp.load(Ordering::Acquire) < PREF)
                    && Instant::now() < deadline
                {
                    std::hint::spin_loop();
                }
                while dd.load(Ordering::Acquire) < DEQUE && Instant::now() < deadline {
                    ringlane::yield_now().await;
                }
            })
            .unwrap();
        report_of(&go_rx, "the victim's pushes");
        for _ in 0..PREF {
            let (t, dp) = (on_thief.clone(), from_pref.clone());
            drop(
                h.spawn_with(Placement::StealablePreferred(victim), async move {
                    if ringlane::current_shard() == Some(thief) {
                        t.fetch_add(1, Ordering::Relaxed);
                    }
                    dp.fetch_add(1, Ordering::Release);
                })
                .unwrap(),
            );
        }
        common::join_within(&rt, victim_task, LIMIT, "the victim's task");
        let finished = holds_within(LIMIT, || {
            from_deque.load(Ordering::Acquire) == DEQUE && from_pref.load(Ordering::Acquire) == PREF
        });
        if !finished {
            problems.push(format!("round {round}: not every task ran"));
            break;
        }
        let after = h.shard_stats(thief).unwrap();
        let took = (after.tasks_stolen - before.tasks_stolen)
            + (after.injector_pops - before.injector_pops);
        let ran = on_thief.load(Ordering::Relaxed) as u64;
        if took < ran {
            problems.push(format!(
                "round {round}: thief {thief} ran {ran} tasks taken from shard {victim} but \
                 its counters show {took} taken: {after:?}"
            ));
        }
    }
    stop.store(true, Ordering::Release);
    let (looks, bad) = sampler.join().unwrap();
    assert!(looks > 0);
    assert!(
        bad.is_empty(),
        "inconsistent snapshots (more successes than attempts, or wake-ups than parks): {bad:#?}"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    for s in 0..2 {
        let st = h.shard_stats(s).unwrap();
        assert!(
            st.steals_succeeded >= 1
                && st.steals_attempted >= st.steals_succeeded
                && st.tasks_stolen >= st.steals_succeeded,
            "shard {s}: {st:?}"
        );
    }
}
