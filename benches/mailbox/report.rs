//! Summary mode's measurements and markdown tables: the round-trip table
//! (p50/p99, CPU per round trip, ratios to the floors) and the throughput
//! table (median rate and CPU per message, ratio to the raw floor).

use crate::cases::{
    Env, RTT_ATOMIC_FLOOR, RTT_CASES, RTT_PARKED_FLOOR, RttCase, TPUT_CASES, TPUT_FLOOR,
};
use crate::measure::{Doorbells, RttRun};
use crate::shared::timing::{median, percentile, round_p50, spread_us, us};
use crate::watchdog::watch;
use crate::{BATCHES, SUMMARY_MSGS, SUMMARY_ROUNDS, SUMMARY_RTT, SUMMARY_RTT_PARKED};

pub(crate) fn summary_rtt(env: &Env) {
    let rounds_of = |case: &RttCase| {
        let total = if case.parked {
            SUMMARY_RTT_PARKED
        } else {
            SUMMARY_RTT
        };
        total / SUMMARY_ROUNDS
    };
    let mut runs: Vec<RttRun> = RTT_CASES.iter().map(|_| RttRun::default()).collect();
    // Each round's own p50, so that a case whose rounds disagree (a
    // placement- or mode-dependent figure) shows it.
    let mut round_p50s: Vec<Vec<u64>> = RTT_CASES.iter().map(|_| Vec::new()).collect();
    for _ in 0..SUMMARY_ROUNDS {
        for ((case, acc), p50s) in RTT_CASES.iter().zip(&mut runs).zip(&mut round_p50s) {
            let n = rounds_of(case);
            let _watch = watch(case.id);
            let run = (case.run)(env, (n / 10).max(1), n);
            p50s.push(round_p50(&run.samples));
            acc.samples.extend_from_slice(&run.samples);
            acc.cpu += run.cpu;
            acc.cross += run.cross;
            if let Some(d) = run.doorbells {
                acc.doorbells.get_or_insert_with(Doorbells::default).add(d);
            }
        }
    }
    for run in &mut runs {
        run.samples.sort_unstable();
    }
    let p50_of = |id: &str| {
        let k = RTT_CASES
            .iter()
            .position(|c| c.id == id)
            .expect("floor case");
        percentile(&runs[k].samples, 50.0) as f64
    };
    let (parked_floor, atomic_floor) = (p50_of(RTT_PARKED_FLOOR), p50_of(RTT_ATOMIC_FLOOR));
    println!("### Round trip, 2 threads / shards (one u64 each way)");
    println!();
    println!(
        "| case | round trips | p50 µs | p50 per round µs (min–max) | p99 µs | mean µs | CPU µs per round trip | \
         p50 / raw MSG_RING parked | p50 / atomic floor | notes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for ((case, run), p50s) in RTT_CASES.iter().zip(&runs).zip(&round_p50s) {
        let n = run.samples.len() as u64;
        let p50 = percentile(&run.samples, 50.0) as f64;
        let p99 = percentile(&run.samples, 99.0) as f64;
        let mean = run.wall().as_nanos() as f64 / n as f64;
        let cpu = run.cpu.as_nanos() as f64 / n as f64;
        let note = match (&run.doorbells, case.id) {
            (Some(d), _) => d.describe(n, "round trip"),
            (None, "tokio_mt_mpsc" | "tokio_mt_oneshot") => format!(
                "{:.1}% of round trips crossed workers",
                100.0 * run.cross as f64 / n as f64
            ),
            _ => String::new(),
        };
        println!(
            "| {} `{}` | {n} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {note} |",
            case.label,
            case.id,
            us(p50),
            spread_us(p50s),
            us(p99),
            us(mean),
            us(cpu),
            p50 / parked_floor,
            p50 / atomic_floor,
        );
    }
    println!();
}

pub(crate) fn summary_throughput(env: &Env) {
    let msgs = SUMMARY_MSGS / SUMMARY_ROUNDS as u64;
    let cells = TPUT_CASES.len() * BATCHES.len();
    let mut rate = vec![Vec::with_capacity(SUMMARY_ROUNDS); cells];
    let mut cpu = vec![Vec::with_capacity(SUMMARY_ROUNDS); cells];
    let mut doorbells: Vec<Option<Doorbells>> = vec![None; cells];
    let mut misordered = vec![0u64; cells];
    for _ in 0..SUMMARY_ROUNDS {
        for (c, case) in TPUT_CASES.iter().enumerate() {
            for (b, &batch) in BATCHES.iter().enumerate() {
                let k = c * BATCHES.len() + b;
                let _watch = watch(&format!("{}/batch_{batch}", case.id));
                let run = (case.run)(env, batch, msgs);
                rate[k].push(msgs as f64 / run.wall.as_secs_f64());
                cpu[k].push(run.cpu.as_nanos() as f64 / msgs as f64);
                if let Some(d) = run.doorbells {
                    doorbells[k].get_or_insert_with(Doorbells::default).add(d);
                }
                misordered[k] += run.misordered;
            }
        }
    }
    let rate: Vec<f64> = rate.iter_mut().map(|v| median(v)).collect();
    let cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
    let floor = TPUT_CASES
        .iter()
        .position(|c| c.id == TPUT_FLOOR)
        .expect("floor case");
    println!("### One-way throughput, shard 0 → shard 1 (thread → thread for raw MSG_RING)");
    println!();
    println!(
        "| case | batch | M msg/s | CPU ns per msg | ratio vs raw MSG_RING (default ring), same batch | notes |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for (c, case) in TPUT_CASES.iter().enumerate() {
        for (b, &batch) in BATCHES.iter().enumerate() {
            let k = c * BATCHES.len() + b;
            let mut note = doorbells[k]
                .map(|d| d.describe(msgs * SUMMARY_ROUNDS as u64 / 1000, "1000 msgs"))
                .unwrap_or_default();
            if misordered[k] > 0 {
                note = format!("{} messages arrived out of order", misordered[k]);
            }
            println!(
                "| {} `{}` | {batch} | {:.2} | {:.0} | {:.2} | {note} |",
                case.label,
                case.id,
                rate[k] / 1e6,
                cpu[k],
                rate[k] / rate[floor * BATCHES.len() + b],
            );
        }
    }
    println!();
}
