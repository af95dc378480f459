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
//!    is dropped, so no shard keeps an entry for a receiver that is gone.
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
//! `WATCHED` mark until the shard is about to park (or 64 watches have
//! ended), and the mark is then cleared unless the receiver waits again:
//! clearing it at each wake would make a ping-pong's receiver write the
//! mark every send reads, and a receiver that stopped waiting would
//! otherwise have every later send ring its parked shard.

use std::sync::Arc;
use std::task::Waker;

use std::cell::RefCell;

/// A channel whose waiting receiver its shard watches.
pub(crate) trait Watched: Send + Sync {
    /// Whether the receiver has something to see: a message, or the end.
    fn has_news(&self) -> bool;

    /// The shard stopped watching (it woke the receiver's task).
    fn unwatched(&self);
}

struct Watch {
    chan: Arc<dyn Watched>,
    waker: Waker,
}

/// One shard's watched channels (owned by its `ShardContext`).
#[derive(Default)]
pub(crate) struct WatchList {
    list: RefCell<Vec<Watch>>,
    /// Channels whose watch ended (their task was woken) since the last
    /// [`forget_ended`](Self::forget_ended): still marked `WATCHED`, so
    /// senders ring this shard when it parks, until the mark is cleared.
    ended: RefCell<Vec<Arc<dyn Watched>>>,
}

/// How many ended watches are kept before they are cleared at once, even
/// on a shard that never parks.
const ENDED_KEPT: usize = 64;

impl WatchList {
    /// Step W1: watch `chan` for the task of `waker`. A channel has one
    /// receiver, so one entry per channel: a later wait (with another
    /// waker, say from a fresh `select!`) replaces the waker, and an idle
    /// receiver polled a million times still costs one entry.
    pub(crate) fn add(&self, chan: Arc<dyn Watched>, waker: &Waker) {
        let mut list = self.list.borrow_mut();
        let known = list
            .iter_mut()
            .find(|w| std::ptr::addr_eq(Arc::as_ptr(&w.chan), Arc::as_ptr(&chan)));
        match known {
            Some(w) if w.waker.will_wake(waker) => {}
            Some(w) => w.waker = waker.clone(),
            None => list.push(Watch {
                chan,
                waker: waker.clone(),
            }),
        }
    }

    /// How many channels are watched.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.borrow().len()
    }

    /// Whether a watched receiver has news (doorbell step R4, spin checks).
    pub(crate) fn has_news(&self) -> bool {
        self.list.borrow().iter().any(|w| w.chan.has_news())
    }

    /// Wakes (and forgets) every watched receiver that has news; returns
    /// whether any did. A waker runs with no borrow held.
    pub(crate) fn wake_ready(&self) -> bool {
        let mut woke = false;
        loop {
            let next = {
                let mut list = self.list.borrow_mut();
                match list.iter().position(|w| w.chan.has_news()) {
                    Some(i) => list.swap_remove(i),
                    None => return woke,
                }
            };
            woke = true;
            self.ended_watch(next.chan);
            crate::executor::contain(|| next.waker.wake());
        }
    }

    /// Keeps `chan`, whose watch just ended, for [`forget_ended`]. Its mark
    /// is not cleared now: a receiver that waits again at once (a
    /// ping-pong) would write the mark that every send reads, twice per
    /// message, which costs each hop a cache-line transfer.
    ///
    /// [`forget_ended`]: Self::forget_ended
    fn ended_watch(&self, chan: Arc<dyn Watched>) {
        let (full, dead) = {
            let mut ended = self.ended.borrow_mut();
            if ended
                .iter()
                .any(|c| std::ptr::addr_eq(Arc::as_ptr(c), Arc::as_ptr(&chan)))
            {
                // Kept already (a ping-pong's receiver, every hop): nothing
                // else to do on this path.
                return;
            }
            // Channels whose receiver and senders are all gone since: ours
            // is the last reference, and nobody reads their mark. Let them
            // go now rather than at the next park. (Looked at only when a
            // new channel joins: the count shares a line with the queue.)
            let mut dead = Vec::new();
            let mut i = 0;
            while i < ended.len() {
                if Arc::strong_count(&ended[i]) == 1 {
                    dead.push(ended.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            ended.push(chan);
            (ended.len() >= ENDED_KEPT, dead)
        };
        drop_quietly(dead);
        if full {
            self.forget_ended();
        }
    }

    /// Clears the `WATCHED` mark of every channel whose watch ended and
    /// that is not watched again, so its senders stop ringing this shard
    /// for a receiver that no longer waits (called before the shard
    /// parks). Only this shard watches these channels and re-marks them,
    /// so nothing races the check.
    pub(crate) fn forget_ended(&self) {
        let ended = std::mem::take(&mut *self.ended.borrow_mut());
        if ended.is_empty() {
            return;
        }
        let list = self.list.borrow();
        for chan in &ended {
            let watched = list
                .iter()
                .any(|w| std::ptr::addr_eq(Arc::as_ptr(&w.chan), Arc::as_ptr(chan)));
            if !watched {
                chan.unwatched();
            }
        }
        drop(list);
        drop_quietly(ended);
    }

    /// Whether nothing is watched (the common case: a cheap test).
    pub(crate) fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }
}

/// Drops channels with no borrow held and no unwinding out: the last `Arc`
/// of a channel drops its queued messages, whose destructors are user code.
fn drop_quietly(chans: Vec<Arc<dyn Watched>>) {
    if !chans.is_empty() {
        crate::executor::contain(move || drop(chans));
    }
}
