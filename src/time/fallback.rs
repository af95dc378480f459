//! The process-wide timer thread used by timers polled off any shard.
//!
//! One lazily started thread sleeps on a condition variable until the
//! earliest deadline in a binary heap, then wakes every due timer. It exists
//! so that `ringlane::time` works in `Runtime::block_on`, Tokio tasks and
//! plain threads; shard timers never touch it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::OnceLock;
use std::task::{Poll, Waker};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct Inner {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// `Some(waker)` while pending, `None` once fired.
    timers: HashMap<u64, Option<Waker>>,
    next_id: u64,
}

struct Fallback {
    inner: Mutex<Inner>,
    cv: Condvar,
}

static GLOBAL: OnceLock<&'static Fallback> = OnceLock::new();

/// The timer thread, started on first use. If the thread cannot be
/// started (a thread limit reached), the caller's poll panics with the
/// reason, and a later timer tries again: completing the sleep at once
/// would let it fire early, and leaving it pending would hang its task.
fn global() -> &'static Fallback {
    GLOBAL.get_or_init(|| {
        let f: &'static Fallback = Box::leak(Box::new(Fallback {
            inner: Mutex::new(Inner::default()),
            cv: Condvar::new(),
        }));
        if let Err(e) = std::thread::Builder::new()
            .name("ringlane-timer".into())
            .spawn(move || run(f))
        {
            panic!(
                "ringlane: the thread that runs timers polled off the shards could not start: {e}"
            );
        }
        f
    })
}

fn run(f: &'static Fallback) {
    let mut inner = f.inner.lock();
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = inner.heap.peek().copied() {
            if at > now {
                break;
            }
            inner.heap.pop();
            if let Some(slot) = inner.timers.get_mut(&id) {
                due.extend(slot.take());
            }
        }
        if !due.is_empty() {
            drop(inner);
            for waker in due {
                // A foreign waker that panics must not end this thread: every
                // timer polled off the shards would stop firing.
                crate::executor::contain(|| waker.wake());
            }
            inner = f.inner.lock();
            continue;
        }
        match inner.heap.peek() {
            Some(Reverse((at, _))) => {
                let at = *at;
                f.cv.wait_until(&mut inner, at);
            }
            None => f.cv.wait(&mut inner),
        }
    }
}

/// Registers a timer.
pub(super) fn insert(deadline: Instant, waker: Waker) -> u64 {
    let f = global();
    let mut inner = f.inner.lock();
    let id = inner.next_id;
    inner.next_id += 1;
    let earliest = inner
        .heap
        .peek()
        .is_none_or(|Reverse((at, _))| deadline < *at);
    inner.heap.push(Reverse((deadline, id)));
    inner.timers.insert(id, Some(waker));
    if earliest {
        f.cv.notify_one();
    }
    id
}

pub(super) fn poll(id: u64, waker: &Waker) -> Poll<()> {
    let mut inner = global().inner.lock();
    // Wakers replaced or removed are dropped after the lock: a waker's drop
    // may run code that comes back here (another timer's removal).
    let (poll, _old) = match inner.timers.get_mut(&id) {
        Some(Some(w)) => {
            let old = (!w.will_wake(waker)).then(|| std::mem::replace(w, waker.clone()));
            (Poll::Pending, old)
        }
        _ => (Poll::Ready(()), inner.timers.remove(&id).flatten()),
    };
    drop(inner);
    poll
}

pub(super) fn remove(id: u64) {
    // A registered timer means the thread started.
    if let Some(f) = GLOBAL.get() {
        let mut inner = f.inner.lock();
        let removed = inner.timers.remove(&id);
        // Removed timers leave their heap entry behind until it is due;
        // compact when those outnumber the live ones, so a loop of long
        // timeouts that finish early cannot grow the heap without bound.
        if inner.heap.len() > 64 && inner.heap.len() > 2 * inner.timers.len() {
            let Inner { heap, timers, .. } = &mut *inner;
            heap.retain(|Reverse((_, id))| timers.contains_key(id));
        }
        drop(inner);
        drop(removed); // its waker, after the lock (as in `poll`)
    }
}
