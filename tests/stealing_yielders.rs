//! A shard busy with a *stealable* task that yields in a loop still takes
//! stealable work stranded behind a shard blocked in a long poll, as it
//! does for a pinned yielder (`stealing_busy_shards.rs`, test 1) and as a
//! Tokio worker steals between a task's yields (Tokio defers a yielded task
//! outside its local queue, so the queue reads empty).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringlane::Placement;

use common::LIMIT;
use common::stealers::holds_within;

/// Shard 0 is blocked by a pinned task from the start; a stealable task
/// that yields in a loop runs on shard 1; then the blocker queues 100
/// stealable tasks on shard 0's deque and keeps shard 0 blocked until they
/// have run, 3 s at most.
///
/// Expected: shard 1 runs them between the yielder's turns.
///
/// Why it may fail: a shard looks at other shards' deques only while its
/// own deque is empty, so that two busy shards do not trade tasks; a
/// stealable yielder is back in its own shard's deque at every yield, so
/// shard 1 never looked, and the 100 tasks waited out the whole block.
#[test]
fn a_shard_busy_with_a_stealable_yield_loop_still_steals_work_stranded_behind_a_blocked_shard() {
    const N: usize = 100;
    let rt = common::runtime(2);
    let h = rt.handle();
    let go = Arc::new(AtomicBool::new(false));
    let blocking = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let (g, b, d) = (go.clone(), blocking.clone(), done.clone());
    let blocker = h
        .spawn_pinned(0, async move {
            b.store(true, Ordering::Release);
            // Blocked from here on, so shard 0 takes nothing of shard 1's.
            let deadline = Instant::now() + Duration::from_secs(8);
            while !g.load(Ordering::Acquire) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
            for _ in 0..N {
                let d = d.clone();
                drop(
                    ringlane::spawn(async move {
                        d.fetch_add(1, Ordering::Release);
                    })
                    .unwrap(),
                );
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            while d.load(Ordering::Acquire) < N && Instant::now() < deadline {
                std::hint::spin_loop();
            }
            d.load(Ordering::Acquire)
        })
        .unwrap();
    common::wait_until("shard 0 blocked", || blocking.load(Ordering::Acquire));
    let stop = Arc::new(AtomicBool::new(false));
    let on_1 = Arc::new(AtomicBool::new(false));
    let (s, o) = (stop.clone(), on_1.clone());
    let yielder = h
        .spawn_with(Placement::StealablePreferred(1), async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut turns = 0u64;
            while !s.load(Ordering::Acquire) && Instant::now() < deadline {
                o.store(ringlane::current_shard() == Some(1), Ordering::Release);
                ringlane::yield_now().await;
                turns += 1;
            }
            turns
        })
        .unwrap();
    common::wait_until("the yielder running on shard 1", || {
        on_1.load(Ordering::Acquire)
    });
    go.store(true, Ordering::Release);
    let seen_while_blocked = common::join_within(&rt, blocker, LIMIT, "shard 0's blocker");
    let all_ran = holds_within(LIMIT, || done.load(Ordering::Acquire) == N);
    stop.store(true, Ordering::Release);
    let turns = common::join_within(&rt, yielder, LIMIT, "the yielder");
    assert!(turns > 0, "the yielder never yielded");
    assert!(
        all_ran,
        "not every stealable task ran even after the release"
    );
    // At most the last push may be a lone task that announces nothing.
    assert!(
        seen_while_blocked >= N - 1,
        "only {seen_while_blocked} of {N} stealable tasks ran while shard 0 was blocked: \
         shard 1, busy with a stealable task that yields in a loop, never looked at shard \
         0's deque"
    );
}
