//! Entry points for the fuzz targets in `fuzz/` (not part of the API: no
//! stability promise, hidden from the docs).
//!
//! [`scan_segment`] runs the library's own segment scanner (header decode,
//! checkpoint, frame scan, the look past a bad frame) over arbitrary bytes
//! and checks what it says against the bytes; [`open_dir`] writes an
//! arbitrary set of files as a log directory and opens it as a user would:
//! read-only first, as a reader in another process does
//! ([`Reader::open`]), then as the writer. Both panic only when the library
//! breaks a promise.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{Corruption, Error};
use crate::format::{
    self, CLEAN_LEN, CONTROL_LEN, CONTROL_MAGIC, CUT_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, Frame,
    HEADER_LEN, HeaderError, MAX_PAYLOAD_LEN, RESTART_LEN, SegmentHeader,
};
use crate::log::Log;
use crate::options::{Options, Recovery};
use crate::read::reader::Reader;
use crate::record::Record;

/// What [`scan_segment`] found in a segment image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanReport {
    /// Why the header was refused, if it was.
    pub header: Option<HeaderError>,
    /// The base offset the frames were read against (the header's, or the
    /// bytes where it would be when the header is refused).
    pub base: u64,
    /// Valid records, read with the largest payload the format allows.
    pub records: u64,
    /// Position just past the last valid frame.
    pub end: usize,
    /// What stopped the scan, when it was not a clean end.
    pub fault: Option<Corruption>,
    /// Largest durable hint and number of valid records chained after the
    /// bad frame (zeros without one).
    pub after_fault: (u64, u64),
    /// The checkpoint in the header (0 when missing or damaged).
    pub checkpoint: u64,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// Scans `bytes` as a segment file through the library's scanner, twice
/// (with the format's payload limit and with a small one), and checks that
/// every record it reports is a frame that fits, in order, at the offset it
/// should hold, and that the fault it reports is the one at its end.
///
/// # Panics
///
/// When the scanner contradicts itself or the bytes: that is a bug.
pub fn scan_segment(bytes: &[u8]) -> ScanReport {
    let header = SegmentHeader::decode(bytes);
    let base = match header {
        Ok(h) => h.base_offset,
        Err(_) => u64_at(bytes, 16),
    };
    // The same rule `Log::open` applies before it scans a segment.
    let base = if crate::recovery::offsets_fit(base, bytes.len() as u64) {
        base
    } else {
        0
    };
    let mut report = None;
    for max_payload in [MAX_PAYLOAD_LEN, 256] {
        let scanned = check_scan(bytes, base, max_payload);
        report.get_or_insert(scanned);
    }
    let (records, end, fault, after_fault) = report.expect("scanned");
    ScanReport {
        header: header.err(),
        base,
        records,
        end,
        fault: fault.map(Corruption::from),
        after_fault,
        checkpoint: format::decode_checkpoint(bytes, base),
    }
}

type Scanned = (u64, usize, Option<format::FrameFault>, (u64, u64));

fn check_scan(bytes: &[u8], base: u64, max_payload: u32) -> Scanned {
    let mut seen = Vec::new();
    let scan = format::scan(bytes, base, max_payload, |pos, header| {
        seen.push((pos, *header))
    });
    assert_eq!(seen.len() as u64, scan.count, "count and callbacks agree");
    let mut at = HEADER_LEN;
    let mut max_hint = 0;
    for (i, &(pos, header)) in seen.iter().enumerate() {
        assert_eq!(pos, at, "frames follow each other");
        assert_eq!(pos % format::FRAME_ALIGN, 0, "frames are aligned");
        assert!(header.len <= max_payload, "payload within the limit");
        assert!(pos + header.frame_len() <= bytes.len(), "frame fits");
        let offset = base + i as u64;
        assert_eq!(header.offset, offset, "record {i} holds its offset");
        let frame = &bytes[pos..pos + FRAME_HEADER_LEN + header.len as usize];
        assert_eq!(format::frame_crc(frame), header.crc, "CRC matches");
        max_hint = max_hint.max(header.hint);
        at += header.frame_len();
    }
    assert_eq!(scan.end, at, "the scan ends after its last record");
    assert_eq!(scan.max_hint, max_hint);
    let next = base + scan.count;
    let stop = format::check_frame(bytes, scan.end, next, max_payload);
    let after = match scan.fault {
        None => {
            assert_eq!(stop, Frame::End, "a clean stop is the end of data");
            (0, 0)
        }
        Some(fault) => {
            assert_eq!(stop, Frame::Fault(fault), "the fault is the one at the end");
            let (hint, chained) = format::after_fault(bytes, scan.end, next, max_payload);
            let room = bytes.len().saturating_sub(scan.end) / format::MIN_FRAME_LEN;
            assert!(
                chained as usize <= room,
                "chained records fit after the fault"
            );
            (hint, chained)
        }
    };
    (scan.count, scan.end, scan.fault, after)
}

/// What [`open_dir`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Opens that succeeded, out of two (strict, then truncating).
    pub opened: u32,
    /// Records read back, over both opens.
    pub records: u64,
    /// Whether [`Reader::open`] opened the files (before any writer did).
    pub read_only_opened: bool,
    /// Records that reader returned.
    pub read_only_records: u64,
}

/// A file of a directory image built by [`image`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFile {
    /// File name.
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Largest segment capacity an image may claim: opening reserves that much
/// disk, which is not what a fuzzer should spend its time on.
const MAX_IMAGE_CAPACITY: u64 = 1 << 20;

/// Turns arbitrary bytes into up to six files of a log directory.
///
/// Each file is a selector byte, a flags byte, a two-byte length, then that
/// many bytes (fewer at the end of the input). The selector picks a name: a
/// segment or a truncation marker (`.cut`) at one of a few base offsets,
/// the clean-close marker, the prepared segment, a stray `.tmp`, the
/// control file (`murakami.tail`: selector 7 with bit 3 set) or the restart
/// marker (selector 7 with bit 3 clear and bit 4 set). The
/// flags let the input skip what a fuzzer cannot guess: bit 0 writes a
/// valid segment header in front of a segment's bytes, bit 1 recomputes the
/// CRC of every frame whose length fits, bit 2 seals a marker with its CRC,
/// bit 3 gives a control file its magic and version and pads it to a page.
pub fn image(data: &[u8]) -> Vec<ImageFile> {
    const BASES: [u64; 8] = [0, 1, 2, 5, 8, 10, 13, 1000];
    let mut files: Vec<ImageFile> = Vec::new();
    let mut rest = data;
    while files.len() < 6 && rest.len() >= 4 {
        let (select, flags) = (rest[0], rest[1]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let take = len.min(rest.len() - 4);
        let mut bytes = rest[4..4 + take].to_vec();
        rest = &rest[4 + take..];
        let base = BASES[usize::from(select >> 3) % BASES.len()];
        let name = match select & 7 {
            0..=3 => {
                if flags & 1 != 0 {
                    let header = SegmentHeader {
                        base_offset: base,
                        capacity: (HEADER_LEN + bytes.len()).max(4096) as u64,
                        sequence: u64::from(select & 3),
                    };
                    let mut full = header.encode().to_vec();
                    full.extend_from_slice(&bytes);
                    bytes = full;
                }
                if flags & 2 != 0 {
                    seal_frames(&mut bytes);
                }
                format!("{base:020}.seg")
            }
            4 => {
                if flags & 4 != 0 && bytes.len() >= CLEAN_LEN {
                    seal(&mut bytes[..CLEAN_LEN]);
                }
                crate::storage::fs::CLEAN_NAME.to_string()
            }
            5 => {
                if flags & 4 != 0 && bytes.len() >= CUT_LEN {
                    seal(&mut bytes[..CUT_LEN]);
                }
                format!("{base:020}.cut")
            }
            6 => crate::storage::fs::PREPARED_NAME.to_string(),
            _ if (select >> 3) & 1 == 1 => {
                if flags & 8 != 0 {
                    if bytes.len() < CONTROL_LEN {
                        bytes.resize(CONTROL_LEN, 0);
                    }
                    bytes[0..8].copy_from_slice(&CONTROL_MAGIC.to_le_bytes());
                    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
                }
                crate::storage::control::CONTROL_NAME.to_string()
            }
            _ if (select >> 4) & 1 == 1 => {
                if flags & 4 != 0 && bytes.len() >= RESTART_LEN {
                    bytes[0..8].copy_from_slice(&format::RESTART_MAGIC);
                    seal(&mut bytes[..RESTART_LEN]);
                }
                crate::storage::fs::RESTART_NAME.to_string()
            }
            _ => format!("{base:020}.tmp"),
        };
        match files.iter_mut().find(|f| f.name == name) {
            Some(file) => file.bytes = bytes,
            None => files.push(ImageFile { name, bytes }),
        }
    }
    files
}

/// Stores in a marker's last four bytes the CRC of the rest.
fn seal(marker: &mut [u8]) {
    let n = marker.len() - 4;
    let crc = crc32fast::hash(&marker[..n]);
    marker[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes the CRC of each frame that fits, from the first one on.
fn seal_frames(bytes: &mut [u8]) {
    let mut pos = HEADER_LEN;
    while let Some(head) = bytes.get(pos..pos + FRAME_HEADER_LEN) {
        let word = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let len = (word & MAX_PAYLOAD_LEN) as usize;
        let end = pos + FRAME_HEADER_LEN + len;
        if word & !MAX_PAYLOAD_LEN == 0 || end > bytes.len() {
            return;
        }
        let crc = format::frame_crc(&bytes[pos..end]);
        bytes[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
        pos += format::frame_len(len);
    }
}

/// The bytes of every file in `dir`.
fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("fuzz directory") {
        let entry = entry.expect("fuzz directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        files.insert(name, std::fs::read(entry.path()).expect("fuzz file"));
    }
    files
}

/// Whether a reader's open or read may fail with `e`: a typed error.
fn typed(e: &Error) -> bool {
    matches!(
        e,
        Error::Io(_)
            | Error::Corrupt { .. }
            | Error::BadSegmentHeader { .. }
            | Error::BadControlFile { .. }
            | Error::OffsetOutOfRange { .. }
            | Error::Purged { .. }
    )
}

/// Whether `e` refuses a segment file whose length is not the capacity its
/// header claims: recovery reads such a file, and restores the length of
/// the active segment only; a reader of the files refuses it
/// (`HeaderError::Inconsistent`).
fn refused_length(e: &Error) -> bool {
    match e {
        Error::BadSegmentHeader {
            segment,
            reason: HeaderError::Inconsistent,
        } => std::fs::read(segment).is_ok_and(|bytes| {
            SegmentHeader::decode(&bytes).is_ok_and(|h| h.capacity != bytes.len() as u64)
        }),
        _ => false,
    }
}

/// Opens `dir` read-only with [`Reader::open`], as a reader in another
/// process does, and reads everything it offers: through a cursor from its
/// first record, by offset (the same records), past its end, by time, with
/// a wait that times out, and through a durable-only reader. Errors must be
/// typed, no file may change. Returns the records read (`None`: the open
/// was refused); the reader is gone when this returns, so a writer may then
/// change the files under no map of it.
fn read_only(dir: &Path) -> Option<Vec<Record>> {
    let before = dir_bytes(dir);
    let records = match Reader::open(dir) {
        Ok(reader) => Some(read_everything(&reader)),
        Err(e) => {
            assert!(
                typed(&e),
                "Reader::open failed with an untyped error: {e:?}"
            );
            None
        }
    };
    assert!(
        before == dir_bytes(dir),
        "a reader of the files changed a file"
    );
    records
}

fn read_everything(reader: &Reader) -> Vec<Record> {
    let (first, next) = (reader.first_offset(), reader.next_offset());
    assert_eq!(
        reader.end_offset(),
        next,
        "a reader's end is its next offset"
    );
    assert!(reader.durable_offset() <= next, "durable past the end");
    let mut records = Vec::new();
    // The first offset comes from the control file, which may say anything
    // (the records do not: they come from the segment files, checked).
    if first <= next {
        let mut cursor = reader.cursor(first).expect("a cursor at the first record");
        for record in cursor.by_ref() {
            let at = first + records.len() as u64;
            let record = match record {
                Ok(record) => record,
                // Damage at the end of the log (a torn tail, as recovery
                // calls it): the view stops there and says why.
                Err(e @ crate::Error::Corrupt { offset, .. }) if offset == next => {
                    assert_eq!(at, next, "the cursor stops only at the damage: {e}");
                    break;
                }
                Err(e) => panic!("a record below the end reads: {e:?}"),
            };
            assert_eq!(record.offset, at, "in order");
            records.push(record);
        }
        assert_eq!(
            first + records.len() as u64,
            next,
            "the cursor ends at the end"
        );
    }
    for record in &records {
        let read = reader.read_record(record.offset).expect("reads by offset");
        assert_eq!(&read, record, "by offset and by cursor alike");
    }
    for offset in [next, next.saturating_add(1), u64::MAX] {
        match reader.read(offset) {
            Ok(_) => panic!("a record at {offset}, past the end {next}"),
            Err(e) => assert!(typed(&e), "read past the end: {e:?}"),
        }
    }
    for t in [0, u64::MAX / 2, u64::MAX] {
        assert!(reader.offset_for_timestamp(t) <= next);
    }
    match reader.wait_for(next, Duration::ZERO) {
        Ok(ready) => assert!(!ready, "nothing is written while it waits"),
        // At damage at the end, the wait says why nothing will come.
        Err(crate::Error::Corrupt { offset, .. }) => assert_eq!(offset, next, "a wait"),
        Err(e) => panic!("a wait: {e:?}"),
    }
    let durable = reader.clone().durable_only();
    let end = durable.end_offset();
    assert!(end <= next, "a durable reader sees less");
    if first < end {
        let mut cursor = durable.cursor(first).expect("a durable cursor");
        for record in &records[..(end - first) as usize] {
            let read = cursor.next().expect("a durable record").expect("reads");
            assert_eq!(&read, record, "the durable reader reads the same record");
        }
    }
    records
}

/// Inspects `dir` (`Log::inspect`), which must change no file. `None` when
/// it fails (an I/O error: the open will say the same).
fn inspect_unchanged(dir: &Path) -> Option<crate::Inspection> {
    let files = |dir: &Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .expect("fuzz directory")
            .map(|e| {
                let path = e.expect("entry").path();
                let bytes = std::fs::read(&path).unwrap_or_default();
                (path, bytes)
            })
            .collect();
        all.sort();
        all
    };
    let before = files(dir);
    let inspection = Log::inspect(dir).ok();
    assert!(files(dir) == before, "inspect changed the files");
    inspection
}

/// Checks that an inspection predicted what an open in `mode` did: a
/// strict open refuses exactly what it calls corruption, and cuts what it
/// calls a torn tail; an open that cuts corruption cuts where it said.
fn check_prediction(
    inspection: Option<&crate::Inspection>,
    mode: Recovery,
    opened: &crate::Result<(crate::Writer, Reader)>,
) {
    let Some(seen) = inspection else {
        return;
    };
    let problem = seen.problem.as_ref();
    match opened {
        Ok((writer, reader)) => {
            let report = writer.recovery_report();
            if mode == Recovery::Strict {
                assert!(
                    problem.is_none_or(|p| p.torn_tail),
                    "a strict open accepted what inspect calls corruption: {problem:?}"
                );
            }
            assert_eq!(
                problem.and_then(|p| p.cut.as_ref()),
                report.cut.as_ref(),
                "inspect's cut and the open's"
            );
            assert_eq!(
                (seen.first_offset, seen.next_offset),
                (reader.first_offset(), reader.next_offset()),
                "inspect's offsets and the open's"
            );
        }
        Err(Error::Corrupt { .. } | Error::BadSegmentHeader { .. }) => {
            assert_eq!(mode, Recovery::Strict, "only a strict open refuses damage");
            assert!(
                problem.is_some_and(|p| !p.torn_tail),
                "a strict open refused what inspect does not call corruption: {problem:?}"
            );
        }
        Err(_) => {}
    }
}

/// Writes `files` into `dir` (emptied first) and opens it read-only with
/// [`Reader::open`] (see [`read_only`]), then as the writer, strictly and
/// (on a fresh copy) truncating. Every open that succeeds must read back
/// each record from the first to the last, by offset and through a cursor,
/// identically, and the same record as the reader of the files at every
/// offset both have; accept an append; close; and reopen strictly with the
/// same records. Errors are fine; panics are not.
///
/// Images whose segment headers claim more than 1 MiB are skipped.
///
/// # Panics
///
/// When the library breaks one of those promises.
pub fn open_dir(dir: &Path, files: &[ImageFile]) -> OpenReport {
    let mut report = OpenReport::default();
    let oversized = files.iter().any(|f| {
        f.name.ends_with(".seg")
            && SegmentHeader::decode(&f.bytes).is_ok_and(|h| h.capacity > MAX_IMAGE_CAPACITY)
    });
    if oversized {
        return report;
    }
    let mut seen: Option<Vec<Record>> = None;
    for mode in [Recovery::Strict, Recovery::TruncateCorrupt] {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("fuzz directory");
        for file in files {
            std::fs::write(dir.join(&file.name), &file.bytes).expect("fuzz file");
        }
        if mode == Recovery::Strict {
            seen = read_only(dir);
            report.read_only_opened = seen.is_some();
            report.read_only_records = seen.as_ref().map_or(0, |r| r.len() as u64);
        }
        let options = Options::default()
            .segment_size(4096)
            .max_record_size(1024)
            .recovery(mode);
        let inspection = inspect_unchanged(dir);
        let opened = Log::open(dir, options);
        check_prediction(inspection.as_ref(), mode, &opened);
        let Ok((mut writer, reader)) = opened else {
            continue;
        };
        report.opened += 1;
        let (first, next) = (reader.first_offset(), reader.next_offset());
        assert!(first <= next);
        let mut cursor = reader.cursor(first).expect("a cursor at the first record");
        for offset in first..next {
            let read = reader.read_record(offset).expect("every record reads");
            assert_eq!(read.offset, offset);
            let walked = cursor
                .next()
                .expect("the cursor reaches it")
                .expect("reads");
            assert_eq!(walked, read, "by offset and by cursor alike");
            report.records += 1;
        }
        assert!(cursor.next().is_none(), "the cursor stops at the end");
        // Where the reader of the files and recovery both have a record,
        // it is the same one (the reader never shows a record recovery
        // replaces, from a discarded history or a damaged file).
        for record in seen.iter().flatten() {
            if (first..next).contains(&record.offset) {
                let kept = reader.read_record(record.offset).expect("kept");
                assert_eq!(&kept, record, "the reader of the files and recovery differ");
            }
        }
        // A reader of the files follows the writer of the recovered log:
        // it sees exactly the writer's records.
        match Reader::open(dir) {
            Ok(files) => {
                let seen = (files.first_offset(), files.next_offset());
                assert_eq!(seen, (first, next), "a reader of the recovered files");
                for offset in first..next {
                    let read = files.read_record(offset).expect("a recovered record");
                    assert_eq!(read, reader.read_record(offset).expect("kept"));
                }
            }
            Err(e) if refused_length(&e) => {}
            Err(e) => panic!("a reader of the recovered files: {e:?}"),
        }
        if let Some(cut) = &writer.recovery_report().cut {
            assert_eq!(cut.offset, next, "the cut is where the log ends");
        }
        let appended = writer
            .append(b"after recovery")
            .expect("appends after a repair");
        assert_eq!(appended, next);
        writer.close().expect("closes");
        let strict = Options::default().segment_size(4096).max_record_size(1024);
        let (writer, reader) = Log::open(dir, strict).expect("a recovered log reopens strictly");
        assert_eq!(
            (reader.first_offset(), reader.next_offset()),
            (first, next + 1)
        );
        assert_eq!(
            reader.read(next).expect("the new record"),
            b"after recovery"
        );
        drop(writer);
    }
    report
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn seeds() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/open_dir")
    }

    fn seed(name: &str) -> Vec<u8> {
        std::fs::read(seeds().join(name)).expect("a checked-in seed")
    }

    fn run(data: &[u8]) -> OpenReport {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        open_dir(&tmp.path().join("log"), &image(data))
    }

    /// What the fuzzer starts from passes, without cargo-fuzz.
    #[test]
    fn every_open_dir_seed_passes() {
        let mut n = 0;
        for entry in std::fs::read_dir(seeds()).expect("the seeds") {
            let data = std::fs::read(entry.expect("a seed").path()).expect("a seed");
            run(&data);
            n += 1;
        }
        assert!(n >= 8, "{n} seeds");
    }

    /// A whole log with its control file: the reader of the files reads
    /// every record, as both recoveries keep them.
    #[test]
    fn a_reader_of_a_seed_reads_what_recovery_keeps() {
        for (name, records) in [
            ("clean-full-control", 16),
            ("crash-synced-7-full-control", 16),
            ("truncated-full", 11),
        ] {
            let report = run(&seed(name));
            assert_eq!(report.opened, 2, "{name}");
            assert!(report.read_only_opened, "{name}");
            assert_eq!(report.read_only_records, records, "{name}");
            assert_eq!(report.records, 2 * records, "{name}");
        }
    }

    /// The same log with its control file (the last file of the image)
    /// damaged: the reader refuses it with a typed error, the writer opens
    /// the log in both modes and replaces it.
    #[test]
    fn a_damaged_control_file_in_an_image_is_refused_by_the_reader_only() {
        let data = seed("clean-full-control");
        let control_at = data.len() - 4 - CONTROL_LEN;
        assert_eq!(data[control_at], 7 | 1 << 3, "the control file comes last");
        let body = control_at + 4;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Cut short (the length field says how much follows).
        let mut short = data[..body + 100].to_vec();
        short[control_at + 2..body].copy_from_slice(&100u16.to_le_bytes());
        cases.push(short);
        // Another magic, another version.
        let mut magic = data.clone();
        magic[body] ^= 1;
        cases.push(magic);
        let mut version = data.clone();
        version[body + 8] = 9;
        cases.push(version);
        // A page of zeros that flag 3 turns into a sound, empty control file.
        let mut sealed = data[..body].to_vec();
        sealed[control_at + 1] = 8;
        sealed[control_at + 2..body].copy_from_slice(&0u16.to_le_bytes());
        for (i, case) in cases.iter().enumerate() {
            let report = run(case);
            assert_eq!(report.opened, 2, "case {i}");
            assert!(!report.read_only_opened, "case {i}: a reader took it");
        }
        let report = run(&sealed);
        assert_eq!(report.opened, 2);
        assert!(
            report.read_only_opened,
            "an empty control file is a sound one"
        );
        assert_eq!(report.read_only_records, 16);
    }
}
