//! Shard-loop tests that need the crate's insides (the ring itself), and
//! the test hooks the loop calls. The stealing and wake-up cases are in
//! `stealing.rs` and `wakeups.rs`.

use std::time::{Duration, Instant};

use crate::{Handle, Runtime, context};

mod graceful;
mod parked_stats;
mod stealing;
mod wakeups;

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

/// An echo task on shard 1 over two raw channels (what the ping side
/// sends, it sends back, until the ping side's sender is dropped): the
/// ping side's ends, and the echo's handle.
fn echo_on_shard_1(h: &Handle) -> (crate::RawSender, crate::RawReceiver, crate::JoinHandle<()>) {
    let (ping_tx, mut ping_rx) = crate::raw_channel(16).unwrap();
    let (pong_tx, pong_rx) = crate::raw_channel(16).unwrap();
    let echo = h
        .spawn_pinned(1, async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v).await.unwrap();
            }
        })
        .unwrap();
    (ping_tx, pong_rx, echo)
}

/// Watch step W5: a spinning shard that sees a watched receiver's message
/// wakes and runs its task from the spin. A cross-shard ping-pong checks
/// every reply, so the hand-off also loses and reorders nothing.
#[test]
fn a_spinning_shard_runs_a_watched_receiver_from_its_spin() {
    let rt = Runtime::builder()
        .shards(2)
        .spin_before_park(Duration::from_millis(50))
        .build()
        .unwrap();
    let h = rt.handle();
    let (ping_tx, mut pong_rx, echo) = echo_on_shard_1(&h);
    let ping = h
        .spawn_pinned(0, async move {
            for i in 0..2_000u64 {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i));
            }
        })
        .unwrap();
    rt.block_on(ping).unwrap();
    rt.block_on(echo).unwrap();
    let polled = handed_off_in_spin_count(h.shared.id);
    assert!(polled > 0, "no watched receiver ran from a spin");
}

/// Two spinning shards the scheduler put on one CPU (here: built by a
/// thread allowed on one CPU, whose mask the shard threads inherit) still
/// ping-pong without waiting out their windows: a spin that has found
/// nothing for a while yields the CPU, so the shard it waits on runs.
/// Without the yield each hop burns the whole window and then parks.
#[test]
fn two_spinning_shards_on_one_cpu_hand_the_cpu_over() {
    let rt = std::thread::spawn(|| {
        let allowed = super::cpu_mask().expect("the thread's CPU mask");
        let first = (0..libc::CPU_SETSIZE as usize)
            .find(|&c| {
                // SAFETY: `c` is below CPU_SETSIZE; the set is initialized.
                unsafe { libc::CPU_ISSET(c, &allowed) }
            })
            .expect("an allowed CPU");
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `first` is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(first, &mut one) };
        super::set_cpu_mask(&one);
        Runtime::builder()
            .shards(2)
            .spin_before_park(Duration::from_micros(100))
            .build()
            .unwrap()
    })
    .join()
    .unwrap();
    let h = rt.handle();
    let (ping_tx, mut pong_rx, echo) = echo_on_shard_1(&h);
    let parks = |h: &Handle| (0..2).map(|i| h.shard_stats(i).unwrap().parks).sum::<u64>();
    let stats = h.clone();
    let ping = h
        .spawn_pinned(0, async move {
            // The first round trip wakes the echo shard from its park.
            ping_tx.send(0).await.unwrap();
            assert_eq!(pong_rx.recv().await, Some(0));
            let before = parks(&stats);
            for i in 1..=40u64 {
                ping_tx.send(i).await.unwrap();
                assert_eq!(pong_rx.recv().await, Some(i));
            }
            parks(&stats) - before
        })
        .unwrap();
    let parked = rt.block_on(ping).unwrap();
    drop(rt.block_on(echo));
    // 80 hops; without the yield, about one park each (a window shorter
    // than the scheduler's slice runs out first). Other tests' threads on
    // the same CPU may still cost a few.
    assert!(parked <= 20, "{parked} parks in 80 hops on one CPU");
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
    until_shutting_down(&shared);
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

/// Waits (at most 10 s) until a thread's `shutdown` has marked the runtime
/// as shutting down: a shard rung before that sees nothing to do.
fn until_shutting_down(shared: &crate::shard::Shared) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shared.is_shutting_down() {
        assert!(Instant::now() < deadline, "shutdown never began");
        std::thread::yield_now();
    }
}

/// Runs once, on the shard thread, where a shard of runtime `.0` with index
/// `.1` is about to park after a refused search (`stealable == false`).
type ParkHook = (usize, usize, Box<dyn FnOnce() + Send>);
/// Several tests may wait at once (each its own runtime): one list.
static BEFORE_REFUSED_PARK: parking_lot::Mutex<Vec<ParkHook>> = parking_lot::Mutex::new(Vec::new());

/// Runs once, on the shard thread, where a shard of runtime `.0` with index
/// `.1` is about to park, after any search.
static BEFORE_ANY_PARK: parking_lot::Mutex<Vec<ParkHook>> = parking_lot::Mutex::new(Vec::new());

/// Runs once, on the shard thread, where a shard of runtime `.0` with index
/// `.1` has stored `PARKED` (step R3) and not yet looked for work (R4).
static AFTER_PREPARE_PARK: parking_lot::Mutex<Vec<ParkHook>> = parking_lot::Mutex::new(Vec::new());

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

/// Runs once, on the shard thread, where a shard of runtime `.0` with
/// index `.1` is about to read whether the injector's gate is sealed
/// (shutdown step D4).
static BEFORE_SEAL_CHECK: parking_lot::Mutex<Vec<ParkHook>> = parking_lot::Mutex::new(Vec::new());

/// Called by `Core::exit_ready` in test builds.
pub(super) fn before_seal_check(cx: &crate::context::ShardContext) {
    if let Some(f) = take_hook(&BEFORE_SEAL_CHECK, cx) {
        f();
    }
}

/// A spawner inside the injector's gate pushes a `StealablePreferred` task
/// onto the shard's preferred queue and leaves, exactly while the shard,
/// cancelling at shutdown, decides whether it may exit (just before it
/// reads the seal). The task must be cancelled, its handle resolved.
///
/// Why it may fail: the shard looked at its preferred queue before the
/// seal (gate rule 3 asks the reverse): it found the queue empty, then the
/// gate sealed, and it exited with the task in the queue for good (its
/// `JoinHandle` never resolving, and the runtime's state kept alive by
/// the cycle through the task's route).
#[test]
fn a_preferred_spawn_inside_the_closing_gate_is_cancelled_not_lost() {
    let rt = Runtime::builder().shards(1).build().unwrap();
    let shared = rt.handle().shared.clone();
    let (joins_tx, joins) = std::sync::mpsc::channel();
    // The hook leaves the gate on the shard thread: a `'static` borrow (the
    // one leaked `Arc` keeps this test's runtime state alive).
    let leaked: &'static std::sync::Arc<crate::shard::Shared> = Box::leak(Box::new(shared.clone()));
    let inside = leaked.injector_gate.enter().expect("the gate is open");
    BEFORE_SEAL_CHECK.lock().push((
        shared.id,
        0,
        Box::new(move || {
            // The shard is cancelling: push as `spawn_with` does, inside
            // the gate, then leave it.
            let (runnable, join) = crate::executor::spawn_stealable(async { 7 }, leaked.clone());
            leaked.remotes[0].preferred.push(runnable);
            drop(inside);
            joins_tx.send(join).unwrap();
        }),
    ));
    let closer = std::thread::spawn(move || rt.shutdown(Duration::ZERO));
    // The closer rings the shards once the gate is empty: wake the shard
    // now, so it reaches D4 (and the hook) while the gate is still held;
    // again until it has (a wake-up before it saw the shutdown parks it
    // again).
    until_shutting_down(&shared);
    let deadline = Instant::now() + Duration::from_secs(10);
    let join = loop {
        shared.remotes[0].ring_eventfd();
        match joins.recv_timeout(Duration::from_millis(10)) {
            Ok(join) => break join,
            Err(_) => assert!(
                Instant::now() < deadline,
                "the shard never reached its seal check"
            ),
        }
    };
    let report = closer.join().unwrap();
    assert!(report.stuck_shards.is_empty());
    let outcome = ready_within(Duration::from_secs(5), join)
        .expect("the task pushed onto the preferred queue inside the gate was lost");
    assert!(
        matches!(&outcome, Err(e) if e.is_cancelled()),
        "got {outcome:?}"
    );
    // SAFETY: `leaked` came from `Box::leak` above; its only borrow, the
    // gate guard, was dropped by the hook, which has run and been dropped
    // (its result arrived, and the hook list no longer holds it).
    drop(unsafe { Box::from_raw(std::ptr::from_ref(leaked).cast_mut()) });
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

/// Polls made in spin hand-offs (watch step W5) by runtime id, in test builds.
static HANDED_OFF_IN_SPIN: parking_lot::Mutex<Vec<(usize, u64)>> =
    parking_lot::Mutex::new(Vec::new());

/// The shard's polls so far (a spin hand-off's start).
pub(super) fn polls_so_far(cx: &crate::context::ShardContext) -> u64 {
    cx.remote
        .stats
        .tasks_polled
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Called by `Core::spin` in test builds after it woke a watched receiver
/// and ran the shard's tasks: counts the polls made since `polled_before`.
pub(super) fn handed_off_in_spin(cx: &crate::context::ShardContext, polled_before: u64) {
    let polled = polls_so_far(cx) - polled_before;
    let mut counts = HANDED_OFF_IN_SPIN.lock();
    match counts.iter_mut().find(|(id, _)| *id == cx.shared.id) {
        Some((_, n)) => *n += polled,
        None => counts.push((cx.shared.id, polled)),
    }
}

/// How many polls the shards of runtime `id` made in spin hand-offs.
fn handed_off_in_spin_count(id: usize) -> u64 {
    let counts = HANDED_OFF_IN_SPIN.lock();
    counts.iter().find(|(i, _)| *i == id).map_or(0, |(_, n)| *n)
}

/// Called by `Core::park` in test builds, between steps R3 and R4.
pub(super) fn after_prepare_park(cx: &crate::context::ShardContext) {
    if let Some(f) = take_hook(&AFTER_PREPARE_PARK, cx) {
        f();
    }
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
