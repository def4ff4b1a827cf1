//! Options: segment size, record size limit, timestamps, recovery mode.
#![forbid(unsafe_code)]

use std::fmt;

use std::time::Duration;

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
    /// Refuse to open with [`Error::Corrupt`](crate::Error::Corrupt), naming file and position. The
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

/// Which sealed segments retention removes. The active segment is never
/// removed. Build with [`Retention::none`] and the setters; both limits may
/// apply at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) every: Option<Duration>,
}

impl Retention {
    /// Keep everything (the default).
    pub fn none() -> Retention {
        Retention::default()
    }

    /// Remove a sealed segment once its newest record is older than `age`
    /// (by the records' own timestamps, not file times).
    pub fn max_age(mut self, age: Duration) -> Retention {
        self.max_age = Some(age);
        self
    }

    /// Keep at most `bytes` of sealed segments (their file sizes), removing
    /// the oldest first.
    pub fn max_bytes(mut self, bytes: u64) -> Retention {
        self.max_bytes = Some(bytes);
        self
    }

    /// Also run the cleanup on a background thread at this interval
    /// (otherwise only [`Writer::cleanup`](crate::Writer::cleanup) runs it).
    pub fn check_every(mut self, interval: Duration) -> Retention {
        self.every = Some(interval);
        self
    }
}

/// How a log is opened. Build with [`Options::default`] and the setters.
#[derive(Clone, Debug)]
pub struct Options {
    /// As the user gave it until [`Options::resolve`]; then rounded up to
    /// whole pages. Everything after `Log::open` sees the resolved value.
    pub(crate) segment_size: u64,
    /// The user's record limit, if set; once resolved, the limit in force
    /// (if the user set none, it follows the segment size: the default, or
    /// the largest record that fits if less). See [`Options::record_limit`].
    max_record_size: Option<usize>,
    pub(crate) timestamps: Timestamps,
    pub(crate) recovery: Recovery,
    pub(crate) prefault: bool,
    pub(crate) sync: SyncPolicy,
    pub(crate) retention: Retention,
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
            max_record_size: None,
            timestamps: Timestamps::default(),
            recovery: Recovery::default(),
            prefault: true,
            sync: SyncPolicy::Explicit,
            retention: Retention::none(),
        }
    }
}

impl Options {
    /// Size of each segment file, reserved on disk when the segment is
    /// created: between [`MIN_SEGMENT_SIZE`] (4 KiB) and
    /// [`MAX_SEGMENT_SIZE`] (4 GiB less a page). A size that is not a
    /// multiple of 4 KiB is rounded up to the next one (segments are mapped
    /// in whole pages); a size out of range makes [`Log::open`] fail with
    /// [`OptionsError::SegmentSize`], which reports the size as given.
    ///
    /// Unless [`max_record_size`](Options::max_record_size) is set too, the
    /// record limit follows: [`DEFAULT_MAX_RECORD_SIZE`], or the largest
    /// record a segment of this size holds if that is less.
    ///
    /// [`Log::open`]: crate::Log::open
    pub fn segment_size(mut self, bytes: u64) -> Options {
        self.segment_size = bytes;
        self
    }

    /// Largest record accepted by `append` ([`DEFAULT_MAX_RECORD_SIZE`], or
    /// less if a segment holds less). A limit set here must fit in one
    /// segment, with its header and the record's frame, or
    /// [`Log::open`](crate::Log::open) fails with
    /// [`OptionsError::MaxRecordSize`].
    pub fn max_record_size(mut self, bytes: usize) -> Options {
        self.max_record_size = Some(bytes);
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
    pub fn retention(mut self, retention: Retention) -> Options {
        self.retention = retention;
        self
    }

    /// When records become durable without an explicit `sync`.
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Options {
        self.sync = policy;
        self
    }

    /// Checks the options and settles the values they leave open: the
    /// segment size rounded up to whole pages, and the record limit if the
    /// user did not set one. Idempotent.
    pub(crate) fn resolve(mut self) -> Result<Options, OptionsError> {
        match self.sync {
            SyncPolicy::EveryRecords(0) => return Err(OptionsError::SyncEveryZero),
            SyncPolicy::Interval(d) if d.is_zero() => {
                return Err(OptionsError::SyncIntervalZero);
            }
            _ => {}
        }
        let given = self.segment_size;
        self.segment_size = given
            .checked_next_multiple_of(4096)
            .filter(|&size| given >= MIN_SEGMENT_SIZE && size <= MAX_SEGMENT_SIZE)
            .ok_or(OptionsError::SegmentSize { given })?;
        let fits = self.largest_record_that_fits();
        match self.max_record_size {
            None => self.max_record_size = Some(DEFAULT_MAX_RECORD_SIZE.min(fits)),
            Some(given) if given > fits => {
                return Err(OptionsError::MaxRecordSize {
                    given,
                    segment_size: self.segment_size,
                    fits,
                });
            }
            Some(_) => {}
        }
        Ok(self)
    }

    /// The largest record accepted, of options [`Options::resolve`] made.
    pub(crate) fn record_limit(&self) -> usize {
        self.max_record_size
            .expect("options are resolved when a log opens")
    }

    /// The largest payload a fresh segment can hold.
    pub(crate) fn largest_record_that_fits(&self) -> usize {
        let room = self.segment_size as usize - HEADER_LEN - FRAME_HEADER_LEN;
        (room & !(format::FRAME_ALIGN - 1)).min(format::MAX_PAYLOAD_LEN as usize)
    }
}

/// Why [`Log::open`](crate::Log::open) refused the options, carried by
/// [`Error::InvalidOptions`](crate::Error::InvalidOptions): which option, and the values involved.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// [`Options::segment_size`] is below [`MIN_SEGMENT_SIZE`] or, rounded
    /// up to whole pages, above [`MAX_SEGMENT_SIZE`].
    SegmentSize {
        /// The size given, before rounding.
        given: u64,
    },
    /// [`Options::max_record_size`] is larger than a segment can hold.
    MaxRecordSize {
        /// The limit given.
        given: usize,
        /// The segment size in force (rounded up to whole pages).
        segment_size: u64,
        /// The largest record a segment of that size holds.
        fits: usize,
    },
    /// [`SyncPolicy::EveryRecords`] with a count of 0.
    SyncEveryZero,
    /// [`SyncPolicy::Interval`] with a zero interval.
    SyncIntervalZero,
}

impl OptionsError {
    /// The name of the option at fault, as its setter on [`Options`] is
    /// named.
    pub fn option(&self) -> &'static str {
        match self {
            OptionsError::SegmentSize { .. } => "segment_size",
            OptionsError::MaxRecordSize { .. } => "max_record_size",
            OptionsError::SyncEveryZero | OptionsError::SyncIntervalZero => "sync_policy",
        }
    }
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OptionsError::SegmentSize { given } if given < MIN_SEGMENT_SIZE => write!(
                f,
                "segment_size {given} is below the minimum of {MIN_SEGMENT_SIZE} bytes"
            ),
            OptionsError::SegmentSize { given } => write!(
                f,
                "segment_size {given} is above the maximum of {MAX_SEGMENT_SIZE} bytes"
            ),
            OptionsError::MaxRecordSize {
                given,
                segment_size,
                fits,
            } => write!(
                f,
                "max_record_size {given} does not fit in a segment of {segment_size} bytes \
                 (at most {fits})"
            ),
            OptionsError::SyncEveryZero => {
                f.write_str("sync_policy EveryRecords(0): the count must be at least 1")
            }
            OptionsError::SyncIntervalZero => {
                f.write_str("sync_policy Interval(0): the interval must be longer than zero")
            }
        }
    }
}

impl std::error::Error for OptionsError {}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn refusal(options: Options) -> OptionsError {
        match options.resolve() {
            Err(e) => e,
            other => panic!("expected InvalidOptions, got {other:?}"),
        }
    }

    #[test]
    fn segment_size_rounds_up_to_pages_and_is_bounded() {
        let resolved = Options::default().segment_size(5000).resolve().unwrap();
        assert_eq!(resolved.segment_size, 8192);
        let max = Options::default().segment_size(MAX_SEGMENT_SIZE - 1);
        assert_eq!(max.resolve().unwrap().segment_size, MAX_SEGMENT_SIZE);
        for given in [0, 100, 4095, MAX_SEGMENT_SIZE + 1, 1 << 33, u64::MAX] {
            let e = refusal(Options::default().segment_size(given));
            assert_eq!(e, OptionsError::SegmentSize { given });
            assert_eq!(e.option(), "segment_size");
        }
    }

    /// Issue 11, item 8: `segment_size(100)` was rounded to 4096 by the
    /// setter and then refused on `max_record_size`'s account, which the
    /// user never set.
    #[test]
    fn a_segment_size_below_the_minimum_is_reported_as_given() {
        let text = refusal(Options::default().segment_size(100)).to_string();
        assert_eq!(text, "segment_size 100 is below the minimum of 4096 bytes");
        let text = refusal(Options::default().segment_size(1 << 33)).to_string();
        assert!(
            text.starts_with("segment_size 8589934592 is above"),
            "{text}"
        );
    }

    /// Issue 11, item 8: `segment_size(1 << 20)` alone failed with
    /// "max_record_size does not fit in one segment".
    #[test]
    fn a_segment_size_alone_brings_the_record_limit_down_with_it() {
        let small = Options::default().segment_size(1 << 20).resolve().unwrap();
        assert_eq!(small.record_limit(), small.largest_record_that_fits());
        assert!(small.record_limit() < DEFAULT_MAX_RECORD_SIZE);
        let large = Options::default().segment_size(4 << 20).resolve().unwrap();
        assert_eq!(large.record_limit(), DEFAULT_MAX_RECORD_SIZE);
        let again = small.clone().resolve().unwrap();
        assert_eq!(again.record_limit(), small.record_limit(), "idempotent");
    }

    #[test]
    fn a_record_limit_larger_than_a_segment_is_refused_with_both_values() {
        let opts = Options::default().segment_size(4096);
        let fits = opts.clone().resolve().unwrap().largest_record_that_fits();
        assert_eq!(format::frame_len(fits) + HEADER_LEN, 4096);
        assert!(opts.clone().max_record_size(fits).resolve().is_ok());
        let e = refusal(opts.max_record_size(fits + 1));
        assert_eq!(e.option(), "max_record_size");
        assert_eq!(
            e.to_string(),
            format!(
                "max_record_size {} does not fit in a segment of 4096 bytes (at most {fits})",
                fits + 1
            )
        );
        // Set by the user, the default limit is checked like any other.
        let e = refusal(
            Options::default()
                .segment_size(1 << 20)
                .max_record_size(1 << 20),
        );
        assert!(
            matches!(e, OptionsError::MaxRecordSize { given, segment_size, .. }
            if given == 1 << 20 && segment_size == 1 << 20)
        );
    }

    #[test]
    fn sync_policies_that_cannot_work_name_the_option() {
        let every = refusal(Options::default().sync_policy(SyncPolicy::EveryRecords(0)));
        let interval = Options::default().sync_policy(SyncPolicy::Interval(Default::default()));
        for e in [every, refusal(interval)] {
            assert_eq!(e.option(), "sync_policy");
            assert!(e.to_string().starts_with("sync_policy "), "{e}");
        }
    }
}
