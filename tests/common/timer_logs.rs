//! Helpers of the timer edge tests: firing logs, recording wakers, far instants.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ringlane::time::{Sleep, sleep, sleep_until};

/// What recording wakers saw: (index, when it was woken).
pub type Log = Arc<Mutex<Vec<(usize, Instant)>>>;

pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// A waker that logs its index (and the instant) each time it is woken.
pub struct Rec {
    pub idx: usize,
    pub log: Log,
}

impl Wake for Rec {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.log.lock().unwrap().push((self.idx, Instant::now()));
    }
}

pub fn rec_waker(idx: usize, log: &Log) -> Waker {
    Waker::from(Arc::new(Rec {
        idx,
        log: log.clone(),
    }))
}

pub struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

pub fn noop_waker() -> Waker {
    Waker::from(Arc::new(Noop))
}

/// Polls a sleep once with `waker` (it registers wherever this thread is:
/// the shard's wheel on a shard, the fallback timer elsewhere).
pub fn poll_with(s: &mut Sleep, waker: &Waker) -> Poll<()> {
    Pin::new(s).poll(&mut Context::from_waker(waker))
}

pub fn logged(log: &Log) -> usize {
    log.lock().unwrap().len()
}

pub fn indices(log: &Log) -> Vec<usize> {
    log.lock().unwrap().iter().map(|(i, _)| *i).collect()
}

/// Waits on a shard (at most 3 s) until `log` holds `n` entries.
pub async fn until_logged(log: &Log, n: usize) -> bool {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let len = logged(log);
        if len >= n {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        sleep(Duration::from_millis(2)).await;
    }
}

/// Waits on a plain thread (at most 5 s) until `log` holds `n` entries.
pub fn until_logged_blocking(log: &Log, n: usize) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while logged(log) < n {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// An instant about 1.5e11 years ahead that still fits an `Instant` (not
/// the runtime's 30-year "never" clamp).
pub fn far_instant() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(u64::MAX / 4))
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 100))
}

pub const HUGE: Duration = Duration::from_secs(u64::MAX / 4);

// ---------------------------------------------------------------------------
// 1. Same-tick timers fire in registration order
// ---------------------------------------------------------------------------

pub const N: usize = 12;

/// Creates `N` sleeps due at `base + step * i`, polls them once each in
/// index order with a recording waker; `None` if one was already due.
pub fn register_in_order(base: Instant, step: Duration, log: &Log) -> Option<Vec<Sleep>> {
    let mut sleeps = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = sleep_until(base + step * i as u32);
        if poll_with(&mut s, &rec_waker(i, log)).is_ready() {
            return None;
        }
        sleeps.push(s);
    }
    Some(sleeps)
}

/// Rounds on a shard: each registers `N` timers in one poll (one tick, one
/// `elapsed`), 6 ms ahead of a freshly advanced wheel, and records the
/// order their wakers were called in.
pub async fn same_tick_rounds_on_shard(step: Duration) -> Vec<Vec<usize>> {
    let mut rounds = Vec::new();
    for _ in 0..5 {
        // A timer that fires moves the wheel's clock to now.
        sleep(Duration::from_millis(1)).await;
        let log = new_log();
        let base = Instant::now() + Duration::from_millis(6);
        let Some(sleeps) = register_in_order(base, step, &log) else {
            continue;
        };
        let last = base + step * (N as u32 - 1);
        sleep_until(last + Duration::from_millis(15)).await;
        assert!(
            until_logged(&log, N).await,
            "only {} of {N} timers fired on the shard",
            logged(&log)
        );
        rounds.push(indices(&log));
        drop(sleeps);
    }
    rounds
}
