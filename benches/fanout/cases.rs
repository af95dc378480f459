//! What the suite runs: the runtimes and calibrated work built once up front
//! ([`Env`]), the case table, and each runtime's implementation of a batch.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::shared::runtimes::{ringlane_runtime, shutdown, tokio_multi_thread};
use crate::shared::watchdog::HANDLES;
use crate::watchdog::progress;
use crate::work::{self, Shape};
use crate::{REQUESTS, SPAWN_TASKS, SUBTASKS, THREADS};

/// The runtimes and the calibrated work, built before anything is timed.
pub(crate) struct Env {
    pub(crate) ringlane: ringlane::Runtime,
    pub(crate) tokio_mt: tokio::runtime::Runtime,
    /// Hash rounds per unit of work (about [`crate::UNIT`]).
    pub(crate) iters_per_unit: u64,
    /// The expected batch totals, balanced and skewed.
    expected: [u64; 3],
}

impl Env {
    pub(crate) fn new() -> Self {
        let iters_per_unit = work::calibrate();
        let env = Self {
            ringlane: ringlane_runtime(ringlane::Runtime::builder(), THREADS),
            tokio_mt: tokio_multi_thread(THREADS),
            iters_per_unit,
            expected: [Shape::Balanced, Shape::Skewed, Shape::Uneven]
                .map(|shape| work::expected_total(shape, iters_per_unit)),
        };
        HANDLES
            .lock()
            .unwrap()
            .push(("ringlane", env.ringlane.handle()));
        env
    }

    fn expected(&self, shape: Shape) -> u64 {
        self.expected[shape as usize]
    }

    pub(crate) fn shutdown(self) {
        HANDLES.lock().unwrap().clear();
        shutdown(self.ringlane, "ringlane");
    }
}

/// What a case measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    /// [`REQUESTS`] requests of [`SUBTASKS`] subtasks each.
    Fanout(Shape),
    /// Spawn, then join, [`SPAWN_TASKS`] trivial tasks from inside a task.
    SpawnJoin,
}

/// Who runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runner {
    /// Requests `spawn_stealable` from the bench thread, subtasks `ringlane::spawn`.
    Ringlane,
    /// Requests `spawn_stealable`, subtasks `Placement::Pinned(request's shard)`.
    RinglaneSubPinned,
    /// Requests `Placement::Pinned(r % shards)`, subtasks pinned to the same
    /// shard: thread-per-core, no stealing at all.
    RinglanePinned,
    /// Requests `Handle::spawn` from the bench thread, subtasks `tokio::spawn`.
    TokioMt,
}

pub(crate) struct Case {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    pub(crate) workload: Workload,
    pub(crate) runner: Runner,
    /// Summary mode: batches per round.
    pub(crate) batches: u64,
}

impl Case {
    /// Runs `batches` batches; returns the wall time of the timed region
    /// (for `SpawnJoin`, measured inside the driver task).
    pub(crate) fn run(&self, env: &Env, batches: u64) -> Duration {
        match self.workload {
            Workload::Fanout(shape) => {
                let start = Instant::now();
                for _ in 0..batches {
                    let total = match self.runner {
                        Runner::TokioMt => tokio_fanout(env, shape),
                        runner => ringlane_fanout(env, shape, runner),
                    };
                    assert_eq!(
                        total,
                        env.expected(shape),
                        "{}: wrong batch result (a subtask lost or run twice?)",
                        self.id
                    );
                    progress();
                }
                start.elapsed()
            }
            Workload::SpawnJoin => match self.runner {
                Runner::TokioMt => tokio_spawn_join(env, batches),
                _ => ringlane_spawn_join(env, batches),
            },
        }
    }
}

const RINGLANE: &str = "ringlane, 2 shards";
const STEALABLE: &str = "ringlane, 2 shards, stealable (`spawn_stealable` + `ringlane::spawn`)";
const SUB_PINNED: &str = "ringlane, 2 shards, reference: requests stealable, subtasks \
                          `Pinned` to the request's shard";
const PINNED: &str = "ringlane, 2 shards, reference: requests `Pinned(r % 2)`, subtasks \
                      `Pinned` to the request's shard (no stealing)";
const TOKIO: &str = "tokio multi-thread, 2 workers";

const fn fanout(id: &'static str, label: &'static str, shape: Shape, runner: Runner) -> Case {
    let batches = match shape {
        Shape::Balanced => 8,
        Shape::Skewed | Shape::Uneven => 3,
    };
    Case {
        id,
        label,
        workload: Workload::Fanout(shape),
        runner,
        batches,
    }
}

pub(crate) const CASES: &[Case] = &[
    fanout(
        "balanced/ringlane",
        STEALABLE,
        Shape::Balanced,
        Runner::Ringlane,
    ),
    fanout(
        "balanced/ringlane_sub_pinned",
        SUB_PINNED,
        Shape::Balanced,
        Runner::RinglaneSubPinned,
    ),
    fanout(
        "balanced/ringlane_pinned",
        PINNED,
        Shape::Balanced,
        Runner::RinglanePinned,
    ),
    fanout("balanced/tokio_mt", TOKIO, Shape::Balanced, Runner::TokioMt),
    fanout(
        "skewed/ringlane",
        STEALABLE,
        Shape::Skewed,
        Runner::Ringlane,
    ),
    fanout(
        "skewed/ringlane_sub_pinned",
        SUB_PINNED,
        Shape::Skewed,
        Runner::RinglaneSubPinned,
    ),
    fanout(
        "skewed/ringlane_pinned",
        PINNED,
        Shape::Skewed,
        Runner::RinglanePinned,
    ),
    fanout("skewed/tokio_mt", TOKIO, Shape::Skewed, Runner::TokioMt),
    fanout(
        "uneven/ringlane",
        STEALABLE,
        Shape::Uneven,
        Runner::Ringlane,
    ),
    fanout(
        "uneven/ringlane_pinned",
        PINNED,
        Shape::Uneven,
        Runner::RinglanePinned,
    ),
    fanout("uneven/tokio_mt", TOKIO, Shape::Uneven, Runner::TokioMt),
    Case {
        id: "spawn_join/ringlane",
        label: RINGLANE,
        workload: Workload::SpawnJoin,
        runner: Runner::Ringlane,
        batches: 5,
    },
    Case {
        id: "spawn_join/tokio_mt",
        label: TOKIO,
        workload: Workload::SpawnJoin,
        runner: Runner::TokioMt,
        batches: 5,
    },
];

/// The baseline of a workload (the ratio columns divide by it).
pub(crate) fn baseline(workload: Workload) -> usize {
    CASES
        .iter()
        .position(|c| c.workload == workload && c.runner == Runner::TokioMt)
        .expect("baseline case")
}

// ---------------------------------------------------------------------------
// Fan-out

/// One request: spawn its subtasks with `spawn_sub(subtask index)`, await
/// them all, return the wrapping sum of their results.
async fn request<J, E>(spawn_sub: impl Fn(usize) -> J) -> u64
where
    J: Future<Output = Result<u64, E>>,
    E: std::fmt::Debug,
{
    let joins: Vec<J> = (0..SUBTASKS).map(spawn_sub).collect();
    let mut sum = 0u64;
    for join in joins {
        sum = sum.wrapping_add(join.await.expect("join subtask"));
    }
    progress();
    sum
}

fn ringlane_fanout(env: &Env, shape: Shape, runner: Runner) -> u64 {
    let handle = env.ringlane.handle();
    let iters = env.iters_per_unit;
    let joins: Vec<_> = (0..REQUESTS)
        .map(|req| {
            let fut = request(move |sub| {
                let fut = async move { work::subtask(req, sub, shape, iters) };
                if runner == Runner::Ringlane {
                    ringlane::spawn(fut).expect("spawn subtask")
                } else {
                    let here = ringlane::current_shard().expect("request runs on a shard");
                    ringlane::Handle::current()
                        .expect("request runs on a shard")
                        .spawn_with(ringlane::Placement::Pinned(here), fut)
                        .expect("spawn subtask")
                }
            });
            let placement = match runner {
                Runner::RinglanePinned => ringlane::Placement::Pinned(req % THREADS),
                _ => ringlane::Placement::Stealable,
            };
            handle.spawn_with(placement, fut).expect("spawn request")
        })
        .collect();
    env.ringlane.block_on(async move {
        let mut total = 0u64;
        for join in joins {
            total = total.wrapping_add(join.await.expect("join request"));
        }
        total
    })
}

fn tokio_fanout(env: &Env, shape: Shape) -> u64 {
    let handle = env.tokio_mt.handle();
    let iters = env.iters_per_unit;
    let joins: Vec<_> = (0..REQUESTS)
        .map(|req| {
            handle.spawn(request(move |sub| {
                tokio::spawn(async move { work::subtask(req, sub, shape, iters) })
            }))
        })
        .collect();
    env.tokio_mt.block_on(async move {
        let mut total = 0u64;
        for join in joins {
            total = total.wrapping_add(join.await.expect("join request"));
        }
        total
    })
}

// ---------------------------------------------------------------------------
// Spawn + join

/// The expected sum of one spawn+join batch.
const SPAWN_SUM: u64 = (SPAWN_TASKS * (SPAWN_TASKS - 1) / 2) as u64;

/// The driver body: `batches` times, spawn [`SPAWN_TASKS`] trivial tasks
/// with `spawn`, then join them; times itself.
async fn spawn_join<J, E>(batches: u64, spawn: impl Fn(u64) -> J) -> Duration
where
    J: Future<Output = Result<u64, E>>,
    E: std::fmt::Debug,
{
    let mut joins = Vec::with_capacity(SPAWN_TASKS);
    let start = Instant::now();
    for _ in 0..batches {
        joins.extend((0..SPAWN_TASKS as u64).map(&spawn));
        let mut sum = 0;
        for join in joins.drain(..) {
            sum += join.await.expect("join task");
        }
        assert_eq!(black_box(sum), SPAWN_SUM, "spawn_join: wrong batch result");
        progress();
    }
    start.elapsed()
}

fn ringlane_spawn_join(env: &Env, batches: u64) -> Duration {
    let driver = env
        .ringlane
        .handle()
        .spawn_pinned(
            0,
            spawn_join(batches, |i| {
                ringlane::spawn(async move { black_box(i) }).expect("spawn")
            }),
        )
        .expect("spawn driver");
    env.ringlane.block_on(driver).expect("driver")
}

fn tokio_spawn_join(env: &Env, batches: u64) -> Duration {
    let driver = env.tokio_mt.spawn(spawn_join(batches, |i| {
        tokio::spawn(async move { black_box(i) })
    }));
    env.tokio_mt.block_on(driver).expect("driver")
}
