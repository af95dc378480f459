//! net echo on the peer runtimes: the client task (in `block_on`) and the
//! server task (spawned) share the runtime's one thread, the bench thread.
//! Each round trip writes a 256 B message and reads it back whole, checked.

use std::io::ErrorKind;

use crate::net::{MSG, message, tcp_pair};
use crate::stats::{Clock, Run};

pub(crate) fn monoio_echo(warm: usize, n: usize) -> Run {
    use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt};
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio io_uring runtime");
    let (client, server) = tcp_pair();
    rt.block_on(async move {
        let mut s = monoio::net::TcpStream::from_std(server).expect("monoio server stream");
        let mut c = monoio::net::TcpStream::from_std(client).expect("monoio client stream");
        let server = monoio::spawn(async move {
            let mut buf = Vec::with_capacity(MSG);
            loop {
                buf.clear();
                let (r, b) = s.read_exact(buf).await;
                match r {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return,
                    Err(e) => panic!("monoio server read: {e}"),
                }
                let (r, b) = s.write_all(b).await;
                r.expect("monoio server write");
                buf = b;
            }
        });
        let mut clock = Clock::new(warm, n);
        let (mut out, mut back) = (Vec::with_capacity(MSG), Vec::with_capacity(MSG));
        for i in 0..clock.total() {
            out.clear();
            out.extend_from_slice(&message(i));
            let (r, o) = c.write_all(out).await;
            r.expect("monoio client write");
            out = o;
            back.clear();
            let (r, b) = c.read_exact(back).await;
            r.expect("monoio client read");
            assert_eq!(b[..], out[..], "monoio: echo {i} corrupted");
            back = b;
            clock.tick();
        }
        let run = clock.finish();
        drop(c);
        server.await;
        run
    })
}

pub(crate) fn compio_echo(warm: usize, n: usize) -> Run {
    use compio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = compio::runtime::Runtime::new().expect("compio runtime");
    let (client, server) = tcp_pair();
    rt.block_on(async move {
        let mut s = compio::net::TcpStream::from_std(server).expect("compio server stream");
        let mut c = compio::net::TcpStream::from_std(client).expect("compio client stream");
        let server = compio::runtime::spawn(async move {
            let mut buf = Vec::with_capacity(MSG);
            loop {
                buf.clear();
                let compio::BufResult(r, b) = s.read_exact(buf).await;
                match r {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return,
                    Err(e) => panic!("compio server read: {e}"),
                }
                let compio::BufResult(r, b) = s.write_all(b).await;
                r.expect("compio server write");
                buf = b;
            }
        });
        let mut clock = Clock::new(warm, n);
        let (mut out, mut back) = (Vec::with_capacity(MSG), Vec::with_capacity(MSG));
        for i in 0..clock.total() {
            out.clear();
            out.extend_from_slice(&message(i));
            let compio::BufResult(r, o) = c.write_all(out).await;
            r.expect("compio client write");
            out = o;
            back.clear();
            let compio::BufResult(r, b) = c.read_exact(back).await;
            r.expect("compio client read");
            assert_eq!(b[..], out[..], "compio: echo {i} corrupted");
            back = b;
            clock.tick();
        }
        let run = clock.finish();
        drop(c);
        server.await.expect("compio server task");
        run
    })
}

pub(crate) fn glommio_echo(warm: usize, n: usize) -> Run {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor");
    let (client, server) = tcp_pair();
    ex.run(async move {
        // SAFETY: each fd is taken out of its std stream, so the glommio
        // stream is its only owner.
        let mut s = unsafe { glommio::net::TcpStream::from_raw_fd(server.into_raw_fd()) };
        // SAFETY: as above.
        let mut c = unsafe { glommio::net::TcpStream::from_raw_fd(client.into_raw_fd()) };
        let server = glommio::spawn_local(async move {
            let mut buf = [0u8; MSG];
            loop {
                match s.read_exact(&mut buf).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return,
                    Err(e) => panic!("glommio server read: {e}"),
                }
                s.write_all(&buf).await.expect("glommio server write");
            }
        });
        let mut clock = Clock::new(warm, n);
        let mut back = [0u8; MSG];
        for i in 0..clock.total() {
            let out = message(i);
            c.write_all(&out).await.expect("glommio client write");
            c.read_exact(&mut back).await.expect("glommio client read");
            assert_eq!(back, out, "glommio: echo {i} corrupted");
            clock.tick();
        }
        let run = clock.finish();
        drop(c);
        server.await;
        run
    })
}
