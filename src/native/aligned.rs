//! `AlignedBuf`: heap bytes at a chosen alignment, for `O_DIRECT` I/O.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use super::{IoBuf, IoBufMut};

/// An owned buffer whose start is aligned to `align` bytes (a power of
/// two), as `O_DIRECT` wants (the device's logical block size, 512 or 4096
/// on most devices; offsets and lengths must be multiples of it too).
/// Starts zeroed with length 0; reads fill it up to its capacity, and its
/// length after a read is what that read gave (a short read shortens it).
///
/// # Examples
///
/// ```
/// use ringlane::native::AlignedBuf;
/// let mut b = AlignedBuf::with_capacity(8192, 4096);
/// assert_eq!(b.as_ptr() as usize % 4096, 0);
/// b.extend_from_slice(&[1, 2, 3]);
/// assert_eq!(&b[..], &[1, 2, 3]);
/// ```
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

// SAFETY: the buffer owns its allocation exclusively, like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads the bytes.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `capacity` bytes aligned to `align`.
    ///
    /// # Panics
    ///
    /// If `align` is not a power of two, or `capacity` is 0 or more than
    /// the allocator gives (a panic, which a caller can catch, not an
    /// abort). For a size from untrusted input, use
    /// [`try_with_capacity`](Self::try_with_capacity).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = ringlane::native::AlignedBuf::with_capacity(1000, 512);
    /// assert_eq!(b.as_ptr() as usize % 512, 0);
    /// assert_eq!((b.len(), b.capacity()), (0, 1000)); // the size is not rounded
    /// ```
    pub fn with_capacity(capacity: usize, align: usize) -> Self {
        match Self::try_with_capacity(capacity, align) {
            Ok(b) => b,
            Err(e) => panic!("AlignedBuf::with_capacity({capacity}, {align}): {e}"),
        }
    }

    /// As [`with_capacity`](Self::with_capacity), with an error instead of
    /// a panic: `InvalidInput` for a zero capacity, an alignment that is
    /// not a power of two or a size no layout can have, `OutOfMemory` if
    /// the allocator refuses.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::native::AlignedBuf;
    /// assert!(AlignedBuf::try_with_capacity(4096, 4096).is_ok());
    /// let e = AlignedBuf::try_with_capacity(1 << 62, 4096).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory);
    /// let e = AlignedBuf::try_with_capacity(4096, 3).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn try_with_capacity(capacity: usize, align: usize) -> std::io::Result<Self> {
        use std::io::{Error, ErrorKind};
        if capacity == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an aligned buffer needs a non-zero capacity",
            ));
        }
        let layout = Layout::from_size_align(capacity, align).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                "the alignment must be a power of two and the size fit in an isize once rounded up to it",
            )
        })?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or_else(|| {
            Error::new(
                ErrorKind::OutOfMemory,
                format!("the allocator refused {capacity} bytes aligned to {align}"),
            )
        })?;
        Ok(Self {
            ptr,
            len: 0,
            layout,
        })
    }

    /// How many bytes it can hold.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ringlane::native::AlignedBuf::with_capacity(512, 512).capacity(), 512);
    /// ```
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// Appends bytes (up to the capacity).
    ///
    /// # Panics
    ///
    /// If they do not fit.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut b = ringlane::native::AlignedBuf::with_capacity(4, 4);
    /// b.extend_from_slice(b"ab");
    /// b.extend_from_slice(b"cd");
    /// assert_eq!(&b[..], b"abcd");
    /// assert_eq!(b.len(), b.capacity()); // full: one more byte would panic
    /// ```
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        assert!(
            self.len + bytes.len() <= self.capacity(),
            "AlignedBuf overflow"
        );
        // SAFETY: the destination lies inside our allocation (checked above)
        // and cannot overlap a slice the caller borrowed from elsewhere.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(self.len),
                bytes.len(),
            );
        }
        self.len += bytes.len();
    }

    /// Sets the length to 0 (the bytes stay allocated).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut b = ringlane::native::AlignedBuf::with_capacity(512, 512);
    /// b.extend_from_slice(b"x");
    /// b.clear();
    /// assert!(b.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialized (zeroed at
        // allocation, then written) and inside the allocation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `deref`, and we hold the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .field("align", &self.layout.align())
            .finish()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `with_capacity` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

// SAFETY: the bytes live on the heap (they do not move with the value) and
// the first `len` are initialized.
unsafe impl IoBuf for AlignedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
}

// SAFETY: the whole capacity is allocated, writable and (zeroed at
// allocation) initialized.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
    /// The length becomes the bytes the read left (its start plus what it
    /// read), not the larger of that and the old length: after a short
    /// read at the end of a file, `len()` is what that read gave, as for a
    /// registered `FixedBuf` (ADR 0012). The bytes are always initialized
    /// (zeroed at allocation).
    unsafe fn set_init(&mut self, n: usize) {
        self.len = n.min(self.capacity());
    }
}
