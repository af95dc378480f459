//! Models of the spawn gate (`src/mailbox/gate.rs`): a spawner racing the
//! gate's closing, and the shard's last look that decides whether it may
//! exit (`is_sealed`) or must wait.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::gate::SpawnGate;

/// A spawner either gets in before the gate closes (and then `close`
/// waits for it to push and leave) or is refused; a task that got in is
/// always in the queue once `close` has returned.
#[test]
fn a_spawn_racing_the_close_is_either_refused_or_seen_by_the_drain() {
    loom::model(|| {
        let gate = Arc::new(SpawnGate::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let spawner = {
            let (gate, queued) = (gate.clone(), queued.clone());
            thread::spawn(move || match gate.enter() {
                Some(_inside) => {
                    queued.fetch_add(1, Ordering::Relaxed); // the push
                    true
                }
                None => false,
            })
        };
        gate.close();
        let seen = queued.load(Ordering::Relaxed);
        let accepted = spawner.join().unwrap();
        assert_eq!(
            seen,
            usize::from(accepted),
            "a task accepted by the gate was not in the queue once close returned"
        );
    });
}

/// Once `close` has returned, the gate stays sealed whatever a late
/// spawner does: a shard's last look before sleeping (after the closer's
/// one round of doorbells) must never see it unsealed, or it sleeps with
/// nobody left to wake it.
#[test]
fn a_refused_spawn_never_unseals_a_closed_gate() {
    loom::model(|| {
        let gate = Arc::new(SpawnGate::default());
        gate.close();
        let spawner = {
            let gate = gate.clone();
            thread::spawn(move || assert!(gate.enter().is_none(), "a closed gate let a spawn in"))
        };
        assert!(gate.is_sealed(), "a refused spawn unsealed the gate");
        spawner.join().unwrap();
        assert!(gate.is_sealed());
    });
}
