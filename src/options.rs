//! Options: segment size, record size limit, timestamps, recovery mode.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::format::{self, FRAME_HEADER_LEN, HEADER_LEN};

/// How records are stamped when the caller does not give a timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timestamps {
    /// `CLOCK_REALTIME_COARSE`: a few nanoseconds, resolution of one
    /// scheduler tick (1–4 ms). Enough for retention by age and for lookups
    /// by time; the default.
    #[default]
    Coarse,
    /// `CLOCK_REALTIME`: nanosecond resolution, ~25 ns per append.
    Precise,
}

/// What opening a log does when it finds damage that a crash cannot explain.
///
/// A torn tail (records after the last durable point that did not fully
/// reach the disk) is always repaired: that is what a crash leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// Refuse to open with [`Error::Corrupt`], naming file and position. The
    /// default: nothing durable is ever dropped silently.
    #[default]
    Strict,
    /// Drop every record from the first damaged one on, and report what was
    /// dropped in [`RecoveryReport`](crate::RecoveryReport).
    TruncateCorrupt,
}

/// When records become durable without an explicit `sync`.
///
/// Whatever the policy, [`Writer::sync`](crate::Writer::sync) syncs at once,
/// and closing the writer syncs everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// Only when the program calls `sync` (and at close). The default.
    #[default]
    Explicit,
    /// The writer syncs after every `n` appended records, inside the append
    /// that reaches the count (which returns once the sync is done).
    EveryRecords(u64),
    /// A background thread syncs every interval. Appends never wait for it:
    /// a sync holds nothing the producer needs. After an interval (plus one
    /// flush) every record appended before it is durable.
    Interval(std::time::Duration),
    /// Every append returns only once its record is durable. With a
    /// [`SharedWriter`](crate::SharedWriter), concurrent appends share
    /// flushes (group commit).
    Always,
}

/// How a log is opened. Build with [`Options::default`] and the setters.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) segment_size: u64,
    pub(crate) max_record_size: usize,
    pub(crate) timestamps: Timestamps,
    pub(crate) recovery: Recovery,
    pub(crate) prefault: bool,
    pub(crate) sync: SyncPolicy,
    pub(crate) retention: crate::retention::Retention,
}

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default maximum record size: 1 MiB.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 1 << 20;
/// Smallest segment size accepted: 4 KiB.
pub const MIN_SEGMENT_SIZE: u64 = 4096;
/// Largest segment size accepted: positions inside a segment are `u32`.
pub const MAX_SEGMENT_SIZE: u64 = (u32::MAX as u64) & !4095;

impl Default for Options {
    fn default() -> Options {
        Options {
            segment_size: DEFAULT_SEGMENT_SIZE,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
            timestamps: Timestamps::default(),
            recovery: Recovery::default(),
            prefault: true,
            sync: SyncPolicy::Explicit,
            retention: crate::retention::Retention::none(),
        }
    }
}

impl Options {
    /// Size of each segment file, reserved on disk when the segment is
    /// created. Rounded up to a multiple of 4 KiB; between 4 KiB and 4 GiB.
    pub fn segment_size(mut self, bytes: u64) -> Options {
        self.segment_size = bytes.div_ceil(4096).saturating_mul(4096);
        self
    }

    /// Largest record accepted by `append`. Must fit in one segment.
    pub fn max_record_size(mut self, bytes: usize) -> Options {
        self.max_record_size = bytes;
        self
    }

    /// Which clock stamps records.
    pub fn timestamps(mut self, timestamps: Timestamps) -> Options {
        self.timestamps = timestamps;
        self
    }

    /// What to do with damage that a crash cannot explain.
    pub fn recovery(mut self, recovery: Recovery) -> Options {
        self.recovery = recovery;
        self
    }

    /// Whether to fault in every page of a new segment ahead of the producer
    /// (on a background thread), so appends never take a page fault. On by
    /// default; turning it off saves memory for logs that are mostly idle.
    pub fn prefault(mut self, prefault: bool) -> Options {
        self.prefault = prefault;
        self
    }

    /// Which old segments cleanups remove, and whether a background thread
    /// runs them.
    pub fn retention(mut self, retention: crate::retention::Retention) -> Options {
        self.retention = retention;
        self
    }

    /// When records become durable without an explicit `sync`.
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Options {
        self.sync = policy;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self.sync {
            SyncPolicy::EveryRecords(0) => {
                return Err(Error::InvalidOptions(
                    "SyncPolicy::EveryRecords needs n > 0",
                ));
            }
            SyncPolicy::Interval(d) if d.is_zero() => {
                return Err(Error::InvalidOptions(
                    "SyncPolicy::Interval needs a non-zero interval",
                ));
            }
            _ => {}
        }
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(Error::InvalidOptions(
                "segment_size must be between 4 KiB and 4 GiB",
            ));
        }
        if self.max_record_size > self.largest_record_that_fits() {
            return Err(Error::InvalidOptions(
                "max_record_size does not fit in one segment",
            ));
        }
        Ok(())
    }

    /// The largest payload a fresh segment can hold.
    pub(crate) fn largest_record_that_fits(&self) -> usize {
        let room = self.segment_size as usize - HEADER_LEN - FRAME_HEADER_LEN;
        (room & !(format::FRAME_ALIGN - 1)).min(format::MAX_PAYLOAD_LEN as usize)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn segment_size_rounds_to_pages_and_is_bounded() {
        assert_eq!(Options::default().segment_size(5000).segment_size, 8192);
        assert!(Options::default().segment_size(100).validate().is_err());
        assert!(Options::default().segment_size(1 << 33).validate().is_err());
    }

    #[test]
    fn a_record_limit_larger_than_a_segment_is_refused() {
        let opts = Options::default().segment_size(4096);
        assert!(opts.clone().max_record_size(4096).validate().is_err());
        let fits = opts.largest_record_that_fits();
        assert_eq!(format::frame_len(fits) + HEADER_LEN, 4096);
        assert!(opts.max_record_size(fits).validate().is_ok());
    }
}
