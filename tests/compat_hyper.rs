//! hyper 1.x, unmodified, on shards: HTTP/1.1 and HTTP/2 servers and
//! clients over compat streams (through hyper-util's `TokioIo`), with
//! ringlane's `HyperExecutor` and `HyperTimer` and no Tokio runtime; and a
//! Tokio client querying the ringlane-hosted server.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use ringlane::compat::{HyperExecutor, HyperTimer, TcpListener, TcpStream};

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(Response::new(Full::new(Bytes::from(format!(
        "{path}:{}",
        body.len()
    )))))
}

/// Serves `conns` connections from shard 0, HTTP/2 if `h2`.
fn serve(
    rt: &ringlane::Runtime,
    conns: usize,
    h2: bool,
) -> (std::net::SocketAddr, ringlane::JoinHandle<()>) {
    let listener =
        TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = rt.handle();
    let server = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut served = Vec::new();
            for _ in 0..conns {
                let (stream, _) = listener.accept().await.unwrap();
                let io = TokioIo::new(stream);
                let svc = hyper::service::service_fn(hello);
                let exec = HyperExecutor::new(handle.clone());
                served.push(
                    ringlane::spawn_local(async move {
                        if h2 {
                            hyper::server::conn::http2::Builder::new(exec)
                                .timer(HyperTimer)
                                .serve_connection(io, svc)
                                .await
                                .unwrap();
                        } else {
                            hyper::server::conn::http1::Builder::new()
                                .timer(HyperTimer)
                                .serve_connection(io, svc)
                                .await
                                .unwrap();
                        }
                    })
                    .unwrap(),
                );
            }
            for s in served {
                s.await.unwrap();
            }
        })
        .unwrap();
    (addr, server)
}

#[test]
fn hyper_http1_server_and_client_on_shards_exchange_requests() {
    let rt = common::runtime(2);
    let (addr, server) = serve(&rt, 1, false);
    let client = rt
        .handle()
        .spawn_pinned(1, async move {
            let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            let driver = ringlane::spawn_local(async move { conn.await.unwrap() }).unwrap();
            let mut bodies = Vec::new();
            for i in 0..100 {
                let req = Request::post(format!("/r{i}"))
                    .header("host", "ringlane")
                    .body(Full::new(Bytes::from(vec![b'x'; i])))
                    .unwrap();
                let resp = sender.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                bodies.push(resp.into_body().collect().await.unwrap().to_bytes());
            }
            drop(sender);
            driver.await.unwrap();
            bodies
        })
        .unwrap();
    let bodies = rt.block_on(client).unwrap();
    rt.block_on(server).unwrap();
    assert_eq!(bodies.len(), 100);
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(b.as_ref(), format!("/r{i}:{i}").as_bytes());
    }
}

#[test]
fn hyper_http2_multiplexes_concurrent_requests_over_one_compat_stream() {
    let rt = common::runtime(2);
    let (addr, server) = serve(&rt, 1, true);
    let handle = rt.handle();
    let client = rt
        .handle()
        .spawn_pinned(1, async move {
            let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
            let (sender, conn) =
                hyper::client::conn::http2::Builder::new(HyperExecutor::new(handle))
                    .timer(HyperTimer)
                    .handshake(io)
                    .await
                    .unwrap();
            let driver = ringlane::spawn_local(async move { conn.await.unwrap() }).unwrap();
            let mut inflight = Vec::new();
            for i in 0..50 {
                let mut sender = sender.clone();
                inflight.push(
                    ringlane::spawn_local(async move {
                        let req = Request::post(format!("http://ringlane/s{i}"))
                            .body(Full::new(Bytes::from(vec![b'y'; i * 100])))
                            .unwrap();
                        let resp = sender.send_request(req).await.unwrap();
                        resp.into_body().collect().await.unwrap().to_bytes()
                    })
                    .unwrap(),
                );
            }
            let mut bodies = Vec::new();
            for f in inflight {
                bodies.push(f.await.unwrap());
            }
            drop(sender);
            driver.await.unwrap();
            bodies
        })
        .unwrap();
    let bodies = rt.block_on(client).unwrap();
    rt.block_on(server).unwrap();
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(b.as_ref(), format!("/s{i}:{}", i * 100).as_bytes());
    }
}

#[test]
fn a_tokio_client_queries_a_hyper_server_running_on_shards() {
    let rt = common::runtime(1);
    let (addr, server) = serve(&rt, 1, false);
    let tokio_rt = tokio::runtime::Runtime::new().unwrap();
    let body = tokio_rt.block_on(async move {
        let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        let driver = tokio::spawn(conn);
        let req = Request::get("/from-tokio")
            .header("host", "ringlane")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        drop(sender);
        driver.await.unwrap().unwrap();
        body
    });
    rt.block_on(server).unwrap();
    assert_eq!(body.as_ref(), b"/from-tokio:0");
}

/// hyper's executor, built on one runtime's handle, asked to run a task
/// from a shard of another runtime with more shards: it pinned the task to
/// "the current shard" by index, which this runtime does not have, and the
/// refused spawn dropped hyper's task without a trace.
#[test]
fn a_hyper_executor_called_from_another_runtimes_shard_runs_the_task() {
    use hyper::rt::Executor;
    let a = ringlane::Runtime::builder().shards(2).build().unwrap();
    let b = common::runtime(1);
    let exec = HyperExecutor::new(b.handle());
    let (tx, rx) = std::sync::mpsc::channel();
    a.block_on(
        a.handle()
            .spawn_pinned(1, async move {
                exec.execute(async move { tx.send(ringlane::current_shard()).unwrap() });
            })
            .unwrap(),
    )
    .unwrap();
    let ran_on = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("hyper's task was dropped");
    assert_eq!(ran_on, Some(0), "run on the executor's runtime");
}
