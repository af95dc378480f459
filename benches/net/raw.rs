//! The raw io_uring floor: bare rings from the `io-uring` crate, no
//! runtime, set up as ringlane's shards set theirs up
//! (`shared::floor_ring`: `SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG|
//! SUBMIT_ALL`, entered through a registered ring fd).
//!
//! * echo, one ring: one thread drives both ends on one ring. The server's
//!   `RECV` is always posted; per round trip, the client's `SEND`+`RECV`
//!   go in one enter, then the server's `SEND` and its next `RECV` in one.
//! * echo, two threads: a client ring (`SEND`+`RECV` per round trip, one
//!   enter) and a server ring (`SEND` of the reply and the next `RECV`, one
//!   enter).
//! * stream, two threads: the client `SEND`s 4 KiB at a time, the server
//!   `RECV`s into 64 KiB until the total arrived.

use std::os::fd::AsRawFd;
use std::time::Instant;

use io_uring::{IoUring, opcode, types};

use crate::shared::floor_ring::FloorRing;

use crate::pair::{CHUNK, MSG, Run, message, tcp_pair};
use crate::shared::timing::process_cpu_time;
use crate::watchdog::PROGRESS;

fn ring() -> FloorRing {
    FloorRing::like_ringlane(64, None)
}

/// Submits and waits for `want` completions.
fn enter(ring: &mut FloorRing, want: usize) {
    ring.enter(want);
}

fn push(ring: &mut IoUring, sqe: io_uring::squeue::Entry) {
    // SAFETY: every buffer an SQE here points at outlives the wait for its
    // CQE in the same function.
    unsafe { ring.submission().push(&sqe) }.expect("SQ room");
}

/// Waits until the CQE tagged `tag` arrives; returns its result (other
/// CQEs are sends, whose results are checked).
fn wait_for(ring: &mut FloorRing, tag: u64) -> i32 {
    loop {
        enter(ring, 1);
        let mut found = None;
        for cqe in ring.completion() {
            if cqe.user_data() == tag {
                found = Some(cqe.result());
            } else {
                assert!(cqe.result() > 0, "send failed: {}", cqe.result());
            }
        }
        if let Some(r) = found {
            assert!(r >= 0, "recv failed: {r}");
            return r;
        }
    }
}

const SEND: u64 = 1;
const RECV_CLIENT: u64 = 2;
const RECV_SERVER: u64 = 3;

pub(crate) fn echo_one_ring(warm: usize, n: usize) -> Run {
    let (client, server) = tcp_pair();
    let (c, s) = (types::Fd(client.as_raw_fd()), types::Fd(server.as_raw_fd()));
    // Declared before the ring, so they outlive it even on a panic.
    let (mut sbuf, mut cbuf) = ([0u8; MSG], [0u8; MSG]);
    let mut ring = ring();
    let post_server_recv = |ring: &mut FloorRing, buf: &mut [u8; MSG]| {
        push(
            ring,
            opcode::Recv::new(s, buf.as_mut_ptr(), MSG as u32)
                .build()
                .user_data(RECV_SERVER),
        );
    };
    post_server_recv(&mut ring, &mut sbuf);
    let mut samples = Vec::with_capacity(n);
    let (mut cpu0, mut last) = (process_cpu_time(), Instant::now());
    for i in 0..warm + n {
        if i == warm {
            (cpu0, last) = (process_cpu_time(), Instant::now());
        }
        let msg = message(i);
        push(
            &mut ring,
            opcode::Send::new(c, msg.as_ptr(), MSG as u32)
                .build()
                .user_data(SEND),
        );
        let mut got = 0;
        // Loopback delivers a 256 B message whole; partial reads are handled.
        while got < MSG {
            got += wait_for(&mut ring, RECV_SERVER) as usize;
            if got < MSG {
                push(
                    &mut ring,
                    opcode::Recv::new(s, sbuf[got..].as_mut_ptr(), (MSG - got) as u32)
                        .build()
                        .user_data(RECV_SERVER),
                );
            }
        }
        push(
            &mut ring,
            opcode::Send::new(s, sbuf.as_ptr(), MSG as u32)
                .build()
                .user_data(SEND),
        );
        push(
            &mut ring,
            opcode::Recv::new(c, cbuf.as_mut_ptr(), MSG as u32)
                .build()
                .user_data(RECV_CLIENT),
        );
        assert!(
            finish_recv(&mut ring, c, &mut cbuf, RECV_CLIENT),
            "server closed"
        );
        assert_eq!(cbuf, msg, "echo {i} corrupted");
        // The server's next receive, posted before the next request.
        post_server_recv(&mut ring, &mut sbuf);
        if i >= warm {
            let now = Instant::now();
            samples.push((now - last).as_nanos() as u64);
            last = now;
        }
        PROGRESS.set(i as u64);
    }
    let wall = samples
        .iter()
        .map(|&s| std::time::Duration::from_nanos(s))
        .sum();
    let cpu = process_cpu_time() - cpu0;
    drop(client);
    assert_eq!(
        wait_for(&mut ring, RECV_SERVER),
        0,
        "the posted RECV sees EOF"
    );
    drop(server);
    Run { samples, wall, cpu }
}

/// Completes a receive of `buf.len()` bytes whose first RECV (tagged
/// `tag`, into the start of `buf`) is already posted; `false` on end of
/// stream.
fn finish_recv(ring: &mut FloorRing, fd: types::Fd, buf: &mut [u8], tag: u64) -> bool {
    let mut got = 0;
    loop {
        let r = wait_for(ring, tag);
        if r == 0 {
            return false;
        }
        got += r as usize;
        if got >= buf.len() {
            return true;
        }
        let left = &mut buf[got..];
        push(
            ring,
            opcode::Recv::new(fd, left.as_mut_ptr(), left.len() as u32)
                .build()
                .user_data(tag),
        );
    }
}

pub(crate) fn echo_two_threads(warm: usize, n: usize) -> Run {
    let (client, server) = tcp_pair();
    let server_thread = std::thread::spawn(move || {
        let s = types::Fd(server.as_raw_fd());
        // Declared before the ring, so they outlive it even on a panic.
        // Two buffers: the reply is sent from one while the next request
        // is received into the other, so both SQEs go in one enter.
        let mut bufs = [[0u8; MSG]; 2];
        let mut ring = ring();
        let mut cur = 0;
        push(
            &mut ring,
            opcode::Recv::new(s, bufs[0].as_mut_ptr(), MSG as u32)
                .build()
                .user_data(RECV_SERVER),
        );
        // `wait_for` checks every SEND CQE it passes; loopback sends
        // complete at submission, so a buffer's send has ended before the
        // buffer is received into again, two round trips later (a send
        // still running would corrupt an echo, which the client checks).
        while finish_recv(&mut ring, s, &mut bufs[cur], RECV_SERVER) {
            push(
                &mut ring,
                opcode::Send::new(s, bufs[cur].as_ptr(), MSG as u32)
                    .build()
                    .user_data(SEND),
            );
            cur = 1 - cur;
            push(
                &mut ring,
                opcode::Recv::new(s, bufs[cur].as_mut_ptr(), MSG as u32)
                    .build()
                    .user_data(RECV_SERVER),
            );
        }
        drop(server);
    });
    let c = types::Fd(client.as_raw_fd());
    let mut ring = ring();
    let mut buf = [0u8; MSG];
    let mut samples = Vec::with_capacity(n);
    let (mut cpu0, mut last) = (process_cpu_time(), Instant::now());
    for i in 0..warm + n {
        if i == warm {
            (cpu0, last) = (process_cpu_time(), Instant::now());
        }
        let msg = message(i);
        push(
            &mut ring,
            opcode::Send::new(c, msg.as_ptr(), MSG as u32)
                .build()
                .user_data(SEND),
        );
        push(
            &mut ring,
            opcode::Recv::new(c, buf.as_mut_ptr(), MSG as u32)
                .build()
                .user_data(RECV_CLIENT),
        );
        assert!(
            finish_recv(&mut ring, c, &mut buf, RECV_CLIENT),
            "server closed"
        );
        assert_eq!(buf, msg, "echo {i} corrupted");
        if i >= warm {
            let now = Instant::now();
            samples.push((now - last).as_nanos() as u64);
            last = now;
        }
        PROGRESS.set(i as u64);
    }
    let wall = samples
        .iter()
        .map(|&s| std::time::Duration::from_nanos(s))
        .sum();
    let cpu = process_cpu_time() - cpu0;
    drop(client);
    server_thread.join().unwrap();
    Run { samples, wall, cpu }
}

pub(crate) fn stream_two_threads(total: usize) -> Run {
    let (client, server) = tcp_pair();
    let span = crate::pair::StreamSpan::start();
    let sender = std::thread::spawn(move || {
        let c = types::Fd(client.as_raw_fd());
        let mut ring = ring();
        let chunk = vec![7u8; CHUNK];
        let mut sent = 0;
        while sent < total {
            push(
                &mut ring,
                opcode::Send::new(c, chunk.as_ptr(), CHUNK as u32)
                    .build()
                    .user_data(SEND),
            );
            enter(&mut ring, 1);
            let cqe = ring.completion().next().expect("send CQE");
            assert!(cqe.result() > 0, "send failed: {}", cqe.result());
            sent += cqe.result() as usize; // a short send just sends less this turn
        }
        drop(client);
    });
    let s = types::Fd(server.as_raw_fd());
    let mut ring = ring();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < total {
        push(
            &mut ring,
            opcode::Recv::new(s, buf.as_mut_ptr(), buf.len() as u32)
                .build()
                .user_data(RECV_SERVER),
        );
        crate::pair::received(&mut got, wait_for(&mut ring, RECV_SERVER) as usize);
    }
    let run = span.end();
    sender.join().unwrap();
    run
}
