//! A per-shard hierarchical timer wheel.
//!
//! Six levels of 64 slots at 1 ms resolution cover 2^36 ms (about two
//! years); a deadline further out is *placed* at that horizon and re-placed
//! each lap until it is due. Level `L` slot
//! `s` holds timers whose deadline, in ticks since the wheel's origin,
//! shares every digit above `L` with `elapsed` and has digit `s` at level
//! `L` (6-bit digits). Each slot is a doubly-linked list threaded through one
//! entry vector, so insert and remove are O(1), and a 64-bit occupancy mask
//! per level finds the next non-empty slot in O(levels). Entries join a
//! list at its tail and a list is processed from its head, so timers due in
//! the same tick fire in registration order (cascading keeps the order).
//!
//! Invariants:
//! 1. `elapsed` only grows; every pending entry has `when > elapsed`, except
//!    transiently inside `advance`.
//! 2. An entry is in exactly one slot list while `Pending`, in none when
//!    `Fired` or `Free`.
//! 3. A `TimerKey` names an entry only while its generation matches; keys
//!    of freed entries are ignored, never misapplied to a reused entry.
//! 4. A timer never fires early: a deadline is rounded *up* to a tick, and a
//!    tick fires only once the clock, rounded *down*, has reached it.
//!
//! The shard parks with `next_deadline()` as its timeout, so timers cost no
//! SQE at all. A deadline found on a level above 0 is the start of that slot:
//! the shard wakes there, cascades the slot down, and parks again.

use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

const LEVELS: usize = 6;
const BITS: usize = 6;
const SLOTS: usize = 1 << BITS;
const HORIZON: u64 = 1 << (BITS * LEVELS);
const NIL: u32 = u32::MAX;

/// Names one registered timer (invariant 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    index: u32,
    generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Pending { level: u8, slot: u8 },
    Fired,
}

struct Entry {
    when: u64,
    generation: u32,
    state: State,
    waker: Option<Waker>,
    prev: u32,
    next: u32,
}

/// The wheel; owned by one shard, reached through the shard context.
pub(crate) struct TimerWheel {
    origin: Instant,
    elapsed: u64,
    entries: Vec<Entry>,
    free: Vec<u32>,
    heads: [[u32; SLOTS]; LEVELS],
    /// Each slot list's last entry: timers join at the tail, so timers due
    /// in the same tick fire in the order they were registered (as Tokio's).
    tails: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    pending: usize,
}

fn level_for(elapsed: u64, when: u64) -> usize {
    let masked = ((elapsed ^ when) | (SLOTS as u64 - 1)).min(HORIZON - 1);
    (63 - masked.leading_zeros() as usize) / BITS
}

fn slot_for(when: u64, level: usize) -> usize {
    ((when >> (level * BITS)) & (SLOTS as u64 - 1)) as usize
}

impl TimerWheel {
    pub(crate) fn new(origin: Instant) -> Self {
        Self {
            origin,
            elapsed: 0,
            entries: Vec::new(),
            free: Vec::new(),
            heads: [[NIL; SLOTS]; LEVELS],
            tails: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            pending: 0,
        }
    }

    fn tick_ceil(&self, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(ns.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    fn tick_floor(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Timers registered and not yet fired.
    pub(crate) fn len(&self) -> usize {
        self.pending
    }

    /// Registers a timer for `deadline`; `None` if the wheel already counts
    /// it as due (the caller completes at once).
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> Option<TimerKey> {
        let when = self.tick_ceil(deadline);
        if when <= self.elapsed {
            return None;
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    when: 0,
                    generation: 0,
                    state: State::Free,
                    waker: None,
                    prev: NIL,
                    next: NIL,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[index as usize];
        e.when = when;
        e.waker = Some(waker);
        let key = TimerKey {
            index,
            generation: e.generation,
        };
        self.link(index);
        self.pending += 1;
        Some(key)
    }

    fn entry(&mut self, key: TimerKey) -> Option<&mut Entry> {
        self.entries
            .get_mut(key.index as usize)
            .filter(|e| e.generation == key.generation && e.state != State::Free)
    }

    /// `Ready` once the timer fired (its entry is then freed); otherwise
    /// stores `waker` and returns `Pending`. A stale key counts as fired.
    ///
    /// A waker it replaces is returned, not dropped: the caller drops it
    /// once the wheel is no longer borrowed, since dropping the last clone
    /// of a waker can run code that drops another timer of this wheel.
    pub(crate) fn poll(&mut self, key: TimerKey, waker: &Waker) -> (Poll<()>, Option<Waker>) {
        let Some(e) = self.entry(key) else {
            return (Poll::Ready(()), None);
        };
        if e.state == State::Fired {
            let old = self.release(key.index);
            return (Poll::Ready(()), old);
        }
        let old = match &mut e.waker {
            Some(w) if w.will_wake(waker) => None,
            slot => slot.replace(waker.clone()),
        };
        (Poll::Pending, old)
    }

    /// Forgets a timer, fired or not. Stale keys are ignored. Returns the
    /// timer's waker for the caller to drop once the wheel is no longer
    /// borrowed (see [`poll`](Self::poll)).
    #[must_use = "drop the waker after the wheel's borrow ends"]
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Waker> {
        let e = self.entry(key)?;
        if let State::Pending { .. } = e.state {
            self.unlink(key.index);
            self.pending -= 1;
        }
        self.release(key.index)
    }

    fn release(&mut self, index: u32) -> Option<Waker> {
        let e = &mut self.entries[index as usize];
        e.state = State::Free;
        let waker = e.waker.take();
        e.generation = e.generation.wrapping_add(1);
        self.free.push(index);
        waker
    }

    fn link(&mut self, index: u32) {
        // A deadline past the horizon is placed at the horizon; the entry
        // keeps its real `when`, so it is re-placed lap after lap and fires
        // on time, never early.
        let placed = self.entries[index as usize]
            .when
            .min(self.elapsed + HORIZON - 1);
        let level = level_for(self.elapsed, placed);
        let slot = slot_for(placed, level);
        let tail = self.tails[level][slot];
        let e = &mut self.entries[index as usize];
        e.state = State::Pending {
            level: level as u8,
            slot: slot as u8,
        };
        e.prev = tail;
        e.next = NIL;
        if tail == NIL {
            self.heads[level][slot] = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        self.tails[level][slot] = index;
        self.occupied[level] |= 1 << slot;
    }

    fn unlink(&mut self, index: u32) {
        let (prev, next, state) = {
            let e = &self.entries[index as usize];
            (e.prev, e.next, e.state)
        };
        let State::Pending { level, slot } = state else {
            return;
        };
        let (level, slot) = (level as usize, slot as usize);
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1 << slot);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.tails[level][slot] = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
    }

    /// The next slot to process: `(level, slot, deadline tick)`.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        (0..LEVELS).find(|&l| self.occupied[l] != 0).map(|level| {
            let slot_range = 1u64 << (level * BITS);
            let level_range = slot_range << BITS;
            let now_slot = (self.elapsed >> (level * BITS)) & (SLOTS as u64 - 1);
            let mut occupied = self.occupied[level];
            if level == LEVELS - 1 && occupied != 1 << now_slot {
                // The current top-level slot holds only entries placed a lap
                // ahead (see below): any other occupied slot comes first.
                occupied &= !(1 << now_slot);
            }
            let offset = u64::from(occupied.rotate_right(now_slot as u32).trailing_zeros());
            let slot = (now_slot + offset) & (SLOTS as u64 - 1);
            let mut deadline = (self.elapsed & !(level_range - 1)) + slot * slot_range;
            if deadline <= self.elapsed && level == LEVELS - 1 {
                // The top level is a ring: a slot at or behind `elapsed` there
                // holds entries one lap ahead (only a placement clamped to the
                // horizon lands in the current top-level slot).
                deadline += level_range;
            }
            (level, slot as usize, deadline.max(self.elapsed))
        })
    }

    /// The instant the shard must wake at to keep timers on time.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.next_expiration()
            .map(|(_, _, tick)| self.origin + Duration::from_millis(tick))
    }

    /// Fires every timer due at `now`, pushing their wakers onto `fired`
    /// (the caller wakes them after releasing its borrow of the wheel).
    pub(crate) fn advance(&mut self, now: Instant, fired: &mut Vec<Waker>) {
        let now_tick = self.tick_floor(now);
        while let Some((level, slot, deadline)) = self.next_expiration() {
            if deadline > now_tick {
                break;
            }
            self.elapsed = self.elapsed.max(deadline);
            let mut index = std::mem::replace(&mut self.heads[level][slot], NIL);
            self.tails[level][slot] = NIL;
            self.occupied[level] &= !(1 << slot);
            while index != NIL {
                let e = &mut self.entries[index as usize];
                let next = e.next;
                if e.when <= self.elapsed {
                    e.state = State::Fired;
                    fired.extend(e.waker.take());
                    self.pending -= 1;
                } else {
                    self.link(index);
                }
                index = next;
            }
        }
        self.elapsed = self.elapsed.max(now_tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// Deterministic pseudo-random deadlines over several levels; every
    /// timer must fire exactly at the first advance at or after it, never
    /// before, and the wheel's next deadline must never be later than the
    /// earliest pending timer.
    #[test]
    fn timers_fire_on_time_never_early_across_levels() {
        let origin = Instant::now();
        let mut w = TimerWheel::new(origin);
        let (_, wk) = waker();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut keys = Vec::new();
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let ms = seed % 300_000;
            let key = w
                .insert(
                    origin + Duration::from_millis(ms) + Duration::from_micros(1),
                    wk.clone(),
                )
                .unwrap();
            keys.push((ms + 1, key));
        }
        let mut now_ms = 0;
        let mut fired = Vec::new();
        while now_ms <= 301_000 {
            let next = w.next_deadline();
            now_ms += 1 + (now_ms % 97);
            let now = origin + Duration::from_millis(now_ms);
            let earliest = keys
                .iter()
                .filter(|(_, k)| matches!(w.entries[k.index as usize].state, State::Pending { .. }))
                .map(|(due, _)| *due)
                .min();
            if let Some(due) = earliest {
                assert!(
                    next.unwrap() <= origin + Duration::from_millis(due),
                    "park would oversleep a timer"
                );
            }
            w.advance(now, &mut fired);
            for (due, k) in &keys {
                let st = w.entries[k.index as usize].state;
                if *due <= now_ms {
                    assert_eq!(
                        st,
                        State::Fired,
                        "timer due at {due} ms not fired at {now_ms} ms"
                    );
                } else {
                    assert!(
                        matches!(st, State::Pending { .. }),
                        "timer due at {due} fired early at {now_ms}"
                    );
                }
            }
            if now_ms > 5_000 {
                now_ms += 4_000; // move faster through the higher levels
            }
        }
        assert_eq!(fired.len(), keys.len());
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn next_deadline_is_never_after_the_earliest_timer() {
        let origin = Instant::now();
        let mut w = TimerWheel::new(origin);
        let (_, wk) = waker();
        for ms in [5u64, 70, 4_000, 300_000, 90_000_000] {
            w.insert(origin + Duration::from_millis(ms), wk.clone())
                .unwrap();
            let next = w.next_deadline().unwrap();
            assert!(next <= origin + Duration::from_millis(5), "{ms}: {next:?}");
        }
    }

    #[test]
    fn removed_timer_never_fires_and_stale_key_is_ignored() {
        let origin = Instant::now();
        let mut w = TimerWheel::new(origin);
        let (count, wk) = waker();
        let k1 = w
            .insert(origin + Duration::from_millis(10), wk.clone())
            .unwrap();
        let _ = w.remove(k1);
        let k2 = w
            .insert(origin + Duration::from_millis(10), wk.clone())
            .unwrap();
        assert_eq!(k1.index, k2.index, "the freed entry is reused");
        let _ = w.remove(k1); // stale: must not remove k2
        let mut fired = Vec::new();
        w.advance(origin + Duration::from_millis(10), &mut fired);
        fired.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(w.poll(k2, &wk).0.is_ready());
        assert!(w.next_deadline().is_none());
    }

    #[test]
    fn a_deadline_beyond_the_horizon_is_clamped_not_lost() {
        let origin = Instant::now();
        let mut w = TimerWheel::new(origin);
        let (_, wk) = waker();
        let far = origin + Duration::from_secs(10 * 365 * 24 * 3600);
        let k = w.insert(far, wk.clone()).unwrap();
        assert!(w.poll(k, &wk).0.is_pending());
        assert!(w.next_deadline().is_some());
    }

    /// Regression: a deadline beyond the horizon, inserted once `elapsed`
    /// had moved, was placed in the current top-level slot and made
    /// `advance` re-process that slot forever.
    #[test]
    fn deadline_beyond_the_horizon_neither_spins_nor_fires_early() {
        let origin = Instant::now();
        let mut w = TimerWheel::new(origin);
        let (count, wk) = waker();
        let mut fired = Vec::new();
        w.advance(origin + Duration::from_millis(5), &mut fired);
        let due = HORIZON + 1_000;
        let k = w
            .insert(origin + Duration::from_millis(due), wk.clone())
            .unwrap();
        w.advance(origin + Duration::from_millis(10), &mut fired); // must return
        assert!(w.next_deadline().unwrap() > origin + Duration::from_millis(10));
        w.advance(origin + Duration::from_millis(HORIZON + 10), &mut fired);
        assert!(fired.is_empty(), "fired {} ms early", due - HORIZON - 10);
        w.advance(origin + Duration::from_millis(due - 1), &mut fired);
        assert!(fired.is_empty());
        w.advance(origin + Duration::from_millis(due), &mut fired);
        fired.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(w.poll(k, &wk).0.is_ready());
    }

    /// A deadline beyond the horizon sits in the current top-level slot, a
    /// lap ahead. It used to be found first there and hide every other
    /// top-level slot behind its lap: a timer in the next slot (here 2^30
    /// ms ahead, about 12 days) woke the shard, and fired, two years late.
    #[test]
    fn a_timer_beyond_the_horizon_does_not_hide_the_next_top_level_slot() {
        let origin = Instant::now();
        let mut w = TimerWheel::new(origin);
        let (count, wk) = waker();
        let mut fired = Vec::new();
        w.advance(origin + Duration::from_millis(5), &mut fired);
        let far = origin + Duration::from_secs(10 * 365 * 24 * 3600);
        w.insert(far, wk.clone()).unwrap();
        let due = (1u64 << 30) + 5;
        let k = w
            .insert(origin + Duration::from_millis(due), wk.clone())
            .unwrap();
        let at = origin + Duration::from_millis(due);
        assert!(
            w.next_deadline().unwrap() <= at,
            "the shard would sleep past the timer"
        );
        // The shard wakes at each next deadline until the timer is due.
        let mut wakes = 0;
        while let Some(next) = w.next_deadline().filter(|&n| n <= at) {
            w.advance(next, &mut fired);
            wakes += 1;
            assert!(wakes < 64, "no progress towards the timer");
        }
        w.advance(at, &mut fired);
        fired.drain(..).for_each(Waker::wake);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "the timer did not fire at its deadline"
        );
        assert!(w.poll(k, &wk).0.is_ready());
        assert_eq!(w.len(), 1, "the far timer is still pending");
    }

    #[test]
    fn one_hundred_thousand_pending_timers() {
        let origin = Instant::now();
        let mut w = TimerWheel::new(origin);
        let (count, wk) = waker();
        for i in 0..100_000u64 {
            w.insert(origin + Duration::from_millis(1 + i % 5_000), wk.clone())
                .unwrap();
        }
        assert_eq!(w.len(), 100_000);
        let mut fired = Vec::new();
        w.advance(origin + Duration::from_millis(5_000), &mut fired);
        fired.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 100_000);
        assert_eq!(w.len(), 0);
    }
}
