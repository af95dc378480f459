//! Summary mode: every case for a fixed number of batches per round, rounds
//! interleaved across cases so that a noisy moment hits them alike, and the
//! markdown tables (median of the rounds per batch, ratios to Tokio, and
//! ringlane's scheduling counters over the whole run).

use std::time::Instant;

use crate::cases::{CASES, Env, Runner, Workload, baseline};
use crate::measure::Steals;
use crate::shared::timing::{median, wall_and_cpu};
use crate::watchdog::watch;
use crate::work::{self, Shape};
use crate::{HEAVY_FACTOR, REQUESTS, SPAWN_TASKS, SUBTASKS, SUMMARY_ROUNDS, THREADS};

/// Per case: median wall and CPU nanoseconds per batch, and the counters.
struct Results {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    steals: Vec<Steals>,
    batches: Vec<u64>,
}

fn measure(env: &Env) -> Results {
    let handle = env.ringlane.handle();
    for case in CASES {
        let _watch = watch(case.id);
        case.run(env, 1); // warm-up
    }
    let mut wall = vec![Vec::with_capacity(SUMMARY_ROUNDS); CASES.len()];
    let mut cpu = vec![Vec::with_capacity(SUMMARY_ROUNDS); CASES.len()];
    let mut steals = vec![Steals::default(); CASES.len()];
    let mut batches = vec![0; CASES.len()];
    for _ in 0..SUMMARY_ROUNDS {
        for (k, case) in CASES.iter().enumerate() {
            let _watch = watch(case.id);
            let s0 = Steals::of(&handle);
            let (wall_time, cpu_time) = wall_and_cpu(|| {
                case.run(env, case.batches);
            });
            steals[k].add(Steals::of(&handle).since(s0));
            batches[k] += case.batches;
            wall[k].push(wall_time.as_nanos() as f64 / case.batches as f64);
            cpu[k].push(cpu_time.as_nanos() as f64 / case.batches as f64);
        }
    }
    Results {
        wall: wall.iter_mut().map(|v| median(v)).collect(),
        cpu: cpu.iter_mut().map(|v| median(v)).collect(),
        steals,
        batches,
    }
}

pub(crate) fn summary(env: &Env) {
    let started = Instant::now();
    let r = measure(env);
    let counters = |k: usize| {
        if CASES[k].runner == Runner::TokioMt {
            String::new()
        } else {
            r.steals[k].describe(r.batches[k])
        }
    };

    println!("### Fan-out: {REQUESTS} requests x {SUBTASKS} subtasks per batch");
    println!();
    println!(
        "| case | wall ms/batch | CPU ms/batch | wall / tokio_mt | CPU / tokio_mt | \
         ringlane counters over the run |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for (k, case) in CASES.iter().enumerate() {
        let Workload::Fanout(_) = case.workload else {
            continue;
        };
        let b = baseline(case.workload);
        println!(
            "| `{}` {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            case.id,
            case.label,
            r.wall[k] / 1e6,
            r.cpu[k] / 1e6,
            r.wall[k] / r.wall[b],
            r.cpu[k] / r.cpu[b],
            counters(k),
        );
    }
    println!();

    println!("### Spawn + join of {SPAWN_TASKS} trivial stealable tasks from inside a task");
    println!();
    println!(
        "| case | M tasks/s | wall ns/task | CPU ns/task | wall / tokio_mt | CPU / tokio_mt | \
         ringlane counters over the run |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    let per_task = SPAWN_TASKS as f64;
    for (k, case) in CASES.iter().enumerate() {
        if case.workload != Workload::SpawnJoin {
            continue;
        }
        let b = baseline(case.workload);
        println!(
            "| `{}` {} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
            case.id,
            case.label,
            per_task / r.wall[k] * 1e3,
            r.wall[k] / per_task,
            r.cpu[k] / per_task,
            r.wall[k] / r.wall[b],
            r.cpu[k] / r.cpu[b],
            counters(k),
        );
    }
    println!();

    let unit = work::unit_time(env.iters_per_unit);
    let work_ms = |shape: Shape| shape.batch_units() as f64 * unit.as_secs_f64() * 1e3;
    let per_round = |w: Workload| {
        CASES
            .iter()
            .find(|c| c.workload == w)
            .map_or(0, |c| c.batches)
    };
    println!(
        "{THREADS} ringlane shards / {THREADS} tokio workers; requests spawned from the bench \
         thread, which then waits in `block_on`. Subtask work: {} hash rounds per unit, one unit \
         measured at {:.2} µs (median, bench thread); skewed: subtask `r % {SUBTASKS}` of \
         request r does {HEAVY_FACTOR} units (uneven: only in even requests, so pinning requests \
         `r % 2` loads one shard). Pure work per batch: balanced {:.2} ms, skewed {:.2} ms, uneven \
         {:.2} ms of CPU (ideal wall on {THREADS} threads: half that). {SUMMARY_ROUNDS} rounds \
         interleaved across cases (batches per round: balanced {}, skewed {}, spawn_join {}), after one warm-up batch each; \
         median of the rounds. CPU = user+sys (getrusage, plus running threads' time since their last tick) of every thread in the \
         process. Counters: ringlane ShardStats (polls shard 0 + shard 1; the rest summed over both shards), deltas around each \
         round, averaged per batch. Summary pass: {:.1} s.",
        env.iters_per_unit,
        unit.as_nanos() as f64 / 1e3,
        work_ms(Shape::Balanced),
        work_ms(Shape::Skewed),
        work_ms(Shape::Uneven),
        per_round(Workload::Fanout(Shape::Balanced)),
        per_round(Workload::Fanout(Shape::Skewed)),
        per_round(Workload::SpawnJoin),
        started.elapsed().as_secs_f64()
    );
}
