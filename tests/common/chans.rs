//! Helpers of the channel tests: runtimes and executors to put senders and
//! receivers in every place, and messages that count their drops.
#![allow(dead_code)]

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

pub fn spinning(shards: usize, window: Duration) -> ringlane::Runtime {
    ringlane::Runtime::builder()
        .shards(shards)
        .spin_before_park(window)
        .build()
        .unwrap_or_else(|e| panic!("runtime failed to start: {e}"))
}

pub fn tokio_mt(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `f` on the calling plain thread (no runtime at all), parking
/// between polls; `None` if it is not done within `limit`.
pub fn park_block_on<F: Future>(f: F, limit: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return Some(out);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// Wraps a future and reports `id` the first time it returns `Pending`.
/// For a send into a full channel that is a deterministic signal: its
/// `Pending` comes only after it registered its waker (`poll_push`), so
/// whatever the test does after the signal races no registration.
pub struct SignalPending<F: Future> {
    pub fut: Pin<Box<F>>,
    pub signal: Option<(mpsc::Sender<u32>, u32)>,
}

pub fn signal_pending<F: Future>(fut: F, signal: mpsc::Sender<u32>, id: u32) -> SignalPending<F> {
    SignalPending {
        fut: Box::pin(fut),
        signal: Some((signal, id)),
    }
}

impl<F: Future> Future for SignalPending<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = self.fut.as_mut().poll(cx);
        if out.is_pending() {
            if let Some((signal, id)) = self.signal.take() {
                let _ = signal.send(id);
            }
        }
        out
    }
}

/// A message that counts its drops: a lost message is never dropped (the
/// count stays short and its `Arc` lives on), a duplicated one is dropped
/// twice (the count overshoots).
pub struct Msg {
    pub id: u32,
    pub drops: Arc<AtomicUsize>,
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn returned_ids(r: Result<(), Vec<Msg>>) -> Result<(), Vec<u32>> {
    r.map_err(|v| v.iter().map(|m| m.id).collect())
}
