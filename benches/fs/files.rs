//! The temporary files (created once, removed on drop or by the watchdog
//! before it aborts), the deterministic offsets, and the data checks.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{BLOCK, READ_FILE_SIZE, WRITE_FILE_SIZE};

/// Paths of the files that exist, for [`remove_all`].
static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Blocks of the read file.
pub(crate) const READ_BLOCKS: u64 = READ_FILE_SIZE / BLOCK as u64;
/// Blocks of the write file.
pub(crate) const WRITE_BLOCKS: u64 = WRITE_FILE_SIZE / BLOCK as u64;
/// Blocks of the medium whole-file reads' file (64 KiB).
pub(crate) const MEDIUM_BLOCKS: usize = 16;

/// The read file (every block tagged with its index) and the write file.
pub(crate) struct TestFiles {
    pub(crate) read_path: PathBuf,
    pub(crate) write_path: PathBuf,
    /// One tagged block (block 0): the small whole-file reads' file.
    pub(crate) small_path: PathBuf,
    /// [`MEDIUM_BLOCKS`] tagged blocks: the whole-file reads past the first
    /// 8 KiB read (`fs::read` asks the size only then).
    pub(crate) medium_path: PathBuf,
    dir: PathBuf,
}

impl TestFiles {
    /// Creates both files in cargo's per-target temporary directory
    /// (`target/tmp`, on the build disk, rarely a tmpfs where fsync is free),
    /// flushes them to the device, and reads the read file once so that it
    /// is page-cached.
    pub(crate) fn create() -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(&dir).expect("create the bench directory");
        let pid = std::process::id();
        let files = Self {
            read_path: dir.join(format!("ringlane-fs-bench-read-{pid}")),
            write_path: dir.join(format!("ringlane-fs-bench-write-{pid}")),
            small_path: dir.join(format!("ringlane-fs-bench-small-{pid}")),
            medium_path: dir.join(format!("ringlane-fs-bench-medium-{pid}")),
            dir,
        };
        fill(&files.read_path, READ_FILE_SIZE);
        fill(&files.write_path, WRITE_FILE_SIZE);
        fill(&files.small_path, BLOCK as u64);
        fill(&files.medium_path, (MEDIUM_BLOCKS * BLOCK) as u64);
        let mut whole = Vec::with_capacity(READ_FILE_SIZE as usize);
        File::open(&files.read_path)
            .and_then(|mut f| f.read_to_end(&mut whole))
            .expect("read the read file once");
        assert_eq!(whole.len() as u64, READ_FILE_SIZE, "read file size");
        for block in 0..READ_BLOCKS {
            let at = block as usize * BLOCK;
            check_block(&whole[at..at + BLOCK], block, "set-up read");
        }
        files
    }

    /// The file system of the directory the files are in, by `statfs` type.
    pub(crate) fn describe_fs(&self) -> String {
        let c = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: `statfs` is plain data, for which all-zero bytes are valid.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a NUL-terminated path and `st` a writable `statfs`.
        let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
        let kind = match (rc, st.f_type) {
            (0, 0xEF53) => "ext4",
            (0, 0x5846_5342) => "xfs",
            (0, 0x9123_683E) => "btrfs",
            (0, 0x0102_1994) => "tmpfs (fsync is free)",
            (0, 0x794C_7630) => "overlayfs",
            (0, _) => "another file system",
            _ => "an unknown file system",
        };
        format!("{kind} (`{}`)", self.dir.display())
    }
}

impl Drop for TestFiles {
    fn drop(&mut self) {
        remove_all();
    }
}

/// Removes every file [`TestFiles`] created (also called by the watchdog
/// before it aborts the process).
pub(crate) fn remove_all() {
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    for path in paths.drain(..) {
        if let Err(e) = std::fs::remove_file(&path) {
            eprintln!("fs bench: could not remove {}: {e}", path.display());
        }
    }
}

/// Writes `size` bytes of tagged blocks to a new file at `path` and flushes
/// them to the device, so no writeback runs while cases are timed.
fn fill(path: &Path, size: u64) {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    PATHS.lock().unwrap().push(path.to_path_buf());
    const CHUNK_BLOCKS: u64 = 256;
    let mut chunk = vec![0u8; CHUNK_BLOCKS as usize * BLOCK];
    let blocks = size / BLOCK as u64;
    let mut block = 0;
    while block < blocks {
        let k = CHUNK_BLOCKS.min(blocks - block);
        for i in 0..k {
            let at = i as usize * BLOCK;
            tag_block(&mut chunk[at..at + BLOCK], block + i, 0);
        }
        f.write_all(&chunk[..k as usize * BLOCK]).expect("fill");
        block += k;
    }
    f.sync_all().expect("fsync the new file");
}

/// Fills a block: its index in the first 8 bytes, `seq` in the next 8, then
/// a byte pattern.
pub(crate) fn tag_block(buf: &mut [u8], block: u64, seq: u64) {
    buf[..8].copy_from_slice(&block.to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..].fill(block as u8 ^ 0x5a);
}

/// Panics unless `buf` is a whole block tagged with `block`.
fn check_block(buf: &[u8], block: u64, what: &str) {
    assert_eq!(buf.len(), BLOCK, "{what}: short buffer");
    let tag = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
    assert!(
        tag == block && buf[BLOCK - 1] == block as u8 ^ 0x5a,
        "{what}: WRONG DATA at block {block} (offset {}): tag {tag}, last byte {:#x}",
        block * BLOCK as u64,
        buf[BLOCK - 1]
    );
}

/// Panics unless `buf` holds whole blocks tagged `first`, `first + 1`, ...
pub(crate) fn check_blocks(buf: &[u8], first: u64, case: &str) {
    for (i, block) in buf.chunks(BLOCK).enumerate() {
        check_block(block, first + i as u64, case);
    }
}

/// Checks one read's result: `BLOCK` bytes of block `block`.
#[inline]
pub(crate) fn check_read(res: io::Result<usize>, buf: &[u8], block: u64, case: &str) {
    match res {
        Ok(n) if n == BLOCK => check_block(&buf[..BLOCK], block, case),
        Ok(n) => panic!("{case}: short read of {n} bytes at block {block}"),
        Err(e) => panic!("{case}: read at block {block} failed: {e}"),
    }
}

/// Reads block `block` of the write file back and checks that it holds the
/// write with sequence number `seq`.
pub(crate) fn check_written(file: &File, block: u64, seq: u64, case: &str) {
    let mut buf = vec![0u8; BLOCK];
    file.read_exact_at(&mut buf, block * BLOCK as u64)
        .expect("read back");
    check_block(&buf, block, case);
    let got = u64::from_le_bytes(buf[8..16].try_into().expect("8 bytes"));
    assert_eq!(
        got, seq,
        "{case}: block {block} does not hold the last write"
    );
}

/// A deterministic sequence of block indexes (splitmix64).
pub(crate) struct Offsets {
    state: u64,
    blocks: u64,
}

impl Offsets {
    /// The sequence of task `task` (0 for single-stream cases) over `blocks`.
    pub(crate) fn new(task: u64, blocks: u64) -> Self {
        Self {
            state: 0x00dd_b1a5_e5f0_0d5e ^ task.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            blocks,
        }
    }

    /// The next block index.
    #[inline]
    pub(crate) fn next_block(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % self.blocks
    }
}

/// Byte offset of a block.
#[inline]
pub(crate) fn offset(block: u64) -> u64 {
    block * BLOCK as u64
}

/// How many fds this process has open (entries of `/proc/self/fd`, less
/// the one that lists them).
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count()
        - 1
}

/// First sequence number of a write run of `n` writes: every write of the
/// suite carries a different one, so reading the last write back proves
/// that it landed.
pub(crate) fn seq_base(n: usize) -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed)
}

/// Checks one write's result: all `BLOCK` bytes written.
#[inline]
pub(crate) fn check_write(res: io::Result<usize>, block: u64, case: &str) {
    match res {
        Ok(n) if n == BLOCK => {}
        Ok(n) => panic!("{case}: short write of {n} bytes at block {block}"),
        Err(e) => panic!("{case}: write at block {block} failed: {e}"),
    }
}
