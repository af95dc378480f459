//! net echo: TCP loopback, 256 B messages, one round trip at a time, client
//! and server on one thread. The pair, the messages, the raw io_uring floor
//! and ringlane; the peers are in [`crate::net_peers`].

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use io_uring::{IoUring, opcode, types};

use crate::floor_ring::FloorRing;
use ringlane::native::net::TcpStream as RingStream;

use crate::stats::{Clock, Run};

/// Bytes of an echo message.
pub(crate) const MSG: usize = 256;

/// An echo case: `warm` unrecorded round trips, then `n` samples.
pub(crate) struct NetCase {
    pub(crate) id: &'static str,
    pub(crate) what: &'static str,
    pub(crate) run: fn(usize, usize) -> Run,
}

pub(crate) const NET_CASES: &[NetCase] = &[
    NetCase {
        id: "raw_uring",
        what: "bare `io-uring` ring drives both ends (floor)",
        run: raw_uring_echo,
    },
    NetCase {
        id: "ringlane",
        what: "1 shard, client and server tasks pinned on shard 0",
        run: ringlane_echo,
    },
    NetCase {
        id: "monoio",
        what: "io_uring driver, both tasks on its one thread",
        run: crate::net_peers::monoio_echo,
    },
    NetCase {
        id: "compio",
        what: "io_uring driver, both tasks on its one thread",
        run: crate::net_peers::compio_echo,
    },
    NetCase {
        id: "glommio",
        what: "`LocalExecutor`, both tasks on its one thread",
        run: crate::net_peers::glommio_echo,
    },
];

/// A connected (client, server) pair on 127.0.0.1, both blocking, both
/// with `TCP_NODELAY`.
pub(crate) fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    for s in [&client, &server] {
        s.set_nodelay(true).unwrap();
    }
    (client, server)
}

/// The echo message of round `i` (checked on every round trip).
pub(crate) fn message(i: usize) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    for (j, b) in m.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) + j) as u8;
    }
    m
}

fn ringlane_echo(warm: usize, n: usize) -> Run {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .build()
        .expect("ringlane runtime");
    let h = rt.handle();
    let (client, server) = tcp_pair();
    let server = h
        .spawn_pinned(0, async move {
            let s = RingStream::from_std(server);
            let mut buf = Vec::with_capacity(MSG);
            loop {
                buf.clear();
                let (r, b) = read_msg(&s, buf).await;
                if !r.expect("server read") {
                    return;
                }
                let (r, b) = s.write_all(b).await;
                r.expect("server write");
                buf = b;
            }
        })
        .expect("spawn server");
    let client = h
        .spawn_pinned(0, async move {
            let c = RingStream::from_std(client);
            let mut clock = Clock::new(warm, n);
            let (mut out, mut back) = (Vec::with_capacity(MSG), Vec::with_capacity(MSG));
            for i in 0..clock.total() {
                out.clear();
                out.extend_from_slice(&message(i));
                let (r, o) = c.write_all(out).await;
                r.expect("client write");
                out = o;
                back.clear();
                let (r, b) = read_msg(&c, back).await;
                assert!(r.expect("client read"), "server closed");
                assert_eq!(b[..], out[..], "ringlane: echo {i} corrupted");
                back = b;
                clock.tick();
            }
            clock.finish()
        })
        .expect("spawn client");
    let run = rt.block_on(client).expect("client task");
    rt.block_on(server).expect("server task");
    crate::shutdown(rt);
    run
}

/// Reads one [`MSG`]-byte message into `buf` (capacity `MSG`); `false` on
/// EOF at a message start. Loopback delivers 256 B whole; a partial read is
/// completed through a second buffer.
async fn read_msg(s: &RingStream, buf: Vec<u8>) -> (io::Result<bool>, Vec<u8>) {
    let (r, mut buf) = s.read(buf).await;
    match r {
        Ok(0) => return (Ok(false), buf),
        Ok(n) => buf.truncate(n),
        Err(e) => return (Err(e), buf),
    }
    while buf.len() < MSG {
        let (r, rest) = s.read(Vec::with_capacity(MSG - buf.len())).await;
        match r {
            Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
            Ok(_) => buf.extend_from_slice(&rest),
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(true), buf)
}

fn push(ring: &mut IoUring, sqe: io_uring::squeue::Entry) {
    // SAFETY: every buffer an SQE here points at outlives the wait for its
    // CQE in `raw_uring_echo`.
    unsafe { ring.submission().push(&sqe) }.expect("SQ room");
}

const SEND: u64 = 1;
const RECV_CLIENT: u64 = 2;
const RECV_SERVER: u64 = 3;

/// Waits until the CQE tagged `tag` arrives; returns its result (other
/// CQEs are sends, whose results are checked).
fn wait_for(ring: &mut FloorRing, tag: u64) -> usize {
    loop {
        ring.enter(1);
        let mut found = None;
        for cqe in ring.completion() {
            if cqe.user_data() == tag {
                found = Some(cqe.result());
            } else {
                assert!(cqe.result() == MSG as i32, "send: {}", cqe.result());
            }
        }
        if let Some(r) = found {
            assert!(r >= 0, "recv failed: {r}");
            return r as usize;
        }
    }
}

/// The floor (as `benches/net/raw.rs` `echo_one_ring`): one ring set up
/// like ringlane's (`floor_ring`) on the bench thread; the server's RECV
/// is always posted; per round trip the client's SEND, then the server's
/// SEND and the client's RECV, then the server's next RECV.
fn raw_uring_echo(warm: usize, n: usize) -> Run {
    let (client, server) = tcp_pair();
    let (c, s) = (types::Fd(client.as_raw_fd()), types::Fd(server.as_raw_fd()));
    // Declared before the ring, so they outlive it even on a panic.
    let (mut sbuf, mut cbuf) = ([0u8; MSG], [0u8; MSG]);
    // The message of the round, in place until its SEND completed.
    let mut msg;
    let mut ring = FloorRing::like_ringlane(64, None);
    let recv = |buf: &mut [u8], fd, tag| {
        opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32)
            .build()
            .user_data(tag)
    };
    push(&mut ring, recv(&mut sbuf, s, RECV_SERVER));
    let mut clock = Clock::new(warm, n);
    for i in 0..clock.total() {
        msg = message(i);
        push(
            &mut ring,
            opcode::Send::new(c, msg.as_ptr(), MSG as u32)
                .build()
                .user_data(SEND),
        );
        let mut got = wait_for(&mut ring, RECV_SERVER);
        while got < MSG {
            push(&mut ring, recv(&mut sbuf[got..], s, RECV_SERVER));
            got += wait_for(&mut ring, RECV_SERVER);
        }
        push(
            &mut ring,
            opcode::Send::new(s, sbuf.as_ptr(), MSG as u32)
                .build()
                .user_data(SEND),
        );
        push(&mut ring, recv(&mut cbuf, c, RECV_CLIENT));
        let mut got = wait_for(&mut ring, RECV_CLIENT);
        while got < MSG {
            push(&mut ring, recv(&mut cbuf[got..], c, RECV_CLIENT));
            got += wait_for(&mut ring, RECV_CLIENT);
        }
        assert_eq!(cbuf, msg, "raw_uring: echo {i} corrupted");
        push(&mut ring, recv(&mut sbuf, s, RECV_SERVER));
        clock.tick();
    }
    let run = clock.finish();
    drop(client);
    assert_eq!(
        wait_for(&mut ring, RECV_SERVER),
        0,
        "the posted RECV sees EOF"
    );
    drop(server);
    run
}
