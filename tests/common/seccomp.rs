//! Seccomp filters for the tests that need the kernel to refuse a syscall
//! (as a container's profile does): on the calling thread only, and on the
//! threads it spawns afterwards, which inherit the filter.

use std::io;

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

/// Installs a classic-BPF filter on the calling thread: each `(nr, errno)`
/// makes syscall `nr` fail with `errno`; everything else is allowed.
pub fn refuse_syscalls_on_this_thread(rules: &[(libc::c_long, i32)]) -> io::Result<()> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let mut prog = vec![SockFilter {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: 0, // seccomp_data.nr
    }];
    for &(nr, errno) in rules {
        prog.push(SockFilter {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: nr as u32,
        });
        prog.push(SockFilter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | (errno as u32 & 0xffff),
        });
    }
    prog.push(SockFilter {
        code: RET_K,
        jt: 0,
        jf: 0,
        k: SECCOMP_RET_ALLOW,
    });
    let fprog = SockFprog {
        len: prog.len() as u16,
        filter: prog.as_ptr(),
    };
    // SAFETY: prctl reads `fprog` and the filter array, both alive for the
    // call; without TSYNC the filter applies to this thread only.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_SECCOMP, 2, &fprog as *const SockFprog, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
