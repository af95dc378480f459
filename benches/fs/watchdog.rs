//! The fs suite's side of the stall watchdog ([`shared::watchdog`]): the
//! count is how many operations the running case has finished, restarted at
//! 0 by [`watch`]. A latency case's one driver stores its running total
//! ([`progress`]); the tasks of a qd32 case add a step every
//! [`STEP_EVERY`] reads each ([`step`]). Before aborting, the watchdog
//! removes the temporary files.
//!
//! [`shared::watchdog`]: crate::shared::watchdog

use std::time::Duration;

use crate::STALL;
use crate::files;
use crate::shared::watchdog::{self, PROGRESS, Watch};

/// Reads a qd32 task does between two steps of the shared count.
pub(crate) const STEP_EVERY: u64 = 64;

/// Records progress of a latency case (a plain store by its one driver).
#[inline]
pub(crate) fn progress(done: u64) {
    PROGRESS.set(done);
}

/// Records progress of a qd32 task after its `done`-th read (any thread).
#[inline]
pub(crate) fn step(done: u64) {
    if done % STEP_EVERY == 0 {
        PROGRESS.step();
    }
}

/// Marks a case as running, its count at 0, until dropped.
pub(crate) fn watch(case: &str) -> Watch {
    PROGRESS.set(0);
    watchdog::watch(case)
}

pub(crate) fn start_watchdog() {
    watchdog::start("fs-watchdog", STALL, stalled);
}

fn stalled(case: &str, after: Duration, done: u64) -> String {
    files::remove_all();
    format!(
        "fs bench STALLED: case `{case}` made no progress for {after:?} (stuck at {done} \
         operations, qd32: steps of {STEP_EVERY} reads): a lost completion or wake-up? \
         (temporary files removed)"
    )
}
