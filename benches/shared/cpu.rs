//! Process CPU time that counts threads running on other cores exactly.
//!
//! `getrusage(RUSAGE_SELF)` (like `CLOCK_PROCESS_CPUTIME_ID`) adds up each
//! live thread's runtime as of that thread's last scheduler tick or switch:
//! a thread spinning on another core is short by up to a tick at each
//! reading, which over a round of a millisecond or two hid most of a
//! spinning shard's CPU. A thread's own CPU clock, read from any thread of
//! the process, includes the time since then. So: `getrusage` (which also
//! holds the threads that already exited), plus, for each live thread, its
//! clock minus the runtime `getrusage` saw for it (`/proc/.../schedstat`,
//! read first).

use std::time::Duration;

/// User plus system CPU time of the whole process (every thread).
pub(crate) fn process_cpu_time() -> Duration {
    let stale: Vec<(i32, u64)> = live_threads()
        .into_iter()
        .filter_map(|tid| Some((tid, sched_runtime_ns(tid)?)))
        .collect();
    // SAFETY: `rusage` is plain data, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let pending: u64 = stale
        .iter()
        .filter_map(|&(tid, seen)| Some(thread_clock_ns(tid)?.saturating_sub(seen)))
        .sum();
    tv(usage.ru_utime) + tv(usage.ru_stime) + Duration::from_nanos(pending)
}

fn live_threads() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The runtime the scheduler has accounted to thread `tid` (ns).
fn sched_runtime_ns(tid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Thread `tid`'s CPU clock (ns), pending time included.
fn thread_clock_ns(tid: i32) -> Option<u64> {
    // The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED).
    let clock = (!tid << 3) | 6;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}
