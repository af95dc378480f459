//! The handle used from Tokio: spawning from Tokio tasks, awaiting join
//! handles there, and Tokio's context entered inside shard tasks.

mod common;

use std::time::Duration;

#[test]
fn join_handle_spawned_and_awaited_from_a_tokio_task() {
    let rt = common::runtime(2);
    let handle = rt.handle();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shards = tokio_rt.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..50usize {
            let handle = handle.clone();
            // Spawn from inside Tokio worker threads, await there too.
            tasks.push(tokio::spawn(async move {
                let j = handle
                    .spawn_pinned(i % 2, async move { (ringlane::current_shard(), i) })
                    .unwrap();
                j.await.unwrap()
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (shard, i) in shards {
        assert_eq!(shard, Some(i % 2), "task {i} ran on the wrong shard");
    }
}

#[test]
fn tokio_context_is_entered_inside_shard_tasks() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rt = ringlane::Runtime::builder()
        .shards(2)
        .tokio_handle(tokio_rt.handle().clone())
        .build()
        .unwrap();
    for shard in 0..2 {
        let j = rt
            .handle()
            .spawn_pinned(shard, async move {
                let t = std::time::Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                let slept = t.elapsed();
                let spawned = tokio::spawn(async { 40 }).await.unwrap();
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move { tx.send(2).unwrap() });
                (
                    slept,
                    spawned + rx.await.unwrap(),
                    ringlane::current_shard(),
                )
            })
            .unwrap();
        let (slept, v, on) = rt.block_on(j).unwrap();
        assert!(slept >= Duration::from_millis(5));
        assert_eq!(v, 42);
        assert_eq!(on, Some(shard));
    }
}

#[test]
fn without_a_tokio_handle_tokio_calls_in_a_task_fail_as_a_join_error_not_a_dead_shard() {
    let rt = common::runtime(1);
    let j = rt
        .handle()
        .spawn_pinned(0, async { drop(tokio::spawn(async {})) })
        .unwrap();
    assert!(
        rt.block_on(j).unwrap_err().is_panic(),
        "tokio::spawn off a Tokio context panics inside the task"
    );
    // The shard is still alive.
    let j = rt.handle().spawn_pinned(0, async { 1 }).unwrap();
    assert_eq!(rt.block_on(j).unwrap(), 1);
}

#[test]
fn shard_task_awaits_a_tokio_channel_fed_from_a_tokio_worker() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = common::runtime(2);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(16);
    let j = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut sum = 0;
            while let Some(v) = rx.recv().await {
                sum += v;
            }
            sum
        })
        .unwrap();
    tokio_rt.block_on(async move {
        for v in 1..=1000 {
            tx.send(v).await.unwrap();
        }
    });
    let sum = tokio_rt.block_on(j).unwrap();
    assert_eq!(sum, 500_500);
}

/// A `Runtime` can sit in shared state (`Arc<Runtime>` in a Tokio
/// service's state, a `static OnceLock`) as Tokio's can: it is `Send` and
/// `Sync`, and `block_on` works from two threads at once.
#[test]
fn a_runtime_shared_through_an_arc_is_used_from_two_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<ringlane::Runtime>();
    shareable::<ringlane::Handle>();
    let rt = std::sync::Arc::new(common::runtime(1));
    let other = rt.clone();
    let t = std::thread::spawn(move || {
        let j = other.handle().spawn_pinned(0, async { 7 }).unwrap();
        other.block_on(j).unwrap()
    });
    let j = rt.handle().spawn_pinned(0, async { 8 }).unwrap();
    assert_eq!(rt.block_on(j).unwrap() + t.join().unwrap(), 15);
}
