//! `AbortHandle`: Tokio's way to cancel a task without its `JoinHandle`.

mod common;

use std::sync::mpsc;
use std::time::Duration;

/// Signals on a channel when dropped (the task's future is gone).
struct Dropped(mpsc::Sender<()>);

impl Drop for Dropped {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Expected: an abort handle outlives its `JoinHandle`; aborting a
/// detached task from a plain thread drops its future, and the handle
/// then reports it finished.
#[test]
fn an_abort_handle_cancels_a_detached_task_from_another_thread() {
    let rt = common::runtime(2);
    let (tx, dropped) = mpsc::channel();
    // Made before the future, so that it signals whether the abort drops
    // the future before or after its first poll.
    let guard = Dropped(tx);
    let task = rt
        .handle()
        .spawn_pinned(1, async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })
        .unwrap();
    let abort = task.abort_handle();
    drop(task); // detached
    assert!(
        dropped.recv_timeout(Duration::from_millis(100)).is_err(),
        "dropping the JoinHandle cancelled the task: it only detaches it"
    );
    assert!(!abort.is_finished());
    let clone = abort.clone();
    std::thread::spawn(move || clone.abort()).join().unwrap();
    dropped
        .recv_timeout(Duration::from_secs(10))
        .expect("the aborted task's future was not dropped");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !abort.is_finished() {
        assert!(std::time::Instant::now() < deadline, "never finished");
        std::thread::yield_now();
    }
}

/// Expected (Tokio): aborting a task that already finished changes
/// nothing: its `JoinHandle` still gives the output.
#[test]
fn aborting_a_finished_task_leaves_its_output() {
    let rt = common::runtime(1);
    let task = rt.handle().spawn_pinned(0, async { 7u8 }).unwrap();
    let abort = task.abort_handle();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !abort.is_finished() {
        assert!(std::time::Instant::now() < deadline, "never finished");
        std::thread::yield_now();
    }
    abort.abort();
    assert_eq!(rt.block_on(task).unwrap(), 7);
}
