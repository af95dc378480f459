//! Runtimes started and dropped leave no fd behind. Alone in its test
//! binary: fd counts are process-wide, and any other test creating or
//! dropping a runtime in parallel would move them.

mod common;

#[test]
fn runtimes_started_and_dropped_leave_no_fd_behind() {
    // Warm up lazily created process-wide fds (the fallback timer thread).
    drop(common::runtime(1));
    let before = common::fd_count();
    for _ in 0..20 {
        let rt = common::runtime(2);
        rt.block_on(rt.handle().spawn_pinned(1, async {}).unwrap())
            .unwrap();
        drop(rt);
    }
    assert_eq!(
        common::fd_count(),
        before,
        "runtimes leaked file descriptors"
    );
}
