//! Helpers the bench suites (`spawn`, `mailbox`, `fanout`) share, so that
//! each exists once: the raw floors' ring ([`floor_ring`]), process CPU
//! time, median, percentile and µs formatting ([`timing`]), building
//! and shutting down the compared runtimes ([`runtimes`]), the stall
//! watchdog's machinery ([`watchdog`]), and the summary-mode switch.
//!
//! Every suite compiles this module on its own, with
//! `#[path = "../shared/mod.rs"] mod shared;` (`"shared/mod.rs"` from
//! `spawn.rs`), and uses only part of it: `spawn` runs no watchdog, `fanout`
//! no current-thread runtime.
#![allow(
    dead_code,
    reason = "each bench suite compiles this module and uses only part of it"
)]

pub(crate) mod cpu;
pub(crate) mod floor_ring;
pub(crate) mod runtimes;
pub(crate) mod timing;
pub(crate) mod watchdog;

/// Whether the suite runs in summary mode (`RINGLANE_BENCH_SUMMARY` set, as
/// `scripts/bench-summary` does) rather than under criterion.
pub(crate) fn summary_mode() -> bool {
    std::env::var_os("RINGLANE_BENCH_SUMMARY").is_some()
}
