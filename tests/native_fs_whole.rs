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
use common::native_io::{SERIAL, TempDir, on_fresh_shard, settled_fd_count};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn read_and_write_match_std_for_every_size_and_kind_of_file() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-sizes");
    // Around the first read's size (8 KiB), the size read without asking
    // it (64 KiB, then a 32-byte probe before the size is asked), and well
    // past both.
    for len in [
        0,
        1,
        4095,
        8191,
        8192,
        8193,
        20_000,
        65_535,
        65_536,
        65_537,
        65_536 + 32,
        65_536 + 33,
        (1 << 20) + 3,
    ] {
        let path = dir.0.join(format!("f{len}"));
        let data = pattern(len);
        let (p, d) = (path.clone(), data.clone());
        let back = on_fresh_shard(async move {
            nfs::write(&p, &d).await?;
            nfs::read(&p).await
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data, "written, {len} bytes");
        assert_eq!(back.len(), len);
        assert!(back == data, "read back, {len} bytes");
    }
    // statx says 0 bytes for /proc files, and 4096 for /sys attributes
    // that hold less: read grows its buffer, and stops at the first
    // read that returns nothing, not at the size statx gave.
    for stable in ["/proc/self/cmdline", "/sys/devices/system/cpu/online"] {
        if !Path::new(stable).exists() {
            eprintln!("SKIPPED a case: no {stable} here");
            continue;
        }
        let ours = on_fresh_shard(nfs::read(stable)).unwrap();
        assert_eq!(ours, std::fs::read(stable).unwrap(), "{stable}");
    }
    // (/proc/self/smaps: a few hundred bytes per mapping, dozens of them,
    // so the buffer grows many times; its content moves between reads.)
    let ours = on_fresh_shard(nfs::read("/proc/self/smaps")).unwrap();
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
    on_fresh_shard(async move { nfs::write(&p, b"short").await }).unwrap();
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
    let got = on_fresh_shard(async move { nfs::read(&p).await }).unwrap();
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
    on_fresh_shard(async move { nfs::write(&p, d).await }).unwrap();
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
        let (read, text) = on_fresh_shard(async move {
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
        let ours = on_fresh_shard(async move { errno(nfs::write(&p, b"x").await) });
        assert_eq!(
            ours,
            errno(std::fs::write(&path, b"x")),
            "write into {what}"
        );
    }
    let ours = on_fresh_shard(async { nfs::write("a\0b", b"x").await.map_err(|e| e.kind()) });
    assert_eq!(ours, Err(ErrorKind::InvalidInput));
}

#[test]
fn create_dir_all_matches_std_and_tolerates_racing_creators() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-mkdir-all");
    let deep = dir.0.join("a/b/c/d");
    let d = deep.clone();
    let (first, again) =
        on_fresh_shard(
            async move { (nfs::create_dir_all(&d).await, nfs::create_dir_all(&d).await) },
        );
    first.unwrap();
    again.unwrap();
    assert!(deep.is_dir());
    // Through a file, and onto a file: the same errno as std.
    let file = dir.0.join("file");
    std::fs::write(&file, b"x").unwrap();
    for path in [file.join("sub/dir"), file.clone(), PathBuf::from("/")] {
        let p = path.clone();
        let ours = on_fresh_shard(async move { errno(nfs::create_dir_all(&p).await) });
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
    let ours = on_fresh_shard({
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
    let ours = on_fresh_shard(async move {
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
    let results = on_fresh_shard(async move {
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

/// A sparse file of 2^62 bytes on tmpfs: no buffer of its size can be had,
/// and both say `OutOfMemory` instead of aborting.
#[test]
fn a_file_larger_than_memory_is_out_of_memory_as_with_std() {
    let _serial = SERIAL.lock();
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("SKIPPED: no /dev/shm here for a sparse 2^62-byte file");
        return;
    }
    let path = shm.join(format!("ringlane-huge-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    if let Err(e) = file.set_len(1 << 62) {
        let _ = std::fs::remove_file(&path);
        eprintln!("SKIPPED: /dev/shm refuses a 2^62-byte sparse file: {e}");
        return;
    }
    drop(file);
    let p = path.clone();
    let ours = on_fresh_shard(async move { nfs::read(&p).await.map(|v| v.len()) });
    let theirs = std::fs::read(&path).map(|v| v.len());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(ours.unwrap_err().kind(), ErrorKind::OutOfMemory);
    assert_eq!(theirs.unwrap_err().kind(), ErrorKind::OutOfMemory);
}

const ZERO_CHILD: &str = "RINGLANE_READ_DEV_ZERO_CHILD";

/// `/dev/zero` never ends: the buffer doubles until the address space
/// runs out, which must be an `OutOfMemory` error (as `std`'s), not an
/// abort. Run in a child process with a limited address space.
#[test]
fn reading_dev_zero_runs_out_of_memory_as_an_error() {
    let (status, out) =
        common::child::run_ignored("read_dev_zero_child", ZERO_CHILD, Duration::from_secs(60));
    assert!(status.success(), "the child failed: {out}");
    assert!(out.contains("both out of memory"), "{out}");
}

#[test]
#[ignore = "run in a child process by reading_dev_zero_runs_out_of_memory_as_an_error"]
fn read_dev_zero_child() {
    if std::env::var_os(ZERO_CHILD).is_none() {
        return;
    }
    let rt = common::runtime(1);
    // Warm up (the ring, the task, the timer) before the limit.
    on_shard(&rt, 0, LIMIT, async { nfs::try_exists("/").await.unwrap() });
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let pages: u64 = statm.split(' ').next().unwrap().parse().unwrap();
    let limit = pages * page + (768 << 20);
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid rlimit struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
    let ours = on_shard(&rt, 0, LIMIT, async {
        nfs::read("/dev/zero").await.map(|v| v.len())
    });
    let theirs = std::fs::read("/dev/zero").map(|v| v.len());
    assert_eq!(ours.unwrap_err().kind(), ErrorKind::OutOfMemory);
    assert_eq!(theirs.unwrap_err().kind(), ErrorKind::OutOfMemory);
    println!("both out of memory");
}

/// Relative paths resolve against the working directory on the shard as
/// with `std` ("" and "." and trailing slashes and `..` included), and a
/// dangling symbolic link on the way is no directory.
#[test]
fn create_dir_all_takes_relative_and_odd_paths_as_std_does() {
    let _serial = SERIAL.lock();
    let (ours, theirs) = (
        TempDir::new("whole-rel-ours"),
        TempDir::new("whole-rel-std"),
    );
    for d in [&ours.0, &theirs.0] {
        std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
        std::fs::write(d.join("file"), b"x").unwrap();
    }
    let cases = [
        "",
        ".",
        "..",
        "rel/a/b/",
        "rel/./c/../d",
        "dangling/sub",
        "dangling",
        "file/sub",
    ];
    let cwd = std::env::current_dir().unwrap();
    let mut got = Vec::new();
    std::env::set_current_dir(&ours.0).unwrap();
    got.push(on_fresh_shard(async move {
        let mut out = Vec::new();
        for c in cases {
            out.push(errno(nfs::create_dir_all(c).await));
        }
        out
    }));
    std::env::set_current_dir(&theirs.0).unwrap();
    got.push(
        cases
            .iter()
            .map(|c| errno(std::fs::create_dir_all(c)))
            .collect(),
    );
    std::env::set_current_dir(cwd).unwrap();
    assert_eq!(got[0], got[1]);
    for made in ["rel/a/b", "rel/c", "rel/d"] {
        assert_eq!(
            ours.0.join(made).is_dir(),
            theirs.0.join(made).is_dir(),
            "{made}"
        );
    }
    assert!(ours.0.join("rel/a/b").is_dir());
}

/// `set_len` on a registered file, on a file opened to append, and on a
/// FIFO, as `std`'s on the same files.
#[test]
fn set_len_on_registered_appending_and_fifo_files_matches_std() {
    let _serial = SERIAL.lock();
    let probe = common::runtime(1);
    if !probe.handle().ring_features().ftruncate {
        eprintln!("SKIPPED: this kernel lacks IORING_OP_FTRUNCATE (Linux 6.9)");
        return;
    }
    drop(probe);
    let dir = TempDir::new("whole-set-len-kinds");
    let fifo = Fifo::new("whole-set-len-fifo");
    let (reg, app) = (dir.0.join("registered"), dir.0.join("append"));
    std::fs::write(&reg, pattern(50)).unwrap();
    std::fs::write(&app, pattern(50)).unwrap();
    let (r, a, f) = (reg.clone(), app.clone(), fifo.path.clone());
    // Keeps a reader on the FIFO so that opening it to write does not wait.
    let reader = common::fs_edges::open_nonblocking(&fifo.path, false).unwrap();
    let ours = on_fresh_shard(async move {
        let file = OpenOptions::new().write(true).open(&r).await?.register()?;
        let registered = errno(file.set_len(7).await);
        let appending = OpenOptions::new().append(true).open(&a).await?;
        let append = errno(appending.set_len(9).await);
        let fifo = OpenOptions::new().write(true).open(&f).await?;
        let on_fifo = errno(fifo.set_len(0).await);
        Ok::<_, io::Error>(vec![registered, append, on_fifo])
    })
    .unwrap();
    let theirs = vec![
        errno(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&reg)
                .unwrap()
                .set_len(7),
        ),
        errno(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&app)
                .unwrap()
                .set_len(9),
        ),
        errno(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo.path)
                .unwrap()
                .set_len(0),
        ),
    ];
    drop(reader);
    assert_eq!(ours, theirs);
    assert_eq!(std::fs::metadata(&reg).unwrap().len(), 7);
    assert_eq!(std::fs::metadata(&app).unwrap().len(), 9);
}

/// A `read` dropped while it waits (a FIFO whose writer sends nothing) and
/// a `write` dropped while it waits (a FIFO whose reader reads nothing)
/// close their files: no fd is left open.
#[test]
fn whole_file_helpers_dropped_while_waiting_leave_no_fd() {
    let _serial = SERIAL.lock();
    let fifo = Fifo::new("whole-drop");
    let reader = common::fs_edges::open_nonblocking(&fifo.path, false).unwrap();
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo.path)
        .unwrap();
    let p = fifo.path.clone();
    let outcomes = on_fresh_shard(async move {
        let short = Duration::from_millis(100);
        let read = ringlane::time::timeout(short, nfs::read(&p)).await.is_err();
        // More than the pipe holds, with nobody reading.
        let big = vec![7u8; 4 << 20];
        let write = ringlane::time::timeout(short, nfs::write(&p, big))
            .await
            .is_err();
        (read, write)
    });
    drop((reader, writer));
    assert_eq!(outcomes, (true, true), "(read, write) timed out");
}

/// `copy` against `std::fs::copy` on the same inputs: the bytes (sizes
/// around the 64 KiB splice chunk), the permission bits (also onto a file
/// that existed with others), a longer destination truncated, and the
/// errors.
#[test]
fn copy_matches_std_for_sizes_permissions_and_errors() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-copy");
    let d = dir.0.clone();
    let mut cases = Vec::new();
    for (i, len) in [0usize, 1, 65535, 65536, 65537, (3 << 20) + 7]
        .into_iter()
        .enumerate()
    {
        let src = d.join(format!("src{i}"));
        std::fs::write(&src, pattern(len)).unwrap();
        let mode = if i % 2 == 0 { 0o640 } else { 0o755 };
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(mode)).unwrap();
        cases.push((src, len));
    }
    // Destinations that exist already: longer, and with other permissions.
    for (i, _) in cases.iter().enumerate() {
        for side in ["ours", "std"] {
            let dst = d.join(format!("{side}{i}"));
            std::fs::write(&dst, pattern(5 << 20)).unwrap();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let (c, dd) = (cases.clone(), d.clone());
    let ours = on_fresh_shard(async move {
        let mut out = Vec::new();
        for (i, (src, _)) in c.iter().enumerate() {
            out.push(errno(nfs::copy(src, dd.join(format!("ours{i}"))).await));
        }
        out
    });
    let theirs: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (src, _))| errno(std::fs::copy(src, d.join(format!("std{i}")))))
        .collect();
    assert_eq!(ours, theirs);
    for (i, (_, len)) in cases.iter().enumerate() {
        let (o, s) = (d.join(format!("ours{i}")), d.join(format!("std{i}")));
        assert_eq!(ours[i], Ok(*len as u64));
        assert!(
            std::fs::read(&o).unwrap() == std::fs::read(&s).unwrap(),
            "bytes of {i}"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&o), mode(&s), "permissions of {i}");
    }
    // Errors: a missing source, a directory as the source, a missing
    // parent of the destination, a NUL byte.
    let bad: Vec<(PathBuf, PathBuf)> = vec![
        (d.join("missing"), d.join("x")),
        (d.clone(), d.join("y")),
        (cases[1].0.clone(), d.join("no/such/dir/z")),
        (PathBuf::from("a\0b"), d.join("w")),
    ];
    let b = bad.clone();
    let ours = on_fresh_shard(async move {
        let mut out = Vec::new();
        for (from, to) in &b {
            out.push(
                nfs::copy(from, to)
                    .await
                    .map_err(|e| (e.kind(), e.raw_os_error())),
            );
        }
        out
    });
    let theirs: Vec<_> = bad
        .iter()
        .map(|(from, to)| std::fs::copy(from, to).map_err(|e| (e.kind(), e.raw_os_error())))
        .collect();
    assert_eq!(ours, theirs);
}

/// `copy` onto a new file (the source's setuid mode taken whole, not
/// masked), into a FIFO and `/dev/null` (devices keep their modes), and
/// onto its own source, as `std::fs::copy`; a copy dropped part way leaves
/// no fd open.
#[test]
fn copy_onto_new_files_fifos_devices_and_itself_matches_std() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = SERIAL.lock();
    let dir = TempDir::new("whole-copy-kinds");
    let d = dir.0.clone();
    let src = d.join("src");
    std::fs::write(&src, pattern(200_000)).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o4751)).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
    // A new destination.
    let (s, o) = (src.clone(), d.join("new-ours"));
    let ours = on_fresh_shard(async move { errno(nfs::copy(&s, &o).await) });
    let theirs = errno(std::fs::copy(&src, d.join("new-std")));
    assert_eq!(ours, theirs);
    assert_eq!(mode(&d.join("new-ours")), mode(&d.join("new-std")));
    assert!(std::fs::read(d.join("new-ours")).unwrap() == pattern(200_000));
    // A FIFO, read by a thread.
    let fifo = Fifo::new("whole-copy-fifo");
    let fifo_mode = mode(&fifo.path);
    let fp = fifo.path.clone();
    let reader = std::thread::spawn(move || std::fs::read(fp).unwrap());
    let (s, f) = (src.clone(), fifo.path.clone());
    let ours = on_fresh_shard(async move { errno(nfs::copy(&s, &f).await) });
    assert_eq!(ours, Ok(200_000));
    assert!(
        reader.join().unwrap() == pattern(200_000),
        "the FIFO's reader"
    );
    assert_eq!(mode(&fifo.path), fifo_mode, "the FIFO's mode changed");
    // /dev/null.
    let null_mode = mode(Path::new("/dev/null"));
    let s = src.clone();
    let ours = on_fresh_shard(async move { errno(nfs::copy(&s, "/dev/null").await) });
    assert_eq!(ours, errno(std::fs::copy(&src, "/dev/null")));
    assert_eq!(mode(Path::new("/dev/null")), null_mode);
    // Onto itself: truncated, as std's.
    let (a, b) = (d.join("self-ours"), d.join("self-std"));
    std::fs::write(&a, b"gone").unwrap();
    std::fs::write(&b, b"gone").unwrap();
    let a2 = a.clone();
    let ours = on_fresh_shard(async move { errno(nfs::copy(&a2, &a2).await) });
    assert_eq!(ours, errno(std::fs::copy(&b, &b)));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Dropped part way (a 64 MiB copy given 1 ms): no fd left.
    let big = d.join("big");
    std::fs::write(&big, pattern(64 << 20)).unwrap();
    let to = d.join("big-copy");
    let dropped = on_fresh_shard(async move {
        ringlane::time::timeout(Duration::from_millis(1), nfs::copy(&big, &to))
            .await
            .is_err()
    });
    assert!(
        dropped,
        "the copy finished within 1 ms: nothing was dropped"
    );
}
