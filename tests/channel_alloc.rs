//! The raw lane sends without allocating: a counting global allocator
//! measures allocations while 100,000 `u64`s cross from shard 0 to shard 1.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn raw_lane_sends_without_allocating_per_message() {
    const N: u64 = 100_000;
    let rt = common::runtime(2);
    let (tx, mut rx) = ringlane::raw_channel(256).unwrap();
    let receiver = rt
        .handle()
        .spawn_pinned(1, async move {
            let mut buf = Vec::with_capacity(256);
            let mut sum = 0;
            while rx.recv_many(&mut buf, 256).await > 0 {
                sum += buf.drain(..).sum::<u64>();
            }
            sum
        })
        .unwrap();
    let sender = rt
        .handle()
        .spawn_pinned(0, async move {
            tx.send_many(0..1_000).await.unwrap(); // warm-up
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for i in 1_000..N {
                tx.send(i).await.unwrap();
            }
            ALLOCATIONS.load(Ordering::Relaxed) - before
        })
        .unwrap();
    let allocations = rt.block_on(sender).unwrap();
    println!(
        "allocations while sending {} messages: {allocations}",
        N - 1_000
    );
    assert_eq!(rt.block_on(receiver).unwrap(), (0..N).sum::<u64>());
    // Wake-ups of the receiving task go through the shard's mailbox queue,
    // whose blocks are allocated once per ~63 entries; messages never are.
    assert!(
        allocations < N / 20,
        "{allocations} allocations for {} messages: the raw lane allocates per message",
        N - 1_000
    );
}
