//! Helpers of the task, timer and life-cycle tests: drop recorders and
//! the runtime's threads.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::LIMIT;

/// Runs `f` on a fresh thread and returns its result, failing with `what`
/// if it is not done within `limit` (a runtime drop or shutdown that hangs
/// becomes a failure, not a stalled suite).
pub fn within<T, F>(limit: Duration, what: &str, f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|e| panic!("{what}: not done after {limit:?} ({e})"))
}

/// The id of the thread that runs shard `shard`.
pub fn shard_thread(rt: &ringlane::Runtime, shard: usize) -> ThreadId {
    let j = rt
        .handle()
        .spawn_pinned(shard, async { std::thread::current().id() })
        .unwrap();
    super::join_within(rt, j, LIMIT, "asking a shard for its thread")
}

/// The calling thread's OS thread id.
pub fn os_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Sets its flag when dropped: a task spinning on the flag is let go even
/// when the test fails first.
pub struct ReleaseOnDrop(pub Arc<AtomicBool>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Sets its flag when dropped.
pub struct SetOnDrop(pub Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Logs its label and the thread that dropped it.
pub struct DropRecorder {
    pub label: &'static str,
    pub log: Arc<Mutex<Vec<(&'static str, ThreadId)>>>,
}

impl Drop for DropRecorder {
    fn drop(&mut self) {
        self.log
            .lock()
            .push((self.label, std::thread::current().id()));
    }
}

/// A task's output that logs the thread that dropped it.
pub struct OutputRecorder {
    pub log: Arc<Mutex<Vec<ThreadId>>>,
}

impl Drop for OutputRecorder {
    fn drop(&mut self) {
        self.log.lock().push(std::thread::current().id());
    }
}

/// Names of this process's threads that start with `{prefix}-` (shard
/// threads are named `{prefix}-{index}`; each test here uses its own prefix).
pub fn threads_named(prefix: &str) -> Vec<String> {
    let want = format!("{prefix}-");
    let mut names = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for entry in dir.flatten() {
            if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
                let comm = comm.trim_end().to_owned();
                if comm.starts_with(&want) {
                    names.push(comm);
                }
            }
        }
    }
    names
}

/// Waits (at most 5 s) until no thread named `{prefix}-*` is left; returns
/// those still there. A thread that was joined may linger in `/proc` for a
/// moment after its join returned, so even joined threads get the bound.
pub fn threads_left_after_a_while(prefix: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = threads_named(prefix);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asserts that no thread named `prefix…` is left a while after its
/// runtime went (shard threads outlived their runtime otherwise).
pub fn assert_no_threads_left(prefix: &str) {
    let left = threads_left_after_a_while(prefix);
    assert!(
        left.is_empty(),
        "shard threads outlived their runtime: {left:?}"
    );
}
