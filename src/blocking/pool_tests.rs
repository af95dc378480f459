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

thread_local! {
    /// Pushes from this thread find the OS refusing new threads (`EAGAIN`,
    /// as under `RLIMIT_NPROC`), which root does not see otherwise.
    static REFUSE_THREADS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

pub(super) fn refusing_threads() -> bool {
    REFUSE_THREADS.with(std::cell::Cell::get)
}

/// Expected: a `spawn_blocking` whose closure needs a thread the OS
/// refuses, with no other thread to run it, is an error carrying the OS
/// error; the pool works again once threads can start.
///
/// Why it may fail: the closure was accepted (`Ok`) and then cancelled
/// unseen: its handle said "cancelled", as an abort, and the cause was
/// lost.
#[test]
fn a_closure_no_thread_can_run_is_refused_with_the_os_error() {
    let rt = crate::Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    REFUSE_THREADS.with(|r| r.set(true));
    let refused = h.spawn_blocking(|| 1);
    REFUSE_THREADS.with(|r| r.set(false));
    let e = std::io::Error::from(refused.map(drop).unwrap_err());
    assert_eq!(e.raw_os_error(), None, "wrapped with what failed: {e}");
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
    assert!(e.to_string().contains("blocking-pool thread"), "{e}");
    assert_eq!(rt.block_on(h.spawn_blocking(|| 2).unwrap()).unwrap(), 2);
}

/// Run by a push whose thread the OS refused, before it looks again.
static AFTER_REFUSED: KeyedHook = KeyedHook::new();

pub(super) fn after_refused(pool: &BlockingPool) {
    AFTER_REFUSED.run(pool as *const BlockingPool as usize);
}

/// Expected: two closures pushed at once, each needing a thread and each
/// refused one by the OS, are each refused with the error (or run): none
/// is accepted and then cancelled unseen.
///
/// Why it may fail: the second push to fail still counted the first's
/// refused thread as live, so it accepted its closure (`Ok`); the first
/// then found no thread at all and cancelled the whole queue, the second
/// closure with it.
#[test]
fn two_closures_whose_threads_are_both_refused_are_both_refused() {
    let rt = crate::Runtime::builder()
        .shards(1)
        .max_blocking_threads(4)
        .build()
        .unwrap();
    let h = rt.handle();
    type Pushed = Result<JoinHandle<u32>, crate::Error>;
    let second: Arc<Mutex<Option<Pushed>>> = Arc::default();
    let (h2, slot) = (h.clone(), second.clone());
    AFTER_REFUSED.set(
        &h.shared.blocking as *const BlockingPool as usize,
        move || {
            // Another push, from a thread whose spawns are refused too, while
            // the first push's refused thread still counts.
            let pushed = std::thread::spawn(move || {
                REFUSE_THREADS.with(|r| r.set(true));
                h2.spawn_blocking(|| 2)
            });
            *slot.lock() = Some(pushed.join().unwrap());
        },
    );
    REFUSE_THREADS.with(|r| r.set(true));
    let first = h.spawn_blocking(|| 1);
    REFUSE_THREADS.with(|r| r.set(false));
    let second = second.lock().take().expect("the hook ran");
    for (which, pushed) in [("first", first), ("second", second)] {
        match pushed {
            Err(crate::Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
            Err(e) => panic!("{which}: {e}"),
            Ok(j) => assert!(rt.block_on(j).is_ok(), "{which}: accepted, then cancelled"),
        }
    }
}

/// Expected: a closure whose thread the OS refuses while another pool
/// thread lives is queued and run by that thread when it is free.
#[test]
fn a_closure_whose_thread_is_refused_runs_on_a_live_one() {
    let rt = crate::Runtime::builder()
        .shards(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let h = rt.handle();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let (running_tx, running) = std::sync::mpsc::channel::<()>();
    let busy = h
        .spawn_blocking(move || {
            running_tx.send(()).unwrap();
            gate.recv_timeout(Duration::from_secs(10)).is_ok()
        })
        .unwrap();
    // Its thread runs: the refused push below has a live thread to wait
    // for (one only being spawned may fail as well).
    running.recv_timeout(Duration::from_secs(10)).unwrap();
    REFUSE_THREADS.with(|r| r.set(true));
    let queued = h.spawn_blocking(|| 3);
    REFUSE_THREADS.with(|r| r.set(false));
    let queued = queued.expect("queued behind the live thread");
    release.send(()).unwrap();
    assert!(rt.block_on(busy).unwrap());
    assert_eq!(rt.block_on(queued).unwrap(), 3);
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
