//! Runtimes started and dropped (or shut down with their handles kept)
//! leave no fd behind. Alone in its test binary, and one test at a time:
//! fd counts are process-wide, and any other test creating or dropping a
//! runtime in parallel would move them.

mod common;

static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

#[test]
fn runtimes_started_and_dropped_leave_no_fd_behind() {
    let _serial = SERIAL.lock();
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

/// A `Handle` (or a `JoinHandle`, or a waker) kept after the runtime is
/// gone held every shard's duplicated ring fd and eventfd, and with the
/// ring fd the kernel ring itself: a program that builds runtimes and keeps
/// their handles grew by two fds per shard each time. The last shard to
/// exit now closes them; the kept handle still answers, with `Shutdown`.
#[test]
fn a_handle_kept_after_shutdown_holds_no_fd() {
    let _serial = SERIAL.lock();
    drop(common::runtime(1));
    let before = common::fd_count();
    let mut kept = Vec::new();
    for _ in 0..5 {
        let rt = common::runtime(2);
        let h = rt.handle();
        rt.block_on(h.spawn_pinned(1, async {}).unwrap()).unwrap();
        assert!(rt.shutdown(std::time::Duration::from_secs(5)).is_clean());
        kept.push(h);
    }
    assert_eq!(
        common::fd_count(),
        before,
        "kept handles hold the runtimes' fds"
    );
    for h in &kept {
        assert!(matches!(
            h.spawn_pinned(0, async {}),
            Err(ringlane::Error::Shutdown)
        ));
    }
}
