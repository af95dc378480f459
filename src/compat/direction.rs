//! The two ways an fd is waited on, what a poll mask means for each, and
//! the check a write event gets before it is believed (readiness
//! invariant 6).

use std::os::fd::RawFd;

/// Which way an fd is waited on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl Direction {
    /// The events a poll for this direction asks for.
    pub(super) fn events(self) -> u32 {
        match self {
            Direction::Read => (libc::POLLIN | libc::POLLRDHUP) as u32,
            Direction::Write => libc::POLLOUT as u32,
        }
    }

    /// Whether a poll `mask` says this direction is closed (readiness
    /// invariant 4).
    pub(super) fn closed_by(self, mask: u32) -> bool {
        let has = |bit: i16| mask & bit as u32 != 0;
        match self {
            Direction::Read => has(libc::POLLHUP) || (has(libc::POLLIN) && has(libc::POLLRDHUP)),
            Direction::Write => has(libc::POLLHUP) || has(libc::POLLERR),
        }
    }

    /// Whether an event with `mask` from a poll op on `fd` may be believed
    /// (readiness invariant 6). The kernel posts a poll op's CQE with the
    /// mask its wake-up carried, without asking the fd again (epoll asks).
    /// A read event is believed. A write event that reports no error or
    /// hang-up is checked with `poll(2)` (no wait): a unix datagram
    /// socket whose send fails on a full peer frees the buffer it took,
    /// which wakes the socket's own waiters with `POLLOUT` though it is not
    /// writable.
    pub(super) fn believes(self, fd: RawFd, mask: u32) -> bool {
        if self == Direction::Read || self.closed_by(mask) {
            return true;
        }
        // Not ready (`Some(0)`): the event was the wake-up's word only. An
        // error (`EINTR`, say) believes it: the syscall will tell.
        self.ask(fd) != Some(0)
    }

    /// Asks the kernel now (`poll(2)` for this direction's events, no
    /// wait): the events it reports (0: not ready; `POLLHUP`, `POLLERR`,
    /// `POLLNVAL` come unasked), or `None` if `poll(2)` failed. A closed or
    /// replaced fd number gets `POLLNVAL` or another file's answer: either
    /// way the syscall that follows reports what it finds.
    pub(super) fn ask(self, fd: RawFd) -> Option<u32> {
        let mut pfd = libc::pollfd {
            fd,
            // The poll op's mask, as poll(2) takes it (all bits fit).
            events: self.events() as libc::c_short,
            revents: 0,
        };
        // SAFETY: one live `pollfd`; a zero timeout never blocks.
        match unsafe { libc::poll(&mut pfd, 1, 0) } {
            n if n < 0 => None,
            _ => Some(pfd.revents as u16 as u32),
        }
    }
}
