//! `Chan`: the state shared by a channel's senders and its receiver, and
//! the wait/notify protocol (numbered in `channel/mod.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::task::Waker;

use parking_lot::Mutex;
use slab::Slab;

use super::queue::SlotRing;
use super::watch::Watched;
use crate::context;
use crate::mailbox::Remote;
use crate::padded::Padded;
use crate::stats::Counters;

pub(super) struct Chan<T> {
    /// The messages; closing it (the receiver was closed or dropped) makes
    /// sends fail.
    pub(super) queue: SlotRing<T>,
    /// Live `Sender`s; 0 means the stream ends once the queue is empty.
    pub(super) senders: AtomicUsize,
    /// `IDLE`, `WAITING` (a sender wakes `rx_waker`) or `WATCHED` (a
    /// sender rings `rx_home`'s doorbell if it is parked: `watch.rs`).
    rx_waiting: AtomicU8,
    /// The waker of a `WAITING` receiver (a `WATCHED` one leaves its waker
    /// with its shard). On its own block, so a sender reading `rx_waiting`
    /// does not pull the line back each time.
    rx_waker: Padded<Mutex<Option<Waker>>>,
    /// The shard that watches the receiver, fixed by its first watch.
    rx_home: OnceLock<Arc<Remote>>,
    /// Send futures queued in `tx_queue`: while any are, a push that is not
    /// a waiting send's takes only room they are not owed (protocol step
    /// 3). Read by every push and pop, written only when sends queue up or
    /// leave: on a block of its own, so it stays in every core's cache
    /// while nobody waits.
    tx_queued: Padded<AtomicUsize>,
    /// Send futures waiting for room, oldest first. A future leaves when it
    /// has pushed or is dropped, so entries never pile up.
    tx_queue: Mutex<SendQueue>,
}

/// The waiting send futures by key, and their keys by ticket (the order
/// they came in). A send joins, looks at its place and leaves in O(log n)
/// plus the room it looks through (a place is only looked for within the
/// room): a mass of waiting sends timing out costs no quadratic work.
#[derive(Default)]
struct SendQueue {
    waiters: Slab<Waiter>,
    order: BTreeMap<u64, usize>,
    next_ticket: u64,
}

struct Waiter {
    waker: Waker,
    ticket: u64,
    /// Woken since it last looked (so a burst of pops wakes it once).
    woken: bool,
}

impl<T> Chan<T> {
    /// `None` when the ring cannot be allocated (`SlotRing::try_new`).
    pub(super) fn new(capacity: usize) -> Option<Self> {
        Some(Self {
            queue: SlotRing::try_new(capacity)?,
            senders: AtomicUsize::new(1),
            rx_waiting: AtomicU8::new(IDLE),
            rx_waker: Padded(Mutex::new(None)),
            rx_home: OnceLock::new(),
            tx_queued: Padded(AtomicUsize::new(0)),
            tx_queue: Mutex::new(SendQueue::default()),
        })
    }

    /// Protocol step 1 (receiver): register before the second look. On a
    /// spinning shard the channel is watched (step W1) and the shard keeps
    /// the waker; anywhere else the waker goes to `rx_waker`.
    pub(super) fn register_receiver(self: &Arc<Self>, waker: &Waker)
    where
        T: Send + 'static,
    {
        let watched = context::with_current(|cx| {
            if cx.shared.config.spin.is_none() {
                return false;
            }
            // Only the waker of the shard's own task its loop is polling now
            // (step W1's condition): that task runs nowhere else, so the
            // watching loop is the one that will poll it. A stealable task
            // may move on, or wait while this shard is blocked or exits; a
            // nested executor's waker would never be called by the loop.
            let own = cx.polling_own.get();
            if own.is_null() || waker.data() != own {
                return false;
            }
            let home = self.rx_home.get_or_init(|| cx.remote.clone());
            if !Arc::ptr_eq(home, &cx.remote) {
                return false;
            }
            cx.watches.add(self, waker);
            true
        });
        let mode = if watched == Some(true) {
            WATCHED
        } else {
            let mut slot = self.rx_waker.lock();
            let replaced = match &mut *slot {
                Some(w) if w.will_wake(waker) => None,
                other => other.replace(waker.clone()),
            };
            // Foreign code (a waker's drop may drop the last sender, whose
            // notify takes this lock): after the lock.
            drop(slot);
            drop(replaced);
            WAITING
        };
        // The fence only follows a store. A mode read back unchanged is
        // this receiver's own earlier store (only it writes `WAITING` and
        // `WATCHED`), which a fence followed then: a sender whose load
        // misses that store fenced before that fence, so the second look,
        // after it, sees the sender's message. A `WAITING` read back just
        // as a sender takes it (`WAITING → IDLE`) is stale, and that is
        // fine too: the sender takes the waker under `rx_waker`'s lock,
        // after this wait stored its own, and wakes this task. (Ping-pong
        // receivers keep their mode, and skip a fence per message.)
        if self.rx_waiting.load(Ordering::Relaxed) != mode {
            self.rx_waiting.store(mode, Ordering::SeqCst);
            fence(Ordering::SeqCst);
        }
    }

    /// Protocol step 2 (sender, after pushing, or after the last sender
    /// counted itself out): wake the receiver if it waits, or ring its
    /// shard if that watches it and is parked (W2).
    pub(super) fn notify_receiver(&self) {
        fence(Ordering::SeqCst);
        match self.rx_waiting.load(Ordering::SeqCst) {
            WAITING
                if self
                    .rx_waiting
                    .compare_exchange(WAITING, IDLE, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok() =>
            {
                let waker = self.rx_waker.lock().take();
                if let Some(w) = waker {
                    // A foreign waker that unwinds must not fail the send
                    // (or the drop) whose message is already in the ring.
                    crate::executor::contain(|| w.wake());
                }
            }
            WATCHED => {
                if let Some(home) = self.rx_home.get() {
                    // On the watching shard itself, the receiver is woken
                    // now and runs in this tick (W4); anywhere else its
                    // shard is rung if it is parked.
                    let me = self as *const Self as *const ();
                    let woken = context::with_current(|cx| {
                        Arc::ptr_eq(&cx.remote, home) && cx.watches.wake_now(me)
                    });
                    if woken != Some(true) {
                        home.notify_watcher_fenced();
                    }
                }
            }
            _ => {}
        }
    }

    /// The receiver is being dropped: no wait of its may stay registered.
    pub(super) fn receiver_gone(&self) {
        self.rx_waiting.store(GONE, Ordering::SeqCst);
        // The shard that watched the receiver's last wait on it (even if a
        // later wait elsewhere went back to the waker path) may hold an
        // entry for it while parked: `GONE` is news to it, delivered like
        // a message (step W2), so it wakes and forgets the channel.
        if let Some(home) = self.rx_home.get() {
            fence(Ordering::SeqCst);
            home.notify_watcher_fenced();
        }
        // A waker left by a wait on another thread is dropped now, not with
        // the last sender.
        let waker = self.rx_waker.lock().take();
        // After the lock, as every waker here, and contained: a drop that
        // unwound would skip the receiver's close (sends would go on
        // succeeding into a ring nobody reads).
        crate::executor::contain(move || drop(waker));
    }

    /// Send futures waiting for room right now.
    ///
    /// A hint for a push's first look (a stale answer only moves a push
    /// before or after a send that queues up at the same moment; the waits
    /// themselves synchronize through the fences of step 3).
    pub(super) fn senders_queued(&self) -> usize {
        self.tx_queued.load(Ordering::Relaxed)
    }

    /// What Tokio's `capacity` reports: the free slots less those owed to
    /// waiting sends (Tokio hands freed permits straight to its waiters).
    pub(super) fn capacity_for_new_sends(&self) -> usize {
        self.room().saturating_sub(self.senders_queued())
    }

    /// Free slots in the ring (claimed slots count as taken).
    fn room(&self) -> usize {
        self.queue.capacity().saturating_sub(self.queue.len())
    }

    /// Whether a push that is not a waiting send's may go: nobody waits, or
    /// the room is more than the waiting sends are owed (as a Tokio
    /// `try_send` takes a permit the waiters did not need).
    pub(super) fn may_push_unqueued(&self) -> bool {
        match self.senders_queued() {
            0 => true,
            waiting => self.room() > waiting,
        }
    }

    /// Protocol step 3 (sender, no room for it): join the queue (or refresh
    /// the caller's waker); returns whether the room covers the caller's
    /// place, so that it may push now. The send at place `i` (0: oldest)
    /// may push once the room is more than `i`: room goes to the waiting
    /// sends oldest first, and one that is never polled again holds up
    /// only the slot it is owed.
    pub(super) fn register_sender(&self, slot: &mut Option<usize>, waker: &Waker) -> bool {
        // Declared before the guard, so dropped after it: a waker's drop
        // may drop another send of this channel, or its receiver, and
        // either takes this lock.
        let _replaced: Option<Waker>;
        let mut queue = self.tx_queue.lock();
        let queue = &mut *queue;
        let (ticket, fresh) = match slot.and_then(|k| queue.waiters.get_mut(k)) {
            Some(w) => {
                _replaced = (!w.waker.will_wake(waker))
                    .then(|| std::mem::replace(&mut w.waker, waker.clone()));
                w.woken = false;
                (w.ticket, false)
            }
            None => {
                let ticket = queue.next_ticket;
                queue.next_ticket += 1;
                let key = queue.waiters.insert(Waiter {
                    waker: waker.clone(),
                    ticket,
                    woken: false,
                });
                queue.order.insert(ticket, key);
                *slot = Some(key);
                self.tx_queued.store(queue.order.len(), Ordering::SeqCst);
                (ticket, true)
            }
        };
        // Step 3's fence, between our count and our look at the room (a
        // fence inside the lock is still a fence).
        fence(Ordering::SeqCst);
        let room = self.room();
        let ahead = match fresh {
            true => queue.order.len() - 1,
            false => queue.order.range(..ticket).take(room).count(),
        };
        ahead < room
    }

    /// Leaves the queue (the send pushed, or was dropped): the sends behind
    /// move up a place, and those whose place the room now covers are
    /// woken (a woken send that is cancelled passes its room on, as Tokio's
    /// semaphore waiters do).
    pub(super) fn unregister_sender(&self, key: usize) {
        let (wake, removed) = {
            let mut queue = self.tx_queue.lock();
            let removed = queue.waiters.try_remove(key);
            if let Some(w) = &removed {
                queue.order.remove(&w.ticket);
            }
            self.tx_queued.store(queue.order.len(), Ordering::SeqCst);
            (self.due(&mut queue), removed)
        };
        wake_each(wake);
        // Its waker, after the lock (see `register_sender`) and after the
        // wakes: contained, since a drop that unwound would strand the
        // sends just marked woken and, on a push, skip the receiver's
        // wake-up for the message already in the ring (a retry sent it
        // twice).
        crate::executor::contain(move || drop(removed));
    }

    /// Protocol step 3 (receiver, after freeing space): wake the waiting
    /// sends whose place the room now covers.
    pub(super) fn notify_senders(&self) {
        fence(Ordering::SeqCst);
        if self.tx_queued.load(Ordering::SeqCst) != 0 {
            let wake = self.due(&mut self.tx_queue.lock());
            wake_each(wake);
        }
    }

    /// The wakers of the sends whose place the room covers and that were
    /// not woken since they last looked, marked woken. Called under the
    /// queue's lock: a pop and a leave are ordered by it, so the later of
    /// the two sees the room and the places both made.
    fn due(&self, queue: &mut SendQueue) -> Vec<Waker> {
        let room = self.room();
        let SendQueue { waiters, order, .. } = queue;
        order
            .values()
            .take(room)
            .filter_map(|&k| {
                let w = &mut waiters[k];
                // Taken, not cloned: no foreign code runs under the lock
                // (a clone that unwound took the message just popped with
                // it). A woken waiter is not woken again before its send
                // registers anew, which puts its waker back (`will_wake`
                // fails against the no-op one).
                (!w.woken).then(|| {
                    w.woken = true;
                    std::mem::replace(&mut w.waker, Waker::noop().clone())
                })
            })
            .collect()
    }

    /// Wakes every waiting sender (the receiver closed the channel: each
    /// gets its message back).
    pub(super) fn wake_senders(&self) {
        // Taken, as in `due`: a clone that unwound would strand the
        // waiters after it and the rest of the receiver's drop.
        let wakers: Vec<Waker> = self
            .tx_queue
            .lock()
            .waiters
            .iter_mut()
            .map(|(_, w)| std::mem::replace(&mut w.waker, Waker::noop().clone()))
            .collect();
        wake_each(wakers);
    }
}

/// Wakes each of `wakers`: a foreign waker that unwinds must neither
/// strand the ones after it (`due` marked them woken, so every later look
/// would skip them) nor unwind into the pop, the send or the close that
/// woke them.
fn wake_each(wakers: Vec<Waker>) {
    for w in wakers {
        crate::executor::contain(|| w.wake());
    }
}

const IDLE: u8 = 0;
const WAITING: u8 = 1;
const WATCHED: u8 = 2;
/// The receiver was dropped: nobody waits, and a shard still watching the
/// channel (the dropped receiver's last wait) forgets it.
const GONE: u8 = 3;

/// A watched receiver waits for a message or for the last sender to go.
/// (It cannot be waiting for a closed ring to drain: the close was its own,
/// so only a message still being pushed, which `has_ready` sees, can end
/// that wait.) A dropped receiver is news too, or its shard would keep
/// waiting on the channel (and hold the task's waker) for as long as a
/// sender lives. None of the looks touches `tail`, which the senders write.
impl<T: Send> Watched for Chan<T> {
    fn has_news(&self) -> bool {
        self.queue.has_ready()
            || self.senders.load(Ordering::Acquire) == 0
            || self.rx_waiting.load(Ordering::Relaxed) == GONE
    }

    /// Its watch ended (the task was woken): senders stop ringing the
    /// shard for it until the receiver waits again, as a woken `WAITING`
    /// receiver is set back to `IDLE`.
    fn unwatched(&self) {
        let _ =
            self.rx_waiting
                .compare_exchange(WATCHED, IDLE, Ordering::SeqCst, Ordering::Relaxed);
    }
}

/// Counts `n` sent messages on the calling shard, if any.
pub(super) fn count_sent(n: u64) {
    context::with_current(|cx| Counters::add(&cx.remote.stats.messages_sent, n));
}

/// Counts `n` received messages on the calling shard, if any.
pub(super) fn count_received(n: u64) {
    context::with_current(|cx| Counters::add(&cx.remote.stats.messages_received, n));
}
