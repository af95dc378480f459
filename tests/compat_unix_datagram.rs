//! `compat::UnixDatagram` against `tokio::net::UnixDatagram`: the same
//! datagrams, senders and errors for the same calls, waits woken by peers
//! on other threads, abstract names.

mod common;

use std::io;
use std::time::Duration;

use ringlane::compat::UnixDatagram;

use common::LIMIT;
use common::native_io::TempDir;

/// What a run of calls gave, comparable across runtimes.
type Outcome = Vec<Result<String, Option<i32>>>;

fn show<T: std::fmt::Debug>(r: io::Result<T>) -> Result<String, Option<i32>> {
    r.map(|v| format!("{v:?}")).map_err(|e| e.raw_os_error())
}

/// The call sequence of the differential test, for either runtime's
/// socket type (`$socket`), with the server at `$srv`.
macro_rules! the_calls {
    ($socket:ty, $srv:expr, $missing:expr) => {{
        let (srv, missing) = ($srv, $missing);
        let server = <$socket>::bind(&srv).unwrap();
        let client = <$socket>::bind(srv.with_extension("client")).unwrap();
        let loose = <$socket>::unbound().unwrap();
        let mut buf = [0u8; 4];
        let mut out = vec![
            show(client.send_to(b"hello, server", &srv).await),
            show(server.recv_from(&mut buf).await.map(|(n, from)| {
                let name = from
                    .as_pathname()
                    .map(|p| p.file_name().unwrap().to_owned());
                (n, name)
            })),
            show(Ok(buf)),
            show(client.send_to(b"x", &missing).await),
            show(loose.send(b"x").await),
            show(loose.peer_addr()),
        ];
        client.connect(&srv).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        out.push(show(client.send(b"after").await));
        out
    }};
}

/// Expected (Tokio): for the same sequence of calls (bound and unbound
/// sockets, sends to a path, to a missing path, on an unconnected socket,
/// after a write shutdown, a datagram longer than the buffer), ringlane's
/// socket gives what Tokio's gives: bytes, lengths, sender paths, errno.
#[test]
fn the_same_calls_give_what_tokios_socket_gives() {
    let dir = TempDir::new("ud-vs-tokio");
    let missing = dir.0.join("nobody.sock");
    let (srv, gone) = (dir.0.join("ours.sock"), missing.clone());
    let ours: Outcome =
        common::runtime(1).block_on(async move { the_calls!(UnixDatagram, srv, gone) });
    let srv = dir.0.join("theirs.sock");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let theirs: Outcome =
        tokio.block_on(async move { the_calls!(tokio::net::UnixDatagram, srv, missing) });
    // The sender's name differs only by the sockets' own names.
    let ours: Outcome = ours
        .into_iter()
        .map(|r| r.map(|s| s.replace("ours", "NAME")))
        .collect();
    let theirs: Outcome = theirs
        .into_iter()
        .map(|r| r.map(|s| s.replace("theirs", "NAME")))
        .collect();
    assert_eq!(ours, theirs);
}

/// Expected: a receive waiting on a shard is woken by a datagram a plain
/// thread sends later, 100 times in a row; an abstract name works.
#[test]
fn a_waiting_receive_is_woken_by_a_peer_on_another_thread() {
    let rt = common::runtime(1);
    let name = format!("\0ringlane-ud-{}", std::process::id());
    let server = UnixDatagram::bind(&name).unwrap();
    let peer = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut got = Vec::new();
            for _ in 0..100 {
                let mut buf = [0u8; 8];
                let n = ringlane::time::timeout(LIMIT, server.recv(&mut buf))
                    .await
                    .expect("a lost wake-up")?;
                got.push(buf[0]);
                assert_eq!(n, 1);
            }
            io::Result::Ok(got)
        })
        .unwrap();
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name.as_bytes()[1..]).unwrap();
    for i in 0..100u8 {
        peer.send_to_addr(&[i], &addr).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    let got = rt.block_on(j).unwrap().unwrap();
    assert_eq!(
        got,
        (0..100).collect::<Vec<u8>>(),
        "each datagram once, in order"
    );
}

/// Expected: an abstract name (a leading NUL byte) works for `connect`,
/// `send_to` and `try_send_to` as for `bind` (std's path-based calls
/// refuse a NUL byte: the name is mapped to an abstract address first).
#[test]
fn abstract_names_work_for_connect_and_the_sends() {
    let rt = common::runtime(1);
    let name = format!("\0ringlane-ud-abs-{}", std::process::id());
    let server = UnixDatagram::bind(&name).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    let got = rt.block_on(async {
        client.send_to(b"a", &name).await?;
        client.try_send_to(b"b", &name)?;
        client.connect(&name)?;
        client.send(b"c").await?;
        let mut got = Vec::new();
        for _ in 0..3 {
            let mut buf = [0u8; 1];
            server.recv(&mut buf).await?;
            got.push(buf[0]);
        }
        io::Result::Ok(got)
    });
    assert_eq!(got.unwrap(), b"abc");
}
