//! Watched receivers: how a shard with a spin window receives messages
//! with no wake-up at all.
//!
//! A receiver that waits on a shard configured with `spin_before_park`
//! does not leave a waker for the senders to call. It puts its channel on
//! its shard's [`WatchList`] and marks the channel `WATCHED`; the shard
//! looks at the watched channels at every tick and spin iteration and
//! wakes the receiver's task itself, on its own thread. A sender then only
//! pushes the message, and rings the shard's doorbell if (and only if) the
//! shard is parked: no waker, no task hand-off, no mailbox push crosses the
//! cores.
//!
//! Why no wake-up is lost (channel protocol steps 1–2, `mod.rs`):
//! 1. W1: the receiver, on its shard, adds the channel to the list before
//!    its poll returns `Pending`, so the shard looks at the channel after
//!    the receiver's last look, at every later tick and spin iteration.
//! 2. W2: a sender pushes, fences, and, seeing `WATCHED`, runs doorbell
//!    steps S2–S3 for the receiver's shard.
//! 3. W3: the shard, before sleeping, passes doorbell step R3 (`PARKED`,
//!    fence) and then R4, which looks at the watched channels. Either R4
//!    sees the message, or the sender's S3 sees `PARKED` and rings.
//! 4. A dropped receiver is news too: its drop marks the channel `GONE`
//!    and runs W2 for the channel's watching shard, wherever the receiver
//!    is dropped, so a shard whose entry waits for a receiver that is gone
//!    wakes, ends the watch, and forgets the entry with the other ended
//!    ones (before it parks, at the latest).
//! 5. W4: a sender running on the watching shard itself wakes the
//!    receiver at once ([`WatchList::wake_now`]), so that it runs in the
//!    same tick, as a task switch would on Tokio's current-thread
//!    scheduler; if it cannot, the shard's next look (its tick, or R4)
//!    sees the message as in W2.
//! 6. W5: a shard whose spin window sees a watched receiver's news wakes
//!    the receiver and runs its queued tasks from the spin itself
//!    (`Core::spin`), then goes back to its loop, whose next tick takes
//!    the mailbox, the timers and the ring as usual. Nothing is skipped,
//!    only put after the woken task: a cross-shard message's reply is no
//!    longer held up by the way from the spin back to a tick.
//!
//! A channel becomes `WATCHED` only from its first watching shard (its
//! `rx_home`), and only for a wait of that shard's own (pinned or local)
//! task, polled by the shard's loop with the task's own waker: that task
//! runs nowhere else, and the loop that watches is the one that polls it.
//! A stealable task (which may move, or wait while this shard is blocked
//! or gone), a receiver under a nested executor, and a receiver polled
//! anywhere else go back to the waker path (`WAITING`), storing with a full
//! fence before their second look.
//!
//! A watch ends when the shard wakes its task. The channel keeps its
//! `WATCHED` mark, and its entry keeps the task's waker, until the shard is
//! about to park (or 64 watches have ended), and
//! the mark is then cleared unless the receiver waits again:
//! clearing it at each wake would make a ping-pong's receiver write the
//! mark every send reads, and a receiver that stopped waiting would
//! otherwise have every later send ring its parked shard.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::task::Waker;

/// A channel whose waiting receiver its shard watches.
pub(crate) trait Watched: Send + Sync {
    /// Whether the receiver has something to see: a message, or the end.
    fn has_news(&self) -> bool;

    /// The shard forgot the channel's ended watch (before parking, or
    /// with a pile of them): senders need not ring it any more.
    fn unwatched(&self);
}

struct Watch {
    chan: Arc<dyn Watched>,
    /// The waiting task's waker; kept after its watch ends, so that the
    /// receiver's next wait (with the same task) clones nothing.
    waker: Waker,
    /// Its receiver waits now. Cleared when the shard wakes it: the watch
    /// *ended*, and the entry stays, still marked `WATCHED`, until
    /// [`WatchList::forget_ended`] or the receiver's next wait.
    waiting: bool,
}

/// One shard's watched channels (owned by its `ShardContext`).
///
/// An entry outlives its watch: a ping-pong's receiver waits again right
/// after each wake-up, and re-adding its channel each time (an `Arc` clone
/// and drop, a waker clone) cost each hop three atomic read-modify-writes
/// beyond the wake itself. The price: an ended entry keeps its task's
/// waker (so a finished task's allocation) and its channel until it is
/// forgotten, before the next park or once 64 ended entries pile up.
#[derive(Default)]
pub(crate) struct WatchList {
    list: RefCell<Vec<Watch>>,
    /// Entries whose receiver waits.
    waiting: Cell<usize>,
}

/// How many ended watches are kept before they are cleared at once, even
/// on a shard that never parks.
const ENDED_KEPT: usize = 64;

impl WatchList {
    /// Step W1: watch `chan` for the task of `waker`. A channel has one
    /// receiver, so one entry per channel: a later wait (with another
    /// waker, say from a fresh `select!`) replaces the waker, and an idle
    /// receiver polled a million times still costs one entry.
    pub(crate) fn add<C: Watched + 'static>(&self, chan: &Arc<C>, waker: &Waker) {
        let mut list = self.list.borrow_mut();
        let known = list
            .iter_mut()
            .find(|w| std::ptr::addr_eq(Arc::as_ptr(&w.chan), Arc::as_ptr(chan)));
        let replaced = match known {
            Some(w) => {
                if !w.waiting {
                    w.waiting = true;
                    self.waiting.set(self.waiting.get() + 1);
                }
                (!w.waker.will_wake(waker)).then(|| std::mem::replace(&mut w.waker, waker.clone()))
            }
            None => {
                // Ended watches of channels whose receiver and senders are
                // all gone since: ours is the last reference, and nobody
                // reads their mark. Let them go now rather than at the next
                // park. (Looked at only when a new channel joins: the count
                // shares a line with the queue.)
                let dead = take_where(&mut list, |w| !w.waiting && Arc::strong_count(&w.chan) == 1);
                list.push(Watch {
                    chan: chan.clone() as Arc<dyn Watched>,
                    waker: waker.clone(),
                    waiting: true,
                });
                self.waiting.set(self.waiting.get() + 1);
                drop(list);
                drop_quietly(dead);
                return;
            }
        };
        drop(list);
        // A waker's drop is foreign code: no borrow held.
        if let Some(old) = replaced {
            crate::executor::contain(move || drop(old));
        }
    }

    /// How many channels are listed (waiting or ended).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.borrow().len()
    }

    /// Whether a watched receiver has news (doorbell step R4, spin checks).
    pub(crate) fn has_news(&self) -> bool {
        self.waiting.get() != 0
            && self
                .list
                .borrow()
                .iter()
                .any(|w| w.waiting && w.chan.has_news())
    }

    /// Wakes every waiting receiver that has news, ending its watch;
    /// returns whether any did. A waker runs with no borrow held.
    ///
    /// Also the spin's look (step W5), so its common cases are short: no
    /// entry waits (nothing is read), and the last waiting entry was just
    /// woken (the rest of the list is not looked through again).
    pub(crate) fn wake_ready(&self) -> bool {
        if self.waiting.get() == 0 {
            return false;
        }
        let mut woke = false;
        let mut from = 0;
        loop {
            let lent = {
                let mut list = self.list.borrow_mut();
                // `get`: a waker that re-entered the list may have
                // shortened it.
                let found = list
                    .get(from..)
                    .and_then(|rest| rest.iter().position(|w| w.waiting && w.chan.has_news()));
                found.map(|i| self.end_and_lend(&mut list, from + i))
            };
            let Some((at, chan, waker)) = lent else {
                break;
            };
            woke = true;
            self.wake_lent(at, chan, waker);
            if self.waiting.get() == 0 {
                break;
            }
            from = at + 1;
        }
        self.forget_ended_if_many();
        woke
    }

    /// Step W4: a sender running on this shard wakes the receiver it
    /// watches on `chan` at once, so that the receiver runs in this tick
    /// rather than the next. Returns `false` if it could not look (the
    /// list is in use, or does not hold `chan`): the tick's
    /// [`wake_ready`](Self::wake_ready) sees the news instead. A receiver
    /// that is not waiting needs nothing: its next look sees the message.
    pub(crate) fn wake_now(&self, chan: *const ()) -> bool {
        let (at, chan, waker) = {
            let Ok(mut list) = self.list.try_borrow_mut() else {
                return false;
            };
            let Some(at) = list
                .iter()
                .position(|w| std::ptr::addr_eq(Arc::as_ptr(&w.chan), chan))
            else {
                return false;
            };
            if !list[at].waiting {
                return true;
            }
            self.end_and_lend(&mut list, at)
        };
        self.wake_lent(at, chan, waker);
        self.forget_ended_if_many();
        true
    }

    /// Forgets the ended watches once 64 have piled up.
    fn forget_ended_if_many(&self) {
        let full = self.list.borrow().len() - self.waiting.get() >= ENDED_KEPT;
        if full {
            self.forget_ended();
        }
    }

    /// Ends the watch of waiting entry `at` and lends its waker out for
    /// the wake (a no-op waker holds its place): returns the entry's index,
    /// its channel and the waker, for [`wake_lent`](Self::wake_lent).
    fn end_and_lend(&self, list: &mut [Watch], at: usize) -> (usize, *const dyn Watched, Waker) {
        let w = &mut list[at];
        debug_assert!(w.waiting, "only a waiting entry's watch ends");
        w.waiting = false;
        self.waiting.set(self.waiting.get() - 1);
        let waker = std::mem::replace(&mut w.waker, Waker::noop().clone());
        (at, Arc::as_ptr(&w.chan), waker)
    }

    /// Wakes `waker`, lent out of entry `at` (of `chan`) for the wake, and
    /// gives it back unless the entry moved or a new wait gave it a waker
    /// meanwhile (only if the wake re-entered the list).
    fn wake_lent(&self, at: usize, chan: *const dyn Watched, waker: Waker) {
        crate::executor::contain(|| waker.wake_by_ref());
        let mut list = self.list.borrow_mut();
        let entry = list
            .get_mut(at)
            .filter(|w| std::ptr::addr_eq(Arc::as_ptr(&w.chan), chan) && !w.waiting);
        let spare = match entry {
            Some(w) => {
                w.waker = waker;
                None
            }
            None => Some(waker),
        };
        drop(list);
        if let Some(waker) = spare {
            drop_waker_quietly(waker);
        }
    }

    /// Clears the `WATCHED` mark of every channel whose watch ended and
    /// that is not watched again, so its senders stop ringing this shard
    /// for a receiver that no longer waits, and lets go of its waker
    /// (called before the shard parks). Only this shard watches these
    /// channels and re-marks them, so nothing races the check.
    pub(crate) fn forget_ended(&self) {
        let ended = {
            let mut list = self.list.borrow_mut();
            if list.len() == self.waiting.get() {
                return;
            }
            take_where(&mut list, |w| !w.waiting)
        };
        for w in &ended {
            w.chan.unwatched();
        }
        drop_quietly(ended);
    }

    /// Whether no receiver waits (the common case: a cheap test).
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.get() == 0
    }
}

/// Takes the entries `pick` chooses out of `list`.
fn take_where(list: &mut Vec<Watch>, pick: impl Fn(&Watch) -> bool) -> Vec<Watch> {
    let mut taken = Vec::new();
    let mut i = 0;
    while i < list.len() {
        if pick(&list[i]) {
            taken.push(list.swap_remove(i));
        } else {
            i += 1;
        }
    }
    taken
}

/// Drops a waker with no borrow held and no unwinding out.
fn drop_waker_quietly(waker: Waker) {
    crate::executor::contain(move || drop(waker));
}

/// Drops entries with no borrow held and no unwinding out: the last `Arc`
/// of a channel drops its queued messages, whose destructors are user
/// code, and a waker's drop is foreign code.
fn drop_quietly(entries: Vec<Watch>) {
    if !entries.is_empty() {
        crate::executor::contain(move || drop(entries));
    }
}
