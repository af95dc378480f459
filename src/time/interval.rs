//! `Interval`: ticks at a fixed period.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Sleep, sleep_until};

/// What an [`Interval`] does when ticks were missed (the task was busy).
/// A tick counts as missed when it is taken more than 5 ms after its
/// scheduled time (the same tolerance as Tokio's): a tick only a little
/// late always keeps the schedule.
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
    /// Restart the schedule one period after the late tick was taken.
    Delay,
    /// Drop missed ticks and stay on the original schedule.
    Skip,
}

/// How late a tick may be taken and still count as on time (see
/// [`MissedTickBehavior`]).
const LATE: Duration = Duration::from_millis(5);

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
        let next = next_tick(self.missed, scheduled, Instant::now(), self.period);
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

    /// How the interval catches up after missed ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringlane::time::{interval, MissedTickBehavior};
    /// let mut i = interval(std::time::Duration::from_millis(10));
    /// assert_eq!(i.missed_tick_behavior(), MissedTickBehavior::Burst);
    /// i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    /// assert_eq!(i.missed_tick_behavior(), MissedTickBehavior::Skip);
    /// ```
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// The next tick comes one period from now (Tokio's `reset`). The next
    /// `tick()` waits for the new deadline, even if an earlier `tick()`
    /// future was dropped unfinished (a `select!` branch).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut i = ringlane::time::interval(Duration::from_secs(3600));
    /// i.reset();
    /// assert!(i.next_deadline() > Instant::now() + Duration::from_secs(3500));
    /// ```
    pub fn reset(&mut self) {
        self.reset_after(self.period);
    }

    /// The next tick comes now (Tokio's `reset_immediately`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    /// let j = rt.handle().spawn_pinned(0, async {
    ///     let mut i = ringlane::time::interval(Duration::from_secs(3600));
    ///     i.tick().await; // the first tick is immediate
    ///     i.reset_immediately();
    ///     let start = Instant::now();
    ///     i.tick().await; // not an hour later
    ///     start.elapsed()
    /// }).unwrap();
    /// assert!(rt.block_on(j).unwrap() < Duration::from_secs(60));
    /// ```
    pub fn reset_immediately(&mut self) {
        self.reset_at(Instant::now());
    }

    /// The next tick comes `after` from now (Tokio's `reset_after`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut i = ringlane::time::interval(Duration::from_secs(3600));
    /// let before = Instant::now();
    /// i.reset_after(Duration::from_secs(5));
    /// let next = i.next_deadline();
    /// assert!(next >= before + Duration::from_secs(5) && next < before + Duration::from_secs(60));
    /// ```
    pub fn reset_after(&mut self, after: Duration) {
        self.reset_at(super::sleep::after(Instant::now(), after));
    }

    /// The next tick comes at `deadline` (Tokio's `reset_at`); the ticks
    /// after it follow the period from there.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mut i = ringlane::time::interval(Duration::from_millis(10));
    /// let at = Instant::now() + Duration::from_secs(7);
    /// i.reset_at(at);
    /// assert_eq!(i.next_deadline(), at);
    /// ```
    pub fn reset_at(&mut self, deadline: Instant) {
        self.delay.reset(deadline);
    }

    /// When the next tick is due.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let start = Instant::now();
    /// let i = ringlane::time::interval_at(start, std::time::Duration::from_secs(1));
    /// assert_eq!(i.next_deadline(), start);
    /// ```
    pub fn next_deadline(&self) -> Instant {
        self.delay.deadline()
    }
}

/// When the tick after one `scheduled` for, and taken at `now`, is due.
/// Saturating: a period near `Duration::MAX` must not overflow `Instant`.
fn next_tick(
    missed: MissedTickBehavior,
    scheduled: Instant,
    now: Instant,
    period: Duration,
) -> Instant {
    let after = super::sleep::after;
    let late = now.saturating_duration_since(scheduled);
    if late <= LATE {
        return after(scheduled, period);
    }
    match missed {
        MissedTickBehavior::Burst => after(scheduled, period),
        MissedTickBehavior::Delay => after(now, period),
        MissedTickBehavior::Skip => {
            // The next point of the original grid after `now`.
            let into = late.as_nanos() % period.as_nanos();
            let into = Duration::new((into / 1_000_000_000) as u64, (into % 1_000_000_000) as u32);
            after(now, period - into)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LATE, MissedTickBehavior::*, next_tick};
    use std::time::{Duration, Instant};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_tick_taken_on_time_or_nearly_keeps_the_schedule_whatever_the_behavior() {
        let t = Instant::now();
        for missed in [Burst, Delay, Skip] {
            assert_eq!(next_tick(missed, t, t, 20 * MS), t + 20 * MS);
            assert_eq!(next_tick(missed, t, t + LATE, 20 * MS), t + 20 * MS);
        }
    }

    /// A tick taken 10 ms late with a 20 ms period: `Delay` used to keep
    /// the old grid unless the tick was a whole period late.
    #[test]
    fn delay_restarts_one_period_after_a_late_tick_even_when_less_than_a_period_late() {
        let t = Instant::now();
        assert_eq!(next_tick(Delay, t, t + 10 * MS, 20 * MS), t + 30 * MS);
        assert_eq!(next_tick(Burst, t, t + 10 * MS, 20 * MS), t + 20 * MS);
    }

    #[test]
    fn skip_lands_on_the_next_grid_point_after_now() {
        let t = Instant::now();
        assert_eq!(next_tick(Skip, t, t + 45 * MS, 20 * MS), t + 60 * MS);
        assert_eq!(next_tick(Skip, t, t + 60 * MS, 20 * MS), t + 80 * MS);
    }

    /// A 1 ns period after a 10 s stall is more than `u32::MAX` periods
    /// behind: the count of skipped periods used to be capped there, which
    /// left the next tick in the past, so several came back to back.
    #[test]
    fn skip_after_more_than_u32_max_periods_is_still_in_the_future() {
        let t = Instant::now();
        let now = t + Duration::from_secs(10);
        let next = next_tick(Skip, t, now, Duration::from_nanos(1));
        assert!(next > now, "the next tick must lie after now");
        assert_eq!(next, now + Duration::from_nanos(1));
    }

    #[test]
    fn a_period_near_duration_max_saturates() {
        let t = Instant::now();
        for missed in [Burst, Delay, Skip] {
            assert!(next_tick(missed, t, t + 10 * MS, Duration::MAX) > t);
        }
    }
}
