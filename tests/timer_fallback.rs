//! The process-wide timer thread that fires timers polled off the shards
//! (`Runtime::block_on`, Tokio tasks, plain threads). A binary of its own:
//! the thread is shared by the whole process, and a regression here would
//! stall every other test's off-shard timers.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::mpsc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Panics when woken, as a buggy foreign executor's waker might; says
/// first that it was called.
struct Panicky(std::sync::atomic::AtomicBool);

impl Wake for Panicky {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        panic!("a foreign waker that panics (expected in this test)");
    }
}

/// Sends on a channel when woken.
struct Notify(std::sync::Mutex<mpsc::Sender<()>>);

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        let _ = self.0.lock().unwrap().send(());
    }
}

/// A timer whose waker panics used to unwind the timer thread: it died,
/// and every timer polled off the shards afterwards stayed pending forever.
#[test]
fn a_panicking_waker_does_not_stop_the_off_shard_timers() {
    let called = Arc::new(Panicky(false.into()));
    let panicky = Waker::from(called.clone());
    // 30 ms: long enough that a test thread preempted between making the
    // sleep and polling it (a loaded 2-core machine) still finds it
    // pending (a 1 ms one was found done once).
    let mut doomed = pin!(ringlane::time::sleep(Duration::from_millis(30)));
    let first = doomed.as_mut().poll(&mut Context::from_waker(&panicky));
    assert!(
        first.is_pending(),
        "a 30 ms sleep is pending at its first poll"
    );
    // The timer thread fires it, and its waker panics.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !called.0.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the timer thread never woke the first sleep's waker"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let (tx, rx) = mpsc::channel();
    let notify = Waker::from(Arc::new(Notify(std::sync::Mutex::new(tx))));
    let mut cx = Context::from_waker(&notify);
    // 200 ms, pending at its first poll for the same reason.
    let mut later = pin!(ringlane::time::sleep(Duration::from_millis(200)));
    assert!(later.as_mut().poll(&mut cx).is_pending());
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the timer thread no longer fires timers after a waker panicked");
    assert_eq!(later.as_mut().poll(&mut cx), Poll::Ready(()));
}
