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

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use ringlane::compat::TcpStream as CompatStream;

use crate::echo_common::{Clock, ringlane_echo};
use crate::pair::{MSG, Run, message, tcp_pair};
use crate::shared::runtimes::shutdown;

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
        run: |w, n| ringlane_echo(1, w, n),
    },
    EchoCase {
        id: "tokio_current_thread",
        tokio: "tokio_current_thread",
        threads: 1,
        run: |w, n| tokio_echo(None, w, n),
    },
    EchoCase {
        id: "compat_2_shards",
        tokio: "tokio_ct_pair_2_threads",
        threads: 2,
        run: |w, n| compat_echo(2, w, n),
    },
    EchoCase {
        id: "tokio_mt_2_workers",
        tokio: "tokio_mt_2_workers",
        threads: 2,
        run: |w, n| tokio_echo(Some(2), w, n),
    },
    EchoCase {
        id: "tokio_ct_pair_2_threads",
        tokio: "tokio_ct_pair_2_threads",
        threads: 2,
        run: tokio_pair_echo,
    },
];

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

/// Tokio across two threads: the server on a current-thread runtime of its
/// own thread, the client on another, so every hop crosses threads as with
/// two shards (Tokio multi-thread mostly keeps both ends on one worker).
fn tokio_pair_echo(warm: usize, n: usize) -> Run {
    let current = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    };
    let (client, server) = tcp_pair();
    for s in [&client, &server] {
        s.set_nonblocking(true).unwrap();
    }
    let srv = std::thread::spawn(move || {
        current().block_on(async move {
            echo_server(tokio::net::TcpStream::from_std(server).unwrap()).await
        })
    });
    let run = current().block_on(async move {
        echo_client(tokio::net::TcpStream::from_std(client).unwrap(), warm, n).await
    });
    srv.join().unwrap();
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
