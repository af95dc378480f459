//! Tests of the ring's own invariants (late SQEs, completions taken early).

use super::*;
use io_uring::opcode;

fn nop(tag: u64) -> squeue::Entry {
    opcode::Nop::new().build().user_data(tag)
}

fn ring() -> Ring {
    let features = super::super::probe::probe_features(true).expect("io_uring on this machine");
    Ring::new(8, &features).expect("ring")
}

/// A receive queued before a send of the same batch is issued after it
/// (invariant 5); NOPs complete inline, in issue order.
#[test]
fn late_sqes_are_issued_after_the_batchs_other_sqes() {
    let mut ring = ring();
    // SAFETY: NOPs point at no memory.
    unsafe {
        ring.push_late(&[nop(1)]).unwrap();
        ring.push(&nop(2)).unwrap();
        ring.push_late(&[nop(3)]).unwrap();
        ring.push(&nop(4)).unwrap();
    }
    ring.submit().unwrap();
    let mut got = Vec::new();
    ring.reap(&mut got);
    let order: Vec<u64> = got.iter().map(|c| c.user_data).collect();
    assert_eq!(order, [2, 4, 1, 3]);
}

/// Late SQEs hold their SQ room: the SQ never takes more than it has,
/// and a full one is submitted (late SQEs included) to make room.
#[test]
fn late_sqes_reserve_their_room_in_the_sq() {
    let mut ring = ring();
    let capacity = ring.uring.submission().capacity();
    for tag in 0..capacity as u64 {
        // SAFETY: NOPs point at no memory.
        unsafe { ring.push_late(&[nop(tag)]).unwrap() };
    }
    assert!(!ring.sq_has_room_for(1), "late SQEs count");
    // SAFETY: as above.
    unsafe { ring.push(&nop(99)).unwrap() }; // submits the late ones first
    assert!(ring.late.is_empty());
    ring.submit().unwrap();
    let mut got = Vec::new();
    ring.reap(&mut got);
    let order: Vec<u64> = got.iter().map(|c| c.user_data).collect();
    let mut want: Vec<u64> = (0..capacity as u64).collect();
    want.push(99);
    assert_eq!(order, want);
}

/// A late read withdrawn before any enter completes as a NOP (result 0,
/// its `user_data` kept), so do its linked timeout and nothing else: the
/// pipe's bytes written afterwards are still there.
#[test]
fn a_withdrawn_late_read_and_its_linked_timeout_complete_as_nops() {
    let mut ring = ring();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut buf = [0u8; 8];
    let ts = io_uring::types::Timespec::new().sec(10);
    let read = opcode::Read::new(io_uring::types::Fd(fds[0]), buf.as_mut_ptr(), 8)
        .build()
        .user_data(1)
        .flags(squeue::Flags::IO_LINK);
    let timeout = opcode::LinkTimeout::new(&ts).build().user_data(2);
    // SAFETY: `buf` and `ts` outlive the CQEs reaped below.
    unsafe { ring.push_late(&[read, timeout]).unwrap() };
    assert!(!ring.withdraw_late(3), "not a late SQE");
    assert!(ring.withdraw_late(1));
    // SAFETY: a NOP points at no memory.
    unsafe { ring.push(&nop(4)).unwrap() };
    ring.submit().unwrap();
    let mut got = Vec::new();
    ring.reap(&mut got);
    let mut seen: Vec<(u64, i32)> = got.iter().map(|c| (c.user_data, c.result)).collect();
    seen.sort();
    assert_eq!(seen, [(1, 0), (2, 0), (4, 0)]);
    // SAFETY: one byte from a live array, to the pipe's write end.
    assert_eq!(unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) }, 1);
    // SAFETY: `buf` is writable for 8 bytes.
    assert_eq!(unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), 8) }, 1);
    // SAFETY: both fds are ours and closed once.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

/// Late SQEs join the SQ only at the enter, behind everything pushed
/// before it (a cancel included), and stay withdrawable until then
/// (invariant 5).
#[test]
fn late_sqes_stay_withdrawable_until_the_enter() {
    let mut ring = ring();
    // SAFETY: NOPs point at no memory.
    unsafe {
        ring.push(&nop(1)).unwrap();
        ring.push_late(&[nop(2)]).unwrap();
        ring.push(&nop(3)).unwrap(); // a cancel of another op, say
        ring.push_late(&[nop(4)]).unwrap();
    }
    assert!(
        ring.withdraw_late(2),
        "pushing another SQE moved the late ones"
    );
    ring.submit().unwrap();
    assert!(!ring.withdraw_late(4), "issued at the enter");
    let mut got = Vec::new();
    ring.reap(&mut got);
    let order: Vec<u64> = got.iter().map(|c| c.user_data).collect();
    assert_eq!(order, [1, 3, 2, 4]);
}

/// Completions taken early (invariant 6) are work: `has_completions`
/// sees them, a park with no time limit returns at once instead of
/// sleeping on an empty CQ, and the next reap hands them out first, in
/// CQ order, ahead of what completed after.
#[test]
fn completions_taken_early_are_reaped_first_and_keep_a_park_awake() {
    let mut ring = ring();
    // SAFETY: NOPs point at no memory.
    unsafe {
        ring.push(&nop(1)).unwrap();
        ring.push(&nop(2)).unwrap();
    }
    ring.submit().unwrap();
    let early: Vec<u64> = ring.take_early().iter().map(|c| c.user_data).collect();
    assert_eq!(early, [1, 2]);
    assert!(ring.uring.completion().is_empty(), "the CQ was not emptied");
    assert!(
        ring.has_completions(),
        "completions taken early went unseen"
    );
    // SAFETY: a NOP points at no memory.
    unsafe { ring.push(&nop(3)).unwrap() };
    ring.park(None).unwrap();
    ring.take_early().retain(|c| c.user_data != 2);
    // The CQ is empty and nothing is in flight: a park that waited for
    // a CQE would sleep until its timeout.
    let t = std::time::Instant::now();
    ring.park(Some(std::time::Duration::from_secs(2))).unwrap();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "a park slept while completions taken early waited"
    );
    let mut got = Vec::new();
    ring.reap(&mut got);
    let order: Vec<u64> = got.iter().map(|c| c.user_data).collect();
    assert_eq!(order, [1, 3]);
    assert!(!ring.has_completions());
}

/// A take between two reaps (a doorbell sent from a waker while a reap's
/// batch is being dispatched) keeps CQ order: what it took comes out of
/// the next reap ahead of what completed after it.
#[test]
fn a_take_between_reaps_keeps_cq_order() {
    let mut ring = ring();
    let order = |got: &[Completion]| got.iter().map(|c| c.user_data).collect::<Vec<u64>>();
    let mut got = Vec::new();
    for tag in [1, 2] {
        // SAFETY: NOPs point at no memory.
        unsafe { ring.push(&nop(tag)).unwrap() };
    }
    ring.submit().unwrap();
    ring.reap(&mut got);
    assert_eq!(order(&got), [1, 2]);
    got.clear();
    // SAFETY: as above.
    unsafe { ring.push(&nop(3)).unwrap() };
    ring.submit().unwrap();
    assert_eq!(ring.take_early().len(), 1);
    // SAFETY: as above.
    unsafe { ring.push(&nop(4)).unwrap() };
    ring.submit().unwrap();
    ring.reap(&mut got);
    assert_eq!(order(&got), [3, 4]);
}

/// An inline completion's take (`take_completion_of`) leaves every other
/// completion for the next reap, in CQ order: two NOPs already in the CQ,
/// then ours, then one more behind it.
#[test]
fn taking_ones_own_completion_keeps_the_others_in_order() {
    let mut ring = ring();
    // SAFETY: NOPs point at no memory.
    unsafe {
        ring.push(&nop(1)).unwrap();
        ring.push(&nop(2)).unwrap();
    }
    ring.submit().unwrap(); // in the CQ, not reaped
    // SAFETY: as above.
    unsafe { ring.push(&nop(3)).unwrap() };
    assert!(ring.holds_only_one_sqe());
    ring.submit_only().unwrap();
    let ours = ring
        .take_completion_of(3)
        .expect("a NOP completes at submit");
    assert_eq!((ours.user_data, ours.result), (3, 0));
    assert!(ring.has_completions(), "the others wait early");
    // SAFETY: as above.
    unsafe { ring.push(&nop(4)).unwrap() };
    ring.submit().unwrap();
    let mut got = Vec::new();
    ring.reap(&mut got);
    let order: Vec<u64> = got.iter().map(|c| c.user_data).collect();
    assert_eq!(order, [1, 2, 4]);
}

/// The try's enter without `GETEVENTS` submits what the SQ holds, and a
/// take that finds no completion of its op takes nothing away.
#[test]
fn a_take_that_misses_leaves_the_cq_to_the_reap() {
    let mut ring = ring();
    // SAFETY: NOPs point at no memory.
    unsafe {
        ring.push(&nop(1)).unwrap();
        ring.push_late(&[nop(2)]).unwrap();
    }
    assert!(!ring.holds_only_one_sqe(), "a late SQE waits too");
    ring.submit_only().unwrap();
    assert!(!ring.sq_pending(), "both went in");
    assert!(ring.take_completion_of(7).is_none());
    let mut got = Vec::new();
    ring.reap(&mut got);
    let order: Vec<u64> = got.iter().map(|c| c.user_data).collect();
    assert_eq!(order, [1, 2]);
}
