//! `murakami repair`: what opening a log does, done explicitly.

use std::path::Path;

use clap::Args;
use indicatif::HumanBytes;
use murakami::{
    CutReason, DEFAULT_SEGMENT_SIZE, Error, Inspection, Log, LogState, Options, Recovery,
};

use crate::DirArg;
use crate::fail::{self, Code, Failure};
use crate::verify::{consequence, problem_line};

/// Repair a log as opening it would: cut a torn tail, remove leftovers,
/// make everything kept durable, and close it cleanly.
///
/// Refuses while a writer holds the log (exit 5). Corruption a crash cannot
/// explain is refused too (exit 2) unless --truncate-corruption says to cut
/// the log before it, dropping what follows.
///
/// Example: murakami repair /var/lib/app/journal --dry-run
#[derive(Args, Debug)]
pub struct RepairArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Cut the log before corruption too (what opening with
    /// `Recovery::TruncateCorrupt` does): the damaged record and every
    /// record after it are dropped.
    #[arg(long)]
    pub truncate_corruption: bool,
    /// Say what would be done, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: RepairArgs) -> Result<Code, Failure> {
    let dir = &args.dir.dir;
    fail::existing_dir(dir)?;
    let inspection = Log::inspect(dir).map_err(|e| Failure::log(dir, e))?;
    match inspection.state {
        LogState::Absent => return Err(crate::stat::not_a_log(dir)),
        LogState::Live => return Err(held(dir, &inspection)),
        _ => {}
    }
    let corrupt = inspection.problem.as_ref().is_some_and(|p| !p.torn_tail);
    let mut out = String::new();
    if args.dry_run {
        plan(&inspection, args.truncate_corruption, &mut out);
        // Without --truncate-corruption, the repair would fail.
        let code = if corrupt && !args.truncate_corruption {
            Code::Corrupt
        } else {
            Code::Ok
        };
        return fail::answer(&out, code);
    }
    if corrupt && !args.truncate_corruption {
        let p = inspection.problem.as_ref().expect("checked");
        return Err(Failure::new(
            Code::Corrupt,
            format!(
                "{}: refusing to cut corruption without --truncate-corruption",
                problem_line(p)
            ),
        ));
    }
    let spinner = crate::progress::spinner(format!("repairing {}", dir.display()));
    let repaired = repair(dir, &inspection, args.truncate_corruption);
    spinner.finish_and_clear();
    let report = repaired?;
    summary(&inspection, &report, &mut out);
    fail::answer(&out, Code::Ok)
}

fn held(dir: &Path, i: &Inspection) -> Failure {
    let who = match i.writer.and_then(|w| w.pid) {
        Some(pid) => format!("a writer (pid {pid})"),
        None => "a writer".to_owned(),
    };
    Failure::new(
        Code::Locked,
        format!("{}: held by {who}; stop it before repairing", dir.display()),
    )
}

/// Opens the log as a writer would (taking its lock, which refuses a
/// writer that started since the inspection) and closes it cleanly.
fn repair(
    dir: &Path,
    inspection: &Inspection,
    truncate_corruption: bool,
) -> Result<murakami::RecoveryReport, Failure> {
    // The active segment keeps its size (an open with another size would
    // replace an empty one); no prefaulting: nothing is appended.
    let segment_size = crate::stat::active_segment_size(inspection).unwrap_or(DEFAULT_SEGMENT_SIZE);
    let recovery = if truncate_corruption {
        Recovery::TruncateCorrupt
    } else {
        Recovery::Strict
    };
    let options = Options::default()
        .segment_size(segment_size)
        .prefault(false)
        .recovery(recovery);
    let (writer, _reader) = Log::open(dir, options).map_err(|e| match e {
        Error::Locked { .. } => Failure::new(
            Code::Locked,
            format!(
                "{}: a writer took the log; stop it before repairing",
                dir.display()
            ),
        ),
        e => Failure::log(dir, e),
    })?;
    let report = writer.recovery_report().clone();
    writer.close().map_err(|e| Failure::log(dir, e))?;
    Ok(report)
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Size of a file the inspection saw.
fn size_of(i: &Inspection, path: &Path) -> Option<u64> {
    i.segments
        .iter()
        .find(|s| s.path == path)
        .map(|s| s.file_len)
        .or_else(|| std::fs::metadata(path).ok().map(|m| m.len()))
}

/// A line per segment file a cut removes, with its size.
fn removals(i: &Inspection, gone: &[std::path::PathBuf], verb: &str, out: &mut String) {
    use std::fmt::Write;
    for path in gone {
        let size = HumanBytes(size_of(i, path).unwrap_or(0));
        let _ = writeln!(out, "{verb} {} ({size})", name(path));
    }
}

/// What a repair would do (`--dry-run`).
fn plan(i: &Inspection, truncate_corruption: bool, out: &mut String) {
    use std::fmt::Write;
    let mut anything = false;
    if let Some(p) = &i.problem {
        anything = true;
        let _ = writeln!(out, "{}", problem_line(p));
        if p.torn_tail || truncate_corruption {
            if let Some(cut) = &p.cut {
                let _ = writeln!(
                    out,
                    "would cut the log at offset {} (byte {} of {}): {} record(s) dropped after it",
                    cut.offset,
                    cut.position,
                    name(&cut.segment),
                    cut.records_dropped
                );
                removals(i, &cut.segments_removed, "would remove", out);
            }
        } else {
            // Nothing else happens: the open fails first.
            let _ = writeln!(out, "would refuse: {}", consequence(p));
            return;
        }
    }
    for l in &i.leftovers {
        anything = true;
        let _ = writeln!(out, "would remove leftover {}", name(l));
    }
    if i.state == LogState::Unclean {
        anything = true;
        let _ = writeln!(
            out,
            "would make every record kept durable and close the log cleanly (records [{}, {}))",
            i.first_offset, i.next_offset
        );
    }
    if !anything {
        let _ = writeln!(
            out,
            "nothing to repair: the log was closed cleanly and is sound"
        );
    }
}

/// What a repair did.
fn summary(i: &Inspection, report: &murakami::RecoveryReport, out: &mut String) {
    use std::fmt::Write;
    if let Some(cut) = &report.cut {
        let why = match cut.reason {
            CutReason::TornTail => "torn tail".to_owned(),
            CutReason::Corruption(kind) => format!("corruption: {kind}"),
            _ => "damage".to_owned(),
        };
        let segment_len = size_of(i, &cut.segment).unwrap_or(cut.position);
        if !cut.segment.exists() {
            // Recovery removed it: it held nothing before the cut.
            let _ = writeln!(
                out,
                "cut at offset {} ({why}): {} held no record and was removed; \
                 {} record(s) after the damage dropped",
                cut.offset,
                name(&cut.segment),
                cut.records_dropped
            );
            removals(i, &cut.segments_removed, "removed", out);
        } else {
            let _ = writeln!(
                out,
                "cut at offset {} ({why}): {} now ends at byte {} (the rest of its {} zeroed); \
             {} record(s) after the damage dropped",
                cut.offset,
                name(&cut.segment),
                cut.position,
                HumanBytes(segment_len),
                cut.records_dropped
            );
            removals(i, &cut.segments_removed, "removed", out);
        }
    }
    for l in &i.leftovers {
        let _ = writeln!(out, "removed leftover {}", name(l));
    }
    let _ = writeln!(
        out,
        "repaired: records [{}, {}) in {} segment(s), durable, closed cleanly",
        report.first_offset, report.next_offset, report.segments
    );
}
