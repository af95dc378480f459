//! A `File`'s reads and writes: [`RwFuture`], the op future they share.
//!
//! A read or write is a plain function that checks its input, prepares
//! its op (the boxed cell, the SQE) and returns the op inside an
//! [`RwFuture`]; nothing is submitted before the first poll, as with any
//! op. It is not an `async fn` chain (`read_at` → `read_inner` → `rw_op` →
//! the op): each layer of such a chain keeps its own copy of the arguments
//! and moves the op into its state, and at 32 reads in flight those moves
//! of the task's future were a sixth of ringlane's user time per read.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use io_uring::{opcode, types};

use super::file::{CURRENT_POSITION, File};
use super::fixed::Keep;
use crate::native::{IoBuf, IoBufMut, os_result};
use crate::op::{Inline, Op};

/// What a read or write op owns while in flight (op invariant 2), and
/// what its future does with the buffer at the end.
pub(super) struct Rw<B> {
    buf: B,
    _file: Keep,
    /// A read's: tells the buffer that the kernel initialized its bytes up
    /// to `start + n` (`start` is the second field).
    init: Option<(SetInit<B>, usize)>,
}

/// A read or write on a `File`: its op, or the error that refused it
/// before any submission. Resolves to the byte count and the buffer.
///
/// Two words, as its op (the rest is in the op's cell; the error case is
/// boxed): a caller's `read_at(..).await` moves it in registers.
pub(super) struct RwFuture<B: Send + 'static> {
    state: RwState<B>,
}

enum RwState<B: Send + 'static> {
    Op(Op<Rw<B>>),
    /// Refused before its op was made; taken by the poll that reports it.
    Refused(Option<Box<(io::Error, B)>>),
}

/// `IoBufMut::set_init` for a buffer type.
///
/// Safety: the first `end` bytes of the buffer are initialized.
type SetInit<B> = unsafe fn(&mut B, usize);

/// # Safety
///
/// The first `end` bytes of `buf` are initialized.
unsafe fn set_init<B: IoBufMut>(buf: &mut B, end: usize) {
    // SAFETY: the caller's contract.
    unsafe { buf.set_init(end) }
}

// The buffer is never pinned (it is moved out when the op resolves), and
// `Op` is `Unpin`: so is this future, whatever `B` is.
impl<B: Send + 'static> Unpin for RwFuture<B> {}

impl<B: Send + 'static> RwFuture<B> {
    /// A future that reports `e` (and gives `buf` back) at its first poll.
    pub(super) fn refused(e: io::Error, buf: B) -> Self {
        RwFuture {
            state: RwState::Refused(Some(Box::new((e, buf)))),
        }
    }
}

impl<B: Send + 'static> Future for RwFuture<B> {
    type Output = (io::Result<usize>, B);

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let op = match &mut this.state {
            RwState::Op(op) => op,
            RwState::Refused(refused) => {
                let refused = refused.take().expect("RwFuture polled after completion");
                let (e, buf) = *refused;
                return Poll::Ready((Err(e), buf));
            }
        };
        // The buffer moves once, from the op's cell to the output.
        op.poll_map(cx, move |result, rw| {
            let n = result.and_then(os_result);
            let Rw { mut buf, init, .. } = rw;
            if let (Ok(n), Some((set_init, start))) = (&n, init) {
                // SAFETY: the bytes up to `start` were initialized before
                // (the callers pass 0 or what earlier reads filled) and the
                // kernel initialized the next `n`.
                unsafe { set_init(&mut buf, start + n) };
            }
            (n, buf)
        })
    }
}

impl File {
    /// One read or write op on this file's fd: validates `offset` and the
    /// buffer `len`, keeps the fd alive in the op's resources, and gives the
    /// buffer back with the result. `owner`: the caller alone reads the
    /// file or moves its position (`fs::read`'s private file, an
    /// `AsyncFile`, whose op is dropped only with it); else an offset needs
    /// the file to have positions (`ESPIPE` otherwise, as `pread`'s, learnt
    /// once), and a read at the position waits to go last in its batch.
    #[inline(always)]
    pub(super) fn rw_op<B, F>(
        &self,
        buf: B,
        (offset, len, read, owner): (u64, usize, bool, bool),
        init: Option<(SetInit<B>, usize)>,
        build: F,
    ) -> RwFuture<B>
    where
        B: Send + 'static,
        F: FnOnce(types::Fd, &mut B, u32) -> io_uring::squeue::Entry + Send + 'static,
    {
        let invalid = |why| io::Error::new(io::ErrorKind::InvalidInput, why);
        if offset != CURRENT_POSITION && offset > i64::MAX as u64 {
            return RwFuture::refused(invalid("offset beyond i64::MAX"), buf);
        }
        if len == 0 {
            return RwFuture::refused(invalid("zero-length buffer"), buf);
        }
        if offset != CURRENT_POSITION && !owner {
            if let Err(e) = self.seekable.check(self.fd.as_raw_fd()) {
                return RwFuture::refused(e, buf);
            }
        }
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let rw = Rw {
            buf,
            _file: self.keep(),
            init,
        };
        let op = self.submit(rw, move |fd, rw| build(fd, &mut rw.buf, len));
        // A read at the current position (of a stream: a pipe, a FIFO; or
        // of a file, whose concurrent ops were never ordered) goes last in
        // its batch, and is withdrawn if dropped before the kernel saw it,
        // as a receive is; unless it reads a regular file (or one known to
        // have positions) for its owner, who would not read on from a
        // position a dropped read moved. A positioned op, or such a read,
        // on a page-cached file completes during its submission: tried
        // inline (op invariant 13).
        debug_assert!(
            !owner || offset == CURRENT_POSITION || self.seekable.regular_or_seekable(),
            "an owner's offsets skip the positions check only on a regular file"
        );
        let regular = || owner && self.seekable.regular_or_seekable();
        let op = match (read, offset == CURRENT_POSITION) {
            (true, true) if !regular() => op.receive(),
            (true, _) => op.inline(Inline::Read),
            (false, false) => op.inline(Inline::Write),
            (false, true) => op,
        };
        RwFuture {
            state: RwState::Op(op),
        }
    }

    /// Reads into `buf[start..capacity]` from `offset`.
    #[inline(always)]
    pub(super) fn read_inner<B: IoBufMut>(&self, buf: B, offset: u64, start: usize) -> RwFuture<B> {
        self.read_inner_as(buf, (offset, false), start)
    }

    /// As `read_inner`; `owner` as `rw_op`'s (`fs::read`'s reads of its
    /// private file from its start, where a stream-like regular file
    /// ignores the offsets).
    #[inline(always)]
    pub(super) fn read_inner_as<B: IoBufMut>(
        &self,
        buf: B,
        (offset, owner): (u64, bool),
        start: usize,
    ) -> RwFuture<B> {
        let len = buf.bytes_total().saturating_sub(start);
        self.rw_op(
            buf,
            (offset, len, true, owner),
            Some((set_init::<B>, start)),
            move |fd, buf: &mut B, len| {
                // SAFETY: `start < bytes_total` (`len` is non-zero), so the
                // pointer stays inside the buffer.
                let ptr = unsafe { buf.stable_mut_ptr().add(start) };
                opcode::Read::new(fd, ptr, len).offset(offset).build()
            },
        )
    }

    /// Writes `buf[start..init]` at `offset`.
    pub(super) fn write_inner<B: IoBuf>(&self, buf: B, offset: u64, start: usize) -> RwFuture<B> {
        let len = buf.bytes_init().saturating_sub(start);
        self.rw_op(
            buf,
            (offset, len, false, false),
            None,
            move |fd, buf: &mut B, len| {
                // SAFETY: `start < bytes_init` (`len` is non-zero).
                let ptr = unsafe { buf.stable_ptr().add(start) };
                opcode::Write::new(fd, ptr, len).offset(offset).build()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::RwFuture;

    /// A read's or write's future is its op's two words (the refusal is
    /// boxed, the buffer's `set_init` lives in the cell): a caller's
    /// `read_at(..).await` gets it in registers, not copied piecewise
    /// through the stack.
    #[test]
    fn a_read_future_is_two_words_whatever_its_buffer() {
        let two_words = 2 * std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<RwFuture<Vec<u8>>>(), two_words);
        assert_eq!(std::mem::size_of::<RwFuture<Box<[u8]>>>(), two_words);
        assert_eq!(std::mem::size_of::<RwFuture<[u8; 512]>>(), two_words);
    }
}
