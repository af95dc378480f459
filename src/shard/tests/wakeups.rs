//! Wake-ups: doorbells that must go out although the kernel or the loop
//! held them back, and a foreign wake racing the end of its runtime.

use super::*;

/// How a test makes the kernel hold back the next doorbell sent from a
/// shard thread: a fake `EAGAIN` submit (the MSG_RING stays in the SQ), a
/// MSG_RING the kernel refuses on the spot (its failure CQE lands in the
/// sender's CQ), or one refused while the sender's CQ is full (the failure
/// waits in the kernel's overflow list).
#[derive(Clone, Copy, Debug)]
enum HeldBack {
    Eagain,
    Refused,
    RefusedBehindAFullCq,
}

impl HeldBack {
    fn arm(self) {
        match self {
            HeldBack::Eagain => crate::sys::FAKE_EAGAIN.with(|f| f.set(true)),
            HeldBack::Refused => refuse_the_next_doorbell(),
            HeldBack::RefusedBehindAFullCq => {
                overflow_the_cq();
                refuse_the_next_doorbell();
            }
        }
    }

    /// Whether the armed fake was met (each is used up when met).
    fn met(self) -> bool {
        !match self {
            HeldBack::Eagain => crate::sys::FAKE_EAGAIN.with(std::cell::Cell::get),
            HeldBack::Refused | HeldBack::RefusedBehindAFullCq => {
                crate::sys::user_data::FAKE_REFUSED_DOORBELL.with(std::cell::Cell::get)
            }
        }
    }
}

fn refuse_the_next_doorbell() {
    crate::sys::user_data::FAKE_REFUSED_DOORBELL.with(|f| f.set(true));
}

/// Fills this shard's CQ with NOP completions until the kernel keeps
/// further ones in its overflow list (the shard reaps them later: tagged as
/// the runtime's own cancels, they mean nothing to it).
fn overflow_the_cq() {
    context::with_current(|cx| {
        let mut ring = cx.ring.borrow_mut();
        let nop = io_uring::opcode::Nop::new()
            .build()
            .user_data(crate::sys::user_data::CANCEL);
        for _ in 0..100_000 {
            if ring.cq_overflowed() {
                return;
            }
            // SAFETY: a NOP points at no memory.
            let _ = unsafe { ring.push(&nop) };
            let _ = ring.submit();
        }
        panic!("the CQ never overflowed");
    })
    .expect("on a shard");
}

/// A stealable push wakes a parked shard at once (`ring_doorbell_now`),
/// because the pusher may block next, as it does here. Returns whether the
/// fake was met and how many of the pushed tasks ran while it blocked.
fn stealable_push_then_block(held_back: HeldBack) -> (bool, usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    assert!(wait_parked(&h, 1), "shard 1 never parked");
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let pusher = h
        .spawn_pinned(0, async move {
            held_back.arm();
            // The second push leaves two tasks in the deque: shard 1 is
            // rung at once.
            for _ in 0..2 {
                let d = d.clone();
                drop(crate::spawn(async move {
                    d.fetch_add(1, SeqCst);
                }));
            }
            let met = held_back.met();
            // Blocked: only shard 1 can run them.
            let t = Instant::now();
            while d.load(SeqCst) < 2 && t.elapsed() < Duration::from_secs(5) {
                std::hint::spin_loop();
            }
            (met, d.load(SeqCst))
        })
        .unwrap();
    let result = ready_within(Duration::from_secs(10), pusher)
        .expect("the pusher never finished")
        .unwrap();
    drop(rt);
    assert_eq!(
        done.load(SeqCst),
        2,
        "{held_back:?}: a pushed task never ran"
    );
    result
}

/// A submit the kernel answered with `EAGAIN` (nothing submitted) used to
/// count as sent: the MSG_RING stayed in the blocked pusher's SQ and the
/// parked shard slept. It now falls back to the eventfd.
#[test]
fn an_immediate_doorbell_the_kernel_did_not_take_falls_back_to_the_eventfd() {
    let (met, ran) = stealable_push_then_block(HeldBack::Eagain);
    assert!(
        met,
        "the immediate doorbell's submit never met the fake EAGAIN"
    );
    assert_eq!(
        ran, 2,
        "the parked shard slept through a doorbell left in the SQ"
    );
}

/// A MSG_RING the kernel refuses at submission (`-ENOMEM` for a
/// `DEFER_TASKRUN` target under memory pressure, `-EOVERFLOW`; here
/// `-EBADF`) leaves the SQ empty, so the submit counted it as sent, and its
/// failure CQE waited in the blocked pusher's CQ: the parked shard, claimed
/// and so rung by nobody else, slept until the pusher's poll ended. The
/// CQ is now looked at right after the submit, and the refused doorbell
/// falls back to the eventfd at once.
#[test]
fn an_immediate_doorbell_the_kernel_refused_falls_back_to_the_eventfd() {
    let (met, ran) = stealable_push_then_block(HeldBack::Refused);
    assert!(met, "no doorbell was built to be refused");
    assert_eq!(
        ran, 2,
        "the parked shard slept through a doorbell refused at submission"
    );
}

/// As above with the pusher's CQ full: the failure CQE waits in the
/// kernel's overflow list, where looking at the CQ does not find it, and
/// only an enter would move it in. The pusher's claims are rung whenever
/// the CQ has overflowed.
#[test]
fn an_immediate_doorbell_refused_behind_a_full_cq_falls_back_to_the_eventfd() {
    let (met, ran) = stealable_push_then_block(HeldBack::RefusedBehindAFullCq);
    assert!(met, "no doorbell was built to be refused");
    assert_eq!(
        ran, 2,
        "the parked shard slept through a doorbell refused into the overflow list"
    );
}

/// A task owes a parked shard a doorbell (a spawn there) and sends it with
/// a channel's `flush`, then blocks its own shard. Returns whether the fake
/// was met and whether the spawned task ran while the sender blocked.
fn flushed_doorbell_then_block(held_back: HeldBack) -> (bool, bool) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    assert!(wait_parked(&h, 1), "shard 1 never parked");
    let ran = Arc::new(AtomicBool::new(false));
    let (r, spawner) = (ran.clone(), h.clone());
    let blocker = h
        .spawn_pinned(0, async move {
            let (tx, _rx) = crate::channel::<u8>(1).unwrap();
            let r2 = r.clone();
            drop(spawner.spawn_pinned(1, async move { r2.store(true, SeqCst) }));
            held_back.arm();
            tx.flush().await;
            let met = held_back.met();
            // Blocked: only shard 1 can run the task.
            let t = Instant::now();
            while !r.load(SeqCst) && t.elapsed() < Duration::from_secs(5) {
                std::hint::spin_loop();
            }
            (met, r.load(SeqCst))
        })
        .unwrap();
    let result = ready_within(Duration::from_secs(10), blocker)
        .expect("the blocker never finished")
        .unwrap();
    drop(rt);
    assert!(
        ran.load(SeqCst),
        "{held_back:?}: the spawned task never ran"
    );
    result
}

/// The flush's submit meets an `EAGAIN` (nothing submitted): the MSG_RING
/// stayed in the SQ while the won claim (`NOTIFIED`) told every other
/// sender not to ring, and the parked shard slept until the blocker ended.
/// It now falls back to the eventfd.
#[test]
fn an_owed_doorbell_flushed_into_a_submit_the_kernel_did_not_take_falls_back_to_the_eventfd() {
    let (met, woke) = flushed_doorbell_then_block(HeldBack::Eagain);
    assert!(met, "the flush's submit never met the fake EAGAIN");
    assert!(
        woke,
        "the parked shard slept through an owed doorbell left in the SQ"
    );
}

/// The flush's MSG_RING is refused at submission: its failure CQE waited
/// in the blocked sender's CQ. It now falls back to the eventfd at once.
#[test]
fn an_owed_doorbell_the_kernel_refused_at_flush_falls_back_to_the_eventfd() {
    let (met, woke) = flushed_doorbell_then_block(HeldBack::Refused);
    assert!(met, "no doorbell was built to be refused");
    assert!(
        woke,
        "the parked shard slept through an owed doorbell refused at submission"
    );
}

/// A doorbell owed to a parked shard goes into the SQ at the end of an
/// idle tick; then, at step R4, the park finds work (a task queued here)
/// and returns without entering the kernel. The doorbell used to wait in
/// the SQ while the next tick ran, for as long as its tasks took: here a
/// task that waits for the rung shard, which never woke.
#[test]
fn a_doorbell_queued_before_a_park_that_finds_work_goes_out_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    assert!(wait_parked(&h, 1), "shard 1 never parked");
    let ran = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let (spawner, id) = (h.clone(), h.shared.id);
    let r = ran.clone();
    let first = h.spawn_pinned(0, async move {
        // Shard 1 is parked: this task owes it a doorbell, sent at the
        // end of the tick.
        let r2 = r.clone();
        drop(spawner.spawn_pinned(1, async move { r2.store(true, SeqCst) }));
        let (spawner2, r3) = (spawner.clone(), r.clone());
        BEFORE_ANY_PARK.lock().push((
            id,
            0,
            Box::new(move || {
                // Work for step R4 to find: a task that waits for shard 1.
                drop(spawner2.spawn_pinned(0, async move {
                    let t = Instant::now();
                    while !r3.load(SeqCst) && t.elapsed() < Duration::from_secs(5) {
                        std::hint::spin_loop();
                    }
                    tx.send(r3.load(SeqCst)).unwrap();
                }));
            }),
        ));
    });
    drop(first.unwrap());
    let saw = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("shard 0 never parked");
    assert!(
        saw,
        "the doorbell waited in the SQ while shard 0 ran its next tick"
    );
    assert!(ran.load(SeqCst));
}

/// The eventfd read's CQE arrives, and its re-arm finds the SQ full: the
/// shard used to park anyway, with no eventfd read armed, and a thread
/// that owns no ring (a Tokio task spawning onto the shard) could no
/// longer wake it. The park now re-arms first.
#[test]
fn an_eventfd_read_that_could_not_be_rearmed_is_rearmed_before_the_park() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    assert!(wait_parked(&h, 0), "the shard never parked");
    *REFUSE_EVENTFD_ARM.lock() = Some(h.shared.id);
    // From this ringless thread: an eventfd doorbell, whose read's CQE makes
    // the shard re-arm, and the re-arm fails.
    let first = ready_within(
        Duration::from_secs(5),
        h.spawn_pinned(0, async { 1 }).unwrap(),
    );
    assert!(matches!(first, Some(Ok(1))));
    // The task's result can arrive before the shard reaps the eventfd
    // read's CQE (and so before the re-arm): wait for the arm.
    let deadline = Instant::now() + Duration::from_secs(5);
    while REFUSE_EVENTFD_ARM.lock().is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        REFUSE_EVENTFD_ARM.lock().is_none(),
        "the failing arm never ran"
    );
    assert!(wait_parked(&h, 0), "the shard never parked again");
    // Asleep for good, not in the short parks of a shard with no read
    // armed (`UNARMED_PARK`, 1 ms), which would still pick the next spawn
    // up within a millisecond.
    let parks = h.shard_stats(0).unwrap().parks;
    std::thread::sleep(Duration::from_millis(100));
    let woke = h.shard_stats(0).unwrap().parks - parks;
    assert!(
        woke < 10,
        "the shard woke {woke} times in 100 ms: it parks with no eventfd read armed"
    );
    let second = ready_within(
        Duration::from_secs(10),
        h.spawn_pinned(0, async { 2 }).unwrap(),
    );
    assert!(
        matches!(second, Some(Ok(2))),
        "a spawn from outside did not wake the shard"
    );
}

/// The schedule function captures nothing, so `async-task` holds no
/// reference of its own while it runs (ADR 0017). A task woken from a plain
/// thread is pushed, and the waker then rings the shard: between the two,
/// the shard may run and free the task and the runtime may end. The waking
/// thread must hold its own reference to the `Remote` (pinned task) or
/// `Shared` (stealable task) it rings, not the one in the task's metadata.
/// A hook makes that window as wide as it can be: the whole runtime is
/// dropped inside it, and the target must still be alive.
#[test]
fn a_foreign_wake_holds_what_it_rings_while_the_task_and_runtime_end() {
    use std::sync::{Arc, mpsc};
    use std::task::{Poll, Waker};
    for stealable in [false, true] {
        let rt = Runtime::builder().shards(1).build().unwrap();
        let h = rt.handle();
        let (remote, shared) = (
            Arc::downgrade(&h.shared.remotes[0]),
            Arc::downgrade(&h.shared),
        );
        let (tx, rx) = mpsc::channel::<Waker>();
        let mut sent = false;
        let body = std::future::poll_fn(move |cx| {
            if sent {
                return Poll::Ready(());
            }
            sent = true;
            tx.send(cx.waker().clone()).unwrap();
            Poll::Pending
        });
        let task = match stealable {
            false => h.spawn_pinned(0, body).unwrap(),
            true => h.spawn_stealable(body).unwrap(),
        };
        let waker = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        // The poll that gave the waker away has returned once the shard
        // parks: a wake before that would only mark the running task, and
        // the shard itself would requeue it.
        assert!(wait_parked(&h, 0), "the shard never parked");
        drop(h);
        drop(task); // detached: its waker is all that keeps it
        let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
        let waking = std::thread::spawn(move || {
            let (alive_tx, alive_rx) = mpsc::channel::<(bool, bool)>();
            *AFTER_FOREIGN_PUSH.lock() = Some((
                std::thread::current().id(),
                Box::new(move || {
                    // The shutdown runs (or cancels) the pushed task, frees
                    // it, and ends the shards; then the runtime is gone.
                    drop(rt_rx.recv().unwrap());
                    let alive = (remote.upgrade().is_some(), shared.upgrade().is_some());
                    alive_tx.send(alive).unwrap();
                }),
            ));
            waker.wake();
            alive_rx.try_recv().expect("the hook did not run")
        });
        rt_tx.send(rt).unwrap();
        let (remote_alive, shared_alive) = waking.join().unwrap();
        if stealable {
            assert!(shared_alive, "the waking thread rang a freed runtime");
        } else {
            assert!(remote_alive, "the waking thread rang a freed shard");
        }
    }
}
