//! What the suite runs: the files and runtimes built once up front
//! ([`Env`]) and the tables of qd1, qd32 and write cases, with the floors
//! and the Tokio baselines their ratios divide by.

use std::sync::Arc;

use ringlane::native::fs::{File, OpenOptions};

use crate::THREADS;
use crate::blocking::{qd1_pread, qd32_pread, write_pwrite_fdatasync};
use crate::files::TestFiles;
use crate::harness_floor::{qd1_harness_floor, qd32_harness_floor};
use crate::measure::{LatRun, TputRun};
use crate::raw_uring::{
    qd1_raw, qd1_raw_dt, qd1_raw_fixed, qd1_raw_pgoff16, qd32_raw, qd32_raw_dt, write_raw_linked,
    write_raw_seq, write_raw_seq_dt,
};
use crate::ringlane_cases::{
    qd1_ringlane, qd1_ringlane_fixed, qd1_ringlane_vec, qd32_ringlane, qd32_ringlane_2_shards,
    write_ringlane,
};
use crate::shared::runtimes::{
    ringlane_runtime, shutdown, tokio_current_thread, tokio_multi_thread,
};
use crate::shared::watchdog::HANDLES;
use crate::stream::{
    stream_pread, stream_raw, stream_raw_dt_copy, stream_ringlane, stream_tokio_fs, whole_raw,
    whole_ringlane, whole_std, whole_tokio, whole64_raw, whole64_ringlane, whole64_std,
    whole64_tokio,
};
use crate::tokio_cases::{
    qd1_tokio_fs, qd1_tokio_spawn_blocking, qd32_tokio_fs, qd32_tokio_spawn_blocking,
    write_tokio_fs,
};

/// The files, the ringlane and Tokio runtimes, and the open files, built
/// once before anything is timed.
pub(crate) struct Env {
    pub(crate) files: TestFiles,
    /// 1 shard: the qd1, qd32 and write cases.
    pub(crate) ringlane: ringlane::Runtime,
    /// 2 shards: `ringlane_2_shards` (qd32).
    pub(crate) ringlane_2: ringlane::Runtime,
    pub(crate) tokio_ct: tokio::runtime::Runtime,
    pub(crate) tokio_mt: tokio::runtime::Runtime,
    /// The read file opened by ringlane (`File::open`, an OPENAT on shard 0).
    pub(crate) rl_read: File,
    /// The write file opened by ringlane (read + write).
    pub(crate) rl_write: File,
    /// The same files through std, for the raw, syscall and Tokio cases.
    pub(crate) std_read: Arc<std::fs::File>,
    pub(crate) std_write: Arc<std::fs::File>,
}

impl Env {
    pub(crate) fn new() -> Self {
        let files = TestFiles::create();
        let ringlane = ringlane_runtime(ringlane::Runtime::builder(), 1);
        let ringlane_2 = ringlane_runtime(ringlane::Runtime::builder(), THREADS);
        let (read_path, write_path) = (files.read_path.clone(), files.write_path.clone());
        let open = ringlane
            .handle()
            .spawn_pinned(0, async move {
                let r = File::open(&read_path).await.expect("ringlane open (read)");
                let w = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&write_path)
                    .await
                    .expect("ringlane open (write)");
                (r, w)
            })
            .expect("spawn open");
        let (rl_read, rl_write) = ringlane.block_on(open).expect("open task");
        let std_open = |path, write| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(write)
                .open(path)
                .map(Arc::new)
                .expect("std open")
        };
        let env = Self {
            std_read: std_open(&files.read_path, false),
            std_write: std_open(&files.write_path, true),
            files,
            ringlane,
            ringlane_2,
            tokio_ct: tokio_current_thread(),
            tokio_mt: tokio_multi_thread(THREADS),
            rl_read,
            rl_write,
        };
        let mut handles = HANDLES.lock().unwrap();
        handles.push(("ringlane", env.ringlane.handle()));
        handles.push(("ringlane_2", env.ringlane_2.handle()));
        drop(handles);
        env
    }

    /// Shuts the runtimes down (asserting a clean ringlane shutdown), closes
    /// the files and removes them.
    pub(crate) fn shutdown(self) {
        HANDLES.lock().unwrap().clear();
        let Self {
            files,
            ringlane,
            ringlane_2,
            tokio_ct,
            tokio_mt,
            rl_read,
            rl_write,
            std_read,
            std_write,
        } = self;
        drop((rl_read, rl_write, std_read, std_write));
        shutdown(ringlane, "ringlane");
        shutdown(ringlane_2, "ringlane 2 shards");
        tokio_ct.shutdown_timeout(std::time::Duration::from_secs(1));
        tokio_mt.shutdown_timeout(std::time::Duration::from_secs(1));
        drop(files);
    }
}

/// A latency case: `(env, warm-up operations, measured operations)`.
pub(crate) type LatFn = fn(&Env, usize, usize) -> LatRun;
/// A throughput case: `(env, reads)`.
pub(crate) type TputFn = fn(&Env, u64) -> TputRun;

pub(crate) struct Case<F> {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    /// Threads doing or waiting on I/O (for the report).
    pub(crate) threads: &'static str,
    pub(crate) run: F,
}

pub(crate) const QD1_CASES: &[Case<LatFn>] = &[
    Case {
        id: "ringlane",
        label: "ringlane `File::read_at`, task on shard 0 (1 shard)",
        threads: "1",
        run: qd1_ringlane,
    },
    Case {
        id: "ringlane_vec",
        label: "the same into a plain `Vec<u8>` allocated on the shard",
        threads: "1",
        run: qd1_ringlane_vec,
    },
    Case {
        id: "raw_uring",
        label: "raw io_uring READ, default ring, submit_and_wait(1) (floor)",
        threads: "1",
        run: qd1_raw,
    },
    Case {
        id: "raw_uring_dt",
        label: "raw io_uring READ, ringlane's ring set-up (DEFER_TASKRUN, registered ring fd)",
        threads: "1",
        run: qd1_raw_dt,
    },
    Case {
        id: "harness_floor",
        label: "minimal `async-task` executor + op slab, ringlane's ring set-up (the task harness's floor)",
        threads: "1",
        run: qd1_harness_floor,
    },
    Case {
        id: "ringlane_fixed",
        label: "ringlane `read_fixed_at`: registered file + registered buffer (opt-in)",
        threads: "1",
        run: qd1_ringlane_fixed,
    },
    Case {
        id: "raw_uring_fixed",
        label: "raw io_uring READ_FIXED on a registered file, ringlane's ring set-up (fixed floor)",
        threads: "1",
        run: qd1_raw_fixed,
    },
    Case {
        id: "raw_uring_pgoff16",
        label: "raw io_uring READ, default ring, buffer 16 B into its page",
        threads: "1",
        run: qd1_raw_pgoff16,
    },
    Case {
        id: "pread",
        label: "`libc::pread` on the bench thread",
        threads: "1",
        run: qd1_pread,
    },
    Case {
        id: "tokio_fs",
        label: "`tokio::fs::File` seek + read_exact, current-thread (2 blocking-pool hops)",
        threads: "1 + pool",
        run: qd1_tokio_fs,
    },
    Case {
        id: "tokio_spawn_blocking_pread",
        label: "tokio `spawn_blocking(pread)`, current-thread",
        threads: "1 + pool",
        run: qd1_tokio_spawn_blocking,
    },
];

pub(crate) const QD32_CASES: &[Case<TputFn>] = &[
    Case {
        id: "ringlane",
        label: "ringlane, 32 `spawn_local` tasks on 1 shard",
        threads: "1",
        run: qd32_ringlane,
    },
    Case {
        id: "ringlane_2_shards",
        label: "ringlane, 2 shards x 16 tasks",
        threads: "2",
        run: qd32_ringlane_2_shards,
    },
    Case {
        id: "raw_uring",
        label: "raw io_uring, default ring, 32 READs in flight (floor)",
        threads: "1",
        run: qd32_raw,
    },
    Case {
        id: "raw_uring_dt",
        label: "raw io_uring, ringlane's ring set-up, 32 in flight",
        threads: "1",
        run: qd32_raw_dt,
    },
    Case {
        id: "harness_floor",
        label: "minimal `async-task` executor + op slab, 32 tasks, ringlane's ring set-up (the task harness's floor)",
        threads: "1",
        run: qd32_harness_floor,
    },
    Case {
        id: "tokio_fs",
        label: "`tokio::fs::File`, 32 tasks, multi-thread (seek + read_exact)",
        threads: "2 + pool",
        run: qd32_tokio_fs,
    },
    Case {
        id: "tokio_spawn_blocking_pread",
        label: "tokio `spawn_blocking(pread)`, 32 tasks, multi-thread",
        threads: "2 + pool",
        run: qd32_tokio_spawn_blocking,
    },
    Case {
        id: "pread_qd1",
        label: "`libc::pread`, one at a time (reference, not qd32)",
        threads: "1",
        run: qd32_pread,
    },
];

pub(crate) const WRITE_CASES: &[Case<LatFn>] = &[
    Case {
        id: "ringlane",
        label: "ringlane `write_at` + `sync_data`, task on shard 0",
        threads: "1",
        run: write_ringlane,
    },
    Case {
        id: "raw_uring_seq",
        label: "raw io_uring WRITE, wait, FSYNC(DATASYNC), wait, default ring (floor)",
        threads: "1",
        run: write_raw_seq,
    },
    Case {
        id: "raw_uring_seq_dt",
        label: "the same on a ring set up like ringlane's",
        threads: "1",
        run: write_raw_seq_dt,
    },
    Case {
        id: "raw_uring_linked",
        label: "raw io_uring WRITE linked to FSYNC(DATASYNC), one enter, default ring",
        threads: "1",
        run: write_raw_linked,
    },
    Case {
        id: "pwrite_fdatasync",
        label: "`libc::pwrite` + `libc::fdatasync` on the bench thread",
        threads: "1",
        run: write_pwrite_fdatasync,
    },
    Case {
        id: "tokio_fs",
        label: "`tokio::fs::File` seek + write_all + sync_data, current-thread",
        threads: "1 + pool",
        run: write_tokio_fs,
    },
];

pub(crate) const STREAM_CASES: &[Case<TputFn>] = &[
    Case {
        id: "ringlane_async_file",
        label: "ringlane `AsyncFile` (`File::into_async()`), `read_exact`, task on shard 0",
        threads: "1",
        run: stream_ringlane,
    },
    Case {
        id: "raw_uring",
        label: "raw io_uring READ of the same size, default ring, submit_and_wait(1) (floor)",
        threads: "1",
        run: stream_raw,
    },
    Case {
        id: "raw_uring_dt_copy",
        label: "raw io_uring READ into its own buffer, then copied (as an `AsyncRead` must), \
                ringlane's ring set-up (DEFER_TASKRUN, registered ring fd)",
        threads: "1",
        run: stream_raw_dt_copy,
    },
    Case {
        id: "pread",
        label: "`libc::pread` of the same size on the bench thread",
        threads: "1",
        run: stream_pread,
    },
    Case {
        id: "tokio_fs",
        label: "`tokio::fs::File`, `read_exact`, current-thread (a blocking-pool hop per read)",
        threads: "1 + pool",
        run: stream_tokio_fs,
    },
];

pub(crate) const WHOLE_CASES: &[Case<LatFn>] = &[
    Case {
        id: "ringlane_fs_read",
        label: "`ringlane::native::fs::read`, task on shard 0 (open, 2 reads, close: 4 ops)",
        threads: "1",
        run: whole_ringlane,
    },
    Case {
        id: "std_fs_read",
        label: "`std::fs::read` on the bench thread (open, statx, 2 reads, close syscalls)",
        threads: "1",
        run: whole_std,
    },
    Case {
        id: "raw_uring",
        label: "`fs::read`'s 4 ops on a bare ring, ringlane's set-up, each waited for",
        threads: "1",
        run: whole_raw,
    },
    Case {
        id: "tokio_fs_read",
        label: "`tokio::fs::read`, current-thread (`std::fs::read` on its blocking pool)",
        threads: "1 + pool",
        run: whole_tokio,
    },
];

pub(crate) const WHOLE64_CASES: &[Case<LatFn>] = &[
    Case {
        id: "ringlane_fs_read",
        label: "`ringlane::native::fs::read`, task on shard 0 (open, 8 KiB read, read of \
                the rest, 32 B probe that finds the end, close: 5 ops)",
        threads: "1",
        run: whole64_ringlane,
    },
    Case {
        id: "std_fs_read",
        label: "`std::fs::read` on the bench thread (open, statx, read, 32 B probe, close \
                syscalls)",
        threads: "1",
        run: whole64_std,
    },
    Case {
        id: "raw_uring",
        label: "`fs::read`'s 5 ops on a bare ring, ringlane's set-up, each waited for",
        threads: "1",
        run: whole64_raw,
    },
    Case {
        id: "tokio_fs_read",
        label: "`tokio::fs::read`, current-thread (`std::fs::read` on its blocking pool)",
        threads: "1 + pool",
        run: whole64_tokio,
    },
];

/// The floors and Tokio baselines the ratios divide by.
pub(crate) const QD1_FLOOR: &str = "raw_uring";
pub(crate) const QD1_TOKIO: &str = "tokio_fs";
pub(crate) const QD32_FLOOR: &str = "raw_uring";
pub(crate) const QD32_TOKIO: &str = "tokio_fs";
pub(crate) const WRITE_FLOOR: &str = "raw_uring_seq";
pub(crate) const WRITE_TOKIO: &str = "tokio_fs";
pub(crate) const STREAM_FLOOR: &str = "raw_uring";
pub(crate) const STREAM_TOKIO: &str = "tokio_fs";
pub(crate) const WHOLE_FLOOR: &str = "raw_uring";
pub(crate) const WHOLE_TOKIO: &str = "tokio_fs_read";
