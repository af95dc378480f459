//! Helpers of the work-stealing tests: the other shard, reports from
//! tasks, bounded waits.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::LIMIT;

/// The other shard of a two-shard runtime.
pub fn other(shard: usize) -> usize {
    1 - shard
}

/// The next value a task reported, failing after [`LIMIT`].
pub fn report_of<T>(rx: &mpsc::Receiver<T>, what: &str) -> T {
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("{what}: nothing after {LIMIT:?}"))
}

/// Whether `done` holds within `limit` (no panic: the caller releases its
/// blockers first, then asserts).
pub fn holds_within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}
