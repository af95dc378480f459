//! More of Tokio's `AsyncFd` surface: the `_mut` waits and their guard,
//! the `with_interest` constructors, and `get_inner()` and `ready()` on
//! the guards. (The interest-level calls are in `interest.rs`.)
//!
//! Rule: a guard's `clear_ready` forgets only the readiness of the tick
//! it was made in (readiness invariant 2), whichever guard type it is.

use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, ready};

use tokio::io::{Interest, Ready};

use super::async_fd::{AsyncFd, AsyncFdReadyGuard, AsyncFdRegisterError, TryIoError};
use super::interest::Ticks;
use super::readiness::Direction;

impl<T: AsRawFd> AsyncFd<T> {
    /// Wraps `inner` for the directions `interest` names only (Tokio's
    /// `with_interest`): a timerfd or an inotify fd that is only read, an
    /// eventfd that is only written. A wait on a direction not named fails
    /// with `InvalidInput` (Tokio's would never see that direction ready);
    /// an [`async_io`](Self::async_io) asking for both directions waits on
    /// the registered one.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new); `Unsupported` for an interest naming
    /// `PRIORITY` or `ERROR` (only read and write readiness are waited
    /// on here). `inner` is dropped: [`try_with_interest`](Self::try_with_interest)
    /// gives it back.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::Interest;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut &b, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::with_interest(a, Interest::READABLE).unwrap();
    ///     let readable = fd.readable().await.is_ok();
    ///     let writable = fd.writable().await.map(|_| ()).unwrap_err().kind();
    ///     (readable, writable)
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (true, std::io::ErrorKind::InvalidInput));
    /// ```
    pub fn with_interest(inner: T, interest: Interest) -> io::Result<Self> {
        Self::try_with_interest(inner, interest).map_err(|e| e.into_parts().1)
    }

    /// As [`with_interest`](Self::with_interest), giving `inner` back with
    /// the error.
    ///
    /// # Errors
    ///
    /// As [`with_interest`](Self::with_interest).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::Interest;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let refused = ringlane::compat::AsyncFd::try_with_interest(a, Interest::PRIORITY);
    /// let (back, e) = refused.unwrap_err().into_parts();
    /// assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    /// assert!(back.peer_addr().is_ok(), "the stream is given back");
    /// ```
    pub fn try_with_interest(
        inner: T,
        interest: Interest,
    ) -> Result<Self, AsyncFdRegisterError<T>> {
        Self::try_with(inner, interest)
    }

    /// As [`try_with_interest`](Self::try_with_interest), under the name
    /// Tokio 1.54 gave it (`with_interest` is deprecated there), so ported
    /// code compiles unchanged.
    ///
    /// # Safety
    ///
    /// Nothing beyond [`new`](Self::new)'s (see [`register`](Self::register)).
    ///
    /// # Errors
    ///
    /// As [`with_interest`](Self::with_interest).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// // SAFETY: `a` owns its fd for as long as the `AsyncFd` lives.
    /// let fd = unsafe {
    ///     ringlane::compat::AsyncFd::register_with_interest(a, tokio::io::Interest::WRITABLE)
    /// }?;
    /// drop(fd);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn register_with_interest(
        inner: T,
        interest: Interest,
    ) -> Result<Self, AsyncFdRegisterError<T>> {
        Self::try_with(inner, interest)
    }

    /// Polls for read readiness, giving a guard that lends `&mut T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut b, b"m").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut buf = [0u8; 4];
    ///     // As inside a hand-written `poll_read`: the I/O runs in the poll.
    ///     std::future::poll_fn(|cx| {
    ///         let mut guard = std::task::ready!(fd.poll_read_ready_mut(cx)).unwrap();
    ///         match guard.try_io(|i| std::io::Read::read(i.get_mut(), &mut buf)) {
    ///             Ok(r) => std::task::Poll::Ready(r.unwrap()),
    ///             Err(_would_block) => std::task::Poll::Pending, // woken by the next report
    ///         }
    ///     }).await
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub fn poll_read_ready_mut<'a>(
        &'a mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyMutGuard<'a, T>>> {
        self.poll_ready_mut(Direction::Read, cx)
    }

    /// Polls for write readiness, giving a guard that lends `&mut T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     std::future::poll_fn(|cx| {
    ///         let mut guard = std::task::ready!(fd.poll_write_ready_mut(cx)).unwrap();
    ///         match guard.try_io(|i| std::io::Write::write(i.get_mut(), b"w")) {
    ///             Ok(r) => std::task::Poll::Ready(r.unwrap()),
    ///             Err(_would_block) => std::task::Poll::Pending,
    ///         }
    ///     }).await
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub fn poll_write_ready_mut<'a>(
        &'a mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyMutGuard<'a, T>>> {
        self.poll_ready_mut(Direction::Write, cx)
    }

    /// Waits for read readiness, giving a guard that lends `&mut T` (for
    /// I/O types whose `Read` takes `&mut self`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut b, b"abc").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut buf = [0u8; 8];
    ///     loop {
    ///         let mut guard = fd.readable_mut().await.unwrap();
    ///         match guard.try_io(|i| std::io::Read::read(i.get_mut(), &mut buf)) {
    ///             Ok(r) => return r.unwrap(),
    ///             Err(_would_block) => continue,
    ///         }
    ///     }
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 3);
    /// ```
    pub async fn readable_mut(&mut self) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        self.wait_mut(Direction::Read).await
    }

    /// Waits for write readiness, giving a guard that lends `&mut T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.writable_mut().await.unwrap();
    ///     guard.try_io(|i| std::io::Write::write(i.get_mut(), b"out")).unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 3);
    /// ```
    pub async fn writable_mut(&mut self) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        self.wait_mut(Direction::Write).await
    }

    /// One tagged wait for `dir`, then a guard holding `&mut self`.
    async fn wait_mut(&mut self, dir: Direction) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        let ticks = {
            let this = &*self;
            this.readiness()
                .wait(|cx| this.poll_ready(dir, cx).map_ok(|g| g.ticks()))
                .await?
        };
        Ok(AsyncFdReadyMutGuard { fd: self, ticks })
    }

    fn poll_ready_mut<'a>(
        &'a mut self,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyMutGuard<'a, T>>> {
        let ticks = ready!(self.poll_ready(dir, cx))?.ticks();
        Poll::Ready(Ok(AsyncFdReadyMutGuard { fd: self, ticks }))
    }
}

impl<T: AsRawFd> AsyncFdReadyGuard<'_, T> {
    /// The wrapped I/O object.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let guard = fd.writable().await.unwrap();
    ///     guard.get_inner().local_addr().unwrap().is_unnamed()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub fn get_inner(&self) -> &T {
        self.get_ref().get_ref()
    }

    /// What the guard reports ready (Tokio's `ready()`): `READABLE`,
    /// `WRITABLE` or both (a guard of [`AsyncFd::ready`]), each with
    /// `READ_CLOSED`/`WRITE_CLOSED` once the kernel says the direction is
    /// closed (the peer shut down or reset). Nothing once the guard was
    /// cleared ([`clear_ready`](Self::clear_ready), a `WouldBlock` in
    /// [`try_io`](Self::try_io)); a direction cleared by
    /// `clear_ready_matching` drops out. Unlike Tokio's snapshot, the
    /// closed flags are asked when called (`poll(2)` if no event said so
    /// yet, as the sockets' `ready()` does), so a later call may add one.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{Interest, Ready};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// drop(b); // the peer is gone: end of file
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     fd.readable().await.unwrap().ready()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), Ready::READABLE | Ready::READ_CLOSED);
    /// ```
    pub fn ready(&self) -> Ready {
        self.ticks.ready(self.fd.readiness())
    }
}

/// Proof that an [`AsyncFd`] looked ready, lending it mutably (from
/// [`AsyncFd::readable_mut`], [`AsyncFd::writable_mut`] and
/// [`AsyncFd::ready_mut`]); clear it when the I/O says `WouldBlock`.
///
/// # Examples
///
/// ```
/// use ringlane::compat::{AsyncFd, AsyncFdReadyMutGuard};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let mut fd = AsyncFd::new(a).unwrap();
///     let mut guard: AsyncFdReadyMutGuard<'_, _> = fd.writable_mut().await.unwrap();
///     guard.try_io(|i| std::io::Write::write(i.get_mut(), b"m")).unwrap().is_ok()
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap());
/// ```
#[derive(Debug)]
#[must_use = "choose whether to clear the readiness by calling a method on the guard"]
pub struct AsyncFdReadyMutGuard<'a, T: AsRawFd> {
    pub(super) fd: &'a mut AsyncFd<T>,
    /// As [`AsyncFdReadyGuard`]'s.
    pub(super) ticks: Ticks,
}

impl<T: AsRawFd> AsyncFdReadyMutGuard<'_, T> {
    /// Forgets the readiness this guard saw: the next wait waits for the
    /// kernel's next report. Call it only once the I/O said `WouldBlock`
    /// (as with Tokio's edge-triggered reports, a direction still ready
    /// sends no new report).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut b, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.readable_mut().await.unwrap();
    ///     let mut byte = [0u8; 1];
    ///     std::io::Read::read(guard.get_inner_mut(), &mut byte).unwrap(); // all there was
    ///     guard.clear_ready();
    ///     let wait = fd.readable_mut();
    ///     ringlane::time::timeout(std::time::Duration::from_millis(20), wait).await.is_err()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap(), "nothing more to read: the wait times out");
    /// ```
    pub fn clear_ready(&mut self) {
        self.ticks.clear(self.fd.readiness());
        self.ticks = Ticks::default();
    }

    /// Keeps the readiness (the default when the guard is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     fd.writable_mut().await.unwrap().retain_ready();
    ///     fd.writable_mut().await.is_ok()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub fn retain_ready(&mut self) {}

    /// Runs `f` on the `AsyncFd`; a `WouldBlock` from it clears the
    /// readiness and comes back as [`TryIoError`].
    ///
    /// # Errors
    ///
    /// [`TryIoError`] if `f` would have blocked.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.writable_mut().await.unwrap();
    ///     let mut buf = [0u8; 4];
    ///     // Nothing to read: WouldBlock becomes a TryIoError.
    ///     guard.try_io(|i| std::io::Read::read(i.get_mut(), &mut buf)).is_err()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub fn try_io<R>(
        &mut self,
        f: impl FnOnce(&mut AsyncFd<T>) -> io::Result<R>,
    ) -> Result<io::Result<R>, TryIoError> {
        match f(self.fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_ready();
                Err(TryIoError::new())
            }
            r => Ok(r),
        }
    }

    /// The [`AsyncFd`] this guard is for.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let guard = fd.writable_mut().await.unwrap();
    ///     guard.get_ref().get_ref().local_addr().is_ok()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub fn get_ref(&self) -> &AsyncFd<T> {
        self.fd
    }

    /// The [`AsyncFd`] this guard is for, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.writable_mut().await.unwrap();
    ///     std::io::Write::write(guard.get_mut().get_mut(), b"x").unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub fn get_mut(&mut self) -> &mut AsyncFd<T> {
        self.fd
    }

    /// The wrapped I/O object.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let guard = fd.writable_mut().await.unwrap();
    ///     guard.get_inner().local_addr().unwrap().is_unnamed()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub fn get_inner(&self) -> &T {
        self.fd.get_ref()
    }

    /// The wrapped I/O object, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.writable_mut().await.unwrap();
    ///     std::io::Write::write(guard.get_inner_mut(), b"y").unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub fn get_inner_mut(&mut self) -> &mut T {
        self.fd.get_mut()
    }

    /// What the guard reports ready, as [`AsyncFdReadyGuard::ready`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{Interest, Ready};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     fd.writable_mut().await.unwrap().ready()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), Ready::WRITABLE);
    /// ```
    pub fn ready(&self) -> Ready {
        self.ticks.ready(self.fd.readiness())
    }
}
