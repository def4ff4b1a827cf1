//! `murakami tail`.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hasher};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use murakami::{Cursor, Error, Reader};

use crate::DirArg;
use crate::fail::{self, Code, Failure};
use crate::records::{self, Format, Printer};
use crate::time;

/// Print the last records of a log, and with -f follow it as it grows.
///
/// Prints the last 10 records (-n), the records from an offset (--from) or
/// from a time (--from-time: the first record stamped at or after it), in
/// the formats of `murakami dump`. It never takes the writer's lock and
/// never writes a record or a segment (while -f sleeps it counts itself in
/// the control file's sleeper word, so that the writer wakes it).
///
/// With -f it then waits for the records a writer (of any process) appends
/// and prints each as it comes, following the log through segment rolls,
/// purges (records purged before they were printed are skipped, with a note
/// on stderr), truncations (a note on stderr says where the log was cut,
/// and it goes on from there with the new records) and writers that close
/// and come back. A directory with no log yet is waited on. Ctrl-C ends it
/// between two records: the output is flushed and the exit code is 0, as it
/// is when the reader of its output goes away (`| head`).
///
/// Examples:
///
///   murakami tail -n 20 /var/lib/app/log
///
///   murakami tail -f --format json /var/lib/app/log | jq .payload
#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Start at this offset.
    #[arg(long, value_name = "OFFSET", conflicts_with_all = ["from_time", "lines"])]
    pub from: Option<u64>,
    /// Start at the first record stamped at or after this time: RFC 3339
    /// (2026-12-03T14:00:00Z), a duration before now (5m, 2h ago) or
    /// nanoseconds since the epoch.
    #[arg(long, value_name = "TIME", value_parser = time::parse, conflicts_with = "lines")]
    pub from_time: Option<u64>,
    /// Start this many records before the end [default: 10].
    #[arg(short = 'n', long = "lines", value_name = "K")]
    pub lines: Option<u64>,
    /// Keep printing the records appended from now on, until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only records that are durable (synced to disk).
    #[arg(long)]
    pub durable: bool,
    /// Output format (see `murakami dump --help`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// How long a wait lasts before Ctrl-C and truncations are looked at.
const WAIT: Duration = Duration::from_millis(100);

/// How many printed records are remembered to find where a truncation cut
/// (24 bytes each).
const REMEMBERED: usize = 1 << 16;

/// How many records before the first one printed are remembered (read
/// when it starts) for the same purpose.
const REMEMBERED_BEFORE: u64 = 4096;

pub fn run(args: TailArgs) -> Result<Code, Failure> {
    let dir = &args.dir.dir;
    let reader = records::open_reader(dir, args.durable)?;
    let end = reader.end_offset();
    let (start, explicit) = match (args.from, args.from_time) {
        (Some(from), _) => (from, true),
        (None, Some(t)) => (reader.offset_for_timestamp(t), false),
        (None, None) => (end.saturating_sub(args.lines.unwrap_or(10)), false),
    };
    let cursor = match reader.cursor(start) {
        Ok(cursor) => cursor,
        // The start was worked out from the log, which moved on since:
        // start where it starts now.
        Err(Error::Purged { first, .. }) if !explicit => {
            reader.cursor(first).map_err(|e| records::failure(dir, e))?
        }
        Err(e) => return Err(records::failure(dir, e)),
    };
    if !args.follow {
        return records::print_range(dir, cursor, (end, true), None, args.format, None);
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Without the handler Ctrl-C kills the process, which loses at
        // most the unflushed end of the output.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let mut follower = Follower {
        dir,
        reader,
        out: records::stdout(args.format),
        seen: VecDeque::with_capacity(REMEMBERED),
    };
    follower.remember_before(&cursor);
    follower.follow(cursor, &stop)?;
    follower.out.flush().map_err(fail::output)?;
    Ok(Code::Ok)
}

/// A printed record, to recognise it again: offset, timestamp and a hash of
/// the payload.
type Seen = (u64, u64, u64);

/// `tail -f`.
struct Follower<'a> {
    dir: &'a Path,
    reader: Reader,
    out: Printer<io::BufWriter<io::Stdout>>,
    /// The last records printed, oldest first.
    seen: VecDeque<Seen>,
}

/// What to do after a record.
enum Next {
    Go,
    /// The log was cut: go on from this offset.
    From(u64),
}

impl Follower<'_> {
    /// Prints the records as they come until `stop`.
    fn follow(&mut self, mut cursor: Cursor, stop: &AtomicBool) -> Result<(), Failure> {
        while !stop.load(Ordering::SeqCst) {
            let next = match cursor.next_ref() {
                Ok(Some(record)) => self.record(record.offset, record.timestamp, record.payload)?,
                Ok(None) => {
                    // A burst is over: let the reader of the output see it.
                    self.out.flush().map_err(fail::output)?;
                    match self.idle_check(&cursor) {
                        Next::From(at) => Next::From(at),
                        Next::Go => match cursor.next_wait(WAIT) {
                            Ok(Some(record)) => {
                                self.record(record.offset, record.timestamp, record.payload)?
                            }
                            Ok(None) | Err(Error::Closed) => Next::Go,
                            Err(e) => self.error(&cursor, e)?,
                        },
                    }
                }
                Err(e) => self.error(&cursor, e)?,
            };
            if let Next::From(at) = next {
                cursor = self.cursor_at(at)?;
                self.remember_before(&cursor);
            }
        }
        Ok(())
    }

    /// Prints a record, unless the record before it is no longer the one
    /// printed: a truncation (or a writer's recovery) replaced it, and the
    /// cursor went on in the new history past records of it.
    fn record(&mut self, offset: u64, timestamp: u64, payload: &[u8]) -> Result<Next, Failure> {
        if let Some(&last) = self.seen.back()
            && last.0 + 1 == offset
            && self.changed(last)
        {
            return Ok(Next::From(self.cut()));
        }
        self.out
            .record(offset, timestamp, payload)
            .map_err(fail::output)?;
        if self.seen.len() == REMEMBERED {
            self.seen.pop_front();
        }
        self.seen.push_back((offset, timestamp, hash(payload)));
        Ok(Next::Go)
    }

    /// Remembers the records just before `cursor` (up to
    /// [`REMEMBERED_BEFORE`]) when they were not printed (a start after the
    /// first record, a restart): a truncation below the cursor changes or
    /// removes them, which is how one is found, and where.
    fn remember_before(&mut self, cursor: &Cursor) {
        let next = cursor.next_offset();
        if next == 0 || self.seen.back().is_some_and(|s| s.0 + 1 == next) {
            return;
        }
        self.seen.clear();
        let from = next
            .saturating_sub(REMEMBERED_BEFORE)
            .max(self.reader.first_offset());
        let Ok(mut before) = self.reader.cursor(from) else {
            return;
        };
        while before.next_offset() < next {
            match before.next_ref() {
                Ok(Some(r)) => self
                    .seen
                    .push_back((r.offset, r.timestamp, hash(r.payload))),
                _ => {
                    // Purged or cut meanwhile: what was read is no use.
                    self.seen.clear();
                    return;
                }
            }
        }
    }

    /// Whether the log no longer holds the record `seen` as printed (a
    /// purged record cannot say: it was not cut).
    fn changed(&self, seen: Seen) -> bool {
        let (offset, timestamp, payload) = seen;
        match self
            .reader
            .with_record(offset, |r| (r.timestamp, hash(r.payload)))
        {
            Ok(now) => now != (timestamp, payload),
            Err(Error::OffsetOutOfRange { .. }) => true,
            Err(_) => false,
        }
    }

    /// After a truncation: forgets the printed records the log no longer
    /// holds and says where it goes on.
    fn cut(&mut self) -> u64 {
        let mut at = None;
        while let Some(&last) = self.seen.back() {
            if !self.changed(last) {
                at = Some(last.0 + 1);
                break;
            }
            at = Some(last.0);
            self.seen.pop_back();
        }
        let found = !self.seen.is_empty();
        let at = at.unwrap_or_else(|| self.reader.end_offset());
        if found {
            crate::fail::note(format_args!(
                "murakami: log truncated at {at}; following from there"
            ));
        } else {
            // Every remembered record was cut: the cut is at or before the
            // oldest of them, and the new records before it are not shown.
            crate::fail::note(format_args!(
                "murakami: log truncated at or before {at} (more than the {REMEMBERED} \
                 records remembered were cut); following from {at}"
            ));
        }
        at
    }

    /// While waiting: a truncation below the cursor leaves it waiting for
    /// an offset the new history has not reached; look for one.
    fn idle_check(&mut self, cursor: &Cursor) -> Next {
        match self.seen.back() {
            Some(&last) if last.0 + 1 == cursor.next_offset() => {
                if self.changed(last) {
                    return Next::From(self.cut());
                }
            }
            _ => {
                let end = self.reader.end_offset();
                if end < cursor.next_offset() {
                    crate::fail::note(format_args!(
                        "murakami: log truncated at {end}; following from there"
                    ));
                    return Next::From(end);
                }
            }
        }
        Next::Go
    }

    /// What to do about an error of the cursor.
    fn error(&mut self, cursor: &Cursor, e: Error) -> Result<Next, Failure> {
        match e {
            Error::Purged { offset, first } => {
                crate::fail::note(format_args!(
                    "murakami: records {offset}..{first} were removed before they were read; \
                     following from {first}"
                ));
                Ok(Next::From(first))
            }
            Error::OffsetOutOfRange { .. } => match self.idle_check(cursor) {
                Next::Go => Ok(Next::From(
                    cursor.next_offset().min(self.reader.end_offset()),
                )),
                cut => Ok(cut),
            },
            e => {
                self.out.flush().map_err(fail::output)?;
                Err(records::failure(self.dir, e))
            }
        }
    }

    /// A cursor at `at`, or wherever the log now starts or ends if it moved
    /// past `at` meanwhile.
    fn cursor_at(&mut self, mut at: u64) -> Result<Cursor, Failure> {
        loop {
            match self.reader.cursor(at) {
                Ok(cursor) => return Ok(cursor),
                Err(Error::Purged { first, .. }) => {
                    crate::fail::note(format_args!(
                        "murakami: records {at}..{first} were removed before they were read; \
                         following from {first}"
                    ));
                    at = first;
                }
                Err(Error::OffsetOutOfRange { end, .. }) if at > end => {
                    crate::fail::note(format_args!(
                        "murakami: log truncated at {end}; following from there"
                    ));
                    at = end;
                }
                Err(e) => return Err(records::failure(self.dir, e)),
            }
        }
    }
}

/// A record's payload, recognisably: its length and a hash of at most its
/// first and last 256 bytes (a new record of the same length, timestamp
/// and ends as the one it replaced passes for it, which prints what the
/// log holds all the same).
fn hash(payload: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write_usize(payload.len());
    if payload.len() <= 512 {
        hasher.write(payload);
    } else {
        hasher.write(&payload[..256]);
        hasher.write(&payload[payload.len() - 256..]);
    }
    hasher.finish()
}
