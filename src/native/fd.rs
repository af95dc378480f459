//! Helpers every native fd type shares: CQE results and async close.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use io_uring::{opcode, types};

use crate::op;

/// A CQE result as an `io::Result`: negative values are `-errno`.
pub(crate) fn os_result(result: i32) -> io::Result<usize> {
    if result < 0 {
        Err(io::Error::from_raw_os_error(-result))
    } else {
        Ok(result as usize)
    }
}

/// Closes an fd shared with in-flight ops: with `IORING_OP_CLOSE` if no op
/// still uses it, otherwise when the last of them completes.
pub(crate) async fn close_shared(fd: Arc<OwnedFd>) -> io::Result<()> {
    /// Owns the fd until the close SQE is built; dropped still owning it
    /// (the op never got that far), it closes the fd itself.
    struct Guard(Option<OwnedFd>);
    /// The close op and the fd number its SQE names. Dropped before the
    /// kernel got the SQE (it waited for room in the ring), nobody owns
    /// the fd any more: it is closed here.
    struct Closing {
        op: op::Op<Guard>,
        raw: RawFd,
        resolved: bool,
    }
    impl Drop for Closing {
        fn drop(&mut self) {
            if !self.resolved && !self.op.is_pushed() {
                // SAFETY: the SQE that took `raw` from its `OwnedFd` never
                // reached the kernel, and nothing else owns the number.
                drop(unsafe { OwnedFd::from_raw_fd(self.raw) });
            }
        }
    }
    let Ok(fd) = Arc::try_unwrap(fd) else {
        return Ok(()); // an op still holds it: it closes after that op's CQE
    };
    let raw = fd.as_raw_fd();
    let op = op::submit(Guard(Some(fd)), false, move |g| {
        let fd = g.0.take().expect("built once").into_raw_fd();
        opcode::Close::new(types::Fd(fd)).build()
    });
    // Cancelling a close queued in io-wq would leak the fd: it always runs
    // (shutdown's cancels skip it too).
    let mut closing = Closing {
        // Done at submit for most files: tried inline (op invariant 13).
        op: op.uncancellable().inline(op::Inline::Close),
        raw,
        resolved: false,
    };
    let result = std::future::poll_fn(|cx| std::pin::Pin::new(&mut closing.op).poll(cx)).await;
    closing.resolved = true;
    match result {
        // An `EBADF` here may come from a flush that failed after the fd
        // was removed (a FUSE file): never closed again, the number may be
        // another file's by now. (io_uring fds, which the kernel refuses to
        // close this way, never get here: `File::close`.)
        Ok((r, _)) => os_result(r).map(drop),
        Err((_, Guard(None))) => close_raw(raw),
        Err((e, Guard(Some(_fd)))) => Err(e), // `_fd` closes on drop
    }
}

/// Closes `raw` with `close(2)`: an fd released from its `OwnedFd` for a
/// close SQE that the kernel never saw (built but not submitted: off the
/// shards, or the ring refused it). It succeeds or fails as `close(2)`
/// says.
fn close_raw(raw: RawFd) -> io::Result<()> {
    // SAFETY: `raw` was released from its `OwnedFd` by the close builder,
    // is owned by nobody else, and the kernel never saw the close.
    if unsafe { libc::close(raw) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
