//! Owned buffers the kernel can read from (`IoBuf`) or write into
//! (`IoBufMut`) while an operation is in flight.

/// A buffer an operation may read from while it owns the buffer.
///
/// # Safety
///
/// `stable_ptr` must point to `bytes_init` initialized bytes that stay valid
/// and do not move while the value is owned by an operation, even if the
/// value itself is moved (the bytes live on the heap).
///
/// # Examples
///
/// ```
/// use ringlane::native::IoBuf;
/// let v = b"hello".to_vec();
/// assert_eq!(v.bytes_init(), 5);
/// ```
pub unsafe trait IoBuf: Send + 'static {
    /// Start of the bytes.
    fn stable_ptr(&self) -> *const u8;
    /// How many bytes are initialized (what a write sends).
    fn bytes_init(&self) -> usize;
}

/// A buffer an operation may write into while it owns the buffer.
///
/// # Safety
///
/// As [`IoBuf`], and `stable_mut_ptr` must be valid for writes of
/// `bytes_total` bytes.
///
/// # Examples
///
/// ```
/// use ringlane::native::IoBufMut;
/// let v: Vec<u8> = Vec::with_capacity(4096);
/// assert_eq!(v.bytes_total(), 4096);
/// ```
pub unsafe trait IoBufMut: IoBuf {
    /// Start of the writable bytes.
    fn stable_mut_ptr(&mut self) -> *mut u8;
    /// How many bytes may be written (the capacity).
    fn bytes_total(&self) -> usize;
    /// Marks the first `n` bytes initialized (after the kernel wrote them).
    /// What that does to the length is the type's rule: a `Vec<u8>` or a
    /// `BytesMut` only grows (its bytes past the length are not
    /// initialized), an `AlignedBuf` or a `FixedBuf` takes `n` (the length
    /// is what the last read left).
    ///
    /// # Safety
    ///
    /// The first `n` bytes must have been initialized.
    unsafe fn set_init(&mut self, n: usize);
}

// SAFETY: a Vec's heap buffer does not move when the Vec is moved, and
// `as_ptr` covers `len` initialized bytes.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: the heap buffer is valid for writes of `capacity` bytes.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        if self.len() < n {
            // SAFETY: the caller guarantees the first `n` bytes are initialized.
            unsafe { self.set_len(n) };
        }
    }
}

// SAFETY: a boxed slice's bytes live on the heap and are all initialized.
unsafe impl IoBuf for Box<[u8]> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: the whole boxed slice is writable and already initialized.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }
    fn bytes_total(&self) -> usize {
        self.len()
    }
    unsafe fn set_init(&mut self, _n: usize) {}
}

// SAFETY: a `Bytes` never moves or changes its bytes while it lives (they
// are shared, static or owned on the heap) and all `len` are initialized.
#[cfg(feature = "bytes")]
unsafe impl IoBuf for bytes::Bytes {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: a `BytesMut`'s storage is on the heap and unique to it while it
// is owned by an operation; `len` bytes are initialized.
#[cfg(feature = "bytes")]
unsafe impl IoBuf for bytes::BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.len()
    }
}

// SAFETY: the storage is valid for writes of `capacity` bytes and unique.
#[cfg(feature = "bytes")]
unsafe impl IoBufMut for bytes::BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        // `BytesMut` has no `as_mut_ptr` of its own: `self.as_mut_ptr()`
        // would go through `&mut [u8]` of `len` bytes, a pointer valid for
        // those alone, where the kernel writes up to the capacity. The
        // spare capacity at length 0 covers all of it.
        let len = self.len();
        // SAFETY: a shorter length exposes no uninitialized byte.
        unsafe { self.set_len(0) };
        let whole = self.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        // SAFETY: the length taken just above; those bytes are untouched
        // and still initialized.
        unsafe { self.set_len(len) };
        whole
    }
    fn bytes_total(&self) -> usize {
        self.capacity()
    }
    unsafe fn set_init(&mut self, n: usize) {
        if self.len() < n {
            // SAFETY: the caller guarantees the first `n` bytes are initialized.
            unsafe { self.set_len(n) };
        }
    }
}
