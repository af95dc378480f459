//! The stall watchdog: the running case records its progress, and a
//! background thread aborts the process (printing every registered ringlane
//! shard's counters) if that progress stops for [`STALL`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::STALL;

/// Progress of the running case, on its own cache line.
#[repr(align(128))]
struct Progress(AtomicU64);

static PROGRESS: Progress = Progress(AtomicU64::new(0));
static CURRENT_CASE: Mutex<Option<String>> = Mutex::new(None);
/// Ringlane runtimes whose counters a stall report prints.
pub(crate) static HANDLES: Mutex<Vec<(&'static str, ringlane::Handle)>> = Mutex::new(Vec::new());

/// Records progress of the running case (a plain store by the one thread that drives it).
#[inline]
pub(crate) fn progress(done: u64) {
    PROGRESS.0.store(done, Ordering::Relaxed);
}

/// Marks a case as running until dropped.
pub(crate) struct Watch;

pub(crate) fn watch(case: &str) -> Watch {
    PROGRESS.0.store(0, Ordering::Relaxed);
    *CURRENT_CASE.lock().unwrap() = Some(case.to_string());
    Watch
}

impl Drop for Watch {
    fn drop(&mut self) {
        *CURRENT_CASE.lock().unwrap() = None;
    }
}

pub(crate) fn start_watchdog() {
    std::thread::Builder::new()
        .name("mailbox-watchdog".into())
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
                        "mailbox bench STALLED: case `{case}` made no progress for {:?} \
                         (stuck at {} round trips / messages): a lost wake-up?",
                        since.elapsed(),
                        seen.1
                    );
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
