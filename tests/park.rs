//! Idle shards sleep in the kernel (no CPU burned) and wake for work handed
//! over from threads that own no ring and from other shards.

mod common;

use std::time::{Duration, Instant};

/// Every shard parks when idle: over a second with nothing to do, its
/// thread's CPU time stays near zero (a spinning shard would use ~1 s).
#[test]
fn idle_shards_park_and_burn_no_cpu() {
    let rt = common::runtime(2);
    let h = rt.handle();
    // Make sure both shards have started and published their thread ids.
    for s in 0..2 {
        rt.block_on(h.spawn_pinned(s, async {}).unwrap()).unwrap();
    }
    let tids: Vec<i32> = (0..2).map(|s| h.shard_stats(s).unwrap().os_tid).collect();
    let before: Vec<Duration> = tids.iter().map(|&t| common::thread_cpu_time(t)).collect();
    let parks_before: Vec<u64> = (0..2).map(|s| h.shard_stats(s).unwrap().parks).collect();
    std::thread::sleep(Duration::from_secs(1));
    for (i, &tid) in tids.iter().enumerate() {
        let used = common::thread_cpu_time(tid) - before[i];
        assert!(
            used < Duration::from_millis(50),
            "shard {i} used {used:?} of CPU while idle for 1 s"
        );
    }
    // It parked rather than returning early in a loop: a handful of parks at most.
    for (s, before) in parks_before.iter().enumerate() {
        let parks = h.shard_stats(s).unwrap().parks - before;
        assert!(
            parks < 20,
            "shard {s} parked {parks} times in an idle second: it is not sleeping"
        );
    }
}

#[test]
fn parked_shard_wakes_for_a_spawn_from_a_plain_thread() {
    let rt = common::runtime(2);
    let h = rt.handle();
    rt.block_on(h.spawn_pinned(1, async {}).unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // let shard 1 park
    let eventfd_before = h.shard_stats(1).unwrap().doorbells_eventfd;
    let t = Instant::now();
    let j = std::thread::spawn(move || {
        h.spawn_pinned(1, async { ringlane::current_shard() })
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(rt.block_on(j).unwrap(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(2));
    // Counters are published at the end of the shard's tick, which may come
    // after the task (and so this thread) has already moved on.
    let deadline = Instant::now() + Duration::from_secs(2);
    while rt.handle().shard_stats(1).unwrap().doorbells_eventfd == eventfd_before {
        assert!(
            Instant::now() < deadline,
            "a parked shard must be woken through its eventfd doorbell"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn parked_shard_wakes_for_a_hand_off_from_another_shard_via_msg_ring() {
    let rt = common::runtime(2);
    let h = rt.handle();
    rt.block_on(h.spawn_pinned(1, async {}).unwrap()).unwrap();
    let before = h.shard_stats(1).unwrap().doorbells_msg_ring;
    let h2 = h.clone();
    let j = h
        .spawn_pinned(0, async move {
            let mut total = 0;
            for _ in 0..20 {
                // Give shard 1 time to park, then hand it a task from shard 0.
                ringlane::time::sleep(Duration::from_millis(5)).await;
                total += h2.spawn_pinned(1, async { 1 }).unwrap().await.unwrap();
            }
            total
        })
        .unwrap();
    assert_eq!(rt.block_on(j).unwrap(), 20);
    let rung = h.shard_stats(1).unwrap().doorbells_msg_ring - before;
    assert!(
        rung >= 10,
        "shard-to-shard wake-ups should use MSG_RING doorbells, saw {rung}"
    );
}

#[test]
fn spin_window_takes_hand_offs_without_doorbells() {
    let rt = ringlane::Runtime::builder()
        .shards(2)
        .spin_before_park(Duration::from_millis(200))
        .build()
        .unwrap();
    let h = rt.handle();
    let h2 = h.clone();
    let j = h
        .spawn_pinned(0, async move {
            for _ in 0..200 {
                h2.spawn_pinned(1, async {}).unwrap().await.unwrap();
            }
        })
        .unwrap();
    let before = h.shard_stats(1).unwrap();
    rt.block_on(j).unwrap();
    let after = h.shard_stats(1).unwrap();
    let rung = (after.doorbells_msg_ring + after.doorbells_eventfd)
        - (before.doorbells_msg_ring + before.doorbells_eventfd);
    assert!(
        rung <= 5,
        "a spinning receiver needs no doorbells, {rung} were rung"
    );
}
