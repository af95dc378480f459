//! `Sender`: the cloneable sending half.

use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::chan::{Chan, count_sent};
use super::queue::Refused;

/// The most items `send_many` collects from its iterator into a
/// [`SendError`] once the receiver is gone.
const MAX_RETURNED: usize = 1 << 20;

/// The most pushes in one run of `send_many` (a unit of the task's budget).
const RUN: u64 = 16;

/// The most runs of `send_many` between two announcements, also where no
/// budget ends the poll (a plain thread's executor, Tokio's
/// `unconstrained`): a waiting receiver sees a long batch every 2,048 items.
const RUNS_PER_ANNOUNCEMENT: u32 = 128;

/// A `send_many`'s pushes not yet counted, and whether some are not yet
/// announced. Counted where they were pushed, at the end of each poll;
/// announced (the receiver woken) when the batch waits, yields or ends,
/// however it ends: returning, or unwinding out of the caller's iterator (a
/// message pushed and never announced would wait for a wake-up that might
/// not come). An empty batch announces nothing.
struct Batch<'a, T> {
    chan: &'a Chan<T>,
    uncounted: u64,
    unannounced: bool,
    /// Full runs since the last announcement.
    runs: u32,
}

impl<T> Batch<'_, T> {
    fn pushed(&mut self, n: u64) {
        self.uncounted += n;
        self.unannounced |= n > 0;
    }

    fn count(&mut self) {
        let n = std::mem::take(&mut self.uncounted);
        if n > 0 {
            count_sent(n);
        }
    }

    fn announce(&mut self) {
        self.runs = 0;
        if std::mem::take(&mut self.unannounced) {
            self.chan.notify_receiver();
        }
    }
}

impl<T> Drop for Batch<'_, T> {
    fn drop(&mut self) {
        self.count();
        self.announce();
    }
}

/// The sending half of a [`channel`](crate::channel). Clone it to give
/// every producer its own; usable from any shard or thread.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = ringlane::channel::<u32>(8).unwrap();
/// let tx2 = tx.clone();
/// tx.try_send(1).unwrap();
/// tx2.try_send(2).unwrap();
/// assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(2)));
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiver is gone; the message comes back.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (tx, rx) = ringlane::channel::<&str>(1).unwrap();
/// drop(rx);
/// let err = rt.block_on(tx.send("lost?")).unwrap_err();
/// assert_eq!(err.0, "lost?");
/// ```
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`] did not send; the message comes back either way.
///
/// # Examples
///
/// ```
/// use ringlane::TrySendError;
/// let (tx, rx) = ringlane::channel::<u8>(1).unwrap();
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// drop(rx);
/// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
/// ```
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel holds `capacity` messages already.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = ringlane::channel::<u8>(1).unwrap();
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.try_send(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(t) | TrySendError::Closed(t) => t,
        }
    }
}

impl<T> Sender<T> {
    pub(super) fn new(chan: Arc<Chan<T>>) -> Self {
        Self { chan }
    }

    /// Pushes one message without waking the receiver. The ring refuses
    /// pushes once the receiver has closed it, so "closed" and "pushed"
    /// exclude each other (ring invariant 7).
    fn push_quiet(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.chan.queue.push(msg).map_err(|refused| match refused {
            Refused::Full(m) => TrySendError::Full(m),
            Refused::Closed(m) => TrySendError::Closed(m),
        })
    }

    /// Sends at once if there is room beyond what waiting
    /// [`send`](Self::send)s are owed (they go first); never waits. The
    /// message comes back in the error when the channel is full or closed.
    /// (Two `try_send`s racing on other threads can both push into room a
    /// waiting send is owed; that send then goes at the next pop. Nothing
    /// is lost.)
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, mut rx) = ringlane::channel::<u8>(1).unwrap();
    /// assert!(tx.try_send(1).is_ok());
    /// assert!(tx.try_send(2).is_err());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        if !self.chan.may_push_unqueued() {
            // Room goes to the waiting sends first, oldest first.
            return Err(match self.chan.queue.is_closed() {
                true => TrySendError::Closed(msg),
                false => TrySendError::Full(msg),
            });
        }
        self.push_quiet(msg)?;
        count_sent(1);
        self.chan.notify_receiver();
        Ok(())
    }

    /// One attempt of an awaiting send: push if the room is not owed to
    /// waiting sends, else (or if full) queue up, and push once the room
    /// covers this send's place (protocol step 3). `Ok(Err(msg))`: wait;
    /// `Err(msg)`: the receiver is gone.
    fn poll_push(
        &self,
        cx: &mut Context<'_>,
        slot: &mut WaitSlot<'_, T>,
        msg: T,
    ) -> Result<Result<(), T>, T> {
        let msg = if slot.slot.is_none() && self.chan.may_push_unqueued() {
            match self.push_quiet(msg) {
                Ok(()) => return Ok(Ok(())),
                Err(TrySendError::Closed(m)) => return Err(m),
                Err(TrySendError::Full(m)) => m,
            }
        } else {
            msg
        };
        if !self.chan.register_sender(&mut slot.slot, cx.waker()) {
            // The room is owed to older sends; a close wakes every one.
            return match self.chan.queue.is_closed() {
                true => Err(msg),
                false => Ok(Err(msg)),
            };
        }
        match self.push_quiet(msg) {
            Ok(()) => {
                slot.leave(); // the next one's turn
                Ok(Ok(()))
            }
            Err(TrySendError::Closed(m)) => Err(m),
            Err(TrySendError::Full(m)) => Ok(Err(m)),
        }
    }

    /// Sends, waiting while the channel is full (back-pressure).
    ///
    /// Room goes to sends that wait for it in the order they began waiting,
    /// as with Tokio's bounded `mpsc`: a [`try_send`](Self::try_send) or a
    /// new `send` takes only room beyond what the waiting sends are owed.
    /// Dropping a waiting send gives up its place; one that is never polled
    /// again (nor dropped) keeps the slot it is owed, as a Tokio sender
    /// holding a permit does.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the message if the receiver is gone.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes drops the message unsent.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (tx, mut rx) = ringlane::channel::<u32>(4).unwrap();
    /// rt.block_on(tx.send(9)).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(9));
    /// ```
    pub async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let mut slot = Some(msg);
        let mut wait = WaitSlot {
            chan: &self.chan,
            slot: None,
        };
        poll_fn(|cx| {
            // A sender that always finds room yields now and then (coop
            // invariant 2); the message stays in `slot` meanwhile.
            let unit = std::task::ready!(crate::executor::coop::take_unit(cx));
            let Some(msg) = slot.take() else {
                return Poll::Ready(Ok(()));
            };
            let polled = match self.poll_push(cx, &mut wait, msg) {
                Ok(Ok(())) => {
                    count_sent(1);
                    self.chan.notify_receiver();
                    Poll::Ready(Ok(()))
                }
                Ok(Err(msg)) => {
                    slot = Some(msg);
                    Poll::Pending
                }
                Err(msg) => Poll::Ready(Err(SendError(msg))),
            };
            crate::executor::coop::settle(unit, polled.is_ready(), cx);
            polled
        })
        .await
    }

    /// Sends every item in order, waking the receiver once for the whole
    /// batch (and once more each time the batch has to wait for room, or
    /// yields for the cooperative budget, and every 2,048 items of a long
    /// run). An empty batch wakes nobody.
    ///
    /// The receiver takes messages in the order their slots were claimed,
    /// and sees the batch's messages at those wake-ups. So a message another
    /// sender pushes in the middle of the batch, whose slot comes after one
    /// of the batch's, may wait for the batch's next wake-up too (though its
    /// own send woke the receiver): it is delivered with the batch, never
    /// lost. Keep the iterator quick; one that blocks holds them both.
    ///
    /// # Errors
    ///
    /// If the receiver goes away, [`SendError`] holds every item not sent,
    /// in order, as long as the iterator says it holds at most 2^20 more
    /// (`size_hint`; a `Vec`, a slice or a bounded range does). A longer or
    /// endless one (`repeat`, `from_fn`) is dropped unconsumed, after the
    /// item that could not be sent: collecting it would never end.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (tx, mut rx) = ringlane::channel::<u32>(2).unwrap();
    /// let consumer = rt.handle().spawn_pinned(0, async move {
    ///     let mut v = Vec::new();
    ///     while let Some(x) = rx.recv().await { v.push(x) }
    ///     v
    /// }).unwrap();
    /// rt.block_on(tx.send_many(0..10)).unwrap(); // waits for room as needed
    /// drop(tx);
    /// assert_eq!(rt.block_on(consumer).unwrap(), (0..10).collect::<Vec<_>>());
    /// ```
    pub async fn send_many<I: IntoIterator<Item = T>>(
        &self,
        items: I,
    ) -> Result<(), SendError<Vec<T>>> {
        let mut items = items.into_iter();
        let mut pending: Option<T> = None;
        let mut batch = Batch {
            chan: &self.chan,
            uncounted: 0,
            unannounced: false,
            runs: 0,
        };
        let mut wait = WaitSlot {
            chan: &self.chan,
            slot: None,
        };
        let result = poll_fn(|cx| {
            let poll = self.poll_many(cx, &mut items, &mut pending, &mut wait, &mut batch);
            // Counted on the thread that pushed them (a shard's counter).
            batch.count();
            poll
        })
        .await;
        drop(batch);
        result.map_err(|first| {
            let rest = match items.size_hint().1 {
                Some(n) if n <= MAX_RETURNED => items.collect(),
                _ => Vec::new(),
            };
            SendError(std::iter::once(first).chain(rest).collect())
        })
    }

    /// One poll of `send_many`: runs of pushes while there is room and
    /// budget; `Ready(Err(item))` once the receiver is gone.
    fn poll_many(
        &self,
        cx: &mut Context<'_>,
        items: &mut impl Iterator<Item = T>,
        pending: &mut Option<T>,
        wait: &mut WaitSlot<'_, T>,
        batch: &mut Batch<'_, T>,
    ) -> Poll<Result<(), T>> {
        loop {
            let Some(msg) = pending.take().or_else(|| items.next()) else {
                return Poll::Ready(Ok(()));
            };
            // Each run of pushes costs a unit of the budget: a batch into a
            // receiver that keeps draining it yields now and then (coop
            // invariant 2), announcing what it pushed. A run that pushes
            // nothing gets its unit back (invariant 3).
            let coop = match crate::executor::coop::poll_proceed(cx) {
                Poll::Ready(coop) => coop,
                Poll::Pending => {
                    *pending = Some(msg);
                    batch.announce();
                    return Poll::Pending;
                }
            };
            // A run of pushes while there is room, at most `RUN` of them: a
            // receiver that keeps up would otherwise never let the run end,
            // and the batch would hold its shard until the iterator ran dry.
            let mut run = 0;
            let mut next = Some(msg);
            while let Some(m) = next.take() {
                if self.chan.senders_queued() != 0 {
                    // Sends wait for room: `poll_push` decides whether
                    // this one goes first or queues behind them.
                    next = Some(m);
                    break;
                }
                match self.chan.queue.push(m) {
                    Ok(()) => {
                        // Recorded at once: the iterator may unwind next.
                        batch.pushed(1);
                        run += 1;
                        if run == RUN {
                            break; // and go on with a new run
                        }
                        next = items.next();
                    }
                    Err(Refused::Full(m)) => {
                        next = Some(m);
                        break;
                    }
                    Err(Refused::Closed(m)) => {
                        coop.made_progress();
                        return Poll::Ready(Err(m));
                    }
                }
            }
            if run > 0 {
                coop.made_progress();
            }
            if run == RUN {
                batch.runs += 1;
                if batch.runs == RUNS_PER_ANNOUNCEMENT {
                    batch.announce();
                }
                continue;
            }
            let Some(msg) = next else {
                coop.made_progress();
                return Poll::Ready(Ok(()));
            };
            // Full: register for room and try once more.
            match self.poll_push(cx, wait, msg) {
                Ok(Ok(())) => {
                    batch.pushed(1);
                    coop.made_progress();
                }
                Ok(Err(msg)) => {
                    *pending = Some(msg);
                    // The receiver must drain for us to make progress.
                    batch.unannounced = true;
                    batch.announce();
                    return Poll::Pending;
                }
                Err(msg) => {
                    coop.made_progress();
                    return Poll::Ready(Err(msg));
                }
            }
        }
    }

    /// Resolves once every message this task sent before it is in the
    /// receiver's queue and its receiver has been told. A ringlane send completes only
    /// after its message is in the queue; on a shard, the doorbell a send
    /// owes a parked receiver's shard waits for the end of the sending
    /// task's poll (so that a burst rings once), and `flush` rings it now,
    /// for a task that goes on working (or blocking) after it; a stealable
    /// receiver the sends woke into this shard's queue is offered to an
    /// idle shard as well. Ready at
    /// once; it also lets code written against buffering senders (which
    /// publish on flush) run unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (tx, mut rx) = ringlane::channel::<u8>(4).unwrap();
    /// rt.block_on(async { tx.send(1).await.unwrap(); tx.flush().await });
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub async fn flush(&self) {
        crate::context::with_current(|cx| {
            if cx.deque.is_empty() {
                cx.send_owed_doorbells_now();
            } else {
                // A stealable receiver the sends woke waits in this shard's
                // deque, behind the caller: an idle shard is told to take
                // it (this sends the owed doorbells too).
                crate::shard::notify_one(&cx.shared);
            }
        });
    }

    /// Whether the receiver is gone (sends will fail).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = ringlane::channel::<u8>(1).unwrap();
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.queue.is_closed()
    }

    /// Messages queued right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = ringlane::channel::<u8>(4).unwrap();
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.queue.len()
    }

    /// Whether nothing is queued right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = ringlane::channel::<u8>(4).unwrap();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.chan.queue.len() == 0
    }

    /// How many more messages a new send could push right now (as Tokio's
    /// `capacity`: the channel's size less what is queued, less the room
    /// owed to sends already waiting); [`max_capacity`](Self::max_capacity)
    /// is the size.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = ringlane::channel::<u8>(4).unwrap();
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.chan.capacity_for_new_sends()
    }

    /// The channel's size, set when it was made.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = ringlane::channel::<u8>(4).unwrap();
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.max_capacity(), 4);
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.chan.queue.capacity()
    }
}

/// A send future's waiter slot, given back when the future completes or is
/// dropped (cancelled sends leave nothing behind).
struct WaitSlot<'a, T> {
    chan: &'a Chan<T>,
    slot: Option<usize>,
}

impl<T> WaitSlot<'_, T> {
    /// Leaves the queue of waiting sends, if in it.
    fn leave(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.chan.unregister_sender(slot);
        }
    }
}

impl<T> Drop for WaitSlot<'_, T> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The stream ends after the queued messages: a waiting receiver
            // must look again (protocol step 2, with the count for a push).
            self.chan.notify_receiver();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.max_capacity())
            .finish()
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiver is gone; the message was not sent")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "TrySendError::Full(..)",
            TrySendError::Closed(_) => "TrySendError::Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "the channel is full; the message was not sent",
            TrySendError::Closed(_) => "the receiver is gone; the message was not sent",
        })
    }
}

impl<T> std::error::Error for TrySendError<T> {}
