//! Cursors: records in offset order, across segments.
//!
//! # Synchronization
//!
//! A [`Cursor`] holds an `Arc` on its current segment instead of pinning for
//! every record: the segment stays mapped while the cursor is on it, and
//! its published tail (`Acquire`) says how far it may read. It pins only to
//! step to the next segment, and re-checks its own segment's final tail
//! after loading a list that holds a later one (the list load is `Acquire`,
//! and a roll publishes before it swaps). A truncation lowers the published
//! counts of the segments it discards before it swaps the list, so a cursor
//! that holds one finds nothing more there and moves on into the new
//! history.
#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::primitives::{Arc, pin};
use crate::record::{Record, RecordRef};
use crate::storage::segment::Segment;

use super::reader::{Reader, out_of_range, visible_end};

/// Reads records in offset order, across segments.
///
/// `next_ref` reads in place (the record borrows the cursor); the
/// `Iterator` implementation copies each record out. At the tail both report
/// the end (`Ok(None)` / `None`); calling again later picks up records
/// appended since.
///
/// A cursor is `Send`: make it on one thread and consume it on another. It
/// holds no epoch guard (its reader and a reference to its current
/// segment, which stays mapped while the cursor is on it), so it may also
/// be kept for long.
///
/// ```
/// fn needs_send<T: Send>() {}
/// needs_send::<murakami::Cursor>();
/// ```
pub struct Cursor {
    reader: Reader,
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

impl Reader {
    /// A cursor that reads records in order from `offset` (which may be the
    /// end: the cursor then waits at the tail). It sees what this reader
    /// sees (durable records only, for a durable reader).
    pub fn cursor(&self, offset: u64) -> Result<Cursor> {
        let guard = pin();
        let mut list = self.shared.segments().load(&guard);
        let mut end = visible_end(&self.shared, list, self.durable_only);
        if offset > end && self.shared.catch_up() {
            // In a reader process: the writer may have published it since.
            list = self.shared.segments().load(&guard);
            end = visible_end(&self.shared, list, self.durable_only);
        }
        if offset < list.first_offset() || offset > end {
            return Err(out_of_range(&self.shared, offset, list, end));
        }
        let segment = Arc::clone(list.find(offset).expect("offset at or past the first"));
        Ok(Cursor {
            reader: self.clone(),
            segment,
            next: offset,
        })
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
        if self.reader.limited && !self.may_read_next() {
            return Ok(None);
        }
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

    /// The next record, in place, waiting up to `timeout` for it to be
    /// appended (or made durable, for a durable reader); `Ok(None)` when the
    /// time runs out, `Err(Error::Closed)` once the writer has closed and
    /// every record was read.
    pub fn next_wait(&mut self, timeout: Duration) -> Result<Option<RecordRef<'_>>> {
        if !self.reader.wait_for(self.next, timeout)? {
            return Ok(None);
        }
        self.next_ref()
    }

    /// Copies the next record into `buf` (replacing its contents, and
    /// allocating only when `buf` is too small); returns its offset and
    /// timestamp, or `None` at the tail. The sequential counterpart of
    /// [`Reader::read_into`], without its pin per read.
    #[inline]
    pub fn next_into(&mut self, buf: &mut Vec<u8>) -> Result<Option<(u64, u64)>> {
        Ok(self.next_ref()?.map(|record| {
            buf.clear();
            buf.extend_from_slice(record.payload);
            (record.offset, record.timestamp)
        }))
    }

    /// Moves to the segment holding `self.next` once the current one has no
    /// more records for it. `Ok(false)` at the tail.
    /// The checks of a limited reader before the record at `next`: in a
    /// reader process, a view a truncation made stale is brought up to date
    /// first (so no record a finished truncation discarded is returned);
    /// for a durable-only cursor, whether the record is durable (after
    /// catching up, in a reader process, if it does not look so).
    #[inline]
    fn may_read_next(&self) -> bool {
        let shared = &self.reader.shared;
        if let Some(remote) = shared.remote()
            && remote.is_stale()
        {
            shared.catch_up_now();
        }
        if !self.reader.durable_only {
            return true;
        }
        self.next < shared.syncer().durable()
            || shared.remote().is_some() && {
                shared.catch_up();
                self.next < shared.syncer().durable()
            }
    }

    #[cold]
    fn advance(&mut self) -> Result<bool> {
        // In a reader process: publish what the writer committed since.
        self.reader.shared.catch_up();
        let guard = pin();
        let list = self.reader.shared.segments().load(&guard);
        let Some(i) = list.position_of(self.next) else {
            let end = visible_end(&self.reader.shared, list, self.reader.durable_only);
            return Err(out_of_range(&self.reader.shared, self.next, list, end));
        };
        let holder = &list.segments()[i];
        if Arc::ptr_eq(holder, &self.segment) {
            // Still in our segment: more records may have been published
            // since we looked (the list was loaded after the tail).
            if self.segment.next_offset() > self.next {
                return Ok(true);
            }
            // In a reader process, the view may stop here at damage.
            return match self
                .reader
                .shared
                .remote()
                .and_then(|r| r.fault_error(self.next))
            {
                Some(fault) => Err(fault),
                None => Ok(false),
            };
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
