//! Plain-thread round-trip baselines: the atomic cache-line ping-pong (the
//! floor) and bounded crossbeam channels.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cases::Env;
use crate::measure::{RttRun, Samples};
use crate::{RTT_CAPACITY, STOP};

/// Two threads spinning on one cache line: odd values are pings, even ones pongs.
pub(crate) fn rtt_atomic(_: &Env, warm: usize, n: usize) -> RttRun {
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Line(AtomicU64::new(0));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut next = 1;
            loop {
                let v = loop {
                    let v = line.0.load(Ordering::Acquire);
                    if v == next || v == STOP {
                        break v;
                    }
                    spin_loop();
                };
                if v == STOP {
                    break;
                }
                line.0.store(v + 1, Ordering::Release);
                next += 2;
            }
        });
        let ping = scope.spawn(|| {
            let mut s = Samples::new(warm, n);
            for i in 0..s.total() {
                line.0.store(2 * i + 1, Ordering::Release);
                while line.0.load(Ordering::Acquire) != 2 * i + 2 {
                    spin_loop();
                }
                s.tick(true);
            }
            let run = s.finish();
            line.0.store(STOP, Ordering::Release);
            run
        });
        ping.join().expect("ping thread")
    })
}

pub(crate) fn rtt_crossbeam(_: &Env, warm: usize, n: usize) -> RttRun {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<u64>(RTT_CAPACITY);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<u64>(RTT_CAPACITY);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for v in ping_rx.iter() {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        let ping = scope.spawn(move || {
            let mut s = Samples::new(warm, n);
            for i in 0..s.total() {
                ping_tx.send(i).expect("echo thread gone");
                let v = pong_rx.recv().expect("echo thread gone");
                assert_eq!(v, i, "echo out of order");
                s.tick(true);
            }
            s.finish()
        });
        ping.join().expect("ping thread")
    })
}
