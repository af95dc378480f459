//! What `ShardStats::parked` promises: the shard has run what it was
//! handed and sleeps.

use std::sync::mpsc;
use std::time::Duration;

use super::{AFTER_PREPARE_PARK, BEFORE_ANY_PARK, wait_parked};
use crate::Runtime;

/// The race behind a flaky test helper (`until_parked`, whose test then
/// closed an fd before the task that was to poll it had run): a task handed
/// over while the shard runs, just before it stores `PARKED` (step R3), is
/// found by its last look (R4). Between the two the doorbell reads
/// `PARKED` with the task unrun. A plain thread hands a task over right
/// before R3 (its sender sees the shard running and rings nothing); a
/// snapshot taken between R3 and R4 must not say parked. The shard then
/// runs the task and truly sleeps.
#[test]
fn stats_do_not_call_a_shard_parked_between_its_intent_to_sleep_and_its_last_look() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    assert!(wait_parked(&h, 0), "the shard never parked");
    let ran = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (spawner, observer, id) = (h.clone(), h.clone(), h.shared.id);
    let flag = ran.clone();
    // Wakes the shard; its next park meets the hooks.
    let first = h.spawn_pinned(0, async move {
        BEFORE_ANY_PARK.lock().push((
            id,
            0,
            Box::new(move || {
                // Work for R4 to find, handed over as a plain thread would.
                std::thread::spawn(move || {
                    drop(spawner.spawn_pinned(0, async move { flag.store(true, SeqCst) }));
                })
                .join()
                .unwrap();
            }),
        ));
        AFTER_PREPARE_PARK.lock().push((
            id,
            0,
            Box::new(move || {
                let at_r3 = observer.shard_stats(0).unwrap().parked;
                tx.send(at_r3).unwrap();
            }),
        ));
    });
    drop(first.unwrap());
    let at_r3 = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the shard never reached its next park");
    assert!(
        !at_r3,
        "parked read true between R3 and R4, with a task handed over and unrun"
    );
    assert!(wait_parked(&h, 0), "the shard never slept after R4");
    assert!(ran.load(SeqCst), "parked, with the handed-over task unrun");
}
