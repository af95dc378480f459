//! The calls `tokio::fs::File` has beside its I/O traits: `open`,
//! `create`, and `sync_all`, `sync_data`, `set_len` and `metadata`, each
//! after the op in flight.

use std::future::poll_fn;
use std::io;
use std::path::Path;

use super::{AsyncFile, Outcome, State};
use crate::native::fs::{File, Metadata};

impl AsyncFile {
    /// Opens a file for reading, as `tokio::fs::File::open`.
    ///
    /// # Errors
    ///
    /// As [`File::open`](crate::native::fs::File::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncReadExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let n = rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     let mut f = ringlane::native::fs::AsyncFile::open("/proc/self/cmdline").await?;
    ///     let mut all = Vec::new();
    ///     f.read_to_end(&mut all).await
    /// }).unwrap()).unwrap().unwrap();
    /// assert!(n > 0);
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<AsyncFile> {
        Ok(File::open(path).await?.into_async())
    }

    /// Creates (or truncates) a file and opens it write-only, as
    /// `tokio::fs::File::create`.
    ///
    /// # Errors
    ///
    /// As [`File::create`](crate::native::fs::File::create).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-async-create-{}", std::process::id()));
    /// let q = p.clone();
    /// rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let mut f = ringlane::native::fs::AsyncFile::create(&q).await?;
    ///     f.write_all(b"made").await?;
    ///     f.flush().await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(std::fs::read(&p).unwrap(), b"made");
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<AsyncFile> {
        Ok(File::create(path).await?.into_async())
    }

    /// Waits for the op in flight, whatever it is, leaving the state idle;
    /// a write's error is kept for the next write or flush (Tokio's
    /// `complete_inflight`, which goes through `poll_flush` and so returns
    /// at once, op still in flight, when an error is kept already).
    async fn complete_inflight(&mut self) {
        let outcome = poll_fn(|cx| self.poll_busy(cx)).await;
        if let Some(Outcome::Write(Err(e))) = outcome {
            // A second error while one waits: the first is reported.
            self.last_write_err.get_or_insert(e);
        }
    }

    /// Waits for the op in flight, then flushes data and metadata to the
    /// device (`fsync`), as `tokio::fs::File::sync_all`.
    ///
    /// # Errors
    ///
    /// The `fsync(2)` error (a write's error waits for the next write or
    /// flush, as Tokio's).
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-async-sync-{}", std::process::id()));
    /// let q = p.clone();
    /// rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let mut f = ringlane::native::fs::File::create(&q).await?.into_async();
    ///     f.write_all(b"durable").await?;
    ///     f.sync_all().await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(std::fs::read(&p).unwrap(), b"durable");
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn sync_all(&mut self) -> io::Result<()> {
        self.complete_inflight().await;
        self.file.sync_all().await
    }

    /// As [`sync_all`](Self::sync_all), with `fdatasync`.
    ///
    /// # Errors
    ///
    /// The `fdatasync(2)` error.
    ///
    /// # Examples
    ///
    /// ```
    /// use tokio::io::AsyncWriteExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-async-dsync-{}", std::process::id()));
    /// let q = p.clone();
    /// rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let mut f = ringlane::native::fs::File::create(&q).await?.into_async();
    ///     f.write_all(b"data").await?;
    ///     f.sync_data().await
    /// }).unwrap()).unwrap().unwrap();
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn sync_data(&mut self) -> io::Result<()> {
        self.complete_inflight().await;
        self.file.sync_data().await
    }

    /// Waits for the op in flight, gives back bytes read ahead, then
    /// truncates or extends the file to `size` bytes, as
    /// `tokio::fs::File::set_len`. The position does not move (Tokio's
    /// resets the position its idle `poll_complete` answers to 0).
    ///
    /// # Errors
    ///
    /// As [`File::set_len`](crate::native::fs::File::set_len), and the
    /// `lseek(2)` error of giving bytes read ahead back.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-async-set-len-{}", std::process::id()));
    /// let q = p.clone();
    /// let r = rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let mut f = ringlane::native::fs::File::create(&q).await?.into_async();
    ///     f.set_len(12).await?;
    ///     Ok::<_, std::io::Error>(f.metadata().await?.len())
    /// }).unwrap()).unwrap();
    /// match r {
    ///     Ok(len) => assert_eq!(len, 12),
    ///     Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported), // before 6.9
    /// }
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn set_len(&mut self, size: u64) -> io::Result<()> {
        self.complete_inflight().await;
        let buf = self.take_idle();
        let buf = match self.rewound(buf) {
            Ok(buf) => buf,
            Err((e, mut buf)) => {
                buf.clear(); // as Tokio's, which drops them before its seek
                self.state = Some(State::Idle(buf));
                return Err(e);
            }
        };
        self.state = Some(State::Idle(buf));
        self.file.set_len(size).await
    }

    /// The file's metadata (`statx`), as `tokio::fs::File::metadata`
    /// (which does not wait for the op in flight either).
    ///
    /// # Errors
    ///
    /// The `statx(2)` error.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let len = rt.block_on(rt.handle().spawn_pinned(0, async {
    ///     let f = ringlane::native::fs::File::open("/proc/self/cmdline").await?.into_async();
    ///     Ok::<_, std::io::Error>(f.metadata().await?.len())
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(len, 0); // procfs gives no size
    /// ```
    pub async fn metadata(&self) -> io::Result<Metadata> {
        self.file.metadata().await
    }

    /// Sets the file's permissions (`fchmod(2)` on the blocking pool), as
    /// `tokio::fs::File::set_permissions` (which does not wait for the op
    /// in flight either).
    ///
    /// # Errors
    ///
    /// As [`File::set_permissions`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let p = std::env::temp_dir().join(format!("ringlane-doc-async-perm-{}", std::process::id()));
    /// let q = p.clone();
    /// rt.block_on(rt.handle().spawn_pinned(0, async move {
    ///     let f = ringlane::native::fs::AsyncFile::create(&q).await?;
    ///     f.set_permissions(std::fs::Permissions::from_mode(0o600)).await
    /// }).unwrap()).unwrap().unwrap();
    /// assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    /// std::fs::remove_file(p).unwrap();
    /// ```
    pub async fn set_permissions(&self, perm: std::fs::Permissions) -> io::Result<()> {
        self.file.set_permissions(perm).await
    }
}
