//! `call_on` from every kind of caller, and the raw lane's exact counts
//! across laps at capacities that are not powers of two.

mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use ringlane::time::timeout;
use ringlane::{Error, TryRecvError, TrySendError};

use common::LIMIT;
use common::chans::*;

thread_local! {
    /// Closures run on this thread by `call_on`.
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// `call_on` from Tokio tasks, from tasks on both shards (to their own
/// shard and to the other) and from a plain thread with no runtime: each
/// closure must run exactly once, on the shard asked for (`ShardCtx::index`
/// and `current_shard` agree, and the per-shard `thread_local!` counts add
/// up), a nested `call_on` through `ShardCtx::handle` works, a panicking
/// closure becomes `JoinError::is_panic` with the shard still serving, and
/// after shutdown `call_on` is refused with `Error::Shutdown` ("As
/// spawn_pinned"), not a panic.
#[test]
fn call_on_runs_every_closure_once_on_its_shard_from_anywhere_and_refuses_after_shutdown() {
    const N: u64 = 200;
    async fn calls(h: ringlane::Handle, n: u64) -> u64 {
        let mut wrong = 0;
        for i in 0..n {
            let target = (i % 2) as usize;
            let (index, on) = h
                .call_on(target, |ctx| {
                    CALLS.with(|c| c.set(c.get() + 1));
                    (ctx.index(), ringlane::current_shard())
                })
                .expect("call_on")
                .await
                .expect("the call");
            if index != target || on != Some(target) {
                wrong += 1;
            }
        }
        wrong
    }
    let rt = common::runtime(2);
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let from_tokio = tokio_rt.spawn(calls(h.clone(), N));
    let from_shards: Vec<_> = (0..2)
        .map(|s| h.spawn_pinned(s, calls(h.clone(), N)).unwrap())
        .collect();
    let from_thread = {
        let h = h.clone();
        std::thread::spawn(move || park_block_on(calls(h, N), LIMIT))
    };
    let wrong = tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, from_tokio).await })
        .expect("call_on from Tokio stalled")
        .unwrap();
    assert_eq!(wrong, 0, "a closure ran on the wrong shard (from Tokio)");
    for j in from_shards {
        assert_eq!(
            common::join_within(&rt, j, LIMIT, "call_on from a shard task"),
            0,
            "a closure ran on the wrong shard (from a shard)"
        );
    }
    assert_eq!(
        from_thread.join().unwrap(),
        Some(0),
        "call_on from a plain thread stalled or ran on the wrong shard"
    );
    let boom = h
        .call_on(1, |_| -> u64 { panic!("a call_on closure panics") })
        .unwrap();
    let err = rt
        .block_on(timeout(LIMIT, boom))
        .expect("the panicking call never resolved")
        .unwrap_err();
    assert!(err.is_panic());
    let nested = common::join_within(
        &rt,
        h.call_on(0, |ctx| {
            ctx.handle()
                .call_on(1, |c| (c.index(), ringlane::current_shard()))
                .expect("a nested call_on")
        })
        .unwrap(),
        LIMIT,
        "the outer call",
    );
    assert_eq!(
        common::join_within(&rt, nested, LIMIT, "the nested call"),
        (1, Some(1))
    );
    let count = |s: usize| -> u64 {
        common::join_within(
            &rt,
            h.call_on(s, |_| CALLS.with(Cell::get)).unwrap(),
            LIMIT,
            "the count",
        )
    };
    // Four callers, N calls each, alternating shards; the panicking call
    // counted nothing.
    assert_eq!(
        (count(0), count(1)),
        (2 * N, 2 * N),
        "a closure ran twice, never, or on the wrong shard"
    );
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    assert!(matches!(h.call_on(0, |_| ()), Err(Error::Shutdown)));
}

/// The raw `u64` lane at capacities that are not powers of two (and 1, 2):
/// a slot ring's positions skip from the last index to the next lap, and
/// `len` derives the count from head and tail indices, so these are where
/// an off-by-one hides. Single-threaded: over many laps `try_send` refuses
/// with `Full` exactly at `capacity` (handing the value back), `len` is
/// exact on both halves, FIFO holds, and after `close` the queued value
/// is still received, then `Disconnected`, while `try_send` gets `Closed`.
/// Then three producers (shard task, Tokio `send_many` in fives, plain
/// thread) feed a watched `recv_many(.., 2)` receiver through a channel of
/// 3: FIFO per producer, nothing lost, and `len` never above the capacity.
#[test]
fn the_raw_lane_is_exact_across_laps_at_odd_capacities() {
    for cap in [1usize, 2, 3, 5, 6, 7, 9, 13] {
        let (tx, mut rx) = ringlane::raw_channel(cap).unwrap();
        assert_eq!((tx.capacity(), tx.max_capacity()), (cap, cap));
        let (mut next_in, mut next_out) = (0u64, 0u64);
        for round in 0..(cap * 40 + 17) {
            loop {
                match tx.try_send(next_in) {
                    Ok(()) => next_in += 1,
                    Err(TrySendError::Full(v)) => {
                        assert_eq!(v, next_in, "cap {cap}: Full handed back another value");
                        break;
                    }
                    Err(TrySendError::Closed(_)) => panic!("cap {cap}: closed"),
                }
            }
            assert_eq!(tx.len(), cap, "cap {cap} round {round}: len when full");
            assert_eq!(rx.len(), cap, "cap {cap} round {round}: len when full");
            let take = 1 + round % cap;
            for _ in 0..take {
                assert_eq!(rx.try_recv(), Ok(next_out), "cap {cap} round {round}: FIFO");
                next_out += 1;
            }
            assert_eq!(
                rx.len(),
                cap - take,
                "cap {cap} round {round}: len after taking"
            );
            // Tokio's meaning: the room left, on both halves.
            assert_eq!((tx.capacity(), rx.capacity()), (take, take));
        }
        while let Ok(v) = rx.try_recv() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in, "cap {cap}: messages lost");
        assert!(rx.is_empty() && tx.is_empty());
        tx.try_send(u64::MAX).unwrap();
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(0), Err(TrySendError::Closed(0)));
        assert_eq!(rx.len(), 1, "cap {cap}: len of a closed ring");
        assert_eq!(rx.try_recv(), Ok(u64::MAX));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.len(), 0);
    }

    const PER: u64 = 20_000;
    let rt = spinning(2, Duration::from_micros(20));
    let h = rt.handle();
    let tokio_rt = tokio_mt(1);
    let (tx, mut rx) = ringlane::raw_channel(3).unwrap();
    let tag = |id: u64, seq: u64| (id << 32) | seq;
    let receiver = h
        .spawn_pinned(1, async move {
            let mut next = [0u64; 3];
            let mut buf = Vec::new();
            let mut max_len = 0;
            while rx.recv_many(&mut buf, 2).await > 0 {
                assert!(buf.len() <= 2, "recv_many exceeded its limit");
                max_len = max_len.max(rx.len());
                for v in buf.drain(..) {
                    let (id, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
                    assert_eq!(
                        seq, next[id],
                        "producer {id}: lost, duplicated or reordered"
                    );
                    next[id] += 1;
                }
            }
            (next, max_len)
        })
        .unwrap();
    let p0 = {
        let tx = tx.clone();
        h.spawn_pinned(0, async move {
            for i in 0..PER {
                tx.send(tag(0, i)).await.unwrap();
            }
        })
        .unwrap()
    };
    let p1 = {
        let tx = tx.clone();
        tokio_rt.spawn(async move {
            let mut i = 0;
            while i < PER {
                let end = (i + 5).min(PER);
                tx.send_many((i..end).map(|s| tag(1, s))).await.unwrap();
                i = end;
            }
        })
    };
    let p2 = {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            for i in 0..PER {
                let mut v = tag(2, i);
                loop {
                    match tx.try_send(v) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            assert!(Instant::now() < deadline, "the receiver stalled");
                            v = back;
                            std::thread::yield_now();
                        }
                        Err(TrySendError::Closed(_)) => panic!("the receiver went away"),
                    }
                }
            }
        })
    };
    drop(tx);
    let (next, max_len) = common::join_within(&rt, receiver, LIMIT, "the raw-lane receiver");
    assert_eq!(next, [PER; 3]);
    assert!(max_len <= 3, "len {max_len} above the capacity of 3");
    common::join_within(&rt, p0, LIMIT, "producer 0");
    tokio_rt.block_on(p1).unwrap();
    p2.join().unwrap();
}
