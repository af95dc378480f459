//! The `tokio::fs` calls without an io_uring opcode (`read_dir`,
//! `canonicalize`, `read_link`, `set_permissions`, `remove_dir_all`,
//! `File::set_permissions`), run on the blocking pool, and the fuller
//! `Metadata`: each against `std::fs` on the same input (the same names,
//! numbers and errno), with no fd left open, cancel-safe listings, and an
//! error (never a hang) once the runtime shuts down.
//!
//! Every test holds `SERIAL` (fd counts are process-wide).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::os::unix::fs::{DirEntryExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use ringlane::native::fs::{self as nfs, File, FileType};

use common::LIMIT;
use common::fs_edges::{Fifo, errno};
use common::native_io::{SERIAL, TempDir, on_fresh_shard, poll_once, settled_fd_count};

/// A directory of `files` regular files, a subdirectory, a symbolic link
/// to a file, a dangling one and a FIFO.
fn populated(name: &str, files: usize) -> TempDir {
    let dir = TempDir::new(name);
    for i in 0..files {
        std::fs::write(dir.0.join(format!("f{i:03}")), [i as u8]).unwrap();
    }
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("f000"), dir.0.join("link")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("nowhere"), dir.0.join("dangling")).unwrap();
    let fifo = std::ffi::CString::new(format!("{}/fifo", dir.0.display())).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    dir
}

/// What a listing says about one entry: its type, its inode, its
/// not-followed metadata's size, mode and inode.
type Listed = BTreeMap<OsString, (String, u64, u64, u32, u64)>;

fn kind(t: FileType) -> String {
    let parts = [
        (t.is_file(), "file"),
        (t.is_dir(), "dir"),
        (t.is_symlink(), "symlink"),
        (t.is_fifo(), "fifo"),
        (t.is_socket(), "socket"),
        (t.is_char_device(), "char"),
        (t.is_block_device(), "block"),
    ];
    let named: Vec<&str> = parts.iter().filter(|p| p.0).map(|p| p.1).collect();
    named.join("+")
}

fn std_listing(path: &Path) -> Listed {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let t = kind(FileType::from(e.file_type().unwrap()));
            (e.file_name(), (t, e.ino(), m.len(), m.mode(), m.ino()))
        })
        .collect()
}

async fn our_listing(path: PathBuf) -> io::Result<(Listed, Vec<OsString>)> {
    let mut dir = nfs::read_dir(&path).await?;
    let (mut listed, mut order) = (Listed::new(), Vec::new());
    while let Some(e) = dir.next_entry().await? {
        assert_eq!(e.path(), path.join(e.file_name()));
        let m = e.metadata().await?;
        let t = kind(e.file_type().await?);
        assert_eq!(
            t,
            kind(m.file_type()),
            "{:?}: listing and statx",
            e.file_name()
        );
        order.push(e.file_name());
        listed.insert(e.file_name(), (t, e.ino(), m.len(), m.mode(), m.ino()));
    }
    Ok((listed, order))
}

/// Expected: for a directory of more entries than one trip to the pool
/// reads (32), every entry comes once, with the type, inode and metadata
/// std gives; `.` and `..` are left out; an empty directory lists nothing.
#[test]
fn read_dir_lists_what_std_lists_across_many_chunks() {
    let _serial = SERIAL.lock();
    for files in [0, 1, 31, 32, 33, 100] {
        let dir = populated("pooled-list", files);
        let p = dir.0.clone();
        let (ours, order) = on_fresh_shard(our_listing(p)).unwrap();
        assert_eq!(order.len(), files + 4, "each entry once");
        assert_eq!(ours, std_listing(&dir.0), "{files} files");
    }
    let empty = TempDir::new("pooled-empty");
    let p = empty.0.clone();
    let (ours, _) = on_fresh_shard(our_listing(p)).unwrap();
    assert!(ours.is_empty());
}

/// Expected: the errors of `std::fs::read_dir`, errno for errno.
#[test]
fn read_dir_errors_match_std() {
    let _serial = SERIAL.lock();
    let dir = populated("pooled-errors", 1);
    for path in [
        dir.0.join("missing"),
        dir.0.join("f000"),
        dir.0.join("dangling"),
        dir.0.join("f000/below-a-file"),
        PathBuf::from("with\0nul"),
    ] {
        let p = path.clone();
        let ours = on_fresh_shard(async move { nfs::read_dir(&p).await.map(drop) });
        let std = std::fs::read_dir(&path).map(drop);
        assert_eq!(
            ours.as_ref().map_err(io::Error::kind),
            std.as_ref().map_err(io::Error::kind),
            "{path:?}"
        );
        assert_eq!(errno(ours), errno(std), "{path:?}");
    }
}

/// A one-shard runtime with a single blocking-pool thread, so that a
/// closure queued behind [`occupy_pool`]'s waits for its release.
fn one_pool_thread() -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .build()
        .unwrap()
}

/// Occupies the runtime's only pool thread until the sender is used (or
/// dropped): the pool runs what is queued next only after that.
fn occupy_pool() -> mpsc::Sender<()> {
    let (release, wait) = mpsc::channel::<()>();
    ringlane::spawn_blocking(move || {
        let _ = wait.recv_timeout(LIMIT);
    })
    .unwrap();
    release
}

/// Expected: a `next_entry` future dropped while its chunk waits to be
/// read on the pool loses no entry: the next call gets the chunk (the
/// race `next_entry`'s cancel safety pins down). The pool is held busy
/// before each call, so the calls that need a chunk (the 1st, 33rd and
/// 65th of 74 entries) are pending when dropped, on any machine.
#[test]
fn a_next_entry_dropped_while_its_chunk_is_read_loses_no_entry() {
    let _serial = SERIAL.lock();
    let dir = populated("pooled-cancel", 70);
    let rt = one_pool_thread();
    let p = dir.0.clone();
    let (names, pending_drops) = common::on_shard_0(&rt, async move {
        let mut rd = nfs::read_dir(&p).await.unwrap();
        let (mut names, mut pending_drops) = (Vec::new(), 0);
        loop {
            let release = occupy_pool();
            let mut next = Box::pin(rd.next_entry());
            let first = std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await;
            let got = match first {
                Poll::Ready(got) => got,
                Poll::Pending => {
                    pending_drops += 1;
                    drop(next);
                    release.send(()).unwrap();
                    rd.next_entry().await
                }
            };
            drop(release);
            match got.unwrap() {
                Some(e) => names.push(e.file_name()),
                None => break,
            }
        }
        (names, pending_drops)
    });
    assert_eq!(
        pending_drops, 3,
        "a call that needed a chunk was not pending"
    );
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "an entry came twice");
    assert_eq!(names.len(), 74, "an entry was lost");
}

/// Expected: a `ReadDir` dropped while a chunk waits to be read on the
/// pool closes the directory's fd once the chunk ran (the listing is
/// dropped with the chunk's output).
#[test]
fn a_read_dir_dropped_while_its_chunk_is_read_closes_its_fd() {
    let _serial = SERIAL.lock();
    let dir = populated("pooled-drop", 40);
    let rt = one_pool_thread();
    let before = common::fd_count(); // the runtime's own fds included
    let p = dir.0.clone();
    let release = common::on_shard_0(&rt, async move {
        let mut rd = nfs::read_dir(&p).await.unwrap();
        let release = occupy_pool();
        let mut next = Box::pin(rd.next_entry());
        assert!(poll_once(&mut next).await, "the chunk waits for the pool");
        drop(next);
        drop(rd);
        release
    });
    assert_eq!(
        common::fd_count(),
        before + 1,
        "the listing's fd, still open"
    );
    release.send(()).unwrap();
    common::wait_until("the listing's fd closed", || common::fd_count() == before);
    drop(rt);
}

/// Expected: a listing the runtime's shutdown catches between chunks
/// reports the shutdown once, then ends (`Ok(None)`), with no hang and no
/// fd left open.
#[test]
fn a_listing_caught_by_shutdown_reports_it_once_then_ends() {
    let _serial = SERIAL.lock();
    let dir = populated("pooled-shutdown", 40);
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let h = rt.handle().clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let p = dir.0.clone();
    let j = h
        .spawn_pinned(0, async move {
            let mut rd = nfs::read_dir(&p).await?;
            let mut seen = 0;
            for _ in 0..32 {
                rd.next_entry()
                    .await?
                    .expect("32 entries in the first chunk");
                seen += 1;
            }
            ready_tx.send(()).unwrap();
            let h = ringlane::Handle::current().unwrap();
            while !h.is_shutdown() {
                ringlane::time::sleep(Duration::from_millis(1)).await;
            }
            let refused = rd.next_entry().await.map(|e| e.is_some());
            let after = rd.next_entry().await.map(|e| e.is_some());
            io::Result::Ok((
                seen,
                refused.map_err(|e| e.kind()),
                after.map_err(|e| e.kind()),
            ))
        })
        .unwrap();
    ready_rx.recv_timeout(LIMIT).unwrap();
    let report = rt.shutdown(Duration::from_secs(5));
    assert!(report.is_clean(), "{report:?}");
    let (seen, refused, after) = common::block_on(j).unwrap().unwrap();
    assert_eq!(seen, 32);
    assert_eq!(
        refused,
        Err(io::ErrorKind::BrokenPipe),
        "the shutdown, once"
    );
    assert_eq!(after, Ok(false), "then the end");
    assert_eq!(common::fd_count(), before, "an fd was left open");
}

/// Expected: off any runtime the pooled calls return an error (no runtime
/// to run them), not a panic.
#[test]
fn pooled_calls_off_the_runtime_are_an_error() {
    let _serial = SERIAL.lock();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut list = std::pin::pin!(nfs::read_dir("/"));
    match list.as_mut().poll(&mut cx) {
        Poll::Ready(r) => assert_eq!(r.map(drop).unwrap_err().kind(), io::ErrorKind::Other),
        Poll::Pending => panic!("read_dir waits off the runtime"),
    }
    let mut canon = std::pin::pin!(nfs::canonicalize("/"));
    match canon.as_mut().poll(&mut cx) {
        Poll::Ready(r) => assert_eq!(r.unwrap_err().kind(), io::ErrorKind::Other),
        Poll::Pending => panic!("canonicalize waits off the runtime"),
    }
}

/// Expected: `canonicalize`, `read_link`, `set_permissions` and
/// `remove_dir_all` give what std gives, errno for errno.
#[test]
fn path_calls_on_the_pool_match_std() {
    let _serial = SERIAL.lock();
    let dir = populated("pooled-paths", 2);
    let d = dir.0.clone();
    for path in [
        d.join("link"),
        d.join("sub/../f001"),
        d.join("dangling"),
        d.join("missing"),
        d.join("f000/x"),
        PathBuf::from("."),
        PathBuf::from("with\0nul"),
    ] {
        let p = path.clone();
        let (canon, link) =
            on_fresh_shard(async move { (nfs::canonicalize(&p).await, nfs::read_link(&p).await) });
        assert_eq!(
            errno(canon),
            errno(std::fs::canonicalize(&path)),
            "{path:?}"
        );
        assert_eq!(errno(link), errno(std::fs::read_link(&path)), "{path:?}");
    }
    // set_permissions follows links, as std's.
    let p = d.join("link");
    on_fresh_shard(async move { nfs::set_permissions(&p, PermissionsExt::from_mode(0o604)).await })
        .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&d.join("f000")), 0o604);
    let p = d.join("missing");
    let ours =
        on_fresh_shard(
            async move { nfs::set_permissions(&p, PermissionsExt::from_mode(0o600)).await },
        );
    let std = std::fs::set_permissions(d.join("missing"), PermissionsExt::from_mode(0o600));
    assert_eq!(errno(ours), errno(std));
    // remove_dir_all: a tree with a link out of it (not followed), a file
    // (NotADirectory), a missing path.
    let outside = TempDir::new("pooled-outside");
    std::fs::write(outside.0.join("kept"), b"k").unwrap();
    std::fs::create_dir_all(d.join("sub/deep/er")).unwrap();
    std::os::unix::fs::symlink(&outside.0, d.join("sub/out")).unwrap();
    let p = d.join("sub");
    on_fresh_shard(async move { nfs::remove_dir_all(&p).await }).unwrap();
    assert!(!d.join("sub").exists());
    assert!(outside.0.join("kept").exists(), "the link was followed");
    for path in [d.join("f001"), d.join("missing")] {
        let p = path.clone();
        let ours = on_fresh_shard(async move { nfs::remove_dir_all(&p).await });
        assert_eq!(
            errno(ours),
            errno(std::fs::remove_dir_all(&path)),
            "{path:?}"
        );
    }
}

/// Expected: `File::set_permissions` sets the open file's mode; dropped
/// before the pool thread runs it, it still finishes, and the fd (kept
/// open by the closure, so its number cannot be reused under `fchmod`)
/// closes after it.
#[test]
fn file_set_permissions_sets_the_mode_and_keeps_the_fd_until_it_ran() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("pooled-fchmod");
    let path = dir.0.join("f");
    let p = path.clone();
    on_fresh_shard(async move {
        let f = File::create(&p).await?;
        f.set_permissions(PermissionsExt::from_mode(0o611)).await?;
        f.close().await
    })
    .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&path), 0o611);

    // One pool thread, held busy, so the fchmod waits in the pool's queue
    // while its future and the `File` are dropped.
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let before = common::fd_count(); // the runtime's own fds included
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let busy = rt
        .handle()
        .spawn_blocking(move || release_rx.recv_timeout(LIMIT))
        .unwrap();
    let p = path.clone();
    let j = rt
        .handle()
        .spawn_pinned(0, async move {
            let f = File::open(&p).await.unwrap();
            let mut set = Box::pin(f.set_permissions(PermissionsExt::from_mode(0o644)));
            assert!(poll_once(&mut set).await, "queued behind the busy thread");
            drop(set);
            drop(f);
        })
        .unwrap();
    common::block_on(j).unwrap();
    assert_eq!(mode(&path), 0o611, "not run yet");
    assert!(
        common::fd_count() > before,
        "the queued closure keeps the fd open"
    );
    release_tx.send(()).unwrap();
    common::block_on(busy).unwrap().unwrap();
    common::wait_until("the fchmod ran", || mode(&path) == 0o644);
    common::wait_until("the fd closed", || common::fd_count() == before);
    drop(rt);
}

/// Every number `MetadataExt` gives, for `ours` and std's alike.
fn numbers(m: &impl MetadataExt) -> [i64; 16] {
    [
        m.dev() as i64,
        m.ino() as i64,
        m.mode().into(),
        m.nlink() as i64,
        m.uid().into(),
        m.gid().into(),
        m.rdev() as i64,
        m.size() as i64,
        m.atime(),
        m.atime_nsec(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.blksize() as i64,
        m.blocks() as i64,
    ]
}

/// Expected: `Metadata`'s fuller face (file type, permissions, times,
/// the `MetadataExt` numbers) says what std's says, for a file, a
/// directory, a link (not followed), a FIFO and a character device.
#[test]
fn metadata_matches_std_number_for_number() {
    let _serial = SERIAL.lock();
    let dir = populated("pooled-meta", 1);
    let fifo = Fifo::new("pooled-meta-fifo");
    let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_nanos(1_234_567_891_011_121_314);
    std::fs::File::options()
        .write(true)
        .open(dir.0.join("f000"))
        .unwrap()
        .set_times(
            std::fs::FileTimes::new()
                .set_accessed(when)
                .set_modified(when),
        )
        .unwrap();
    for (path, follow) in [
        (dir.0.join("f000"), true),
        (dir.0.join("sub"), true),
        (dir.0.join("link"), false),
        (dir.0.join("link"), true),
        (fifo.path.clone(), true),
        (PathBuf::from("/dev/null"), true),
    ] {
        let p = path.clone();
        let ours = on_fresh_shard(async move {
            if follow {
                nfs::metadata(&p).await
            } else {
                nfs::symlink_metadata(&p).await
            }
        })
        .unwrap();
        let std = if follow {
            std::fs::metadata(&path)
        } else {
            std::fs::symlink_metadata(&path)
        }
        .unwrap();
        let what = format!("{path:?}, following links: {follow}");
        assert_eq!(
            kind(ours.file_type()),
            kind(FileType::from(std.file_type())),
            "{what}"
        );
        assert_eq!(ours.permissions(), std.permissions(), "{what}");
        assert_eq!(ours.modified().ok(), std.modified().ok(), "{what}");
        assert_eq!(ours.accessed().ok(), std.accessed().ok(), "{what}");
        assert_eq!(ours.created().ok(), std.created().ok(), "{what}");
        assert_eq!(numbers(&ours), numbers(&std), "{what}");
        assert_eq!(
            ours.mode(),
            std.mode(),
            "{what}: the inherent mode is st_mode too"
        );
    }
}

/// Expected: a `ReadDir` made on a shard and then polled by a Tokio task
/// (join handles and listings are awaited anywhere) lists every entry:
/// its chunks go to the pool of the runtime it was made on.
///
/// Why it may fail: each chunk went to the *current* runtime's pool; on a
/// Tokio thread there is none, so the listing ended after an error.
#[test]
fn a_read_dir_polled_by_a_tokio_task_reads_on_its_runtimes_pool() {
    let _serial = SERIAL.lock();
    let dir = populated("pooled-tokio", 40);
    let rt = common::runtime(1);
    let p = dir.0.clone();
    let rd = common::on_shard_0(&rt, async move { nfs::read_dir(&p).await.unwrap() });
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let names = tokio.block_on(async move {
        let mut rd = rd;
        let mut names = Vec::new();
        while let Some(e) = rd.next_entry().await.unwrap() {
            names.push(e.file_name());
        }
        names
    });
    assert_eq!(names.len(), 44);
}
