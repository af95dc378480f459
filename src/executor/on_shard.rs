//! `BuildOnShard`: a future that is `Send` only because the `!Send` future it
//! contains is created, polled and dropped on one thread.
//!
//! `Handle::spawn_local_on` must return a `JoinHandle` at once, yet the
//! future it runs is `!Send` and must be built on the target shard. The task
//! therefore starts as the `Send` closure (`Build`) and turns into the
//! `!Send` future (`Running`) on its first poll, which happens on the owning
//! shard (task invariant 1 in `executor/mod.rs`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};

enum State<B, F> {
    Build(Option<B>),
    Running { future: F, thread: ThreadId },
}

pub(super) struct BuildOnShard<B, F> {
    state: State<B, F>,
}

// SAFETY: a `BuildOnShard` may cross threads only in the `Build` state, which
// holds nothing but `B: Send`. It becomes `Running` on its first poll, on the
// owning shard, and task invariant 1 (executor/mod.rs) keeps every later
// poll and the drop on that same thread. `poll` and `drop` also check the
// thread id and refuse to touch the `!Send` future anywhere else.
unsafe impl<B: Send, F> Send for BuildOnShard<B, F> {}

impl<B, F> BuildOnShard<B, F> {
    pub(super) fn new(build: B) -> Self {
        Self {
            state: State::Build(Some(build)),
        }
    }
}

impl<B, F> Future for BuildOnShard<B, F>
where
    B: FnOnce() -> F,
    F: Future,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: the `Running` future is never moved after it is created in
        // place below; `Build` holds no pinned data.
        let this = unsafe { self.get_unchecked_mut() };
        if let State::Build(build) = &mut this.state {
            let build = build.take().expect("BuildOnShard is built once");
            this.state = State::Running {
                future: build(),
                thread: thread::current().id(),
            };
        }
        match &mut this.state {
            State::Running { future, thread } => {
                assert_eq!(
                    *thread,
                    thread::current().id(),
                    "a shard-local task was polled off its shard"
                );
                // SAFETY: `future` lives in `self`, which is pinned, and is never moved.
                unsafe { Pin::new_unchecked(future) }.poll(cx)
            }
            State::Build(_) => unreachable!("state was set to Running above"),
        }
    }
}

impl<B, F> Drop for BuildOnShard<B, F> {
    fn drop(&mut self) {
        if let State::Running { thread, .. } = &self.state {
            if *thread != thread::current().id() {
                // Dropping a `!Send` future on a foreign thread would be
                // undefined behaviour; invariant 1 says it cannot happen, and
                // if a bug ever made it happen we stop rather than corrupt memory.
                eprintln!("ringlane: a shard-local task was dropped off its shard; aborting");
                std::process::abort();
            }
        }
    }
}
