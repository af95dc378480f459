//! The op lifecycle: one io_uring operation from submission to its final
//! completion, whatever happens to the future that started it.
//!
//! Invariants (this module is the only one that changes an op's state):
//! 1. An op is submitted to, and reaped from, one ring: its *home* shard's,
//!    the shard whose task started it.
//! 2. Everything the kernel may touch (buffers, paths, the fd it works on)
//!    lives in the op's cell from submission until the final CQE; the future gets it back only from a completed op.
//! 3. States: `Submitted` → `Completed` → `Taken` when the future is polled
//!    after the CQE; `Submitted` → `Abandoned` when the future is dropped
//!    first, then freed when the CQE arrives. Drop rules: dropping the
//!    future in `Submitted` moves to `Abandoned` and asks the home ring to
//!    `ASYNC_CANCEL` the op (directly on the home shard, through its mailbox
//!    from anywhere else); in `Completed` it drops the resources; in
//!    `Abandoned` the resources are dropped when the CQE arrives, and an fd
//!    the op produced (open, accept) is closed then. A `CLOSE` is never
//!    cancelled: not by its future, and not by shutdown, which cancels each
//!    cancellable op by its `user_data` (`Completable::cancellable`).
//! 4. The home shard keeps each in-flight op in its op table under a
//!    `user_data` of slot and generation, so a late `ASYNC_CANCEL` cannot
//!    hit a newer op that reuses the slot. The generation is 24 bits, one
//!    counter per table: a cancel would have to wait while its shard
//!    started 2^24 - 1 more ops. None waits that long: one held back (the
//!    SQ full, or a home busy running a task) goes out at the shard's next
//!    tick, and a shard that cannot push a cancel cannot push ops either.
//! 5. A shard exits only once its op table is empty (every op completed or
//!    cancelled); if the kernel does not answer in time, the remaining cells
//!    are leaked, never freed under the kernel.
//! 6. At most half the CQ's entries are single-shot ops in flight (each
//!    op's CQE plus a possible cancel's fit, so a burst of completions does
//!    not overflow the CQ), and an op is pushed only when the SQ has room:
//!    a further op waits, unsubmitted, in its shard's keyed waiter list;
//!    whenever a reap leaves room, every waiter is woken and leaves the
//!    list, and registers again if it still finds no room when polled.
//!    Multishot ops are *standing* (`table::Kind`) and not counted: an
//!    idle connection's armed poll or a listener's accept lasts as long as
//!    its owner, and counting them let a few hundred idle sockets stop
//!    every other op of their shard. Their CQEs can overflow the CQ in a
//!    burst; the kernel keeps overflowed CQEs (`IORING_FEAT_NODROP`, in
//!    every kernel with MSG_RING), the overflow flag counts as work, and
//!    the next enter flushes them. A multishot op the kernel ends (a CQE
//!    without `F_MORE`, as on overflow) is re-armed by its owner.
//! 7. An op submitted while polled under `native::timeout` carries a linked
//!    `LINK_TIMEOUT` SQE, pushed with it as one unit (both or neither), its
//!    duration inside the op's cell. The timeout has its own op-table entry
//!    (so invariant 6 counts its CQE); when it fires, the kernel cancels the
//!    op, whose `-ECANCELED` (or `-EINTR` in io-wq) is reported as
//!    `-ETIMEDOUT`: decided when the CQE arrives, by the deadline (kept in
//!    the cell) and by whether a shutdown cancelled the op before it (the
//!    shard marks the cell as it picks its cancels), so a cancel of
//!    shutdown's before the deadline stays `-ECANCELED` however late it is
//!    reaped or the future looks (an io-wq op's `-EINTR` too: `Interrupted`
//!    would send a retry loop round again). A deadline already past
//!    fails the op with `TimedOut` before anything is submitted.
//! 8. A multishot op (`MultiShot`) stays in the op table from its SQE to
//!    its last CQE (the first without `IORING_CQE_F_MORE`); every CQE before
//!    it is handed to the cell and left in the table. Its SQE points only at
//!    what its cell keeps alive. Dropping the future cancels a live op;
//!    fds it produced and nobody took, or produced after the drop, are
//!    closed by the cell. A *timed* multishot op (`MultiShot::timed`: the
//!    stream a user awaits item by item) bounds each wait for an item by
//!    the `native::timeout` it is polled under: at the deadline the wait
//!    fails with `TimedOut`, and the op stays armed (no linked timeout:
//!    that would end the op for every later wait too), so nothing the
//!    kernel posts is lost. A *bounded* multishot op (`MultiShot::bounded`:
//!    an `Incoming`'s accept) is cancelled by its cell, on the home shard,
//!    once `bound` results wait untaken; that cancel's `-ECANCELED` end is
//!    not a result, and the owner re-arms the ended op once it has taken
//!    the rest (so an owner must poll on a shard, as any re-arm needs).
//!    A *coalescing* one (a readiness poll) is paused the same way when a
//!    result comes while it holds no waker and its shard has gone idle
//!    since the first result its owner has not looked at: the shard's
//!    tasks it woke have run (or were stolen) and did not look, so further
//!    events would only wake the shard to reap them (`ShardContext::idles`
//!    counts the idle moments). The result it holds is kept for the
//!    owner's next look. An op polled off the shards (a Tokio task, whose
//!    schedule a shard's idle says nothing about) is never idle-paused.
//! 9. A two-CQE op (`SEND_ZC`: the result, then a notification once the
//!    kernel no longer reads the buffer) keeps its resources until the
//!    second CQE; the first only records the result, and releases the fd
//!    the op held (`Op::two_cqes_on`): the kernel issued the op by then,
//!    and the notification may wait on the network for as long as a peer
//!    keeps its window shut, which must not keep a closed socket open. It
//!    needs two op-table entries (invariant 6): the second is a
//!    reservation the op removes when it ends.
//! 10. An op naming a registered (fixed) file or buffer, or a provided
//!     buffer group, is bound to the shard whose ring registered it: polled
//!     anywhere else it fails with `InvalidInput` before anything is pushed
//!     (slots are per ring; another ring's slot of that number is another
//!     resource, or none). Its resources hold the registration, so the slot
//!     is cleared and reused only after the op's final CQE.
//!
//! 11. A single-shot op's cell is one allocation, shared by its future and
//!     its home's op table as plain addresses (no reference count, no
//!     lock): the submitting poll writes it before the table has it; from
//!     the push on, its data is touched on the home shard only (poll,
//!     completion and drop there are plain accesses: one thread), apart
//!     from its `Pushed` record (the home, the `user_data`, and whether
//!     the op produces an fd or is uncancellable), which the pushing poll
//!     writes before it returns and nobody writes again, and which the
//!     future reads wherever it is (the future itself is two words), until
//!     the home's final `complete` publishes `Completed` and sets the
//!     cell's `done` flag (Release, after its last touch). From then on
//!     the future, on any thread, takes the result or ends the op without
//!     its home (Acquire): a task stolen after its op completed needs no
//!     word from its home, which may be blocked. Whoever frees the cell
//!     hands its memory to the freeing thread's recycled blocks
//!     (`recycle.rs`, ADR 0026), never to anyone still holding a share.
//! 12. A future polled or dropped away from its home before `done` never
//!     touches the cell but to read its `Pushed` record (invariant 11): it
//!     gives its share to the home through the
//!     home's delegation queue (`handoff.rs`), emptied by a mailbox call
//!     on the home. A poll sends a *watch* with a `Handoff` (a locked slot
//!     for the result and a waker), which the home fills at once if the
//!     op completed, or at its final CQE; the future polls and drops only
//!     the hand-off from then on, and a drop there asks the home to
//!     cancel the op by `user_data` (never by the cell, which the home may
//!     have freed). A drop sends an *abandon*: invariant 3's drop rule,
//!     applied on the home. An exiting shard closes its queue after its
//!     ops ended (or were leaked, invariant 5) and runs what it held; a
//!     delegation that finds the queue closed, or its runtime gone, runs
//!     where it is, ordered after the home's last touch by the queue's
//!     lock or by the `Remote`'s last count. A hand-off of an op the
//!     kernel never answered (leaked at exit, invariant 5) never resolves:
//!     its resources may still be written, so there is nothing to return.
//! 13. An op likely to complete during its submission (`Op::inline`: a
//!     positioned file read or write, a read-only open, a close) is
//!     submitted by the poll that pushed it when that costs no batching,
//!     and its CQE, if the kernel posted it at once, is taken and handed to
//!     the cell there, so the future resolves in that poll; a shard limits
//!     its polls to one such hit until it has seen its tasks wait for lone
//!     ops (rules in `inline.rs`). It is an ordinary pushed op otherwise:
//!     the poll registers the waker, the loop reaps.
//!
//! The op futures are `Send`: the cell is never touched by two threads
//! without one of the orderings above (ADR 0008, ADR 0009, ADR 0015).
//! Multishot ops keep a shared, locked cell (`multi.rs`).

mod cancel;
mod cell;
mod deadline;
mod future;
mod handoff;
mod inline;
mod multi;
mod recycle;
mod room;
mod table;

pub(crate) use cancel::wrong_shard;
pub(crate) use deadline::{DeadlineTimer, current_deadline, with_deadline, without_deadline};
pub(crate) use future::{Op, submit};
pub(crate) use handoff::{HandoffQueue, close_queue as close_handoffs};
pub(crate) use inline::{Inline, InlineTries};
pub(crate) use multi::{MultiShot, Orphan};
pub(crate) use room::{RoomWaiters, waiters_fit, wake_waiters_if_room};
pub(crate) use table::{OpTable, dispatch};
