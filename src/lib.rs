//! # murakami
//!
//! An embeddable, durable, append-only log for programs that care about
//! latency: journals, event stores, the log under a Raft node, market data.
//!
//! One [`Writer`] appends records into a preallocated, memory-mapped segment
//! and publishes them through an atomic tail. Any number of [`Reader`]s, on
//! any threads, read them by offset or follow the tail with a [`Cursor`],
//! without taking a lock and without a system call. [`Writer::sync`] makes
//! records durable and advances a separate durable offset. Opening a log
//! after a crash repairs a torn tail.
//!
//! ```
//! # #[cfg(feature = "loom")] fn main() {} // loom builds run only the models
//! # #[cfg(not(feature = "loom"))]
//! # fn main() -> murakami::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! use murakami::{Log, Options};
//!
//! let (mut writer, reader) = Log::open(dir.path(), Options::default())?;
//! let first = writer.append(b"first")?;
//! writer.append_batch(&[b"second".as_slice(), b"third"])?;
//! writer.sync()?;
//!
//! // Readers are cheap to clone and may live on other threads.
//! let payloads: Vec<Vec<u8>> = reader
//!     .cursor(first)?
//!     .map(|r| r.map(|record| record.payload))
//!     .collect::<murakami::Result<_>>()?;
//! assert_eq!(payloads, [&b"first"[..], b"second", b"third"]);
//!
//! // Zero-copy: the slice lives as long as the guard.
//! let guard = reader.pin();
//! assert_eq!(reader.get(first, &guard)?.payload, b"first");
//! # drop(guard);
//! writer.close()?;
//! # Ok(()) }
//! ```
//!
//! # Durability, tailing, many producers
//!
//! [`SyncPolicy`] says when records become durable without a call to
//! `sync`: never (the default), every N records, every interval (a
//! background thread that never makes appends wait), or at every append. A
//! reader made with [`Reader::durable_only`] sees only durable records.
//! [`Reader::wait_for`] and [`Cursor::next_wait`] wait for a record to be
//! appended (or made durable), spinning briefly and then sleeping; the
//! producer pays one atomic load per append for that when nobody waits.
//! [`Writer::into_shared`] gives a [`SharedWriter`] for many threads, whose
//! durable appends share flushes (group commit).
//!
//! # Durability contract
//!
//! - `append` returns the record's offset. The record is visible to readers
//!   at once, and durable only after a [`Writer::sync`] that covers it;
//!   [`Reader::durable_offset`] says how far that is.
//! - After a crash, every record below the durable offset at the time of the
//!   crash is recovered intact. Records after it may be lost, but a record
//!   is never returned corrupt, and the log is never left unopenable.
//! - Creating a segment file is made durable (the directory is fsynced)
//!   before the durable offset passes the segment's first record.
//! - A failed flush latches the writer ([`Error::Poisoned`]): after a failed
//!   `fsync`/`msync` the kernel may have dropped the dirty pages, so the log
//!   refuses to go on until it is reopened and recovered from what the disk
//!   really holds.
//! - Damage a crash cannot explain (a bad record that was known durable, a
//!   bad record in a cleanly closed log, a gap between segments) is not
//!   treated as a torn tail: opening fails with [`Error::Corrupt`], naming
//!   the file and position, unless [`Recovery::TruncateCorrupt`] asks to cut
//!   the log there; [`Writer::recovery_report`] then says what was dropped.
//!
//! # Platform and filesystem
//!
//! - **Linux only**, today: the crate uses `membarrier`, `fallocate`,
//!   `SEEK_DATA`/`SEEK_HOLE` and `flock`, and does not build elsewhere.
//! - **A local filesystem that reserves blocks on `fallocate`** and
//!   overwrites them in place: ext4, XFS, tmpfs. Segments are reserved
//!   before they are mapped so that a full disk fails a roll with
//!   [`Error::Io`] instead of killing the process. Where the filesystem
//!   has no `fallocate` (ext3-style block-mapped files), segments are
//!   reserved by writing a byte into each block, as glibc's
//!   `posix_fallocate` does. A **copy-on-write**
//!   filesystem (btrfs, ZFS) allocates new blocks when a page is written
//!   back, whatever `fallocate` reserved, so on a full disk a write to a
//!   mapped page can fail as a `SIGBUS` that kills the process. Do not put
//!   a log on one (nor on a network filesystem, whose `mmap` and locks
//!   this crate does not rely on).
//! - **Nothing else may write the log's files.** The directory lock that
//!   makes a second [`Log::open`] fail with [`Error::Locked`] is advisory
//!   (`flock`): it stops this crate, not another program. Segment files are
//!   mapped, so another process that truncates one makes the next access
//!   to a page past its new end raise `SIGBUS` in every process that maps
//!   it (the writer's appends, any reader's reads); one that rewrites a
//!   segment changes bytes under the readers, whose contents are then
//!   undefined: reads return whatever is there (checksums are checked when
//!   a log is opened, not at every read) or fail. Copying a live log's
//!   files is fine; editing them is not.
//!
//! # Readers in other processes
//!
//! [`Reader::open`] opens a log read-only in any process and follows the
//! writer of another process through the mapped files: it needs no writer
//! in its process, takes no lock and writes nothing to a segment. Frames
//! are committed by a `Release` store of their length word, which such a
//! reader loads with `Acquire` and checks (bounds, CRC, offset) before it
//! publishes the frame to its own threads; from there its reads are the
//! in-process ones. A control file, `murakami.tail`, tells it about rolls,
//! purges, truncations and restarts, the durable offset and the writer's
//! close, and holds the process-shared futex it sleeps on. Truncations and
//! restarts read as in the writer's process: no record they discarded is
//! returned once they return, and a cursor that stood below a restart's
//! offset gets [`Error::Purged`]. Its waits outlast a
//! writer's close or crash (they time out instead of failing with
//! [`Error::Closed`]): another writer may open the log, and the reader
//! follows it. Another program shortening a segment file raises `SIGBUS`
//! in every process that maps it, readers included. `docs/design.md`
//! ("Readers in other processes") gives the protocol.
//!
//! # Format
//!
//! Segment files are named by their zero-padded base offset
//! (`00000000000000000000.seg`). Each starts with a 64-byte header (magic,
//! format version, header length, base offset, capacity, creation sequence
//! number, CRC; then a checkpoint of the durable offset with its own CRC),
//! followed by 8-byte-aligned record frames, each: CRC32, payload length,
//! the record's offset, timestamp, durable hint, payload, zero padding. The
//! CRC covers every field after it and the payload, so a frame found at the
//! wrong offset never passes. All integers are little-endian.
//! `docs/format.md` gives the layout byte by byte; `docs/design.md` the
//! architecture, the protocols and what the crate assumes of the machine.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

// The layers, bottom up; a module imports only from layers below its own
// (docs/design.md draws the picture).
mod clock;
mod error;
mod format;
mod options;
mod primitives;
mod record;

mod storage;

mod durability;
mod wake;

mod follow;
mod recovery;

mod shared;

mod read;

mod retention;
mod truncation;

mod write;

mod log;

mod testing;
#[cfg(all(any(fuzzing, test), not(feature = "loom")))]
#[doc(hidden)]
pub use testing::fuzzing;
#[cfg(feature = "loom")]
#[doc(hidden)]
pub use testing::loom_api;

pub use crate::error::{Corruption, Error, Result};
pub use crate::format::{ControlError, HeaderError};
pub use crate::log::Log;
pub use crate::options::{
    DEFAULT_MAX_RECORD_SIZE, DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, Options,
    OptionsError, Recovery, Retention, SyncPolicy, Timestamps,
};
pub use crate::read::cursor::Cursor;
pub use crate::read::reader::{DEFAULT_SPIN, ReadGuard, Reader};
pub use crate::record::{Record, RecordRef};
pub use crate::recovery::{
    ControlInfo, Cut, CutReason, Inspection, LogState, Problem, RecoveryReport, SegmentInfo,
    TruncationInfo, WriterInfo,
};
pub use crate::retention::Removed;
pub use crate::write::shared_writer::SharedWriter;
pub use crate::write::writer::Writer;

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn is_send_sync_clone<T: Send + Sync + Clone>() {}
    fn is_send<T: Send>() {}

    #[test]
    fn handle_types_say_the_contract() {
        is_send_sync_clone::<Reader>();
        is_send_sync_clone::<SharedWriter>();
        is_send::<Writer>();
        is_send::<Cursor>();
    }
}
