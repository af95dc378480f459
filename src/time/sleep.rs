//! `Sleep`: a future that completes at a deadline.
//!
//! Registration rules:
//! 1. A `Sleep` registers lazily, on its first `poll`, in the wheel of the
//!    shard it is polled on (or the fallback thread off-shard).
//! 2. It is dropped or re-registered from wherever it is: on its own shard
//!    it removes its entry directly; from anywhere else it posts the removal
//!    to its shard's mailbox, so the wheel is only ever touched by its owner.
//! 3. It keeps the waker of its last poll: `reset` re-registers with it, so
//!    a task that moves the deadline and waits on something else is still
//!    woken at the new deadline (as with Tokio). The new timer goes in the
//!    wheel of the shard that held the old one when `reset` runs there, and
//!    in the fallback thread otherwise: the caller's shard may stay busy,
//!    or belong to another runtime that exits, and the waiting task's next
//!    poll moves the timer back to its own shard (rule 1).
//! 4. A waker the wheel lets go of is dropped after the wheel's borrow
//!    ends: dropping its last clone can drop another `Sleep` of the shard.
//! 5. A poll that finds the timer pending also reads the clock: a sleep
//!    polled again after its deadline, before the wheel has ticked (a task
//!    poll that outlasted it, or a busy fallback thread), completes then.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::fallback;
use super::wheel::TimerKey;
use crate::context;
use crate::mailbox::Remote;

enum Registration {
    None,
    Shard { remote: Arc<Remote>, key: TimerKey },
    Fallback(u64),
    Done,
}

/// Completes at its deadline. Created by [`sleep`] or [`sleep_until`].
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let t = Instant::now();
/// rt.block_on(rt.handle().spawn_pinned(0, ringlane::time::sleep(Duration::from_millis(5))).unwrap()).unwrap();
/// assert!(t.elapsed() >= Duration::from_millis(5));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    registration: Registration,
    /// The waker of the last poll that registered or refreshed (rule 3).
    waker: Option<Waker>,
}

/// Waits until `duration` has passed.
///
/// # Examples
///
/// ```
/// # let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// rt.block_on(ringlane::time::sleep(std::time::Duration::from_millis(1)));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(after(Instant::now(), duration))
}

/// `from + duration`, or about 30 years from `from` if that overflows
/// `Instant` (a `Duration::MAX` sleep, timeout, period or window): the
/// runtime's one way to say "never" as an instant.
pub(crate) fn after(from: Instant, duration: Duration) -> Instant {
    from.checked_add(duration)
        .unwrap_or_else(|| from + Duration::from_secs(86_400 * 365 * 30))
}

/// Waits until `deadline`.
///
/// # Examples
///
/// ```
/// # let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let at = std::time::Instant::now() + std::time::Duration::from_millis(1);
/// rt.block_on(ringlane::time::sleep_until(at));
/// assert!(std::time::Instant::now() >= at);
/// ```
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registration: Registration::None,
        waker: None,
    }
}

impl Sleep {
    /// The instant this sleep completes at.
    ///
    /// # Examples
    ///
    /// ```
    /// let at = std::time::Instant::now();
    /// assert_eq!(ringlane::time::sleep_until(at).deadline(), at);
    /// ```
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed, whether or not the sleep has been
    /// polled since. (Tokio's says `true` only once its timer driver has
    /// fired the registered sleep: `false` for a sleep never polled.) A poll
    /// then completes at once: timers never fire early, and a sleep whose
    /// deadline has passed, `sleep(Duration::ZERO)` included, is ready on
    /// its first poll without waiting for a timer tick as Tokio's does (it
    /// spends the cooperative budget, so a loop of them still yields).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = ringlane::time::sleep(std::time::Duration::from_secs(60));
    /// assert!(!s.is_elapsed());
    /// let s = ringlane::time::sleep(std::time::Duration::ZERO);
    /// assert!(s.is_elapsed());
    /// ```
    pub fn is_elapsed(&self) -> bool {
        self.is_done() || Instant::now() >= self.deadline
    }

    /// Whether a poll found the timer fired (the sleep has completed).
    fn is_done(&self) -> bool {
        matches!(self.registration, Registration::Done)
    }

    /// Moves the deadline, as if this `Sleep` had been created with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut s = ringlane::time::sleep(Duration::from_secs(60));
    /// let soon = Instant::now() + Duration::from_millis(1);
    /// s.reset(soon);
    /// assert_eq!(s.deadline(), soon);
    /// ```
    pub fn reset(&mut self, deadline: Instant) {
        // Rule 3: the old timer's shard keeps the new one only if `reset`
        // runs there.
        let here = match &self.registration {
            Registration::Shard { remote, .. } => remote.is_current(),
            _ => false,
        };
        self.deregister();
        self.deadline = deadline;
        // Rule 3: armed again at once for the task that polled it last.
        if let Some(waker) = self.waker.take() {
            if Instant::now() >= deadline || self.register(&waker, here).is_ready() {
                self.registration = Registration::None; // the next poll completes
                waker.wake();
            }
        }
    }

    fn deregister(&mut self) {
        match std::mem::replace(&mut self.registration, Registration::None) {
            Registration::Shard { remote, key } => {
                if remote.is_current() {
                    // Rule 4: the waker is dropped after the borrow.
                    drop(context::with_current(|cx| {
                        cx.timers.borrow_mut().remove(key)
                    }));
                } else {
                    // Rule 2: only the owner touches its wheel. If the shard
                    // has exited the wheel is gone and nothing is owed.
                    remote.call(Box::new(move || {
                        drop(context::with_current(|cx| {
                            cx.timers.borrow_mut().remove(key)
                        }));
                    }));
                }
            }
            Registration::Fallback(id) => fallback::remove(id),
            Registration::None | Registration::Done => {}
        }
    }

    /// Registers in the current shard's wheel if `on_shard` and there is
    /// one, else with the fallback thread.
    fn register(&mut self, waker: &Waker, on_shard: bool) -> Poll<()> {
        self.waker = Some(waker.clone());
        let registered = on_shard
            .then(|| {
                context::with_current(|shard| {
                    shard
                        .timers
                        .borrow_mut()
                        .insert(self.deadline, waker.clone())
                        .map(|key| (shard.remote.clone(), key))
                })
            })
            .flatten();
        self.registration = match registered {
            Some(Some((remote, key))) => Registration::Shard { remote, key },
            Some(None) => Registration::Done,
            None => Registration::Fallback(fallback::insert(self.deadline, waker.clone())),
        };
        if self.is_done() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A loop of due sleeps yields now and then (coop invariant 2).
        crate::executor::coop::budgeted(cx, |cx| self.poll_fired(cx))
    }
}

impl Sleep {
    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let this = self;
        let state = match &this.registration {
            Registration::Done => return Poll::Ready(()),
            Registration::Shard { remote, key } if remote.is_current() => {
                let key = *key;
                let polled =
                    context::with_current(|shard| shard.timers.borrow_mut().poll(key, cx.waker()));
                // Rule 4: a replaced waker is dropped after the borrow.
                polled.map(|(poll, _replaced)| poll)
            }
            Registration::Fallback(id) if context::current_index().is_none() => {
                Some(fallback::poll(*id, cx.waker()))
            }
            Registration::None => None,
            // Polled somewhere other than where it registered: move.
            Registration::Shard { .. } | Registration::Fallback(_) => {
                this.deregister();
                None
            }
        };
        match state {
            Some(Poll::Ready(())) => {
                this.registration = Registration::Done;
                this.waker = None;
                Poll::Ready(())
            }
            // Rule 5: due, though the wheel has not ticked since.
            Some(Poll::Pending) if Instant::now() >= this.deadline => {
                this.deregister();
                this.registration = Registration::Done;
                this.waker = None;
                Poll::Ready(())
            }
            Some(Poll::Pending) => {
                if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    this.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            None if Instant::now() >= this.deadline => {
                this.registration = Registration::Done;
                this.waker = None;
                Poll::Ready(())
            }
            None => this.register(cx.waker(), true),
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("elapsed", &self.is_elapsed())
            .finish()
    }
}
