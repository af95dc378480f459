//! `OpenOptions`: how to open a file (an `IORING_OP_OPENAT`).

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types};

use super::File;
use crate::op;

/// Options for [`File`] opening, like `std::fs::OpenOptions`.
///
/// # Examples
///
/// ```
/// use ringlane::native::fs::OpenOptions;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let path = std::env::temp_dir().join(format!("ringlane-doc-oo-{}", std::process::id()));
/// let p = path.clone();
/// let j = rt.handle().spawn_pinned(0, async move {
///     OpenOptions::new().write(true).create(true).truncate(true).open(&p).await.map(|_| ())
/// }).unwrap();
/// rt.block_on(j).unwrap().unwrap();
/// std::fs::remove_file(path).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    custom_flags: i32,
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// All options off; mode `0o666` (before the umask).
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new();
    /// ```
    pub fn new() -> Self {
        Self {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            custom_flags: 0,
            mode: 0o666,
        }
    }

    /// Open for reading.
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().read(true);
    /// ```
    pub fn read(mut self, on: bool) -> Self {
        self.read = on;
        self
    }

    /// Open for writing.
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().write(true);
    /// ```
    pub fn write(mut self, on: bool) -> Self {
        self.write = on;
        self
    }

    /// Every write goes to the end of the file.
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().append(true);
    /// ```
    pub fn append(mut self, on: bool) -> Self {
        self.append = on;
        self
    }

    /// Cut the file to length 0 on open (needs `write`).
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().write(true).truncate(true);
    /// ```
    pub fn truncate(mut self, on: bool) -> Self {
        self.truncate = on;
        self
    }

    /// Create the file if it does not exist.
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().write(true).create(true);
    /// ```
    pub fn create(mut self, on: bool) -> Self {
        self.create = on;
        self
    }

    /// Create the file, failing if it exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().write(true).create_new(true);
    /// ```
    pub fn create_new(mut self, on: bool) -> Self {
        self.create_new = on;
        self
    }

    /// Extra `open(2)` flags, e.g. `libc::O_DIRECT`.
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOATIME);
    /// ```
    pub fn custom_flags(mut self, flags: i32) -> Self {
        self.custom_flags = flags;
        self
    }

    /// Permission bits for a created file.
    ///
    /// # Examples
    ///
    /// ```
    /// let o = ringlane::native::fs::OpenOptions::new().write(true).create(true).mode(0o600);
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// The `open(2)` flags, validated as `std::fs::OpenOptions` does.
    fn flags(&self) -> io::Result<i32> {
        let invalid = |why| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        let writes = self.write || self.append;
        let access = match (self.read, writes) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => return invalid("open needs read, write or append"),
        };
        if (self.truncate || self.create || self.create_new) && !writes {
            return invalid("creating or truncating a file needs write or append access");
        }
        if self.truncate && self.append && !self.create_new {
            return invalid("append and truncate exclude each other");
        }
        // The access mode comes from read/write only, never from custom flags.
        let mut flags = access | libc::O_CLOEXEC | (self.custom_flags & !libc::O_ACCMODE);
        if self.append {
            flags |= libc::O_APPEND;
        }
        if self.create_new {
            flags |= libc::O_CREAT | libc::O_EXCL;
        } else {
            if self.create {
                flags |= libc::O_CREAT;
            }
            if self.truncate {
                flags |= libc::O_TRUNC;
            }
        }
        Ok(flags)
    }

    /// Opens `path` with `IORING_OP_OPENAT` on the current shard's ring.
    ///
    /// # Errors
    ///
    /// The `open(2)` error (`NotFound`, `PermissionDenied`, ...), or an error
    /// if called off a shard or with no access mode.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fs::OpenOptions::new().read(true).open("/definitely/not/here").await.err().map(|e| e.kind())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), Some(std::io::ErrorKind::NotFound));
    /// ```
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let path = super::path::c_path(path.as_ref())?;
        // An `O_CREAT` open goes to io-wq at once, where it may block on a
        // FIFO as well: bounded as the re-open below is.
        let (mut result, mut path) = open_bounded(path, flags, self.mode, false, None, None)
            .await?
            .expect("no look: waits until it opens or fails");
        if result == -libc::ENXIO && flags & libc::O_NONBLOCK == 0 {
            // io_uring first tries the open without blocking, with
            // O_NONBLOCK, and hands back that attempt's ENXIO instead of
            // retrying: a FIFO opened for writing before it has a reader.
            // open(2) would wait for the reader, so the open runs again in
            // io-wq, where it may block (a real ENXIO comes back the same).
            (result, path) = open_bounded(path, flags, self.mode, true, None, None)
                .await?
                .expect("no look: waits until it opens or fails");
        }
        if result < 0 {
            return Err(io::Error::from_raw_os_error(-result));
        }
        // SAFETY: a non-negative OPENAT result is a new fd that we own.
        let file = unsafe { File::from_raw_fd_owned(result) };
        // An `O_PATH` open never waits for a FIFO's other end.
        if flags & (libc::O_NONBLOCK | libc::O_ACCMODE | libc::O_PATH) == libc::O_RDONLY {
            match file_type(&file) {
                Some(libc::S_IFIFO) => return fifo_reader(file, path, flags, self.mode).await,
                // For `fs::read`, which reads such a file at offsets.
                Some(libc::S_IFREG) => file.seekable.know_regular(),
                _ => {}
            }
        }
        Ok(file)
    }
}

/// How long a FIFO reader's first blocking re-open waits before it looks
/// again whether a writer came and went meanwhile; each later wait doubles,
/// up to `FIFO_LOOK_MAX`.
const FIFO_LOOK: Duration = Duration::from_millis(10);
const FIFO_LOOK_MAX: Duration = Duration::from_secs(1);

/// The read side of a FIFO: the first attempt succeeds at once where
/// `open(2)` waits for a writer (and the reads that followed would see end
/// of file), so the open runs again in io-wq, where it may block. `first`
/// stays open until then, so a writer it let through never meets a FIFO
/// without a reader (`EPIPE`), and the re-open goes through it
/// (`/proc/self/fd/N`), so it opens the FIFO the path named at the first
/// attempt even if the path has been replaced since, as `open(2)` would.
/// A writer that comes and goes before the re-open reaches the kernel
/// would leave it waiting for the next one: each re-open is given up after
/// a while (`open_bounded`) and `first` is looked at before the next; if
/// that writer came, `first` is the answer, as `open(2)` begun before it
/// came would have returned.
async fn fifo_reader(
    first: File,
    path: std::ffi::CString,
    flags: i32,
    mode: u32,
) -> io::Result<File> {
    let by_fd = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&first));
    let (path, flags) = match std::path::Path::new(&by_fd).exists() {
        // The link is followed by design: `O_NOFOLLOW` applied to the
        // user's path, which the first open resolved.
        true => (
            std::ffi::CString::new(by_fd).expect("no NUL in a number"),
            flags & !libc::O_NOFOLLOW,
        ),
        false => (path, flags), // no /proc: the path, which is what it named before
    };
    let mut look = FIFO_LOOK;
    loop {
        if writer_came_and_went(&first) {
            return Ok(first);
        }
        // The re-open keeps a clone of `first` alive until its CQE: given
        // up and cancelled, it may still be in io-wq, and the number must
        // not name another file meanwhile.
        let keep = Some(first.clone());
        let Some((result, _)) =
            open_bounded(path.clone(), flags, mode, true, Some(look), keep).await?
        else {
            look = (look * 2).min(FIFO_LOOK_MAX);
            continue;
        };
        drop(first);
        if result < 0 {
            return Err(io::Error::from_raw_os_error(-result));
        }
        // SAFETY: a non-negative OPENAT result is a new fd that we own.
        return Ok(unsafe { File::from_raw_fd_owned(result) });
    }
}

/// `file`'s type (`S_IFMT` bits; one `fstat`, on read-only opens only).
fn file_type(file: &File) -> Option<libc::mode_t> {
    // SAFETY: all-zero bytes are a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open (we own it) and `st` is writable.
    let r = unsafe { libc::fstat(std::os::fd::AsRawFd::as_raw_fd(file), &mut st) };
    (r == 0).then_some(st.st_mode & libc::S_IFMT)
}

/// Whether a writer opened the FIFO `file` reads and closed it again since
/// `file` was opened (`POLLHUP`: the kernel compares the FIFO's writer count
/// with the one `file` saw at its open). An `open(2)` begun then would have
/// returned for that writer, where opening again would wait for the *next*
/// one. Bytes waiting (`POLLIN`) prove nothing: an earlier writer may have
/// left them, and `open(2)` waits while no writer has the FIFO open.
fn writer_came_and_went(file: &File) -> bool {
    let mut pfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(file),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, and a zero timeout (never blocks).
    let r = unsafe { libc::poll(&mut pfd, 1, 0) };
    r > 0 && pfd.revents & libc::POLLHUP != 0
}

/// `open_at`, which may block in io-wq until the other end of a FIFO
/// comes. The kernel's linked timeout does not interrupt an open blocked
/// there (a cancel does), so the deadline of the `native::timeout` it runs
/// under is kept by a runtime timer too, which drops (cancels) it and fails
/// with `TimedOut`. Given up after `look` too, if set: `Ok(None)`.
async fn open_bounded(
    path: std::ffi::CString,
    flags: i32,
    mode: u32,
    blocking: bool,
    look: Option<Duration>,
    keep: Option<File>,
) -> io::Result<Option<(i32, std::ffi::CString)>> {
    let left = op::current_deadline().map(|d| d.saturating_duration_since(Instant::now()));
    let attempt = open_at(path, flags, mode, blocking, keep);
    let wait = match (look, left) {
        (Some(look), Some(left)) => look.min(left),
        (Some(wait), None) | (None, Some(wait)) => wait,
        // A deadline already past fails the op before it is submitted.
        (None, None) => return attempt.await.map(Some),
    };
    match crate::time::timeout(wait, attempt).await {
        Ok(opened) => opened.map(Some),
        Err(_) if left.is_some_and(|left| left <= wait) => {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        }
        Err(_) => Ok(None),
    }
}

/// One `IORING_OP_OPENAT` of `path` (relative to the working directory);
/// `blocking` sends it straight to io-wq (`IOSQE_ASYNC`). Gives the path
/// back with the raw result.
async fn open_at(
    path: std::ffi::CString,
    flags: i32,
    mode: u32,
    blocking: bool,
    keep: Option<File>,
) -> io::Result<(i32, std::ffi::CString)> {
    let op = op::submit((path, keep), true, move |(path, _)| {
        let sqe = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .flags(flags)
            .mode(mode)
            .build();
        match blocking {
            true => sqe.flags(squeue::Flags::ASYNC),
            false => sqe,
        }
    });
    // The kernel opens on its cached lookup at submit what it need not
    // create or truncate: a read-only open is tried inline (op invariant
    // 13). (A writer's open of a FIFO without a reader fails at submit
    // with `ENXIO` and is opened again in io-wq, where it waits: kept on
    // its old path, through the loop, which its tests watch.)
    let read_only = flags & libc::O_ACCMODE == libc::O_RDONLY;
    let op = match !blocking && read_only && flags & (libc::O_CREAT | libc::O_TRUNC) == 0 {
        true => op.inline(op::Inline::Open),
        false => op,
    };
    op.await.map(|(r, (path, _))| (r, path)).map_err(|(e, _)| e)
}

/// The constructors that name their options, as `std::fs::File`'s.
impl File {
    /// Opens a file for reading.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fs::File::open("/proc/self/stat").await.is_ok()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates (or truncates) a file and opens it write-only, as
    /// `std::fs::File::create` (for reading too, use [`OpenOptions`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-create-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move { ringlane::native::fs::File::create(&p).await.is_ok() }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates a file that must not exist yet and opens it write-only
    /// (`O_CREAT | O_EXCL`), as `std::fs::File::create_new`.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if something is at `path` (a dangling symbolic link
    /// included); the `openat(2)` errors otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fs::File;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-create-new-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     File::create_new(&p).await?.close().await?;
    ///     Ok::<_, std::io::Error>(File::create_new(&p).await.map(drop).unwrap_err().kind())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), std::io::ErrorKind::AlreadyExists);
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// A blank [`OpenOptions`], as `std::fs::File::options`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fs::File;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     File::options().read(true).open("/proc/self/stat").await.map(drop)
    /// }).unwrap();
    /// rt.block_on(j).unwrap().unwrap();
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }
}
