//! A waker whose last clone's drop drops something: how the waker-drop
//! tests reach back into the object that held the waker (another wait on
//! it, or the last sender of a channel).

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

/// Wakes `inner` (if any); its last clone's drop drops `victim`.
pub struct DropsOnDrop {
    pub inner: Option<Waker>,
    pub victim: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Wake for DropsOnDrop {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(w) = &self.inner {
            w.wake_by_ref();
        }
    }
}

impl Drop for DropsOnDrop {
    fn drop(&mut self) {
        drop(self.victim.lock().unwrap().take());
    }
}

/// A `DropsOnDrop` with nothing to drop yet, waking `inner`.
pub fn drops_on_drop(inner: Option<Waker>) -> Arc<DropsOnDrop> {
    Arc::new(DropsOnDrop {
        inner,
        victim: Mutex::new(None),
    })
}

/// Gives `shared` its victim.
pub fn arm(shared: &DropsOnDrop, victim: impl Any + Send) {
    *shared.victim.lock().unwrap() = Some(Box::new(victim));
}
