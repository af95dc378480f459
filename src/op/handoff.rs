//! How an op future away from its home shard reaches its op (invariant
//! 12): until the home let go of the op (`done`, invariant 11) it never
//! touches the home-owned cell; it delegates to the home.
//!
//! - Polled away from home, the future makes a [`Handoff`] (a locked slot
//!   for the result and a waker) and queues a *watch* for the home: the
//!   home hands a completed op over at once, a submitted one at its final
//!   CQE. From then on the future polls and drops only the hand-off.
//! - Dropped away from home without a hand-off, it queues an *abandon*:
//!   the home applies the drop rule (invariant 3) as if dropped there.
//! - Delegations wait in the home's [`HandoffQueue`] (on its `Remote`),
//!   which a mailbox call empties on the home. A shard that exits closes
//!   its queue and runs what it holds, after its last op completed or was
//!   leaked (drain step D5); a delegation that finds the queue closed, or
//!   the runtime gone, runs where it is ([`cell::home_gone`]): the lock
//!   (or the `Remote`'s last count) orders it after the home's last touch.

use std::mem;
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::task::{Poll, Waker};

use parking_lot::Mutex;

use super::cell::{self, CellPtr};
use crate::context;
use crate::executor::contain;
use crate::mailbox::{Home, Remote};

/// Where a watched op's result goes: shared by the future and its home.
pub(super) struct Handoff<T> {
    state: Mutex<Hand<T>>,
}

enum Hand<T> {
    /// Not there yet; the future's waker.
    Waiting(Option<Waker>),
    /// The op's result and resources, for the future to take.
    Ready(i32, T),
    /// The future is gone; whoever finds this ends the op.
    Abandoned,
    Taken,
}

/// What a future's drop found in its hand-off.
pub(super) enum Dropped<T> {
    /// The op still runs: the future should ask its home to cancel it.
    Running,
    /// The result and resources were there: the future ends them.
    Ready(i32, T),
    Nothing,
}

impl<T> Handoff<T> {
    pub(super) fn new(waker: &Waker) -> Self {
        Self {
            state: Mutex::new(Hand::Waiting(Some(waker.clone()))),
        }
    }

    /// The future's poll.
    pub(super) fn poll(&self, waker: &Waker) -> Poll<(i32, T)> {
        let mut state = self.state.lock();
        match &mut *state {
            Hand::Ready(..) => match mem::replace(&mut *state, Hand::Taken) {
                Hand::Ready(result, resources) => Poll::Ready((result, resources)),
                _ => unreachable!("matched above"),
            },
            Hand::Waiting(kept) => {
                let old = match kept {
                    Some(w) if w.will_wake(waker) => None,
                    _ => kept.replace(waker.clone()),
                };
                drop(state);
                drop(old); // after the lock: foreign code
                Poll::Pending
            }
            Hand::Abandoned | Hand::Taken => Poll::Pending,
        }
    }

    /// The future's drop.
    pub(super) fn abandon(&self) -> Dropped<T> {
        let mut state = self.state.lock();
        match mem::replace(&mut *state, Hand::Abandoned) {
            Hand::Waiting(waker) => {
                drop(state);
                drop(waker);
                Dropped::Running
            }
            Hand::Ready(result, resources) => Dropped::Ready(result, resources),
            Hand::Abandoned | Hand::Taken => Dropped::Nothing,
        }
    }

    fn is_abandoned(&self) -> bool {
        matches!(*self.state.lock(), Hand::Abandoned)
    }

    /// The home's (or `home_gone`'s) delivery of the final result.
    pub(super) fn publish(&self, result: i32, resources: T, produces_fd: bool) {
        let mut state = self.state.lock();
        match &mut *state {
            Hand::Waiting(waker) => {
                let waker = waker.take();
                *state = Hand::Ready(result, resources);
                drop(state);
                if let Some(w) = waker {
                    contain(|| w.wake());
                }
            }
            _ => {
                // The future is gone: the op ends here.
                drop(state);
                if produces_fd && result >= 0 {
                    cell::close_fd(result);
                }
                contain(move || drop(resources));
            }
        }
    }
}

/// A delegation queued for a home shard (type-erased).
pub(crate) trait Delegated: Send {
    /// Runs on the home shard.
    fn on_home(self: Box<Self>);
    /// The home has exited; runs anywhere, ordered after its last touch.
    fn home_gone(self: Box<Self>);
}

/// A future's share of its cell, passed to the home: a watch (with a
/// hand-off) or an abandon (without).
pub(super) struct Delegation<T> {
    pub(super) cell: CellPtr<T>,
    pub(super) user_data: u64,
    pub(super) handoff: Option<Arc<Handoff<T>>>,
}

// SAFETY: the cell is touched only on its home shard, or by `home_gone`
// once that shard has exited (invariant 12); the resources it holds are
// `Send`, and so is the hand-off.
unsafe impl<T: Send> Send for Delegation<T> {}

impl<T: Send + 'static> Delegated for Delegation<T> {
    fn on_home(self: Box<Self>) {
        let Delegation {
            cell,
            user_data,
            handoff,
        } = *self;
        match handoff {
            // SAFETY: on the home, with the future's share.
            Some(h) if !h.is_abandoned() => unsafe { cell::watch_on_home(cell, h) },
            // Dropped after it asked: its drop asked for the cancel.
            // SAFETY: as above.
            Some(_) => unsafe { cell::abandon_on_home(cell, user_data, false) },
            // SAFETY: as above.
            None => unsafe { cell::abandon_on_home(cell, user_data, true) },
        }
    }

    fn home_gone(self: Box<Self>) {
        // SAFETY: the caller is ordered after the home's last touch, and
        // holds the future's share.
        unsafe { cell::home_gone(self.cell, self.handoff) };
    }
}

/// The delegations waiting for one home shard (on its `Remote`).
#[derive(Default)]
pub(crate) struct HandoffQueue {
    /// Set by the exiting shard: nothing queued from now on would run.
    closed: bool,
    queue: Vec<Box<dyn Delegated>>,
}

/// Passes `delegation` to `home`: queued for it, or run here if the home
/// has exited.
pub(super) fn delegate(home: Home, delegation: Box<dyn Delegated>) {
    let Some(remote) = home.remote() else {
        // The runtime is gone, and with it every count of the home's
        // `Remote`, its shard's own: the shard has exited. The failed
        // lookup read the count without ordering; this fence pairs with
        // the `Release` of each count's drop.
        fence(Ordering::Acquire);
        delegation.home_gone();
        return;
    };
    let mut queued = remote.op_handoffs.lock();
    if queued.closed {
        drop(queued);
        delegation.home_gone();
        return;
    }
    // A non-empty queue has a call on its way that has not taken it yet.
    let first = queued.queue.is_empty();
    queued.queue.push(delegation);
    drop(queued);
    if first {
        remote.call(Box::new(run_queued));
    }
}

/// On a home shard: runs the delegations queued for it.
fn run_queued() {
    context::with_current(|cx| {
        let queued = mem::take(&mut cx.remote.op_handoffs.lock().queue);
        for delegation in queued {
            contain(move || delegation.on_home());
        }
    });
}

/// The exiting home shard's last look (drain step D5): closes its queue
/// and runs what it holds.
pub(crate) fn close_queue(remote: &Remote) {
    let queued = {
        let mut queued = remote.op_handoffs.lock();
        queued.closed = true;
        mem::take(&mut queued.queue)
    };
    for delegation in queued {
        contain(move || delegation.on_home());
    }
}

#[cfg(test)]
#[path = "handoff_tests.rs"]
mod tests;
