//! `ringlane::signal` against `tokio::signal`'s contract: a listener sees
//! the deliveries made after it was created, several between two receives
//! are one event, every listener of a signal sees it, a waiting listener
//! is woken (from a shard task, a Tokio task or a plain thread), bad
//! signal numbers are errors, and `ctrl_c` catches `SIGINT` instead of the
//! process dying of it.
//!
//! Each test listens for a signal of its own (tests share the process's
//! handlers), raised with `raise(3)`: delivered to the calling thread,
//! its handler has run when `raise` returns.

mod common;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use ringlane::signal::unix::{Signal, SignalKind, signal};

use common::child::run_ignored;
use common::{LIMIT, join_within};

fn raise(signum: libc::c_int) {
    // SAFETY: `raise` has no preconditions; each test installs the
    // handler (by making a listener) before it raises.
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

fn rt_signal(offset: libc::c_int) -> libc::c_int {
    libc::SIGRTMIN() + offset
}

fn poll_once(s: &mut Signal) -> Poll<Option<()>> {
    s.poll_recv(&mut Context::from_waker(Waker::noop()))
}

/// Expected (Tokio): a listener sees deliveries made after it was created,
/// not before; deliveries between two receives are one event; each of two
/// listeners sees a delivery.
#[test]
fn listeners_see_later_deliveries_once_each_coalesced() {
    let usr1 = SignalKind::user_defined1();
    let mut early = signal(usr1).unwrap();
    raise(libc::SIGUSR1);
    let mut late = signal(usr1).unwrap();
    assert_eq!(
        poll_once(&mut early),
        Poll::Ready(Some(())),
        "made before it"
    );
    assert!(poll_once(&mut late).is_pending(), "made after it");
    raise(libc::SIGUSR1);
    raise(libc::SIGUSR1);
    assert_eq!(poll_once(&mut early), Poll::Ready(Some(())));
    assert!(
        poll_once(&mut early).is_pending(),
        "two deliveries, one event"
    );
    assert_eq!(poll_once(&mut late), Poll::Ready(Some(())));
    assert!(poll_once(&mut late).is_pending());
}

/// Expected: a listener waiting in a shard task, in a Tokio task or in a
/// plain `block_on` is woken by each delivery from another thread, round
/// after round (the race between the listener's registration and the
/// handler, run 200 times in each).
#[test]
fn a_waiting_listener_is_woken_by_every_delivery_wherever_it_waits() {
    let signum = rt_signal(1);
    for place in ["shard", "tokio", "block_on"] {
        let mut listener = signal(SignalKind::from_raw(signum)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let waiter = std::thread::spawn(move || {
            let rt = common::runtime(1);
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            for _ in 0..200 {
                tx.send(()).unwrap();
                let got = match place {
                    "shard" => {
                        let j = rt
                            .handle()
                            .spawn_pinned(0, async move {
                                let got = listener.recv().await;
                                (listener, got)
                            })
                            .unwrap();
                        let (back, got) = join_within(&rt, j, LIMIT, "a shard's wait");
                        listener = back;
                        got
                    }
                    "tokio" => tokio.block_on(async {
                        tokio::time::timeout(LIMIT, listener.recv()).await.unwrap()
                    }),
                    _ => rt.block_on(async {
                        ringlane::time::timeout(LIMIT, listener.recv())
                            .await
                            .unwrap()
                    }),
                };
                assert_eq!(got, Some(()), "{place}");
            }
        });
        for _ in 0..200 {
            rx.recv_timeout(LIMIT).expect("the waiter's next round");
            // The waiter asks for the next round only after it received
            // this one: no two deliveries fall between its receives.
            raise(signum);
        }
        waiter.join().expect("a wait was lost");
    }
}

/// Expected (Tokio refuses the same, as `Other`): numbers that are no
/// signal, and signals that cannot be handled, are `InvalidInput`, not a
/// panic.
#[test]
fn bad_and_unhandleable_signals_are_errors() {
    for signum in [
        0,
        -1,
        65,
        1000,
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGILL,
        libc::SIGFPE,
    ] {
        let e = signal(SignalKind::from_raw(signum)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{signum}: {e}");
    }
}

struct Counted;

impl Wake for Counted {
    fn wake(self: Arc<Self>) {}
}

/// Expected: a listener dropped while waiting leaves no waker behind (its
/// registration goes with it), and a listener polled again with another
/// waker keeps one registration.
#[test]
fn a_dropped_waiting_listener_leaves_no_waker_behind() {
    let mut listener = signal(SignalKind::from_raw(rt_signal(2))).unwrap();
    let (first, second) = (Arc::new(Counted), Arc::new(Counted));
    let w1 = Waker::from(first.clone());
    assert!(
        listener
            .poll_recv(&mut Context::from_waker(&w1))
            .is_pending()
    );
    assert_eq!(
        Arc::strong_count(&first),
        3,
        "ours, the waker, the registration"
    );
    let w2 = Waker::from(second.clone());
    assert!(
        listener
            .poll_recv(&mut Context::from_waker(&w2))
            .is_pending()
    );
    assert_eq!(Arc::strong_count(&first), 2, "replaced, not added");
    drop(listener);
    assert_eq!(
        Arc::strong_count(&second),
        2,
        "the registration went with it"
    );
}

const CHILD_VAR: &str = "RINGLANE_SIGNAL_CHILD";
const CHILD_DONE: &str = "RINGLANE-SIGNAL-CHILD-DONE";

#[test]
#[ignore = "child process of ctrl_c_catches_sigint_and_the_process_lives_on"]
fn child_ctrl_c() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    // Installed before any SIGINT is raised: one before it would end the
    // process, as it should.
    let _installed = signal(SignalKind::interrupt()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let raiser = std::thread::spawn(move || {
        while !d.load(Ordering::SeqCst) {
            raise(libc::SIGINT);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let rt = common::runtime(1);
    rt.block_on(async {
        ringlane::time::timeout(LIMIT, ringlane::signal::ctrl_c())
            .await
            .expect("no SIGINT seen")
            .unwrap()
    });
    done.store(true, Ordering::SeqCst);
    raiser.join().unwrap();
    drop(rt);
    println!("{CHILD_DONE}");
}

/// Expected (Tokio): `ctrl_c` completes at a `SIGINT`, and the process,
/// whose handler now catches it, goes on (run in a child: the handler
/// stays installed for the life of the process).
#[test]
fn ctrl_c_catches_sigint_and_the_process_lives_on() {
    let (status, out) = run_ignored("child_ctrl_c", CHILD_VAR, Duration::from_secs(30));
    assert!(
        status.success() && out.contains(CHILD_DONE),
        "the child exited with {status:?}:\n{out}"
    );
}

struct Wakes(std::sync::atomic::AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Expected: deliveries of one signal wake its listeners only: a listener
/// of another signal keeps its registered waker, unwoken.
///
/// Why it may fail: each wake round took (and woke) every listener's
/// waker whatever its signal; correct but wasteful, and a listener's
/// waker changed hands under it.
#[test]
fn a_delivery_wakes_only_its_own_signals_listeners() {
    let (ours, theirs) = (rt_signal(3), rt_signal(4));
    let mut other = signal(SignalKind::from_raw(theirs)).unwrap();
    let mut mine = signal(SignalKind::from_raw(ours)).unwrap();
    let other_wakes = Arc::new(Wakes(std::sync::atomic::AtomicUsize::new(0)));
    let other_waker = Waker::from(other_wakes.clone());
    assert!(
        other
            .poll_recv(&mut Context::from_waker(&other_waker))
            .is_pending()
    );
    let rt = common::runtime(1);
    for _ in 0..20 {
        let j = rt
            .handle()
            .spawn_pinned(0, async move {
                let got = mine.recv().await;
                (mine, got)
            })
            .unwrap();
        raise(ours);
        let (back, got) = join_within(&rt, j, LIMIT, "our listener's wait");
        mine = back;
        assert_eq!(got, Some(()));
    }
    assert_eq!(
        other_wakes.0.load(Ordering::SeqCst),
        0,
        "woken for another signal"
    );
    assert_eq!(Arc::strong_count(&other_wakes), 3, "its waker was taken");
    drop(other);
}
