//! io_uring refused by the kernel gives a clear `ringlane::Error`, never a
//! panic. Each refusal is produced for real in a child process that installs
//! a seccomp filter making `io_uring_setup` fail with the chosen errno, the
//! way a container runtime's default profile does.

use std::process::Command;

use ringlane::{Error, RingRefusal};

/// Child side: install the filter, then try to build a runtime. Run only by
/// the parent tests below (it is ignored in a normal run).
#[test]
#[ignore = "run in a child process by the seccomp tests"]
fn child_build_runtime_under_seccomp() {
    let errno: u32 = std::env::var("RINGLANE_SECCOMP_ERRNO")
        .expect("set by the parent")
        .parse()
        .unwrap();
    install_filter(errno);
    match ringlane::Runtime::builder().shards(2).build() {
        Err(e @ Error::RingSetup { .. }) => {
            let Error::RingSetup { refusal, .. } = &e else {
                unreachable!()
            };
            println!("REFUSAL={refusal:?}");
            println!("MESSAGE={e}");
        }
        Err(other) => panic!("wrong error: {other:?}"),
        Ok(_) => panic!("runtime started although io_uring_setup is forbidden"),
    }
}

#[repr(C)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// A classic-BPF seccomp filter: `io_uring_setup` → `errno`, all else allowed.
fn install_filter(errno: u32) {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let prog = [
        SockFilter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }, // seccomp_data.nr
        SockFilter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | errno,
        },
        SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let fprog = SockFprog {
        len: prog.len() as u16,
        filter: prog.as_ptr(),
    };
    // SAFETY: prctl reads `fprog` and the filter array, both alive for the call.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, 2, &fprog as *const SockFprog, 0, 0),
            0,
            "seccomp refused"
        );
    }
}

fn run_child(errno: i32) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_build_runtime_under_seccomp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RINGLANE_SECCOMP_ERRNO", errno.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(name).map(|(_, v)| v))
            .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"))
            .to_owned()
    };
    (field("REFUSAL="), field("MESSAGE="))
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
}
