//! Helpers of the task-parity tests: drop logs with the dropping thread, counting wakers.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::thread::ThreadId;

use parking_lot::Mutex;

use ringlane::JoinHandle;

/// Drops logged as (label, dropping thread, `current_shard()` there).
pub type Log = Arc<Mutex<Vec<(&'static str, ThreadId, Option<usize>)>>>;

/// Logs its label, the thread that dropped it and the shard it was on.
pub struct Where {
    pub label: &'static str,
    pub log: Log,
}

impl Drop for Where {
    fn drop(&mut self) {
        self.log.lock().push((
            self.label,
            std::thread::current().id(),
            ringlane::current_shard(),
        ));
    }
}

pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// Where (thread, shard) the value labelled `label` was dropped, in order.
pub fn drops_of(log: &Log, label: &str) -> Vec<(ThreadId, Option<usize>)> {
    log.lock()
        .iter()
        .filter(|(l, _, _)| *l == label)
        .map(|(_, t, s)| (*t, *s))
        .collect()
}

/// Polls `jh` once with `waker`; whether it was still pending.
pub fn poll_once_with<T>(jh: &mut JoinHandle<T>, waker: &Waker) -> bool {
    let mut cx = Context::from_waker(waker);
    Pin::new(jh).poll(&mut cx).is_pending()
}

/// A waker that counts its wake-ups.
pub struct CountingWaker {
    pub wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}
