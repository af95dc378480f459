//! The native lane: completion-based io_uring operations on owned buffers.
//!
//! Every operation takes ownership of what the kernel will touch (the
//! buffer, the path, a reference to the fd) and gives it back with the
//! result, as `(io::Result<usize>, B)`. Dropping an operation's future
//! before it completes cancels it; the resources stay alive in the shard's
//! op table until the kernel is done with them (see the op lifecycle in
//! `op/mod.rs` and ADR 0009).
//!
//! Operations are submitted to the ring of the shard the calling task runs
//! on. From a Tokio task, run them on a shard through the handle:
//! `handle.spawn_pinned(shard, async move { File::open(path).await })`.
//!
//! Per-op timeouts ([`timeout`]) are enforced by the kernel with
//! `IORING_OP_LINK_TIMEOUT` and give the buffer back with `TimedOut`.

mod aligned;
mod buf;
pub mod fixed;
pub mod fs;
pub mod net;
mod timeout;

pub use aligned::AlignedBuf;
pub use buf::{IoBuf, IoBufMut};
pub use timeout::{NativeTimeoutExt, Timeout, timeout};

mod fd;

pub(crate) use fd::{close_shared, os_result};
