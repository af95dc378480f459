//! Running one of this test binary's `#[ignore]`d tests in a child process
//! (for process-wide state: fd limits, signal dispositions), and the fd
//! limit helpers such children use.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs the ignored test `name` of this binary in a child process with the
/// environment variable `var` set; kills it (and panics) after `limit`.
/// Returns its status and its stdout, then its stderr after a
/// `--- stderr ---` line.
pub fn run_ignored(name: &str, var: &str, limit: Duration) -> (ExitStatus, String) {
    run_ignored_with(name, &[(var, "1")], limit)
}

/// As [`run_ignored`], with each of `envs` set in the child.
pub fn run_ignored_with(
    name: &str,
    envs: &[(&str, &str)],
    limit: Duration,
) -> (ExitStatus, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Drained while it runs, so a chatty child never blocks on a full pipe.
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let out = out.join().unwrap();
            panic!("the child `{name}` still ran after {limit:?} (killed); its output:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = format!(
        "{}\n--- stderr ---\n{}",
        out.join().unwrap(),
        err.join().unwrap()
    );
    (status, text)
}

/// The number the next fd this process opens gets.
pub fn lowest_free_fd() -> i32 {
    // SAFETY: open/close of /dev/null.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        assert!(fd >= 0);
        libc::close(fd);
        fd
    }
}

/// Sets the soft `RLIMIT_NOFILE` (below the hard one); returns the old one.
pub fn set_fd_limit(soft: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let old = lim.rlim_cur;
        lim.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        old
    }
}
