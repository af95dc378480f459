//! `JoinSet`: tasks joined in the order they finish (Tokio's `JoinSet`;
//! invariants in `src/join_set.rs`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringlane::{Error, JoinSet};

use common::LIMIT;

/// Expected (Tokio): results come in the order the tasks finish, not the
/// order they were spawned; a panic is `is_panic`; `None` once empty.
/// (Each task waits for its own gate, opened one at a time, so the finish
/// order is the test's, whatever the machine's load; sleeps of different
/// lengths were outrun by a panic's backtrace under AddressSanitizer.)
#[test]
fn results_come_in_the_order_the_tasks_finish() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let out = rt.block_on(async move {
        let mut set = JoinSet::new();
        let mut gates = Vec::new();
        for i in 0u32..3 {
            let (open, gate) = tokio::sync::oneshot::channel::<()>();
            gates.push(Some(open));
            set.spawn_pinned(
                i as usize % 2,
                async move {
                    let _ = gate.await;
                    i
                },
                &h,
            )
            .unwrap();
        }
        set.spawn(async { panic!("boom") }).unwrap();
        let first = set.join_next().await.map(|r| r.unwrap_err().is_panic());
        let mut order = Vec::new();
        for i in [1usize, 2, 0] {
            gates[i].take().unwrap().send(()).unwrap();
            order.push(set.join_next().await.unwrap().unwrap());
        }
        let end = set.join_next().await.is_none();
        assert!(set.is_empty());
        (first, order, end)
    });
    assert_eq!(out, (Some(true), vec![1, 2, 0], true));
}

/// Adds to `set` a task on shard 0 that never ends on its own; dropping
/// its future adds one to `dropped`.
fn spawn_forever_counting_drop(
    set: &mut JoinSet<()>,
    h: &ringlane::Handle,
    dropped: &Arc<AtomicUsize>,
) {
    struct CountDrop(Arc<AtomicUsize>);
    impl Drop for CountDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let guard = CountDrop(dropped.clone());
    set.spawn_pinned(
        0,
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        },
        h,
    )
    .unwrap();
}

/// Expected (Tokio): `abort_all` cancels every task, whose results then
/// come back cancelled; dropping the set aborts the tasks still in it;
/// `detach_all` lets them run on.
#[test]
fn abort_all_and_drop_cancel_detach_all_does_not() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..3 {
        spawn_forever_counting_drop(&mut set, &h, &dropped);
    }
    set.abort_all();
    let cancelled = rt.block_on(async {
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            n += usize::from(r.unwrap_err().is_cancelled());
        }
        n
    });
    assert_eq!(cancelled, 3);
    assert_eq!(dropped.load(Ordering::SeqCst), 3);

    let mut set = JoinSet::new();
    spawn_forever_counting_drop(&mut set, &h, &dropped);
    drop(set);
    common::wait_until("the dropped set's task was aborted", || {
        dropped.load(Ordering::SeqCst) == 4
    });

    // A task that can be aborted at any moment (it waits for a message):
    // if the set's drop aborted it, it would never count.
    let ran = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    let (tx, mut rx) = ringlane::channel::<()>(1).unwrap();
    let r = ran.clone();
    set.spawn_pinned(
        0,
        async move {
            rx.recv().await;
            r.fetch_add(1, Ordering::SeqCst);
        },
        &h,
    )
    .unwrap();
    set.detach_all();
    drop(set);
    tx.try_send(()).unwrap();
    common::wait_until("the detached task ran", || ran.load(Ordering::SeqCst) == 1);
}

/// Expected: thousands of tasks that have all finished are joined one per
/// call inside a shard task, whose budget runs out along the way (each
/// join handle spends a unit): the set yields and goes on, never spinning
/// and never losing a result.
#[test]
fn many_finished_tasks_are_joined_across_budget_yields() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let j = h
        .spawn_pinned(0, async {
            let mut set = JoinSet::new();
            for i in 0..5_000u64 {
                set.spawn_local(async move { i }).unwrap();
            }
            ringlane::time::sleep(Duration::from_millis(20)).await;
            let (mut sum, mut n) = (0, 0);
            while let Some(r) = set.join_next().await {
                sum += r.unwrap();
                n += 1;
            }
            (n, sum)
        })
        .unwrap();
    assert_eq!(
        common::join_within(&rt, j, LIMIT, "joining 5,000 tasks"),
        (5_000, 4_999 * 5_000 / 2)
    );
}

/// Expected: a set polled by a Tokio task joins tasks running on
/// ringlane's shards; `spawn` with no runtime entered is `NotOnShard`.
#[test]
fn a_tokio_task_joins_a_set_of_shard_tasks() {
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let sum = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            let mut set = JoinSet::new();
            for shard in 0..2 {
                set.spawn_pinned(shard, async move { shard + 1 }, &h)
                    .unwrap();
            }
            let mut sum = 0;
            while let Some(r) = set.join_next().await {
                sum += r.unwrap();
            }
            sum
        })
        .await
        .unwrap()
    });
    assert_eq!(sum, 3);
    let mut set = JoinSet::<u8>::new();
    assert!(matches!(set.spawn(async { 1 }), Err(Error::NotOnShard)));
}

/// A stress of the set's wake-up protocol (invariants 1 and 2): tasks on
/// two shards finish at staggered moments (each yields a varying number of
/// times) while a plain thread joins them, and more are added between
/// joins. Every result must arrive exactly once; a lost wake-up fails the
/// round after `LIMIT` instead of hanging.
#[test]
fn staggered_finishes_on_two_shards_are_all_joined_once() {
    let rt = common::runtime(2);
    let h = rt.handle();
    for round in 0..20u64 {
        let mut set = JoinSet::new();
        let spawn = |set: &mut JoinSet<u64>, i: u64| {
            set.spawn_pinned(
                (i % 2) as usize,
                async move {
                    for _ in 0..(i * 7 + round) % 13 {
                        ringlane::yield_now().await;
                    }
                    i
                },
                &h,
            )
            .unwrap();
        };
        for i in 0..100 {
            spawn(&mut set, i);
        }
        let mut seen = std::collections::HashSet::new();
        let mut next = 100;
        let joined = rt.block_on(ringlane::time::timeout(LIMIT, async {
            while let Some(r) = set.join_next().await {
                assert!(seen.insert(r.unwrap()), "a result came twice");
                if next < 200 {
                    spawn(&mut set, next);
                    next += 1;
                }
            }
        }));
        assert!(joined.is_ok(), "round {round}: a result never arrived");
        assert_eq!(seen.len(), 200, "round {round}");
    }
}
