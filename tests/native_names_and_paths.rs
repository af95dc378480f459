//! Unix socket names at the `sun_path` edge (107 bytes, pathname or
//! abstract, and one more) and path errors (NAME_MAX, PATH_MAX, ENOTDIR,
//! EISDIR, ENOTEMPTY, ELOOP, ...) match std, changing nothing on disk.

mod common;

use std::ffi::OsString;
use std::io::{self, ErrorKind, Read};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use ringlane::native::NativeTimeoutExt;
use ringlane::native::fs::{self as nfs, File, OpenOptions};
use ringlane::native::net::{UnixListener, UnixStream};

use common::LIMIT;
use common::fs_edges::*;
use common::native_io::{SERIAL, TempDir, settled_fd_count};

/// The shard side of `unix_socket_names_at_the_sun_path_edge_match_std`:
/// a list of what went wrong.
async fn sun_path_cases(dir: PathBuf) -> io::Result<Vec<String>> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{
        SocketAddr as StdAddr, UnixListener as StdListener, UnixStream as StdStream,
    };
    let mut bad = Vec::new();
    let padded = |len: usize| {
        let mut b = dir.join("s").into_os_string().into_vec();
        assert!(
            b.len() < len,
            "the temp dir's path is too long for this test"
        );
        b.resize(len, b'x');
        PathBuf::from(OsString::from_vec(b))
    };
    let abstract_path = |name: &[u8]| {
        let mut b = vec![0u8];
        b.extend_from_slice(name);
        PathBuf::from(OsString::from_vec(b))
    };
    let name = |tag: &str, len: usize| {
        let mut b = format!("ringlane-adv-{tag}-{}-", std::process::id()).into_bytes();
        b.resize(len, b'y');
        b
    };
    let kind = |e: Option<io::Error>| e.map(|e| e.kind());

    // A 107-byte pathname (sun_path's 108 less the NUL): ours binds it,
    // std and ours connect to it, bytes flow.
    let fits = padded(107);
    let l = UnixListener::bind(&fits)?;
    let _std_client = StdStream::connect(&fits)?;
    let _from_std = l.accept().timeout(LIMIT).await?;
    let ours = UnixStream::connect(&fits).await?;
    let accepted = l.accept().timeout(LIMIT).await?;
    ours.write_all(b"p".to_vec()).await.0?;
    let (n, got) = accepted.read(vec![0u8; 4]).timeout(LIMIT).await;
    if got[..n?] != *b"p" {
        bad.push("a 107-byte pathname socket carried other bytes".to_string());
    }

    // 108 bytes: refused by both, and nothing created.
    let too_long = padded(108);
    let refused = [
        (
            "UnixListener::bind",
            kind(UnixListener::bind(&too_long).err()),
        ),
        (
            "std UnixListener::bind",
            kind(StdListener::bind(&too_long).err()),
        ),
        (
            "UnixStream::connect",
            kind(UnixStream::connect(&too_long).await.err()),
        ),
        (
            "std UnixStream::connect",
            kind(StdStream::connect(&too_long).err()),
        ),
    ];
    for (what, k) in refused {
        if k != Some(ErrorKind::InvalidInput) {
            bad.push(format!(
                "{what}, 108-byte pathname: {k:?}, want InvalidInput"
            ));
        }
    }
    if std::fs::symlink_metadata(&too_long).is_ok() {
        bad.push("a refused 108-byte pathname was created".to_string());
    }

    // A 107-byte abstract name (108 bytes with the leading NUL: the whole
    // sun_path): ours binds, std and ours connect.
    let n107 = name("ours", 107);
    let l = UnixListener::bind(abstract_path(&n107[..]))?;
    let _std_client = StdStream::connect_addr(&StdAddr::from_abstract_name(&n107)?)?;
    let _from_std = l.accept().timeout(LIMIT).await?;
    let ours = UnixStream::connect(abstract_path(&n107[..])).await?;
    let accepted = l.accept().timeout(LIMIT).await?;
    ours.write_all(b"a".to_vec()).await.0?;
    let (n, got) = accepted.read(vec![0u8; 4]).timeout(LIMIT).await;
    if got[..n?] != *b"a" {
        bad.push("a 107-byte abstract name carried other bytes".to_string());
    }

    // std binds a full-length abstract name with an inner NUL; ours connects.
    let mut n2 = name("std", 107);
    n2[60] = 0;
    let std_l = StdListener::bind_addr(&StdAddr::from_abstract_name(&n2)?)?;
    std_l.set_nonblocking(true)?;
    let ours = UnixStream::connect(abstract_path(&n2[..])).await?;
    match std_l.accept() {
        Ok((mut s, _)) => {
            ours.write_all(b"q".to_vec()).await.0?;
            s.set_read_timeout(Some(LIMIT))?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)?;
            if b != *b"q" {
                bad.push("std's abstract listener got other bytes".to_string());
            }
        }
        Err(e) => bad.push(format!(
            "our connect to std's 107-byte abstract name (inner NUL) reached no listener: {e}"
        )),
    }

    // 108 name bytes (109 with the NUL): refused by both.
    let n108 = name("long", 108);
    let refused = [
        (
            "UnixListener::bind",
            kind(UnixListener::bind(abstract_path(&n108[..])).err()),
        ),
        (
            "std SocketAddr::from_abstract_name",
            kind(StdAddr::from_abstract_name(&n108).err()),
        ),
        (
            "UnixStream::connect",
            kind(UnixStream::connect(abstract_path(&n108[..])).await.err()),
        ),
    ];
    for (what, k) in refused {
        if k != Some(ErrorKind::InvalidInput) {
            bad.push(format!(
                "{what}, 108-byte abstract name: {k:?}, want InvalidInput"
            ));
        }
    }
    Ok(bad)
}

/// Expected: Unix socket names at the exact edge of `sun_path` behave as
/// with std: a 107-byte pathname and a 107-byte abstract name (108 bytes
/// with its leading NUL) bind, connect and carry bytes between ringlane
/// and std in both directions; one byte more is `InvalidInput` for bind
/// and connect alike, and nothing is created on disk.
///
/// Why: `RawAddr::from_unix` computes the fit and the address
/// length itself (with and without the terminating NUL) and must agree to
/// the byte with std's `bind`/`from_abstract_name`; an off-by-one shows up
/// as a refused name that std takes, a truncated name (connecting to
/// nothing), or an overrun.
#[test]
fn unix_socket_names_at_the_sun_path_edge_match_std() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("sunpath");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, sun_path_cases(dir.0.clone()))
        .unwrap();
    let bad = common::join_within(&rt, task, LIMIT, "the sun_path cases").unwrap();
    drop(rt);
    drop(dir);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ------------------------------------------------------ 6: OpenOptions

/// The shard side of `path_errors_match_std_errno_and_change_nothing`.
async fn path_error_cases(d: PathBuf) -> Vec<String> {
    let file = d.join("file");
    let empty = d.join("empty");
    let full = d.join("full");
    let (loop1, loop2) = (d.join("loop1"), d.join("loop2"));
    std::fs::write(&file, b"data").unwrap();
    std::fs::create_dir(&empty).unwrap();
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("inner"), b"").unwrap();
    std::os::unix::fs::symlink(&loop2, &loop1).unwrap();
    std::os::unix::fs::symlink(&loop1, &loop2).unwrap();
    let missing = d.join("missing");
    let long_name = d.join("n".repeat(256)); // past NAME_MAX
    let long_path = d.join("p/".repeat(2100)); // past PATH_MAX
    let nothing = PathBuf::new();
    let inside = full.join("inside");
    let other = d.join("other");

    type Outcome = Result<(), Option<i32>>;
    let mut cases: Vec<(&str, Outcome, Outcome)> = Vec::new();
    // create_dir
    cases.push((
        "create_dir over a file",
        o(nfs::create_dir(&file).await),
        o(std::fs::create_dir(&file)),
    ));
    cases.push((
        "create_dir under a missing parent",
        o(nfs::create_dir(missing.join("sub")).await),
        o(std::fs::create_dir(missing.join("sub"))),
    ));
    cases.push((
        "create_dir under a file",
        o(nfs::create_dir(file.join("sub")).await),
        o(std::fs::create_dir(file.join("sub"))),
    ));
    cases.push((
        "create_dir, 256-byte name",
        o(nfs::create_dir(&long_name).await),
        o(std::fs::create_dir(&long_name)),
    ));
    cases.push((
        "create_dir, path past PATH_MAX",
        o(nfs::create_dir(&long_path).await),
        o(std::fs::create_dir(&long_path)),
    ));
    cases.push((
        "create_dir, empty path",
        o(nfs::create_dir(&nothing).await),
        o(std::fs::create_dir(&nothing)),
    ));
    // remove_dir / remove_file
    cases.push((
        "remove_dir of a file",
        o(nfs::remove_dir(&file).await),
        o(std::fs::remove_dir(&file)),
    ));
    cases.push((
        "remove_dir of a non-empty dir",
        o(nfs::remove_dir(&full).await),
        o(std::fs::remove_dir(&full)),
    ));
    cases.push((
        "remove_dir of a missing dir",
        o(nfs::remove_dir(&missing).await),
        o(std::fs::remove_dir(&missing)),
    ));
    cases.push((
        "remove_dir of a symlink",
        o(nfs::remove_dir(&loop1).await),
        o(std::fs::remove_dir(&loop1)),
    ));
    cases.push((
        "remove_file of a dir",
        o(nfs::remove_file(&empty).await),
        o(std::fs::remove_file(&empty)),
    ));
    cases.push((
        "remove_file under a file",
        o(nfs::remove_file(file.join("x")).await),
        o(std::fs::remove_file(file.join("x"))),
    ));
    cases.push((
        "remove_file, 256-byte name",
        o(nfs::remove_file(&long_name).await),
        o(std::fs::remove_file(&long_name)),
    ));
    cases.push((
        "remove_file, path past PATH_MAX",
        o(nfs::remove_file(&long_path).await),
        o(std::fs::remove_file(&long_path)),
    ));
    cases.push((
        "remove_file, empty path",
        o(nfs::remove_file(&nothing).await),
        o(std::fs::remove_file(&nothing)),
    ));
    // rename
    cases.push((
        "rename a dir onto a non-empty dir",
        o(nfs::rename(&empty, &full).await),
        o(std::fs::rename(&empty, &full)),
    ));
    cases.push((
        "rename a file onto a dir",
        o(nfs::rename(&file, &empty).await),
        o(std::fs::rename(&file, &empty)),
    ));
    cases.push((
        "rename a dir onto a file",
        o(nfs::rename(&empty, &file).await),
        o(std::fs::rename(&empty, &file)),
    ));
    cases.push((
        "rename a dir into itself",
        o(nfs::rename(&full, &inside).await),
        o(std::fs::rename(&full, &inside)),
    ));
    cases.push((
        "rename a missing file",
        o(nfs::rename(&missing, &other).await),
        o(std::fs::rename(&missing, &other)),
    ));
    cases.push((
        "rename to a 256-byte name",
        o(nfs::rename(&file, &long_name).await),
        o(std::fs::rename(&file, &long_name)),
    ));
    cases.push((
        "rename from a path past PATH_MAX",
        o(nfs::rename(&long_path, &other).await),
        o(std::fs::rename(&long_path, &other)),
    ));
    cases.push((
        "rename from an empty path",
        o(nfs::rename(&nothing, &other).await),
        o(std::fs::rename(&nothing, &other)),
    ));
    // metadata
    cases.push((
        "metadata through a file",
        o(nfs::metadata(file.join("x")).await),
        o(std::fs::metadata(file.join("x"))),
    ));
    cases.push((
        "metadata of a symlink loop",
        o(nfs::metadata(&loop1).await),
        o(std::fs::metadata(&loop1)),
    ));
    cases.push((
        "symlink_metadata of a symlink loop",
        o(nfs::symlink_metadata(&loop1).await),
        o(std::fs::symlink_metadata(&loop1)),
    ));
    cases.push((
        "metadata, 256-byte name",
        o(nfs::metadata(&long_name).await),
        o(std::fs::metadata(&long_name)),
    ));
    cases.push((
        "metadata, path past PATH_MAX",
        o(nfs::metadata(&long_path).await),
        o(std::fs::metadata(&long_path)),
    ));
    cases.push((
        "symlink_metadata, path past PATH_MAX",
        o(nfs::symlink_metadata(&long_path).await),
        o(std::fs::symlink_metadata(&long_path)),
    ));
    cases.push((
        "metadata, empty path",
        o(nfs::metadata(&nothing).await),
        o(std::fs::metadata(&nothing)),
    ));
    cases.push((
        "symlink_metadata, empty path",
        o(nfs::symlink_metadata(&nothing).await),
        o(std::fs::symlink_metadata(&nothing)),
    ));
    // open
    cases.push((
        "open a dir for writing",
        o(OpenOptions::new().write(true).open(&empty).await),
        o(std::fs::OpenOptions::new().write(true).open(&empty)),
    ));
    cases.push((
        "open a symlink loop",
        o(File::open(&loop1).await),
        o(std::fs::File::open(&loop1)),
    ));
    cases.push((
        "open with create, 256-byte name",
        o(OpenOptions::new()
            .write(true)
            .create(true)
            .open(&long_name)
            .await),
        o(std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&long_name)),
    ));
    cases.push((
        "open, path past PATH_MAX",
        o(File::open(&long_path).await),
        o(std::fs::File::open(&long_path)),
    ));
    cases.push((
        "open, empty path",
        o(File::open(&nothing).await),
        o(std::fs::File::open(&nothing)),
    ));

    let mut bad: Vec<String> = cases
        .into_iter()
        .filter(|(_, ours, theirs)| ours != theirs)
        .map(|(what, ours, theirs)| format!("{what}: ringlane {ours:?}, std {theirs:?}"))
        .collect();
    // Every one of those failed: the tree is as it was.
    let mut names: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names != ["empty", "file", "full", "loop1", "loop2"] {
        bad.push(format!("the tree changed: {names:?}"));
    }
    if std::fs::read(&file).ok().as_deref() != Some(&b"data"[..]) {
        bad.push("the file changed".to_string());
    }
    if std::fs::read_dir(&empty).map(|r| r.count()).ok() != Some(0)
        || std::fs::read_dir(&full).map(|r| r.count()).ok() != Some(1)
    {
        bad.push("a directory's contents changed".to_string());
    }
    bad
}

/// Expected: every path operation (create_dir, remove_dir, remove_file,
/// rename, metadata, symlink_metadata, open) given a name past NAME_MAX, a
/// path past PATH_MAX, an empty path, or a tree it cannot apply to (a file
/// as a directory, a non-empty target, a directory into itself, a symlink
/// loop) fails with exactly std's errno, and the tree is left untouched.
///
/// Why: ringlane converts paths itself (`c_path`) and runs the
/// operations as io_uring opcodes whose path handling (copied at prep,
/// `AT_EMPTY_PATH`-style empty names, flags) is not the syscalls'; an empty
/// path read as "this fd", a dropped flag or a different check shows up as
/// another errno, a panic, or a changed tree.
#[test]
fn path_errors_match_std_errno_and_change_nothing() {
    let _serial = SERIAL.lock();
    let before = settled_fd_count();
    let dir = TempDir::new("path-errors");
    let rt = common::runtime(1);
    let task = rt
        .handle()
        .spawn_pinned(0, path_error_cases(dir.0.clone()))
        .unwrap();
    let bad = common::join_within(&rt, task, LIMIT, "the path cases");
    drop(rt);
    drop(dir);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(common::fd_count(), before, "an fd leaked");
}

// ------------------------------------------------------ 8: buffers back
