//! fs qd1: 4 KiB reads at pseudo-random 4 KiB-aligned offsets of a
//! page-cached 64 MiB file, one at a time. The file, its offsets and data
//! checks, the raw io_uring floor and ringlane; the peers are in
//! [`crate::fs_peers`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use io_uring::{opcode, types};
use ringlane::native::AlignedBuf;

use crate::buf::PageBuf;
use crate::stats::{Clock, Run};
use crate::{BLOCK, FILE_SIZE};

/// Blocks of the file.
pub(crate) const BLOCKS: u64 = FILE_SIZE / BLOCK as u64;

/// An fs case: `warm` unrecorded reads, then `n` samples.
pub(crate) struct FsCase {
    pub(crate) id: &'static str,
    pub(crate) what: &'static str,
    pub(crate) run: fn(&TestFile, usize, usize) -> Run,
}

/// The temporary file: created and written, flushed, read once (so it is
/// page-cached), removed on drop.
pub(crate) struct TestFile {
    pub(crate) path: PathBuf,
    pub(crate) std: File,
}

impl TestFile {
    /// Creates it in the workspace's `target/tmp` (on the build disk).
    pub(crate) fn create() -> Self {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/tmp"));
        std::fs::create_dir_all(&dir).expect("create target/tmp");
        let path = dir.join(format!("ringlane-peers-fs-{}", std::process::id()));
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let file = Self {
            path,
            std: f.try_clone().expect("dup"),
        };
        let mut block = vec![0u8; BLOCK];
        for b in 0..BLOCKS {
            tag_block(&mut block, b);
            f.write_all(&block).expect("fill the file");
        }
        f.sync_all().expect("fsync the file");
        let mut whole = Vec::with_capacity(FILE_SIZE as usize);
        File::open(&file.path)
            .and_then(|mut f| f.read_to_end(&mut whole))
            .expect("read the file once");
        assert_eq!(whole.len() as u64, FILE_SIZE, "file size");
        for (b, chunk) in whole.chunks(BLOCK).enumerate() {
            check_block(chunk, b as u64, "set-up read");
        }
        file
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}

/// Fills a block: its index in the first 8 bytes, then a byte pattern.
fn tag_block(buf: &mut [u8], block: u64) {
    buf[..8].copy_from_slice(&block.to_le_bytes());
    for (i, b) in buf[8..].iter_mut().enumerate() {
        *b = (block as u8 ^ 0x5a).wrapping_add(i as u8);
    }
}

/// Panics unless `buf` is exactly block `block` as written.
fn check_block(buf: &[u8], block: u64, what: &str) {
    let mut want = [0u8; BLOCK];
    tag_block(&mut want, block);
    assert!(
        buf.len() == BLOCK && buf == want,
        "{what}: WRONG DATA at block {block} ({} bytes)",
        buf.len()
    );
}

/// Checks one read's result: `BLOCK` bytes of block `block`, by its tag
/// and two pattern bytes (as the fs suite does). The whole-block check
/// costs about half a microsecond, inside every case's timing: it added
/// the same to every case and pulled every ratio toward 1 (the set-up read
/// checks every byte once).
#[inline]
pub(crate) fn check_read(res: io::Result<usize>, buf: &[u8], block: u64, case: &str) {
    match res {
        Ok(n) if n == BLOCK => {
            let tag = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
            let byte = |i: usize| (block as u8 ^ 0x5a).wrapping_add((i - 8) as u8);
            assert!(
                tag == block && buf[100] == byte(100) && buf[BLOCK - 1] == byte(BLOCK - 1),
                "{case}: WRONG DATA at block {block}: tag {tag}"
            );
        }
        Ok(n) => panic!("{case}: short read of {n} bytes at block {block}"),
        Err(e) => panic!("{case}: read at block {block} failed: {e}"),
    }
}

/// A deterministic sequence of block indexes (splitmix64), the same for
/// every case.
pub(crate) struct Offsets(u64);

impl Offsets {
    pub(crate) fn new() -> Self {
        Self(0x00dd_b1a5_e5f0_0d5e)
    }

    /// The sequence of stream `t` of a qd32 case (stream 0's is `new`'s).
    pub(crate) fn for_stream(t: usize) -> Self {
        Self(0x00dd_b1a5_e5f0_0d5e ^ (t as u64).wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    /// The next block and its byte offset.
    #[inline]
    pub(crate) fn next_block(&mut self) -> (u64, u64) {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let block = (z ^ (z >> 31)) % BLOCKS;
        (block, block * BLOCK as u64)
    }
}

pub(crate) const FS_CASES: &[FsCase] = &[
    FsCase {
        id: "raw_uring",
        what: "bare `io-uring` ring set up like ringlane's (DEFER_TASKRUN, registered ring fd), READ + enter(1)",
        run: raw_uring,
    },
    FsCase {
        id: "ringlane",
        what: "`native::fs::File::read_at`, 1 shard, task pinned on shard 0",
        run: ringlane_read,
    },
    FsCase {
        id: "monoio",
        what: "`monoio::fs::File::read_at`, io_uring driver",
        run: crate::fs_peers::monoio_read,
    },
    FsCase {
        id: "compio",
        what: "`compio::fs::File::read_at` (`AsyncReadAt`)",
        run: crate::fs_peers::compio_read,
    },
    FsCase {
        id: "glommio",
        what: "`glommio::io::BufferedFile::read_at` (glommio allocates each read's buffer)",
        run: crate::fs_peers::glommio_read,
    },
];

fn raw_uring(file: &TestFile, warm: usize, n: usize) -> Run {
    // Declared before the ring, so that the ring is closed before the
    // buffer is freed, even on a panic.
    let mut buf = PageBuf::new();
    let mut ring = crate::floor_ring::FloorRing::like_ringlane(8, None);
    let fd = types::Fd(file.std.as_raw_fd());
    let mut offsets = Offsets::new();
    let mut clock = Clock::new(warm, n);
    for _ in 0..clock.total() {
        let (block, at) = offsets.next_block();
        let sqe = opcode::Read::new(fd, buf.as_mut_ptr(), BLOCK as u32)
            .offset(at)
            .build();
        // SAFETY: `buf` holds BLOCK writable bytes and is neither read,
        // reused nor freed before this read's CQE is reaped just below (it
        // outlives the ring); the fd stays open in `file`.
        unsafe { ring.submission().push(&sqe) }.expect("SQ full");
        ring.enter(1);
        let res = ring.completion().next().expect("a CQE").result();
        let res = if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as usize)
        };
        check_read(res, buf.whole(), block, "raw_uring");
        clock.tick();
    }
    clock.finish()
}

/// A one-shard ringlane runtime, and the test file as its `File` (a dup).
pub(crate) fn one_shard_with(file: &TestFile) -> (ringlane::Runtime, ringlane::native::fs::File) {
    let rt = ringlane::Runtime::builder()
        .shards(1)
        .build()
        .expect("ringlane runtime");
    let f = ringlane::native::fs::File::from(file.std.try_clone().expect("dup"));
    (rt, f)
}

fn ringlane_read(file: &TestFile, warm: usize, n: usize) -> Run {
    let (rt, f) = crate::fs::one_shard_with(file);
    let driver = rt
        .handle()
        .spawn_pinned(0, async move {
            let mut buf = AlignedBuf::with_capacity(BLOCK, 4096);
            let mut offsets = Offsets::new();
            let mut clock = Clock::new(warm, n);
            for _ in 0..clock.total() {
                let (block, at) = offsets.next_block();
                let (res, b) = f.read_at(buf, at).await;
                check_read(res, &b, block, "ringlane");
                buf = b;
                clock.tick();
            }
            clock.finish()
        })
        .expect("spawn driver");
    let run = rt.block_on(driver).expect("driver task");
    crate::shutdown(rt);
    run
}
