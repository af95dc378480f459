//! The raw `IORING_OP_MSG_RING` floor: two threads with a bare ring each,
//! round trips (parked in `submit_and_wait` or busy-polling the CQ) and
//! one-way throughput with a credit window, on default rings or rings set
//! up as ringlane's (`shared::floor_ring`: `SINGLE_ISSUER|DEFER_TASKRUN|
//! TASKRUN_FLAG|SUBMIT_ALL`, a registered ring fd).

use std::hint::spin_loop;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Barrier;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Instant;

use io_uring::{IoUring, opcode, squeue, types};

use crate::shared::floor_ring::FloorRing;

use crate::cases::Env;
use crate::measure::{RttRun, Samples, TputRun};
use crate::shared::cpu::pin_current_thread;
use crate::shared::timing::process_cpu_time;
use crate::watchdog::progress;
use crate::{STOP, WINDOW};

/// user_data of a thread's own MSG_RING SQEs (their CQE only appears on error).
const OWN_SQE: u64 = u64::MAX - 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum RingKind {
    /// `IoUring::new` defaults: the kernel posts a MSG_RING CQE straight into the CQ.
    Default,
    /// Ringlane's set-up (`shared::floor_ring`): the owner must enter the
    /// kernel to see a message.
    DeferTaskrun,
}

fn new_ring(kind: RingKind, entries: u32, cq_entries: Option<u32>) -> FloorRing {
    match kind {
        RingKind::Default => FloorRing::default_ring(entries, cq_entries),
        RingKind::DeferTaskrun => FloorRing::like_ringlane(entries, cq_entries),
    }
}

/// Queues a MSG_RING that posts a CQE with `user_data = data` on `target`.
/// Its own CQE is skipped unless it fails.
fn push_msg(ring: &mut IoUring, target: RawFd, data: u64) {
    let sqe = opcode::MsgRingData::new(types::Fd(target), 0, data, None)
        .build()
        .flags(squeue::Flags::SKIP_SUCCESS)
        .user_data(OWN_SQE);
    // SAFETY: a MSG_RING data SQE points at no user memory; the target ring
    // is kept open by its thread until both sides have passed the final
    // barrier of the run, after every MSG_RING has completed.
    unsafe { ring.submission().push(&sqe) }.expect("SQ full");
}

/// Submits what is queued and waits for `want` completions.
fn enter(ring: &mut FloorRing, want: usize) {
    ring.enter(want);
}

/// The next message from the CQ, if any; panics on a failed MSG_RING of our own.
fn next_msg(ring: &mut IoUring) -> Option<u64> {
    let cqe = ring.completion().next()?;
    assert!(
        cqe.user_data() != OWN_SQE && cqe.result() >= 0,
        "MSG_RING failed: {}",
        io::Error::from_raw_os_error(-cqe.result())
    );
    Some(cqe.user_data())
}

/// Two threads, two rings, MSG_RING each way. `busy_poll`: spin on the CQ
/// and only `submit()`; otherwise sleep in `submit_and_wait(1)`. `pin`: the
/// ping thread on the first allowed CPU and the echo thread on the second,
/// as `pin_cpus(true)` places shards 0 and 1.
fn raw_rtt(kind: RingKind, busy_poll: bool, pin: bool, warm: usize, n: usize) -> RttRun {
    let fds = [AtomicI32::new(-1), AtomicI32::new(-1)];
    let ready = Barrier::new(2);
    let done = Barrier::new(2);
    std::thread::scope(|scope| {
        let echo = scope.spawn(|| {
            if pin {
                pin_current_thread(1);
            }
            let mut ring = new_ring(kind, 8, None);
            fds[1].store(ring.as_raw_fd(), Ordering::Relaxed);
            ready.wait();
            let peer = fds[0].load(Ordering::Relaxed);
            loop {
                let v = if busy_poll {
                    while ring.completion().is_empty() {
                        spin_loop();
                    }
                    next_msg(&mut ring).expect("a CQE")
                } else {
                    // Submits the previous reply and sleeps until the next ping.
                    enter(&mut ring, 1);
                    next_msg(&mut ring).expect("a CQE after waiting for one")
                };
                if v == STOP {
                    break;
                }
                push_msg(&mut ring, peer, v);
                if busy_poll {
                    ring.submit().expect("submit");
                }
            }
            done.wait();
        });
        let ping = scope.spawn(|| {
            if pin {
                pin_current_thread(0);
            }
            let mut ring = new_ring(kind, 8, None);
            fds[0].store(ring.as_raw_fd(), Ordering::Relaxed);
            ready.wait();
            let peer = fds[1].load(Ordering::Relaxed);
            let mut s = Samples::new(warm, n);
            for i in 0..s.total() {
                push_msg(&mut ring, peer, i);
                let v = if busy_poll {
                    ring.submit().expect("submit");
                    while ring.completion().is_empty() {
                        spin_loop();
                    }
                    next_msg(&mut ring).expect("a CQE")
                } else {
                    enter(&mut ring, 1);
                    next_msg(&mut ring).expect("a CQE after waiting for one")
                };
                assert_eq!(v, i, "echo out of order");
                s.tick(true);
            }
            let run = s.finish();
            push_msg(&mut ring, peer, STOP);
            ring.submit().expect("submit");
            done.wait();
            run
        });
        echo.join().expect("echo thread");
        ping.join().expect("ping thread")
    })
}

pub(crate) fn rtt_raw_parked(_: &Env, warm: usize, n: usize) -> RttRun {
    raw_rtt(RingKind::Default, false, false, warm, n)
}

pub(crate) fn rtt_raw_parked_dt(_: &Env, warm: usize, n: usize) -> RttRun {
    raw_rtt(RingKind::DeferTaskrun, false, false, warm, n)
}

pub(crate) fn rtt_raw_parked_dt_pinned(_: &Env, warm: usize, n: usize) -> RttRun {
    raw_rtt(RingKind::DeferTaskrun, false, true, warm, n)
}

pub(crate) fn rtt_raw_busy_poll(_: &Env, warm: usize, n: usize) -> RttRun {
    raw_rtt(RingKind::Default, true, false, warm, n)
}

/// One-way: a sender thread pushes `batch` MSG_RING SQEs and submits once;
/// the receiver reaps its CQ, sleeping in `submit_and_wait(1)` when empty.
fn raw_tput(kind: RingKind, batch: usize, msgs: u64) -> TputRun {
    let fd = AtomicI32::new(-1);
    let received = AtomicU64::new(0);
    let ready = Barrier::new(2);
    let done = Barrier::new(2);
    std::thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            let mut ring = new_ring(kind, 8, Some(2 * WINDOW as u32));
            fd.store(ring.as_raw_fd(), Ordering::Relaxed);
            ready.wait();
            let (mut got, mut misordered) = (0u64, 0u64);
            while got < msgs {
                let before = got;
                while let Some(v) = next_msg(&mut ring) {
                    misordered += u64::from(v != got);
                    got += 1;
                }
                if got == before {
                    enter(&mut ring, 1);
                } else {
                    received.store(got, Ordering::Release);
                    progress(got);
                }
            }
            let end = (Instant::now(), process_cpu_time());
            done.wait();
            (end, misordered)
        });
        let sender = scope.spawn(|| {
            let mut ring = new_ring(RingKind::Default, 256, None);
            ready.wait();
            let target = fd.load(Ordering::Relaxed);
            let start = (Instant::now(), process_cpu_time());
            let mut sent = 0u64;
            while sent < msgs {
                let b = (batch as u64).min(msgs - sent);
                // Credits: never more than WINDOW messages in flight.
                while sent + b - received.load(Ordering::Acquire) > WINDOW as u64 {
                    spin_loop();
                }
                for k in 0..b {
                    push_msg(&mut ring, target, sent + k);
                }
                ring.submit().expect("submit");
                assert!(
                    next_msg(&mut ring).is_none(),
                    "unexpected CQE on the sender"
                );
                sent += b;
            }
            done.wait();
            start
        });
        let (start_wall, start_cpu) = sender.join().expect("sender thread");
        let ((end_wall, end_cpu), misordered) = receiver.join().expect("receiver thread");
        TputRun {
            wall: end_wall - start_wall,
            cpu: end_cpu - start_cpu,
            doorbells: None,
            misordered,
        }
    })
}

pub(crate) fn tput_raw(_: &Env, batch: usize, msgs: u64) -> TputRun {
    raw_tput(RingKind::Default, batch, msgs)
}

pub(crate) fn tput_raw_dt(_: &Env, batch: usize, msgs: u64) -> TputRun {
    raw_tput(RingKind::DeferTaskrun, batch, msgs)
}
