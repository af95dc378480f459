//! Pinned and local tasks: placement, `!Send` futures, panics, abort,
//! detaching, bad shard indices and fairness under a budget.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringlane::Error;

#[test]
fn hundred_thousand_tasks_across_shards_all_complete() {
    let rt = common::runtime(2);
    let handle = rt.handle();
    let counter = Arc::new(AtomicUsize::new(0));
    let joins: Vec<_> = (0..100_000usize)
        .map(|i| {
            let c = counter.clone();
            handle
                .spawn_pinned(i % 2, async move {
                    c.fetch_add(1, Ordering::Relaxed);
                    i
                })
                .unwrap()
        })
        .collect();
    let sum: usize = rt.block_on(async {
        let mut sum = 0;
        for j in joins {
            sum += j.await.unwrap();
        }
        sum
    });
    assert_eq!(counter.load(Ordering::Relaxed), 100_000);
    assert_eq!(sum, (0..100_000).sum::<usize>());
}

#[test]
fn local_tasks_hold_non_send_state_on_their_shard() {
    let rt = common::runtime(2);
    let j = rt
        .handle()
        .spawn_local_on(1, || async {
            let shared = Rc::new(RefCell::new(Vec::new()));
            let mut children = Vec::new();
            for i in 0..10 {
                let s = shared.clone();
                children.push(
                    ringlane::spawn_local(async move {
                        ringlane::yield_now().await;
                        s.borrow_mut().push((i, ringlane::current_shard()));
                    })
                    .unwrap(),
                );
            }
            for c in children {
                c.await.unwrap();
            }
            shared.take()
        })
        .unwrap();
    let v = rt.block_on(j).unwrap();
    assert_eq!(v.len(), 10);
    assert!(
        v.iter().all(|(_, s)| *s == Some(1)),
        "a local task left its shard: {v:?}"
    );
}

/// A `!Send` task parked on a waker that another thread fires: the wake
/// crosses threads, the poll must not (async-task would panic if it did).
#[test]
fn local_task_woken_from_another_thread_is_polled_on_its_shard() {
    let rt = common::runtime(2);
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let j = rt
        .handle()
        .spawn_local_on(0, move || async move {
            let here = Rc::new(Cell::new(std::thread::current().id()));
            let v = rx.await.unwrap();
            (v, here.get() == std::thread::current().id())
        })
        .unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(9).unwrap();
    });
    assert_eq!(rt.block_on(j).unwrap(), (9, true));
}

#[test]
fn spawn_local_off_a_shard_is_an_error_not_a_panic() {
    assert!(matches!(
        ringlane::spawn_local(async {}),
        Err(Error::NotOnShard)
    ));
}

#[test]
fn a_panicking_task_yields_join_error_with_its_payload_and_the_shard_survives() {
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async { panic!("task blew up") })
        .unwrap();
    let err = rt.block_on(j).unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("task blew up"));
    assert_eq!(
        *err.into_panic().downcast::<&str>().unwrap(),
        "task blew up"
    );
    let j = rt
        .handle()
        .spawn_local_on(0, || async { panic!("{}", String::from("local too")) })
        .unwrap();
    let err = rt.block_on(j).unwrap_err();
    assert_eq!(*err.into_panic().downcast::<String>().unwrap(), "local too");
    let j = rt.handle().spawn_pinned(0, async { 7 }).unwrap();
    assert_eq!(
        rt.block_on(j).unwrap(),
        7,
        "the shard must keep running after panics"
    );
}

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn abort_cancels_a_pending_task_and_drops_its_future() {
    let rt = common::runtime(1);
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let _g = guard;
            std::future::pending::<()>().await
        })
        .unwrap();
    common::until_parked(&rt.handle(), 0); // polled, and waiting
    j.abort();
    assert!(rt.block_on(j).unwrap_err().is_cancelled());
    assert!(dropped.load(Ordering::SeqCst), "abort must drop the future");
}

#[test]
fn abort_before_first_poll_and_after_completion() {
    let rt = common::runtime(1);
    // Occupy the shard so the second task is still queued when aborted.
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    let blocker = rt
        .handle()
        .spawn_pinned(0, async move {
            while !g.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        })
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = rt
        .handle()
        .spawn_pinned(0, async move { r.store(true, Ordering::SeqCst) })
        .unwrap();
    queued.abort();
    gate.store(true, Ordering::SeqCst);
    rt.block_on(blocker).unwrap();
    assert!(rt.block_on(queued).unwrap_err().is_cancelled());
    assert!(
        !ran.load(Ordering::SeqCst),
        "an aborted task must never be polled"
    );

    let done = rt.handle().spawn_pinned(0, async { 5 }).unwrap();
    while !done.is_finished() {
        std::thread::yield_now();
    }
    done.abort(); // too late: the output is kept
    assert_eq!(rt.block_on(done).unwrap(), 5);
}

#[test]
fn dropping_a_join_handle_detaches_the_task() {
    let rt = common::runtime(1);
    let (tx, rx) = std::sync::mpsc::channel();
    drop(
        rt.handle()
            .spawn_pinned(0, async move {
                ringlane::time::sleep(Duration::from_millis(5)).await;
                tx.send(1).unwrap();
            })
            .unwrap(),
    );
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
}

#[test]
fn out_of_range_shard_is_a_clear_error() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let e = h.spawn_pinned(2, async {}).unwrap_err();
    assert!(matches!(
        e,
        Error::ShardOutOfRange {
            shard: 2,
            shards: 2
        }
    ));
    assert!(e.to_string().contains("out of range"));
    assert!(matches!(
        h.spawn_local_on(99, || async {}),
        Err(Error::ShardOutOfRange { shard: 99, .. })
    ));
    assert!(matches!(
        h.shard_stats(usize::MAX),
        Err(Error::ShardOutOfRange { .. })
    ));
}

#[test]
fn invalid_builder_settings_are_clear_errors() {
    for b in [
        ringlane::Runtime::builder().shards(0),
        ringlane::Runtime::builder().shards(1).ring_entries(0),
        ringlane::Runtime::builder().shards(1).ring_entries(1 << 20),
        ringlane::Runtime::builder().shards(1).task_budget(0),
        ringlane::Runtime::builder().shards(usize::MAX),
        ringlane::Runtime::builder().shards(1).thread_name("a\0b"),
    ] {
        assert!(matches!(b.build(), Err(Error::InvalidConfig(_))));
    }
}

/// A task that wakes itself forever must not starve timers, spawns from
/// other threads or other tasks on its shard: each tick polls at most the
/// budget, then services the mailbox, timers and ring.
#[test]
fn self_waking_task_does_not_starve_timers_mailbox_or_other_tasks() {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .task_budget(16)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let spinner = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                ringlane::yield_now().await;
                n += 1;
            }
            n
        })
        .unwrap();
    let t = Instant::now();
    let timer = rt
        .handle()
        .spawn_pinned(0, async {
            ringlane::time::sleep(Duration::from_millis(20)).await;
        })
        .unwrap();
    rt.block_on(timer).unwrap();
    let timer_latency = t.elapsed();
    let from_outside = rt.handle().spawn_pinned(0, async { 3 }).unwrap();
    assert_eq!(rt.block_on(from_outside).unwrap(), 3);
    stop.store(true, Ordering::Relaxed);
    let spins = rt.block_on(spinner).unwrap();
    assert!(spins > 100, "the spinner should have run too ({spins})");
    assert!(
        timer_latency < Duration::from_secs(10),
        "timer starved: {timer_latency:?}"
    );
}

#[test]
fn current_shard_and_handle_current_tell_a_task_where_it_runs() {
    let rt = common::runtime(2);
    assert_eq!(ringlane::current_shard(), None);
    assert!(ringlane::Handle::current().is_none());
    for shard in 0..2 {
        let j = rt
            .handle()
            .spawn_pinned(shard, async move {
                let h = ringlane::Handle::current().unwrap();
                // Spawning through Handle::current() onto the same shard.
                let inner = h
                    .spawn_pinned(shard, async { ringlane::current_shard() })
                    .unwrap();
                (ringlane::current_shard(), inner.await.unwrap(), h.shards())
            })
            .unwrap();
        assert_eq!(rt.block_on(j).unwrap(), (Some(shard), Some(shard), 2));
    }
}

#[test]
fn thread_names_carry_the_configured_prefix() {
    let rt = ringlane::Runtime::builder()
        .shards(2)
        .thread_name("unit")
        .build()
        .unwrap();
    let j = rt
        .handle()
        .spawn_pinned(1, async {
            std::thread::current().name().map(str::to_owned)
        })
        .unwrap();
    assert_eq!(rt.block_on(j).unwrap().as_deref(), Some("unit-1"));
}

#[test]
fn pinned_cpus_keep_each_shard_on_one_cpu() {
    let rt = ringlane::Runtime::builder()
        .shards(2)
        .pin_cpus(true)
        .build()
        .unwrap();
    for shard in 0..2 {
        let j = rt
            .handle()
            .spawn_pinned(shard, async {
                // SAFETY: cpu_set_t is plain data of the size we pass.
                unsafe {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
                    libc::CPU_COUNT(&set)
                }
            })
            .unwrap();
        assert_eq!(
            rt.block_on(j).unwrap(),
            1,
            "shard {shard} is not pinned to exactly one CPU"
        );
    }
}

#[test]
fn extreme_but_valid_builder_settings_work() {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .ring_entries(32_768)
        .task_budget(1 << 16) // the largest accepted
        .spin_before_park(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(
        rt.block_on(rt.handle().spawn_pinned(0, async { 1 }).unwrap())
            .unwrap(),
        1
    );
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.is_clean());
}

/// Runs this test binary's test `name` again in a child process with
/// `RINGLANE_CHILD` set, and returns whether the child exited cleanly.
fn in_child_process(name: &str) -> std::process::ExitStatus {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("RINGLANE_CHILD", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

/// A detached task whose output panics when dropped (or a panic payload
/// that does): `async-task` drops a detached task's output under an
/// abort-on-panic guard, and the whole process aborted. The output's drop
/// now contains the panic, like a future's. Run in a child process, since
/// the failure is an abort.
#[test]
fn a_detached_task_whose_output_panics_on_drop_does_not_abort() {
    const NAME: &str = "a_detached_task_whose_output_panics_on_drop_does_not_abort";
    if std::env::var_os("RINGLANE_CHILD").is_none() {
        let status = in_child_process(NAME);
        assert!(status.success(), "the process died: {status:?}");
        return;
    }
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("an output that panics when dropped");
        }
    }
    let rt = common::runtime(1);
    let h = rt.handle();
    // Detached before it runs: its output is dropped by the task itself.
    drop(h.spawn_pinned(0, async { Bomb }).unwrap());
    // Detached after it finished: the handle's drop drops the output.
    let done = h.spawn_pinned(0, async { Bomb }).unwrap();
    while !done.is_finished() {
        std::thread::yield_now();
    }
    drop(done);
    // FIFO on shard 0: both ran before this one.
    rt.block_on(h.spawn_pinned(0, async { 7 }).unwrap())
        .unwrap();
}

/// An aborted task is finished for its `JoinHandle` only once its future's
/// destructor has returned (Tokio's rule: what the task held is released
/// by then). `is_finished` used to turn true as soon as the task was
/// closed, while the destructor still ran on the shard.
#[test]
fn is_finished_waits_for_an_aborted_tasks_destructor() {
    struct Guard {
        release: std::sync::mpsc::Receiver<()>,
        dropping: Arc<AtomicBool>,
        dropped: Arc<AtomicBool>,
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            self.dropping.store(true, Ordering::SeqCst);
            let _ = self.release.recv_timeout(Duration::from_secs(5));
            self.dropped.store(true, Ordering::SeqCst);
        }
    }
    let rt = common::runtime(1);
    let (release, rx) = std::sync::mpsc::channel();
    let started = Arc::new(AtomicBool::new(false));
    let dropping = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = Guard {
        release: rx,
        dropping: dropping.clone(),
        dropped: dropped.clone(),
    };
    let s = started.clone();
    let h = rt
        .handle()
        .spawn_pinned(0, async move {
            let _guard = guard;
            s.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await
        })
        .unwrap();
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    h.abort();
    while !dropping.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    // The destructor is blocked until we release it.
    let early = h.is_finished();
    release.send(()).unwrap();
    assert!(!early, "finished while the future's destructor still ran");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !h.is_finished() {
        assert!(Instant::now() < deadline, "never finished");
        std::thread::yield_now();
    }
    assert!(dropped.load(Ordering::SeqCst));
    assert!(rt.block_on(h).unwrap_err().is_cancelled());
}

/// `spawn_local_on` from a task on its own target shard: the build closure
/// runs as the new task's first poll, as from anywhere else, so its panic
/// is the new task's `JoinError`. It used to run at once, inside the call,
/// and unwind into the calling task.
#[test]
fn spawn_local_on_the_calling_shard_builds_in_the_new_task() {
    let rt = common::runtime(1);
    let handle = rt.handle();
    let inner = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let j = handle
                        .spawn_local_on(0, || -> std::future::Ready<()> {
                            panic!("a build closure that panics (expected in this test)")
                        })
                        .expect("the spawn itself succeeds");
                    j.await
                })
                .unwrap(),
        )
        .expect("the calling task did not panic");
    assert!(inner.unwrap_err().is_panic());
}
