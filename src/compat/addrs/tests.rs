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

/// Makes each lookup take `ms` until dropped (even by a failing test).
struct SlowResolver;

impl SlowResolver {
    fn new(ms: u64) -> Self {
        LOOKUP_DELAY_MS.store(ms, SeqCst);
        Self
    }
}

impl Drop for SlowResolver {
    fn drop(&mut self) {
        LOOKUP_DELAY_MS.store(0, SeqCst);
    }
}

/// Which forms are numeric (used at once) and which are host names (for
/// the resolver), as std and Tokio tell them apart.
#[test]
fn numeric_forms_and_host_names_are_told_apart_as_tokio_does() {
    use super::Lookup;
    use super::sealed::ToSocketAddrsPriv;
    let numeric = |l: Lookup| matches!(l, Lookup::Ready(_));
    assert!(numeric("127.0.0.1:80".to_lookup()));
    assert!(numeric("[::1]:80".to_lookup()));
    assert!(numeric(("::1", 80).to_lookup()));
    assert!(numeric(("127.0.0.1".to_string(), 80).to_lookup()));
    assert!(numeric((std::net::Ipv6Addr::LOCALHOST, 80).to_lookup()));
    assert!(numeric(
        std::net::SocketAddrV6::new(std::net::Ipv6Addr::LOCALHOST, 80, 0, 0).to_lookup()
    ));
    assert!(numeric((&[][..] as &[std::net::SocketAddr]).to_lookup()));
    assert!(!numeric("localhost:80".to_lookup()));
    assert!(!numeric(("localhost", 80).to_lookup()));
    assert!(
        !numeric(("[::1]", 80).to_lookup()),
        "brackets are not part of an IP literal"
    );
    assert!(
        !numeric("::1:80".to_lookup()),
        "an unbracketed IPv6 literal and port"
    );
    assert!(!numeric(String::from("no-port").to_lookup()));
}

/// A resolver that takes 300 ms (`getaddrinfo` on a slow DNS server) must
/// not hold up the shard: the lookup runs on another thread, and a task
/// ticking on the same shard meanwhile keeps ticking.
#[test]
fn a_host_name_is_looked_up_off_the_shard_while_it_runs_other_tasks() {
    let _serial = SERIAL.lock();
    LOOKUP_THREADS.lock().clear();
    let slow = SlowResolver::new(300);
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
    drop(slow);
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
            let _ = TcpListener::bind(String::from("127.0.0.1:0"))
                .await
                .unwrap();
            let _ = TcpListener::bind("[::1]:0").await; // no IPv6 here is fine: no lookup either
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

/// From a Tokio task (no ringlane runtime current) a host name goes to
/// Tokio's blocking pool: the Tokio worker that awaits it is not the
/// thread that looks it up.
#[test]
fn a_host_name_looked_up_from_a_tokio_task_runs_on_tokios_blocking_pool() {
    let _serial = SERIAL.lock();
    LOOKUP_THREADS.lock().clear();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let caller = tokio.block_on(async {
        let l = TcpListener::bind(("localhost", 0)).await;
        assert!(l.is_ok(), "localhost did not resolve: {:?}", l.err());
        std::thread::current().id()
    });
    let lookups = LOOKUP_THREADS.lock().clone();
    assert_eq!(lookups.len(), 1, "one lookup: {lookups:?}");
    assert_ne!(
        lookups[0], caller,
        "the lookup blocked the Tokio task's thread"
    );
}
