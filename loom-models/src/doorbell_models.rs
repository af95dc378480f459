//! Models of the park/wake protocol (`src/mailbox/doorbell.rs`, steps
//! S1–S3 and R3–R6). The payload queue is an atomic counter; "sleeping" is
//! what a receiver does when its look at R4 finds nothing, and a model
//! checks after joining that such a receiver was rung. A receiver that
//! sleeps with nobody ringing it is a lost wake-up.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::doorbell::DoorbellState;

/// One sender hands a payload to a receiver that is about to park:
/// either the receiver's look at R4 finds the payload or the sender rings
/// (the two fences' total order), never neither.
#[test]
fn a_parking_receiver_either_sees_the_payload_or_is_rung() {
    loom::model(|| {
        let state = Arc::new(DoorbellState::new());
        let queued = Arc::new(AtomicUsize::new(0));
        let sender = {
            let (state, queued) = (state.clone(), queued.clone());
            thread::spawn(move || {
                queued.fetch_add(1, Ordering::Relaxed); // S1
                state.should_ring() // S2, S3
            })
        };
        state.prepare_park(); // R3
        let saw = queued.load(Ordering::Relaxed) > 0; // R4
        if saw {
            state.finish_park();
        }
        let rang = sender.join().unwrap();
        assert!(
            saw || rang,
            "the receiver slept and nobody rang: lost wake-up"
        );
        if !saw {
            // R5 ends with the doorbell; R6 learns of it.
            assert!(state.finish_park(), "the ring was not recorded");
        }
    });
}

/// Two senders and a receiver that parks, is woken, and parks again: a
/// parked receiver gets at most one doorbell per park (coalescing), and
/// every payload is either seen at R4 or announced by a doorbell.
///
/// Three threads and two parks make a large space: the exploration is
/// bounded to 3 preemptions (unbounded, it passes in about 9 minutes).
#[test]
fn two_senders_ring_a_parked_receiver_at_most_once_and_lose_nothing() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let state = Arc::new(DoorbellState::new());
        let queued = Arc::new(AtomicUsize::new(0));
        let rings = Arc::new(AtomicUsize::new(0));
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let (state, queued, rings) = (state.clone(), queued.clone(), rings.clone());
                thread::spawn(move || {
                    queued.fetch_add(1, Ordering::Relaxed); // S1
                    if state.should_ring() {
                        rings.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // The receiver takes what is queued and parks, at most twice: a
        // look at R4 that finds work goes round again; one that finds
        // nothing sleeps until the senders are done and then wakes (R6).
        let mut notified = 0;
        for _ in 0..2 {
            let taken = queued.load(Ordering::Relaxed); // R1
            state.prepare_park(); // R3
            if queued.load(Ordering::Relaxed) > taken {
                // R4: work found; a doorbell rung meanwhile is absorbed.
                notified += usize::from(state.finish_park());
                continue;
            }
            for s in senders {
                s.join().unwrap();
            }
            let woke = state.finish_park(); // R6
            notified += usize::from(woke);
            assert_eq!(
                rings.load(Ordering::Relaxed),
                notified,
                "a doorbell per park that was rung, no more"
            );
            assert!(
                woke || queued.load(Ordering::Relaxed) == taken,
                "payloads arrived while the receiver slept and nobody rang"
            );
            return;
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(rings.load(Ordering::Relaxed), notified);
    });
}

/// A shard refused as a searcher parks (R3) while the last searcher, which
/// found work and left some in its deque, stops searching (N3) and rings a
/// parked shard if there is one. The refused shard's R4 looks at stealable
/// work only when no searcher is left: either that look finds the work, or
/// the searcher's ring reaches it, never neither (`src/shard/steal.rs`,
/// step N4; the deque is a counter here).
#[test]
fn a_refused_shard_either_sees_the_last_searchers_leftovers_or_is_rung() {
    loom::model(|| {
        let state = Arc::new(DoorbellState::new());
        let searching = Arc::new(AtomicUsize::new(1));
        let leftovers = Arc::new(AtomicUsize::new(0));
        let searcher = {
            let (state, searching, leftovers) =
                (state.clone(), searching.clone(), leftovers.clone());
            thread::spawn(move || {
                leftovers.fetch_add(1, Ordering::Relaxed); // N2: a batch, part left
                let was_last = searching.fetch_sub(1, Ordering::SeqCst) == 1; // N3
                was_last && state.should_ring() // notify one parked shard
            })
        };
        state.prepare_park(); // R3 (the refused shard)
        let look = searching.load(Ordering::SeqCst) == 0;
        let saw = look && leftovers.load(Ordering::Relaxed) > 0; // R4
        if saw {
            state.finish_park();
        }
        let rang = searcher.join().unwrap();
        assert!(
            saw || rang,
            "the refused shard slept beside the leftovers and nobody rang it"
        );
    });
}
