//! Hostile files: bit flips, zeroed sectors, truncated files, extra and
//! missing segment files, forged headers and frames.
//!
//! Real logs (64 KiB segments, several of them) are written by the library
//! and captured either after a clean close or while the writer is still
//! open (a crash: no clean-close marker). Each case damages a copy of one of
//! them, opens it with `Recovery::Strict` and with
//! `Recovery::TruncateCorrupt`, and checks:
//!
//! - opening never panics (and never touches a byte past a file's end: a
//!   SIGBUS would kill the test binary);
//! - whatever opens returns, by offset and through a cursor, only records
//!   byte-exact equal to what was written at that offset;
//! - damage at or before the durable point (or anywhere in a cleanly closed
//!   log) makes `Strict` fail with a typed error naming the file and the
//!   position, and makes `TruncateCorrupt` cut there and report the cut;
//! - damage past the durable point is repaired as a torn tail;
//! - a log that opened reopens, after a close, with the same records.
//!
//! Each damaged copy is also opened read-only with `Reader::open` (a reader
//! in another process) and read through, by offset, by cursor and at random
//! offsets: it never panics, never changes a file, and returns only records
//! byte-exact what was written at their offset, never more than recovery
//! keeps (`check_reader` lists what it must do for each kind of damage, and
//! where it is known to part from recovery; each test counts those cases).
//! After recovery, a reader of the files sees exactly what the writer
//! holds, while the writer is open and after it closed. A class damages the
//! control file (`murakami.tail`): short, foreign, a future version,
//! longer, scrambled, removed; a reader refuses what is not a control file
//! with `Error::BadControlFile`, and the writer replaces it.
//!
//! For each class the expected outcome is computed from the damage (which
//! record it hits first) and the template (clean or crashed, durable point).
//! A few cases destroy the only evidence that records were durable (the
//! last segment's header, or the whole last segment, after a crash); they
//! are counted apart as "evidence lost" and must still never return a
//! corrupt record.
//!
//! Each test prints its counts (`cargo test --test hostile -- --nocapture`).
//! `MURAKAMI_SOAK=k` multiplies the number of seeds by `k`.
#![cfg(not(feature = "loom"))]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Rng, dir_state, frames, payload, soak};
use murakami::{
    ControlError, Corruption, Cut, CutReason, Error, HeaderError, Inspection, Log, Options, Reader,
    Recovery, RecoveryReport,
};

const SEG: u64 = 64 * 1024;
const HEADER: usize = 64;
const FRAME_HEADER: usize = 32;

fn options(mode: Recovery) -> Options {
    Options::default()
        .segment_size(SEG)
        .max_record_size(4096)
        .recovery(mode)
}

/// A segment of a template: where its file is, its records and frames.
struct Seg {
    name: String,
    base: u64,
    /// `(position, payload length)` of each frame.
    frames: Vec<(usize, usize)>,
    /// Position just past the last frame.
    end: usize,
}

impl Seg {
    fn end_offset(&self) -> u64 {
        self.base + self.frames.len() as u64
    }
}

/// A log as the library wrote it, held in memory.
struct Template {
    label: &'static str,
    clean: bool,
    /// Records written.
    n: u64,
    /// Durable offset at the moment of the (simulated) crash.
    durable: u64,
    files: BTreeMap<String, Vec<u8>>,
    segs: Vec<Seg>,
}

impl Template {
    fn build(label: &'static str, n: u64, sync_at: Option<u64>, clean: bool) -> Template {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let (mut writer, _reader) = Log::open(&dir, options(Recovery::Strict)).unwrap();
        let mut durable = 0;
        for i in 0..n {
            writer.append(&payload(i)).unwrap();
            if sync_at == Some(i + 1) {
                durable = writer.sync().unwrap();
                assert_eq!(durable, i + 1);
            }
        }
        let files = if clean {
            writer.close().unwrap();
            durable = n;
            snapshot(&dir)
        } else {
            // Taken while the writer is open: what a process crash leaves.
            let files = snapshot(&dir);
            drop(writer);
            files
        };
        let segs: Vec<Seg> = files
            .iter()
            .filter(|(name, _)| name.ends_with(".seg"))
            .map(|(name, bytes)| {
                let frames = frames(bytes);
                let end = frames
                    .last()
                    .map_or(HEADER, |&(pos, len)| pos + common::frame_len(len));
                Seg {
                    name: name.clone(),
                    base: name[..20].parse().unwrap(),
                    frames,
                    end,
                }
            })
            .collect();
        assert!(segs.len() >= 3, "{label}: {} segments", segs.len());
        assert_eq!(segs.last().unwrap().end_offset(), n, "{label}");
        assert_eq!(files.contains_key("murakami.clean"), clean, "{label}");
        Template {
            label,
            clean,
            n,
            durable,
            files,
            segs,
        }
    }

    fn last(&self) -> usize {
        self.segs.len() - 1
    }

    fn bytes(&self, s: usize) -> &[u8] {
        &self.files[&self.segs[s].name]
    }

    /// The highest creation sequence number among the segments.
    fn max_sequence(&self) -> u64 {
        (0..self.segs.len())
            .map(|s| u64::from_le_bytes(self.bytes(s)[32..40].try_into().unwrap()))
            .max()
            .unwrap()
    }

    /// Whether the last segment holds the checkpoint of the last sync, so
    /// that losing its header (or the file) loses the only evidence that
    /// its records were durable.
    fn last_holds_durable(&self) -> bool {
        !self.clean && self.segs[self.last()].base < self.durable
    }
}

/// The files of a log directory that make up its state (not the lock, nor
/// the segment being prepared in the background).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name == "murakami.lock" || name == "murakami-next.tmp" {
            continue;
        }
        files.insert(name, fs::read(entry.path()).unwrap());
    }
    files
}

fn templates() -> Vec<Template> {
    vec![
        // Durable point inside the active segment, records after it.
        Template::build("crash-d-in-active", 1400, Some(1200), false),
        // Everything synced, then the crash.
        Template::build("crash-all-durable", 1100, Some(1100), false),
        Template::build("clean", 1200, None, true),
        // Durable point in a sealed segment.
        Template::build("crash-d-in-sealed", 1000, Some(500), false),
        // Nothing ever synced: every fault is a torn tail.
        Template::build("crash-none-durable", 800, None, false),
    ]
}

/// What a case should do.
#[derive(Debug)]
enum Expect {
    /// Nothing the log holds was hit: opens in both modes with every record
    /// from `first` on and no cut.
    Intact { first: u64 },
    /// The log stops being valid at record `f`, at byte `pos` of file `seg`
    /// (a bad frame, the end of a segment followed by a gap, a blank header:
    /// `pos` 0). Corruption when the log was clean or `f` was durable
    /// (unless the evidence of that is gone, or `forced`).
    Damage {
        f: u64,
        seg: String,
        pos: u64,
        evidence_lost: bool,
        forced: bool,
    },
    /// A segment file whose header is refused: `Strict` names it;
    /// `TruncateCorrupt` cuts the log at `next_tc`.
    Refused {
        name: String,
        reason: HeaderError,
        next_tc: u64,
    },
    /// Several damages at once: only the invariants that always hold.
    Any,
}

struct Case {
    class: &'static str,
    desc: String,
    files: BTreeMap<String, Vec<u8>>,
    /// Records that validly exist (the template's, plus forged valid ones
    /// that continue it).
    n_valid: u64,
    /// Valid frames planted that are no part of the log (they may be
    /// counted among the records a cut drops).
    forged: u64,
    expect: Expect,
    /// What was done to the control file.
    control: Control,
}

/// What a case did to the control file (`murakami.tail`), which recovery
/// never reads but `Reader::open` does.
#[derive(Clone, Copy, Debug)]
enum Control {
    /// Left as the writer made it.
    Sound,
    /// Damaged so that a reader must refuse it with this reason.
    Refused(ControlError),
    /// Removed, or longer than a page but otherwise sound: a reader reads
    /// the segment files as it does with a sound one.
    Readable,
    /// Magic and version kept, the other words scrambled: a reader cannot
    /// tell; it must still never panic nor return a record not written.
    Scrambled,
}

/// What an open returned, after its records were checked.
struct Opened {
    first: u64,
    next: u64,
    report: RecoveryReport,
}

#[derive(Default)]
struct Tally {
    cases: u64,
    strict_refused: u64,
    torn_repaired: u64,
    intact: u64,
    truncate_corrupt_cuts: u64,
    evidence_lost: u64,
    records_checked: u64,
    /// `Reader::open` over the damaged copy: opened, refused with a typed
    /// error.
    reader_opened: u64,
    reader_refused: u64,
    /// Corruption the reader stopped before without an error (a frame whose
    /// commit word is zero reads as the end of what was committed).
    reader_silent_stops: u64,
    /// Torn tails recovery repairs that the reader refuses with a typed
    /// error (a reader does not repair, and a damaged frame or file past
    /// the last record is all it sees).
    reader_refused_torn: u64,
    /// Segment files whose length is not their capacity, which recovery
    /// reads and a reader refuses with a typed error.
    reader_refused_length: u64,
    /// Recovered logs (after a close) that a reader still refuses: a sealed
    /// segment file recovery keeps at a length other than its capacity.
    recovered_refused_length: u64,
    /// Logs a reader read further than recovery keeps them: garbage past
    /// the last frame of a sealed segment with a zero commit word.
    reader_past_slack: u64,
    /// Records a reader of the files returned (each checked byte for byte).
    reader_records: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.cases += o.cases;
        self.strict_refused += o.strict_refused;
        self.torn_repaired += o.torn_repaired;
        self.intact += o.intact;
        self.truncate_corrupt_cuts += o.truncate_corrupt_cuts;
        self.evidence_lost += o.evidence_lost;
        self.records_checked += o.records_checked;
        self.reader_opened += o.reader_opened;
        self.reader_refused += o.reader_refused;
        self.reader_silent_stops += o.reader_silent_stops;
        self.reader_refused_torn += o.reader_refused_torn;
        self.reader_refused_length += o.reader_refused_length;
        self.reader_past_slack += o.reader_past_slack;
        self.recovered_refused_length += o.recovered_refused_length;
        self.reader_records += o.reader_records;
    }
}

fn write_dir(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The bytes of every file in `dir`.
fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        files.insert(name, fs::read(entry.path()).unwrap());
    }
    files
}

/// A seed for the random reads of a case, from its description.
fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What a reader of the files saw: the records `first..next`, all checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    first: u64,
    next: u64,
}

/// Whether `e` is one of the errors a read may give (a typed one).
fn typed_read_error(e: &Error) -> bool {
    matches!(
        e,
        Error::OffsetOutOfRange { .. }
            | Error::Purged { .. }
            | Error::Corrupt { .. }
            | Error::BadSegmentHeader { .. }
    )
}

/// Opens `dir` read-only with `Reader::open`, as a reader in another
/// process does, and reads everything it offers: every record from the
/// first to the end by offset and through a cursor, a cursor from a random
/// offset, random reads (in range, past the end, far out), lookups by
/// time, a wait that times out. Every record returned must be byte-exact
/// what was written at its offset, every error typed, and no file may
/// change. `Err` is the typed error the open gave.
///
/// `scrambled`: the control file's words are anything (magic and version
/// kept), so the first offset a reader reports, which it takes from there,
/// may be anything too, even past its end.
fn read_only(dir: &Path, n_valid: u64, seed: u64, scrambled: bool) -> Result<Seen, Error> {
    let before = dir_bytes(dir);
    let seen = read_only_inner(dir, n_valid, seed, scrambled);
    assert!(
        before == dir_bytes(dir),
        "a reader of the files changed a file"
    );
    seen
}

fn read_only_inner(dir: &Path, n_valid: u64, seed: u64, scrambled: bool) -> Result<Seen, Error> {
    let reader = match Reader::open(dir) {
        Ok(reader) => reader,
        Err(e) => {
            match &e {
                Error::Corrupt { segment, .. } | Error::BadSegmentHeader { segment, .. } => {
                    assert_eq!(segment.parent(), Some(dir), "{e}");
                    assert!(segment.exists(), "{e} names a file not there");
                }
                Error::BadControlFile { path, .. } => {
                    assert_eq!(path, &dir.join("murakami.tail"), "{e}");
                }
                Error::Io(_) => {}
                other => panic!("Reader::open failed with an untyped error: {other:?}"),
            }
            return Err(e);
        }
    };
    let mut rng = Rng::new(seed);
    let mut first = reader.first_offset();
    let next = reader.next_offset();
    if scrambled {
        first = first.min(next);
    }
    assert!(first <= next, "reader: first {first} > next {next}");
    assert!(
        next <= n_valid,
        "reader: next {next} beyond the {n_valid} valid records"
    );
    assert_eq!(reader.end_offset(), next);
    assert!(reader.durable_offset() <= next);
    for offset in first..next {
        let record = reader
            .read_record(offset)
            .unwrap_or_else(|e| panic!("reader: record {offset} below the end: {e}"));
        assert_eq!(record.offset, offset);
        assert_eq!(
            record.payload,
            payload(offset),
            "reader: record {offset} is not what was written"
        );
    }
    let mut at = first;
    let mut cursor = reader.cursor(first).expect("a cursor at the first record");
    // A reader that opened over damage at the end of the log (a bad frame
    // in its last segment, as a torn tail looks) stops there and says why:
    // the error the whole read-through then returns.
    let mut stopped = None;
    loop {
        match cursor.next_ref() {
            Ok(Some(record)) => {
                assert_eq!(record.offset, at, "reader: the cursor skipped");
                assert_eq!(record.payload, payload(at), "reader: cursor, record {at}");
                at += 1;
            }
            Ok(None) => break,
            Err(e @ (Error::Corrupt { .. } | Error::BadSegmentHeader { .. })) => {
                if let Error::Corrupt { offset, .. } = &e {
                    assert_eq!(
                        *offset, at,
                        "reader: the cursor's error is where it stopped"
                    );
                }
                stopped = Some(e);
                break;
            }
            Err(e) => panic!("reader: the cursor failed at {at}: {e}"),
        }
    }
    assert_eq!(at, next, "reader: the cursor ends where the reader does");
    match reader.read(next) {
        Err(e) => assert!(typed_read_error(&e), "reader: read at the end: {e:?}"),
        Ok(_) => panic!("reader: a record at its end {next}"),
    }
    let from = first + rng.below(next - first + 1);
    let mut cursor = reader.cursor(from).expect("a cursor in range");
    for offset in from..next.min(from + 50) {
        let record = cursor.next().expect("a record").expect("reads");
        assert_eq!((record.offset, &record.payload), (offset, &payload(offset)));
    }
    let far = [next, next + 1, n_valid, n_valid + 7, u64::MAX, u64::MAX - 1];
    for i in 0..40 {
        let offset = match far.get(i) {
            Some(&o) => o,
            None => rng.below(n_valid + 10),
        };
        match reader.read(offset) {
            Ok(bytes) => {
                assert!((first..next).contains(&offset), "reader: read {offset}");
                assert_eq!(bytes, payload(offset), "reader: random read {offset}");
            }
            Err(e) => {
                assert!(!(first..next).contains(&offset), "reader: {offset}: {e}");
                assert!(typed_read_error(&e), "reader: read {offset}: {e:?}");
            }
        }
        if let Ok(c) = reader.cursor(offset) {
            // (A cursor goes by the segments the reader maps, not by the
            // first offset the control file says.)
            assert!(
                offset <= next && (scrambled || offset >= first),
                "reader: cursor at {offset}"
            );
            drop(c);
        }
    }
    for t in [0, 1, rng.next(), u64::MAX] {
        assert!(reader.offset_for_timestamp(t) <= next);
    }
    // Nobody writes: a wait times out (it may register as a sleeper for a
    // moment, and takes that back), or, at damage, says so.
    match reader.wait_for(next, Duration::ZERO) {
        Ok(false) => {}
        Err(e) if stopped.is_some() && typed_read_error(&e) => {}
        other => panic!("reader: a wait at the end: {other:?}"),
    }
    match stopped {
        Some(e) => Err(e),
        None => Ok(Seen { first, next }),
    }
}

/// Checks a control file a writer left: a page, magic, version 2, closed.
fn assert_sound_control(dir: &Path) {
    let bytes = fs::read(dir.join("murakami.tail")).expect("the writer keeps a control file");
    assert_eq!(bytes.len(), 4096, "control file length");
    assert_eq!(&bytes[0..8], b"MRKTAIL\0", "control file magic");
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2);
}

/// Opens `dir`, and when it opens reads every record by offset and through
/// a cursor, checks them byte for byte, closes and reopens strictly. A
/// reader of the files (`Reader::open`) sees the same records while the
/// writer is open and after it closed.
fn open_and_check(
    dir: &Path,
    mode: Recovery,
    n_valid: u64,
    tally: &mut Tally,
) -> Result<Opened, Error> {
    let (writer, reader) = Log::open(dir, options(mode))?;
    let first = reader.first_offset();
    let next = reader.next_offset();
    assert!(first <= next, "first {first} > next {next}");
    assert!(
        next <= n_valid,
        "next {next} beyond the {n_valid} valid records"
    );
    for offset in first..next {
        assert_eq!(
            reader.read(offset).unwrap(),
            payload(offset),
            "record {offset} is not what was written"
        );
    }
    let mut seen = first;
    for record in reader.cursor(first).unwrap() {
        let record = record.unwrap();
        assert_eq!(record.offset, seen);
        assert_eq!(record.payload, payload(seen), "cursor, record {seen}");
        seen += 1;
    }
    assert_eq!(seen, next, "the cursor ends where the log does");
    assert!(reader.read(next).is_err());
    tally.records_checked += 2 * (next - first);
    let report = writer.recovery_report().clone();
    assert_eq!((report.first_offset, report.next_offset), (first, next));
    // The writer made its control file sound (replacing a damaged one): a
    // reader of the files follows it, unless a sealed segment file is not
    // its capacity long (recovery keeps it so; see `refused_length`).
    match Reader::open(dir) {
        Ok(live) => {
            assert_eq!((live.first_offset(), live.next_offset()), (first, next));
            if next > first {
                assert_eq!(live.read(next - 1).unwrap(), payload(next - 1));
            }
        }
        Err(e) if refused_length(&e) => {}
        Err(e) => panic!("a reader of a live log: {e}"),
    }
    writer.close().unwrap();
    assert_sound_control(dir);
    match read_only(dir, n_valid, next, false) {
        Ok(seen) => {
            assert_eq!(
                seen,
                Seen { first, next },
                "a reader of the recovered files"
            );
            tally.reader_records += next - first;
        }
        Err(e) if refused_length(&e) => tally.recovered_refused_length += 1,
        Err(e) => panic!("a reader of the recovered files: {e}"),
    }
    // The repair left a consistent log: it reopens strictly, unchanged.
    let (writer, reader) = Log::open(dir, options(Recovery::Strict))
        .unwrap_or_else(|e| panic!("the repaired log does not reopen: {e}"));
    assert_eq!((reader.first_offset(), reader.next_offset()), (first, next));
    if next > first {
        assert_eq!(reader.read(next - 1).unwrap(), payload(next - 1));
    }
    assert!(writer.recovery_report().cut.is_none());
    drop(writer);
    Ok(Opened {
        first,
        next,
        report,
    })
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

/// A cut with file names instead of paths (the copies live in different
/// directories).
fn cut_names(cut: &Cut) -> (u64, String, u64, CutReason, u64, Vec<String>) {
    (
        cut.offset,
        name(&cut.segment),
        cut.position,
        cut.reason,
        cut.records_dropped,
        cut.segments_removed.iter().map(|p| name(p)).collect(),
    )
}

/// Checks that `Log::inspect` of the damaged files said what opening them
/// then did: the strict open's error or cut, `TruncateCorrupt`'s cut and
/// offsets.
fn check_inspection(seen: &Inspection, strict: &Result<Opened, Error>, tc: &Opened) {
    let problem = seen.problem.as_ref();
    assert_eq!(
        problem.and_then(|p| p.cut.as_ref()).map(cut_names),
        tc.report.cut.as_ref().map(cut_names),
        "inspection's cut vs TruncateCorrupt's"
    );
    assert_eq!(
        (seen.first_offset, seen.next_offset, seen.clean_shutdown),
        (tc.first, tc.next, tc.report.clean_shutdown),
        "inspection's (first, next, clean) vs TruncateCorrupt's"
    );
    match strict {
        Ok(opened) => {
            let problem = problem.map(|p| (p.torn_tail, p.cut.as_ref().map(cut_names)));
            let cut = opened.report.cut.as_ref().map(cut_names);
            assert_eq!(problem, cut.map(|c| (true, Some(c))), "strict opened");
        }
        Err(Error::Corrupt {
            segment,
            position,
            offset,
            kind,
        }) => {
            let p = problem.expect("strict refused: inspection finds a problem");
            assert!(
                !p.torn_tail,
                "strict refused {kind}: inspection says torn tail"
            );
            assert_eq!(
                (name(&p.segment), p.position, p.offset, p.kind),
                (name(segment), *position, *offset, *kind)
            );
        }
        Err(Error::BadSegmentHeader { segment, reason }) => {
            let p = problem.expect("strict refused: inspection finds a problem");
            assert!(!p.torn_tail);
            assert_eq!(
                (name(&p.segment), p.kind),
                (name(segment), Corruption::BadHeader(*reason))
            );
        }
        Err(other) => panic!("strict: {other}"),
    }
}

fn seg_names(files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    files
        .keys()
        .filter(|n| {
            n.len() == 24 && n.ends_with(".seg") && n[..20].bytes().all(|b| b.is_ascii_digit())
        })
        .cloned()
        .collect()
}

fn run_case(t: &Template, case: &Case, tally: &mut Tally) {
    let what = format!("[{} / {}] {}", t.label, case.class, case.desc);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut local = Tally::default();
        check_case(t, case, &mut local);
        local
    }));
    match outcome {
        Ok(local) => {
            tally.cases += 1;
            tally.add(&local);
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: {msg}");
        }
    }
}

fn check_case(t: &Template, case: &Case, tally: &mut Tally) {
    let tmp = tempfile::tempdir().unwrap();
    let strict_dir = tmp.path().join("strict");
    let tc_dir = tmp.path().join("tc");
    let reader_dir = tmp.path().join("reader");
    write_dir(&strict_dir, &case.files);
    write_dir(&tc_dir, &case.files);
    write_dir(&reader_dir, &case.files);
    let seen = read_only(
        &reader_dir,
        case.n_valid,
        seed_of(&format!("{} {}", t.label, case.desc)),
        matches!(case.control, Control::Scrambled),
    );
    let inspect_dir = tmp.path().join("inspect");
    write_dir(&inspect_dir, &case.files);
    let untouched = dir_state(&inspect_dir);
    let inspection = Log::inspect(&inspect_dir)
        .unwrap_or_else(|e| panic!("{} {}: inspect failed: {e}", t.label, case.desc));
    assert_eq!(dir_state(&inspect_dir), untouched, "inspect changed a file");
    let strict = open_and_check(&strict_dir, Recovery::Strict, case.n_valid, tally);
    let tc = open_and_check(&tc_dir, Recovery::TruncateCorrupt, case.n_valid, tally);
    // TruncateCorrupt opens whatever it finds.
    let tc = tc.unwrap_or_else(|e| panic!("TruncateCorrupt refused to open: {e}"));
    check_inspection(&inspection, &strict, &tc);
    if let Err(e) = &strict {
        // Whatever the damage, a refusal is typed and names a file that is
        // in the directory.
        let named = match e {
            Error::Corrupt { segment, .. } | Error::BadSegmentHeader { segment, .. } => segment,
            other => panic!("Strict failed with an untyped error: {other:?}"),
        };
        assert_eq!(named.parent().unwrap(), strict_dir);
        let name = named.file_name().unwrap().to_str().unwrap();
        assert!(case.files.contains_key(name), "{e} names a file not there");
        tally.strict_refused += 1;
    }
    if let Some(cut) = &tc.report.cut {
        assert_eq!(cut.offset, tc.next, "the cut is where the log now ends");
        if matches!(cut.reason, CutReason::Corruption(_)) {
            tally.truncate_corrupt_cuts += 1;
        }
        for gone in &cut.segments_removed {
            assert!(!gone.exists(), "{} reported removed", gone.display());
        }
    }
    match &case.expect {
        Expect::Any => {}
        Expect::Intact { first } => {
            for (mode, opened) in [("strict", strict.as_ref().ok()), ("tc", Some(&tc))] {
                let opened = opened.unwrap_or_else(|| {
                    panic!("{mode}: refused an intact log: {:?}", strict.as_ref().err())
                });
                assert_eq!(
                    (opened.first, opened.next),
                    (*first, case.n_valid),
                    "{mode}"
                );
                assert!(
                    opened.report.cut.is_none(),
                    "{mode}: {:?}",
                    opened.report.cut
                );
            }
            tally.intact += 1;
        }
        Expect::Refused {
            name,
            reason,
            next_tc,
        } => {
            match &strict {
                Err(Error::BadSegmentHeader {
                    segment,
                    reason: found,
                }) => {
                    assert_eq!(segment, &strict_dir.join(name));
                    assert_eq!(found, reason);
                }
                Err(other) => panic!("strict: expected a bad header of {name}, got {other}"),
                Ok(o) => panic!("strict opened ({}..{}) with a bad header", o.first, o.next),
            }
            assert_eq!(tc.next, *next_tc, "tc next");
            let cut = tc.report.cut.as_ref().expect("tc reports the cut");
            assert_eq!(cut.offset, *next_tc);
            // Gone (or, at base 0, replaced by a fresh first segment).
            let now = fs::read(tc_dir.join(name)).ok();
            assert!(
                now.as_ref() != case.files.get(name),
                "the refused file is still there"
            );
        }
        Expect::Damage {
            f,
            seg,
            pos,
            evidence_lost,
            forced,
        } => {
            let corrupt = *forced || t.clean || (*f < t.durable && !evidence_lost);
            let later: Vec<PathBuf> = seg_names(&case.files)
                .into_iter()
                .filter(|n| n > seg)
                .map(|n| tc_dir.join(n))
                .collect();
            if corrupt {
                match &strict {
                    Err(Error::Corrupt {
                        segment,
                        position,
                        offset,
                        kind,
                    }) => {
                        assert_eq!(segment, &strict_dir.join(seg), "{kind}");
                        assert_eq!((*position, *offset), (*pos, *f), "{kind}");
                    }
                    Err(other) => panic!("strict: expected corruption at {f}, got {other}"),
                    Ok(o) => panic!(
                        "strict opened {}..{} over corruption at record {f}",
                        o.first, o.next
                    ),
                }
                assert_eq!(tc.next, *f, "tc cuts at the damage");
                let cut = tc.report.cut.as_ref().expect("tc reports the cut");
                assert!(matches!(cut.reason, CutReason::Corruption(_)), "{cut:?}");
                assert_eq!((&cut.segment, cut.position), (&tc_dir.join(seg), *pos));
                assert_eq!(cut.segments_removed, later);
                assert!(cut.records_dropped <= case.n_valid - f + case.forged);
            } else {
                for (mode, opened, dir) in [
                    ("strict", strict.as_ref().ok(), &strict_dir),
                    ("tc", Some(&tc), &tc_dir),
                ] {
                    let opened = opened.unwrap_or_else(|| {
                        panic!("{mode}: refused a torn tail: {:?}", strict.as_ref().err())
                    });
                    assert_eq!(opened.next, *f, "{mode}: the log ends at the tear");
                    // A tear that leaves nothing behind it may look like
                    // records never written; otherwise it is reported.
                    if let Some(cut) = &opened.report.cut {
                        assert_eq!(cut.reason, CutReason::TornTail, "{mode}");
                        assert_eq!((&cut.segment, cut.position), (&dir.join(seg), *pos));
                        let later: Vec<PathBuf> = seg_names(&case.files)
                            .into_iter()
                            .filter(|n| n > seg)
                            .map(|n| dir.join(n))
                            .collect();
                        assert_eq!(cut.segments_removed, later, "{mode}");
                    }
                }
                if *f < t.durable {
                    tally.evidence_lost += 1;
                } else {
                    tally.torn_repaired += 1;
                }
            }
        }
    }
    check_reader(t, case, &reader_dir, &seen, &tc, tally);
    if let (Ok(s), Expect::Damage { .. } | Expect::Intact { .. }) = (&strict, &case.expect) {
        // Strict never drops a durable record silently (the evidence-lost
        // cases aside, which the expectation above pins down exactly).
        if s.next < t.durable.min(case.n_valid) {
            assert!(
                matches!(
                    case.expect,
                    Expect::Damage {
                        evidence_lost: true,
                        ..
                    }
                ),
                "strict dropped durable records {}..{}",
                s.next,
                t.durable
            );
        }
    }
}

/// Where the valid frames of a segment image end, read as recovery reads
/// them (CRC, consecutive offsets from `base`).
fn valid_end(bytes: &[u8], base: u64) -> usize {
    let mut end = HEADER;
    for (expected, (pos, len)) in (base..).zip(frames(bytes)) {
        let stored = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let frame_end = pos + FRAME_HEADER + len;
        let offset = u64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().unwrap());
        if crc32fast::hash(&bytes[pos + 4..frame_end]) != stored || offset != expected {
            break;
        }
        end = pos + common::frame_len(len);
    }
    end
}

/// Whether a segment file of `files` that another one follows ends its
/// valid frames in a frame header that is not all zeros but whose commit
/// word (bytes 4..8) is: recovery calls that damage, and a reader of the
/// files, which takes a zero commit word for the end of what was committed,
/// reads on into the next segment: it returns records recovery drops (a
/// strict open refuses the log; `TruncateCorrupt` cuts it there).
fn uncommitted_garbage_after_sealed(files: &BTreeMap<String, Vec<u8>>) -> bool {
    let names = seg_names(files);
    names.iter().rev().skip(1).any(|name| {
        let bytes = &files[name];
        let base: u64 = name[..20].parse().unwrap();
        if bytes.len() < HEADER {
            return false;
        }
        let end = valid_end(bytes, base);
        end + FRAME_HEADER <= bytes.len()
            && bytes[end + 4..end + 8] == [0; 4]
            && bytes[end..end + FRAME_HEADER].iter().any(|&b| b != 0)
    })
}

/// Whether `e` is a reader's refusal of a segment file whose length is not
/// the capacity its header claims: recovery reads such a file (and the
/// writer restores the length of the active one only), a reader of the
/// files refuses it (`HeaderError::Inconsistent`), since the writer may
/// grow the file under a map the reader keeps.
fn refused_length(e: &Error) -> bool {
    match e {
        Error::BadSegmentHeader {
            segment,
            reason: HeaderError::Inconsistent,
        } => fs::read(segment).is_ok_and(|bytes| {
            bytes.len() >= HEADER
                && u64::from_le_bytes(bytes[24..32].try_into().unwrap()) != bytes.len() as u64
        }),
        _ => false,
    }
}

/// Checks what a reader of the damaged files (`Reader::open`, read-only,
/// in `dir`) saw against what recovery kept (`tc`) and the expectation:
///
/// - it never returns more than recovery keeps, hence never a record at or
///   past the first one the damage hits (one exception, counted: garbage
///   past the last frame of a sealed segment that leaves the commit word
///   zero, which the reader takes for the end of that segment);
/// - an intact log it reads whole (or refuses a segment file whose length
///   is not its capacity, with a typed error);
/// - a torn tail it reads up to the tear, as recovery keeps it, or refuses
///   with a typed error at the tear (a reader repairs nothing, and cannot
///   tell a damaged frame past the last durable record from damage);
/// - corruption stops it, with a typed error at or before the damage, or,
///   when the damaged frame looks uncommitted (a zero commit word), at the
///   damage without one;
/// - a refused segment header it refuses the same way;
/// - a control file it cannot read it refuses with `BadControlFile`.
fn check_reader(
    t: &Template,
    case: &Case,
    dir: &Path,
    seen: &Result<Seen, Error>,
    tc: &Opened,
    tally: &mut Tally,
) {
    let slack = uncommitted_garbage_after_sealed(&case.files);
    match seen {
        Ok(s) => {
            tally.reader_opened += 1;
            tally.reader_records += s.next - s.first;
            if s.next > tc.next {
                assert!(
                    slack,
                    "reader: records up to {} where recovery keeps up to {}",
                    s.next, tc.next
                );
                tally.reader_past_slack += 1;
                return;
            }
        }
        Err(e) => {
            tally.reader_refused += 1;
            if let Error::Corrupt { offset, .. } = e {
                assert!(
                    *offset <= tc.next,
                    "reader: {e}, past where recovery keeps the log to ({})",
                    tc.next
                );
            }
        }
    }
    match case.control {
        Control::Refused(reason) => {
            match seen {
                Err(Error::BadControlFile { reason: r, .. }) if *r == reason => {}
                other => {
                    panic!("reader: expected a refused control file ({reason:?}), got {other:?}")
                }
            }
            return;
        }
        // Words a reader trusts (the first offset, the generation) may say
        // anything: only the invariants above hold.
        Control::Scrambled => return,
        Control::Sound | Control::Readable => {}
    }
    if let Ok(s) = seen {
        assert_eq!(s.first, tc.first, "reader: the first record");
    }
    match &case.expect {
        Expect::Any => {}
        Expect::Intact { first } => match seen {
            Ok(s) => assert_eq!((s.first, s.next), (*first, case.n_valid), "reader"),
            Err(e) if refused_length(e) => tally.reader_refused_length += 1,
            Err(e) => panic!("reader: refused an intact log: {e}"),
        },
        Expect::Damage {
            f,
            seg,
            pos,
            evidence_lost,
            forced,
        } => {
            let corrupt = *forced || t.clean || (*f < t.durable && !evidence_lost);
            match seen {
                Ok(s) if corrupt => {
                    // Only a frame that looks uncommitted (a zero commit
                    // word, or no room for a frame header) stops a reader
                    // without an error: it cannot tell it from a record
                    // not written yet.
                    let uncommitted = case.files.get(seg).is_some_and(|bytes| {
                        let pos = *pos as usize;
                        pos >= HEADER
                            && (pos + FRAME_HEADER > bytes.len()
                                || bytes[pos + 4..pos + 8] == [0; 4])
                    });
                    assert!(
                        s.next == *f && uncommitted,
                        "reader: corruption at {f} ({seg} byte {pos}) and no error, \
                         the reader ends at {}",
                        s.next
                    );
                    tally.reader_silent_stops += 1;
                }
                Ok(s) => assert_eq!(s.next, *f, "reader: the log ends at the tear"),
                Err(e) => {
                    if let Error::Corrupt { offset, .. } = e {
                        assert!(offset <= f, "reader: {e} past the damage at {f}");
                    }
                    if refused_length(e) {
                        tally.reader_refused_length += 1;
                    } else if !corrupt {
                        tally.reader_refused_torn += 1;
                    }
                }
            }
        }
        Expect::Refused { name, reason, .. } => match seen {
            Err(Error::BadSegmentHeader { segment, reason: r }) => {
                assert_eq!(segment, &dir.join(name), "reader");
                assert_eq!(r, reason, "reader");
            }
            other => panic!("reader: expected {name} refused ({reason:?}), got {other:?}"),
        },
    }
}

// ---------------------------------------------------------------------------
// Working out what a damage hits.

/// A segment whose header is gone (all zeros, or the file shorter than a
/// header): recovery cannot read it, so the log ends at its base.
///
/// Its frames may still prove it held durable records (see
/// [`hints_prove_durable`]); `bytes` is the damaged image, if any is left.
fn headless(t: &Template, s: usize, bytes: Option<&[u8]>) -> Expect {
    let base = t.segs[s].base;
    let proven = bytes.is_some_and(|b| hints_prove_durable(b, base));
    Expect::Damage {
        f: base,
        seg: t.segs[s].name.clone(),
        pos: 0,
        evidence_lost: s == t.last() && t.last_holds_durable() && !proven,
        forced: false,
    }
}

/// Whether the frames of a segment image, read from its start as recovery
/// reads them (valid CRCs, consecutive offsets), carry a durable hint past
/// the segment's base: records of it had been made durable, so its header
/// had been too.
fn hints_prove_durable(bytes: &[u8], base: u64) -> bool {
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    for (expected, (pos, len)) in (base..).zip(frames(bytes)) {
        let stored = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
        let end = pos + common::FRAME_HEADER + len;
        if crc32fast::hash(&bytes[pos + 4..end]) != stored || u64_at(pos + 8) != expected {
            return false;
        }
        if u64_at(pos + 24) > base {
            return true;
        }
    }
    false
}

/// The expectation for segment `s` of `t` rewritten to `new` (same length).
fn classify(t: &Template, s: usize, new: &[u8]) -> Expect {
    let seg = &t.segs[s];
    let old = t.bytes(s);
    assert_eq!(old.len(), new.len());
    let changed: Vec<usize> = (0..old.len()).filter(|&i| old[i] != new[i]).collect();
    if changed.is_empty() {
        return Expect::Intact { first: 0 };
    }
    if new[..HEADER].iter().all(|&b| b == 0) {
        return headless(t, s, Some(new));
    }
    if changed.iter().any(|&i| i < 44) {
        let reason = if new[0..8] != *b"MURAKAMI" {
            HeaderError::BadMagic
        } else {
            HeaderError::BadChecksum
        };
        return Expect::Refused {
            name: seg.name.clone(),
            reason,
            next_tc: seg.base,
        };
    }
    // Bytes 44..64 are reserved or the checkpoint: no record is hit (a
    // damaged checkpoint only counts as none). Padding is not checked
    // either: the CRC covers the header and the payload.
    for (k, &(pos, len)) in seg.frames.iter().enumerate() {
        if changed
            .iter()
            .any(|&i| i >= pos && i < pos + FRAME_HEADER + len)
        {
            return Expect::Damage {
                f: seg.base + k as u64,
                seg: seg.name.clone(),
                pos: pos as u64,
                evidence_lost: false,
                forced: false,
            };
        }
    }
    let Some(g) = changed.iter().copied().find(|&i| i >= seg.end) else {
        return Expect::Intact { first: 0 };
    };
    let at_end = Expect::Damage {
        f: seg.end_offset(),
        seg: seg.name.clone(),
        pos: seg.end as u64,
        evidence_lost: false,
        forced: false,
    };
    // The scan reads the frame header just past the last frame (when there
    // is room for one); the last segment of a crashed log is also searched
    // for garbage further on.
    let read_next = g < seg.end + FRAME_HEADER && seg.end + FRAME_HEADER <= new.len();
    if read_next || (s == t.last() && !t.clean) {
        at_end
    } else {
        Expect::Intact { first: 0 }
    }
}

/// The expectation for segment `s` cut to `len` bytes.
fn classify_truncation(t: &Template, s: usize, len: usize) -> Expect {
    let seg = &t.segs[s];
    if len < HEADER {
        return headless(t, s, None);
    }
    match seg
        .frames
        .iter()
        // A frame must fit whole, padding included.
        .position(|&(pos, plen)| pos + common::frame_len(plen) > len)
    {
        Some(k) => Expect::Damage {
            f: seg.base + k as u64,
            seg: seg.name.clone(),
            pos: seg.frames[k].0 as u64,
            evidence_lost: false,
            forced: false,
        },
        None => Expect::Intact { first: 0 },
    }
}

/// A position in segment `s` worth damaging: mostly inside the frames.
fn pick_position(rng: &mut Rng, t: &Template, s: usize) -> usize {
    let seg = &t.segs[s];
    let len = t.bytes(s).len();
    match rng.below(10) {
        0 => rng.index(HEADER),
        1 | 2 => rng.index(len),
        3 => rng.range(seg.end, (seg.end + 64).min(len)),
        _ => rng.range(HEADER, seg.end),
    }
}

fn pick_segment(rng: &mut Rng, t: &Template) -> usize {
    // The last segment is the active one: give it its share.
    if rng.below(3) == 0 {
        t.last()
    } else {
        rng.index(t.segs.len())
    }
}

fn flip(rng: &mut Rng, t: &Template) -> Case {
    let s = pick_segment(rng, t);
    let at = pick_position(rng, t, s);
    let bit = rng.below(8);
    let mut bytes = t.bytes(s).to_vec();
    bytes[at] ^= 1 << bit;
    let expect = classify(t, s, &bytes);
    let mut files = t.files.clone();
    files.insert(t.segs[s].name.clone(), bytes);
    Case {
        class: "bit flip",
        desc: format!("segment {s} byte {at} bit {bit}"),
        files,
        n_valid: t.n,
        forged: 0,
        expect,
        control: Control::Sound,
    }
}

fn zero_sector(rng: &mut Rng, t: &Template) -> Case {
    let s = pick_segment(rng, t);
    let at = pick_position(rng, t, s) / 512 * 512;
    let mut bytes = t.bytes(s).to_vec();
    let end = (at + 512).min(bytes.len());
    bytes[at..end].fill(0);
    let expect = classify(t, s, &bytes);
    let mut files = t.files.clone();
    files.insert(t.segs[s].name.clone(), bytes);
    Case {
        class: "zeroed sector",
        desc: format!("segment {s} sector at {at}"),
        files,
        n_valid: t.n,
        forged: 0,
        expect,
        control: Control::Sound,
    }
}

fn huge_length(rng: &mut Rng, t: &Template) -> Case {
    let s = pick_segment(rng, t);
    let seg = &t.segs[s];
    let k = rng.index(seg.frames.len());
    let pos = seg.frames[k].0;
    let len = [
        0x7FFF_FFFF,
        1 << 20,
        SEG as u32,
        rng.next() as u32 | 0x0100_0000,
    ][rng.index(4)]
        & 0x7FFF_FFFF;
    let mut bytes = t.bytes(s).to_vec();
    bytes[pos + 4..pos + 8].copy_from_slice(&(0x8000_0000 | len).to_le_bytes());
    let expect = classify(t, s, &bytes);
    let mut files = t.files.clone();
    files.insert(seg.name.clone(), bytes);
    Case {
        class: "huge length",
        desc: format!("segment {s} record {} length {len}", seg.base + k as u64),
        files,
        n_valid: t.n,
        forged: 0,
        expect,
        control: Control::Sound,
    }
}

fn truncate(rng: &mut Rng, t: &Template) -> Case {
    let s = pick_segment(rng, t);
    let seg = &t.segs[s];
    let full = t.bytes(s).len();
    let len = match rng.below(6) {
        0 => rng.index(HEADER),
        1 => rng.range(seg.end, full),
        _ => rng.range(HEADER, seg.end),
    };
    let expect = classify_truncation(t, s, len);
    let mut files = t.files.clone();
    files.insert(seg.name.clone(), t.bytes(s)[..len].to_vec());
    Case {
        class: "truncated file",
        desc: format!("segment {s} cut to {len} bytes"),
        files,
        n_valid: t.n,
        forged: 0,
        expect,
        control: Control::Sound,
    }
}

fn remove(t: &Template, which: usize) -> Case {
    let s = match which {
        0 => 0,
        1 => t.segs.len() / 2,
        _ => t.last(),
    };
    let mut files = t.files.clone();
    files.remove(&t.segs[s].name);
    let expect = if s == 0 {
        Expect::Intact {
            first: t.segs[1].base,
        }
    } else {
        let prev = &t.segs[s - 1];
        Expect::Damage {
            f: t.segs[s].base,
            seg: prev.name.clone(),
            pos: prev.end as u64,
            // Only the last segment's header knew how far the log was
            // durable; nothing else on disk says that its records existed.
            evidence_lost: s == t.last() && t.last_holds_durable(),
            forced: false,
        }
    };
    Case {
        class: "missing segment",
        desc: format!("segment {s} removed"),
        files,
        n_valid: t.n,
        forged: 0,
        expect,
        control: Control::Sound,
    }
}

// ---------------------------------------------------------------------------
// Forged files.

fn segment_name(base: u64) -> String {
    format!("{base:020}.seg")
}

fn header(base: u64, sequence: u64, magic: &[u8; 8], version: u32, header_len: u32) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    out[0..8].copy_from_slice(magic);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out[12..16].copy_from_slice(&header_len.to_le_bytes());
    out[16..24].copy_from_slice(&base.to_le_bytes());
    out[24..32].copy_from_slice(&SEG.to_le_bytes());
    out[32..40].copy_from_slice(&sequence.to_le_bytes());
    let crc = crc32fast::hash(&out[0..40]);
    out[40..44].copy_from_slice(&crc.to_le_bytes());
    out
}

fn frame(offset: u64, hint: u64, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; common::frame_len(body.len())];
    out[4..8].copy_from_slice(&(0x8000_0000u32 | body.len() as u32).to_le_bytes());
    out[8..16].copy_from_slice(&offset.to_le_bytes());
    out[16..24].copy_from_slice(&7u64.to_le_bytes());
    out[24..32].copy_from_slice(&hint.to_le_bytes());
    out[32..32 + body.len()].copy_from_slice(body);
    let crc = crc32fast::hash(&out[4..32 + body.len()]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A whole segment file: `head`, then `frames`, then zeros up to `SEG`.
fn segment_file(head: Vec<u8>, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = head;
    for f in frames {
        out.extend_from_slice(f);
    }
    out.resize(SEG as usize, 0);
    out
}

/// A base offset that is no segment's.
fn free_base(rng: &mut Rng, t: &Template) -> u64 {
    loop {
        let b = match rng.below(3) {
            0 => t.n,
            1 => t.n + 1 + rng.below(1000),
            _ => rng.below(t.n),
        };
        if t.segs.iter().all(|s| s.base != b) {
            return b;
        }
    }
}

/// Where `TruncateCorrupt` cuts a log with an unreadable segment named
/// for `b`: at its base when it continues the log, else at the end of the
/// segment it overlaps or follows.
fn cut_for(t: &Template, b: u64) -> u64 {
    t.segs
        .iter()
        .map(Seg::end_offset)
        .find(|&e| e >= b)
        .unwrap_or(t.n)
}

/// The segment a foreign segment named for `b` breaks the sequence after.
fn gap_expect(t: &Template, b: u64, forced: bool) -> Expect {
    let s = t
        .segs
        .iter()
        .position(|s| s.end_offset() >= b)
        .unwrap_or(t.last());
    let seg = &t.segs[s];
    Expect::Damage {
        f: seg.end_offset(),
        seg: seg.name.clone(),
        pos: seg.end as u64,
        evidence_lost: false,
        forced,
    }
}

fn extra(rng: &mut Rng, t: &Template) -> Case {
    let mut files = t.files.clone();
    let mut n_valid = t.n;
    let mut forged = 0;
    let seq = t.max_sequence() + 1;
    let (desc, expect) = match rng.below(9) {
        0 => {
            let mut junk = vec![0u8; rng.index(5000)];
            junk.iter_mut().for_each(|b| *b = rng.next() as u8);
            files.insert("notes.txt".into(), junk.clone());
            files.insert("1234.seg".into(), junk.clone());
            files.insert(format!("{}.bak", t.segs[0].name), junk.clone());
            files.insert("0000000000000000000x.seg".into(), junk.clone());
            files.insert("murakami-next.tmp".into(), junk.clone());
            files.insert(format!("{:020}.tmp", t.segs[1].base), junk);
            ("foreign names".to_string(), Expect::Intact { first: 0 })
        }
        1 => {
            let mut junk = vec![0u8; [0, 39, 40, 41, 100][rng.index(5)]];
            junk.iter_mut().for_each(|b| *b = rng.next() as u8);
            if junk.len() >= 8 {
                junk[0..8].copy_from_slice(b"MRKCLEAN");
            }
            files.insert("murakami.clean".into(), junk);
            (
                "a clean marker that fails its CRC".to_string(),
                Expect::Intact { first: 0 },
            )
        }
        2 => {
            let claim = if rng.below(2) == 0 {
                t.n + 1 + rng.below(100)
            } else {
                rng.below(t.n)
            };
            let last = &t.segs[t.last()];
            let mut marker = vec![0u8; 40];
            marker[0..8].copy_from_slice(b"MRKCLEAN");
            marker[8..12].copy_from_slice(&1u32.to_le_bytes());
            marker[16..24].copy_from_slice(&claim.to_le_bytes());
            marker[24..32].copy_from_slice(&last.base.to_le_bytes());
            let crc = crc32fast::hash(&marker[0..36]);
            marker[36..40].copy_from_slice(&crc.to_le_bytes());
            files.insert("murakami.clean".into(), marker);
            (
                format!("a valid clean marker claiming {claim} records"),
                Expect::Damage {
                    f: t.n,
                    seg: last.name.clone(),
                    pos: last.end as u64,
                    evidence_lost: false,
                    forced: true,
                },
            )
        }
        3 => {
            let s = rng.index(t.segs.len());
            let base = t.segs[s].base;
            let mut marker = vec![0u8; 36];
            marker[0..8].copy_from_slice(b"MRKMCUT\0");
            marker[8..16].copy_from_slice(&(base + 1).to_le_bytes());
            // The sequence of no segment: a leftover, removed.
            marker[16..24].copy_from_slice(&(seq + 5).to_le_bytes());
            marker[24..32].copy_from_slice(&(seq + 6).to_le_bytes());
            let crc = crc32fast::hash(&marker[0..32]);
            marker[32..36].copy_from_slice(&crc.to_le_bytes());
            if rng.below(2) == 0 {
                marker[20] ^= 0x40; // and a CRC that fails
            }
            files.insert(format!("{base:020}.cut"), marker);
            files.insert(format!("{:020}.cut", t.n + 17), vec![0xAB; 36]);
            (
                format!("stray truncation markers (segment {s})"),
                Expect::Intact { first: 0 },
            )
        }
        4 => {
            // A well-formed segment whose base overlaps the log (or leaves
            // a gap after it), holding records that were never written; or
            // one that continues the log with the records that follow.
            let b = free_base(rng, t);
            if b == t.n {
                let real: Vec<Vec<u8>> = (0..3).map(|i| frame(b + i, 0, &payload(b + i))).collect();
                let file = segment_file(header(b, seq, b"MURAKAMI", 1, 64), &real);
                let end = HEADER + real.iter().map(Vec::len).sum::<usize>();
                files.insert(segment_name(b), file);
                n_valid = t.n + 3;
                let expect = if t.clean {
                    // The clean marker says the log ends at n.
                    Expect::Damage {
                        f: b + 3,
                        seg: segment_name(b),
                        pos: end as u64,
                        evidence_lost: false,
                        forced: true,
                    }
                } else {
                    Expect::Intact { first: 0 }
                };
                (format!("a segment continuing the log at {b}"), expect)
            } else {
                let fake: Vec<Vec<u8>> = (0..5)
                    .map(|i| frame(b + i, 0, b"FORGED, never written"))
                    .collect();
                forged = 5;
                files.insert(
                    segment_name(b),
                    segment_file(header(b, seq, b"MURAKAMI", 1, 64), &fake),
                );
                (format!("a forged segment at {b}"), gap_expect(t, b, false))
            }
        }
        5 => {
            // A copy of a real segment under another name.
            let s = rng.index(t.segs.len());
            let b = free_base(rng, t);
            files.insert(segment_name(b), t.bytes(s).to_vec());
            (
                format!("segment {s} copied to base {b}"),
                Expect::Refused {
                    name: segment_name(b),
                    reason: HeaderError::Inconsistent,
                    next_tc: cut_for(t, b),
                },
            )
        }
        6 => {
            let b = free_base(rng, t);
            let (head, reason) = match rng.below(3) {
                0 => (header(b, seq, b"MURAKAMX", 1, 64), HeaderError::BadMagic),
                1 => {
                    let v = 3 + rng.below(1000) as u32;
                    (
                        header(b, seq, b"MURAKAMI", v, 64),
                        HeaderError::UnsupportedVersion(v),
                    )
                }
                _ => (
                    header(b, seq, b"MURAKAMI", 1, 128),
                    HeaderError::BadHeaderLength(128),
                ),
            };
            let body = [frame(b, 0, &payload(b))];
            files.insert(segment_name(b), segment_file(head, &body));
            (
                format!("a segment at {b} with {reason:?}"),
                Expect::Refused {
                    name: segment_name(b),
                    reason,
                    next_tc: cut_for(t, b),
                },
            )
        }
        7 => {
            // A segment continuing the log whose k-th frame claims a huge
            // length.
            let b = t.n;
            let k = rng.below(3);
            let mut frames: Vec<Vec<u8>> =
                (0..k).map(|i| frame(b + i, 0, &payload(b + i))).collect();
            let mut huge = frame(b + k, 0, b"huge");
            let len = 0x7FFF_FFFFu32 - rng.below(1000) as u32;
            huge[4..8].copy_from_slice(&(0x8000_0000 | len).to_le_bytes());
            frames.push(huge);
            let pos = HEADER + frames[..k as usize].iter().map(Vec::len).sum::<usize>();
            files.insert(
                segment_name(b),
                segment_file(header(b, seq, b"MURAKAMI", 1, 64), &frames),
            );
            n_valid = t.n + k;
            (
                format!("a segment at {b} with a {len}-byte frame after {k} records"),
                Expect::Damage {
                    f: b + k,
                    seg: segment_name(b),
                    pos: pos as u64,
                    evidence_lost: false,
                    forced: false,
                },
            )
        }
        _ => {
            // A duplicate of the last segment's records, renamed into the
            // middle of the log with a header that matches the name.
            let s = rng.index(t.segs.len() - 1);
            let b = t.segs[s].base + 1 + rng.below(t.segs[s].frames.len() as u64 - 1);
            let head = header(b, seq, b"MURAKAMI", 1, 64);
            // Its records claim the whole log was durable: that is evidence
            // enough that the gap it leaves is corruption.
            let body: Vec<Vec<u8>> = (0..4).map(|i| frame(b + i, t.n, &payload(b + i))).collect();
            files.insert(segment_name(b), segment_file(head, &body));
            forged = 4;
            (
                format!("an overlapping segment at {b} inside segment {s}"),
                gap_expect(t, b, true),
            )
        }
    };
    Case {
        class: "extra file",
        desc,
        files,
        n_valid,
        forged,
        expect,
        control: Control::Sound,
    }
}

/// The control file (`murakami.tail`) damaged, replaced or removed; the
/// segment files untouched. Recovery never reads it: the log opens intact,
/// and the writer replaces what it cannot use. A reader of the files
/// refuses what is not a control file with a typed error.
fn control_damage(rng: &mut Rng, t: &Template) -> Case {
    const NAME: &str = "murakami.tail";
    let mut files = t.files.clone();
    let sound = files[NAME].clone();
    assert_eq!(sound.len(), 4096, "{}: the writer's control file", t.label);
    assert_eq!(&sound[0..8], b"MRKTAIL\0");
    assert_eq!(u32::from_le_bytes(sound[8..12].try_into().unwrap()), 2);
    let random =
        |rng: &mut Rng, n: usize| -> Vec<u8> { (0..n).map(|_| rng.next() as u8).collect() };
    let (desc, control) = match rng.below(8) {
        0 => {
            files.remove(NAME);
            ("removed".to_string(), Control::Readable)
        }
        1 => {
            let len = match rng.below(2) {
                0 => [0, 1, 8, 12, 63, 64, 4095][rng.index(7)],
                _ => rng.index(4096),
            };
            files.insert(NAME.into(), sound[..len].to_vec());
            (
                format!("cut to {len} bytes"),
                Control::Refused(ControlError::TooShort),
            )
        }
        2 => {
            let len = rng.index(4096);
            files.insert(NAME.into(), random(rng, len));
            (
                format!("{len} random bytes"),
                Control::Refused(ControlError::TooShort),
            )
        }
        3 => {
            let bytes = if rng.below(2) == 0 {
                vec![0; 4096]
            } else {
                let mut b = random(rng, 4096);
                if b[0..8] == *b"MRKTAIL\0" {
                    b[0] ^= 1;
                }
                b
            };
            let what = if bytes.iter().all(|&b| b == 0) {
                "zeros"
            } else {
                "random bytes"
            };
            files.insert(NAME.into(), bytes);
            (
                format!("a page of {what}"),
                Control::Refused(ControlError::BadMagic),
            )
        }
        4 => {
            let mut bytes = sound.clone();
            let bit = rng.below(64);
            bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
            files.insert(NAME.into(), bytes);
            (
                format!("magic bit {bit} flipped"),
                Control::Refused(ControlError::BadMagic),
            )
        }
        5 => {
            let v = [0, 1, 3, 4, 0xFFFF_FFFF, 3 + rng.below(1 << 30) as u32][rng.index(6)];
            let mut bytes = sound.clone();
            bytes[8..12].copy_from_slice(&v.to_le_bytes());
            files.insert(NAME.into(), bytes);
            (
                format!("format version {v}"),
                Control::Refused(ControlError::UnsupportedVersion(v)),
            )
        }
        6 => {
            let extra = 1 + rng.index(8192);
            let mut bytes = sound.clone();
            bytes.extend(random(rng, extra));
            files.insert(NAME.into(), bytes);
            (format!("{extra} bytes longer"), Control::Readable)
        }
        _ => {
            // Magic and version kept; every other word anything (a reader
            // cannot tell), or only the state word.
            let mut bytes = sound.clone();
            let desc = if rng.below(3) == 0 {
                let state = rng.next() as u32;
                bytes[64..68].copy_from_slice(&state.to_le_bytes());
                format!("state word {state:#x}")
            } else {
                let tail = random(rng, 4096 - 12);
                bytes[12..].copy_from_slice(&tail);
                "words scrambled".to_string()
            };
            files.insert(NAME.into(), bytes);
            (desc, Control::Scrambled)
        }
    };
    Case {
        class: "control file",
        desc,
        files,
        n_valid: t.n,
        forged: 0,
        expect: Expect::Intact { first: 0 },
        control,
    }
}

/// Two to four damages of any kind on one log.
fn multi(rng: &mut Rng, t: &Template) -> Case {
    let mut files = t.files.clone();
    let mut desc = Vec::new();
    for _ in 0..2 + rng.below(3) {
        let s = rng.index(t.segs.len());
        let name = t.segs[s].name.clone();
        let Some(mut bytes) = files.get(&name).cloned() else {
            continue;
        };
        match rng.below(5) {
            0 => {
                let at = rng.index(bytes.len().max(1));
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
                desc.push(format!("flip {s}@{at}"));
            }
            1 => {
                let at = pick_position(rng, t, s) / 512 * 512;
                let end = (at + 512).min(bytes.len());
                if at < end {
                    bytes[at..end].fill(0);
                }
                desc.push(format!("zero {s}@{at}"));
            }
            2 => {
                let len = rng.index(bytes.len() + 1);
                bytes.truncate(len);
                desc.push(format!("cut {s} to {len}"));
            }
            3 => {
                files.remove(&name);
                desc.push(format!("remove {s}"));
                continue;
            }
            _ => {
                let at = pick_position(rng, t, s) & !7;
                if at + 8 <= bytes.len() {
                    bytes[at + 4..at + 8].copy_from_slice(&(rng.next() as u32).to_le_bytes());
                }
                desc.push(format!("word {s}@{at}"));
            }
        }
        files.insert(name, bytes);
    }
    Case {
        class: "several",
        desc: desc.join(", "),
        files,
        n_valid: t.n,
        forged: 0,
        expect: Expect::Any,
        control: Control::Sound,
    }
}

fn run_class(class: &str, seeds: u64, make: impl Fn(&mut Rng, &Template) -> Case) {
    let templates = templates();
    let mut tally = Tally::default();
    let seeds = seeds * soak();
    for seed in 0..seeds {
        let t = &templates[(seed % templates.len() as u64) as usize];
        let mut rng = Rng::new(seed ^ ((class.len() as u64) << 32));
        let case = make(&mut rng, t);
        run_case(t, &case, &mut tally);
    }
    report(class, &tally);
}

fn report(class: &str, tally: &Tally) {
    eprintln!(
        "hostile {class}: {} cases; strict refused {}, torn tails repaired {}, \
         intact {}, TruncateCorrupt cut corruption {}, evidence lost {}; \
         {} records read back; Reader::open opened {}, refused {} (torn \
         tails among them {}, segment files not their capacity long {}), \
         stopped silently at corruption {}, read past garbage after a sealed \
         segment {}; {} records read back through readers of the files \
         (recovered logs refused for a segment not its capacity long: {})",
        tally.cases,
        tally.strict_refused,
        tally.torn_repaired,
        tally.intact,
        tally.truncate_corrupt_cuts,
        tally.evidence_lost,
        tally.records_checked,
        tally.reader_opened,
        tally.reader_refused,
        tally.reader_refused_torn,
        tally.reader_refused_length,
        tally.reader_silent_stops,
        tally.reader_past_slack,
        tally.reader_records,
        tally.recovered_refused_length,
    );
    assert!(tally.cases > 0);
}

#[test]
fn bit_flips() {
    run_class("bit flips", 120, flip);
}

#[test]
fn zeroed_sectors() {
    run_class("zeroed sectors", 80, zero_sector);
}

#[test]
fn huge_length_fields() {
    run_class("huge length fields", 40, huge_length);
}

#[test]
fn truncated_files() {
    run_class("truncated files", 80, truncate);
}

#[test]
fn extra_files() {
    run_class("extra files", 90, extra);
}

#[test]
fn missing_segment_files() {
    let templates = templates();
    let mut tally = Tally::default();
    for t in &templates {
        for which in 0..3 {
            run_case(t, &remove(t, which), &mut tally);
        }
    }
    report("missing segment files", &tally);
}

#[test]
fn several_damages_at_once() {
    run_class("several damages", 60, multi);
}

#[test]
fn damaged_control_files() {
    run_class("control file", 60, control_damage);
}

/// A directory where the control file should be: the reader and the writer
/// fail with a typed error (neither removes what is not theirs).
#[test]
fn a_directory_in_place_of_the_control_file_is_a_typed_error() {
    let t = Template::build("directory", 1000, Some(100), true);
    let tmp = tempfile::tempdir().unwrap();
    let mut files = t.files.clone();
    files.remove("murakami.tail");
    write_dir(tmp.path(), &files);
    fs::create_dir(tmp.path().join("murakami.tail")).unwrap();
    match Reader::open(tmp.path()) {
        Err(Error::Io(_) | Error::BadControlFile { .. }) => {}
        other => panic!("reader: {other:?}"),
    }
    match Log::open(tmp.path(), options(Recovery::Strict)) {
        Err(Error::Io(_)) => {}
        Err(other) => panic!("writer: {other}"),
        Ok(_) => panic!("a writer replaced a directory"),
    }
}

#[test]
fn records_that_would_overflow_offsets_are_refused() {
    // A well-formed header whose base leaves room for as many records as
    // its capacity claims, in a file longer than that capacity, holding
    // valid frames up to offset u64::MAX.
    let tmp = tempfile::tempdir().unwrap();
    let base = u64::MAX - 2;
    let mut head = header(base, 0, b"MURAKAMI", 1, 64);
    head[24..32].copy_from_slice(&64u64.to_le_bytes());
    let crc = crc32fast::hash(&head[0..40]);
    head[40..44].copy_from_slice(&crc.to_le_bytes());
    let mut file = head;
    for i in 0..3 {
        file.extend_from_slice(&frame(base + i, 0, b"x"));
    }
    file.resize(4096, 0);
    let path = tmp.path().join(segment_name(base));
    fs::write(&path, &file).unwrap();
    match Log::open(tmp.path(), options(Recovery::Strict)) {
        Err(Error::BadSegmentHeader { segment, reason }) => {
            assert_eq!(segment, path);
            assert_eq!(reason, HeaderError::Inconsistent);
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened a log whose offsets overflow"),
    }
}
