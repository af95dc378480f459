//! Models of `SlotRing` (ring invariants in `src/channel/queue.rs`).
//!
//! No model waits for another thread's progress in a loop: a consumer
//! takes what is there a bounded number of times while producers run, and
//! drains the rest after joining them. (A spin-wait on a preempted thread
//! is an unbounded path to loom. A waiting receiver or sender parks and is
//! woken instead; only a dropped `Receiver` spins, for the few
//! instructions between a claim and its stamp, relying on a drained ring
//! being final, which `close_racing_a_push_loses_nothing` checks.)

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering, fence};
use loom::thread;

use crate::queue::{Refused, SlotRing};

/// Pushes `values` in order, stopping at the first refusal; returns how
/// many were accepted.
fn push_in_order(ring: &SlotRing<u32>, values: &[u32]) -> usize {
    values.iter().take_while(|v| ring.push(**v).is_ok()).count()
}

/// Two producers and the consumer through rings of one and two slots: each
/// message a producer pushed arrives exactly once, in its producer's order,
/// also across a lap wrap, and a push is refused only when the ring holds
/// `capacity` messages (invariants 1-5).
///
/// Each push may read and refresh the producers' copy of `head` as well,
/// which makes the space large: the exploration is bounded to 4
/// preemptions (unbounded, it ran past 18 minutes). The model below covers
/// the copy's hand-over across a lap without a bound.
#[test]
fn two_producers_fifo_through_a_small_ring() {
    for cap in [1, 2] {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(4);
        model.check(move || {
            let ring = Arc::new(SlotRing::new(cap));
            let producers: Vec<_> = [vec![1, 2], vec![11, 12]]
                .into_iter()
                .map(|values| {
                    let ring = ring.clone();
                    thread::spawn(move || {
                        let accepted = push_in_order(&ring, &values);
                        values[..accepted].to_vec()
                    })
                })
                .collect();
            let mut got = Vec::new();
            for _ in 0..3 {
                // SAFETY: this thread is the only consumer.
                got.extend(unsafe { ring.pop() });
            }
            let sent: Vec<Vec<u32>> = producers.into_iter().map(|p| p.join().unwrap()).collect();
            // Every producer is done: all claimed slots are stamped.
            // SAFETY: as above.
            while let Some(v) = unsafe { ring.pop() } {
                got.push(v);
            }
            for values in &sent {
                let arrived: Vec<u32> =
                    got.iter().copied().filter(|v| values.contains(v)).collect();
                assert_eq!(&arrived, values, "lost, duplicated or reordered");
            }
            let accepted = sent.iter().map(Vec::len).sum::<usize>();
            assert_eq!(got.len(), accepted);
            // A refusal means the ring was full: `cap` messages were in.
            if accepted < 4 {
                assert!(accepted >= cap, "refused while the ring had room");
            }
            assert_eq!(ring.len(), 0);
        });
    }
}

/// Invariant 1 across a lap, unbounded: a one-slot ring holds a message
/// and the consumer's `head` has not moved, so both producers must look at
/// `head` and may pass it on through the copy (`head_seen`); neither may
/// write the slot before the consumer has read the message in it (loom
/// checks the value's accesses), and every accepted message arrives once.
#[test]
fn a_copy_of_head_lets_no_producer_write_a_slot_still_being_read() {
    loom::model(|| {
        let ring = Arc::new(SlotRing::new(1));
        ring.push(0u32).unwrap();
        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|v| {
                let ring = ring.clone();
                thread::spawn(move || ring.push(v).is_ok().then_some(v))
            })
            .collect();
        // SAFETY: this thread is the only consumer.
        let mut got: Vec<u32> = unsafe { ring.pop() }.into_iter().collect();
        let sent: Vec<u32> = producers
            .into_iter()
            .filter_map(|p| p.join().unwrap())
            .collect();
        // SAFETY: as above.
        while let Some(v) = unsafe { ring.pop() } {
            got.push(v);
        }
        assert_eq!(got.first(), Some(&0), "the first message first");
        let mut later: Vec<u32> = got[1..].to_vec();
        later.sort_unstable();
        let mut sent = sent;
        sent.sort_unstable();
        assert_eq!(later, sent, "lost or duplicated");
    });
}

/// Producers racing for the slots of a ring with room all get one: a
/// stale `tail` or a slot another producer is still writing is never
/// reported as full (invariant 5), and a full ring is.
#[test]
fn racing_producers_are_refused_only_when_full() {
    loom::model(|| {
        let ring = Arc::new(SlotRing::new(2));
        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|v| {
                let ring = ring.clone();
                thread::spawn(move || ring.push(v))
            })
            .collect();
        for p in producers {
            assert_eq!(p.join().unwrap(), Ok(()), "refused with room left");
        }
        assert_eq!(ring.push(3), Err(Refused::Full(3)));
        assert_eq!(ring.len(), 2);
    });
}

/// A push racing the close is either refused or delivered before the ring
/// reads as drained, never lost (invariant 7); a ring seen drained stays
/// drained; nothing leaks (loom checks its `Arc`s after every execution).
#[test]
fn close_racing_a_push_loses_nothing() {
    loom::model(|| {
        let ring: Arc<SlotRing<Arc<u32>>> = Arc::new(SlotRing::new(2));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || ring.push(Arc::new(7)).is_ok())
        };
        assert!(!ring.is_drained(), "an open ring read as drained");
        assert!(ring.close());
        let drained_early = ring.is_drained();
        // SAFETY: this thread is the only consumer.
        let mut got = usize::from(unsafe { ring.pop() }.is_some());
        let pushed = producer.join().unwrap();
        if drained_early {
            assert!(!pushed, "a push landed after the ring read as drained");
        }
        // SAFETY: as above.
        while let Some(v) = unsafe { ring.pop() } {
            assert_eq!(*v, 7);
            got += 1;
        }
        assert!(ring.is_drained());
        assert_eq!(got, usize::from(pushed));
        assert!(matches!(ring.push(Arc::new(8)), Err(Refused::Closed(_))));
    });
}

/// Messages left in a dropped ring are dropped with it.
#[test]
fn a_dropped_ring_drops_its_messages() {
    loom::model(|| {
        let ring: Arc<SlotRing<Arc<u32>>> = Arc::new(SlotRing::new(2));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let _ = ring.push(Arc::new(1));
                let _ = ring.push(Arc::new(2));
            })
        };
        // SAFETY: this thread is the only consumer.
        drop(unsafe { ring.pop() });
        producer.join().unwrap();
        drop(ring);
    });
}

/// The channel's back-pressure handshake (protocol step 3) on this ring:
/// a producer that found it full flags itself, fences and tries again; the
/// consumer pops, fences and reads the flag. Either the retry finds the
/// freed slot or the consumer sees the flag (invariant 5: "full" is never
/// reported for a slot already freed).
#[test]
fn a_producer_waiting_for_room_is_never_missed() {
    loom::model(|| {
        let ring = Arc::new(SlotRing::new(1));
        ring.push(1u32).unwrap();
        let waiting = Arc::new(AtomicBool::new(false));
        let producer = {
            let (ring, waiting) = (ring.clone(), waiting.clone());
            thread::spawn(move || match ring.push(2) {
                Ok(()) => true,
                Err(Refused::Full(v)) => {
                    waiting.store(true, Ordering::SeqCst);
                    fence(Ordering::SeqCst);
                    ring.push(v).is_ok()
                }
                Err(Refused::Closed(_)) => unreachable!(),
            })
        };
        // SAFETY: this thread is the only consumer.
        assert_eq!(unsafe { ring.pop() }, Some(1));
        fence(Ordering::SeqCst);
        let saw_waiter = waiting.load(Ordering::SeqCst);
        let pushed = producer.join().unwrap();
        assert!(pushed || saw_waiter, "a waiting producer was missed");
    });
}
