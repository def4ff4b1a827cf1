//! Errors, and what each one means to a caller.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::format::{FrameFault, HeaderError};
use crate::options::OptionsError;

/// A `Result` whose error is murakami's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed. Nothing was written that a reader can see;
    /// whether the writer can go on depends on the operation: a failed flush
    /// latches the writer (see [`Error::Poisoned`]).
    Io(io::Error),
    /// Another handle, in this process or another, holds the directory.
    Locked {
        /// The log directory.
        dir: PathBuf,
    },
    /// A flush failed earlier, so the writer refuses appends and syncs until
    /// the log is reopened: after a failed `fsync`/`msync` the kernel may have
    /// dropped the dirty pages, so retrying could report durability that is
    /// not there. Reopening recovers from what the disk really holds.
    Poisoned {
        /// The error that latched the writer.
        cause: Arc<io::Error>,
    },
    /// A record is larger than the configured maximum (or than a segment can
    /// hold). Nothing was appended.
    RecordTooLarge {
        /// The record's length.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// An offset below the log's first record: retention or a purge removed
    /// it.
    Purged {
        /// The offset asked for.
        offset: u64,
        /// The first offset the log holds now.
        first: u64,
    },
    /// An offset outside the records the log holds.
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// The first offset the log holds.
        first: u64,
        /// One past the last offset the reader may see.
        end: u64,
    },
    /// A segment file's header is not one this crate wrote.
    BadSegmentHeader {
        /// The file.
        segment: PathBuf,
        /// What is wrong with it.
        reason: HeaderError,
    },
    /// Records in the log are damaged in a way a crash cannot explain: a bad
    /// record that was known durable, a gap between segments, or a clean
    /// shutdown's records missing. Opening with
    /// [`Recovery::TruncateCorrupt`](crate::Recovery::TruncateCorrupt) drops
    /// everything from this point on instead.
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// Byte position in the file.
        position: u64,
        /// The offset of the first record lost.
        offset: u64,
        /// What was found.
        kind: Corruption,
    },
    /// A batch larger than a segment was cut short by a failed roll: the
    /// records in `appended` are in the log (and visible), the rest are not.
    /// Batches that fit in one segment are never cut short.
    PartialBatch {
        /// Offsets of the records that were appended.
        appended: std::ops::Range<u64>,
        /// Why the rest were not.
        cause: Box<Error>,
    },
    /// A truncation discarded the record (or records up to `offset`) before
    /// it became durable: a concurrent `truncate_from` through another
    /// handle of a [`SharedWriter`](crate::SharedWriter).
    Truncated {
        /// The last offset the caller waited for.
        offset: u64,
    },
    /// [`Log::open`](crate::Log::open) refused the options: the
    /// [`OptionsError`] names the option and the values involved.
    InvalidOptions(OptionsError),
    /// The writer was closed.
    Closed,
}

/// What kind of damage [`Error::Corrupt`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// A record's checksum does not match.
    ChecksumMismatch {
        /// The CRC stored in the record.
        expected: u32,
        /// The CRC of the bytes found.
        actual: u32,
    },
    /// A record's length is impossible.
    BadLength {
        /// The length found.
        len: u32,
    },
    /// Bytes that are not a record frame where a record should be.
    NotARecord,
    /// A valid frame of another record (stale, or copied from elsewhere)
    /// where a record should be.
    Misplaced {
        /// The offset the frame holds.
        found: u64,
    },
    /// A record expected from the clean-close marker or from a later
    /// segment's base offset is missing.
    MissingRecords {
        /// The offset the log should have reached.
        expected: u64,
    },
    /// A segment header that is damaged or not murakami's (under
    /// `Recovery::TruncateCorrupt`; `Strict` reports
    /// [`Error::BadSegmentHeader`]).
    BadHeader(HeaderError),
    /// Two segments overlap or a segment starts beyond where the previous
    /// one ends.
    Discontinuity {
        /// The base offset the segment should have had.
        expected: u64,
        /// The base offset it has.
        found: u64,
    },
}

impl From<FrameFault> for Corruption {
    fn from(fault: FrameFault) -> Corruption {
        match fault {
            FrameFault::NotAFrame => Corruption::NotARecord,
            FrameFault::BadLength { len } => Corruption::BadLength { len },
            FrameFault::Misplaced { found } => Corruption::Misplaced { found },
            FrameFault::ChecksumMismatch { expected, actual } => {
                Corruption::ChecksumMismatch { expected, actual }
            }
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::ChecksumMismatch { expected, actual } => {
                write!(
                    f,
                    "checksum mismatch (stored {expected:#010x}, computed {actual:#010x})"
                )
            }
            Corruption::BadLength { len } => write!(f, "impossible record length {len}"),
            Corruption::NotARecord => f.write_str("bytes that are not a record frame"),
            Corruption::Misplaced { found } => {
                write!(f, "the frame of record {found}, out of place")
            }
            Corruption::MissingRecords { expected } => {
                write!(f, "records missing: the log should reach offset {expected}")
            }
            Corruption::BadHeader(reason) => write!(f, "bad segment header: {reason}"),
            Corruption::Discontinuity { expected, found } => {
                write!(f, "segment starts at offset {found}, expected {expected}")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Locked { dir } => write!(f, "log directory {} is in use", dir.display()),
            Error::Poisoned { cause } => {
                write!(
                    f,
                    "writer refuses work after a failed flush ({cause}); reopen the log"
                )
            }
            Error::RecordTooLarge { len, max } => {
                write!(
                    f,
                    "record of {len} bytes is larger than the maximum of {max}"
                )
            }
            Error::Purged { offset, first } => {
                write!(f, "offset {offset} was removed; the log starts at {first}")
            }
            Error::OffsetOutOfRange { offset, first, end } => {
                write!(
                    f,
                    "offset {offset} is outside the log's records [{first}, {end})"
                )
            }
            Error::BadSegmentHeader { segment, reason } => {
                write!(f, "segment {}: {reason}", segment.display())
            }
            Error::Corrupt {
                segment,
                position,
                offset,
                kind,
            } => write!(
                f,
                "corrupt log: {kind} in {} at byte {position} (record offset {offset})",
                segment.display()
            ),
            Error::PartialBatch { appended, cause } => write!(
                f,
                "batch cut short after offsets {}..{}: {cause}",
                appended.start, appended.end
            ),
            Error::Truncated { offset } => {
                write!(
                    f,
                    "offset {offset} was truncated away before it became durable"
                )
            }
            Error::InvalidOptions(e) => write!(f, "invalid options: {e}"),
            Error::Closed => f.write_str("the log writer is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Poisoned { cause } => Some(cause.as_ref()),
            Error::PartialBatch { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn display_names_the_file_and_position() {
        let e = Error::Corrupt {
            segment: PathBuf::from("/x/00000000000000000007.seg"),
            position: 4096,
            offset: 12,
            kind: Corruption::ChecksumMismatch {
                expected: 1,
                actual: 2,
            },
        };
        let text = e.to_string();
        assert!(text.contains("00000000000000000007.seg"), "{text}");
        assert!(text.contains("4096"), "{text}");
        assert!(text.contains("checksum"), "{text}");
    }

    #[test]
    fn poisoned_keeps_its_cause_as_source() {
        let cause = Arc::new(io::Error::other("disk on fire"));
        let e = Error::Poisoned { cause };
        assert!(e.source().unwrap().to_string().contains("disk on fire"));
        assert!(Error::Closed.source().is_none());
    }
}
