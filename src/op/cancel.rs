//! Cancelling an op (op invariant 3's drop rule) and refusing one bound
//! to another shard's ring (invariant 10): what an op future's drop and
//! first poll ask of the op's home shard.

use std::io;
use std::sync::Arc;

use io_uring::opcode;

use crate::context;
use crate::mailbox::{Home, Remote};
use crate::sys::user_data;

/// The error for a shard-bound resource used on another shard (or off the
/// shards); `None` on `home` itself.
pub(crate) fn wrong_shard(home: &Remote) -> Option<io::Error> {
    if home.is_current() {
        return None;
    }
    Some(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "this registered (fixed) resource belongs to shard {}'s ring: use it from a task pinned there",
            home.index
        ),
    ))
}

/// Asks the ring of `home` to cancel op `target` (invariant 3's drop
/// rule). Off the home shard the request goes through its mailbox; if its
/// runtime is gone, so is its ring, and every op on it ended with it.
pub(super) fn cancel_at(home: Home, target: u64) {
    if home.is_current() {
        cancel_here(target);
    } else if let Some(remote) = home.remote() {
        remote.call(Box::new(move || cancel_here(target)));
    }
}

/// Asks the home ring to cancel op `target` (invariant 3's drop rule).
pub(super) fn request_cancel(home: &Arc<Remote>, target: u64) {
    if home.is_current() {
        cancel_here(target);
    } else {
        home.call(Box::new(move || cancel_here(target)));
    }
}

/// Queues an `ASYNC_CANCEL` of op `target` on the calling shard's ring (or
/// withdraws it if still late); called on the op's home shard.
pub(super) fn cancel_here(target: u64) {
    context::with_current(|cx| {
        let sqe = opcode::AsyncCancel::new(target)
            .build()
            .user_data(user_data::CANCEL);
        let pushed = match cx.ring.try_borrow_mut() {
            // A receive still late was never seen by the kernel: it is
            // withdrawn, so it takes no bytes meant for the next read
            // (`a_read_dropped_before_the_kernel_saw_it_takes_no_later_bytes`);
            // else the op is in the SQ or the kernel, and the cancel goes
            // behind it, leaving other late receives withdrawable (ring
            // invariant 5).
            Ok(mut ring) => {
                ring.withdraw_late(target) || {
                    // SAFETY: ASYNC_CANCEL points at no user memory.
                    let pushed = unsafe { ring.push(&sqe) }.is_ok();
                    if pushed && !ring.defers_taskrun() {
                        // Without DEFER_TASKRUN the op can still complete
                        // during any syscall this thread makes before the
                        // tick's submit (taking bytes written after its
                        // task was dropped): the cancel goes in now
                        // (`pipe_io_of_an_aborted_task_…`).
                        let _ = ring.submit();
                    }
                    pushed
                }
            }
            Err(_) => false,
        };
        if !pushed {
            // The SQ is full (or the ring busy up the stack): the shard
            // retries once it has reaped, so the cancel is never lost.
            cx.pending_cancels.borrow_mut().push(target);
        }
    });
}
