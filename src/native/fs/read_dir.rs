//! Listing a directory, as `tokio::fs::read_dir`: io_uring has no
//! `getdents` opcode, so the listing is read on the runtime's blocking pool
//! in chunks of [`CHUNK`] entries, each entry's type taken from the listing
//! there too (as Tokio does, so `file_type` rarely costs a call).
//!
//! Invariants:
//! 1. The std listing lives in exactly one place: in `ReadDir::state` while
//!    idle, or inside the pool's closure while a chunk is read (then the
//!    state holds that closure's join handle). A dropped `next_entry`
//!    future leaves the handle in the state, so no entry is lost
//!    (`next_entry` is cancel-safe); a dropped `ReadDir` lets a running
//!    chunk finish and drop the listing, closing its fd, where the task's
//!    output is dropped.
//! 2. Chunks go to the pool of the runtime `read_dir` ran on, wherever the
//!    `ReadDir` is polled later, so only that runtime's shutdown refuses
//!    one. Once the listing is lost that way (or its chunk cancelled), one
//!    call reports why and every later call returns `Ok(None)`: a stream
//!    that ended, never a hang or a panic.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::future::{Future, poll_fn};
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::{FileType, Metadata, symlink_metadata};
use crate::{Handle, JoinHandle};

/// Entries read per trip to the blocking pool (Tokio's figure).
const CHUNK: usize = 32;

/// Opens the directory at `path` for listing (`std::fs::read_dir` on the
/// blocking pool). Entries come in the directory's order, without `.`
/// and `..`.
///
/// # Errors
///
/// `NotFound`, `NotADirectory`, `PermissionDenied`; the runtime's error
/// (`BrokenPipe`) once it is shutting down.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let mut names = Vec::new();
///     let mut dir = ringlane::native::fs::read_dir("/proc/self").await?;
///     while let Some(entry) = dir.next_entry().await? {
///         names.push(entry.file_name());
///     }
///     Ok::<_, std::io::Error>(names)
/// }).unwrap();
/// let names = rt.block_on(j).unwrap().unwrap();
/// assert!(names.iter().any(|n| n == "stat"));
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    // Taken before the await: the future may be polled on afterwards where
    // no runtime is current.
    let runtime = Handle::current().ok_or_else(|| io::Error::from(crate::Error::NotOnShard))?;
    let dir = runtime
        .spawn_blocking(move || std::fs::read_dir(path))?
        .await??;
    Ok(ReadDir {
        runtime,
        state: State::Idle(Some(Listing {
            entries: VecDeque::new(),
            dir,
            more: true,
        })),
    })
}

/// A directory being listed, from [`read_dir`]; the counterpart of
/// `tokio::fs::ReadDir`.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let mut dir = ringlane::native::fs::read_dir("/").await?;
///     let first = dir.next_entry().await?;
///     Ok::<_, std::io::Error>(first.is_some())
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap().unwrap());
/// ```
#[derive(Debug)]
pub struct ReadDir {
    /// The runtime whose pool reads the chunks, wherever the `ReadDir` is
    /// polled (a Tokio task, another thread).
    runtime: Handle,
    state: State,
}

#[derive(Debug)]
enum State {
    /// The listing is here (`None` once lost: invariant 2).
    Idle(Option<Listing>),
    /// The listing is on the pool, reading the next chunk (invariant 1).
    Reading(JoinHandle<Listing>),
}

#[derive(Debug)]
struct Listing {
    /// Read from the directory, not yet handed out.
    entries: VecDeque<io::Result<DirEntry>>,
    dir: std::fs::ReadDir,
    /// Whether the directory may hold more than `entries`.
    more: bool,
}

impl Listing {
    /// Reads up to [`CHUNK`] entries (on a pool thread).
    fn read_chunk(&mut self) {
        for _ in 0..CHUNK {
            match self.dir.next() {
                Some(Ok(entry)) => {
                    // From the listing's `d_type`; a call only where the
                    // filesystem does not say (`DT_UNKNOWN`).
                    let file_type = entry.file_type().ok().map(FileType::from);
                    self.entries.push_back(Ok(DirEntry { entry, file_type }));
                }
                Some(Err(e)) => self.entries.push_back(Err(e)),
                None => {
                    self.more = false;
                    return;
                }
            }
        }
    }
}

impl ReadDir {
    /// The next entry, or `None` at the end of the directory.
    ///
    /// Cancel-safe: dropping the future loses no entry (the chunk being
    /// read stays with the `ReadDir`).
    ///
    /// # Errors
    ///
    /// An error reading the directory (the listing ends after it, as
    /// std's); once, the runtime's error (`BrokenPipe`) if it shut down
    /// under the listing, which then ends.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut dir = ringlane::native::fs::read_dir("/proc/self/fdinfo").await?;
    ///     let mut n = 0;
    ///     while dir.next_entry().await?.is_some() {
    ///         n += 1;
    ///     }
    ///     Ok::<_, std::io::Error>(n)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap() >= 3); // stdin, stdout, stderr at least
    /// ```
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry: `Ready(Ok(None))` at the end, `Pending`
    /// while a chunk is read (the task is woken when it is in). For a
    /// hand-written `Stream` or `poll` method.
    ///
    /// # Errors
    ///
    /// As [`next_entry`](Self::next_entry).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut dir = ringlane::native::fs::read_dir("/").await?;
    ///     let first = std::future::poll_fn(|cx| dir.poll_next_entry(cx)).await?;
    ///     Ok::<_, std::io::Error>(first.is_some())
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            match &mut self.state {
                State::Idle(slot) => {
                    let Some(mut listing) = slot.take() else {
                        return Poll::Ready(Ok(None));
                    };
                    if let Some(entry) = listing.entries.pop_front() {
                        *slot = Some(listing);
                        return Poll::Ready(entry.map(Some));
                    }
                    if !listing.more {
                        return Poll::Ready(Ok(None)); // the listing, closed here
                    }
                    let job = self.runtime.spawn_blocking(move || {
                        listing.read_chunk();
                        listing
                    });
                    match job {
                        Ok(job) => self.state = State::Reading(job),
                        // The closure, and the listing with it, is gone
                        // (invariant 2).
                        Err(e) => return Poll::Ready(Err(e.into())),
                    }
                }
                State::Reading(job) => {
                    let done = ready!(Pin::new(job).poll(cx));
                    match done {
                        Ok(listing) => self.state = State::Idle(Some(listing)),
                        Err(e) => {
                            self.state = State::Idle(None); // invariant 2
                            return Poll::Ready(Err(e.into()));
                        }
                    }
                }
            }
        }
    }
}

/// An entry of a directory, from [`ReadDir::next_entry`]; the counterpart
/// of `tokio::fs::DirEntry`.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let mut dir = ringlane::native::fs::read_dir("/proc/self").await?;
///     while let Some(entry) = dir.next_entry().await? {
///         if entry.file_name() == "cwd" {
///             return Ok(entry.file_type().await?.is_symlink());
///         }
///     }
///     Ok::<_, std::io::Error>(false)
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap().unwrap());
/// ```
#[derive(Debug)]
pub struct DirEntry {
    entry: std::fs::DirEntry,
    /// The type the listing gave, if it gave one.
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The entry's full path: the path given to [`read_dir`] joined with
    /// [`file_name`](Self::file_name).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut dir = ringlane::native::fs::read_dir("/proc/self").await?;
    ///     let entry = dir.next_entry().await?.unwrap();
    ///     Ok::<_, std::io::Error>(entry.path().starts_with("/proc/self"))
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub fn path(&self) -> PathBuf {
        self.entry.path()
    }

    /// The entry's name in its directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut dir = ringlane::native::fs::read_dir("/proc/self").await?;
    ///     let entry = dir.next_entry().await?.unwrap();
    ///     Ok::<_, std::io::Error>(entry.path().ends_with(entry.file_name()))
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub fn file_name(&self) -> OsString {
        self.entry.file_name()
    }

    /// The entry's inode number, from the listing (`d_ino`).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut dir = ringlane::native::fs::read_dir("/").await?;
    ///     Ok::<_, std::io::Error>(dir.next_entry().await?.unwrap().ino())
    /// }).unwrap();
    /// assert_ne!(rt.block_on(j).unwrap().unwrap(), 0);
    /// ```
    pub fn ino(&self) -> u64 {
        self.entry.ino()
    }

    /// The entry's metadata, not following a symbolic link (as
    /// `std::fs::DirEntry::metadata`): a `statx` op on the calling shard,
    /// of [`path`](Self::path). (std and Tokio look the name up in the
    /// open directory instead: they differ when the directory, or a
    /// relative `read_dir` path's working directory, changed since.)
    ///
    /// # Errors
    ///
    /// `NotFound` if the entry was removed since the listing; the `statx`
    /// errors of [`symlink_metadata`].
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut dir = ringlane::native::fs::read_dir("/proc/self").await?;
    ///     while let Some(entry) = dir.next_entry().await? {
    ///         if entry.file_name() == "exe" {
    ///             return Ok(entry.metadata().await?.is_symlink());
    ///         }
    ///     }
    ///     Ok::<_, std::io::Error>(false)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(self.path()).await
    }

    /// The entry's type, not following a symbolic link: from the listing
    /// when it said, else from [`metadata`](Self::metadata).
    ///
    /// # Errors
    ///
    /// As [`metadata`](Self::metadata), when the listing did not say.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut dir = ringlane::native::fs::read_dir("/proc/self").await?;
    ///     while let Some(entry) = dir.next_entry().await? {
    ///         if entry.file_name() == "fd" {
    ///             return Ok(entry.file_type().await?.is_dir());
    ///         }
    ///     }
    ///     Ok::<_, std::io::Error>(false)
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap());
    /// ```
    pub async fn file_type(&self) -> io::Result<FileType> {
        match self.file_type {
            Some(t) => Ok(t),
            None => Ok(self.metadata().await?.file_type()),
        }
    }
}
