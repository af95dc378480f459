//! What the suite runs: the runtimes built once up front ([`Env`]) and the
//! tables of round-trip and throughput cases, with the floors their ratios
//! divide by.

use crate::measure::{RttRun, TputRun};
use crate::raw_msg_ring::{
    rtt_raw_busy_poll, rtt_raw_parked, rtt_raw_parked_dt, rtt_raw_parked_dt_pinned, tput_raw,
    tput_raw_dt,
};
use crate::ringlane_cases::{
    rtt_ringlane_one_shard, rtt_ringlane_parked, rtt_ringlane_parked_no_dt,
    rtt_ringlane_parked_pinned, rtt_ringlane_spin, rtt_ringlane_spin_pinned, tput_ringlane_parked,
    tput_ringlane_spin,
};
use crate::shared::runtimes::{ringlane_runtime, shutdown, tokio_multi_thread};
use crate::shared::watchdog::HANDLES;
use crate::threads::{rtt_atomic, rtt_crossbeam};
use crate::tokio_cases::{
    rtt_tokio_ct_one_thread, rtt_tokio_ct_pair, rtt_tokio_mt_mpsc, rtt_tokio_mt_oneshot,
};
use crate::{SPIN_WINDOW, THREADS};

/// The ringlane and Tokio runtimes, built once before anything is timed.
pub(crate) struct Env {
    pub(crate) parked: ringlane::Runtime,
    /// Shards 0 and 1 pinned to the first two allowed CPUs, as the pinned
    /// raw pair's threads are: every hop crosses cores on both sides.
    pub(crate) parked_pinned: ringlane::Runtime,
    pub(crate) parked_no_dt: ringlane::Runtime,
    pub(crate) spin: ringlane::Runtime,
    pub(crate) spin_pinned: ringlane::Runtime,
    pub(crate) tokio_mt: tokio::runtime::Runtime,
}

impl Env {
    pub(crate) fn new() -> Self {
        let build = |b: ringlane::Builder| ringlane_runtime(b, THREADS);
        let env = Self {
            parked: build(ringlane::Runtime::builder()),
            parked_pinned: build(ringlane::Runtime::builder().pin_cpus(true)),
            parked_no_dt: build(ringlane::Runtime::builder().defer_taskrun(false)),
            spin: build(ringlane::Runtime::builder().spin_before_park(SPIN_WINDOW)),
            spin_pinned: build(
                ringlane::Runtime::builder()
                    .spin_before_park(SPIN_WINDOW)
                    .pin_cpus(true),
            ),
            tokio_mt: tokio_multi_thread(THREADS),
        };
        let mut handles = HANDLES.lock().unwrap();
        handles.push(("parked", env.parked.handle()));
        handles.push(("parked_pinned", env.parked_pinned.handle()));
        handles.push(("parked_no_dt", env.parked_no_dt.handle()));
        handles.push(("spin", env.spin.handle()));
        handles.push(("spin_pinned", env.spin_pinned.handle()));
        drop(handles);
        env
    }

    pub(crate) fn shutdown(self) {
        HANDLES.lock().unwrap().clear();
        for (name, rt) in [
            ("parked", self.parked),
            ("parked_pinned", self.parked_pinned),
            ("parked_no_dt", self.parked_no_dt),
            ("spin", self.spin),
            ("spin_pinned", self.spin_pinned),
        ] {
            shutdown(rt, &format!("ringlane {name}"));
        }
    }
}

pub(crate) type RttFn = fn(&Env, usize, usize) -> RttRun;
pub(crate) type TputFn = fn(&Env, usize, u64) -> TputRun;

pub(crate) struct RttCase {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    /// Each hop wakes a sleeping thread: run fewer round trips in the summary.
    pub(crate) parked: bool,
    pub(crate) run: RttFn,
}

pub(crate) const RTT_CASES: &[RttCase] = &[
    RttCase {
        id: "ringlane_parked",
        label: "ringlane, shards park (default; DEFER_TASKRUN rings)",
        parked: true,
        run: rtt_ringlane_parked,
    },
    RttCase {
        id: "ringlane_parked_pinned",
        label: "ringlane, shards park, pinned to 2 distinct CPUs (`pin_cpus(true)`)",
        parked: true,
        run: rtt_ringlane_parked_pinned,
    },
    RttCase {
        id: "ringlane_parked_no_dt",
        label: "ringlane, shards park, defer_taskrun(false)",
        parked: true,
        run: rtt_ringlane_parked_no_dt,
    },
    RttCase {
        id: "ringlane_spin",
        label: "ringlane, spin_before_park(100 µs)",
        parked: false,
        run: rtt_ringlane_spin,
    },
    RttCase {
        id: "ringlane_spin_pinned",
        label: "ringlane, spin_before_park(100 µs), pinned to 2 distinct CPUs (`pin_cpus(true)`)",
        parked: false,
        run: rtt_ringlane_spin_pinned,
    },
    RttCase {
        id: "raw_msg_ring_parked",
        label: "raw MSG_RING, 2 threads sleep in submit_and_wait (default rings)",
        parked: true,
        run: rtt_raw_parked,
    },
    RttCase {
        id: "raw_msg_ring_parked_dt",
        label: "raw MSG_RING, 2 threads sleep in io_uring_enter (rings set up like ringlane's: DEFER_TASKRUN, registered fd)",
        parked: true,
        run: rtt_raw_parked_dt,
    },
    RttCase {
        id: "raw_msg_ring_parked_dt_pinned",
        label: "raw MSG_RING, rings set up like ringlane's, 2 threads pinned to 2 distinct CPUs (as `pin_cpus(true)` places shards 0 and 1)",
        parked: true,
        run: rtt_raw_parked_dt_pinned,
    },
    RttCase {
        id: "raw_msg_ring_busy_poll",
        label: "raw MSG_RING, 2 threads spin on their CQ (default rings)",
        parked: false,
        run: rtt_raw_busy_poll,
    },
    RttCase {
        id: "atomic",
        label: "atomic ping-pong, 2 spinning threads (cache-line floor)",
        parked: false,
        run: rtt_atomic,
    },
    RttCase {
        id: "tokio_mt_mpsc",
        label: "tokio_mt mpsc, 2 workers (both tasks may share one worker)",
        parked: false,
        run: rtt_tokio_mt_mpsc,
    },
    RttCase {
        id: "tokio_mt_oneshot",
        label: "tokio_mt oneshot, 2 workers (both tasks may share one worker)",
        parked: false,
        run: rtt_tokio_mt_oneshot,
    },
    RttCase {
        id: "tokio_ct_pair_mpsc",
        label: "2 tokio current-thread runtimes on 2 threads, mpsc",
        parked: true,
        run: rtt_tokio_ct_pair,
    },
    RttCase {
        id: "ringlane_one_shard",
        label: "ringlane, both tasks on shard 0 (no cross-core hop: the task-switch floor)",
        parked: false,
        run: rtt_ringlane_one_shard,
    },
    RttCase {
        id: "tokio_ct_one_thread_mpsc",
        label: "tokio current-thread, both tasks on one thread, mpsc (no cross-core hop)",
        parked: false,
        run: rtt_tokio_ct_one_thread,
    },
    RttCase {
        id: "crossbeam",
        label: "crossbeam bounded channel, 2 threads (spins, then sleeps)",
        parked: false,
        run: rtt_crossbeam,
    },
];

/// The parked floor and the cache-line floor the RTT ratios divide by.
pub(crate) const RTT_PARKED_FLOOR: &str = "raw_msg_ring_parked";
pub(crate) const RTT_ATOMIC_FLOOR: &str = "atomic";

pub(crate) struct TputCase {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    pub(crate) run: TputFn,
}

pub(crate) const TPUT_CASES: &[TputCase] = &[
    TputCase {
        id: "ringlane_parked",
        label: "ringlane send/send_many → recv_many, shards park",
        run: tput_ringlane_parked,
    },
    TputCase {
        id: "ringlane_spin",
        label: "ringlane send/send_many → recv_many, spin_before_park(100 µs)",
        run: tput_ringlane_spin,
    },
    TputCase {
        id: "raw_msg_ring",
        label: "raw MSG_RING → default ring",
        run: tput_raw,
    },
    TputCase {
        id: "raw_msg_ring_dt",
        label: "raw MSG_RING → a ring set up like ringlane's (DEFER_TASKRUN)",
        run: tput_raw_dt,
    },
];

/// The floor the throughput ratios divide by.
pub(crate) const TPUT_FLOOR: &str = "raw_msg_ring";
