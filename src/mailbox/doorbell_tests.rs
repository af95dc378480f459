//! Unit tests of the doorbell state machine (`doorbell.rs`).

use super::doorbell::DoorbellState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[test]
fn running_receiver_gets_no_doorbell() {
    let d = DoorbellState::new();
    assert!(!d.should_ring());
}

#[test]
fn parked_receiver_gets_exactly_one_doorbell() {
    let d = DoorbellState::new();
    d.prepare_park();
    assert!(d.should_ring());
    assert!(!d.should_ring(), "a second sender must not ring again");
    assert!(d.finish_park(), "the receiver learns it was notified");
    assert!(!d.should_ring(), "running again: no doorbell");
}

#[test]
fn closed_receiver_gets_no_doorbell() {
    let d = DoorbellState::new();
    d.close();
    assert!(!d.should_ring());
}

/// The protocol with `thread::park` standing in for `io_uring_enter`:
/// four senders hand over a million payloads to a receiver that parks
/// whenever its queue looks empty. A lost wake-up shows as a park that
/// runs into its long timeout while payloads wait, and fails the test
/// instead of hanging it.
#[test]
fn park_wake_protocol_loses_no_wakeup_over_a_million_handoffs() {
    const SENDERS: u64 = 4;
    const PER_SENDER: u64 = 250_000;
    let queue = Arc::new(crossbeam_deque::Injector::<u64>::new());
    let state = Arc::new(DoorbellState::new());
    let parks = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (queue, state, parks) = (queue.clone(), state.clone(), parks.clone());
        std::thread::spawn(move || {
            let mut got = 0;
            while got < SENDERS * PER_SENDER {
                while queue.steal().success().is_some() {
                    got += 1;
                }
                if got == SENDERS * PER_SENDER {
                    break;
                }
                state.prepare_park(); // R3
                if !queue.is_empty() {
                    state.finish_park(); // R4
                    continue;
                }
                let t = Instant::now();
                std::thread::park_timeout(Duration::from_secs(10)); // R5
                state.finish_park(); // R6
                parks.fetch_add(1, Relaxed);
                assert!(
                    t.elapsed() < Duration::from_secs(10) || queue.is_empty(),
                    "lost wake-up: parked 10 s with payloads waiting"
                );
            }
            got
        })
    };
    let rx_thread = receiver.thread().clone();
    // Halfway, every sender stops for a while at once, so the receiver runs
    // dry and parks at least once whatever the scheduling (under ASan, four
    // busy senders on two cores kept it from ever seeing an empty queue).
    let halfway = Arc::new(std::sync::Barrier::new(SENDERS as usize));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (queue, state, rx_thread) = (queue.clone(), state.clone(), rx_thread.clone());
            let halfway = halfway.clone();
            std::thread::spawn(move || {
                for i in 0..PER_SENDER {
                    if i == PER_SENDER / 2 {
                        halfway.wait();
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    queue.push(i); // S1
                    if state.should_ring() {
                        rx_thread.unpark(); // the doorbell
                    }
                    if (i + s) % 64 == 0 {
                        std::thread::yield_now(); // let the receiver run dry and park
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(receiver.join().unwrap(), SENDERS * PER_SENDER);
    assert!(
        parks.load(Relaxed) > 0,
        "the receiver never parked: the test proved nothing"
    );
}
