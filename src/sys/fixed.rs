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

/// One kind of slot: which are in use, and whether the kernel table
/// exists. First fit over a bitmap: tables are at most 1,024 slots and
/// registration is rare, so a scan costs nothing and freed ranges are
/// always found again.
#[derive(Debug, Default)]
struct SlotKind {
    created: bool,
    used: Vec<bool>,
}

impl SlotKind {
    fn create(&mut self, size: u32) {
        self.created = true;
        self.used = vec![false; size as usize];
    }

    /// The first of `n` consecutive free slots, now in use.
    fn take(&mut self, n: u32) -> Option<u32> {
        let n = n as usize;
        if n == 0 || n > self.used.len() {
            return None;
        }
        let first = (0..=self.used.len() - n).find(|&i| self.used[i..i + n].iter().all(|u| !u))?;
        self.used[first..first + n].fill(true);
        Some(first as u32)
    }

    fn give_back(&mut self, first: u32, n: u32) {
        let (first, n) = (first as usize, n as usize);
        self.used[first..first + n].fill(false);
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
            self.files.create(size);
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
    ) -> Result<u32, Unregistered> {
        let submitter = ring.submitter();
        if !self.buffers.created {
            submitter
                .register_buffers_sparse(TABLE_SLOTS)
                .map_err(Unregistered::clean)?;
            self.buffers.create(TABLE_SLOTS);
        }
        let n = u32::try_from(bufs.len()).map_err(|_| Unregistered::clean(exhausted("buffer")))?;
        let first = self
            .buffers
            .take(n)
            .ok_or_else(|| Unregistered::clean(exhausted("buffer")))?;
        // SAFETY: the caller keeps the iovecs valid while registered.
        match unsafe { update_buffers(ring, first, bufs) } {
            Ok(done) if done == n => Ok(first),
            result => {
                // Some slots may hold buffers (the kernel stops at the first
                // failure, typically the memlock limit): clear them all.
                let cleared = self.unregister_buffers(ring, first, n);
                Err(Unregistered {
                    error: result.err().unwrap_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::OutOfMemory,
                            "the kernel registered only part of the buffers (memlock limit?)",
                        )
                    }),
                    cleared,
                })
            }
        }
    }

    /// Clears `n` buffer slots from `first` and frees them. Returns whether
    /// the kernel cleared them: if not, it may still use the memory, which
    /// must then never be freed (the slots stay taken).
    #[must_use]
    pub(crate) fn unregister_buffers(&mut self, ring: &Ring, first: u32, n: u32) -> bool {
        let empty = vec![
            libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            };
            n as usize
        ];
        // SAFETY: empty iovecs clear the slots; nothing is registered.
        match unsafe { update_buffers(ring, first, &empty) } {
            Ok(done) if done == n => {
                self.buffers.give_back(first, n);
                true
            }
            _ => false,
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
            self.groups.create(GROUP_IDS);
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

    /// Unregisters every table and buffer ring, when the shard exits: the
    /// ring itself outlives the shard (other shards' `Remote`s keep its fd
    /// open for their doorbells), and so would the files and pinned pages
    /// it references, since resources dropped after the shard's exit can no
    /// longer clear their slots. Only with no op in flight: older kernels
    /// make the unregistering thread wait for the ops using a table.
    pub(crate) fn release_all(&mut self, ring: &Ring) {
        let submitter = ring.submitter();
        if self.files.created {
            let _ = submitter.unregister_files();
        }
        if self.buffers.created {
            let _ = submitter.unregister_buffers();
        }
        for (group, used) in self.groups.used.iter().enumerate() {
            if *used {
                let _ = submitter.unregister_buf_ring(group as u16);
            }
        }
        *self = Self::default();
    }

    /// Unregisters buffer group `group` and frees its id.
    /// Returns whether the kernel let go of the ring: if not, its memory
    /// must never be freed (the group id stays taken).
    #[must_use]
    pub(crate) fn unregister_buf_ring(&mut self, ring: &Ring, group: u16) -> bool {
        let cleared = ring.submitter().unregister_buf_ring(group).is_ok();
        if cleared {
            self.groups.give_back(u32::from(group), 1);
        }
        cleared
    }
}

/// A registration that failed, and whether the slots it took were cleared
/// again: if not, the kernel may still use the memory, which must be
/// leaked, never freed (fixed invariant 2).
#[derive(Debug)]
pub(crate) struct Unregistered {
    pub(crate) error: io::Error,
    pub(crate) cleared: bool,
}

impl Unregistered {
    /// Failed before the kernel saw any of the memory.
    fn clean(error: io::Error) -> Self {
        Self {
            error,
            cleared: true,
        }
    }
}

/// `struct io_uring_rsrc_update2`.
#[repr(C)]
struct RsrcUpdate2 {
    offset: u32,
    resv: u32,
    data: u64,
    tags: u64,
    nr: u32,
    resv2: u32,
}

const IORING_REGISTER_BUFFERS_UPDATE: u32 = 16;

/// `IORING_REGISTER_BUFFERS_UPDATE` from `first`; returns how many slots the
/// kernel updated (it stops at the first failure and reports the count).
///
/// # Safety
///
/// As [`FixedSlots::register_buffers`] for every non-empty iovec.
unsafe fn update_buffers(ring: &Ring, first: u32, bufs: &[libc::iovec]) -> io::Result<u32> {
    let up = RsrcUpdate2 {
        offset: first,
        resv: 0,
        data: bufs.as_ptr() as u64,
        tags: 0,
        nr: bufs.len() as u32,
        resv2: 0,
    };
    // SAFETY: the kernel reads one `io_uring_rsrc_update2` and `nr` iovecs,
    // all live for the call; the caller vouches for the buffers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.raw_fd(),
            IORING_REGISTER_BUFFERS_UPDATE,
            &up as *const RsrcUpdate2,
            size_of::<RsrcUpdate2>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as u32)
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
        let mut k = SlotKind::default();
        k.create(8);
        let a = k.take(4).unwrap();
        let b = k.take(1).unwrap();
        assert_eq!((a, b), (0, 4));
        assert!(k.take(4).is_none(), "only 3 slots left");
        k.give_back(b, 1);
        assert_eq!(k.take(1), Some(4), "a freed slot comes back");
        k.give_back(a, 4);
        assert_eq!(k.take(1), Some(0), "first fit");
        assert_eq!(k.take(3), Some(1), "a range fits in the freed hole");
        assert!(k.take(1).is_some() && k.take(3).is_none());
    }

    #[test]
    fn alternating_ranges_never_exhaust_the_table() {
        // The review's case: two 4-slot pools created and dropped in turn.
        let mut k = SlotKind::default();
        k.create(16);
        for _ in 0..1000 {
            let a = k.take(4).unwrap();
            let b = k.take(4).unwrap();
            k.give_back(a, 4);
            k.give_back(b, 4);
        }
        assert_eq!(k.take(16), Some(0), "every slot is free again");
    }
}
