//! One segment: its base offset, its file and its mapped region.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

use crate::primitives::{Arc, AtomicU64, Ordering};
use crate::record::RecordRef;
use crate::storage::region::{Published, Region};

/// A segment of the log: records `base..base + count`, in one file.
pub(crate) struct Segment {
    base: u64,
    /// Creation sequence number, from the header: who came before whom.
    sequence: u64,
    path: PathBuf,
    region: Arc<Region>,
    /// Largest record timestamp, once the segment is sealed (`u64::MAX`
    /// before: an active segment is never old). Stored by the writer at the
    /// roll, before the list swap that publishes the successor, so anyone who
    /// sees the successor sees it.
    max_timestamp: AtomicU64,
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("base", &self.base)
            .field("path", &self.path)
            .field("region", &self.region)
            .finish()
    }
}

impl Segment {
    pub(crate) fn new(base: u64, sequence: u64, path: PathBuf, region: Arc<Region>) -> Segment {
        Segment {
            base,
            sequence,
            path,
            region,
            max_timestamp: AtomicU64::new(u64::MAX),
        }
    }

    /// Creation sequence number.
    pub(crate) fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Keeps only the records below `offset` (a truncation), seals the
    /// segment and returns nothing: see [`Region::cut`].
    pub(crate) fn cut_at(&self, offset: u64) {
        let keep = offset.saturating_sub(self.base);
        let published = self.published();
        let keep = keep.min(u64::from(published.count())) as u32;
        let newest = (self.base..self.base + u64::from(keep))
            .filter_map(|o| self.timestamp_at(published, o))
            .max()
            .unwrap_or(0);
        self.region.cut(keep);
        self.seal(newest);
    }

    /// Records that the segment is sealed and its newest record's time.
    pub(crate) fn seal(&self, max_timestamp: u64) {
        self.max_timestamp.store(max_timestamp, Ordering::Relaxed);
    }

    /// The newest record's time, for a sealed segment (`u64::MAX` for the
    /// active one).
    pub(crate) fn max_timestamp(&self) -> u64 {
        self.max_timestamp.load(Ordering::Relaxed)
    }

    /// The segment's file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Bytes the segment's file takes on disk.
    pub(crate) fn file_size(&self) -> u64 {
        self.region.len() as u64
    }

    /// The timestamp of the record at `offset` (reading its frame header
    /// only), if `published` covers it.
    pub(crate) fn timestamp_at(&self, published: Published, offset: u64) -> Option<u64> {
        let i = offset.checked_sub(self.base)?;
        self.region
            .record(published, i)
            .map(|(header, _)| header.timestamp)
    }

    /// Offset of the segment's first record.
    #[inline]
    pub(crate) fn base(&self) -> u64 {
        self.base
    }

    /// The mapped bytes.
    #[inline]
    pub(crate) fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// What the producer has published (`Acquire`).
    #[inline]
    pub(crate) fn published(&self) -> Published {
        self.region.published()
    }

    /// One past the last published record.
    #[inline]
    pub(crate) fn next_offset(&self) -> u64 {
        self.base + u64::from(self.published().count())
    }

    /// The record at `offset`, if this segment holds it and `published`
    /// covers it.
    #[inline]
    pub(crate) fn get(&self, published: Published, offset: u64) -> Option<RecordRef<'_>> {
        let i = offset.checked_sub(self.base)?;
        let (header, payload) = self.region.record(published, i)?;
        Some(RecordRef {
            offset,
            timestamp: header.timestamp,
            payload,
        })
    }
}

/// Segments retention or a purge took out of the list that a cursor may
/// still hold, held weakly (they are still unmapped once let go): a restart
/// hides their records too, as it hides those of the list, so a cursor
/// standing in one moves on into the new log instead of reading records
/// the restart dropped. Not under loom (no restart in the models).
#[derive(Debug, Default)]
pub(crate) struct Purged {
    #[cfg(not(feature = "loom"))]
    held: std::sync::Mutex<Vec<std::sync::Weak<Segment>>>,
}

impl Purged {
    #[cfg(not(feature = "loom"))]
    fn held(&self) -> std::sync::MutexGuard<'_, Vec<std::sync::Weak<Segment>>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `gone` left the list.
    pub(crate) fn note(&self, gone: &[Arc<Segment>]) {
        #[cfg(not(feature = "loom"))]
        {
            let mut held = self.held();
            held.retain(|w| w.strong_count() > 0);
            held.extend(gone.iter().map(Arc::downgrade));
        }
        #[cfg(feature = "loom")]
        let _ = gone;
    }

    /// A restart discarded every segment with a sequence below `below`:
    /// those still held are emptied, and forgotten.
    pub(crate) fn hide(&self, below: u64) {
        #[cfg(not(feature = "loom"))]
        {
            let mut held = self.held();
            held.retain(|w| match w.upgrade() {
                Some(s) if s.sequence() < below => {
                    s.cut_at(s.base());
                    false
                }
                Some(_) => true,
                None => false,
            });
        }
        #[cfg(feature = "loom")]
        let _ = below;
    }
}
