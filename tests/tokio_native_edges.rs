//! Ringlane driven from Tokio: tasks aborted from Tokio with pipe I/O in
//! flight (rings with and without `DEFER_TASKRUN`), a burst of forwarded
//! waits on a tiny ring, a receiver moved into `tokio::select!`, spawners
//! racing a runtime drop, and aborts in the middle of a poll.
//!
//! Every test holds one file-wide lock (fd counts are process-wide, and the
//! abort tests need their shard not starved of CPU).

mod common;

use std::future::Future;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use ringlane::compat::UnixStream as CompatUnix;
use ringlane::native::fs::File;
use ringlane::{Error, Placement};

use common::LIMIT;
use common::chans::{spinning, tokio_mt};
use common::compat_io::after_first_poll;
use common::lifecycle::{DropRecorder, ReleaseOnDrop, shard_thread};
use common::native_io::poll_once;

static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an open fd of ours, with flags it returned.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0, "F_GETFL: {}", io::Error::last_os_error());
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
    }
}

/// Fills the pipe whose write end is `fd` (left in blocking mode) without
/// ever blocking: one `PIPE_BUF` write per free slot that `poll` reports.
fn fill_pipe(fd: RawFd) -> usize {
    let chunk = [0u8; 4096];
    let mut total = 0;
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r <= 0 || p.revents & libc::POLLOUT == 0 {
            return total;
        }
        // SAFETY: `chunk` is valid for reads of its length.
        let n = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
        assert!(n > 0, "filling the pipe: {}", io::Error::last_os_error());
        total += n as usize;
    }
}

/// Everything readable now from a nonblocking reader.
fn drain(f: &mut std::fs::File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("draining the pipe: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Op futures started on a shard, awaited in Tokio
// ---------------------------------------------------------------------------

/// How long the second task of the shard's tick holds the shard.
const SPIN: Duration = Duration::from_millis(200);

/// Shard 0 runs `victim`, whose op is in flight and which must already have
/// been polled, and a spinner that waits for a go. A blocker holds shard 0
/// while, from a Tokio worker, `victim` is aborted and the spinner gets its
/// go. Both wake-ups then land in one intake, so the victim's drop and the
/// spinner's `SPIN`-long poll fall in one tick. The Tokio task awaits the
/// victim's handle and runs `after` as soon as it resolves. Returns whether
/// the handle said cancelled, and what `after` returned.
fn abort_beside_a_spinner<T, R>(
    rt: &ringlane::Runtime,
    tokio_rt: &tokio::runtime::Runtime,
    victim: ringlane::JoinHandle<T>,
    after: impl FnOnce() -> R + Send + 'static,
) -> (bool, R)
where
    T: Send + 'static,
    R: Send + 'static,
{
    let h = rt.handle();
    let (go_tx, mut go_rx) = ringlane::channel::<()>(1).unwrap();
    let spin = h
        .spawn_pinned(0, async move {
            if go_rx.recv().await.is_some() {
                let t = Instant::now();
                while t.elapsed() < SPIN {
                    std::hint::spin_loop();
                }
            }
        })
        .unwrap();
    common::until_parked(&h, 0);
    let blocker = common::block_shard(rt, 0);
    let release = blocker.release_flag();
    let task = tokio_rt.spawn(async move {
        victim.abort();
        go_tx.try_send(()).expect("the spinner waits for its go");
        release.store(true, Ordering::Release);
        let out = tokio::time::timeout(LIMIT, victim).await;
        let seen = after();
        (out.map(|r| r.is_err_and(|e| e.is_cancelled())), seen)
    });
    let (cancelled, seen) = tokio_rt.block_on(task).expect("the Tokio task panicked");
    let cancelled = cancelled.expect("the aborted task's JoinHandle never resolved in Tokio");
    common::join_within(rt, blocker.release(), LIMIT, "the blocker");
    common::join_within(rt, spin, LIMIT, "the spinner");
    (cancelled, seen)
}

/// Expected: once an aborted task's JoinHandle has resolved as cancelled,
/// its read takes none of the bytes written afterwards: the next read gets
/// them. Its write, waiting for room, puts nothing more into the pipe after
/// that. Checked on both ring set-ups the builder offers.
#[test]
fn pipe_io_of_an_aborted_task_takes_and_gives_no_bytes_once_its_join_handle_resolved_in_either_ring_mode()
 {
    let _serial = SERIAL.lock();
    let tokio_rt = tokio_mt(1);
    let mut findings = Vec::new();
    for defer in [true, false] {
        let rt = ringlane::Runtime::builder()
            .shards(1)
            .defer_taskrun(defer)
            .build()
            .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
        let h = rt.handle();
        let mode = if defer {
            "DEFER_TASKRUN ring"
        } else {
            "defer_taskrun(false) ring"
        };
        if h.ring_features().defer_taskrun != defer {
            println!("SKIP ({mode}): the kernel gave {:?}", h.ring_features());
            continue;
        }

        // (a) A read of an empty pipe, in flight.
        let (r, w) = common::pipe();
        let reader = File::from(r);
        let writer = std::fs::File::from(w);
        let r2 = reader.clone();
        let (polled_tx, polled) = mpsc::channel();
        let victim = h
            .spawn_pinned(0, async move {
                let mut read = std::pin::pin!(r2.read(vec![0u8; 64]));
                std::future::poll_fn(|cx| {
                    let p = read.as_mut().poll(cx);
                    let _ = polled_tx.send(());
                    p
                })
                .await
                .0
                .map(drop)
            })
            .unwrap();
        polled.recv_timeout(LIMIT).expect("the reader never ran");
        let (cancelled, (wrote, writer)) =
            abort_beside_a_spinner(&rt, &tokio_rt, victim, move || {
                let mut writer = writer;
                let wrote = writer.write_all(b"after").map_err(|e| e.kind());
                (wrote, writer)
            });
        assert!(
            cancelled,
            "{mode}: the aborted reader did not resolve as cancelled"
        );
        wrote.expect("writing the pipe");
        let next = h
            .spawn_pinned(0, async move {
                let read = reader.read(vec![0u8; 64]);
                let (n, buf) = ringlane::native::timeout(Duration::from_secs(1), read).await;
                n.map(|n| buf[..n].to_vec()).map_err(|e| e.kind())
            })
            .unwrap();
        let got = common::join_within(&rt, next, LIMIT, "the next read");
        if got != Ok(b"after".to_vec()) {
            findings.push(format!(
                "{mode}: bytes written after the aborted reader's JoinHandle resolved as cancelled \
                 did not reach the next read ({got:?}): the cancelled read took them"
            ));
        }
        drop(writer);

        // (b) A write waiting for room in a full pipe, in flight.
        let (r, w) = common::pipe();
        set_nonblocking(r.as_raw_fd());
        let filled = fill_pipe(w.as_raw_fd());
        assert!(filled > 0);
        let mut rstd = std::fs::File::from(r);
        let writer = File::from(w);
        let (polled_tx, polled) = mpsc::channel();
        let victim = h
            .spawn_pinned(0, async move {
                let mut write = std::pin::pin!(writer.write(vec![7u8; 4096]));
                std::future::poll_fn(|cx| {
                    let p = write.as_mut().poll(cx);
                    let _ = polled_tx.send(());
                    p
                })
                .await
                .0
                .map(drop)
            })
            .unwrap();
        polled.recv_timeout(LIMIT).expect("the writer never ran");
        let (cancelled, (first, mut rstd)) =
            abort_beside_a_spinner(&rt, &tokio_rt, victim, move || {
                let first = drain(&mut rstd);
                (first, rstd)
            });
        assert!(
            cancelled,
            "{mode}: the aborted writer did not resolve as cancelled"
        );
        common::until_parked(&h, 0); // the shard has entered the kernel since
        std::thread::sleep(Duration::from_millis(20));
        let second = drain(&mut rstd);
        let late = first.iter().chain(&second).filter(|&&b| b == 7).count();
        if late > 0 {
            findings.push(format!(
                "{mode}: {late} bytes of the aborted task's write reached the pipe after its \
                 JoinHandle had resolved as cancelled and a reader made room"
            ));
        }
        drop(rt);
    }
    assert!(findings.is_empty(), "{findings:#?}");
}

// ---------------------------------------------------------------------------
// 4. A Tokio runtime dropped while ringlane holds its tasks' wakers
// ---------------------------------------------------------------------------

fn tag(round: u8, k: usize) -> [u8; 8] {
    [
        0xC0 | round,
        (k >> 8) as u8,
        k as u8,
        0x5A,
        !(k as u8),
        round,
        0xA5,
        0x3C,
    ]
}

/// Expected: 600 Tokio tasks reading 600 idle compat streams (home: shard
/// 0, a 16-entry SQ, a 64-entry CQ) all get their own 8 bytes when every
/// peer writes at once, twice over the same streams. No reader hangs and
/// none gets another's bytes.
#[test]
fn a_burst_of_forwarded_waits_on_a_tiny_ring_wakes_every_tokio_reader_with_its_own_bytes() {
    let _serial = SERIAL.lock();
    const N: usize = 600;
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .ring_entries(16)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"));
    let h = rt.handle();
    let made = h
        .spawn_pinned(0, async {
            let mut v = Vec::with_capacity(N);
            for _ in 0..N {
                let (a, b) = std::os::unix::net::UnixStream::pair()?;
                v.push((CompatUnix::from_std(a)?, b));
            }
            Ok::<_, io::Error>(v)
        })
        .unwrap();
    let pairs = common::join_within(&rt, made, LIMIT, "making the streams").unwrap();
    let (mut ours, mut peers): (Vec<CompatUnix>, Vec<std::os::unix::net::UnixStream>) =
        pairs.into_iter().unzip();
    let tokio_rt = tokio_mt(2);
    for round in 0..2u8 {
        let (polled_tx, polled) = mpsc::channel();
        let readers: Vec<_> = ours
            .drain(..)
            .enumerate()
            .map(|(k, s)| {
                tokio_rt.spawn(after_first_poll(
                    async move {
                        let mut s = s;
                        let mut got = [0u8; 8];
                        let r = s.read_exact(&mut got).await.map(|_| got);
                        (k, r, s)
                    },
                    polled_tx.clone(),
                ))
            })
            .collect();
        drop(polled_tx);
        for _ in 0..N {
            polled
                .recv_timeout(LIMIT)
                .expect("a Tokio reader never ran");
        }
        common::until_parked(&h, 0); // every forwarded wait is armed
        for i in 0..N {
            let k = (i * 389 + 17) % N; // a permutation: 389 is prime to 600
            peers[k].write_all(&tag(round, k)).unwrap();
        }
        let results = tokio_rt
            .block_on(async move {
                tokio::time::timeout(LIMIT, async move {
                    let mut out = Vec::new();
                    for r in readers {
                        out.push(r.await.expect("a Tokio reader panicked"));
                    }
                    out
                })
                .await
            })
            .unwrap_or_else(|_| {
                panic!(
                    "round {round}: a Tokio reader never woke after its peer wrote (a forwarded \
                     wait's completion was lost in the CQ overflow)"
                )
            });
        for (k, r, s) in results {
            let got = r.unwrap_or_else(|e| panic!("round {round}: reader {k} failed: {e}"));
            assert_eq!(
                got,
                tag(round, k),
                "round {round}: reader {k} got another's bytes"
            );
            ours.push(s);
        }
    }
    drop(tokio_rt);
    drop((ours, peers));
}

// ---------------------------------------------------------------------------
// 6. A ringlane receiver in a Tokio select!
// ---------------------------------------------------------------------------

/// Expected: a receiver whose first wait was watched by a spinning shard
/// (it timed out, leaving the channel marked) and that then serves a Tokio
/// `select!` against a Tokio mpsc loses nothing. Both streams arrive
/// complete and in order, although the ringlane branch is often polled,
/// registered and dropped because the Tokio branch won. Its producer runs
/// on the receiver's home shard.
#[test]
fn a_receiver_moved_from_a_spinning_shard_into_a_tokio_select_loses_nothing_when_its_branch_loses()
{
    let _serial = SERIAL.lock();
    const N: u32 = 20_000;
    let rt = spinning(1, Duration::from_micros(200));
    let h = rt.handle();
    let (tx, rx) = ringlane::channel::<u32>(4).unwrap();
    let first = h
        .spawn_pinned(0, async move {
            let mut rx = rx;
            let waited = ringlane::time::timeout(Duration::from_millis(2), rx.recv()).await;
            (waited.is_err(), rx)
        })
        .unwrap();
    let (timed_out, rx) = common::join_within(&rt, first, LIMIT, "the watched first wait");
    assert!(timed_out, "nothing was sent yet");
    let producer = h
        .spawn_pinned(0, async move {
            for i in 0..N {
                tx.send(i).await.map_err(|_| i)?;
                if i % 97 == 0 {
                    ringlane::yield_now().await;
                }
            }
            Ok::<(), u32>(())
        })
        .unwrap();
    let tokio_rt = tokio_mt(2);
    let (ttx, trx) = tokio::sync::mpsc::channel::<u32>(4);
    let consumed = tokio_rt.block_on(async move {
        let tokio_producer = tokio::spawn(async move {
            for i in 0..N {
                ttx.send(i).await.unwrap();
                if i % 89 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        let consumer = tokio::spawn(async move {
            let (mut rx, mut trx) = (rx, trx);
            let (mut rl, mut tk) = (Vec::new(), Vec::new());
            let (mut rl_done, mut tk_done) = (false, false);
            while !(rl_done && tk_done) {
                tokio::select! {
                    m = rx.recv(), if !rl_done => match m {
                        Some(v) => rl.push(v),
                        None => rl_done = true,
                    },
                    m = trx.recv(), if !tk_done => match m {
                        Some(v) => tk.push(v),
                        None => tk_done = true,
                    },
                }
            }
            (rl, tk)
        });
        tokio::time::timeout(LIMIT, async move {
            tokio_producer.await.unwrap();
            consumer.await.unwrap()
        })
        .await
    });
    let (rl, tk) = consumed.expect(
        "the select! loop stalled: a message (or the end of a stream) never woke the Tokio task",
    );
    let produced = common::join_within(&rt, producer, LIMIT, "the ringlane producer");
    assert_eq!(
        produced,
        Ok(()),
        "the ringlane producer found the receiver gone"
    );
    let want: Vec<u32> = (0..N).collect();
    assert!(
        tk == want,
        "the Tokio stream arrived lost, duplicated or reordered"
    );
    assert!(
        rl == want,
        "the ringlane stream arrived lost, duplicated or reordered ({} of {N} messages; first \
         divergence at {:?})",
        rl.len(),
        rl.iter().zip(&want).position(|(a, b)| a != b)
    );
}

// ---------------------------------------------------------------------------
// 7. Spawns of every kind from Tokio racing the runtime's drop
// ---------------------------------------------------------------------------

fn spawn_kind(
    h: &ringlane::Handle,
    kind: usize,
    i: usize,
) -> Result<ringlane::JoinHandle<usize>, Error> {
    let body = move || async move {
        ringlane::yield_now().await;
        i
    };
    match kind % 7 {
        0 => h.spawn_pinned(i % 2, body()),
        1 => h.spawn_stealable(body()),
        2 => h.spawn_with(Placement::StealablePreferred(i % 2), body()),
        3 => h.spawn_with(Placement::RoundRobin, body()),
        4 => h.spawn_with(Placement::sticky(&i), body()),
        5 => h.spawn_local_on(i % 2, body),
        _ => h.call_on(i % 2, move |_| i),
    }
}

/// Expected: while Tokio workers spawn every kind of task (each placement,
/// `spawn_local_on`, `call_on`) and the runtime is dropped from
/// `spawn_blocking`, each spawn is either refused with `Error::Shutdown` or
/// gives a handle that resolves (its output, or cancelled) when awaited in
/// Tokio. No other error, no hang, and no spawn accepted after one was
/// refused (the shutdown flag is checked first and never cleared).
#[test]
fn tokio_spawners_of_every_kind_racing_a_runtime_drop_get_refusals_or_handles_that_resolve() {
    let _serial = SERIAL.lock();
    let tokio_rt = tokio_mt(2);
    for round in 0..3 {
        let rt = common::runtime(2);
        let h = rt.handle();
        let after_h = h.clone();
        let outcome = tokio_rt.block_on(async move {
            let spawners: Vec<_> = (0..4usize)
                .map(|t| {
                    let h = h.clone();
                    tokio::spawn(async move {
                        let mut joins = Vec::new();
                        let mut refused_at: Option<usize> = None;
                        let mut problems = Vec::new();
                        for i in 0..400_000usize {
                            match spawn_kind(&h, i + t, i) {
                                Ok(j) => {
                                    if let Some(at) = refused_at {
                                        problems.push(format!(
                                            "spawn {i} (kind {}) was accepted after spawn {at} was refused",
                                            (i + t) % 7
                                        ));
                                    }
                                    joins.push((i, j));
                                }
                                Err(Error::Shutdown) => {
                                    let at = *refused_at.get_or_insert(i);
                                    if i >= at + 64 {
                                        break;
                                    }
                                }
                                Err(e) => problems.push(format!("spawn {i}: unexpected error {e}")),
                            }
                            if i % 128 == 0 {
                                tokio::task::yield_now().await;
                            }
                        }
                        for (i, j) in joins {
                            match tokio::time::timeout(LIMIT, j).await {
                                Err(_) => {
                                    problems.push(format!(
                                        "spawn {i} (kind {}): its JoinHandle never resolved after the runtime was dropped",
                                        (i + t) % 7
                                    ));
                                    break;
                                }
                                Ok(Ok(v)) if v == i => {}
                                Ok(Ok(v)) => problems.push(format!("spawn {i}: output {v}")),
                                Ok(Err(e)) if e.is_cancelled() => {}
                                Ok(Err(e)) => problems.push(format!("spawn {i}: {e}")),
                            }
                        }
                        (refused_at.is_some(), problems)
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(2)).await;
            tokio::task::spawn_blocking(move || drop(rt))
                .await
                .expect("dropping the runtime panicked");
            let mut all = Vec::new();
            for s in spawners {
                all.push(
                    tokio::time::timeout(LIMIT * 2, s)
                        .await
                        .map(|r| r.expect("a spawner panicked")),
                );
            }
            all
        });
        for (t, o) in outcome.into_iter().enumerate() {
            let (_refused, problems) = o.unwrap_or_else(|_| {
                panic!("round {round}: spawner {t} hung awaiting its join handles")
            });
            assert!(
                problems.is_empty(),
                "round {round}, spawner {t}: {problems:#?}"
            );
        }
        assert!(
            matches!(after_h.spawn_pinned(0, async {}), Err(Error::Shutdown)),
            "round {round}: a spawn after the drop was not refused with Error::Shutdown"
        );
    }
}

// ---------------------------------------------------------------------------
// 8. Abort from Tokio in the middle of a poll
// ---------------------------------------------------------------------------

/// Expected, as with Tokio: (1) a local task aborted from a Tokio worker
/// while its poll runs is not finished during that poll. When the poll then
/// returns Pending with no waker registered anywhere, the abort's wake-up
/// still brings it back, and it is dropped on its shard (its `Rc`'d value
/// too, there). Its in-flight read is cancelled, its JoinHandle resolves as
/// cancelled, and `is_finished` becomes true. (2) A task aborted in the
/// middle of a poll that returns Ready keeps its output.
#[test]
fn join_handles_aborted_from_tokio_mid_poll_end_at_the_next_yield_on_their_shard_like_tokios() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let h = rt.handle();
    let shard0 = shard_thread(&rt, 0);
    let tokio_rt = tokio_mt(2);

    // (1)
    let release = Arc::new(AtomicBool::new(false));
    let _let_go = ReleaseOnDrop(release.clone());
    let log: Arc<parking_lot::Mutex<Vec<(&'static str, std::thread::ThreadId)>>> = Arc::default();
    let (r, w) = common::pipe();
    let reader = File::from(r);
    let (started_tx, started) = mpsc::channel();
    let (rel, lg, r2) = (release.clone(), log.clone(), reader.clone());
    let victim = h
        .spawn_local_on(0, move || async move {
            let _held = std::rc::Rc::new(DropRecorder {
                label: "held",
                log: lg,
            });
            let mut read = Box::pin(r2.read(vec![0u8; 64]));
            assert!(
                poll_once(&mut read).await,
                "a read of an empty pipe completed"
            );
            started_tx.send(()).unwrap();
            while !rel.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            std::future::pending::<u32>().await
        })
        .unwrap();
    started
        .recv_timeout(LIMIT)
        .expect("the local task never started");
    let rel = release.clone();
    let (mid_poll, res, after) = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            let mut victim = victim;
            victim.abort();
            let mid = victim.is_finished();
            rel.store(true, Ordering::Release);
            let res = tokio::time::timeout(LIMIT, &mut victim).await;
            let res = res.map(|r| r.map_err(|e| e.is_cancelled()));
            (mid, res, victim.is_finished())
        })
        .await
        .unwrap()
    });
    assert!(
        !mid_poll,
        "a task read as finished while its poll was still running"
    );
    match res {
        Ok(Err(true)) => {}
        Ok(other) => panic!("a task aborted mid-poll resolved as {other:?}, not cancelled"),
        Err(_) => panic!(
            "a task aborted from Tokio in the middle of a poll that then returned Pending never \
             ended: the abort's wake-up was lost while it ran"
        ),
    }
    assert!(after, "resolved, but not finished");
    assert_eq!(
        log.lock().clone(),
        vec![("held", shard0)],
        "the aborted local task's state was not dropped once, on its shard"
    );
    common::cancelled_read_leaves_the_next_bytes(&rt, reader, File::from(w));

    // (2)
    let release2 = Arc::new(AtomicBool::new(false));
    let _let_go2 = ReleaseOnDrop(release2.clone());
    let (started_tx, started) = mpsc::channel();
    let rel = release2.clone();
    let finishing = h
        .spawn_pinned(0, async move {
            started_tx.send(()).unwrap();
            while !rel.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            7u32
        })
        .unwrap();
    started.recv_timeout(LIMIT).expect("the task never started");
    let rel = release2.clone();
    let res = tokio_rt.block_on(async move {
        tokio::spawn(async move {
            let mut finishing = finishing;
            finishing.abort();
            rel.store(true, Ordering::Release);
            tokio::time::timeout(LIMIT, &mut finishing)
                .await
                .map(|r| r.map_err(|e| e.to_string()))
        })
        .await
        .unwrap()
    });
    match res {
        Ok(Ok(7)) => {}
        Ok(other) => panic!(
            "a task aborted mid-poll whose poll returned Ready gave {other:?}: Tokio keeps the output"
        ),
        Err(_) => panic!("a task aborted mid-poll that completed never resolved"),
    }
}
