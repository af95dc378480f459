//! [`PageBuf`]: the one buffer type every case reads into and writes from,
//! so that every case copies between the same pair of page offsets.
//!
//! Why it can matter: the kernel copies a 4 KiB read out of a page-aligned
//! page-cache page, and on an earlier host of this machine that copy ran
//! about 1.8x slower when the user buffer started 8 or 16 bytes into its
//! page (3.2-3.7 µs per qd1 read on the raw floor, against 1.75-1.9 µs at
//! offsets 0, 32, 48, 80, 1040 and 4080). Since 2026-12-05 the `_pgoff16`
//! floor reads within a few percent of the page-aligned one and `_vec`
//! about as fast as page-aligned ringlane: the effect comes and goes with
//! the host. A plain 4 KiB `Vec<u8>` lands wherever malloc puts it:
//! 16 bytes into a page on a fresh shard thread, 64-byte aligned on the
//! bench thread. A page-aligned buffer (as `O_DIRECT` would need anyway)
//! takes that out of the comparison; the `_vec` and `_pgoff16` cases show
//! the effect.

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use ringlane::native::{IoBuf, IoBufMut};

use crate::BLOCK;

const PAGE: usize = 4096;

/// [`BLOCK`] zero-initialized bytes starting `offset` bytes into a page.
pub(crate) struct PageBuf {
    /// Start of the allocation (page-aligned).
    base: NonNull<u8>,
    offset: usize,
}

impl PageBuf {
    fn layout(offset: usize) -> Layout {
        Layout::from_size_align(offset + BLOCK, PAGE).expect("buffer layout")
    }

    /// A page-aligned buffer.
    pub(crate) fn new() -> Self {
        Self::at(0)
    }

    /// A buffer starting `offset` (< 4096) bytes into a page.
    pub(crate) fn at(offset: usize) -> Self {
        assert!(offset < PAGE, "offset within a page");
        let layout = Self::layout(offset);
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc_zeroed(layout) };
        let base = NonNull::new(base).unwrap_or_else(|| handle_alloc_error(layout));
        Self { base, offset }
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: `offset + BLOCK` bytes were allocated from `base`.
        unsafe { self.base.as_ptr().add(self.offset) }
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: `base` was allocated in `at` with this very layout and is
        // freed only here, once.
        unsafe { dealloc(self.base.as_ptr(), Self::layout(self.offset)) };
    }
}

impl Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `data()` points at BLOCK initialized (zeroed at allocation)
        // bytes owned by `self`, borrowed for as long as `self` is.
        unsafe { std::slice::from_raw_parts(self.data(), BLOCK) }
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.data(), BLOCK) }
    }
}

// SAFETY: a `PageBuf` is the sole owner of its heap allocation and has no
// shared state, so it may move to another thread like a `Box<[u8]>`.
unsafe impl Send for PageBuf {}

// SAFETY: the bytes live on the heap and do not move when the `PageBuf`
// does; all BLOCK of them are initialized from the allocation on.
unsafe impl IoBuf for PageBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.data()
    }
    fn bytes_init(&self) -> usize {
        BLOCK
    }
}

// SAFETY: as above, and all BLOCK bytes are writable.
unsafe impl IoBufMut for PageBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.data()
    }
    fn bytes_total(&self) -> usize {
        BLOCK
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}
