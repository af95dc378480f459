//! A tour of ringlane: start the runtime next to a Tokio runtime, spawn
//! pinned and local tasks on every shard from inside a Tokio task, pass
//! typed messages between shards, let idle shards steal work from a
//! blocked one, read and write files and echo over TCP through the shard's
//! ring (native lane), serve HTTP with unmodified hyper on the shards
//! (compat lane) for a Tokio-hosted client, use shard timers and Tokio
//! timers from shard tasks, and print what it measured along the way.
//!
//! Run with `cargo run --release --example tour`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringlane::{Handle, Runtime};

fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one rusage struct that we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

async fn pinned_round_trips(handle: &Handle, shard: usize, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let v = handle
            .spawn_pinned(shard, async move { i })
            .expect("spawn")
            .await
            .expect("join");
        samples.push(t.elapsed());
        assert_eq!(v, i);
    }
    samples.sort();
    samples
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rt = Runtime::builder()
        .tokio_handle(tokio_rt.handle().clone())
        .build()?;
    let handle = rt.handle();
    let shards = handle.shards();
    println!(
        "ringlane tour: {shards} shards, kernel {}",
        kernel_release()
    );
    println!(
        "ring set-up chosen by probing: {:?}\n",
        handle.ring_features()
    );

    let h = handle.clone();
    tokio_rt.block_on(async move {
        // 1. Pinned tasks on every shard, spawned and awaited from a Tokio task.
        println!("1. pinned tasks spawned from a Tokio task, awaited there (spawn + run + join):");
        for shard in 0..shards {
            let s = pinned_round_trips(&h, shard, 2_000).await;
            println!(
                "   shard {shard}: p50 {:>7.1?}  p99 {:>7.1?}  (each one wakes a parked shard)",
                percentile(&s, 0.5),
                percentile(&s, 0.99)
            );
        }

        // 2. Local (!Send) tasks built on each shard, fanning out more local tasks.
        println!("\n2. local !Send tasks on every shard (Rc<RefCell<..>> shared by 1,000 children):");
        for shard in 0..shards {
            let t = Instant::now();
            let n = h
                .spawn_local_on(shard, || async {
                    let log = Rc::new(RefCell::new(0usize));
                    let children: Vec<_> = (0..1_000)
                        .map(|_| {
                            let log = log.clone();
                            ringlane::spawn_local(async move { *log.borrow_mut() += 1 }).expect("spawn_local")
                        })
                        .collect();
                    for c in children {
                        c.await.expect("child");
                    }
                    log.take()
                })
                .expect("spawn_local_on")
                .await
                .expect("join");
            println!("   shard {shard}: {n} local children ran in {:?} ({:.0} ns per spawn+join)", t.elapsed(), t.elapsed().as_nanos() as f64 / 1000.0);
        }

        // 2b. Shard-to-shard hand-offs: shard 0 spawns onto the last shard and
        // awaits it; a parked receiver is woken by an IORING_OP_MSG_RING doorbell.
        if shards > 1 {
            let target = shards - 1;
            let h2 = h.clone();
            let samples = h
                .spawn_pinned(0, async move {
                    let mut samples = Vec::with_capacity(2_000);
                    for i in 0..2_000u64 {
                        let t = Instant::now();
                        let v = h2.spawn_pinned(target, async move { i }).expect("spawn").await.expect("join");
                        samples.push(t.elapsed());
                        assert_eq!(v, i);
                    }
                    samples.sort();
                    samples
                })
                .expect("spawn")
                .await
                .expect("join");
            println!(
                "\n2b. shard 0 -> shard {target} -> shard 0 hand-off round trip (MSG_RING doorbells): p50 {:?}  p99 {:?}",
                percentile(&samples, 0.5),
                percentile(&samples, 0.99)
            );
        }

        // 2c. Cross-shard messages: a typed channel ping-pong and a one-way stream.
        if shards > 1 {
            let target = shards - 1;
            let (ping_tx, mut ping_rx) = ringlane::channel::<u64>(64).expect("channel");
            let (pong_tx, mut pong_rx) = ringlane::channel::<u64>(64).expect("channel");
            let echo = h
                .spawn_pinned(target, async move {
                    while let Some(x) = ping_rx.recv().await {
                        pong_tx.send(x).await.expect("pong");
                    }
                })
                .expect("spawn");
            let samples = h
                .spawn_pinned(0, async move {
                    let mut samples = Vec::with_capacity(5_000);
                    for i in 0..5_000u64 {
                        let t = Instant::now();
                        ping_tx.send(i).await.expect("ping");
                        assert_eq!(pong_rx.recv().await, Some(i));
                        samples.push(t.elapsed());
                    }
                    samples.sort();
                    samples
                })
                .expect("spawn")
                .await
                .expect("join");
            echo.await.expect("echo");
            println!(
                "\n2c. channel ping-pong shard 0 <-> shard {target} (both park between messages): p50 {:?}  p99 {:?}",
                percentile(&samples, 0.5),
                percentile(&samples, 0.99)
            );
            let (tx, mut rx) = ringlane::raw_channel(4_096).expect("channel");
            let n = 2_000_000u64;
            let consumer = h
                .spawn_pinned(target, async move {
                    let mut buf = Vec::with_capacity(1_024);
                    let (mut count, mut sum) = (0u64, 0u64);
                    while rx.recv_many(&mut buf, 1_024).await > 0 {
                        count += buf.len() as u64;
                        sum += buf.drain(..).sum::<u64>();
                    }
                    (count, sum)
                })
                .expect("spawn");
            let cpu0 = cpu_time();
            let t = Instant::now();
            h.spawn_pinned(0, async move {
                let mut next = 0;
                while next < n {
                    tx.send_many(next..next + 32).await.expect("send");
                    next += 32;
                }
            })
            .expect("spawn")
            .await
            .expect("join");
            let (count, sum) = consumer.await.expect("consumer");
            let wall = t.elapsed();
            assert_eq!((count, sum), (n, n * (n - 1) / 2), "every message exactly once");
            println!(
                "    one-way stream shard 0 -> shard {target}, batches of 32: {:.1} M msg/s, CPU {:?} for {n} messages",
                n as f64 / wall.as_secs_f64() / 1e6,
                cpu_time() - cpu0
            );
            let key = 42u64;
            let owner = (key % shards as u64) as usize;
            let v = h.call_on(owner, move |ctx| format!("key {key} served by shard {}", ctx.index())).expect("call_on").await.expect("join");
            println!("    call_on (request/response to the shard owning a key): {v}");
        }

        // 2d. Work stealing: shard 0 spawns stealable work, then blocks itself
        // in a long CPU-bound poll; idle shards steal the work and run it.
        if shards > 1 {
            let before: u64 = (0..shards).map(|s| h.shard_stats(s).map_or(0, |st| st.tasks_stolen)).sum();
            let t = Instant::now();
            let ran_elsewhere = h
                .spawn_pinned(0, async {
                    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let elsewhere = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    for _ in 0..1_000 {
                        let (done, elsewhere) = (done.clone(), elsewhere.clone());
                        drop(
                            ringlane::spawn(async move {
                                if ringlane::current_shard() != Some(0) {
                                    elsewhere.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                                done.fetch_add(1, std::sync::atomic::Ordering::Release);
                            })
                            .expect("spawn"),
                        );
                    }
                    // Block this shard (no yield) until the others have done it all.
                    while done.load(std::sync::atomic::Ordering::Acquire) < 1_000 {
                        std::hint::spin_loop();
                    }
                    elsewhere.load(std::sync::atomic::Ordering::Relaxed)
                })
                .expect("spawn")
                .await
                .expect("join");
            let stolen: u64 = (0..shards).map(|s| h.shard_stats(s).map_or(0, |st| st.tasks_stolen)).sum::<u64>() - before;
            println!(
                "\n2d. shard 0 spawned 1,000 stealable tasks and blocked: {ran_elsewhere} ran on other shards ({stolen} stolen) in {:?}",
                t.elapsed()
            );
        }

        // 2e. The native lane: completion-based file I/O on the shard's ring,
        // from a Tokio task through the handle; `pread` alongside for scale.
        {
            let path = std::env::temp_dir().join(format!("ringlane-tour-{}", std::process::id()));
            let p = path.clone();
            let (ring_lat, pread_lat, lines) = h
                .spawn_pinned(0, async move {
                    use ringlane::native::fs::File;
                    let f = File::options()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&p)
                        .await
                        .expect("create");
                    let data: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
                    let (n, _) = f.write_at(data, 0).await;
                    n.expect("write");
                    f.sync_data().await.expect("fdatasync");
                    let std_file = std::fs::File::open(&p).expect("open");
                    let mut buf = Vec::with_capacity(4096);
                    let (mut ring, mut pread) = (Vec::with_capacity(2_000), Vec::with_capacity(2_000));
                    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
                    for _ in 0..2_000 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let off = (seed % 1024) * 4096;
                        let t = Instant::now();
                        let (n, b) = f.read_at(buf, off).await;
                        ring.push(t.elapsed());
                        assert_eq!(n.expect("read"), 4096);
                        buf = b;
                        let mut pbuf = [0u8; 4096];
                        let t = Instant::now();
                        std::os::unix::fs::FileExt::read_exact_at(&std_file, &mut pbuf, off).expect("pread");
                        pread.push(t.elapsed());
                    }
                    ring.sort();
                    pread.sort();
                    // Whole-file helpers, and Tokio's I/O traits over the lane.
                    use tokio::io::AsyncBufReadExt;
                    let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
                    ringlane::native::fs::write(&p, &text).await.expect("write");
                    let f = File::open(&p).await.expect("open").into_async();
                    let (mut lines, mut count) = (tokio::io::BufReader::new(f).lines(), 0);
                    while lines.next_line().await.expect("line").is_some() {
                        count += 1;
                    }
                    (ring, pread, count)
                })
                .expect("spawn")
                .await
                .expect("join");
            let _ = std::fs::remove_file(&path);
            println!(
                "\n2e. native lane, 4 KiB page-cached reads at qd1 on shard 0: io_uring p50 {:?} p99 {:?}; pread p50 {:?} p99 {:?}",
                percentile(&ring_lat, 0.5),
                percentile(&ring_lat, 0.99),
                percentile(&pread_lat, 0.5),
                percentile(&pread_lat, 0.99)
            );
            println!("    native::fs::write, then tokio::io::BufReader::lines() over File::into_async(): {lines} lines back");
        }

        // 2f. Native sockets: a TCP echo server on shard 0 and a client on the
        // last shard, completion-based (SEND/RECV on owned buffers).
        {
            use ringlane::native::net::{TcpListener, TcpStream};
            let listener = TcpListener::bind("127.0.0.1:0".parse().expect("tour")).expect("tour");
            let addr = listener.local_addr().expect("tour");
            let server = h.spawn_pinned(0, async move {
                let (conn, _) = listener.accept().await.expect("accept");
                conn.set_nodelay(true).expect("nodelay");
                let mut buf = Vec::with_capacity(256);
                loop {
                    buf.clear();
                    let (n, b) = conn.read(buf).await;
                    if n.expect("read") == 0 {
                        return;
                    }
                    let (r, b) = conn.write_all(b).await;
                    r.expect("write");
                    buf = b;
                }
            }).expect("tour");
            let rtts = h
                .spawn_pinned(shards - 1, async move {
                    let s = TcpStream::connect(addr).await.expect("connect");
                    s.set_nodelay(true).expect("nodelay");
                    let (mut msg, mut back) = (vec![7u8; 256], Vec::with_capacity(256));
                    let mut rtts = Vec::with_capacity(5_000);
                    for _ in 0..5_000 {
                        let t = Instant::now();
                        let (r, m) = s.write_all(msg).await;
                        r.expect("write");
                        msg = m;
                        let mut got = 0;
                        while got < 256 {
                            back.clear();
                            let (n, b) = s.read(back).await;
                            got += n.expect("read");
                            back = b;
                        }
                        rtts.push(t.elapsed());
                    }
                    rtts.sort();
                    rtts
                }).expect("tour")
                .await.expect("tour");
            server.await.expect("tour");
            println!(
                "\n2f. native TCP echo, 256 B, server on shard 0, client on shard {}: RTT p50 {:?} p99 {:?}",
                shards - 1,
                percentile(&rtts, 0.5),
                percentile(&rtts, 0.99)
            );
        }

        // 2g. The compat lane: an unmodified hyper HTTP/1.1 server on the
        // shards (accepting on shard 0, one connection per shard in turn),
        // queried by a hyper client running on this Tokio task.
        {
            use http_body_util::{BodyExt, Full};
            use hyper_util::rt::TokioIo;
            let listener = ringlane::compat::TcpListener::bind("127.0.0.1:0").await.expect("tour");
            let addr = listener.local_addr().expect("tour");
            let h2 = h.clone();
            let conns = 4;
            let server = h.spawn_pinned(0, async move {
                for i in 0..conns {
                    let (stream, _) = listener.accept().await.expect("accept");
                    // Hand each connection to a shard in turn (the stream moves
                    // with its task; readiness is armed where it is polled).
                    // Detached: it ends when the client closes the connection.
                    let _detached = h2.spawn_pinned(i % h2.shards(), async move {
                        let svc = hyper::service::service_fn(|_req| async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                bytes::Bytes::from(format!("hello from shard {}", ringlane::current_shard().unwrap())),
                            )))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(ringlane::compat::HyperTimer)
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    })
                    .expect("spawn");
                }
            }).expect("tour");
            let t = Instant::now();
            let per_conn = 2_000;
            let mut clients = Vec::new();
            for _ in 0..conns {
                clients.push(tokio::spawn(async move {
                    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.expect("connect"));
                    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("handshake");
                    tokio::spawn(conn);
                    let mut last = bytes::Bytes::new();
                    for _ in 0..per_conn {
                        let req = hyper::Request::get("/").header("host", "tour").body(Full::new(bytes::Bytes::new())).expect("request");
                        let resp = sender.send_request(req).await.expect("send");
                        last = resp.into_body().collect().await.expect("body").to_bytes();
                    }
                    last
                }));
            }
            let mut answers = Vec::new();
            for c in clients {
                answers.push(String::from_utf8_lossy(&c.await.expect("tour")).into_owned());
            }
            server.await.expect("tour");
            let wall = t.elapsed();
            answers.sort();
            answers.dedup();
            println!(
                "\n2g. compat lane: hyper HTTP/1.1 server on the shards, {} requests over {conns} keep-alive connections from a Tokio-hosted hyper client: {:.0} requests/s; answers seen: {answers:?}",
                conns * per_conn,
                (conns * per_conn) as f64 / wall.as_secs_f64()
            );
        }

        // 3. Throughput: 200,000 small pinned tasks spread over the shards from Tokio.
        let n = 200_000;
        let cpu0 = cpu_time();
        let t = Instant::now();
        let joins: Vec<_> = (0..n).map(|i| h.spawn_pinned(i % shards, async move { i as u64 }).expect("spawn")).collect();
        let mut sum = 0;
        for j in joins {
            sum += j.await.expect("join");
        }
        let wall = t.elapsed();
        println!(
            "\n3. {n} pinned tasks from a Tokio task: {wall:?} wall, {:.0} ns/task, CPU {:?} (sum {sum})",
            wall.as_nanos() as f64 / n as f64,
            cpu_time() - cpu0
        );

        // 4. Timers: shard timer wheel and Tokio timers from inside a shard task.
        let lateness = h
            .spawn_pinned(0, async {
                let mut late = Vec::new();
                for ms in [1u64, 5, 10, 20] {
                    let deadline = Instant::now() + Duration::from_millis(ms);
                    ringlane::time::sleep_until(deadline).await;
                    late.push(Instant::now() - deadline);
                }
                let t = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                (late, t.elapsed())
            })
            .expect("spawn")
            .await
            .expect("join");
        println!("\n4. shard timers fired late by {:?}; tokio::time::sleep(5 ms) inside a shard task took {:?}", lateness.0, lateness.1);

        // Blocking work goes to the blocking pool, not a shard: 8 closures
        // that each block 20 ms, joined as a JoinSet, while shard 0 stays free.
        let t = Instant::now();
        let mut set = ringlane::JoinSet::new();
        for i in 0..8u64 {
            set.insert(
                h.spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    i
                })
                .expect("spawn_blocking"),
            );
        }
        let ping = Instant::now();
        h.spawn_pinned(0, async {}).expect("spawn").await.expect("join");
        let ping = ping.elapsed();
        let mut sum = 0;
        while let Some(r) = set.join_next().await {
            sum += r.expect("closure");
        }
        println!(
            "   8 blocking closures of 20 ms each (spawn_blocking, joined as a JoinSet): {:?} in all (sum {sum}); shard 0 answered a task meanwhile in {ping:?}",
            t.elapsed()
        );
    });

    // 5. Idle: shards sleep in io_uring_enter, using no CPU.
    let cpu0 = cpu_time();
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "\n5. idle for 500 ms: the whole process used {:?} of CPU",
        cpu_time() - cpu0
    );

    println!("\nper-shard counters:");
    for s in 0..shards {
        let st = handle.shard_stats(s)?;
        println!(
            "   shard {s}: polled {:>7}  parks {:>6}  doorbells msg_ring {:>5} eventfd {:>6} avoided {:>7}  messages sent {:>8} received {:>8}",
            st.tasks_polled,
            st.parks,
            st.doorbells_msg_ring,
            st.doorbells_eventfd,
            st.doorbells_avoided,
            st.messages_sent,
            st.messages_received
        );
    }
    let forever = handle.spawn_pinned(0, std::future::pending::<()>())?;
    let report = rt.shutdown(Duration::from_millis(50));
    println!(
        "\nshutdown: {report:?}; the pending task's handle gives: {}",
        tokio_rt.block_on(forever).unwrap_err()
    );
    Ok(())
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
