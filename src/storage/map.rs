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
}
