//! fs qd1 on the peer runtimes: each reads on its own single thread (the
//! bench thread), one read at a time, checking every block.

use crate::BLOCK;
use crate::buf::PageBuf;
use crate::fs::{Offsets, TestFile, check_read};
use crate::stats::{Clock, Run};

/// monoio, io_uring driver, reusing one page-aligned [`PageBuf`] (monoio's
/// `IoBufMut` is an unsafe trait any buffer type can implement).
pub(crate) fn monoio_read(file: &TestFile, warm: usize, n: usize) -> Run {
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio io_uring runtime");
    let std = file.std.try_clone().expect("dup");
    rt.block_on(async move {
        let f = monoio::fs::File::from_std(std).expect("monoio file");
        let mut buf = PageBuf::new();
        let mut offsets = Offsets::new();
        let mut clock = Clock::new(warm, n);
        for _ in 0..clock.total() {
            let (block, at) = offsets.next_block();
            buf.clear();
            let (res, b) = f.read_at(buf, at).await;
            check_read(res, &b, block, "monoio");
            buf = b;
            clock.tick();
        }
        let run = clock.finish();
        f.close().await.expect("monoio close");
        run
    })
}

/// compio (io_uring driver), reusing one page-aligned [`PageBuf`]
/// (compio's `IoBufMut` is a safe trait any buffer type can implement).
pub(crate) fn compio_read(file: &TestFile, warm: usize, n: usize) -> Run {
    use compio::io::AsyncReadAt;
    let rt = compio::runtime::Runtime::new().expect("compio runtime");
    let path = file.path.clone();
    rt.block_on(async move {
        let f = compio::fs::File::open(&path).await.expect("compio open");
        let mut buf = PageBuf::new();
        let mut offsets = Offsets::new();
        let mut clock = Clock::new(warm, n);
        for _ in 0..clock.total() {
            let (block, at) = offsets.next_block();
            buf.clear();
            let compio::BufResult(res, b) = f.read_at(buf, at).await;
            check_read(res, &b, block, "compio");
            buf = b;
            clock.tick();
        }
        let run = clock.finish();
        f.close().await.expect("compio close");
        run
    })
}

/// glommio, a `LocalExecutor` on the bench thread; `BufferedFile::read_at`
/// takes no buffer: glommio allocates one per read and hands it back.
pub(crate) fn glommio_read(file: &TestFile, warm: usize, n: usize) -> Run {
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("glommio executor");
    let path = file.path.clone();
    ex.run(async move {
        let f = glommio::io::BufferedFile::open(&path)
            .await
            .expect("glommio open");
        let mut offsets = Offsets::new();
        let mut clock = Clock::new(warm, n);
        for _ in 0..clock.total() {
            let (block, at) = offsets.next_block();
            match f.read_at(at, BLOCK).await {
                Ok(r) => check_read(Ok(r.len()), &r, block, "glommio"),
                Err(e) => panic!("glommio: read at block {block} failed: {e}"),
            }
            clock.tick();
        }
        let run = clock.finish();
        f.close().await.expect("glommio close");
        run
    })
}
