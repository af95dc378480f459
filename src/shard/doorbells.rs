//! Doorbells this shard owes other shards: when they go out.
//!
//! A hand-off to a parked shard leaves this shard owing it a doorbell
//! (routing rule 3 in `mailbox/remote.rs`): the claim (`PARKED → NOTIFIED`)
//! and the MSG_RING are made together, late, so that a burst rings once.
//!
//! Invariant: a won claim never waits in this shard's SQ while the shard
//! runs a task, runs a mailbox call, cancels tasks or exits. Whoever wins a
//! claim makes every other sender to that shard ring nothing, so a claim
//! held back behind a long poll (or a blocking one) would leave the target
//! asleep. Claims are queued at the end of a task poll, of a reap and of a
//! tick, and submitted before the next of those (a tick's first step,
//! whether or not it reaps, sends what the last tick's final reap left);
//! a claim the kernel does not take (an `EAGAIN` or `EBUSY` submit, or a
//! MSG_RING it refuses on the spot) falls back to the target's eventfd.

use super::core::Core;

impl Core {
    /// A doorbell this poll owes a parked shard goes out now if more tasks
    /// are queued here (the receiver must not wait for the rest of the
    /// tick); with nothing queued the tick is about to end and the doorbell
    /// rides on the next `io_uring_enter` (usually the park's).
    pub(super) fn send_owed_doorbells_now(&self) {
        if self.cx.run_queue.borrow().is_empty() && self.cx.deque.is_empty() {
            return;
        }
        self.cx.send_owed_doorbells_now();
    }

    /// Routing rule 3: one MSG_RING per shard owed a doorbell this tick,
    /// queued for the loop's next enter; `send_queued_claims` makes sure
    /// they are out before a task runs.
    pub(super) fn flush_doorbells(&self) {
        if !self.cx.doorbells.borrow().is_empty() {
            self.cx.push_owed_doorbells(
                &mut self.cx.ring.borrow_mut(),
                &mut self.queued_claims.borrow_mut(),
            );
        }
    }

    /// Before the tick's tasks run (a poll may be long, or block): the
    /// doorbells owed or queued by reaping, intake and timers go out now,
    /// and if the kernel does not take them (`EAGAIN`, `EBUSY`, or a
    /// MSG_RING refused on the spot), the claimed shards' eventfds are
    /// rung. A won claim left in the SQ, or refused unseen, would make
    /// every other sender to that shard ring nothing.
    pub(super) fn send_queued_claims(&self) {
        if self.queued_claims.borrow().is_empty() && self.cx.doorbells.borrow().is_empty() {
            return;
        }
        let Ok(mut ring) = self.cx.ring.try_borrow_mut() else {
            return;
        };
        let mut claimed = self.queued_claims.borrow_mut();
        self.cx.push_owed_doorbells(&mut ring, &mut claimed);
        if ring.sq_pending() {
            let _ = ring.submit();
        }
        // Also when a push had to submit already (a full SQ): those
        // claims may have been refused too. No syscall.
        self.cx.ring_eventfds_if_not_taken(&mut ring, &claimed);
        claimed.clear();
    }
}
