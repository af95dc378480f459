//! Task outputs and aborts: a task that aborts itself mid-poll ends at its
//! next yield, and outputs are dropped exactly once, on the right thread,
//! in every order of finish, abort, handle drop and shutdown.

mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::Mutex;

use ringlane::JoinHandle;
use ringlane::time::timeout;

use common::lifecycle::{shard_thread, within};
use common::task_logs::*;
use common::{LIMIT, join_within, wait_until};

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
