//! Owned buffers at their edges: a registered buffer's length after any
//! read, the pool's waiters against a task that gives a buffer back and
//! takes it again, `AlignedBuf` sizes the allocator refuses, short and
//! vectored reads marking exactly the bytes read, `O_DIRECT` with fixed and
//! vectored buffers, and reads cut by a drop or a `native::timeout`.

mod common;

use std::io::{self, ErrorKind};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ringlane::native::fixed::FixedBufPool;
use ringlane::native::fs::{File, OpenOptions};
use ringlane::native::net::UnixStream;
use ringlane::native::{AlignedBuf, IoBuf, IoBufMut, NativeTimeoutExt};

use common::LIMIT;
use common::fixed_io::{eventfd, eventfd_write, on_shard};
use common::native_io::{Held, SERIAL, TempDir, poll_once, settled_fd_count, two_ticks};

// ------------------------------------------------------------------ helpers

/// A distinct, non-zero eventfd value per `k`.
fn value(k: u64) -> u64 {
    0x0101_0101_0101_0101u64.wrapping_mul(k)
}

/// The bytes of values `first..first + n`, as consecutive eventfd reads give them.
fn values(first: u64, n: u64) -> Vec<u8> {
    (first..first + n)
        .flat_map(|k| value(k).to_ne_bytes())
        .collect()
}

/// An eventfd's counter, from `/proc/self/fdinfo`.
fn eventfd_count(fd: i32) -> u64 {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with("eventfd-count:"))
        .unwrap_or_else(|| panic!("no eventfd-count in fdinfo: {info}"));
    u64::from_str_radix(line["eventfd-count:".len()..].trim(), 16).unwrap()
}

/// Writes `values` into the eventfd one at a time, each only once the
/// counter is back to 0 (the previous value was read): every read of the
/// eventfd then takes exactly one value, 8 bytes, however large its buffer.
fn feed(fd: OwnedFd, values: Vec<u64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for v in values {
            let deadline = Instant::now() + LIMIT;
            while eventfd_count(fd.as_raw_fd()) != 0 {
                assert!(
                    Instant::now() < deadline,
                    "the value before {v:#x} was never read"
                );
                std::thread::sleep(Duration::from_micros(200));
            }
            eventfd_write(&fd, v);
        }
    })
}

/// Opens `path` with `O_DIRECT` for reading and writing through the ring;
/// `None` where the filesystem refuses `O_DIRECT`.
async fn open_direct(path: &Path) -> Option<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .await
    {
        Ok(f) => Some(f),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
        Err(e) => panic!("open O_DIRECT: {e}"),
    }
}

fn errno<T>(r: io::Result<T>) -> Result<T, Option<i32>> {
    r.map_err(|e| e.raw_os_error())
}

// ------------------------------------------------ 1: FixedBuf len semantics

/// The shard side of test 1: every line is a mismatch.
async fn fixed_len_cases(path: PathBuf) -> Vec<String> {
    let mut bad = Vec::new();
    let pool = FixedBufPool::new(1, 4096).unwrap();
    let stale = b"0123456789";

    // (a) From a stream: the only way into a fixed buffer (`read_fixed_at`
    // needs positions), then out to a file with `write_fixed_at`.
    let (a, b) = UnixStream::pair().unwrap();
    let mut buf = pool.try_get().unwrap();
    buf.put_slice(stale);
    a.write_all(b"abc".to_vec()).await.0.unwrap();
    let (n, buf) = b.read(buf).timeout(LIMIT).await;
    let n = n.unwrap();
    if (n, buf.len()) != (3, 3) {
        bad.push(format!(
            "UnixStream::read of 3 bytes into a FixedBuf that held 10: count {n}, len() {} \
             (content {:?}; FixedBuf::len is documented as what a read filled)",
            buf.len(),
            String::from_utf8_lossy(&buf)
        ));
    }
    let out = common::native_io::create_rw(&path).await.unwrap();
    let (w, buf) = out.write_fixed_at(buf, 0).await;
    let on_disk = std::fs::read(&path).unwrap();
    if on_disk != b"abc" {
        bad.push(format!(
            "write_fixed_at right after that read wrote {:?} ({w:?}): the stale bytes went out",
            String::from_utf8_lossy(&on_disk)
        ));
    }

    // (b) The same 3-byte positioned read, with the fixed op and the plain one.
    std::fs::write(&path, b"xyz").unwrap();
    let mut buf = buf;
    buf.put_slice(stale);
    let (n, mut buf) = out.read_fixed_at(buf, 0).await;
    let fixed = (n.unwrap(), buf.len());
    buf.put_slice(stale);
    let (n, buf) = out.read_at(buf, 0).await;
    let plain = (n.unwrap(), buf.len());
    if fixed != plain {
        bad.push(format!(
            "the same 3-byte read of one FixedBuf: read_fixed_at gives (count, len()) {fixed:?}, \
             read_at {plain:?}"
        ));
    }

    // (c) Vectored: one fixed buffer in a readv of the same 3 bytes.
    let mut buf = buf;
    buf.put_slice(stale);
    let (n, bufs) = out.read_vectored_at(vec![buf], 0).await;
    let n = n.unwrap();
    if (n, bufs[0].len()) != (3, 3) {
        bad.push(format!(
            "read_vectored_at of 3 bytes into a FixedBuf that held 10: count {n}, len() {}",
            bufs[0].len()
        ));
    }
    bad
}

/// Expected: whatever read fills a `FixedBuf` — a stream read, a plain
/// positioned read, a vectored read — its `len()` afterwards is the count
/// read, as after `read_fixed_at` ("`len` ... is what a write sends and
/// what a read filled"); a `write_fixed_at` right after a 3-byte stream
/// read sends those 3 bytes, not 10.
///
/// Why: `FixedBuf::set_init` only grew the length, as a `Vec`'s does, so a
/// reused buffer filled by anything but `read_fixed_at` kept its stale
/// length, and the next write sent stale bytes.
#[test]
fn a_fixed_buf_filled_by_a_plain_read_has_the_count_read_as_its_len() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let dir = TempDir::new("bufs-fixed-len");
    let path = dir.0.join("out");
    let bad = on_shard(&rt, 0, LIMIT, fixed_len_cases(path));
    assert!(bad.is_empty(), "{bad:#?}");
}

// ------------------------------------- 2: AlignedBuf too large: panic, not abort

const ALIGNED_CHILD: &str = "RINGLANE_ADV_BUFS_ALIGNED_CHILD";

/// Child side of test 2: asks for aligned buffers no allocator can give,
/// under `catch_unwind`, and prints what happened. Run only by the parent.
#[test]
#[ignore = "run in a child process by an_aligned_buffer_too_large_for_the_allocator_panics_as_documented_instead_of_aborting"]
fn child_aligned_buf_too_large_for_the_allocator() {
    let _serial = SERIAL.lock();
    if std::env::var_os(ALIGNED_CHILD).is_none() {
        return;
    }
    // An invalid layout (beyond isize::MAX): refused by `Layout`.
    let layout =
        std::panic::catch_unwind(|| AlignedBuf::with_capacity(usize::MAX, 4096).capacity());
    println!("LAYOUT_REFUSED_PANICKED={}", layout.is_err());
    // A valid layout of 4 EiB: more than any address space, so the
    // allocator refuses it.
    let alloc = std::panic::catch_unwind(|| AlignedBuf::with_capacity(1 << 62, 4096).capacity());
    println!(
        "ALLOCATOR_REFUSED={}",
        if alloc.is_err() {
            "panicked"
        } else {
            "allocated"
        }
    );
}

/// Expected: `AlignedBuf::with_capacity` with a capacity the allocator
/// refuses panics (its documented `# Panics`: "capacity is 0 or too large
/// for the allocator"), which a caller can catch; it must not abort the
/// process.
///
/// Why: `with_capacity` called `std::alloc::handle_alloc_error`, whose
/// default is to print and abort: one request computed from untrusted
/// input (a file's block count, a peer's length) kills every task of the
/// process. `FixedBufPool`'s `Region` returns `OutOfMemory` for the same
/// failure (region.rs:31-33).
#[test]
fn an_aligned_buffer_too_large_for_the_allocator_panics_as_documented_instead_of_aborting() {
    let _serial = SERIAL.lock();
    use std::os::unix::process::ExitStatusExt;
    let (status, out) = common::child::run_ignored(
        "child_aligned_buf_too_large_for_the_allocator",
        ALIGNED_CHILD,
        Duration::from_secs(30),
    );
    assert!(
        out.contains("LAYOUT_REFUSED_PANICKED=true"),
        "an invalid layout did not panic: status {status:?}\n{out}"
    );
    assert!(
        status.signal().is_none() && out.contains("ALLOCATOR_REFUSED=panicked"),
        "AlignedBuf::with_capacity(1 << 62, 4096) did not panic as documented: the child \
         ended with {status:?} (signal {:?}; SIGABRT is {}):\n{out}",
        status.signal(),
        libc::SIGABRT
    );
}

// ------------------------------------------------ 3: pool fairness / starvation

/// Expected: a task waiting in `FixedBufPool::get` gets a buffer when one
/// is given back, even if the task that gave it back asks again at once:
/// within a few rounds of a loop that reads into the pool's only buffer,
/// drops it, and calls `get` again, the waiter has had the buffer.
///
/// Why: the give-back woke the waiter but kept
/// the buffer on the free list, and the giver's own `get` in the same
/// poll pops it before the waiter runs; every round repeats that, so the
/// waiter waits for ever while buffers keep coming back (Tokio's semaphore
/// hands a returned permit to the longest waiter; `get`'s doc example says
/// the give-back "wakes the waiter, which takes it").
#[test]
fn a_waiting_get_is_not_starved_by_a_task_that_gives_its_buffer_back_and_takes_it_again() {
    let _serial = SERIAL.lock();
    const ROUNDS: usize = 200;
    let rt = common::runtime(1);
    let dir = TempDir::new("bufs-starve");
    let path = dir.0.join("f");
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let (rounds, waiter_got_one) = on_shard(&rt, 0, LIMIT, async move {
        let pool = FixedBufPool::new(1, 4096).unwrap();
        let f = File::open(&path).await.unwrap();
        let mut buf = pool.try_get().unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let (p, g) = (pool.clone(), got.clone());
        let waiter = ringlane::spawn_local(async move {
            let b = p.get().await;
            g.store(true, Ordering::SeqCst);
            drop(b);
        })
        .unwrap();
        ringlane::yield_now().await; // the waiter polls, finds none free, waits
        let mut rounds = 0;
        while rounds < ROUNDS && !got.load(Ordering::SeqCst) {
            let (r, b) = f.read_fixed_at(buf, 0).await;
            assert_eq!(r.unwrap(), 4096);
            drop(b); // given back: the waiter is woken
            buf = pool.get().await; // and this task asks again
            rounds += 1;
        }
        drop(buf);
        ringlane::time::timeout(LIMIT, waiter)
            .await
            .expect("the waiter never got the buffer, even once nobody else held it")
            .unwrap();
        (rounds, got.load(Ordering::SeqCst))
    });
    assert!(waiter_got_one);
    assert!(
        rounds < ROUNDS,
        "a task waiting in FixedBufPool::get was overtaken {rounds} times in a row by the task \
         that kept giving the only buffer back and asking again: it starves"
    );
}

// ------------------------------ 4: O_DIRECT vectored I/O with an empty buffer

/// An aligned block or an empty `Vec`, in one vectored op.
enum Part {
    Block(AlignedBuf),
    Empty(Vec<u8>),
}

// SAFETY: every method delegates to the buffer inside, which upholds the
// contract itself.
unsafe impl IoBuf for Part {
    fn stable_ptr(&self) -> *const u8 {
        match self {
            Part::Block(b) => IoBuf::stable_ptr(b),
            Part::Empty(v) => IoBuf::stable_ptr(v),
        }
    }
    fn bytes_init(&self) -> usize {
        match self {
            Part::Block(b) => b.bytes_init(),
            Part::Empty(v) => v.bytes_init(),
        }
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for Part {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        match self {
            Part::Block(b) => b.stable_mut_ptr(),
            Part::Empty(v) => v.stable_mut_ptr(),
        }
    }
    fn bytes_total(&self) -> usize {
        match self {
            Part::Block(b) => b.bytes_total(),
            Part::Empty(v) => v.bytes_total(),
        }
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: the caller's guarantee, passed on.
        unsafe {
            match self {
                Part::Block(b) => b.set_init(n),
                Part::Empty(v) => v.set_init(n),
            }
        }
    }
}

impl Part {
    fn bytes(&self) -> &[u8] {
        match self {
            Part::Block(b) => &b[..],
            Part::Empty(v) => &v[..],
        }
    }
}

fn block(fill: Option<u8>) -> Part {
    let mut b = AlignedBuf::with_capacity(4096, 4096);
    if let Some(x) = fill {
        b.extend_from_slice(&[x; 4096]);
    }
    Part::Block(b)
}

/// What `preadv(2)` says for the same shape (two aligned blocks around an
/// empty `Vec`), for the failure message only.
fn std_preadv_with_an_empty_vec(path: &Path) -> Result<usize, Option<i32>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .map_err(|e| e.raw_os_error())?;
    let (mut a, mut b) = (
        AlignedBuf::with_capacity(4096, 4096),
        AlignedBuf::with_capacity(4096, 4096),
    );
    let mut empty: Vec<u8> = Vec::new();
    let iov = [
        libc::iovec {
            iov_base: a.stable_mut_ptr().cast(),
            iov_len: 4096,
        },
        libc::iovec {
            iov_base: empty.as_mut_ptr().cast(),
            iov_len: 0,
        },
        libc::iovec {
            iov_base: b.stable_mut_ptr().cast(),
            iov_len: 4096,
        },
    ];
    // SAFETY: every iovec points into a live buffer of at least its length.
    let r = unsafe { libc::preadv(f.as_raw_fd(), iov.as_ptr(), 3, 0) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error())
    } else {
        Ok(r as usize)
    }
}

/// The shard side of test 4; `None` where `O_DIRECT` is refused.
async fn direct_empty_cases(path: PathBuf) -> Option<Vec<String>> {
    let content: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let f = open_direct(&path).await?;
    let mut bad = Vec::new();

    // The baseline: two aligned blocks.
    let (n, _) = f.read_vectored_at(vec![block(None), block(None)], 0).await;
    let baseline = errno(n);
    if baseline != Ok(8192) {
        bad.push(format!(
            "baseline readv of two aligned blocks: {baseline:?}"
        ));
        return Some(bad);
    }
    // The same with an empty Vec between them.
    let (n, back) = f
        .read_vectored_at(vec![block(None), Part::Empty(Vec::new()), block(None)], 0)
        .await;
    let got = errno(n);
    let lens: Vec<usize> = back.iter().map(|p| p.bytes().len()).collect();
    let right = back.len() == 3
        && back[0].bytes() == &content[..4096]
        && back[1].bytes().is_empty()
        && back[2].bytes() == &content[4096..];
    if got != Ok(8192) || !right {
        bad.push(format!(
            "O_DIRECT readv [4096 aligned, empty Vec, 4096 aligned]: {got:?}, lens {lens:?} \
             (without the empty Vec: Ok(8192); std's preadv of that shape: {:?})",
            std_preadv_with_an_empty_vec(&path)
        ));
    }
    // Writes: the same shape.
    let (n, _) = f
        .write_vectored_at(
            vec![
                block(Some(0xA1)),
                Part::Empty(Vec::new()),
                block(Some(0xA2)),
            ],
            0,
        )
        .await;
    let wrote = errno(n);
    let on_disk = std::fs::read(&path).unwrap();
    let disk_right = on_disk.len() == 8192
        && on_disk[..4096].iter().all(|&x| x == 0xA1)
        && on_disk[4096..].iter().all(|&x| x == 0xA2);
    if wrote != Ok(8192) || !disk_right {
        bad.push(format!(
            "O_DIRECT writev [4096 aligned, empty Vec, 4096 aligned]: {wrote:?}, file as \
             written: {disk_right}"
        ));
    }
    Some(bad)
}

/// Expected: on an `O_DIRECT` file, a vectored read or write with an empty
/// `Vec` between two aligned 4 KiB blocks does what it does without the
/// empty `Vec` (8192 bytes, in the blocks; the empty one takes none), as
/// zero-capacity buffers anywhere in the list are promised to take no
/// bytes and shift none.
///
/// Why: the empty
/// buffer's dangling pointer goes to the kernel as an iovec, and kernels
/// that check every segment's alignment refuse the whole op with EINVAL.
/// Skips where the filesystem refuses `O_DIRECT`.
#[test]
fn o_direct_vectored_io_with_an_empty_vec_between_aligned_blocks_works_as_without_it() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let dir = TempDir::new("bufs-direct-empty");
    let path = dir.0.join("f");
    match on_shard(&rt, 0, LIMIT, direct_empty_cases(path)) {
        None => println!(
            "SKIP o_direct_vectored_io_with_an_empty_vec: {} refuses O_DIRECT",
            std::env::temp_dir().display()
        ),
        Some(bad) => assert!(bad.is_empty(), "{bad:#?}"),
    }
}

// ------------------------------------ 5: vectored totals past i32 and u32

/// Expected: a `write_vectored_at` whose iovecs total 4 GiB (1,024 views of
/// one 4 MiB `Bytes`) to /dev/null returns exactly what `pwritev` returns
/// for the same iovecs (a short count, below the total), with every buffer
/// back unchanged; a `read_vectored_at` of a 100-byte file into 1,024
/// empty buffers totalling 2.1 GiB of capacity returns 100, all in the
/// first buffer, every other one still empty. No panic, no error.
///
/// Why: the totals pass `i32::MAX` and `u32::MAX`; the kernel caps a
/// vectored op at `MAX_RW_COUNT`, and ringlane spreads the count over the
/// buffers itself (fs/vectored.rs:101-109). Memory use: 4 MiB of data and
/// untouched capacity.
#[test]
fn vectored_totals_past_i32_and_u32_are_short_counts_like_std_not_errors_or_panics() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let dir = TempDir::new("bufs-huge-iov");
    let path = dir.0.join("small");
    std::fs::write(&path, [0x42u8; 100]).unwrap();
    let (ours, theirs, back_intact, read, spread_right) = on_shard(&rt, 0, LIMIT, async move {
        let block = bytes::Bytes::from(vec![0x5Au8; 4 << 20]);
        let parts: Vec<bytes::Bytes> = (0..1024).map(|_| block.clone()).collect();
        let null = OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .await
            .unwrap();
        let (n, back) = null.write_vectored_at(parts, 0).await;
        let ours = errno(n);
        let back_intact = back.len() == 1024
            && back
                .iter()
                .all(|b| b.as_ptr() == block.as_ptr() && b.len() == 4 << 20);
        let theirs = {
            let std_null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap();
            let iov: Vec<libc::iovec> = back
                .iter()
                .map(|b| libc::iovec {
                    iov_base: b.as_ptr().cast_mut().cast(),
                    iov_len: b.len(),
                })
                .collect();
            // SAFETY: every iovec covers a live `Bytes` of its length; pwritev only reads.
            let r = unsafe { libc::pwritev(std_null.as_raw_fd(), iov.as_ptr(), 1024, 0) };
            if r < 0 {
                Err(io::Error::last_os_error().raw_os_error())
            } else {
                Ok(r as usize)
            }
        };
        let bufs: Vec<Vec<u8>> = (0..1024)
            .map(|_| Vec::<u8>::with_capacity((2 << 20) + 4096))
            .collect();
        let f = File::open(&path).await.unwrap();
        let (n, bufs) = f.read_vectored_at(bufs, 0).await;
        let read = errno(n);
        let spread_right = bufs.len() == 1024
            && bufs[0][..] == [0x42u8; 100]
            && bufs[1..].iter().all(|b| b.is_empty());
        (ours, theirs, back_intact, read, spread_right)
    });
    let total = 1024usize << 22;
    assert_eq!(
        ours, theirs,
        "writev of 4 GiB of iovecs to /dev/null: ringlane vs pwritev"
    );
    assert!(
        matches!(ours, Ok(n) if n > 0 && n < total),
        "a 4 GiB writev: {ours:?}"
    );
    assert!(back_intact, "the Bytes came back changed");
    assert_eq!(read, Ok(100), "readv into 2.1 GiB of capacity");
    assert!(
        spread_right,
        "the 100 bytes were not all in the first buffer"
    );
}

// ------------------------------------------ 6: genuine short reads, exactly

/// The shard side of test 6; every line is a mismatch.
async fn short_read_cases(f: File) -> Vec<String> {
    let mut bad = Vec::new();

    // Values 1-3: a Vec with 5 stale bytes below its capacity of 24.
    let mut v: Vec<u8> = Vec::with_capacity(24);
    v.extend_from_slice(&[0xEEu8; 5]);
    let (r, v) = f.read_exact_at(v, 0).timeout(LIMIT).await;
    if r.is_err() || v != values(1, 3) {
        bad.push(format!(
            "read_exact_at into a Vec (len 5, capacity 24): {r:?}, {v:02x?}"
        ));
    }
    // Values 4-6: an AlignedBuf.
    let (r, a) = f
        .read_exact_at(AlignedBuf::with_capacity(24, 8), 0)
        .timeout(LIMIT)
        .await;
    if r.is_err() || a[..] != values(4, 3)[..] {
        bad.push(format!(
            "read_exact_at into an AlignedBuf: {r:?}, {:02x?}",
            &a[..]
        ));
    }
    // Values 7-9: a BytesMut whose neighbour view shares its allocation.
    let mut whole = bytes::BytesMut::with_capacity(48);
    let mut neighbour = whole.split_off(24);
    neighbour.extend_from_slice(&[0xEE; 24]);
    let adjacent = whole.as_ptr() as usize + 24 == neighbour.as_ptr() as usize;
    let (r, whole) = f.read_exact_at(whole, 0).timeout(LIMIT).await;
    if r.is_err() || whole[..] != values(7, 3)[..] || neighbour[..] != [0xEEu8; 24] {
        bad.push(format!(
            "read_exact_at into a split BytesMut (neighbour adjacent: {adjacent}): {r:?}, \
             {:02x?}, neighbour {:02x?}",
            &whole[..],
            &neighbour[..]
        ));
    }
    // Values 10-12: a boxed slice.
    let (r, boxed) = f
        .read_exact_at(vec![0xEEu8; 24].into_boxed_slice(), 0)
        .timeout(LIMIT)
        .await;
    if r.is_err() || boxed[..] != values(10, 3)[..] {
        bad.push(format!(
            "read_exact_at into a Box<[u8]>: {r:?}, {:02x?}",
            &boxed[..]
        ));
    }

    // Value 13: one 8-byte read spread over Vecs of capacity [3, 0, 2, 10].
    let v13 = values(13, 1);
    let bufs: Vec<Vec<u8>> = vec![
        Vec::with_capacity(3),
        Vec::new(),
        Vec::with_capacity(2),
        Vec::with_capacity(10),
    ];
    let (n, bufs) = f.read_vectored_at(bufs, 0).timeout(LIMIT).await;
    let want = vec![
        v13[..3].to_vec(),
        vec![],
        v13[3..5].to_vec(),
        v13[5..].to_vec(),
    ];
    if errno(n) != Ok(8) || bufs != want {
        bad.push(format!(
            "readv of 8 bytes into Vecs [3, 0, 2, 10]: {bufs:02x?}"
        ));
    }
    // Value 14: AlignedBufs of capacity [3, 2, 10].
    let v14 = values(14, 1);
    let bufs = vec![
        AlignedBuf::with_capacity(3, 8),
        AlignedBuf::with_capacity(2, 8),
        AlignedBuf::with_capacity(10, 8),
    ];
    let (n, bufs) = f.read_vectored_at(bufs, 0).timeout(LIMIT).await;
    let got: Vec<Vec<u8>> = bufs.iter().map(|b| b.to_vec()).collect();
    if errno(n) != Ok(8) || got != [v14[..3].to_vec(), v14[3..5].to_vec(), v14[5..].to_vec()] {
        bad.push(format!(
            "readv of 8 bytes into AlignedBufs [3, 2, 10]: {got:02x?}"
        ));
    }
    // Value 15: BytesMuts of capacity [3, 2, 10].
    let v15 = values(15, 1);
    let bufs = vec![
        bytes::BytesMut::with_capacity(3),
        bytes::BytesMut::with_capacity(2),
        bytes::BytesMut::with_capacity(10),
    ];
    let (n, bufs) = f.read_vectored_at(bufs, 0).timeout(LIMIT).await;
    let got: Vec<Vec<u8>> = bufs.iter().map(|b| b.to_vec()).collect();
    if errno(n) != Ok(8) || got != [v15[..3].to_vec(), v15[3..5].to_vec(), v15[5..].to_vec()] {
        bad.push(format!(
            "readv of 8 bytes into BytesMuts [3, 2, 10]: {got:02x?}"
        ));
    }
    bad
}

/// Expected: with genuine short reads (an eventfd returns 8 bytes per
/// read, fed one value at a time), `read_exact_at` fills each buffer kind
/// exactly with the consecutive values — a `Vec` whose stale prefix is
/// overwritten, an `AlignedBuf`, a `BytesMut` whose neighbour view of the
/// same allocation stays untouched, a `Box<[u8]>` — and one 8-byte readv
/// spread over several buffers (an empty one among them) marks each
/// buffer with exactly the bytes it got, for `Vec`, `AlignedBuf` and
/// `BytesMut`.
///
/// Why: the existing tests get short counts only at end of file; here the
/// resubmission path of `read_exact_at` (`buf + filled`, `set_init(start +
/// n)`) runs three times per buffer, and each type's `set_init` is hit by
/// the vectored spread.
#[test]
fn short_reads_fill_only_the_unfilled_rest_of_each_buffer_and_mark_exactly_the_bytes_read() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let efd = eventfd();
    let feeder = feed(efd.try_clone().unwrap(), (1..=15).map(value).collect());
    let bad = on_shard(&rt, 0, LIMIT, short_read_cases(File::from(efd)));
    feeder.join().expect("the feeder thread failed");
    assert!(bad.is_empty(), "{bad:#?}");
}

// ------------------------------------------ 7: O_DIRECT with fixed buffers

/// The shard side of test 7; `None` where `O_DIRECT` is refused.
async fn direct_fixed_cases(path: PathBuf, registered: bool) -> Option<Vec<String>> {
    use std::os::unix::fs::FileExt;
    let content: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let f = open_direct(&path).await?;
    let f = if registered { f.register().unwrap() } else { f };
    let twin = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .unwrap()
    };
    let plain = std::fs::File::open(&path).unwrap();
    // What `pread` gives on the twin `O_DIRECT` fd: the bytes, or the errno.
    let std_read = |off: usize| -> Result<Vec<u8>, Option<i32>> {
        let mut a = AlignedBuf::with_capacity(4096, 4096);
        a.extend_from_slice(&[0u8; 4096]);
        twin.read_at(&mut a[..], off as u64)
            .map(|n| a[..n].to_vec())
            .map_err(|e| e.raw_os_error())
    };
    let mut bad = Vec::new();
    let pool = FixedBufPool::new(2, 100).unwrap(); // a page each
    let mut buf = pool.try_get().unwrap();
    for (off, want) in [
        (0usize, 4096usize),
        (512, 4096),
        (3 * 4096, 100),
        (4 * 4096, 0),
    ] {
        buf.put_slice(b"stale");
        let (n, b) = f.read_fixed_at(buf, off as u64).await;
        buf = b;
        let ours = errno(n).map(|n| (n, buf.len(), buf[..buf.len().min(n)].to_vec()));
        let theirs = std_read(off);
        let expect: &[u8] = content.get(off..off + want).unwrap_or(&[]);
        let ok = match (&ours, &theirs) {
            (Ok((n, len, bytes)), Ok(std_bytes)) => {
                *n == want && *len == want && bytes == expect && std_bytes == expect
            }
            _ => false,
        };
        if !ok {
            bad.push(format!(
                "read_fixed_at({off}) on O_DIRECT (registered file: {registered}): ringlane \
                 {:?}, pread {:?} (want {want} bytes)",
                ours.as_ref().map(|(n, len, _)| (*n, *len)),
                theirs.as_ref().map(Vec::len)
            ));
        }
    }
    // A whole block at an aligned offset.
    buf.put_slice(&[0xAB; 4096]);
    let (n, b) = f.write_fixed_at(buf, 4096).await;
    buf = b;
    let wrote = errno(n);
    let mut back = [0u8; 4096];
    plain.read_exact_at(&mut back, 4096).unwrap();
    if wrote != Ok(4096) || back != [0xABu8; 4096] {
        bad.push(format!(
            "write_fixed_at of a whole block at 4096 on O_DIRECT (registered file: {registered}): \
             {wrote:?}, first byte read back {:#x}",
            back[0]
        ));
    }
    // A misaligned length: what pwrite says on the twin.
    buf.put_slice(&[0xCD; 100]);
    let (n, b) = f.write_fixed_at(buf, 0).await;
    buf = b;
    let ours = errno(n);
    let mut aligned = AlignedBuf::with_capacity(4096, 4096);
    aligned.extend_from_slice(&[0xCD; 100]);
    let theirs = errno(twin.write_at(&aligned[..], 0));
    if ours != theirs || buf.len() != 100 {
        bad.push(format!(
            "write_fixed_at of 100 bytes on O_DIRECT (registered file: {registered}): \
             ringlane {ours:?}, pwrite {theirs:?}"
        ));
    }
    drop(buf);
    Some(bad)
}

/// Expected: `read_fixed_at`/`write_fixed_at` on an `O_DIRECT` file (plain
/// and registered) work with a pool's buffers ("page-aligned, usable with
/// O_DIRECT"): whole blocks at 0 and at 512, the 100-byte tail, 0 past the
/// end (each `len()` the count), a whole block written and read back; a
/// 100-byte write gets what `pwrite` gets on a twin `O_DIRECT` fd.
///
/// Why: no existing test combines fixed buffers with `O_DIRECT`; the
/// fixed ops pass the buffer's full capacity and its registered index
/// (fs/fixed.rs:210-224, 251-267). Skips where `O_DIRECT` is refused.
#[test]
fn o_direct_fixed_buffers_read_and_write_whole_blocks_and_the_tail_like_std() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let dir = TempDir::new("bufs-direct-fixed");
    for registered in [false, true] {
        let path = dir.0.join(format!("f-{registered}"));
        match on_shard(&rt, 0, LIMIT, direct_fixed_cases(path, registered)) {
            None => {
                println!(
                    "SKIP o_direct_fixed_buffers: {} refuses O_DIRECT",
                    std::env::temp_dir().display()
                );
                return;
            }
            Some(bad) => assert!(bad.is_empty(), "{bad:#?}"),
        }
    }
}

// ------------------------- 8: fixed buffers in a vectored read dropped in flight

/// Expected: two fixed buffers lent to a `read_vectored_at` of an empty
/// eventfd, whose future is dropped in flight, stay out of the pool until
/// the kernel has answered the cancel (none is back right after the drop),
/// then both come back; the cancelled readv took nothing (the next value
/// goes to the next read); no fd leaks.
///
/// Why: the vectored op keeps its buffers and their iovecs in one
/// resource (`VecRes`, fs/vectored.rs:11-15) inside the op's cell; a
/// buffer back in the pool while the kernel may still write into it would
/// be handed to the next `get` and overwritten under its new owner.
#[test]
fn fixed_buffers_in_a_vectored_read_dropped_in_flight_come_back_only_after_the_kernel_and_take_no_bytes()
 {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let efd = eventfd();
    let writer = efd.try_clone().unwrap();
    let Held((free_right_after_drop, pool, f)) = on_shard(&rt, 0, LIMIT, async move {
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let f = File::from(efd);
        let bufs = vec![pool.try_get().unwrap(), pool.try_get().unwrap()];
        let free = {
            let mut read = Box::pin(f.read_vectored_at(bufs, 0));
            assert!(
                poll_once(&mut read).await,
                "a readv of an empty eventfd waits"
            );
            drop(read); // in flight: the buffers are the kernel's until the cancel's CQE
            pool.available()
        };
        Held((free, pool, f))
    });
    assert_eq!(
        free_right_after_drop, 0,
        "a fixed buffer of a readv still in flight was back in the pool"
    );
    two_ticks(&rt, 0);
    common::wait_until("both buffers back after the cancel", || {
        pool.available() == 2
    });
    eventfd_write(&writer, 42);
    let next = on_shard(&rt, 0, LIMIT, async move {
        let (n, buf) = f
            .read_at(Vec::<u8>::with_capacity(8), 0)
            .timeout(LIMIT)
            .await;
        n.expect("the next read: the cancelled readv swallowed the value");
        u64::from_ne_bytes(buf[..8].try_into().unwrap())
    });
    assert_eq!(next, 42, "the cancelled readv took the value");
    drop((pool, writer));
    drop(rt);
    assert_eq!(settled_fd_count(), before, "an fd leaked");
}

// ---------------------------- 9: read_exact_at cut by a native timeout

/// Expected: `read_exact_at(Vec::with_capacity(16))` of an eventfd holding
/// one value, under a 100 ms `native::timeout`: the first read takes the
/// value's 8 bytes, the second waits and is cut at the deadline; the call
/// fails with `TimedOut` and gives the buffer back with exactly those 8
/// bytes (length 8). The cut read took nothing: the next value written
/// goes to the next read.
///
/// Why: the timeout's buffer-return promise ("with its buffer given back")
/// meets the exact-read loop: the bytes of the completed sub-read must be
/// marked (set_init after each, fs/file.rs:187-190) and the cut sub-read's
/// `-ECANCELED` must be reported as `TimedOut` (op/cell.rs
/// `timed_out_as_such`), not retried nor turned into data.
#[test]
fn a_read_exact_at_cut_by_a_native_timeout_keeps_the_bytes_it_read_and_takes_no_more() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let efd = eventfd();
    let writer = efd.try_clone().unwrap();
    eventfd_write(&writer, value(1));
    let (kind, bytes, f) = on_shard(&rt, 0, LIMIT, async move {
        let f = File::from(efd);
        let (r, buf) = f
            .read_exact_at(Vec::<u8>::with_capacity(16), 0)
            .timeout(Duration::from_millis(100))
            .await;
        (r.err().map(|e| e.kind()), buf, f)
    });
    assert_eq!(
        kind,
        Some(ErrorKind::TimedOut),
        "read_exact_at cut by its timeout"
    );
    assert_eq!(
        bytes,
        values(1, 1),
        "the buffer must hold exactly the 8 bytes read before the deadline"
    );
    eventfd_write(&writer, value(2));
    let next = on_shard(&rt, 0, LIMIT, async move {
        let (n, buf) = f
            .read_at(Vec::<u8>::with_capacity(8), 0)
            .timeout(LIMIT)
            .await;
        n.expect("the next read: the cut read swallowed the value");
        buf
    });
    assert_eq!(next, values(2, 1), "the cut read took the next value");
}

// ------------------------- 10: a waiter that takes one of several free buffers

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One poll of `f` with `waker`.
fn poll_with<F: std::future::Future>(
    f: std::pin::Pin<&mut F>,
    waker: &std::task::Waker,
) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(waker))
}

/// Expected: a pool of 2, both buffers held; `a` waits in `get`; both
/// come back (waking `a`); then `c` asks and queues behind `a` (no
/// barging); `a` takes one and keeps it. One buffer is still free, so `c`
/// must be woken then, and take it.
///
/// Why: a waiter that takes a buffer leaves the list; if it woke nobody,
/// `c` (queued after the give-backs, so never woken by them) would sleep
/// beside a free buffer until some other buffer came back, or forever.
#[test]
fn a_waiter_that_takes_one_of_two_free_buffers_wakes_the_get_queued_behind_it() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let (woken, got) = on_shard(&rt, 0, LIMIT, async {
        let pool = FixedBufPool::new(2, 4096).unwrap();
        let (x, y) = (pool.try_get().unwrap(), pool.try_get().unwrap());
        let p = pool.clone();
        let (keep_tx, keep_rx) = tokio::sync::oneshot::channel::<()>();
        let a = ringlane::spawn_local(async move {
            let held = p.get().await;
            let _ = keep_rx.await;
            drop(held);
        })
        .unwrap();
        ringlane::yield_now().await; // `a` runs, finds none free, waits
        drop((x, y)); // both back: `a` is woken, and runs at the next yield
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = std::task::Waker::from(flag.clone());
        let mut c = Box::pin(pool.get());
        assert!(
            poll_with(c.as_mut(), &waker).is_pending(),
            "c must queue behind the waiting `a`"
        );
        ringlane::yield_now().await; // `a` takes one buffer and keeps it
        assert_eq!(pool.available(), 1, "`a` took one of the two");
        let woken = flag.0.load(Ordering::SeqCst);
        let got = poll_with(c.as_mut(), &waker).is_ready();
        drop(keep_tx);
        a.await.unwrap();
        (woken, got)
    });
    assert!(
        woken,
        "the get queued behind `a` was not woken for the buffer left free"
    );
    assert!(
        got,
        "the get queued behind `a` did not take the buffer left free"
    );
}
