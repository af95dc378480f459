//! # ringlane
//!
//! A sharded io_uring async runtime for Rust with a Tokio-interop handle.
//!
//! ## Architecture
//!
//! ```text
//!   Handle (Send + Sync + Clone; any thread, Tokio tasks included)
//!     | spawn_pinned / spawn_local_on          JoinHandle: a plain Future
//!     v
//!  +------------------ shard 0 ------------------+   +---- shard 1 ----+
//!  | OS thread, optionally pinned to a CPU       |   |                 |
//!  | io_uring (SINGLE_ISSUER | DEFER_TASKRUN)    |<--|-- MSG_RING      |
//!  | run queue of tasks (async-task Runnables)   |   |   doorbell      |
//!  | mailbox: MPSC queue + doorbell state        |   |                 |
//!  | registry of live tasks (for shutdown)       |   |                 |
//!  | timer wheel (bounds the park timeout)       |   |                 |
//!  +---------------------------------------------+   +-----------------+
//!       ^ eventfd doorbell from threads that own no ring
//! ```
//!
//! * **Shards** ([`shard`](crate::Runtime) threads) each own one io_uring,
//!   created on that thread. An idle shard sleeps in `io_uring_enter` until a
//!   completion, a doorbell or its nearest timer; it does not spin unless
//!   [`Builder::spin_before_park`] asks it to.
//! * **Hand-offs** between threads go through the target shard's own MPSC
//!   queue; the doorbell only wakes a sleeping receiver and is rung only when
//!   it is parked (the numbered park/wake protocol is documented in the
//!   `mailbox::doorbell` module). From another shard the doorbell is an
//!   `IORING_OP_MSG_RING`, sent after the owing task's poll if more tasks
//!   are queued, at once on `Sender::flush`, else with the shard's next
//!   `io_uring_enter`; from any other thread an eventfd write, read by a
//!   request kept armed on the ring.
//! * **Tasks** are [`async-task`](https://docs.rs/async-task) tasks. A
//!   pinned or local task never leaves its shard: pinned tasks are `Send`
//!   futures placed on a chosen shard, local tasks are `!Send` futures built
//!   on it. A stealable task may be run by any shard. A panic becomes a
//!   [`JoinError`]; the shard survives.
//! * **Timers** ([`time`]) live in a per-shard hierarchical wheel; the wheel's
//!   nearest deadline is the park timeout, so timers cost no SQE.
//! * **Blocking work** ([`spawn_blocking`]) runs on a pool of plain threads
//!   beside the shards, started on demand; [`JoinSet`] joins any mix of
//!   tasks and closures in the order they finish.
//! * **Layers**: `sys` (the io_uring layer: ring set-up, enter/park,
//!   eventfd) ← `executor`, `time`, `mailbox` ← `shard` ← [`Runtime`],
//!   [`Handle`]. The thread-local shard context is a small module the shard
//!   installs and the lower layers read; the executor's schedule function
//!   refers back to `shard` (ADR 0017).
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//!
//! let rt = ringlane::Runtime::builder().shards(2).build()?;
//! let handle = rt.handle();
//! let total = rt.block_on(async move {
//!     let mut joins = Vec::new();
//!     for shard in 0..handle.shards() {
//!         joins.push(handle.spawn_pinned(shard, async move {
//!             ringlane::time::sleep(Duration::from_millis(1)).await;
//!             shard * 10
//!         })?);
//!     }
//!     let mut total = 0;
//!     for j in joins {
//!         total += j.await?;
//!     }
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(total)
//! });
//! assert_eq!(total.unwrap(), 10);
//! # Ok::<(), ringlane::Error>(())
//! ```
//!
//! ## Requirements
//!
//! Linux with io_uring, `IORING_OP_MSG_RING` and `IORING_FEAT_EXT_ARG`
//! (5.18 or newer; 6.1+ recommended for `DEFER_TASKRUN`). A kernel that
//! refuses io_uring gives [`Error::RingSetup`] from
//! [`Builder::build`], never a panic.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

mod blocking;
mod builder;
mod channel;
pub mod compat;
mod context;
mod enter;
mod error;
mod executor;
mod handle;
mod join_set;
mod mailbox;
pub mod native;
mod op;
mod padded;
mod placement;
mod runtime;
mod shard;
pub mod signal;
mod stats;
mod sys;
#[cfg(test)]
mod test_hook;
pub mod time;
mod yield_now;

pub use builder::Builder;
pub use channel::{
    RawReceiver, RawSender, Receiver, SendError, Sender, TryRecvError, TrySendError, channel,
    raw_channel,
};
pub use enter::EnterGuard;
pub use error::{Error, RingRefusal};
pub use executor::{AbortHandle, JoinError, JoinHandle};
pub use handle::{Handle, ShardCtx, current_shard, spawn, spawn_blocking, spawn_local};
pub use join_set::JoinSet;
pub use placement::Placement;
pub use runtime::{Runtime, ShutdownReport};
pub use stats::ShardStats;
pub use sys::RingFeatures;
pub use yield_now::yield_now;
