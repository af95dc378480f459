//! Traffic between Tokio tasks and shards: join handles raced, moved,
//! aborted and dropped in Tokio; ringlane timers polled by Tokio tasks
//! under load and cancellation; back-pressured channels both ways while
//! `call_on` floods the shards. Every wait is bounded.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::chans::tokio_mt;
use common::lifecycle::within;
use common::tokio_side::*;
use common::{LIMIT, join_within, wait_until};

/// 200 shard tasks wait behind a gate; each join handle is awaited in a
/// Tokio task (multi-thread) and then, depending on `i % 4`:
/// 0. awaited under `tokio::time::timeout`, which fires: the handle is
///    dropped mid-wait (the task is detached);
/// 1. polled in a `tokio::select!` that another branch wins, then moved to
///    a new Tokio task (the first one ends) which awaits it;
/// 2. polled in a lost `select!`, aborted, then awaited: cancelled;
/// 3. polled in a lost `select!` (an awaiter registered), then dropped.
///
/// Then the gate opens. Expected (Tokio's `JoinHandle` semantics, which
/// ringlane documents): the moved handles (1) are woken although the task
/// that registered first is gone, and deliver their output; the outputs of
/// detached tasks (0, 3) are dropped exactly once, by their shard; aborted
/// tasks (2) produce nothing; so 150 drops in all, 100 of them on shards,
/// never 151; and the runtime then shuts down clean (nothing left running
/// for the stale awaiter wakers of dropped handles).
#[test]
fn join_handles_raced_moved_aborted_or_dropped_in_tokio_give_each_output_exactly_once() {
    const N: usize = 200;
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let on_shard = Arc::new(AtomicUsize::new(0));
    let (got_tx, got) = mpsc::channel::<Result<usize, String>>();
    let mut stages = Vec::new();
    for i in 0..N {
        let (g, d, s) = (gate.clone(), drops.clone(), on_shard.clone());
        let mut jh = h
            .spawn_pinned(i % 2, async move {
                g.acquire()
                    .await
                    .expect("the gate is never closed")
                    .forget();
                Out {
                    id: i,
                    drops: d,
                    on_shard: s,
                }
            })
            .unwrap();
        let got_tx = got_tx.clone();
        stages.push(tokio_rt.spawn(async move {
            match i % 4 {
                0 => {
                    let r = tokio::time::timeout(Duration::from_millis(1), &mut jh).await;
                    assert!(r.is_err(), "task {i} finished behind a closed gate");
                    drop(jh);
                }
                1 => {
                    lose_a_select(&mut jh).await;
                    tokio::spawn(async move {
                        let r = match tokio::time::timeout(LIMIT, jh).await {
                            Err(_) => Err(format!(
                                "task {i}: its handle, moved to another Tokio task, was never woken"
                            )),
                            Ok(Err(e)) => Err(format!("task {i}: {e}")),
                            Ok(Ok(out)) => Ok(out.id), // dropped here, on a Tokio worker
                        };
                        let _ = got_tx.send(r);
                    });
                }
                2 => {
                    lose_a_select(&mut jh).await;
                    jh.abort();
                    match tokio::time::timeout(LIMIT, jh).await {
                        Err(_) => panic!("task {i}: aborted from Tokio, it never resolved"),
                        Ok(Ok(_)) => {
                            panic!("task {i}: aborted behind a closed gate, yet it finished")
                        }
                        Ok(Err(e)) => assert!(e.is_cancelled(), "task {i}: {e}"),
                    }
                }
                _ => {
                    lose_a_select(&mut jh).await;
                    drop(jh);
                }
            }
        }));
    }
    drop(got_tx);
    tokio_rt.block_on(async {
        for stage in stages {
            tokio::time::timeout(LIMIT, stage)
                .await
                .expect("a Tokio task awaiting a join handle stalled")
                .expect("a Tokio task awaiting a join handle failed");
        }
    });
    gate.add_permits(N);
    let mut moved: Vec<usize> = (0..N / 4)
        .map(|_| {
            got.recv_timeout(LIMIT)
                .expect("a moved join handle never resolved")
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    moved.sort_unstable();
    assert_eq!(
        moved,
        (0..N).filter(|i| i % 4 == 1).collect::<Vec<_>>(),
        "the moved handles gave the wrong outputs"
    );
    wait_until("every output being dropped", || {
        drops.load(Ordering::SeqCst) >= 3 * N / 4
    });
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    drop(tokio_rt);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3 * N / 4,
        "an output was dropped twice (or an aborted task produced one)"
    );
    assert_eq!(
        on_shard.load(Ordering::SeqCst),
        N / 2,
        "the outputs of tasks detached before they finished must be dropped by their shard"
    );
}

// ---------------------------------------------------------------------------
// 2. Tokio's context in shard tasks, and that Tokio runtime dropped first
// ---------------------------------------------------------------------------

/// 2,000 Tokio tasks on a multi-thread runtime use ringlane timers, which
/// off the shards run on the process-wide fallback timer thread: plain
/// sleeps; sleeps cancelled by a Tokio timer winning a `select!`;
/// `ringlane::time::timeout` elapsing; intervals; a sleep first polled in
/// Tokio then finished on a shard; a sleep first polled on a shard then
/// finished in Tokio (sleep.rs rules 1–2: a sleep moves its registration).
/// Meanwhile one task churns 20,000 `select!` rounds, each registering and
/// dropping an hour-long ringlane sleep.
///
/// Expected: every timer fires, none before its deadline (a timer is never
/// early, on the wheel or the fallback thread), cancellations leave
/// nothing that fires later, and after the churn (which leaves 20,000
/// removed entries for the fallback heap to compact) a fresh 1 ms sleep
/// still fires at once.
#[test]
fn ringlane_timers_polled_from_tokio_tasks_never_fire_early_under_load_cancellation_and_moves() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let (failures, last) = tokio_rt.block_on(async move {
        let all = async move {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..2000u64 {
                let d = Duration::from_micros(300 + (i * 7919) % 30_000);
                let h = h.clone();
                set.spawn(async move {
                    let start = Instant::now();
                    let ok = match i % 6 {
                        0 => {
                            ringlane::time::sleep(d).await;
                            start.elapsed() >= d
                        }
                        1 => tokio::select! {
                            () = ringlane::time::sleep(d + Duration::from_secs(3600)) => false,
                            () = tokio::time::sleep(d) => true,
                        },
                        2 => {
                            let r = ringlane::time::timeout(d, std::future::pending::<()>()).await;
                            r.is_err() && start.elapsed() >= d
                        }
                        3 => {
                            let mut every = ringlane::time::interval(Duration::from_millis(1));
                            for _ in 0..5 {
                                every.tick().await;
                            }
                            start.elapsed() >= Duration::from_millis(4)
                        }
                        4 => {
                            // Registered with the fallback thread, finished on a shard.
                            let mut s = ringlane::time::sleep(d);
                            poll_once_quiet(&mut s).await;
                            let deadline = s.deadline();
                            let on_shard = h
                                .spawn_pinned(0, async move {
                                    s.await;
                                    Instant::now()
                                })
                                .unwrap();
                            on_shard.await.is_ok_and(|at| at >= deadline)
                        }
                        _ => {
                            // Registered on a shard's wheel, finished in Tokio.
                            let from_shard = h
                                .spawn_pinned(0, async move {
                                    let mut s = ringlane::time::sleep(d);
                                    poll_once_quiet(&mut s).await;
                                    Some(s)
                                })
                                .unwrap();
                            match from_shard.await {
                                Ok(Some(s)) => {
                                    let deadline = s.deadline();
                                    s.await;
                                    Instant::now() >= deadline
                                }
                                _ => false,
                            }
                        }
                    };
                    if ok {
                        Ok(())
                    } else {
                        Err(format!("timer {i} (kind {}) fired early", i % 6))
                    }
                });
            }
            set.spawn(async {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(16);
                tokio::spawn(async move {
                    for i in 0..20_000u32 {
                        if tx.send(i).await.is_err() {
                            break;
                        }
                    }
                });
                let mut got = 0u32;
                loop {
                    tokio::select! {
                        () = ringlane::time::sleep(Duration::from_secs(3600)) => {
                            return Err("an hour-long ringlane sleep fired".to_owned());
                        }
                        m = rx.recv() => match m {
                            Some(_) => got += 1,
                            None => break,
                        },
                    }
                }
                if got == 20_000 {
                    Ok(())
                } else {
                    Err(format!("the churn received {got} of 20000"))
                }
            });
            let mut failures = Vec::new();
            while let Some(r) = set.join_next().await {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failures.push(e),
                    Err(e) => failures.push(format!("a timer task panicked: {e}")),
                }
            }
            let t = Instant::now();
            ringlane::time::sleep(Duration::from_millis(1)).await;
            (failures, t.elapsed())
        };
        tokio::time::timeout(LIMIT, all)
            .await
            .expect("ringlane timers polled from Tokio tasks did not all fire within 10 s")
    });
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}",
        failures.len()
    );
    assert!(
        last >= Duration::from_millis(1),
        "a 1 ms sleep fired after {last:?}"
    );
    assert!(
        last < Duration::from_secs(2),
        "a 1 ms sleep after the churn took {last:?}: the fallback timer thread is stalled"
    );
    within(LIMIT, "dropping the runtime", move || drop(rt));
}

// ---------------------------------------------------------------------------
// 6. Channels both ways with back-pressure, and call_on, under load
// ---------------------------------------------------------------------------

thread_local! {
    /// `call_on` closures run on this (shard) thread.
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// A pipeline across the boundary in both directions, every hop
/// back-pressured: four Tokio producers feed a capacity-4 channel into a
/// shard task, which forwards each message into a capacity-2 channel read
/// by a Tokio consumer that waits in a `tokio::select!` against a Tokio
/// timer (its `recv` future is dropped whenever the timer wins). A fifth,
/// impatient producer sends each message under a Tokio `timeout` and gives
/// up when it fires. Meanwhile eight Tokio tasks flood both shards with
/// `call_on`.
///
/// Expected (channel/mod.rs guarantees): nothing lost or duplicated, FIFO
/// per producer; an abandoned send never delivers its message (the
/// consumer sees exactly the impatient producer's successful sends, in
/// order); an abandoned `recv` loses nothing; every `call_on` closure runs
/// once on the shard asked for; no lost wake-up stalls the exchange; and
/// the runtime then shuts down clean.
#[test]
fn tokio_and_shards_pipe_through_back_pressured_channels_both_ways_while_call_on_floods_them() {
    const PRODUCERS: u32 = 4;
    const PER: u32 = 3_000;
    const IMPATIENT: u32 = 1_000;
    const CALLERS: usize = 8;
    const CALLS_EACH: usize = 300;
    let rt = common::runtime(2);
    let h = rt.handle();
    let (in_tx, mut in_rx) = ringlane::channel::<(u32, u32)>(4).unwrap();
    let (out_tx, mut out_rx) = ringlane::channel::<(u32, u32)>(2).unwrap();
    let forwarder = h
        .spawn_pinned(0, async move {
            let mut n = 0u64;
            while let Some(m) = in_rx.recv().await {
                out_tx.send(m).await.expect("the Tokio consumer went away");
                n += 1;
            }
            n
        })
        .unwrap();
    let tokio_rt = tokio_mt(2);
    let callers_h = h.clone();
    let (impatient_sent, consumed, wrong_calls) = tokio_rt.block_on(async move {
        let run = async move {
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let tx = in_tx.clone();
                    tokio::spawn(async move {
                        for s in 0..PER {
                            tx.send((p, s)).await.expect("the forwarder went away");
                        }
                    })
                })
                .collect();
            let impatient = {
                let tx = in_tx.clone();
                tokio::spawn(async move {
                    let mut sent = Vec::new();
                    for s in 0..IMPATIENT {
                        let send = tx.send((PRODUCERS, s));
                        match tokio::time::timeout(Duration::from_micros(20), send).await {
                            Ok(Ok(())) => sent.push(s),
                            Ok(Err(_)) => panic!("the forwarder went away"),
                            Err(_) => {} // dropped mid-wait: must never arrive
                        }
                    }
                    sent
                })
            };
            drop(in_tx);
            let callers: Vec<_> = (0..CALLERS)
                .map(|c| {
                    let h = callers_h.clone();
                    tokio::spawn(async move {
                        let mut wrong = 0usize;
                        for k in 0..CALLS_EACH {
                            let target = (c + k) % 2;
                            let ran_on = h
                                .call_on(target, |ctx| {
                                    CALLS.with(|n| n.set(n.get() + 1));
                                    ctx.index()
                                })
                                .expect("call_on")
                                .await
                                .expect("the call");
                            wrong += usize::from(ran_on != target);
                        }
                        wrong
                    })
                })
                .collect();
            let consumer = tokio::spawn(async move {
                let mut next = vec![0u32; PRODUCERS as usize];
                let mut impatient_got = Vec::new();
                loop {
                    tokio::select! {
                        m = out_rx.recv() => match m {
                            Some((p, s)) if p == PRODUCERS => impatient_got.push(s),
                            Some((p, s)) => {
                                assert_eq!(s, next[p as usize], "producer {p}: lost, duplicated or reordered");
                                next[p as usize] += 1;
                            }
                            None => break,
                        },
                        () = tokio::time::sleep(Duration::from_micros(50)) => {}
                    }
                }
                (next, impatient_got)
            });
            for p in producers {
                p.await.unwrap();
            }
            let sent = impatient.await.unwrap();
            let mut wrong = 0;
            for c in callers {
                wrong += c.await.unwrap();
            }
            (sent, consumer.await.unwrap(), wrong)
        };
        tokio::time::timeout(LIMIT, run)
            .await
            .expect("the pipeline or the call_on flood stalled (a lost wake-up?)")
    });
    let (next, impatient_got) = consumed;
    assert_eq!(
        next,
        vec![PER; PRODUCERS as usize],
        "a producer's messages went missing"
    );
    assert_eq!(
        impatient_got, impatient_sent,
        "a send abandoned by its timeout was delivered, or a successful one was lost"
    );
    assert_eq!(wrong_calls, 0, "a call_on closure ran on the wrong shard");
    let forwarded = join_within(&rt, forwarder, LIMIT, "the forwarder");
    assert_eq!(
        forwarded,
        u64::from(PRODUCERS * PER) + impatient_sent.len() as u64
    );
    for shard in 0..2 {
        let calls = join_within(
            &rt,
            h.call_on(shard, |_| CALLS.with(Cell::get)).unwrap(),
            LIMIT,
            "the call count",
        );
        assert_eq!(
            calls,
            (CALLERS * CALLS_EACH / 2) as u64,
            "shard {shard}: a call_on closure ran twice, never, or elsewhere"
        );
    }
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    drop(tokio_rt);
}

// ---------------------------------------------------------------------------
// 7. hyper on shards, Tokio clients that hang up mid-exchange
// ---------------------------------------------------------------------------
