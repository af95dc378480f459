//! `RecvMulti`: multishot receive (`IORING_OP_RECV` with
//! `IORING_RECV_MULTISHOT`) into a provided-buffer ring.
//!
//! One SQE keeps receiving: each chunk of data is a CQE naming the buffer
//! the kernel picked from the [`BufRing`]. Rules:
//! 1. The stream ends (`None`) at end of file, or after an error the
//!    kernel ended the op with.
//! 2. An op the kernel ends for any other reason (it may stop a multishot
//!    op, e.g. after a CQ overflow) is re-armed on the next poll, so the
//!    stream sees every byte, in order.
//! 3. Out of buffers (`ENOBUFS`): if every buffer is held by a live
//!    [`RingBuf`] and some of them were handed out by this stream or by a
//!    stream since dropped (the caller may be waiting on itself, or two
//!    streams each on the other's chunks), the stream yields an error
//!    saying so and re-arms on the next poll; otherwise (some are free, or
//!    every one is held through other live streams sharing the ring) it
//!    waits until a buffer is given back, then re-arms. That wait, like
//!    every wait of the stream, ends with `TimedOut` at the deadline of a
//!    `native::timeout` it is polled under.
//! 4. Dropping the stream drops its data: chunks received but not taken,
//!    and those the kernel posts before the cancel lands, have left the
//!    socket; their buffers go back to the ring (buffer ring protocol
//!    step 3) and their bytes are lost, as a cancelled `read`'s are.
//!
//! Caveats: buffers in another stream's CQEs that it has not taken yet
//! count as available, so a stream sharing a ring with one that is never
//! polled may wait for them; a caller that ignores the "all held" error and
//! polls again re-arms (and fails) once per poll.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::task::{Context, Poll};

use io_uring::{opcode, types};

use crate::native::fixed::{BufRing, RecvRing, RingBuf, StreamTally};
use crate::op::{MultiShot, Orphan};
use crate::sys::CQE_F_MORE;

/// Chunks received into a [`BufRing`]: made by
/// [`TcpStream::recv_multi`](super::TcpStream::recv_multi) and
/// [`UnixStream::recv_multi`](super::UnixStream::recv_multi).
///
/// # Cancellation
///
/// The kernel keeps receiving until the stream is dropped, and what it
/// received has left the socket: dropping the stream discards the chunks
/// it holds and any posted before its cancel lands. Keep one stream for as
/// long as the connection is read (poll it in a `select!` loop rather than
/// making a stream per chunk); a plain `read` receives only what it asks
/// for.
///
/// # Examples
///
/// ```
/// use ringlane::native::{fixed::BufRing, net::UnixStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let ring = BufRing::new(4, 64)?;
///     let (a, b) = UnixStream::pair()?;
///     a.write_all(b"abc".to_vec()).await.0?;
///     drop(a); // end of file ends the stream
///     let mut chunks = b.recv_multi(&ring);
///     let mut got = Vec::new();
///     while let Some(chunk) = chunks.next().await {
///         got.extend_from_slice(&chunk?);
///     }
///     Ok::<_, std::io::Error>(got)
/// }).unwrap();
/// match rt.block_on(j).unwrap() {
///     Ok(got) => assert_eq!(got, b"abc"),
///     // Before Linux 6.0 the kernel refuses the buffer ring (5.18) or the
///     // multishot receive (5.19) with `EINVAL`.
///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
/// }
/// ```
pub struct RecvMulti {
    /// The socket, kept open while the stream may re-arm; let go once the
    /// stream has ended, so that closing the socket then closes it.
    fd: Option<Arc<OwnedFd>>,
    ring: RecvRing,
    op: Option<MultiShot>,
    /// Buffers given back when the current op was armed (rule 3).
    armed_at: u64,
    /// Out of buffers: waiting for the give-back count to leave this.
    starved_at: Option<u64>,
    /// The chunks this stream handed out that are alive (rule 3).
    held: Arc<StreamTally>,
    /// Bounds a wait for a buffer by the caller's `native::timeout`.
    timer: crate::op::DeadlineTimer,
    done: bool,
}

impl RecvMulti {
    pub(super) fn new(fd: Arc<OwnedFd>, ring: &BufRing) -> Self {
        Self {
            fd: Some(fd),
            ring: ring.inner().clone(),
            op: None,
            armed_at: 0,
            starved_at: None,
            held: Arc::default(),
            timer: crate::op::DeadlineTimer::default(),
            done: false,
        }
    }

    /// Arms the op; `None` once the stream has ended (the fd is let go).
    fn arm(&self) -> Option<MultiShot> {
        let fd = self.fd.as_ref()?;
        let sqe = opcode::RecvMulti::new(types::Fd(fd.as_raw_fd()), self.ring.group()).build();
        let ring = self.ring.clone();
        let orphan: Orphan = Box::new(move |_, flags| ring.orphan(flags));
        let op = MultiShot::with_orphan((fd.clone(), self.ring.clone()), Some(orphan), sqe)
            .bound_to(self.ring.home().clone())
            .timed()
            .receive();
        Some(op)
    }

    /// The stream has ended (rule 1): no op is armed, and none will be.
    fn end(&mut self) {
        self.op = None;
        self.done = true;
        self.fd = None;
    }

    /// Polls for the next chunk: `None` once the stream has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::BufRing, net::UnixStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let ring = BufRing::new(4, 64)?;
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(b"abc".to_vec()).await.0?;
    ///     let mut chunks = b.recv_multi(&ring);
    ///     let first = std::future::poll_fn(|cx| chunks.poll_next(cx)).await;
    ///     Ok::<_, std::io::Error>(first.expect("not at end of file")?.to_vec())
    /// }).unwrap();
    /// match rt.block_on(j).unwrap() {
    ///     Ok(got) => assert_eq!(got, b"abc"),
    ///     // Before Linux 6.0 the kernel refuses the buffer ring (5.18) or the
    ///     // multishot receive (5.19) with `EINVAL`.
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
    /// }
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<RingBuf>>> {
        // A stream of buffered chunks yields now and then (coop invariant 2).
        crate::executor::coop::budgeted(cx, |cx| self.poll_next_unbudgeted(cx))
    }

    fn poll_next_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<RingBuf>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if let Some(seen) = self.starved_at {
                // Only the ring's shard can re-arm the op: polled anywhere
                // else (its runtime gone, say), the wait could never end.
                if let Some(e) = crate::op::wrong_shard(self.ring.home()) {
                    self.end();
                    return Poll::Ready(Some(Err(e)));
                }
                if !self.ring.wait_recycle(seen, cx.waker()) {
                    // Bounded like every wait of the stream (op invariant
                    // 8); still starved, the next call waits on.
                    return match self.timer.poll(cx) {
                        Poll::Ready(e) => Poll::Ready(Some(Err(e))),
                        Poll::Pending => Poll::Pending,
                    };
                }
                self.starved_at = None;
                self.timer.clear();
            }
            if self.op.is_none() {
                // Bound to the ring's shard (`arm`): polled elsewhere, the
                // op fails before it is pushed and the stream ends.
                self.armed_at = self.ring.recycled();
                self.op = self.arm();
                if self.op.is_none() {
                    self.done = true;
                    return Poll::Ready(None);
                }
            }
            let polled = self.op.as_mut().expect("armed above").poll_next_cqe(cx);
            let (result, flags) = match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.op = None; // rule 2
                    continue;
                }
                // A `native::timeout` ran out: the op stays armed (op
                // invariant 8) and the stream goes on.
                Poll::Ready(Some(Err(e))) if e.kind() == io::ErrorKind::TimedOut => {
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.end();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(cqe))) => cqe,
            };
            let buf = self.ring.take(result, flags, &self.held);
            if result > 0 {
                return Poll::Ready(Some(buf.ok_or_else(|| {
                    io::Error::other("the kernel posted data without a buffer")
                })));
            }
            drop(buf);
            if flags & CQE_F_MORE == 0 {
                self.op = None;
            }
            if result == 0 {
                self.end(); // rule 1: end of file
                return Poll::Ready(None);
            }
            if result == -libc::ENOBUFS {
                // Rule 3.
                // Held by this stream, or by a stream the caller dropped
                // (likely still in its hands): a wait could be on itself.
                let ours = self.held.alive() > 0 || self.ring.held_by_dropped_streams();
                if self.ring.all_held() && ours {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        "every buffer of the BufRing is held by a RingBuf, some handed out by this stream: drop some to receive more",
                    ))));
                }
                if self.ring.recycled() == self.armed_at {
                    self.starved_at = Some(self.armed_at);
                }
                continue;
            }
            if self.op.is_none() {
                self.end(); // rule 1: the kernel ended it with an error
            }
            return Poll::Ready(Some(Err(io::Error::from_raw_os_error(-result))));
        }
    }

    /// Waits for the next chunk: `None` once the peer closed the stream (or
    /// after a fatal error).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::BufRing, net::UnixStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let ring = BufRing::new(4, 64)?;
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(b"hi".to_vec()).await.0?;
    ///     drop(a);
    ///     let mut chunks = b.recv_multi(&ring);
    ///     let first = chunks.next().await.transpose()?.map(|c| c.to_vec());
    ///     let after = chunks.next().await.transpose()?;
    ///     Ok::<_, std::io::Error>((first, after.is_none()))
    /// }).unwrap();
    /// match rt.block_on(j).unwrap() {
    ///     Ok(got) => assert_eq!(got, (Some(b"hi".to_vec()), true)),
    ///     // Before Linux 6.0 the kernel refuses the buffer ring (5.18) or the
    ///     // multishot receive (5.19) with `EINVAL`.
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
    /// }
    /// ```
    pub async fn next(&mut self) -> Option<io::Result<RingBuf>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl Drop for RecvMulti {
    /// Chunks handed out and still alive now belong to nobody the ring can
    /// see (rule 3).
    fn drop(&mut self) {
        self.held.orphan(&self.ring);
    }
}

impl std::fmt::Debug for RecvMulti {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvMulti")
            .field("group", &self.ring.group())
            .field("armed", &self.op.is_some())
            .field("done", &self.done)
            .finish()
    }
}
