//! Timers: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`].
//!
//! On a shard, a timer is an entry in that shard's `TimerWheel`; the shard
//! parks in `io_uring_enter` with the wheel's nearest deadline as timeout, so
//! a million timers cost no SQE. Off a shard (in `Runtime::block_on`, a Tokio
//! task, a plain thread) the same futures use one process-wide fallback
//! timer thread, so they work anywhere instead of panicking.
//!
//! These timers read the real clock (`std::time::Instant`): Tokio's paused
//! test clock (`tokio::time::pause`, `advance`, `start_paused`) does not
//! move them. A test ported from Tokio that relies on auto-advancing time
//! sleeps for real here; keep such tests on `tokio::time` (with
//! `Builder::tokio_handle`, shard tasks can use it), or shorten their sleeps.

mod fallback;
mod interval;
mod sleep;
mod timeout;
mod wheel;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub(crate) use sleep::after;
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, Timeout, timeout, timeout_at};
pub(crate) use wheel::TimerWheel;
