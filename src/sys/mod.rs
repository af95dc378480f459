//! The kernel-facing layer: the only code in the crate that calls io_uring
//! or other syscalls directly.
//!
//! Everything above this module sees a narrow interface: a [`Ring`] that can
//! push SQEs, submit, park with a timeout and hand back completions as
//! `(user_data, result, flags)`; an [`EventFd`] doorbell for threads that own
//! no ring; and the [`user_data`] namespace. A fallback backend (epoll, say)
//! would replace this module and nothing else.

mod eventfd;
mod fixed;
mod probe;
mod ring;
pub(crate) mod user_data;

pub(crate) use eventfd::EventFd;
pub(crate) use fixed::FixedSlots;
pub use probe::RingFeatures;
pub(crate) use probe::probe_features;
#[cfg(test)]
pub(crate) use ring::FAKE_EAGAIN;
pub(crate) use ring::{CQE_F_MORE, Completion, Ring};
