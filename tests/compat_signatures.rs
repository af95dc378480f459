//! Code written against `tokio::net` compiles and behaves the same against
//! `ringlane::compat`: the same scenario, word for word, runs on a Tokio
//! runtime with Tokio's types and on a shard with ringlane's (a macro
//! instantiates it twice), and the two logs must be equal. It covers the
//! signatures a port trips over first: async `bind`/`connect`/`send_to`
//! taking any address form, each address tried in turn, and `into_std`
//! returning a `Result`.

mod common;

use std::io;
use std::net::SocketAddr;

use common::compat_io::{on_ringlane, on_tokio};

/// A scenario's outcome, as text: the log two runs compare.
fn brief<T: std::fmt::Debug>(r: io::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("error {:?}", e.kind()),
    }
}

/// The scenario, written once in Tokio's words; `$net` is the module whose
/// `TcpListener`, `TcpStream` and `UdpSocket` it uses.
macro_rules! ported_scenario {
    ($($net:ident)::+) => {{
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use $($net)::+::{TcpListener, TcpStream, UdpSocket};
        let mut log: Vec<String> = Vec::new();
        // The most common line of a Tokio server: a string address.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // A tuple, and a host name that resolves to loopback.
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        log.push(format!("tcp: {:?}", std::str::from_utf8(&buf).unwrap()));
        let by_name = TcpStream::connect(format!("localhost:{port}")).await;
        log.push(format!("connect by name: {}", brief(by_name.map(|_| ()))));
        // A slice of addresses: the first is taken (in use), the second
        // binds. Then one that yields nothing.
        let taken = listener.local_addr().unwrap();
        let free: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let second = TcpListener::bind(&[taken, free][..]).await;
        log.push(format!(
            "bind [taken, free]: {}",
            brief(second.map(|l| l.local_addr().unwrap().port() != port))
        ));
        let none: &[SocketAddr] = &[];
        log.push(format!("bind []: {}", brief(TcpListener::bind(none).await.map(|_| ()))));
        // UDP: bind by string, connect by tuple, send_to by String.
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind(("127.0.0.1", 0)).await.unwrap();
        let b_addr = b.local_addr().unwrap();
        a.connect(("127.0.0.1", b_addr.port())).await.unwrap();
        a.send(b"one").await.unwrap();
        let n = a.send_to(b"two", format!("127.0.0.1:{}", b_addr.port())).await.unwrap();
        let mut dgram = [0u8; 8];
        let (got, _) = b.recv_from(&mut dgram).await.unwrap();
        log.push(format!("udp: {:?}, sent {n}", std::str::from_utf8(&dgram[..got]).unwrap()));
        log.push(format!("send_to []: {}", brief(a.send_to(b"x", none).await)));
        // `into_std` gives a `Result` in both.
        let std_stream: std::net::TcpStream = client.into_std().unwrap();
        log.push(format!("into_std peer: {}", std_stream.peer_addr().unwrap().port() == port));
        let std_udp: std::net::UdpSocket = b.into_std().unwrap();
        log.push(format!("udp into_std: {}", std_udp.local_addr().unwrap() == b_addr));
        log
    }};
}

#[test]
fn code_ported_from_tokio_net_compiles_and_behaves_as_on_tokio() {
    let tokio = on_tokio(async { ported_scenario!(tokio::net) });
    let ours = on_ringlane(|| async { ported_scenario!(ringlane::compat) });
    assert_eq!(ours, tokio, "the ported scenario differs from Tokio's");
    assert_eq!(tokio.len(), 8, "{tokio:?}");
}
