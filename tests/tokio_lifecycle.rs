//! Runtimes of both kinds ending in every order: a Tokio runtime dropped
//! before the shards that entered it, a ringlane runtime dropped inside
//! Tokio, `Runtime::block_on` inside Tokio tasks of both flavours, and a
//! Tokio task's idle socket wait at a graceful shutdown. Every wait is
//! bounded: a hang fails, it does not stall the suite.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ringlane::compat::UnixStream;

use common::chans::{signal_pending, tokio_mt};
use common::lifecycle::{threads_left_after_a_while, within};
use common::tokio_side::*;
use common::{LIMIT, join_within};

/// A runtime built with `.tokio_handle()` of a *current-thread* Tokio
/// runtime (what `#[tokio::main(flavor = "current_thread")]` gives):
///
/// Phase 1, while the test thread drives Tokio with `block_on`: shard tasks
/// bind a `tokio::net` listener, `tokio::spawn` its echo loop (which must
/// run on the Tokio thread), sleep with `tokio::time`, connect with
/// `tokio::net`, and `spawn_blocking`. Expected: all of it works, since
/// the shards entered Tokio's context and the Tokio thread drives its
/// drivers while it awaits the join handles.
///
/// Phase 2: shard tasks wait on a Tokio timer (an hour), a `tokio::net`
/// accept, and the join handle of a Tokio task that never ends; then the
/// Tokio runtime is dropped before ringlane. Expected, as for any Tokio
/// resource whose runtime shuts down: each wait ends (the timer's task
/// panics with Tokio's "being shutdown" message, which becomes a
/// `JoinError::is_panic`; the accept fails; the Tokio join handle says
/// cancelled), nothing hangs, the shards survive.
///
/// Phase 3: new Tokio calls on the shards fail as errors or task panics,
/// not dead shards; `call_on` still works; dropping the ringlane runtime
/// (whose shard threads still hold the dead Tokio handle entered) returns
/// and leaves no shard thread.
#[test]
fn shard_tasks_use_a_current_thread_tokio_runtime_then_fail_cleanly_when_it_is_dropped_first() {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = ringlane::Runtime::builder()
        .shards(2)
        .thread_name("adv-tk-ct")
        .tokio_handle(tokio_rt.handle().clone())
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let tokio_thread = std::thread::current().id();

    // Phase 1.
    let (got, slept, blocking, echo_ran_on) = tokio_rt.block_on(async {
        let exchange = async {
            let server = h
                .spawn_pinned(0, async {
                    let l = tokio::net::TcpListener::bind(any_port()).await.unwrap();
                    let addr = l.local_addr().unwrap();
                    let echo = tokio::spawn(async move {
                        let (mut s, _) = l.accept().await.unwrap();
                        let mut buf = [0u8; 5];
                        s.read_exact(&mut buf).await.unwrap();
                        s.write_all(&buf).await.unwrap();
                        std::thread::current().id()
                    });
                    (addr, echo)
                })
                .unwrap();
            let (addr, echo) = server.await.unwrap();
            let client = h
                .spawn_pinned(1, async move {
                    let t = Instant::now();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let slept = t.elapsed();
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    s.write_all(b"hello").await.unwrap();
                    let mut got = [0u8; 5];
                    s.read_exact(&mut got).await.unwrap();
                    let blocking = tokio::task::spawn_blocking(|| 6 * 7).await.unwrap();
                    (got, slept, blocking)
                })
                .unwrap();
            let (got, slept, blocking) = client.await.unwrap();
            (got, slept, blocking, echo.await.unwrap())
        };
        tokio::time::timeout(LIMIT, exchange)
            .await
            .expect("shard tasks using a current-thread Tokio runtime stalled")
    });
    assert_eq!(&got, b"hello");
    assert!(slept >= Duration::from_millis(5), "tokio::time fired early");
    assert_eq!(blocking, 42);
    assert_eq!(
        echo_ran_on, tokio_thread,
        "tokio::spawn from a shard task must run on the Tokio runtime's thread"
    );

    // Phase 2.
    let (waiting_tx, waiting) = mpsc::channel::<u32>();
    let sleeper = h
        .spawn_pinned(
            0,
            signal_pending(
                async { tokio::time::sleep(Duration::from_secs(3600)).await },
                waiting_tx.clone(),
                0,
            ),
        )
        .unwrap();
    let acceptor = {
        let tx = waiting_tx.clone();
        h.spawn_pinned(1, async move {
            let l = tokio::net::TcpListener::bind(any_port()).await?;
            signal_pending(l.accept(), tx, 1).await.map(drop)
        })
        .unwrap()
    };
    let joiner = h
        .spawn_pinned(0, async move {
            let never = tokio::spawn(std::future::pending::<()>());
            match signal_pending(never, waiting_tx, 2).await {
                Err(e) => e.is_cancelled(),
                Ok(()) => false,
            }
        })
        .unwrap();
    for _ in 0..3 {
        waiting
            .recv_timeout(LIMIT)
            .expect("a shard task never started waiting on Tokio");
    }
    within(
        LIMIT,
        "dropping the Tokio runtime under shard tasks",
        move || drop(tokio_rt),
    );
    let sleeper = rt
        .block_on(ringlane::time::timeout(LIMIT, sleeper))
        .expect("a shard task on a Tokio timer was not woken when its Tokio runtime went away");
    assert!(
        sleeper.is_err_and(|e| e.is_panic()),
        "a Tokio timer of a dropped runtime must fail (Tokio panics), not complete"
    );
    let accepted = rt
        .block_on(ringlane::time::timeout(LIMIT, acceptor))
        .expect(
            "a shard task on a tokio::net accept was not woken when its Tokio runtime went away",
        )
        .expect("the accepting task itself failed");
    assert!(
        accepted.is_err(),
        "an accept on a dropped Tokio runtime succeeded"
    );
    assert!(
        join_within(&rt, joiner, LIMIT, "a shard task on a Tokio join handle"),
        "the Tokio task's join handle must resolve as cancelled"
    );

    // Phase 3.
    let spawned = h
        .spawn_pinned(1, async {
            match tokio::spawn(async { 1 }).await {
                Err(e) => e.is_cancelled(),
                Ok(_) => false,
            }
        })
        .unwrap();
    assert!(
        join_within(&rt, spawned, LIMIT, "tokio::spawn after Tokio was dropped"),
        "tokio::spawn onto a dropped runtime must give a cancelled join handle"
    );
    let timer = h
        .spawn_pinned(1, async {
            tokio::time::sleep(Duration::from_millis(1)).await;
        })
        .unwrap();
    let timer = rt
        .block_on(ringlane::time::timeout(LIMIT, timer))
        .expect("a Tokio timer on a dropped runtime hung its shard task");
    assert!(timer.is_err_and(|e| e.is_panic()));
    assert_eq!(
        join_within(&rt, h.call_on(1, |c| c.index()).unwrap(), LIMIT, "call_on"),
        1,
        "the shard must keep serving"
    );
    within(LIMIT, "dropping the ringlane runtime", move || drop(rt));
    let left = threads_left_after_a_while("adv-tk-ct");
    assert!(left.is_empty(), "shard threads left behind: {left:?}");
}

// ---------------------------------------------------------------------------
// 3. A ringlane runtime dropped inside Tokio
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropSite {
    /// In a task of a current-thread Tokio runtime (its only thread).
    CurrentThreadTask,
    /// In a task on a multi-thread Tokio worker (blocking it).
    MultiThreadTask,
    /// In `spawn_blocking` on a multi-thread Tokio runtime.
    MultiThreadSpawnBlocking,
}

/// Tokio tasks wait on everything a ringlane runtime gives them: a join
/// handle (inside `tokio::select!` with a Tokio timer), a channel receiver
/// whose sender a shard task holds, a send into a full channel whose
/// receiver a shard task holds, a compat socket read (a forwarded wait,
/// readiness invariant 5), and the join handle of that holding task. Then
/// the runtime is dropped inside Tokio: in a task of a current-thread
/// runtime, in a task on a multi-thread worker, and in `spawn_blocking`.
///
/// Expected (`Runtime`'s drop cancels what is left; ringlane's channels
/// and compat waits end when their other side or runtime goes): the drop
/// returns (it must not need the Tokio thread it blocks), and every waiter
/// resolves: join handles cancelled, `recv` gives `None`, `send` gives the
/// message back, the read fails; no shard thread is left; spawns are then
/// refused with `Error::Shutdown`.
#[test]
fn a_ringlane_runtime_dropped_inside_tokio_resolves_every_tokio_waiter_and_leaves_no_thread() {
    let sites = [
        DropSite::CurrentThreadTask,
        DropSite::MultiThreadTask,
        DropSite::MultiThreadSpawnBlocking,
    ];
    for (n, site) in sites.into_iter().enumerate() {
        let prefix = format!("adv-rtdrop{n}");
        let rt = ringlane::Runtime::builder()
            .shards(2)
            .thread_name(prefix.clone())
            .build()
            .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
        let h = rt.handle();
        let (to_tokio_tx, to_tokio_rx) = ringlane::channel::<u32>(1).unwrap();
        let (from_tokio_tx, from_tokio_rx) = ringlane::channel::<u32>(1).unwrap();
        from_tokio_tx.try_send(0).unwrap(); // full: a send from Tokio waits
        let (held_tx, held) = mpsc::channel();
        let holder = h
            .spawn_pinned(1, async move {
                let _kept = (to_tokio_tx, from_tokio_rx);
                held_tx.send(()).unwrap();
                std::future::pending::<()>().await
            })
            .unwrap();
        held.recv_timeout(LIMIT)
            .expect("the holding task never ran");
        let never = h.spawn_pinned(0, std::future::pending::<u8>()).unwrap();
        let (a, b) = join_within(
            &rt,
            h.spawn_pinned(0, async { UnixStream::pair().unwrap() })
                .unwrap(),
            LIMIT,
            "a socket pair made on shard 0",
        );
        let outcome = within(LIMIT, "Tokio waiters of a dropped runtime", move || {
            let tokio_rt = if site == DropSite::CurrentThreadTask {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
            } else {
                tokio_mt(2)
            };
            tokio_rt.block_on(async move {
                let (tx, waiting) = mpsc::channel::<u32>();
                let joined = tokio::spawn(signal_pending(
                    async move {
                        tokio::select! {
                            r = never => r.err().map(|e| e.is_cancelled()),
                            () = tokio::time::sleep(Duration::from_secs(3600)) => None,
                        }
                    },
                    tx.clone(),
                    0,
                ));
                let received = tokio::spawn(signal_pending(
                    async move {
                        let mut rx = to_tokio_rx;
                        rx.recv().await
                    },
                    tx.clone(),
                    1,
                ));
                let sent = tokio::spawn(signal_pending(
                    async move { from_tokio_tx.send(1).await.map_err(|e| e.0) },
                    tx.clone(),
                    2,
                ));
                let read = tokio::spawn(signal_pending(
                    async move {
                        let mut a = a;
                        let mut buf = [0u8; 1];
                        a.read(&mut buf).await.map_err(|e| e.kind())
                    },
                    tx.clone(),
                    3,
                ));
                let held = tokio::spawn(signal_pending(holder, tx, 4));
                signals(&waiting, 5, "Tokio tasks starting to wait on the runtime").await;
                match site {
                    DropSite::MultiThreadSpawnBlocking => {
                        tokio::task::spawn_blocking(move || drop(rt)).await.unwrap();
                    }
                    _ => tokio::spawn(async move { drop(rt) }).await.unwrap(),
                }
                let settle = async move {
                    (
                        joined.await.unwrap(),
                        received.await.unwrap(),
                        sent.await.unwrap(),
                        read.await.unwrap(),
                        held.await.unwrap().is_err_and(|e| e.is_cancelled()),
                    )
                };
                tokio::time::timeout(LIMIT, settle).await.ok()
            })
        });
        let (joined, received, sent, read, held) = outcome.unwrap_or_else(|| {
            panic!("{site:?}: a Tokio waiter never resolved after its runtime was dropped")
        });
        assert_eq!(joined, Some(true), "{site:?}: the join handle in select!");
        assert_eq!(received, None, "{site:?}: recv whose sender was cancelled");
        assert_eq!(sent, Err(1), "{site:?}: send whose receiver was cancelled");
        assert!(read.is_err(), "{site:?}: the forwarded read gave {read:?}");
        assert!(held, "{site:?}: the holding task's join handle");
        drop(b);
        let left = threads_left_after_a_while(&prefix);
        assert!(left.is_empty(), "{site:?}: shard threads left: {left:?}");
        assert!(
            matches!(h.spawn_pinned(0, async {}), Err(ringlane::Error::Shutdown)),
            "{site:?}: a spawn after the drop must be refused"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. Runtime::block_on inside Tokio tasks
// ---------------------------------------------------------------------------

/// `Runtime::block_on` called inside a Tokio task, of a current-thread
/// runtime A and then of a multi-thread one, for a ringlane runtime built
/// with `.tokio_handle()` of another (multi-thread) runtime B. The future
/// awaits a shard task that uses ringlane's and B's timers and
/// `tokio::spawn`, sleeps on a ringlane timer itself, and calls
/// `tokio::spawn`.
///
/// Expected (the docs: block_on "enters the runtime's Tokio handle, if
/// any"; Tokio's enter guards nest): everything completes although A's
/// worker is blocked (nothing in the future needs it); `tokio::spawn`
/// inside block_on and on the shard runs on B; after block_on returns the
/// caller is back in A's context, so its next `tokio::spawn` runs on A. A
/// guard left entered, or restored to the wrong handle, would send A's
/// spawns to B (or a spawn inside block_on to the blocked A: a hang).
#[test]
fn block_on_inside_tokio_tasks_of_both_flavours_enters_its_tokio_handle_and_restores_the_callers() {
    let b = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("adv-bo-b")
        .enable_all()
        .build()
        .unwrap();
    let mut rt = ringlane::Runtime::builder()
        .shards(2)
        .tokio_handle(b.handle().clone())
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    for multi in [false, true] {
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("adv-bo-a-main".into())
            .spawn(move || {
                let a = if multi {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .thread_name("adv-bo-a")
                        .enable_all()
                        .build()
                        .unwrap()
                } else {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                };
                let task = a.spawn(async move {
                    let h = rt.handle();
                    let job = h
                        .spawn_pinned(1, async {
                            ringlane::time::sleep(Duration::from_millis(2)).await;
                            let t = Instant::now();
                            tokio::time::sleep(Duration::from_millis(3)).await;
                            let slept = t.elapsed();
                            let ran_on = tokio::spawn(async { thread_name() }).await.unwrap();
                            (ran_on, slept)
                        })
                        .unwrap();
                    let (from_shard, inside) = rt.block_on(async move {
                        let from_shard = job.await.unwrap();
                        ringlane::time::sleep(Duration::from_millis(2)).await;
                        let inside = tokio::spawn(async { thread_name() }).await.unwrap();
                        (from_shard, inside)
                    });
                    let after = tokio::spawn(async { thread_name() }).await.unwrap();
                    (from_shard, inside, after, rt)
                });
                let out = a.block_on(task).map_err(|e| e.to_string());
                let _ = done_tx.send(out);
            })
            .unwrap();
        let flavour = if multi {
            "multi-thread"
        } else {
            "current-thread"
        };
        let ((from_shard, slept), inside, after, back) = done
            .recv_timeout(LIMIT)
            .unwrap_or_else(|_| {
                panic!("block_on inside a {flavour} Tokio task did not return within {LIMIT:?}")
            })
            .unwrap_or_else(|e| panic!("the {flavour} Tokio task failed: {e}"));
        rt = back;
        assert!(
            from_shard.starts_with("adv-bo-b"),
            "{flavour}: tokio::spawn on a shard ran on {from_shard:?}, not on the runtime's Tokio handle"
        );
        assert!(
            slept >= Duration::from_millis(3),
            "{flavour}: a Tokio timer fired early"
        );
        assert!(
            inside.starts_with("adv-bo-b"),
            "{flavour}: tokio::spawn inside block_on ran on {inside:?}: block_on must enter its Tokio handle"
        );
        assert!(
            after.starts_with("adv-bo-a"),
            "{flavour}: after block_on returned, tokio::spawn ran on {after:?}: the caller's Tokio context was not restored"
        );
    }
    within(LIMIT, "dropping the ringlane runtime", move || drop(rt));
    drop(b);
}

// ---------------------------------------------------------------------------
// 5. ringlane timers polled by Tokio tasks (the fallback timer thread)
// ---------------------------------------------------------------------------

/// A compat socket made on shard 0, read from a Tokio task with nothing to
/// read (an idle keep-alive connection of a Tokio service), then a graceful
/// `shutdown(6 s)` with no task of the caller's left. Two variants: the
/// socket's read first waited on the shard (its poll stays armed there, and
/// the Tokio read polls that op), and a socket never polled on a shard (the
/// Tokio read forwards its wait: readiness invariant 5 spawns a helper
/// task on the home shard).
///
/// Expected, the same for both (drain.rs D2: a poll no ringlane task
/// awaits does not hold the exit back, as `a_compat_stream_kept_by_the_
/// caller_does_not_hold_shutdown_back` established): the shutdown returns
/// well before its deadline, reports no unfinished task (the caller spawned
/// none that is unfinished), and the Tokio read fails instead of hanging.
///
/// Suspected bug: the forwarded wait's helper is an ordinary task in the
/// home shard's registry, so the shard waits out the whole grace period
/// for it (6 s here; a service's 30 s in production) and then reports it as
/// an unfinished task of the caller's, while the armed-first variant exits
/// at once.
#[test]
fn a_tokio_tasks_idle_socket_wait_neither_holds_a_graceful_shutdown_back_nor_counts_as_a_task() {
    let tokio_rt = tokio_mt(1);
    let mut findings = Vec::new();
    for armed_first in [true, false] {
        let what = if armed_first {
            "a read armed on the shard, then polled from Tokio"
        } else {
            "a read forwarded from Tokio to the home shard"
        };
        let rt = common::runtime(1);
        let (mine, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = if armed_first {
            common::compat_io::armed_on_shard(&rt, 0, mine)
        } else {
            let made = rt
                .handle()
                .spawn_pinned(0, async move { UnixStream::from_std(mine) })
                .unwrap();
            join_within(&rt, made, LIMIT, "wrapping a socket on shard 0").unwrap()
        };
        let (waiting_tx, waiting) = mpsc::channel();
        let reader = tokio_rt.spawn(signal_pending(
            async move {
                let mut a = a;
                let mut buf = [0u8; 1];
                a.read(&mut buf).await.map_err(|e| e.kind())
            },
            waiting_tx,
            0,
        ));
        waiting
            .recv_timeout(LIMIT)
            .expect("the Tokio read never started waiting");
        let start = Instant::now();
        let report = within(LIMIT, "a graceful shutdown", move || {
            rt.shutdown(Duration::from_secs(6))
        });
        let took = start.elapsed();
        let read = tokio_rt.block_on(async { tokio::time::timeout(LIMIT, reader).await });
        if took >= Duration::from_secs(3) {
            findings.push(format!(
                "{what}: the graceful shutdown took {took:?} (deadline 6 s) with no task of the caller's alive"
            ));
        }
        if report.unfinished_tasks != 0 {
            findings.push(format!(
                "{what}: the shutdown reported {} unfinished task(s); the caller spawned none",
                report.unfinished_tasks
            ));
        }
        match read {
            Err(_) => findings.push(format!("{what}: the Tokio read hung after the shutdown")),
            Ok(Err(e)) => findings.push(format!("{what}: the Tokio reader failed: {e}")),
            Ok(Ok(Ok(n))) => findings.push(format!("{what}: read {n} bytes from a silent peer")),
            Ok(Ok(Err(_kind))) => {}
        }
        drop(peer);
    }
    assert!(findings.is_empty(), "{findings:#?}");
    drop(tokio_rt);
}
