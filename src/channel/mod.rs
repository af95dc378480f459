//! Typed, bounded, back-pressured channels between shards (and any thread).
//!
//! `channel::<T>(capacity)` gives a cloneable [`Sender`] and one
//! [`Receiver`]. Hand the receiver to a task on the shard that should own
//! the messages (`handle.spawn_pinned(shard, async move { rx.recv().await })`)
//! and the senders to anyone: other shards, Tokio tasks, plain threads.
//!
//! How a message travels (ADR 0007):
//! 1. The sender pushes it into the channel's preallocated lock-free ring
//!    (`queue.rs`'s `SlotRing`): messages are stored inline, so no send
//!    allocates, for any `T`, and the receiver finds a message by looking at
//!    the slot that holds it, so one cache line crosses the cores per
//!    message.
//! 2. Only if the receiving task is waiting does the sender wake it. That
//!    wake goes through the receiving shard's mailbox: no syscall if the
//!    shard is running (it runs the task on its next tick), one doorbell
//!    (`IORING_OP_MSG_RING` from a shard, an eventfd write from elsewhere)
//!    if it is parked, coalesced to one per park however many senders.
//! 3. The receiver drains every message it finds before waiting again, so
//!    a burst costs one wake-up.
//!
//! Guarantees: FIFO per sender (a single ring; a sender's pushes are
//! ordered, batched or not); no message lost or duplicated: a send either
//! puts the message in the ring or returns it in the error; dropping every
//! sender ends the receiver's stream after the queued messages; closing the
//! receiver makes later sends fail with the message returned, and its
//! stream ends once every message that was sent has been received (closing
//! and pushing exclude each other: the close is a mark in the ring's tail,
//! and a push claims its slot only from an unmarked tail, `queue.rs`
//! invariant 7).
//!
//! Wait/notify protocol (both directions use the same Dekker pattern):
//! 1. Receiver: pop; if empty, store its waker and set `rx_waiting`, full
//!    fence, pop again (and look at the sender count) before returning
//!    `Pending`. A receiver that finds `rx_waiting` already set as it
//!    would set it (its own store, fenced when its earlier wait made it)
//!    stores nothing and needs no new fence.
//! 2. Sender: push, full fence, and only if `rx_waiting` is set, clear it
//!    and wake the stored waker.
//! 3. A send that finds no room for it joins the queue of waiting sends
//!    (`tx_queued` counts them), fence, and tries again if the room covers
//!    its place (the send at place `i` may push once more than `i` slots
//!    are free); a receiver that frees space fences and, only if sends are
//!    queued, wakes those whose place the room now covers. A send leaves
//!    the queue when it pushes or is dropped, and the same wake runs (so a
//!    woken send that is cancelled passes its room on). A push that is not
//!    a waiting send's (`try_send`, a new `send`) takes only room beyond
//!    what the waiting sends are owed: room goes to them oldest first, as
//!    permits do in Tokio's bounded `mpsc`.
//!
//! Either the waiter's second look sees the other side's write, or the
//! other side sees the flag and wakes it.
//!
//! On a shard with a spin window the receiver is *watched* instead
//! (`watch.rs`): step 1 registers the channel with the shard, and step 2
//! only rings the shard's doorbell if it is parked.

mod chan;
mod queue;
mod receiver;
mod sender;
pub(crate) mod watch;

/// What `queue.rs` is written against: `std` here; `loom-models/` compiles
/// the same file against loom's types to check it exhaustively.
mod sync {
    pub(crate) use crate::padded::Padded;
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering, fence};

    /// A producer waiting for another to move on.
    pub(crate) fn spin() {
        std::hint::spin_loop();
    }

    /// `std`'s `UnsafeCell` with loom's access shape.
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

use std::sync::Arc;

pub use receiver::Receiver;
pub use sender::{SendError, Sender, TrySendError};

use crate::error::Error;

/// Creates a bounded channel holding up to `capacity` messages.
///
/// # Errors
///
/// [`Error::InvalidConfig`] if `capacity` is zero, or too large to allocate
/// (the ring's slots are allocated up front).
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
/// let (tx, mut rx) = ringlane::channel::<String>(64).unwrap();
/// let consumer = rt.handle().spawn_pinned(1, async move {
///     let mut got = Vec::new();
///     while let Some(msg) = rx.recv().await {
///         got.push(msg);
///     }
///     got
/// }).unwrap();
/// rt.block_on(async move {
///     tx.send("hello".to_string()).await.unwrap();
///     tx.send_many(["a".to_string(), "b".to_string()]).await.unwrap();
/// }); // tx dropped: the stream ends after the queued messages
/// assert_eq!(rt.block_on(consumer).unwrap(), ["hello", "a", "b"]);
/// ```
pub fn channel<T: Send>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), Error> {
    if capacity == 0 {
        return Err(Error::InvalidConfig(
            "a channel needs a capacity of at least 1",
        ));
    }
    let chan = chan::Chan::new(capacity).ok_or(Error::InvalidConfig(
        "a channel's capacity is too large to allocate",
    ))?;
    let chan = Arc::new(chan);
    Ok((Sender::new(chan.clone()), Receiver::new(chan)))
}

/// The raw lane: a channel of `u64` values. Every ringlane channel stores its
/// messages inline in a preallocated ring, so this lane (like any channel of
/// small `Copy` values) sends without allocating; it exists as a name for
/// the common case of passing ids, offsets or tokens between shards.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = ringlane::raw_channel(1024).unwrap();
/// tx.try_send(42).unwrap();
/// assert_eq!(rx.try_recv(), Ok(42));
/// ```
pub fn raw_channel(capacity: usize) -> Result<(RawSender, RawReceiver), Error> {
    channel(capacity)
}

/// Sending half of the raw `u64` lane.
///
/// # Examples
///
/// ```
/// use ringlane::RawSender;
/// fn announce(tx: &RawSender, ids: &[u64]) -> usize {
///     ids.iter().filter(|&&id| tx.try_send(id).is_ok()).count()
/// }
/// let (tx, mut rx) = ringlane::raw_channel(2).unwrap();
/// assert_eq!(announce(&tx, &[10, 20, 30]), 2); // the third does not fit
/// assert_eq!(rx.try_recv(), Ok(10));
/// ```
pub type RawSender = Sender<u64>;
/// Receiving half of the raw `u64` lane.
///
/// # Examples
///
/// ```
/// use ringlane::RawReceiver;
/// fn drain(rx: &mut RawReceiver) -> Vec<u64> {
///     std::iter::from_fn(|| rx.try_recv().ok()).collect()
/// }
/// let (tx, mut rx) = ringlane::raw_channel(4).unwrap();
/// tx.try_send(1).unwrap();
/// tx.try_send(2).unwrap();
/// assert_eq!(drain(&mut rx), [1, 2]);
/// ```
pub type RawReceiver = Receiver<u64>;

/// Why [`Receiver::try_recv`] returned no message.
///
/// # Examples
///
/// ```
/// use ringlane::TryRecvError;
/// let (tx, mut rx) = ringlane::channel::<u8>(1).unwrap();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued right now; senders remain.
    Empty,
    /// Nothing queued and every sender is gone: the stream has ended.
    Disconnected,
}

impl std::fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "the channel is empty",
            TryRecvError::Disconnected => "the channel is empty and every sender is gone",
        })
    }
}

impl std::error::Error for TryRecvError {}
