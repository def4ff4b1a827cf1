//! A read-only look at a log directory: [`Inspection`], what
//! [`Log::inspect`](crate::Log::inspect) returns and `murakami stat` and
//! `murakami verify` print.
//!
//! It is recovery's own survey (the same scan, the same rules for torn
//! tails and corruption), stopped before anything is changed: no lock is
//! kept (one is tried and let go, to see whether a writer holds it), no
//! file is created, written or removed, segments are mapped read-only.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::{Cut, CutReason, Survey, survey};
use crate::error::{Corruption, Error, Result};
use crate::format::{ControlError, HeaderError};
use crate::options::{Options, Recovery};
use crate::storage::control::{CONTROL_NAME, STATE_CLOSED, STATE_OPEN, Snapshot};
use crate::storage::fs::{self, CLEAN_NAME, LOCK_NAME, Vfs};

/// What a read-only look at a log directory found: its segments, markers
/// and control file, whether a writer holds it now, and the first problem
/// with what opening the log would do about it.
///
/// On a log a writer holds, the files change while they are read: the
/// inspection is a snapshot, and the active segment's last records may be
/// missing from it. To check a live log record by record, read it with
/// [`Reader::open`](crate::Reader::open) (what `murakami verify` does).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// The directory inspected.
    pub dir: PathBuf,
    /// What the directory holds, as a whole.
    pub state: LogState,
    /// The process holding the log's lock now, if one does.
    pub writer: Option<WriterInfo>,
    /// The segment files, in offset order (truncations applied: segments a
    /// truncation discarded are in `leftovers`).
    pub segments: Vec<SegmentInfo>,
    /// The clean-close marker is there: the last writer closed the log.
    pub clean_shutdown: bool,
    /// Truncation markers in force (a truncation a crash interrupted, or
    /// one whose marker the next open removes).
    pub truncations: Vec<TruncationInfo>,
    /// Files the next open removes before anything else: an unfinished
    /// prepared segment, stale truncation markers, segments a truncation
    /// discarded.
    pub leftovers: Vec<PathBuf>,
    /// The control file (`murakami.tail`) readers in other processes
    /// follow: `None` when there is none, the reason when it is refused.
    pub control: Option<std::result::Result<ControlInfo, ControlError>>,
    /// The first offset the log holds (after an open's repair).
    pub first_offset: u64,
    /// One past the last record the log holds (after an open's repair).
    pub next_offset: u64,
    /// One past the last record known durable: everything after a clean
    /// close; otherwise what the last writer's syncs recorded (the control
    /// file and the segments' checkpoints), at most `next_offset`.
    pub durable_offset: u64,
    /// The first problem found, if any.
    pub problem: Option<Problem>,
}

/// What a log directory holds, as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogState {
    /// No murakami file at all: not a log (yet).
    Absent,
    /// A writer holds the log now.
    Live,
    /// The last writer closed the log cleanly.
    Closed,
    /// The last writer did not close the log (it crashed or was killed);
    /// the next open repairs what it left.
    Unclean,
}

/// The process holding a log's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterInfo {
    /// Its process id, when the system says (Linux: `/proc/locks`, as seen
    /// from this process's pid namespace).
    pub pid: Option<u32>,
}

/// One segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The file.
    pub path: PathBuf,
    /// Offset of its first record (from its name, which its header
    /// repeats).
    pub base_offset: u64,
    /// Creation sequence number, from its header.
    pub sequence: Option<u64>,
    /// Format version of its header.
    pub version: Option<u32>,
    /// Why its header is refused, when it is.
    pub header_error: Option<HeaderError>,
    /// Bytes reserved for it (its header's capacity; the file's length
    /// when the header is refused).
    pub capacity: u64,
    /// Length of the file.
    pub file_len: u64,
    /// Valid records, up to the first bad frame (or a truncation's cut).
    pub records: u64,
    /// Bytes used: the header and the valid records' frames.
    pub used_bytes: u64,
    /// Not the last segment: no record will be appended to it.
    pub sealed: bool,
    /// Oldest and newest record timestamps (nanoseconds since the Unix
    /// epoch), when it holds records.
    pub timestamps: Option<(u64, u64)>,
    /// The durable offset its header's checkpoint records.
    pub checkpoint: u64,
}

/// A truncation marker in force.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TruncationInfo {
    /// The marker file.
    pub marker: PathBuf,
    /// Base offset of the segment it cuts.
    pub segment_base: u64,
    /// The first offset it cuts away.
    pub at: u64,
}

/// The control file's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlInfo {
    /// Format version.
    pub version: u32,
    /// Writer opens so far.
    pub epoch: u64,
    /// Truncations and writer opens so far.
    pub generation: u64,
    /// A writer opened the log and had not closed it when the file was
    /// last written (it may have crashed since).
    pub open: bool,
    /// The last writer closed the log.
    pub closed: bool,
    /// Base offset of the writer's active segment.
    pub active_base: u64,
    /// The durable offset the writer published.
    pub durable_offset: u64,
    /// The first offset the writer published.
    pub first_offset: u64,
    /// Segments with a lower sequence number were discarded by a restart
    /// ([`Writer::restart_at`](crate::Writer::restart_at)); 0 when no
    /// restart was published.
    pub restarted_below: u64,
    /// Reader processes registered to sleep.
    pub sleepers: u32,
}

/// The first problem in a log, and what opening it does there.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file it is in (the directory when a whole segment is missing).
    pub segment: PathBuf,
    /// Byte position in that file.
    pub position: u64,
    /// The record offset there.
    pub offset: u64,
    /// What is wrong.
    pub kind: Corruption,
    /// A crash explains it (records after the last durable point that did
    /// not reach the disk whole): the next open cuts the log there, and
    /// nothing durable is lost. Otherwise it is corruption: an open fails
    /// with [`Error::Corrupt`] (or [`Error::BadSegmentHeader`]) unless the
    /// options say [`Recovery::TruncateCorrupt`].
    pub torn_tail: bool,
    /// Where the open cuts the log: for a torn tail, what it does; for
    /// corruption, what it does under `Recovery::TruncateCorrupt`.
    pub cut: Option<Cut>,
}

impl Inspection {
    /// Whether the next open (with the default, strict recovery) repairs
    /// something: a torn tail to cut, leftovers to remove, an unclean
    /// shutdown to make durable.
    pub fn needs_repair(&self) -> bool {
        self.state == LogState::Unclean || self.problem.is_some() || !self.leftovers.is_empty()
    }
}

/// Inspects the log in `dir`.
pub(crate) fn inspect(vfs: &dyn Vfs, dir: &Path) -> Result<Inspection> {
    // Listing first: a directory that is not there is an error, and
    // nothing is created.
    let names = vfs.list(dir)?;
    let writer = writer_of(vfs, dir)?;
    let control = vfs
        .read_small(&dir.join(CONTROL_NAME))?
        .map(|bytes| Snapshot::decode(&bytes).map(control_info));
    let options = Options::default().recovery(Recovery::TruncateCorrupt);
    // A live writer removes files (purges, truncations, a roll's prepared
    // file) while they are read: a file listed and gone when opened means
    // look again.
    let mut attempts = 0;
    let survey = loop {
        match survey(vfs, dir, &options) {
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound && attempts < 100 => {
                attempts += 1;
            }
            done => break done?,
        }
    };
    let ours = |n: &String| {
        fs::parse_segment_name(n).is_some()
            || fs::parse_cut_name(n).is_some()
            || [CONTROL_NAME, CLEAN_NAME, LOCK_NAME, fs::RESTART_NAME].contains(&n.as_str())
    };
    let state = if writer.is_some() {
        LogState::Live
    } else if survey.marker.is_some() {
        LogState::Closed
    } else if !names.iter().any(ours) {
        LogState::Absent
    } else if survey.found.is_empty() && control.is_none() && survey.restart.is_none() {
        // A lock file alone: a writer that never got as far as a segment
        // (it creates the first one before it returns). With a committed
        // restart marker it is a log the next open creates at the
        // marker's offset: unclean.
        LogState::Absent
    } else {
        LogState::Unclean
    };
    let segments = segments(&survey);
    let (first_offset, next_offset) = offsets(&survey);
    let recorded = match &control {
        Some(Ok(c)) => c.durable_offset,
        _ => 0,
    };
    let checkpoints = survey.found.iter().map(|f| f.checkpoint).max().unwrap_or(0);
    let durable_offset = if survey.marker.is_some() && survey.cut.is_none() {
        next_offset
    } else {
        recorded.max(checkpoints).clamp(first_offset, next_offset)
    };
    let problem = problem(&survey);
    let truncations = survey
        .truncated
        .iter()
        .map(|(base, path, marker)| TruncationInfo {
            marker: path.clone(),
            segment_base: *base,
            at: marker.at,
        })
        .collect();
    Ok(Inspection {
        dir: dir.to_path_buf(),
        state,
        writer,
        segments,
        clean_shutdown: survey.marker.is_some(),
        truncations,
        leftovers: survey.leftovers,
        control,
        first_offset,
        next_offset,
        durable_offset,
        problem,
    })
}

/// The process holding the lock of the log in `dir`, if one does.
pub(crate) fn writer_of(vfs: &dyn Vfs, dir: &Path) -> std::io::Result<Option<WriterInfo>> {
    Ok(vfs
        .lock_holder(&dir.join(LOCK_NAME))?
        .map(|h| WriterInfo { pid: h.pid }))
}

fn control_info(s: Snapshot) -> ControlInfo {
    ControlInfo {
        version: s.version,
        epoch: s.epoch,
        generation: s.generation,
        open: s.state == STATE_OPEN,
        closed: s.state == STATE_CLOSED,
        active_base: s.active_base,
        durable_offset: s.durable,
        first_offset: s.first,
        restarted_below: s.restarted_below,
        sleepers: s.sleepers,
    }
}

fn segments(survey: &Survey) -> Vec<SegmentInfo> {
    let last = survey.found.len().saturating_sub(1);
    let found = survey.found.iter().enumerate().map(|(i, f)| {
        let header_ok = f.header.is_none();
        SegmentInfo {
            path: f.path.clone(),
            base_offset: f.base,
            sequence: header_ok.then_some(f.sequence),
            version: f.version,
            header_error: f.header,
            capacity: if header_ok { f.capacity } else { f.len },
            file_len: f.len,
            records: f.scan.count,
            used_bytes: if header_ok { f.scan.end as u64 } else { 0 },
            sealed: i < last,
            timestamps: (f.scan.count > 0).then_some((f.min_timestamp, f.scan.max_timestamp)),
            checkpoint: f.checkpoint,
        }
    });
    found.collect()
}

/// The first and next offsets the log has once opened.
fn offsets(survey: &Survey) -> (u64, u64) {
    let kept = &survey.found[..survey.keep];
    let first = match kept.first() {
        Some(f) => f.base,
        None => super::empty_start(survey.marker, survey.restart),
    };
    let next = match (&survey.cut, kept.last()) {
        (Some(cut), _) => cut.offset,
        (None, Some(last)) => last.base + last.scan.count,
        (None, None) => first,
    };
    (first, next.max(first))
}

fn problem(survey: &Survey) -> Option<Problem> {
    let cut = survey.cut.clone();
    if let Some(refusal) = &survey.refusal {
        let (segment, position, offset, kind) = match refusal {
            Error::BadSegmentHeader { segment, reason } => {
                let name = segment.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let base = fs::parse_segment_name(name).unwrap_or(0);
                (segment.clone(), 0, base, Corruption::BadHeader(*reason))
            }
            Error::Corrupt {
                segment,
                position,
                offset,
                kind,
            } => (segment.clone(), *position, *offset, *kind),
            _ => unreachable!("a survey refuses with BadSegmentHeader or Corrupt only"),
        };
        return Some(Problem {
            segment,
            position,
            offset,
            kind,
            torn_tail: false,
            cut,
        });
    }
    let cut = cut?;
    debug_assert_eq!(cut.reason, CutReason::TornTail, "corruption is a refusal");
    Some(Problem {
        segment: cut.segment.clone(),
        position: cut.position,
        offset: cut.offset,
        kind: survey.fault.expect("a cut has a fault"),
        torn_tail: true,
        cut: Some(cut),
    })
}
