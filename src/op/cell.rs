//! `OpCell` (the shared completion cell), `Op` (the future) and `submit`.

use std::future::Future;
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, squeue};
use parking_lot::Mutex;

use crate::context;
use crate::mailbox::Remote;
use crate::sys::user_data;

/// What the home shard's op table holds: something to hand the CQE to.
pub(crate) trait Completable: Send + Sync {
    /// The op's final CQE arrived with `result`.
    fn complete(&self, result: i32);
}

/// The one enum of op states (invariant 3).
enum State<T> {
    Submitted { waker: Option<Waker>, resources: T },
    Completed { result: i32, resources: T },
    Abandoned { resources: T },
    Taken,
}

/// The completion cell shared by an op's future and its home op table.
pub(crate) struct OpCell<T> {
    state: Mutex<State<T>>,
    /// A non-negative result is an fd the op created (open, accept): it
    /// must be closed if nobody takes it (invariant 3).
    produces_fd: bool,
}

fn close_fd(fd: i32) {
    // SAFETY: `fd` was created by this op and handed to nobody else.
    unsafe { libc::close(fd) };
}

impl<T: Send> Completable for OpCell<T> {
    fn complete(&self, result: i32) {
        let mut state = self.state.lock();
        match mem::replace(&mut *state, State::Taken) {
            State::Submitted { waker, resources } => {
                *state = State::Completed { result, resources };
                drop(state);
                if let Some(w) = waker {
                    w.wake();
                }
            }
            State::Abandoned { resources } => {
                drop(state);
                if self.produces_fd && result >= 0 {
                    close_fd(result);
                }
                drop(resources); // the kernel is done with them now
            }
            other => *state = other, // one CQE per op: nothing else can arrive
        }
    }
}

/// An op: submitted lazily on its first poll (or later, when the ring has
/// room for it); resolves to the raw CQE result and its resources, or to
/// the error and the resources if it could not be submitted.
pub(crate) struct Op<T: Send + 'static> {
    /// Resources and SQE builder until submission.
    unsubmitted: Option<(T, Builder<T>, bool)>,
    /// Queued in the shard's `op_waiters` for room in the ring.
    waiting: bool,
    cell: Option<Arc<OpCell<T>>>,
    home: Option<Arc<Remote>>,
    user_data: u64,
}

// `Op` never pins its resources (they move in and out by value; the kernel
// sees them only inside the `Arc`ed cell), so it is `Unpin` whatever `T` is.
impl<T: Send + 'static> Unpin for Op<T> {}

type Builder<T> = Box<dyn FnOnce(&mut T) -> squeue::Entry + Send>;

/// What an op resolves to.
pub(crate) type OpResult<T> = Result<(i32, T), (io::Error, T)>;

/// Prepares an op for the calling task's shard. `build` makes the SQE from
/// the resources at their final address (inside the cell), so it may point
/// into them.
pub(crate) fn submit<T, B>(resources: T, produces_fd: bool, build: B) -> Op<T>
where
    T: Send + 'static,
    B: FnOnce(&mut T) -> squeue::Entry + Send + 'static,
{
    Op {
        unsubmitted: Some((resources, Box::new(build), produces_fd)),
        waiting: false,
        cell: None,
        home: None,
        user_data: 0,
    }
}

/// Outcome of one submission attempt.
enum Submit<T> {
    Done(Arc<OpCell<T>>, Arc<Remote>, u64),
    Failed(io::Error, T),
}

/// Submits to the calling shard's ring (the caller checked capacity).
fn try_submit<T: Send + 'static>(resources: T, build: Builder<T>, produces_fd: bool) -> Submit<T> {
    let outcome = context::with_current(|cx| {
        let cell = Arc::new(OpCell {
            state: Mutex::new(State::Submitted {
                waker: None,
                resources,
            }),
            produces_fd,
        });
        let sqe = {
            let mut state = cell.state.lock();
            let State::Submitted { resources, .. } = &mut *state else {
                unreachable!("just created")
            };
            build(resources)
        };
        let user_data = cx.ops.borrow_mut().insert(cell.clone());
        let sqe = sqe.user_data(user_data);
        // SAFETY: every pointer in `sqe` points into the resources, which
        // stay in `cell` (kept alive by the op table) until the op's final
        // CQE is reaped (invariants 2 and 4).
        match unsafe { cx.ring.borrow_mut().push(&sqe) } {
            Ok(()) => Ok((cell, cx.remote.clone(), user_data)),
            Err(e) => {
                cx.ops.borrow_mut().take(user_data);
                Err((e, cell))
            }
        }
    });
    let unwrap_cell =
        |cell: Arc<OpCell<T>>| match Arc::try_unwrap(cell).ok().map(|c| c.state.into_inner()) {
            Some(State::Submitted { resources, .. }) => resources,
            _ => unreachable!("an op that was never submitted is held only here"),
        };
    match outcome {
        Some(Ok((cell, home, user_data))) => Submit::Done(cell, home, user_data),
        Some(Err((e, cell))) => Submit::Failed(e, unwrap_cell(cell)),
        None => unreachable!("the caller checked that it runs on a shard"),
    }
}

impl<T: Send + 'static> Future for Op<T> {
    type Output = OpResult<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpResult<T>> {
        let this = &mut *self;
        if let Some((resources, build, produces_fd)) = this.unsubmitted.take() {
            if context::with_current(|_| ()).is_none() {
                let e = io::Error::other(
                    "native ring ops run on a ringlane shard: spawn the task there (Handle::spawn_pinned)",
                );
                return Poll::Ready(Err((e, resources)));
            }
            // Invariant 6: room in the CQ for every in-flight op's CQE and a
            // cancel's, or wait (unsubmitted) for a completion to free a slot.
            let full = context::with_current(|shard| {
                let full = shard.ops.borrow().len() >= shard.op_capacity.get();
                if full {
                    shard.op_waiters.borrow_mut().push_back(cx.waker().clone());
                }
                full
            });
            if full == Some(true) {
                this.unsubmitted = Some((resources, build, produces_fd));
                this.waiting = true;
                return Poll::Pending;
            }
            this.waiting = false;
            match try_submit(resources, build, produces_fd) {
                Submit::Done(cell, home, user_data) => {
                    this.cell = Some(cell);
                    this.home = Some(home);
                    this.user_data = user_data;
                }
                Submit::Failed(e, resources) => return Poll::Ready(Err((e, resources))),
            }
        }
        let Some(cell) = this.cell.as_ref() else {
            return Poll::Pending;
        };
        let mut state = cell.state.lock();
        match mem::replace(&mut *state, State::Taken) {
            State::Completed { result, resources } => {
                drop(state);
                this.cell = None;
                Poll::Ready(Ok((result, resources)))
            }
            State::Submitted { waker, resources } => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = State::Submitted {
                    waker: Some(waker),
                    resources,
                };
                Poll::Pending
            }
            other => {
                *state = other;
                Poll::Pending
            }
        }
    }
}

impl<T: Send + 'static> Drop for Op<T> {
    fn drop(&mut self) {
        if self.waiting {
            // Our place in the queue for room may have been the one a
            // completion woke: pass the wake-up on so no waiter is lost.
            context::with_current(wake_next_waiter);
        }
        let Some(cell) = self.cell.take() else { return };
        let mut state = cell.state.lock();
        match mem::replace(&mut *state, State::Taken) {
            State::Submitted { resources, .. } => {
                *state = State::Abandoned { resources };
                drop(state);
                if let Some(home) = &self.home {
                    request_cancel(home, self.user_data);
                }
            }
            State::Completed { result, resources } => {
                // Completed but never observed: an fd it produced is ours to close.
                drop(state);
                if cell.produces_fd && result >= 0 {
                    close_fd(result);
                }
                drop(resources);
            }
            other => *state = other,
        }
    }
}

/// Wakes the next op waiting for room in the ring (invariant 6).
pub(crate) fn wake_next_waiter(cx: &context::ShardContext) {
    let next = cx.op_waiters.borrow_mut().pop_front();
    if let Some(w) = next {
        w.wake();
    }
}

/// Asks the home ring to cancel op `target` (invariant 3's drop rule).
fn request_cancel(home: &Arc<Remote>, target: u64) {
    let push_here = move || {
        context::with_current(|cx| {
            let sqe = opcode::AsyncCancel::new(target)
                .build()
                .user_data(user_data::CANCEL);
            let pushed = match cx.ring.try_borrow_mut() {
                // SAFETY: ASYNC_CANCEL points at no user memory.
                Ok(mut ring) => unsafe { ring.push(&sqe) }.is_ok(),
                Err(_) => false,
            };
            if !pushed {
                // The SQ is full (or the ring busy up the stack): the shard
                // retries once it has reaped, so the cancel is never lost.
                cx.pending_cancels.borrow_mut().push(target);
            }
        });
    };
    if home.is_current() {
        push_here();
    } else {
        home.call(Box::new(push_here));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_fds() -> (i32, i32) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        (fds[0], fds[1])
    }

    fn is_open(fd: i32) -> bool {
        // SAFETY: F_GETFD only queries the descriptor table.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    fn cell(state: State<()>) -> Arc<OpCell<()>> {
        Arc::new(OpCell {
            state: Mutex::new(state),
            produces_fd: true,
        })
    }

    fn op_with(cell: Arc<OpCell<()>>) -> Op<()> {
        Op {
            unsubmitted: None,
            waiting: false,
            cell: Some(cell),
            home: None,
            user_data: 0,
        }
    }

    /// An open or accept whose future was dropped (abandoned) completes
    /// later with a new fd: the cell closes it.
    #[test]
    fn abandoned_op_closes_the_fd_it_produced_when_the_cqe_arrives() {
        let (r, w) = pipe_fds();
        cell(State::Abandoned { resources: () }).complete(r);
        assert!(!is_open(r), "the late fd leaked");
        assert!(is_open(w));
        close_fd(w);
    }

    /// The op completed but its future was dropped before it was polled
    /// again: dropping it closes the fd nobody will ever see.
    #[test]
    fn completed_but_unobserved_op_closes_its_fd_on_drop() {
        let (r, w) = pipe_fds();
        drop(op_with(cell(State::Completed {
            result: r,
            resources: (),
        })));
        assert!(!is_open(r), "the unobserved fd leaked");
        close_fd(w);
    }

    /// The normal path: the future observes the fd, which stays open.
    #[test]
    fn observed_fd_is_handed_over_not_closed() {
        let (r, w) = pipe_fds();
        let c = cell(State::Submitted {
            waker: None,
            resources: (),
        });
        let mut op = op_with(c.clone());
        c.complete(r);
        let waker = Waker::noop();
        let out = Pin::new(&mut op).poll(&mut Context::from_waker(waker));
        assert!(matches!(out, Poll::Ready(Ok((fd, ()))) if fd == r));
        drop(op);
        assert!(is_open(r));
        close_fd(r);
        close_fd(w);
    }

    /// A failed op (negative result) has no fd to close.
    #[test]
    fn an_abandoned_op_that_failed_closes_nothing() {
        let (r, w) = pipe_fds();
        cell(State::Abandoned { resources: () }).complete(-libc::ECANCELED);
        assert!(is_open(r) && is_open(w));
        close_fd(r);
        close_fd(w);
    }
}
