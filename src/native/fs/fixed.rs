//! Registered files (`IOSQE_FIXED_FILE`) and reads/writes into registered
//! buffers (`READ_FIXED`/`WRITE_FIXED`) on a `File`.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use io_uring::{opcode, squeue, types};

use super::File;
use crate::mailbox::Remote;
use crate::native::fixed::{FixedBuf, on_home, register_here};
use crate::native::{IoBuf, IoBufMut, os_result};
use crate::op::{self, Inline};

/// What an op on a file keeps alive (op invariant 2): the fd, or the
/// registered slot (whose table entry holds the file in the kernel).
pub(super) type Keep = Arc<dyn Send + Sync>;

/// A file's slot in one shard's registered file table; cleared on that
/// shard once the last `File` and op naming it are gone (fixed invariant 1).
pub(super) struct FileSlot {
    home: Arc<Remote>,
    slot: u32,
}

impl Drop for FileSlot {
    fn drop(&mut self) {
        let slot = self.slot;
        on_home(
            &self.home,
            Box::new(move |ring, slots| slots.unregister_file(ring, slot)),
        );
    }
}

impl fmt::Debug for FileSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSlot")
            .field("shard", &self.home.index)
            .field("slot", &self.slot)
            .finish()
    }
}

/// A fixed read or write's resources.
struct FixedRw {
    buf: FixedBuf,
    _file: Keep,
}

impl File {
    /// What ops on this file keep alive.
    #[inline]
    pub(super) fn keep(&self) -> Keep {
        match &self.fixed {
            Some(slot) => slot.clone(),
            None => self.fd.clone(),
        }
    }

    /// Prepares an op on this file: `build` gets the fd to name (the slot,
    /// with `IOSQE_FIXED_FILE` added, for a registered file, whose ops are
    /// bound to its shard: op invariant 10).
    #[inline]
    pub(super) fn submit<T, B>(&self, resources: T, build: B) -> op::Op<T>
    where
        T: Send + 'static,
        B: FnOnce(types::Fd, &mut T) -> squeue::Entry + Send + 'static,
    {
        match &self.fixed {
            None => {
                let fd = types::Fd(self.fd.as_raw_fd());
                op::submit(resources, false, move |r| build(fd, r))
            }
            Some(slot) => {
                let fd = types::Fd(slot.slot as i32);
                op::submit(resources, false, move |r| {
                    build(fd, r).flags(squeue::Flags::FIXED_FILE)
                })
                .bound_to(slot.home.clone())
            }
        }
    }

    /// This file registered in the calling shard's file table: the
    /// returned `File` (same fd) names the table slot in its ops, saving
    /// the kernel an fd lookup and a reference count per op. Its ops must
    /// run on this shard (elsewhere they fail with `InvalidInput`); the slot
    /// is cleared when the returned `File`, its clones and their ops are
    /// gone.
    ///
    /// # Errors
    ///
    /// Off the shards; `OutOfMemory` if the shard's table (1,024 slots, or
    /// the `RLIMIT_NOFILE` soft limit if lower) is full; the kernel's error.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let f = ringlane::native::fs::File::open("/proc/self/stat").await?.register()?;
    ///     assert!(f.is_registered());
    ///     let (n, _buf) = f.read_at(Vec::with_capacity(64), 0).await;
    ///     n
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap().unwrap() > 0);
    /// ```
    pub fn register(&self) -> io::Result<File> {
        if let Some(slot) = &self.fixed {
            if slot.home.is_current() {
                return Ok(self.clone());
            }
        }
        let raw = self.fd.as_raw_fd();
        let (slot, home) = register_here("a file", |ring, slots| slots.register_file(ring, raw))?;
        Ok(File {
            fd: self.fd.clone(),
            fixed: Some(Arc::new(FileSlot { home, slot })),
            seekable: self.seekable.clone(),
            adopted: self.adopted,
        })
    }

    /// Whether ops on this `File` name a registered file slot.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let plain = ringlane::native::fs::File::open("/proc/self/stat").await?;
    ///     let registered = plain.register()?;
    ///     Ok::<_, std::io::Error>((plain.is_registered(), registered.is_registered()))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (false, true));
    /// ```
    pub fn is_registered(&self) -> bool {
        self.fixed.is_some()
    }

    /// Checks that `buf`'s shard can run an op on this file.
    fn fixed_home(&self, buf: &FixedBuf) -> io::Result<Arc<Remote>> {
        match &self.fixed {
            Some(slot) if !Arc::ptr_eq(&slot.home, buf.home()) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the file and the buffer are registered with different shards",
            )),
            _ => Ok(buf.home().clone()),
        }
    }

    /// One fixed-buffer op at `offset` (validated), on the buffer's shard:
    /// `build` gets the fd to name, the buffer at its final address and the
    /// offset.
    async fn fixed_op<F>(
        &self,
        buf: FixedBuf,
        (offset, kind): (u64, Inline),
        build: F,
    ) -> (io::Result<usize>, FixedBuf)
    where
        F: FnOnce(types::Fd, &mut FixedBuf, u64) -> squeue::Entry + Send + 'static,
    {
        // As `read_at`: a stream has no positions (`ESPIPE`).
        let checked = Self::at(offset, 0)
            .and_then(|at| self.seekable.check(self.fd.as_raw_fd()).map(|()| at))
            .and_then(|at| Ok((at, self.fixed_home(&buf)?)));
        let (at, home) = match checked {
            Ok(v) => v,
            Err(e) => return (Err(e), buf),
        };
        let res = FixedRw {
            buf,
            _file: self.keep(),
        };
        let op = self.submit(res, move |fd, r| build(fd, &mut r.buf, at));
        // Positioned: tried inline, as `rw_op`'s (op invariant 13).
        match op.bound_to(home).inline(kind).await {
            Ok((n, r)) => (os_result(n), r.buf),
            Err((e, r)) => (Err(e), r.buf),
        }
    }

    /// Reads into a registered buffer (`READ_FIXED`) from `offset`, up to
    /// its capacity; the buffer's `len()` becomes the count read.
    ///
    /// # Errors
    ///
    /// As [`read_at`](Self::read_at); `InvalidInput` if called on another
    /// shard than the buffer's pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::FixedBufPool, fs::File};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-rfixed-{}", std::process::id()));
    /// std::fs::write(&path, b"hello, fixed").unwrap();
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let pool = FixedBufPool::new(1, 4096)?;
    ///     let f = File::open(&p).await?;
    ///     let buf = pool.get().await;
    ///     let (n, buf) = f.read_fixed_at(buf, 7).await;
    ///     Ok::<_, std::io::Error>((n?, buf.to_vec()))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (5, b"fixed".to_vec()));
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn read_fixed_at(&self, buf: FixedBuf, offset: u64) -> (io::Result<usize>, FixedBuf) {
        let (index, cap) = (buf.buf_index(), buf.capacity() as u32);
        let (n, mut buf) = self
            .fixed_op(buf, (offset, Inline::Read), move |fd, buf, at| {
                opcode::ReadFixed::new(fd, buf.stable_mut_ptr(), cap, index)
                    .offset(at)
                    .build()
            })
            .await;
        if let Ok(n) = n {
            buf.set_len(n);
        }
        (n, buf)
    }

    /// Writes a registered buffer's `len()` bytes (`WRITE_FIXED`) at
    /// `offset`; returns how many were written.
    ///
    /// # Errors
    ///
    /// As [`write_at`](Self::write_at); `InvalidInput` for an empty buffer
    /// or if called on another shard than the buffer's pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::FixedBufPool, fs::File};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let path = std::env::temp_dir().join(format!("ringlane-doc-wfixed-{}", std::process::id()));
    /// let p = path.clone();
    /// let j = rt.handle().spawn_pinned(0, async move {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let f = File::create(&p).await.unwrap().register().unwrap();
    ///     let mut buf = pool.get().await;
    ///     buf.put_slice(b"fixed");
    ///     f.write_fixed_at(buf, 0).await.0.unwrap()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 5);
    /// assert_eq!(std::fs::read(&path).unwrap(), b"fixed");
    /// std::fs::remove_file(path).unwrap();
    /// ```
    pub async fn write_fixed_at(
        &self,
        buf: FixedBuf,
        offset: u64,
    ) -> (io::Result<usize>, FixedBuf) {
        if buf.is_empty() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "zero-length buffer");
            return (Err(e), buf);
        }
        let (index, len) = (buf.buf_index(), buf.len() as u32);
        self.fixed_op(buf, (offset, Inline::Write), move |fd, buf, at| {
            opcode::WriteFixed::new(fd, buf.stable_ptr(), len, index)
                .offset(at)
                .build()
        })
        .await
    }
}
