//! The mailbox suite's side of the stall watchdog ([`shared::watchdog`]):
//! the count is how many round trips or messages the running case has
//! finished, stored by the one thread that drives it and restarted at 0 by
//! [`watch`]; a stall report names that count.
//!
//! [`shared::watchdog`]: crate::shared::watchdog

use std::time::Duration;

use crate::STALL;
use crate::shared::watchdog::{self, PROGRESS, Watch};

/// Records progress of the running case (a plain store by the one thread that drives it).
#[inline]
pub(crate) fn progress(done: u64) {
    PROGRESS.set(done);
}

/// Marks a case as running, its count at 0, until dropped.
pub(crate) fn watch(case: &str) -> Watch {
    PROGRESS.set(0);
    watchdog::watch(case)
}

pub(crate) fn start_watchdog() {
    watchdog::start("mailbox-watchdog", STALL, stalled);
}

fn stalled(case: &str, after: Duration, done: u64) -> String {
    format!(
        "mailbox bench STALLED: case `{case}` made no progress for {after:?} \
         (stuck at {done} round trips / messages): a lost wake-up?"
    )
}
