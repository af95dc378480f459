//! Helpers of the Tokio interop tests: futures that count their polls
//! and drops, selects that lose.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};
use std::time::Instant;

use super::LIMIT;

/// 127.0.0.1, any free port.
pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The calling thread's name ("" if it has none).
pub fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

/// Polls `f` exactly once (registering its waker), whatever it returns.
pub async fn poll_once_quiet<F: Future + Unpin>(f: &mut F) {
    std::future::poll_fn(|cx| {
        let _ = Pin::new(&mut *f).poll(cx);
        Poll::Ready(())
    })
    .await
}

/// Polls a join handle in a `tokio::select!` that another branch wins: the
/// handle's task registers this Tokio task's waker, then the handle loses.
pub async fn lose_a_select<T>(jh: &mut ringlane::JoinHandle<T>) {
    tokio::select! {
        biased;
        _ = &mut *jh => panic!("a task finished behind a closed gate"),
        () = std::future::ready(()) => {}
    }
}

/// Waits until `n` signals arrived on `rx`, yielding to the Tokio scheduler
/// between looks (so that the tasks that send them run, even on a
/// current-thread runtime); fails after [`LIMIT`].
pub async fn signals(rx: &mpsc::Receiver<u32>, n: usize, what: &str) {
    let deadline = Instant::now() + LIMIT;
    let mut got = 0;
    while got < n {
        match rx.try_recv() {
            Ok(_) => got += 1,
            Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: {got} of {n} signals after {LIMIT:?}"
                );
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Counts the polls of a future: a busy loop shows as hundreds of polls.
pub struct Counted<F> {
    pub fut: Pin<Box<F>>,
    pub polls: Arc<AtomicUsize>,
}

pub fn counted<F: Future>(fut: F, polls: &Arc<AtomicUsize>) -> Counted<F> {
    Counted {
        fut: Box::pin(fut),
        polls: polls.clone(),
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.fut.as_mut().poll(cx)
    }
}

// ---------------------------------------------------------------------------
// 1. Join handles raced, moved, aborted and dropped in Tokio
// ---------------------------------------------------------------------------

/// The output of a gated task: counts its drops, and those made on a shard.
pub struct Out {
    pub id: usize,
    pub drops: Arc<AtomicUsize>,
    pub on_shard: Arc<AtomicUsize>,
}

impl Drop for Out {
    fn drop(&mut self) {
        // Counted before `drops`, which the test waits on.
        if ringlane::current_shard().is_some() {
            self.on_shard.fetch_add(1, Ordering::SeqCst);
        }
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}
