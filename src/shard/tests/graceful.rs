//! A graceful shutdown cancels nothing: tasks woken into an exiting
//! shard's queues by its last mailbox calls still run elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{BEFORE_SEAL_CHECK, ready_within};
use crate::{Placement, Runtime};

/// Expected: a stealable task registered on shard 1, woken by a mailbox
/// call that shard 0 runs while it exits gracefully (an op's hand-off does
/// this: op invariant 12), runs to completion; the shutdown reports
/// nothing unfinished.
///
/// Why it may fail: the exiting shard dropped every task its last calls
/// woke into its queues, cancelling a live task before any deadline.
#[test]
fn a_task_woken_by_a_call_during_a_graceful_exit_still_runs() {
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    // Shard 0 is held while the task starts, so it first runs on shard 1
    // and is registered there.
    let hold = Arc::new(AtomicBool::new(true));
    let started = Arc::new(AtomicBool::new(false));
    let (held, start) = (hold.clone(), started.clone());
    let blocker = h
        .spawn_pinned(0, async move {
            start.store(true, Ordering::Release);
            while held.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    // Held before the task is offered to shard 1: an idle shard 0 could
    // take it from shard 1's preferred queue.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "shard 0 never ran its blocker");
        std::thread::yield_now();
    }
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let go = Arc::new(AtomicBool::new(false));
    let first_shard = Arc::new(AtomicUsize::new(usize::MAX));
    let last_shard = Arc::new(AtomicUsize::new(usize::MAX));
    let (s, g, f, l) = (
        slot.clone(),
        go.clone(),
        first_shard.clone(),
        last_shard.clone(),
    );
    let task = h
        .spawn_with(
            Placement::StealablePreferred(1),
            std::future::poll_fn(move |cx| {
                let _ = f.compare_exchange(
                    usize::MAX,
                    crate::current_shard().unwrap_or(usize::MAX - 1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                if g.load(Ordering::Acquire) {
                    l.store(
                        crate::current_shard().unwrap_or(usize::MAX - 1),
                        Ordering::Release,
                    );
                    return Poll::Ready(7);
                }
                *s.lock() = Some(cx.waker().clone());
                Poll::Pending
            }),
        )
        .unwrap();
    while slot.lock().is_none() {
        assert!(Instant::now() < deadline, "the task never ran");
        std::thread::yield_now();
    }
    hold.store(false, Ordering::Release);
    assert_eq!(rt.block_on(blocker).ok(), Some(()));
    assert_eq!(
        first_shard.load(Ordering::Acquire),
        1,
        "registered on shard 1"
    );
    // Shard 0, exiting gracefully (it has no ops), posts itself a call
    // that wakes the task, after its last look at its mailbox. Only at a
    // seal check that finds the gate sealed (one made while deciding to
    // park, or before the gate closed, is not the exit's).
    let posted = Arc::new(AtomicBool::new(false));
    let wake: Box<dyn FnOnce() + Send> = Box::new(move || {
        go.store(true, Ordering::Release);
        if let Some(w) = slot.lock().take() {
            w.wake();
        }
    });
    arm_at_sealed_check(h.shared.clone(), wake, posted.clone());
    let report = rt.shutdown(Duration::from_secs(10));
    assert!(
        posted.load(Ordering::Acquire),
        "shard 0 never reached its seal check"
    );
    assert!(
        report.is_clean(),
        "a graceful shutdown cancelled: {report:?}"
    );
    let outcome =
        ready_within(Duration::from_secs(5), task).expect("the task's handle never resolved");
    assert_eq!(outcome.ok(), Some(7));
    assert_eq!(
        last_shard.load(Ordering::Acquire),
        1,
        "the woken task ran on the exiting shard: the call was not run at its exit"
    );
}

/// Registers a seal-check hook for shard 0 that posts `call` to shard 0's
/// own mailbox once the gate is sealed (and re-registers itself until).
fn arm_at_sealed_check(
    shared: Arc<crate::shard::Shared>,
    call: Box<dyn FnOnce() + Send>,
    posted: Arc<AtomicBool>,
) {
    let id = shared.id;
    BEFORE_SEAL_CHECK.lock().push((
        id,
        0,
        Box::new(move || {
            if shared.injector_gate.is_sealed() {
                shared.remotes[0].call(call);
                posted.store(true, Ordering::Release);
            } else {
                arm_at_sealed_check(shared.clone(), call, posted);
            }
        }),
    ));
}
