//! Native files, FIFOs, paths and Unix socket names at their edges, held to
//! what std and the syscalls (`open(2)`, `pread(2)`) give for the same input.
//!
//! - A FIFO opened for reading waits for a writer as `open(2)` does: bytes an
//!   earlier writer left prove nothing (`..._even_with_bytes_an_earlier_one_left`),
//!   and a writer that comes and goes while the blocking re-open is on its way
//!   to the kernel still ends the open (`..._came_and_went_during_it`, the
//!   window held open deterministically).
//! - Unix socket names at the `sun_path` edge (107 bytes pathname or
//!   abstract, and one more), every `OpenOptions` flag combination, and path
//!   errors (NAME_MAX, PATH_MAX, ENOTDIR, EISDIR, ENOTEMPTY, ELOOP, ...) match
//!   std, changing nothing on disk.
//! - Failed and partial transfers give every buffer back intact; closing one
//!   clone of a `File` leaves the others working, and the last close closes.
//!
//! Every test holds `SERIAL` (fd counts are process-wide) and is bounded by
//! kernel or runtime timeouts.

mod common;

use std::ffi::OsString;
use std::future::Future;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fs::{self as nfs, File, OpenOptions};
use ringlane::native::net::{UnixListener, UnixStream};

use common::LIMIT;
use common::native_io::{SERIAL, TempDir, settled_fd_count};

// ---------------------------------------------------------------- helpers

/// An `io::Result` reduced to what can be compared with std's: the value,
/// or the raw errno.
fn errno<T>(r: io::Result<T>) -> Result<T, Option<i32>> {
    r.map_err(|e| e.raw_os_error())
}

/// A FIFO in a fresh directory (removed with it).
struct Fifo {
    _dir: TempDir,
    path: PathBuf,
}

impl Fifo {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(name);
        let path = dir.0.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(r, 0, "mkfifo: {}", io::Error::last_os_error());
        Self { _dir: dir, path }
    }
}

/// A std open of `path` with `O_NONBLOCK` (never waits for a partner).
fn open_nonblocking(path: &Path, write: bool) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Yields until `done` holds; `false` if `limit` passed first.
fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

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
            spin_until(Duration::from_secs(5), || {
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
                    && !spin_until(Duration::from_secs(5), || {
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
                    spin_until(Duration::from_secs(5), || {
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

/// The shard side of `unix_socket_names_at_the_sun_path_edge_match_std`:
/// a list of what went wrong.
async fn sun_path_cases(dir: PathBuf) -> io::Result<Vec<String>> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{
        SocketAddr as StdAddr, UnixListener as StdListener, UnixStream as StdStream,
    };
    let mut bad = Vec::new();
    let padded = |len: usize| {
        let mut b = dir.join("s").into_os_string().into_vec();
        assert!(
            b.len() < len,
            "the temp dir's path is too long for this test"
        );
        b.resize(len, b'x');
        PathBuf::from(OsString::from_vec(b))
    };
    let abstract_path = |name: &[u8]| {
        let mut b = vec![0u8];
        b.extend_from_slice(name);
        PathBuf::from(OsString::from_vec(b))
    };
    let name = |tag: &str, len: usize| {
        let mut b = format!("ringlane-adv-{tag}-{}-", std::process::id()).into_bytes();
        b.resize(len, b'y');
        b
    };
    let kind = |e: Option<io::Error>| e.map(|e| e.kind());

    // A 107-byte pathname (sun_path's 108 less the NUL): ours binds it,
    // std and ours connect to it, bytes flow.
    let fits = padded(107);
    let l = UnixListener::bind(&fits)?;
    let _std_client = StdStream::connect(&fits)?;
    let _from_std = l.accept().timeout(LIMIT).await?;
    let ours = UnixStream::connect(&fits).await?;
    let accepted = l.accept().timeout(LIMIT).await?;
    ours.write_all(b"p".to_vec()).await.0?;
    let (n, got) = accepted.read(vec![0u8; 4]).timeout(LIMIT).await;
    if got[..n?] != *b"p" {
        bad.push("a 107-byte pathname socket carried other bytes".to_string());
    }

    // 108 bytes: refused by both, and nothing created.
    let too_long = padded(108);
    let refused = [
        (
            "UnixListener::bind",
            kind(UnixListener::bind(&too_long).err()),
        ),
        (
            "std UnixListener::bind",
            kind(StdListener::bind(&too_long).err()),
        ),
        (
            "UnixStream::connect",
            kind(UnixStream::connect(&too_long).await.err()),
        ),
        (
            "std UnixStream::connect",
            kind(StdStream::connect(&too_long).err()),
        ),
    ];
    for (what, k) in refused {
        if k != Some(ErrorKind::InvalidInput) {
            bad.push(format!(
                "{what}, 108-byte pathname: {k:?}, want InvalidInput"
            ));
        }
    }
    if std::fs::symlink_metadata(&too_long).is_ok() {
        bad.push("a refused 108-byte pathname was created".to_string());
    }

    // A 107-byte abstract name (108 bytes with the leading NUL: the whole
    // sun_path): ours binds, std and ours connect.
    let n107 = name("ours", 107);
    let l = UnixListener::bind(abstract_path(&n107[..]))?;
    let _std_client = StdStream::connect_addr(&StdAddr::from_abstract_name(&n107)?)?;
    let _from_std = l.accept().timeout(LIMIT).await?;
    let ours = UnixStream::connect(abstract_path(&n107[..])).await?;
    let accepted = l.accept().timeout(LIMIT).await?;
    ours.write_all(b"a".to_vec()).await.0?;
    let (n, got) = accepted.read(vec![0u8; 4]).timeout(LIMIT).await;
    if got[..n?] != *b"a" {
        bad.push("a 107-byte abstract name carried other bytes".to_string());
    }

    // std binds a full-length abstract name with an inner NUL; ours connects.
    let mut n2 = name("std", 107);
    n2[60] = 0;
    let std_l = StdListener::bind_addr(&StdAddr::from_abstract_name(&n2)?)?;
    std_l.set_nonblocking(true)?;
    let ours = UnixStream::connect(abstract_path(&n2[..])).await?;
    match std_l.accept() {
        Ok((mut s, _)) => {
            ours.write_all(b"q".to_vec()).await.0?;
            s.set_read_timeout(Some(LIMIT))?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)?;
            if b != *b"q" {
                bad.push("std's abstract listener got other bytes".to_string());
            }
        }
        Err(e) => bad.push(format!(
            "our connect to std's 107-byte abstract name (inner NUL) reached no listener: {e}"
        )),
    }

    // 108 name bytes (109 with the NUL): refused by both.
    let n108 = name("long", 108);
    let refused = [
        (
            "UnixListener::bind",
            kind(UnixListener::bind(abstract_path(&n108[..])).err()),
        ),
        (
            "std SocketAddr::from_abstract_name",
            kind(StdAddr::from_abstract_name(&n108).err()),
        ),
        (
            "UnixStream::connect",
            kind(UnixStream::connect(abstract_path(&n108[..])).await.err()),
        ),
    ];
    for (what, k) in refused {
        if k != Some(ErrorKind::InvalidInput) {
            bad.push(format!(
                "{what}, 108-byte abstract name: {k:?}, want InvalidInput"
            ));
        }
    }
    Ok(bad)
}

/// Expected: Unix socket names at the exact edge of `sun_path` behave as
/// with std: a 107-byte pathname and a 107-byte abstract name (108 bytes
/// with its leading NUL) bind, connect and carry bytes between ringlane
/// and std in both directions; one byte more is `InvalidInput` for bind
/// and connect alike, and nothing is created on disk.
///
/// Why: `RawAddr::from_unix` computes the fit and the address
/// length itself (with and without the terminating NUL) and must agree to
/// the byte with std's `bind`/`from_abstract_name`; an off-by-one shows up
/// as a refused name that std takes, a truncated name (connecting to
/// nothing), or an overrun.
#[test]
fn unix_socket_names_at_the_sun_path_edge_match_std() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("sunpath");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, sun_path_cases(dir.0.clone()))
        .unwrap();
    let bad = common::join_within(&rt, task, LIMIT, "the sun_path cases").unwrap();
    drop(rt);
    drop(dir);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ------------------------------------------------------ 6: OpenOptions

/// The shard side of `every_open_options_combination_matches_std`.
async fn open_matrix(dir: PathBuf) -> Vec<String> {
    let mut bad = Vec::new();
    let state = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.permissions().mode() & 0o7777))
    };
    for bits in 0u8..64 {
        let on = |i: u8| bits & (1 << i) != 0;
        let (r, w, a, t, c, n) = (on(0), on(1), on(2), on(3), on(4), on(5));
        for exists in [false, true] {
            let theirs_p = dir.join(format!("std-{bits}-{exists}"));
            let ours_p = dir.join(format!("ours-{bits}-{exists}"));
            if exists {
                std::fs::write(&theirs_p, b"keep").unwrap();
                std::fs::write(&ours_p, b"keep").unwrap();
            }
            let theirs = std::fs::OpenOptions::new()
                .read(r)
                .write(w)
                .append(a)
                .truncate(t)
                .create(c)
                .create_new(n)
                .open(&theirs_p)
                .map(drop)
                .map_err(|e| e.kind());
            let ours = OpenOptions::new()
                .read(r)
                .write(w)
                .append(a)
                .truncate(t)
                .create(c)
                .create_new(n)
                .open(&ours_p)
                .await
                .map(drop)
                .map_err(|e| e.kind());
            let (ts, os) = (state(theirs_p.as_path()), state(ours_p.as_path()));
            if (theirs, ts) != (ours, os) {
                bad.push(format!(
                    "read={r} write={w} append={a} truncate={t} create={c} create_new={n}, \
                     file {}: std {theirs:?} {ts:?}, ringlane {ours:?} {os:?}",
                    if exists { "existed" } else { "missing" }
                ));
            }
            let _ = std::fs::remove_file(&theirs_p);
            let _ = std::fs::remove_file(&ours_p);
        }
    }
    bad
}

/// Expected: for each of the 64 combinations of read, write, append,
/// truncate, create and create_new, on a missing and on an existing file,
/// `OpenOptions::open` gives what `std::fs::OpenOptions::open` gives (Ok, or
/// the same error kind, `InvalidInput` for the combinations std refuses) and
/// leaves the same file behind (existence, size, permission bits).
///
/// Why: ringlane re-implements std's validation and flag
/// building (`OpenOptions::flags`); the existing tests check three refused
/// combinations only. A combination validated differently, a flag dropped
/// (`O_TRUNC` under `create_new`, `O_EXCL`, `O_APPEND`) or a wrong default
/// mode shows up here as another result or another file.
#[test]
fn every_open_options_combination_matches_std() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("oo-matrix");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, open_matrix(dir.0.clone()))
        .unwrap();
    let bad = common::join_within(&rt, task, LIMIT, "the OpenOptions matrix");
    drop(rt);
    drop(dir);
    assert!(bad.is_empty(), "{} mismatches: {bad:#?}", bad.len());
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// --------------------------------------------------------- 7: path errors

/// An outcome reduced to comparable form.
fn o<T>(r: io::Result<T>) -> Result<(), Option<i32>> {
    r.map(drop).map_err(|e| e.raw_os_error())
}

/// The shard side of `path_errors_match_std_errno_and_change_nothing`.
async fn path_error_cases(d: PathBuf) -> Vec<String> {
    let file = d.join("file");
    let empty = d.join("empty");
    let full = d.join("full");
    let (loop1, loop2) = (d.join("loop1"), d.join("loop2"));
    std::fs::write(&file, b"data").unwrap();
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("inner"), b"").unwrap();
    std::os::unix::fs::symlink(&loop2, &loop1).unwrap();
    std::os::unix::fs::symlink(&loop1, &loop2).unwrap();
    let missing = d.join("missing");
    let long_name = d.join("n".repeat(256)); // past NAME_MAX
    let long_path = d.join("p/".repeat(2100)); // past PATH_MAX
    let nothing = PathBuf::new();
    let inside = full.join("inside");
    let other = d.join("other");

    type Outcome = Result<(), Option<i32>>;
    let mut cases: Vec<(&str, Outcome, Outcome)> = Vec::new();
    // create_dir
    cases.push((
        "create_dir over a file",
        o(nfs::create_dir(&file).await),
        o(std::fs::create_dir(&file)),
    ));
    cases.push((
        "create_dir under a missing parent",
        o(nfs::create_dir(missing.join("sub")).await),
        o(std::fs::create_dir(missing.join("sub"))),
    ));
    cases.push((
        "create_dir under a file",
        o(nfs::create_dir(file.join("sub")).await),
        o(std::fs::create_dir(file.join("sub"))),
    ));
    cases.push((
        "create_dir, 256-byte name",
        o(nfs::create_dir(&long_name).await),
        o(std::fs::create_dir(&long_name)),
    ));
    cases.push((
        "create_dir, path past PATH_MAX",
        o(nfs::create_dir(&long_path).await),
        o(std::fs::create_dir(&long_path)),
    ));
    cases.push((
        "create_dir, empty path",
        o(nfs::create_dir(&nothing).await),
        o(std::fs::create_dir(&nothing)),
    ));
    // remove_dir / remove_file
    cases.push((
        "remove_dir of a file",
        o(nfs::remove_dir(&file).await),
        o(std::fs::remove_dir(&file)),
    ));
    cases.push((
        "remove_dir of a non-empty dir",
        o(nfs::remove_dir(&full).await),
        o(std::fs::remove_dir(&full)),
    ));
    cases.push((
        "remove_dir of a missing dir",
        o(nfs::remove_dir(&missing).await),
        o(std::fs::remove_dir(&missing)),
    ));
    cases.push((
        "remove_dir of a symlink",
        o(nfs::remove_dir(&loop1).await),
        o(std::fs::remove_dir(&loop1)),
    ));
    cases.push((
        "remove_file of a dir",
        o(nfs::remove_file(&empty).await),
        o(std::fs::remove_file(&empty)),
    ));
    cases.push((
        "remove_file under a file",
        o(nfs::remove_file(file.join("x")).await),
        o(std::fs::remove_file(file.join("x"))),
    ));
    cases.push((
        "remove_file, 256-byte name",
        o(nfs::remove_file(&long_name).await),
        o(std::fs::remove_file(&long_name)),
    ));
    cases.push((
        "remove_file, path past PATH_MAX",
        o(nfs::remove_file(&long_path).await),
        o(std::fs::remove_file(&long_path)),
    ));
    cases.push((
        "remove_file, empty path",
        o(nfs::remove_file(&nothing).await),
        o(std::fs::remove_file(&nothing)),
    ));
    // rename
    cases.push((
        "rename a dir onto a non-empty dir",
        o(nfs::rename(&empty, &full).await),
        o(std::fs::rename(&empty, &full)),
    ));
    cases.push((
        "rename a file onto a dir",
        o(nfs::rename(&file, &empty).await),
        o(std::fs::rename(&file, &empty)),
    ));
    cases.push((
        "rename a dir onto a file",
        o(nfs::rename(&empty, &file).await),
        o(std::fs::rename(&empty, &file)),
    ));
    cases.push((
        "rename a dir into itself",
        o(nfs::rename(&full, &inside).await),
        o(std::fs::rename(&full, &inside)),
    ));
    cases.push((
        "rename a missing file",
        o(nfs::rename(&missing, &other).await),
        o(std::fs::rename(&missing, &other)),
    ));
    cases.push((
        "rename to a 256-byte name",
        o(nfs::rename(&file, &long_name).await),
        o(std::fs::rename(&file, &long_name)),
    ));
    cases.push((
        "rename from a path past PATH_MAX",
        o(nfs::rename(&long_path, &other).await),
        o(std::fs::rename(&long_path, &other)),
    ));
    cases.push((
        "rename from an empty path",
        o(nfs::rename(&nothing, &other).await),
        o(std::fs::rename(&nothing, &other)),
    ));
    // metadata
    cases.push((
        "metadata through a file",
        o(nfs::metadata(file.join("x")).await),
        o(std::fs::metadata(file.join("x"))),
    ));
    cases.push((
        "metadata of a symlink loop",
        o(nfs::metadata(&loop1).await),
        o(std::fs::metadata(&loop1)),
    ));
    cases.push((
        "symlink_metadata of a symlink loop",
        o(nfs::symlink_metadata(&loop1).await),
        o(std::fs::symlink_metadata(&loop1)),
    ));
    cases.push((
        "metadata, 256-byte name",
        o(nfs::metadata(&long_name).await),
        o(std::fs::metadata(&long_name)),
    ));
    cases.push((
        "metadata, path past PATH_MAX",
        o(nfs::metadata(&long_path).await),
        o(std::fs::metadata(&long_path)),
    ));
    cases.push((
        "symlink_metadata, path past PATH_MAX",
        o(nfs::symlink_metadata(&long_path).await),
        o(std::fs::symlink_metadata(&long_path)),
    ));
    cases.push((
        "metadata, empty path",
        o(nfs::metadata(&nothing).await),
        o(std::fs::metadata(&nothing)),
    ));
    cases.push((
        "symlink_metadata, empty path",
        o(nfs::symlink_metadata(&nothing).await),
        o(std::fs::symlink_metadata(&nothing)),
    ));
    // open
    cases.push((
        "open a dir for writing",
        o(OpenOptions::new().write(true).open(&empty).await),
        o(std::fs::OpenOptions::new().write(true).open(&empty)),
    ));
    cases.push((
        "open a symlink loop",
        o(File::open(&loop1).await),
        o(std::fs::File::open(&loop1)),
    ));
    cases.push((
        "open with create, 256-byte name",
        o(OpenOptions::new()
            .write(true)
            .create(true)
            .open(&long_name)
            .await),
        o(std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&long_name)),
    ));
    cases.push((
        "open, path past PATH_MAX",
        o(File::open(&long_path).await),
        o(std::fs::File::open(&long_path)),
    ));
    cases.push((
        "open, empty path",
        o(File::open(&nothing).await),
        o(std::fs::File::open(&nothing)),
    ));

    let mut bad: Vec<String> = cases
        .into_iter()
        .filter(|(_, ours, theirs)| ours != theirs)
        .map(|(what, ours, theirs)| format!("{what}: ringlane {ours:?}, std {theirs:?}"))
        .collect();
    // Every one of those failed: the tree is as it was.
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names != ["empty", "file", "full", "loop1", "loop2"] {
        bad.push(format!("the tree changed: {names:?}"));
    }
    if std::fs::read(&file).ok().as_deref() != Some(&b"data"[..]) {
        bad.push("the file changed".to_string());
    }
    if std::fs::read_dir(&empty).map(|r| r.count()).ok() != Some(0)
        || std::fs::read_dir(&full).map(|r| r.count()).ok() != Some(1)
    {
        bad.push("a directory's contents changed".to_string());
    }
    bad
}

/// Expected: every path operation (create_dir, remove_dir, remove_file,
/// rename, metadata, symlink_metadata, open) given a name past NAME_MAX, a
/// path past PATH_MAX, an empty path, or a tree it cannot apply to (a file
/// as a directory, a non-empty target, a directory into itself, a symlink
/// loop) fails with exactly std's errno, and the tree is left untouched.
///
/// Why: ringlane converts paths itself (`c_path`) and runs the
/// operations as io_uring opcodes whose path handling (copied at prep,
/// `AT_EMPTY_PATH`-style empty names, flags) is not the syscalls'; an empty
/// path read as "this fd", a dropped flag or a different check shows up as
/// another errno, a panic, or a changed tree.
#[test]
fn path_errors_match_std_errno_and_change_nothing() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("path-errors");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, path_error_cases(dir.0.clone()))
        .unwrap();
    let bad = common::join_within(&rt, task, LIMIT, "the path cases");
    drop(rt);
    drop(dir);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ------------------------------------------------------ 8: buffers back

/// The shard side of `failed_and_partial_transfers_give_every_buffer_back_intact`.
async fn buffer_cases(d: PathBuf) -> io::Result<Vec<String>> {
    use std::os::unix::fs::FileExt;
    let path = d.join("data");
    std::fs::write(&path, b"abcdefgh")?;
    let mut bad = Vec::new();
    let ebadf: Result<(), Option<i32>> = Err(Some(libc::EBADF));

    // Writes through a read-only file: EBADF, every buffer back as it was.
    let ro = File::open(&path).await?;
    let payload: Vec<u8> = (0..100u8).collect();
    let (r, back) = ro.write_all_at(payload.clone(), 0).await;
    if o(r) != ebadf || back != payload {
        bad.push(format!("write_all_at on a read-only file: back {back:?}"));
    }
    let parts = vec![b"ab".to_vec(), Vec::new(), b"cd".to_vec()];
    let (r, back) = ro.write_vectored_at(parts.clone(), 0).await;
    if o(r) != ebadf || back != parts {
        bad.push(format!(
            "write_vectored_at on a read-only file: back {back:?}"
        ));
    }

    // Reads through a write-only file: EBADF, nothing marked as read.
    let wo = OpenOptions::new().write(true).open(&path).await?;
    let (r, back) = wo.read_exact_at(Vec::<u8>::with_capacity(8), 0).await;
    if o(r) != ebadf || !back.is_empty() || back.capacity() < 8 {
        bad.push(format!(
            "read_exact_at on a write-only file: len {} cap {}",
            back.len(),
            back.capacity()
        ));
    }
    let (r, back) = wo
        .read_vectored_at(vec![Vec::<u8>::with_capacity(4), Vec::with_capacity(4)], 0)
        .await;
    if o(r) != ebadf || back.len() != 2 || back.iter().any(|b| !b.is_empty()) {
        bad.push(format!(
            "read_vectored_at on a write-only file: back {back:?}"
        ));
    }

    // /dev/full: std's error (ENOSPC), the buffer back untouched.
    let block = vec![0x5Au8; 4096];
    let full = OpenOptions::new().write(true).open("/dev/full").await?;
    let (r, back) = full.write_all_at(block.clone(), 0).await;
    let ours = o(r);
    let theirs = o(std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")?
        .write_all_at(&block, 0));
    if ours != theirs || back != block {
        bad.push(format!(
            "write_all_at on /dev/full: ringlane {ours:?}, std {theirs:?}, buffer intact: {}",
            back == block
        ));
    }

    // Zero-capacity slices first, between and last: the bytes land in the
    // others, in order, and each buffer's length says how many it got.
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .await?;
    let caps = [0usize, 3, 0, 2, 0, 10];
    let bufs: Vec<Vec<u8>> = caps.iter().map(|&c| Vec::with_capacity(c)).collect();
    let (n, bufs) = rw.read_vectored_at(bufs, 0).await;
    let got: Vec<&[u8]> = bufs.iter().map(|b| b.as_slice()).collect();
    let want: Vec<&[u8]> = vec![
        &b""[..],
        &b"abc"[..],
        &b""[..],
        &b"de"[..],
        &b""[..],
        &b"fgh"[..],
    ];
    if errno(n) != Ok(8) || got != want {
        bad.push(format!("read_vectored_at with empty slices: {got:?}"));
    }
    let parts = vec![
        Vec::new(),
        b"AB".to_vec(),
        Vec::new(),
        b"C".to_vec(),
        Vec::new(),
    ];
    let (n, back) = rw.write_vectored_at(parts.clone(), 8).await;
    if errno(n) != Ok(3) || back != parts {
        bad.push(format!(
            "write_vectored_at with empty slices: back {back:?}"
        ));
    }
    if std::fs::read(&path)? != b"abcdefghABC" {
        bad.push(format!(
            "file after the vectored write: {:?}",
            std::fs::read(&path)?
        ));
    }

    // read_exact_at into a boxed slice, running into EOF: UnexpectedEof and
    // exactly the bytes before it (the rest untouched).
    let (r, boxed) = rw.read_exact_at(vec![0u8; 6].into_boxed_slice(), 8).await;
    if r.map_err(|e| e.kind()) != Err(ErrorKind::UnexpectedEof) || &boxed[..] != b"ABC\0\0\0" {
        bad.push(format!(
            "read_exact_at into a boxed slice at EOF: {boxed:?}"
        ));
    }
    Ok(bad)
}

/// Expected: a failed or partial transfer gives every buffer back: on a
/// read-only file `write_all_at`/`write_vectored_at` fail with EBADF and
/// return the buffers unchanged; on a write-only file `read_exact_at` and
/// `read_vectored_at` fail with EBADF and mark nothing as read; on
/// /dev/full `write_all_at` gives std's errno (ENOSPC) and the buffer;
/// zero-capacity slices first, between and last take no bytes and shift
/// none; `read_exact_at` into a boxed slice hitting EOF is `UnexpectedEof`
/// with exactly the bytes before EOF.
///
/// Why: the vectored ops compute their iovecs and then
/// redistribute the count over the buffers (`set_init`) themselves, and
/// the `*_all`/`*_exact` loops resubmit at moving offsets; a slot skipped
/// for a zero-length slice, a count spread past a buffer, or a buffer
/// dropped on an error path shows up here.
#[test]
fn failed_and_partial_transfers_give_every_buffer_back_intact() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("bufs-back");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, buffer_cases(dir.0.clone()))
        .unwrap();
    let bad = common::join_within(&rt, task, LIMIT, "the buffer cases").unwrap();
    drop(rt);
    drop(dir);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ------------------------------------------------------------- 9: close

/// Expected: `close()` on one `File` of several sharing an fd (clones, a
/// registered clone, a read in flight on a clone) returns and leaves the
/// others working: the in-flight read still gets its bytes, the clones
/// still write. The close of the last one really closes the write end:
/// the pipe's reader gets what was written, then end of file. No fd leaks.
///
/// Why: `close` only closes when it holds the last `Arc` of
/// the fd (fd.rs:44-46), while a registered `File` keeps the file open in
/// the ring's table through its slot (fixed.rs:28-36), which its ops hold
/// instead of the fd. A close that frees the fd under a clone's op, or a
/// last close that leaves the slot (and so the pipe's write end) alive,
/// shows up as a failed write, a lost read, or no end of file.
#[test]
fn closing_one_clone_leaves_the_others_working_and_the_last_close_really_closes() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (r, w) = common::pipe();
    // A std view of the read end, to see the end of file at the end.
    let watch = std::fs::File::from(r.try_clone().unwrap());
    let task = rt
        .handle()
        .spawn_pinned(0, async move {
            let reader = File::from(r);
            let reader2 = reader.clone();
            let pending = ringlane::spawn_local(async move {
                let (n, buf) = reader2.read(vec![0u8; 64]).timeout(LIMIT).await;
                n.map(|n| buf[..n].to_vec())
            })?;
            ringlane::yield_now().await; // the read is submitted
            // A clone's read is in flight: this close must not pull the fd
            // from under it.
            reader.close().await?;
            let writer = File::from(w);
            let (w2, w3) = (writer.clone(), writer.register()?);
            writer.close().await?;
            let (n, _) = w2.write(b"from a clone".to_vec()).await;
            n?;
            let got = pending
                .await
                .map_err(|e| io::Error::other(e.to_string()))??;
            w2.close().await?;
            let (n, _) = w3.write(b"+fixed".to_vec()).await;
            n?;
            w3.close().await?; // the last: the write end closes now
            Ok::<_, io::Error>(got)
        })
        .unwrap();
    let got = common::join_within(&rt, task, LIMIT, "the close cases")
        .expect("an op on a clone failed after another clone was closed");
    assert_eq!(
        got, b"from a clone",
        "the read in flight on a clone lost its bytes"
    );
    // The write end must be closed: the reader gets "+fixed", then EOF.
    // SAFETY: F_SETFL on an fd we own.
    unsafe { libc::fcntl(watch.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut rest = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 64];
    let mut w = &watch;
    loop {
        match w.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "the pipe's write end is still open after the last File::close returned \
                     (read so far: {rest:?})"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("reading the pipe: {e}"),
        }
    }
    assert_eq!(rest, b"+fixed");
    drop(watch);
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd leaked");
}
