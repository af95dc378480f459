//! Tokio's interest-level calls (`ready`, `try_io`, `async_io`) on the
//! compat types, over the readiness engine's two directions.
//!
//! The types are Tokio's own (`tokio::io::Interest`, `tokio::io::Ready`),
//! so code ported from `tokio::net` names them unchanged. Read and write
//! readiness are waited on; `Interest::PRIORITY` and `Interest::ERROR` have
//! no direction here and get an `Unsupported` error. As with the lane's
//! `try_read`, `try_io` makes its syscall without first asking the cached
//! readiness (Tokio answers `WouldBlock` at once when its cache says not
//! ready); a `WouldBlock` from it clears the directions named, each only if
//! no event came since (readiness invariant 2).

use std::io;
use std::task::{Context, Poll, ready};

use tokio::io::{Interest, Ready};

use super::readiness::{Direction, Readiness, Tick};

/// Which directions `interest` names (read, write).
pub(super) fn directions(interest: Interest) -> io::Result<(bool, bool)> {
    if interest.is_priority() || interest.is_error() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "ringlane's compat lane waits on read and write readiness only: Interest::PRIORITY and Interest::ERROR are not supported",
        ));
    }
    Ok((interest.is_readable(), interest.is_writable()))
}

/// The ticks of the directions a call was made in (invariant 2); also
/// what an `AsyncFd` guard reports and clears.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Ticks {
    pub(super) read: Option<Tick>,
    pub(super) write: Option<Tick>,
}

impl Ticks {
    /// One direction's tick.
    pub(super) fn one(dir: Direction, tick: Tick) -> Self {
        match dir {
            Direction::Read => Ticks {
                read: Some(tick),
                write: None,
            },
            Direction::Write => Ticks {
                read: None,
                write: Some(tick),
            },
        }
    }

    /// The directions held, as Tokio's `Ready`, with `READ_CLOSED`/
    /// `WRITE_CLOSED` for those the kernel says are closed.
    pub(super) fn ready(self, r: &Readiness) -> Ready {
        let mut ready = Ready::EMPTY;
        let held = [
            (
                self.read,
                Direction::Read,
                Ready::READABLE,
                Ready::READ_CLOSED,
            ),
            (
                self.write,
                Direction::Write,
                Ready::WRITABLE,
                Ready::WRITE_CLOSED,
            ),
        ];
        for (_, dir, is, closed) in held.into_iter().filter(|h| h.0.is_some()) {
            ready |= is;
            if r.learn_closed(dir) {
                ready |= closed;
            }
        }
        ready
    }

    /// Only the directions whose `READABLE`/`WRITABLE` bit `ready` has
    /// (a closed flag alone clears nothing, as in Tokio, whose
    /// `is_readable()` also answers `true` for `READ_CLOSED`).
    pub(super) fn matching(self, ready: Ready) -> Self {
        Ticks {
            read: self
                .read
                .filter(|_| (ready - Ready::READ_CLOSED).is_readable()),
            write: self
                .write
                .filter(|_| (ready - Ready::WRITE_CLOSED).is_writable()),
        }
    }

    /// Clears the named directions after a `WouldBlock`. Returns whether
    /// one stays ready for good (closed): waiting again would not wait.
    pub(super) fn clear(self, r: &Readiness) -> bool {
        let read = self.read.is_some_and(|t| r.clear(Direction::Read, t));
        let write = self.write.is_some_and(|t| r.clear(Direction::Write, t));
        read || write
    }
}

/// Ready when any direction `interest` names is: the ticks the ready ones
/// are in ([`Ticks::ready`] gives Tokio's `Ready`, closed flags included).
/// Registers the waker on every direction named that is not.
pub(super) fn poll_interest(
    r: &Readiness,
    interest: Interest,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Ticks>> {
    let (read, write) = directions(interest)?;
    let mut got = Ticks::default();
    let named = [(read, Direction::Read), (write, Direction::Write)];
    // An `AsyncFd` registered for one direction waits on that one only;
    // one named for none of the directions asked fails (`poll_wait_ready`).
    let some_waitable = named.iter().any(|&(n, dir)| n && r.can_wait(dir));
    let waited = named
        .into_iter()
        .filter(|&(n, dir)| n && (!some_waitable || r.can_wait(dir)));
    for (_, dir) in waited {
        if let Poll::Ready(tick) = r.poll_wait_ready(dir, cx) {
            let tick = Some(tick?);
            match dir {
                Direction::Read => got.read = tick,
                Direction::Write => got.write = tick,
            }
        }
    }
    if got.read.is_none() && got.write.is_none() {
        Poll::Pending
    } else {
        Poll::Ready(Ok(got))
    }
}

/// Tokio's `ready(interest)`: waits until a direction named is ready.
pub(crate) async fn ready(r: &Readiness, interest: Interest) -> io::Result<Ready> {
    r.wait(|cx| poll_interest(r, interest, cx).map_ok(|ticks| ticks.ready(r)))
        .await
}

/// Tokio's `try_io(interest, f)`: runs `f` once, now.
pub(crate) fn try_io<R>(
    r: &Readiness,
    interest: Interest,
    f: impl FnOnce() -> io::Result<R>,
) -> io::Result<R> {
    let (read, write) = directions(interest)?;
    let ticks = Ticks {
        read: read.then(|| r.tick(Direction::Read)),
        write: write.then(|| r.tick(Direction::Write)),
    };
    let res = f();
    if matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        let _ = ticks.clear(r);
    }
    res
}

/// Tokio's `async_io(interest, f)`: runs `f` whenever a direction named is
/// ready, until it returns anything but `WouldBlock`.
pub(crate) async fn async_io<R>(
    r: &Readiness,
    interest: Interest,
    mut f: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    r.wait(|cx| {
        loop {
            let ticks = ready!(poll_interest(r, interest, cx))?;
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if ticks.clear(r) {
                        // Closed yet `WouldBlock`: yield rather than spin
                        // in this poll (as `Readiness::poll_io` does).
                        crate::executor::coop::yielded();
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                res => return Poll::Ready(res),
            }
        }
    })
    .await
}

/// `ready`, `try_io` and `async_io` on a compat type, as Tokio's, with
/// `$readiness` the expression that reaches its `Readiness` from `self`.
macro_rules! interest_calls {
    ($ty:ty, |$s:ident| $readiness:expr) => {
        impl $ty {
            /// Waits until the socket is ready for any of `interest`'s
            /// directions and returns which (Tokio's `ready`): with
            /// `READ_CLOSED`/`WRITE_CLOSED` for a ready direction the
            /// kernel says is closed (the peer shut down, a reset), asked
            /// with `poll(2)` if no event said so yet. Usually followed by `try_read`/`try_write`
            /// or [`try_io`](Self::try_io), whose `WouldBlock` makes the
            /// next call wait.
            ///
            /// # Errors
            ///
            /// `Unsupported` for `Interest::PRIORITY` or `Interest::ERROR`;
            /// a failed poll (a broken ring, a runtime shut down).
            ///
            /// # Examples
            ///
            /// Shown on a Unix stream; the TCP, UDP and Unix datagram types
            /// work alike.
            ///
            /// ```
            /// use tokio::io::Interest;
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     let writable = a.ready(Interest::WRITABLE).await?.is_writable();
            ///     b.try_write(b"!")?;
            ///     let ready = a.ready(Interest::READABLE | Interest::WRITABLE).await?;
            ///     Ok::<_, std::io::Error>((writable, ready.is_readable()))
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (true, true));
            /// ```
            pub async fn ready(
                &self,
                interest: tokio::io::Interest,
            ) -> io::Result<tokio::io::Ready> {
                let $s = self;
                super::interest::ready($readiness, interest).await
            }

            /// Runs `f` (a nonblocking syscall on the socket) once, now
            /// (Tokio's `try_io`); its `WouldBlock` clears `interest`'s
            /// directions, so that the next wait waits.
            ///
            /// # Errors
            ///
            /// `f`'s; `Unsupported` for `Interest::PRIORITY` or
            /// `Interest::ERROR`.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::os::fd::AsRawFd;
            /// use tokio::io::Interest;
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// b.try_write(b"hi").unwrap();
            /// let mut buf = [0u8; 4];
            /// // SAFETY: `buf` is valid for writes of its length.
            /// let n = a.try_io(Interest::READABLE, || {
            ///     match unsafe { libc::read(a.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } {
            ///         -1 => Err(std::io::Error::last_os_error()),
            ///         n => Ok(n as usize),
            ///     }
            /// });
            /// assert_eq!(n.unwrap(), 2);
            /// ```
            pub fn try_io<R>(
                &self,
                interest: tokio::io::Interest,
                f: impl FnOnce() -> io::Result<R>,
            ) -> io::Result<R> {
                let $s = self;
                super::interest::try_io($readiness, interest, f)
            }

            /// Runs `f` (a nonblocking syscall on the socket) whenever a
            /// direction of `interest` is ready, until it returns anything
            /// but `WouldBlock` (Tokio's `async_io`).
            ///
            /// # Errors
            ///
            /// `f`'s; `Unsupported` for `Interest::PRIORITY` or
            /// `Interest::ERROR`; a failed poll.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::os::fd::AsRawFd;
            /// use tokio::io::Interest;
            /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
            /// let (a, b) = ringlane::compat::UnixStream::pair().unwrap();
            /// let j = rt.handle().spawn_pinned(0, async move {
            ///     let mut buf = [0u8; 4];
            ///     let read = a.async_io(Interest::READABLE, || {
            ///         // SAFETY: `buf` is valid for writes of its length.
            ///         match unsafe { libc::read(a.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } {
            ///             -1 => Err(std::io::Error::last_os_error()),
            ///             n => Ok(n as usize),
            ///         }
            ///     });
            ///     let write = async { b.try_write(b"late") };
            ///     let (n, _) = futures_util::future::join(read, write).await;
            ///     n
            /// }).unwrap();
            /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 4);
            /// ```
            pub async fn async_io<R>(
                &self,
                interest: tokio::io::Interest,
                f: impl FnMut() -> io::Result<R>,
            ) -> io::Result<R> {
                let $s = self;
                super::interest::async_io($readiness, interest, f).await
            }
        }
    };
}

interest_calls!(super::TcpStream, |s| {
    super::stream::sealed::Sealed::readiness(s)
});
interest_calls!(super::UnixStream, |s| {
    super::stream::sealed::Sealed::readiness(s)
});
interest_calls!(super::UdpSocket, |s| s.io.readiness());
interest_calls!(super::UnixDatagram, |s| s.io.readiness());

impl<T: std::os::fd::AsRawFd> super::AsyncFd<T> {
    /// Runs `f` on the wrapped value once, now (Tokio's `AsyncFd::try_io`);
    /// its `WouldBlock` clears `interest`'s directions, so that the next
    /// wait waits. Unlike Tokio's, `f` runs even when no event has said the
    /// fd is ready (the lane's syscall-first rule).
    ///
    /// # Errors
    ///
    /// `f`'s; `Unsupported` for `Interest::PRIORITY` or `Interest::ERROR`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use tokio::io::Interest;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    /// let r = fd.try_io(Interest::READABLE, |s| (&*s).read(&mut [0u8; 4]));
    /// assert_eq!(r.unwrap_err().kind(), ErrorKind::WouldBlock);
    /// ```
    pub fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        try_io(self.readiness(), interest, || f(self.get_ref()))
    }

    /// [`try_io`](Self::try_io) lending `&mut T` (Tokio's `try_io_mut`).
    ///
    /// # Errors
    ///
    /// As [`try_io`](Self::try_io).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use tokio::io::Interest;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    /// assert_eq!(fd.try_io_mut(Interest::WRITABLE, |s| s.write(b"hi")).unwrap(), 2);
    /// ```
    pub fn try_io_mut<R>(
        &mut self,
        interest: Interest,
        f: impl FnOnce(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let (r, inner) = self.parts_mut();
        try_io(r, interest, || f(inner))
    }

    /// Runs `f` on the wrapped value whenever a direction of `interest` is
    /// ready, until it returns anything but `WouldBlock` (Tokio's
    /// `AsyncFd::async_io`).
    ///
    /// # Errors
    ///
    /// `f`'s; `Unsupported` for `Interest::PRIORITY` or `Interest::ERROR`;
    /// a failed poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use tokio::io::Interest;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a)?;
    ///     let mut buf = [0u8; 4];
    ///     fd.async_io(Interest::READABLE, |s| (&*s).read(&mut buf)).await
    /// }).unwrap();
    /// std::io::Write::write_all(&mut b, b"abc").unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 3);
    /// ```
    pub async fn async_io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        async_io(self.readiness(), interest, || f(self.get_ref())).await
    }

    /// [`async_io`](Self::async_io) lending `&mut T` (Tokio's
    /// `async_io_mut`).
    ///
    /// # Errors
    ///
    /// As [`async_io`](Self::async_io).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Read;
    /// use tokio::io::Interest;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a)?;
    ///     let mut buf = [0u8; 4];
    ///     fd.async_io_mut(Interest::READABLE, |s| s.read(&mut buf)).await
    /// }).unwrap();
    /// std::io::Write::write_all(&mut b, b"ab").unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 2);
    /// ```
    pub async fn async_io_mut<R>(
        &mut self,
        interest: Interest,
        mut f: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let (r, inner) = self.parts_mut();
        async_io(r, interest, || f(inner)).await
    }
}
