//! Native files held to std: every `OpenOptions` flag combination gives
//! std's result; failed and partial transfers give every buffer back
//! intact; closing one clone of a `File` leaves the others working, and the
//! last close closes.

mod common;

use std::io::{self, ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fs::{File, OpenOptions};

use common::LIMIT;
use common::fs_edges::*;
use common::native_io::{SERIAL, TempDir, settled_fd_count};

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
