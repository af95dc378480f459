//! Drop and shutdown orders across lanes, and objects used after their
//! runtime is gone: each fd closed once, no hang, no panic, an exited
//! shard's counters frozen, a shutdown's cancel not reported as a timeout,
//! runtimes dropped from their own tasks or from Tokio, objects moved
//! between runtimes.
//!
//! Every test holds `SERIAL` (fd counts are process-wide, and the timing
//! windows below must not compete with another test's shards for the CPUs).

mod common;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use ringlane::native::fixed::FixedBufPool;
use ringlane::native::fs::File;
use ringlane::native::net::UnixStream as NativeUnix;
use ringlane::{
    Error, Handle, JoinHandle, Placement, Runtime, ShardStats, TryRecvError, TrySendError,
};

use common::LIMIT;
use common::lifecycle::{threads_left_after_a_while, within};

/// fd counts are process-wide: every test here holds this lock.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// The fd count once the process-wide lazy state a first runtime creates
/// (the fallback timer thread) exists.
fn settled_fd_count() -> usize {
    let rt = common::runtime(1);
    rt.block_on(ringlane::time::sleep(Duration::from_millis(1)));
    drop(rt);
    common::fd_count()
}

/// A value handed out of a task (futures among it).
struct Held<T>(T);

/// Polls `fut` once from inside a task; `true` if it is still pending.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_pending())).await
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("adv13-drop-orders-{}-{name}", std::process::id()))
}

/// A message that counts its drops, per id: every message must be dropped
/// exactly once, whoever ends up with it (the receiver, the sender it was
/// returned to, or the channel's drain).
struct Counted {
    id: usize,
    drops: Arc<Vec<AtomicU8>>,
}

impl Counted {
    fn new(id: usize, drops: &Arc<Vec<AtomicU8>>) -> Self {
        Self {
            id,
            drops: drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, SeqCst);
    }
}

fn drop_counts(n: usize) -> Arc<Vec<AtomicU8>> {
    Arc::new((0..n).map(|_| AtomicU8::new(0)).collect())
}

/// Counts its drop.
struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

// ---------------------------------------------------------------------------
// 1. A watched receiver whose home shard has exited
// ---------------------------------------------------------------------------

/// A receiver waits once on shard 0 of a spinning runtime (so shard 0
/// *watches* the channel: `channel/watch.rs`), times out, and is handed out
/// of its task with the channel still marked `WATCHED`. The runtime is
/// dropped. Then, on the test thread, eight messages are sent, received,
/// and the receiver is dropped (the "drop of a Receiver whose shard has
/// exited" order).
///
/// Expected (ADR 0005, amendment of the fourth session: what is handed to an
/// exited shard "leaves the exited shard's counters alone";
/// `the_stats_of_an_exited_shard_stay_frozen_when_things_bound_to_it_are_dropped_later`
/// pins the same rule for timers): the counters of both exited shards are
/// exactly what they were right after the drop; the messages all arrive;
/// a send after the receiver's drop is refused with the message.
///
/// Before the fix: every send still runs doorbell step S3 against the dead
/// watcher (`chan.rs:113-115` → `remote.rs:192-195`) and, finding its
/// doorbell `CLOSED`, counts a "doorbell avoided" on it; the receiver's drop
/// does the same (`chan.rs:131`).
#[test]
fn a_watched_receiver_outliving_its_home_shard_leaves_that_shards_counters_frozen() {
    let _serial = SERIAL.lock();
    let rt = Runtime::builder()
        .shards(2)
        .spin_before_park(Duration::from_micros(50))
        .thread_name("adv13-watch")
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let (tx, rx) = ringlane::channel::<u64>(64).unwrap();
    let watched = h
        .spawn_pinned(0, async move {
            let mut rx = rx;
            // Watched by shard 0 (a pinned task's own wait on a spinning
            // shard); the wait times out and is dropped, the mark stays.
            let waited = ringlane::time::timeout(Duration::from_millis(2), rx.recv()).await;
            assert!(waited.is_err(), "nothing was sent: the wait must time out");
            rx
        })
        .unwrap();
    let mut rx = common::join_within(&rt, watched, LIMIT, "a receive watched by shard 0");
    within(Duration::from_secs(20), "dropping the runtime", move || {
        drop(rt)
    });
    let snapshot = || -> Vec<ShardStats> { (0..2).map(|s| h.shard_stats(s).unwrap()).collect() };
    let frozen = snapshot();
    assert!(
        frozen.iter().all(|s| !s.parked),
        "exited shards read as parked: {frozen:?}"
    );
    for i in 0..8u64 {
        tx.try_send(i)
            .unwrap_or_else(|e| panic!("send {i} to a live receiver: {e}"));
    }
    let after_sends = snapshot();
    for i in 0..8u64 {
        assert_eq!(
            rx.try_recv(),
            Ok(i),
            "a message sent after the drop was lost"
        );
    }
    drop(rx); // its watcher, shard 0, has exited
    assert!(
        matches!(tx.try_send(99), Err(TrySendError::Closed(99))),
        "a send after the receiver's drop must be refused with its message"
    );
    let after_drop = snapshot();
    assert_eq!(
        after_sends, frozen,
        "sends to a receiver whose watching shard had exited moved that shard's counters: each \
         one was counted as a doorbell avoided on a shard that no longer exists"
    );
    assert_eq!(
        after_drop, frozen,
        "dropping a receiver whose watching shard had exited moved that shard's counters"
    );
}

// ---------------------------------------------------------------------------
// 2. The report of a shutdown called on its own shard
// ---------------------------------------------------------------------------

type ReadFut = Pin<Box<dyn Future<Output = (io::Result<usize>, Vec<u8>)> + Send>>;

/// A receive of up to 32 bytes on `s` (which it owns), bounded by a
/// kernel-enforced `native::timeout` of `limit`.
fn timed_read(s: NativeUnix, limit: Duration) -> ReadFut {
    Box::pin(ringlane::native::timeout(limit, async move {
        s.read(Vec::with_capacity(32)).await
    }))
}

/// Two identical reads under a 3 s `native::timeout`, on two idle
/// sockets, are submitted on shard 0 and handed out of their task; the
/// runtime is dropped at once (D5 cancels both ops, ~3 s before their
/// deadline). The first is then polled right away, the second after the
/// deadline has passed.
///
/// Expected: both ops met the same fate (shutdown cancelled them; no timer
/// fired: the linked timeout was cancelled with them), so both give the
/// same error, and neither is `TimedOut`: a caller must be able to tell "the
/// runtime went away" from "the peer was slow" (the first is final, the
/// second worth a retry). Both give their buffer back.
///
/// Before the fix: `Op::poll` maps `-ECANCELED` to
/// `-ETIMEDOUT` whenever `Instant::now()` is past the op's deadline at the
/// time of the poll, instead of asking whether the linked timeout fired:
/// the same completed op reads `ECANCELED` early and `TimedOut` late.
#[test]
fn an_op_cancelled_by_its_runtimes_shutdown_is_not_reported_as_timed_out_once_its_deadline_has_passed()
 {
    let _serial = SERIAL.lock();
    const DEADLINE: Duration = Duration::from_millis(3000);
    let rt = common::runtime(1);
    let (a, a_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (b, b_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let armed_at = Instant::now();
            let mut early = timed_read(NativeUnix::from_std(a), DEADLINE);
            let mut late = timed_read(NativeUnix::from_std(b), DEADLINE);
            assert!(
                poll_once(&mut early).await && poll_once(&mut late).await,
                "nothing was sent: both reads must wait"
            );
            // The park's enter issues both (with their linked timeouts).
            ringlane::time::sleep(Duration::from_millis(5)).await;
            (armed_at, Held((early, late)))
        })
        .unwrap();
    let (armed_at, Held((early, late))) =
        common::join_within(&rt, task, LIMIT, "arming two timed reads");
    within(Duration::from_secs(20), "dropping the runtime", move || {
        drop(rt)
    });
    if armed_at.elapsed() >= DEADLINE {
        // The linked timeouts may really have fired first: nothing to
        // compare (a machine too loaded to shut down within the deadline).
        eprintln!("skipped: the runtime took longer than {DEADLINE:?} to shut down");
        return;
    }
    let waiter = common::runtime(1);
    let looked_early_at = armed_at.elapsed();
    let (r_early, buf_early) = waiter
        .block_on(ringlane::time::timeout(LIMIT, early))
        .expect("a read cancelled by shutdown, polled before its deadline, never ended");
    std::thread::sleep(
        (armed_at + DEADLINE + Duration::from_millis(200))
            .saturating_duration_since(Instant::now()),
    );
    let looked_late_at = armed_at.elapsed();
    let (r_late, buf_late) = waiter
        .block_on(ringlane::time::timeout(LIMIT, late))
        .expect("a read cancelled by shutdown, polled after its deadline, never ended");
    assert_eq!(buf_early.capacity(), 32, "the early read lost its buffer");
    assert_eq!(buf_late.capacity(), 32, "the late read lost its buffer");
    let e_early = r_early.expect_err("a read cancelled by shutdown returned data nobody sent");
    let e_late = r_late.expect_err("a read cancelled by shutdown returned data nobody sent");
    assert_ne!(
        e_late.kind(),
        io::ErrorKind::TimedOut,
        "a read cancelled by its runtime's shutdown ~{:?} before its deadline reads as timed \
         out when looked at after the deadline ({looked_late_at:?}: {e_late:?}); looked at \
         earlier ({looked_early_at:?}) the identical read gave {e_early:?}",
        DEADLINE
    );
    assert_eq!(
        e_late.raw_os_error(),
        e_early.raw_os_error(),
        "two reads cancelled by the same shutdown give different errors depending on when \
         they are polled: {e_early:?} at {looked_early_at:?}, {e_late:?} at {looked_late_at:?}"
    );
    drop((a_peer, b_peer));
}

// ---------------------------------------------------------------------------
// 4. The runtime dropped by aborting the task that owns it
// ---------------------------------------------------------------------------

/// Owns a runtime; reports how long dropping it took.
struct OwnedRuntime {
    rt: Option<Runtime>,
    took: mpsc::Sender<Duration>,
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        let t = Instant::now();
        drop(self.rt.take());
        let _ = self.took.send(t.elapsed());
    }
}

/// A task of the runtime owns the runtime itself (its only owner) and
/// waits for ever; a pending task sits on each shard. The test thread
/// aborts the owning task, so the runtime's `Drop` runs in the shard's
/// drop of the aborted task's future: first for a pinned owner (on shard
/// 1), then for a stealable one (dropped by whichever shard takes the
/// abort's wake-up from the injector, its registry home possibly another).
///
/// Expected (as for a drop from inside one of its own tasks,
/// `runtime_shut_down_from_inside_one_of_its_own_tasks`): the drop returns
/// promptly (it neither waits for the shard it runs on nor for the owner's
/// registry home); the owner's and the pending tasks' handles resolve
/// `Cancelled`; spawns are refused; every shard thread ends; no fd is left.
///
/// The risk: this drop happens inside `run_tasks`' abort branch
/// (`core.rs:255`) and inside `Tracked::drop` (`tracked.rs:182`), not inside
/// a poll; a caller-shard or home detection that only works inside a poll
/// makes the drop wait out the 5 s grace and report a stuck shard, or a
/// borrow held across the drop panics the shard (process abort).
#[test]
fn a_runtime_dropped_by_aborting_the_task_that_owns_it_returns_promptly_and_ends_everything() {
    let _serial = SERIAL.lock();
    let waiter = common::runtime(1);
    let before = settled_fd_count();
    for (round, stealable) in [(0usize, false), (1, true)] {
        let prefix = format!("adv13-own{round}");
        let rt = Runtime::builder()
            .shards(2)
            .thread_name(prefix.clone())
            .build()
            .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
        let h = rt.handle();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let victims: Vec<JoinHandle<()>> = (0..2)
            .map(|shard| {
                let s = started_tx.clone();
                h.spawn_pinned(shard, async move {
                    s.send(()).unwrap();
                    std::future::pending::<()>().await
                })
                .unwrap()
            })
            .collect();
        let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
        let (took_tx, took_rx) = mpsc::channel::<Duration>();
        let s = started_tx.clone();
        let body = async move {
            let rt = rt_rx.recv_timeout(LIMIT).expect("the runtime never came");
            let _owner = OwnedRuntime {
                rt: Some(rt),
                took: took_tx,
            };
            s.send(()).unwrap();
            std::future::pending::<()>().await
        };
        let owner = if stealable {
            h.spawn_stealable(body).unwrap()
        } else {
            h.spawn_pinned(1, body).unwrap()
        };
        rt_tx.send(rt).unwrap();
        for _ in 0..3 {
            started_rx.recv_timeout(LIMIT).expect("a task never ran");
        }
        owner.abort();
        let took = took_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "round {round}: the runtime's drop, run by its aborted owner, never returned"
                )
            });
        assert!(
            took < Duration::from_millis(4500),
            "round {round} (stealable owner: {stealable}): dropping the runtime from its aborted \
             owner took {took:?}: it waited for a shard that could not exit before it returned"
        );
        let r = waiter
            .block_on(ringlane::time::timeout(LIMIT, owner))
            .expect("the aborted owner's join handle never resolved");
        assert!(
            r.is_err_and(|e| e.is_cancelled()),
            "round {round}: the aborted owner"
        );
        for v in victims {
            let r = waiter
                .block_on(ringlane::time::timeout(LIMIT, v))
                .expect("a pending task's join handle never resolved");
            assert!(
                r.is_err_and(|e| e.is_cancelled()),
                "round {round}: a pending task was not cancelled"
            );
        }
        assert!(h.is_shutdown());
        assert!(
            matches!(h.spawn_pinned(0, async {}), Err(Error::Shutdown)),
            "round {round}: a spawn after the drop must be refused"
        );
        let left = threads_left_after_a_while(&prefix);
        assert!(
            left.is_empty(),
            "round {round}: shard threads outlived their runtime: {left:?}"
        );
    }
    assert_eq!(
        common::fd_count(),
        before,
        "runtimes dropped by their aborted owners leaked fds"
    );
}

// ---------------------------------------------------------------------------
// 5. Runtime B keeps spawning onto, and sending to, runtime A while A drops
// ---------------------------------------------------------------------------

/// Runtime A (spinning, so its receiver is watched) runs a receiver on
/// shard 0. Both shards of runtime B loop: a spawn onto A (pinned,
/// stealable, `StealablePreferred`, `call_on` in turn) and a `send` of a
/// drop-counted message to A's receiver; a plain thread `try_send`s too.
/// Once A's receiver has taken 300 messages, A is dropped.
///
/// Expected ("no lost or duplicated message, in any drop, cancel or
/// shutdown order"; "a runtime already shut down: a clear error"): the drop
/// returns; each spawn onto A is either accepted, its handle then resolving
/// `Ok` or `Cancelled` (never hanging), or refused with `Error::Shutdown`;
/// each send either delivers its message or gives it back; every message is
/// dropped exactly once (by A's receiver, by its sender, or by the drain of
/// the dropped receiver); B keeps working; A's threads end; no fd leaks.
#[test]
fn a_second_runtime_keeps_spawning_onto_and_sending_to_the_first_while_it_is_dropped() {
    let _serial = SERIAL.lock();
    const PER: usize = 20_000;
    const PLAIN: usize = 100_000;
    let before = settled_fd_count();
    let rt_a = Runtime::builder()
        .shards(2)
        .spin_before_park(Duration::from_micros(50))
        .thread_name("adv13-a")
        .build()
        .unwrap_or_else(|e| panic!("runtime A failed to start: {e}"));
    let rt_b = Runtime::builder()
        .shards(2)
        .thread_name("adv13-b")
        .build()
        .unwrap_or_else(|e| panic!("runtime B failed to start: {e}"));
    let (ha, hb) = (rt_a.handle(), rt_b.handle());
    let drops = drop_counts(2 * PER + PLAIN);
    let received = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = ringlane::channel::<Counted>(8).unwrap();
    let r = received.clone();
    let receiver = ha
        .spawn_pinned(0, async move {
            let mut rx = rx;
            while let Some(m) = rx.recv().await {
                r.fetch_add(1, SeqCst);
                drop(m);
            }
        })
        .unwrap();
    let idle = ha.spawn_pinned(1, std::future::pending::<()>()).unwrap();
    let senders: Vec<JoinHandle<(usize, usize, usize, usize)>> = (0..2usize)
        .map(|k| {
            let (ha, tx, drops) = (ha.clone(), tx.clone(), drops.clone());
            hb.spawn_pinned(k, async move {
                let (mut refused, mut returned) = (0usize, 0usize);
                let mut joins: Vec<JoinHandle<()>> = Vec::new();
                for i in 0..PER {
                    let spawned = match i % 4 {
                        0 => {
                            ha.spawn_pinned(i % 2, ringlane::time::sleep(Duration::from_millis(1)))
                        }
                        1 => ha.spawn_stealable(async {}),
                        2 => ha.spawn_with(Placement::StealablePreferred(i % 2), async {
                            ringlane::yield_now().await
                        }),
                        _ => ha.call_on(i % 2, |_| ()),
                    };
                    match spawned {
                        Ok(j) => joins.push(j),
                        Err(Error::Shutdown) => refused += 1,
                        Err(e) => {
                            panic!("B{k}: spawn {i} onto A: expected Ok or Shutdown, got {e:?}")
                        }
                    }
                    if let Err(e) = tx.send(Counted::new(k * PER + i, &drops)).await {
                        drop(e.0);
                        returned += 1;
                    }
                    if i % 64 == 63 {
                        ringlane::time::sleep(Duration::from_micros(200)).await;
                    }
                }
                drop(tx);
                let (mut ok, mut cancelled) = (0usize, 0usize);
                for j in joins {
                    match ringlane::time::timeout(LIMIT, j).await {
                        Ok(Ok(())) => ok += 1,
                        Ok(Err(e)) if e.is_cancelled() => cancelled += 1,
                        Ok(Err(e)) => panic!("B{k}: a task spawned onto A failed: {e:?}"),
                        Err(_) => panic!(
                            "B{k}: a task accepted by A before its drop never resolved (hung join \
                             handle)"
                        ),
                    }
                }
                (refused, returned, ok, cancelled)
            })
            .unwrap()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let plain = {
        let (tx, drops, stop) = (tx.clone(), drops.clone(), stop.clone());
        std::thread::spawn(move || {
            let base = 2 * PER;
            let mut created = 0usize;
            while created < PLAIN && !stop.load(SeqCst) {
                let mut m = Counted::new(base + created, &drops);
                created += 1;
                loop {
                    match tx.try_send(m) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            if stop.load(SeqCst) {
                                drop(back);
                                return created;
                            }
                            m = back;
                            std::thread::yield_now();
                        }
                        Err(TrySendError::Closed(back)) => {
                            drop(back);
                            return created;
                        }
                    }
                }
            }
            created
        })
    };
    drop(tx);
    common::wait_until("A's receiver taking 300 messages", || {
        received.load(SeqCst) >= 300
    });
    within(
        Duration::from_secs(20),
        "dropping A while B spawns onto it and sends to it",
        move || drop(rt_a),
    );
    let outcomes: Vec<(usize, usize, usize, usize)> = senders
        .into_iter()
        .map(|j| common::join_within(&rt_b, j, Duration::from_secs(30), "a B sender task"))
        .collect();
    stop.store(true, SeqCst);
    let plain_created = plain.join().expect("the plain-thread sender panicked");
    let refused: usize = outcomes.iter().map(|o| o.0).sum();
    let returned: usize = outcomes.iter().map(|o| o.1).sum();
    assert!(
        refused > 0 && returned > 0,
        "A's drop did not land while B was still spawning and sending ({outcomes:?}): the test \
         proves nothing"
    );
    let check = |start: usize, len: usize, created: usize, who: &str| {
        for id in start..start + len {
            let n = drops[id].load(SeqCst);
            let want = u8::from(id - start < created);
            assert_eq!(
                n, want,
                "{who}: message {id} was dropped {n} times (expected {want}): lost or duplicated \
                 across A's drop"
            );
        }
    };
    check(0, PER, PER, "B0");
    check(PER, PER, PER, "B1");
    check(2 * PER, PLAIN, plain_created, "the plain thread");
    for (what, j) in [("receiver", receiver), ("idle", idle)] {
        let r = rt_b
            .block_on(ringlane::time::timeout(LIMIT, j))
            .unwrap_or_else(|_| panic!("A's {what} task's join handle never resolved"));
        assert!(
            r.is_err_and(|e| e.is_cancelled()),
            "A's {what} task was not cancelled"
        );
    }
    let hb2 = hb.clone();
    let still = hb
        .spawn_pinned(1, async move {
            hb2.spawn_pinned(0, async { 7u8 }).unwrap().await.unwrap()
        })
        .unwrap();
    assert_eq!(
        common::join_within(&rt_b, still, LIMIT, "B after A's drop"),
        7,
        "runtime B stopped working after A was dropped under its traffic"
    );
    let left = threads_left_after_a_while("adv13-a");
    assert!(left.is_empty(), "A's shard threads outlived it: {left:?}");
    drop(rt_b);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ---------------------------------------------------------------------------
// 6. Objects of a dropped runtime used on another runtime
// ---------------------------------------------------------------------------

/// On shard 0 of runtime A: a native file is created and written, a native
/// socket pair wrapped, a 300 ms sleep registered in A0's wheel, a receiver
/// waited on once, and a compat stream's read armed (its poll on A0's ring);
/// a task on A1 waits for ever. All of it is handed out and A is dropped.
/// Then, on shard 0 of runtime B (the same index, another ring and wheel):
/// the file is written and read back, the socket pair carries bytes, the
/// sleep is awaited, A's task's handle is awaited, the receiver gets a
/// message a plain thread sends; each fd is then closed. The compat
/// stream is read from a Tokio thread (nothing was sent) and dropped.
///
/// Expected: nothing of A is needed for what no longer needs A (the native
/// lane's objects own their fds; the sleep moves to the wheel it is
/// polled on, fires at its deadline and not before); what still needs A
/// (the compat poll armed on A's ring) ends with an error, never a hang; its
/// drop closes the socket; every fd is closed exactly once (the count comes
/// back).
#[test]
fn objects_of_a_dropped_runtime_work_or_fail_clearly_on_another_runtime_and_close_each_fd_once() {
    let _serial = SERIAL.lock();
    let path = temp_path("objects");
    let before = settled_fd_count();
    let rt_a = common::runtime(2);
    let ha = rt_a.handle();
    let (compat_end, mut compat_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let (na, nb) = std::os::unix::net::UnixStream::pair().unwrap();
    let never = ha.spawn_pinned(1, std::future::pending::<u8>()).unwrap();
    let (tx, rx) = ringlane::channel::<u32>(4).unwrap();
    let p = path.clone();
    let made = ha
        .spawn_pinned(0, async move {
            let file = common::native_io::create_rw(&p).await?;
            let (n, _) = file.write_at(b"a".to_vec(), 0).await;
            n?;
            let (na, nb) = (NativeUnix::from_std(na), NativeUnix::from_std(nb));
            let mut sleep = Box::pin(ringlane::time::sleep(Duration::from_millis(300)));
            let deadline = sleep.deadline();
            assert!(
                poll_once(&mut sleep).await,
                "a 300 ms sleep was due at once"
            );
            let mut rx = rx;
            let waited = ringlane::time::timeout(Duration::from_millis(1), rx.recv()).await;
            assert!(waited.is_err(), "nothing was sent yet");
            let mut compat = ringlane::compat::UnixStream::from_std(compat_end)?;
            let waited =
                ringlane::time::timeout(Duration::from_millis(20), compat.read(&mut [0u8; 1]))
                    .await;
            assert!(waited.is_err(), "nothing was written: the read must wait");
            Ok::<_, io::Error>(Held((file, na, nb, sleep, deadline, rx, compat)))
        })
        .unwrap();
    let Held((file, na, nb, sleep, deadline, mut rx, mut compat)) =
        common::join_within(&rt_a, made, LIMIT, "making objects on A's shard 0")
            .expect("making objects on A's shard 0 failed");
    within(Duration::from_secs(20), "dropping runtime A", move || {
        drop(rt_a)
    });

    let rt_b = common::runtime(2);
    let hb = rt_b.handle();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.try_send(7).expect("the receiver, moved off A, is alive");
    });
    let used = hb
        .spawn_pinned(0, async move {
            let (n, _) = file.write_at(b"b".to_vec(), 1).await;
            n?;
            let (n, buf) = file.read_at(Vec::with_capacity(8), 0).await;
            assert_eq!(&buf[..n?], b"ab", "the file made on A, used on B");
            let (r, _) = na.write_all(b"xyz".to_vec()).await;
            r?;
            let (n, buf) = ringlane::native::timeout(LIMIT, nb.read(Vec::with_capacity(8))).await;
            assert_eq!(&buf[..n?], b"xyz", "the socket pair made on A, used on B");
            sleep.await;
            assert!(
                Instant::now() >= deadline,
                "a sleep registered on A's dead shard 0 fired early on B's shard 0"
            );
            let r = never.await;
            assert!(
                r.is_err_and(|e| e.is_cancelled()),
                "the pending task of dropped runtime A"
            );
            let got = ringlane::time::timeout(LIMIT, rx.recv())
                .await
                .expect("a receiver moved off dropped runtime A missed a message");
            assert_eq!(got, Some(7));
            let end = ringlane::time::timeout(LIMIT, rx.recv())
                .await
                .expect("a receiver moved off dropped runtime A missed the end of its stream");
            assert_eq!(end, None, "its only sender is gone");
            file.close().await?;
            na.close().await?;
            nb.close().await?;
            Ok::<_, io::Error>(())
        })
        .unwrap();
    common::join_within(&rt_b, used, LIMIT, "using A's objects on B's shard 0")
        .expect("an op on an object of dropped runtime A failed on runtime B");
    feeder.join().unwrap();

    // Nothing is ever written to it (a close with unread bytes would turn
    // the peer's end of file into a reset).
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let read = tokio_rt.block_on(async {
        let mut buf = [0u8; 4];
        tokio::time::timeout(LIMIT, compat.read(&mut buf)).await
    });
    let read = read.expect(
        "a compat read whose poll was armed on a dropped runtime's shard hung on a Tokio thread",
    );
    assert!(
        read.is_err(),
        "a compat read on a stream nobody wrote to, whose runtime is gone, gave {read:?}"
    );
    drop(compat);
    compat_peer.set_read_timeout(Some(LIMIT)).unwrap();
    let n = compat_peer.read(&mut [0u8; 1]);
    assert!(
        matches!(n, Ok(0)),
        "the compat stream of a dropped runtime, dropped, left its socket open: {n:?}"
    );
    drop((rt_b, tokio_rt, compat_peer));
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        common::fd_count(),
        before,
        "objects of a dropped runtime, used and closed on another, leaked fds"
    );
}

// ---------------------------------------------------------------------------
// 7. Per-shard thread-local state dropped when the shard threads exit
// ---------------------------------------------------------------------------

thread_local! {
    /// Per-shard state, as the `call_on` docs suggest keeping it.
    static SHARD_STATE: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// Each shard keeps, in a `thread_local!` (the per-shard state pattern of
/// `Handle::call_on`'s docs), a compat stream whose read poll is armed on
/// its ring, a native file and its registered twin, a fixed-buffer pool
/// and one of its buffers, a sleep registered in its wheel, the handle of
/// a pending task on the other shard, a `Handle`, a receiver with three
/// drop-counted messages queued (and its sender), and a sender whose
/// receiver the test keeps. The runtime is dropped: these are dropped by
/// the shard threads' thread-local destructors, after their loops, with no
/// shard context, after the runtime released its fds.
///
/// Expected: no abort (a panic in a thread-local destructor aborts the
/// process), both destructors have run by the time the drop returns (it
/// joins the threads), each compat stream's peer reads end of file, each
/// queued message is dropped exactly once, the kept receiver sees the end
/// of its stream, every fd comes back.
#[test]
fn per_shard_thread_local_state_holding_ringlane_objects_is_released_when_the_shard_threads_exit() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = Runtime::builder()
        .shards(2)
        .thread_name("adv13-tls")
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let drops = drop_counts(6);
    let dtors = Arc::new(AtomicUsize::new(0));
    let (keep_tx, mut keep_rx) = ringlane::channel::<u8>(1).unwrap();
    let mut peers = Vec::new();
    for s in 0..2usize {
        let (mine, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        peers.push(peer);
        let (q_tx, q_rx) = ringlane::channel::<Counted>(4).unwrap();
        for k in 0..3 {
            if q_tx.try_send(Counted::new(s * 3 + k, &drops)).is_err() {
                panic!("a channel of 4 refused its message {k}");
            }
        }
        let (h2, keep, flag) = (h.clone(), keep_tx.clone(), dtors.clone());
        let built = h
            .spawn_local_on(s, move || async move {
                let mut items: Vec<Box<dyn Any>> = Vec::new();
                let mut compat =
                    ringlane::compat::UnixStream::from_std(mine).expect("a compat stream");
                let waited =
                    ringlane::time::timeout(Duration::from_millis(20), compat.read(&mut [0u8; 1]))
                        .await;
                assert!(waited.is_err(), "nothing was written: the read must wait");
                items.push(Box::new(compat));
                let file = File::open("/dev/null").await.expect("open /dev/null");
                if let Ok(registered) = file.register() {
                    items.push(Box::new(registered));
                }
                items.push(Box::new(file));
                if let Ok(pool) = FixedBufPool::new(2, 4096) {
                    items.push(Box::new(pool.try_get()));
                    items.push(Box::new(pool));
                }
                let mut sleep = Box::pin(ringlane::time::sleep(Duration::from_secs(3600)));
                assert!(
                    poll_once(&mut sleep).await,
                    "an hour-long sleep was due at once"
                );
                items.push(Box::new(sleep));
                items.push(Box::new(
                    h2.spawn_pinned(1 - s, std::future::pending::<()>())
                        .unwrap(),
                ));
                items.push(Box::new(h2));
                items.push(Box::new(q_rx));
                items.push(Box::new(q_tx));
                items.push(Box::new(keep));
                items.push(Box::new(CountOnDrop(flag)));
                SHARD_STATE.with(|st| st.borrow_mut().extend(items));
            })
            .unwrap();
        common::join_within(&rt, built, LIMIT, "building a shard's thread-local state");
    }
    drop(keep_tx);
    within(
        Duration::from_secs(20),
        "dropping a runtime whose shard threads keep ringlane objects in thread-locals",
        move || drop(rt),
    );
    assert_eq!(
        dtors.load(SeqCst),
        2,
        "the shard threads' thread-local state was not (entirely) dropped by the time the \
         runtime's drop returned"
    );
    for (s, peer) in peers.iter_mut().enumerate() {
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let n = peer.read(&mut [0u8; 1]);
        assert!(
            matches!(n, Ok(0)),
            "shard {s}'s compat stream, dropped from a thread-local at thread exit, left its \
             socket open: {n:?}"
        );
    }
    for id in 0..6 {
        let n = drops[id].load(SeqCst);
        assert_eq!(
            n, 1,
            "queued message {id} of a receiver kept in a shard's thread-local was dropped {n} times"
        );
    }
    assert_eq!(
        keep_rx.try_recv(),
        Err(TryRecvError::Disconnected),
        "senders kept in the shards' thread-locals were not dropped"
    );
    let left = threads_left_after_a_while("adv13-tls");
    assert!(
        left.is_empty(),
        "shard threads outlived their runtime: {left:?}"
    );
    drop(peers);
    assert_eq!(
        common::fd_count(),
        before,
        "ringlane objects dropped from shard thread-locals leaked fds"
    );
}

// ---------------------------------------------------------------------------
// 8. Dropped inside the current-thread Tokio runtime its shards entered
// ---------------------------------------------------------------------------

/// A ringlane runtime is built with `.tokio_handle()` of a current-thread
/// Tokio runtime; its shard tasks hold what that Tokio runtime drives: a
/// Tokio timer, a Tokio channel's receiver, a Tokio listener (registered
/// with its I/O driver) in `accept`, and the join handle of a task spawned
/// onto it. The ringlane runtime is then dropped inside a task of that
/// Tokio runtime, on its only thread, which stays blocked in the drop.
///
/// Expected: the drop returns promptly (cancelling needs nothing from the
/// blocked Tokio thread: dropping a Tokio timer, listener or receiver only
/// takes driver locks nobody holds); the Tokio runtime then still works
/// (its timer fires); the listener is closed (a connect is refused) and the
/// channel's receiver is gone (a send fails); every ringlane task resolves
/// `Cancelled`; no shard thread is left.
#[test]
fn a_runtime_dropped_inside_its_own_current_thread_tokio_runtime_releases_what_its_tasks_held_there()
 {
    let _serial = SERIAL.lock();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = Runtime::builder()
        .shards(2)
        .thread_name("adv13-tok")
        .tokio_handle(tokio_rt.handle().clone())
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let (addr_tx, addr_rx) = mpsc::channel::<std::net::SocketAddr>();
    let (tok_tx, tok_rx) = tokio::sync::mpsc::channel::<u8>(1);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let s = started_tx.clone();
    let timer = h
        .spawn_pinned(0, async move {
            let sleep = tokio::time::sleep(Duration::from_secs(3600));
            s.send(()).unwrap();
            sleep.await;
        })
        .unwrap();
    let s = started_tx.clone();
    let chan = h
        .spawn_pinned(0, async move {
            let mut rx = tok_rx;
            s.send(()).unwrap();
            rx.recv().await
        })
        .unwrap();
    let s = started_tx.clone();
    let listener = h
        .spawn_pinned(1, async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addr_tx.send(l.local_addr()?).unwrap();
            s.send(()).unwrap();
            l.accept().await?;
            Ok::<(), io::Error>(())
        })
        .unwrap();
    let s = started_tx;
    let spawned = h
        .spawn_pinned(1, async move {
            let j = tokio::spawn(std::future::pending::<()>());
            s.send(()).unwrap();
            j.await.is_ok()
        })
        .unwrap();
    for _ in 0..4 {
        started_rx
            .recv_timeout(LIMIT)
            .expect("a shard task using Tokio never ran");
    }
    let addr = addr_rx.recv_timeout(LIMIT).unwrap();
    common::until_parked(&h, 0);
    common::until_parked(&h, 1);
    let (took, refused, closed) = within(
        Duration::from_secs(20),
        "dropping the ringlane runtime inside the Tokio runtime its shards entered",
        move || {
            tokio_rt.block_on(async move {
                let took = tokio::spawn(async move {
                    let t = Instant::now();
                    drop(rt);
                    t.elapsed()
                })
                .await
                .expect("the Tokio task dropping the ringlane runtime panicked");
                tokio::time::timeout(LIMIT, tokio::time::sleep(Duration::from_millis(1)))
                    .await
                    .expect("the Tokio runtime's timer stopped firing after the ringlane drop");
                let refused = tokio::time::timeout(LIMIT, tokio::net::TcpStream::connect(addr))
                    .await
                    .expect("a connect to the cancelled task's listener hung")
                    .is_err();
                let closed = tok_tx.send(1).await.is_err();
                (took, refused, closed)
            })
        },
    );
    assert!(
        took < Duration::from_millis(4500),
        "the drop inside the Tokio runtime took {took:?}"
    );
    assert!(
        refused,
        "a Tokio listener held by a cancelled shard task still accepts connections"
    );
    assert!(
        closed,
        "a Tokio receiver held by a cancelled shard task is still alive"
    );
    let waiter = common::runtime(1);
    let cancelled = |r: Result<(), ringlane::JoinError>| r.is_err_and(|e| e.is_cancelled());
    let out = |what: &str| format!("the shard task holding {what} was not cancelled");
    let r = waiter
        .block_on(ringlane::time::timeout(LIMIT, timer))
        .expect("hung");
    assert!(cancelled(r), "{}", out("a Tokio timer"));
    let r = waiter
        .block_on(ringlane::time::timeout(LIMIT, chan))
        .expect("hung");
    assert!(
        r.is_err_and(|e| e.is_cancelled()),
        "{}",
        out("a Tokio receiver")
    );
    let r = waiter
        .block_on(ringlane::time::timeout(LIMIT, listener))
        .expect("hung");
    assert!(
        r.is_err_and(|e| e.is_cancelled()),
        "{}",
        out("a Tokio listener")
    );
    let r = waiter
        .block_on(ringlane::time::timeout(LIMIT, spawned))
        .expect("hung");
    assert!(
        r.is_err_and(|e| e.is_cancelled()),
        "{}",
        out("a Tokio join handle")
    );
    let left = threads_left_after_a_while("adv13-tok");
    assert!(
        left.is_empty(),
        "shard threads outlived their runtime: {left:?}"
    );
}

// ---------------------------------------------------------------------------
// 9. Sockets made under an entered runtime that is gone
// ---------------------------------------------------------------------------

/// A runtime is dropped with its handle kept; the handle is then entered
/// (`Handle::enter`, as a `#[tokio::main]` port keeps a guard), and under
/// the guard a compat listener is bound and a compat Unix stream made: both
/// take a shard of that dead runtime as their home. A client connects.
/// From a Tokio thread: the listener accepts (the syscall comes first), the
/// accepted stream reads with nothing to read, the listener accepts again
/// with no client, the Unix stream reads with nothing to read.
///
/// Expected ("a runtime already shut down gets a clear error, never a
/// hang"): under the guard, `Handle::current()` finds the entered runtime
/// and `spawn` is refused with `Shutdown`; the first accept succeeds; each
/// wait then fails at once with an error (its home runtime is gone), none
/// hangs; no fd leaks.
#[test]
fn sockets_made_under_an_entered_runtime_that_is_gone_fail_their_waits_clearly_and_close() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let h = rt.handle();
    within(Duration::from_secs(20), "dropping the runtime", move || {
        drop(rt)
    });
    let listener;
    let stream;
    let stream_peer;
    {
        let _guard = h.enter();
        assert!(
            Handle::current().is_some(),
            "the entered runtime is the current one, shut down or not"
        );
        assert!(
            matches!(ringlane::spawn(async {}), Err(Error::Shutdown)),
            "a spawn under the guard of a dropped runtime must be refused with Shutdown"
        );
        listener = ringlane::compat::TcpListener::from_std(
            std::net::TcpListener::bind("127.0.0.1:0").expect("binding a listener"),
        )
        .expect("binding a compat listener");
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        stream = ringlane::compat::UnixStream::from_std(a).expect("a compat stream");
        stream_peer = b;
    }
    let addr = listener.local_addr().unwrap();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (read, again, unix_read) = tokio_rt.block_on(async move {
        let accepted = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .expect("an accept with a client waiting hung");
        let (mut conn, _) = accepted
            .expect("the syscall comes first: a waiting client is accepted without a shard");
        let read = tokio::time::timeout(LIMIT, conn.read(&mut [0u8; 1]))
            .await
            .expect("a read with nothing to read, on a socket whose runtime is gone, hung");
        let again = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .expect("an accept with no client, on a listener whose runtime is gone, hung")
            .map(drop);
        let mut stream = stream;
        let unix_read = tokio::time::timeout(LIMIT, stream.read(&mut [0u8; 1]))
            .await
            .expect("a read on a stream whose runtime is gone hung");
        (read, again, unix_read)
    });
    assert!(
        read.is_err(),
        "an accepted stream whose runtime is gone read {read:?} with nothing sent"
    );
    assert!(
        again.is_err(),
        "an accept with no client, on a listener whose runtime is gone: {again:?}"
    );
    assert!(
        unix_read.is_err(),
        "a stream whose runtime is gone read {unix_read:?} with nothing sent"
    );
    drop((tokio_rt, client, stream_peer));
    assert_eq!(
        common::fd_count(),
        before,
        "sockets made under an entered dead runtime leaked fds"
    );
}
