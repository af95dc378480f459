//! The net suite's side of the stall watchdog ([`shared::watchdog`]): the
//! count is the running case's round trips (echo) or bytes received
//! (stream), stored by its one driver.
//!
//! [`shared::watchdog`]: crate::shared::watchdog

use std::time::Duration;

use crate::STALL;
pub(crate) use crate::shared::watchdog::PROGRESS;
use crate::shared::watchdog::{self, Watch};

/// Marks a case as running, its count at 0, until dropped.
pub(crate) fn watch(case: &str) -> Watch {
    PROGRESS.set(0);
    watchdog::watch(case)
}

pub(crate) fn start_watchdog() {
    watchdog::start("net-watchdog", STALL, stalled);
}

fn stalled(case: &str, after: Duration, done: u64) -> String {
    format!(
        "net bench STALLED: case `{case}` made no progress for {after:?} (stuck at {done} round \
         trips or bytes): a lost completion or wake-up?"
    )
}
