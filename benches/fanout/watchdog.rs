//! The stall watchdog: the running case counts its progress (finished
//! requests and batches), and a background thread aborts the process with a
//! message and every ringlane shard's counters if that count stops moving
//! for [`STALL`], so a lost wake-up shows as a message, not as a hang.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::STALL;

/// Progress of the running case, on its own cache line.
#[repr(align(128))]
struct Progress(AtomicU64);

static PROGRESS: Progress = Progress(AtomicU64::new(0));
static CURRENT_CASE: Mutex<Option<String>> = Mutex::new(None);
/// The ringlane runtime whose counters a stall report prints.
pub(crate) static HANDLE: Mutex<Option<ringlane::Handle>> = Mutex::new(None);

/// Records one step of progress (any thread).
#[inline]
pub(crate) fn progress() {
    PROGRESS.0.fetch_add(1, Ordering::Relaxed);
}

/// Marks a case as running until dropped.
pub(crate) struct Watch;

pub(crate) fn watch(case: &str) -> Watch {
    *CURRENT_CASE.lock().unwrap() = Some(case.to_string());
    progress();
    Watch
}

impl Drop for Watch {
    fn drop(&mut self) {
        *CURRENT_CASE.lock().unwrap() = None;
    }
}

pub(crate) fn start_watchdog() {
    std::thread::Builder::new()
        .name("fanout-watchdog".into())
        .spawn(|| {
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
                if since.elapsed() >= STALL {
                    eprintln!(
                        "fanout bench STALLED: case `{case}` made no progress for {:?} \
                         (no request or batch finished): a lost wake-up or a lost task?",
                        since.elapsed(),
                    );
                    if let Some(handle) = HANDLE.lock().unwrap().as_ref() {
                        for shard in 0..handle.shards() {
                            eprintln!("  ringlane {:?}", handle.shard_stats(shard));
                        }
                    }
                    std::process::abort();
                }
            }
        })
        .expect("spawn watchdog");
}
