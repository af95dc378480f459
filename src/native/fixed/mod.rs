//! Registered resources: the opt-in fast paths of the native lane.
//!
//! Each shard's ring has tables of its own, so everything here belongs to
//! the shard that registered it (op invariant 10):
//! - [`File::register`](crate::native::fs::File::register): a file in the
//!   ring's file table, so ops skip the per-op fd lookup and reference
//!   count (`IOSQE_FIXED_FILE`).
//! - [`FixedBufPool`]: buffers pinned and mapped once in the ring's buffer
//!   table, so `READ_FIXED`/`WRITE_FIXED` skip the per-op page pinning.
//! - [`BufRing`]: a provided-buffer ring (`IORING_REGISTER_PBUF_RING`) the
//!   kernel picks receive buffers from, for multishot receive
//!   ([`TcpStream::recv_multi`](crate::native::net::TcpStream::recv_multi)):
//!   one SQE receives until the socket ends, with no buffer tied up by an
//!   idle connection.
//!
//! The handles are `Send + Sync`: a buffer or a received chunk may travel
//! to another thread (and is given back to its shard's table from there),
//! but ops using them must run on a task on the registering shard.
//!
//! Invariants:
//! 1. Registration and unregistration run on the home shard's thread,
//!    through `on_home`: at once when already there, else from its
//!    mailbox. A shard that has exited unregisters nothing: its ring has no
//!    op in flight and is never entered again.
//! 2. Memory the kernel may write (fixed buffers, a buffer ring and its
//!    buffers) is freed only after its registration was cleared, or its
//!    shard has exited, and after every op that could name it has ended
//!    (ops hold the registration in their resources).

mod buf_ring;
mod bufs;
mod free_list;
mod region;

pub use buf_ring::{BufRing, RingBuf};
pub use bufs::{FixedBuf, FixedBufPool};

pub(crate) use buf_ring::{RecvRing, StreamTally};

use std::io;
use std::sync::Arc;

use crate::context;
use crate::mailbox::Remote;
use crate::sys::{FixedSlots, Ring};

/// A registration step for the home shard (invariant 1).
pub(crate) type OnHome = Box<dyn FnOnce(&Ring, &mut FixedSlots) + Send>;

/// Runs `f` with `home`'s ring and slot allocator: now if the caller is on
/// `home` and neither is borrowed up the stack, else queued on `home`
/// (`Remote::fixed_releases`) and run by a call posted to its mailbox, or
/// before that by a registration on `home` that needs the room. Dropped
/// unrun if `home` has exited (its ring, and every registration with it,
/// is released), or leaked if it exited leaking ops.
pub(crate) fn on_home(home: &Arc<Remote>, f: OnHome) {
    let f = match home.is_current() {
        true => match run_here(f) {
            Ok(()) => return,
            Err(f) => f,
        },
        false => f,
    };
    home.fixed_releases.lock().push(f);
    if home.doorbell.is_closed() {
        home.discard_fixed_releases();
        return;
    }
    // If `home` exits before it runs this call, it discards what is queued
    // once its doorbell is closed (`release_ring`): either it sees our push
    // or we saw the close above.
    home.call(Box::new(run_queued_here));
}

/// Runs `f` on the calling shard, or gives it back if the ring or the
/// slot allocator is borrowed up the stack.
fn run_here(f: OnHome) -> Result<(), OnHome> {
    context::with_current(|cx| {
        let (Ok(ring), Ok(mut slots)) = (cx.ring.try_borrow(), cx.fixed.try_borrow_mut()) else {
            return Err(f);
        };
        f(&ring, &mut slots);
        Ok(())
    })
    .unwrap_or(Ok(()))
}

/// Runs the calling shard's queued releases (a mailbox call). If the ring
/// is borrowed up the stack (no caller does that today), they stay queued
/// for the next call or registration: run now, they would free what the
/// kernel may still hold registered.
fn run_queued_here() {
    context::with_current(|cx| {
        let (Ok(ring), Ok(mut slots)) = (cx.ring.try_borrow(), cx.fixed.try_borrow_mut()) else {
            return;
        };
        run_queued(cx, &ring, &mut slots);
    });
}

/// Runs `cx`'s queued releases with its ring and slots, already borrowed.
fn run_queued(cx: &context::ShardContext, ring: &Ring, slots: &mut FixedSlots) {
    let queued = std::mem::take(&mut *cx.remote.fixed_releases.lock());
    for f in queued {
        f(ring, slots);
    }
}

/// Registers something on the calling shard's ring; `Err` off the shards.
pub(crate) fn register_here<R>(
    what: &str,
    f: impl FnOnce(&Ring, &mut FixedSlots) -> io::Result<R>,
) -> io::Result<(R, Arc<Remote>)> {
    let done = context::with_current(|cx| {
        let ring = cx
            .ring
            .try_borrow()
            .map_err(|_| io::Error::other("the ring is busy"))?;
        let mut slots = cx.fixed.borrow_mut();
        // Registrations dropped on other threads whose mailbox call has not
        // run yet: their room is this registration's to use.
        run_queued(cx, &ring, &mut slots);
        let r = f(&ring, &mut slots)?;
        Ok((r, cx.remote.clone()))
    });
    done.unwrap_or_else(|| {
        Err(io::Error::other(format!(
            "{what} is registered with the ring of the shard that creates it: call this from a task on a ringlane shard"
        )))
    })
}
