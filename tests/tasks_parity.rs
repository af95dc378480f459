//! Task API parity with Tokio: entered runtimes, join handles, `block_on`
//! from shard contexts, panic payloads.
//!
//! - Inside `Runtime::block_on` (and under enter guards, in any drop order),
//!   `Handle::current` and `ringlane::spawn` find the runtime.
//! - Dropping a join handle that registered a waker releases that waker at
//!   once and never wakes it (as Tokio's `JoinHandle` does).
//! - `block_on` from any shard context is a clear `JoinError`, never polls
//!   or leaks its future.
//! - Panic payloads of any type survive `call_on`, local builds, stealable
//!   tasks and Tokio awaiters.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::Waker;
use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::Mutex;

use ringlane::time::timeout;
use ringlane::{JoinError, JoinHandle};

use common::lifecycle::{shard_thread, within};
use common::task_logs::*;
use common::{LIMIT, join_within, wait_until};

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
