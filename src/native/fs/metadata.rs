//! What `statx` reports about a file: [`Metadata`] and its [`FileType`],
//! with the methods of `std::fs::Metadata` (and of the Unix `MetadataExt`
//! and `FileTypeExt` traits), so code ported from `tokio::fs` reads them
//! unchanged.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

/// What `statx` reports about a file.
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let m = rt.block_on(rt.handle().spawn_pinned(0, async {
///     ringlane::native::fs::metadata("/proc/self").await
/// }).unwrap()).unwrap().unwrap();
/// assert!(m.is_dir());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Metadata {
    raw: libc::statx,
}

impl Metadata {
    /// Size in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-meta-len-{}", std::process::id()));
    /// std::fs::write(&p, b"12345").unwrap();
    /// let q = p.clone();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::fs::metadata(&q).await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(m.len(), 5);
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub fn len(&self) -> u64 {
        self.raw.stx_size
    }

    /// Whether the size is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-meta-is-empty-{}", std::process::id()));
    /// std::fs::write(&p, b"").unwrap();
    /// let q = p.clone();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::fs::metadata(&q).await
    /// }).unwrap()).unwrap().unwrap();
    /// assert!(m.is_empty());
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn from_raw(raw: libc::statx) -> Self {
        Metadata { raw }
    }

    /// The file's type.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let t = rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fs::symlink_metadata("/proc/self").await
    /// }).unwrap()).unwrap().unwrap().file_type();
    /// assert!(t.is_symlink() && !t.is_dir() && !t.is_file());
    /// ```
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(u32::from(self.raw.stx_mode))
    }

    /// Whether this is a directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fs::metadata;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let dir = std::env::temp_dir();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let tmp = metadata(dir).await?.is_dir();
    ///     let stat = metadata("/proc/self/stat").await?.is_dir();
    ///     Ok::<_, std::io::Error>((tmp, stat))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (true, false));
    /// ```
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// Whether this is a regular file.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fs::metadata;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let stat = metadata("/proc/self/stat").await?.is_file();
    ///     let dir = metadata("/proc/self").await?.is_file();
    ///     Ok::<_, std::io::Error>((stat, dir))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (true, false));
    /// ```
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// Whether this is a symbolic link (only from [`symlink_metadata`](super::symlink_metadata);
    /// [`metadata`](super::metadata()) follows links).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fs::metadata("/proc/self").await
    /// }).unwrap()).unwrap().unwrap();
    /// assert!(!m.is_symlink()); // followed
    /// ```
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// The whole `st_mode`: the file type bits and the permission bits, as
    /// `std::os::unix::fs::MetadataExt::mode` (the same number).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-meta-mode-{}", std::process::id()));
    /// std::fs::write(&p, b"x").unwrap();
    /// std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    /// let q = p.clone();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::fs::metadata(&q).await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(m.mode(), libc::S_IFREG | 0o640);
    /// assert_eq!(m.permissions().mode() & 0o7777, 0o640);
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub fn mode(&self) -> u32 {
        u32::from(self.raw.stx_mode)
    }

    /// The permissions, as `std::fs::Metadata::permissions`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fs::metadata("/proc/self/stat").await
    /// }).unwrap()).unwrap().unwrap();
    /// assert!(m.permissions().readonly()); // 0o444
    /// ```
    pub fn permissions(&self) -> Permissions {
        Permissions::from_mode(self.mode())
    }

    /// Last modification time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the filesystem did not report it; `InvalidData` if
    /// it does not fit a `SystemTime`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-meta-modified-{}", std::process::id()));
    /// let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    /// std::fs::File::create(&p).unwrap().set_modified(when).unwrap();
    /// let q = p.clone();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::fs::metadata(&q).await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(m.modified().unwrap(), when);
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub fn modified(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_MTIME, self.raw.stx_mtime, "modification")
    }

    /// Last access time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the filesystem did not report it; `InvalidData` if
    /// it does not fit a `SystemTime`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-meta-accessed-{}", std::process::id()));
    /// let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    /// let times = std::fs::FileTimes::new().set_accessed(when);
    /// std::fs::File::create(&p).unwrap().set_times(times).unwrap();
    /// let q = p.clone();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     ringlane::native::fs::metadata(&q).await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(m.accessed().unwrap(), when);
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub fn accessed(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_ATIME, self.raw.stx_atime, "access")
    }

    /// Creation (birth) time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the filesystem does not record it (tmpfs before
    /// Linux 5.18, many network filesystems); `InvalidData` if it does not
    /// fit a `SystemTime`.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let m = rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fs::metadata(std::env::temp_dir()).await
    /// }).unwrap()).unwrap().unwrap();
    /// match m.created() {
    ///     Ok(t) => assert!(t <= std::time::SystemTime::now()),
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
    /// }
    /// ```
    pub fn created(&self) -> io::Result<SystemTime> {
        self.time(libc::STATX_BTIME, self.raw.stx_btime, "creation")
    }

    /// A timestamp the mask says was filled in, as a `SystemTime`.
    fn time(&self, bit: u32, t: libc::statx_timestamp, what: &str) -> io::Result<SystemTime> {
        if self.raw.stx_mask & bit == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("no {what} time"),
            ));
        }
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "timestamp out of range");
        if t.tv_nsec >= 1_000_000_000 {
            return Err(bad());
        }
        // sec + nsec, for negative seconds too (nsec always counts forward).
        let whole = Duration::from_secs(t.tv_sec.unsigned_abs());
        let at = if t.tv_sec >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(whole)
        } else {
            SystemTime::UNIX_EPOCH.checked_sub(whole)
        };
        at.and_then(|at| at.checked_add(Duration::from_nanos(u64::from(t.tv_nsec))))
            .ok_or_else(bad)
    }
}

/// The numbers of `std::os::unix::fs::MetadataExt`, so a port that reads
/// them (`m.ino()`, `m.uid()`, `m.mtime()`) compiles unchanged.
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::MetadataExt;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let ours = rt.block_on(rt.handle().spawn_pinned(0, async {
///     ringlane::native::fs::metadata("/proc/self/stat").await
/// }).unwrap()).unwrap().unwrap();
/// let std = std::fs::metadata("/proc/self/stat").unwrap();
/// assert_eq!((ours.dev(), ours.uid(), ours.nlink()), (std.dev(), std.uid(), std.nlink()));
/// ```
impl MetadataExt for Metadata {
    fn dev(&self) -> u64 {
        libc::makedev(self.raw.stx_dev_major, self.raw.stx_dev_minor)
    }
    fn ino(&self) -> u64 {
        self.raw.stx_ino
    }
    fn mode(&self) -> u32 {
        Metadata::mode(self)
    }
    fn nlink(&self) -> u64 {
        u64::from(self.raw.stx_nlink)
    }
    fn uid(&self) -> u32 {
        self.raw.stx_uid
    }
    fn gid(&self) -> u32 {
        self.raw.stx_gid
    }
    fn rdev(&self) -> u64 {
        libc::makedev(self.raw.stx_rdev_major, self.raw.stx_rdev_minor)
    }
    fn size(&self) -> u64 {
        self.raw.stx_size
    }
    fn atime(&self) -> i64 {
        self.raw.stx_atime.tv_sec
    }
    fn atime_nsec(&self) -> i64 {
        i64::from(self.raw.stx_atime.tv_nsec)
    }
    fn mtime(&self) -> i64 {
        self.raw.stx_mtime.tv_sec
    }
    fn mtime_nsec(&self) -> i64 {
        i64::from(self.raw.stx_mtime.tv_nsec)
    }
    fn ctime(&self) -> i64 {
        self.raw.stx_ctime.tv_sec
    }
    fn ctime_nsec(&self) -> i64 {
        i64::from(self.raw.stx_ctime.tv_nsec)
    }
    fn blksize(&self) -> u64 {
        u64::from(self.raw.stx_blksize)
    }
    fn blocks(&self) -> u64 {
        self.raw.stx_blocks
    }
}

/// A file's type, as `std::fs::FileType` (with the Unix `FileTypeExt`
/// questions): from [`Metadata::file_type`] or
/// [`DirEntry::file_type`](super::DirEntry::file_type).
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::FileTypeExt;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let t = rt.block_on(rt.handle().spawn_pinned(0, async {
///     ringlane::native::fs::metadata("/dev/null").await
/// }).unwrap()).unwrap().unwrap().file_type();
/// assert!(t.is_char_device() && !t.is_file());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileType {
    /// `st_mode & S_IFMT`.
    kind: u32,
}

impl FileType {
    fn from_mode(mode: u32) -> Self {
        FileType {
            kind: mode & libc::S_IFMT,
        }
    }

    /// Whether this is a directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = ringlane::native::fs::FileType::from(std::fs::metadata("/").unwrap().file_type());
    /// assert!(t.is_dir());
    /// ```
    pub fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }

    /// Whether this is a regular file.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = ringlane::native::fs::FileType::from(std::fs::metadata("/proc/self/stat").unwrap().file_type());
    /// assert!(t.is_file());
    /// ```
    pub fn is_file(&self) -> bool {
        self.kind == libc::S_IFREG
    }

    /// Whether this is a symbolic link.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = ringlane::native::fs::FileType::from(std::fs::symlink_metadata("/proc/self").unwrap().file_type());
    /// assert!(t.is_symlink());
    /// ```
    pub fn is_symlink(&self) -> bool {
        self.kind == libc::S_IFLNK
    }
}

/// The type std found (for a [`DirEntry`](super::DirEntry), from the
/// directory listing itself).
///
/// # Examples
///
/// ```
/// use ringlane::native::fs::FileType;
/// let std_type = std::fs::metadata("/dev/null").unwrap().file_type();
/// assert!(!FileType::from(std_type).is_file());
/// ```
impl From<std::fs::FileType> for FileType {
    fn from(t: std::fs::FileType) -> Self {
        let kind = if t.is_dir() {
            libc::S_IFDIR
        } else if t.is_file() {
            libc::S_IFREG
        } else if t.is_symlink() {
            libc::S_IFLNK
        } else if t.is_block_device() {
            libc::S_IFBLK
        } else if t.is_char_device() {
            libc::S_IFCHR
        } else if t.is_fifo() {
            libc::S_IFIFO
        } else if t.is_socket() {
            libc::S_IFSOCK
        } else {
            0
        };
        FileType { kind }
    }
}

/// The Unix questions of `std::os::unix::fs::FileTypeExt`.
///
/// # Examples
///
/// ```
/// use std::os::unix::fs::FileTypeExt;
/// let t = ringlane::native::fs::FileType::from(std::fs::metadata("/dev/null").unwrap().file_type());
/// assert!(t.is_char_device() && !t.is_block_device() && !t.is_fifo() && !t.is_socket());
/// ```
impl FileTypeExt for FileType {
    fn is_block_device(&self) -> bool {
        self.kind == libc::S_IFBLK
    }
    fn is_char_device(&self) -> bool {
        self.kind == libc::S_IFCHR
    }
    fn is_fifo(&self) -> bool {
        self.kind == libc::S_IFIFO
    }
    fn is_socket(&self) -> bool {
        self.kind == libc::S_IFSOCK
    }
}
