//! [`PageBuf`]: a page-aligned [`BLOCK`]-byte buffer that monoio's and
//! compio's buffer traits accept, so that their reads copy into the same
//! page offset as the raw floor and ringlane (`AlignedBuf`). The kernel's
//! 4 KiB copy out of the page cache is markedly slower into a buffer that
//! starts a few bytes into its page (see `benches/fs/buf.rs`).

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::mem::MaybeUninit;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::BLOCK;

const PAGE: usize = 4096;

/// [`BLOCK`] zeroed bytes at the start of a page, `len` of them counted as
/// filled (all of them are initialized from the allocation on).
pub(crate) struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
}

impl PageBuf {
    fn layout() -> Layout {
        Layout::from_size_align(BLOCK, PAGE).expect("buffer layout")
    }

    pub(crate) fn new() -> Self {
        let layout = Self::layout();
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| handle_alloc_error(layout));
        Self { ptr, len: 0 }
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// All [`BLOCK`] bytes, filled or not.
    pub(crate) fn whole(&self) -> &[u8] {
        // SAFETY: BLOCK initialized (zeroed at allocation) bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), BLOCK) }
    }

    /// Marks the buffer empty again, for the next read.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this very layout, freed only here.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout()) };
    }
}

impl Deref for PageBuf {
    type Target = [u8];
    /// The filled bytes.
    fn deref(&self) -> &[u8] {
        &self.whole()[..self.len]
    }
}

// SAFETY: the sole owner of its heap allocation, like a `Box<[u8]>`.
unsafe impl Send for PageBuf {}

// SAFETY: the bytes live on the heap and do not move with the `PageBuf`;
// `read_ptr` is stable and `bytes_init` bytes from it are initialized.
unsafe impl monoio::buf::IoBuf for PageBuf {
    fn read_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: as above; BLOCK writable bytes from the stable `write_ptr`.
unsafe impl monoio::buf::IoBufMut for PageBuf {
    fn write_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        BLOCK
    }
    unsafe fn set_init(&mut self, pos: usize) {
        self.len = pos.min(BLOCK);
    }
}

impl compio::buf::IoBuf for PageBuf {
    fn as_init(&self) -> &[u8] {
        self
    }
}

impl compio::buf::SetLen for PageBuf {
    unsafe fn set_len(&mut self, len: usize) {
        self.len = len.min(BLOCK);
    }
}

impl compio::buf::IoBufMut for PageBuf {
    fn as_uninit(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: BLOCK bytes owned by `self`, borrowed uniquely for as long
        // as `self` is; `MaybeUninit<u8>` has the layout of `u8`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), BLOCK) }
    }
}
