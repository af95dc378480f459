//! `Receiver`: the single receiving half.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::TryRecvError;
use super::chan::{Chan, count_received};

/// The receiving half of a [`channel`](crate::channel). Move it into the
/// task (on the shard) that should own the messages.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (tx, mut rx) = ringlane::channel::<u8>(4).unwrap();
/// let j = rt.handle().spawn_pinned(0, async move { rx.recv().await }).unwrap();
/// tx.try_send(5).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), Some(5));
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// This receiver closed the ring (only a receiver closes it). Until
    /// then the ring cannot be drained, and an empty look need not read
    /// `tail`: that read would pull the line every send writes over to
    /// this core, and each send would then pay to take it back.
    closed: bool,
}

impl<T> Receiver<T> {
    pub(super) fn new(chan: Arc<Chan<T>>) -> Self {
        Self {
            chan,
            closed: false,
        }
    }

    /// The oldest message, if its sender has finished writing it.
    fn take(&mut self) -> Option<T> {
        // SAFETY: a channel has one `Receiver` (not `Clone`), and `&mut self`
        // keeps its pops on one thread at a time.
        unsafe { self.chan.queue.pop() }
    }

    /// Up to `limit` queued messages into `buf`, without waiting; wakes
    /// waiting senders once.
    fn drain(&mut self, buf: &mut Vec<T>, limit: usize) -> usize {
        let mut n = 0;
        while n < limit {
            let Some(m) = self.take() else {
                break;
            };
            buf.push(m);
            n += 1;
        }
        if n > 0 {
            count_received(n as u64);
            self.chan.notify_senders();
        }
        n
    }

    fn pop(&mut self) -> Option<T> {
        let m = self.take()?;
        count_received(1);
        self.chan.notify_senders();
        Some(m)
    }

    /// Takes a message if one is queued, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringlane::channel::<u8>(4).unwrap();
    /// assert!(rx.try_recv().is_err());
    /// tx.try_send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(m) = self.pop() {
            return Ok(m);
        }
        let chan = &self.chan;
        // Every sender gone, or closed and every message pushed before the
        // close taken (ring invariant 7): no message can arrive any more.
        let ended =
            chan.senders.load(Ordering::SeqCst) == 0 || (self.closed && chan.queue.is_drained());
        if ended {
            // A push that raced the end is visible now.
            return self.pop().ok_or(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }

    /// Stops new sends (they fail with the message returned) while letting
    /// this receiver take what is already queued; `recv` then returns
    /// `None` once the queue is empty, even if senders remain. Every message
    /// a sender was told was sent is received before that `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringlane::channel::<u8>(4).unwrap();
    /// tx.try_send(1).unwrap();
    /// rx.close();
    /// assert!(tx.try_send(2).is_err());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn close(&mut self) {
        self.closed = true;
        self.chan.queue.close();
        self.chan.wake_senders();
    }

    /// How many more messages a new send could push right now (as Tokio's
    /// `capacity`: room owed to sends already waiting is not counted).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringlane::channel::<u8>(4).unwrap();
    /// tx.try_send(1).unwrap();
    /// assert_eq!((rx.capacity(), rx.max_capacity()), (3, 4));
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.capacity_for_new_sends()
    }

    /// The channel's size, set when it was made.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = ringlane::channel::<u8>(4).unwrap();
    /// assert_eq!(rx.max_capacity(), 4);
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.chan.queue.capacity()
    }

    /// Messages queued right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringlane::channel::<u8>(4).unwrap();
    /// tx.try_send(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.queue.len()
    }

    /// Whether nothing is queued right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_tx, rx) = ringlane::channel::<u8>(4).unwrap();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.chan.queue.len() == 0
    }
}

/// Waiting for messages (`T: 'static`: a waiting receiver's channel may
/// be watched by its shard, which holds it for a while).
impl<T: Send + 'static> Receiver<T> {
    /// Polls for the next message: `Ready(None)` once every sender is gone
    /// and the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (tx, mut rx) = ringlane::channel::<u8>(4).unwrap();
    /// tx.try_send(3).unwrap();
    /// assert_eq!(rt.block_on(std::future::poll_fn(|cx| rx.poll_recv(cx))), Some(3));
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // A receiver that always finds a message yields now and then
        // (coop invariant 2).
        let unit = std::task::ready!(crate::executor::coop::take_unit(cx));
        let polled = self.poll_recv_unbudgeted(cx);
        crate::executor::coop::settle(unit, polled.is_ready(), cx);
        polled
    }

    /// `poll_recv` without the budget.
    #[inline]
    fn poll_recv_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.try_recv() {
            Ok(m) => return Poll::Ready(Some(m)),
            Err(TryRecvError::Disconnected) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        self.chan.register_receiver(cx.waker());
        match self.try_recv() {
            Ok(m) => Poll::Ready(Some(m)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// Waits for the next message; `None` once every sender is gone and
    /// the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (tx, mut rx) = ringlane::channel::<u8>(4).unwrap();
    /// drop(tx);
    /// assert_eq!(rt.block_on(rx.recv()), None);
    /// ```
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Waits for at least one message, then moves up to `limit` queued
    /// messages into `buf`; returns how many (0 once the stream has ended).
    /// Cheaper per message than `recv` for bursts.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (tx, mut rx) = ringlane::channel::<u8>(8).unwrap();
    /// for i in 0..5 { tx.try_send(i).unwrap(); }
    /// let mut buf = Vec::new();
    /// assert_eq!(rt.block_on(rx.recv_many(&mut buf, 3)), 3);
    /// assert_eq!(buf, [0, 1, 2]);
    /// ```
    pub async fn recv_many(&mut self, buf: &mut Vec<T>, limit: usize) -> usize {
        if limit == 0 {
            return 0;
        }
        match self.recv().await {
            None => 0,
            Some(first) => {
                buf.push(first);
                1 + self.drain(buf, limit - 1)
            }
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.receiver_gone();
        self.close();
        // Messages still queued are dropped here, on the receiver's side,
        // including any from a sender that was mid-push when we closed (its
        // stamp is a few instructions away: ring invariant 7).
        // A message whose destructor panics does not stop the drain: the
        // rest are still dropped here (as Tokio's receiver does), and the
        // first panic goes on once the ring is empty (unless this drop runs
        // while unwinding already, where a second panic would abort).
        let mut panic = None;
        let mut looks = 0u32;
        while !self.chan.queue.is_drained() {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.take().is_some())) {
                Ok(true) => {}
                Ok(false) => {
                    looks += 1;
                    if looks % 64 == 0 {
                        std::thread::yield_now(); // the sender may be preempted
                    } else {
                        std::hint::spin_loop();
                    }
                }
                Err(payload) => match panic {
                    None => panic = Some(payload),
                    // Contained: a payload's destructor may panic too.
                    Some(_) => crate::executor::drop_payload(payload),
                },
            }
        }
        if let Some(payload) = panic {
            if !std::thread::panicking() {
                std::panic::resume_unwind(payload);
            }
            crate::executor::drop_payload(payload);
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::super::watch::WatchList;

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A receiver's last wait was watched by its shard, the wait was
    /// dropped (a timeout, a `select!`) and then the receiver, while a
    /// sender lives on: the shard must forget the channel, or it keeps the
    /// ring and the task's waker and looks at them every tick for as long
    /// as the sender lives.
    #[test]
    fn a_watched_receiver_dropped_while_senders_live_leaves_the_watch_list() {
        let (tx, rx) = crate::channel::<u64>(4).unwrap();
        let watches = WatchList::default();
        watches.add(&rx.chan, Waker::noop());
        assert!(!watches.has_news(), "nothing happened yet");
        assert!(!watches.wake_ready());
        drop(rx);
        assert!(watches.has_news(), "a dropped receiver is news");
        assert!(watches.wake_ready());
        assert!(
            watches.is_empty(),
            "the shard no longer watches the channel"
        );
        watches.forget_ended();
        assert_eq!(watches.len(), 0, "the shard forgot the channel");
        assert!(tx.try_send(1).is_err(), "the sender sees the close");
    }

    /// A ping-pong's receiver waits again right after each wake-up: its
    /// entry (and the task's waker) is kept across the wake, so a wait
    /// clones no waker and adds no entry, until the shard forgets ended
    /// watches (before it parks).
    #[test]
    fn a_receiver_that_waits_again_after_each_wake_reuses_its_watch_entry() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::task::{RawWaker, RawWakerVTable};
        static CLONES: AtomicUsize = AtomicUsize::new(0);
        static WAKES: AtomicUsize = AtomicUsize::new(0);
        static VTABLE: RawWakerVTable = RawWakerVTable::new(
            |p| {
                CLONES.fetch_add(1, Ordering::SeqCst);
                RawWaker::new(p, &VTABLE)
            },
            |_| {
                WAKES.fetch_add(1, Ordering::SeqCst);
            },
            |_| {
                WAKES.fetch_add(1, Ordering::SeqCst);
            },
            |_| {},
        );
        // SAFETY: the vtable's functions ignore the data pointer.
        let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let (tx, mut rx) = crate::channel::<u64>(4).unwrap();
        let watches = WatchList::default();
        for i in 0..100 {
            watches.add(&rx.chan, &waker);
            assert!(!watches.is_empty());
            tx.try_send(i).unwrap();
            assert!(watches.wake_ready(), "message {i} woke nobody");
            assert!(watches.is_empty(), "a woken receiver no longer waits");
            assert!(!watches.wake_ready(), "an ended watch woke again");
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert_eq!(WAKES.load(Ordering::SeqCst), 100, "one wake per message");
        assert_eq!(
            CLONES.load(Ordering::SeqCst),
            1,
            "the waker was cloned per wait"
        );
        assert_eq!(watches.len(), 1, "one entry for the channel");
        assert_eq!(
            Arc::strong_count(&rx.chan),
            3,
            "the entry holds the channel"
        );
        watches.forget_ended();
        assert_eq!(watches.len(), 0, "forgotten with its waker");
        let chan = Arc::strong_count(&rx.chan);
        assert_eq!(
            chan, 2,
            "the list let go of the channel (receiver and sender hold it)"
        );
    }

    /// A sender on the watching shard wakes the waiting receiver at once
    /// (step W4): once per wait, and only a listed channel.
    #[test]
    fn a_sender_on_the_watching_shard_wakes_a_waiting_receiver_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (tx, rx) = crate::channel::<u64>(4).unwrap();
        let (_other_tx, other_rx) = crate::channel::<u64>(4).unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let watches = WatchList::default();
        let key = |c: &Arc<super::super::chan::Chan<u64>>| Arc::as_ptr(c) as *const ();
        assert!(!watches.wake_now(key(&rx.chan)), "an unlisted channel");
        watches.add(&rx.chan, &Waker::from(count.clone()));
        tx.try_send(1).unwrap();
        assert!(!watches.wake_now(key(&other_rx.chan)), "another channel");
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(watches.wake_now(key(&rx.chan)));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken at once");
        assert!(watches.is_empty(), "the watch ended");
        assert!(
            watches.wake_now(key(&rx.chan)),
            "nothing to do: not waiting"
        );
        assert!(!watches.wake_ready(), "and no second wake at the tick");
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        watches.add(&rx.chan, &Waker::from(count.clone()));
        assert!(watches.wake_now(key(&rx.chan)));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            2,
            "its next wait is woken too"
        );
        assert_eq!(watches.len(), 1, "one entry throughout");
    }

    /// Ended watches are kept for at most 64 channels: a shard that never
    /// parks does not hold every channel (and waker) it ever watched.
    #[test]
    fn ended_watches_are_forgotten_once_64_pile_up_on_a_shard_that_never_parks() {
        let watches = WatchList::default();
        let mut chans = Vec::new();
        for i in 0..200u64 {
            let (tx, rx) = crate::channel::<u64>(1).unwrap();
            watches.add(&rx.chan, Waker::noop());
            tx.try_send(i).unwrap();
            assert!(watches.wake_ready());
            chans.push((tx, rx));
            assert!(watches.len() <= 64, "{} entries kept", watches.len());
        }
        // Watches that all began before any ended (no channel joins after
        // they end) are bounded too.
        let watches = WatchList::default();
        let pairs: Vec<_> = (0..100)
            .map(|_| crate::channel::<u64>(1).unwrap())
            .collect();
        for (_, rx) in &pairs {
            watches.add(&rx.chan, Waker::noop());
        }
        for (tx, _) in &pairs {
            tx.try_send(1).unwrap();
        }
        assert!(watches.wake_ready());
        assert!(watches.is_empty(), "every receiver was woken");
        assert!(watches.len() < 64, "{} ended entries kept", watches.len());
    }

    /// An idle receiver polled again and again with a new waker each time
    /// (a fresh `select!` or `FuturesUnordered` per loop) must not grow its
    /// shard's watch list, which every spin look and park walks; the last
    /// waker is the one woken.
    #[test]
    fn a_receiver_polled_with_ever_new_wakers_keeps_one_watch_entry() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (tx, rx) = crate::channel::<u64>(4).unwrap();
        let watches = WatchList::default();
        let counts: Vec<Arc<Count>> = (0..1000)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        for c in &counts {
            watches.add(&rx.chan, &Waker::from(c.clone()));
        }
        assert_eq!(watches.len(), 1, "one entry per channel");
        tx.try_send(7).unwrap();
        assert!(watches.wake_ready());
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken[999], 1, "the last wait's waker is woken");
        assert_eq!(woken.iter().sum::<usize>(), 1, "and only it");
        drop(rx);
    }
}
