//! `murakami stat`: what a log holds, from its files.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use clap::Args;
use indicatif::HumanBytes;
use murakami::{Inspection, Log, LogState, Reader, SegmentInfo};
use serde_json::{Value, json};

use crate::DirArg;
use crate::fail::{self, Code, Failure};
use crate::time;

/// Show a log's segments, offsets, shutdown state and disk use.
///
/// Reads the files without changing them and without taking the log's
/// lock, so it works on a log a writer has open (the active segment is then
/// a snapshot; the offsets come from the writer's control file).
///
/// Example: murakami stat /var/lib/app/journal --json
#[derive(Args, Debug)]
pub struct StatArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Print JSON (one object) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `stat` shows: the inspection, and for a live log the offsets its
/// writer publishes.
struct Stat {
    inspection: Inspection,
    /// (first, next, durable): from a reader of the live log, else from the
    /// inspection.
    offsets: (u64, u64, u64),
    /// Bytes the directory's files take on disk.
    disk_bytes: u64,
}

pub fn run(args: StatArgs) -> Result<Code, Failure> {
    let dir = &args.dir.dir;
    fail::existing_dir(dir)?;
    let inspection = Log::inspect(dir).map_err(|e| Failure::log(dir, e))?;
    if inspection.state == LogState::Absent {
        return Err(not_a_log(dir));
    }
    let mut offsets = (
        inspection.first_offset,
        inspection.next_offset,
        inspection.durable_offset,
    );
    if inspection.state == LogState::Live {
        if let Ok(reader) = Reader::open(dir) {
            offsets = (
                reader.first_offset(),
                reader.next_offset(),
                reader.durable_offset(),
            );
        }
    }
    let stat = Stat {
        disk_bytes: disk_use(dir).map_err(|e| Failure::io(dir, &e))?,
        inspection,
        offsets,
    };
    let text = if args.json {
        format!("{:#}\n", to_json(&stat))
    } else {
        to_text(&stat)
    };
    fail::answer(&text, Code::Ok)
}

/// The size of a log's active segment: its last segment with a sound
/// header (a headless last one, a crash's, is cut by the next open).
pub fn active_segment_size(i: &Inspection) -> Option<u64> {
    i.segments
        .iter()
        .rev()
        .find(|s| s.header_error.is_none())
        .map(|s| s.capacity)
}

pub fn not_a_log(dir: &Path) -> Failure {
    Failure::new(
        Code::NotALog,
        format!("{}: not a murakami log (no segment files)", dir.display()),
    )
}

/// Bytes the files of `dir` take on disk (allocated blocks: a segment is
/// reserved whole when it is created).
fn disk_use(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        // A live writer removes files as they are counted (purges).
        let meta = match entry.and_then(|e| e.metadata()) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_file() {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The state line: what the directory holds, as a whole.
pub fn state_text(i: &Inspection) -> String {
    match i.state {
        LogState::Live => match i.writer.and_then(|w| w.pid) {
            Some(pid) => format!("live: a writer (pid {pid}) has it open"),
            None => "live: a writer has it open".to_owned(),
        },
        LogState::Closed => "closed cleanly".to_owned(),
        LogState::Unclean => {
            "not closed cleanly (the last writer crashed or was killed): the next open repairs it"
                .to_owned()
        }
        _ => "not a murakami log".to_owned(),
    }
}

fn to_text(stat: &Stat) -> String {
    use std::fmt::Write;
    let i = &stat.inspection;
    let (first, next, durable) = stat.offsets;
    let mut s = String::new();
    let reserved: u64 = i.segments.iter().map(|g| g.capacity).sum();
    let used: u64 = i.segments.iter().map(|g| g.used_bytes).sum();
    let sealed = i.segments.iter().filter(|g| g.sealed).count();
    let _ = writeln!(s, "log         {}", i.dir.display());
    let _ = writeln!(s, "state       {}", state_text(i));
    let _ = writeln!(
        s,
        "offsets     first {first}, next {next}, durable {durable} ({} records)",
        next - first
    );
    let _ = writeln!(
        s,
        "segments    {} ({sealed} sealed, {} active): {} used of {} reserved; {} on disk",
        i.segments.len(),
        i.segments.len() - sealed,
        HumanBytes(used),
        HumanBytes(reserved),
        HumanBytes(stat.disk_bytes)
    );
    let control = match &i.control {
        None => "none (no writer has opened this log since format version 2)".to_owned(),
        Some(Err(e)) => format!("murakami.tail is damaged: {e}"),
        Some(Ok(c)) => format!(
            "murakami.tail: writer opens {}, generation {}, {}, {} sleeping reader(s)",
            c.epoch,
            c.generation,
            if c.closed {
                "closed"
            } else if c.open {
                "open"
            } else {
                "never opened"
            },
            c.sleepers
        ),
    };
    let _ = writeln!(s, "control     {control}");
    if i.truncations.is_empty() {
        let _ = writeln!(s, "truncations none pending");
    }
    for t in &i.truncations {
        let _ = writeln!(
            s,
            "truncation  {} cuts the segment at {} from offset {} (the next open finishes it)",
            file_name(&t.marker),
            t.segment_base,
            t.at
        );
    }
    for l in &i.leftovers {
        if i.state == LogState::Live && l.file_name().is_some_and(|n| n == "murakami-next.tmp") {
            let _ = writeln!(s, "in progress {} (the writer's, being made)", file_name(l));
        } else {
            let _ = writeln!(s, "leftover    {} (the next open removes it)", file_name(l));
        }
    }
    let problem = match &i.problem {
        None => "none".to_owned(),
        Some(p) if i.state == LogState::Live => format!(
            "{} at byte {} of {} (offset {}), seen while a writer is at work: \
             run `murakami verify` to check the live log",
            p.kind,
            p.position,
            file_name(&p.segment),
            p.offset
        ),
        Some(p) => format!(
            "{}; run `murakami verify` for details",
            crate::verify::problem_line(p)
        ),
    };
    let _ = writeln!(s, "problem     {problem}");
    if !i.segments.is_empty() {
        let head = format!(
            "{:<26} {:>12} {:>10} {:>23}  {:<6}  {:<27}  {}",
            "FILE", "BASE", "RECORDS", "USED / RESERVED", "STATE", "OLDEST", "NEWEST"
        );
        let _ = writeln!(s, "\n{head}");
    }
    for g in &i.segments {
        let (oldest, newest) = match g.timestamps {
            Some((a, b)) => (time::human(a), time::human(b)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let state = match g.header_error {
            Some(_) => "bad",
            None if g.sealed => "sealed",
            None => "active",
        };
        let _ = writeln!(
            s,
            "{:<26} {:>12} {:>10} {:>23}  {:<6}  {:<27}  {}",
            file_name(&g.path),
            g.base_offset,
            g.records,
            format!("{} / {}", HumanBytes(g.used_bytes), HumanBytes(g.capacity)),
            state,
            oldest,
            newest
        );
        if let Some(e) = g.header_error {
            let _ = writeln!(s, "  {}: {e}", file_name(&g.path));
        }
    }
    s
}

fn segment_json(g: &SegmentInfo) -> Value {
    json!({
        "file": file_name(&g.path),
        "base_offset": g.base_offset,
        "sequence": g.sequence,
        "version": g.version,
        "records": g.records,
        "used_bytes": g.used_bytes,
        "capacity": g.capacity,
        "file_len": g.file_len,
        "sealed": g.sealed,
        "oldest": g.timestamps.map(|t| t.0),
        "newest": g.timestamps.map(|t| t.1),
        "oldest_time": g.timestamps.map(|t| time::human(t.0)),
        "newest_time": g.timestamps.map(|t| time::human(t.1)),
        "checkpoint": g.checkpoint,
        "header_error": g.header_error.map(|e| e.to_string()),
    })
}

fn to_json(stat: &Stat) -> Value {
    let i = &stat.inspection;
    let (first, next, durable) = stat.offsets;
    let state = match i.state {
        LogState::Live => "live",
        LogState::Closed => "closed",
        LogState::Unclean => "unclean",
        _ => "absent",
    };
    let control = match &i.control {
        None => Value::Null,
        Some(Err(e)) => json!({ "error": e.to_string() }),
        Some(Ok(c)) => json!({
            "version": c.version,
            "epoch": c.epoch,
            "generation": c.generation,
            "open": c.open,
            "closed": c.closed,
            "active_base": c.active_base,
            "durable_offset": c.durable_offset,
            "first_offset": c.first_offset,
            "restarted_below": c.restarted_below,
            "sleepers": c.sleepers,
        }),
    };
    json!({
        "dir": i.dir.display().to_string(),
        "state": state,
        "writer": i.writer.map(|w| json!({ "pid": w.pid })),
        "clean_shutdown": i.clean_shutdown,
        "first_offset": first,
        "next_offset": next,
        "durable_offset": durable,
        "records": next - first,
        "segments": i.segments.iter().map(segment_json).collect::<Vec<_>>(),
        "used_bytes": i.segments.iter().map(|g| g.used_bytes).sum::<u64>(),
        "reserved_bytes": i.segments.iter().map(|g| g.capacity).sum::<u64>(),
        "disk_bytes": stat.disk_bytes,
        "truncations": i.truncations.iter().map(|t| json!({
            "marker": file_name(&t.marker),
            "segment_base": t.segment_base,
            "at": t.at,
        })).collect::<Vec<_>>(),
        "leftovers": i.leftovers.iter().map(|p| file_name(p)).collect::<Vec<_>>(),
        "control": control,
        "problem": i.problem.as_ref().map(crate::verify::problem_json),
    })
}
