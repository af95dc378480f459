//! `Region`: one zeroed, page-aligned heap allocation the kernel may be
//! given (registered buffers, a buffer ring and its buffers).

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::io;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// The kernel's page size: a buffer ring's address must be aligned to it
/// (`io_register_pbuf_ring` refuses others with `EINVAL`), and it is 16 or
/// 64 KiB on some arm64 and ppc64 kernels, not 4 KiB.
fn page() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: `sysconf` reads a constant of the system; no pointers.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(n)
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// Zeroed, page-aligned bytes, freed on drop.
pub(super) struct Region {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a `Region` is plain owned memory (like a `Box<[u8]>`); who may
// touch which bytes when is the business of its owners, which say so.
unsafe impl Send for Region {}
// SAFETY: as above; `Region` itself hands out only raw pointers.
unsafe impl Sync for Region {}

impl Region {
    /// `len` bytes (at least one page), zeroed; `OutOfMemory` if refused.
    pub(super) fn new(len: usize) -> io::Result<Self> {
        let too_big = || io::Error::new(io::ErrorKind::OutOfMemory, "region too large");
        let len = len
            .max(1)
            .checked_next_multiple_of(page())
            .ok_or_else(too_big)?;
        let layout = Layout::from_size_align(len, page()).map_err(|_| too_big())?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) }).ok_or_else(too_big)?;
        Ok(Self { ptr, layout })
    }

    pub(super) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// What a pool's buffers are aligned to: 4 KiB, what `O_DIRECT` needs,
/// whatever the page size (registered buffers need no page alignment, and
/// 64 KiB strides would pin 16 times the memory on 64 KiB-page kernels).
const BUF_ALIGN: usize = 4096;

/// Rounds `size` up to whole 4 KiB blocks (so every buffer of a pool is
/// aligned as `O_DIRECT` needs), refusing 0.
pub(super) fn buf_stride(size: usize) -> io::Result<usize> {
    if size == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "zero-length buffers",
        ));
    }
    size.checked_next_multiple_of(BUF_ALIGN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "buffer size too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer ring's memory must sit on a page boundary of the running
    /// kernel, whatever its page size (`EINVAL` otherwise, at random).
    #[test]
    fn regions_are_aligned_to_the_kernels_page_size() {
        // SAFETY: as in `page`.
        let real = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
        assert_eq!(page(), real);
        for len in [1, 100, real, real + 1] {
            let r = Region::new(len).unwrap();
            assert_eq!(r.ptr() as usize % real, 0, "a region of {len} bytes");
        }
        assert_eq!(
            buf_stride(1).unwrap(),
            4096,
            "pool buffers are 4 KiB-aligned"
        );
    }
}
