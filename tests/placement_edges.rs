//! Placement and request/response at their edges: a `call_on` queued behind a
//! blocked shard can be timed out or aborted and otherwise runs once;
//! `call_on` closures see their shard and may spawn and call again without
//! deadlock; round-robin stays exact and sticky keys agree across threads
//! and handle clones; `ShardStats` after each kind of spawn count on the
//! serving shard only.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ringlane::{Handle, JoinHandle, Placement, ShardStats};

use common::LIMIT;

/// The longest a blocking task spins, whatever happens to the test.
const HOLD_CAP: Duration = Duration::from_secs(4);

/// A pinned task that holds its shard in one long poll (no yielding) until
/// released, or for [`HOLD_CAP`] at most. Dropping it releases the shard.
struct Hold {
    release: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl Hold {
    fn new(h: &Handle, shard: usize) -> Hold {
        let release = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let (r, s) = (release.clone(), started.clone());
        let join = h
            .spawn_pinned(shard, async move {
                s.store(true, Ordering::SeqCst);
                let cap = Instant::now() + HOLD_CAP;
                while !r.load(Ordering::Acquire) && Instant::now() < cap {
                    std::hint::spin_loop();
                }
            })
            .expect("spawning a blocker");
        Hold {
            release,
            started,
            join: Some(join),
        }
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    fn wait_started(&self, what: &str) {
        common::wait_until(what, || self.started());
    }

    /// Lets the shard go and waits for the blocking poll to end.
    fn finish(mut self, rt: &ringlane::Runtime) {
        self.release.store(true, Ordering::Release);
        if let Some(j) = self.join.take() {
            common::join_within(rt, j, LIMIT, "a blocker after its release");
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release.store(true, Ordering::Release);
    }
}

fn snapshot(h: &Handle) -> Vec<ShardStats> {
    (0..h.shards()).map(|s| h.shard_stats(s).unwrap()).collect()
}

/// Every shard asleep and its counters unchanged over a few milliseconds.
fn settled(h: &Handle) -> Vec<ShardStats> {
    let deadline = Instant::now() + LIMIT;
    loop {
        for s in 0..h.shards() {
            common::until_parked(h, s);
        }
        let a = snapshot(h);
        std::thread::sleep(Duration::from_millis(3));
        let b = snapshot(h);
        if a == b && b.iter().all(|s| s.parked) {
            return b;
        }
        assert!(Instant::now() < deadline, "the shards never settled: {b:?}");
    }
}

/// Counter differences between two snapshots of one shard.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Delta {
    polled: u64,
    mailbox: u64,
    eventfd: u64,
    msg_ring: u64,
    wakeups: u64,
    parks: u64,
    avoided: u64,
    injector_pops: u64,
    steals_attempted: u64,
    steals_succeeded: u64,
    tasks_stolen: u64,
}

fn delta(a: &ShardStats, b: &ShardStats) -> Delta {
    Delta {
        polled: b.tasks_polled.wrapping_sub(a.tasks_polled),
        mailbox: b.mailbox_received.wrapping_sub(a.mailbox_received),
        eventfd: b.doorbells_eventfd.wrapping_sub(a.doorbells_eventfd),
        msg_ring: b.doorbells_msg_ring.wrapping_sub(a.doorbells_msg_ring),
        wakeups: b.wakeups.wrapping_sub(a.wakeups),
        parks: b.parks.wrapping_sub(a.parks),
        avoided: b.doorbells_avoided.wrapping_sub(a.doorbells_avoided),
        injector_pops: b.injector_pops.wrapping_sub(a.injector_pops),
        steals_attempted: b.steals_attempted.wrapping_sub(a.steals_attempted),
        steals_succeeded: b.steals_succeeded.wrapping_sub(a.steals_succeeded),
        tasks_stolen: b.tasks_stolen.wrapping_sub(a.tasks_stolen),
    }
}

type SpawnKind = Box<dyn Fn(&Handle) -> JoinHandle<Option<usize>>>;

fn kind(f: impl Fn(&Handle) -> JoinHandle<Option<usize>> + 'static) -> SpawnKind {
    Box::new(f)
}

/// With both shards asleep and settled, one spawn of each kind from the test
/// thread; then, once both are asleep again, the counters.
///
/// Expected on the shard that ran the task: one poll, one eventfd doorbell
/// (it was asleep: rung, never "avoided"), at most one wake-up, one mailbox
/// envelope for the mailbox kinds and none for the preferred and injector
/// kinds, one injector pop for the injector kinds, no steal and no MSG_RING.
/// On the other shard: nothing at all (not woken, nothing counted).
/// `StealablePreferred(i)` runs on `i` (both asleep: "starts on i unless it
/// is busy"); two `RoundRobin`s in a row run on different shards.
#[test]
fn shard_stats_after_each_kind_of_spawn_count_on_the_serving_shard_only() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let kinds: Vec<(&str, SpawnKind, u64, u64, Option<usize>)> = vec![
        (
            "Pinned(1)",
            kind(|h: &Handle| {
                h.spawn_with(Placement::Pinned(1), async { ringlane::current_shard() })
                    .unwrap()
            }),
            1,
            0,
            Some(1),
        ),
        (
            "call_on(0)",
            kind(|h: &Handle| h.call_on(0, |_| ringlane::current_shard()).unwrap()),
            1,
            0,
            Some(0),
        ),
        (
            "spawn_local_on(1)",
            kind(|h: &Handle| {
                h.spawn_local_on(1, || async { ringlane::current_shard() })
                    .unwrap()
            }),
            1,
            0,
            Some(1),
        ),
        (
            "RoundRobin (first)",
            kind(|h: &Handle| {
                h.spawn_with(Placement::RoundRobin, async { ringlane::current_shard() })
                    .unwrap()
            }),
            1,
            0,
            None,
        ),
        (
            "RoundRobin (second)",
            kind(|h: &Handle| {
                h.spawn_with(Placement::RoundRobin, async { ringlane::current_shard() })
                    .unwrap()
            }),
            1,
            0,
            None,
        ),
        (
            "Sticky",
            kind(|h: &Handle| {
                h.spawn_with(Placement::sticky(&"tenant-3"), async {
                    ringlane::current_shard()
                })
                .unwrap()
            }),
            1,
            0,
            None,
        ),
        (
            "StealablePreferred(0)",
            kind(|h: &Handle| {
                h.spawn_with(Placement::StealablePreferred(0), async {
                    ringlane::current_shard()
                })
                .unwrap()
            }),
            0,
            0,
            Some(0),
        ),
        (
            "StealablePreferred(1)",
            kind(|h: &Handle| {
                h.spawn_with(Placement::StealablePreferred(1), async {
                    ringlane::current_shard()
                })
                .unwrap()
            }),
            0,
            0,
            Some(1),
        ),
        (
            "Stealable",
            kind(|h: &Handle| {
                h.spawn_with(Placement::Stealable, async { ringlane::current_shard() })
                    .unwrap()
            }),
            0,
            1,
            None,
        ),
        (
            "spawn_stealable",
            kind(|h: &Handle| {
                h.spawn_stealable(async { ringlane::current_shard() })
                    .unwrap()
            }),
            0,
            1,
            None,
        ),
    ];
    let mut problems = Vec::new();
    let mut round_robin = Vec::new();
    for (what, spawn, mailbox, injector, want_shard) in &kinds {
        let before = settled(&h);
        let j = spawn(&h);
        let ran_on = common::join_within(&rt, j, LIMIT, what);
        let after = settled(&h);
        let Some(served) = ran_on else {
            problems.push(format!("{what}: current_shard() was None inside the task"));
            continue;
        };
        if what.starts_with("RoundRobin") {
            round_robin.push(served);
        }
        if let Some(want) = (*want_shard).filter(|&w| w != served) {
            problems.push(format!("{what}: ran on shard {served}, expected {want}"));
        }
        let d = delta(&before[served], &after[served]);
        let expected = Delta {
            polled: 1,
            mailbox: *mailbox,
            eventfd: 1,
            msg_ring: 0,
            wakeups: d.wakeups.min(1), // 0 or 1 (a park that found the work at R4)
            parks: d.parks,            // not pinned down
            avoided: 0,
            injector_pops: *injector,
            steals_attempted: 0,
            steals_succeeded: 0,
            tasks_stolen: 0,
        };
        if d != expected {
            problems.push(format!(
                "{what}: serving shard {served} counted {d:?}, expected {expected:?}"
            ));
        }
        let other = 1 - served;
        let d_other = delta(&before[other], &after[other]);
        if d_other != Delta::default() {
            problems.push(format!(
                "{what}: the other shard {other} counted {d_other:?}, expected nothing"
            ));
        }
    }
    if round_robin.len() == 2 && round_robin[0] == round_robin[1] {
        problems.push(format!(
            "two RoundRobin spawns in a row both ran on shard {}",
            round_robin[0]
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

type Relayed = Arc<Mutex<Vec<(usize, Option<usize>)>>>;

/// Issues a `call_on` to `shard` whose closure logs itself and issues the
/// next one from inside, `left` more times; the last one reports on `done`.
fn relay(h: &Handle, shard: usize, left: usize, log: Relayed, done: mpsc::Sender<()>) {
    let call = h
        .call_on(shard, move |ctx| {
            log.lock().unwrap().push((left, ringlane::current_shard()));
            if left == 0 {
                let _ = done.send(());
            } else {
                relay(ctx.handle(), shard, left - 1, log, done);
            }
        })
        .expect("a relayed call_on");
    drop(call); // detached: the relay reports on `done`
}

/// What a `call_on` closure sees and may do: its `ShardCtx` index,
/// `current_shard()`, `Handle::current()` and thread are its shard's;
/// `spawn_local`, `ringlane::spawn` and nested `call_on`s (same shard and
/// across) work from inside and their handles, returned out of the closure,
/// resolve; and a 501-deep relay of same-shard `call_on`s, each issued from
/// the previous closure, completes in order without deadlock.
#[test]
fn call_on_closures_run_on_their_shard_see_it_and_may_spawn_and_call_on_again_without_deadlock() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let threads: Vec<ThreadId> = (0..2)
        .map(|s| common::lifecycle::shard_thread(&rt, s))
        .collect();
    #[allow(clippy::needless_range_loop)] // `other` is indexed too
    for target in 0..2usize {
        let other = 1 - target;
        let j = h
            .call_on(target, move |ctx| {
                let seen = (
                    ctx.index(),
                    ringlane::current_shard(),
                    ringlane::Handle::current().map(|h| h.shards()),
                    ctx.handle().shards(),
                    std::thread::current().id(),
                );
                let local = ringlane::spawn_local(async { ringlane::current_shard() })
                    .expect("spawn_local inside a call_on closure");
                let stealable = ringlane::spawn(async { 5u32 })
                    .expect("ringlane::spawn inside a call_on closure");
                let same = ctx
                    .handle()
                    .call_on(ctx.index(), |c| (c.index(), ringlane::current_shard()))
                    .expect("a nested call_on on the same shard");
                let across = ctx
                    .handle()
                    .call_on(other, |c| (c.index(), ringlane::current_shard()))
                    .expect("a nested call_on on the other shard");
                (seen, local, stealable, same, across)
            })
            .unwrap();
        let (seen, local, stealable, same, across) =
            common::join_within(&rt, j, LIMIT, "the outer call_on");
        assert_eq!(
            seen,
            (target, Some(target), Some(2), 2, threads[target]),
            "what a call_on closure on shard {target} sees (index, current_shard, \
             Handle::current().shards(), ctx.handle().shards(), thread)"
        );
        assert_eq!(
            common::join_within(&rt, local, LIMIT, "the local child"),
            Some(target)
        );
        assert_eq!(
            common::join_within(&rt, stealable, LIMIT, "the stealable child"),
            5
        );
        assert_eq!(
            common::join_within(&rt, same, LIMIT, "the nested same-shard call"),
            (target, Some(target))
        );
        assert_eq!(
            common::join_within(&rt, across, LIMIT, "the nested cross-shard call"),
            (other, Some(other))
        );
    }

    let log: Relayed = Arc::default();
    let (tx, rx) = mpsc::channel();
    relay(&h, 1, 500, log.clone(), tx);
    rx.recv_timeout(LIMIT)
        .expect("a relay of same-shard call_ons stalled (deadlock or lost wake-up)");
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 501, "relay steps run");
    for (i, &(left, on)) in log.iter().enumerate() {
        assert_eq!(
            (left, on),
            (500 - i, Some(1)),
            "relay step {i} ran out of order or off its shard"
        );
    }
}

/// Shard 0 is blocked. A task on shard 1 gives up on a `call_on(0, ..)`
/// after 50 ms with ringlane's `timeout` (dropping the handle); a second
/// `call_on(0, ..)` is given up on with Tokio's `timeout` from a Tokio
/// runtime and then aborted. Then shard 0 is let go.
///
/// Expected: both timeouts fire while shard 0 is still blocked; the aborted
/// call is not finished before the shard drops it, never runs, and resolves
/// as cancelled; the timed-out call whose handle was dropped still runs,
/// exactly once (Tokio: dropping a `JoinHandle` detaches); a fresh call
/// works; the shutdown afterwards is clean.
#[test]
fn a_call_on_queued_behind_a_blocked_shard_can_be_timed_out_or_aborted_and_otherwise_runs_once() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let hold = Hold::new(&h, 0);
    hold.wait_started("shard 0's blocker");
    let kept_runs = Arc::new(AtomicUsize::new(0));
    let aborted_runs = Arc::new(AtomicUsize::new(0));

    let waiter = {
        let (h1, runs) = (h.clone(), kept_runs.clone());
        h.spawn_pinned(1, async move {
            let call = h1
                .call_on(0, move |c| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    c.index()
                })
                .unwrap();
            ringlane::time::timeout(Duration::from_millis(50), call)
                .await
                .is_err()
        })
        .unwrap()
    };
    let ringlane_timed_out = common::join_within(
        &rt,
        waiter,
        LIMIT,
        "a timeout on a call_on to a blocked shard",
    );

    let aborted = {
        let runs = aborted_runs.clone();
        h.call_on(0, move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap()
    };
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tokio_timed_out, aborted) = tokio_rt.block_on(async move {
        let mut aborted = aborted;
        let r = tokio::time::timeout(Duration::from_millis(50), &mut aborted).await;
        (r.is_err(), aborted)
    });
    aborted.abort();
    let finished_while_blocked = aborted.is_finished();
    let still_blocked = hold.started() && !h.shard_stats(0).unwrap().parked;
    hold.finish(&rt);

    let outcome = rt
        .block_on(ringlane::time::timeout(LIMIT, aborted))
        .expect("an aborted call_on never resolved after its shard was let go");
    common::wait_until("the timed-out call_on runs once its shard is free", || {
        kept_runs.load(Ordering::SeqCst) >= 1
    });
    let fresh = h.call_on(0, |c| c.index()).unwrap();
    assert_eq!(common::join_within(&rt, fresh, LIMIT, "a fresh call_on"), 0);
    let report = rt.shutdown(Duration::from_secs(2));

    assert!(still_blocked, "the test did not keep shard 0 blocked");
    assert!(
        ringlane_timed_out,
        "ringlane's timeout did not give up on a call_on to a blocked shard"
    );
    assert!(
        tokio_timed_out,
        "Tokio's timeout did not give up on a call_on to a blocked shard"
    );
    assert!(
        !finished_while_blocked,
        "an aborted call_on read as finished before its shard dropped it"
    );
    assert!(
        outcome.as_ref().is_err_and(|e| e.is_cancelled()),
        "an aborted call_on resolved as {outcome:?}, expected cancelled"
    );
    assert_eq!(
        aborted_runs.load(Ordering::SeqCst),
        0,
        "an aborted call_on ran its closure"
    );
    assert_eq!(
        kept_runs.load(Ordering::SeqCst),
        1,
        "a timed-out (detached) call_on must run exactly once"
    );
    assert!(report.is_clean(), "shutdown after the calls: {report:?}");
}

/// Four threads, released together, each spawn 150 `RoundRobin` tasks on a
/// three-shard runtime through their own handle clone, interleaved with
/// sticky and preferred spawns. Then every thread spawns `Sticky(k)` and
/// `Placement::sticky(&format!("user-{k}"))` for keys 0..150.
///
/// Expected: exactly 200 `RoundRobin` tasks per shard (a runtime-wide
/// rotation, whoever spawns); every key lands on the same shard from every
/// thread; 600 sequential raw keys spread over the three shards.
#[test]
fn round_robin_stays_exact_and_sticky_keys_agree_across_threads_and_handle_clones() {
    const THREADS: usize = 4;
    const PER: usize = 150;
    let rt = common::runtime(3);
    let h = rt.handle();
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    type Joins = Vec<JoinHandle<Option<usize>>>;
    let spawners: Vec<std::thread::JoinHandle<(Joins, Joins, Joins)>> = (0..THREADS)
        .map(|t| {
            let (h, barrier) = (h.clone(), barrier.clone());
            std::thread::spawn(move || {
                let here = || async { ringlane::current_shard() };
                barrier.wait();
                let mut rr = Vec::new();
                for i in 0..PER {
                    rr.push(h.spawn_with(Placement::RoundRobin, here()).unwrap());
                    if i % 3 == 0 {
                        drop(h.spawn_with(Placement::sticky(&(t, i)), here()).unwrap());
                    }
                    if i % 5 == 0 {
                        drop(
                            h.spawn_with(Placement::StealablePreferred(i % 3), here())
                                .unwrap(),
                        );
                    }
                }
                let raw: Joins = (0..PER as u64)
                    .map(|k| h.spawn_with(Placement::Sticky(k), here()).unwrap())
                    .collect();
                let named: Joins = (0..PER)
                    .map(|k| {
                        h.spawn_with(Placement::sticky(&format!("user-{k}")), here())
                            .unwrap()
                    })
                    .collect();
                (rr, raw, named)
            })
        })
        .collect();
    let results: Vec<(Joins, Joins, Joins)> = spawners
        .into_iter()
        .map(|t| t.join().expect("a spawning thread panicked"))
        .collect();
    let await_all = |joins: Joins, what: &str| -> Vec<usize> {
        joins
            .into_iter()
            .map(|j| {
                common::join_within(&rt, j, LIMIT, what).expect("a placed task runs on a shard")
            })
            .collect()
    };
    let mut rr_counts = [0usize; 3];
    let mut raw_maps: Vec<Vec<usize>> = Vec::new();
    let mut named_maps: Vec<Vec<usize>> = Vec::new();
    for (rr, raw, named) in results {
        for s in await_all(rr, "a RoundRobin task") {
            rr_counts[s] += 1;
        }
        raw_maps.push(await_all(raw, "a raw sticky task"));
        named_maps.push(await_all(named, "a named sticky task"));
    }
    assert_eq!(
        rr_counts,
        [THREADS * PER / 3; 3],
        "RoundRobin from {THREADS} threads at once did not rotate evenly"
    );
    for (t, (raw, named)) in raw_maps.iter().zip(&named_maps).enumerate().skip(1) {
        assert_eq!(
            raw, &raw_maps[0],
            "thread {t} saw raw sticky keys on other shards than thread 0"
        );
        assert_eq!(
            named, &named_maps[0],
            "thread {t} saw named sticky keys on other shards than thread 0"
        );
    }
    // 600 sequential raw keys over three shards (spawned from here).
    let spread: Joins = (0..600u64)
        .map(|k| {
            h.spawn_with(Placement::Sticky(k), async { ringlane::current_shard() })
                .unwrap()
        })
        .collect();
    let spread = await_all(spread, "a spread sticky task");
    // The first PER keys spawned here, through the runtime's own handle,
    // agree with the spawning threads' clones.
    assert_eq!(
        spread[..PER],
        raw_maps[0][..],
        "raw sticky keys moved between the test thread's handle and the threads' clones"
    );
    let mut counts = [0usize; 3];
    for s in spread {
        counts[s] += 1;
    }
    assert!(
        counts.iter().all(|&c| (150..=250).contains(&c)),
        "600 sequential sticky keys spread unevenly over 3 shards: {counts:?}"
    );
}
