//! Shards: one OS thread, one io_uring, one run queue, one mailbox, one
//! timer wheel each. This module starts them; `core.rs` is the loop each one
//! runs, `drain.rs` how it shuts down.
//!
//! Start-up handshake (so that ring set-up errors reach `build()` and no
//! shard runs before every shard's ring fd is known):
//! 1. The builder spawns every shard thread.
//! 2. Each thread pins itself (if asked), creates its ring *on itself*
//!    (`SINGLE_ISSUER` binds the ring to its creator), and reports a
//!    duplicate of its ring fd, or the error.
//! 3. If any shard failed, the builder tells all to exit, joins them and
//!    returns the error. Otherwise it builds every shard's `Remote` and the
//!    `Shared` state and hands them to every thread.
//! 4. Each thread enters the Tokio handle (if any), installs its context and
//!    runs its loop until shutdown, then reports how many tasks it had to
//!    cancel.

mod core;
mod doorbells;
mod drain;
mod park;
mod shared;
mod steal;
#[cfg(test)]
pub(crate) mod tests;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

pub(crate) use shared::{Config, Shared};
pub(crate) use steal::{notify_one, schedule};

use crossbeam_deque::Worker;

use crate::error::Error;
use crate::executor::Runnable;
use crate::mailbox::Remote;
use crate::sys::{EventFd, Ring, RingFeatures};

/// What a shard reports when its thread ends.
#[derive(Debug)]
pub(crate) struct ShardExit {
    pub(crate) index: usize,
    /// Tasks that were cancelled instead of finishing.
    pub(crate) unfinished: usize,
}

/// The running shard threads of one runtime.
pub(crate) struct Started {
    pub(crate) shared: Arc<Shared>,
    pub(crate) threads: Vec<thread::JoinHandle<()>>,
    /// In a lock only so that `Runtime` is `Sync`, as Tokio's is (an
    /// `Arc<Runtime>` in shared state): shutdown owns it and never waits
    /// for the lock.
    pub(crate) exits: parking_lot::Mutex<mpsc::Receiver<ShardExit>>,
}

fn dup_cloexec(fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC has no memory-safety preconditions.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The CPUs the calling thread may run on, if the kernel says.
pub(crate) fn cpu_mask() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; the call gets its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let r = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (r == 0).then_some(set)
    }
}

/// Lets the calling thread run on `cpus` (best effort: a mask the kernel
/// refuses leaves the thread's as it was).
pub(crate) fn set_cpu_mask(cpus: &libc::cpu_set_t) {
    // SAFETY: a valid cpu_set_t of the size given.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), cpus) };
}

/// Pins the calling thread to the `index`-th CPU it is allowed to run on.
fn pin_to_cpu(index: usize) {
    // SAFETY: cpu_set_t is plain data; the calls get its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if allowed.is_empty() {
            return;
        }
        let cpu = allowed[index % allowed.len()];
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// A shard's ring fd (duplicated) and its OS thread id, or why it failed.
type Ready = (usize, io::Result<(OwnedFd, i32)>);
/// What a shard thread gets once every shard is up: the runtime and its own deque.
type Start = (Arc<Shared>, Worker<Runnable>);

/// Linux keeps 15 bytes of a thread's name (`comm`), and std cuts the rest:
/// `ringlane-shard-1` would read `ringlane-shard-` in `top -H`, `perf` and
/// `/proc/self/task/<os_tid>/comm`, whatever the shard. The OS name keeps
/// the `-{index}` (the `suffix`) and cuts the prefix instead
/// (`ringlane-shar-1`).
pub(crate) fn os_thread_name(prefix: &str, suffix: &str) -> CString {
    const COMM_LEN: usize = 15;
    let mut cut = COMM_LEN.saturating_sub(suffix.len()).min(prefix.len());
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut name = format!("{}{suffix}", &prefix[..cut]);
    name.truncate(COMM_LEN); // a suffix longer than 15 bytes: not ours
    CString::new(name).unwrap_or_default() // `build` refused NUL bytes
}

/// Names the calling thread for the OS (best effort).
pub(crate) fn set_os_thread_name(name: &CString) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes
    // (with the NUL) from a valid pointer; `name` is at most 15 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Runs the start-up handshake (steps 1 to 3) and returns the running shards.
pub(crate) fn start(config: Config, features: RingFeatures) -> Result<Started, Error> {
    static NEXT_RUNTIME_ID: AtomicUsize = AtomicUsize::new(1);
    let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
    let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
    let (exit_tx, exits) = mpsc::channel::<ShardExit>();
    let mut threads = Vec::with_capacity(config.shards);
    let mut starts = Vec::with_capacity(config.shards);
    let mut failure: Option<Error> = None;
    for index in 0..config.shards {
        let (start_tx, start_rx) = mpsc::channel::<Option<Start>>();
        let (ready_tx, exit_tx) = (ready_tx.clone(), exit_tx.clone());
        let (entries, pin) = (config.ring_entries, config.pin_cpus);
        let os_name = os_thread_name(&config.thread_name, &format!("-{index}"));
        let spawned = thread::Builder::new()
            .name(format!("{}-{index}", config.thread_name))
            .spawn(move || {
                set_os_thread_name(&os_name);
                shard_main(index, entries, pin, features, ready_tx, start_rx, exit_tx)
            });
        match spawned {
            Ok(t) => {
                threads.push(t);
                starts.push(start_tx);
            }
            Err(e) => {
                failure = Some(Error::start_step(
                    format!("could not spawn the thread of shard {index}"),
                    e,
                ));
                break;
            }
        }
    }
    drop(ready_tx);
    let mut ring_fds: Vec<Option<(OwnedFd, i32)>> = (0..threads.len()).map(|_| None).collect();
    for _ in 0..threads.len() {
        match ready_rx.recv() {
            Ok((i, Ok(ready))) => ring_fds[i] = Some(ready),
            Ok((_, Err(e))) => failure = failure.or(Some(Error::ring_setup(e))),
            Err(_) => {
                failure = failure.or(Some(Error::Io(io::Error::other(
                    "a shard thread died during start-up",
                ))))
            }
        }
    }
    let remotes: Result<Vec<Arc<Remote>>, Error> = match failure {
        Some(e) => Err(e),
        None => ring_fds
            .into_iter()
            .enumerate()
            .map(|(i, fd)| {
                let (fd, tid) =
                    fd.ok_or(Error::Io(io::Error::other("a shard reported no ring")))?;
                // Out of fds here is the same refusal as for the ring itself.
                let eventfd = EventFd::new().map_err(|e| match e.raw_os_error() {
                    Some(libc::EMFILE | libc::ENFILE) => Error::ring_setup(e),
                    _ => Error::start_step(
                        format!("could not create the doorbell eventfd of shard {i}"),
                        e,
                    ),
                })?;
                let remote = Remote::new(i, id, fd, eventfd);
                // Known before `build` returns, so `ShardStats::os_tid` is too.
                remote.stats.os_tid.store(tid, Ordering::Relaxed);
                let remote = Arc::new(remote);
                crate::mailbox::homes::register(&remote);
                Ok(remote)
            })
            .collect(),
    };
    let remotes = match remotes {
        Ok(r) => r,
        Err(e) => {
            starts.iter().for_each(|s| drop(s.send(None)));
            threads.into_iter().for_each(|t| drop(t.join()));
            return Err(e);
        }
    };
    let workers: Vec<Worker<Runnable>> = (0..remotes.len()).map(|_| Worker::new_fifo()).collect();
    let stealers = workers.iter().map(Worker::stealer).collect();
    let shared = Arc::new(Shared::new(
        id,
        remotes.into_boxed_slice(),
        stealers,
        features,
        config,
    ));
    for (s, worker) in starts.iter().zip(workers) {
        let _ = s.send(Some((shared.clone(), worker)));
    }
    Ok(Started {
        shared,
        threads,
        exits: parking_lot::Mutex::new(exits),
    })
}

fn shard_main(
    index: usize,
    entries: u32,
    pin: bool,
    features: RingFeatures,
    ready: mpsc::Sender<Ready>,
    start: mpsc::Receiver<Option<Start>>,
    exits: mpsc::Sender<ShardExit>,
) {
    if pin {
        pin_to_cpu(index);
    }
    let ring = match Ring::new(entries, &features) {
        Ok(ring) => ring,
        Err(e) => {
            let _ = ready.send((index, Err(e)));
            return;
        }
    };
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    match dup_cloexec(ring.raw_fd().as_raw_fd()) {
        Ok(fd) => {
            let _ = ready.send((index, Ok((fd, tid))));
        }
        Err(e) => {
            let _ = ready.send((index, Err(e)));
            return;
        }
    }
    drop(ready);
    let Ok(Some((shared, deque))) = start.recv() else {
        return;
    };
    let tokio = shared.config.tokio.clone();
    let _tokio_guard = tokio.as_ref().map(tokio::runtime::Handle::enter);
    let run = catch_unwind(AssertUnwindSafe(|| {
        core::Core::new(index, shared.clone(), ring, deque).run()
    }));
    let Ok(unfinished) = run else {
        // The loop contains every panic of user code; one escaping it is a
        // ringlane bug. Carrying on would let this shard's tasks be dropped
        // on other threads (unsound for `!Send` tasks), so stop here.
        eprintln!("ringlane: shard {index} panicked in the runtime itself; aborting the process");
        std::process::abort();
    };
    // The ring is dropped (the core with it): the last shard out closes
    // the fds every `Remote` still holds.
    shared.shard_exited();
    let _ = exits.send(ShardExit { index, unfinished });
}
