//! Runtime life cycle meeting Tokio and the channels: senders on Tokio
//! workers racing a drop inside Tokio's `block_on`, receivers handed to
//! Tokio across a shutdown, graceful drains of watched receivers, blocking
//! reads at `shutdown(ZERO)`, ringlane objects kept in thread-locals, and
//! runtimes that await each other's tasks while one drains.

mod common;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};
use std::sync::{Arc, mpsc};
use std::task::Poll;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ringlane::time::timeout;
use ringlane::{
    Error, Handle, JoinHandle, Runtime, SendError, TryRecvError, TrySendError, channel,
};

use common::chans::{park_block_on, tokio_mt};
use common::lifecycle::{assert_no_threads_left, threads_left_after_a_while, within};
use common::{LIMIT, wait_until};

/// Every test here holds it: fd counts and thread names are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// Builds a runtime, or prints a SKIP line and gives `None` when the
/// kernel refuses io_uring (or lacks what ringlane needs).
fn try_build(b: ringlane::Builder, what: &str) -> Option<Runtime> {
    match b.build() {
        Ok(rt) => Some(rt),
        Err(e @ (Error::RingSetup { .. } | Error::KernelTooOld { .. })) => {
            eprintln!("SKIP {what}: this kernel does not give ringlane its io_uring: {e}");
            None
        }
        Err(e) => panic!("{what}: the runtime failed to start: {e}"),
    }
}

fn pending_forever() -> impl Future<Output = ()> + Send + 'static {
    std::future::pending::<()>()
}

/// A message that counts its drops in a per-id slot.
struct Tagged {
    id: u32,
    drops: Arc<Vec<AtomicU8>>,
}

impl Drop for Tagged {
    fn drop(&mut self) {
        self.drops[self.id as usize].fetch_add(1, SeqCst);
    }
}

/// What happened to every message of a test, by id (`kind * per + seq`).
#[derive(Clone)]
struct Ledger {
    per: usize,
    drops: Arc<Vec<AtomicU8>>,
    created: Arc<Vec<AtomicBool>>,
    acked: Arc<Vec<AtomicBool>>,
    returned: Arc<Vec<AtomicBool>>,
    received: Arc<Vec<AtomicBool>>,
    last: Arc<Mutex<Vec<Option<u32>>>>,
    problems: Arc<Mutex<Vec<String>>>,
    got: Arc<AtomicUsize>,
}

impl Ledger {
    fn new(kinds: usize, per: usize) -> Self {
        let n = kinds * per;
        let flags = || Arc::new((0..n).map(|_| AtomicBool::new(false)).collect::<Vec<_>>());
        Self {
            per,
            drops: Arc::new((0..n).map(|_| AtomicU8::new(0)).collect()),
            created: flags(),
            acked: flags(),
            returned: flags(),
            received: flags(),
            last: Arc::new(Mutex::new(vec![None; kinds])),
            problems: Arc::default(),
            got: Arc::default(),
        }
    }

    fn n(&self) -> usize {
        self.drops.len()
    }

    fn make(&self, kind: usize, seq: usize) -> Tagged {
        let id = (kind * self.per + seq) as u32;
        self.created[id as usize].store(true, SeqCst);
        Tagged {
            id,
            drops: self.drops.clone(),
        }
    }

    fn problem(&self, p: String) {
        let mut v = self.problems.lock();
        if v.len() < 40 {
            v.push(p);
        }
    }

    fn ack(&self, id: u32) {
        self.acked[id as usize].store(true, SeqCst);
    }

    /// A message handed back by a refused send: it must be the one sent.
    fn handed_back(&self, m: Tagged, sent: u32) {
        if m.id != sent {
            self.problem(format!("a send of {sent} handed back {}", m.id));
        }
        self.returned[m.id as usize].store(true, SeqCst);
    }

    /// A received message: FIFO per kind, never twice.
    fn receive(&self, m: Tagged) {
        let (kind, seq) = (m.id as usize / self.per, (m.id as usize % self.per) as u32);
        {
            let mut last = self.last.lock();
            if let Some(prev) = last[kind] {
                if seq <= prev {
                    self.problem(format!(
                        "sender {kind}: seq {seq} received after seq {prev} (FIFO per sender)"
                    ));
                }
            }
            last[kind] = Some(seq);
        }
        if self.received[m.id as usize].swap(true, SeqCst) {
            self.problem(format!("message {} was received twice", m.id));
        }
        self.got.fetch_add(1, SeqCst);
    }

    fn got(&self) -> usize {
        self.got.load(SeqCst)
    }

    fn all_dropped(&self) -> bool {
        (0..self.n()).all(|i| !self.created[i].load(SeqCst) || self.drops[i].load(SeqCst) >= 1)
    }

    fn flag(v: &[AtomicBool], i: usize) -> bool {
        v[i].load(SeqCst)
    }

    /// Checks every test needs: each message made is dropped exactly once,
    /// none never made is touched, none both received and handed back.
    fn common_findings(&self) -> Vec<String> {
        let mut out = self.problems.lock().clone();
        let mut push = |s: String| {
            if out.len() < 60 {
                out.push(s);
            }
        };
        for i in 0..self.n() {
            let d = self.drops[i].load(SeqCst);
            let (c, a, r, rc) = (
                Self::flag(&self.created, i),
                Self::flag(&self.acked, i),
                Self::flag(&self.returned, i),
                Self::flag(&self.received, i),
            );
            if !c {
                if d != 0 || a || r || rc {
                    push(format!(
                        "message {i} was never made but shows up (drops {d})"
                    ));
                }
                continue;
            }
            if d != 1 {
                push(format!(
                    "message {i} was dropped {d} times (acked {a}, handed back {r}, received {rc})"
                ));
            }
            if rc && r {
                push(format!("message {i} was both received and handed back"));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// 1. `Runtime::enter` and the runtime's Tokio handle
// ---------------------------------------------------------------------------

/// Eight Tokio worker tasks send numbered messages into one channel of 64
/// (`try_send` retried on `Full`, `send().await`, `send_many` of 8) whose
/// receiver (`recv_many`, yielding now and then) is a pinned task on a
/// spinning shard, hence watched. Once 20,000 were received the runtime is
/// dropped inside the Tokio runtime's `block_on` (Tokio itself panics on a
/// runtime drop there; ringlane documents none and must just return). Each
/// sender goes on until 16 of its sends were refused.
///
/// Expected (channel docs: "no message lost or duplicated: a send either
/// puts the message in the ring or returns it in the error"; "closing and
/// pushing exclude each other"): per message id, dropped exactly once;
/// exactly one of acknowledged / handed back; received only if
/// acknowledged; FIFO per sender, and no acknowledged message skipped
/// before a later received one of the same sender; at most 64 acknowledged
/// but never received (dropped with the receiver's queue); once any send
/// has seen `Closed`, no send that starts later is accepted; `send_many`
/// hands back exactly its unsent tail; `is_closed()` afterwards.
#[test]
fn eight_tokio_senders_racing_a_drop_inside_tokio_block_on_account_for_every_message_by_id() {
    const SENDERS: usize = 8;
    const PER: usize = 50_000;
    const CAP: usize = 64;
    let _serial = SERIAL.lock();
    let Some(rt) = try_build(
        Runtime::builder()
            .shards(2)
            .thread_name("adv14l-8tx")
            .spin_before_park(Duration::from_micros(50)),
        "eight Tokio senders racing a drop",
    ) else {
        return;
    };
    let h = rt.handle();
    let ledger = Ledger::new(SENDERS, PER);
    let (tx, rx) = channel::<Tagged>(CAP).unwrap();
    let receiver = {
        let l = ledger.clone();
        h.spawn_pinned(1, async move {
            let mut rx = rx;
            let mut buf = Vec::with_capacity(32);
            let mut rounds = 0u64;
            while rx.recv_many(&mut buf, 32).await > 0 {
                for m in buf.drain(..) {
                    l.receive(m);
                }
                rounds += 1;
                if rounds % 8 == 0 {
                    ringlane::yield_now().await; // let the queue fill now and then
                }
            }
        })
        .unwrap()
    };
    let tokio_rt = tokio_mt(SENDERS);
    let closed_seen = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (tx, l, closed_seen) = (tx.clone(), ledger.clone(), closed_seen.clone());
            tokio_rt.spawn(async move {
                let late = |l: &Ledger, what: &str, id: u32| {
                    l.problem(format!(
                        "sender {s}: {what} of message {id} was accepted although it started \
                         after another send had been refused as closed"
                    ))
                };
                let mut seq = 0usize;
                let mut refusals = 0usize;
                while seq < PER && refusals < 16 {
                    match s % 3 {
                        0 => {
                            let mut m = l.make(s, seq);
                            seq += 1;
                            let id = m.id;
                            loop {
                                let before = closed_seen.load(SeqCst);
                                match tx.try_send(m) {
                                    Ok(()) => {
                                        l.ack(id);
                                        if before {
                                            late(&l, "try_send", id);
                                        }
                                        break;
                                    }
                                    Err(TrySendError::Full(back)) => {
                                        m = back;
                                        tokio::task::yield_now().await;
                                    }
                                    Err(TrySendError::Closed(back)) => {
                                        l.handed_back(back, id);
                                        closed_seen.store(true, SeqCst);
                                        refusals += 1;
                                        break;
                                    }
                                }
                            }
                        }
                        1 => {
                            let m = l.make(s, seq);
                            seq += 1;
                            let id = m.id;
                            let before = closed_seen.load(SeqCst);
                            match tx.send(m).await {
                                Ok(()) => {
                                    l.ack(id);
                                    if before {
                                        late(&l, "send", id);
                                    }
                                }
                                Err(SendError(back)) => {
                                    l.handed_back(back, id);
                                    closed_seen.store(true, SeqCst);
                                    refusals += 1;
                                }
                            }
                        }
                        _ => {
                            let k = (PER - seq).min(8);
                            let batch: Vec<Tagged> = (seq..seq + k).map(|i| l.make(s, i)).collect();
                            let ids: Vec<u32> = batch.iter().map(|m| m.id).collect();
                            seq += k;
                            let before = closed_seen.load(SeqCst);
                            match tx.send_many(batch).await {
                                Ok(()) => {
                                    for &id in &ids {
                                        l.ack(id);
                                    }
                                    if before {
                                        late(&l, "send_many", ids[0]);
                                    }
                                }
                                Err(SendError(rest)) => {
                                    let rest_ids: Vec<u32> = rest.iter().map(|m| m.id).collect();
                                    let tail_ok = !rest_ids.is_empty()
                                        && rest_ids.len() <= ids.len()
                                        && rest_ids[..] == ids[ids.len() - rest_ids.len()..];
                                    if !tail_ok {
                                        l.problem(format!(
                                            "sender {s}: send_many of {ids:?} handed back \
                                             {rest_ids:?}, not its unsent tail"
                                        ));
                                    } else {
                                        let pushed = ids.len() - rest_ids.len();
                                        for &id in &ids[..pushed] {
                                            l.ack(id);
                                        }
                                        if before && pushed > 0 {
                                            late(&l, "send_many", ids[0]);
                                        }
                                    }
                                    for m in rest {
                                        let id = m.id;
                                        l.handed_back(m, id);
                                    }
                                    closed_seen.store(true, SeqCst);
                                    refusals += 1;
                                }
                            }
                        }
                    }
                    if seq % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                if refusals > 0 && !tx.is_closed() {
                    l.problem(format!("sender {s}: refused, yet is_closed() says false"));
                }
            })
        })
        .collect();
    drop(tx);
    let took = {
        let l = ledger.clone();
        tokio_rt.block_on(async move {
            let deadline = Instant::now() + LIMIT;
            while l.got() < 20_000 {
                assert!(
                    Instant::now() < deadline,
                    "only {} messages were received in {LIMIT:?}",
                    l.got()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let t = Instant::now();
            drop(rt); // inside Tokio's block_on, with eight workers sending
            t.elapsed()
        })
    };
    assert!(
        took < Duration::from_millis(4500),
        "dropping the runtime inside Tokio's block_on took {took:?}"
    );
    for (s, j) in senders.into_iter().enumerate() {
        tokio_rt
            .block_on(async { tokio::time::timeout(LIMIT, j).await })
            .unwrap_or_else(|_| panic!("sender {s} never finished after the runtime was dropped"))
            .unwrap_or_else(|e| panic!("sender {s} panicked: {e}"));
    }
    let r = common::block_on(timeout(LIMIT, receiver)).expect("the receiving task's handle hung");
    assert!(
        r.is_err_and(|e| e.is_cancelled()),
        "the receiving task was not cancelled by the drop"
    );
    assert!(
        closed_seen.load(SeqCst),
        "no send was ever refused: the drop came after every message was sent (the race was \
         not exercised)"
    );
    wait_until("every message made being dropped", || ledger.all_dropped());
    let mut findings = ledger.common_findings();
    let mut accepted_not_received = 0usize;
    for i in 0..ledger.n() {
        if !Ledger::flag(&ledger.created, i) {
            continue;
        }
        let (a, r, rc) = (
            Ledger::flag(&ledger.acked, i),
            Ledger::flag(&ledger.returned, i),
            Ledger::flag(&ledger.received, i),
        );
        if a == r && findings.len() < 60 {
            findings.push(format!(
                "message {i}: acknowledged {a}, handed back {r}: exactly one must hold"
            ));
        }
        if rc && !a && findings.len() < 60 {
            findings.push(format!(
                "message {i} was received but its send did not succeed"
            ));
        }
        if a && !rc {
            accepted_not_received += 1;
        }
    }
    for s in 0..SENDERS {
        let base = s * PER;
        let max_received = (0..PER)
            .rev()
            .find(|&q| Ledger::flag(&ledger.received, base + q));
        if let Some(max) = max_received {
            if let Some(skipped) = (0..max).find(|&q| {
                Ledger::flag(&ledger.acked, base + q) && !Ledger::flag(&ledger.received, base + q)
            }) {
                findings.push(format!(
                    "sender {s}: acknowledged message {skipped} was never received, yet its later \
                     message {max} was"
                ));
            }
        }
    }
    if accepted_not_received > CAP {
        findings.push(format!(
            "{accepted_not_received} messages were acknowledged but never received, with a \
             capacity of {CAP}: acknowledged messages were lost"
        ));
    }
    assert!(findings.is_empty(), "{findings:#?}");
    assert_no_threads_left("adv14l-8tx");
}

// ---------------------------------------------------------------------------
// 3. A receiver handed to Tokio mid-watch, then the runtime shut down
// ---------------------------------------------------------------------------

/// A pinned task on spinning shard 0 receives 200 messages (watched), then
/// waits once more with a 1 µs timeout, which leaves its watch entry and the
/// `WATCHED` mark behind, and hands the receiver to a Tokio task. Senders:
/// a pinned task on shard 0 (`send`), one on shard 1 (`send_many` of 8), a
/// plain thread (`try_send`, retried on `Full`), a Tokio task (`send`).
/// Once the Tokio side got 1,000 more, `shutdown(ZERO)` cancels the two
/// shard senders (their last send dropped unsent, as documented); the
/// thread and the Tokio sender go on for 500 more messages, then stop.
///
/// Expected: the shutdown reports no stuck shard; the channel keeps working
/// with its first home gone; the Tokio receiver sees the end of the stream
/// (`try_recv` then says `Disconnected`) once the last sender is gone;
/// every acknowledged message was received, FIFO per sender, nothing was
/// handed back (the receiver lives), every message made was dropped once.
#[test]
fn a_receiver_handed_from_a_spinning_shard_to_tokio_gets_every_acknowledged_message_across_a_shutdown()
 {
    const KINDS: usize = 4;
    const PER: usize = 200_000;
    let _serial = SERIAL.lock();
    let Some(rt) = try_build(
        Runtime::builder()
            .shards(2)
            .thread_name("adv14l-hand")
            .spin_before_park(Duration::from_micros(100)),
        "a receiver handed to Tokio across a shutdown",
    ) else {
        return;
    };
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let ledger = Ledger::new(KINDS, PER);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel::<Tagged>(16).unwrap();
    let (hand_tx, hand_rx) = tokio::sync::oneshot::channel::<ringlane::Receiver<Tagged>>();

    let first = {
        let l = ledger.clone();
        h.spawn_pinned(0, async move {
            let mut rx = rx;
            let mut n = 0usize;
            while n < 200 {
                match rx.recv().await {
                    Some(m) => {
                        l.receive(m);
                        n += 1;
                    }
                    None => break,
                }
            }
            // A wait whose watch (and mark) stays behind on this shard.
            if let Ok(Some(m)) = timeout(Duration::from_micros(1), rx.recv()).await {
                l.receive(m);
                n += 1;
            }
            hand_tx
                .send(rx)
                .map_err(|_| ())
                .expect("the Tokio side was waiting");
            n
        })
        .unwrap()
    };
    let recv_task = {
        let l = ledger.clone();
        tokio_rt.spawn(async move {
            let mut rx = hand_rx.await.expect("the receiver was never handed over");
            let mut buf = Vec::new();
            while rx.recv_many(&mut buf, 16).await > 0 {
                for m in buf.drain(..) {
                    l.receive(m);
                }
            }
            rx.try_recv().err()
        })
    };
    let on_shard0 = {
        let (tx, l) = (tx.clone(), ledger.clone());
        h.spawn_pinned(0, async move {
            for seq in 0..PER {
                let m = l.make(0, seq);
                let id = m.id;
                match tx.send(m).await {
                    Ok(()) => l.ack(id),
                    Err(SendError(back)) => {
                        l.problem(format!("shard 0 sender: {id} refused, the receiver lives"));
                        l.handed_back(back, id);
                    }
                }
                if seq % 32 == 31 {
                    ringlane::yield_now().await;
                }
            }
        })
        .unwrap()
    };
    let on_shard1 = {
        let (tx, l) = (tx.clone(), ledger.clone());
        h.spawn_pinned(1, async move {
            let mut seq = 0;
            while seq < PER {
                let k = (PER - seq).min(8);
                let batch: Vec<Tagged> = (seq..seq + k).map(|i| l.make(1, i)).collect();
                let ids: Vec<u32> = batch.iter().map(|m| m.id).collect();
                seq += k;
                match tx.send_many(batch).await {
                    Ok(()) => ids.iter().for_each(|&id| l.ack(id)),
                    Err(SendError(rest)) => {
                        l.problem(
                            "shard 1 sender: a batch was refused, the receiver lives".to_string(),
                        );
                        for m in rest {
                            let id = m.id;
                            l.handed_back(m, id);
                        }
                    }
                }
            }
        })
        .unwrap()
    };
    let plain = {
        let (tx, l, stop) = (tx.clone(), ledger.clone(), stop.clone());
        std::thread::spawn(move || {
            'outer: for seq in 0..PER {
                let mut m = l.make(2, seq);
                let id = m.id;
                loop {
                    match tx.try_send(m) {
                        Ok(()) => {
                            l.ack(id);
                            break;
                        }
                        Err(TrySendError::Full(back)) => {
                            if stop.load(SeqCst) {
                                drop(back);
                                break 'outer;
                            }
                            m = back;
                            std::thread::yield_now();
                        }
                        Err(TrySendError::Closed(back)) => {
                            l.problem(format!("plain sender: {id} refused, the receiver lives"));
                            l.handed_back(back, id);
                            break 'outer;
                        }
                    }
                }
                if stop.load(SeqCst) {
                    break;
                }
            }
        })
    };
    let tokio_sender = {
        let (tx, l, stop) = (tx.clone(), ledger.clone(), stop.clone());
        tokio_rt.spawn(async move {
            for seq in 0..PER {
                if stop.load(SeqCst) {
                    break;
                }
                let m = l.make(3, seq);
                let id = m.id;
                match tx.send(m).await {
                    Ok(()) => l.ack(id),
                    Err(SendError(back)) => {
                        l.problem(format!("Tokio sender: {id} refused, the receiver lives"));
                        l.handed_back(back, id);
                        break;
                    }
                }
            }
        })
    };
    drop(tx);

    let handed = common::join_within(&rt, first, LIMIT, "the first holder of the receiver");
    assert!(handed >= 200, "the first holder saw the stream end early");
    wait_until("the Tokio holder receiving 1,000 messages", || {
        ledger.got() >= handed + 1000
    });
    let report = within(LIMIT, "shutting the runtime down", move || {
        rt.shutdown(Duration::ZERO)
    });
    assert!(report.stuck_shards.is_empty(), "{report:?}");
    let after = ledger.got();
    wait_until(
        "the Tokio holder receiving 500 more after the shutdown",
        || ledger.got() >= after + 500,
    );
    stop.store(true, SeqCst);
    within(LIMIT, "the plain sender stopping", move || plain.join())
        .expect("the plain sender panicked");
    tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, tokio_sender).await })
        .expect("the Tokio sender hung")
        .expect("the Tokio sender panicked");
    let end = tokio_rt
        .block_on(async { tokio::time::timeout(LIMIT, recv_task).await })
        .expect(
            "the Tokio receiver never saw the end of its stream after every sender was gone \
             (some dropped by the shutdown on shard threads)",
        )
        .expect("the Tokio receiver panicked");
    assert_eq!(end, Some(TryRecvError::Disconnected));
    for (what, j) in [("shard 0 sender", on_shard0), ("shard 1 sender", on_shard1)] {
        let r = common::block_on(timeout(LIMIT, j))
            .unwrap_or_else(|_| panic!("the {what}'s handle hung"));
        assert!(
            r.is_err_and(|e| e.is_cancelled()),
            "the {what} was not cancelled by the shutdown"
        );
    }
    wait_until("every message made being dropped", || ledger.all_dropped());
    let mut findings = ledger.common_findings();
    for i in 0..ledger.n() {
        if findings.len() >= 60 {
            break;
        }
        if Ledger::flag(&ledger.acked, i) && !Ledger::flag(&ledger.received, i) {
            findings.push(format!(
                "message {i} (sender {}) was acknowledged but never received: lost",
                i / PER
            ));
        }
        if Ledger::flag(&ledger.returned, i) {
            findings.push(format!(
                "message {i} was handed back although the receiver lived"
            ));
        }
    }
    assert!(findings.is_empty(), "{findings:#?}");
    assert_no_threads_left("adv14l-hand");
}

// ---------------------------------------------------------------------------
// 4. A graceful shutdown of a spinning runtime with a watched local receiver
// ---------------------------------------------------------------------------

/// A local task on spinning shard 1 (watched: a shard's own task) drains a
/// channel of 8 with `recv_many` until the stream ends. Four Tokio tasks
/// send 3,000 values each (`send` or `send_many` of 5), pausing 2 ms every
/// 500 so the shard goes through spin and park. Once 200 arrived, a
/// graceful `shutdown(4 s)` begins; the senders go on, finish and drop
/// their senders.
///
/// Expected (docs: "lets tasks run until timeout passes"): no send is
/// refused during the grace; the receiver gets all 12,000 values (sum
/// checked) and sees the end of its stream, so its task finishes and the
/// report is clean, long before the 4 s deadline would cancel it.
#[test]
fn a_graceful_shutdown_lets_a_watched_local_receiver_drain_tokio_senders_to_the_end_of_its_stream()
{
    const SENDERS: u64 = 4;
    const N: u64 = 3000;
    let _serial = SERIAL.lock();
    let Some(rt) = try_build(
        Runtime::builder()
            .shards(2)
            .thread_name("adv14l-grace")
            .spin_before_park(Duration::from_micros(200)),
        "a graceful shutdown with a watched receiver",
    ) else {
        return;
    };
    let h = rt.handle();
    let tokio_rt = tokio_mt(2);
    let (tx, rx) = channel::<u64>(8).unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let receiver = {
        let got = got.clone();
        h.spawn_local_on(1, move || async move {
            let mut rx = rx;
            let seen = std::rc::Rc::new(std::cell::Cell::new(0u64));
            let mut sum = 0u64;
            let mut buf = Vec::new();
            while rx.recv_many(&mut buf, 4).await > 0 {
                for v in buf.drain(..) {
                    sum += v;
                    seen.set(seen.get() + 1);
                    got.fetch_add(1, SeqCst);
                }
            }
            (seen.get(), sum)
        })
        .unwrap()
    };
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let tx = tx.clone();
            tokio_rt.spawn(async move {
                let base = s * N;
                let mut i = 0u64;
                while i < N {
                    if s % 2 == 0 {
                        tx.send(base + i).await.map_err(|e| e.0)?;
                        i += 1;
                    } else {
                        let k = (N - i).min(5);
                        tx.send_many((base + i)..(base + i + k))
                            .await
                            .map_err(|e| e.0[0])?;
                        i += k;
                    }
                    if i % 500 < 5 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                Ok::<(), u64>(())
            })
        })
        .collect();
    drop(tx);
    wait_until("200 values arriving", || got.load(SeqCst) >= 200);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(rt.shutdown(Duration::from_secs(4)));
    });
    wait_until("the shutdown to begin", || h.is_shutdown());
    assert!(
        matches!(h.spawn_pinned(0, async {}), Err(Error::Shutdown)),
        "a spawn during the graceful shutdown was not refused"
    );
    for (s, j) in senders.into_iter().enumerate() {
        let r = tokio_rt
            .block_on(async { tokio::time::timeout(LIMIT, j).await })
            .unwrap_or_else(|_| panic!("Tokio sender {s} hung during the graceful shutdown"))
            .unwrap_or_else(|e| panic!("Tokio sender {s} panicked: {e}"));
        assert_eq!(
            r,
            Ok(()),
            "Tokio sender {s}: a send was refused during the grace period (the receiver was \
             dropped before its stream ended)"
        );
    }
    let report = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the graceful shutdown never returned");
    assert!(
        report.is_clean(),
        "{report:?}: the watched receiver did not see the end of its stream within the grace \
         (cancelled at the deadline)"
    );
    let (count, sum) = common::block_on(timeout(LIMIT, receiver))
        .expect("the receiver's handle hung")
        .expect("the receiving task failed");
    let total = SENDERS * N;
    assert_eq!(count, total, "values lost or duplicated during the grace");
    assert_eq!(
        sum,
        (0..total).sum::<u64>(),
        "values mixed up during the grace"
    );
    assert_no_threads_left("adv14l-grace");
}

// ---------------------------------------------------------------------------
// 5. shutdown(ZERO) with shards blocked in read(2)
// ---------------------------------------------------------------------------

fn read_blocking(fd: &OwnedFd) -> isize {
    let mut b = [0u8; 16];
    // SAFETY: reads into a local buffer of the given length from an open fd.
    unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) }
}

fn write_one(fd: &OwnedFd, byte: u8) {
    // SAFETY: writes one byte from a local to an open fd.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&byte as *const u8).cast(), 1) };
    assert_eq!(n, 1, "writing to the pipe failed");
}

/// Three shards. A stealable task is first polled on shard `home`, then
/// (woken while `home` is blocked) runs on shard `here`, where it blocks
/// in `read(2)` of an empty pipe; a pinned task blocks shard `other` the
/// same way. Four tasks wait forever: two polled on `home`, one queued
/// behind each blocked read. `shutdown(ZERO)` is called from a thread;
/// 100 ms later the moved task's pipe gets a byte, 100 ms after that the
/// pinned one's.
///
/// Expected: both reads' tasks complete (`Ok(1)`); the shutdown returns
/// soon after the second byte (far from its 5 s grace), with no stuck
/// shard and exactly 4 unfinished tasks (the two queued ones are cancelled,
/// not polled); `home`, which may not exit while the moved task lives,
/// leaves once it ends; no thread or fd is left.
#[test]
fn shutdown_zero_returns_once_blocking_reads_return_even_for_a_moved_stealable_task_its_home_waits_for()
 {
    let _serial = SERIAL.lock();
    let Some(warm) = try_build(Runtime::builder().shards(1), "warm-up") else {
        return;
    };
    drop(warm);
    let before = common::fd_count();
    let Some(rt) = try_build(
        Runtime::builder().shards(3).thread_name("adv14l-sys"),
        "shutdown with shards blocked in read",
    ) else {
        return;
    };
    let h = rt.handle();
    let (a_r, a_w) = common::pipe();
    let (b_r, b_w) = common::pipe();
    let (home_tx, home_rx) = mpsc::channel::<usize>();
    let (here_tx, here_rx) = mpsc::channel::<usize>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let moved = h
        .spawn_stealable(async move {
            home_tx.send(ringlane::current_shard().unwrap()).unwrap();
            go_rx.await.unwrap();
            here_tx.send(ringlane::current_shard().unwrap()).unwrap();
            let n = read_blocking(&b_r); // blocks this shard
            drop(b_r);
            n
        })
        .unwrap();
    let home = home_rx
        .recv_timeout(LIMIT)
        .expect("the stealable task never ran");
    let blocker = common::block_shard(&rt, home);
    go_tx.send(()).unwrap(); // only another shard can take it now
    let here = here_rx
        .recv_timeout(LIMIT)
        .expect("the woken stealable task never ran on another shard");
    assert_ne!(here, home, "the task did not move: the test proves nothing");
    common::join_within(&rt, blocker.release(), LIMIT, "the blocker");
    let other = 3 - home - here;
    let (blocked_tx, blocked_rx) = mpsc::channel::<()>();
    let pinned = h
        .spawn_pinned(other, async move {
            blocked_tx.send(()).unwrap();
            let n = read_blocking(&a_r);
            drop(a_r);
            n
        })
        .unwrap();
    blocked_rx
        .recv_timeout(LIMIT)
        .expect("the pinned reader never ran");
    let (polled_tx, polled_rx) = mpsc::channel::<()>();
    let pend = |p: mpsc::Sender<()>| async move {
        let _ = p.send(());
        std::future::pending::<()>().await
    };
    let pending = vec![
        h.spawn_pinned(home, pend(polled_tx.clone())).unwrap(),
        h.spawn_stealable(pend(polled_tx.clone())).unwrap(),
        h.spawn_pinned(other, pend(polled_tx.clone())).unwrap(),
        h.spawn_pinned(here, pend(polled_tx.clone())).unwrap(),
    ];
    for _ in 0..2 {
        polled_rx
            .recv_timeout(LIMIT)
            .expect("a pending task never ran on the free shard");
    }
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let r = rt.shutdown(Duration::ZERO);
        let _ = done_tx.send((r, t.elapsed()));
    });
    wait_until("the shutdown to begin", || h.is_shutdown());
    std::thread::sleep(Duration::from_millis(100));
    write_one(&b_w, b'b');
    std::thread::sleep(Duration::from_millis(100));
    write_one(&a_w, b'a');
    let (report, took) = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("shutdown(ZERO) never returned");
    assert!(
        report.stuck_shards.is_empty(),
        "{report:?}: a shard was reported stuck although every blocking read returned within \
         200 ms (home {home}, moved task on {here}, pinned reader on {other})"
    );
    assert!(
        took < Duration::from_millis(4500),
        "shutdown(ZERO) took {took:?} although the reads returned within 200 ms"
    );
    assert_eq!(
        report.unfinished_tasks, 4,
        "{report:?}: two pending tasks polled on shard {home} and one queued behind each \
         blocked read were cancelled"
    );
    for (what, j) in [("moved stealable reader", moved), ("pinned reader", pinned)] {
        let r = common::block_on(timeout(LIMIT, j)).unwrap_or_else(|_| panic!("the {what} hung"));
        assert_eq!(
            r.unwrap_or_else(|e| panic!("the {what}: {e}")),
            1,
            "the {what} read its byte"
        );
    }
    for (k, j) in pending.into_iter().enumerate() {
        let r = common::block_on(timeout(LIMIT, j))
            .unwrap_or_else(|_| panic!("pending task {k} never resolved"));
        assert!(r.is_err_and(|e| e.is_cancelled()), "pending task {k}");
    }
    drop((a_w, b_w));
    assert_no_threads_left("adv14l-sys");
    drop(h);
    assert_eq!(common::fd_count(), before, "fds leaked");
}

// ---------------------------------------------------------------------------
// 6. Ringlane objects in thread-locals of threads that outlive the runtime
// ---------------------------------------------------------------------------

thread_local! {
    static KEPT: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A value handed out of a task.
struct Kept<T>(T);

/// Registers this thread's waker in `pending` and in a fallback sleep,
/// enters `entered`, and keeps all of it (then `items`, then a drop
/// counter, dropped last) in this thread's `KEPT`.
fn keep_on_this_thread(
    items: Vec<Box<dyn Any + Send>>,
    mut pending: JoinHandle<()>,
    entered: &'static Handle,
    dtors: Arc<AtomicUsize>,
) {
    assert!(
        park_block_on(&mut pending, Duration::from_millis(1)).is_none(),
        "a task waiting forever finished"
    );
    let mut fallback = ringlane::time::sleep(Duration::from_secs(3600));
    assert!(park_block_on(&mut fallback, Duration::from_millis(1)).is_none());
    let guard = entered.enter();
    KEPT.with(|k| {
        let mut k = k.borrow_mut();
        k.push(Box::new(pending));
        k.push(Box::new(fallback));
        k.push(Box::new(guard));
        k.extend(items.into_iter().map(|b| b as Box<dyn Any>));
        k.push(Box::new(CountOnDrop(dtors)));
    });
}

/// The objects of thread `t`: a `Handle`, a receiver holding three queued
/// messages (ids `3t..3t+3`, its sender in a pending shard task), a sender
/// whose receiver a pending shard task holds, and a sleep registered in a
/// shard's wheel.
fn objects_for_thread(
    rt: &Runtime,
    t: usize,
    drops: &Arc<Vec<AtomicU8>>,
) -> (Vec<Box<dyn Any + Send>>, JoinHandle<()>) {
    let h = rt.handle();
    let (q_tx, q_rx) = channel::<Tagged>(4).unwrap();
    for k in 0..3 {
        q_tx.try_send(Tagged {
            id: (t * 3 + k) as u32,
            drops: drops.clone(),
        })
        .map_err(|_| ())
        .expect("a channel of 4 refused a message");
    }
    drop(
        h.spawn_pinned(t % 2, async move {
            let _kept = q_tx;
            std::future::pending::<()>().await
        })
        .unwrap(),
    );
    let (k_tx, k_rx) = channel::<u8>(1).unwrap();
    drop(
        h.spawn_pinned((t + 1) % 2, async move {
            let mut rx = k_rx;
            rx.recv().await
        })
        .unwrap(),
    );
    let shard_sleep = common::join_within(
        rt,
        h.spawn_pinned(t % 2, async {
            let mut s = ringlane::time::sleep(Duration::from_secs(3600));
            let waiting =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll(cx).is_pending()))
                    .await;
            assert!(waiting, "an hour-long sleep was due at once");
            Kept(s)
        })
        .unwrap(),
        LIMIT,
        "registering a sleep in a shard's wheel",
    );
    let pending = h.spawn_pinned(t % 2, pending_forever()).unwrap();
    let items: Vec<Box<dyn Any + Send>> = vec![
        Box::new(h.clone()) as Box<dyn Any + Send>,
        Box::new(q_rx) as Box<dyn Any + Send>,
        Box::new(k_tx) as Box<dyn Any + Send>,
        Box::new(shard_sleep) as Box<dyn Any + Send>,
    ];
    (items, pending)
}

/// A plain thread and the worker of a one-worker Tokio runtime each keep,
/// in a `thread_local!`, ringlane objects of a runtime that is dropped
/// before those threads exit: a `Handle` (the test drops its own, so the
/// last one goes with a thread), a `JoinHandle` of a pending task that
/// registered the thread's waker, a receiver with three queued messages, a
/// sender, a sleep registered in a shard's wheel, a fallback sleep, an
/// `EnterGuard<'static>` of a third runtime, and (plain thread) the
/// unawaited `JoinHandle` whose task returned a second `Runtime`.
///
/// Expected: the queued messages survive the runtime's drop (the threads
/// hold them), then each is dropped exactly once when its thread exits; no
/// thread-local destructor panics (the plain thread's join is `Ok`) or
/// aborts the process; the second runtime, dropped in a TLS destructor,
/// ends its threads; every fd comes back.
#[test]
fn ringlane_objects_kept_in_thread_locals_of_plain_and_tokio_threads_are_released_when_those_threads_exit()
 {
    let _serial = SERIAL.lock();
    let Some(warm) = try_build(Runtime::builder().shards(1), "warm-up") else {
        return;
    };
    drop(warm);
    let before = common::fd_count();
    let Some(rt) = try_build(
        Runtime::builder().shards(2).thread_name("adv14l-tls"),
        "thread-local ringlane objects",
    ) else {
        return;
    };
    let Some(rt2) = try_build(
        Runtime::builder().shards(1).thread_name("adv14l-tls2"),
        "the runtime in a task output",
    ) else {
        return;
    };
    let Some(rt3) = try_build(
        Runtime::builder().shards(1).thread_name("adv14l-tls3"),
        "the entered runtime",
    ) else {
        return;
    };
    // A static, not a leaked box: LeakSanitizer counts what a static
    // holds as reachable (`scripts/asan`).
    static ENTERED: std::sync::OnceLock<Handle> = std::sync::OnceLock::new();
    let entered: &'static Handle = ENTERED.get_or_init(|| rt3.handle());
    let drops: Arc<Vec<AtomicU8>> = Arc::new((0..6).map(|_| AtomicU8::new(0)).collect());
    let dtors = Arc::new(AtomicUsize::new(0));

    // The plain thread.
    let (mut items0, pending0) = objects_for_thread(&rt, 0, &drops);
    let with_rt2 = rt.handle().spawn_pinned(1, async move { rt2 }).unwrap();
    wait_until("the task returning a runtime finishing", || {
        with_rt2.is_finished()
    });
    items0.push(Box::new(with_rt2));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let d = dtors.clone();
    let plain = std::thread::spawn(move || {
        keep_on_this_thread(items0, pending0, entered, d);
        ready_tx.send(()).unwrap();
        let _ = go_rx.recv();
    });
    ready_rx
        .recv_timeout(LIMIT)
        .expect("the plain thread never kept its objects");

    // The Tokio worker.
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (items1, pending1) = objects_for_thread(&rt, 1, &drops);
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let d = dtors.clone();
    drop(tokio_rt.spawn(async move {
        keep_on_this_thread(items1, pending1, entered, d);
        ready_tx.send(()).unwrap();
    }));
    ready_rx
        .recv_timeout(LIMIT)
        .expect("the Tokio worker never kept its objects");

    within(LIMIT, "dropping the runtime", move || drop(rt));
    for id in 0..6 {
        assert_eq!(
            drops[id].load(SeqCst),
            0,
            "queued message {id}, in a receiver a live thread keeps, was dropped with the runtime"
        );
    }
    go_tx.send(()).unwrap();
    let joined = within(LIMIT, "the plain thread exiting", move || {
        plain.join().is_ok()
    });
    assert!(
        joined,
        "a thread-local destructor of ringlane objects panicked"
    );
    within(LIMIT, "dropping the Tokio runtime", move || drop(tokio_rt));
    wait_until("both threads' thread-locals being destroyed", || {
        dtors.load(SeqCst) == 2
    });
    for id in 0..6 {
        let n = drops[id].load(SeqCst);
        assert_eq!(
            n, 1,
            "queued message {id} was dropped {n} times at thread exit"
        );
    }
    for prefix in ["adv14l-tls", "adv14l-tls2"] {
        let left = threads_left_after_a_while(prefix);
        assert!(
            left.is_empty(),
            "shard threads of {prefix} are left (the second runtime was dropped in a TLS \
             destructor): {left:?}"
        );
    }
    within(LIMIT, "dropping the entered runtime", move || drop(rt3));
    assert_eq!(
        common::fd_count(),
        before,
        "ringlane objects released by thread-local destructors leaked fds"
    );
}

// ---------------------------------------------------------------------------
// 7. Two runtimes: a graceful shutdown waiting on the other runtime
// ---------------------------------------------------------------------------

/// A boxed task body, so that one helper spawns every kind of task.
type BoxFut = Pin<Box<dyn Future<Output = Option<usize>> + Send>>;

fn boxed(f: impl Future<Output = Option<usize>> + Send + 'static) -> BoxFut {
    Box::pin(f)
}

/// Spawns `f` as task kind `k`: pinned on 0, pinned on 1, stealable, local.
fn spawn_kind(h: &Handle, k: usize, f: BoxFut) -> JoinHandle<Option<usize>> {
    match k {
        0 => h.spawn_pinned(0, f),
        1 => h.spawn_pinned(1, f),
        2 => h.spawn_stealable(f),
        _ => h.spawn_local_on(k % 2, move || f),
    }
    .unwrap()
}

/// Runtime B runs four tasks that never end (pinned on 0 and 1, stealable,
/// local); runtime A runs four tasks of the same kinds, each awaiting one
/// of B's handles. A also runs four tasks that sleep 300 ms, each awaited by
/// a task of B. A begins a graceful `shutdown(4 s)`. While A drains, its
/// sleepers finish and must wake B's awaiting tasks (wake-ups from draining
/// shards into another runtime); then B is dropped inside a current-thread
/// Tokio runtime's `block_on`, which resolves the handles A's tasks await.
///
/// Expected: B's watchers get the sleepers' values; the drop of B returns
/// promptly; A's awaiting tasks see `Cancelled` and finish, so A's
/// graceful shutdown ends early with a clean report; no thread is left.
#[test]
fn a_graceful_shutdown_ends_early_once_another_runtimes_drop_in_tokio_resolves_the_handles_its_tasks_await()
 {
    let _serial = SERIAL.lock();
    let Some(a) = try_build(Runtime::builder().shards(2).thread_name("adv14l-ga"), "A") else {
        return;
    };
    let Some(b) = try_build(Runtime::builder().shards(2).thread_name("adv14l-gb"), "B") else {
        return;
    };
    let Some(w) = try_build(Runtime::builder().shards(1), "the waiter") else {
        return;
    };
    let (ha, hb) = (a.handle(), b.handle());
    let (polled_tx, polled_rx) = mpsc::channel::<()>();
    let b_pend: Vec<JoinHandle<Option<usize>>> = (0..4)
        .map(|k| {
            let p = polled_tx.clone();
            spawn_kind(
                &hb,
                k,
                boxed(async move {
                    let _ = p.send(());
                    std::future::pending::<Option<usize>>().await
                }),
            )
        })
        .collect();
    let a_wait: Vec<JoinHandle<Option<usize>>> = b_pend
        .into_iter()
        .enumerate()
        .map(|(k, j)| {
            let p = polled_tx.clone();
            spawn_kind(
                &ha,
                k,
                boxed(async move {
                    let _ = p.send(());
                    match j.await {
                        Err(e) if e.is_cancelled() => Some(1),
                        _ => None,
                    }
                }),
            )
        })
        .collect();
    let a_done: Vec<JoinHandle<Option<usize>>> = (0..4)
        .map(|k| {
            spawn_kind(
                &ha,
                k,
                boxed(async move {
                    ringlane::time::sleep(Duration::from_millis(300)).await;
                    Some(k)
                }),
            )
        })
        .collect();
    let b_watch: Vec<JoinHandle<Option<usize>>> = a_done
        .into_iter()
        .enumerate()
        .map(|(k, j)| {
            let p = polled_tx.clone();
            spawn_kind(
                &hb,
                (k + 1) % 4,
                boxed(async move {
                    let _ = p.send(());
                    j.await.ok().flatten()
                }),
            )
        })
        .collect();
    for _ in 0..12 {
        polled_rx
            .recv_timeout(LIMIT)
            .expect("a task of either runtime never ran");
    }
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let t = Instant::now();
        let r = a.shutdown(Duration::from_secs(4));
        let _ = done_tx.send((r, t.elapsed()));
    });
    wait_until("A's shutdown to begin", || ha.is_shutdown());
    for (k, j) in b_watch.into_iter().enumerate() {
        let r = w
            .block_on(timeout(LIMIT, j))
            .unwrap_or_else(|_| {
                panic!("B's task awaiting A's sleeper {k} was never woken while A drained")
            })
            .unwrap_or_else(|e| panic!("B's task awaiting A's sleeper {k}: {e}"));
        assert_eq!(r, Some(k), "A's sleeper {k}, finishing during A's grace");
    }
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let took = within(LIMIT, "dropping B inside Tokio's block_on", move || {
        ct.block_on(async move {
            let t = Instant::now();
            drop(b);
            t.elapsed()
        })
    });
    assert!(
        took < Duration::from_millis(4500),
        "dropping B took {took:?}"
    );
    let (report, a_took) = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("A's graceful shutdown never returned");
    assert!(
        report.is_clean(),
        "{report:?} after {a_took:?}: A's tasks, whose awaited handles B's drop resolved, did \
         not finish within A's grace"
    );
    for (k, j) in a_wait.into_iter().enumerate() {
        let r = w
            .block_on(timeout(LIMIT, j))
            .unwrap_or_else(|_| panic!("A's waiter {k} hung"))
            .unwrap_or_else(|e| panic!("A's waiter {k}: {e}"));
        assert_eq!(
            r,
            Some(1),
            "A's waiter {k}: B's handle must resolve as cancelled"
        );
    }
    for prefix in ["adv14l-ga", "adv14l-gb"] {
        let left = threads_left_after_a_while(prefix);
        assert!(left.is_empty(), "{prefix}: threads left: {left:?}");
    }
}

// ---------------------------------------------------------------------------
// 8. Two runtimes dropped at once, each on a shard of the other
// ---------------------------------------------------------------------------

/// Drops the `Arc<Runtime>` it holds and reports how long that took.
struct RuntimeOwner {
    rt: Option<Arc<Runtime>>,
    took: mpsc::Sender<Duration>,
}

impl Drop for RuntimeOwner {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            let t = Instant::now();
            drop(rt);
            let _ = self.took.send(t.elapsed());
        }
    }
}

/// A two-shard runtime is put in an `Arc`; a task holds a clone and
/// returns it (in a `RuntimeOwner`) as its output; the test drops its own
/// clone, then lets the task finish, so the output holds the last one:
/// 0. a detached stealable task: async-task drops the output on the shard
///    that ran it, after the future;
/// 1. a detached local task on shard 1: likewise;
/// 2. a pinned task on shard 0 whose `JoinHandle` a task on shard 1 polled
///    once and drops once the task has finished: `JoinHandle::drop` takes
///    the output and drops it in that task's poll, on shard 1.
///
/// Expected (as for a drop from inside one of its own tasks): the drop
/// returns promptly; a task pending on each shard is cancelled; spawns are
/// refused; every shard thread ends; no fd is left.
#[test]
fn the_last_arc_of_a_runtime_dropped_with_a_task_output_on_its_own_shard_returns_promptly_and_ends_everything()
 {
    let _serial = SERIAL.lock();
    let Some(w) = try_build(Runtime::builder().shards(1), "the waiter") else {
        return;
    };
    let before = common::fd_count();
    for round in 0..3usize {
        let prefix = format!("adv14l-arc{round}");
        let Some(rt) = try_build(
            Runtime::builder().shards(2).thread_name(prefix.clone()),
            "a runtime owned by a task output",
        ) else {
            return;
        };
        let h = rt.handle();
        let pend: Vec<JoinHandle<()>> = (0..2)
            .map(|s| h.spawn_pinned(s, pending_forever()).unwrap())
            .collect();
        let rt = Arc::new(rt);
        let (took_tx, took_rx) = mpsc::channel::<Duration>();
        let owner = RuntimeOwner {
            rt: Some(rt.clone()),
            took: took_tx,
        };
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let body = async move {
            let _ = go_rx.await;
            owner
        };
        let (polled_tx, polled_rx) = mpsc::channel::<()>();
        match round {
            0 => {
                drop(h.spawn_stealable(body).unwrap());
                drop(polled_tx);
            }
            1 => {
                drop(h.spawn_local_on(1, move || body).unwrap());
                drop(polled_tx);
            }
            _ => {
                let j = h.spawn_pinned(0, body).unwrap();
                drop(
                    h.spawn_pinned(1, async move {
                        let mut j = j;
                        let mut told = Some(polled_tx);
                        std::future::poll_fn(|cx| {
                            if j.is_finished() {
                                return Poll::Ready(());
                            }
                            let polled = Pin::new(&mut j).poll(cx);
                            if let Some(t) = told.take() {
                                let _ = t.send(());
                            }
                            match polled {
                                Poll::Pending => Poll::Pending,
                                Poll::Ready(out) => {
                                    drop(out);
                                    Poll::Ready(())
                                }
                            }
                        })
                        .await;
                        drop(j); // the output, and the last Arc, go here
                    })
                    .unwrap(),
                );
                polled_rx
                    .recv_timeout(LIMIT)
                    .expect("the task holding the JoinHandle never polled it");
            }
        }
        assert_eq!(
            Arc::strong_count(&rt),
            2,
            "round {round}: the test and the owner"
        );
        drop(rt);
        go_tx.send(()).unwrap();
        let took = took_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!("round {round}: the runtime's drop, run by a task output, never returned")
            });
        assert!(
            took < Duration::from_millis(4500),
            "round {round}: dropping the runtime from a task output on its own shard took {took:?}"
        );
        for (s, p) in pend.into_iter().enumerate() {
            let r = w
                .block_on(timeout(LIMIT, p))
                .unwrap_or_else(|_| panic!("round {round}: the pending task on shard {s} hung"));
            assert!(
                r.is_err_and(|e| e.is_cancelled()),
                "round {round}: the pending task on shard {s} was not cancelled"
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
        "runtimes dropped by task outputs on their own shards leaked fds"
    );
}
