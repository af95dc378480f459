//! Loopback TCP connections with `TCP_NODELAY` on both ends (every case
//! alike, BENCHMARKS.md rule 1), and the per-run outcome.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::shared::timing::process_cpu_time;
use crate::watchdog::PROGRESS;

/// A connected (client, server) pair on 127.0.0.1, both blocking, both
/// with `TCP_NODELAY`.
pub(crate) fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    for s in [&client, &server] {
        s.set_nodelay(true).unwrap();
    }
    (client, server)
}

/// The outcome of one run.
#[derive(Default)]
pub(crate) struct Run {
    /// Echo: nanoseconds per round trip. Stream: empty.
    pub(crate) samples: Vec<u64>,
    /// Wall time of the measured part.
    pub(crate) wall: Duration,
    /// Process CPU time (every thread) over the measured part.
    pub(crate) cpu: Duration,
}

/// Times a stream case: from before its sender starts until its receiver
/// has every byte ([`end`](Self::end)), in wall and process CPU time.
pub(crate) struct StreamSpan {
    start: Instant,
    cpu0: Duration,
}

impl StreamSpan {
    pub(crate) fn start() -> Self {
        Self {
            cpu0: process_cpu_time(),
            start: Instant::now(),
        }
    }

    pub(crate) fn end(self) -> Run {
        Run {
            samples: Vec::new(),
            wall: self.start.elapsed(),
            cpu: process_cpu_time() - self.cpu0,
        }
    }
}

/// A stream receiver's read of `n` bytes: counted into `got` (an empty
/// read before the end is a failure) and reported to the watchdog.
pub(crate) fn received(got: &mut usize, n: usize) {
    assert!(n > 0, "stream ended early");
    *got += n;
    PROGRESS.set(*got as u64);
}

/// Bytes of an echo message.
pub(crate) const MSG: usize = 256;
/// Bytes per write in the stream cases.
pub(crate) const CHUNK: usize = 4096;

/// The echo message of round `i` (checked on every round trip).
pub(crate) fn message(i: usize) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    for (j, b) in m.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) + j) as u8;
    }
    m
}
