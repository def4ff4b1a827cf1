//! `murakami verify`: a read-only check of every header, frame and CRC.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use murakami::{
    Corruption, Error, HeaderError, Inspection, Log, LogState, Problem, Reader, WriterInfo,
};
use serde_json::{Value, json};

use crate::DirArg;
use crate::fail::{self, Code, Failure};
use crate::progress;

/// Check every header, frame and CRC of a log, and its segment chain.
///
/// Changes nothing, takes no lock. On a log no writer holds it runs the
/// scan recovery runs and says what the next open would do; on a live log
/// it reads every record through a read-only reader, beside the writer.
///
/// Exit code: 0 sound, 1 torn tail (a crash explains it: `murakami repair`
/// or the next open cuts it, nothing durable is lost), 2 corruption (a
/// crash cannot explain it), 3 not a murakami log or unreadable, 4 no such
/// directory.
///
/// Example: murakami verify /var/lib/app/journal && echo sound
#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Print JSON (one object) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What verify concluded.
struct Verdict {
    code: Code,
    /// One paragraph of text.
    text: String,
    json: Value,
}

pub fn run(args: VerifyArgs) -> Result<Code, Failure> {
    let dir = &args.dir.dir;
    fail::existing_dir(dir)?;
    let verdict = verify(dir)?;
    let out = if args.json {
        format!("{}\n", verdict.json)
    } else {
        verdict.text
    };
    fail::answer(&out, verdict.code)
}

fn verify(dir: &Path) -> Result<Verdict, Failure> {
    let writer = |dir: &Path| Log::writer_of(dir).map_err(|e| Failure::log(dir, e));
    if let Some(w) = writer(dir)? {
        return verify_live(dir, w);
    }
    let spinner = progress::spinner(format!("scanning {}", dir.display()));
    let inspection = Log::inspect(dir).map_err(|e| Failure::log(dir, e));
    spinner.finish_and_clear();
    let inspection = inspection?;
    if let Some(w) = inspection.writer {
        return verify_live(dir, w);
    }
    if inspection.state == LogState::Absent {
        return Err(crate::stat::not_a_log(dir));
    }
    // A writer that opened the log while it was scanned may have repaired
    // what the scan saw: check the log as it is now instead.
    if let Some(w) = writer(dir)? {
        return verify_live(dir, w);
    }
    Ok(offline(&inspection))
}

/// The verdict on a log no writer holds: the inspection's.
fn offline(i: &Inspection) -> Verdict {
    let records = i.next_offset - i.first_offset;
    let shutdown = if i.clean_shutdown {
        "closed cleanly"
    } else {
        "not closed cleanly (the next open makes its tail durable; no record is lost)"
    };
    let Some(p) = &i.problem else {
        let mut text = format!(
            "sound: {} segment(s), {records} records [{}, {}), {shutdown}\n",
            i.segments.len(),
            i.first_offset,
            i.next_offset
        );
        for l in &i.leftovers {
            text.push_str(&format!(
                "note: {} is left over from an interrupted operation; the next open removes it\n",
                l.display()
            ));
        }
        let control = match &i.control {
            Some(Err(e)) => {
                text.push_str(&format!(
                    "damaged control file murakami.tail: {e}; readers in other processes \
                     refuse the log until a writer opens it (the writer rewrites it)\n"
                ));
                Code::Corrupt
            }
            _ => Code::Ok,
        };
        return Verdict {
            code: control,
            text,
            json: json!({
                "verdict": if control == Code::Ok { "sound" } else { "damaged control file" },
                "exit_code": control as u8,
                "live": false,
                "clean_shutdown": i.clean_shutdown,
                "segments": i.segments.len(),
                "first_offset": i.first_offset,
                "next_offset": i.next_offset,
                "records": records,
                "leftovers": i.leftovers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            }),
        };
    };
    let code = if p.torn_tail {
        Code::TornTail
    } else if unreadable(i, p) {
        Code::NotALog
    } else {
        Code::Corrupt
    };
    let text = format!("{}\n{}\n", problem_line(p), consequence(p));
    Verdict {
        code,
        text,
        json: json!({
            "verdict": match code {
                Code::TornTail => "torn tail",
                Code::NotALog => "not a murakami log",
                _ => "corruption",
            },
            "exit_code": code as u8,
            "live": false,
            "clean_shutdown": i.clean_shutdown,
            "segments": i.segments.len(),
            "first_offset": i.first_offset,
            "next_offset": i.next_offset,
            "problem": problem_json(p),
        }),
    }
}

/// Whether the problem is that the files are not murakami's (every
/// segment's header is foreign) or from a newer format.
fn unreadable(i: &Inspection, p: &Problem) -> bool {
    match p.kind {
        Corruption::BadHeader(HeaderError::UnsupportedVersion(_)) => true,
        Corruption::BadHeader(HeaderError::BadMagic) => i
            .segments
            .iter()
            .all(|s| s.header_error == Some(HeaderError::BadMagic)),
        _ => false,
    }
}

/// Where the problem is and what it is, on one line.
pub fn problem_line(p: &Problem) -> String {
    format!(
        "{}: {} at byte {} of {} (record offset {})",
        if p.torn_tail {
            "torn tail"
        } else {
            "corruption"
        },
        p.kind,
        p.position,
        p.segment.display(),
        p.offset
    )
}

/// What opening the log does about the problem.
pub fn consequence(p: &Problem) -> String {
    let cut = match &p.cut {
        Some(cut) => {
            let mut s = format!("cuts the log at offset {}", cut.offset);
            if cut.records_dropped > 0 {
                s.push_str(&format!(
                    ", dropping {} valid record(s) after the damage",
                    cut.records_dropped
                ));
            }
            if !cut.segments_removed.is_empty() {
                let names: Vec<String> = cut
                    .segments_removed
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                s.push_str(&format!(" and removing {}", names.join(", ")));
            }
            s
        }
        None => "starts the log without it".to_owned(),
    };
    if p.torn_tail {
        format!(
            "a crash explains it (records after the last sync that did not reach the disk \
             whole): the next open, or `murakami repair`, {cut}; nothing durable is lost"
        )
    } else {
        format!(
            "a crash cannot explain it: opening the log fails with this error; \
             `murakami repair --truncate-corruption` {cut}"
        )
    }
}

pub fn problem_json(p: &Problem) -> Value {
    json!({
        "torn_tail": p.torn_tail,
        "segment": p.segment.display().to_string(),
        "position": p.position,
        "offset": p.offset,
        "kind": p.kind.to_string(),
        "cut": p.cut.as_ref().map(|c| json!({
            "offset": c.offset,
            "segment": c.segment.display().to_string(),
            "position": c.position,
            "records_dropped": c.records_dropped,
            "segments_removed": c.segments_removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        })),
    })
}

/// Verifies a log a writer holds: every record it has published, read
/// through a reader of the files (each frame's bounds, CRC and offset are
/// checked as the reader follows it), beside the writer.
fn verify_live(dir: &Path, w: WriterInfo) -> Result<Verdict, Failure> {
    let reader = match Reader::open(dir) {
        Ok(reader) => reader,
        Err(e) => return Ok(live_damage(w, e)),
    };
    let (first, end) = (reader.first_offset(), reader.next_offset());
    let bar = progress::bar(end - first, "verifying", "records");
    let mut start = first;
    let mut cursor = loop {
        match reader.cursor(start) {
            Ok(cursor) => break cursor,
            // Purged by the writer since `first_offset`: start where the log
            // starts now.
            Err(Error::Purged { first: now, .. }) => start = now.min(end),
            Err(e) => return Ok(live_damage(w, e)),
        }
    };
    let mut purged = start - first;
    let mut checked = 0u64;
    while cursor.next_offset() < end {
        match cursor.next_wait(Duration::from_secs(1)) {
            Ok(Some(_)) => checked += 1,
            // Truncated below `end` meanwhile: nothing more to check.
            Ok(None) => break,
            Err(Error::Purged { first: now, .. }) => {
                // Retention removed records ahead of the cursor: go on from
                // the log's new start.
                purged += now.saturating_sub(cursor.next_offset());
                match reader.cursor(now.min(end)) {
                    Ok(c) => cursor = c,
                    Err(e) => return Ok(live_damage(w, e)),
                }
            }
            Err(Error::OffsetOutOfRange { .. }) => break,
            Err(e) => return Ok(live_damage(w, e)),
        }
        bar.set_position(checked + purged);
    }
    bar.finish_and_clear();
    let writer = match w.pid {
        Some(pid) => format!("a writer (pid {pid}) has it open"),
        None => "a writer has it open".to_owned(),
    };
    let text = format!(
        "sound: {checked} records checked in [{first}, {end}) while {writer}{}\n",
        if purged > 0 {
            format!(" ({purged} purged by it meanwhile)")
        } else {
            String::new()
        }
    );
    Ok(Verdict {
        code: Code::Ok,
        text,
        json: json!({
            "verdict": "sound",
            "exit_code": 0,
            "live": true,
            "writer_pid": w.pid,
            "first_offset": first,
            "next_offset": end,
            "records": checked,
            "purged_meanwhile": purged,
        }),
    })
}

/// The verdict on damage found in a live log: a writer's log has no torn
/// tail (it repaired it when it opened), so damage is corruption.
fn live_damage(w: WriterInfo, e: Error) -> Verdict {
    let code = match &e {
        Error::BadSegmentHeader {
            reason: HeaderError::UnsupportedVersion(_),
            ..
        }
        | Error::Io(_) => Code::NotALog,
        _ => Code::Corrupt,
    };
    let line = fail::chain(&e);
    Verdict {
        code,
        text: format!("corruption in a live log: {line}\n"),
        json: json!({
            "verdict": "corruption",
            "exit_code": code as u8,
            "live": true,
            "writer_pid": w.pid,
            "error": line,
        }),
    }
}
