//! The registration tables: full tables give a clear error, cycles with
//! ops in flight leak no slot, and a tiny memlock limit (in a child
//! process) refuses registrations cleanly.

mod common;

use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use ringlane::native::fixed::{BufRing, FixedBufPool};
use ringlane::native::fs::File;

use common::LIMIT;
use common::fixed_io::*;
use common::native_io::{TempDir, poll_once, unix_pair};

/// A full table is `OutOfMemory`: our "table is full", or the kernel's
/// `ENOMEM` if the memlock limit comes first.
fn assert_full(what: &str, e: &io::Error) {
    assert_eq!(e.kind(), ErrorKind::OutOfMemory, "{what}: {e}");
    if e.raw_os_error().is_none() {
        assert!(e.to_string().contains("full"), "{what}: {e}");
    }
}

/// How many registrations of each kind fit now: files, one-buffer pools,
/// buffer rings; 0 for a kind `probe` leaves out.
fn table_sizes(file: &File, probe: [bool; 3]) -> [usize; 3] {
    let files = match probe[0] {
        true => fill_table(|| file.register()).0.len(),
        false => 0,
    };
    let buffers = match probe[1] {
        true => fill_table(|| FixedBufPool::new(1, 4096)).0.len(),
        false => 0,
    };
    let groups = match probe[2] {
        true => fill_table(|| BufRing::new(1, 64)).0.len(),
        false => 0,
    };
    [files, buffers, groups]
}

/// Waits (at most 10 s) until the tables take `want` registrations again:
/// what was dropped just now may be cleared a tick later.
async fn until_sizes(file: &File, probe: [bool; 3], want: [usize; 3], what: &str) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let now = table_sizes(file, probe);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the tables take {now:?} registrations, not {want:?}: slots leaked"
        );
        ringlane::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One cycle: a registered eventfd with a fixed read in flight, a pool, a
/// ring with a multishot receive armed, all dropped in flight (every third
/// cycle on a plain thread).
async fn cycle_with_ops_in_flight(i: usize, rings: bool) {
    let f = File::from(eventfd())
        .register()
        .unwrap_or_else(|e| panic!("cycle {i}: a file: {e}"));
    let pool = FixedBufPool::new(1, 4096).unwrap_or_else(|e| panic!("cycle {i}: a pool: {e}"));
    let buf = pool.try_get().unwrap();
    let reading = f.clone();
    let mut read = Box::pin(async move { reading.read_fixed_at(buf, 0).await });
    assert!(poll_once(&mut read).await, "cycle {i}: the read waits");
    let receiving = match rings {
        true => {
            let ring = BufRing::new(1, 64).unwrap_or_else(|e| panic!("cycle {i}: a ring: {e}"));
            let (ours, _, peer) = unix_pair();
            let mut chunks = ours.recv_multi(&ring);
            assert!(arm(&mut chunks).await, "cycle {i}: the receive is armed");
            Some((ring, chunks, ours, peer))
        }
        false => None,
    };
    let all = (read, f, pool, receiving);
    if i % 3 == 1 {
        std::thread::spawn(move || drop(all)).join().unwrap();
    } else {
        drop(all);
    }
}

/// Expected: each table fills with a clear error, never a hang: the file
/// table after at most 1,024 registrations (one `File` registered again
/// and again), with `OutOfMemory` "... table is full" every time it is
/// asked, while the registered files keep working and another shard's
/// table is unaffected; a freed slot in the middle is found again; a file
/// the kernel refuses (an `O_PATH` fd) gives the kernel's error and loses
/// no slot; a buffer table with only scattered free slots refuses a
/// two-buffer pool but takes a one-buffer pool. Then 1,100 cycles of
/// registering a file, a pool and a ring and dropping them with a fixed
/// read and a multishot receive in flight (a third on a plain thread) leave
/// every table exactly as large as before.
///
/// Why: each cycle's slots come back only after the cancels' CQEs (the ops
/// hold them); a cancel or an unregistration lost on the foreign-thread
/// path, or a slot not given back after a kernel refusal, leaks one per
/// cycle and fills the 1,024-slot tables well within the run.
#[test]
fn tables_fill_with_a_clear_error_and_cycles_with_ops_in_flight_leak_no_slot() {
    const CYCLES: usize = 1100;
    let rt = common::runtime(2);
    let h = rt.handle();
    let dir = TempDir::new("fixedadv-tables");
    let path = &dir.0.join("f");
    std::fs::write(path, b"abc").unwrap();
    let o_path = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .unwrap();
    let file = open_rw(path);
    on_shard(&rt, 0, Duration::from_secs(120), async move {
        // The kernel refuses an O_PATH fd: its own error, and no slot lost.
        let first = file.register().unwrap();
        match File::from(o_path).register() {
            Err(e) => assert!(e.raw_os_error().is_some(), "the kernel's error: {e}"),
            Ok(f) => println!("NOTE: this kernel registers O_PATH fds ({f:?})"),
        }
        let second = file.register().unwrap();
        assert_eq!(
            slot(&second),
            slot(&first) + 1,
            "the refused one gave its slot back"
        );
        drop((first, second));

        // The file table, full.
        let (mut files, e) = fill_table(|| file.register());
        assert_full("the file table", &e);
        let n_files = files.len();
        assert!(n_files >= 1, "not even one file registered");
        assert_full("asked again", &file.register().unwrap_err());
        let (n, v) = files[0].read_at(Vec::with_capacity(8), 0).await;
        assert_eq!(
            &v[..n.unwrap()],
            b"abc",
            "a registered file works while the table is full"
        );
        let elsewhere = file.clone();
        let other_shard = h
            .spawn_pinned(1, async move { elsewhere.register().map(|r| slot(&r)) })
            .unwrap()
            .await
            .unwrap();
        assert!(
            other_shard.is_ok(),
            "shard 1's table is its own: {other_shard:?}"
        );
        let middle = files.swap_remove(n_files / 2);
        let middle_slot = slot(&middle);
        drop(middle);
        let again = file.register().expect("the slot freed in the middle");
        assert_eq!(slot(&again), middle_slot);
        drop((again, files));

        // The buffer table, full, then with scattered holes.
        let (pools, e) = fill_table(|| FixedBufPool::new(1, 4096));
        assert_full("the buffer table", &e);
        // The kernel's ENOMEM (a memlock limit, shared with the tests
        // running beside this one) is not a size to compare later.
        let buffers_exact = e.raw_os_error().is_none();
        let n_buffers = pools.len();
        if buffers_exact {
            let kept: Vec<FixedBufPool> = pools
                .into_iter()
                .enumerate()
                .filter_map(|(i, p)| (i % 2 == 1).then_some(p))
                .collect();
            assert_full(
                "two buffers among one-slot holes",
                &FixedBufPool::new(2, 4096).unwrap_err(),
            );
            let one = FixedBufPool::new(1, 4096).expect("a one-slot hole");
            drop((kept, one));
        } else {
            drop(pools);
        }

        // The buffer groups, if this kernel has rings.
        let rings = ring_or_skip(1, 64).is_some();
        let (n_groups, groups_exact) = match rings {
            true => {
                let (held, e) = fill_table(|| BufRing::new(1, 64));
                assert_full("the buffer groups", &e);
                (held.len(), e.raw_os_error().is_none())
            }
            false => (0, false),
        };
        let probe = [true, buffers_exact, groups_exact];
        let before = [
            n_files,
            if buffers_exact { n_buffers } else { 0 },
            if groups_exact { n_groups } else { 0 },
        ];
        until_sizes(&file, probe, before, "a second look, nothing held").await;

        let mut rings_armed = rings;
        for i in 0..CYCLES {
            if i == 0 && rings {
                // A kernel with rings but no multishot receive: no rings.
                let ring = BufRing::new(1, 64).unwrap();
                let (ours, _, _peer) = unix_pair();
                let mut chunks = ours.recv_multi(&ring);
                rings_armed = arm(&mut chunks).await;
                if !rings_armed {
                    println!("SKIP the multishot part of the cycles: no multishot receive here");
                }
            }
            cycle_with_ops_in_flight(i, rings_armed).await;
            if i % 64 == 63 {
                ringlane::time::sleep(Duration::from_millis(1)).await;
            } else {
                ringlane::yield_now().await;
            }
        }
        until_sizes(&file, probe, before, "after the cycles").await;
    });
}

const MEMLOCK_CHILD: &str = "RINGLANE_ADV_FIXED_MEMLOCK_CHILD";

/// Drops `CAP_IPC_LOCK` from the calling thread (threads it spawns
/// inherit that): io_uring then charges registered buffers to
/// `RLIMIT_MEMLOCK`, as for an unprivileged user.
fn drop_cap_ipc_lock() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes one header and two data structs we own.
    if unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let bit = 1u32 << CAP_IPC_LOCK;
    data[0].effective &= !bit;
    data[0].permitted &= !bit;
    data[0].inheritable &= !bit;
    // SAFETY: capset reads one header and two data structs we own.
    if unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pool of `count` buffers, retried for up to 10 s (kernels before 6.13
/// unaccount a freed registration from a workqueue, a little later).
async fn pool_within(count: usize, size: usize) -> io::Result<FixedBufPool> {
    let deadline = Instant::now() + LIMIT;
    loop {
        match FixedBufPool::new(count, size) {
            Err(_) if Instant::now() < deadline => {
                ringlane::time::sleep(Duration::from_millis(1)).await;
            }
            other => return other,
        }
    }
}

/// The child's cases, as `SKIP=`, `BAD=` and `DONE=` lines.
async fn memlock_cases(path: std::path::PathBuf) -> Vec<String> {
    const PAGE: usize = 4096;
    let path = path.as_path();
    let mut out = Vec::new();
    match FixedBufPool::new(1, 12 * PAGE) {
        Ok(pool) => drop(pool),
        Err(e) => {
            out.push(format!(
                "SKIP=12 pages refused under a 16-page limit before the test began ({e})"
            ));
            return out;
        }
    }
    match FixedBufPool::new(1, 64 * PAGE) {
        Ok(_) => {
            out.push(
                "SKIP=64 pages registered under a 16-page RLIMIT_MEMLOCK: not enforced here".into(),
            );
            return out;
        }
        Err(e) if e.kind() != ErrorKind::OutOfMemory => {
            out.push(format!("BAD=one 64-page buffer: {:?}: {e}", e.kind()));
        }
        Err(_) => {}
    }
    // The kernel registers the first buffers, then stops: a partial update.
    match FixedBufPool::new(64, PAGE) {
        Ok(_) => out.push("BAD=64 one-page buffers registered under a 16-page limit".into()),
        Err(e) if e.kind() != ErrorKind::OutOfMemory => {
            out.push(format!("BAD=64 one-page buffers: {:?}: {e}", e.kind()));
        }
        Err(_) => {}
    }
    match pool_within(12, PAGE).await {
        Err(e) => out.push(format!(
            "BAD=12 one-page buffers refused after the refusals: their pages stayed charged ({e})"
        )),
        Ok(pool) => {
            let mut buf = pool.try_get().unwrap();
            let first = index(&buf);
            if first != 0 {
                out.push(format!(
                    "BAD=a refused registration kept its slots: the first free one is {first}"
                ));
            }
            let f = File::from(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)
                    .unwrap(),
            );
            buf.put_slice(b"under the limit");
            let (wrote, buf) = f.write_fixed_at(buf, 0).await;
            let (read, buf) = f.read_fixed_at(buf, 0).await;
            let ok = matches!(wrote, Ok(15))
                && matches!(read, Ok(15))
                && buf[..] == b"under the limit"[..];
            if !ok {
                out.push(format!(
                    "BAD=a round trip through the pool: wrote {wrote:?}, read {read:?}, got {:?}",
                    &buf[..]
                ));
            }
        }
    }
    for i in 0..100 {
        if let Err(e) = pool_within(12, PAGE).await {
            out.push(format!(
                "BAD=cycle {i}: 12 pages refused: a dropped pool's pages stayed charged ({e})"
            ));
            break;
        }
    }
    out.push("DONE=yes".into());
    out
}

/// Child side of the memlock test: without `CAP_IPC_LOCK` and under a
/// 64 KiB (16-page) `RLIMIT_MEMLOCK`, runs `memlock_cases` on a shard and
/// prints its lines. Run only by the parent test below.
#[test]
#[ignore = "run in a child process by registration_refused_under_a_tiny_memlock_limit_is_a_clear_error_and_leaks_nothing"]
fn child_fixed_buffers_under_a_tiny_memlock_limit() {
    if std::env::var_os(MEMLOCK_CHILD).is_none() {
        return;
    }
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
    if thp.is_ok_and(|s| s.contains("[always]")) {
        println!(
            "SKIP=transparent huge pages are always on: one huge page alone exceeds the limit"
        );
        return;
    }
    if let Err(e) = drop_cap_ipc_lock() {
        println!("SKIP=cannot drop CAP_IPC_LOCK ({e})");
        return;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct; lowering is always allowed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max.min(64 * 1024);
        assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim), 0);
    }
    let rt = match ringlane::Runtime::builder().shards(1).build() {
        Ok(rt) => rt,
        Err(e) => {
            println!("SKIP=no runtime under a 64 KiB memlock limit ({e})");
            return;
        }
    };
    let dir = TempDir::new("fixedadv-memlock");
    let path = dir.0.join("f");
    let lines = on_shard(&rt, 0, Duration::from_secs(30), memlock_cases(path));
    for line in lines {
        println!("{line}");
    }
}

/// Expected: under a 16-page `RLIMIT_MEMLOCK` without `CAP_IPC_LOCK`, a
/// pool over the limit is refused with `OutOfMemory`, whether the kernel
/// refuses its first buffer (one 64-page buffer) or stops part-way (64
/// one-page buffers: the first few registered, then `ENOMEM`); afterwards
/// a 12-page pool registers in the very first slots (the refused ones gave
/// theirs back) and works, and 100 cycles of registering and dropping a
/// 12-page pool all succeed (each drop gives its pages back). Skipped,
/// with a message, where the kernel does not enforce the limit.
///
/// Why: a partial registration must be cleared slot by slot and its pages
/// uncharged, else the slots leak and the charge stays until the limit
/// refuses everything; a refusal must be an error, not a panic.
#[test]
fn registration_refused_under_a_tiny_memlock_limit_is_a_clear_error_and_leaks_nothing() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_fixed_buffers_under_a_tiny_memlock_limit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMLOCK_CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait().unwrap(); // reaped: the status at once
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the memlock child did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "the child failed:\n{stdout}\n{stderr}");
    if let Some(why) = stdout
        .lines()
        .find_map(|l| l.split_once("SKIP=").map(|(_, w)| w))
    {
        println!("SKIP: {why}");
        return;
    }
    let bad: Vec<&str> = stdout.lines().filter(|l| l.contains("BAD=")).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(
        stdout.contains("DONE=yes"),
        "the child did not finish:\n{stdout}"
    );
}
