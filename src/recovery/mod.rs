//! Opening a log: lock the directory, scan the segments, repair a torn tail.
//!
//! Every record of every segment is checked against its CRC when the log is
//! opened: nothing read from disk is trusted, and at ~25 GB/s the check costs
//! less than paging the data in.
//!
//! # Torn tail or corruption?
//!
//! After a crash the records past the last sync may be missing, torn, or
//! present in any subset: the kernel writes dirty pages back in no particular
//! order. So a bad record is not, by itself, corruption. It is corruption
//! (reported as [`Error::Corrupt`], or cut with
//! [`Recovery::TruncateCorrupt`]) when
//!
//! - the log was closed cleanly (the clean marker is there), or
//! - a valid record after it carries a durable hint above its offset: the
//!   log had made the bad record durable before, so a crash cannot explain it.
//!
//! Otherwise it is a torn tail: recovery cuts the log there, zeroes the bytes
//! after the cut (so a stale frame can never pass as a record later),
//! removes later segment files and makes all of that durable before the log
//! accepts appends.
//!
//! What it owns: [`recover`] (the lock, the scan, the repair, the
//! truncation markers a crash left, the first segment of a new log), the
//! [`RecoveryReport`] it leaves (`report.rs`), and [`survey`], the scan and
//! the decisions before anything is changed, which `recover` acts on and
//! [`Inspection`] reports (`inspect.rs`).
//!
//! What it may call: `storage`, `format`, `options`, `error`, `primitives`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::error::{Corruption, Error, Result};
use crate::format::{
    self, CleanMarker, CutMarker, HEADER_LEN, HeaderError, RestartMarker, SegmentHeader,
};
use crate::options::{MAX_SEGMENT_SIZE, Options, Recovery};
use crate::primitives::Arc;
use crate::storage::fs::{
    self, CLEAN_NAME, LOCK_NAME, PREPARED_NAME, RESTART_NAME, RESTART_TMP_NAME, SegmentFile, Vfs,
};
use crate::storage::region::{Appender, Region};
use crate::storage::segment::Segment;

mod inspect;
mod report;

pub use inspect::{
    ControlInfo, Inspection, LogState, Problem, SegmentInfo, TruncationInfo, WriterInfo,
};
pub(crate) use inspect::{inspect, writer_of};
pub use report::{Cut, CutReason, RecoveryReport};

/// The log as recovery leaves it.
pub(crate) struct Recovered {
    pub(crate) lock: Box<dyn std::any::Any + Send>,
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) appender: Appender,
    pub(crate) next_offset: u64,
    /// Newest record timestamp in the active segment.
    pub(crate) active_max_timestamp: u64,
    /// Sequence number for the next segment created.
    pub(crate) next_sequence: u64,
    /// A restart this open completed discarded every segment with a
    /// sequence below this (0: none).
    pub(crate) restarted_below: u64,
    pub(crate) report: RecoveryReport,
}

/// A segment file as found on disk.
struct Found {
    base: u64,
    /// Creation sequence number from the header.
    sequence: u64,
    path: PathBuf,
    file: Box<dyn SegmentFile>,
    /// `None` when the header is blank, damaged, or the file too short for
    /// one (see `header`).
    region: Option<Region>,
    /// Why the header was refused, when it was (`Blank` for a blank one).
    header: Option<HeaderError>,
    capacity: u64,
    scan: format::Scan,
    positions: Vec<u32>,
    /// Largest durable hint and number of valid records chained after the
    /// frame that stopped the scan (zero when it stopped cleanly).
    beyond_fault: (u64, u64),
    /// The durable offset a past sync recorded in the header, lowered by a
    /// truncation marker that cuts below it.
    checkpoint: u64,
    /// The checkpoint as the header on disk holds it.
    stored_checkpoint: u64,
    /// End of the nonzero bytes past the last valid frame, once computed.
    garbage_end: Option<usize>,
    /// Smallest timestamp among the valid records (`u64::MAX` when none).
    min_timestamp: u64,
    /// Length of the file.
    len: u64,
    /// Format version of the header, when it is valid.
    version: Option<u32>,
}

/// A point where the log stops being valid.
struct Fault {
    /// Index in the found segments of the segment the cut falls in; the
    /// segments before it and the valid records before the cut are kept.
    segment: usize,
    position: usize,
    offset: u64,
    kind: Corruption,
}

/// What a look at a log directory finds, before anything is changed: the
/// segments scanned, the markers read, the first fault and what opening
/// the log does about it. [`recover`] acts on it; `inspect` reports it.
pub(crate) struct Survey {
    /// Files opening the log removes before anything else: an unfinished
    /// prepared segment, truncation markers that never got their name or
    /// whose segment is gone, segments a truncation discarded.
    pub(crate) leftovers: Vec<PathBuf>,
    /// The clean marker's file was there (valid or not).
    pub(crate) marker_file: bool,
    /// The clean marker, when valid.
    pub(crate) marker: Option<CleanMarker>,
    /// The segments found, truncations applied, in base order.
    found: Vec<Found>,
    /// Truncation markers in force: (segment base, marker path, marker).
    pub(crate) truncated: Vec<(u64, PathBuf, CutMarker)>,
    /// A restart marker in force ([`Writer::restart_at`](crate::Writer::restart_at)
    /// committed and was stopped before it took the marker away).
    pub(crate) restart: Option<RestartMarker>,
    /// The last truncation's marker is on the last segment: its bytes past
    /// the cut must be zeroed like garbage.
    last_cut: bool,
    /// Segments kept; those after are removed.
    keep: usize,
    /// Where opening cuts the log, and why.
    pub(crate) cut: Option<Cut>,
    /// What is wrong where the log is cut.
    pub(crate) fault: Option<Corruption>,
    /// The error a `Recovery::Strict` open returns: always `None` in a
    /// strict survey (it returned the error instead).
    pub(crate) refusal: Option<Error>,
    /// Sequence number for the next segment created.
    next_sequence: u64,
}

/// Opens (creating if needed) and recovers the log in `dir`.
pub(crate) fn recover(vfs: &dyn Vfs, dir: &Path, options: &Options) -> Result<Recovered> {
    vfs.create_dir_all(dir)?;
    let lock = vfs
        .lock(&dir.join(LOCK_NAME))?
        .ok_or_else(|| Error::Locked {
            dir: dir.to_path_buf(),
        })?;
    // Recovery acts on what it finds (a truncation marker, above all, makes
    // it zero records for good), so what it finds must outlive a crash
    // during it: entries a crashed process created may not be durable yet.
    vfs.sync_dir(dir)?;
    let survey = survey(vfs, dir, options)?;
    debug_assert!(survey.refusal.is_none() || options.recovery != Recovery::Strict);
    for path in &survey.leftovers {
        vfs.remove(path)?;
    }
    let Survey {
        marker_file,
        marker,
        mut found,
        truncated,
        restart,
        last_cut,
        keep,
        cut,
        mut next_sequence,
        ..
    } = survey;
    let clean = marker.is_some();
    let removed: Vec<Found> = found.split_off(keep);
    // A kept segment without a valid header holds nothing (it is the one the
    // cut falls in, so the last); it goes too.
    let headless = found.last().is_some_and(|f| f.region.is_none());
    let headless = if headless { found.pop() } else { None };
    for gone in removed.iter().chain(&headless) {
        vfs.remove(&gone.path)?;
    }
    // With no segment left, the name of the one whose header never reached
    // the disk still says where the log starts.
    let start = match &headless {
        Some(blank) if found.is_empty() => blank.base,
        _ => first_base(&found, marker, restart),
    };
    let repair = !clean || cut.is_some() || last_cut || restart.is_some();
    let (segments, appender, next_offset, active_max_timestamp) =
        install(vfs, dir, options, found, start, repair, &mut next_sequence)?;
    if marker_file {
        vfs.remove(&dir.join(CLEAN_NAME))?;
    }
    if last_cut {
        // The bytes past the cut are zeroed now: the marker has done its job.
        let (_, path, _) = truncated.last().expect("checked");
        vfs.remove(path)?;
    }
    if repair || marker_file {
        // Files removed or created, and the marker gone, before any append.
        vfs.sync_dir(dir)?;
    }
    if restart.is_some() {
        // The segments before the restart are gone and the new log's first
        // segment is durable (synced just above): the marker has done its job.
        vfs.remove(&dir.join(RESTART_NAME))?;
        vfs.sync_dir(dir)?;
    }
    let report = RecoveryReport {
        clean_shutdown: clean,
        segments: segments.len(),
        first_offset: segments[0].base(),
        next_offset,
        cut,
    };
    Ok(Recovered {
        lock,
        segments,
        appender,
        next_offset,
        active_max_timestamp,
        next_sequence,
        restarted_below: restart.map_or(0, |r| r.created_after),
        report,
    })
}

/// Reads and scans the log in `dir` and decides what opening it does,
/// changing nothing (it maps the segments read-only). Under
/// `Recovery::Strict` damage a crash cannot explain
/// is the error an open returns; otherwise it is noted in
/// [`Survey::refusal`] and the cut goes where `TruncateCorrupt` puts it.
pub(crate) fn survey(vfs: &dyn Vfs, dir: &Path, options: &Options) -> Result<Survey> {
    let mode = options.recovery;
    let names = vfs.list(dir)?;
    let mut leftovers = Vec::new();
    for name in [PREPARED_NAME, RESTART_TMP_NAME] {
        if names.iter().any(|n| n == name) {
            leftovers.push(dir.join(name));
        }
    }
    // Truncation markers that never got their name.
    for name in &names {
        let stem = name.strip_suffix(".tmp");
        if stem.is_some_and(|s| fs::parse_segment_name(&format!("{s}.seg")).is_some()) {
            leftovers.push(dir.join(name));
        }
    }
    let mut bases: Vec<u64> = names
        .iter()
        .filter_map(|n| fs::parse_segment_name(n))
        .collect();
    bases.sort_unstable();
    let marker_bytes = vfs.read_small(&dir.join(CLEAN_NAME))?;
    let marker = marker_bytes.as_deref().and_then(CleanMarker::decode);
    let clean = marker.is_some();

    let mut refusal = None;
    let mut found = Vec::with_capacity(bases.len());
    for base in bases {
        let seg = load(vfs, dir, base, options)?;
        if let Some(reason) = seg.header.filter(|r| refused(*r)) {
            refusal.get_or_insert(Error::BadSegmentHeader {
                segment: seg.path.clone(),
                reason,
            });
        }
        found.push(seg);
    }
    let mut next_sequence = found.iter().map(|f| f.sequence + 1).max().unwrap_or(0);
    let restart = apply_restart(
        vfs,
        dir,
        &names,
        &mut found,
        &mut next_sequence,
        &mut leftovers,
    )?;
    let truncated = apply_truncations(
        vfs,
        dir,
        &names,
        &mut found,
        &mut next_sequence,
        &mut leftovers,
    )?;
    if found.is_empty() && restart.is_none() && marker.is_some_and(|m| m.next_offset > 0) {
        // A clean close always leaves an active segment behind.
        let expected = marker.map_or(0, |m| m.next_offset);
        let missing = Error::Corrupt {
            segment: dir.to_path_buf(),
            position: 0,
            offset: 0,
            kind: Corruption::MissingRecords { expected },
        };
        if mode == Recovery::Strict {
            return Err(missing);
        }
        refusal.get_or_insert(missing);
    }
    // A truncation whose new segment never came to be leaves the segment it
    // cut last: its bytes past the cut must be zeroed like garbage.
    let last_cut = truncated
        .last()
        .is_some_and(|&(base, ..)| found.last().is_some_and(|f| f.base == base));
    // Garbage past the tail is what a crash leaves; after a clean close the
    // marker already pins where the log ends.
    let garbage_end = match found.last_mut() {
        Some(last) if !clean && !last_cut => trailing_garbage(last)?,
        _ => 0,
    };
    let fault = find_fault(&found, marker, garbage_end);
    let fault_kind = fault.as_ref().map(|f| f.kind);
    let (keep, mut cut) = match fault {
        None => (found.len(), None),
        Some(fault) => decide(&found, fault, clean, mode)?,
    };
    if let Some(cut) = &mut cut {
        cut.segments_removed = found[keep..].iter().map(|f| f.path.clone()).collect();
    }
    if let Some(Cut {
        reason: CutReason::Corruption(kind),
        segment,
        position,
        offset,
        ..
    }) = &cut
    {
        refusal.get_or_insert(Error::Corrupt {
            segment: segment.clone(),
            position: *position,
            offset: *offset,
            kind: *kind,
        });
    }
    Ok(Survey {
        leftovers,
        marker_file: marker_bytes.is_some(),
        marker,
        found,
        truncated,
        restart,
        last_cut,
        keep,
        cut,
        fault: fault_kind,
        refusal,
        next_sequence,
    })
}

/// Whether a strict open refuses a segment whose header is refused for
/// `reason` (a header a crash explains only makes the segment empty).
fn refused(reason: HeaderError) -> bool {
    !matches!(
        reason,
        HeaderError::Blank | HeaderError::Torn | HeaderError::TooShort
    )
}

/// Applies a restart marker (`murakami.restart`): the segments made before
/// the restart join `leftovers` (their truncation markers then do too, as
/// markers of segments that are gone). A marker that does not decode is a
/// leftover as well: it never got its name whole, so it never committed.
fn apply_restart(
    vfs: &dyn Vfs,
    dir: &Path,
    names: &[String],
    found: &mut Vec<Found>,
    next_sequence: &mut u64,
    leftovers: &mut Vec<PathBuf>,
) -> Result<Option<RestartMarker>> {
    if !names.iter().any(|n| n == RESTART_NAME) {
        return Ok(None);
    }
    let path = dir.join(RESTART_NAME);
    let Some(marker) = vfs
        .read_small(&path)?
        .and_then(|b| RestartMarker::decode(&b))
    else {
        leftovers.push(path);
        return Ok(None);
    };
    *next_sequence = (*next_sequence).max(marker.created_after);
    let (old, new): (Vec<Found>, Vec<Found>) = std::mem::take(found)
        .into_iter()
        .partition(|f| f.sequence < marker.created_after);
    leftovers.extend(old.into_iter().map(|f| f.path));
    *found = new;
    Ok(Some(marker))
}

/// Applies the truncation markers (`NNNN.cut`) to the segments found: each
/// cuts its segment's records at its offset and discards the segments that
/// followed it before the truncation (they, and markers of segments that
/// are gone or were replaced, join `leftovers`). Returns the markers in
/// force (segment base, marker path, marker), in base order.
fn apply_truncations(
    vfs: &dyn Vfs,
    dir: &Path,
    names: &[String],
    found: &mut Vec<Found>,
    next_sequence: &mut u64,
    leftovers: &mut Vec<PathBuf>,
) -> Result<Vec<(u64, PathBuf, CutMarker)>> {
    let mut bases: Vec<u64> = names.iter().filter_map(|n| fs::parse_cut_name(n)).collect();
    bases.sort_unstable();
    let mut in_force = Vec::new();
    for base in bases {
        let path = fs::cut_path(dir, base);
        let marker = vfs.read_small(&path)?.and_then(|b| CutMarker::decode(&b));
        let target = marker.and_then(|m| {
            let i = found
                .iter()
                .position(|f| f.base == base && f.sequence == m.segment)?;
            Some((i, m))
        });
        let Some((i, marker)) = target else {
            leftovers.push(path);
            continue;
        };
        cut_records(&mut found[i], marker.at);
        *next_sequence = (*next_sequence).max(marker.created_after);
        // Segments made before the truncation that follow the cut one are
        // what it discarded (and had not removed yet when it was stopped).
        let mut j = i + 1;
        while j < found.len() {
            if found[j].sequence < marker.created_after {
                leftovers.push(found.remove(j).path);
            } else {
                j += 1;
            }
        }
        in_force.push((base, path, marker));
    }
    Ok(in_force)
}

/// Makes a scanned segment hold only its records below `at`.
fn cut_records(found: &mut Found, at: u64) {
    found.checkpoint = found.checkpoint.min(at);
    let keep = at.saturating_sub(found.base);
    if keep > found.scan.count {
        // Torn before the cut: the scan's verdict stands.
        return;
    }
    // Whatever lies past the cut (records, or a bad frame) is not the log's.
    found.scan.fault = None;
    found.beyond_fault = (0, 0);
    found.garbage_end = None;
    if keep == found.scan.count {
        return;
    }
    let end = found.positions[keep as usize] as usize;
    found.positions.truncate(keep as usize);
    found.scan.count = keep;
    found.scan.end = end;
    let Some(region) = &mut found.region else {
        return;
    };
    let (mut max_hint, mut max_timestamp, mut min_timestamp) = (0, 0, u64::MAX);
    let bytes = region.exclusive_bytes();
    for &pos in &found.positions {
        let head = &bytes[pos as usize..pos as usize + format::FRAME_HEADER_LEN];
        if let Some(h) = format::FrameHeader::decode(head.try_into().expect("header length")) {
            max_hint = max_hint.max(h.hint);
            max_timestamp = max_timestamp.max(h.timestamp);
            min_timestamp = min_timestamp.min(h.timestamp);
        }
    }
    found.scan.max_hint = max_hint;
    found.scan.max_timestamp = max_timestamp;
    found.min_timestamp = min_timestamp;
    region.set_recovered(keep as u32, end);
}

/// Opens, checks the header of, maps read-only and scans one segment file.
fn load(vfs: &dyn Vfs, dir: &Path, base: u64, options: &Options) -> Result<Found> {
    let path = fs::segment_path(dir, base);
    let file = vfs.open(&path, false)?;
    let len = file.len()?;
    let mut found = Found {
        base,
        sequence: 0,
        path,
        file,
        region: None,
        header: Some(HeaderError::TooShort),
        capacity: options.segment_size,
        scan: format::Scan {
            count: 0,
            end: HEADER_LEN,
            fault: None,
            max_hint: 0,
            max_timestamp: 0,
        },
        positions: Vec::new(),
        beyond_fault: (0, 0),
        checkpoint: 0,
        stored_checkpoint: 0,
        garbage_end: None,
        min_timestamp: u64::MAX,
        len,
        version: None,
    };
    if len > MAX_SEGMENT_SIZE {
        return refuse(found, HeaderError::Inconsistent, options);
    }
    if len < HEADER_LEN as u64 {
        return Ok(found);
    }
    let mut region = Region::new(found.file.map(false)?)?;
    let bytes = region.exclusive_bytes();
    let header = match SegmentHeader::decode(bytes) {
        Ok(header) => header,
        Err(reason @ (HeaderError::Blank | HeaderError::Torn)) => {
            // The frames may still be there. If one says records of this
            // segment had been made durable (a durable hint past its base),
            // its header had been too (a sync flushes it first): losing it
            // is damage, not a tear. `decide` weighs that evidence.
            if offsets_fit(base, len) {
                let scan = format::scan(bytes, base, format::MAX_PAYLOAD_LEN, |_, _| {});
                found.beyond_fault = (scan.max_hint, scan.count);
            }
            found.header = Some(reason);
            return Ok(found);
        }
        Err(reason) => return refuse(found, reason, options),
    };
    let sane = (HEADER_LEN as u64..=MAX_SEGMENT_SIZE).contains(&header.capacity)
        && header.base_offset == base
        && offsets_fit(base, header.capacity.max(len));
    if !sane {
        return refuse(found, HeaderError::Inconsistent, options);
    }
    found.checkpoint = format::decode_checkpoint(bytes, base);
    found.stored_checkpoint = found.checkpoint;
    let mut positions = Vec::new();
    let mut min_timestamp = u64::MAX;
    found.scan = format::scan(bytes, base, format::MAX_PAYLOAD_LEN, |pos, h| {
        positions.push(pos as u32);
        min_timestamp = min_timestamp.min(h.timestamp);
    });
    found.min_timestamp = min_timestamp;
    found.version = Some(format::segment_version(bytes));
    if found.scan.fault.is_some() {
        let next = base + found.scan.count;
        found.beyond_fault =
            format::after_fault(bytes, found.scan.end, next, format::MAX_PAYLOAD_LEN);
    }
    for (i, &pos) in positions.iter().enumerate() {
        region.recover_record(i, pos as usize);
    }
    region.set_recovered(found.scan.count as u32, found.scan.end);
    found.region = Some(region);
    found.header = None;
    found.capacity = header.capacity;
    found.sequence = header.sequence;
    found.positions = positions;
    Ok(found)
}

/// Whether every record a segment of `len` bytes (file or capacity, the
/// larger) could hold starting at `base` has an offset below `u64::MAX`: the
/// scan counts records up from `base`, and a file may be longer than the
/// capacity its header claims.
pub(crate) fn offsets_fit(base: u64, len: u64) -> bool {
    base.checked_add(len / format::MIN_FRAME_LEN as u64)
        .is_some()
}

/// A segment whose header is not murakami's: an error naming the file, or
/// (under `TruncateCorrupt`) a segment the log is cut before.
fn refuse(mut found: Found, reason: HeaderError, options: &Options) -> Result<Found> {
    if options.recovery == Recovery::Strict {
        return Err(Error::BadSegmentHeader {
            segment: found.path,
            reason,
        });
    }
    found.header = Some(reason);
    Ok(found)
}

/// End of the nonzero bytes after the last valid frame of a segment: what a
/// crash left past the tail (or `scan.end` when there is nothing). Computed
/// once per segment.
fn trailing_garbage(found: &mut Found) -> Result<usize> {
    let end = found.scan.end;
    if let Some(known) = found.garbage_end {
        return Ok(known);
    }
    let mut garbage = end;
    if let Some(region) = &mut found.region {
        let bytes = region.exclusive_bytes();
        let mut at = end as u64;
        // Only ranges that hold data can hold garbage: skip the holes (never
        // written, not in the page cache) instead of reading them as zeros.
        while let Some((start, stop)) = found.file.next_data(at)? {
            let (start, stop) = (start.max(at) as usize, (stop as usize).min(bytes.len()));
            if start >= stop {
                break;
            }
            if let Some(n) = last_nonzero(&bytes[start..stop]) {
                garbage = start + n;
            }
            at = stop as u64;
        }
    }
    found.garbage_end = Some(garbage);
    Ok(garbage)
}

/// The first point where the segments stop forming one valid sequence that
/// ends where the clean marker and the checkpoints say it must.
fn find_fault(found: &[Found], marker: Option<CleanMarker>, garbage_end: usize) -> Option<Fault> {
    let mut expected = found.first()?.base;
    for (i, seg) in found.iter().enumerate() {
        if seg.base != expected {
            return Some(gap_fault(found, i, expected, seg.base));
        }
        if let Some(reason) = seg.header {
            let kind = match reason {
                HeaderError::Blank | HeaderError::Torn | HeaderError::TooShort => {
                    Corruption::MissingRecords { expected }
                }
                other => Corruption::BadHeader(other),
            };
            return Some(Fault {
                segment: i,
                position: 0,
                offset: expected,
                kind,
            });
        }
        if let Some(fault) = seg.scan.fault {
            return Some(Fault {
                segment: i,
                position: seg.scan.end,
                offset: seg.base + seg.scan.count,
                kind: fault.into(),
            });
        }
        expected = seg.base + seg.scan.count;
    }
    let last = found.len() - 1;
    let end = found[last].scan.end;
    let at_end = |kind| {
        Some(Fault {
            segment: last,
            position: end,
            offset: expected,
            kind,
        })
    };
    let checkpoint = found.iter().map(|f| f.checkpoint).max().unwrap_or(0);
    match marker {
        Some(m) if m.next_offset != expected => at_end(Corruption::MissingRecords {
            expected: m.next_offset,
        }),
        _ if checkpoint > expected => at_end(Corruption::MissingRecords {
            expected: checkpoint,
        }),
        _ if garbage_end > end => at_end(Corruption::NotARecord),
        _ => None,
    }
}

/// A segment that does not start where the previous one ends: the cut falls
/// at the end of the previous one.
fn gap_fault(found: &[Found], i: usize, expected: u64, base: u64) -> Fault {
    let prev = i - 1;
    Fault {
        segment: prev,
        position: found[prev].scan.end,
        offset: expected,
        kind: Corruption::Discontinuity {
            expected,
            found: base,
        },
    }
}

/// Decides whether a fault is a torn tail (cut) or corruption (error, or cut
/// when the options allow). Returns how many segments to keep and the cut.
fn decide(
    found: &[Found],
    fault: Fault,
    clean: bool,
    mode: Recovery,
) -> Result<(usize, Option<Cut>)> {
    let seg = &found[fault.segment];
    let (evidence, dropped) = after_fault(found, &fault);
    let foreign = matches!(fault.kind, Corruption::BadHeader(_));
    let corrupt = clean || foreign || evidence > fault.offset;
    if corrupt && mode == Recovery::Strict {
        return Err(Error::Corrupt {
            segment: seg.path.clone(),
            position: fault.position as u64,
            offset: fault.offset,
            kind: fault.kind,
        });
    }
    let reason = if corrupt {
        CutReason::Corruption(fault.kind)
    } else {
        CutReason::TornTail
    };
    let cut = Cut {
        offset: fault.offset,
        segment: seg.path.clone(),
        position: fault.position as u64,
        reason,
        records_dropped: dropped,
        segments_removed: Vec::new(),
    };
    Ok((fault.segment + 1, Some(cut)))
}

/// The largest durable offset recorded anywhere (checkpoints, and hints of
/// valid records after the fault), and how many valid records follow the
/// fault.
fn after_fault(found: &[Found], fault: &Fault) -> (u64, u64) {
    let (mut evidence, mut dropped) = found[fault.segment].beyond_fault;
    evidence = found.iter().map(|f| f.checkpoint).fold(evidence, u64::max);
    for later in &found[fault.segment + 1..] {
        evidence = evidence.max(later.scan.max_hint);
        dropped += later.scan.count;
    }
    (evidence, dropped)
}

/// The first offset of a log whose segments are `found` (possibly none).
fn first_base(found: &[Found], marker: Option<CleanMarker>, restart: Option<RestartMarker>) -> u64 {
    match found.first() {
        Some(first) => first.base,
        None => empty_start(marker, restart),
    }
}

/// Where a log with no segment starts: where a restart put it, or where a
/// clean close left it, or 0.
pub(crate) fn empty_start(marker: Option<CleanMarker>, restart: Option<RestartMarker>) -> u64 {
    match (restart, marker) {
        (Some(r), _) => r.start,
        (None, Some(m)) => m.next_offset,
        (None, None) => 0,
    }
}

/// Turns the kept segments into the log's segments: the last one is reopened
/// writable, its garbage zeroed, and, when `repair`, everything made durable.
fn install(
    vfs: &dyn Vfs,
    dir: &Path,
    options: &Options,
    mut found: Vec<Found>,
    start: u64,
    repair: bool,
    sequence: &mut u64,
) -> Result<(Vec<Arc<Segment>>, Appender, u64, u64)> {
    // An empty active segment made with another segment size is replaced,
    // so that every record the options allow fits in it.
    let resize = found
        .last()
        .is_some_and(|f| f.scan.count == 0 && f.capacity != options.segment_size);
    if resize {
        let empty = found.pop().expect("checked");
        vfs.remove(&empty.path)?;
    }
    let Some(last) = found.pop() else {
        let (segment, appender) = create_first(vfs, dir, options, start, *sequence)?;
        *sequence += 1;
        return Ok((vec![segment], appender, start, 0));
    };
    let mut segments = Vec::with_capacity(found.len() + 1);
    for seg in found {
        if repair {
            // What the crashed process wrote may still be only in the page
            // cache; it is reported durable from now on, so make it so.
            seg.file.sync_data()?;
        }
        let region = seg.region.expect("only the last segment may be headless");
        let segment = Segment::new(seg.base, seg.sequence, seg.path, Arc::new(region));
        segment.seal(seg.scan.max_timestamp);
        segments.push(Arc::new(segment));
    }
    let max_timestamp = last.scan.max_timestamp;
    let (segment, appender) = reopen_active(vfs, last, repair)?;
    let next_offset = segment.base() + u64::from(appender.count());
    segments.push(segment);
    Ok((segments, appender, next_offset, max_timestamp))
}

/// Maps the active segment writable, restores its index and tail, zeroes the
/// garbage after its last valid record and makes that durable.
fn reopen_active(
    vfs: &dyn Vfs,
    mut found: Found,
    repair: bool,
) -> Result<(Arc<Segment>, Appender)> {
    let end = found.scan.end;
    let garbage_end = if repair {
        trailing_garbage(&mut found)?
    } else {
        end
    };
    let mut file: Box<dyn SegmentFile> = vfs.open(&found.path, true)?;
    // Always: a file restored sparse would otherwise SIGBUS on a full disk.
    file.reserve(found.capacity.max(file.len()?))?;
    let mut region = Region::new(file.map(true)?)?;
    drop(found.region);
    for (i, &pos) in found.positions.iter().enumerate() {
        region.recover_record(i, pos as usize);
    }
    let count = found.scan.count as u32;
    region.set_recovered(count, end);
    let region = Arc::new(region);
    let mut appender = Region::appender(&region).expect("fresh writable region");
    if repair {
        let next = found.base + u64::from(count);
        let checkpoints = (found.stored_checkpoint, next);
        make_durable(
            &region,
            &mut appender,
            found.base,
            checkpoints,
            (end, garbage_end),
        )?;
    }
    let segment = Arc::new(Segment::new(found.base, found.sequence, found.path, region));
    Ok((segment, appender))
}

/// Zeroes the garbage `[end, garbage_end)` of a repaired active segment
/// (based at `base`) and makes the segment durable, moving its checkpoint
/// from `stored` (what its header on disk says) to `next`.
fn make_durable(
    region: &Region,
    appender: &mut Appender,
    base: u64,
    (stored, next): (u64, u64),
    (end, garbage_end): (usize, usize),
) -> Result<()> {
    // Everything kept is durable once the data flush returns, and the
    // checkpoint says so then. On disk a checkpoint must never claim more
    // than the records there, at any moment: the header shares its page
    // (and its first sector) with records, and a crash may cut a flush
    // short between sectors. So a checkpoint left from before a cut is
    // lowered before any byte past the cut changes, and the new one is
    // stored only once the records it covers are on disk.
    let checkpoint = |at: u64| region.store_checkpoint(at, format::checkpoint_crc(base, at));
    if stored > next {
        checkpoint(next);
        region.flush(0, HEADER_LEN)?;
    }
    appender.zero(end, garbage_end);
    // The whole segment, not only up to the garbage this scan saw: a
    // recovery interrupted by a process crash may have zeroed garbage in
    // the page cache without flushing it, and the disk still holds what was
    // there (stale frames, which must never chain onto records appended
    // from here on). After a power loss only the pages zeroed here are
    // dirty; after a process crash, also the pages the dead producer had
    // faulted in ahead (zeros, up to the preparer's lead).
    region.flush(0, region.len())?;
    if stored < next {
        checkpoint(next);
        region.flush(0, HEADER_LEN)?;
    }
    Ok(())
}

/// Number of bytes up to and including the last nonzero one.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let words = bytes.len() / 8;
    let (head, tail) = bytes.split_at(words * 8);
    if let Some(i) = tail.iter().rposition(|&b| b != 0) {
        return Some(head.len() + i + 1);
    }
    let word = head
        .chunks_exact(8)
        .rposition(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")) != 0)?;
    let w = &head[word * 8..word * 8 + 8];
    let i = w.iter().rposition(|&b| b != 0).expect("nonzero word");
    Some(word * 8 + i + 1)
}

/// Creates the first segment of an empty log, starting at `base`.
fn create_first(
    vfs: &dyn Vfs,
    dir: &Path,
    options: &Options,
    base: u64,
    sequence: u64,
) -> Result<(Arc<Segment>, Appender)> {
    let tmp = dir.join(PREPARED_NAME);
    let map = crate::storage::create::prepare(vfs, &tmp, options.segment_size, options.prefault)?;
    let durable = crate::storage::create::Header::Durable;
    let (segment, appender) =
        crate::storage::create::install_segment(vfs, dir, &tmp, map, (base, sequence), durable)?;
    vfs.sync_dir(dir)?;
    Ok((segment, appender))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn last_nonzero_finds_the_end_of_garbage() {
        assert_eq!(last_nonzero(&[0u8; 100]), None);
        let mut bytes = vec![0u8; 100];
        bytes[3] = 1;
        assert_eq!(last_nonzero(&bytes), Some(4));
        bytes[97] = 9;
        assert_eq!(last_nonzero(&bytes), Some(98));
        bytes[99] = 9;
        assert_eq!(last_nonzero(&bytes), Some(100));
    }
}
