//! The compat suite's side of the stall watchdog ([`shared::watchdog`]):
//! the count is the running case's echo round trips (stored by the one
//! client) or finished HTTP requests (any client connection adds a step).
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
    watchdog::start("compat-watchdog", STALL, stalled);
}

fn stalled(case: &str, after: Duration, done: u64) -> String {
    format!(
        "compat bench STALLED: case `{case}` made no progress for {after:?} (stuck at {done} \
         round trips or requests): a lost readiness poll or wake-up?"
    )
}
