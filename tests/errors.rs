//! io_uring refused by the kernel gives a clear `ringlane::Error`, never a
//! panic. Each refusal is produced for real in a child process that installs
//! a seccomp filter making `io_uring_setup` fail with the chosen errno, the
//! way a container runtime's default profile does.

mod common;

use std::process::Command;

use common::child::{lowest_free_fd, set_fd_limit};
use ringlane::{Error, RingRefusal};

/// Child side: install the filter, then try to build a runtime. Run only by
/// the parent tests below (it is ignored in a normal run).
#[test]
#[ignore = "run in a child process by the seccomp tests"]
fn child_build_runtime_under_seccomp() {
    let errno: i32 = std::env::var("RINGLANE_SECCOMP_ERRNO")
        .expect("set by the parent")
        .parse()
        .unwrap();
    // `io_uring_setup` by default; `enter` refuses only `io_uring_enter`,
    // as a filter that lets rings be made but never entered would.
    let (syscall, what) = match std::env::var("RINGLANE_SECCOMP_SYSCALL").as_deref() {
        Ok("enter") => (libc::SYS_io_uring_enter, "io_uring_enter is forbidden"),
        _ => (libc::SYS_io_uring_setup, "io_uring_setup is forbidden"),
    };
    common::seccomp::refuse_syscalls_on_this_thread(&[(syscall, errno)]).expect("seccomp refused");
    report_build_refusal(what);
}

/// Child side: builds a runtime, which must fail with `RingSetup` (or
/// `KernelTooOld`), and
/// prints the refusal, the message and the `io::Error` kind it converts to.
fn report_build_refusal(why: &str) {
    match ringlane::Runtime::builder().shards(2).build() {
        Err(e @ Error::RingSetup { .. }) => {
            let Error::RingSetup { refusal, .. } = &e else {
                unreachable!()
            };
            println!("REFUSAL={refusal:?}");
            println!("MESSAGE={e}");
            let io: std::io::Error = e.into();
            println!("KIND={:?}", io.kind());
        }
        Err(e @ Error::KernelTooOld { .. }) => {
            println!("REFUSAL=KernelTooOld");
            println!("MESSAGE={e}");
        }
        Err(other) => panic!("wrong error: {other:?}"),
        Ok(_) => panic!("runtime started although {why}"),
    }
}

/// Child side: lower `RLIMIT_NOFILE` to the lowest free fd number, so the
/// next fd the process asks for is refused with `EMFILE`, then try to
/// build a runtime. Run only by the parent test below.
#[test]
#[ignore = "run in a child process by the fd-limit test"]
fn child_build_runtime_without_free_fds() {
    if std::env::var_os("RINGLANE_FD_LIMIT_CHILD").is_none() {
        return;
    }
    set_fd_limit(lowest_free_fd() as libc::rlim_t);
    report_build_refusal("no fd is free");
}

/// Child side: builds a two-shard runtime under every fd limit from the
/// lowest free fd up to a dozen more, so that each fd the build opens (the
/// probe's ring, the shards' rings and their duplicates, the eventfds) is in
/// turn the one that fails. Prints `BAD=` for any outcome other than
/// success or a `TooManyFiles` refusal.
#[test]
#[ignore = "run in a child process by the fd-limit sweep test"]
fn child_build_runtime_at_each_fd_limit() {
    if std::env::var_os("RINGLANE_FD_SWEEP_CHILD").is_none() {
        return;
    }
    let lowest_free = lowest_free_fd();
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = fds();
    for extra in 0..12 {
        let saved = set_fd_limit((lowest_free + extra) as libc::rlim_t);
        let built = ringlane::Runtime::builder().shards(2).build();
        set_fd_limit(saved);
        match built {
            Ok(rt) => drop(rt),
            Err(Error::RingSetup {
                refusal: RingRefusal::TooManyFiles,
                ..
            }) => {}
            Err(other) => println!("BAD=limit +{extra}: {other:?}"),
        }
    }
    // Every failed build closed what it had opened (and joined its threads).
    let after = fds();
    if after != before {
        println!("BAD=fds {before} before the sweep, {after} after");
    }
    println!("SWEPT=yes");
}

/// Out of fds at any step of the build is the same clear refusal, and the
/// failed build leaks no fd: the eventfd step used to give
/// `Error::Io(EMFILE)`, which a caller matching `RingRefusal::TooManyFiles`
/// (as `build` documents) missed.
#[test]
fn running_out_of_fds_at_any_step_of_the_build_is_too_many_files() {
    let out = child("child_build_runtime_at_each_fd_limit")
        .env("RINGLANE_FD_SWEEP_CHILD", "1")
        .output()
        .unwrap();
    let stdout = checked_stdout(&out);
    assert_eq!(field(&stdout, "SWEPT="), "yes");
    let bad: Vec<&str> = stdout.lines().filter(|l| l.starts_with("BAD=")).collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

fn run_child(errno: i32) -> (String, String) {
    run_child_refusing("setup", errno)
}

/// The child refusing `io_uring_{syscall}` with `errno`.
fn run_child_refusing(syscall: &str, errno: i32) -> (String, String) {
    let out = child("child_build_runtime_under_seccomp")
        .env("RINGLANE_SECCOMP_ERRNO", errno.to_string())
        .env("RINGLANE_SECCOMP_SYSCALL", syscall)
        .output()
        .unwrap();
    let stdout = checked_stdout(&out);
    (field(&stdout, "REFUSAL="), field(&stdout, "MESSAGE="))
}

/// This test binary, running only the ignored child test `name`.
fn child(name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

fn checked_stdout(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn field(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split_once(name).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"))
        .to_owned()
}

/// A process out of file descriptors (`EMFILE`) is told so, with the limit
/// to raise, not that io_uring is unsupported.
#[test]
fn io_uring_without_a_free_fd_emfile_is_a_clear_error() {
    let out = child("child_build_runtime_without_free_fds")
        .env("RINGLANE_FD_LIMIT_CHILD", "1")
        .output()
        .unwrap();
    let stdout = checked_stdout(&out);
    assert_eq!(field(&stdout, "REFUSAL="), "TooManyFiles");
    let message = field(&stdout, "MESSAGE=");
    assert!(message.contains("RLIMIT_NOFILE"), "{message}");
    assert_ne!(field(&stdout, "KIND="), "Unsupported");
}

#[test]
fn io_uring_refused_by_seccomp_eperm_is_a_clear_error() {
    let (refusal, message) = run_child(libc::EPERM);
    assert_eq!(refusal, "PermissionDenied");
    assert!(message.contains("seccomp"), "{message}");
}

#[test]
fn io_uring_missing_enosys_is_a_clear_error() {
    let (refusal, message) = run_child(libc::ENOSYS);
    assert_eq!(refusal, "NotSupported");
    assert!(message.contains("no io_uring"), "{message}");
}

#[test]
fn io_uring_out_of_memory_enomem_is_a_clear_error() {
    let (refusal, message) = run_child(libc::ENOMEM);
    assert_eq!(refusal, "OutOfMemory");
    assert!(message.contains("RLIMIT_MEMLOCK"), "{message}");
}

/// A filter that allows `io_uring_setup` but refuses `io_uring_enter`
/// (`EPERM` or `ENOSYS`) is a refusal at `build()`, like a refused setup.
///
/// Why it may fail: nothing in the build entered a ring, so it succeeded;
/// every shard's park then failed at once (the error ignored), the shards
/// spun at full CPU and no op was ever submitted.
#[test]
fn io_uring_enter_refused_by_seccomp_is_a_clear_error_at_build() {
    let (refusal, message) = run_child_refusing("enter", libc::EPERM);
    assert_eq!(refusal, "PermissionDenied");
    assert!(message.contains("seccomp"), "{message}");
    let (refusal, message) = run_child_refusing("enter", libc::ENOSYS);
    assert_eq!(refusal, "NotSupported");
    assert!(message.contains("no io_uring"), "{message}");
}

/// `EINVAL` from every set-up the probe tries is what a kernel before 5.5
/// answers (it does not know a settable CQ size): an old kernel, said with
/// the version needed, not "the kernel rejected the setup parameters".
#[test]
fn io_uring_setup_refused_as_invalid_everywhere_is_a_kernel_too_old() {
    let (refusal, message) = run_child(libc::EINVAL);
    assert_eq!(refusal, "KernelTooOld");
    assert!(message.contains("5.18"), "{message}");
}

#[test]
fn every_errno_maps_to_a_refusal_and_errors_convert_to_io_errors() {
    assert_eq!(
        RingRefusal::from_errno(libc::EACCES),
        RingRefusal::PermissionDenied
    );
    assert_eq!(
        RingRefusal::from_errno(libc::EINVAL),
        RingRefusal::InvalidSetup
    );
    assert_eq!(RingRefusal::from_errno(libc::EIO), RingRefusal::Other);
    assert_eq!(
        RingRefusal::from_errno(libc::ENFILE),
        RingRefusal::TooManyFiles
    );
    let io: std::io::Error = Error::KernelTooOld {
        missing: "IORING_OP_MSG_RING",
    }
    .into();
    assert_eq!(io.kind(), std::io::ErrorKind::Unsupported);
    assert!(io.to_string().contains("IORING_OP_MSG_RING"));
    let io: std::io::Error = Error::ShardOutOfRange {
        shard: 3,
        shards: 2,
    }
    .into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    // An OS error converts back as itself: its errno survives (it used to
    // become a new error with the same text and no `raw_os_error`).
    let io: std::io::Error = Error::Io(std::io::Error::from_raw_os_error(libc::EMFILE)).into();
    assert_eq!(io.raw_os_error(), Some(libc::EMFILE));
}
