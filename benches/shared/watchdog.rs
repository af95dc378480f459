//! The stall watchdog's machinery: the name of the running case, a progress
//! count on its own cache line, the ringlane runtimes whose counters a stall
//! report prints, and a background thread that aborts the process if the
//! (case, count) pair stops changing for the suite's stall limit, so that a
//! lost wake-up shows as a message, not as a hang.
//!
//! What the count means and how it moves (one thread storing a running
//! total, or any thread adding steps) is the suite's own: see its
//! `watchdog` module.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The progress count of the running case, on its own cache line.
#[repr(align(128))]
pub(crate) struct Progress(AtomicU64);

impl Progress {
    /// Sets the count: a plain store, for a count kept by one thread.
    #[inline]
    pub(crate) fn set(&self, done: u64) {
        self.0.store(done, Ordering::Relaxed);
    }

    /// Adds one step to the count (any thread).
    #[inline]
    pub(crate) fn step(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) static PROGRESS: Progress = Progress(AtomicU64::new(0));
static CURRENT_CASE: Mutex<Option<String>> = Mutex::new(None);
/// Ringlane runtimes whose counters a stall report prints, by name.
pub(crate) static HANDLES: Mutex<Vec<(&'static str, ringlane::Handle)>> = Mutex::new(Vec::new());

/// Marks a case as running until dropped.
pub(crate) struct Watch;

/// Names `case` as the running one (leaving the count alone).
pub(crate) fn watch(case: &str) -> Watch {
    *CURRENT_CASE.lock().unwrap() = Some(case.to_string());
    Watch
}

impl Drop for Watch {
    fn drop(&mut self) {
        *CURRENT_CASE.lock().unwrap() = None;
    }
}

/// Starts the watchdog thread `thread`: every 500 ms it looks at the running
/// case and its count, and once a case has shown neither changing for
/// `stall`, it prints `message(case, time without progress, count)`, the
/// counters of every shard of [`HANDLES`], and aborts the process.
pub(crate) fn start(thread: &str, stall: Duration, message: fn(&str, Duration, u64) -> String) {
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            let mut seen: (Option<String>, u64) = (None, 0);
            let mut since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let now = (
                    CURRENT_CASE.lock().unwrap().clone(),
                    PROGRESS.0.load(Ordering::Relaxed),
                );
                if now != seen {
                    seen = now;
                    since = Instant::now();
                    continue;
                }
                let Some(case) = &seen.0 else { continue };
                if since.elapsed() >= stall {
                    eprintln!("{}", message(case, since.elapsed(), seen.1));
                    for (name, handle) in HANDLES.lock().unwrap().iter() {
                        for shard in 0..handle.shards() {
                            eprintln!("  {name} {:?}", handle.shard_stats(shard));
                        }
                    }
                    std::process::abort();
                }
            }
        })
        .expect("spawn watchdog");
}
