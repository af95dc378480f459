//! The Tokio baselines: `tokio::fs::File` (seek, then read_exact or
//! write_all + sync_data; each a trip to the blocking pool, as Tokio's file
//! I/O is) and `spawn_blocking(pread)`, on a current-thread runtime (qd1,
//! write) or 32 tasks on the 2-worker multi-thread runtime (qd32).

use std::io::SeekFrom;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::QD;
use crate::blocking::pread;
use crate::buf::PageBuf;
use crate::cases::Env;
use crate::files::{
    Offsets, READ_BLOCKS, WRITE_BLOCKS, check_read, check_written, offset, seq_base, tag_block,
};
use crate::measure::{LatRun, Samples, Span, TputRun};
use crate::ringlane_cases::reads_of;
use crate::watchdog::step;

/// The file at `path` opened anew, for a `tokio::fs::File` of its own: a
/// file description, and so a file position, of its own (a `try_clone`,
/// `dup(2)`, would share the position, and the seeks of concurrent tasks
/// would race).
fn reopen(path: &Path, write: bool) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// One positioned read through `tokio::fs::File`: seek, then read_exact.
async fn tokio_fs_read(f: &mut tokio::fs::File, buf: &mut [u8], block: u64, case: &str) {
    f.seek(SeekFrom::Start(offset(block)))
        .await
        .unwrap_or_else(|e| panic!("{case}: seek: {e}"));
    let res = f.read_exact(buf).await;
    check_read(res, buf, block, case);
}

/// One `pread` on the blocking pool; the buffer goes there and back.
async fn spawn_blocking_read(
    file: &Arc<std::fs::File>,
    buf: PageBuf,
    block: u64,
    case: &str,
) -> PageBuf {
    let f = Arc::clone(file);
    let (res, buf) = tokio::task::spawn_blocking(move || {
        let mut buf = buf;
        (pread(f.as_raw_fd(), &mut buf, block), buf)
    })
    .await
    .expect("blocking task");
    check_read(res, &buf, block, case);
    buf
}

pub(crate) fn qd1_tokio_fs(env: &Env, warm: usize, n: usize) -> LatRun {
    let std = reopen(&env.files.read_path, false);
    env.tokio_ct.block_on(async move {
        let mut f = tokio::fs::File::from_std(std);
        let mut buf = PageBuf::new();
        let mut offsets = Offsets::new(0, READ_BLOCKS);
        let mut s = Samples::new(warm, n);
        for _ in 0..s.total() {
            let block = offsets.next_block();
            tokio_fs_read(&mut f, &mut buf, block, "tokio_fs qd1").await;
            s.tick();
        }
        s.finish()
    })
}

pub(crate) fn qd1_tokio_spawn_blocking(env: &Env, warm: usize, n: usize) -> LatRun {
    let file = Arc::clone(&env.std_read);
    env.tokio_ct.block_on(async move {
        let mut buf = PageBuf::new();
        let mut offsets = Offsets::new(0, READ_BLOCKS);
        let mut s = Samples::new(warm, n);
        for _ in 0..s.total() {
            let block = offsets.next_block();
            buf = spawn_blocking_read(&file, buf, block, "tokio spawn_blocking qd1").await;
            s.tick();
        }
        s.finish()
    })
}

pub(crate) fn qd32_tokio_fs(env: &Env, reads: u64) -> TputRun {
    let files: Vec<std::fs::File> = (0..QD)
        .map(|_| reopen(&env.files.read_path, false))
        .collect();
    let driver = env.tokio_mt.spawn(async move {
        let span = Span::start();
        let joins: Vec<_> = files
            .into_iter()
            .enumerate()
            .map(|(task, std)| {
                tokio::spawn(async move {
                    let mut f = tokio::fs::File::from_std(std);
                    let mut buf = PageBuf::new();
                    let mut offsets = Offsets::new(task as u64, READ_BLOCKS);
                    for done in 1..=reads_of(task, reads) {
                        let block = offsets.next_block();
                        tokio_fs_read(&mut f, &mut buf, block, "tokio_fs qd32").await;
                        step(done);
                    }
                })
            })
            .collect();
        for join in joins {
            join.await.expect("read task");
        }
        span.end()
    });
    env.tokio_mt.block_on(driver).expect("driver task")
}

pub(crate) fn qd32_tokio_spawn_blocking(env: &Env, reads: u64) -> TputRun {
    let file = Arc::clone(&env.std_read);
    let driver = env.tokio_mt.spawn(async move {
        let span = Span::start();
        let joins: Vec<_> = (0..QD)
            .map(|task| {
                let file = Arc::clone(&file);
                tokio::spawn(async move {
                    let mut buf = PageBuf::new();
                    let mut offsets = Offsets::new(task as u64, READ_BLOCKS);
                    for done in 1..=reads_of(task, reads) {
                        let block = offsets.next_block();
                        buf = spawn_blocking_read(&file, buf, block, "tokio spawn_blocking qd32")
                            .await;
                        step(done);
                    }
                })
            })
            .collect();
        for join in joins {
            join.await.expect("read task");
        }
        span.end()
    });
    env.tokio_mt.block_on(driver).expect("driver task")
}

pub(crate) fn write_tokio_fs(env: &Env, warm: usize, n: usize) -> LatRun {
    let case = "tokio_fs write";
    let std = reopen(&env.files.write_path, true);
    let seq0 = seq_base(warm + n);
    let (run, (block, seq)) = env.tokio_ct.block_on(async move {
        let mut f = tokio::fs::File::from_std(std);
        let mut buf = PageBuf::new();
        let mut offsets = Offsets::new(0, WRITE_BLOCKS);
        let mut s = Samples::new(warm, n);
        let mut last = (0, 0);
        for i in 0..s.total() {
            let block = offsets.next_block();
            let seq = seq0 + i as u64;
            tag_block(&mut buf, block, seq);
            f.seek(SeekFrom::Start(offset(block)))
                .await
                .unwrap_or_else(|e| panic!("{case}: seek: {e}"));
            f.write_all(&buf)
                .await
                .unwrap_or_else(|e| panic!("{case}: write at block {block}: {e}"));
            f.sync_data()
                .await
                .unwrap_or_else(|e| panic!("{case}: sync_data after block {block}: {e}"));
            s.tick();
            last = (block, seq);
        }
        (s.finish(), last)
    });
    check_written(&env.std_write, block, seq, case);
    run
}
