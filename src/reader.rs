//! Readers: random reads by offset, zero-copy reads under a guard, cursors.
//!
//! # Synchronization
//!
//! A read pins the epoch, `Acquire`-loads the segment list, binary-searches
//! it by base offset, `Acquire`-loads the segment's published tail and reads
//! below it, straight from the map. No lock, no system call. A [`Cursor`]
//! holds an `Arc` on its current segment instead of pinning for every
//! record, and pins only to step to the next segment.
#![forbid(unsafe_code)]

use std::fmt;

use crate::error::{Error, Result};
use crate::log::Shared;
use crate::record::{Record, RecordRef};
use crate::segment::Segment;
use crate::segments::SegmentList;
use crate::sync::{Arc, Guard, pin};

/// Reads a log. Cheap to clone; `Send + Sync`; usable from any thread, and
/// after the writer is closed.
#[derive(Clone)]
pub struct Reader {
    shared: Arc<Shared>,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

/// Keeps the records read through it valid: while a `ReadGuard` lives, no
/// segment it could reach is unmapped. Hold it briefly: it delays the
/// reclamation of every retired segment list.
pub struct ReadGuard {
    guard: Guard,
}

impl fmt::Debug for ReadGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadGuard")
    }
}

fn out_of_range(offset: u64, list: &SegmentList) -> Error {
    Error::OffsetOutOfRange {
        offset,
        first: list.first_offset(),
        end: list.active().next_offset(),
    }
}

/// The record at `offset` in `list`.
#[inline]
fn lookup(list: &SegmentList, offset: u64) -> Result<RecordRef<'_>> {
    list.find(offset)
        .and_then(|segment| segment.get(segment.published(), offset))
        .ok_or_else(|| out_of_range(offset, list))
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>) -> Reader {
        Reader { shared }
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
        let list = self.shared.segments.load(&guard);
        lookup(list, offset).map(f)
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
        let list = self.shared.segments.load(&guard.guard);
        lookup(list, offset)
    }

    /// A cursor that reads records in order from `offset` (which may be the
    /// next offset to be appended: the cursor then waits at the tail).
    pub fn cursor(&self, offset: u64) -> Result<Cursor> {
        let guard = pin();
        let list = self.shared.segments.load(&guard);
        let end = list.active().next_offset();
        if offset < list.first_offset() || offset > end {
            return Err(out_of_range(offset, list));
        }
        let segment = Arc::clone(list.find(offset).expect("offset at or past the first"));
        Ok(Cursor {
            shared: Arc::clone(&self.shared),
            segment,
            next: offset,
        })
    }

    /// Offset of the first record in the log.
    pub fn first_offset(&self) -> u64 {
        let guard = pin();
        self.shared.segments.load(&guard).first_offset()
    }

    /// One past the last published record: the offset the next append gets.
    pub fn next_offset(&self) -> u64 {
        let guard = pin();
        self.shared.segments.load(&guard).active().next_offset()
    }

    /// One past the last durable record.
    pub fn durable_offset(&self) -> u64 {
        self.shared.syncer.durable()
    }

    /// Whether the writer has been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(crate::sync::Ordering::Acquire)
    }
}

/// Reads records in offset order, across segments.
///
/// `next_ref` reads in place (the record borrows the cursor); the
/// `Iterator` implementation copies each record out. At the tail both report
/// the end (`Ok(None)` / `None`); calling again later picks up records
/// appended since.
pub struct Cursor {
    shared: Arc<Shared>,
    segment: Arc<Segment>,
    next: u64,
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Cursor {
    /// The offset of the record the cursor reads next.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// The next record, in place; `Ok(None)` at the tail.
    #[inline]
    pub fn next_ref(&mut self) -> Result<Option<RecordRef<'_>>> {
        let published = loop {
            let published = self.segment.published();
            if self.next - self.segment.base() < u64::from(published.count()) {
                break published;
            }
            if !self.advance()? {
                return Ok(None);
            }
        };
        let offset = self.next;
        let record = self
            .segment
            .get(published, offset)
            .ok_or(Error::OffsetOutOfRange {
                offset,
                first: self.segment.base(),
                end: self.segment.base() + u64::from(published.count()),
            })?;
        self.next = offset + 1;
        Ok(Some(record))
    }

    /// Copies the next record into `buf`; returns its offset and timestamp,
    /// or `None` at the tail.
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<(u64, u64)>> {
        Ok(self.next_ref()?.map(|record| {
            buf.clear();
            buf.extend_from_slice(record.payload);
            (record.offset, record.timestamp)
        }))
    }

    /// Moves to the segment holding `self.next` once the current one has no
    /// more records for it. `Ok(false)` at the tail.
    #[cold]
    fn advance(&mut self) -> Result<bool> {
        let guard = pin();
        let list = self.shared.segments.load(&guard);
        let Some(i) = list.position_of(self.next) else {
            return Err(out_of_range(self.next, list));
        };
        let holder = &list.segments()[i];
        if Arc::ptr_eq(holder, &self.segment) {
            // Still in our segment: more records may have been published
            // since we looked (the list was loaded after the tail).
            return Ok(self.segment.next_offset() > self.next);
        }
        // A later segment holds `next`, so ours is sealed, and the list load
        // (Acquire) made its final tail visible: re-check it before moving.
        if self.segment.next_offset() > self.next {
            return Ok(true);
        }
        self.segment = Arc::clone(holder);
        Ok(true)
    }
}

impl Iterator for Cursor {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        self.next_ref()
            .map(|record| record.map(|r| r.to_record()))
            .transpose()
    }
}
