//! The echo workload: a 256 B message echoed back at qd1 over a loopback
//! pair from `pair::tcp_pair` (`TCP_NODELAY` on both ends), a server task
//! and a client task, one sample per round trip, every echo checked.
//!
//! The compat and Tokio cases run the very same generic code
//! ([`echo_server`], [`echo_client`]: `read_exact`/`write_all` of
//! `tokio::io::{AsyncReadExt, AsyncWriteExt}` on a 256 B stack buffer);
//! only the stream type and the runtime differ. The native case is the
//! `net` suite's `ringlane_1_shard` (owned `Vec` buffers, `read` and
//! `write_all` of the completion lane).

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use ringlane::compat::TcpStream as CompatStream;
use ringlane::native::net::TcpStream as NativeStream;

use crate::pair::{MSG, Run, message, tcp_pair};
use crate::shared::runtimes::shutdown;
use crate::shared::timing::process_cpu_time;
use crate::watchdog::PROGRESS;

/// An echo case: `warm` unrecorded round trips, then `n` samples.
pub(crate) struct EchoCase {
    pub(crate) id: &'static str,
    /// The Tokio case this one is compared with (same thread count).
    pub(crate) tokio: &'static str,
    pub(crate) threads: usize,
    pub(crate) run: fn(usize, usize) -> Run,
}

pub(crate) const ECHO_CASES: &[EchoCase] = &[
    EchoCase {
        id: "compat_1_shard",
        tokio: "tokio_current_thread",
        threads: 1,
        run: |w, n| compat_echo(1, w, n),
    },
    EchoCase {
        id: "native_1_shard",
        tokio: "tokio_current_thread",
        threads: 1,
        run: native_echo,
    },
    EchoCase {
        id: "tokio_current_thread",
        tokio: "tokio_current_thread",
        threads: 1,
        run: |w, n| tokio_echo(None, w, n),
    },
    EchoCase {
        id: "compat_2_shards",
        tokio: "tokio_mt_2_workers",
        threads: 2,
        run: |w, n| compat_echo(2, w, n),
    },
    EchoCase {
        id: "tokio_mt_2_workers",
        tokio: "tokio_mt_2_workers",
        threads: 2,
        run: |w, n| tokio_echo(Some(2), w, n),
    },
];

/// Per-round-trip clock of an echo client.
struct Clock {
    warm: usize,
    samples: Vec<u64>,
    last: Instant,
    cpu0: Duration,
}

impl Clock {
    fn new(warm: usize, n: usize) -> Self {
        Self {
            warm,
            samples: Vec::with_capacity(n),
            last: Instant::now(),
            cpu0: process_cpu_time(),
        }
    }

    /// Ends round trip `i`.
    fn tick(&mut self, i: usize) {
        let now = Instant::now();
        if i + 1 == self.warm {
            self.cpu0 = process_cpu_time();
        } else if i + 1 > self.warm {
            self.samples.push((now - self.last).as_nanos() as u64);
        }
        self.last = now;
        PROGRESS.set(i as u64);
    }

    fn finish(self) -> Run {
        let cpu = process_cpu_time() - self.cpu0;
        let wall = Duration::from_nanos(self.samples.iter().sum());
        Run {
            samples: self.samples,
            wall,
            cpu,
        }
    }
}

/// Echoes 256 B messages until the peer closes.
async fn echo_server<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut buf = [0u8; MSG];
    while s.read_exact(&mut buf).await.is_ok() {
        s.write_all(&buf).await.expect("server write");
    }
}

/// Sends `warm + n` messages one at a time, checks each echo, and closes.
async fn echo_client<S: AsyncRead + AsyncWrite + Unpin>(mut c: S, warm: usize, n: usize) -> Run {
    let mut clock = Clock::new(warm, n);
    let mut buf = [0u8; MSG];
    for i in 0..warm + n {
        let msg = message(i);
        c.write_all(&msg).await.expect("client write");
        c.read_exact(&mut buf).await.expect("client read");
        assert_eq!(buf, msg, "echo {i} corrupted");
        clock.tick(i);
    }
    clock.finish()
}

/// Compat streams; server on shard 0, client on the last shard.
fn compat_echo(shards: usize, warm: usize, n: usize) -> Run {
    let rt = ringlane::Runtime::builder()
        .shards(shards)
        .build()
        .expect("ringlane runtime");
    let h = rt.handle();
    let (client, server) = tcp_pair();
    let server = h
        .spawn_pinned(0, async move {
            echo_server(CompatStream::from_std(server).expect("compat server")).await
        })
        .unwrap();
    let client = h
        .spawn_pinned(shards - 1, async move {
            echo_client(
                CompatStream::from_std(client).expect("compat client"),
                warm,
                n,
            )
            .await
        })
        .unwrap();
    let run = rt.block_on(client).unwrap();
    rt.block_on(server).unwrap();
    shutdown(rt, "ringlane");
    run
}

/// Tokio streams on a current-thread runtime (`None`) or a multi-thread one
/// with that many workers; Tokio's scheduler places the two tasks.
fn tokio_echo(workers: Option<usize>, warm: usize, n: usize) -> Run {
    let mut b = match workers {
        Some(w) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(w);
            b
        }
        None => tokio::runtime::Builder::new_current_thread(),
    };
    let rt = b.enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let (client, server) = tcp_pair();
        for s in [&client, &server] {
            s.set_nonblocking(true).unwrap();
        }
        let server = tokio::net::TcpStream::from_std(server).unwrap();
        let client = tokio::net::TcpStream::from_std(client).unwrap();
        let srv = tokio::spawn(echo_server(server));
        let cli = tokio::spawn(echo_client(client, warm, n));
        let run = cli.await.unwrap();
        srv.await.unwrap();
        run
    })
}

/// The native lane on one shard, as the `net` suite's `ringlane_1_shard`.
fn native_echo(warm: usize, n: usize) -> Run {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .build()
        .expect("ringlane runtime");
    let h = rt.handle();
    let (client, server) = tcp_pair();
    let server = h
        .spawn_pinned(0, async move {
            let s = NativeStream::from_std(server);
            let mut buf = Vec::with_capacity(MSG);
            loop {
                buf.clear();
                let (r, b) = read_msg(&s, buf).await;
                if !r.expect("server read") {
                    return;
                }
                let (r, b) = s.write_all(b).await;
                r.expect("server write");
                buf = b;
            }
        })
        .unwrap();
    let client = h
        .spawn_pinned(0, async move {
            let c = NativeStream::from_std(client);
            let mut clock = Clock::new(warm, n);
            let (mut out, mut back) = (Vec::with_capacity(MSG), Vec::with_capacity(MSG));
            for i in 0..warm + n {
                out.clear();
                out.extend_from_slice(&message(i));
                let (r, o) = c.write_all(out).await;
                r.expect("client write");
                out = o;
                back.clear();
                let (r, b) = read_msg(&c, back).await;
                assert!(r.expect("client read"), "server closed");
                assert_eq!(b[..], out[..], "echo {i} corrupted");
                back = b;
                clock.tick(i);
            }
            clock.finish()
        })
        .unwrap();
    let run = rt.block_on(client).unwrap();
    rt.block_on(server).unwrap();
    shutdown(rt, "ringlane");
    run
}

/// Reads one message into `buf` (empty, capacity `MSG`); `false` on EOF at
/// a message start. A partial read is completed through a second buffer.
async fn read_msg(s: &NativeStream, buf: Vec<u8>) -> (std::io::Result<bool>, Vec<u8>) {
    let (r, mut buf) = s.read(buf).await;
    match r {
        Ok(0) => return (Ok(false), buf),
        Ok(n) => buf.truncate(n),
        Err(e) => return (Err(e), buf),
    }
    while buf.len() < MSG {
        let (r, rest) = s.read(Vec::with_capacity(MSG - buf.len())).await;
        match r {
            Ok(0) => return (Err(std::io::ErrorKind::UnexpectedEof.into()), buf),
            Ok(_) => buf.extend_from_slice(&rest),
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(true), buf)
}
