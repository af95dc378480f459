//! `AsyncFd`: readiness for any fd, shaped like `tokio::io::unix::AsyncFd`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::interest::Ticks;
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
    /// Wraps `inner`. Nothing is registered until the first wait, and, as
    /// with Tokio's, a direction is ready only once the kernel has said so
    /// (the first wait arms a poll, which answers at once if the fd is
    /// ready already).
    ///
    /// # Errors
    ///
    /// As Tokio's (whose epoll refuses them): `PermissionDenied` (`EPERM`)
    /// for an fd whose file cannot be polled (a regular file, a directory,
    /// `/dev/null`), which a poll would report ready forever; `EBADF` for
    /// an fd that is not open. `inner` is dropped:
    /// [`try_new`](Self::try_new) gives it back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let raw = a.as_raw_fd();
    /// let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    /// assert_eq!(fd.as_raw_fd(), raw);
    /// let file = std::fs::File::open("/proc/self/stat").unwrap();
    /// let refused = ringlane::compat::AsyncFd::new(file).unwrap_err();
    /// assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
    /// ```
    pub fn new(inner: T) -> io::Result<Self> {
        Self::try_new(inner).map_err(|e| e.into_parts().1)
    }

    /// As [`try_new`](Self::try_new), under the name Tokio 1.54 gave its
    /// constructor (`AsyncFd::new` is deprecated there), so ported code
    /// compiles unchanged (`AsyncFd::register(x)?`, in an `unsafe` block, in a function
    /// returning `io::Result`).
    ///
    /// # Safety
    ///
    /// Nothing beyond [`new`](Self::new)'s: ringlane's readiness is a
    /// `POLL_ADD` that holds the file itself while armed, so an fd closed
    /// or replaced under it costs wrong wake-ups, never memory safety, and
    /// `AsFd` is lent only through the inner object's own. The `unsafe`
    /// only matches Tokio's signature.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// // SAFETY: `a` owns its fd for as long as the `AsyncFd` lives.
    /// let fd = unsafe { ringlane::compat::AsyncFd::register(a) }?;
    /// drop(fd);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn register(inner: T) -> Result<Self, AsyncFdRegisterError<T>> {
        Self::try_new(inner)
    }

    /// As [`new`](Self::new), giving `inner` back with the error.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::fs::File::open("/").unwrap();
    /// let (back, e) = ringlane::compat::AsyncFd::try_new(dir).unwrap_err().into_parts();
    /// assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    /// assert!(back.metadata().unwrap().is_dir());
    /// ```
    pub fn try_new(inner: T) -> Result<Self, AsyncFdRegisterError<T>> {
        Self::try_with(
            inner,
            tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE,
        )
    }

    /// `try_new` waiting on `interest`'s directions only (the
    /// `with_interest` forms, `async_fd_more.rs`).
    pub(super) fn try_with(
        inner: T,
        interest: tokio::io::Interest,
    ) -> Result<Self, AsyncFdRegisterError<T>> {
        let checked = super::interest::directions(interest)
            .and_then(|dirs| pollable(inner.as_raw_fd()).map(|()| dirs));
        match checked {
            Ok((read, write)) => Ok(Self {
                readiness: Readiness::new(inner.as_raw_fd(), None, false).waitable(read, write),
                inner: Some(inner),
            }),
            Err(error) => Err(AsyncFdRegisterError { inner, error }),
        }
    }

    /// For the runtime's own sockets: both directions start ready, so the
    /// first read or write is tried before any poll (readiness invariant 2).
    pub(crate) fn syscall_first(inner: T) -> Self {
        Self::with_home(inner, None)
    }

    /// As `syscall_first`, with the readiness engine's home shard given (an
    /// accepted socket inherits its listener's).
    pub(crate) fn with_home(inner: T, home: Option<Arc<crate::mailbox::Remote>>) -> Self {
        Self {
            readiness: Readiness::new(inner.as_raw_fd(), home, true),
            inner: Some(inner),
        }
    }

    /// The wrapped value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    /// std::io::Write::write_all(&mut fd.get_ref(), b"x").unwrap();
    /// let mut got = [0u8; 1];
    /// std::io::Read::read_exact(&mut &b, &mut got).unwrap();
    /// assert_eq!(&got, b"x");
    /// ```
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

    /// The readiness and the wrapped value, mutably, at once.
    pub(super) fn parts_mut(&mut self) -> (&Readiness, &mut T) {
        let inner = self.inner.as_mut().expect("present until into_inner");
        (&self.readiness, inner)
    }

    pub(super) fn poll_ready(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyGuard<'_, T>>> {
        let tick = ready!(self.readiness.poll_ready(dir, cx))?;
        Poll::Ready(Ok(AsyncFdReadyGuard {
            fd: self,
            ticks: Ticks::one(dir, tick),
        }))
    }

    /// Polls for read readiness.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut b, b"r").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = std::future::poll_fn(|cx| fd.poll_read_ready(cx)).await.unwrap();
    ///     let mut buf = [0u8; 4];
    ///     guard.try_io(|inner| std::io::Read::read(&mut inner.get_ref(), &mut buf)).unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
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
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = std::future::poll_fn(|cx| fd.poll_write_ready(cx)).await.unwrap();
    ///     guard.try_io(|inner| std::io::Write::write(&mut inner.get_ref(), b"w")).unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// let mut got = [0u8; 1];
    /// std::io::Read::read_exact(&mut b, &mut got).unwrap();
    /// assert_eq!(&got, b"w");
    /// ```
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
        self.readiness
            .wait(|cx| self.poll_ready(Direction::Read, cx))
            .await
    }

    /// Waits until the fd may be writable.
    ///
    /// # Errors
    ///
    /// As [`readable`](Self::readable).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.writable().await.unwrap();
    ///     guard.try_io(|inner| inner.get_ref().send(b"dgram")).unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 5);
    /// let mut buf = [0u8; 8];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 5);
    /// ```
    pub async fn writable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        self.readiness
            .wait(|cx| self.poll_ready(Direction::Write, cx))
            .await
    }
}

/// Whether epoll takes `fd`, Tokio's test of its `AsyncFd::new`: an fd
/// whose file cannot be polled (a regular file, a directory, `/dev/null`)
/// is `EPERM`, one not open `EBADF`. Asked of a process-wide epoll fd, with
/// an add and a delete; without one (no fd left), only `fstat`'s kinds.
fn pollable(fd: RawFd) -> io::Result<()> {
    // Only a probe that was made is kept: one refused (`EMFILE` for a
    // moment) is asked for again next time.
    static PROBE: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();
    let probe = match PROBE.get() {
        Some(probe) => probe,
        None => {
            // SAFETY: plain syscall; the result is checked.
            let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if epfd < 0 {
                return pollable_by_kind(fd);
            }
            // SAFETY: `epfd` is a new fd owned by nobody else.
            let made = unsafe { std::os::fd::FromRawFd::from_raw_fd(epfd) };
            // Two first callers: the loser's fd is dropped (closed) here.
            PROBE.get_or_init(move || made)
        }
    };
    let epfd = std::os::fd::AsRawFd::as_raw_fd(probe);
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY: `event` is a valid `epoll_event`; `epfd` is open.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut event) } != 0 {
        let e = io::Error::last_os_error();
        // The same fd number probed by another thread at this moment.
        return match e.raw_os_error() {
            Some(libc::EEXIST) => Ok(()),
            _ => Err(e),
        };
    }
    // SAFETY: as above; the event argument is ignored for a delete.
    unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, &mut event) };
    Ok(())
}

/// `pollable` without an epoll fd: regular files and directories refused.
fn pollable_by_kind(fd: RawFd) -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable; an fd that is not open is `EBADF`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Err(io::Error::from_raw_os_error(libc::EPERM)),
        _ => Ok(()),
    }
}

/// The error of [`AsyncFd::try_new`] and [`AsyncFd::register`], with the
/// object it was given (Tokio's name, and its older alias below).
///
/// # Examples
///
/// ```
/// let file = std::fs::File::open("/proc/self/stat").unwrap();
/// let e = ringlane::compat::AsyncFd::try_new(file).unwrap_err();
/// assert_eq!(e.to_string(), std::io::Error::from_raw_os_error(libc::EPERM).to_string());
/// ```
pub struct AsyncFdRegisterError<T> {
    inner: T,
    error: io::Error,
}

impl<T> AsyncFdRegisterError<T> {
    /// The object and the error.
    ///
    /// # Examples
    ///
    /// ```
    /// let file = std::fs::File::open("/proc/self/stat").unwrap();
    /// let (file, e) = ringlane::compat::AsyncFd::try_new(file).unwrap_err().into_parts();
    /// assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    /// drop(file);
    /// ```
    pub fn into_parts(self) -> (T, io::Error) {
        (self.inner, self.error)
    }
}

/// Tokio's older name of [`AsyncFdRegisterError`].
pub type AsyncFdTryNewError<T> = AsyncFdRegisterError<T>;

/// The error alone (the object is dropped), for `?` in a function that
/// returns `io::Result`.
///
/// # Examples
///
/// ```
/// let file = std::fs::File::open("/").unwrap();
/// let e: std::io::Error = ringlane::compat::AsyncFd::try_new(file).unwrap_err().into();
/// assert_eq!(e.raw_os_error(), Some(libc::EPERM));
/// ```
impl<T> From<AsyncFdRegisterError<T>> for io::Error {
    fn from(e: AsyncFdRegisterError<T>) -> Self {
        e.error
    }
}

impl<T> std::fmt::Debug for AsyncFdRegisterError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<T> std::fmt::Display for AsyncFdRegisterError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<T> std::error::Error for AsyncFdRegisterError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
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
/// ```
/// use ringlane::compat::{AsyncFd, AsyncFdReadyGuard};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// std::io::Write::write_all(&mut b, b"abc").unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let fd = AsyncFd::new(a).unwrap();
///     let mut guard: AsyncFdReadyGuard<'_, _> = fd.readable().await.unwrap();
///     let mut buf = [0u8; 8];
///     guard.try_io(|inner| std::io::Read::read(&mut inner.get_ref(), &mut buf)).unwrap().unwrap()
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), 3);
/// ```
#[derive(Debug)]
#[must_use = "choose whether to clear the readiness by calling a method on the guard"]
pub struct AsyncFdReadyGuard<'a, T: AsRawFd> {
    pub(super) fd: &'a AsyncFd<T>,
    /// The directions this guard reports, each in the tick it was ready
    /// in: clearing them leaves a newer readiness.
    pub(super) ticks: Ticks,
}

/// The I/O in [`AsyncFdReadyGuard::try_io`] would have blocked; the
/// readiness was cleared, wait again.
///
/// # Examples
///
/// ```
/// use ringlane::compat::{AsyncFd, TryIoError};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let j = rt.handle().spawn_pinned(0, async move {
///     let fd = AsyncFd::new(a).unwrap();
///     let mut guard = fd.writable().await.unwrap();
///     let blocked: Result<std::io::Result<()>, TryIoError> =
///         guard.try_io(|_| Err(std::io::ErrorKind::WouldBlock.into()));
///     let other = guard.try_io(|_| Err::<(), _>(std::io::ErrorKind::Other.into()));
///     (blocked.is_err(), matches!(other, Ok(Err(_))))
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), (true, true), "only WouldBlock becomes a TryIoError");
/// ```
#[derive(Debug)]
pub struct TryIoError(());

impl TryIoError {
    pub(super) fn new() -> Self {
        TryIoError(())
    }
}

impl<T: AsRawFd> AsyncFdReadyGuard<'_, T> {
    /// The directions and ticks the guard holds (for the `_mut` waits).
    pub(super) fn ticks(&self) -> Ticks {
        self.ticks
    }

    /// Forgets the readiness: the next wait arms a poll in the kernel.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut b, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.readable().await.unwrap();
    ///     let mut byte = [0u8; 1];
    ///     std::io::Read::read(&mut fd.get_ref(), &mut byte).unwrap(); // all there was
    ///     guard.clear_ready();
    ///     ringlane::time::timeout(std::time::Duration::from_millis(20), fd.readable()).await.is_err()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap(), "nothing more to read: the wait times out");
    /// ```
    pub fn clear_ready(&mut self) {
        self.ticks.clear(&self.fd.readiness);
        // As Tokio's: the guard reports nothing from then on.
        self.ticks = Ticks::default();
    }

    /// Keeps the readiness (the default when the guard drops).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Poll;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut b, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     fd.readable().await.unwrap().retain_ready();
    ///     // Still marked ready, so the next poll answers at once.
    ///     std::future::poll_fn(|cx| Poll::Ready(fd.poll_read_ready(cx).is_ready())).await
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
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
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut b, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.readable().await.unwrap();
    ///     let mut buf = [0u8; 4];
    ///     let mut read = |inner: &ringlane::compat::AsyncFd<_>| {
    ///         std::io::Read::read(&mut inner.get_ref(), &mut buf)
    ///     };
    ///     let first = guard.try_io(&mut read).unwrap().unwrap();
    ///     let second = guard.try_io(&mut read).is_err(); // WouldBlock
    ///     (first, second)
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (1, true), "the WouldBlock became a TryIoError");
    /// ```
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
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let guard = fd.writable().await.unwrap();
    ///     std::ptr::eq(guard.get_ref(), &fd)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub fn get_ref(&self) -> &AsyncFd<T> {
        self.fd
    }
}
