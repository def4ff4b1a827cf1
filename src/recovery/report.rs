//! What recovery tells the program: [`RecoveryReport`], and where and why
//! it cut the log.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::error::Corruption;

/// What opening the log found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The log had been closed cleanly.
    pub clean_shutdown: bool,
    /// Segments in the log after recovery.
    pub segments: usize,
    /// Offset of the first record.
    pub first_offset: u64,
    /// One past the last record after recovery.
    pub next_offset: u64,
    /// Where recovery cut the log, if it did.
    pub cut: Option<Cut>,
}

/// Where and why recovery cut the log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cut {
    /// The first offset dropped (the log continues from here).
    pub offset: u64,
    /// The segment file in which the cut falls.
    pub segment: PathBuf,
    /// Byte position of the cut in that file.
    pub position: u64,
    /// Torn tail, or corruption dropped under `Recovery::TruncateCorrupt`.
    pub reason: CutReason,
    /// Valid records found after the cut and dropped with it.
    pub records_dropped: u64,
    /// Segment files removed because they lay after the cut.
    pub segments_removed: Vec<PathBuf>,
}

/// Why recovery cut the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CutReason {
    /// Records after the last durable point that did not reach the disk
    /// whole: what a crash leaves. Nothing durable was lost.
    TornTail,
    /// Damage a crash cannot explain, dropped because the options asked for
    /// [`Recovery::TruncateCorrupt`](crate::Recovery::TruncateCorrupt).
    Corruption(Corruption),
}
