//! A test-only hook that one test sets for one object (a pool, a set) and
//! the code under test runs at a chosen instant: keyed by the object's
//! address, so other tests' objects, used beside it, never fire it.

use parking_lot::Mutex;

/// A hook and the key of the object it is for.
type Armed = (usize, Box<dyn FnOnce() + Send>);

/// Holds at most one armed hook.
pub(crate) struct KeyedHook(Mutex<Option<Armed>>);

impl KeyedHook {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Arms `hook` for the object at address `key`.
    pub(crate) fn set(&self, key: usize, hook: impl FnOnce() + Send + 'static) {
        *self.0.lock() = Some((key, Box::new(hook)));
    }

    /// Runs the hook (once) if it was armed for `key`, outside the lock.
    pub(crate) fn run(&self, key: usize) {
        let mut slot = self.0.lock();
        let ours = matches!(&*slot, Some((at, _)) if *at == key);
        let hook = if ours {
            slot.take().map(|(_, h)| h)
        } else {
            None
        };
        drop(slot);
        if let Some(hook) = hook {
            hook();
        }
    }
}
