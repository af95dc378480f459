//! A `tokio-rustls` TLS handshake and echo over compat streams on shards
//! (rustls with the `ring` provider, a self-signed certificate from rcgen).

mod common;

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use ringlane::compat::{TcpListener, TcpStream};

#[test]
fn tokio_rustls_handshake_and_echo_over_compat_streams() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let server_cfg = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(cert).unwrap();
    let client_cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

    let rt = common::runtime(2);
    let listener =
        TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server_cfg));
    let server = rt
        .handle()
        .spawn_pinned(0, async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = tls.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                tls.write_all(&buf[..n]).await.unwrap();
            }
            tls.shutdown().await.unwrap();
        })
        .unwrap();
    let connector = TlsConnector::from(Arc::new(client_cfg));
    let echoed = rt
        .handle()
        .spawn_pinned(1, async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, tcp).await.unwrap();
            let (mut r, mut w) = tokio::io::split(tls);
            let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            let expected = payload.clone();
            let writer = ringlane::spawn_local(async move {
                w.write_all(&payload).await.unwrap();
                w.shutdown().await.unwrap();
            })
            .unwrap();
            let mut back = Vec::new();
            r.read_to_end(&mut back).await.unwrap();
            writer.await.unwrap();
            back == expected
        })
        .unwrap();
    assert!(
        rt.block_on(echoed).unwrap(),
        "the TLS echo came back different"
    );
    rt.block_on(server).unwrap();
}
