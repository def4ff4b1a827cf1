//! Errors, and what each one means to a caller.
#![forbid(unsafe_code)]

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::format::{ControlError, FrameFault, HeaderError};
use crate::options::OptionsError;

/// A `Result` whose error is murakami's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a log.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed. Nothing was written that a reader can see;
    /// whether the writer can go on depends on the operation: a failed flush
    /// latches the writer (see [`Error::Poisoned`]). The `io::Error` is
    /// also the error's `source`.
    Io(io::Error),
    /// Another handle, in this process or another, holds the directory.
    Locked {
        /// The log directory.
        dir: PathBuf,
    },
    /// A flush or fsync failed earlier (on any path: a sync, the background
    /// syncer, a purge or cleanup, a truncation), or a background thread of
    /// the writer died (its panic message is in `cause`), so the writer
    /// refuses appends, syncs, purges and truncations until the log is
    /// reopened: after a failed `fsync`/`msync` the kernel may have dropped
    /// the dirty pages, so retrying could report durability that is not
    /// there. Reopening recovers from what the disk really holds.
    Poisoned {
        /// The error that latched the writer; also the error's `source`.
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
        /// What is wrong with it; also the error's `source`.
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
        /// Why the rest were not; also the error's `source`.
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
    /// A log's control file (`murakami.tail`, which readers in other
    /// processes follow the writer through) is not one this crate reads.
    BadControlFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it; also the error's `source`.
        reason: ControlError,
    },
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
    /// [`Error::BadSegmentHeader`]). The [`Error::Corrupt`] that carries it
    /// gives the [`HeaderError`] as its `source`.
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
            // The reason is the error's source (`Error::source`).
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
            Error::Io(_) => f.write_str("I/O error"),
            Error::Locked { dir } => write!(f, "log directory {} is in use", dir.display()),
            Error::Poisoned { .. } => f.write_str(
                "the writer refuses work after an earlier failure (a failed flush or fsync, \
                 or a background task that died); reopen the log",
            ),
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
            Error::BadSegmentHeader { segment, .. } => {
                write!(f, "segment {} has a bad header", segment.display())
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
            Error::PartialBatch { appended, .. } => write!(
                f,
                "batch cut short: offsets {}..{} were appended, the rest were not",
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
            Error::BadControlFile { path, reason } => {
                write!(f, "bad control file {}: {reason}", path.display())
            }
        }
    }
}

/// Following the std convention, an error's `Display` describes its own
/// level only, and the cause (the I/O error, the failure that latched the
/// writer, what is wrong with a header) is its `source`: error reporters
/// (`anyhow`, `eyre`) that print the chain then print each cause once.
/// Print the chain to see everything, or match on the variant.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Poisoned { cause } => Some(cause.as_ref()),
            Error::PartialBatch { cause, .. } => Some(cause.as_ref()),
            Error::BadSegmentHeader { reason, .. } => Some(reason),
            Error::BadControlFile { reason, .. } => Some(reason),
            // A `Corrupt` error's kind is part of its own message (a
            // `Corruption` is also shown alone, in a recovery report), so a
            // bad header's reason is not its source.
            _ => None,
        }
    }
}

impl From<OptionsError> for Error {
    fn from(e: OptionsError) -> Error {
        Error::InvalidOptions(e)
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
        assert!(e.to_string().contains("reopen"), "{e}");
        assert!(Error::Closed.source().is_none());
    }

    /// One error of every variant that has a cause, and one that has none.
    fn errors_with_causes() -> Vec<Error> {
        let io = || io::Error::other("disk on fire");
        vec![
            Error::Io(io()),
            Error::Poisoned {
                cause: Arc::new(io()),
            },
            Error::PartialBatch {
                appended: 3..5,
                cause: Box::new(Error::Poisoned {
                    cause: Arc::new(io()),
                }),
            },
            Error::BadSegmentHeader {
                segment: PathBuf::from("/x/00000000000000000007.seg"),
                reason: HeaderError::BadMagic,
            },
            Error::Corrupt {
                segment: PathBuf::from("/x/00000000000000000007.seg"),
                position: 0,
                offset: 7,
                kind: Corruption::BadHeader(HeaderError::BadChecksum),
            },
            Error::Closed,
        ]
    }

    /// Issue 11, item 9: `Display` printed the source and `source()`
    /// returned it too, so a reporter that prints the chain (anyhow, eyre)
    /// printed the cause twice.
    #[test]
    fn no_message_in_a_source_chain_repeats_its_source() {
        for e in errors_with_causes() {
            let mut chain = vec![e.to_string()];
            let mut level: &dyn std::error::Error = &e;
            while let Some(source) = level.source() {
                let (message, cause) = (level.to_string(), source.to_string());
                assert!(!cause.is_empty() && !message.is_empty(), "{e:?}");
                assert!(
                    !message.contains(&cause),
                    "{message:?} repeats its source {cause:?}"
                );
                chain.push(cause);
                level = source;
            }
            let report = chain.join(": ");
            let once = ["disk on fire", "bad magic", "checksum mismatch"];
            for needle in once {
                assert!(report.matches(needle).count() <= 1, "{report}");
            }
        }
    }

    #[test]
    fn a_header_error_is_the_source_of_the_errors_that_carry_it() {
        let reasons: Vec<String> = errors_with_causes()
            .iter()
            .filter_map(|e| e.source())
            .filter_map(|s| s.downcast_ref::<HeaderError>())
            .map(|h| h.to_string())
            .collect();
        assert_eq!(reasons, ["not a murakami segment (bad magic)"]);
    }

    /// A `Corruption` is shown alone in a recovery report (no chain to
    /// carry a cause), so a bad header's reason is in its own message.
    #[test]
    fn a_bad_header_corruption_says_what_is_wrong() {
        let kind = Corruption::BadHeader(HeaderError::BadChecksum);
        assert!(kind.to_string().contains("checksum"), "{kind}");
    }
}
