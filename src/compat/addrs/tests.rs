//! Resolution off the shard: a host name is looked up on the blocking
//! pool while the shard runs other tasks; a numeric address never reaches
//! the resolver.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use parking_lot::Mutex;

use crate::Runtime;
use crate::compat::{TcpListener, TcpStream, UdpSocket};

/// Lookups made, by thread.
static LOOKUP_THREADS: Mutex<Vec<std::thread::ThreadId>> = Mutex::new(Vec::new());
/// How long each lookup sleeps first (ms): a slow resolver.
static LOOKUP_DELAY_MS: AtomicU64 = AtomicU64::new(0);
/// The tests here share those two.
static SERIAL: Mutex<()> = Mutex::new(());

/// Called by `Lookup::run` in test builds.
pub(super) fn on_lookup() {
    LOOKUP_THREADS.lock().push(std::thread::current().id());
    std::thread::sleep(Duration::from_millis(LOOKUP_DELAY_MS.load(SeqCst)));
}

/// A resolver that takes 300 ms (`getaddrinfo` on a slow DNS server) must
/// not hold up the shard: the lookup runs on another thread, and a task
/// ticking on the same shard meanwhile keeps ticking.
#[test]
fn a_host_name_is_looked_up_off_the_shard_while_it_runs_other_tasks() {
    let _serial = SERIAL.lock();
    LOOKUP_THREADS.lock().clear();
    LOOKUP_DELAY_MS.store(300, SeqCst);
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    let ticks = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = ticks.clone();
    let (shard_thread, during) = rt
        .block_on(
            h.spawn_pinned(0, async move {
                let ticker = crate::spawn_local(async move {
                    loop {
                        crate::time::sleep(Duration::from_millis(10)).await;
                        counted.fetch_add(1, SeqCst);
                    }
                })
                .unwrap();
                let before = ticks.load(SeqCst);
                let l = TcpListener::bind(("localhost", 0)).await;
                let during = ticks.load(SeqCst) - before;
                ticker.abort();
                assert!(l.is_ok(), "localhost did not resolve: {:?}", l.err());
                (std::thread::current().id(), during)
            })
            .unwrap(),
        )
        .unwrap();
    LOOKUP_DELAY_MS.store(0, SeqCst);
    let lookups = LOOKUP_THREADS.lock().clone();
    assert_eq!(lookups.len(), 1, "one lookup: {lookups:?}");
    assert_ne!(lookups[0], shard_thread, "the lookup ran on the shard");
    assert!(
        during >= 10,
        "the shard ticked {during} times in a 300 ms lookup: it was blocked"
    );
}

/// Numeric addresses, in every form, are used at once: no lookup.
#[test]
fn numeric_addresses_never_reach_the_resolver() {
    let _serial = SERIAL.lock();
    LOOKUP_THREADS.lock().clear();
    let rt = Runtime::builder().shards(1).build().unwrap();
    let h = rt.handle();
    rt.block_on(
        h.spawn_pinned(0, async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let _ = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
            let _ = TcpListener::bind(addr.to_string().replace(&addr.port().to_string(), "0"))
                .await
                .unwrap();
            let _ = TcpStream::connect(addr).await.unwrap();
            let _ = TcpStream::connect(("127.0.0.1", addr.port()))
                .await
                .unwrap();
            let u = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                .await
                .unwrap();
            u.connect(&[addr][..]).await.unwrap();
            u.send_to(b"x", format!("127.0.0.1:{}", addr.port()))
                .await
                .unwrap();
        })
        .unwrap(),
    )
    .unwrap();
    let lookups = LOOKUP_THREADS.lock().clone();
    assert!(
        lookups.is_empty(),
        "{} lookups of numeric addresses",
        lookups.len()
    );
}
