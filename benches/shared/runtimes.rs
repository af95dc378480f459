//! Building and shutting down the runtimes the suites compare, with the same
//! settings and failure messages in every suite.

use std::time::Duration;

/// A ringlane runtime from `builder` (otherwise configured by the caller)
/// with `shards` shards.
pub(crate) fn ringlane_runtime(builder: ringlane::Builder, shards: usize) -> ringlane::Runtime {
    builder.shards(shards).build().expect("ringlane runtime")
}

/// A Tokio multi-thread runtime with `workers` worker threads.
pub(crate) fn tokio_multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("tokio multi-thread runtime")
}

/// A Tokio current-thread runtime (it runs on the thread that calls
/// `block_on`).
pub(crate) fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio current-thread runtime")
}

/// Shuts `rt` down with a one-second grace period and asserts that it
/// shut down cleanly; `name` (e.g. `"ringlane"`) starts the panic message.
pub(crate) fn shutdown(rt: ringlane::Runtime, name: &str) {
    let report = rt.shutdown(Duration::from_secs(1));
    assert!(report.is_clean(), "{name} shutdown: {report:?}");
}
