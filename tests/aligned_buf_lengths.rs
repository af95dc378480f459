//! `AlignedBuf` (the `O_DIRECT` buffer) after a read holds exactly the
//! bytes that read gave, as a registered `FixedBuf` does (ADR 0012): a
//! short read at the end of a file must not leave an earlier, longer
//! read's bytes looking like data.

mod common;

use ringlane::native::AlignedBuf;
use ringlane::native::fs::File;

/// Expected: after a full 8 KiB read and then a 5,000-byte read of a
/// shorter file into the same buffer, `len()` is 5,000 and every byte is
/// the second file's.
///
/// Why it may fail: `set_init` only ever grew the length, so the buffer
/// still read as 8,192 bytes, its tail the first file's data.
#[test]
fn an_aligned_buffer_after_a_short_read_holds_exactly_what_it_read() {
    let dir = std::env::temp_dir().join(format!("ringlane-aligned-len-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (long, short) = (dir.join("long"), dir.join("short"));
    std::fs::write(&long, vec![1u8; 8192]).unwrap();
    std::fs::write(&short, vec![2u8; 5000]).unwrap();
    let rt = common::runtime(1);
    let (first, second) = rt
        .block_on(
            rt.handle()
                .spawn_pinned(0, async move {
                    let buf = AlignedBuf::with_capacity(8192, 4096);
                    let (n, buf) = File::open(&long).await.unwrap().read_at(buf, 0).await;
                    let first = (n.unwrap(), buf.len());
                    let (n, buf) = File::open(&short).await.unwrap().read_at(buf, 0).await;
                    let second = (n.unwrap(), buf.len(), buf.iter().all(|&b| b == 2));
                    (first, second)
                })
                .unwrap(),
        )
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(first, (8192, 8192));
    assert_eq!(
        second,
        (5000, 5000, true),
        "(read, len, every byte the short file's)"
    );
}
