//! Shard-loop tests that need the crate's insides (the ring itself).

use std::time::{Duration, Instant};

use crate::{Handle, Runtime, context};

/// CPU time (user + system) used so far by thread `tid` of this process.
fn thread_cpu_time(tid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis((f[0] + f[1]) * 1000 / hz)
}

fn wait_parked(h: &Handle, shard: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !h.shard_stats(shard).unwrap().parked {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    true
}

/// Ring invariant 4: a stale `IORING_SQ_TASKRUN` (set, nothing deferred)
/// must not keep an idle shard awake. It once made the loop tick, enter
/// and find nothing, forever, at 100% CPU.
fn stale_flag_case(rt: Runtime) {
    let h = rt.handle();
    rt.block_on(
        h.call_on(0, |_| {
            context::with_current(|cx| cx.ring.borrow_mut().fake_stale_taskrun_flag())
                .expect("on a shard")
        })
        .unwrap(),
    )
    .unwrap();
    let tid = h.shard_stats(0).unwrap().os_tid;
    assert!(wait_parked(&h, 0), "the shard never parked");
    let before = thread_cpu_time(tid);
    std::thread::sleep(Duration::from_millis(300));
    let used = thread_cpu_time(tid) - before;
    assert!(
        used < Duration::from_millis(100),
        "an idle shard used {used:?} of CPU in 300 ms"
    );
    // And it still wakes for work.
    let out = rt
        .block_on(h.spawn_pinned(0, async { 7 }).unwrap())
        .unwrap();
    assert_eq!(out, 7);
}

#[test]
fn idle_shard_with_a_stale_taskrun_flag_sleeps() {
    stale_flag_case(Runtime::builder().shards(1).build().unwrap());
}

#[test]
fn spinning_shard_with_a_stale_taskrun_flag_still_parks() {
    stale_flag_case(
        Runtime::builder()
            .shards(1)
            .spin_before_park(Duration::from_micros(200))
            .build()
            .unwrap(),
    );
}

/// Polls `f` on this thread until it is ready or `limit` has passed.
fn ready_within<F: std::future::Future>(limit: Duration, f: F) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    let deadline = Instant::now() + limit;
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::park_timeout(left.min(Duration::from_millis(10)));
    }
}

/// A spawner from outside the runtime passed the injector gate just before
/// shutdown closed it, and pushes only afterwards. The shards must not
/// take the closed gate as the end of the injector while it is inside:
/// they used to exit, and its task sat in the injector forever, its
/// `JoinHandle` never resolving.
#[test]
fn a_stealable_spawn_inside_the_closing_gate_is_cancelled_not_lost() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let shared = rt.handle().shared.clone();
    let inside = shared.injector_gate.enter().expect("the gate is open");
    let closer = std::thread::spawn(move || rt.shutdown(Duration::ZERO));
    // The closer rings the shards only once the gate is empty: wake the
    // shard now, so that it sees the shutdown while we are inside (before
    // the fix, it exited here).
    std::thread::sleep(Duration::from_millis(20));
    shared.remotes[0].ring_eventfd();
    std::thread::sleep(Duration::from_millis(100));
    let (runnable, join) = crate::executor::spawn_stealable(async { 7 }, shared.clone());
    runnable.schedule(); // onto the injector, as `spawn_stealable` does
    drop(inside);
    let report = closer.join().unwrap();
    assert!(report.stuck_shards.is_empty());
    // Run by a tick that took it before the shard noticed the shutdown, or
    // cancelled: either way its handle resolves.
    let outcome = ready_within(Duration::from_secs(5), join)
        .expect("the task pushed by a spawner inside the gate was lost");
    assert!(
        matches!(&outcome, Ok(7)) || matches!(&outcome, Err(e) if e.is_cancelled()),
        "got {outcome:?}"
    );
}

/// Runs once, on the shard thread, where a shard of runtime `.0` with index
/// `.1` is about to park after a refused search (`stealable == false`).
type ParkHook = (usize, usize, Box<dyn FnOnce() + Send>);
/// Several tests may wait at once (each its own runtime): one list.
static BEFORE_REFUSED_PARK: parking_lot::Mutex<Vec<ParkHook>> = parking_lot::Mutex::new(Vec::new());

/// Runs once, on the shard thread, where a shard of runtime `.0` with index
/// `.1` is about to park, after any search.
static BEFORE_ANY_PARK: parking_lot::Mutex<Vec<ParkHook>> = parking_lot::Mutex::new(Vec::new());

/// Takes the hook registered in `hooks` for this shard, if any.
fn take_hook(
    hooks: &parking_lot::Mutex<Vec<ParkHook>>,
    cx: &crate::context::ShardContext,
) -> Option<Box<dyn FnOnce() + Send>> {
    let mut hooks = hooks.lock();
    let i = hooks
        .iter()
        .position(|(id, index, _)| *id == cx.shared.id && *index == cx.index)?;
    Some(hooks.swap_remove(i).2)
}

/// Called by `Core::park` in test builds.
pub(super) fn before_park(cx: &crate::context::ShardContext, stealable: bool) {
    if let Some(f) = take_hook(&BEFORE_ANY_PARK, cx) {
        f();
    }
    if stealable {
        return;
    }
    if let Some(f) = take_hook(&BEFORE_REFUSED_PARK, cx) {
        f();
    }
}

/// A `StealablePreferred` task pushed while its shard is on its way to
/// park after a refused search (so step R4 skips stealable work): the
/// spawner saw the shard running and a searcher about, and rang nothing,
/// so R4 must count the shard's own preferred queue. It did not, and the
/// task waited for an unrelated wake-up. A hook makes the push at that
/// exact point, from the shard itself.
#[test]
fn a_preferred_task_pushed_while_its_shard_parks_after_a_refused_search_runs() {
    use std::sync::atomic::Ordering::SeqCst;
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    // Every search is refused (held at the limit for two shards, before
    // anything runs, so no real searcher's decrement undoes it) ...
    h.shared.searching.store(1, SeqCst);
    // ... and stealable work stays visible (a task in the deque of shard
    // 1, which is blocked), so shard 0 tries to search.
    let release = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let blocked = release.clone();
    let blocker = h
        .spawn_pinned(1, async move {
            drop(crate::spawn(async {}));
            while !blocked.load(SeqCst) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let start = Instant::now();
    while h.shared.stealers[1].is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "shard 1 never blocked"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let spawner = h.clone();
    BEFORE_REFUSED_PARK.lock().push((
        h.shared.id,
        0,
        Box::new(move || {
            let j = spawner
                .spawn_with(crate::Placement::StealablePreferred(0), async { 7 })
                .unwrap();
            tx.send(j).unwrap();
        }),
    ));
    // Shard 0 runs a task, then parks after a refused search.
    let mut pushed = None;
    while pushed.is_none() && start.elapsed() < Duration::from_secs(10) {
        drop(h.spawn_pinned(0, async {}).unwrap());
        pushed = rx.recv_timeout(Duration::from_millis(100)).ok();
    }
    let j = pushed.expect("shard 0 never parked after a refused search");
    let ran = ready_within(Duration::from_secs(10), j);
    h.shared.searching.store(0, SeqCst);
    release.store(true, SeqCst);
    assert!(ready_within(Duration::from_secs(5), blocker).is_some());
    assert!(
        matches!(ran, Some(Ok(7))),
        "the preferred task waited for an unrelated wake-up"
    );
}

/// A shard refused as a searcher heads to park while the last searcher
/// finds a batch, takes half of it, notifies nobody (the refused shard is
/// not parked yet) and blocks on the first task. Step R4 of the refused
/// shard used to skip stealable work, so it slept while the rest of the
/// batch waited in two deques nobody else could reach. With no searcher
/// left, R4 now looks at stealable work too.
#[test]
fn a_refused_shard_parking_as_the_last_searcher_leaves_looks_at_stealable_work() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    const N: usize = 8;
    let rt = Runtime::builder().shards(3).build().unwrap();
    let h = rt.handle();
    // Every search is refused: two searchers (the limit for three shards).
    h.shared.searching.store(2, SeqCst);
    let done = Arc::new(AtomicUsize::new(0));
    let first = Arc::new(AtomicBool::new(true));
    let blocking = Arc::new(AtomicBool::new(false));
    let waited = Arc::new(parking_lot::Mutex::new(None::<bool>));
    let release = Arc::new(AtomicBool::new(false));
    // Shard 2 pushes N + 1 stealable tasks onto its deque and then stays
    // busy: the first task to start elsewhere waits for the other N.
    let (d, f, b, w, rl) = (
        done.clone(),
        first.clone(),
        blocking.clone(),
        waited.clone(),
        release.clone(),
    );
    let spawner = h
        .spawn_pinned(2, async move {
            for _ in 0..=N {
                let (d, f, b, w) = (d.clone(), f.clone(), b.clone(), w.clone());
                drop(crate::spawn(async move {
                    if f.swap(false, SeqCst) {
                        b.store(true, SeqCst);
                        let t = Instant::now();
                        while d.load(SeqCst) < N && t.elapsed() < Duration::from_secs(5) {
                            std::hint::spin_loop();
                        }
                        *w.lock() = Some(d.load(SeqCst) == N);
                    } else {
                        d.fetch_add(1, SeqCst);
                    }
                }));
            }
            while !rl.load(SeqCst) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    let start = Instant::now();
    while h.shared.stealers[2].len() <= N {
        assert!(start.elapsed() < Duration::from_secs(5), "no batch");
        std::thread::sleep(Duration::from_millis(1));
    }
    // At shard 1's refused park, before its step R3: the searchers leave,
    // shard 0 searches, takes half the batch and blocks on its first task.
    let (shared, b) = (h.shared.clone(), blocking.clone());
    BEFORE_REFUSED_PARK.lock().push((
        h.shared.id,
        1,
        Box::new(move || {
            shared.searching.store(0, SeqCst);
            shared.remotes[0].ring_eventfd();
            let t = Instant::now();
            while !b.load(SeqCst) && t.elapsed() < Duration::from_secs(5) {
                std::thread::yield_now();
            }
        }),
    ));
    h.shared.remotes[1].ring_eventfd(); // shard 1 looks, and is refused
    let t = Instant::now();
    while waited.lock().is_none() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let outcome = *waited.lock();
    release.store(true, SeqCst);
    assert!(ready_within(Duration::from_secs(5), spawner).is_some());
    assert!(blocking.load(SeqCst), "shard 0 never took the batch");
    assert_eq!(
        outcome,
        Some(true),
        "the rest of the batch waited while the refused shard slept"
    );
}

/// A stealable push wakes a parked shard at once (`ring_doorbell_now`),
/// because the pusher may block next, as it does here. A submit the kernel
/// answered with `EAGAIN` (nothing submitted) used to count as sent: the
/// MSG_RING stayed in the blocked pusher's SQ and the parked shard slept.
/// It now falls back to the eventfd.
#[test]
fn an_immediate_doorbell_the_kernel_did_not_take_falls_back_to_the_eventfd() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    let start = Instant::now();
    while !h.shard_stats(1).unwrap().parked {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "shard 1 never parked"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let pusher = h
        .spawn_pinned(0, async move {
            crate::sys::FAKE_EAGAIN.with(|f| f.set(true));
            // The second push leaves two tasks in the deque: shard 1 is
            // rung at once.
            for _ in 0..2 {
                let d = d.clone();
                drop(crate::spawn(async move {
                    d.fetch_add(1, SeqCst);
                }));
            }
            let faked = !crate::sys::FAKE_EAGAIN.with(std::cell::Cell::get);
            // Blocked: only shard 1 can run them.
            let t = Instant::now();
            while d.load(SeqCst) < 2 && t.elapsed() < Duration::from_secs(5) {
                std::hint::spin_loop();
            }
            (faked, d.load(SeqCst))
        })
        .unwrap();
    let (faked, ran) = ready_within(Duration::from_secs(10), pusher)
        .expect("the pusher never finished")
        .unwrap();
    assert!(
        faked,
        "the immediate doorbell's submit never met the fake EAGAIN"
    );
    assert_eq!(
        ran, 2,
        "the parked shard slept through a doorbell left in the SQ"
    );
    assert_eq!(done.load(SeqCst), 2);
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
    let start = Instant::now();
    while !h.shard_stats(1).unwrap().parked {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "shard 1 never parked"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
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

/// Makes the next eventfd arm of a shard of runtime `.0` fail once, as a
/// full SQ that the kernel would not take would.
static REFUSE_EVENTFD_ARM: parking_lot::Mutex<Option<usize>> = parking_lot::Mutex::new(None);

/// Called by `Core::arm_eventfd` in test builds.
pub(super) fn refuse_eventfd_arm(cx: &crate::context::ShardContext) -> bool {
    let mut slot = REFUSE_EVENTFD_ARM.lock();
    if *slot == Some(cx.shared.id) {
        *slot = None;
        return true;
    }
    false
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
    let second = ready_within(
        Duration::from_secs(10),
        h.spawn_pinned(0, async { 2 }).unwrap(),
    );
    assert!(
        matches!(second, Some(Ok(2))),
        "a spawn from outside did not wake the shard"
    );
}

/// A batch of `StealablePreferred` tasks that its shard takes in the same
/// tick as a task that then blocks it. The other shard was not told (the
/// spawner saw the preferred shard being woken, and a shard may not take
/// the preferred tasks of one that is not running), so only the taking
/// shard can ask for help: it did not, and the batch waited in its deque
/// until the blocker ended. The preferred tasks are queued here without
/// any notify, as that race leaves them, so the test does not depend on it.
#[test]
fn a_preferred_batch_taken_with_a_blocking_task_is_shared() {
    // Shard 0 reads as parked from step R3 on, a little before it sleeps:
    // if it still looked at its queues when the batch arrived, it ran the
    // batch itself and the attempt proves nothing; it is repeated.
    for _attempt in 0..3 {
        if preferred_batch_attempt() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("in three attempts, shard 0 never took the batch together with the blocker");
}

/// One attempt: whether the batch ran on shard 1 (all but at most one task)
/// while shard 0 was blocked. Fails if the blocker's wait for the batch
/// times out: the batch was stranded.
fn preferred_batch_attempt() -> bool {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    const TASKS: usize = 100;
    let rt = Runtime::builder().shards(2).build().unwrap();
    let h = rt.handle();
    assert!(
        wait_parked(&h, 0) && wait_parked(&h, 1),
        "the shards never parked"
    );
    let done = Arc::new(AtomicUsize::new(0));
    let joins: Vec<_> = (0..TASKS)
        .map(|_| {
            let done = done.clone();
            let (runnable, join) = crate::executor::spawn_stealable(
                async move {
                    done.fetch_add(1, SeqCst);
                    crate::current_shard()
                },
                h.shared.clone(),
            );
            h.shared.remotes[0].preferred.push(runnable);
            join
        })
        .collect();
    // Rings shard 0, which takes the batch and this task in one tick; the
    // task blocks it until every preferred task has run (one at most on
    // shard 0, if its deque came first).
    let seen = done.clone();
    let blocker = h
        .spawn_pinned(0, async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while seen.load(SeqCst) < TASKS && Instant::now() < deadline {
                std::hint::spin_loop();
            }
            seen.load(SeqCst)
        })
        .unwrap();
    let ran = ready_within(Duration::from_secs(20), blocker);
    assert!(
        matches!(ran, Some(Ok(TASKS))),
        "preferred tasks stayed behind the blocked shard that took them: {ran:?}"
    );
    let on_1 = joins
        .into_iter()
        .map(|j| ready_within(Duration::from_secs(5), j).unwrap().unwrap())
        .filter(|s| *s == Some(1))
        .count();
    on_1 >= TASKS - 1
}

/// Runs once on thread `.0`, in a push onto a mailbox or the injector by a
/// thread that is not a shard of the target runtime: after the push, before
/// the doorbell.
type PushHook = (std::thread::ThreadId, Box<dyn FnOnce() + Send>);
static AFTER_FOREIGN_PUSH: parking_lot::Mutex<Option<PushHook>> = parking_lot::Mutex::new(None);

/// Called by `Remote::push` and `shard::schedule` in test builds.
pub(crate) fn after_foreign_push() {
    let hook = {
        let mut slot = AFTER_FOREIGN_PUSH.lock();
        match &*slot {
            Some((thread, _)) if *thread == std::thread::current().id() => slot.take(),
            _ => None,
        }
    };
    if let Some((_, f)) = hook {
        f();
    }
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
