//! Channels against foreign wakers whose clone or drop panics: no message
//! lost or delivered twice, no send stranded, and a dropped receiver
//! closes the channel whatever its last waker does.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use ringlane::{SendError, TryRecvError, TrySendError, channel};

/// A waker whose clone or drop panics while armed, counting its wakes.
#[derive(Default)]
struct Trap {
    clone_panics: AtomicBool,
    drop_panics: AtomicBool,
    wakes: AtomicUsize,
}

const VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn trap(t: &Arc<Trap>) -> Waker {
    let data = Arc::into_raw(t.clone()).cast::<()>();
    // SAFETY: `data` is an `Arc<Trap>` reference the vtable's functions
    // own, count and release.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

/// The `Trap` behind `data`, borrowed.
///
/// # Safety
///
/// `data` came from `trap` and its reference is still held.
unsafe fn get<'a>(data: *const ()) -> &'a Trap {
    // SAFETY: as the caller promises.
    unsafe { &*data.cast::<Trap>() }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live reference (the vtable's contract).
    if unsafe { get(data) }.clone_panics.load(Ordering::SeqCst) {
        panic!("a waker's clone panics");
    }
    // SAFETY: a live `Arc<Trap>` reference; the new waker owns one more.
    unsafe { Arc::increment_strong_count(data.cast::<Trap>()) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: the waker's own reference, given up by `drop_waker`.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: a live reference (the vtable's contract).
    unsafe { get(data) }.wakes.fetch_add(1, Ordering::SeqCst);
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: a live reference, read before it is given up.
    let panics = unsafe { get(data) }.drop_panics.load(Ordering::SeqCst);
    // SAFETY: the waker's own reference, given up once.
    unsafe { Arc::decrement_strong_count(data.cast::<Trap>()) };
    if panics {
        panic!("a waker's drop panics");
    }
}

fn poll_send<F: Future + ?Sized>(f: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(waker))
}

/// Expected: a dropped receiver closes the channel (sends fail with their
/// message back) even when the waker its last wait left panics as it is
/// dropped.
///
/// Why it may fail: the receiver's drop dropped that waker before closing
/// the ring, so the panic skipped the close; sends went on "succeeding"
/// into a ring nobody reads, and a `send().await` waited forever.
#[test]
fn a_receivers_waker_that_panics_when_dropped_does_not_keep_the_channel_open() {
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    let t = Arc::new(Trap::default());
    let w = trap(&t);
    assert!(rx.poll_recv(&mut Context::from_waker(&w)).is_pending());
    drop(w); // the channel holds the last clone
    t.drop_panics.store(true, Ordering::SeqCst);
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(rx)));
    t.drop_panics.store(false, Ordering::SeqCst);
    assert!(dropped.is_ok(), "the waker's panic unwound into the drop");
    assert!(tx.is_closed(), "the channel stayed open");
    assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
}

/// Expected: a pop that frees room for a waiting send hands over the
/// popped message and wakes that send, even when the send's waker panics
/// when cloned.
///
/// Why it may fail: the pop cloned the waiting send's waker under the
/// send queue's lock after taking the message; the clone's panic unwound
/// out of `try_recv` and dropped the message (neither received nor
/// returned), and the send was never woken.
#[test]
fn a_waiting_sends_waker_that_panics_when_cloned_loses_no_popped_message() {
    let (tx, mut rx) = channel::<String>(1).unwrap();
    tx.try_send("first".into()).unwrap();
    let t = Arc::new(Trap::default());
    let w = trap(&t);
    let mut send = Box::pin(tx.send("second".into()));
    assert!(poll_send(send.as_mut(), &w).is_pending(), "full");
    t.clone_panics.store(true, Ordering::SeqCst);
    let got = catch_unwind(AssertUnwindSafe(|| rx.try_recv()));
    t.clone_panics.store(false, Ordering::SeqCst);
    assert_eq!(
        got.ok(),
        Some(Ok("first".to_string())),
        "the popped message"
    );
    assert_eq!(
        t.wakes.load(Ordering::SeqCst),
        1,
        "the waiting send was woken"
    );
    assert!(matches!(poll_send(send.as_mut(), &w), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok("second".to_string()));
    drop(send);
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// Expected: a receiver dropped while sends wait for room wakes each of
/// them with its message back, even when one's waker panics when cloned.
///
/// Why it may fail: the close cloned every waiting send's waker; the
/// panicking clone unwound out of the receiver's drop, so no waiting send
/// was woken (each stranded) and the queued messages were not drained.
#[test]
fn a_close_wakes_every_waiting_send_even_past_a_waker_that_panics_when_cloned() {
    let (tx, rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let (bad, good) = (Arc::new(Trap::default()), Arc::new(Trap::default()));
    let (bad_w, good_w) = (trap(&bad), trap(&good));
    let mut first = Box::pin(tx.send(1));
    let mut second = Box::pin(tx.send(2));
    assert!(poll_send(first.as_mut(), &bad_w).is_pending());
    assert!(poll_send(second.as_mut(), &good_w).is_pending());
    bad.clone_panics.store(true, Ordering::SeqCst);
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(rx)));
    bad.clone_panics.store(false, Ordering::SeqCst);
    assert!(dropped.is_ok(), "a clone's panic unwound into the drop");
    assert_eq!(bad.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(good.wakes.load(Ordering::SeqCst), 1);
    assert!(matches!(
        poll_send(first.as_mut(), &bad_w),
        Poll::Ready(Err(SendError(1)))
    ));
    assert!(matches!(
        poll_send(second.as_mut(), &good_w),
        Poll::Ready(Err(SendError(2)))
    ));
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Expected: a send that waited, then pushes, reports `Ok` and wakes the
/// waiting receiver, even when its own waker (which it leaves the queue
/// with) panics as it is dropped.
///
/// Why it may fail: leaving the queue dropped the send's waker before the
/// wakes it owed, uncontained: the panic unwound out of the send after its
/// message was in the ring (a caller retrying sent it twice), and the
/// receiver was never woken for it.
#[test]
fn a_send_whose_waker_panics_when_dropped_still_wakes_the_receiver() {
    let (tx, mut rx) = channel::<u32>(1).unwrap();
    tx.try_send(0).unwrap();
    let t = Arc::new(Trap::default());
    let w = trap(&t);
    let mut send = Box::pin(tx.send(1));
    assert!(poll_send(send.as_mut(), &w).is_pending(), "full");
    assert_eq!(rx.try_recv(), Ok(0)); // room for the waiting send
    let rx_wakes = Arc::new(Count::default());
    let rx_waker = Waker::from(rx_wakes.clone());
    assert!(
        rx.poll_recv(&mut Context::from_waker(&rx_waker))
            .is_pending()
    );
    t.drop_panics.store(true, Ordering::SeqCst);
    let sent = catch_unwind(AssertUnwindSafe(|| poll_send(send.as_mut(), &w)));
    t.drop_panics.store(false, Ordering::SeqCst);
    assert!(matches!(sent, Ok(Poll::Ready(Ok(())))), "the send unwound");
    assert_eq!(
        rx_wakes.0.load(Ordering::SeqCst),
        1,
        "the receiver was not woken"
    );
    assert_eq!(rx.try_recv(), Ok(1));
}
