//! `AsyncFd`: readiness for any fd, shaped like `tokio::io::unix::AsyncFd`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::readiness::{Direction, Readiness};

/// An fd (owned through `T`) with readiness driven by the shard's ring.
///
/// As with Tokio's `AsyncFd`, the fd must be in nonblocking mode: the
/// readiness is only a hint, and the I/O done after it must return
/// `WouldBlock` rather than block the shard.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use ringlane::compat::AsyncFd;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let fd = AsyncFd::new(a).unwrap();
///     let mut guard = fd.writable().await.unwrap();
///     guard.try_io(|inner| std::io::Write::write(&mut inner.get_ref(), b"ok")).unwrap().unwrap()
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), 2);
/// let mut got = [0u8; 2];
/// b.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"ok");
/// ```
#[derive(Debug)]
pub struct AsyncFd<T: AsRawFd> {
    readiness: Readiness,
    inner: Option<T>,
}

impl<T: AsRawFd> AsyncFd<T> {
    /// Wraps `inner`. Nothing is registered until the first wait.
    ///
    /// # Errors
    ///
    /// Never today; the `Result` matches Tokio's signature.
    ///
    /// # Examples
    ///
    /// See [`AsyncFd`].
    pub fn new(inner: T) -> io::Result<Self> {
        Ok(Self::with_home(inner, None))
    }

    /// As `new`, with the readiness engine's home shard given (an accepted
    /// socket inherits its listener's).
    pub(crate) fn with_home(inner: T, home: Option<Arc<crate::mailbox::Remote>>) -> Self {
        Self {
            readiness: Readiness::new(inner.as_raw_fd(), home),
            inner: Some(inner),
        }
    }

    /// The wrapped value.
    ///
    /// # Examples
    ///
    /// See [`AsyncFd`].
    pub fn get_ref(&self) -> &T {
        self.inner.as_ref().expect("present until into_inner")
    }

    /// The wrapped value, mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    /// fd.get_mut().set_nonblocking(true).unwrap();
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.as_mut().expect("present until into_inner")
    }

    /// Gives the value back; any wait armed in the kernel is cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    /// let _a: std::os::unix::net::UnixStream = fd.into_inner();
    /// ```
    pub fn into_inner(mut self) -> T {
        self.inner.take().expect("present until into_inner")
    }

    pub(crate) fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    fn poll_ready(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        ready!(self.readiness.poll_ready(dir, cx))?;
        Poll::Ready(Ok(AsyncFdReadyGuard { fd: self, dir }))
    }

    /// Polls for read readiness.
    ///
    /// # Examples
    ///
    /// See [`readable`](Self::readable).
    pub fn poll_read_ready<'a>(
        &'a self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'a, T>>> {
        self.poll_ready(Direction::Read, cx)
    }

    /// Polls for write readiness.
    ///
    /// # Examples
    ///
    /// See [`writable`](Self::writable).
    pub fn poll_write_ready<'a>(
        &'a self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'a, T>>> {
        self.poll_ready(Direction::Write, cx)
    }

    /// Waits until the fd may be readable.
    ///
    /// # Errors
    ///
    /// If the wait cannot be armed (polled off a shard) or the kernel
    /// fails it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut buf = [0u8; 8];
    ///     loop {
    ///         let mut guard = fd.readable().await.unwrap();
    ///         match guard.try_io(|inner| std::io::Read::read(&mut inner.get_ref(), &mut buf)) {
    ///             Ok(n) => return n.unwrap(),
    ///             Err(_would_block) => continue,
    ///         }
    ///     }
    /// }).unwrap();
    /// b.write_all(b"hi").unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 2);
    /// ```
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        std::future::poll_fn(|cx| self.poll_ready(Direction::Read, cx)).await
    }

    /// Waits until the fd may be writable.
    ///
    /// # Errors
    ///
    /// As [`readable`](Self::readable).
    ///
    /// # Examples
    ///
    /// See [`AsyncFd`].
    pub async fn writable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        std::future::poll_fn(|cx| self.poll_ready(Direction::Write, cx)).await
    }
}

impl<T: AsRawFd> AsRawFd for AsyncFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_raw_fd()
    }
}

/// Proof that an [`AsyncFd`] looked ready; clear it when the I/O says
/// `WouldBlock`.
///
/// # Examples
///
/// See [`AsyncFd::readable`].
#[derive(Debug)]
pub struct AsyncFdReadyGuard<'a, T: AsRawFd> {
    fd: &'a AsyncFd<T>,
    dir: Direction,
}

/// The I/O in [`AsyncFdReadyGuard::try_io`] would have blocked; the
/// readiness was cleared, wait again.
///
/// # Examples
///
/// See [`AsyncFd::readable`].
#[derive(Debug)]
pub struct TryIoError(());

impl<T: AsRawFd> AsyncFdReadyGuard<'_, T> {
    /// Forgets the readiness: the next wait arms a poll in the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     fd.readable().await.unwrap().clear_ready(); // starts ready: syscall first
    ///     ringlane::time::timeout(std::time::Duration::from_millis(20), fd.readable()).await.is_err()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap(), "nothing to read: the wait times out");
    /// ```
    pub fn clear_ready(&mut self) {
        self.fd.readiness.clear(self.dir);
    }

    /// Keeps the readiness (the default when the guard drops).
    ///
    /// # Examples
    ///
    /// See [`AsyncFd::readable`].
    pub fn retain_ready(&mut self) {}

    /// Runs `f`; on `WouldBlock`, clears the readiness and returns
    /// `Err(TryIoError)` so the caller waits again.
    ///
    /// # Errors
    ///
    /// `TryIoError` when `f` would have blocked.
    ///
    /// # Examples
    ///
    /// See [`AsyncFd::readable`].
    pub fn try_io<R>(
        &mut self,
        f: impl FnOnce(&AsyncFd<T>) -> io::Result<R>,
    ) -> Result<io::Result<R>, TryIoError> {
        match f(self.fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_ready();
                Err(TryIoError(()))
            }
            r => Ok(r),
        }
    }

    /// The [`AsyncFd`] this guard is for.
    ///
    /// # Examples
    ///
    /// See [`AsyncFd::readable`].
    pub fn get_ref(&self) -> &AsyncFd<T> {
        self.fd
    }
}
