//! hyper on a shard with Tokio clients that hang up mid-request and
//! mid-response, and Tokio tasks on ringlane resources: yielding when
//! always ready, asleep when idle. Every wait is bounded.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ringlane::compat::{HyperTimer, UnixStream};

use common::chans::tokio_mt;
use common::lifecycle::{ReleaseOnDrop, os_tid, within};
use common::tokio_side::*;
use common::{LIMIT, join_within, wait_until};

#[derive(Default)]
struct ConnStats {
    accepted: AtomicUsize,
    finished: AtomicUsize,
}

fn big_body() -> Bytes {
    static BIG: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BIG.get_or_init(|| Bytes::from(vec![b'z'; 16 << 20]))
        .clone()
}

async fn rude_clients_service(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = match path.as_str() {
        "/slow" => {
            ringlane::time::sleep(Duration::from_millis(20)).await;
            Bytes::from_static(b"slow")
        }
        "/big" => big_body(),
        _ => match req.into_body().collect().await {
            Ok(b) => Bytes::from(b.to_bytes().len().to_string()),
            Err(_) => Bytes::from_static(b"incomplete"),
        },
    };
    Ok(Response::new(Full::new(body)))
}

/// A hyper HTTP/1.1 server on a shard (compat listener, `HyperTimer`, one
/// `spawn_local` per connection) and Tokio clients that hang up at every
/// stage: mid-body (Content-Length 100000, 10 bytes sent), mid-headers,
/// after reading 64 KiB of a 16 MiB response (a reset with unread data),
/// and while the service sleeps on a ringlane timer before replying. Then
/// a well-behaved hyper client on Tokio.
///
/// Expected: every connection task ends (each `serve_connection` returns,
/// with an error or not: a reset or end of stream must wake a read or a
/// write parked on a full socket), the server keeps accepting and answers
/// the good client correctly, and once every connection is gone the shard
/// goes quiet (no readiness left set that makes it spin).
#[test]
fn hyper_on_a_shard_outlives_tokio_clients_that_hang_up_mid_request_and_mid_response() {
    const EACH: usize = 10;
    let rt = common::runtime(1);
    let h = rt.handle();
    let listener =
        ringlane::compat::TcpListener::from_std(std::net::TcpListener::bind(any_port()).unwrap())
            .unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(ConnStats::default());
    let server = {
        let stats = stats.clone();
        h.spawn_pinned(0, async move {
            loop {
                // An accept error ends the server (the counts below then fail).
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                stats.accepted.fetch_add(1, Ordering::SeqCst);
                let stats = stats.clone();
                drop(
                    ringlane::spawn_local(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(HyperTimer)
                            .serve_connection(
                                TokioIo::new(stream),
                                hyper::service::service_fn(rude_clients_service),
                            )
                            .await;
                        stats.finished.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap(),
                );
            }
        })
        .unwrap()
    };
    let tokio_rt = tokio_mt(2);
    let body = tokio_rt.block_on(async move {
        let exchange = async move {
            let mut rude = Vec::new();
            for _ in 0..EACH {
                rude.push(tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    s.write_all(
                        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n0123456789",
                    )
                    .await
                    .unwrap();
                }));
                rude.push(tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    s.write_all(b"GET /echo HTTP/1.1\r\nhost: x\r\ncontent-le")
                        .await
                        .unwrap();
                }));
                rude.push(tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    s.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
                        .await
                        .unwrap();
                    let mut buf = vec![0u8; 64 << 10];
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the big response never started");
                }));
                rude.push(tokio::spawn(async move {
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
                        .await
                        .unwrap();
                }));
            }
            for r in rude {
                r.await.unwrap();
            }
            let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            let driver = tokio::spawn(conn);
            let req = Request::post("/echo")
                .header("host", "x")
                .body(Full::new(Bytes::from(vec![1u8; 1000])))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            drop(sender);
            driver.await.unwrap().unwrap();
            body
        };
        tokio::time::timeout(LIMIT, exchange)
            .await
            .expect("the server on the shard stopped answering after rude clients")
    });
    assert_eq!(body.as_ref(), b"1000");
    let all = 4 * EACH + 1;
    wait_until("every connection task ending", || {
        stats.accepted.load(Ordering::SeqCst) == all && stats.finished.load(Ordering::SeqCst) == all
    });
    common::compat_io::assert_quiet(&h, 0, "a hyper server after every client hung up");
    drop(server);
    within(LIMIT, "dropping the runtime", move || drop(rt));
    drop(tokio_rt);
}

// ---------------------------------------------------------------------------
// 8. The cooperative budget, both directions
// ---------------------------------------------------------------------------

/// The other direction, on a current-thread Tokio runtime (one thread for
/// everything): (1) a Tokio task receives from a ringlane channel that a
/// plain thread keeps full; a task spawned after it sets a flag the loop
/// checks. Expected (coop.rs invariant 4: ringlane resources polled in a
/// Tokio task spend Tokio's budget): the loop yields after a budget's worth
/// of messages, the flag setter runs, the loop sees it. (2) Tokio tasks
/// then wait on idle ringlane resources: an empty channel, the join handle
/// of a pending task, a compat socket read (forwarded to its home shard)
/// and a 300 ms ringlane sleep. Expected: each is polled a handful of
/// times at most (no self-wake loop), the Tokio thread uses almost no CPU
/// over the 300 ms, and the home shard stays parked.
#[test]
fn tokio_tasks_on_ringlane_resources_yield_when_always_ready_and_stay_asleep_when_idle() {
    let rt = common::runtime(1);
    let h = rt.handle();
    let (tx, rx) = ringlane::raw_channel(1024).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _release = ReleaseOnDrop(stop.clone());
    let feeder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                match tx.try_send(next) {
                    Ok(()) => next += 1,
                    Err(ringlane::TrySendError::Full(_)) => std::hint::spin_loop(),
                    Err(ringlane::TrySendError::Closed(_)) => break,
                }
            }
        })
    };
    wait_until("the channel filling up", || rx.len() == rx.max_capacity());
    let (idle_tx, idle_rx) = ringlane::channel::<u8>(1).unwrap();
    let never = h.spawn_pinned(0, std::future::pending::<()>()).unwrap();
    let (a, b) = join_within(
        &rt,
        h.spawn_pinned(0, async { UnixStream::pair().unwrap() })
            .unwrap(),
        LIMIT,
        "a socket pair made on shard 0",
    );
    let quiet_h = h.clone();
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("adv-coop-tokio".into())
        .spawn(move || {
            let tid = os_tid();
            let tokio_rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let out = tokio_rt.block_on(async move {
                // (1)
                let flag = Arc::new(AtomicBool::new(false));
                let looper = {
                    let flag = flag.clone();
                    tokio::spawn(async move {
                        let mut rx = rx;
                        let start = Instant::now();
                        let mut n = 0u64;
                        while !flag.load(Ordering::Acquire)
                            && start.elapsed() < Duration::from_secs(3)
                        {
                            if rx.recv().await.is_none() {
                                break;
                            }
                            n += 1;
                            let t = Instant::now();
                            while t.elapsed() < Duration::from_micros(5) {
                                std::hint::spin_loop();
                            }
                        }
                        (flag.load(Ordering::Acquire), n)
                    })
                };
                let setter = tokio::spawn(async move { flag.store(true, Ordering::Release) });
                let (saw_flag, looped) = looper.await.unwrap();
                setter.await.unwrap();
                // (2)
                let polls: Vec<Arc<AtomicUsize>> = (0..4).map(|_| Arc::default()).collect();
                let on_rx = tokio::spawn(counted(
                    async move {
                        let mut r = idle_rx;
                        r.recv().await
                    },
                    &polls[0],
                ));
                let on_join = tokio::spawn(counted(never, &polls[1]));
                let on_read = tokio::spawn(counted(
                    async move {
                        let mut a = a;
                        let mut buf = [0u8; 1];
                        a.read(&mut buf).await.map(drop)
                    },
                    &polls[2],
                ));
                let quiet = tokio::task::spawn_blocking(move || {
                    common::compat_io::assert_quiet(
                        &quiet_h,
                        0,
                        "the home shard of waits made from Tokio",
                    )
                });
                let cpu_before = common::thread_cpu_time(tid);
                let t0 = Instant::now();
                tokio::spawn(counted(
                    ringlane::time::sleep(Duration::from_millis(300)),
                    &polls[3],
                ))
                .await
                .unwrap();
                let window = t0.elapsed();
                let cpu = common::thread_cpu_time(tid).saturating_sub(cpu_before);
                let quiet = tokio::time::timeout(LIMIT, quiet)
                    .await
                    .map_err(|_| "the quiet check stalled".to_owned())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                let counts: Vec<usize> = polls.iter().map(|p| p.load(Ordering::SeqCst)).collect();
                on_rx.abort();
                on_join.abort();
                on_read.abort();
                (saw_flag, looped, counts, window, cpu, quiet)
            });
            let _ = done_tx.send(out);
        })
        .unwrap();
    let (saw_flag, looped, counts, window, cpu, quiet) = done
        .recv_timeout(LIMIT)
        .expect("the Tokio thread did not finish");
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    drop((idle_tx, b));
    assert!(
        saw_flag,
        "a Tokio task looping on an always-ready ringlane receiver kept its worker for 3 s \
         ({looped} messages): the task spawned beside it never ran"
    );
    assert!(
        window >= Duration::from_millis(300),
        "the ringlane sleep fired early: {window:?}"
    );
    let [rx_polls, join_polls, read_polls, sleep_polls] =
        [counts[0], counts[1], counts[2], counts[3]];
    assert!(
        rx_polls <= 2,
        "an idle ringlane receiver was polled {rx_polls} times"
    );
    assert!(
        join_polls <= 2,
        "a pending join handle was polled {join_polls} times"
    );
    assert!(
        read_polls <= 3,
        "an idle forwarded read was polled {read_polls} times"
    );
    assert!(
        sleep_polls <= 3,
        "a 300 ms ringlane sleep was polled {sleep_polls} times"
    );
    assert!(
        cpu < Duration::from_millis(100),
        "the Tokio thread burned {cpu:?} of CPU in {window:?} of waiting: a busy loop"
    );
    quiet.unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------
// 9. A Tokio task's idle socket wait and a graceful shutdown
// ---------------------------------------------------------------------------
