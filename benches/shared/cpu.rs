//! Process CPU time that counts threads running on other cores exactly.
//!
//! `getrusage(RUSAGE_SELF)` (like `CLOCK_PROCESS_CPUTIME_ID`) adds up each
//! live thread's runtime as of that thread's last scheduler tick or switch
//! (the calling thread's own is brought up to date first): a thread
//! spinning on another core is short by up to a tick at each reading,
//! which over a round of a millisecond or two hid most of a spinning
//! shard's CPU. A thread's own CPU clock, read from any thread of the
//! process, includes the time since then. So: `getrusage` (which also holds
//! the threads that already exited), plus, for each other live thread, its
//! clock minus the runtime `getrusage` saw for it (`/proc/.../schedstat`,
//! read before and after `getrusage`, again if a tick moved it between).

use std::time::Duration;

/// User plus system CPU time of the whole process (every thread).
pub(crate) fn process_cpu_time() -> Duration {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    let others: Vec<i32> = live_threads().into_iter().filter(|&t| t != me).collect();
    let mut tries = 0;
    loop {
        tries += 1;
        let before: Vec<Option<u64>> = others.iter().map(|&t| sched_runtime_ns(t)).collect();
        let rusage = rusage_total();
        let after: Vec<Option<u64>> = others.iter().map(|&t| sched_runtime_ns(t)).collect();
        if before != after && tries < 4 {
            continue; // a tick accounted time between the readings
        }
        let pending: u64 = others
            .iter()
            .zip(&after)
            .filter_map(|(&tid, seen)| Some(thread_clock_ns(tid)?.saturating_sub((*seen)?)))
            .sum();
        return rusage + Duration::from_nanos(pending);
    }
}

fn rusage_total() -> Duration {
    // SAFETY: `rusage` is plain data, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
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

/// Pins the calling thread to the `index`-th CPU it is allowed to run on,
/// by the rule ringlane's `Builder::pin_cpus` uses for shard `index`, so a
/// baseline's threads and ringlane's shards sit on the same CPUs. Does
/// nothing if the affinity cannot be read or set.
pub(crate) fn pin_current_thread(index: usize) {
    // SAFETY: cpu_set_t is plain data; the calls get its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if allowed.is_empty() {
            return;
        }
        let cpu = allowed[index % allowed.len()];
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
