//! Reading: readers, cursors, zero-copy guards, waiting for the tail.
//!
//! What it owns: [`reader`] ([`Reader`](reader::Reader): reads by offset,
//! copy-out, into a buffer or in place under a
//! [`ReadGuard`](reader::ReadGuard); lookups by time; waits for a record)
//! and [`cursor`] ([`Cursor`](cursor::Cursor): reads in order across
//! segments, holding its segment instead of pinning per record).
//!
//! What it may call: `shared` (the list, the durable offset, the wake-up),
//! `storage`, `record`, `error`. No lock and no system call on a read.

pub(crate) mod cursor;
pub(crate) mod reader;
