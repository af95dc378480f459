//! Task API parity with Tokio: entered runtimes, join handles, aborts,
//! outputs and panics.
//!
//! - Inside `Runtime::block_on`, `Handle::current` and `ringlane::spawn` find
//!   the runtime, as Tokio's do inside its `block_on`.
//! - Dropping a join handle that registered a waker releases that waker at
//!   once and never wakes it (as Tokio's `JoinHandle` does).
//! - `block_on` from any shard context is a clear `JoinError`, never polls
//!   or leaks its future.
//! - A task that aborts itself mid-poll ends at its next yield; outputs are
//!   dropped exactly once, on the right thread, in every order of finish,
//!   abort, handle drop and shutdown; panic payloads of any type survive
//!   `call_on`, local builds, stealable tasks and Tokio awaiters.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Wake, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::Mutex;

use ringlane::time::timeout;
use ringlane::{JoinError, JoinHandle};

use common::lifecycle::{shard_thread, within};
use common::{LIMIT, join_within, wait_until};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Drops logged as (label, dropping thread, `current_shard()` there).
type Log = Arc<Mutex<Vec<(&'static str, ThreadId, Option<usize>)>>>;

/// Logs its label, the thread that dropped it and the shard it was on.
struct Where {
    label: &'static str,
    log: Log,
}

impl Drop for Where {
    fn drop(&mut self) {
        self.log.lock().push((
            self.label,
            std::thread::current().id(),
            ringlane::current_shard(),
        ));
    }
}

fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// Where (thread, shard) the value labelled `label` was dropped, in order.
fn drops_of(log: &Log, label: &str) -> Vec<(ThreadId, Option<usize>)> {
    log.lock()
        .iter()
        .filter(|(l, _, _)| *l == label)
        .map(|(_, t, s)| (*t, *s))
        .collect()
}

/// Polls `jh` once with `waker`; whether it was still pending.
fn poll_once_with<T>(jh: &mut JoinHandle<T>, waker: &Waker) -> bool {
    let mut cx = Context::from_waker(waker);
    Pin::new(jh).poll(&mut cx).is_pending()
}

/// A waker that counts its wake-ups.
struct CountingWaker {
    wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Tokio: inside `rt.block_on(fut)`, `Handle::current()` is `rt`'s handle
/// and `tokio::spawn` spawns onto `rt` (what `#[tokio::main]` code does all
/// the time). ringlane documents `ringlane::spawn` as "the runtime's
/// counterpart of `tokio::spawn`", yet inside `block_on` there is no
/// current handle and the spawn is refused with `NotOnShard`: code ported
/// from `#[tokio::main]` fails at its first spawn.
#[test]
fn handle_current_and_spawn_inside_block_on_reach_the_blocking_runtime_as_in_tokio() {
    let rt = common::runtime(2);
    let (current, spawned) = within(LIMIT, "a block_on that spawns", move || {
        let out = rt.block_on(async {
            let current = ringlane::Handle::current().map(|h| h.shards());
            let spawned: Result<u32, String> = match ringlane::spawn(async { 6 * 7u32 }) {
                Err(e) => Err(format!("ringlane::spawn refused: {e:?}")),
                Ok(j) => match timeout(LIMIT, j).await {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(format!("the spawned task failed: {e}")),
                    Err(_) => Err(format!("the spawned task did not finish in {LIMIT:?}")),
                },
            };
            (current, spawned)
        });
        drop(rt);
        out
    });
    assert_eq!(
        current,
        Some(2),
        "inside Runtime::block_on, Handle::current() must be the runtime being blocked on \
         (tokio::runtime::Handle::current() is, inside tokio's block_on)"
    );
    assert_eq!(
        spawned,
        Ok(42),
        "inside Runtime::block_on, ringlane::spawn (the counterpart of tokio::spawn) must \
         spawn onto the runtime being blocked on"
    );
}

// ---------------------------------------------------------------------------
// 2. A dropped JoinHandle keeps (and later wakes) the waker it registered
// ---------------------------------------------------------------------------

/// A `JoinHandle` of a task that waits behind a gate is polled once with a
/// counting waker (as a Tokio task does in a `select!` or `timeout` it then
/// gives up on), then dropped. Tokio drops the join waker in
/// `JoinHandle::drop` when the task is not complete; the detached task must
/// neither keep that waker alive nor wake it when it finishes later.
/// The bug it pins (fixed): async-task's `detach` leaves the awaiter in the task, so the
/// waker (with the Tokio task allocation, or whatever a custom waker owns)
/// lives as long as the detached task, and is woken spuriously at its end.
#[test]
fn dropping_an_unfinished_join_handle_releases_and_never_wakes_the_waker_it_registered() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let mut jh = h
        .spawn_pinned(0, async move {
            let _ = go_rx.await;
            f.store(true, Ordering::SeqCst);
            1u8
        })
        .unwrap();
    common::until_parked(&h, 0); // polled once, waiting behind its gate
    let probe = Arc::new(CountingWaker {
        wakes: AtomicUsize::new(0),
    });
    {
        let waker = Waker::from(probe.clone());
        assert!(
            poll_once_with(&mut jh, &waker),
            "the task finished behind a closed gate"
        );
    }
    assert!(
        Arc::strong_count(&probe) >= 2,
        "sanity: a pending JoinHandle must keep the waker it was polled with"
    );
    drop(jh);
    let kept_after_drop = Arc::strong_count(&probe) - 1;
    go_tx.send(()).unwrap();
    wait_until("the detached task finishing", || {
        finished.load(Ordering::SeqCst)
    });
    common::until_parked(&h, 0);
    let wakes = probe.wakes.load(Ordering::SeqCst);
    let kept_at_the_end = Arc::strong_count(&probe) - 1;
    let report = within(LIMIT, "shutdown", move || {
        rt.shutdown(Duration::from_secs(1))
    });
    assert_eq!(
        kept_after_drop, 0,
        "dropping an unfinished JoinHandle must release the waker it registered (Tokio's \
         JoinHandle::drop drops its join waker): the detached task kept {kept_after_drop} \
         clone(s) of it"
    );
    assert_eq!(
        wakes, 0,
        "the waker of a JoinHandle dropped earlier was woken when the detached task finished"
    );
    assert_eq!(kept_at_the_end, 0);
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 3. An awaiter's waker that panics
// ---------------------------------------------------------------------------

/// A future that counts its polls and logs where it is dropped.
fn probe(
    label: &'static str,
    log: &Log,
    polls: &Arc<AtomicUsize>,
) -> impl Future<Output = u8> + Send + 'static {
    let rec = Where {
        label,
        log: log.clone(),
    };
    let polls = polls.clone();
    async move {
        polls.fetch_add(1, Ordering::SeqCst);
        drop(rec);
        0u8
    }
}

/// Calls `block_on` from its destructor.
struct BlockOnInDrop {
    rt: Arc<ringlane::Runtime>,
    fut: Option<Pin<Box<dyn Future<Output = u8> + Send>>>,
}

impl Drop for BlockOnInDrop {
    fn drop(&mut self) {
        if let Some(f) = self.fut.take() {
            let _ = self.rt.block_on(f);
        }
    }
}

/// `j` resolves (within the limit) to a panic `JoinError` that says
/// `block_on` was the problem.
fn refused(rt: &ringlane::Runtime, j: JoinHandle<u8>, what: &str) {
    let r = rt
        .block_on(timeout(LIMIT, j))
        .unwrap_or_else(|_| panic!("{what}: Runtime::block_on on a shard hung instead of failing"));
    match r {
        Ok(v) => panic!("{what}: Runtime::block_on ran on a shard and returned {v}"),
        Err(e) => {
            assert!(
                e.is_panic(),
                "{what}: expected a panic JoinError, got {e:?}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains("block_on"),
                "{what}: the error does not say what went wrong: {msg}"
            );
        }
    }
}

#[test]
fn block_on_from_any_shard_context_is_a_clear_join_error_and_never_polls_or_leaks_its_future() {
    let rt = Arc::new(common::runtime(2));
    let other = Arc::new(common::runtime(1));
    let h = rt.handle();
    let shard1 = shard_thread(&rt, 1);
    let log = new_log();
    let polls = Arc::new(AtomicUsize::new(0));

    // 1. A pinned task.
    let (r, f) = (rt.clone(), probe("pinned", &log, &polls));
    let j = h.spawn_pinned(1, async move { r.block_on(f) }).unwrap();
    refused(&rt, j, "a pinned task");

    // 2. A call_on closure.
    let (r, f) = (rt.clone(), probe("call_on", &log, &polls));
    let j = h.call_on(1, move |_| r.block_on(f)).unwrap();
    refused(&rt, j, "a call_on closure");

    // 3. A local task, blocking on another runtime.
    let (o, f) = (other.clone(), probe("local, other runtime", &log, &polls));
    let j = h
        .spawn_local_on(1, move || async move {
            let _not_send = Rc::new(());
            o.block_on(f)
        })
        .unwrap();
    refused(&rt, j, "a local task blocking on another runtime");

    // 4. A stealable task.
    let (r, f) = (rt.clone(), probe("stealable", &log, &polls));
    let j = h.spawn_stealable(async move { r.block_on(f) }).unwrap();
    refused(&rt, j, "a stealable task");

    // 5. The destructor of an aborted task.
    let boxed: Pin<Box<dyn Future<Output = u8> + Send>> =
        Box::pin(probe("abort destructor", &log, &polls));
    let guard = BlockOnInDrop {
        rt: rt.clone(),
        fut: Some(boxed),
    };
    let (started_tx, started) = mpsc::channel::<()>();
    let j = h
        .spawn_pinned(1, async move {
            let _g = guard;
            let _ = started_tx.send(());
            std::future::pending::<u8>().await
        })
        .unwrap();
    started.recv_timeout(LIMIT).expect("the task never ran");
    j.abort();
    let r = rt
        .block_on(timeout(LIMIT, j))
        .expect("a task whose destructor calls block_on never resolved after abort");
    assert!(r.is_err(), "an aborted task produced an output");

    wait_until("every probe being dropped", || log.lock().len() >= 5);
    assert_eq!(
        polls.load(Ordering::SeqCst),
        0,
        "a future handed to Runtime::block_on on a shard was polled there"
    );
    let entries = log.lock().clone();
    for label in [
        "pinned",
        "call_on",
        "local, other runtime",
        "stealable",
        "abort destructor",
    ] {
        let d = drops_of(&log, label);
        assert_eq!(
            d.len(),
            1,
            "the {label} probe was dropped {} times: {entries:?}",
            d.len()
        );
        if label == "stealable" {
            assert!(
                d[0].1.is_some(),
                "the stealable probe was dropped off the shards"
            );
        } else {
            assert_eq!(d[0].0, shard1, "the {label} probe was dropped off shard 1");
        }
    }
    for s in 0..2usize {
        let j = h.spawn_pinned(s, async move { s * 10 }).unwrap();
        assert_eq!(
            join_within(&rt, j, LIMIT, "a shard after refusing block_on"),
            s * 10
        );
    }
    within(LIMIT, "dropping both runtimes", move || {
        drop(other);
        drop(rt);
    });
}

// ---------------------------------------------------------------------------
// 6. Self-abort
// ---------------------------------------------------------------------------

/// A task's own `JoinHandle`, handed to it by the test.
type Slot<T> = Arc<Mutex<Option<JoinHandle<T>>>>;

fn new_slot<T>() -> Slot<T> {
    Arc::new(Mutex::new(None))
}

/// Aborts the task whose handle is in `slot` (the caller itself).
fn abort_own<T>(slot: &Mutex<Option<JoinHandle<T>>>) {
    if let Some(me) = slot.lock().as_ref() {
        me.abort();
    }
}

/// Takes the handle out of `slot` once it reads as finished.
fn take_when_finished<T>(slot: &Mutex<Option<JoinHandle<T>>>, what: &str) -> JoinHandle<T> {
    wait_until(what, || {
        slot.lock().as_ref().is_some_and(|j| j.is_finished())
    });
    slot.lock().take().unwrap()
}

/// A task aborts itself in the middle of its poll (Tokio: the abort takes
/// effect when the poll returns `Pending`; a poll that returns `Ready`
/// keeps its output). Pinned, local (waiting on a Tokio channel after the
/// abort) and stealable tasks must never run past their next yield, must be
/// dropped exactly once on their shard, and their handles must resolve as
/// cancelled; a task completing in the poll that aborted it keeps its
/// output; a task that aborts itself and then awaits its own handle must not
/// hang, and is dropped once.
#[test]
fn a_task_that_aborts_itself_mid_poll_ends_at_its_next_yield_and_is_dropped_once_on_its_shard() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let shard1 = shard_thread(&rt, 1);
    let me = std::thread::current().id();
    let log = new_log();
    let resumed = Arc::new(AtomicUsize::new(0));

    // a) Pinned, then yield_now.
    let slot: Slot<u32> = new_slot();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (s, r, l) = (slot.clone(), resumed.clone(), log.clone());
    let jh = h
        .spawn_pinned(1, async move {
            let _held = Where {
                label: "pinned",
                log: l,
            };
            let _ = go_rx.await;
            abort_own(&s);
            ringlane::yield_now().await;
            r.fetch_add(1, Ordering::SeqCst);
            1u32
        })
        .unwrap();
    *slot.lock() = Some(jh);
    go_tx.send(()).unwrap();
    let jh = take_when_finished(&slot, "the self-aborted pinned task finishing");
    let r = rt.block_on(timeout(LIMIT, jh)).expect("never resolved");
    assert!(r.unwrap_err().is_cancelled(), "a self-aborted pinned task");

    // b) Local, then a Tokio channel that never fires.
    let slot: Slot<u32> = new_slot();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (_never_tx, never_rx) = tokio::sync::oneshot::channel::<()>();
    let (s, r, l) = (slot.clone(), resumed.clone(), log.clone());
    let jh = h
        .spawn_local_on(1, move || async move {
            let _held = Rc::new(Where {
                label: "local",
                log: l,
            });
            let _ = go_rx.await;
            abort_own(&s);
            let _ = never_rx.await;
            r.fetch_add(1, Ordering::SeqCst);
            2u32
        })
        .unwrap();
    *slot.lock() = Some(jh);
    go_tx.send(()).unwrap();
    let jh = take_when_finished(&slot, "the self-aborted local task finishing");
    let r = rt.block_on(timeout(LIMIT, jh)).expect("never resolved");
    assert!(r.unwrap_err().is_cancelled(), "a self-aborted local task");

    // c) Stealable, then yield_now.
    let slot: Slot<u32> = new_slot();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (s, r, l) = (slot.clone(), resumed.clone(), log.clone());
    let jh = h
        .spawn_stealable(async move {
            let _held = Where {
                label: "stealable",
                log: l,
            };
            let _ = go_rx.await;
            abort_own(&s);
            ringlane::yield_now().await;
            r.fetch_add(1, Ordering::SeqCst);
            3u32
        })
        .unwrap();
    *slot.lock() = Some(jh);
    go_tx.send(()).unwrap();
    let jh = take_when_finished(&slot, "the self-aborted stealable task finishing");
    let r = rt.block_on(timeout(LIMIT, jh)).expect("never resolved");
    assert!(
        r.unwrap_err().is_cancelled(),
        "a self-aborted stealable task"
    );

    // d) Pinned, completing in the poll that aborted it: the output is kept.
    let slot: Slot<Where> = new_slot();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (s, l) = (slot.clone(), log.clone());
    let jh = h
        .spawn_pinned(1, async move {
            let _ = go_rx.await;
            abort_own(&s);
            Where {
                label: "output",
                log: l,
            }
        })
        .unwrap();
    *slot.lock() = Some(jh);
    go_tx.send(()).unwrap();
    let jh = take_when_finished(&slot, "the task completing after aborting itself");
    let out = rt
        .block_on(timeout(LIMIT, jh))
        .expect("never resolved")
        .expect("a task that completes in the very poll that aborted it keeps its output (Tokio)");
    assert!(
        drops_of(&log, "output").is_empty(),
        "the kept output was dropped early"
    );
    drop(out);
    assert_eq!(drops_of(&log, "output"), vec![(me, None)]);

    // e) Pinned, aborting itself then awaiting its own handle.
    let slot: Slot<()> = new_slot();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (s, r, l) = (slot.clone(), resumed.clone(), log.clone());
    let jh = h
        .spawn_pinned(1, async move {
            let _held = Where {
                label: "own-await",
                log: l,
            };
            let _ = go_rx.await;
            let mine = s.lock().take();
            if let Some(mine) = mine {
                mine.abort();
                let _ = mine.await;
            }
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    *slot.lock() = Some(jh);
    go_tx.send(()).unwrap();
    wait_until(
        "the task awaiting its own aborted handle being dropped",
        || !drops_of(&log, "own-await").is_empty(),
    );

    assert_eq!(
        resumed.load(Ordering::SeqCst),
        0,
        "a self-aborted task ran past its next yield"
    );
    let entries = log.lock().clone();
    for label in ["pinned", "local", "stealable", "own-await"] {
        let d = drops_of(&log, label);
        assert_eq!(
            d.len(),
            1,
            "the {label} task's future was dropped {} times: {entries:?}",
            d.len()
        );
        if label == "stealable" {
            assert!(
                d[0].1.is_some(),
                "the stealable task was dropped off the shards"
            );
        } else {
            assert_eq!(d[0].0, shard1, "the {label} task was dropped off its shard");
        }
    }
    let j = h.spawn_pinned(1, async { 9u8 }).unwrap();
    assert_eq!(
        join_within(&rt, j, LIMIT, "shard 1 after the self-aborts"),
        9
    );
    let report = within(LIMIT, "shutdown", move || {
        rt.shutdown(Duration::from_secs(1))
    });
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------
// 7. Output drops in every order
// ---------------------------------------------------------------------------

/// Outputs with a drop side effect, in orders the existing tests leave out.
/// Tokio's rules: an output belongs to its `JoinHandle` once the task is
/// complete (an abort then changes nothing), and is dropped exactly once,
/// by whoever drops the handle, or by the runtime for a detached task.
#[test]
fn outputs_are_dropped_exactly_once_in_every_order_of_finish_abort_drop_and_shutdown() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let shard1 = shard_thread(&rt, 1);
    let shards = [shard_thread(&rt, 0), shard1];
    let me = std::thread::current().id();
    let log = new_log();
    let out = |label: &'static str| {
        let l = log.clone();
        async move { Where { label, log: l } }
    };

    // a) Finished, then aborted, then dropped here.
    let a = h.spawn_pinned(1, out("a")).unwrap();
    wait_until("a finishing", || a.is_finished());
    a.abort();
    common::until_parked(&h, 1);
    assert!(
        drops_of(&log, "a").is_empty(),
        "aborting a finished task dropped its output, which belongs to the JoinHandle"
    );
    drop(a);
    assert_eq!(
        drops_of(&log, "a"),
        vec![(me, None)],
        "a: aborted after finishing"
    );

    // b) Finished, aborted, kept across the runtime's shutdown, awaited after.
    let b = h.spawn_pinned(0, out("b")).unwrap();
    wait_until("b finishing", || b.is_finished());
    b.abort();

    // c) Finished; its handle held by a pending task that shutdown cancels.
    let c = h.spawn_pinned(0, out("c")).unwrap();
    wait_until("c finishing", || c.is_finished());
    let holding = Arc::new(AtomicBool::new(false));
    let hl = holding.clone();
    drop(
        h.spawn_pinned(1, async move {
            let _c = c;
            hl.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await
        })
        .unwrap(),
    );
    wait_until("the holder of c running", || holding.load(Ordering::SeqCst));

    // d) Finished; its handle inside the output of a task detached before it
    //    finished: both outputs are dropped by that task's shard.
    let d = h.spawn_pinned(0, out("d")).unwrap();
    wait_until("d finishing", || d.is_finished());
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let l = log.clone();
    drop(
        h.spawn_pinned(1, async move {
            let _ = gate_rx.await;
            (
                d,
                Where {
                    label: "d-outer",
                    log: l,
                },
            )
        })
        .unwrap(),
    );
    gate_tx.send(()).unwrap();
    wait_until("d and its holder being dropped", || {
        !drops_of(&log, "d").is_empty() && !drops_of(&log, "d-outer").is_empty()
    });
    assert_eq!(drops_of(&log, "d-outer"), vec![(shard1, Some(1))]);
    assert_eq!(
        drops_of(&log, "d"),
        vec![(shard1, Some(1))],
        "d: a finished task's output inside a detached output"
    );

    // e) Finished; its handle dropped on a Tokio worker.
    let e = h.spawn_pinned(0, out("e")).unwrap();
    wait_until("e finishing", || e.is_finished());
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let worker = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            drop(e);
            std::thread::current().id()
        })
        .await
        .unwrap()
    });
    drop(tokio_rt);
    assert_eq!(
        drops_of(&log, "e"),
        vec![(worker, None)],
        "e: dropped on a Tokio worker"
    );

    // f) A stealable task detached before it finished.
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let l = log.clone();
    drop(
        h.spawn_stealable(async move {
            let _ = gate_rx.await;
            Where { label: "f", log: l }
        })
        .unwrap(),
    );
    gate_tx.send(()).unwrap();
    wait_until("f being dropped", || !drops_of(&log, "f").is_empty());
    let f = drops_of(&log, "f");
    assert_eq!(f.len(), 1, "f: {f:?}");
    assert!(
        f[0].1.is_some() && shards.contains(&f[0].0),
        "f: a detached stealable task's output was dropped off the shards: {f:?}"
    );

    // The runtime goes; c's holder is cancelled on shard 1; b is kept.
    within(Duration::from_secs(20), "runtime drop", move || drop(rt));
    assert_eq!(
        drops_of(&log, "c"),
        vec![(shard1, Some(1))],
        "c: a finished task's output whose handle a cancelled task held"
    );
    assert!(
        drops_of(&log, "b").is_empty(),
        "b: the shutdown dropped an output its JoinHandle still held"
    );
    let b_out = common::block_on(timeout(LIMIT, b))
        .expect("b never resolved")
        .expect("b: finished before abort and shutdown, it must still give its output");
    assert!(drops_of(&log, "b").is_empty());
    drop(b_out);
    assert_eq!(drops_of(&log, "b"), vec![(me, None)]);

    let entries = log.lock().clone();
    for label in ["a", "b", "c", "d", "d-outer", "e", "f"] {
        assert_eq!(
            drops_of(&log, label).len(),
            1,
            "the {label} output was not dropped exactly once: {entries:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 8. Handles dropped and aborted while their tasks complete
// ---------------------------------------------------------------------------

/// An output that counts its drops, and drops made off the shards by any
/// thread but the test's.
struct Counted {
    id: usize,
    drops: Arc<Vec<AtomicUsize>>,
    test_thread: ThreadId,
    strays: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if ringlane::current_shard().is_none() && std::thread::current().id() != self.test_thread {
            self.strays.fetch_add(1, Ordering::SeqCst);
        }
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn join_handles_dropped_or_aborted_while_their_tasks_complete_drop_each_output_exactly_once() {
    const N: usize = 2000;
    let rt = common::runtime(2);
    let h = rt.handle();
    let me = std::thread::current().id();
    let made: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let drops: Arc<Vec<AtomicUsize>> = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
    let strays = Arc::new(AtomicUsize::new(0));
    let mut kept = Vec::new();
    let mut cancelled = Vec::new();
    for i in 0..N {
        let (m, d, s) = (made.clone(), drops.clone(), strays.clone());
        let jh = h
            .spawn_pinned(i % 2, async move {
                if i % 3 == 0 {
                    ringlane::yield_now().await;
                }
                m[i].fetch_add(1, Ordering::SeqCst);
                Counted {
                    id: i,
                    drops: d,
                    test_thread: me,
                    strays: s,
                }
            })
            .unwrap();
        // Stagger the drop against the task's completion on its shard.
        for _ in 0..(i * 7919) % 3000 {
            std::hint::spin_loop();
        }
        match i % 4 {
            0 => drop(jh),
            1 => {
                jh.abort();
                drop(jh);
            }
            2 => {
                jh.abort();
                match rt.block_on(timeout(LIMIT, jh)) {
                    Err(_) => panic!("task {i}: aborted, it never resolved"),
                    Ok(Ok(out)) => drop(out),
                    Ok(Err(e)) => {
                        assert!(e.is_cancelled(), "task {i}: {e}");
                        cancelled.push(i);
                    }
                }
            }
            _ => kept.push(jh),
        }
    }
    wait_until("every kept task finishing", || {
        kept.iter().all(|j| j.is_finished())
    });
    // Detached (not aborted) tasks keep running to completion.
    wait_until("every detached task finishing", || {
        (0..N)
            .filter(|i| i % 4 == 0)
            .all(|i| made[i].load(Ordering::SeqCst) == 1)
    });
    drop(kept);
    wait_until("every output made being dropped", || {
        (0..N).all(|i| drops[i].load(Ordering::SeqCst) == made[i].load(Ordering::SeqCst))
    });
    within(LIMIT, "runtime drop", move || drop(rt));
    for i in 0..N {
        let (m, d) = (
            made[i].load(Ordering::SeqCst),
            drops[i].load(Ordering::SeqCst),
        );
        assert!(m <= 1, "task {i} ran to completion {m} times");
        assert_eq!(d, m, "task {i}: {m} output(s) made, {d} dropped");
        if i % 4 == 0 || i % 4 == 3 {
            assert_eq!(
                m, 1,
                "task {i}: a task kept or detached (not aborted) never finished"
            );
        }
    }
    for &i in &cancelled {
        assert_eq!(
            made[i].load(Ordering::SeqCst),
            0,
            "task {i}: its handle said cancelled, yet it produced an output"
        );
    }
    assert_eq!(
        strays.load(Ordering::SeqCst),
        0,
        "outputs were dropped on a thread that is neither a shard nor the handle's owner"
    );
}

// ---------------------------------------------------------------------------
// 9. Non-string panic payloads
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Code(u16);

/// A panic payload that logs the thread that dropped it.
struct LoggedPayload(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for LoggedPayload {
    fn drop(&mut self) {
        self.0.lock().push(std::thread::current().id());
    }
}

fn join_error<T: Send + 'static>(
    rt: &ringlane::Runtime,
    j: JoinHandle<T>,
    what: &str,
) -> JoinError {
    match rt.block_on(timeout(LIMIT, j)) {
        Err(_) => panic!("{what}: never resolved"),
        Ok(Ok(_)) => panic!("{what}: the task did not panic"),
        Ok(Err(e)) => e,
    }
}

#[test]
fn non_string_panic_payloads_survive_call_on_local_builds_stealables_and_tokio() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let shard1 = shard_thread(&rt, 1);

    // A struct payload from a call_on closure.
    let j = h
        .call_on(1, |_| -> u8 { std::panic::panic_any(Code(503)) })
        .unwrap();
    let e = join_error(&rt, j, "call_on");
    assert!(e.is_panic() && !e.is_cancelled());
    let shown = (e.to_string(), format!("{e:?}"));
    assert!(shown.0.contains("panicked"), "{shown:?}");
    assert_eq!(*e.into_panic().downcast::<Code>().unwrap(), Code(503));

    // resume_unwind (no panic hook) of a Vec from a local task's build closure.
    let j = h
        .spawn_local_on(1, || -> std::future::Ready<u8> {
            std::panic::resume_unwind(Box::new(vec![1u8, 2, 3]))
        })
        .unwrap();
    let e = join_error(&rt, j, "spawn_local_on build");
    assert!(e.is_panic(), "{e:?}");
    assert_eq!(
        *e.into_panic().downcast::<Vec<u8>>().unwrap(),
        vec![1u8, 2, 3]
    );

    // A unit payload from a stealable task, inspected from another thread.
    let j = h
        .spawn_stealable(async {
            std::panic::panic_any(());
        })
        .unwrap();
    let e: JoinError = join_error(&rt, j, "stealable");
    let unit = std::thread::spawn(move || {
        let shown = e.to_string();
        (
            shown,
            e.try_into_panic().map(|p| p.is::<()>()).unwrap_or(false),
        )
    })
    .join()
    .unwrap();
    assert!(unit.1, "the () payload was lost: {}", unit.0);

    // An owned String message, awaited in a Tokio task.
    let j = h
        .spawn_pinned(0, async {
            std::panic::panic_any(String::from("an owned message (expected)"));
        })
        .unwrap();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (shown, payload) = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            let e = tokio::time::timeout(LIMIT, j)
                .await
                .expect("never resolved in Tokio")
                .expect_err("the task panicked");
            let shown = e.to_string();
            (
                shown,
                e.try_into_panic()
                    .ok()
                    .and_then(|p| p.downcast::<String>().ok()),
            )
        })
        .await
        .unwrap()
    });
    assert!(shown.contains("an owned message"), "{shown}");
    assert_eq!(
        payload.as_deref().map(String::as_str),
        Some("an owned message (expected)")
    );

    // A detached task's payload with a drop side effect: dropped once, by its shard.
    let dropped: Arc<Mutex<Vec<ThreadId>>> = Arc::new(Mutex::new(Vec::new()));
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let d = dropped.clone();
    drop(
        h.spawn_pinned(1, async move {
            let _ = gate_rx.await;
            std::panic::panic_any(LoggedPayload(d));
        })
        .unwrap(),
    );
    gate_tx.send(()).unwrap();
    wait_until("the detached task's payload being dropped", || {
        !dropped.lock().is_empty()
    });
    common::until_parked(&h, 1);
    assert_eq!(dropped.lock().clone(), vec![shard1]);

    // The same, awaited: the payload is the caller's, dropped once by it.
    let d = dropped.clone();
    let j = h
        .spawn_pinned(1, async move {
            std::panic::panic_any(LoggedPayload(d));
        })
        .unwrap();
    let e = join_error(&rt, j, "a logged payload");
    assert_eq!(
        dropped.lock().len(),
        1,
        "the awaited payload was dropped early"
    );
    drop(e);
    assert_eq!(
        dropped.lock().clone(),
        vec![shard1, std::thread::current().id()]
    );

    let j = h.spawn_pinned(1, async { 1u8 }).unwrap();
    assert_eq!(join_within(&rt, j, LIMIT, "shard 1 after the panics"), 1);
}

/// `Runtime::enter` and `Handle::enter` make `Handle::current` and
/// `ringlane::spawn` find the runtime until the guard drops; nested guards
/// (two runtimes) restore the one entered before; `block_on` restores what
/// was entered around it; a shard's own runtime wins over an entered one.
#[test]
fn entered_runtimes_nest_and_restore_what_was_entered_before() {
    // Told apart by their shard counts.
    let (a, b) = (common::runtime(1), common::runtime(2));
    let is = |rt: &ringlane::Runtime| {
        ringlane::Handle::current().is_some_and(|h| h.shards() == rt.handle().shards())
    };
    assert!(ringlane::Handle::current().is_none());
    assert!(ringlane::spawn(async {}).is_err(), "nothing entered yet");
    let outer = a.enter();
    assert!(is(&a));
    let on_a = ringlane::spawn(async { ringlane::current_shard() }).unwrap();
    {
        let inner = b.handle();
        let _inner = inner.enter();
        assert!(is(&b));
        // block_on of `a` enters `a`, then gives `b` back.
        let seen_inside = a.block_on(async { ringlane::Handle::current().is_some() });
        assert!(seen_inside);
        assert!(
            is(&b),
            "block_on did not restore the runtime entered around it"
        );
    }
    assert!(is(&a), "the inner guard did not restore the outer runtime");
    // On a shard, the shard's runtime is current whatever this thread entered.
    let from_b = b
        .handle()
        .spawn_pinned(0, async { ringlane::Handle::current().map(|h| h.shards()) })
        .unwrap();
    assert_eq!(a.block_on(from_b).unwrap(), Some(2));
    drop(outer);
    assert!(ringlane::Handle::current().is_none());
    assert!(ringlane::spawn(async {}).is_err(), "the guard is gone");
    // A guard made inside `block_on` outlives it (dropped out of order):
    // `b` stays current while the guard lives, nothing after it.
    let hb = b.handle();
    let kept = a.block_on(async { hb.enter() });
    assert!(is(&b), "the guard made inside block_on was lost");
    drop(kept);
    assert!(
        ringlane::Handle::current().is_none(),
        "a runtime stayed entered after every guard was dropped"
    );
    assert_eq!(
        a.block_on(on_a).unwrap(),
        Some(0),
        "a stealable task ran on a's shard"
    );
}
