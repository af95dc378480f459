//! The ringlane cases: a ping task on shard 0 and an echo task on shard 1
//! (or also on shard 0, the software floor) over two `raw_channel`s (round
//! trip), and shard 0 → shard 1 with
//! `send`/`send_many` → `recv_many` (throughput), on each configured runtime.

use std::time::Instant;

use crate::cases::Env;
use crate::measure::{Doorbells, RttRun, Samples, TputRun};
use crate::shared::timing::process_cpu_time;
use crate::watchdog::progress;
use crate::{RTT_CAPACITY, WINDOW};

/// Ping on shard 0, echo on shard `echo_shard`.
fn ringlane_rtt(rt: &ringlane::Runtime, echo_shard: usize, warm: usize, n: usize) -> RttRun {
    let handle = rt.handle();
    let (ping_tx, mut ping_rx) = ringlane::raw_channel(RTT_CAPACITY).expect("channel");
    let (pong_tx, mut pong_rx) = ringlane::raw_channel(RTT_CAPACITY).expect("channel");
    let echo = handle
        .spawn_pinned(echo_shard, async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        })
        .expect("spawn echo");
    let stats = handle.clone();
    let ping = handle
        .spawn_pinned(0, async move {
            let mut s = Samples::new(warm, n);
            let mut before = Doorbells::default();
            for i in 0..s.total() {
                ping_tx.send(i).await.expect("echo task gone");
                let v = pong_rx.recv().await.expect("echo task gone");
                assert_eq!(v, i, "echo out of order");
                if s.tick(true) {
                    before = Doorbells::of(&stats);
                }
            }
            let after = Doorbells::of(&stats);
            let mut run = s.finish();
            run.doorbells = Some(after.since(before));
            run
        })
        .expect("spawn ping");
    let run = rt.block_on(ping).expect("ping task");
    rt.block_on(echo).expect("echo task");
    run
}

pub(crate) fn rtt_ringlane_parked(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.parked, 1, warm, n)
}

pub(crate) fn rtt_ringlane_parked_pinned(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.parked_pinned, 1, warm, n)
}

pub(crate) fn rtt_ringlane_parked_no_dt(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.parked_no_dt, 1, warm, n)
}

pub(crate) fn rtt_ringlane_spin(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.spin, 1, warm, n)
}

/// The spin case with the shards pinned to two distinct CPUs: the
/// scheduler cannot stack the two spinning shards on one CPU (which it
/// does for tens of milliseconds after waking them, until its balancer
/// moves one; the unpinned case's p99 and mean show those round trips).
pub(crate) fn rtt_ringlane_spin_pinned(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.spin_pinned, 1, warm, n)
}

/// Both tasks on shard 0: no cross-core traffic at all, so the round trip
/// is two task switches through the channel (the software floor the
/// cross-shard cases add the cache-line transfers to).
pub(crate) fn rtt_ringlane_one_shard(env: &Env, warm: usize, n: usize) -> RttRun {
    ringlane_rtt(&env.spin, 0, warm, n)
}

fn ringlane_tput(rt: &ringlane::Runtime, batch: usize, msgs: u64) -> TputRun {
    let handle = rt.handle();
    let (tx, mut rx) = ringlane::raw_channel(WINDOW).expect("channel");
    let receiver = handle
        .spawn_pinned(1, async move {
            let mut buf = Vec::with_capacity(WINDOW);
            let mut got = 0u64;
            while got < msgs {
                buf.clear();
                let k = rx.recv_many(&mut buf, WINDOW).await;
                assert!(k > 0, "the stream ended after {got} of {msgs} messages");
                for &v in &buf {
                    assert_eq!(v, got, "message out of order");
                    got += 1;
                }
                progress(got);
            }
            (Instant::now(), process_cpu_time())
        })
        .expect("spawn receiver");
    let before = Doorbells::of(&handle);
    let sender = handle
        .spawn_pinned(0, async move {
            let start = (Instant::now(), process_cpu_time());
            let mut sent = 0u64;
            while sent < msgs {
                let b = (batch as u64).min(msgs - sent);
                if batch == 1 {
                    tx.send(sent).await.expect("receiver gone");
                } else {
                    tx.send_many(sent..sent + b).await.expect("receiver gone");
                }
                sent += b;
            }
            start
        })
        .expect("spawn sender");
    let (start_wall, start_cpu) = rt.block_on(sender).expect("sender task");
    let (end_wall, end_cpu) = rt.block_on(receiver).expect("receiver task");
    TputRun {
        wall: end_wall - start_wall,
        cpu: end_cpu - start_cpu,
        doorbells: Some(Doorbells::of(&handle).since(before)),
        misordered: 0,
    }
}

pub(crate) fn tput_ringlane_parked(env: &Env, batch: usize, msgs: u64) -> TputRun {
    ringlane_tput(&env.parked, batch, msgs)
}

pub(crate) fn tput_ringlane_spin(env: &Env, batch: usize, msgs: u64) -> TputRun {
    ringlane_tput(&env.spin, batch, msgs)
}
