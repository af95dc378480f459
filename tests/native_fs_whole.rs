//! The whole-file helpers (`read`, `read_to_string`, `write`), the tree and
//! link path ops (`create_dir_all`, `hard_link`, `symlink`, `try_exists`)
//! and `File::set_len`, each against `std::fs` on the same input: the same
//! bytes, the same errno, and no fd left open.
//!
//! Every test holds `SERIAL` (fd counts are process-wide).

mod common;

use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ringlane::native::fs::{self as nfs, File, OpenOptions};

use common::LIMIT;
use common::fixed_io::on_shard;
use common::fs_edges::{Fifo, errno};
use common::native_io::{SERIAL, TempDir, settled_fd_count};

/// Runs `f` on shard 0 of a fresh runtime, then checks that the fd count
/// is back where it started.
fn run<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let out = on_shard(&rt, 0, LIMIT, f);
    drop(rt);
    assert_eq!(common::fd_count(), before, "an fd was left open");
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn read_and_write_match_std_for_every_size_and_kind_of_file() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-sizes");
    // Around the first read's size (8 KiB, for files statx calls empty)
    // and well past it.
    for len in [0, 1, 4095, 8191, 8192, 8193, (1 << 20) + 3] {
        let path = dir.0.join(format!("f{len}"));
        let data = pattern(len);
        let (p, d) = (path.clone(), data.clone());
        let back = run(async move {
            nfs::write(&p, &d).await?;
            nfs::read(&p).await
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data, "written, {len} bytes");
        assert_eq!(back.len(), len);
        assert!(back == data, "read back, {len} bytes");
    }
    // statx says 0 bytes for /proc files: read grows its buffer as std's.
    // (/proc/self/smaps: a few hundred bytes per mapping, dozens of them.)
    let ours = run(nfs::read("/proc/self/smaps")).unwrap();
    assert!(
        ours.len() > 16384,
        "a short /proc/self/smaps: {}",
        ours.len()
    );
    assert!(ours.ends_with(b"\n"));
    // A write truncates what was longer.
    let path = dir.0.join("shrinks");
    std::fs::write(&path, pattern(10_000)).unwrap();
    let p = path.clone();
    run(async move { nfs::write(&p, b"short").await }).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"short");
}

#[test]
fn read_takes_a_fifo_until_its_writer_closes_and_write_fills_one() {
    let _serial = SERIAL.lock();
    let fifo = Fifo::new("whole-fifo");
    let data = pattern(300_000); // more than a pipe holds
    let (path, d) = (fifo.path.clone(), data.clone());
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        w.write_all(&d).unwrap();
    });
    let p = fifo.path.clone();
    let got = run(async move { nfs::read(&p).await }).unwrap();
    writer.join().unwrap();
    assert!(
        got == data,
        "{} of {} bytes came through",
        got.len(),
        data.len()
    );

    let path = fifo.path.clone();
    let reader = std::thread::spawn(move || std::fs::read(&path).unwrap());
    let (p, d) = (fifo.path.clone(), data.clone());
    run(async move { nfs::write(&p, d).await }).unwrap();
    assert!(
        reader.join().unwrap() == data,
        "the FIFO's reader got other bytes"
    );
}

#[test]
fn whole_file_errors_match_std() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-errors");
    let missing = dir.0.join("missing");
    let in_missing = dir.0.join("no/such/file");
    let bad_utf8 = dir.0.join("latin1");
    std::fs::write(&bad_utf8, [b'c', b'a', 0xe9]).unwrap();
    let nul = PathBuf::from("a\0b");
    let cases: Vec<(&str, PathBuf)> = vec![
        ("missing file", missing),
        ("a directory", dir.0.clone()),
        ("inner NUL", nul),
        ("not UTF-8", bad_utf8),
    ];
    for (what, path) in cases {
        let p = path.clone();
        let (read, text) = run(async move {
            let text = nfs::read_to_string(&p).await.map_err(|e| e.kind());
            (errno(nfs::read(&p).await), text)
        });
        let std_read = errno(std::fs::read(&path));
        let std_text = std::fs::read_to_string(&path).map_err(|e| e.kind());
        assert_eq!(read, std_read, "read of {what}");
        assert_eq!(text, std_text, "read_to_string of {what}");
    }
    for (what, path) in [
        ("a missing directory", in_missing),
        ("a directory", dir.0.clone()),
    ] {
        let p = path.clone();
        let ours = run(async move { errno(nfs::write(&p, b"x").await) });
        assert_eq!(
            ours,
            errno(std::fs::write(&path, b"x")),
            "write into {what}"
        );
    }
    let ours = run(async { nfs::write("a\0b", b"x").await.map_err(|e| e.kind()) });
    assert_eq!(ours, Err(ErrorKind::InvalidInput));
}

#[test]
fn create_dir_all_matches_std_and_tolerates_racing_creators() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-mkdir-all");
    let deep = dir.0.join("a/b/c/d");
    let d = deep.clone();
    let (first, again) =
        run(async move { (nfs::create_dir_all(&d).await, nfs::create_dir_all(&d).await) });
    first.unwrap();
    again.unwrap();
    assert!(deep.is_dir());
    // Through a file, and onto a file: the same errno as std.
    let file = dir.0.join("file");
    std::fs::write(&file, b"x").unwrap();
    for path in [file.join("sub/dir"), file.clone(), PathBuf::from("/")] {
        let p = path.clone();
        let ours = run(async move { errno(nfs::create_dir_all(&p).await) });
        assert_eq!(
            ours,
            errno(std::fs::create_dir_all(&path)),
            "{}",
            path.display()
        );
    }
    // Eight tasks on two shards build overlapping trees at once: each
    // finds some levels made by another, and none fails.
    let before = settled_fd_count();
    let rt = common::runtime(2);
    let h = rt.handle();
    let top = dir.0.join("race");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let p = top.join(format!("x/y/z{}/w", i % 3));
            h.spawn_pinned(i % 2, async move { nfs::create_dir_all(&p).await })
                .unwrap()
        })
        .collect();
    for t in tasks {
        common::join_within(&rt, t, LIMIT, "a racing create_dir_all").unwrap();
    }
    drop(rt);
    assert_eq!(common::fd_count(), before);
    for i in 0..3 {
        assert!(top.join(format!("x/y/z{i}/w")).is_dir());
    }
}

#[test]
fn links_and_try_exists_match_std() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-links");
    let d = dir.0.clone();
    std::fs::write(d.join("orig"), b"data").unwrap();
    let ours = run({
        let d = d.clone();
        async move {
            let j = |n: &str| d.join(n);
            vec![
                errno(nfs::hard_link(j("orig"), j("hard")).await),
                errno(nfs::hard_link(j("orig"), j("hard")).await), // exists
                errno(nfs::hard_link(j("none"), j("hard2")).await),
                errno(nfs::symlink(j("orig"), j("soft")).await),
                errno(nfs::symlink(j("orig"), j("soft")).await), // exists
                errno(nfs::symlink(j("none"), j("dangling")).await),
                // A hard link to a symbolic link links the link itself.
                errno(nfs::hard_link(j("dangling"), j("hard-to-link")).await),
                errno(nfs::symlink("x", j("no/dir/link")).await),
            ]
        }
    });
    let dir2 = TempDir::new("whole-links-std");
    let e = dir2.0.clone();
    std::fs::write(e.join("orig"), b"data").unwrap();
    let j = |n: &str| e.join(n);
    let theirs = vec![
        errno(std::fs::hard_link(j("orig"), j("hard"))),
        errno(std::fs::hard_link(j("orig"), j("hard"))),
        errno(std::fs::hard_link(j("none"), j("hard2"))),
        errno(std::os::unix::fs::symlink(j("orig"), j("soft"))),
        errno(std::os::unix::fs::symlink(j("orig"), j("soft"))),
        errno(std::os::unix::fs::symlink(j("none"), j("dangling"))),
        errno(std::fs::hard_link(j("dangling"), j("hard-to-link"))),
        errno(std::os::unix::fs::symlink("x", j("no/dir/link"))),
    ];
    assert_eq!(ours, theirs);
    assert_eq!(std::fs::read(d.join("hard")).unwrap(), b"data");
    assert_eq!(std::fs::read(d.join("soft")).unwrap(), b"data");
    assert!(
        std::fs::symlink_metadata(d.join("hard-to-link"))
            .unwrap()
            .is_symlink()
    );

    let names = ["orig", "soft", "dangling", "none", "orig/below"];
    let paths: Vec<PathBuf> = names.iter().map(|n| d.join(n)).collect();
    let ps = paths.clone();
    let ours = run(async move {
        let mut out = Vec::new();
        for p in &ps {
            out.push(errno(nfs::try_exists(p).await));
        }
        out.push(errno(nfs::try_exists("a\0b").await));
        out
    });
    let mut theirs: Vec<_> = paths.iter().map(|p| errno(std::fs::exists(p))).collect();
    theirs.push(Err(None)); // InvalidInput, no errno: std says the same below
    assert!(std::fs::exists("a\0b").is_err_and(|e| e.kind() == ErrorKind::InvalidInput));
    assert_eq!(ours, theirs);
}

/// Length after `set_len` and what reads back, for one file.
fn len_and_bytes(path: &Path) -> (u64, Vec<u8>) {
    (
        std::fs::metadata(path).unwrap().len(),
        std::fs::read(path).unwrap(),
    )
}

#[test]
fn set_len_extends_with_zeros_shrinks_and_fails_like_std() {
    let _serial = SERIAL.lock();
    let probe = ringlane::Runtime::builder().shards(1).build().unwrap();
    if !probe.handle().ring_features().ftruncate {
        eprintln!("SKIPPED: this kernel lacks IORING_OP_FTRUNCATE (Linux 6.9)");
        let p = std::env::temp_dir().join(format!("ringlane-set-len-old-{}", std::process::id()));
        let q = p.clone();
        let got = on_shard(&probe, 0, LIMIT, async move {
            File::create(&q).await?.set_len(1).await
        });
        let _ = std::fs::remove_file(p);
        assert_eq!(got.unwrap_err().kind(), ErrorKind::Unsupported);
        return;
    }
    drop(probe);
    let dir = TempDir::new("whole-set-len");
    let (ours, theirs) = (dir.0.join("ours"), dir.0.join("theirs"));
    std::fs::write(&ours, pattern(100)).unwrap();
    std::fs::write(&theirs, pattern(100)).unwrap();
    let mut steps = Vec::new();
    let o = ours.clone();
    let results = run(async move {
        let f = OpenOptions::new().read(true).write(true).open(&o).await?;
        let mut got = Vec::new();
        for len in [5000u64, 10, 0, 3] {
            got.push(errno(f.set_len(len).await));
        }
        // The position does not move: a write at it lands at offset 0.
        let (n, _) = f.write(b"ab".to_vec()).await;
        n?;
        let ro = File::open(&o).await?;
        got.push(errno(ro.set_len(1).await));
        got.push(f.set_len(u64::MAX).await.map_err(|e| match e.kind() {
            ErrorKind::InvalidInput => Some(-1),
            _ => e.raw_os_error(),
        }));
        Ok::<_, io::Error>(got)
    })
    .unwrap();
    let std_f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&theirs)
        .unwrap();
    for len in [5000u64, 10, 0, 3] {
        steps.push(errno(std_f.set_len(len)));
    }
    (&std_f).write_all(b"ab").unwrap();
    steps.push(errno(std::fs::File::open(&theirs).unwrap().set_len(1)));
    steps.push(Err(Some(-1))); // std: InvalidInput for a size beyond i64::MAX
    assert!(
        std_f
            .set_len(u64::MAX)
            .is_err_and(|e| e.kind() == ErrorKind::InvalidInput)
    );
    assert_eq!(results, steps);
    assert_eq!(len_and_bytes(&ours), len_and_bytes(&theirs));
    assert_eq!(len_and_bytes(&ours).1, [b'a', b'b', 0]);
}

#[test]
fn a_tokio_task_reads_and_writes_whole_files_through_the_handle() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-tokio");
    let rt = common::runtime(1);
    let h = rt.handle();
    let path = dir.0.join("t");
    let p = path.clone();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = tokio_rt.block_on(async move {
        let task = h
            .spawn_pinned(0, async move {
                nfs::write(&p, "from tokio").await?;
                nfs::read_to_string(&p).await
            })
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), task).await
    });
    assert_eq!(got.unwrap().unwrap().unwrap(), "from tokio");
    assert_eq!(std::fs::read(&path).unwrap(), b"from tokio");
}
