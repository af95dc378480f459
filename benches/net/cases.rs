//! The compared implementations of each workload, and the case tables.

use std::io::{Read, Write};

use ringlane::native::net::TcpStream as RingStream;

use crate::echo_common::{Clock, ringlane_echo};
use crate::pair::{CHUNK, MSG, Run, StreamSpan, message, received, tcp_pair};
use crate::raw;
use crate::shared::runtimes::shutdown;

/// An echo case: `warm` unrecorded round trips, then `n` samples.
pub(crate) struct EchoCase {
    pub(crate) id: &'static str,
    /// The floor this case is compared with.
    pub(crate) floor: &'static str,
    pub(crate) run: fn(usize, usize) -> Run,
}

/// A stream case: `total` bytes from client to server.
pub(crate) struct StreamCase {
    pub(crate) id: &'static str,
    pub(crate) run: fn(usize) -> Run,
}

pub(crate) const ECHO_CASES: &[EchoCase] = &[
    EchoCase {
        id: "raw_uring_1_ring",
        floor: "raw_uring_1_ring",
        run: raw::echo_one_ring,
    },
    EchoCase {
        id: "ringlane_1_shard",
        floor: "raw_uring_1_ring",
        run: |w, n| ringlane_echo(1, w, n),
    },
    EchoCase {
        id: "tokio_current_thread",
        floor: "raw_uring_1_ring",
        run: tokio_ct_echo,
    },
    EchoCase {
        id: "raw_uring_2_threads",
        floor: "raw_uring_2_threads",
        run: raw::echo_two_threads,
    },
    EchoCase {
        id: "ringlane_2_shards",
        floor: "raw_uring_2_threads",
        run: |w, n| ringlane_echo(2, w, n),
    },
    EchoCase {
        id: "std_blocking_2_threads",
        floor: "raw_uring_2_threads",
        run: std_echo,
    },
    EchoCase {
        id: "tokio_mt_2_workers",
        floor: "raw_uring_2_threads",
        run: tokio_mt_echo,
    },
    EchoCase {
        id: "tokio_ct_pair_2_threads",
        floor: "raw_uring_2_threads",
        run: tokio_pair_echo,
    },
];

pub(crate) const STREAM_CASES: &[StreamCase] = &[
    StreamCase {
        id: "raw_uring_2_threads",
        run: raw::stream_two_threads,
    },
    StreamCase {
        id: "ringlane_1_shard",
        run: |t| ringlane_stream(1, t),
    },
    StreamCase {
        id: "ringlane_2_shards",
        run: |t| ringlane_stream(2, t),
    },
    StreamCase {
        id: "std_blocking_2_threads",
        run: std_stream,
    },
    StreamCase {
        id: "tokio_current_thread",
        run: |t| tokio_stream(false, t),
    },
    StreamCase {
        id: "tokio_mt_2_workers",
        run: |t| tokio_stream(true, t),
    },
    StreamCase {
        id: "tokio_ct_pair_2_threads",
        run: tokio_pair_stream,
    },
];

/// Tokio with its I/O driver (the shared suite helpers build runtimes
/// without one).
fn tokio_rt(workers: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = match workers {
        Some(w) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(w);
            b
        }
        None => tokio::runtime::Builder::new_current_thread(),
    };
    b.enable_all().build().expect("tokio runtime")
}

fn std_echo(warm: usize, n: usize) -> Run {
    let (mut client, mut server) = tcp_pair();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; MSG];
        while server.read_exact(&mut buf).is_ok() {
            server.write_all(&buf).unwrap();
        }
    });
    let mut clock = Clock::new(warm, n);
    let mut buf = [0u8; MSG];
    for i in 0..warm + n {
        let msg = message(i);
        client.write_all(&msg).unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(buf, msg, "echo {i} corrupted");
        clock.tick(i);
    }
    let run = clock.finish();
    drop(client);
    t.join().unwrap();
    run
}

async fn tokio_echo_pair(warm: usize, n: usize) -> Run {
    let (client, server) = tcp_pair();
    for s in [&client, &server] {
        s.set_nonblocking(true).unwrap();
    }
    let server = tokio::net::TcpStream::from_std(server).unwrap();
    let client = tokio::net::TcpStream::from_std(client).unwrap();
    let srv = tokio::spawn(tokio_echo_server(server));
    let cli = tokio::spawn(tokio_echo_client(client, warm, n));
    let run = cli.await.unwrap();
    srv.await.unwrap();
    run
}

/// The Tokio echo cases' server: echoes `MSG`-byte messages until EOF.
async fn tokio_echo_server(mut server: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; MSG];
    while server.read_exact(&mut buf).await.is_ok() {
        server.write_all(&buf).await.unwrap();
    }
}

/// The Tokio echo cases' client: `warm + n` checked round trips, timed.
async fn tokio_echo_client(mut client: tokio::net::TcpStream, warm: usize, n: usize) -> Run {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut clock = Clock::new(warm, n);
    let mut buf = [0u8; MSG];
    for i in 0..warm + n {
        let msg = message(i);
        client.write_all(&msg).await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, msg, "echo {i} corrupted");
        clock.tick(i);
    }
    clock.finish()
}

/// Runs `server` on a current-thread Tokio runtime of its own thread (the
/// other end of a cross-thread baseline); join the handle for its result.
fn tokio_thread<F, R>(server: impl FnOnce() -> F + Send + 'static) -> std::thread::JoinHandle<R>
where
    F: std::future::Future<Output = R>,
    R: Send + 'static,
{
    std::thread::spawn(move || tokio_rt(None).block_on(server()))
}

/// Echo across two threads with Tokio: the server on one current-thread
/// runtime, the client on another (every hop crosses threads, as with
/// ringlane's two shards; Tokio multi-thread keeps both ends on one worker).
fn tokio_pair_echo(warm: usize, n: usize) -> Run {
    let (client, server) = tcp_pair();
    for s in [&client, &server] {
        s.set_nonblocking(true).unwrap();
    }
    let srv = tokio_thread(move || async move {
        tokio_echo_server(tokio::net::TcpStream::from_std(server).unwrap()).await
    });
    let run = tokio_rt(None).block_on(async move {
        let client = tokio::net::TcpStream::from_std(client).unwrap();
        tokio_echo_client(client, warm, n).await
    });
    srv.join().unwrap();
    run
}

/// The stream across two threads with Tokio: sender and receiver each on
/// a current-thread runtime of its own thread.
fn tokio_pair_stream(total: usize) -> Run {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (client, server) = tcp_pair();
    for s in [&client, &server] {
        s.set_nonblocking(true).unwrap();
    }
    let span = StreamSpan::start();
    let sender = tokio_thread(move || async move {
        let mut client = tokio::net::TcpStream::from_std(client).unwrap();
        let chunk = vec![7u8; CHUNK];
        let mut sent = 0;
        while sent < total {
            client.write_all(&chunk).await.unwrap();
            sent += CHUNK;
        }
    });
    tokio_rt(None).block_on(async move {
        let mut server = tokio::net::TcpStream::from_std(server).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        while got < total {
            received(&mut got, server.read(&mut buf).await.unwrap());
        }
    });
    let run = span.end();
    sender.join().unwrap();
    run
}

fn tokio_ct_echo(warm: usize, n: usize) -> Run {
    tokio_rt(None).block_on(tokio_echo_pair(warm, n))
}

fn tokio_mt_echo(warm: usize, n: usize) -> Run {
    tokio_rt(Some(2)).block_on(tokio_echo_pair(warm, n))
}

fn ringlane_stream(shards: usize, total: usize) -> Run {
    let rt = ringlane::Runtime::builder()
        .shards(shards)
        .build()
        .expect("ringlane runtime");
    let h = rt.handle();
    let (client, server) = tcp_pair();
    let span = StreamSpan::start();
    let sender = h
        .spawn_pinned(shards - 1, async move {
            let c = RingStream::from_std(client);
            let mut chunk = vec![7u8; CHUNK];
            let mut sent = 0;
            while sent < total {
                let (r, b) = c.write_all(chunk).await;
                r.expect("send");
                chunk = b;
                sent += CHUNK;
            }
        })
        .unwrap();
    let receiver = h
        .spawn_pinned(0, async move {
            let s = RingStream::from_std(server);
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut got = 0;
            while got < total {
                buf.clear();
                let (r, b) = s.read(buf).await;
                received(&mut got, r.expect("recv"));
                buf = b;
            }
        })
        .unwrap();
    rt.block_on(receiver).unwrap();
    let run = span.end();
    rt.block_on(sender).unwrap();
    shutdown(rt, "ringlane");
    run
}

fn std_stream(total: usize) -> Run {
    let (mut client, mut server) = tcp_pair();
    let span = StreamSpan::start();
    let t = std::thread::spawn(move || {
        let chunk = vec![7u8; CHUNK];
        let mut sent = 0;
        while sent < total {
            client.write_all(&chunk).unwrap();
            sent += CHUNK;
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < total {
        received(&mut got, server.read(&mut buf).unwrap());
    }
    let run = span.end();
    t.join().unwrap();
    run
}

fn tokio_stream(multi_thread: bool, total: usize) -> Run {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio_rt(multi_thread.then_some(2));
    rt.block_on(async move {
        let (client, server) = tcp_pair();
        for s in [&client, &server] {
            s.set_nonblocking(true).unwrap();
        }
        let mut server = tokio::net::TcpStream::from_std(server).unwrap();
        let mut client = tokio::net::TcpStream::from_std(client).unwrap();
        let span = StreamSpan::start();
        let sender = tokio::spawn(async move {
            let chunk = vec![7u8; CHUNK];
            let mut sent = 0;
            while sent < total {
                client.write_all(&chunk).await.unwrap();
                sent += CHUNK;
            }
        });
        let receiver = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0;
            while got < total {
                received(&mut got, server.read(&mut buf).await.unwrap());
            }
        });
        receiver.await.unwrap();
        let run = span.end();
        sender.await.unwrap();
        run
    })
}
