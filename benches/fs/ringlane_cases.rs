//! The ringlane cases: `File::read_at` one at a time from a task on shard 0
//! (qd1), from 32 tasks on one or two shards (qd32), and `write_at` +
//! `sync_data` (write).

use ringlane::native::fixed::FixedBufPool;
use ringlane::native::fs::File;

use crate::buf::PageBuf;
use crate::cases::Env;
use crate::files::{
    Offsets, READ_BLOCKS, WRITE_BLOCKS, check_read, check_write, check_written, offset, seq_base,
    tag_block,
};
use crate::measure::{LatRun, Samples, Span, TputRun, parks};
use crate::watchdog::step;
use crate::{BLOCK, QD};

/// Reads one at a time from a task on shard 0 into the buffer `make_buf`
/// builds there; the run notes the buffer's offset in its page.
fn qd1<B, M>(env: &Env, warm: usize, n: usize, make_buf: M) -> LatRun
where
    B: ringlane::native::IoBufMut + std::ops::Deref<Target = [u8]>,
    M: FnOnce() -> B + Send + 'static,
{
    let handle = env.ringlane.handle();
    let file = env.rl_read.clone();
    let parks0 = parks(&handle);
    let driver = handle
        .spawn_pinned(0, async move {
            let mut s = Samples::new(warm, n);
            let mut offsets = Offsets::new(0, READ_BLOCKS);
            let mut buf = make_buf();
            let page_offset = buf.as_ptr() as usize % 4096;
            for _ in 0..s.total() {
                let block = offsets.next_block();
                let (res, b) = file.read_at(buf, offset(block)).await;
                check_read(res, &b, block, "ringlane qd1");
                buf = b;
                s.tick();
            }
            let mut run = s.finish();
            run.note = Some(format!("buffer at page offset {page_offset}"));
            run
        })
        .expect("spawn driver");
    let mut run = env.ringlane.block_on(driver).expect("driver task");
    run.parks = Some((parks(&handle) - parks0, (warm + n) as u64));
    run
}

pub(crate) fn qd1_ringlane(env: &Env, warm: usize, n: usize) -> LatRun {
    qd1(env, warm, n, PageBuf::new)
}

/// The same with a plain `Vec<u8>` allocated on the shard, wherever malloc
/// puts it (see [`crate::buf`]).
pub(crate) fn qd1_ringlane_vec(env: &Env, warm: usize, n: usize) -> LatRun {
    qd1(env, warm, n, || vec![0u8; BLOCK])
}

/// The opt-in fast path: the file registered in shard 0's file table and
/// one buffer of a registered pool (`READ_FIXED` on a fixed file).
pub(crate) fn qd1_ringlane_fixed(env: &Env, warm: usize, n: usize) -> LatRun {
    let handle = env.ringlane.handle();
    let file = env.rl_read.clone();
    let parks0 = parks(&handle);
    let driver = handle
        .spawn_pinned(0, async move {
            let file = file.register().expect("register the file");
            let pool = FixedBufPool::new(1, BLOCK).expect("register a buffer");
            let mut s = Samples::new(warm, n);
            let mut offsets = Offsets::new(0, READ_BLOCKS);
            let mut buf = pool.get().await;
            for _ in 0..s.total() {
                let block = offsets.next_block();
                let (res, b) = file.read_fixed_at(buf, offset(block)).await;
                check_read(res, &b, block, "ringlane fixed qd1");
                buf = b;
                s.tick();
            }
            s.finish()
        })
        .expect("spawn driver");
    let mut run = env.ringlane.block_on(driver).expect("driver task");
    run.parks = Some((parks(&handle) - parks0, (warm + n) as u64));
    run
}

/// Reads of task `task` when `reads` are split over [`QD`] tasks.
pub(crate) fn reads_of(task: usize, reads: u64) -> u64 {
    reads / QD as u64 + u64::from((task as u64) < reads % QD as u64)
}

/// One of the qd32 tasks: `reads` reads in turn, the sequence of `task`.
async fn read_task(file: File, task: usize, reads: u64) {
    let mut offsets = Offsets::new(task as u64, READ_BLOCKS);
    let mut buf = PageBuf::new();
    for done in 1..=reads {
        let block = offsets.next_block();
        let (res, b) = file.read_at(buf, offset(block)).await;
        check_read(res, &b, block, "ringlane qd32");
        buf = b;
        step(done);
    }
}

/// A driver task on shard 0 starts [`QD`] read tasks, round-robin over the
/// runtime's shards (`spawn_local` on its own), joins them, and times itself.
fn qd32(rt: &ringlane::Runtime, file: &File, reads: u64) -> TputRun {
    let handle = rt.handle();
    let file = file.clone();
    let parks0 = parks(&handle);
    let driver = handle
        .spawn_pinned(0, async move {
            let handle = ringlane::Handle::current().expect("driver runs on a shard");
            let span = Span::start();
            let mut joins = Vec::with_capacity(QD);
            for task in 0..QD {
                let read = read_task(file.clone(), task, reads_of(task, reads));
                let shard = task % handle.shards();
                let join = if shard == 0 {
                    ringlane::spawn_local(read)
                } else {
                    handle.spawn_pinned(shard, read)
                };
                joins.push(join.expect("spawn read task"));
            }
            for join in joins {
                join.await.expect("read task");
            }
            span.end()
        })
        .expect("spawn driver");
    let mut run = rt.block_on(driver).expect("driver task");
    run.parks = Some(parks(&handle) - parks0);
    run
}

pub(crate) fn qd32_ringlane(env: &Env, reads: u64) -> TputRun {
    qd32(&env.ringlane, &env.rl_read, reads)
}

pub(crate) fn qd32_ringlane_2_shards(env: &Env, reads: u64) -> TputRun {
    qd32(&env.ringlane_2, &env.rl_read, reads)
}

pub(crate) fn write_ringlane(env: &Env, warm: usize, n: usize) -> LatRun {
    let handle = env.ringlane.handle();
    let file = env.rl_write.clone();
    let seq0 = seq_base(warm + n);
    let parks0 = parks(&handle);
    let driver = handle
        .spawn_pinned(0, async move {
            let mut s = Samples::new(warm, n);
            let mut offsets = Offsets::new(0, WRITE_BLOCKS);
            let mut buf = PageBuf::new();
            let mut last = (0, 0);
            for i in 0..s.total() {
                let block = offsets.next_block();
                let seq = seq0 + i as u64;
                tag_block(&mut buf, block, seq);
                let (res, b) = file.write_at(buf, offset(block)).await;
                check_write(res, block, "ringlane write");
                buf = b;
                file.sync_data().await.expect("ringlane sync_data");
                s.tick();
                last = (block, seq);
            }
            (s.finish(), last)
        })
        .expect("spawn driver");
    let (mut run, (block, seq)) = env.ringlane.block_on(driver).expect("driver task");
    run.parks = Some((parks(&handle) - parks0, (warm + n) as u64));
    check_written(&env.std_write, block, seq, "ringlane write");
    run
}
