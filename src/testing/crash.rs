//! Crash consistency, proven over simulated files (`sim.rs`): random
//! workloads (appends, batches, syncs, rolls, purges, retention, truncations,
//! restarts at another offset) crash at every storage operation k = 1..K, for many seeds; the image the
//! power loss leaves is reopened and checked against what was acknowledged,
//! then the recovered log takes another workload and another crash.
//!
//! The oracle, after every crash:
//! - the log opens (in strict mode: a crash is never corruption);
//! - every record below the durable offset that was acknowledged (the most
//!   a reader was told) is back, byte-exact;
//! - every record it returns is one that was appended at that offset, in a
//!   history that makes sense (truncations only ever go forward), so no
//!   corrupt record is returned and the log is a prefix of what was written;
//! - records are missing at the front only where a purge or retention asked;
//! - a restart (`Writer::restart_at`) a crash stopped leaves the log as it
//!   was or empty at the restart's offset, nothing else;
//! - a reader of the files (`Reader::open`, through the same simulated
//!   files, as a reader in another process) sees exactly the records the
//!   recovered writer holds: the writer replaced the control file
//!   (`murakami.tail`, never made durable) that the crash may have left
//!   missing, short, zeroed or torn;
//! - before recovery, a reader of the crashed files refuses them with a
//!   typed error or returns only records appended at their offset, in a
//!   history that makes sense, and never changes a file.
//!
//! Three mutants (a roll that forgets the directory fsync; a sync that
//! stores the durable offset before its flushes return; a restart that
//! removes the old segments without committing its marker first) must make
//! it fail.
//!
//! `MURAKAMI_SOAK=N` runs N times more seeds.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::log::Log;
use crate::options::Retention;
use crate::options::{Options, SyncPolicy};
use crate::read::reader::Reader;
use crate::testing::sim::{Image, Mutant, Plan, Rng, SimFs};
use crate::write::writer::Writer;

const SEGMENT: u64 = 4096;
const STEPS: usize = 40;

fn dir() -> PathBuf {
    PathBuf::from("/sim/log")
}

/// `MURAKAMI_SIM_TRACE=1`: print every step and storage operation.
fn tracing() -> bool {
    std::env::var_os("MURAKAMI_SIM_TRACE").is_some()
}

fn soak() -> u64 {
    std::env::var("MURAKAMI_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// A payload that names itself: offset, generation (truncations so far) and
/// a nonce, then bytes derived from them.
fn payload(offset: u64, gen_: u32, nonce: u32, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(&offset.to_le_bytes());
    bytes.extend_from_slice(&gen_.to_le_bytes());
    bytes.extend_from_slice(&nonce.to_le_bytes());
    let mut rng = Rng::new(offset ^ (u64::from(gen_) << 40) ^ (u64::from(nonce) << 20));
    while bytes.len() < len {
        bytes.push(rng.next() as u8);
    }
    bytes
}

/// The generation of a payload, if it is one made by `payload` for `offset`.
fn decode(offset: u64, bytes: &[u8]) -> Option<u32> {
    if bytes.len() < 16 || bytes[..8] != offset.to_le_bytes() {
        return None;
    }
    let gen_ = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let nonce = u32::from_le_bytes(bytes[12..16].try_into().ok()?);
    (payload(offset, gen_, nonce, bytes.len()) == bytes).then_some(gen_)
}

/// What the test knows about the log.
#[derive(Clone, Debug, Default)]
struct Model {
    /// Every record the log holds as far as the test knows, by offset.
    records: BTreeMap<u64, Vec<u8>>,
    /// One past the last record appended.
    next: u64,
    /// The first offset when the log was last opened.
    first: u64,
    /// Records below this must come back: the largest durable offset a
    /// reader was told, lowered by truncations.
    required: u64,
    /// The highest point a purge or retention may have removed records to.
    purged_to: u64,
    /// Truncations and restarts so far.
    gen_: u32,
    /// A restart at this offset failed: a crash may have stopped it before
    /// or after its commit point.
    restart: Option<u64>,
    nonce: u32,
}

/// What one round of workload did.
#[derive(Debug, Default)]
struct Tally {
    runs: u64,
    records_checked: u64,
    recovered_after_crash: u64,
    refused_after_failure: u64,
    /// Failed flushes and fsyncs while a writer was open, each checked to
    /// have latched it.
    latched_flush_failures: u64,
    /// Faults injected, by operation and errno: (cases, surfaced as `Err`).
    classes: BTreeMap<(&'static str, i32), (u64, u64)>,
    /// Scenarios run.
    scenarios: u64,
    /// What power losses left of the control file, by kind.
    control_after_crash: BTreeMap<&'static str, u64>,
    /// Readers of the crashed files (before recovery): opened, and refused
    /// by error.
    readers_before: (u64, BTreeMap<&'static str, u64>),
    /// Of those opened, how many said a first offset past their end (the
    /// first offset comes from the control file, which a power loss may
    /// leave as it was before purges the disk did not keep).
    first_past_end: u64,
    /// Readers of the recovered files, and the records they read.
    readers_after: u64,
    reader_records: u64,
    /// Restarts a crash stopped that recovery found committed.
    restarts_completed: u64,
}

fn options(rng: &mut Rng) -> Options {
    let policy = match rng.below(8) {
        0 | 1 => SyncPolicy::EveryRecords(1 + rng.below(4)),
        2 => SyncPolicy::Always,
        3 => SyncPolicy::Interval(Duration::from_millis(1)),
        _ => SyncPolicy::Explicit,
    };
    let mut retention = Retention::none().max_bytes(4 * SEGMENT);
    if rng.below(4) == 0 {
        // The background cleaner, besides the workload's own cleanups.
        retention = retention.check_every(Duration::from_millis(1));
    }
    Options::default()
        .segment_size(SEGMENT)
        .max_record_size(1024)
        .sync_policy(policy)
        .retention(retention)
}

/// Whether a simulated operation is a flush or an fsync (of a range, a
/// file, a small file, or the directory): one whose failure must latch the
/// writer, on whatever path it ran (sync, purge, cleanup, background
/// cleaner or syncer, truncation, close).
fn is_flush(op: &str) -> bool {
    matches!(
        op,
        "flush range" | "fdatasync" | "fsync directory" | "write file"
    )
}

fn open(fs: &SimFs, options: &Options) -> crate::Result<(Writer, Reader)> {
    Log::open_with(std::sync::Arc::new(fs.clone()), &dir(), options.clone())
}

/// A reader of the files of `fs`, as another process opens one.
fn open_reader(fs: &SimFs) -> crate::Result<Reader> {
    Reader::open_with(std::sync::Arc::new(fs.clone()), &dir())
}

/// What a power loss left of the control file.
fn control_kind(image: &Image) -> &'static str {
    let path = dir().join(crate::storage::control::CONTROL_NAME);
    let tmp = dir().join(format!("{}.tmp", crate::storage::control::CONTROL_NAME));
    match image.get(&path) {
        None if image.contains_key(&tmp) => "missing, its prepared file left",
        None => "missing",
        Some(bytes) if bytes.len() < crate::format::CONTROL_LEN => "short",
        Some(bytes) if bytes[..8] != crate::format::CONTROL_MAGIC.to_le_bytes() => {
            if bytes.iter().all(|&b| b == 0) {
                "zeros"
            } else {
                "torn or foreign"
            }
        }
        Some(_) => "sound",
    }
}

/// Checks a record a reader returned at `offset` against what the test
/// knows (`model`: the history before recovery): one that was appended at
/// that offset, in this history, and byte-exact below the durable point.
/// `last_gen`: the generation of the record before it.
fn check_record(
    model: &Model,
    offset: u64,
    bytes: &[u8],
    last_gen: &mut u32,
) -> Result<(), String> {
    let Some(gen_) = decode(offset, bytes) else {
        return Err(format!("record {offset} is not one that was written"));
    };
    if gen_ < *last_gen {
        return Err(format!(
            "record {offset} is from before a truncation it follows"
        ));
    }
    *last_gen = gen_;
    // A record the current history does not have at that offset, or
    // has differently, is one from a history a crash or a truncation
    // discarded coming back.
    let known = model.records.get(&offset);
    if known.is_none() && offset >= model.next {
        return Err(format!(
            "record {offset} was never appended in this history"
        ));
    }
    if known.is_some_and(|want| want != bytes) {
        return Err(format!(
            "record {offset} is not the one this history appended"
        ));
    }
    if offset < model.required && known.map(Vec::as_slice) != Some(bytes) {
        let want = known.map(|b| (decode(offset, b), b.len()));
        return Err(format!(
            "durable record {offset} came back different: (gen, len) {:?}, want {want:?}",
            (gen_, bytes.len())
        ));
    }
    Ok(())
}

/// Opens a reader of the crashed files of `fs` before any writer recovers
/// them, reads all it offers and checks every record against `model` (what
/// the files hold as far as the test knows), and its offsets against what
/// recovery keeps (`inspect`, which `check` holds to what recovery does):
/// it must end where the recovered log ends and show nothing below where
/// it starts. It must not change a file. The reader is gone when this
/// returns.
fn check_reader_before(fs: &SimFs, model: &Model, tally: &mut Tally) -> Result<(), String> {
    let before = fs.snapshot();
    let kept = crate::recovery::inspect(fs, &dir())
        .map(|i| (i.first_offset, i.next_offset))
        .map_err(|e| format!("inspect failed: {e}"))?;
    let reader = match open_reader(fs) {
        Ok(reader) => reader,
        Err(e) => {
            let kind = match e {
                Error::Corrupt { .. } => "Corrupt",
                Error::BadSegmentHeader { .. } => "BadSegmentHeader",
                Error::BadControlFile { .. } => "BadControlFile",
                Error::Io(_) => "Io",
                e => return Err(format!("a reader of the crashed files: untyped {e:?}")),
            };
            *tally.readers_before.1.entry(kind).or_default() += 1;
            return Ok(());
        }
    };
    tally.readers_before.0 += 1;
    let (first, next) = (reader.first_offset(), reader.next_offset());
    tally.first_past_end += u64::from(first > next);
    if next != kept.1 || first < kept.0 {
        return Err(format!(
            "a reader of the crashed files shows (first, next) {:?}, recovery keeps {kept:?}",
            (first, next)
        ));
    }
    if first <= next {
        let mut cursor = reader
            .cursor(first)
            .map_err(|e| format!("a reader of the crashed files: cursor at {first}: {e}"))?;
        let mut last_gen = 0;
        for offset in first..next {
            let record = match cursor.next() {
                Some(Ok(record)) if record.offset == offset => record,
                other => {
                    return Err(format!(
                        "a reader of the crashed files: at {offset}: {other:?}"
                    ));
                }
            };
            check_record(model, offset, &record.payload, &mut last_gen)
                .map_err(|e| format!("a reader of the crashed files: {e}"))?;
        }
    }
    drop(reader);
    if fs.snapshot() != before {
        return Err("a reader of the crashed files changed them".into());
    }
    Ok(())
}

/// Runs `STEPS` random steps on an open log, updating the model. Stops at
/// the first error (returned).
fn workload(
    writer: &mut Writer,
    reader: &Reader,
    model: &mut Model,
    rng: &mut Rng,
) -> Option<Error> {
    for _ in 0..STEPS {
        // A failed restart that the workload goes on after changed nothing.
        model.restart = None;
        let mut attempted = Vec::new();
        let step = rng.below(100);
        let result = match step {
            0..50 => {
                let len = 16 + rng.below(600) as usize;
                model.nonce += 1;
                attempted.push(payload(model.next, model.gen_, model.nonce, len));
                writer.append(&attempted[0]).map(drop)
            }
            50..62 => {
                let n = 1 + rng.below(6);
                for i in 0..n {
                    model.nonce += 1;
                    let len = 16 + rng.below(200) as usize;
                    attempted.push(payload(model.next + i, model.gen_, model.nonce, len));
                }
                writer.append_batch(&attempted).map(drop)
            }
            62..80 => writer.sync().map(drop),
            80..85 => {
                let first = reader.first_offset();
                let to = first + rng.below(model.next - first + 1);
                model.purged_to = model.purged_to.max(to);
                writer.purge_before(to).map(drop)
            }
            85..89 => {
                model.purged_to = model.next;
                writer.cleanup().map(drop)
            }
            92..95 => {
                let first = reader.first_offset();
                let at = match rng.below(3) {
                    0 => model.next + rng.below(3 * SEGMENT),
                    1 => first + rng.below(model.next - first + 1),
                    _ => first.saturating_sub(rng.below(20)),
                };
                let done = writer.restart_at(at);
                match done {
                    Ok(()) => restarted(model, at),
                    Err(_) => model.restart = Some(at),
                }
                done
            }
            89..92 if model.next > reader.first_offset() => {
                let first = reader.first_offset();
                let at = first + 1 + rng.below(model.next - first);
                model.required = model.required.min(at);
                let done = writer.truncate_from(at);
                if done.is_ok() {
                    model.records.split_off(&at);
                    model.next = at;
                    model.gen_ += 1;
                }
                done
            }
            _ => {
                // A read in the middle: what readers see is what was written.
                if model.next > reader.first_offset() {
                    let first = reader.first_offset();
                    let at = first + rng.below(model.next - first);
                    match reader.read(at) {
                        Ok(bytes) => assert_eq!(Some(&bytes), model.records.get(&at), "read {at}"),
                        Err(Error::Purged { .. }) => {}
                        Err(e) => panic!("read {at}: {e}"),
                    }
                }
                Ok(())
            }
        };
        if tracing() {
            eprintln!(
                "step {step}: {result:?}, next {} durable {}",
                reader.next_offset(),
                reader.durable_offset()
            );
        }
        // What was published (even by an append whose sync then failed)
        // is in the log.
        let published = reader.next_offset();
        for bytes in attempted {
            if model.next < published {
                model.records.insert(model.next, bytes);
                model.next += 1;
            }
        }
        // What readers were told is durable must survive.
        model.required = model.required.max(reader.durable_offset());
        if let Err(e) = result {
            return Some(e);
        }
    }
    None
}

/// The model after a restart at `at`: nothing left, everything starts at
/// `at`, and what follows is a new history.
fn restarted(model: &mut Model, at: u64) {
    model.records.clear();
    model.next = at;
    model.first = at;
    model.required = at;
    model.purged_to = at;
    model.gen_ += 1;
    model.restart = None;
}

/// Checks that an inspection of the crashed files (`Log::inspect`, before
/// recovery) said what recovery then did.
fn check_inspection(seen: &crate::Inspection, did: &crate::RecoveryReport) -> Result<(), String> {
    let said = (
        seen.clean_shutdown,
        seen.first_offset,
        seen.next_offset,
        seen.problem.as_ref().and_then(|p| p.cut.clone()),
    );
    let done = (
        did.clean_shutdown,
        did.first_offset,
        did.next_offset,
        did.cut.clone(),
    );
    if said != done {
        return Err(format!(
            "inspection said (clean, first, next, cut) {said:?}, recovery did {done:?}"
        ));
    }
    if let Some(p) = &seen.problem
        && !p.torn_tail
    {
        return Err(format!(
            "inspection calls a crash's damage corruption: {p:?}"
        ));
    }
    if seen.writer.is_some() {
        return Err("inspection sees a writer where none is".into());
    }
    Ok(())
}

/// Reopens `fs` (no faults) and checks it against the model; returns the
/// model of the recovered log.
fn check(fs: &SimFs, options: &Options, model: &Model, tally: &mut Tally) -> Result<Model, String> {
    let before = fs.snapshot();
    let inspection =
        crate::recovery::inspect(fs, &dir()).map_err(|e| format!("inspect failed: {e}"))?;
    if fs.snapshot() != before {
        return Err("inspecting the crashed files changed them".into());
    }
    let (writer, reader) = open(fs, options).map_err(|e| format!("reopen failed: {e}"))?;
    if tracing() {
        eprintln!("check: {:?}", writer.recovery_report());
    }
    check_inspection(&inspection, writer.recovery_report())?;
    let first = reader.first_offset();
    let end = reader.next_offset();
    let mut after_restart = model.clone();
    if let Some(at) = model.restart
        && (first, end) == (at, at)
    {
        tally.restarts_completed += 1;
        restarted(&mut after_restart, at);
    }
    let model = &after_restart;
    if first > model.first.max(model.purged_to) {
        return Err(format!(
            "records from {} to {first} vanished (no purge asked past {})",
            model.first, model.purged_to
        ));
    }
    if end < model.required {
        return Err(format!(
            "durable records lost: log ends at {end}, {} were durable",
            model.required
        ));
    }
    let mut recovered = Model {
        next: end,
        first,
        // Not this reopen's durable offset: it repaired a copy; the next
        // round repairs its own files again.
        required: model.required,
        purged_to: model.purged_to.max(first),
        gen_: model.gen_,
        nonce: model.nonce,
        ..Model::default()
    };
    // Records purged but not yet forgotten by the disk (a removal whose
    // directory change did not last) may come back later: remember them.
    recovered.records = model
        .records
        .range(..first)
        .map(|(&o, b)| (o, b.clone()))
        .collect();
    let mut last_gen = 0;
    let mut cursor = reader
        .cursor(first)
        .map_err(|e| format!("cursor at {first}: {e}"))?;
    for offset in first..end {
        let bytes = reader
            .read(offset)
            .map_err(|e| format!("read {offset}: {e}"))?;
        check_record(model, offset, &bytes, &mut last_gen)?;
        match cursor.next_ref() {
            Ok(Some(r)) if r.offset == offset && r.payload == bytes.as_slice() => {}
            other => return Err(format!("cursor disagrees at {offset}: {other:?}")),
        }
        recovered.records.insert(offset, bytes);
        tally.records_checked += 1;
    }
    drop(cursor);
    // A reader of the files, as another process opens one, through the same
    // files: it sees exactly what the recovered writer holds, durable as the
    // writer says. (It opens only if the writer replaced the control file a
    // power loss may have left missing, short or garbage.)
    let files = open_reader(fs).map_err(|e| format!("a reader of the recovered files: {e}"))?;
    let seen = (
        files.first_offset(),
        files.next_offset(),
        files.durable_offset(),
    );
    if seen != (first, end, reader.durable_offset()) {
        return Err(format!(
            "a reader of the recovered files sees (first, next, durable) {seen:?}, the writer {:?}",
            (first, end, reader.durable_offset())
        ));
    }
    let mut cursor = files
        .cursor(first)
        .map_err(|e| format!("a reader of the recovered files: cursor at {first}: {e}"))?;
    for (&offset, bytes) in recovered.records.range(first..end) {
        let by_offset = files
            .read(offset)
            .map_err(|e| format!("a reader of the recovered files: read {offset}: {e}"))?;
        match cursor.next_ref() {
            Ok(Some(r)) if r.offset == offset && r.payload == bytes.as_slice() => {}
            other => {
                return Err(format!(
                    "a reader of the recovered files: cursor at {offset}: {other:?}"
                ));
            }
        }
        if &by_offset != bytes {
            return Err(format!(
                "a reader of the recovered files: record {offset} differs"
            ));
        }
        tally.reader_records += 1;
    }
    if !matches!(cursor.next_ref(), Ok(None)) {
        return Err("a reader of the recovered files reads past the end".into());
    }
    tally.readers_after += 1;
    drop((cursor, files));
    drop(writer);
    Ok(recovered)
}

/// Where a round starts: the files, and whether the machine lost power or
/// only the process died.
enum Start {
    Power(Image),
    Process(SimFs),
}

impl Start {
    fn fs(&self, plan: Plan, mutant: Mutant) -> SimFs {
        match self {
            Start::Power(image) => SimFs::new(image, plan, mutant),
            Start::Process(fs) => fs.after_process_crash(plan),
        }
    }
}

/// One round: open `start` with the power going at operation `k` (or never),
/// run a workload, stop; returns how the disk was left and the model.
fn round(
    start: &Start,
    plan: Plan,
    mutant: Mutant,
    options: &Options,
    model: &mut Model,
    rng: &mut Rng,
) -> (Start, bool) {
    let fs = start.fs(plan, mutant);
    let opened = open(&fs, options);
    let recovered = opened.is_ok();
    if let Ok((mut writer, reader)) = opened {
        model.required = model.required.max(reader.durable_offset());
        workload(&mut writer, &reader, model, rng);
        if plan == Plan::Nothing {
            fs.cut_power();
        }
        drop(writer);
        if tracing() {
            eprintln!(
                "after close: next {} durable {}",
                reader.next_offset(),
                reader.durable_offset()
            );
        }
        model.required = model.required.max(reader.durable_offset());
    }
    if tracing() {
        eprintln!("round with {plan:?}:\n{}", fs.trace());
    }
    let start = if rng.one_in(3) {
        if tracing() {
            eprintln!("process crash");
        }
        Start::Process(fs)
    } else {
        let image = fs.crash_image(rng);
        if tracing() {
            let files: Vec<_> = image
                .iter()
                .map(|(name, bytes)| (name.file_name(), bytes.len()))
                .collect();
            eprintln!("power loss leaves {files:?}");
        }
        Start::Power(image)
    };
    (start, recovered)
}

/// Runs a seed's scenario crashing at operation `k` of its first round;
/// later rounds crash at random operations. Returns the first violation.
fn scenario(seed: u64, k: u64, mutant: Mutant, tally: &mut Tally) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let options = options(&mut rng);
    // `history`: what the files of `start` hold as far as the test knows
    // (before recovery); `model`: what recovering them gives.
    let mut history = Model::default();
    let mut model = Model::default();
    let mut start = Start::Power(Image::new());
    let mut plan = Plan::CrashAt(k);
    for _ in 0..3 {
        let (next, opened) = round(&start, plan, mutant, &options, &mut model, &mut rng);
        start = next;
        if !opened {
            // The recovery that would have given `model` never finished:
            // what it did may or may not have lasted.
            model = history;
        }
        tally.runs += 1;
        if let Start::Power(image) = &start {
            *tally
                .control_after_crash
                .entry(control_kind(image))
                .or_default() += 1;
        }
        let verify = start.fs(Plan::Nothing, Mutant::None);
        check_reader_before(&verify, &model, tally)?;
        if tracing() {
            eprintln!(
                "model: next {} required {} purged to {} gen {}",
                model.next, model.required, model.purged_to, model.gen_
            );
        }
        history = model;
        model = check(&verify, &options, &history, tally)?;
        tally.recovered_after_crash += 1;
        plan = Plan::CrashAt(1 + rng.below(80));
    }
    Ok(())
}

/// Operations a seed's first round performs when nothing fails.
fn operations(seed: u64) -> u64 {
    let mut rng = Rng::new(seed);
    let options = options(&mut rng);
    let fs = SimFs::new(&Image::new(), Plan::Nothing, Mutant::None);
    let (mut writer, reader) = open(&fs, &options).expect("open");
    let error = workload(&mut writer, &reader, &mut Model::default(), &mut rng);
    assert!(
        error.is_none(),
        "seed {seed} fails with nothing failing: {error:?}"
    );
    drop(writer);
    fs.ops()
}

/// Crashes every seed at every operation; returns the violations.
fn sweep(seeds: std::ops::Range<u64>, mutant: Mutant, tally: &mut Tally) -> Vec<String> {
    let mut failures = Vec::new();
    for seed in seeds {
        let ops = operations(seed);
        for k in 1..=ops + 1 {
            tally.scenarios += 1;
            if let Err(e) = scenario(seed, k, mutant, tally) {
                failures.push(format!("seed {seed}, crash at operation {k}: {e}"));
            }
        }
    }
    failures
}

#[test]
#[ignore = "for debugging: MURAKAMI_SIM_CASE=seed,k[,errno] MURAKAMI_SIM_TRACE=1"]
fn one_case() {
    let case = std::env::var("MURAKAMI_SIM_CASE").unwrap_or_default();
    let numbers: Vec<u64> = case.split(',').map(|n| n.parse().unwrap()).collect();
    let mut tally = Tally::default();
    match numbers[..] {
        [seed, k] => scenario(seed, k, Mutant::None, &mut tally).unwrap(),
        [seed, k, code] => fault(seed, k, code as i32, &mut tally).unwrap(),
        _ => panic!("MURAKAMI_SIM_CASE=seed,k[,errno]"),
    }
}

#[test]
fn every_crash_point_keeps_what_was_acknowledged() {
    let mut tally = Tally::default();
    let failures = sweep(0..16 * soak(), Mutant::None, &mut tally);
    eprintln!(
        "crash sweep: {} seeds x every operation = {} scenarios, {} crashed rounds, {} recoveries checked, {} records checked, {} restarts stopped by a crash found committed",
        16 * soak(),
        tally.scenarios,
        tally.runs,
        tally.recovered_after_crash,
        tally.records_checked,
        tally.restarts_completed
    );
    eprintln!(
        "  readers of the files: {} crashed directories opened ({} with a first offset past \
         their end), refused {:?}; {} recovered ones read whole, {} records",
        tally.readers_before.0,
        tally.first_past_end,
        tally.readers_before.1,
        tally.readers_after,
        tally.reader_records
    );
    for (kind, n) in &tally.control_after_crash {
        eprintln!("  control file after a power loss: {kind}: {n}");
    }
    assert!(
        failures.is_empty(),
        "{} violations, first: {}",
        failures.len(),
        failures[0]
    );
    assert!(
        tally.records_checked > 1000,
        "the workloads wrote too little to prove anything"
    );
    // The control file is never made durable: power losses must have left
    // it in every state the writer has to replace.
    for kind in ["missing", "short", "zeros", "sound"] {
        let n = tally.control_after_crash.get(kind).copied().unwrap_or(0);
        assert!(n > 0, "no power loss left the control file {kind}");
    }
    assert!(tally.readers_before.0 > 0 && !tally.readers_before.1.is_empty());
    assert!(
        tally.restarts_completed > 0,
        "no crash stopped a restart after its commit point"
    );
}

fn caught(mutant: Mutant) -> usize {
    let mut tally = Tally::default();
    let failures = sweep(100..106, mutant, &mut tally);
    eprintln!(
        "{mutant:?}: caught in {} of {} crash scenarios",
        failures.len(),
        tally.scenarios
    );
    if let Some(first) = failures.first() {
        eprintln!("  e.g. {first}");
    }
    failures.len()
}

#[test]
fn a_roll_without_a_directory_fsync_is_caught() {
    assert!(caught(Mutant::NoDirSyncAfterRoll) > 0);
}

#[test]
fn a_durable_offset_stored_before_the_flush_is_caught() {
    assert!(caught(Mutant::DurableBeforeFlush) > 0);
}

#[test]
fn a_restart_without_its_marker_is_caught() {
    assert!(caught(Mutant::RestartWithoutMarker) > 0);
}

/// Runs a seed with operation `k` failing with `errno` (no crash); checks
/// that the error surfaces, that a failed flush latches the writer and
/// never lets the durable offset pass it, and that reopening recovers.
fn fault(seed: u64, k: u64, code: i32, tally: &mut Tally) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let options = options(&mut rng);
    let fs = SimFs::new(&Image::new(), Plan::FailAt(k, code), Mutant::None);
    let mut model = Model::default();
    let surfaced = match open(&fs, &options) {
        Ok((mut writer, reader)) => {
            let error = workload(&mut writer, &reader, &mut model, &mut rng);
            match &error {
                Some(Error::Poisoned { .. }) => {
                    let durable = reader.durable_offset();
                    let next = reader.next_offset();
                    if writer
                        .append(&payload(model.next, model.gen_, 0, 16))
                        .is_ok()
                    {
                        return Err("a poisoned writer took an append".into());
                    }
                    if writer.sync().is_ok() || reader.durable_offset() != durable {
                        return Err("a poisoned writer synced".into());
                    }
                    if reader.next_offset() != next {
                        return Err("a poisoned writer published a record".into());
                    }
                    tally.refused_after_failure += 1;
                }
                Some(Error::Io(_)) if fs.hit().is_some_and(is_flush) => {
                    return Err(format!(
                        "a failed {} surfaced as a plain I/O error, not latched",
                        fs.hit().unwrap_or_default()
                    ));
                }
                Some(Error::Io(_)) => {
                    // Not latched (the failure lost nothing durable): the
                    // writer goes on, or fails again, cleanly.
                    workload(&mut writer, &reader, &mut model, &mut rng);
                }
                Some(other) => return Err(format!("unexpected error: {other}")),
                None => {}
            }
            // Closing joins the background threads, syncs and writes the
            // clean marker: its failure is reported too, and after any
            // failed flush or fsync (foreground or background) it must find
            // the writer latched.
            let failed_before_close = fs.hit().is_some();
            let closed = writer.close();
            if let Some(op) = fs.hit().filter(|op| is_flush(op)) {
                // The one failure close reports unlatched: writing the
                // clean-shutdown marker, after a sync that succeeded.
                let marker = !failed_before_close
                    && matches!(op, "write file" | "fsync directory")
                    && matches!(closed, Err(Error::Io(_)));
                if !marker && !matches!(closed, Err(Error::Poisoned { .. })) {
                    return Err(format!(
                        "a failed {op} did not latch the writer: close gave {closed:?}"
                    ));
                }
                tally.latched_flush_failures += 1;
            }
            error.is_some() || closed.is_err()
        }
        Err(Error::Io(_) | Error::Poisoned { .. }) => true,
        Err(e) => return Err(format!("open failed with an unexpected error: {e}")),
    };
    tally.runs += 1;
    if let Some(op) = fs.hit() {
        let class = tally.classes.entry((op, code)).or_default();
        class.0 += 1;
        class.1 += u64::from(surfaced);
    }
    if tracing() {
        eprintln!("faulty run:\n{}", fs.trace());
    }
    // Whatever failed, the files are a log: reopening with nothing failing
    // (a process restart) recovers it, and so does a power loss now.
    check(
        &fs.after_process_crash(Plan::Nothing),
        &options,
        &model,
        tally,
    )?;
    let image = fs.crash_image(&mut rng);
    check(
        &SimFs::new(&image, Plan::Nothing, Mutant::None),
        &options,
        &model,
        tally,
    )?;
    tally.recovered_after_crash += 1;
    Ok(())
}

#[test]
fn an_io_error_at_any_operation_surfaces_and_is_recovered_from() {
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for seed in 200..200 + 8 * soak() {
        let ops = operations(seed);
        for k in 1..=ops {
            for code in [libc::EIO, libc::ENOSPC] {
                if let Err(e) = fault(seed, k, code, &mut tally) {
                    failures.push(format!("seed {seed}, errno {code} at operation {k}: {e}"));
                }
            }
        }
    }
    eprintln!(
        "I/O faults: {} cases, {} writers refused appends after a failed flush, \
         {} failed flushes or fsyncs found latched at close, {} records checked",
        tally.runs,
        tally.refused_after_failure,
        tally.latched_flush_failures,
        tally.records_checked
    );
    for ((op, code), (cases, surfaced)) in &tally.classes {
        eprintln!("  {op}, errno {code}: {cases} cases, {surfaced} surfaced as Err");
    }
    assert!(
        failures.is_empty(),
        "{} violations, first: {}",
        failures.len(),
        failures[0]
    );
    assert!(tally.refused_after_failure > 0);
    assert!(tally.latched_flush_failures > 0);
}
