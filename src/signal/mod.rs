//! Signals, as `tokio::signal`: [`ctrl_c`] and [`unix::signal`] streams,
//! for a service's graceful shutdown without a Tokio runtime.
//!
//! A handler is installed for a signal the first time a listener asks for
//! it (chaining any handler installed before), and stays for the life of
//! the process, as Tokio's: from then on the signal's default action (for
//! `SIGINT`, ending the process) no longer happens. A listener sees the
//! deliveries made after it was created; several deliveries between two
//! of its receives are one event. Listeners work anywhere: shard tasks,
//! `block_on`, Tokio tasks, plain threads with any executor (a thread of
//! ringlane's own, `ringlane-signal`, wakes them).

mod registry;

pub mod unix;

use std::io;

/// Completes at the next `SIGINT` (Ctrl-C) after its first poll, as
/// `tokio::signal::ctrl_c`.
///
/// # Errors
///
/// If the handler cannot be installed, or signal handling cannot start
/// (no fd or thread for it).
///
/// # Examples
///
/// ```no_run
/// let rt = ringlane::Runtime::builder().build().unwrap();
/// rt.block_on(async {
///     // ... serve ...
///     ringlane::signal::ctrl_c().await.expect("a SIGINT handler");
///     // ... then shut down gracefully.
/// });
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut interrupt = unix::signal(unix::SignalKind::interrupt())?;
    interrupt.recv().await;
    Ok(())
}
