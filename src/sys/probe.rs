//! Probing the kernel once for the ring set-up the runtime will use.
//!
//! The runtime builder calls [`probe_features`] on its own thread before any
//! shard starts: it tries the fastest set of setup flags first and falls back
//! on `EINVAL`, so every shard then creates its ring with flags known to work
//! and the caller learns about a refusal (`EPERM`, `ENOSYS`, `ENOMEM`) as an
//! [`Error`] from `build()`, before any thread exists.

use std::io;

use io_uring::{IoUring, Probe, opcode};

use crate::error::Error;

/// What the kernel accepted for this runtime's rings; exposed through
/// [`Handle::ring_features`](crate::Handle::ring_features).
///
/// # Examples
///
/// ```
/// let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
/// let f = rt.handle().ring_features();
/// assert!(f.msg_ring, "the runtime refuses to start without MSG_RING");
/// println!("single_issuer={} defer_taskrun={}", f.single_issuer, f.defer_taskrun);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RingFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER`: only the shard thread submits.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN`: completions run only when the shard enters.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN`: no IPI to interrupt a busy shard.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_TASKRUN_FLAG`: the kernel flags pending completions, so a
    /// busy shard enters the kernel only when there is something to reap.
    pub taskrun_flag: bool,
    /// `IORING_SETUP_SUBMIT_ALL`: one bad SQE does not stall the rest.
    pub submit_all: bool,
    /// The ring fd is registered, saving an fd lookup per `io_uring_enter`.
    pub registered_ring_fd: bool,
    /// `IORING_OP_MSG_RING` is available (required).
    pub msg_ring: bool,
    /// `IORING_FEAT_EXT_ARG`: parking with a timeout needs no timeout SQE (required).
    pub ext_arg: bool,
    /// `IOSQE_CQE_SKIP_SUCCESS` is honoured, so doorbells cost the sender no CQE.
    pub skip_cqe_on_success: bool,
    /// `IORING_OP_FTRUNCATE` (Linux 6.9) is available: `File::set_len`
    /// needs it.
    pub ftruncate: bool,
}

/// One candidate set of setup flags, tried in order.
#[derive(Clone, Copy)]
struct Candidate {
    single_issuer_defer: bool,
    coop: bool,
    taskrun_flag: bool,
    submit_all: bool,
}

/// `COOP_TASKRUN` is only ever used together with `TASKRUN_FLAG` (both came
/// in 5.19): without the flag a busy shard, which enters the kernel only
/// when the flag says so, would never see deferred completions. A ring with
/// neither has its completions posted without our help.
const CANDIDATES: [Candidate; 3] = [
    Candidate {
        single_issuer_defer: true,
        coop: false,
        taskrun_flag: true,
        submit_all: true,
    },
    Candidate {
        single_issuer_defer: false,
        coop: true,
        taskrun_flag: true,
        submit_all: true,
    },
    Candidate {
        single_issuer_defer: false,
        coop: false,
        taskrun_flag: false,
        submit_all: false,
    },
];

/// Builds a ring with exactly the flags in `f`.
pub(crate) fn build_ring(entries: u32, f: &RingFeatures) -> io::Result<IoUring> {
    let mut b = IoUring::builder();
    if f.single_issuer {
        b.setup_single_issuer();
    }
    if f.defer_taskrun {
        b.setup_defer_taskrun();
    }
    if f.coop_taskrun {
        b.setup_coop_taskrun();
    }
    if f.taskrun_flag {
        b.setup_taskrun_flag();
    }
    if f.submit_all {
        b.setup_submit_all();
    }
    // The kernel caps the CQ at 65536 entries (IORING_MAX_CQ_ENTRIES).
    b.setup_cqsize(entries.saturating_mul(4).clamp(64, 65_536));
    b.build(entries)
}

/// The probe's ring: the smallest, whatever the shards' size. Ring memory
/// of a user without `CAP_IPC_LOCK` counts against `RLIMIT_MEMLOCK`, and
/// the kernel returns a closed ring's share a little after `close`: a
/// probe as large as a shard's ring made the last shard of a runtime that
/// fits the limit fail with `ENOMEM`
/// (`a_runtime_whose_rings_fit_the_memlock_limit_builds`).
const PROBE_ENTRIES: u32 = 2;

/// Finds the best ring set-up this kernel accepts (with a ring of
/// [`PROBE_ENTRIES`]; the shards' own rings report their own refusals).
///
/// `allow_defer` lets the caller opt out of `DEFER_TASKRUN` (it lowers the
/// cost of each op but also the MSG_RING intake rate; see ADR 0003).
pub(crate) fn probe_features(allow_defer: bool) -> Result<RingFeatures, Error> {
    let entries = PROBE_ENTRIES;
    let mut last_err = None;
    for c in CANDIDATES {
        if c.single_issuer_defer && !allow_defer {
            continue;
        }
        let mut f = RingFeatures {
            single_issuer: c.single_issuer_defer,
            defer_taskrun: c.single_issuer_defer,
            coop_taskrun: c.coop,
            taskrun_flag: c.taskrun_flag,
            submit_all: c.submit_all,
            ..RingFeatures::default()
        };
        match build_ring(entries, &f) {
            Ok(mut ring) => {
                // A sandbox may allow the ring but refuse registering on it,
                // or entering it: a refusal to report, not a missing opcode
                // (a ring never entered would leave every shard spinning
                // on a failed park, its ops never submitted).
                fill_opcode_features(&ring, &mut f)?;
                enter_once(&mut ring)?;
                if !f.msg_ring {
                    return Err(Error::KernelTooOld {
                        missing: "IORING_OP_MSG_RING",
                    });
                }
                if !f.ext_arg {
                    return Err(Error::KernelTooOld {
                        missing: "IORING_FEAT_EXT_ARG",
                    });
                }
                return Ok(f);
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_err = Some(e),
            Err(e) => return Err(Error::ring_setup(e)),
        }
    }
    // Even the plainest set was refused with `EINVAL`: it asks for a
    // completion queue size, which kernels before 5.5 do not know.
    match last_err {
        Some(_) => Err(Error::KernelTooOld {
            missing: "IORING_SETUP_CQSIZE",
        }),
        None => Err(Error::ring_setup(io::Error::from_raw_os_error(
            libc::EINVAL,
        ))),
    }
}

/// Submits one `NOP` and waits for its completion: the first and only
/// `io_uring_enter` before the shards'.
fn enter_once(ring: &mut IoUring) -> Result<(), Error> {
    let nop = opcode::Nop::new().build();
    // SAFETY: a NOP names no memory; the ring has room (it is empty).
    if unsafe { ring.submission().push(&nop) }.is_err() {
        unreachable!("an empty ring has room for one SQE");
    }
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(Error::ring_setup(e)),
        }
    }
    ring.completion().for_each(drop);
    Ok(())
}

fn fill_opcode_features(ring: &IoUring, f: &mut RingFeatures) -> Result<(), Error> {
    let mut probe = Probe::new();
    register_probe(ring, &mut probe).map_err(|e| match e.raw_os_error() {
        // The register opcode itself is unknown: before Linux 5.6.
        Some(libc::EINVAL) => Error::KernelTooOld {
            missing: "IORING_REGISTER_PROBE",
        },
        _ => Error::ring_setup(e),
    })?;
    f.msg_ring = probe.is_supported(opcode::MsgRingData::CODE);
    f.ftruncate = probe.is_supported(opcode::Ftruncate::CODE);
    f.ext_arg = ring.params().is_feature_ext_arg();
    f.skip_cqe_on_success = ring.params().is_feature_skip_cqe_on_success();
    f.registered_ring_fd = super::ring::can_register_ring_fd(ring);
    Ok(())
}

/// `IORING_REGISTER_PROBE` (5.6). Test builds can make it fail, as a
/// sandbox that refuses `io_uring_register` would.
fn register_probe(ring: &IoUring, probe: &mut Probe) -> io::Result<()> {
    #[cfg(test)]
    if let Some(errno) = tests::REFUSE_REGISTER.with(std::cell::Cell::get) {
        return Err(io::Error::from_raw_os_error(errno));
    }
    ring.submitter().register_probe(probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Makes `register_probe` fail with this errno on this thread.
        pub(super) static REFUSE_REGISTER: std::cell::Cell<Option<i32>> =
            const { std::cell::Cell::new(None) };
    }

    /// A kernel without `IORING_REGISTER_PROBE` (before 5.6) answers
    /// `EINVAL`: an old kernel, not "the kernel rejected the io_uring setup
    /// parameters".
    #[test]
    fn a_kernel_without_the_probe_register_call_is_too_old() {
        REFUSE_REGISTER.with(|r| r.set(Some(libc::EINVAL)));
        let result = probe_features(true);
        REFUSE_REGISTER.with(|r| r.set(None));
        match result {
            Err(Error::KernelTooOld { missing }) => assert!(missing.contains("PROBE")),
            other => panic!("expected KernelTooOld, got {other:?}"),
        }
    }

    /// A sandbox that allows `io_uring_setup` but refuses
    /// `io_uring_register` used to be reported as a kernel without
    /// MSG_RING ("Linux 6.1 or newer is required").
    #[test]
    fn a_refused_io_uring_register_is_a_ring_refusal_not_an_old_kernel() {
        REFUSE_REGISTER.with(|r| r.set(Some(libc::EPERM)));
        let result = probe_features(true);
        REFUSE_REGISTER.with(|r| r.set(None));
        match result {
            Err(Error::RingSetup {
                refusal: crate::RingRefusal::PermissionDenied,
                ..
            }) => {}
            other => panic!("expected a PermissionDenied ring refusal, got {other:?}"),
        }
    }
}
