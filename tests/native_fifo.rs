//! A FIFO opened for reading waits for a writer as `open(2)` does: bytes an
//! earlier writer left prove nothing, a writer that comes and goes while the
//! blocking re-open is on its way to the kernel still ends the open (the
//! window held open deterministically), and a native timeout bounds the
//! wait. Every test holds `SERIAL` (fd counts are process-wide).

mod common;

use std::future::Future;
use std::io::{self, ErrorKind, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fs::File;

use common::LIMIT;
use common::fs_edges::*;
use common::native_io::{SERIAL, settled_fd_count};
use common::stealers::holds_within;

/// Expected: `File::open` of a FIFO for reading waits until a writer opens
/// it, as `open(2)` does, even when the FIFO still holds bytes that an
/// earlier writer left before closing (another reader keeps them alive).
/// std's blocking open is checked on the same FIFO as the control.
///
/// Why: ringlane keeps io_uring's non-blocking first attempt
/// whenever `poll` says `POLLIN`, taking buffered bytes as proof that a
/// writer came. The open returns with no writer; the reader then reads the
/// stale bytes and sees end of file, where a std reader would wait for the
/// next writer and get its bytes too.
#[test]
fn a_fifo_reader_open_waits_for_a_writer_even_with_bytes_an_earlier_one_left() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let fifo = Fifo::new("fifo-stale");
    // A reader that never reads keeps the FIFO's buffer (and bytes) alive.
    let holder = open_nonblocking(&fifo.path, false).unwrap();
    {
        let mut w = open_nonblocking(&fifo.path, true).unwrap();
        w.write_all(b"old").unwrap();
    } // the writer is gone; "old" stays in the FIFO
    let (std_tx, std_rx) = std::sync::mpsc::channel::<()>();
    let p = fifo.path.clone();
    let std_reader = std::thread::spawn(move || {
        let r = std::fs::File::open(&p);
        let _ = std_tx.send(());
        r.map(drop)
    });
    let rt = common::runtime(1);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let p = fifo.path.clone();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let f = File::open(&p).await;
            let _ = tx.send(());
            f.map(drop)
        })
        .unwrap();
    let ours_early = rx.recv_timeout(Duration::from_millis(500)).is_ok();
    let std_early = std_rx.try_recv().is_ok();
    // A writer arrives: both opens may return now. (Readers exist, so the
    // non-blocking open succeeds.)
    let release = open_nonblocking(&fifo.path, true).expect("readers are on the FIFO");
    let ours = common::join_within(&rt, task, LIMIT, "the ringlane open");
    let std_done = std_early || std_rx.recv_timeout(LIMIT).is_ok();
    let std_result = if std_done {
        Some(std_reader.join().unwrap())
    } else {
        None
    };
    drop(release);
    drop(holder);
    drop(rt);
    assert!(
        !std_early,
        "control: std's blocking open of a FIFO holding stale bytes returned with no writer"
    );
    assert!(std_done, "std's open never returned once a writer came");
    std_result.unwrap().unwrap();
    assert!(
        !ours_early,
        "File::open of a FIFO for reading returned with no writer, because an earlier \
         writer had left bytes in it; open(2) waits for a writer"
    );
    ours.unwrap();
    drop(fifo);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

const INIT: u8 = 0;

const CONNECTED: u8 = 1;

const GO: u8 = 2;

const CLOSED: u8 = 3;

/// What the ringlane reader of test 4 saw.
#[derive(Debug)]
enum ReaderOutcome {
    /// The open returned; these bytes were read until end of file.
    Read(Vec<u8>),
    OpenFailed(io::Error),
    /// The open did not return within 2 s; `window`: the re-open was
    /// queued while the writer was connected.
    Hung {
        window: bool,
    },
    /// The writer never got in (the test's own precondition failed).
    NoWriter,
}

/// Expected: a reader's `File::open` of a FIFO returns once a writer has
/// opened it, even if that writer writes and closes before the reader
/// reads: it then reads the writer's bytes and end of file, exactly what a
/// std reader (blocked in `open(2)`, woken by the writer's open) gets.
///
/// Why: ringlane opens twice. The first, non-blocking fd lets
/// the writer in; `writer_was_there` then sees it connected but silent (no
/// `POLLIN`, no `POLLHUP`) and queues a blocking re-open. If the writer
/// writes and closes before that re-open reaches the kernel, the re-open
/// waits for the NEXT writer: the reader hangs and the bytes are never
/// read. The test holds the shard (inside the task's poll, after the
/// re-open was queued, before the shard's next enter) while the writer
/// writes and closes, which makes the window certain.
#[test]
fn a_fifo_reader_open_returns_after_a_writer_that_came_and_went_during_it() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let fifo = Fifo::new("fifo-window");
    let state = Arc::new(AtomicU8::new(INIT));
    let writer = {
        let (path, state) = (fifo.path.clone(), state.clone());
        std::thread::spawn(move || -> io::Result<()> {
            let deadline = Instant::now() + Duration::from_secs(5);
            // No reader yet: ENXIO until the ringlane open's first fd exists.
            let mut w = loop {
                match open_nonblocking(&path, true) {
                    Ok(w) => break w,
                    Err(e)
                        if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline =>
                    {
                        std::thread::yield_now()
                    }
                    Err(e) => return Err(e),
                }
            };
            state.store(CONNECTED, Ordering::SeqCst);
            holds_within(Duration::from_secs(5), || {
                state.load(Ordering::SeqCst) >= GO
            });
            w.write_all(b"x")?;
            drop(w);
            state.store(CLOSED, Ordering::SeqCst);
            Ok(())
        })
    };
    let rt = common::runtime(1);
    let (path, st) = (fifo.path.clone(), state.clone());
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut open = Box::pin(File::open(path));
            let (mut polls, mut window, mut no_writer) = (0u32, false, false);
            let guarded = std::future::poll_fn(|cx| {
                polls += 1;
                // From the second poll on (the first attempt's CQE woke us:
                // its fd exists), let the writer in before the open goes on.
                let hold = polls >= 2 && st.load(Ordering::SeqCst) < GO;
                if hold
                    && !holds_within(Duration::from_secs(5), || {
                        st.load(Ordering::SeqCst) >= CONNECTED
                    })
                {
                    no_writer = true;
                }
                let r = open.as_mut().poll(cx);
                if hold {
                    // Pending: a re-open is queued and not yet submitted
                    // (the shard enters only after this poll). The writer
                    // writes and closes now.
                    window = r.is_pending();
                    st.store(GO, Ordering::SeqCst);
                    holds_within(Duration::from_secs(5), || {
                        st.load(Ordering::SeqCst) == CLOSED
                    });
                }
                r
            });
            let r = ringlane::time::timeout(Duration::from_secs(2), guarded).await;
            st.fetch_max(GO, Ordering::SeqCst); // never leave the writer waiting
            drop(open); // cancels a re-open still blocked in io-wq
            if no_writer {
                return ReaderOutcome::NoWriter;
            }
            let f = match r {
                Err(_) => return ReaderOutcome::Hung { window },
                Ok(Err(e)) => return ReaderOutcome::OpenFailed(e),
                Ok(Ok(f)) => f,
            };
            let mut got = Vec::new();
            loop {
                let (n, buf) = f.read(vec![0u8; 16]).timeout(Duration::from_secs(2)).await;
                match n {
                    Ok(0) => return ReaderOutcome::Read(got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => return ReaderOutcome::OpenFailed(e),
                }
            }
        })
        .unwrap();
    let outcome = common::join_within(&rt, task, LIMIT, "the FIFO reader");
    let wrote = writer.join().unwrap();
    drop(rt);
    match outcome {
        ReaderOutcome::Read(got) => assert_eq!(
            got, b"x",
            "the reader must get the writer's bytes, then end of file"
        ),
        ReaderOutcome::Hung { window } => panic!(
            "File::open of a FIFO for reading still waited 2 s after a writer had opened it, \
             written \"x\" and closed (re-open queued while the writer was connected: {window}); \
             open(2) returns once a writer opened, and the reader gets \"x\" then EOF"
        ),
        ReaderOutcome::OpenFailed(e) => panic!("the FIFO open or read failed: {e}"),
        ReaderOutcome::NoWriter => {
            panic!("the writer never got in: the reader's first (non-blocking) fd never appeared")
        }
    }
    wrote.expect("the writer failed");
    drop(fifo);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

/// A native timeout around `File::open` of a FIFO nobody writes to ends the
/// open with `TimedOut` soon after the deadline, and leaves no fd behind.
///
/// Why: the read side's blocking re-open runs in io-wq, and the kernel's
/// linked timeout does not interrupt an open blocked there (a cancel does):
/// the open waited for a writer for ever, deadline or not.
#[test]
fn a_native_timeout_bounds_a_fifo_read_open_with_no_writer() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let fifo = Fifo::new("fifo-deadline");
    let rt = common::runtime(1);
    let path = fifo.path.clone();
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let start = Instant::now();
            let r = File::open(&path).timeout(Duration::from_millis(100)).await;
            (r.map(drop).map_err(|e| e.kind()), start.elapsed())
        })
        .unwrap();
    let (r, took) = common::join_within(&rt, task, LIMIT, "the FIFO open under a deadline");
    assert_eq!(r, Err(ErrorKind::TimedOut));
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "the open ended after {took:?}, its deadline was 100 ms"
    );
    drop(rt);
    drop(fifo);
    assert_eq!(settled_fd_count(), before, "an fd leaked");
}

// -------------------------------------------------- 5: Unix socket names
