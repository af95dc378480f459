//! Tokio's `AsyncFd::ready(Interest)` and `ready_mut`: one wait on any of
//! the directions an interest names, giving a guard over those that are
//! ready; and the guards' `clear_ready_matching`, which forgets some of
//! them. A guard's directions are each held in the tick they were ready
//! in, so clearing one never erases an event that came since (readiness
//! invariant 2).

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::{Interest, Ready};

use super::async_fd::{AsyncFd, AsyncFdReadyGuard};
use super::async_fd_more::AsyncFdReadyMutGuard;
use super::interest::{Ticks, poll_interest};

impl<T: AsRawFd> AsyncFd<T> {
    /// Waits until the fd is ready for any of `interest`'s directions
    /// (Tokio's `ready`); the guard reports which
    /// ([`ready()`](AsyncFdReadyGuard::ready)) and clears them all, or
    /// some ([`clear_ready_matching`](AsyncFdReadyGuard::clear_ready_matching)).
    /// On an fd registered for one direction
    /// ([`with_interest`](Self::with_interest)), only that one is waited on.
    ///
    /// # Errors
    ///
    /// As [`readable`](Self::readable); `Unsupported` for an interest naming
    /// `PRIORITY` or `ERROR`; `InvalidInput` if the fd was registered for
    /// none of the directions named.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{Interest, Ready};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut &b, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let guard = fd.ready(Interest::READABLE | Interest::WRITABLE).await.unwrap();
    ///     guard.ready()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), Ready::READABLE | Ready::WRITABLE);
    /// ```
    pub async fn ready(&self, interest: Interest) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        let r = self.readiness();
        let ticks = r.wait(|cx| poll_interest(r, interest, cx)).await?;
        Ok(AsyncFdReadyGuard { fd: self, ticks })
    }

    /// As [`ready`](Self::ready), with a guard that lends the fd mutably.
    ///
    /// # Errors
    ///
    /// As [`ready`](Self::ready).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::Interest;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.ready_mut(Interest::WRITABLE).await.unwrap();
    ///     guard.try_io(|i| std::io::Write::write(i.get_mut(), b"m")).unwrap().unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub async fn ready_mut(
        &mut self,
        interest: Interest,
    ) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        let ticks = {
            let r = self.readiness();
            r.wait(|cx| poll_interest(r, interest, cx)).await?
        };
        Ok(AsyncFdReadyMutGuard { fd: self, ticks })
    }
}

/// Clears the directions of `ticks` that `ready` names, and returns those
/// left (what the guard reports from then on).
fn clear_matching(ticks: Ticks, ready: Ready, fd: &AsyncFd<impl AsRawFd>) -> Ticks {
    let cleared = ticks.matching(ready);
    cleared.clear(fd.readiness());
    Ticks {
        read: ticks.read.filter(|_| cleared.read.is_none()),
        write: ticks.write.filter(|_| cleared.write.is_none()),
    }
}

impl<T: AsRawFd> AsyncFdReadyGuard<'_, T> {
    /// Forgets the readiness of the directions `ready` names only (Tokio's
    /// `clear_ready_matching`): say, `Ready::READABLE` after a read that
    /// returned `WouldBlock`, keeping the write side this guard saw. The
    /// guard stops reporting them (as Tokio's; after
    /// [`clear_ready`](Self::clear_ready) it reports nothing). A closed
    /// flag alone clears nothing. Differences from Tokio: a direction the
    /// guard does not hold is left alone (Tokio's clears it if no event
    /// came since the guard's own), so only readiness this guard saw is
    /// ever forgotten (readiness invariant 2); and a cleared direction
    /// that is closed drops out of [`ready()`](Self::ready) (Tokio's keeps
    /// reporting its closed flag; the next wait answers at once either way,
    /// a closed direction staying ready).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{Interest, Ready};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// std::io::Write::write_all(&mut &b, b"x").unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.ready(Interest::READABLE | Interest::WRITABLE).await.unwrap();
    ///     let mut buf = [0u8; 4];
    ///     std::io::Read::read(&mut fd.get_ref(), &mut buf).unwrap(); // "x"
    ///     let again = std::io::Read::read(&mut fd.get_ref(), &mut buf).unwrap_err();
    ///     assert_eq!(again.kind(), std::io::ErrorKind::WouldBlock);
    ///     guard.clear_ready_matching(Ready::READABLE);
    ///     guard.ready()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), Ready::WRITABLE);
    /// ```
    pub fn clear_ready_matching(&mut self, ready: Ready) {
        self.ticks = clear_matching(self.ticks, ready, self.fd);
    }
}

impl<T: AsRawFd> AsyncFdReadyMutGuard<'_, T> {
    /// As [`AsyncFdReadyGuard::clear_ready_matching`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::{Interest, Ready};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let mut fd = ringlane::compat::AsyncFd::new(a).unwrap();
    ///     let mut guard = fd.ready_mut(Interest::WRITABLE).await.unwrap();
    ///     guard.clear_ready_matching(Ready::READABLE); // not held: nothing to clear
    ///     guard.ready()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), Ready::WRITABLE);
    /// ```
    pub fn clear_ready_matching(&mut self, ready: Ready) {
        self.ticks = clear_matching(self.ticks, ready, self.fd);
    }
}
