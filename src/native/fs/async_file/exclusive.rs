//! `Exclusive`: the op in flight, reachable only through `&mut` (as the
//! unstable `std::sync::Exclusive`), so that `AsyncFile` is `Sync` as
//! Tokio's file is, and a `&self` call (`metadata`) can be awaited in a
//! `Send` task.
//!
//! Its own module, so that nothing in `AsyncFile` can reach the future
//! through a shared reference: the field is private, and the one accessor
//! takes `&mut self`.

use super::OpFuture;

pub(super) struct Exclusive(OpFuture);

// SAFETY: the future is reachable only through `get_mut` (`&mut self`); a
// `&Exclusive` gives access to nothing (`AsyncFile`'s `Debug` looks only at
// which state it is in), so sharing one between threads cannot race.
unsafe impl Sync for Exclusive {}

impl Exclusive {
    pub(super) fn new(op: OpFuture) -> Self {
        Exclusive(op)
    }

    pub(super) fn get_mut(&mut self) -> &mut OpFuture {
        &mut self.0
    }
}
