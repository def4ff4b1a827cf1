//! A global allocator that counts allocations (and reallocations), per
//! thread and for the whole process, around the system allocator: the
//! report's "allocations per op" column.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting.
pub struct Counting;

/// Allocations by every thread so far.
static ALL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Allocations by this thread so far. `const`-initialised and without
    /// a destructor, so reading it never allocates and never fails.
    static MINE: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    ALL.fetch_add(1, Ordering::Relaxed);
    let _ = MINE.try_with(|mine| mine.set(mine.get() + 1));
}

// SAFETY: every method passes its arguments to `System`'s, which upholds
// `GlobalAlloc`'s contract; counting touches no allocated memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations so far: (this thread, every thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocs {
    /// By the calling thread.
    pub mine: u64,
    /// By every thread of the process (the log's background threads too).
    pub all: u64,
}

impl Allocs {
    /// The counts now.
    pub fn now() -> Allocs {
        Allocs {
            mine: MINE.try_with(Cell::get).unwrap_or(0),
            all: ALL.load(Ordering::Relaxed),
        }
    }

    /// The allocations since `earlier`.
    pub fn since(earlier: Allocs) -> Allocs {
        let now = Allocs::now();
        Allocs {
            mine: now.mine - earlier.mine,
            all: now.all - earlier.all,
        }
    }
}
