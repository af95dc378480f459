//! Registered (fixed) resources of one ring: its file table, its buffer
//! table and its provided-buffer rings, and the shard-local allocator of
//! their slots.
//!
//! Invariants:
//! 1. The tables are created lazily, sparse, on the first registration of
//!    their kind, by the ring's own thread (like every register call here:
//!    `SINGLE_ISSUER` rings refuse others).
//! 2. A slot (file index, buffer index, buffer group id) is handed out by
//!    [`FixedSlots`] to one owner at a time, and is given back only after
//!    the owner cleared it in the kernel; an op naming a slot keeps its
//!    owner alive until the op's CQE, so a slot is never reused under an op.

use std::io;
use std::os::fd::RawFd;

use super::Ring;

/// Slots in each sparse table (files, buffers) when the kernel allows it.
const TABLE_SLOTS: u32 = 1024;
/// Buffer group ids handed out per ring.
const GROUP_IDS: u32 = 1024;

/// One kind of slot: which are free, and whether the kernel table exists.
#[derive(Debug, Default)]
struct SlotKind {
    created: bool,
    size: u32,
    next: u32,
    free: Vec<u32>,
}

impl SlotKind {
    fn take(&mut self, n: u32) -> Option<u32> {
        if n == 1 {
            if let Some(s) = self.free.pop() {
                return Some(s);
            }
        }
        let first = self.next;
        let end = first.checked_add(n).filter(|e| *e <= self.size)?;
        self.next = end;
        Some(first)
    }

    fn give_back(&mut self, first: u32, n: u32) {
        if first + n == self.next {
            self.next = first;
        } else {
            self.free.extend(first..first + n);
        }
    }
}

/// The shard-local allocator of registered slots (invariant 2).
#[derive(Debug, Default)]
pub(crate) struct FixedSlots {
    files: SlotKind,
    buffers: SlotKind,
    groups: SlotKind,
}

fn exhausted(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("this shard's registered {what} table is full"),
    )
}

impl FixedSlots {
    /// Registers `fd` in a free file slot of `ring`; returns the slot.
    pub(crate) fn register_file(&mut self, ring: &Ring, fd: RawFd) -> io::Result<u32> {
        let submitter = ring.submitter();
        if !self.files.created {
            let nofile = nofile_limit();
            let size = TABLE_SLOTS.min(nofile).max(1);
            submitter.register_files_sparse(size)?;
            self.files.created = true;
            self.files.size = size;
        }
        let slot = self.files.take(1).ok_or_else(|| exhausted("file"))?;
        if let Err(e) = submitter.register_files_update(slot, &[fd]) {
            self.files.give_back(slot, 1);
            return Err(e);
        }
        Ok(slot)
    }

    /// Clears file slot `slot` and frees it.
    pub(crate) fn unregister_file(&mut self, ring: &Ring, slot: u32) {
        // Clearing a slot we registered cannot fail on a live ring; if it
        // did, the slot stays out of circulation rather than be reused.
        if ring.submitter().register_files_update(slot, &[-1]).is_ok() {
            self.files.give_back(slot, 1);
        }
    }

    /// Registers `bufs` in consecutive buffer slots; returns the first.
    ///
    /// # Safety
    ///
    /// Every iovec must stay valid until the slots are cleared with
    /// [`unregister_buffers`](Self::unregister_buffers) and every op that
    /// named one of them has completed.
    pub(crate) unsafe fn register_buffers(
        &mut self,
        ring: &Ring,
        bufs: &[libc::iovec],
    ) -> io::Result<u32> {
        let submitter = ring.submitter();
        if !self.buffers.created {
            submitter.register_buffers_sparse(TABLE_SLOTS)?;
            self.buffers.created = true;
            self.buffers.size = TABLE_SLOTS;
        }
        let n = u32::try_from(bufs.len()).map_err(|_| exhausted("buffer"))?;
        let first = self.buffers.take(n).ok_or_else(|| exhausted("buffer"))?;
        // SAFETY: the caller keeps the iovecs valid while registered.
        if let Err(e) = unsafe { submitter.register_buffers_update(first, bufs, None) } {
            self.buffers.give_back(first, n);
            return Err(e);
        }
        Ok(first)
    }

    /// Clears `n` buffer slots from `first` and frees them.
    pub(crate) fn unregister_buffers(&mut self, ring: &Ring, first: u32, n: u32) {
        let empty = vec![
            libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            };
            n as usize
        ];
        // SAFETY: empty iovecs clear the slots; nothing is registered.
        if unsafe {
            ring.submitter()
                .register_buffers_update(first, &empty, None)
        }
        .is_ok()
        {
            self.buffers.give_back(first, n);
        }
    }

    /// Registers a provided-buffer ring of `entries` entries at `addr`;
    /// returns its buffer group id.
    ///
    /// # Safety
    ///
    /// `addr` must be page-aligned memory for `entries` `io_uring_buf`s,
    /// valid (with every buffer it will hold) until
    /// [`unregister_buf_ring`](Self::unregister_buf_ring) returns.
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        ring: &Ring,
        addr: u64,
        entries: u16,
    ) -> io::Result<u16> {
        if !self.groups.created {
            self.groups.created = true;
            self.groups.size = GROUP_IDS;
        }
        let group = self
            .groups
            .take(1)
            .ok_or_else(|| exhausted("buffer group"))?;
        // SAFETY: the caller guarantees the ring memory.
        let r = unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(addr, entries, group as u16, 0)
        };
        if let Err(e) = r {
            self.groups.give_back(group, 1);
            return Err(e);
        }
        Ok(group as u16)
    }

    /// Unregisters buffer group `group` and frees its id.
    pub(crate) fn unregister_buf_ring(&mut self, ring: &Ring, group: u16) {
        if ring.submitter().unregister_buf_ring(group).is_ok() {
            self.groups.give_back(u32::from(group), 1);
        }
    }
}

/// `RLIMIT_NOFILE`'s soft limit: the kernel refuses larger file tables.
fn nofile_limit() -> u32 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 64;
    }
    u32::try_from(lim.rlim_cur).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::SlotKind;

    #[test]
    fn slots_are_reused_only_after_they_are_given_back() {
        let mut k = SlotKind {
            created: true,
            size: 8,
            ..SlotKind::default()
        };
        let a = k.take(4).unwrap();
        let b = k.take(1).unwrap();
        assert_eq!((a, b), (0, 4));
        assert!(k.take(4).is_none(), "only 3 slots left");
        k.give_back(b, 1);
        assert_eq!(k.take(1), Some(4), "the top slot comes back");
        k.give_back(a, 4);
        assert_eq!(k.take(1), Some(3), "single slots reuse freed ones");
        assert!(k.take(4).is_none(), "a range never spans freed holes");
    }
}
