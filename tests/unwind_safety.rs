//! The handles are `UnwindSafe` and `RefUnwindSafe`, as Tokio's are
//! (`tokio/tests/unwindsafe.rs`): code that wraps a `block_on` or a join in
//! `catch_unwind` compiles without `AssertUnwindSafe`.

use std::panic::{RefUnwindSafe, UnwindSafe, catch_unwind};

fn is_unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}

/// Expected: compiles (the assertions are the test), and a panic caught
/// around `block_on` leaves the runtime usable.
#[test]
fn the_handles_are_unwind_safe_as_tokios() {
    is_unwind_safe::<ringlane::JoinHandle<()>>();
    is_unwind_safe::<ringlane::JoinError>();
    is_unwind_safe::<ringlane::AbortHandle>();
    is_unwind_safe::<ringlane::Handle>();
    is_unwind_safe::<ringlane::Runtime>();
    let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    let caught = catch_unwind(|| rt.block_on(async { panic!("in block_on") }));
    assert!(caught.is_err());
    let j = rt.handle().spawn_pinned(0, async { 3 }).unwrap();
    assert_eq!(rt.block_on(j).unwrap(), 3, "the runtime goes on");
}

/// Expected: `JoinError`'s `Debug` has Tokio's shape (less the task id),
/// the text every `.unwrap()` of a failed join prints.
#[test]
fn a_join_errors_debug_text_has_tokios_shape() {
    let rt = ringlane::Runtime::builder().shards(1).build().unwrap();
    let j = rt
        .handle()
        .spawn_pinned(0, async { panic!("boom") })
        .unwrap();
    let e = rt.block_on(j).unwrap_err();
    assert_eq!(format!("{e:?}"), r#"JoinError::Panic("boom", ...)"#);
    let j = rt
        .handle()
        .spawn_pinned(0, std::future::pending::<()>())
        .unwrap();
    j.abort();
    let e = rt.block_on(j).unwrap_err();
    assert_eq!(format!("{e:?}"), "JoinError::Cancelled");
}
