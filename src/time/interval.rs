//! `Interval`: ticks at a fixed period.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Sleep, sleep_until};

/// What an [`Interval`] does when ticks were missed (the task was busy).
///
/// # Examples
///
/// ```
/// use ringlane::time::{interval, MissedTickBehavior};
/// let mut i = interval(std::time::Duration::from_millis(10));
/// i.set_missed_tick_behavior(MissedTickBehavior::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one per `tick()`, until caught up.
    #[default]
    Burst,
    /// Restart the schedule one period after the late tick.
    Delay,
    /// Drop missed ticks and stay on the original schedule.
    Skip,
}

/// Yields at a fixed period; created by [`interval`] or [`interval_at`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let h = rt.handle().spawn_pinned(0, async {
///     let mut i = ringlane::time::interval(Duration::from_millis(2));
///     let first = i.tick().await;
///     let second = i.tick().await;
///     second - first
/// }).unwrap();
/// assert!(rt.block_on(h).unwrap() >= Duration::from_millis(2));
/// ```
#[derive(Debug)]
pub struct Interval {
    delay: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

/// An interval whose first tick completes at once.
///
/// # Panics
///
/// If `period` is zero (like `tokio::time::interval`): a zero period would
/// spin. Use [`interval_at`] with a non-zero period.
///
/// # Examples
///
/// ```
/// let mut i = ringlane::time::interval(std::time::Duration::from_secs(1));
/// assert_eq!(i.period(), std::time::Duration::from_secs(1));
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// An interval whose first tick completes at `start`.
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let i = ringlane::time::interval_at(Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
/// ```
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "ringlane::time::interval: the period must be non-zero"
    );
    Interval {
        delay: sleep_until(start),
        period,
        missed: MissedTickBehavior::default(),
    }
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for.
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut i = ringlane::time::interval(std::time::Duration::from_millis(1));
    /// rt.block_on(async { i.tick().await; i.tick().await; });
    /// ```
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    ///
    /// # Examples
    ///
    /// ```
    /// # let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let mut i = ringlane::time::interval(std::time::Duration::from_millis(1));
    /// rt.block_on(std::future::poll_fn(|cx| i.poll_tick(cx)));
    /// ```
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.delay).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let scheduled = self.delay.deadline();
        let now = Instant::now();
        // Saturating: a period near `Duration::MAX` must not overflow `Instant`.
        let after = super::sleep::after;
        let next = match self.missed {
            MissedTickBehavior::Burst => after(scheduled, self.period),
            MissedTickBehavior::Delay if now > after(scheduled, self.period) => {
                after(now, self.period)
            }
            MissedTickBehavior::Delay => after(scheduled, self.period),
            MissedTickBehavior::Skip => {
                let behind =
                    now.saturating_duration_since(scheduled).as_nanos() / self.period.as_nanos();
                let periods = u32::try_from(behind + 1).unwrap_or(u32::MAX);
                after(
                    scheduled,
                    self.period.checked_mul(periods).unwrap_or(Duration::MAX),
                )
            }
        };
        self.delay.reset(next);
        Poll::Ready(scheduled)
    }

    /// Sets what happens to missed ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut i = ringlane::time::interval(std::time::Duration::from_secs(1));
    /// i.set_missed_tick_behavior(ringlane::time::MissedTickBehavior::Delay);
    /// ```
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The period.
    ///
    /// # Examples
    ///
    /// ```
    /// let i = ringlane::time::interval(std::time::Duration::from_millis(7));
    /// assert_eq!(i.period().as_millis(), 7);
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }
}
