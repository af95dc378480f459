//! `Chan`: the state shared by a channel's senders and its receiver, and
//! the wait/notify protocol (numbered in `channel/mod.rs`).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence};
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
    tx_waiting: AtomicBool,
    /// One slot per send future waiting for room; the future removes its
    /// slot when it completes or is dropped, so slots never pile up.
    tx_wakers: Mutex<Slab<Waker>>,
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
            tx_waiting: AtomicBool::new(false),
            tx_wakers: Mutex::new(Slab::new()),
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
            cx.watches.add(self.clone(), waker);
            true
        });
        let mode = if watched == Some(true) {
            WATCHED
        } else {
            let mut slot = self.rx_waker.lock();
            match &mut *slot {
                Some(w) if w.will_wake(waker) => {}
                other => *other = Some(waker.clone()),
            }
            WAITING
        };
        if self.rx_waiting.load(Ordering::Relaxed) != mode {
            self.rx_waiting.store(mode, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
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
                    w.wake();
                }
            }
            WATCHED => {
                if let Some(home) = self.rx_home.get() {
                    home.notify_watcher_fenced();
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
        drop(self.rx_waker.lock().take());
    }

    /// Protocol step 3 (sender, ring full): register (or refresh) the
    /// caller's slot before trying again.
    pub(super) fn register_sender(&self, slot: &mut Option<usize>, waker: &Waker) {
        {
            let mut wakers = self.tx_wakers.lock();
            match slot.and_then(|s| wakers.get_mut(s)) {
                Some(w) if w.will_wake(waker) => {}
                Some(w) => *w = waker.clone(),
                None => *slot = Some(wakers.insert(waker.clone())),
            }
        }
        self.tx_waiting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Gives up a sender's slot (its send completed or was dropped).
    pub(super) fn unregister_sender(&self, slot: usize) {
        self.tx_wakers.lock().try_remove(slot);
    }

    /// Protocol step 3 (receiver, after freeing space): wake waiting senders.
    pub(super) fn notify_senders(&self) {
        fence(Ordering::SeqCst);
        if self.tx_waiting.load(Ordering::SeqCst) && self.tx_waiting.swap(false, Ordering::SeqCst) {
            self.wake_senders();
        }
    }

    /// Wakes every waiting sender (their slots stay theirs until they
    /// complete or drop). Waking all, not one per freed slot, keeps this
    /// correct when a woken sender is cancelled before it pushes.
    pub(super) fn wake_senders(&self) {
        let wakers: Vec<Waker> = self
            .tx_wakers
            .lock()
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        wakers.into_iter().for_each(Waker::wake);
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
/// that wait.) A dropped receiver is news too, or its shard would keep the
/// channel (and the task's waker) for as long as a sender lives. None of
/// the looks touches `tail`, which the senders write.
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
