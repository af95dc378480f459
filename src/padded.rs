//! `Padded`: keeps a hot atomic (or lock) on a cache-line block of its own,
//! so writes to its neighbours do not drag it across cores.

/// Aligns its content to its own 128-byte block (two cache lines, as
/// adjacent-line prefetch pairs them on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
