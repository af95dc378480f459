//! `FixedBufPool` and `FixedBuf`: buffers registered in a shard's buffer
//! table (`IORING_REGISTER_BUFFERS2`, sparse), used by `READ_FIXED` and
//! `WRITE_FIXED`.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::task::{Poll, Waker};

use parking_lot::Mutex;

use super::free_list::FreeList;
use super::region::{Region, buf_stride};
use super::{on_home, register_here};
use crate::mailbox::Remote;
use crate::native::{IoBuf, IoBufMut};

/// Buffers registered once with the calling shard's ring, checked out one
/// at a time as [`FixedBuf`]s and given back when those drop.
///
/// Every buffer is 4 KiB-aligned (usable with `O_DIRECT`) and starts zeroed.
/// The pool is `Send + Sync + Clone`; ops using its buffers
/// ([`File::read_fixed_at`](crate::native::fs::File::read_fixed_at),
/// [`File::write_fixed_at`](crate::native::fs::File::write_fixed_at)) must
/// run on the shard that created it. The registration is cleared once the
/// pool and every buffer are dropped.
///
/// # Examples
///
/// ```
/// use ringlane::native::{fixed::FixedBufPool, fs::File};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let pool = FixedBufPool::new(4, 4096)?;
///     let f = File::open("/proc/self/stat").await?;
///     let buf = pool.get().await;
///     let (n, buf) = f.read_fixed_at(buf, 0).await;
///     Ok::<_, std::io::Error>(n? == buf.len() && buf.starts_with(std::process::id().to_string().as_bytes()))
/// }).unwrap();
/// assert!(rt.block_on(j).unwrap().unwrap());
/// ```
#[derive(Clone)]
pub struct FixedBufPool {
    pool: Arc<Pool>,
}

struct Pool {
    home: Arc<Remote>,
    /// The first of `count` consecutive slots in the ring's buffer table.
    first: u32,
    count: u32,
    stride: usize,
    size: usize,
    /// Freed (by the unregistration, after everything dropped: fixed
    /// invariant 2); `None` only while dropping.
    mem: Option<Region>,
    free: Mutex<FreeList>,
}

/// One buffer of a [`FixedBufPool`]: owned, registered bytes. Its
/// initialized length (`len`) is what a write sends and what a read
/// filled; the whole pool buffer size is its capacity.
///
/// # Examples
///
/// ```
/// use ringlane::native::fixed::FixedBufPool;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let pool = FixedBufPool::new(1, 100).unwrap();
///     let mut buf = pool.try_get().unwrap();
///     assert_eq!(buf.put_slice(b"hello"), 5);
///     assert!(pool.try_get().is_none(), "the only buffer is out");
///     drop(buf);
///     pool.try_get().map(|b| (b.len(), b.capacity()))
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap(), Some((0, 4096)));
/// ```
pub struct FixedBuf {
    pool: Arc<Pool>,
    index: u16,
    len: usize,
}

/// The kernel's limit on one registered buffer (`io_buffer_validate`).
const MAX_BUF: usize = 1 << 30;

impl FixedBufPool {
    /// Registers `count` buffers of `size` bytes (rounded up to whole
    /// 4 KiB blocks) with the calling shard's ring.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a zero count or size, more than 1,024 buffers, or
    /// a buffer over 1 GiB (the kernel's limit per registered buffer);
    /// `OutOfMemory` if the shard's buffer table is full; the kernel's
    /// error if it refuses (`ENOMEM` when the pages exceed the memlock
    /// limit); an error off the shards.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     ringlane::native::fixed::FixedBufPool::new(8, 4096).map(|p| p.available())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 8);
    /// assert!(ringlane::native::fixed::FixedBufPool::new(8, 4096).is_err(), "not on a shard");
    /// ```
    pub fn new(count: usize, size: usize) -> io::Result<Self> {
        if count == 0 || count > 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pool holds 1 to 1024 buffers",
            ));
        }
        let stride = buf_stride(size)?;
        if stride > MAX_BUF {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a registered buffer holds at most 1 GiB (the kernel's limit)",
            ));
        }
        let total = stride
            .checked_mul(count)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pool too large"))?;
        let mem = Region::new(total)?;
        let iovecs: Vec<libc::iovec> = (0..count)
            .map(|i| libc::iovec {
                // SAFETY: `i * stride < total`, inside the region.
                iov_base: unsafe { mem.ptr().add(i * stride) }.cast(),
                iov_len: stride,
            })
            .collect();
        let mut stuck = false;
        let registered = register_here("a fixed buffer pool", |ring, slots| {
            // SAFETY: `Pool` frees the region only once its slots are cleared and their ops
            // ended (fixed invariant 2); a failure that leaves slots registered leaks it.
            let result = unsafe { slots.register_buffers(ring, &iovecs) };
            result.map_err(|failed| {
                stuck = !failed.cleared;
                failed.error
            })
        });
        let (first, home) = match registered {
            Ok(registered) => registered,
            Err(e) => {
                if stuck {
                    std::mem::forget(mem); // the kernel may still use it
                }
                return Err(e);
            }
        };
        Ok(Self {
            pool: Arc::new(Pool {
                home,
                first,
                count: count as u32,
                stride,
                size: stride,
                mem: Some(mem),
                free: Mutex::new(FreeList::new(count as u16)),
            }),
        })
    }

    /// A free buffer (empty: `len() == 0`), if one is free and no [`get`](Self::get)
    /// is waiting for one (waiters come first).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let first = pool.try_get().expect("the only buffer is free");
    ///     let second = pool.try_get(); // none left
    ///     drop(first); // back in the pool
    ///     (second.is_none(), pool.try_get().is_some())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (true, true));
    /// ```
    pub fn try_get(&self) -> Option<FixedBuf> {
        let index = self.pool.free.lock().try_take()?;
        Some(FixedBuf {
            pool: self.pool.clone(),
            index,
            len: 0,
        })
    }

    /// Waits for a free buffer (empty). A `get` that finds others waiting
    /// waits behind them; a buffer given back wakes every waiter, and the
    /// first to run takes it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let held = pool.get().await; // free at once
    ///     let p = pool.clone();
    ///     let waiter = ringlane::spawn_local(async move { p.get().await.is_empty() }).unwrap();
    ///     ringlane::yield_now().await; // the waiter runs, finds none free and waits
    ///     drop(held); // back in the pool: wakes the waiter, which takes it
    ///     waiter.await.unwrap()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub async fn get(&self) -> FixedBuf {
        /// This wait's slot among the pool's waiters, removed on drop.
        struct Wait<'a> {
            pool: &'a Pool,
            slot: Option<usize>,
        }
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                if let Some(slot) = self.slot.take() {
                    // Wakes and drops after the lock: a waker's drop may
                    // give a buffer back or drop another wait (rule 3).
                    let (waiters, gone) = self.pool.free.lock().leave(slot);
                    waiters.into_iter().for_each(Waker::wake);
                    drop(gone);
                }
            }
        }
        let mut wait = Wait {
            pool: &self.pool,
            slot: None,
        };
        poll_fn(|cx| {
            let (taken, others, gone) = wait.pool.free.lock().poll_take(&mut wait.slot, cx.waker());
            // The buffer is owned before any foreign code runs: a waker
            // that panics then gives it back as it unwinds.
            let buf = taken.map(|index| FixedBuf {
                pool: self.pool.clone(),
                index,
                len: 0,
            });
            others.into_iter().for_each(Waker::wake);
            drop(gone);
            match buf {
                Some(buf) => Poll::Ready(buf),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Buffers not checked out right now.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(3, 4096).unwrap();
    ///     let _out = pool.try_get().unwrap();
    ///     pool.available()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 2);
    /// ```
    pub fn available(&self) -> usize {
        self.pool.free.lock().free_count()
    }

    /// Each buffer's capacity (the requested size rounded up to whole 4 KiB blocks).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     FixedBufPool::new(2, 5000).unwrap().buf_capacity()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 8192); // two 4 KiB pages
    /// ```
    pub fn buf_capacity(&self) -> usize {
        self.pool.size
    }

    /// The shard whose ring the buffers are registered with.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(2).build().unwrap();
    /// let j = rt.handle().spawn_pinned(1, async {
    ///     ringlane::native::fixed::FixedBufPool::new(1, 4096).unwrap().shard()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), 1);
    /// ```
    pub fn shard(&self) -> usize {
        self.pool.home.index
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let (first, count, mem) = (self.first, self.count, self.mem.take());
        on_home(
            &self.home,
            Box::new(move |ring, slots| {
                if slots.unregister_buffers(ring, first, count) {
                    drop(mem); // the kernel let go of it (fixed invariant 2)
                } else {
                    std::mem::forget(mem); // it may still use it: leaked
                }
            }),
        );
    }
}

impl FixedBuf {
    /// Bytes filled (by a read, or by `put_slice`/`set_len`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let mut buf = pool.try_get().unwrap();
    ///     let fresh = buf.len();
    ///     buf.put_slice(b"abc");
    ///     (fresh, buf.len())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (0, 3));
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is filled.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let mut buf = pool.try_get().unwrap();
    ///     let fresh = buf.is_empty();
    ///     buf.put_slice(b"x");
    ///     (fresh, buf.is_empty())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (true, false));
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The buffer's size.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 100).unwrap();
    ///     let buf = pool.try_get().unwrap();
    ///     (buf.capacity(), pool.buf_capacity())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (4096, 4096)); // a whole page
    /// ```
    pub fn capacity(&self) -> usize {
        self.pool.size
    }

    /// Empties the buffer (`len() == 0`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let mut buf = pool.try_get().unwrap();
    ///     buf.put_slice(b"stale");
    ///     buf.clear();
    ///     (buf.len(), buf.capacity())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (0, 4096));
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Sets the filled length; the bytes are always initialized (zeroed at
    /// registration, then written by reads or by you).
    ///
    /// # Panics
    ///
    /// If `len` exceeds the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let mut buf = pool.try_get().unwrap();
    ///     buf.put_slice(b"hello");
    ///     buf.set_len(2);
    ///     buf.to_vec()
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), b"he");
    /// ```
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.capacity(), "FixedBuf::set_len beyond capacity");
        self.len = len;
    }

    /// Replaces the content with as much of `data` as fits; returns how
    /// many bytes were copied.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::fixed::FixedBufPool;
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let pool = FixedBufPool::new(1, 4096).unwrap();
    ///     let mut buf = pool.try_get().unwrap();
    ///     buf.put_slice(b"first");
    ///     let short = buf.put_slice(b"ok"); // replaces, does not append
    ///     let content = buf.to_vec();
    ///     let long = buf.put_slice(&[7u8; 5000]); // cut at the capacity
    ///     (short, content, long, buf.len())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (2, b"ok".to_vec(), 4096, 4096));
    /// ```
    pub fn put_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity());
        self.len = n;
        self[..n].copy_from_slice(&data[..n]);
        n
    }

    /// The slot in the ring's buffer table (`buf_index` of the SQE).
    pub(crate) fn buf_index(&self) -> u16 {
        (self.pool.first + u32::from(self.index)) as u16
    }

    /// The shard whose ring the buffer is registered with.
    pub(crate) fn home(&self) -> &Arc<Remote> {
        &self.pool.home
    }

    fn base(&self) -> *mut u8 {
        let mem = self.pool.mem.as_ref().expect("alive while buffers are out");
        // SAFETY: `index < count`, so the offset stays inside the region.
        unsafe { mem.ptr().add(usize::from(self.index) * self.pool.stride) }
    }
}

impl Deref for FixedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: this buffer's bytes are ours alone while checked out (the
        // kernel touches them only during an op that owns this value), all
        // initialized, and `len <= capacity`.
        unsafe { std::slice::from_raw_parts(self.base(), self.len) }
    }
}

impl DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.base(), self.len) }
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        // Every waiter is woken (free-list invariant 2).
        let waiters = self.pool.free.lock().give_back(self.index);
        waiters.into_iter().for_each(Waker::wake);
    }
}

// SAFETY: the bytes live in the pool's region, which does not move and
// outlives the buffer (it holds the pool); `len` bytes are initialized.
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.base()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: the whole `capacity` is writable and ours while checked out.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.base()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
    /// Unlike a `Vec`'s, a registered buffer's length is exactly what the
    /// last read filled, whichever read it was (the bytes are always
    /// initialized: the pool starts zeroed): a `write_fixed_at` after a
    /// 3-byte stream read sends those 3 bytes, as after `read_fixed_at`.
    unsafe fn set_init(&mut self, n: usize) {
        self.len = n;
    }
}

impl fmt::Debug for FixedBufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBufPool")
            .field("shard", &self.pool.home.index)
            .field("buffers", &self.pool.count)
            .field("available", &self.available())
            .finish()
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("index", &self.buf_index())
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::FixedBufPool;

    /// Tasks that wait for a buffer and give up (a timeout) leave nothing
    /// in the pool's waiter list. Each used to leave its waker there until
    /// a buffer came back: a pool held for long, polled by many short-lived
    /// tasks, grew without bound (and kept every such task's allocation).
    #[test]
    fn waiters_that_give_up_leave_no_waker_behind() {
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let left = rt
            .block_on(
                rt.handle()
                    .spawn_pinned(0, async {
                        let pool = FixedBufPool::new(1, 4096).unwrap();
                        let _held = pool.try_get().unwrap();
                        for _ in 0..100 {
                            let p = pool.clone();
                            let gave_up = crate::spawn_local(async move {
                                crate::time::timeout(Duration::from_millis(1), p.get())
                                    .await
                                    .is_err()
                            })
                            .unwrap();
                            assert!(gave_up.await.unwrap(), "the only buffer is held");
                        }
                        pool.pool.free.lock().waiting()
                    })
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(left, 0, "wakers of tasks that gave up stayed in the list");
    }
}
