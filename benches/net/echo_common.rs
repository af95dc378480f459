//! The echo pieces the `net` and `compat` suites share (each includes this
//! file with `#[path]`): the per-round-trip clock of an echo client, and
//! the native-lane echo on ringlane shards (server on shard 0, client on
//! the last shard).

use std::time::{Duration, Instant};

use ringlane::native::net::TcpStream as RingStream;

use crate::pair::{MSG, Run, message, tcp_pair};
use crate::shared::runtimes::shutdown;
use crate::shared::timing::process_cpu_time;
use crate::watchdog::PROGRESS;

/// Per-round-trip clock of an echo client.
pub(crate) struct Clock {
    warm: usize,
    samples: Vec<u64>,
    last: Instant,
    cpu0: Duration,
}

impl Clock {
    pub(crate) fn new(warm: usize, n: usize) -> Self {
        Self {
            warm,
            samples: Vec::with_capacity(n),
            last: Instant::now(),
            cpu0: process_cpu_time(),
        }
    }

    /// Ends round trip `i`.
    pub(crate) fn tick(&mut self, i: usize) {
        let now = Instant::now();
        if i + 1 == self.warm {
            self.cpu0 = process_cpu_time();
        } else if i + 1 > self.warm {
            self.samples.push((now - self.last).as_nanos() as u64);
        }
        self.last = now;
        PROGRESS.set(i as u64);
    }

    pub(crate) fn finish(self) -> Run {
        let cpu = process_cpu_time() - self.cpu0;
        let wall = Duration::from_nanos(self.samples.iter().sum());
        Run {
            samples: self.samples,
            wall,
            cpu,
        }
    }
}

/// The native lane's echo: 256 B round trips over `ringlane::native::net`.
pub(crate) fn ringlane_echo(shards: usize, warm: usize, n: usize) -> Run {
    let rt = ringlane::Runtime::builder()
        .shards(shards)
        .build()
        .expect("ringlane runtime");
    let h = rt.handle();
    let (client, server) = tcp_pair();
    let server = h
        .spawn_pinned(0, async move {
            let s = RingStream::from_std(server);
            let mut buf = Vec::with_capacity(MSG);
            loop {
                buf.clear();
                let (r, b) = read_msg(&s, buf, MSG).await;
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
        .spawn_pinned(shards - 1, async move {
            let c = RingStream::from_std(client);
            let mut clock = Clock::new(warm, n);
            let (mut out, mut back) = (Vec::with_capacity(MSG), Vec::with_capacity(MSG));
            for i in 0..warm + n {
                out.clear();
                out.extend_from_slice(&message(i));
                let (r, o) = c.write_all(out).await;
                r.expect("client write");
                out = o;
                back.clear();
                let (r, b) = read_msg(&c, back, MSG).await;
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

/// Reads one `want`-byte message into `buf` (capacity `want`); `false` on
/// EOF at a message start. Loopback delivers 256 B whole; a partial read is
/// completed through a second buffer.
async fn read_msg(s: &RingStream, buf: Vec<u8>, want: usize) -> (std::io::Result<bool>, Vec<u8>) {
    let (r, mut buf) = s.read(buf).await;
    match r {
        Ok(0) => return (Ok(false), buf),
        Ok(n) => buf.truncate(n),
        Err(e) => return (Err(e), buf),
    }
    while buf.len() < want {
        let (r, rest) = s.read(Vec::with_capacity(want - buf.len())).await;
        match r {
            Ok(0) => return (Err(std::io::ErrorKind::UnexpectedEof.into()), buf),
            Ok(_) => buf.extend_from_slice(&rest),
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(true), buf)
}
