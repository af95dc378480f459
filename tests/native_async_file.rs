//! `AsyncFile` (Tokio's I/O traits over the native file lane) against
//! `tokio::fs::File`: the same op sequences give the same results and the
//! same file; Tokio ecosystem code (`BufReader`, `tokio::io::copy`) runs on
//! it; writes behind finish, report their errors, and outlive a drop.
//!
//! Every test holds `SERIAL` (fd counts are process-wide).

mod common;

use std::io::{ErrorKind, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};

use ringlane::native::fs::{File, OpenOptions};

use common::LIMIT;
use common::fixed_io::on_shard;
use common::fs_edges::Fifo;
use common::native_io::{SERIAL, TempDir, on_fresh_shard, settled_fd_count};

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// One step of a differential run.
#[derive(Clone, Debug)]
enum Step {
    Read(usize),
    Write(Vec<u8>),
    Seek(SeekFrom),
    Flush,
    Position,
}

/// What a step gave: bytes, a position, or an error kind.
#[derive(Debug, PartialEq)]
enum Got {
    Bytes(Vec<u8>),
    At(u64),
    Done,
    Failed(ErrorKind),
}

fn steps(seed: u64, n: usize) -> Vec<Step> {
    let mut x = seed;
    let mut next = move |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    (0..n)
        .map(|i| match next(9) {
            0 | 1 => Step::Read(next(5000) as usize),
            2 | 3 => Step::Write(pattern(next(3000) as usize + 1, i as u8)),
            4 => Step::Seek(SeekFrom::Start(next(6000))),
            5 => Step::Seek(SeekFrom::Current(next(4000) as i64 - 2000)),
            6 => Step::Seek(SeekFrom::End(-(next(3000) as i64))),
            7 => Step::Flush,
            _ => Step::Position,
        })
        .collect()
}

/// Runs `steps` on any Tokio-style file.
async fn apply<F>(f: &mut F, steps: &[Step]) -> Vec<Got>
where
    F: tokio::io::AsyncRead + tokio::io::AsyncWrite + tokio::io::AsyncSeek + Unpin,
{
    let mut got = Vec::new();
    for step in steps {
        let g = match step {
            Step::Read(n) => {
                let mut buf = vec![0u8; *n];
                match f.read(&mut buf).await {
                    Ok(k) => Got::Bytes(buf[..k].to_vec()),
                    Err(e) => Got::Failed(e.kind()),
                }
            }
            Step::Write(bytes) => match f.write_all(bytes).await {
                Ok(()) => Got::Done,
                Err(e) => Got::Failed(e.kind()),
            },
            Step::Seek(to) => match f.seek(*to).await {
                Ok(at) => Got::At(at),
                Err(e) => Got::Failed(e.kind()),
            },
            Step::Flush => match f.flush().await {
                Ok(()) => Got::Done,
                Err(e) => Got::Failed(e.kind()),
            },
            Step::Position => match f.stream_position().await {
                Ok(at) => Got::At(at),
                Err(e) => Got::Failed(e.kind()),
            },
        };
        got.push(g);
    }
    if let Err(e) = f.flush().await {
        got.push(Got::Failed(e.kind()));
    }
    got
}

#[test]
fn random_op_sequences_match_tokio_fs_file() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("async-file-diff");
    let tokio = tokio_rt();
    // Seeds 5 and 6 cap each op at 7 bytes on both sides (Tokio's
    // `set_max_buf_size`): reads come back short, writes take many ops.
    for seed in 1..=6u64 {
        let cap = if seed > 4 { 7 } else { 2 << 20 };
        let plan = steps(seed, 300);
        let (ours, theirs) = (
            dir.0.join(format!("ours{seed}")),
            dir.0.join(format!("theirs{seed}")),
        );
        std::fs::write(&ours, pattern(1000, 7)).unwrap();
        std::fs::write(&theirs, pattern(1000, 7)).unwrap();
        let (p, s) = (ours.clone(), plan.clone());
        let got_ours = on_fresh_shard(async move {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&p)
                .await
                .unwrap();
            let mut f = f.into_async();
            f.set_max_buf_size(cap);
            apply(&mut f, &s).await
        });
        let got_theirs = tokio.block_on(async {
            let mut f = tokio::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&theirs)
                .await
                .unwrap();
            f.set_max_buf_size(cap);
            apply(&mut f, &plan).await
        });
        for (i, (a, b)) in got_ours.iter().zip(&got_theirs).enumerate() {
            assert_eq!(a, b, "seed {seed}, step {i}: {:?}", plan.get(i));
        }
        assert_eq!(got_ours.len(), got_theirs.len());
        assert!(
            std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
            "seed {seed}: the files differ"
        );
    }
}

#[test]
fn buf_reader_lines_and_copy_run_unchanged_on_it() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("async-file-eco");
    let src = dir.0.join("src");
    // Larger than one op's 2 MiB, so copies take several.
    let big = pattern(5 << 20, 3);
    std::fs::write(&src, &big).unwrap();
    let text = dir.0.join("text");
    let lines: Vec<String> = (0..2000).map(|i| format!("line {i}")).collect();
    std::fs::write(&text, lines.join("\n") + "\n").unwrap();
    let (s, d, t) = (src.clone(), dir.0.join("dst"), text.clone());
    let (copied, got_lines) = on_fresh_shard(async move {
        let mut from = File::open(&s).await?.into_async();
        let mut to = File::create(&d).await?.into_async();
        let copied = tokio::io::copy(&mut from, &mut to).await?;
        to.shutdown().await?;
        let mut got = Vec::new();
        let mut reader = BufReader::new(File::open(&t).await?.into_async()).lines();
        while let Some(line) = reader.next_line().await? {
            got.push(line);
        }
        Ok::<_, std::io::Error>((copied, got))
    })
    .unwrap();
    assert_eq!(copied, big.len() as u64);
    assert!(
        std::fs::read(dir.0.join("dst")).unwrap() == big,
        "the copy differs"
    );
    assert_eq!(got_lines, lines);
}

/// A write that fails behind (a file opened read-only: `EBADF`) is
/// answered `Ok` and its error comes with the next write or flush, never
/// with a read or a seek, which go on as if it had not been tried; the
/// failed bytes are gone, not read back. Each sequence as Tokio's.
#[test]
fn a_write_behind_error_comes_with_the_next_write_or_flush_as_with_tokio() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("async-file-err");
    let path = dir.0.join("ro");
    std::fs::write(&path, b"read only").unwrap();
    async fn sequences<F, O>(open: impl Fn() -> O) -> Vec<String>
    where
        F: tokio::io::AsyncRead + tokio::io::AsyncWrite + tokio::io::AsyncSeek + Unpin,
        O: std::future::Future<Output = F>,
    {
        let brief = |r: std::io::Result<String>| match r {
            Ok(v) => v,
            Err(e) => format!("err {:?}", e.kind()),
        };
        let mut out = Vec::new();
        // write, flush, flush, read, position
        let mut f = open().await;
        out.push(brief(f.write(b"nope").await.map(|n| n.to_string())));
        out.push(brief(f.flush().await.map(|()| "flushed".into())));
        out.push(brief(f.flush().await.map(|()| "flushed".into())));
        let mut all = Vec::new();
        out.push(brief(
            f.read_to_end(&mut all)
                .await
                .map(|_| String::from_utf8(all).unwrap()),
        ));
        out.push(brief(f.stream_position().await.map(|p| p.to_string())));
        // write, read, flush
        let mut f = open().await;
        out.push(brief(f.write(b"nope").await.map(|n| n.to_string())));
        let mut four = [0u8; 4];
        out.push(brief(
            f.read(&mut four)
                .await
                .map(|n| String::from_utf8_lossy(&four[..n]).into()),
        ));
        out.push(brief(f.flush().await.map(|()| "flushed".into())));
        // write, seek, write
        let mut f = open().await;
        out.push(brief(f.write(b"nope").await.map(|n| n.to_string())));
        out.push(brief(
            f.seek(SeekFrom::Start(2)).await.map(|p| p.to_string()),
        ));
        out.push(brief(f.write(b"again").await.map(|n| n.to_string())));
        out.push(brief(f.stream_position().await.map(|p| p.to_string())));
        out
    }
    let p = path.clone();
    let ours = on_fresh_shard(async move {
        sequences(|| {
            let p = p.clone();
            async move { File::open(&p).await.unwrap().into_async() }
        })
        .await
    });
    let theirs = tokio_rt().block_on(sequences(|| async {
        tokio::fs::File::open(&path).await.unwrap()
    }));
    assert_eq!(ours, theirs);
    assert_eq!(ours[0], "4");
    assert!(ours[1].starts_with("err"), "{ours:?}");
    assert_eq!(ours[2..5], ["flushed", "read only", "9"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"read only");
}

/// The write waits on a FIFO whose reader has not started reading when the
/// `AsyncFile` is dropped: it runs on as a task (a cancelled one would
/// leave the reader with the pipe's 64 KiB and an early end).
#[test]
fn a_write_in_flight_when_the_file_is_dropped_still_lands() {
    let _serial = SERIAL.lock();
    let fifo = Fifo::new("async-file-drop");
    let data = pattern(1 << 20, 9);
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (got_tx, got_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let fp = fifo.path.clone();
    std::thread::spawn(move || {
        let mut f = std::fs::File::open(fp).unwrap();
        go_rx.recv().unwrap(); // after the drop
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut all).unwrap();
        let _ = got_tx.send(all);
    });
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let (p, d) = (fifo.path.clone(), data.clone());
    let taken = on_shard(&rt, 0, LIMIT, async move {
        let mut f = OpenOptions::new()
            .write(true)
            .open(&p)
            .await
            .unwrap()
            .into_async();
        // Taken whole (under the 2 MiB cap), and far more than the pipe
        // holds: the write is in flight at the drop.
        let n = f.write(&d).await.unwrap();
        drop(f);
        n
    });
    assert_eq!(taken, data.len());
    go_tx.send(()).unwrap();
    // The write end closes when the write's task ends: the reader's end.
    let got = got_rx.recv_timeout(LIMIT);
    drop(rt);
    let got = got.expect("the reader never saw the end: the write's task stalled");
    assert_eq!(common::fd_count(), before, "an fd was left open");
    assert!(
        got == data,
        "the reader got {} of {} bytes",
        got.len(),
        data.len()
    );
}

/// A read polled with a large buffer and completed for a smaller one leaves
/// bytes read ahead; a write then goes where the caller's position is, not
/// where the kernel's went, and the position says so (as Tokio's).
#[test]
fn bytes_read_ahead_are_given_back_before_a_write() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("async-file-ahead");
    let (ours, theirs) = (dir.0.join("ours"), dir.0.join("theirs"));
    std::fs::write(&ours, pattern(100, 5)).unwrap();
    std::fs::write(&theirs, pattern(100, 5)).unwrap();
    /// (Whether the first poll was pending, the 3 bytes, the position.)
    async fn ahead<F>(f: &mut F) -> (bool, Vec<u8>, u64)
    where
        F: tokio::io::AsyncRead + tokio::io::AsyncWrite + tokio::io::AsyncSeek + Unpin,
    {
        let pending = poll_read_once(f, 64).await;
        let mut small = [0u8; 3];
        let n = f.read(&mut small).await.unwrap();
        // (A seek, `stream_position` included, would give them back too.)
        f.write_all(b"XY").await.unwrap();
        f.flush().await.unwrap();
        (
            pending,
            small[..n].to_vec(),
            f.stream_position().await.unwrap(),
        )
    }
    let p = ours.clone();
    let got_ours = on_fresh_shard(async move {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .await
            .unwrap();
        ahead(&mut f.into_async()).await
    });
    let got_theirs = tokio_rt().block_on(async {
        let mut f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&theirs)
            .await
            .unwrap();
        ahead(&mut f).await
    });
    // Ours cannot complete within its first poll (the task `poll_read_once`
    // leaves runnable beside it keeps it from an inline try, and the shard
    // reaps between polls); Tokio's blocking read could, on a very slow poll.
    assert!(
        got_ours.0,
        "the first poll completed: nothing was read ahead"
    );
    let mut want = pattern(100, 5);
    want[3..5].copy_from_slice(b"XY");
    assert_eq!(got_ours, (true, pattern(3, 5), 5));
    assert_eq!(std::fs::read(&ours).unwrap(), want);
    if got_theirs.0 {
        assert_eq!(std::fs::read(&theirs).unwrap(), want, "Tokio's differs");
    } else {
        eprintln!("Tokio's first poll completed: its side not compared");
    }
}

#[test]
fn appends_fifos_and_the_position_behave_as_with_std() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("async-file-kinds");
    let path = dir.0.join("log");
    std::fs::write(&path, b"head ").unwrap();
    let p = path.clone();
    let at = on_fresh_shard(async move {
        let mut f = OpenOptions::new().append(true).open(&p).await?.into_async();
        f.write_all(b"one ").await?;
        f.write_all(b"two").await?;
        f.flush().await?;
        let mut r = File::open(&p).await?.into_async();
        let mut five = [0u8; 5];
        r.read_exact(&mut five).await?;
        let here = r.stream_position().await?;
        let mut rest = String::new();
        r.read_to_string(&mut rest).await?;
        r.seek(SeekFrom::End(-3)).await?;
        let mut last = String::new();
        r.read_to_string(&mut last).await?;
        Ok::<_, std::io::Error>((five, here, rest, last))
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"head one two");
    assert_eq!(at, (*b"head ", 5, "one two".to_owned(), "two".to_owned()));

    let fifo = Fifo::new("async-file-fifo");
    let data = pattern(200_000, 1);
    let (fp, d) = (fifo.path.clone(), data.clone());
    let writer = std::thread::spawn(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .open(fp)
            .unwrap()
            .write_all(&d)
            .unwrap();
    });
    let fp = fifo.path.clone();
    let got = on_fresh_shard(async move {
        let mut f = File::open(&fp).await?.into_async();
        let mut all = Vec::new();
        f.read_to_end(&mut all).await?;
        Ok::<_, std::io::Error>(all)
    })
    .unwrap();
    writer.join().unwrap();
    assert!(
        got == data,
        "{} of {} bytes through the FIFO",
        got.len(),
        data.len()
    );
}

#[test]
fn used_off_the_shards_it_fails_with_a_clear_error() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let f = on_shard(&rt, 0, LIMIT, async {
        File::open("/proc/self/cmdline").await.unwrap().into_async()
    });
    let err = tokio_rt().block_on(async move {
        let mut f = f;
        let mut buf = [0u8; 16];
        f.read(&mut buf).await.unwrap_err()
    });
    assert!(err.to_string().contains("ringlane shard"), "{err}");
    let f = on_shard(&rt, 0, LIMIT, async {
        File::create(std::env::temp_dir().join(format!("ringlane-off-{}", std::process::id())))
            .await
            .unwrap()
            .into_async()
    });
    let err = tokio_rt().block_on(async move {
        let mut f = f;
        f.write(b"x").await.unwrap_err()
    });
    let _ = std::fs::remove_file(
        std::env::temp_dir().join(format!("ringlane-off-{}", std::process::id())),
    );
    assert!(err.to_string().contains("shard"), "{err}");
}

/// A write behind moves on by itself: a 1 MiB write to a FIFO takes many
/// short kernel writes while the writer waits on something else (here,
/// the reader's word that it has everything) without polling the file.
#[test]
fn a_write_behind_finishes_while_the_writer_waits_elsewhere() {
    let _serial = SERIAL.lock();
    let fifo = Fifo::new("async-file-progress");
    let data = pattern(1 << 20, 4);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<usize>();
    let (fp, len) = (fifo.path.clone(), data.len());
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(fp).unwrap();
        let mut got = vec![0u8; len];
        std::io::Read::read_exact(&mut f, &mut got).unwrap();
        let _ = done_tx.send(got.len());
        got
    });
    let (p, d) = (fifo.path.clone(), data.clone());
    let outcome = on_fresh_shard(async move {
        let mut f = OpenOptions::new()
            .write(true)
            .open(&p)
            .await
            .unwrap()
            .into_async();
        f.write_all(&d).await.unwrap();
        // Less than the task's own limit, so that a stall fails here.
        let heard = ringlane::time::timeout(LIMIT / 2, done_rx).await;
        let flushed = f.flush().await.map_err(|e| e.kind());
        (heard.is_ok(), flushed)
    });
    let got = reader.join().unwrap();
    assert_eq!(
        outcome,
        (true, Ok(())),
        "(the reader's word came, the flush)"
    );
    assert!(got == data);
}

#[test]
fn into_file_waits_for_the_write_and_gives_the_file_back() {
    let _serial = SERIAL.lock();
    let dir = TempDir::new("async-file-into");
    let path = dir.0.join("f");
    let p = path.clone();
    let len = on_fresh_shard(async move {
        let mut f = File::create(&p).await?.into_async();
        f.write_all(&pattern(3 << 20, 2)).await?;
        let file = f.into_file().await?;
        Ok::<_, std::io::Error>(file.metadata().await?.len())
    })
    .unwrap();
    assert_eq!(len, 3 << 20);
    assert!(Path::new(&path).exists());
}

/// Bytes read ahead from a FIFO cannot be given back (`lseek` fails with
/// `ESPIPE`): the next write reports that once and drops them, and the
/// writes after it go through.
#[test]
fn bytes_read_ahead_from_a_fifo_are_dropped_with_one_error() {
    let _serial = SERIAL.lock();
    let fifo = Fifo::new("async-file-fifo-ahead");
    // A reader-writer of our own: opening it never waits.
    let mut outside = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo.path)
        .unwrap();
    outside.write_all(b"0123456789").unwrap();
    let p = fifo.path.clone();
    let got = on_fresh_shard(async move {
        let f = OpenOptions::new().read(true).write(true).open(&p).await?;
        let mut f = f.into_async();
        let pending = poll_read_once(&mut f, 64).await;
        let mut three = [0u8; 3];
        let n = f.read(&mut three).await?;
        let first = f.write(b"x").await.map_err(|e| e.raw_os_error());
        let second = f.write(b"y").await.map_err(|e| e.raw_os_error());
        let flushed = f.flush().await.map_err(|e| e.raw_os_error());
        Ok::<_, std::io::Error>((pending, three[..n].to_vec(), first, second, flushed))
    })
    .unwrap();
    assert!(got.0, "the first poll completed: nothing was read ahead");
    assert_eq!(got.1, b"012");
    assert_eq!(
        (got.2, got.3, got.4),
        (Err(Some(libc::ESPIPE)), Ok(1), Ok(()))
    );
    // Only the write that went through is in the FIFO now.
    let mut rest = [0u8; 8];
    let k = std::io::Read::read(&mut outside, &mut rest).unwrap();
    assert_eq!(&rest[..k], b"y");
}

/// A write behind still waiting (a FIFO nobody reads) when its runtime is
/// shut down: the shutdown ends it (as it ends every task) within its
/// timeout, and no fd is left open.
#[test]
fn a_write_behind_waiting_at_shutdown_is_ended_and_leaves_no_fd() {
    let _serial = SERIAL.lock();
    let fifo = Fifo::new("async-file-shutdown");
    // A reader that never reads, so that the open for writing does not wait.
    let reader = common::fs_edges::open_nonblocking(&fifo.path, false).unwrap();
    let before = settled_fd_count();
    let rt = common::runtime(1);
    let p = fifo.path.clone();
    let taken = on_shard(&rt, 0, LIMIT, async move {
        let mut f = OpenOptions::new()
            .write(true)
            .open(&p)
            .await
            .unwrap()
            .into_async();
        let n = f.write(&pattern(1 << 20, 1)).await.unwrap();
        drop(f); // the write's task holds the file now
        n
    });
    assert_eq!(taken, 1 << 20);
    let t = std::time::Instant::now();
    let report = rt.shutdown(std::time::Duration::from_millis(200));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "the shutdown took {:?}",
        t.elapsed()
    );
    assert_eq!(report.unfinished_tasks, 1, "{report:?}");
    assert_eq!(common::fd_count(), before, "an fd was left open");
    drop(reader);
}

/// Polls one read of up to `room` bytes once and drops it; whether it was
/// pending (then the read stays in flight, and its bytes are read ahead of
/// whatever the caller reads next).
async fn poll_read_once<F: tokio::io::AsyncRead + Unpin>(f: &mut F, room: usize) -> bool {
    // A task runnable beside this one (on a shard): ringlane's read waits
    // for the loop's shared enter instead of completing in this first poll
    // (op invariant 13, rule 1), so the read under test is in flight.
    let _beside = ringlane::spawn_local(async {});
    let mut buf = vec![0u8; room];
    std::future::poll_fn(|cx| {
        let mut rb = tokio::io::ReadBuf::new(&mut buf);
        let polled = std::pin::Pin::new(&mut *f).poll_read(cx, &mut rb);
        std::task::Poll::Ready(polled.is_pending())
    })
    .await
}

/// The calls beside the traits, on both files.
trait FileCalls: tokio::io::AsyncRead + tokio::io::AsyncWrite + tokio::io::AsyncSeek + Unpin {
    fn sync_all_now(
        &mut self,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send + '_;
    fn set_len_now(
        &mut self,
        n: u64,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send + '_;
}

/// The same calls, by the same names, on either file.
macro_rules! file_calls {
    ($file:ty) => {
        impl FileCalls for $file {
            fn sync_all_now(
                &mut self,
            ) -> impl std::future::Future<Output = std::io::Result<()>> + Send + '_ {
                self.sync_all()
            }
            fn set_len_now(
                &mut self,
                n: u64,
            ) -> impl std::future::Future<Output = std::io::Result<()>> + Send + '_ {
                self.set_len(n)
            }
        }
    };
}
file_calls!(ringlane::native::fs::AsyncFile);
file_calls!(tokio::fs::File);

/// `sync_all` and `set_len` on the file, as Tokio's: each waits for the
/// write behind; a write's error is kept for the next flush rather than
/// given to `sync_all`; `set_len` leaves the position alone.
async fn calls<F: FileCalls, O: std::future::Future<Output = F>>(
    open: impl Fn(bool) -> O,
) -> Vec<String> {
    let show = |r: std::io::Result<()>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("{:?}", e.kind()),
    };
    let mut out = Vec::new();
    let mut f = open(true).await;
    f.write_all(&pattern(300_000, 3)).await.unwrap();
    out.push(show(f.sync_all_now().await));
    f.seek(SeekFrom::Start(10)).await.unwrap();
    out.push(show(f.set_len_now(100).await));
    out.push(f.stream_position().await.unwrap().to_string());
    f.write_all(b"ab").await.unwrap();
    f.flush().await.unwrap();
    // A write that fails behind (read-only), then sync_all, then flush.
    let mut ro = open(false).await;
    out.push(format!("{:?}", ro.write(b"x").await.map_err(|e| e.kind())));
    out.push(show(ro.sync_all_now().await));
    out.push(show(ro.flush().await));
    out
}

#[test]
fn sync_all_and_set_len_match_tokio() {
    let _serial = SERIAL.lock();
    if !kernel_has_ftruncate() {
        return;
    }
    let dir = TempDir::new("async-file-calls");
    let (ours, theirs) = (dir.0.join("ours"), dir.0.join("theirs"));
    let p = ours.clone();
    let got_ours = on_fresh_shard(async move {
        calls(|write| {
            let p = p.clone();
            async move {
                let f = OpenOptions::new()
                    .read(true)
                    .write(write)
                    .create(write)
                    .open(&p)
                    .await;
                f.unwrap().into_async()
            }
        })
        .await
    });
    let t = theirs.clone();
    let got_theirs = tokio_rt().block_on(calls(|write| {
        let t = t.clone();
        async move {
            let f = tokio::fs::OpenOptions::new()
                .read(true)
                .write(write)
                .create(write)
                .open(&t)
                .await;
            f.unwrap()
        }
    }));
    assert_eq!(got_ours, got_theirs);
    assert_eq!(got_ours[..3], ["ok", "ok", "10"]);
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    assert_eq!(std::fs::metadata(&ours).unwrap().len(), 100);
    let p = ours.clone();
    let len = on_fresh_shard(async move {
        File::open(&p)
            .await
            .unwrap()
            .into_async()
            .metadata()
            .await
            .unwrap()
            .len()
    });
    assert_eq!(len, 100);
}

/// `Send` and `Sync`, as `tokio::fs::File`: a `&AsyncFile` call
/// (`metadata`) can be awaited in a `Send` task.
#[test]
fn it_is_send_and_sync_as_tokios_file() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ringlane::native::fs::AsyncFile>();
    send_sync::<tokio::fs::File>();
}

/// Whether `File::set_len` can work here (Linux 6.9's FTRUNCATE); says so
/// when it cannot.
fn kernel_has_ftruncate() -> bool {
    let has = common::runtime(1).handle().ring_features().ftruncate;
    if !has {
        eprintln!("SKIPPED: this kernel lacks IORING_OP_FTRUNCATE (Linux 6.9)");
    }
    has
}

/// A read started and dropped while a write's error waits (a write behind
/// failed, then a read was polled once and given up): `set_len` and
/// `sync_all` wait for that read instead of finding the file busy (which
/// made `set_len` panic: Tokio 1.54's does the same), and the write's
/// error still comes with the next flush. `set_len` after bytes read ahead
/// leaves the position where the reader is.
#[test]
fn file_calls_after_a_dropped_read_and_a_kept_write_error_wait_for_the_read() {
    let _serial = SERIAL.lock();
    if !kernel_has_ftruncate() {
        return;
    }
    let dir = TempDir::new("async-file-kept-error");
    let path = dir.0.join("f");
    std::fs::write(&path, pattern(100, 8)).unwrap();
    let p = path.clone();
    let got = on_fresh_shard(async move {
        let mut f = File::open(&p).await.unwrap().into_async(); // read-only
        let wrote = f.write(b"nope").await.map(|n| n.to_string());
        // The write's task runs (and fails) meanwhile.
        ringlane::time::sleep(Duration::from_millis(20)).await;
        // The read finds the write's error, keeps it, and starts a read
        // (pending): dropped after one poll.
        let pending = poll_read_once(&mut f, 64).await;
        let set_len = f.set_len(10).await.map_err(|e| e.kind());
        let synced = f.sync_all().await.map_err(|e| e.kind());
        let flushed = f.flush().await.map_err(|e| e.raw_os_error());
        (wrote.unwrap(), pending, set_len, synced, flushed)
    });
    // A read-only fd: ftruncate says EINVAL.
    assert_eq!(
        got,
        (
            "4".to_owned(),
            true,
            Err(ErrorKind::InvalidInput),
            Ok(()),
            Err(Some(libc::EBADF))
        )
    );
}

/// `set_len` after a read left bytes ahead: the position stays where the
/// reader is (3), the bytes ahead are given back.
#[test]
fn set_len_after_bytes_read_ahead_keeps_the_readers_position() {
    let _serial = SERIAL.lock();
    if !kernel_has_ftruncate() {
        return;
    }
    let dir = TempDir::new("async-file-set-len-ahead");
    let path = dir.0.join("f");
    std::fs::write(&path, pattern(100, 9)).unwrap();
    let p = path.clone();
    let (pending, at, rest) = on_fresh_shard(async move {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .await
            .unwrap();
        let mut f = f.into_async();
        let pending = poll_read_once(&mut f, 64).await;
        let mut three = [0u8; 3];
        f.read_exact(&mut three).await.unwrap();
        f.set_len(50).await.unwrap();
        let at = f.stream_position().await.unwrap();
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).await.unwrap();
        (pending, at, rest)
    });
    assert!(pending, "the first poll completed: nothing was read ahead");
    assert_eq!(at, 3);
    assert_eq!(rest, pattern(100, 9)[3..50]);
}
