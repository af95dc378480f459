//! The compat lane: Tokio's I/O traits on shards, driven by readiness.
//!
//! Sockets here are nonblocking and behave like Tokio's: a syscall first,
//! and on `EAGAIN` a wait for readiness. The wait is an
//! `IORING_OP_POLL_ADD` on the ring of the shard that polls (see the
//! readiness engine's invariants in `compat/readiness.rs`), so no epoll
//! instance and no Tokio reactor is involved. The types implement
//! `tokio::io::AsyncRead`/`AsyncWrite`: code written for Tokio (codecs,
//! `tokio::io::copy`, hyper through `TokioIo`) runs on them unmodified.
//!
//! A stream polled on any shard arms its wait on that shard's ring; polled
//! off the shards (a Tokio task, `block_on`), the wait is forwarded to the
//! stream's home shard.
//! Converting between the lanes (`into_native`, `into_compat`) hands a
//! socket over.

mod addrs;
mod async_fd;
mod async_fd_more;
mod async_fd_ready;
#[cfg(feature = "bytes")]
mod buf_calls;
mod direction;
mod fd_traits;
#[cfg(feature = "hyper")]
mod hyper_rt;
mod interest;
mod readiness;
mod ready_io;
mod reunite;
mod sock_opts;
pub(crate) mod stream;
mod tcp;
mod tcp_socket;
mod udp;
mod udp_ready;
mod unix;
mod unix_datagram;
mod unix_extra;
mod waiters;

pub use addrs::ToSocketAddrs;
pub use async_fd::{
    AsyncFd, AsyncFdReadyGuard, AsyncFdRegisterError, AsyncFdTryNewError, TryIoError,
};
pub use async_fd_more::AsyncFdReadyMutGuard;
#[cfg(feature = "hyper")]
pub use hyper_rt::{HyperExecutor, HyperTimer};
pub use reunite::ReuniteError;
pub use stream::{CompatStream, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use tcp_socket::TcpSocket;
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};
pub use unix_datagram::UnixDatagram;
pub use unix_extra::UCred;

/// Runs `connect` (native ring ops) where they can run: here on a shard;
/// off the shards, on the next shard in turn of the current runtime (the
/// socket's home from then on), awaited from here; with no runtime
/// current, here, where its ops report that they need a shard.
async fn on_a_shard<T, F>(connect: F) -> std::io::Result<T>
where
    F: std::future::Future<Output = std::io::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    match (crate::current_shard(), crate::Handle::current()) {
        (None, Some(runtime)) => {
            let job = runtime.spawn_with(crate::Placement::RoundRobin, connect)?;
            // Cancelled (the caller's future dropped), the connect is
            // aborted and its socket closed, as Tokio's is at once; a
            // finished one ignores the abort.
            let mut job = AbortOnDrop(job);
            (&mut job.0).await?
        }
        _ => connect.await,
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop<T>(crate::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
