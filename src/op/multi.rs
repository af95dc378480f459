//! Multishot ops (invariant 8): one SQE, a CQE per event until a CQE
//! without `IORING_CQE_F_MORE` ends it.

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use io_uring::squeue;
use parking_lot::Mutex;

use super::cell::{Completable, request_cancel};
use super::room::RoomWait;
use crate::context;
use crate::mailbox::Remote;

#[derive(Default)]
struct MultiState {
    /// Results posted and not yet taken.
    results: VecDeque<i32>,
    /// The last CQE (no `F_MORE`) arrived.
    ended: bool,
    waker: Option<Waker>,
    /// The future is gone: fds posted from now on are closed here.
    abandoned: bool,
}

/// The shared cell of a multishot op. Its SQE may point only at what
/// `_keep` owns (typically the fd's `Arc`), which lives as long as the cell.
struct MultiCell {
    state: Mutex<MultiState>,
    produces_fd: bool,
    /// Keep only what is new since the last take: non-negative results are
    /// OR-ed together (poll masks), so a socket woken a thousand times
    /// between two looks queues one result, not a thousand.
    coalesce: bool,
    _keep: Box<dyn Send + Sync>,
}

fn close_fd(fd: i32) {
    // SAFETY: `fd` was created by this op and handed to nobody else.
    unsafe { libc::close(fd) };
}

impl Completable for MultiCell {
    fn complete(&self, result: i32, more: bool) {
        let mut state = self.state.lock();
        if !more {
            state.ended = true;
        }
        if state.abandoned {
            drop(state);
            if self.produces_fd && result >= 0 {
                close_fd(result);
            }
            return;
        }
        match state.results.back_mut() {
            Some(last) if self.coalesce && *last >= 0 && result >= 0 => *last |= result,
            _ => state.results.push_back(result),
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(w) = waker {
            let _ = catch_unwind(AssertUnwindSafe(|| w.wake()));
        }
    }
}

/// A multishot op: submitted on its first poll (when the ring has room),
/// then yields one raw result per CQE, and `None` once the kernel ended it.
pub(crate) struct MultiShot {
    cell: Arc<MultiCell>,
    sqe: Option<squeue::Entry>,
    home: Option<Arc<Remote>>,
    user_data: u64,
    room: RoomWait,
}

impl MultiShot {
    /// `sqe` may point only into `keep`, which the op keeps alive until its
    /// last CQE.
    pub(crate) fn new(
        keep: impl Send + Sync + 'static,
        produces_fd: bool,
        sqe: squeue::Entry,
    ) -> Self {
        Self {
            cell: Arc::new(MultiCell {
                state: Mutex::new(MultiState::default()),
                produces_fd,
                coalesce: false,
                _keep: Box::new(keep),
            }),
            sqe: Some(sqe),
            home: None,
            user_data: 0,
            room: RoomWait::default(),
        }
    }

    /// Coalescing results (see `MultiCell::coalesce`): for poll masks.
    pub(crate) fn coalescing(mut self) -> Self {
        Arc::get_mut(&mut self.cell)
            .expect("not submitted yet")
            .coalesce = true;
        self
    }

    /// The next result, `None` once the op has ended (and every result was
    /// taken). Errors only if it cannot be submitted.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<i32>>> {
        if let Some(sqe) = self.sqe.take() {
            let submitted = context::with_current(|shard| {
                if shard.ops.borrow().len() >= shard.op_capacity.get()
                    || !shard.ring.borrow_mut().sq_has_room_for(1)
                {
                    return Ok(false);
                }
                let cell: Arc<dyn Completable> = self.cell.clone();
                let user_data = shard.ops.borrow_mut().insert(cell);
                // SAFETY: the SQE points only into `_keep`, owned by the cell
                // the op table holds until the op's last CQE (invariant 8).
                match unsafe {
                    shard
                        .ring
                        .borrow_mut()
                        .push(&sqe.clone().user_data(user_data))
                } {
                    Ok(()) => {
                        self.home = Some(shard.remote.clone());
                        self.user_data = user_data;
                        Ok(true)
                    }
                    Err(e) => {
                        shard.ops.borrow_mut().take(user_data);
                        Err(e)
                    }
                }
            });
            match submitted {
                None => {
                    return Poll::Ready(Some(Err(io::Error::other(
                        "native ring ops run on a ringlane shard: spawn the task there (Handle::spawn_pinned)",
                    ))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(false)) => {
                    self.sqe = Some(sqe);
                    self.room.register(cx.waker(), 1);
                    return Poll::Pending;
                }
                Some(Ok(true)) => self.room.cancel(),
            }
        }
        let mut state = self.cell.state.lock();
        if let Some(r) = state.results.pop_front() {
            return Poll::Ready(Some(Ok(r)));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for MultiShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiShot")
            .field("user_data", &self.user_data)
            .finish_non_exhaustive()
    }
}

impl Drop for MultiShot {
    fn drop(&mut self) {
        self.room.cancel();
        let mut state = self.cell.state.lock();
        state.abandoned = true;
        let unclaimed: Vec<i32> = state.results.drain(..).collect();
        let live = !state.ended;
        drop(state);
        if self.cell.produces_fd {
            unclaimed.into_iter().filter(|r| *r >= 0).for_each(close_fd);
        }
        if live {
            if let Some(home) = &self.home {
                request_cancel(home, self.user_data);
            }
        }
    }
}
