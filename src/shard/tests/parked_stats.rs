//! What `ShardStats::parked` promises: the shard has run what it was
//! handed and sleeps.

use std::sync::mpsc;
use std::time::Duration;

use super::{AFTER_PREPARE_PARK, wait_parked};
use crate::Runtime;

/// The race behind a flaky test helper (`until_parked`, whose test then
/// closed an fd before the task that was to poll it had run): a task handed
/// over while the shard runs, just before it stores `PARKED` (step R3), is
/// found by its last look (R4). Between the two the doorbell reads
/// `PARKED` with the task unrun. The stats must not call that parked: a
/// snapshot taken there, and one taken while a spawned task waits there,
/// both say not parked; the shard then runs the task and truly sleeps.
#[test]
fn stats_do_not_call_a_shard_parked_between_its_intent_to_sleep_and_its_last_look() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    assert!(wait_parked(&h, 0), "the shard never parked");
    let ran = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (observer, id) = (h.clone(), h.shared.id);
    let flag = ran.clone();
    // Wakes the shard; its next park meets the hook.
    let first = h.spawn_pinned(0, async move {
        AFTER_PREPARE_PARK.lock().push((
            id,
            0,
            Box::new(move || {
                let at_r3 = observer.shard_stats(0).unwrap().parked;
                // Work for R4 to find, handed over as a plain thread would.
                let spawner = observer.clone();
                let handed = std::thread::spawn(move || {
                    drop(spawner.spawn_pinned(0, async move { flag.store(true, SeqCst) }));
                });
                handed.join().unwrap();
                let with_work = observer.shard_stats(0).unwrap().parked;
                tx.send((at_r3, with_work)).unwrap();
            }),
        ));
    });
    drop(first.unwrap());
    let (at_r3, with_work) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the shard never reached its next park");
    assert!(
        !at_r3,
        "parked read true between R3 and R4: the shard had not looked for work yet"
    );
    assert!(
        !with_work,
        "parked read true while a task handed to the shard waited unrun"
    );
    assert!(wait_parked(&h, 0), "the shard never slept after R4");
    assert!(ran.load(SeqCst), "parked, with the handed-over task unrun");
}
