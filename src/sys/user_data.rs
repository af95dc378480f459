//! The one place that defines the `user_data` namespace of every ring.
//!
//! A `user_data` is split into an 8-bit kind (the top byte) and a 56-bit
//! payload. Kind 0 is reserved for native-lane op slots so that the hot path
//! needs no masking; the other kinds are runtime-internal.
//!
//! | kind | meaning | payload |
//! |---|---|---|
//! | 0 | native op slot (reserved) | slot index and generation |
//! | 1 | doorbell CQE posted into *this* ring by another ring's MSG_RING | unused |
//! | 2 | our own MSG_RING SQE (its CQE appears only on failure) | target shard index |
//! | 3 | the eventfd read kept armed for wake-ups from ringless threads | unused |
//! | 4 | an `ASYNC_CANCEL` issued by the runtime itself | unused |

/// Bits of the payload.
const KIND_SHIFT: u32 = 56;
const PAYLOAD_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// A decoded `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    /// A native-lane op slot.
    Op(u64),
    /// A doorbell that another ring delivered into ours.
    DoorbellIn,
    /// The failure CQE of a doorbell we sent to shard `.0`.
    DoorbellOut(usize),
    /// The armed eventfd read completed.
    EventFdRead,
    /// A runtime-internal cancel completed.
    Cancel,
    /// Anything else (never produced by this crate).
    Unknown(u64),
}

pub(crate) const DOORBELL_IN: u64 = 1 << KIND_SHIFT;
pub(crate) const EVENTFD_READ: u64 = 3 << KIND_SHIFT;
pub(crate) const CANCEL: u64 = 4 << KIND_SHIFT;

/// Sets `sqe`'s `user_data` as one 16-byte store over its bytes 32..48
/// (`user_data`, then the eight bytes after it, rewritten as they were).
/// The push that follows copies the SQE into the ring in 16-byte loads:
/// an 8-byte store of `user_data` read back at once by a wider load stalls
/// on store forwarding, once per op (`Entry::set_user_data` elsewhere).
#[inline(always)]
pub(crate) fn set_in_place(sqe: &mut io_uring::squeue::Entry, user_data: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_set_epi64x, _mm_storeu_si128};
        const { assert!(std::mem::size_of::<io_uring::squeue::Entry>() == 64) };
        // `Entry` is `#[repr(C)]` around the kernel's 64-byte `io_uring_sqe`,
        // whose `user_data` is the u64 at byte 32 (a test checks this
        // against `get_user_data`).
        let at = std::ptr::from_mut(sqe).cast::<u64>().wrapping_add(4);
        // SAFETY: bytes 32..48 lie inside `*sqe`, borrowed mutably; the
        // unaligned store needs no alignment; SSE2 is part of x86_64.
        unsafe {
            let after = at.add(1).read();
            let both = _mm_set_epi64x(after as i64, user_data as i64);
            _mm_storeu_si128(at.cast::<__m128i>(), both);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    sqe.set_user_data(user_data);
}

/// The `user_data` of a doorbell sent to shard `target`.
pub(crate) fn doorbell_out(target: usize) -> u64 {
    (2 << KIND_SHIFT) | (target as u64 & PAYLOAD_MASK)
}

/// The MSG_RING SQE that rings shard `target`'s ring (fd `target_fd`): it
/// posts a `DOORBELL_IN` CQE there; on our side it completes silently unless
/// it fails (`skip_success`, when the kernel honours `CQE_SKIP_SUCCESS`).
pub(crate) fn doorbell_sqe(
    target_fd: i32,
    target: usize,
    skip_success: bool,
) -> io_uring::squeue::Entry {
    #[cfg(test)]
    let target_fd = match FAKE_REFUSED_DOORBELL.with(|f| f.replace(false)) {
        true => -1, // the kernel fails it at once: -EBADF
        false => target_fd,
    };
    let sqe =
        io_uring::opcode::MsgRingData::new(io_uring::types::Fd(target_fd), 0, DOORBELL_IN, None)
            .build()
            .user_data(doorbell_out(target));
    if skip_success {
        sqe.flags(io_uring::squeue::Flags::SKIP_SUCCESS)
    } else {
        sqe
    }
}

#[cfg(test)]
thread_local! {
    /// Makes the next doorbell built on this thread one the kernel refuses
    /// on the spot (a closed target fd: `-EBADF`), as it refuses one with
    /// `-ENOMEM` or `-EOVERFLOW`.
    pub(crate) static FAKE_REFUSED_DOORBELL: std::cell::Cell<bool> =
        const { std::cell::Cell::new(false) };
}

/// Decodes a `user_data` read from a CQE.
pub(crate) fn decode(user_data: u64) -> Tag {
    let payload = user_data & PAYLOAD_MASK;
    match user_data >> KIND_SHIFT {
        0 => Tag::Op(payload),
        1 => Tag::DoorbellIn,
        2 => Tag::DoorbellOut(payload as usize),
        3 => Tag::EventFdRead,
        4 => Tag::Cancel,
        _ => Tag::Unknown(user_data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected: `set_in_place` writes exactly what the crate's
    /// `set_user_data` writes, and leaves every other byte (those after
    /// `user_data` included) as they were.
    #[test]
    fn setting_user_data_in_place_writes_what_the_crate_writes_and_nothing_else() {
        let fixed =
            io_uring::opcode::ReadFixed::new(io_uring::types::Fixed(7), std::ptr::null_mut(), 9, 3)
                .offset(11)
                .build()
                .personality(5);
        for user_data in [0, 1, 0x0123_4567_89ab_cdef, u64::MAX] {
            let mut ours = fixed.clone();
            set_in_place(&mut ours, user_data);
            let theirs = fixed.clone().user_data(user_data);
            assert_eq!(ours.get_user_data(), user_data);
            // SAFETY: `Entry` is 64 plain bytes (the kernel's SQE).
            let bytes = |e: &io_uring::squeue::Entry| unsafe {
                std::mem::transmute::<io_uring::squeue::Entry, [u8; 64]>(e.clone())
            };
            assert_eq!(bytes(&ours), bytes(&theirs));
        }
    }

    #[test]
    fn tags_round_trip_and_do_not_collide() {
        assert_eq!(decode(DOORBELL_IN), Tag::DoorbellIn);
        assert_eq!(decode(doorbell_out(5)), Tag::DoorbellOut(5));
        assert_eq!(decode(EVENTFD_READ), Tag::EventFdRead);
        assert_eq!(decode(CANCEL), Tag::Cancel);
        assert_eq!(decode(42), Tag::Op(42));
        assert_eq!(decode(u64::MAX), Tag::Unknown(u64::MAX));
    }
}
