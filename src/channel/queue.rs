//! `SlotRing`: the channel's bounded multi-producer, single-consumer ring,
//! built so that a message crosses cores in the cache line that holds it,
//! and that line is written by producers only.
//!
//! Each slot carries a *stamp* next to its value. A position counts laps
//! and indices (`lap * one_lap + index`; `mark`, a power of two above the
//! capacity, bounds the index, and `one_lap` is twice `mark`). The producer
//! of position `p` stamps its slot `p + 1` once the value is written; the
//! consumer reads the value of `head` when the stamp says `head + 1`, and
//! writes nothing to the slot. A slot's stamp is always that of the last
//! position written to it, at most one lap old, so it can only say `p + 1`
//! for the position `p` whose message it holds.
//!
//! Invariants (the loom model in `loom-models/` checks them):
//! 1. Only the producer whose `compare_exchange` moved `tail` off position
//!    `p` writes the value of `p`'s slot, and only once the message of the
//!    slot's previous lap (`p - one_lap`) was taken: it claims `p` only
//!    after seeing, with Acquire, a `head` past that position, either in
//!    `head` itself or in `head_seen`, the producers' copy of it (stored
//!    with Release by a producer that read `head` with Acquire, so the
//!    consumer's read of the old value happens before the new write).
//!    `head_seen` may be stale (older than `head`), which only makes a
//!    producer look at `head` itself; it is never ahead of `head`.
//! 2. Only the consumer reads a value, and only once its stamp is `p + 1`;
//!    the stamp's Release store after the write and Acquire load before the
//!    read order the two.
//! 3. The consumer looks at the *slot* at `head`, never at `tail`, and
//!    producers look at `head` only when their copy shows no room: when
//!    one producer and the consumer ping-pong, `tail` stays in the
//!    producer's cache, `head` in the consumer's, and the slot's line is the
//!    only one that moves with each message (a consumer that wrote its
//!    stamp would make the next push fetch the line back first: one more
//!    crossing per message). Producers read `head` about once per
//!    `capacity` messages, and a push refused as full refreshes the copy. A slot not yet stamped reads as empty even if a later
//!    producer has finished (FIFO: the consumer never skips a position);
//!    every producer wakes the consumer after its own stamp store (channel
//!    protocol step 2), so the consumer looks again once the late slot is
//!    stamped. A batch (`send_many`) wakes it once per batch instead (at
//!    the batch's announcements, `sender.rs`), so a later producer's
//!    message behind a batch's late slot waits for that announcement:
//!    delayed, never lost.
//! 4. Only the consumer writes `head`, with Release, after it read the
//!    slot's value.
//! 5. "Full" is reported only after a full fence shows `head` exactly one
//!    lap behind `tail`: a producer never mistakes a slot the consumer is
//!    freeing, a stale `head_seen`, or a stale `tail`, for a full ring.
//! 6. The consumer side (`pop`) runs on one thread at a time (`unsafe` to
//!    call: the `Receiver`, which is not `Clone`, owns it); `has_ready` and
//!    `len` only read atomics and may run anywhere.
//! 7. Closing sets the `mark` bit of `tail` (never of a stamp or `head`).
//!    A producer claims a position only by an exchange from an unmarked
//!    `tail`, so after the mark no position can be claimed: the messages
//!    still to come are exactly those of positions before the marked
//!    `tail`, and the ring is *drained* once `head` reaches it. A push is
//!    never refused once its position is claimed (no step between the
//!    claim and the stamp can fail), so a drained ring is final.

use std::mem::MaybeUninit;

use super::sync::{AtomicUsize, Ordering, Padded, UnsafeCell, fence, spin};

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// The largest capacity whose positions leave at least 2^4 laps in a
/// `usize` (`one_lap` is at most four times the capacity).
pub(crate) const MAX_CAPACITY: usize = usize::MAX >> 6;

/// Why [`SlotRing::push`] gave its value back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused<T> {
    /// The ring holds `capacity` messages.
    Full(T),
    /// The ring was closed.
    Closed(T),
}

/// The producers' block: what every push reads, and what pushes write.
struct Producers {
    /// The next position a producer claims, and the `mark` bit once closed.
    tail: AtomicUsize,
    /// A `head` some producer read (invariant 1): at or behind `head`.
    head_seen: AtomicUsize,
}

/// A bounded MPSC ring of exactly `capacity` messages stored inline.
pub(crate) struct SlotRing<T> {
    /// Written by producers (and `close`) only.
    producers: Padded<Producers>,
    /// The next position the consumer takes; written by the consumer only.
    head: Padded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    mark: usize,
    one_lap: usize,
}

// SAFETY: values move from producers to the consumer (`T: Send`); every
// access to a slot's value is ordered by its stamp (invariants 1-2).
unsafe impl<T: Send> Send for SlotRing<T> {}
// SAFETY: as above; shared use is the point of the ring, and no `&T` is
// ever handed out, so `T: Sync` is not needed.
unsafe impl<T: Send> Sync for SlotRing<T> {}

impl<T> SlotRing<T> {
    /// A ring of `capacity` slots (`capacity >= 1`).
    #[allow(dead_code)] // the loom models' constructor
    pub(crate) fn new(capacity: usize) -> Self {
        Self::try_new(capacity).expect("a SlotRing of a sane capacity")
    }

    /// A ring of `capacity` slots (`capacity >= 1`), or `None` when the
    /// positions would not fit a `usize` (`one_lap` must leave room for
    /// laps) or the slots cannot be allocated.
    pub(crate) fn try_new(capacity: usize) -> Option<Self> {
        assert!(capacity >= 1, "a SlotRing needs at least one slot");
        if capacity > MAX_CAPACITY {
            return None;
        }
        let mark = (capacity + 1).next_power_of_two();
        let mut slots = Vec::new();
        slots.try_reserve_exact(capacity).ok()?;
        slots.extend((0..capacity).map(|i| Slot {
            // Not `i + 1`, the stamp of position `i`: no message yet.
            stamp: AtomicUsize::new(i),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        Some(Self {
            producers: Padded(Producers {
                tail: AtomicUsize::new(0),
                head_seen: AtomicUsize::new(0),
            }),
            head: Padded(AtomicUsize::new(0)),
            slots: slots.into_boxed_slice(),
            cap: capacity,
            mark,
            one_lap: mark * 2,
        })
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    fn slot(&self, pos: usize) -> &Slot<T> {
        &self.slots[pos & (self.mark - 1)]
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    fn after(&self, pos: usize) -> usize {
        if (pos & (self.mark - 1)) + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    /// Appends `value`, or gives it back if the ring holds `capacity`
    /// messages (claimed positions count, written or not) or was closed.
    /// Never waits for another producer: it retries only when what it read
    /// was stale.
    pub(crate) fn push(&self, value: T) -> Result<(), Refused<T>> {
        let producers = &*self.producers;
        let mut tail = producers.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark != 0 {
                return Err(Refused::Closed(value));
            }
            if !self.has_room(tail, producers.head_seen.load(Ordering::Acquire)) {
                // The copy may be stale, and so may `tail` (another producer
                // took this position). Full exactly when `head` is one lap
                // behind; a full fence first, so a slot the consumer is
                // freeing right now is not mistaken for full (invariant 5).
                // Never waits for another producer's write.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Acquire);
                producers.head_seen.store(head, Ordering::Release);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(Refused::Full(value));
                }
                if !self.has_room(tail, head) {
                    // `head` moved past a stale `tail`.
                    spin();
                    tail = producers.tail.load(Ordering::Relaxed);
                    continue;
                }
            }
            let next = self.after(tail);
            match producers.tail.compare_exchange_weak(
                tail,
                next,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    // Our exchange claimed position `tail`, and the `head`
                    // we saw (Acquire) says the slot's last message was
                    // taken (invariant 1).
                    let slot = self.slot(tail);
                    // SAFETY: no one else touches the value until we stamp
                    // it (invariant 1).
                    slot.value
                        .with_mut(|v| unsafe { v.write(MaybeUninit::new(value)) });
                    slot.stamp.store(tail.wrapping_add(1), Ordering::Release);
                    return Ok(());
                }
                Err(now) => tail = now,
            }
        }
    }

    /// Whether a producer may claim `tail` (unmarked) given a `head` it saw
    /// no later than `tail`: fewer than `capacity` positions from `head` up to
    /// `tail`. Those positions are `d = tail - head` (wrapping) within a
    /// lap (`d < capacity`), or `one_lap - capacity < d < one_lap` when
    /// `tail` is a lap ahead at a lower index; `d == one_lap` is full, and
    /// a `head` a lap or more behind (a stale copy) or ahead of a stale
    /// `tail` reads as no room.
    fn has_room(&self, tail: usize, head: usize) -> bool {
        let d = tail.wrapping_sub(head);
        d < self.cap || (d > self.one_lap - self.cap && d < self.one_lap)
    }

    /// Takes the oldest message, if its producer has finished writing it.
    ///
    /// # Safety
    ///
    /// No other thread runs `pop` on this ring at the same time
    /// (invariant 6).
    pub(crate) unsafe fn pop(&self) -> Option<T> {
        let head = self.head.load(Ordering::Relaxed);
        let slot = self.slot(head);
        if slot.stamp.load(Ordering::Acquire) != head.wrapping_add(1) {
            return None;
        }
        // SAFETY: the stamp says the producer of `head` wrote the value
        // (Acquire pairs with its Release), and we are the only consumer
        // (the caller's contract), so the value is read exactly once.
        let value = slot.value.with_mut(|v| unsafe { v.read().assume_init() });
        // The slot is left as it is: its stamp (`head + 1`) cannot say
        // "ready" for any later position, and producers learn it is free
        // from `head` (invariants 1 and 3).
        self.head.store(self.after(head), Ordering::Release);
        Some(value)
    }

    /// Refuses every later push (invariant 7). Returns whether this call
    /// closed the ring.
    pub(crate) fn close(&self) -> bool {
        self.producers.tail.fetch_or(self.mark, Ordering::SeqCst) & self.mark == 0
    }

    /// Whether the ring was closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.producers.tail.load(Ordering::SeqCst) & self.mark != 0
    }

    /// Closed, and every message pushed before the close was popped: no
    /// message can arrive any more (invariant 7).
    pub(crate) fn is_drained(&self) -> bool {
        let tail = self.producers.tail.load(Ordering::SeqCst);
        tail & self.mark != 0 && self.head.load(Ordering::SeqCst) == tail & !self.mark
    }

    /// Whether the consumer's next `pop` would return a message. Reads the
    /// head slot only (invariant 3).
    pub(crate) fn has_ready(&self) -> bool {
        let head = self.head.load(Ordering::Acquire);
        self.slot(head).stamp.load(Ordering::Acquire) == head.wrapping_add(1)
    }

    /// Messages queued (claimed positions count, written or not).
    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.producers.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.producers.tail.load(Ordering::SeqCst) != tail {
                spin();
                continue;
            }
            let tail = tail & !self.mark;
            let (h, t) = (head & (self.mark - 1), tail & (self.mark - 1));
            return match h.cmp(&t) {
                std::cmp::Ordering::Less => t - h,
                std::cmp::Ordering::Greater => self.cap - h + t,
                std::cmp::Ordering::Equal if tail == head => 0,
                std::cmp::Ordering::Equal => self.cap,
            };
        }
    }
}

impl<T> Drop for SlotRing<T> {
    fn drop(&mut self) {
        // `&mut self`: no producer or consumer is left, so every claimed
        // position was stamped (a push cannot stop between claim and stamp).
        // SAFETY: exclusive access satisfies `pop`'s contract.
        while unsafe { self.pop() }.is_some() {}
    }
}
