//! The Tokio round-trip baselines: mpsc and oneshot ping-pong on the
//! multi-thread runtime, mpsc between two current-thread runtimes, and mpsc
//! between two tasks of one current-thread runtime (no cross-core hop).

use crate::RTT_CAPACITY;
use crate::cases::Env;
use crate::measure::{RttRun, Samples, thread_tag};
use crate::shared::runtimes::tokio_current_thread;

/// Echo over Tokio mpsc channels; the reply carries the echo's thread tag.
async fn tokio_echo(
    mut rx: tokio::sync::mpsc::Receiver<u64>,
    tx: tokio::sync::mpsc::Sender<(u64, usize)>,
) {
    while let Some(v) = rx.recv().await {
        if tx.send((v, thread_tag())).await.is_err() {
            break;
        }
    }
}

async fn tokio_ping(
    tx: tokio::sync::mpsc::Sender<u64>,
    mut rx: tokio::sync::mpsc::Receiver<(u64, usize)>,
    warm: usize,
    n: usize,
) -> RttRun {
    let mut s = Samples::new(warm, n);
    for i in 0..s.total() {
        tx.send(i).await.expect("echo task gone");
        let (v, tag) = rx.recv().await.expect("echo task gone");
        assert_eq!(v, i, "echo out of order");
        s.tick(tag != thread_tag());
    }
    s.finish()
}

pub(crate) fn rtt_tokio_mt_mpsc(env: &Env, warm: usize, n: usize) -> RttRun {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let rt = &env.tokio_mt;
    let echo = rt.spawn(tokio_echo(ping_rx, pong_tx));
    let ping = rt.spawn(tokio_ping(ping_tx, pong_rx, warm, n));
    let run = rt.block_on(ping).expect("ping task");
    rt.block_on(echo).expect("echo task");
    run
}

/// A request of the oneshot ping-pong: the value, where to reply, and where
/// the next request will come from.
struct OneshotReq {
    v: u64,
    reply: tokio::sync::oneshot::Sender<(u64, usize)>,
    next: tokio::sync::oneshot::Receiver<OneshotReq>,
}

pub(crate) fn rtt_tokio_mt_oneshot(env: &Env, warm: usize, n: usize) -> RttRun {
    use tokio::sync::oneshot;
    let (first_tx, first_rx) = oneshot::channel::<OneshotReq>();
    let rt = &env.tokio_mt;
    let echo = rt.spawn(async move {
        let mut rx = first_rx;
        while let Ok(req) = rx.await {
            let _ = req.reply.send((req.v, thread_tag()));
            rx = req.next;
        }
    });
    let ping = rt.spawn(async move {
        let mut tx = first_tx;
        let mut s = Samples::new(warm, n);
        for i in 0..s.total() {
            let (reply, reply_rx) = oneshot::channel();
            let (next_tx, next) = oneshot::channel();
            if tx.send(OneshotReq { v: i, reply, next }).is_err() {
                panic!("echo task gone");
            }
            tx = next_tx;
            let (v, tag) = reply_rx.await.expect("echo task gone");
            assert_eq!(v, i, "echo out of order");
            s.tick(tag != thread_tag());
        }
        s.finish()
    });
    let run = rt.block_on(ping).expect("ping task");
    rt.block_on(echo).expect("echo task");
    run
}

/// Both tasks on one current-thread runtime: Tokio's task-switch floor.
pub(crate) fn rtt_tokio_ct_one_thread(_: &Env, warm: usize, n: usize) -> RttRun {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let rt = tokio_current_thread();
    let echo = rt.spawn(tokio_echo(ping_rx, pong_tx));
    let run = rt.block_on(tokio_ping(ping_tx, pong_rx, warm, n));
    rt.block_on(echo).expect("echo task");
    run
}

pub(crate) fn rtt_tokio_ct_pair(_: &Env, warm: usize, n: usize) -> RttRun {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    let (pong_tx, pong_rx) = tokio::sync::mpsc::channel(RTT_CAPACITY);
    std::thread::scope(|scope| {
        scope.spawn(|| tokio_current_thread().block_on(tokio_echo(ping_rx, pong_tx)));
        let ping =
            scope.spawn(|| tokio_current_thread().block_on(tokio_ping(ping_tx, pong_rx, warm, n)));
        ping.join().expect("ping thread")
    })
}
