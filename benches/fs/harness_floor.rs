//! The harness floor: the least a runtime built on `async-task` (ringlane's
//! task harness) can do per read, at qd1 and at qd32, measured so that
//! ringlane's ratio to the raw floor can be split into "what any such
//! runtime pays" and "what ringlane's own design pays".
//!
//! One thread, one ring (set up like a shard's: `shared::floor_ring`),
//! one `async_task::spawn_local` task per stream of reads (1 or 32), a run
//! queue and an op slab in
//! thread-locals; an op is a slab slot holding its buffer, result and
//! waker. Nothing else: no `Send` ops (the slot is plain, unlocked data),
//! no cancellation (an op future is never dropped in flight here), no
//! timers, mailbox, stealing, stats or shutdown. Not a usable runtime: a
//! measuring stick.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, types};

use crate::shared::floor_ring::FloorRing;

use crate::buf::PageBuf;
use crate::cases::Env;
use crate::files::{Offsets, READ_BLOCKS, check_read, offset};
use crate::measure::{LatRun, Samples, Span, TputRun};
use crate::ringlane_cases::reads_of;
use crate::watchdog::step;
use crate::{BLOCK, QD};

/// One op in flight: the buffer the kernel writes into, until its CQE.
struct Slot {
    buf: Option<PageBuf>,
    result: Option<i32>,
    waker: Option<Waker>,
}

thread_local! {
    static RING: RefCell<Option<FloorRing>> = const { RefCell::new(None) };
    static SLOTS: RefCell<slab::Slab<Slot>> = const { RefCell::new(slab::Slab::new()) };
    static RUN_QUEUE: RefCell<VecDeque<async_task::Runnable>> =
        const { RefCell::new(VecDeque::new()) };
}

/// A read of `BLOCK` bytes at `at` into `buf`, which the slot owns while
/// the kernel may write into it.
struct Read {
    fd: i32,
    at: u64,
    buf: Option<PageBuf>,
    slot: Option<usize>,
}

impl Future for Read {
    type Output = (i32, PageBuf);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(key) = self.slot else {
            let (fd, at) = (self.fd, self.at);
            let mut buf = self
                .buf
                .take()
                .expect("an unsubmitted read holds its buffer");
            let ptr = buf.as_mut_ptr();
            let key = SLOTS.with(|s| {
                s.borrow_mut().insert(Slot {
                    buf: Some(buf),
                    result: None,
                    waker: Some(cx.waker().clone()),
                })
            });
            let sqe = opcode::Read::new(types::Fd(fd), ptr, BLOCK as u32)
                .offset(at)
                .build()
                .user_data(key as u64);
            // SAFETY: the buffer sits in the slab slot until the CQE is
            // reaped (the read is never dropped in flight: `qd1` awaits
            // every read). The slot is freed only after its CQE, or never:
            // `qd1` closes the ring once no read is in flight, and on a
            // panic `LeakOnUnwind` leaks both the ring and the slab.
            RING.with(|r| unsafe {
                r.borrow_mut()
                    .as_mut()
                    .expect("ring")
                    .submission()
                    .push(&sqe)
            })
            .expect("SQ full");
            self.slot = Some(key);
            return Poll::Pending;
        };
        SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            if s[key].result.is_none() {
                return Poll::Pending;
            }
            let slot = s.remove(key);
            Poll::Ready((slot.result.expect("checked"), slot.buf.expect("held")))
        })
    }
}

/// On an unwind with a read in flight, leaks the ring and the slab (the
/// kernel may still write into a slot's buffer; thread-local destructors
/// run in no set order, and closing a ring does not stop its I/O at once).
struct LeakOnUnwind;

impl Drop for LeakOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(RING.with(|r| r.borrow_mut().take()));
            std::mem::forget(SLOTS.with(|s| std::mem::take(&mut *s.borrow_mut())));
        }
    }
}

/// A CQE result as `read`'s.
fn os_result(res: i32) -> std::io::Result<usize> {
    if res < 0 {
        Err(std::io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// Reads block `block` of `fd` into `buf`, checks it (`case` names the
/// case in a failure), and gives the buffer back.
async fn read_checked(fd: i32, block: u64, buf: PageBuf, case: &str) -> PageBuf {
    let read = Read {
        fd,
        at: offset(block),
        buf: Some(buf),
        slot: None,
    };
    let (res, b) = read.await;
    check_read(os_result(res), &b, block, case);
    b
}

/// Runs the queued tasks, then enters the ring (waiting for one CQE) and
/// wakes the owners of every CQE, until `finished`.
fn drive(mut finished: impl FnMut() -> bool) {
    loop {
        while let Some(r) = RUN_QUEUE.with(|q| q.borrow_mut().pop_front()) {
            r.run();
        }
        if finished() {
            return;
        }
        RING.with(|r| {
            let mut r = r.borrow_mut();
            let ring = r.as_mut().expect("ring");
            crate::raw_uring::enter(ring, 1);
            for cqe in ring.completion() {
                let waker = SLOTS.with(|s| {
                    let mut s = s.borrow_mut();
                    let slot = &mut s[cqe.user_data() as usize];
                    slot.result = Some(cqe.result());
                    slot.waker.take()
                });
                if let Some(w) = waker {
                    w.wake();
                }
            }
        });
    }
}

/// The output of a finished task.
fn output<T>(mut task: async_task::Task<T>) -> T {
    match Pin::new(&mut task).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("a finished task is ready"),
    }
}

fn schedule(r: async_task::Runnable) {
    RUN_QUEUE.with(|q| q.borrow_mut().push_back(r));
}

/// qd1 reads from one task, one at a time.
pub(crate) fn qd1_harness_floor(env: &Env, warm: usize, n: usize) -> LatRun {
    let _leak_on_unwind = LeakOnUnwind;
    let ring = FloorRing::like_ringlane(8, None);
    RING.with(|r| *r.borrow_mut() = Some(ring));
    let fd = env.std_read.as_raw_fd();
    let reads = async move {
        let mut offsets = Offsets::new(0, READ_BLOCKS);
        let mut s = Samples::new(warm, n);
        let mut buf = PageBuf::new();
        for _ in 0..s.total() {
            buf = read_checked(fd, offsets.next_block(), buf, "harness floor qd1").await;
            s.tick();
        }
        s.finish()
    };
    let (runnable, task) = async_task::spawn_local(reads, schedule);
    runnable.schedule();
    drive(|| task.is_finished());
    // Every read completed, so the kernel holds no pointer into a slot.
    RING.with(|r| drop(r.borrow_mut().take()));
    output(task)
}

/// qd32: [`QD`] tasks, each reading its own sequence in turn (the same
/// streams as the other qd32 cases), `reads` in all.
pub(crate) fn qd32_harness_floor(env: &Env, reads: u64) -> TputRun {
    let _leak_on_unwind = LeakOnUnwind;
    let ring = FloorRing::like_ringlane(2 * QD as u32, None);
    RING.with(|r| *r.borrow_mut() = Some(ring));
    let fd = env.std_read.as_raw_fd();
    let span = Span::start();
    let tasks: Vec<_> = (0..QD)
        .map(|t| {
            let stream = async move {
                let mut offsets = Offsets::new(t as u64, READ_BLOCKS);
                let mut buf = PageBuf::new();
                for done in 1..=reads_of(t, reads) {
                    let block = offsets.next_block();
                    buf = read_checked(fd, block, buf, "harness floor qd32").await;
                    step(done);
                }
            };
            let (runnable, task) = async_task::spawn_local(stream, schedule);
            runnable.schedule();
            task
        })
        .collect();
    drive(|| tasks.iter().all(|t| t.is_finished()));
    let run = span.end();
    // Every read completed, so the kernel holds no pointer into a slot.
    RING.with(|r| drop(r.borrow_mut().take()));
    tasks.into_iter().for_each(output);
    run
}
