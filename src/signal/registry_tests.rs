//! The registry's one race (invariant 3), made deterministic by a hook.

use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crate::signal::unix::{SignalKind, signal};
use crate::test_hook::KeyedHook;

/// Run by a listener between its first look at the count and the
/// waiters' lock.
pub(super) static BEFORE_WAIT_LOCK: KeyedHook = KeyedHook::new();

/// Wake rounds the signal thread has finished.
pub(super) static WAKE_ROUNDS: AtomicU64 = AtomicU64::new(0);

/// Expected: a delivery that lands after a listener's first look at the
/// count, and whose wake round ends before the listener registers its
/// waker, is still reported by that poll.
///
/// Why it may fail: the listener registered without looking at the count
/// again under the lock; the wake round had already passed, so nothing
/// would ever wake it for that delivery (a lost wake-up).
#[test]
fn a_delivery_between_a_listeners_look_and_its_registration_is_not_lost() {
    let signum = libc::SIGRTMIN() + 7;
    let mut listener = signal(SignalKind::from_raw(signum)).unwrap();
    BEFORE_WAIT_LOCK.set(signum as usize, move || {
        let rounds = WAKE_ROUNDS.load(Ordering::SeqCst);
        // SAFETY: `raise` has no preconditions; the handler is installed.
        assert_eq!(unsafe { libc::raise(signum) }, 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while WAKE_ROUNDS.load(Ordering::SeqCst) == rounds {
            assert!(std::time::Instant::now() < deadline, "no wake round");
            std::thread::yield_now();
        }
    });
    let polled = listener.poll_recv(&mut Context::from_waker(Waker::noop()));
    assert_eq!(polled, Poll::Ready(Some(())), "the delivery was lost");
}
