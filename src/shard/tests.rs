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
