//! The hyper workload: a hyper 1.x HTTP/1.1 hello-world server and an
//! in-repo hyper client load generator in the same process, on the same
//! runtime, over loopback with `TCP_NODELAY` on every socket.
//!
//! * Server: an accept loop takes [`CONNS`] connections and serves each
//!   with `http1::Builder::new().timer(..).serve_connection(TokioIo, ..)`,
//!   answering every request with `200 hello`. The timer is ringlane's
//!   `HyperTimer` or hyper-util's `TokioTimer`: with a timer set, hyper arms
//!   its 30 s header-read timeout on every request, so both sides pay it.
//! * Client: [`CONNS`] keep-alive connections (`client::conn::http1::
//!   handshake`, the connection driver spawned as its own task), each
//!   sending `GET /` back to back (`ready`, `send_request`, body collected
//!   and checked), [`WARM_PER_CONN`] warm-up requests, then all connections
//!   meet at a barrier and send `per_conn` measured requests each.
//! * Measured span: from the barrier's release (taken by its last arrival)
//!   to the moment the last connection finished its last request (taken by
//!   that connection); CPU is `getrusage` of the whole process over the
//!   same span (server and client work together). One latency sample per
//!   request: `ready` until the body is collected.
//!
//! Cases (2 threads each): `ringlane_compat_2_shards` (accept loop on shard
//! 0, the k-th accepted connection served by a task pinned to shard k % 2;
//! client connection i pinned to shard i % 2, its driver `spawn_local` next
//! to it), `tokio_mt_2_workers` (a multi-thread runtime with 2 workers,
//! everything `tokio::spawn`ed; Tokio's scheduler places the tasks).

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use ringlane::compat::{HyperTimer, TcpListener as CompatListener, TcpStream as CompatStream};

use crate::shared::runtimes::shutdown;
use crate::shared::timing::process_cpu_time;
use crate::watchdog::PROGRESS;

/// Client connections (and server connections) per run.
pub(crate) const CONNS: usize = 16;
/// Unrecorded requests per connection before the barrier.
pub(crate) const WARM_PER_CONN: usize = 50;
/// Threads of every case (shards or workers).
pub(crate) const THREADS: usize = 2;
const BODY: &[u8] = b"hello";

/// The outcome of one run.
#[derive(Default)]
pub(crate) struct HttpRun {
    /// Nanoseconds per measured request.
    pub(crate) samples: Vec<u64>,
    /// Wall time of the measured span.
    pub(crate) wall: Duration,
    /// Process CPU time (every thread) over the measured span.
    pub(crate) cpu: Duration,
}

/// A hyper case: [`CONNS`] connections with `per_conn` measured requests
/// each.
pub(crate) struct HttpCase {
    pub(crate) id: &'static str,
    pub(crate) run: fn(usize) -> HttpRun,
}

pub(crate) const HTTP_CASES: &[HttpCase] = &[
    HttpCase {
        id: "ringlane_compat_2_shards",
        run: ringlane_http,
    },
    HttpCase {
        id: "tokio_mt_2_workers",
        run: tokio_http,
    },
];

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// Serves one connection until the client closes it.
async fn serve<S, T>(stream: S, timer: T)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: hyper::rt::Timer + Send + Sync + 'static,
{
    hyper::server::conn::http1::Builder::new()
        .timer(timer)
        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello))
        .await
        .expect("serve_connection");
}

/// Where the measured span starts and ends (see the module docs).
struct Span {
    barrier: tokio::sync::Barrier,
    left: AtomicUsize,
    start: Mutex<Option<(Instant, Duration)>>,
    end: Mutex<Option<(Instant, Duration)>>,
}

impl Span {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            barrier: tokio::sync::Barrier::new(CONNS),
            left: AtomicUsize::new(CONNS),
            start: Mutex::new(None),
            end: Mutex::new(None),
        })
    }

    fn finish(&self, samples: Vec<u64>) -> HttpRun {
        let (t0, cpu0) = self.start.lock().unwrap().expect("span started");
        let (t1, cpu1) = self.end.lock().unwrap().expect("span ended");
        HttpRun {
            samples,
            wall: t1 - t0,
            cpu: cpu1 - cpu0,
        }
    }
}

/// One checked `GET /`.
async fn request(sender: &mut SendRequest<Full<Bytes>>) {
    sender.ready().await.expect("connection ready");
    let req = Request::get("/")
        .header(hyper::header::HOST, "ringlane-bench")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.expect("send_request");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], BODY, "wrong body");
}

/// One client connection: handshake, driver spawned by `spawn_driver`,
/// warm-up, barrier, `per_conn` timed requests, close.
async fn client<S, J>(
    stream: S,
    per_conn: usize,
    span: Arc<Span>,
    spawn_driver: impl FnOnce(Connection<TokioIo<S>, Full<Bytes>>) -> J,
) -> Vec<u64>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    J: Future<Output = ()>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let driver = spawn_driver(conn);
    for _ in 0..WARM_PER_CONN {
        request(&mut sender).await;
    }
    if span.barrier.wait().await.is_leader() {
        *span.start.lock().unwrap() = Some((Instant::now(), process_cpu_time()));
    }
    let mut samples = Vec::with_capacity(per_conn);
    for _ in 0..per_conn {
        let t0 = Instant::now();
        request(&mut sender).await;
        samples.push(t0.elapsed().as_nanos() as u64);
        PROGRESS.step();
    }
    if span.left.fetch_sub(1, Ordering::AcqRel) == 1 {
        *span.end.lock().unwrap() = Some((Instant::now(), process_cpu_time()));
    }
    drop(sender);
    driver.await;
    samples
}

fn ringlane_http(per_conn: usize) -> HttpRun {
    let rt = ringlane::Runtime::builder()
        .shards(THREADS)
        .build()
        .expect("ringlane runtime");
    let h = rt.handle();
    let listener =
        CompatListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .expect("bind");
    let addr = listener.local_addr().unwrap();
    let span = Span::new();
    let spawner = h.clone();
    let server = h
        .spawn_pinned(0, async move {
            let mut served = Vec::with_capacity(CONNS);
            for k in 0..CONNS {
                let (s, _) = listener.accept().await.expect("accept");
                s.set_nodelay(true).unwrap();
                let conn = spawner.spawn_pinned(k % THREADS, serve(s, HyperTimer));
                served.push(conn.unwrap());
            }
            for s in served {
                s.await.unwrap();
            }
        })
        .unwrap();
    let clients: Vec<_> = (0..CONNS)
        .map(|i| {
            let span = span.clone();
            h.spawn_pinned(i % THREADS, async move {
                let s = CompatStream::connect(addr).await.expect("connect");
                s.set_nodelay(true).unwrap();
                client(s, per_conn, span, |conn| {
                    let j = ringlane::spawn_local(async move { conn.await.expect("client conn") });
                    let j = j.unwrap();
                    async move { j.await.unwrap() }
                })
                .await
            })
            .unwrap()
        })
        .collect();
    let samples = clients
        .into_iter()
        .flat_map(|c| rt.block_on(c).unwrap())
        .collect();
    rt.block_on(server).unwrap();
    shutdown(rt, "ringlane");
    span.finish(samples)
}

fn tokio_http(per_conn: usize) -> HttpRun {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let span = Span::new();
    let client_span = span.clone();
    let samples = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut served = Vec::with_capacity(CONNS);
            for _ in 0..CONNS {
                let (s, _) = listener.accept().await.expect("accept");
                s.set_nodelay(true).unwrap();
                served.push(tokio::spawn(serve(s, TokioTimer::new())));
            }
            for s in served {
                s.await.unwrap();
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|_| {
                let span = client_span.clone();
                tokio::spawn(async move {
                    let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    s.set_nodelay(true).unwrap();
                    client(s, per_conn, span, |conn| {
                        let j = tokio::spawn(async move { conn.await.expect("client conn") });
                        async move { j.await.unwrap() }
                    })
                    .await
                })
            })
            .collect();
        let mut samples = Vec::with_capacity(CONNS * per_conn);
        for c in clients {
            samples.extend(c.await.unwrap());
        }
        server.await.unwrap();
        samples
    });
    drop(rt);
    span.finish(samples)
}
