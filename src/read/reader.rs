//! Readers: random reads by offset, zero-copy reads under a guard, lookups
//! by time, waiting for a record.
//!
//! # Synchronization
//!
//! A read pins the epoch, `Acquire`-loads the segment list, binary-searches
//! it by base offset, `Acquire`-loads the segment's published tail and reads
//! below it, straight from the map. No lock, no system call. Cursors
//! (`cursor.rs`) hold their segment instead of pinning per record.
#![forbid(unsafe_code)]

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::primitives::{Arc, Guard, pin};
use crate::record::{Record, RecordRef};
use crate::shared::Shared;
use crate::storage::list::SegmentList;

/// Reads a log. Cheap to clone; `Send + Sync`; usable from any thread, and
/// after the writer is closed.
///
/// A reader sees every published record, or, made with
/// [`Reader::durable_only`], only durable ones: what a replicator, or a
/// consumer that must never act on a record a crash could take back, needs.
#[derive(Clone)]
pub struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) durable_only: bool,
    spin: Duration,
}

/// How long `wait_for` spins before it sleeps, by default.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// One past the last record a reader may see.
#[inline]
pub(super) fn visible_end(shared: &Shared, list: &SegmentList, durable_only: bool) -> u64 {
    if durable_only {
        shared.syncer().durable()
    } else {
        list.active().next_offset()
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.shared.dir())
            .field("durable_only", &self.durable_only)
            .finish_non_exhaustive()
    }
}

/// Keeps the records read through it valid: while a `ReadGuard` lives, no
/// segment it could reach is unmapped. Hold it briefly: it delays the
/// reclamation of every retired segment list.
///
/// A guard pins the thread that made it (an epoch guard), so it is neither
/// `Send` nor `Sync`: make it, read under it and drop it on one thread. To
/// read on another thread, clone the [`Reader`] and pin there.
///
/// ```compile_fail
/// fn needs_send<T: Send>() {}
/// needs_send::<murakami::ReadGuard>();
/// ```
///
/// ```compile_fail
/// fn needs_sync<T: Sync>() {}
/// needs_sync::<murakami::ReadGuard>();
/// ```
pub struct ReadGuard {
    guard: Guard,
}

impl fmt::Debug for ReadGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadGuard")
    }
}

pub(super) fn out_of_range(offset: u64, list: &SegmentList, end: u64) -> Error {
    let first = list.first_offset();
    if offset < first {
        return Error::Purged { offset, first };
    }
    Error::OffsetOutOfRange { offset, first, end }
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>) -> Reader {
        Reader {
            shared,
            durable_only: false,
            spin: DEFAULT_SPIN,
        }
    }

    /// This reader, limited to durable records: reads, cursors and waits see
    /// only offsets below the durable offset.
    pub fn durable_only(mut self) -> Reader {
        self.durable_only = true;
        self
    }

    /// This reader, spinning up to `spin` in [`Reader::wait_for`] before it
    /// sleeps. Spinning costs a core but answers fastest; `Duration::MAX`
    /// never sleeps.
    pub fn spin(mut self, spin: Duration) -> Reader {
        self.spin = spin;
        self
    }

    /// The record at `offset` in `list`, if this reader may see it.
    #[inline(always)]
    fn find<'g>(&self, list: &'g SegmentList, offset: u64) -> Option<RecordRef<'g>> {
        let segment = list.find(offset)?;
        if self.durable_only && offset >= self.shared.syncer().durable() {
            return None;
        }
        segment.get(segment.published(), offset)
    }

    /// Why `offset` cannot be read through `list`.
    #[cold]
    #[inline(never)]
    fn missing(&self, list: &SegmentList, offset: u64) -> Error {
        let end = visible_end(&self.shared, list, self.durable_only);
        out_of_range(offset, list, end)
    }

    /// The record at `offset` in `list`, if this reader may see it.
    #[inline]
    fn lookup<'g>(&self, list: &'g SegmentList, offset: u64) -> Result<RecordRef<'g>> {
        match self.find(list, offset) {
            Some(record) => Ok(record),
            None => Err(self.missing(list, offset)),
        }
    }

    /// Copies the record at `offset` into a new `Vec`.
    pub fn read(&self, offset: u64) -> Result<Vec<u8>> {
        self.with_record(offset, |record| record.payload.to_vec())
    }

    /// Copies the record at `offset`, with its timestamp, out of the log.
    pub fn read_record(&self, offset: u64) -> Result<Record> {
        self.with_record(offset, |record| record.to_record())
    }

    /// Copies the record at `offset` into `buf` (replacing its contents, and
    /// allocating only when `buf` is too small) and returns its timestamp.
    pub fn read_into(&self, offset: u64, buf: &mut Vec<u8>) -> Result<u64> {
        self.with_record(offset, |record| {
            buf.clear();
            buf.extend_from_slice(record.payload);
            record.timestamp
        })
    }

    /// Calls `f` on the record at `offset`, read in place.
    #[inline]
    pub fn with_record<R>(&self, offset: u64, f: impl FnOnce(RecordRef<'_>) -> R) -> Result<R> {
        let guard = pin();
        let list = self.shared.segments().load(&guard);
        self.lookup(list, offset).map(f)
    }

    /// Pins the current thread for zero-copy reads with [`Reader::get`].
    #[inline]
    pub fn pin(&self) -> ReadGuard {
        ReadGuard { guard: pin() }
    }

    /// The record at `offset`, in place: its payload borrows the mapped
    /// segment and stays valid as long as both `guard` and this reader.
    ///
    /// The record cannot outlive the reader, even with the guard kept:
    ///
    /// ```compile_fail
    /// # let dir = tempfile::tempdir().unwrap();
    /// let (mut writer, reader) = murakami::Log::open(dir.path(), Default::default()).unwrap();
    /// writer.append(b"x").unwrap();
    /// let guard = reader.pin();
    /// let record = reader.get(0, &guard).unwrap();
    /// drop(reader);
    /// drop(writer);
    /// assert_eq!(record.payload, b"x");
    /// ```
    #[inline]
    pub fn get<'g>(&'g self, offset: u64, guard: &'g ReadGuard) -> Result<RecordRef<'g>> {
        let list = self.shared.segments().load(&guard.guard);
        self.lookup(list, offset)
    }

    /// Waits until the record at `offset` can be read (published, or durable
    /// for a durable reader): `Ok(true)` as soon as it can, `Ok(false)` when
    /// `timeout` passes first, `Err(Error::Closed)` if the writer closes
    /// before it exists.
    ///
    /// Spins for up to the reader's spin time (see [`Reader::spin`]), then
    /// sleeps until the producer (or, for a durable reader, a sync) wakes
    /// it. The producer pays one atomic load per append for this when nobody
    /// waits, and no wake-up is lost when someone does.
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> Result<bool> {
        if self.ready(offset) {
            return Ok(true);
        }
        let start = Instant::now();
        let deadline = start
            .checked_add(timeout)
            .unwrap_or(start + Duration::from_secs(1 << 32));
        let spin_until = start
            .checked_add(self.spin)
            .unwrap_or(deadline)
            .min(deadline);
        let mut spins = 0u32;
        loop {
            if self.ready(offset) {
                return Ok(true);
            }
            if self.shared.is_closed() {
                return self.closed(offset);
            }
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 && Instant::now() >= spin_until {
                break;
            }
            crate::primitives::spin_loop();
        }
        let shared = &self.shared;
        let woken = shared
            .notify()
            .wait(deadline, || self.ready(offset) || shared.is_closed());
        if self.ready(offset) {
            return Ok(true);
        }
        if shared.is_closed() {
            return self.closed(offset);
        }
        Ok(woken)
    }

    /// After close: ready or not, for good.
    fn closed(&self, offset: u64) -> Result<bool> {
        if self.ready(offset) {
            Ok(true)
        } else {
            Err(Error::Closed)
        }
    }

    /// Whether the record at `offset` can be read now.
    #[inline]
    fn ready(&self, offset: u64) -> bool {
        offset < self.end_offset()
    }

    /// Offset of the first record in the log.
    pub fn first_offset(&self) -> u64 {
        self.shared.first_offset()
    }

    /// One past the last published record: the offset the next append gets.
    pub fn next_offset(&self) -> u64 {
        self.shared.next_offset()
    }

    /// One past the last record this reader may see: [`Reader::next_offset`],
    /// or [`Reader::durable_offset`] for a durable reader.
    pub fn end_offset(&self) -> u64 {
        let guard = pin();
        let list = self.shared.segments().load(&guard);
        visible_end(&self.shared, list, self.durable_only)
    }

    /// One past the last durable record.
    pub fn durable_offset(&self) -> u64 {
        self.shared.syncer().durable()
    }

    /// The first offset whose record's timestamp is at or after `t` (ns),
    /// or the end of the log if none is; like Kafka's time index. O(log n)
    /// over segments and records, reading frame headers only.
    ///
    /// Timestamps given by callers need not increase. The lookup then works
    /// on the running maximum: it finds the first segment whose newest
    /// record (or any before it) reaches `t`, and bisects that segment's
    /// records by timestamp. With non-decreasing timestamps that is exactly
    /// the first record at or after `t`; otherwise it is a record at or
    /// after `t` whose predecessor in the segment is before `t`, and records
    /// elsewhere may be out of order around it.
    pub fn offset_for_timestamp(&self, t: u64) -> u64 {
        let guard = pin();
        let list = self.shared.segments().load(&guard);
        let found = list.offset_for_timestamp(t);
        found.min(visible_end(&self.shared, list, self.durable_only))
    }

    /// Whether the writer has been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}
