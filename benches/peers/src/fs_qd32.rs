//! fs qd32: the same 4 KiB reads of the page-cached file, 32 in flight on
//! one thread: the raw io_uring floor (32 READs in flight, refilled as
//! they complete) and 32 tasks of each runtime, each reading one block at
//! a time from its own sequence of offsets, every block checked.
//! Throughput: the measured span over the reads of a round.

use std::os::fd::AsRawFd;
use std::rc::Rc;

use io_uring::{opcode, types};
use ringlane::native::AlignedBuf;

use crate::BLOCK;
use crate::buf::PageBuf;
use crate::fs::{Offsets, TestFile, check_read};
use crate::stats::{Span, timed};

/// Reads in flight (tasks per runtime).
pub(crate) const QD: usize = 32;

/// One round of a qd32 case: wall and process CPU time over its reads.
pub(crate) type QdRun = crate::stats::Timed;

/// A qd32 case: `reads` reads in all, `reads / QD` per stream.
pub(crate) struct QdCase {
    pub(crate) id: &'static str,
    pub(crate) what: &'static str,
    pub(crate) run: fn(&TestFile, usize) -> QdRun,
}

pub(crate) const QD32_CASES: &[QdCase] = &[
    QdCase {
        id: "raw_uring",
        what: "bare `io-uring` ring set up like ringlane's, 32 READs in flight, enter(1) and refill (floor)",
        run: raw_uring,
    },
    QdCase {
        id: "ringlane",
        what: "32 `spawn_local` tasks on 1 shard, `File::read_at`",
        run: ringlane_qd32,
    },
    QdCase {
        id: "monoio",
        what: "32 `monoio::spawn` tasks, `File::read_at`, io_uring driver",
        run: monoio_qd32,
    },
    QdCase {
        id: "compio",
        what: "32 `compio::runtime::spawn` tasks, `File::read_at`",
        run: compio_qd32,
    },
    QdCase {
        id: "glommio",
        what: "32 `glommio::spawn_local` tasks, `BufferedFile::read_at` (glommio allocates each read's buffer)",
        run: glommio_qd32,
    },
];

/// The floor: 32 reads in flight, each stream's next read pushed as soon
/// as its CQE is reaped; one enter per batch.
fn raw_uring(file: &TestFile, reads: usize) -> QdRun {
    // Declared before the ring, so that the ring is closed first.
    let mut bufs: Vec<PageBuf> = (0..QD).map(|_| PageBuf::new()).collect();
    let mut ring = crate::floor_ring::FloorRing::like_ringlane(2 * QD as u32, None);
    let fd = types::Fd(file.std.as_raw_fd());
    let mut offsets: Vec<Offsets> = (0..QD).map(Offsets::for_stream).collect();
    let mut left = vec![reads / QD; QD];
    let mut push = |ring: &mut crate::floor_ring::FloorRing, t: usize, bufs: &mut [PageBuf]| {
        let (block, at) = offsets[t].next_block();
        let sqe = opcode::Read::new(fd, bufs[t].as_mut_ptr(), BLOCK as u32)
            .offset(at)
            .build()
            .user_data(t as u64);
        // SAFETY: each buffer has one read in flight at most, and outlives
        // the ring (declared first); the fd stays open in `file`.
        unsafe { ring.submission().push(&sqe) }.expect("SQ full");
        block
    };
    let mut in_flight = [0u64; QD];
    timed(|| {
        let mut pending = 0;
        for t in 0..QD {
            if left[t] > 0 {
                in_flight[t] = push(&mut ring, t, &mut bufs);
                left[t] -= 1;
                pending += 1;
            }
        }
        let mut done = Vec::with_capacity(2 * QD);
        while pending > 0 {
            ring.enter(1);
            done.extend(
                ring.completion()
                    .map(|c| (c.user_data() as usize, c.result())),
            );
            for (t, res) in done.drain(..) {
                pending -= 1;
                let res = if res < 0 {
                    Err(std::io::Error::from_raw_os_error(-res))
                } else {
                    Ok(res as usize)
                };
                check_read(res, bufs[t].whole(), in_flight[t], "raw_uring qd32");
                if left[t] > 0 {
                    in_flight[t] = push(&mut ring, t, &mut bufs);
                    left[t] -= 1;
                    pending += 1;
                }
            }
        }
    })
}

fn ringlane_qd32(file: &TestFile, reads: usize) -> QdRun {
    let (rt, f) = crate::fs::one_shard_with(file);
    let driver = rt
        .handle()
        .spawn_pinned(0, async move {
            let span = Span::start();
            let tasks: Vec<_> = (0..QD)
                .map(|t| {
                    let f = f.clone();
                    ringlane::spawn_local(async move {
                        let mut offsets = Offsets::for_stream(t);
                        let mut buf = AlignedBuf::with_capacity(BLOCK, 4096);
                        for _ in 0..reads / QD {
                            let (block, at) = offsets.next_block();
                            let (res, b) = f.read_at(buf, at).await;
                            check_read(res, &b, block, "ringlane qd32");
                            buf = b;
                        }
                    })
                    .expect("spawn a reader")
                })
                .collect();
            for t in tasks {
                t.await.expect("a reader");
            }
            span.end()
        })
        .expect("spawn driver");
    let run = rt.block_on(driver).expect("driver task");
    crate::shutdown(rt);
    run
}

fn monoio_qd32(file: &TestFile, reads: usize) -> QdRun {
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio io_uring runtime");
    let std = file.std.try_clone().expect("dup");
    rt.block_on(async move {
        let f = Rc::new(monoio::fs::File::from_std(std).expect("monoio file"));
        let span = Span::start();
        let tasks: Vec<_> = (0..QD)
            .map(|t| {
                let f = f.clone();
                monoio::spawn(async move {
                    let mut offsets = Offsets::for_stream(t);
                    let mut buf = PageBuf::new();
                    for _ in 0..reads / QD {
                        let (block, at) = offsets.next_block();
                        buf.clear();
                        let (res, b) = f.read_at(buf, at).await;
                        check_read(res, &b, block, "monoio qd32");
                        buf = b;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let run = span.end();
        if let Ok(f) = Rc::try_unwrap(f) {
            f.close().await.expect("monoio close");
        }
        run
    })
}

fn compio_qd32(file: &TestFile, reads: usize) -> QdRun {
    use compio::io::AsyncReadAt;
    let rt = compio::runtime::Runtime::new().expect("compio runtime");
    let path = file.path.clone();
    rt.block_on(async move {
        let f = Rc::new(compio::fs::File::open(&path).await.expect("compio open"));
        let span = Span::start();
        let tasks: Vec<_> = (0..QD)
            .map(|t| {
                let f = f.clone();
                compio::runtime::spawn(async move {
                    let mut offsets = Offsets::for_stream(t);
                    let mut buf = PageBuf::new();
                    for _ in 0..reads / QD {
                        let (block, at) = offsets.next_block();
                        buf.clear();
                        let compio::BufResult(res, b) = f.read_at(buf, at).await;
                        check_read(res, &b, block, "compio qd32");
                        buf = b;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("a compio reader");
        }
        let run = span.end();
        if let Ok(f) = Rc::try_unwrap(f) {
            f.close().await.expect("compio close");
        }
        run
    })
}

fn glommio_qd32(file: &TestFile, reads: usize) -> QdRun {
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor");
    let path = file.path.clone();
    ex.run(async move {
        let f = Rc::new(
            glommio::io::BufferedFile::open(&path)
                .await
                .expect("glommio open"),
        );
        let span = Span::start();
        let tasks: Vec<_> = (0..QD)
            .map(|t| {
                let f = f.clone();
                glommio::spawn_local(async move {
                    let mut offsets = Offsets::for_stream(t);
                    for _ in 0..reads / QD {
                        let (block, at) = offsets.next_block();
                        match f.read_at(at, BLOCK).await {
                            Ok(r) => check_read(Ok(r.len()), &r, block, "glommio qd32"),
                            Err(e) => panic!("glommio qd32: read at block {block} failed: {e}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let run = span.end();
        if let Ok(f) = Rc::try_unwrap(f) {
            f.close().await.expect("glommio close");
        }
        run
    })
}

/// Prints the qd32 table: time per read (median of the rounds, and their
/// spread), CPU per read, ratio to the floor.
pub(crate) fn print_qd32_table(reads: usize, outcomes: &[(&QdCase, Vec<QdRun>)]) {
    let per_read = |runs: &[QdRun]| {
        let mut v: Vec<f64> = runs
            .iter()
            .map(|r| r.wall.as_secs_f64() * 1e6 / reads as f64)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let median = |v: &[f64]| v[v.len() / 2];
    let (_, floor_runs) = outcomes
        .iter()
        .find(|(c, _)| c.id == "raw_uring")
        .expect("the floor ran");
    let floor = median(&per_read(floor_runs));
    println!(
        "### fs qd32: 4 KiB random reads of the page-cached 64 MiB file, 32 in flight on one thread"
    );
    println!();
    println!(
        "| case | what | µs per read (median) | per round µs (min–max) | CPU µs per read | time / raw_uring |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for (case, runs) in outcomes {
        let r = per_read(runs);
        let cpu = runs.iter().map(|x| x.cpu.as_secs_f64()).sum::<f64>() * 1e6
            / (reads * runs.len()) as f64;
        println!(
            "| `{}` | {} | {:.3} | {:.3}–{:.3} | {:.3} | {:.2} |",
            case.id,
            case.what,
            median(&r),
            r[0],
            r[r.len() - 1],
            cpu,
            median(&r) / floor,
        );
    }
    println!();
}
