//! One segment: its base offset, its file and its mapped region.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::PathBuf;

use crate::record::RecordRef;
use crate::region::{Published, Region};
use crate::sync::Arc;

/// A segment of the log: records `base..base + count`, in one file.
pub(crate) struct Segment {
    base: u64,
    path: PathBuf,
    region: Arc<Region>,
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
    pub(crate) fn new(base: u64, path: PathBuf, region: Arc<Region>) -> Segment {
        Segment { base, path, region }
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
