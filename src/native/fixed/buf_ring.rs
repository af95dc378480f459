//! `BufRing` and `RingBuf`: a provided-buffer ring
//! (`IORING_REGISTER_PBUF_RING`) that the kernel picks receive buffers
//! from, and the received chunks it hands out.
//!
//! Protocol (we are the ring's only producer; the kernel consumes):
//! 1. Every buffer id is in exactly one place: in the ring (the kernel may
//!    pick it), in a CQE not yet looked at, or in a live `RingBuf`. So the
//!    ring never holds more than its `entries`, and a tail that laps its
//!    head is impossible.
//! 2. Giving a buffer back writes its entry at our tail, then publishes the
//!    new tail with a `Release` store (the kernel reads it with acquire).
//!    Producers are serialized by the `tail` lock, so a `RingBuf` may be
//!    dropped on any thread.
//! 3. A buffer picked by a CQE nobody will take (its stream was dropped) is
//!    given back by the op's orphan handler, on the shard.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;

use parking_lot::Mutex;

use super::region::Region;
use super::{on_home, register_here};
use crate::mailbox::Remote;

/// `struct io_uring_buf`; in entry 0, `tail` is the ring's tail.
#[repr(C)]
struct RawEntry {
    addr: u64,
    len: u32,
    bid: u16,
    tail: u16,
}

/// `IORING_CQE_F_BUFFER`: the CQE's upper 16 flag bits name a buffer.
const CQE_F_BUFFER: u32 = 1 << 0;
const CQE_BUFFER_SHIFT: u32 = 16;

/// A ring of receive buffers registered with the calling shard's ring, for
/// [`TcpStream::recv_multi`](crate::native::net::TcpStream::recv_multi)
/// (and the Unix stream's). Several streams may share one ring: the kernel
/// takes a buffer only when data arrives, so idle connections hold none.
///
/// `Send + Sync + Clone`; streams using it must be polled on the shard that
/// created it. Unregistered once the ring, its streams and every
/// [`RingBuf`] are dropped.
///
/// # Examples
///
/// ```
/// use ringlane::native::{fixed::BufRing, net::{TcpListener, TcpStream}};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let ring = BufRing::new(8, 4096)?;
///     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (conn, _) = listener.accept().await?;
///     client.write_all(b"hello".to_vec()).await.0?;
///     drop(client);
///     let mut chunks = conn.recv_multi(&ring);
///     let mut got = Vec::new();
///     while let Some(chunk) = chunks.next().await {
///         got.extend_from_slice(&chunk?);
///     }
///     Ok::<_, std::io::Error>(got)
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"hello");
/// ```
#[derive(Clone)]
pub struct BufRing {
    ring: Arc<Inner>,
}

pub(crate) struct Inner {
    home: Arc<Remote>,
    group: u16,
    entries: u16,
    buf_size: usize,
    stride: usize,
    /// `entries` `io_uring_buf`s; then the buffers. `None` only while
    /// dropping (freed after the unregistration: fixed invariant 2).
    mem: Option<(Region, Region)>,
    /// Our tail (protocol step 2).
    tail: Mutex<u16>,
    /// Buffers out of the ring and taken by a stream (live `RingBuf`s).
    held: AtomicUsize,
    /// How many of those came from streams dropped since (their caller,
    /// or whoever it passed them to, still holds them). Briefly negative
    /// while a stream's drop and a chunk's drop cross.
    held_orphaned: AtomicIsize,
    /// Buffers given back so far, and the streams waiting for one.
    recycled: AtomicU64,
    waiters: Mutex<Vec<Waker>>,
}

/// A chunk received into a [`BufRing`] buffer; derefs to the bytes.
/// Dropping it gives the buffer back to the ring (from any thread).
///
/// # Examples
///
/// ```
/// use ringlane::native::{fixed::BufRing, net::UnixStream};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let j = rt.handle().spawn_pinned(0, async {
///     let ring = BufRing::new(2, 64)?;
///     let (a, b) = UnixStream::pair()?;
///     a.write_all(b"ping".to_vec()).await.0?;
///     let chunk = b.recv_multi(&ring).next().await.unwrap()?;
///     Ok::<_, std::io::Error>(chunk.to_vec()) // the bytes, through `Deref`
/// }).unwrap();
/// assert_eq!(rt.block_on(j).unwrap().unwrap(), b"ping");
/// ```
pub struct RingBuf {
    ring: Arc<Inner>,
    bid: u16,
    len: usize,
    /// The tally of the stream that handed this one out.
    owner: Arc<StreamTally>,
}

/// The chunks a receiving stream handed out that are alive, and whether the
/// stream is gone (`ORPHANED`, set once by its drop).
#[derive(Default)]
pub(crate) struct StreamTally(AtomicUsize);

const ORPHANED: usize = 1 << (usize::BITS - 1);

impl StreamTally {
    /// How many of the stream's chunks are alive.
    pub(crate) fn alive(&self) -> usize {
        self.0.load(Ordering::Acquire) & !ORPHANED
    }

    /// The stream is dropped: its chunks still alive now count as held
    /// by nobody the ring can see.
    pub(crate) fn orphan(&self, ring: &Inner) {
        let before = self.0.fetch_or(ORPHANED, Ordering::AcqRel);
        if before & ORPHANED == 0 {
            let alive = (before & !ORPHANED) as isize;
            ring.held_orphaned.fetch_add(alive, Ordering::AcqRel);
        }
    }
}

impl BufRing {
    /// Registers `entries` buffers of `buf_size` bytes with the calling
    /// shard's ring.
    ///
    /// # Errors
    ///
    /// `InvalidInput` unless `entries` is a power of two from 1 to 32,768
    /// and `buf_size` is non-zero; the kernel's error if it refuses (no
    /// buffer rings before Linux 5.19); an error off the shards.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let ok = ringlane::native::fixed::BufRing::new(64, 2048).is_ok();
    ///     let bad = ringlane::native::fixed::BufRing::new(3, 2048).is_err();
    ///     ok && bad
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap());
    /// ```
    pub fn new(entries: u16, buf_size: usize) -> io::Result<Self> {
        let invalid = |why| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        if !entries.is_power_of_two() || entries > 1 << 15 {
            return invalid("a buffer ring has a power of two of entries, at most 32768");
        }
        if buf_size == 0 || u32::try_from(buf_size).is_err() {
            return invalid("buffer size must be 1 byte to 4 GiB");
        }
        // Checked: where `usize` is 32 bits, a size near 4 GiB would wrap
        // to a stride of 0, and every buffer would name one page.
        let Some(stride) = buf_size.checked_next_multiple_of(64) else {
            return invalid("buffer size must be 1 byte to 4 GiB");
        };
        let n = usize::from(entries);
        let ring_mem = Region::new(n * size_of::<RawEntry>())?;
        let bufs = Region::new(stride.checked_mul(n).ok_or(io::ErrorKind::OutOfMemory)?)?;
        let addr = ring_mem.ptr() as u64;
        let (group, home) = register_here("a buffer ring", |ring, slots| {
            // SAFETY: `ring_mem` is page-aligned, sized for `entries`, and
            // freed (with the buffers) only after the unregistration or
            // the shard's exit (fixed invariant 2): `Inner` owns both.
            unsafe { slots.register_buf_ring(ring, addr, entries) }
        })?;
        let inner = Inner {
            home,
            group,
            entries,
            buf_size,
            stride,
            mem: Some((ring_mem, bufs)),
            tail: Mutex::new(0),
            held: AtomicUsize::new(0),
            held_orphaned: AtomicIsize::new(0),
            recycled: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
        };
        (0..entries).for_each(|bid| inner.provide(bid));
        Ok(Self {
            ring: Arc::new(inner),
        })
    }

    /// The size of each buffer (the most one chunk can hold).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::BufRing, net::UnixStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let ring = BufRing::new(4, 16)?;
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(vec![1u8; 100]).await.0?;
    ///     let chunk = b.recv_multi(&ring).next().await.unwrap()?;
    ///     Ok::<_, std::io::Error>((ring.buf_size(), chunk.len()))
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), (16, 16)); // 100 bytes sent, 16 per chunk
    /// ```
    pub fn buf_size(&self) -> usize {
        self.ring.buf_size
    }

    /// The shard whose ring the buffers are registered with.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let r = ringlane::native::fixed::BufRing::new(4, 1500).unwrap();
    ///     (r.shard(), r.buf_size())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap(), (0, 1500));
    /// ```
    pub fn shard(&self) -> usize {
        self.ring.home.index
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.ring
    }
}

impl Inner {
    /// Puts buffer `bid` at our tail and publishes it (protocol step 2).
    fn provide(&self, bid: u16) {
        let (ring_mem, bufs) = self.mem.as_ref().expect("alive while in use");
        let base = ring_mem.ptr().cast::<RawEntry>();
        let mut tail = self.tail.lock();
        let mask = self.entries - 1;
        // SAFETY: `bid < entries`, inside the buffers' region.
        let addr = unsafe { bufs.ptr().add(usize::from(bid) * self.stride) } as u64;
        // Fields are written through raw pointers, one by one, so entry
        // 0's `tail` (which the kernel reads at any time) is neither
        // covered by a reference nor overwritten.
        // SAFETY: `tail & mask < entries`: inside the ring memory; the
        // kernel reads only entries between its head and the published
        // tail, and this one is past the tail until the store below.
        unsafe {
            let entry = base.add(usize::from(*tail & mask));
            (&raw mut (*entry).addr).write(addr);
            (&raw mut (*entry).len).write(self.buf_size as u32);
            (&raw mut (*entry).bid).write(bid);
        }
        *tail = tail.wrapping_add(1);
        // SAFETY: entry 0's tail field: a `u16` the kernel reads with
        // acquire semantics; we are its only writer (under `tail`).
        let shared_tail = unsafe { AtomicU16::from_ptr(&raw mut (*base).tail) };
        shared_tail.store(*tail, Ordering::Release);
    }

    /// Gives back buffer `bid` and wakes streams waiting for one.
    fn recycle(&self, bid: u16) {
        self.provide(bid);
        self.recycled.fetch_add(1, Ordering::SeqCst);
        let waiters = std::mem::take(&mut *self.waiters.lock());
        waiters.into_iter().for_each(Waker::wake);
    }

    /// The buffer a CQE picked, if its flags name one, counted in `owner`
    /// (the receiving stream's chunks alive) while it lives.
    pub(crate) fn take(
        self: &Arc<Self>,
        result: i32,
        flags: u32,
        owner: &Arc<StreamTally>,
    ) -> Option<RingBuf> {
        let bid = self.picked(flags)?;
        self.held.fetch_add(1, Ordering::Relaxed);
        owner.0.fetch_add(1, Ordering::AcqRel);
        Some(RingBuf {
            ring: self.clone(),
            bid,
            len: usize::try_from(result).unwrap_or(0).min(self.buf_size),
            owner: owner.clone(),
        })
    }

    /// Gives back a buffer picked by a CQE nobody will take (step 3).
    pub(crate) fn orphan(&self, flags: u32) {
        if let Some(bid) = self.picked(flags) {
            self.recycle(bid);
        }
    }

    /// The buffer id a CQE's flags name: none without `F_BUFFER`, and none
    /// past our entries, which we never provided (an id the kernel should
    /// never post; trusted, it would point outside the buffers' region).
    fn picked(&self, flags: u32) -> Option<u16> {
        if flags & CQE_F_BUFFER == 0 {
            return None;
        }
        let bid = (flags >> CQE_BUFFER_SHIFT) as u16;
        (bid < self.entries).then_some(bid)
    }

    /// Whether some held buffers came from streams that are gone.
    pub(crate) fn held_by_dropped_streams(&self) -> bool {
        self.held_orphaned.load(Ordering::Acquire) > 0
    }

    /// Whether every buffer is held by a live `RingBuf`.
    pub(crate) fn all_held(&self) -> bool {
        self.held.load(Ordering::Relaxed) >= usize::from(self.entries)
    }

    /// Buffers given back so far (a stream that ran dry waits for it to move).
    pub(crate) fn recycled(&self) -> u64 {
        self.recycled.load(Ordering::SeqCst)
    }

    /// Registers `waker` for the next give-back unless one happened since
    /// `seen`; returns whether one did.
    pub(crate) fn wait_recycle(&self, seen: u64, waker: &Waker) -> bool {
        let mut waiters = self.waiters.lock();
        if self.recycled.load(Ordering::SeqCst) != seen {
            return true;
        }
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        false
    }

    pub(crate) fn group(&self) -> u16 {
        self.group
    }

    pub(crate) fn home(&self) -> &Arc<Remote> {
        &self.home
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let (group, mem) = (self.group, self.mem.take());
        on_home(
            &self.home,
            Box::new(move |ring, slots| {
                if slots.unregister_buf_ring(ring, group) {
                    drop(mem); // the kernel let go of it (fixed invariant 2)
                } else {
                    std::mem::forget(mem); // it may still use it: leaked
                }
            }),
        );
    }
}

/// What a multishot receive op keeps for its buffer group.
pub(crate) type RecvRing = Arc<Inner>;

impl RingBuf {
    /// The buffer id the kernel picked (for diagnostics).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::{fixed::BufRing, net::UnixStream};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let ring = BufRing::new(1, 64)?; // one buffer: its id is 0
    ///     let (a, b) = UnixStream::pair()?;
    ///     a.write_all(b"id".to_vec()).await.0?;
    ///     let chunk = b.recv_multi(&ring).next().await.unwrap()?;
    ///     Ok::<_, std::io::Error>(chunk.buffer_id())
    /// }).unwrap();
    /// assert_eq!(rt.block_on(j).unwrap().unwrap(), 0);
    /// ```
    pub fn buffer_id(&self) -> u16 {
        self.bid
    }
}

impl Deref for RingBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let (_, bufs) = self.ring.mem.as_ref().expect("alive while in use");
        // SAFETY: the kernel wrote `len` bytes into buffer `bid` and will
        // not touch it again until we give it back (protocol step 1).
        unsafe {
            std::slice::from_raw_parts(
                bufs.ptr().add(usize::from(self.bid) * self.ring.stride),
                self.len,
            )
        }
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.ring.held.fetch_sub(1, Ordering::Relaxed);
        let before = self.owner.0.fetch_sub(1, Ordering::AcqRel);
        if before & ORPHANED != 0 {
            self.ring.held_orphaned.fetch_sub(1, Ordering::AcqRel);
        }
        self.ring.recycle(self.bid);
    }
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("shard", &self.ring.home.index)
            .field("group", &self.ring.group)
            .field("entries", &self.ring.entries)
            .field("buf_size", &self.ring.buf_size)
            .finish()
    }
}

impl fmt::Debug for RingBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingBuf")
            .field("bid", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{BufRing, CQE_BUFFER_SHIFT, CQE_F_BUFFER, StreamTally};

    /// A CQE naming a buffer id we never provided hands out no chunk (whose
    /// bytes would lie past the buffers' region) and gives nothing back to
    /// the kernel (an address past the region it would then write to).
    #[test]
    fn a_cqe_naming_a_buffer_id_past_the_ring_picks_nothing() {
        let rt = crate::Runtime::builder().shards(1).build().unwrap();
        let j = rt.handle().spawn_pinned(0, async {
            let ring = match BufRing::new(8, 64) {
                Ok(ring) => ring,
                // Buffer rings came with Linux 5.19.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                    println!("SKIP: no provided-buffer rings on this kernel ({e})");
                    return (false, 0);
                }
                Err(e) => panic!("BufRing::new: {e}"),
            };
            let tally = Arc::new(StreamTally::default());
            let flags = CQE_F_BUFFER | (8 << CQE_BUFFER_SHIFT);
            let took = ring.ring.take(10, flags, &tally).is_some();
            ring.ring.orphan(flags);
            (took, ring.ring.recycled())
        });
        let (took, recycled) = rt.block_on(j.unwrap()).unwrap();
        assert!(
            !took,
            "a chunk was handed out for buffer id 8 of an 8-entry ring"
        );
        assert_eq!(
            recycled, 0,
            "buffer id 8 of an 8-entry ring was given to the kernel"
        );
    }
}
