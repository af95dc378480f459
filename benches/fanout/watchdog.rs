//! The fanout suite's side of the stall watchdog ([`shared::watchdog`]):
//! the count goes up by one whenever any thread finishes a request or a
//! batch, and when a case starts.
//!
//! [`shared::watchdog`]: crate::shared::watchdog

use std::time::Duration;

use crate::STALL;
use crate::shared::watchdog::{self, PROGRESS, Watch};

/// Records one step of progress (any thread).
#[inline]
pub(crate) fn progress() {
    PROGRESS.step();
}

/// Marks a case as running until dropped.
pub(crate) fn watch(case: &str) -> Watch {
    let watch = watchdog::watch(case);
    progress();
    watch
}

pub(crate) fn start_watchdog() {
    watchdog::start("fanout-watchdog", STALL, stalled);
}

fn stalled(case: &str, after: Duration, _: u64) -> String {
    format!(
        "fanout bench STALLED: case `{case}` made no progress for {after:?} \
         (no request or batch finished): a lost wake-up or a lost task?"
    )
}
