//! Op cells recycled per thread: a freed cell's memory goes on a small
//! per-thread stack kept by layout, and the next cell of that layout
//! takes it back instead of asking the allocator.
//!
//! Why: a shard with more ops in flight than glibc's per-thread cache
//! holds (7 blocks per size) freed and allocated every cell through
//! malloc's slower bins: about 130 of the 1,440 instructions of a qd32
//! read.
//!
//! Invariants:
//! 1. A kept block was allocated by the global allocator with exactly the
//!    layout it is kept under (it came from a `Box<T>` of that layout), so
//!    a `Box` made on it again frees it correctly wherever it ends.
//! 2. A block is on one stack at most, and is never in use while there:
//!    [`free`] puts it there after its value was dropped; [`uninit`] takes
//!    it off before writing a value into it.
//! 3. What a thread keeps is bounded ([`STACKS`] layouts, [`KEPT`] blocks
//!    and [`KEPT_BYTES`] bytes on the stacks, and one block of at most
//!    [`KEPT_BYTES`] in invariant 4's slot), and given back to the allocator when the
//!    thread exits (a thread whose thread-locals are never destroyed, the
//!    main thread at process exit, keeps them to the end). A free after
//!    that (a thread-local destructor dropping an op) goes straight to the
//!    allocator. A layout's stack unused for [`STALE`] takes and keeps
//!    gives its place, and its blocks, up to a new layout.
//! 4. Before the stacks, a thread keeps the block it freed last, of any
//!    layout, in one slot ([`LAST`]), which the next [`uninit`] of that
//!    layout takes first; a later free moves the slot's block on to the
//!    stacks. A task's loop of ops frees its op's cell and allocates the
//!    next op's at once, so the slot serves it without the stacks'
//!    bookkeeping (about 80 instructions an op); a layout served so does
//!    not mark its stack used, which may then go stale (invariant 3) while
//!    the slot serves it. The slot's block is freed when the thread exits,
//!    as the stacks' are.
//!
//! Under AddressSanitizer (`scripts/asan`, `--cfg ringlane_asan`) nothing
//! is kept: a recycled block would hide a use after free from it.

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};

/// How many layouts a thread keeps blocks of.
const STACKS: usize = 4;
/// How many blocks a thread keeps.
const KEPT: usize = 256;
/// How many bytes a thread keeps.
const KEPT_BYTES: usize = 64 * 1024;

/// A layout's stack not used for this many takes and keeps of the thread
/// gives its place to a new layout (a shard's first ops, an open or a
/// `statx`, must not hold the places its reads and writes need).
const STALE: u64 = 1024;

/// Freed blocks of one layout.
struct Stack {
    layout: Layout,
    blocks: Vec<NonNull<u8>>,
    /// The thread's `Kept::clock` at this stack's last take or keep.
    used: u64,
}

impl Stack {
    /// Gives every block back to the allocator.
    fn release(&mut self) {
        for block in self.blocks.drain(..) {
            // SAFETY: invariant 1, and off the stack now (invariant 2).
            unsafe { alloc::dealloc(block.as_ptr(), self.layout) };
        }
    }
}

/// One thread's kept blocks.
struct Kept {
    stacks: Vec<Stack>,
    blocks: usize,
    bytes: usize,
    /// Counts the takes and keeps (for `Stack::used`).
    clock: u64,
}

impl Kept {
    fn take(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.clock += 1;
        let clock = self.clock;
        let stack = self.stacks.iter_mut().find(|s| s.layout == layout)?;
        stack.used = clock;
        let block = stack.blocks.pop()?;
        self.blocks -= 1;
        self.bytes -= layout.size();
        Some(block)
    }

    /// Keeps `block`, or gives it back (`Err`) when the thread keeps enough.
    fn keep(&mut self, block: NonNull<u8>, layout: Layout) -> Result<(), NonNull<u8>> {
        self.clock += 1;
        if self.blocks >= KEPT || self.bytes + layout.size() > KEPT_BYTES {
            return Err(block);
        }
        let i = match self.stacks.iter().position(|s| s.layout == layout) {
            Some(i) => i,
            None => self.place_for(layout).ok_or(block)?,
        };
        let stack = &mut self.stacks[i];
        stack.used = self.clock;
        stack.blocks.push(block);
        self.blocks += 1;
        self.bytes += layout.size();
        Ok(())
    }

    /// A stack for a layout not kept yet: a free place, or the place of
    /// the least recently used stack if it went stale (its blocks given
    /// back); none while every stack is in use.
    fn place_for(&mut self, layout: Layout) -> Option<usize> {
        let fresh = Stack {
            layout,
            blocks: Vec::new(),
            used: self.clock,
        };
        if self.stacks.len() < STACKS {
            self.stacks.push(fresh);
            return Some(self.stacks.len() - 1);
        }
        let (i, oldest) = self.stacks.iter().enumerate().min_by_key(|(_, s)| s.used)?;
        if self.clock - oldest.used < STALE {
            return None;
        }
        let old = &mut self.stacks[i];
        self.blocks -= old.blocks.len();
        self.bytes -= old.blocks.len() * old.layout.size();
        old.release();
        *old = fresh;
        Some(i)
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        // The thread ends: every block goes back.
        self.stacks.iter_mut().for_each(Stack::release);
    }
}

thread_local! {
    static KEPT_HERE: RefCell<Kept> = const {
        RefCell::new(Kept {
            stacks: Vec::new(),
            blocks: 0,
            bytes: 0,
            clock: 0,
        })
    };
}

/// The block this thread freed last, and its layout (invariant 4).
struct Last(Cell<Option<(NonNull<u8>, Layout)>>);

impl Drop for Last {
    fn drop(&mut self) {
        if let Some((block, layout)) = self.0.take() {
            // SAFETY: invariant 1, and in the slot, so not in use (2).
            unsafe { alloc::dealloc(block.as_ptr(), layout) };
        }
    }
}

thread_local! {
    static LAST: Last = const { Last(Cell::new(None)) };
}

/// The last-freed block, if it has `layout` (taken out of the slot).
#[inline]
fn take_last(layout: Layout) -> Option<NonNull<u8>> {
    LAST.try_with(|last| match last.0.get() {
        Some((block, kept)) if kept == layout => {
            last.0.set(None);
            Some(block)
        }
        _ => None,
    })
    .ok()
    .flatten()
}

/// Puts `block` in the last-freed slot; returns the block it held, if
/// any, or `block` itself if the slot is gone (the thread is exiting).
#[inline]
fn keep_last(block: NonNull<u8>, layout: Layout) -> Option<(NonNull<u8>, Layout)> {
    LAST.try_with(|last| last.0.replace(Some((block, layout))))
        .unwrap_or(Some((block, layout)))
}

/// Whether blocks of `T`'s layout are kept at all.
fn recycled<T>() -> bool {
    !cfg!(ringlane_asan) && size_of::<T>() != 0
}

/// `Box::new_uninit()`, on a kept block of `T`'s layout if this thread
/// has one.
#[inline]
pub(super) fn uninit<T>() -> Box<MaybeUninit<T>> {
    let layout = Layout::new::<T>();
    let block = match recycled::<T>() {
        true => take_last(layout).or_else(|| {
            KEPT_HERE
                .try_with(|k| k.try_borrow_mut().ok()?.take(layout))
                .ok()
                .flatten()
        }),
        false => None,
    };
    match block {
        // SAFETY: invariant 1 (allocated for this layout, which is
        // `MaybeUninit<T>`'s too) and 2 (off the stack, unused): the box
        // `Box::new_uninit` would have made.
        Some(block) => unsafe { Box::from_raw(block.cast::<MaybeUninit<T>>().as_ptr()) },
        None => Box::new_uninit(),
    }
}

/// Drops `b`'s value and keeps its block for the next [`uninit`] of that
/// layout (or frees it). The block is kept even if the value's drop
/// unwinds.
pub(super) fn free<T>(b: Box<T>) {
    if !recycled::<T>() {
        drop(b);
        return;
    }
    /// Keeps the block when dropped, after the value's drop.
    struct Keep(NonNull<u8>, Layout);
    impl Drop for Keep {
        fn drop(&mut self) {
            // The slot first (a block the stacks could hold); what it held
            // (or this block, on an exiting thread) goes on to the stacks.
            let last = match self.1.size() <= KEPT_BYTES {
                true => keep_last(self.0, self.1),
                false => Some((self.0, self.1)),
            };
            let Some((block, layout)) = last else {
                return;
            };
            let kept = KEPT_HERE
                .try_with(|k| match k.try_borrow_mut() {
                    Ok(mut k) => k.keep(block, layout),
                    Err(_) => Err(block),
                })
                .unwrap_or(Err(block));
            if let Err(block) = kept {
                // SAFETY: invariant 1, and the value in it was dropped.
                unsafe { alloc::dealloc(block.as_ptr(), layout) };
            }
        }
    }
    let at = Box::into_raw(b);
    // SAFETY: `Box::into_raw` never returns null.
    let _keep = Keep(
        unsafe { NonNull::new_unchecked(at.cast()) },
        Layout::new::<T>(),
    );
    // SAFETY: the box's value, dropped once; its memory is not freed here
    // (the guard keeps or frees it).
    unsafe { ptr::drop_in_place(at) };
}

// Under `ringlane_asan` nothing is kept: these tests check the keeping.
#[cfg(all(test, not(ringlane_asan)))]
mod tests {
    use super::*;

    fn boxed<T>(value: T) -> Box<T> {
        let mut b = uninit::<T>();
        // SAFETY: written, then initialized.
        unsafe {
            b.as_mut_ptr().write(value);
            b.assume_init()
        }
    }

    #[test]
    fn a_freed_block_is_taken_by_the_next_box_of_its_layout() {
        let a = boxed([7u64; 5]);
        let at = ptr::addr_of!(*a) as usize;
        free(a);
        let b = boxed([8u64; 5]);
        assert_eq!(ptr::addr_of!(*b) as usize, at, "the block was recycled");
        assert_eq!(*b, [8; 5]);
        let other = boxed([1u32; 3]); // another layout: a fresh block
        assert_ne!(ptr::addr_of!(*other) as usize, at);
        free(b);
        free(other);
    }

    #[test]
    fn a_thread_keeps_a_bounded_number_of_blocks() {
        std::thread::spawn(|| {
            let boxes: Vec<_> = (0..KEPT + 10).map(|i| boxed([i; 8])).collect();
            boxes.into_iter().for_each(free);
            KEPT_HERE.with(|k| {
                let k = k.borrow();
                assert_eq!(k.blocks, KEPT, "kept up to the bound, the rest freed");
                assert!(k.bytes <= KEPT_BYTES);
            });
        })
        .join()
        .unwrap();
        std::thread::spawn(|| {
            // Blocks of STACKS layouts are kept; a fifth layout's are not,
            // while the others are in use.
            free(boxed([0u8; 1]));
            free(boxed([0u8; 2]));
            free(boxed([0u8; 3]));
            free(boxed([0u8; 4]));
            free(boxed([0u8; 5]));
            KEPT_HERE.with(|k| {
                let k = k.borrow();
                assert_eq!((k.stacks.len(), k.blocks), (STACKS, STACKS));
            });
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_layout_used_often_takes_the_place_of_a_stale_one() {
        std::thread::spawn(|| {
            // A shard's first ops fill every place, once each.
            free(boxed([0u8; 1]));
            free(boxed([0u8; 2]));
            free(boxed([0u8; 3]));
            free(boxed([0u8; 4]));
            let hot = |k: &Kept| {
                k.stacks
                    .iter()
                    .any(|s| s.layout == Layout::new::<[u64; 9]>())
            };
            // Then one kind of op, two at a time (one alone would live in
            // the last-freed slot): kept once the first layouts went stale.
            for _ in 0..STALE {
                let (a, b) = (boxed([0u64; 9]), boxed([1u64; 9]));
                free(a);
                free(b);
            }
            KEPT_HERE.with(|k| assert!(hot(&k.borrow()), "the busy layout got a place"));
            KEPT_HERE.with(|k| {
                let k = k.borrow();
                let kept: usize = k.stacks.iter().map(|s| s.blocks.len()).sum();
                let bytes: usize = k
                    .stacks
                    .iter()
                    .map(|s| s.blocks.len() * s.layout.size())
                    .sum();
                assert_eq!(
                    (k.blocks, k.bytes),
                    (kept, bytes),
                    "the counts follow the stacks"
                );
                assert_eq!(k.stacks.len(), STACKS);
            });
        })
        .join()
        .unwrap();
    }

    /// Expected: a loop that frees a box and makes the next one of its
    /// layout is served by the last-freed slot (the stacks untouched),
    /// and a second free moves the slot's block on to the stacks.
    #[test]
    fn a_free_then_a_box_of_the_same_layout_reuse_the_last_freed_block() {
        std::thread::spawn(|| {
            let mut b = boxed([3u64; 7]);
            let at = ptr::addr_of!(*b) as usize;
            for i in 0..100 {
                free(b);
                b = boxed([i; 7]);
                assert_eq!(ptr::addr_of!(*b) as usize, at, "the same block each time");
            }
            KEPT_HERE.with(|k| assert_eq!(k.borrow().blocks, 0, "the stacks unused"));
            let other = boxed([0u64; 7]);
            free(b);
            free(other);
            let last = LAST
                .with(|l| l.0.get())
                .map(|(block, _)| block.as_ptr() as usize);
            assert_ne!(last, Some(at), "the later free holds the slot");
            KEPT_HERE.with(|k| assert_eq!(k.borrow().blocks, 1, "the earlier one moved on"));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_value_whose_drop_panics_still_gives_its_block_back() {
        struct Boom(#[allow(dead_code)] [u64; 3]);
        impl Drop for Boom {
            fn drop(&mut self) {
                panic!("boom");
            }
        }
        std::thread::spawn(|| {
            let b = boxed(Boom([1; 3]));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| free(b)));
            assert!(r.is_err());
            let layout = Layout::new::<Boom>();
            let last = LAST.with(|l| l.0.get());
            assert_eq!(last.map(|(_, l)| l), Some(layout), "the block was kept");
        })
        .join()
        .unwrap();
    }
}
