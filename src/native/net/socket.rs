//! `Socket`: the fd and the io_uring ops every socket type shares.
//!
//! As with files, every op holds a reference to the fd (`Arc<OwnedFd>`),
//! so the fd is closed only after the last op on it has completed, and
//! every address or message header the kernel reads or writes sits inline
//! in the op's resources (op invariant 2).

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use io_uring::{opcode, types};

use super::addr::RawAddr;
use crate::native::{IoBuf, IoBufMut, close_shared, os_result};
use crate::op;

/// How many accepted connections an `Incoming` keeps waiting for its owner
/// before it pauses its multishot accept: beyond that, new connections
/// stay in the kernel's backlog (as with `accept(2)` not being called)
/// until the owner takes some and polls again.
pub(crate) const ACCEPT_BOUND: usize = 64;

/// A socket fd shared with the ops in flight on it.
#[derive(Debug)]
pub(crate) struct Socket {
    fd: Arc<OwnedFd>,
}

/// A buffer op's resources.
struct BufRes<B> {
    buf: B,
    /// The fd, kept open until the final CQE; `None` for a zero-copy send,
    /// whose op holds it only until its first (op invariant 9).
    _fd: Option<Arc<OwnedFd>>,
}

/// A `sendmsg`/`recvmsg` op's resources: the header points into the
/// struct itself, which the op cell keeps at one address.
struct MsgRes<B> {
    buf: B,
    addr: RawAddr,
    iov: libc::iovec,
    msg: libc::msghdr,
    _fd: Arc<OwnedFd>,
}

// SAFETY: the raw pointers in `iov` and `msg` point only at this struct's
// own fields and at the buffer's heap bytes. They are set by the builder
// once the struct sits at its final address in the op cell and are
// dereferenced (by the kernel, and by `msg` for `msg_namelen`) only while
// it stays there; after a move they dangle but are never used. No thread
// can reach the pointees through them, so sending the struct is as safe as
// sending `B`.
unsafe impl<B: Send> Send for MsgRes<B> {}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// How a buffer op is submitted.
#[derive(Clone, Copy)]
enum Shape {
    Send,
    /// Issued after the batch's sends (ring invariant 5).
    Receive,
    /// `SEND_ZC`: a result CQE, then a notification.
    ZeroCopySend,
}

impl Socket {
    pub(crate) fn from_owned(fd: OwnedFd) -> Self {
        Self { fd: Arc::new(fd) }
    }

    /// Creates a socket (`IORING_OP_SOCKET`, or `socket(2)` on kernels
    /// before 5.19 that refuse the opcode), close-on-exec.
    pub(crate) async fn open(domain: i32, ty: i32) -> io::Result<Self> {
        let ty = ty | libc::SOCK_CLOEXEC;
        let op = op::submit((), true, move |_| {
            opcode::Socket::new(domain, ty, 0).build()
        });
        let (fd, ()) = op.await.map_err(|(e, ())| e)?;
        let fd = match os_result(fd) {
            Ok(fd) => fd as RawFd,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // SAFETY: plain socket creation; the result is checked.
                let fd = unsafe { libc::socket(domain, ty, 0) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                fd
            }
            Err(e) => return Err(e),
        };
        // SAFETY: the kernel just created `fd` for us and nobody else has it.
        Ok(Self::from_owned(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The fd itself, for another lane: ours if no op still holds it, a
    /// close-on-exec duplicate otherwise.
    pub(crate) fn into_owned_fd(self) -> io::Result<OwnedFd> {
        match Arc::try_unwrap(self.fd) {
            Ok(fd) => Ok(fd),
            Err(shared) => shared.try_clone(),
        }
    }

    /// Multishot receive into `ring` (`recv_multi.rs`).
    pub(crate) fn recv_multi(&self, ring: &crate::native::fixed::BufRing) -> super::RecvMulti {
        super::RecvMulti::new(self.fd.clone(), ring)
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Connects to `addr` (`IORING_OP_CONNECT`).
    pub(crate) async fn connect(&self, addr: RawAddr) -> io::Result<()> {
        let fd = types::Fd(self.raw());
        let op = op::submit((addr, self.fd.clone()), false, move |(a, _)| {
            opcode::Connect::new(fd, a.as_ptr(), a.len).build()
        });
        let (r, _) = op.await.map_err(|(e, _)| e)?;
        os_result(r).map(drop)
    }

    /// Accepts one connection (`IORING_OP_ACCEPT`), close-on-exec. If the
    /// future is dropped after the kernel accepted, the new fd is closed.
    pub(crate) async fn accept(&self) -> io::Result<(Socket, RawAddr)> {
        let fd = types::Fd(self.raw());
        let op = op::submit((RawAddr::empty(), self.fd.clone()), true, move |(a, _)| {
            opcode::Accept::new(fd, a.as_mut_ptr(), &mut a.len)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        });
        let (r, (addr, _)) = op.await.map_err(|(e, _)| e)?;
        let new = os_result(r)? as RawFd;
        // SAFETY: the kernel just created `new` for us and nobody else has it.
        let socket = Self::from_owned(unsafe { OwnedFd::from_raw_fd(new) });
        Ok((socket, addr))
    }

    /// Multishot accept (`IORING_OP_ACCEPT` with `IORING_ACCEPT_MULTISHOT`):
    /// one SQE, one CQE per connection, close-on-exec; paused once
    /// [`ACCEPT_BOUND`] connections wait untaken.
    pub(crate) fn accept_multi(&self) -> op::MultiShot {
        let sqe = opcode::AcceptMulti::new(types::Fd(self.raw()))
            .flags(libc::SOCK_CLOEXEC)
            .build();
        op::MultiShot::new(self.fd.clone(), true, sqe).bounded(ACCEPT_BOUND)
    }

    /// One op on a buffer of `len` bytes (`InvalidInput` if 0): keeps the
    /// fd alive in the op's resources and gives the buffer back.
    async fn buf_op<B, F>(
        &self,
        buf: B,
        len: usize,
        build: F,
        shape: Shape,
    ) -> (io::Result<usize>, B)
    where
        B: Send + 'static,
        F: FnOnce(types::Fd, &mut B, u32) -> io_uring::squeue::Entry + Send + 'static,
    {
        if len == 0 {
            return (Err(invalid("zero-length buffer")), buf);
        }
        let fd = types::Fd(self.raw());
        let zero_copy = matches!(shape, Shape::ZeroCopySend);
        let res = BufRes {
            buf,
            _fd: (!zero_copy).then(|| self.fd.clone()),
        };
        let op = op::submit(res, false, move |r| build(fd, &mut r.buf, len_u32(len)));
        let op = match shape {
            Shape::Send => op,
            Shape::Receive => op.receive(),
            Shape::ZeroCopySend => op.two_cqes_on(self.fd.clone()),
        };
        match op.await {
            Ok((n, r)) => (os_result(n), r.buf),
            Err((e, r)) => (Err(e), r.buf),
        }
    }

    /// Receives into `buf` (up to its capacity); 0 means the peer closed.
    pub(crate) async fn recv<B: IoBufMut>(&self, buf: B) -> (io::Result<usize>, B) {
        let total = buf.bytes_total();
        let build = |fd, buf: &mut B, len| opcode::Recv::new(fd, buf.stable_mut_ptr(), len).build();
        let (n, mut buf) = self.buf_op(buf, total, build, Shape::Receive).await;
        if let Ok(n) = n {
            // SAFETY: the kernel initialized the first `n` bytes.
            unsafe { buf.set_init(n) };
        }
        (n, buf)
    }

    /// Sends `buf[from..]` of the initialized bytes, never raising SIGPIPE.
    async fn send_from<B: IoBuf>(&self, buf: B, from: usize) -> (io::Result<usize>, B) {
        let len = buf.bytes_init().saturating_sub(from);
        let build = move |fd, buf: &mut B, len| {
            // SAFETY: `from < bytes_init` (`len` is non-zero), so the
            // pointer stays in the buffer.
            let ptr = unsafe { buf.stable_ptr().add(from) };
            opcode::Send::new(fd, ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        };
        self.buf_op(buf, len, build, Shape::Send).await
    }

    /// Zero-copy send (`IORING_OP_SEND_ZC`): the kernel sends from the
    /// buffer's pages and gives it back only after its notification (op
    /// invariant 9).
    pub(crate) async fn send_zc<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let len = buf.bytes_init();
        let build = |fd, buf: &mut B, len| {
            opcode::SendZc::new(fd, buf.stable_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        };
        self.buf_op(buf, len, build, Shape::ZeroCopySend).await
    }

    /// Sends the buffer's initialized bytes; returns how many were sent.
    pub(crate) async fn send<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        self.send_from(buf, 0).await
    }

    /// Sends every initialized byte, resubmitting after short sends.
    pub(crate) async fn send_all<B: IoBuf>(&self, mut buf: B) -> (io::Result<()>, B) {
        let mut sent = 0;
        while sent < buf.bytes_init() {
            let (n, b) = self.send_from(buf, sent).await;
            buf = b;
            match n {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Shuts down one or both directions (`IORING_OP_SHUTDOWN`).
    pub(crate) async fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        let fd = types::Fd(self.raw());
        let op = op::submit(self.fd.clone(), false, move |_| {
            opcode::Shutdown::new(fd, how).build()
        });
        let (r, _) = op.await.map_err(|(e, _)| e)?;
        os_result(r).map(drop)
    }

    /// One `sendmsg` (to `to`, or to the connected peer) or `recvmsg` of a
    /// single buffer. For datagram sockets, where an empty datagram is a
    /// valid message, so an empty buffer is allowed.
    async fn msg<B: IoBufMut>(
        &self,
        buf: B,
        sending: bool,
        to: Option<RawAddr>,
    ) -> (io::Result<(usize, RawAddr)>, B) {
        let named = to.is_some();
        let len = if sending {
            buf.bytes_init()
        } else {
            buf.bytes_total()
        };
        let fd = types::Fd(self.raw());
        let res = MsgRes {
            buf,
            addr: to.unwrap_or_else(RawAddr::empty),
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: len,
            },
            // SAFETY: all-zero bytes are a valid (empty) `msghdr`.
            msg: unsafe { std::mem::zeroed() },
            _fd: self.fd.clone(),
        };
        let op = op::submit(res, false, move |r| {
            r.iov.iov_base = r.buf.stable_mut_ptr().cast(); // unused when `len` is 0
            if sending && !named {
                r.msg.msg_namelen = 0; // connected: no address
            } else {
                r.msg.msg_name = r.addr.as_mut_ptr().cast();
                r.msg.msg_namelen = r.addr.len;
            }
            r.msg.msg_iov = &mut r.iov;
            r.msg.msg_iovlen = 1;
            if sending {
                opcode::SendMsg::new(fd, &r.msg)
                    .flags(libc::MSG_NOSIGNAL as u32)
                    .build()
            } else {
                opcode::RecvMsg::new(fd, &mut r.msg).build()
            }
        });
        let op = if sending { op } else { op.receive() };
        match op.await {
            Ok((n, mut r)) => {
                let n = os_result(n);
                if let (Ok(n), false) = (&n, sending) {
                    // SAFETY: the kernel initialized the first `n` bytes.
                    unsafe { r.buf.set_init(*n) };
                }
                r.addr.len = r.msg.msg_namelen;
                (n.map(|n| (n, r.addr)), r.buf)
            }
            Err((e, r)) => (Err(e), r.buf),
        }
    }

    /// `sendmsg` of the initialized bytes to `to`.
    pub(crate) async fn send_to<B: IoBuf>(&self, buf: B, to: RawAddr) -> (io::Result<usize>, B) {
        let (r, ro) = self.msg(ReadOnly(buf), true, Some(to)).await;
        (r.map(|(n, _)| n), ro.0)
    }

    /// `sendmsg` of one datagram (possibly empty) to the connected peer.
    pub(crate) async fn send_datagram<B: IoBuf>(&self, buf: B) -> (io::Result<usize>, B) {
        let (r, ro) = self.msg(ReadOnly(buf), true, None).await;
        (r.map(|(n, _)| n), ro.0)
    }

    /// `recvmsg` into `buf`; returns the byte count and the sender.
    pub(crate) async fn recv_from<B: IoBufMut>(&self, buf: B) -> (io::Result<(usize, RawAddr)>, B) {
        self.msg(buf, false, None).await
    }

    /// Closes the fd with `IORING_OP_CLOSE` if no op still uses it;
    /// otherwise it closes when the last one completes.
    pub(crate) async fn close(self) -> io::Result<()> {
        close_shared(self.fd).await
    }
}

/// Lends an `IoBuf` to the shared message op, which never writes into a
/// buffer it sends from.
struct ReadOnly<B>(B);

// SAFETY: delegates to the inner buffer.
unsafe impl<B: IoBuf> IoBuf for ReadOnly<B> {
    fn stable_ptr(&self) -> *const u8 {
        self.0.stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.bytes_init()
    }
}

// SAFETY: the message op only writes into buffers it receives into; a
// `ReadOnly` is only ever sent from, so the pointer is never written
// through, and `set_init` is never called.
unsafe impl<B: IoBuf> IoBufMut for ReadOnly<B> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.0.stable_ptr().cast_mut()
    }
    fn bytes_total(&self) -> usize {
        self.0.bytes_init()
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

/// Connections from a multishot accept, re-armed whenever the kernel ends
/// it (an error, or the CQ overflowing). Dropping it cancels the accept;
/// connections accepted and not yet taken are closed.
pub(crate) struct MultiAccept {
    listener: Arc<OwnedFd>,
    op: Option<op::MultiShot>,
    /// The kernel refused multishot accept (before 5.19: `EINVAL`): accept
    /// one connection per op instead.
    single_shot: bool,
    /// That op, kept across waits (a wait dropped by a `select!` loses no
    /// connection), so submitted with no deadline of its own.
    single: Option<std::pin::Pin<Box<dyn Future<Output = io::Result<Socket>> + Send>>>,
    /// Bounds each wait for `single` by the deadline of the poll that
    /// waits, as a multishot accept's waits are (op invariant 8).
    single_timer: op::DeadlineTimer,
}

impl std::fmt::Debug for MultiAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiAccept")
            .field("single_shot", &self.single_shot)
            .finish_non_exhaustive()
    }
}

impl MultiAccept {
    pub(crate) fn new(listener: &Socket) -> Self {
        Self {
            listener: listener.fd.clone(),
            op: None,
            single_shot: false,
            single: None,
            single_timer: op::DeadlineTimer::default(),
        }
    }

    /// The next accepted connection, or the error the kernel reported.
    pub(crate) fn poll_accept(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<Socket>> {
        use std::task::Poll;
        loop {
            let listener = Socket {
                fd: self.listener.clone(),
            };
            if self.single_shot {
                // A deadline already past arms nothing (no connection is
                // taken from the backlog into an op nobody waits for).
                if self.single.is_none() {
                    if let Poll::Ready(e) = self.single_timer.poll(cx) {
                        return Poll::Ready(Err(e));
                    }
                }
                let accept = self.single.get_or_insert_with(|| {
                    Box::pin(async move { listener.accept().await.map(|(s, _)| s) })
                });
                return match op::without_deadline(|| accept.as_mut().poll(cx)) {
                    Poll::Ready(r) => {
                        self.single = None;
                        self.single_timer.clear();
                        Poll::Ready(r)
                    }
                    // The accept stays armed for the next wait.
                    Poll::Pending => self.single_timer.poll(cx).map(Err),
                };
            }
            let op = self
                .op
                .get_or_insert_with(|| listener.accept_multi().timed());
            match std::task::ready!(op.poll_next(cx)) {
                Some(Ok(fd)) if fd >= 0 => {
                    // SAFETY: the kernel just created `fd` for us.
                    return Poll::Ready(Ok(Socket::from_owned(unsafe {
                        OwnedFd::from_raw_fd(fd)
                    })));
                }
                Some(Ok(err)) if err == -libc::EINVAL && !self.single_shot => {
                    // No multishot accept on this kernel: fall back for good
                    // (a listener that is not listening fails there too).
                    self.op = None;
                    self.single_shot = true;
                }
                Some(Ok(err)) => return Poll::Ready(Err(io::Error::from_raw_os_error(-err))),
                // A `native::timeout` ran out: the op stays armed (op
                // invariant 8), so no connection is lost.
                Some(Err(e)) if e.kind() == io::ErrorKind::TimedOut => {
                    return Poll::Ready(Err(e));
                }
                Some(Err(e)) => {
                    self.op = None;
                    return Poll::Ready(Err(e));
                }
                None => self.op = None, // ended: arm a new one
            }
        }
    }
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
