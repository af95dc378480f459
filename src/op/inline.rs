//! Inline completion: an op the kernel is likely to finish during its
//! submission (a read or write of a page-cached file, a read-only open, a
//! close) is submitted by the poll that pushed it, and its CQE taken there, so the future resolves in
//! that same poll: no `Pending`, no wake, no second poll, no trip through
//! the shard's loop.
//!
//! Rules (op invariant 13):
//! 1. Only an op that asked for it (`Op::inline`) is tried, and only when
//!    submitting it now costs no batching: its SQE is the only one queued
//!    (no other SQE, no late SQE, no doorbell owed), and no other task is
//!    runnable on this shard (a task about to run would add its own SQEs
//!    to the same enter) nor anything waiting in its mailbox (a call or a
//!    wake from another thread, which the loop must get to). So a try
//!    replaces the enter the shard would have made for this op alone. An
//!    overflowed CQ is left to the loop (our CQE would join the overflow).
//! 2. A try spends a unit of the task's cooperative budget (coop
//!    invariant 2) when it succeeds, and is not made without one: a task
//!    whose ops keep completing inline still gives its shard back after
//!    `coop::BUDGET` of them, as when its ops went through the loop. Outside
//!    a ringlane task poll (no budget) no try is made.
//! 3. The enter has no `GETEVENTS`: it runs no deferred work, so the CQ
//!    gains only what completed during the submission. The CQ's other
//!    CQEs move to the ring's early list (ring invariant 6), in order, for
//!    the next reap; ours is taken out of it (a single-shot op has one CQE,
//!    so no order of its own is broken) and goes to its op-table entry
//!    exactly as a reap hands it (`table::dispatch`).
//! 4. A try that finds no CQE of ours was a syscall more than the loop
//!    would have made: the op went to the kernel's async path (an uncached
//!    file, `O_DIRECT`, a write the filesystem cannot do without
//!    blocking). After each miss the shard skips twice as many tries of
//!    that kind (`Inline`) as after the last one (up to `MAX_SKIP`); a hit
//!    starts over. A missed op is an ordinary submitted op: its completion
//!    is reaped by the loop.
//! 5. A shard cannot see whether a task will start another op in the same
//!    poll: a loop of reads looks like a `join!` of reads, one op after
//!    another, and for the join every hit is an enter where one enter
//!    would have taken the whole batch. So a poll is *limited* to one hit
//!    unless the shard has seen that its tasks follow a hit with a lone op:
//!    a limited poll that hit and then pushed exactly one op counts for a
//!    sequential task, one that pushed more resets the count, others say
//!    nothing. After two such counts the shard's polls are unlimited (up
//!    to the budget), except about one in `PROBE_EVERY`, picked at random
//!    (a fixed period could always land on the same one of several
//!    tasks), which is limited again to look. While limited, a join of
//!    cached reads pays one enter more per poll than a loop that never
//!    tries inline, not one per op; a join that starts after the shard
//!    turned unlimited goes inline until a look lands on one of its polls.

use std::cell::Cell;

use crate::context::{self, ShardContext};
use crate::executor::coop;
use crate::sys::Completion;

/// The most tries a shard skips after a run of misses.
const MAX_SKIP: u32 = 256;

/// Which record an op's tries count in (rule 4): kinds of op fare
/// differently on one shard (ext4 does page-cached reads at submit and
/// sends every buffered write to the kernel's workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inline {
    Read,
    Write,
    /// A read-only open that neither creates nor truncates (the kernel
    /// tries those on its cached path lookup at submit).
    Open,
    Close,
}

/// About one poll in this many is limited, a look at the tasks (rule 5).
const PROBE_EVERY: u32 = 16;

/// A shard's records of how inline tries went, one per [`Inline`] kind,
/// and what its task polls did after a hit (rule 5).
#[derive(Default)]
pub(crate) struct InlineTries {
    kinds: [Tries; 4],
    /// The task poll running now may hit once only.
    limited: Cell<bool>,
    /// Hits in the task poll running now.
    hits: Cell<u32>,
    /// Ops pushed (not completed inline) after the poll's first hit.
    pushed_after_hit: Cell<u32>,
    /// Limited polls in a row that hit and then waited for one op.
    sequential: Cell<u8>,
    /// A xorshift state: picks the looks of rule 5.
    dice: Cell<u32>,
}

impl InlineTries {
    fn of(&self, kind: Inline) -> &Tries {
        &self.kinds[kind as usize]
    }

    /// A task poll begins on this shard.
    #[inline]
    pub(crate) fn poll_begins(&self) {
        self.hits.set(0);
        self.pushed_after_hit.set(0);
        let limited = self.sequential.get() < 2 || self.roll() % PROBE_EVERY == 0;
        self.limited.set(limited);
    }

    /// The next of the shard's pseudo-random numbers (xorshift32).
    fn roll(&self) -> u32 {
        let mut x = match self.dice.get() {
            0 => 0x9e37_79b9, // the `Default` state: seeded on first use
            x => x,
        };
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.dice.set(x);
        x
    }

    /// The task poll that began last has returned: what a limited poll
    /// did after its hit says how the shard's tasks use their ops.
    #[inline]
    pub(crate) fn poll_ended(&self) {
        if !self.limited.get() || self.hits.get() == 0 {
            return;
        }
        match self.pushed_after_hit.get() {
            0 => {} // it ended, or waited for something else: no word
            1 => self.sequential.set((self.sequential.get() + 1).min(2)),
            _ => self.sequential.set(0),
        }
    }

    /// An op was pushed to the ring the usual way (not completed inline).
    #[inline]
    pub(crate) fn pushed(&self) {
        if self.hits.get() > 0 {
            self.pushed_after_hit.set(self.pushed_after_hit.get() + 1);
        }
    }

    /// Whether the poll running now may try (rule 5).
    fn poll_may_hit(&self) -> bool {
        !self.limited.get() || self.hits.get() == 0
    }
}

/// How one kind of try went (rule 4).
#[derive(Default)]
struct Tries {
    /// Tries still to skip.
    skip: Cell<u32>,
    /// Skips set by the last miss (0: the last try hit).
    backoff: Cell<u32>,
}

impl Tries {
    /// Whether to try this time (counts a skipped try).
    #[inline]
    fn ready(&self) -> bool {
        match self.skip.get() {
            0 => true,
            n => {
                self.skip.set(n - 1);
                false
            }
        }
    }

    fn hit(&self) {
        self.backoff.set(0);
    }

    fn miss(&self) {
        let next = (self.backoff.get() * 2).clamp(1, MAX_SKIP);
        self.backoff.set(next);
        self.skip.set(next);
    }
}

/// Tries to finish the just-pushed op `user_data` now (rules 1 to 3): a
/// CQE taken is handed to its cell; if none is, the op stays submitted,
/// counts as pushed the usual way (rule 5), and the shard's loop reaps it.
#[inline]
pub(super) fn try_complete(user_data: u64, kind: Inline) {
    context::with_current(|cx| {
        // Looked at before the call: with other tasks runnable (the common
        // case with many ops in flight) there is no try (rule 1).
        let taken = cx.run_queue.borrow().is_empty()
            && match take_own_cqe(cx, user_data, cx.inline_tries.of(kind)) {
                Some(c) => {
                    // No borrow held (`take_own_cqe` released the ring's):
                    // the cell may run foreign code.
                    super::table::dispatch(&cx.ops, c);
                    true
                }
                None => false,
            };
        if !taken {
            cx.inline_tries.pushed();
        }
    });
}

/// An op was pushed the usual way in the task poll running on this shard
/// (rule 5's count).
#[inline]
pub(super) fn pushed() {
    context::with_current(|cx| cx.inline_tries.pushed());
}

fn take_own_cqe(cx: &ShardContext, user_data: u64, tries: &Tries) -> Option<Completion> {
    // Rule 1 (and the mailbox: work from other threads waits for the loop,
    // which a task hitting inline would keep from it), then rule 5.
    if !cx.inline_tries.poll_may_hit()
        || !cx.run_queue.borrow().is_empty()
        || !cx.deque.is_empty()
        || !cx.remote.is_empty()
        || !cx.remote.preferred.is_empty()
        || !cx.doorbells.borrow().is_empty()
    {
        return None;
    }
    let mut ring = cx.ring.borrow_mut();
    // An overflowed CQ takes our CQE into the kernel's overflow list: a
    // sure miss.
    if !ring.holds_only_one_sqe() || ring.cq_overflowed() || !tries.ready() {
        return None;
    }
    let before = coop::spend_unit()?;
    // A failed enter (a broken ring) is the loop's to see; the op is
    // treated as missed.
    let taken = match ring.submit_only() {
        Ok(()) => ring.take_completion_of(user_data),
        Err(_) => None,
    };
    if taken.is_some() {
        cx.inline_tries.hits.set(cx.inline_tries.hits.get() + 1);
        tries.hit();
    } else {
        coop::refund_unit(before);
        tries.miss();
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::task::Poll;

    /// Polls `fut` once in the calling task: `Some` if it was ready then;
    /// else awaits the rest and returns `None` with the output checked by
    /// `check`.
    async fn first_poll<F: Future>(fut: F, check: impl FnOnce(F::Output)) -> Option<()> {
        let mut fut = pin!(fut);
        match poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            Poll::Ready(out) => {
                check(out);
                Some(())
            }
            Poll::Pending => {
                check(fut.await);
                None
            }
        }
    }

    /// Whether a bare ring's read of cached `path` is done at submit (not
    /// on tmpfs, whose files take no non-blocking I/O).
    fn reads_done_at_submit(path: &std::path::Path) -> bool {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).unwrap();
        let mut ring = io_uring::IoUring::new(2).unwrap();
        let mut buf = [0u8; 16];
        let fd = io_uring::types::Fd(file.as_raw_fd());
        let sqe = io_uring::opcode::Read::new(fd, buf.as_mut_ptr(), 16).build();
        // SAFETY: `buf` and `file` outlive the op: its CQE is waited for.
        unsafe { ring.submission().push(&sqe).unwrap() };
        ring.submit().unwrap();
        let done = ring.completion().next().is_some();
        if !done {
            ring.submit_and_wait(1).unwrap();
        }
        done
    }

    /// A try whose enter submitted nothing (the kernel's `EAGAIN`) misses:
    /// the read still completes through the loop, and the next try of
    /// that kind is skipped (rule 4), the one after made again.
    #[test]
    fn a_missed_try_completes_through_the_loop_and_skips_the_next() {
        let path = std::env::temp_dir().join(format!("ringlane-inline-{}", std::process::id()));
        std::fs::write(&path, [5u8; 4096]).unwrap();
        if !reads_done_at_submit(&path) {
            eprintln!("skipped: this filesystem's reads are never done at submit");
            return std::fs::remove_file(&path).unwrap();
        }
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let p = path.clone();
        let ready = rt
            .block_on(
                rt.handle()
                    .spawn_pinned(0, async move {
                        let f = crate::native::fs::File::open(&p).await.unwrap();
                        let mut ready = Vec::new();
                        for i in 0..4 {
                            // A poll of its own (rule 5).
                            crate::yield_now().await;
                            if i == 1 {
                                crate::sys::FAKE_EAGAIN.with(|f| f.set(true));
                            }
                            let read = f.read_at(vec![0u8; 64], 64 * i);
                            let got = first_poll(read, |(n, buf)| {
                                assert_eq!(n.unwrap(), 64);
                                assert_eq!(buf, [5u8; 64]);
                            });
                            ready.push(got.await.is_some());
                        }
                        ready
                    })
                    .unwrap(),
            )
            .unwrap();
        std::fs::remove_file(path).unwrap();
        assert_eq!(ready, [true, false, false, true], "hit, miss, skipped, hit");
    }

    #[test]
    fn misses_back_off_exponentially_and_a_hit_starts_over() {
        let t = Tries::default();
        assert!(t.ready());
        let mut gaps = Vec::new();
        for _ in 0..11 {
            t.miss();
            let mut skipped = 0;
            while !t.ready() {
                skipped += 1;
            }
            gaps.push(skipped);
        }
        assert_eq!(gaps, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
        t.hit();
        assert!(t.ready(), "a hit leaves nothing to skip");
        t.miss();
        assert!(!t.ready(), "after a hit, one miss skips one try");
        assert!(t.ready());
    }
}
