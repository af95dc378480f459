//! Parking: a shard with nothing to run spins for its window, if it has
//! one (step R2), then sleeps in `io_uring_enter` (R3 to R6 of the
//! park/wake protocol in `mailbox/doorbell.rs`).
//!
//! Invariants:
//! 1. Nothing is work unless it can be seen without a syscall; SQEs
//!    waiting to be submitted are not work (the park's enter submits them).
//! 2. The last look before sleeping (R4) follows the `PARKED` store (R3)
//!    and looks at everything a sender rings for, watched channels
//!    included, so a sender that missed `PARKED` is seen by it; stealable
//!    work elsewhere too, unless this shard was refused as a searcher and
//!    others still search.
//! 3. A spin is bounded by its window, the next timer and a shutdown's
//!    looks; it looks at the watched channels at every iteration (W5) and
//!    gives the CPU up every `YIELD_LOOKS` looks that found nothing.

use std::time::{Duration, Instant};

use super::core::Core;
use crate::stats::Counters;

/// The longest park of a shard draining gracefully.
const DRAINING_LOOK: Duration = Duration::from_millis(10);

/// How many looks of a spin pass between two enters while the deferred-work
/// flag stays set with nothing behind it (a stale flag, ring invariant 4).
const STALE_TASKRUN_LOOKS: u32 = 256;

/// How many looks of a spin pass between two yields of the CPU
/// (`sched_yield`), about every 5–10 µs: a spin that long has found
/// nothing, and the shard it waits on may be waiting for this very CPU.
/// The scheduler can stack two spinning shards on one CPU (it wakes a
/// parked thread next to its waker), where each would otherwise burn its
/// whole window while the other waits: 100 µs a hop in the `mailbox`
/// bench's spin case until the load balancer moved one. A yield with no
/// other thread runnable returns at once; a spin that finds its message
/// sooner never yields.
const YIELD_LOOKS: u32 = 256;
// The yield rides on the clock read every 16th look.
const _: () = assert!(YIELD_LOOKS % 16 == 0);

/// The longest park while the eventfd read could not be armed.
const UNARMED_PARK: Duration = Duration::from_millis(1);

impl Core {
    /// How long the park may last: until the next timer or, during a
    /// graceful shutdown, the shutdown deadline.
    pub(super) fn park_timeout(&self) -> Option<Duration> {
        self.wake_by()
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    /// When a park or a spin must end at the latest: the next timer or,
    /// while shutting down, the next look at the drain (and the deadline).
    fn wake_by(&self) -> Option<Instant> {
        let timer = self.cx.timers.borrow().next_deadline();
        let shutdown = if !self.cx.shared.is_shutting_down() {
            None
        } else if self.cancelling.get() {
            // Cancelling (D3), a shard that cannot exit yet waits on tasks
            // elsewhere: a stolen task of its registry, running on another
            // shard when D3 woke it, may have gone idle there since, with
            // nothing to ring us. D3's wake and drain repeat at each look.
            Some(Instant::now() + DRAINING_LOOK)
        } else {
            // While graceful, a shard may wait on other shards' tasks (drain
            // step D2) that end without ringing it: it looks again every
            // few milliseconds.
            let soon = Instant::now() + DRAINING_LOOK;
            self.cx.shared.shutdown_deadline().map(|d| d.min(soon))
        };
        match (timer, shutdown) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether there is work, checked without any syscall. SQEs waiting to
    /// be submitted are not work: the park's `io_uring_enter` submits them.
    /// `stealable` adds the other shards' deques and the injectors (step
    /// R4's extra look); a shard refused as a searcher leaves those to the
    /// searchers. While shutting down, being able to exit counts as work.
    fn has_work(&self, stealable: bool) -> bool {
        self.cx.watches.has_news() || self.has_other_work(stealable)
    }

    /// What [`Core::has_work`] looks at besides the watched receivers' news
    /// (the spin looks at those first, through `WatchList::wake_ready`).
    fn has_other_work(&self, stealable: bool) -> bool {
        !self.cx.remote.is_empty()
            || !self.cx.run_queue.borrow().is_empty()
            || !self.cx.doorbells.borrow().is_empty()
            || self.cx.ring.borrow_mut().has_completions()
            // Our own preferred tasks are ours to take even when the search
            // was refused: a spawner that saw us running left them to us.
            || !self.cx.remote.preferred.is_empty()
            || (stealable && self.cx.shared.has_stealable_work(self.cx.index))
            || (self.seen_shutdown.get() && self.exit_ready())
    }

    /// Step R2: spin for the configured window. Returns whether work appeared.
    fn spin(&self, window: Duration, stealable: bool) -> bool {
        // The window starts at the first clock read, 16 looks in: most
        // spins end before it (a message arrives), and a clock read is
        // about as dear as a look.
        let mut end = None;
        // A timer, or a shutdown's drain and deadline, ends the window early
        // (a window longer than a shutdown's timeout must not outlast it).
        let timer = self.wake_by();
        // Deferred work (doorbells, completions) becomes CQEs only when we
        // enter; a flag still set after an enter is stale (ring invariant
        // 4). Real work arriving later only sets the flag again, so a stale
        // flag is not ignored for the rest of the window: it is looked at
        // again every `STALE_TASKRUN_LOOKS` looks (about 5 µs), which bounds
        // how late an I/O completion can be seen by a spinning shard.
        let mut taskrun_stale = false;
        let mut spins = 0u32;
        loop {
            // Step W5 (`channel/watch.rs`): a watched receiver's message is
            // what a spinning shard most often waits for. Its task is woken
            // and run here, with no way back to a tick first (the tick's
            // looks at completions, claims, the mailbox and the timers come
            // right after, in the tick this spin returns to): that way sat
            // between every cross-shard message and its reply.
            #[cfg(test)]
            let polled = super::tests::polls_so_far(&self.cx);
            if self.cx.watches.wake_ready() {
                self.run_tasks();
                #[cfg(test)]
                super::tests::handed_off_in_spin(&self.cx, polled);
                return true;
            }
            // Other shards' deques are looked at every 8th look only: each
            // look at one costs a full fence, and a look at our own queues
            // and watched channels is what a message is waiting for. The
            // first is the 8th: the search before the spin has just looked.
            // (Parking looks at everything: step R4.)
            let steal_look = stealable && spins % 8 == 7;
            if self.has_other_work(steal_look)
                || self.cx.shared.is_shutting_down() && !self.seen_shutdown.get()
            {
                return true;
            }
            if (!taskrun_stale || spins % STALE_TASKRUN_LOOKS == STALE_TASKRUN_LOOKS - 1)
                && self.cx.ring.borrow_mut().has_deferred_work()
            {
                let mut ring = self.cx.ring.borrow_mut();
                let _ = ring.submit();
                if ring.has_completions() {
                    return true;
                }
                taskrun_stale = ring.has_deferred_work();
                // Counted as a look: deferred work that keeps coming
                // without completions must not hold the window open.
            }
            // The clock is read every 16th look only: a look is what finds
            // a message, and the window need not be exact to 100 ns.
            spins = spins.wrapping_add(1);
            if spins % 16 == 0 {
                let now = Instant::now();
                let end = *end.get_or_insert_with(|| crate::time::after(now, window));
                if now >= end || timer.is_some_and(|t| now >= t) {
                    return false;
                }
                if spins % YIELD_LOOKS == 0 {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Steps R2 to R6 of the park/wake protocol.
    pub(super) fn park(&self, stealable: bool) {
        #[cfg(test)]
        super::tests::before_park(&self.cx, stealable);
        // Doorbells owed by work done outside a tick (shutdown's drops,
        // completions) go out with this park's `io_uring_enter` at the latest.
        self.flush_doorbells();
        if let Some(window) = self.cx.shared.config.spin {
            // Queued doorbells must not wait out the spin window.
            let _ = self.cx.ring.borrow_mut().submit();
            if self.spin(window, stealable) {
                return;
            }
        }
        // Threads that own no ring wake us through the eventfd read: an arm
        // that found the SQ full is retried now, and while it keeps failing
        // the park is short.
        if !self.eventfd_armed.get() && !self.exiting.get() {
            self.arm_eventfd();
        }
        // Receivers whose watch ended and that did not wait again: their
        // senders need not ring us while we sleep.
        self.cx.watches.forget_ended();
        let doorbell = &self.cx.remote.doorbell;
        doorbell.prepare_park(); // R3
        #[cfg(test)]
        super::tests::after_prepare_park(&self.cx);
        let new_shutdown = self.cx.shared.is_shutting_down() && !self.seen_shutdown.get();
        let timeout = match self.eventfd_armed.get() || self.exiting.get() {
            true => self.park_timeout(),
            false => Some(
                self.park_timeout()
                    .map_or(UNARMED_PARK, |t| t.min(UNARMED_PARK)),
            ),
        };
        // A shard refused as a searcher skips stealable work at R4 (the
        // searchers will find it), unless none is left: the last one may
        // have found work and rung nobody, since we were not parked yet.
        let look = stealable
            || self
                .cx
                .shared
                .searching
                .load(std::sync::atomic::Ordering::SeqCst)
                == 0;
        if self.has_work(look) || new_shutdown || timeout == Some(Duration::ZERO) {
            doorbell.finish_park(); // R4
            // Doorbells the idle tick queued for this park's enter go out
            // now: the next tick may run for long before it submits.
            let _ = self.cx.ring.borrow_mut().submit();
            return;
        }
        let stats = &self.cx.remote.stats;
        stats.set_asleep(true);
        let _ = self.cx.ring.borrow_mut().park(timeout); // R5
        stats.set_asleep(false);
        let rung = doorbell.finish_park(); // R6
        Counters::add(&stats.parks, 1);
        if rung {
            Counters::add(&stats.wakeups, 1);
        }
    }
}
