//! `File`'s read and write futures own what they need (the buffer, a share
//! of the fd) and borrow nothing: they may be made anywhere, outlive the
//! `File`, move to the shard that polls them, or be dropped unpolled, with
//! no leak and the op submitted only where it is first polled.

mod common;

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ringlane::native::fs::File;
use ringlane::native::{IoBuf, IoBufMut};

/// fd counts are process-wide: the tests here count one at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// A file holding `data`, opened read-write, as a ringlane `File`.
fn file_with(name: &str, data: &[u8]) -> (File, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!(
        "ringlane-test-futures-{name}-{}",
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(data).unwrap();
    (File::from(OwnedFd::from(f)), path)
}

/// A `Vec` buffer that counts its drops.
struct Counted(Vec<u8>, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: delegates to the `Vec`, whose heap bytes do not move.
unsafe impl IoBuf for Counted {
    fn stable_ptr(&self) -> *const u8 {
        IoBuf::stable_ptr(&self.0)
    }
    fn bytes_init(&self) -> usize {
        self.0.bytes_init()
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for Counted {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.0.stable_mut_ptr()
    }
    fn bytes_total(&self) -> usize {
        self.0.bytes_total()
    }
    unsafe fn set_init(&mut self, n: usize) {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { self.0.set_init(n) }
    }
}

#[test]
fn a_read_made_off_the_shards_is_submitted_on_the_shard_that_polls_it() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let (file, path) = file_with("off", b"hello, ring");
    // Made on the test thread, outside any runtime: nothing is submitted
    // until a shard polls it, so it can be the task itself.
    let read = file.read_at(Vec::with_capacity(4), 7);
    let write = file.write_at(b"HELLO".to_vec(), 0);
    let (n, buf) = rt
        .block_on(rt.handle().spawn_pinned(1, read).unwrap())
        .unwrap();
    assert_eq!((n.unwrap(), &buf[..]), (4, &b"ring"[..]));
    let (n, _) = rt
        .block_on(rt.handle().spawn_pinned(0, write).unwrap())
        .unwrap();
    assert_eq!(n.unwrap(), 5);
    assert_eq!(std::fs::read(&path).unwrap(), b"HELLO, ring");
    // Polled off the shards, it fails clearly (and gives the buffer back).
    let (n, buf) = common::block_on(file.read_at(vec![1u8; 3], 0));
    let e = n.unwrap_err();
    assert!(
        e.to_string().contains("ringlane shard"),
        "the error says where native ops run: {e}"
    );
    assert_eq!(buf, [1, 1, 1]);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_read_outlives_the_file_it_was_made_from_and_the_fd_closes_after_it() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(1);
    let before = common::fd_count();
    let (file, path) = file_with("outlive", b"0123456789");
    let got = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let read = file.read_at(Vec::with_capacity(6), 4);
                    drop(file); // the read holds its own share of the fd
                    let (n, buf) = read.await;
                    (n.unwrap(), buf)
                })
                .unwrap(),
        )
        .unwrap();
    assert_eq!((got.0, &got.1[..]), (6, &b"456789"[..]));
    assert_eq!(
        common::fd_count(),
        before,
        "the file's fd closed after its read"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn reads_and_writes_dropped_unpolled_give_back_their_buffers_and_fd() {
    let _serial = SERIAL.lock();
    let before = common::fd_count();
    let (file, path) = file_with("unpolled", b"abc");
    let drops = Arc::new(AtomicUsize::new(0));
    let buf = |len: usize| Counted(Vec::with_capacity(len), drops.clone());
    let read = file.read_at(buf(8), 0);
    let write = file.write_at(Counted(b"xyz".to_vec(), drops.clone()), 1);
    let at_position = file.read(buf(8));
    // Refused before any op is made: a zero-length buffer, a bad offset.
    let refused = file.read_at(buf(0), 0);
    let beyond = file.write_at(Counted(b"q".to_vec(), drops.clone()), u64::MAX);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "each future holds its buffer"
    );
    drop((read, write, at_position, refused, beyond));
    assert_eq!(drops.load(Ordering::SeqCst), 5, "every buffer dropped once");
    drop(file);
    assert_eq!(common::fd_count(), before, "no op kept the fd open");
    assert_eq!(std::fs::read(&path).unwrap(), b"abc", "nothing was written");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_registered_files_read_made_off_the_shards_runs_on_its_own_shard_only() {
    let _serial = SERIAL.lock();
    let rt = common::runtime(2);
    let (file, path) = file_with("registered", b"fixed slot");
    let registered = rt
        .block_on(
            rt.handle()
                .spawn_pinned(1, async move { file.register() })
                .unwrap(),
        )
        .unwrap()
        .unwrap();
    assert!(registered.is_registered());
    // Made on the test thread; polled on the file's shard it reads...
    let home = registered.read_at(Vec::with_capacity(4), 6);
    let (n, buf) = rt
        .block_on(rt.handle().spawn_pinned(1, home).unwrap())
        .unwrap();
    assert_eq!((n.unwrap(), &buf[..]), (4, &b"slot"[..]));
    // ...and on another shard it is refused, buffer given back.
    let away = registered.read_at(vec![5u8; 4], 0);
    let (n, buf) = rt
        .block_on(rt.handle().spawn_pinned(0, away).unwrap())
        .unwrap();
    assert_eq!(n.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(buf, [5, 5, 5, 5]);
    drop(registered);
    std::fs::remove_file(path).unwrap();
}
