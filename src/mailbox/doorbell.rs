//! The park/wake protocol between a shard and everyone who hands it work.
//!
//! Each shard has one [`DoorbellState`]: `RUNNING`, `PARKED`, `NOTIFIED` or
//! `CLOSED`. The payload (a task, a wake-up, a message) is always in the
//! shard's own queue; the doorbell only wakes a receiver that sleeps in
//! `io_uring_enter`.
//!
//! **Sender** (any thread) handing shard B a payload:
//! 1. S1: push the payload onto B's queue.
//! 2. S2: full fence (`SeqCst`).
//! 3. S3: load B's state. Only if it is `PARKED`, CAS it `PARKED → NOTIFIED`;
//!    the one sender whose CAS wins rings B's doorbell. Every other outcome
//!    (`RUNNING`, `NOTIFIED`, a lost CAS, `CLOSED`) rings nothing.
//!
//! **Receiver** B:
//! 1. R1: take everything from its queue, run tasks, reap completions.
//! 2. R2: optionally spin for the configured window, state still `RUNNING`
//!    (senders ring nothing, the receiver finds work with no syscall).
//! 3. R3: store `PARKED`, then a full fence (`SeqCst`).
//! 4. R4: look at the queue (and the run queue and shutdown flag) again. If
//!    anything is there, store `RUNNING` and go to R1 without sleeping.
//! 5. R5: `io_uring_enter` waiting for one CQE, with the nearest timer
//!    deadline as the timeout. A doorbell CQE (or eventfd read) ends it.
//! 6. R6: store `RUNNING` and go to R1.
//!
//! **Why no wake-up is lost.** S1→S2→S3 and R3→R4 are each separated by a
//! `SeqCst` fence, so in the single total order of those fences either B's
//! fence comes first, and S3 sees `PARKED` (or `NOTIFIED`, set by a sender
//! that will ring), or S2 comes first, and R4 sees the payload. Either the
//! receiver does not sleep, or a doorbell is on its way. A receiver that is
//! `RUNNING` always passes R3/R4 again before it sleeps.
//!
//! **Coalescing.** Only one CAS per park succeeds, so a parked shard gets at
//! most one doorbell however many senders pile in.
//!
//! `doorbell_tests.rs` pins the state machine; the loom models in
//! `loom-models/` check the protocol above exhaustively (this file compiled
//! unchanged against loom's atomics); `tests/lost_wakeup.rs` stress-tests
//! the whole runtime's hand-offs (over a million, each of which fails
//! loudly instead of hanging if its wake-up was lost).

use super::sync::{AtomicU8, Ordering, fence};

const RUNNING: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;
const CLOSED: u8 = 3;

/// The receiver-side state of the park/wake protocol. Every hand-off
/// reads it from another core, so it has a cache-line block of its own:
/// no neighbour's writes invalidate it while the receiver runs.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct DoorbellState {
    state: AtomicU8,
}

impl DoorbellState {
    /// A receiver that is running.
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(RUNNING),
        }
    }

    /// Receiver step R3: announce the intent to sleep. The caller must look
    /// at its queue again afterwards (R4).
    pub(crate) fn prepare_park(&self) {
        // The fence orders the store: a `SeqCst` store would add a locked
        // exchange (x86) for nothing. A sender whose S2 fence comes after
        // this one in the fences' total order reads `PARKED` (or later).
        self.state.store(PARKED, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Receiver steps R4 (work found) and R6 (woke up): back to running.
    /// Returns whether a sender had rung the doorbell meanwhile.
    pub(crate) fn finish_park(&self) -> bool {
        self.state.swap(RUNNING, Ordering::SeqCst) == NOTIFIED
    }

    /// Sender steps S2 and S3, after the payload was pushed (S1): returns
    /// `true` for exactly the one sender that must ring the doorbell.
    pub(crate) fn should_ring(&self) -> bool {
        fence(Ordering::SeqCst);
        self.should_ring_fenced()
    }

    /// Step S3 alone, for a sender that fenced (`SeqCst`) after its push.
    pub(crate) fn should_ring_fenced(&self) -> bool {
        self.state.load(Ordering::SeqCst) == PARKED
            && self
                .state
                .compare_exchange(PARKED, NOTIFIED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Whether the receiver is running (neither asleep, being woken, nor gone).
    pub(crate) fn is_running(&self) -> bool {
        self.state.load(Ordering::SeqCst) == RUNNING
    }

    /// Whether the receiver is asleep or committed to sleeping (step R3
    /// passed, no doorbell since).
    pub(crate) fn is_parked(&self) -> bool {
        self.state.load(Ordering::SeqCst) == PARKED
    }

    /// Whether the receiver has exited ([`close`](Self::close)).
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::SeqCst) == CLOSED
    }

    /// The receiver will never park again (it has exited).
    pub(crate) fn close(&self) {
        self.state.store(CLOSED, Ordering::SeqCst);
    }
}
