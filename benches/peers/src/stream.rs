//! net stream: TCP loopback, 4 KiB writes, one write in flight (window 1),
//! sender and receiver on one thread. The raw io_uring floor, ringlane on
//! one shard, monoio and compio. The receiver counts every byte and checks
//! the pattern of every chunk.

use std::os::fd::AsRawFd;

use io_uring::{opcode, types};

use crate::floor_ring::FloorRing;
use crate::net::tcp_pair;
use crate::stats::timed;

/// Bytes per write.
pub(crate) const CHUNK: usize = 4096;
/// Bytes the receiver asks for per read.
const READ: usize = 64 * 1024;

/// One run of a stream case: wall and process CPU time over the whole
/// transfer.
pub(crate) type StreamRun = crate::stats::Timed;

/// A stream case: moves `total` bytes.
pub(crate) struct StreamCase {
    pub(crate) id: &'static str,
    pub(crate) what: &'static str,
    pub(crate) run: fn(usize) -> StreamRun,
}

/// Every case moves whole chunks.
pub(crate) fn check_total(total: usize) {
    assert!(
        total > 0 && total.is_multiple_of(CHUNK),
        "a stream moves whole {CHUNK} B chunks"
    );
}

pub(crate) const STREAM_CASES: &[StreamCase] = &[
    StreamCase {
        id: "raw_uring",
        what: "bare `io-uring` ring drives both ends: one SEND and one RECV in flight (floor)",
        run: raw_uring_stream,
    },
    StreamCase {
        id: "ringlane",
        what: "1 shard: sender (`write_all`) and receiver (`read`) tasks pinned on shard 0",
        run: ringlane_stream,
    },
    StreamCase {
        id: "monoio",
        what: "io_uring driver: sender (`write_all`) and receiver (`read`) tasks on its one thread",
        run: monoio_stream,
    },
    StreamCase {
        id: "compio",
        what: "io_uring driver: sender (`write_all`) and receiver (`read`) tasks on its one thread",
        run: compio_stream,
    },
];

/// The stream's bytes repeat with this period: not a divisor of
/// [`CHUNK`], so a lost, repeated or reordered chunk shifts what follows
/// and fails the check.
const PERIOD: usize = 4093;

/// `PERIOD + READ` bytes of the stream's repeating pattern (pseudo-random),
/// so any window of up to `READ` bytes is one slice of it.
fn pattern() -> &'static [u8] {
    static PATTERN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut x: u32 = 0x9e37_79b9;
        let first: Vec<u8> = (0..PERIOD)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        (0..PERIOD + READ).map(|i| first[i % PERIOD]).collect()
    })
}

/// The sender's chunk number `i` (a copy, as an application's data would be).
fn chunk(i: usize, buf: &mut Vec<u8>) {
    let at = (i * CHUNK) % PERIOD;
    buf.clear();
    buf.extend_from_slice(&pattern()[at..at + CHUNK]);
}

/// Receiver side: counts and checks the bytes of one read.
struct Checker {
    got: usize,
}

impl Checker {
    fn take(&mut self, bytes: &[u8], case: &str) {
        assert!(!bytes.is_empty(), "{case}: stream ended early");
        let at = self.got % PERIOD;
        assert!(
            bytes == &pattern()[at..at + bytes.len()],
            "{case}: bytes {}..{} corrupted",
            self.got,
            self.got + bytes.len()
        );
        self.got += bytes.len();
    }
}

const SEND: u64 = 1;
const RECV: u64 = 2;

/// The floor: one ring set up like ringlane's (`floor_ring`), the bench
/// thread. A SEND of the current chunk (the rest of it after a short send)
/// and a RECV are always in flight until the stream is done.
fn raw_uring_stream(total: usize) -> StreamRun {
    let (client, server) = tcp_pair();
    let (c, s) = (types::Fd(client.as_raw_fd()), types::Fd(server.as_raw_fd()));
    // Declared before the ring, so they outlive it even on a panic.
    let (mut out, mut buf) = (Vec::with_capacity(CHUNK), vec![0u8; READ]);
    let mut ring = FloorRing::like_ringlane(64, None);
    let send = |out: &[u8]| {
        opcode::Send::new(c, out.as_ptr(), out.len() as u32)
            .build()
            .user_data(SEND)
    };
    let recv = |buf: &mut [u8]| {
        opcode::Recv::new(s, buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(RECV)
    };
    let push = |ring: &mut FloorRing, sqe| {
        // SAFETY: `out` and `buf` stay in place until their SQE's CQE
        // (each is re-pushed only after its CQE).
        unsafe { ring.submission().push(&sqe) }.expect("SQ room");
    };
    timed(|| {
        let mut check = Checker { got: 0 };
        let (mut next, mut at) = (0, 0); // chunk being sent, bytes of it sent
        chunk(next, &mut out);
        push(&mut ring, send(&out));
        push(&mut ring, recv(&mut buf));
        let mut sending = true;
        let mut cqes: Vec<(u64, i32)> = Vec::with_capacity(4);
        while check.got < total || sending {
            ring.enter(1);
            cqes.clear();
            cqes.extend(ring.completion().map(|e| (e.user_data(), e.result())));
            let mut repost_recv = false;
            for &(tag, res) in &cqes {
                assert!(res >= 0, "raw_uring stream: op {tag} failed: {res}");
                if tag == SEND {
                    at += res as usize;
                    if at == CHUNK {
                        (next, at) = (next + 1, 0);
                        if next * CHUNK >= total {
                            sending = false;
                            continue;
                        }
                        chunk(next, &mut out);
                    }
                    push(&mut ring, send(&out[at..]));
                } else {
                    check.take(&buf[..res as usize], "raw_uring");
                    repost_recv = check.got < total;
                }
            }
            // After the batch's SEND, as ringlane issues receives.
            if repost_recv {
                push(&mut ring, recv(&mut buf));
            }
        }
    })
}

fn ringlane_stream(total: usize) -> StreamRun {
    use ringlane::native::net::TcpStream;
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .build()
        .expect("ringlane runtime");
    let h = rt.handle();
    let (client, server) = tcp_pair();
    let run = timed(|| {
        let sender = h
            .spawn_pinned(0, async move {
                let c = TcpStream::from_std(client);
                let mut out = Vec::with_capacity(CHUNK);
                for i in 0..total / CHUNK {
                    chunk(i, &mut out);
                    let (r, o) = c.write_all(out).await;
                    r.expect("ringlane send");
                    out = o;
                }
            })
            .expect("spawn sender");
        let receiver = h
            .spawn_pinned(0, async move {
                let s = TcpStream::from_std(server);
                let (mut check, mut buf) = (Checker { got: 0 }, Vec::with_capacity(READ));
                while check.got < total {
                    buf.clear();
                    let (r, b) = s.read(buf).await;
                    let n = r.expect("ringlane recv");
                    check.take(&b[..n], "ringlane");
                    buf = b;
                }
            })
            .expect("spawn receiver");
        rt.block_on(receiver).expect("receiver task");
        rt.block_on(sender).expect("sender task");
    });
    crate::shutdown(rt);
    run
}

fn monoio_stream(total: usize) -> StreamRun {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio io_uring runtime");
    let (client, server) = tcp_pair();
    timed(|| {
        rt.block_on(async move {
            let mut c = monoio::net::TcpStream::from_std(client).expect("monoio client stream");
            let mut s = monoio::net::TcpStream::from_std(server).expect("monoio server stream");
            let sender = monoio::spawn(async move {
                let mut out = Vec::with_capacity(CHUNK);
                for i in 0..total / CHUNK {
                    chunk(i, &mut out);
                    let (r, o) = c.write_all(out).await;
                    r.expect("monoio send");
                    out = o;
                }
            });
            let (mut check, mut buf) = (Checker { got: 0 }, Vec::with_capacity(READ));
            while check.got < total {
                buf.clear();
                let (r, b) = s.read(buf).await;
                let n = r.expect("monoio recv");
                check.take(&b[..n], "monoio");
                buf = b;
            }
            sender.await;
        })
    })
}

fn compio_stream(total: usize) -> StreamRun {
    use compio::io::{AsyncRead, AsyncWriteExt};
    let rt = compio::runtime::Runtime::new().expect("compio runtime");
    let (client, server) = tcp_pair();
    timed(|| {
        rt.block_on(async move {
            let mut c = compio::net::TcpStream::from_std(client).expect("compio client stream");
            let mut s = compio::net::TcpStream::from_std(server).expect("compio server stream");
            let sender = compio::runtime::spawn(async move {
                let mut out = Vec::with_capacity(CHUNK);
                for i in 0..total / CHUNK {
                    chunk(i, &mut out);
                    let compio::BufResult(r, o) = c.write_all(out).await;
                    r.expect("compio send");
                    out = o;
                }
            });
            let (mut check, mut buf) = (Checker { got: 0 }, Vec::with_capacity(READ));
            while check.got < total {
                buf.clear();
                let compio::BufResult(r, b) = s.read(buf).await;
                let n = r.expect("compio recv");
                check.take(&b[..n], "compio");
                buf = b;
            }
            sender.await.expect("compio sender task");
        })
    })
}

/// Prints the stream table: throughput (median of the rounds, and their
/// spread), CPU per MiB over all rounds, and ratios to the floor and to
/// ringlane.
pub(crate) fn print_stream_table(total: usize, outcomes: &[(&StreamCase, Vec<StreamRun>)]) {
    let mib = total as f64 / (1 << 20) as f64;
    let rates = |runs: &[StreamRun]| {
        let mut v: Vec<f64> = runs.iter().map(|r| mib / r.wall.as_secs_f64()).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let median = |v: &[f64]| v[v.len() / 2];
    let rate_of = |id: &str| {
        let (_, runs) = outcomes.iter().find(|(c, _)| c.id == id).expect("case ran");
        median(&rates(runs))
    };
    let (floor, ringlane) = (rate_of("raw_uring"), rate_of("ringlane"));
    println!(
        "### net stream: TCP loopback, 4 KiB writes, one write in flight, sender and receiver on one thread"
    );
    println!();
    println!(
        "| case | what | MiB/s (median) | per round MiB/s (min–max) | CPU µs per MiB | rate / raw_uring | rate / ringlane |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (case, runs) in outcomes {
        let r = rates(runs);
        let cpu: f64 =
            runs.iter().map(|x| x.cpu.as_secs_f64()).sum::<f64>() * 1e6 / (mib * runs.len() as f64);
        println!(
            "| `{}` | {} | {:.0} | {:.0}–{:.0} | {:.0} | {:.2} | {:.2} |",
            case.id,
            case.what,
            median(&r),
            r[0],
            r[r.len() - 1],
            cpu,
            median(&r) / floor,
            median(&r) / ringlane,
        );
    }
    println!();
}
