//! The pool's idle accounting (blocking invariant 3) at its narrowest
//! race, made deterministic by a hook.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::BlockingPool;
use crate::JoinHandle;
use crate::test_hook::KeyedHook;

/// Run by a pool thread whose keep-alive ran out, before it looks at its
/// claims: a test pushes there, as a push landing in that instant would.
static AFTER_TIMEOUT: KeyedHook = KeyedHook::new();

pub(super) fn after_timeout(pool: &BlockingPool) {
    AFTER_TIMEOUT.run(pool as *const BlockingPool as usize);
}

/// Expected: a push that claims an idle thread in the instant its
/// keep-alive runs out is run by that thread: the claim wins over the
/// timeout.
///
/// Why it may fail: a thread that timed out exited whatever it had been
/// told, after the push counted it out of `idle` and so started no thread:
/// with no other thread, the closure stayed queued forever.
#[test]
fn a_push_claiming_a_thread_as_its_keep_alive_ends_is_run() {
    let rt = crate::Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .thread_keep_alive(Duration::from_millis(20))
        .build()
        .unwrap();
    let h = rt.handle();
    let pushed: Arc<Mutex<Option<JoinHandle<u32>>>> = Arc::default();
    let (h2, slot) = (h.clone(), pushed.clone());
    AFTER_TIMEOUT.set(
        &h.shared.blocking as *const BlockingPool as usize,
        move || *slot.lock() = Some(h2.spawn_blocking(|| 7).unwrap()),
    );
    // Starts the pool's one thread, which then idles out.
    assert_eq!(rt.block_on(h.spawn_blocking(|| 1).unwrap()).unwrap(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let late = loop {
        if let Some(j) = pushed.lock().take() {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "the hook never ran");
        std::thread::sleep(Duration::from_millis(5));
    };
    let got = rt.block_on(crate::time::timeout(Duration::from_secs(10), late));
    assert_eq!(got.expect("the claimed closure never ran").unwrap(), 7);
}
