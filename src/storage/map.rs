//! The mapping of a segment file, as the unsafe code trusts it.
#![deny(unsafe_op_in_unsafe_fn)]

use std::fmt;
use std::io;

/// A mapping of a whole file: the bytes a [`Region`](super::region::Region)
/// reads and writes through raw pointers.
///
/// # Safety
///
/// The region's unsafe code relies on every implementation keeping these
/// promises, for as long as the value lives:
///
/// - [`as_ptr`](Map::as_ptr) returns the same non-null, page-aligned address
///   every time, and [`len`](Map::len) the same length; the `len` bytes from
///   there are mapped, readable, and initialized (a file's bytes).
/// - If [`writable`](Map::writable) returns `true`, the bytes may be
///   written through `as_ptr`; it returns the same answer every time (a
///   map that says `false` may still be writable: nothing writes it then).
/// - No method changes a byte of the mapping: [`flush_range`](Map::flush_range)
///   and [`populate_write`](Map::populate_write) only write back or fault
///   in pages, and [`release`](Map::release) only drops page-table entries
///   of a shared file mapping (an anonymous or private mapping must leave it
///   a no-op, since dropping such a page loses it).
/// - The mapping is unmapped only when the value is dropped, never
///   shortened: a page past the file's end would raise `SIGBUS`.
///
/// What a map cannot promise, the crate documents as its assumptions of the
/// machine (docs/design.md): that no other process truncates or rewrites
/// the file.
pub(crate) unsafe trait Map: Send + Sync + fmt::Debug {
    /// Start of the mapped bytes, page-aligned; valid for `len()` bytes
    /// while `self` lives.
    fn as_ptr(&self) -> *mut u8;
    /// Number of mapped bytes.
    fn len(&self) -> usize;
    /// Whether the bytes may be written through [`Map::as_ptr`].
    fn writable(&self) -> bool;
    /// Makes `[offset, offset + len)` durable (msync `MS_SYNC`).
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()>;
    /// Faults the pages of `[offset, offset + len)` in for writing, so later
    /// writes there take no fault. Changes no byte.
    fn populate_write(&self, offset: usize, len: usize) -> io::Result<()>;
    /// Drops this mapping's page-table entries for `[offset, offset + len)`
    /// (whole pages within it) without changing a byte: the pages stay in
    /// the page cache, dirty or not, and the next access maps them again.
    /// Written pages are dropped so that writing them back later finds no
    /// writable entry to write-protect (with a TLB shootdown on the
    /// producer's CPU per page). Maps not backed by a shared file mapping
    /// must leave this a no-op (dropping an anonymous page loses it).
    fn release(&self, offset: usize, len: usize) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
    /// Under loom: what the model checker tracks of these bytes. Every
    /// region over the same bytes must get the same one, so that loom sees
    /// their accesses as accesses to one memory: a map standing in for
    /// several processes' maps of one file hands out clones of one shadow.
    /// The default, a fresh one, suits a map only one region uses.
    #[cfg(feature = "loom")]
    fn shadow(&self) -> std::sync::Arc<Shadow> {
        std::sync::Arc::new(Shadow::new(self.len()))
    }
}

/// Under loom, the model checker's view of a map's bytes (threads stand in
/// for processes, and loom sees neither the map's memory nor a cast of it
/// to an atomic).
#[cfg(feature = "loom")]
pub(crate) struct Shadow {
    /// One tracked cell per 8-byte word of the map, touched by every write
    /// and read of those bytes, so that loom checks the accesses to the
    /// record bytes themselves, not only to the words that publish them.
    cells: Box<[loom::cell::UnsafeCell<()>]>,
    /// The commit word of a frame at each 8-aligned position (frame bytes
    /// 4..8), as loom's atomics.
    commit: Box<[crate::primitives::AtomicU32]>,
}

// SAFETY: the cells hold nothing (`()`) and are only accessed through loom's
// `with`/`with_mut`, which check every pair of accesses from different
// threads for a happens-before edge (and report the race otherwise) rather
// than rely on the caller; the commit words are atomics.
#[cfg(feature = "loom")]
unsafe impl Sync for Shadow {}

#[cfg(feature = "loom")]
impl fmt::Debug for Shadow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shadow")
            .field("words", &self.cells.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "loom")]
impl Shadow {
    /// The shadow of `len` bytes, none written yet. Made inside a loom
    /// model only (loom's cells and atomics belong to one execution).
    pub(crate) fn new(len: usize) -> Shadow {
        let words = len.div_ceil(8);
        Shadow {
            cells: (0..words)
                .map(|_| loom::cell::UnsafeCell::new(()))
                .collect(),
            commit: (0..words)
                .map(|_| crate::primitives::AtomicU32::new(0))
                .collect(),
        }
    }

    /// Tells the model checker that `[start, start + len)` is read.
    #[inline]
    pub(crate) fn read(&self, start: usize, len: usize) {
        for word in &self.cells[start / 8..(start + len).div_ceil(8)] {
            word.with(|_| ());
        }
    }

    /// Tells the model checker that `[start, start + len)` is written.
    #[inline]
    pub(crate) fn write(&self, start: usize, len: usize) {
        for word in &self.cells[start / 8..(start + len).div_ceil(8)] {
            word.with_mut(|_| ());
        }
    }

    /// The model checker's atomic for the commit word of a frame at `pos`
    /// (8-aligned).
    #[inline]
    pub(crate) fn commit_word(&self, pos: usize) -> &crate::primitives::AtomicU32 {
        debug_assert!(pos % 8 == 0, "a frame position");
        &self.commit[pos / 8]
    }
}
