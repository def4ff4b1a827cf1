//! `murakami append`.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use murakami::{DEFAULT_MAX_RECORD_SIZE, DEFAULT_SEGMENT_SIZE, Log, Options, SyncPolicy, Writer};

use crate::DirArg;
use crate::fail::{Code, Failure};
use crate::records;

/// Append records read from stdin to a log.
///
/// Opens the log for writing (creating the directory and the log if
/// needed); if a writer already holds it, fails with exit 5 and changes
/// nothing. Each line of stdin is a record, without its newline (a carriage
/// return before it is kept); an empty line is a record of 0 bytes, and a
/// last line without a newline is a record too. With --raw, stdin is
/// length-delimited records instead: each a u32 little-endian length
/// followed by that many bytes, what `murakami dump --format raw` prints.
///
/// Prints the offset of each record appended on stdout, one per line, and
/// at the end a summary on stderr: `appended N records, offsets A..B,
/// durable up to D` (A..B is half-open: B is the offset after the last
/// record; D is one past the last durable record).
///
/// Everything appended is durable when the command exits 0, whatever
/// --sync says: it syncs and closes the log at the end of input. Ctrl-C
/// stops reading, keeps (and syncs) the whole records received, drops a
/// record received in part, prints the summary and exits 0.
///
/// A record larger than the maximum record size, or a --raw stream that
/// ends in the middle of a record, fails with exit 7 after keeping, durably,
/// every record before it.
///
/// Examples:
///
///   printf 'one\ntwo\n' | murakami append /var/lib/app/log
///
///   murakami dump old --format raw | murakami append new --raw
#[derive(Args, Debug)]
pub struct AppendArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// When records become durable while appending: explicit (only at the
    /// end), every (each record), every=N (every N records), interval=D
    /// (every D, e.g. 10ms, in the background). The end syncs in any case.
    #[arg(long, value_name = "POLICY", default_value = "explicit", value_parser = parse_sync)]
    pub sync: SyncPolicy,
    /// Read length-delimited records (u32 little-endian length, bytes)
    /// instead of lines.
    #[arg(long)]
    pub raw: bool,
    /// Size of new segment files, in bytes or with a binary unit (64KiB,
    /// 1MiB, 1G; default: that of the log's newest segment, or 64 MiB for
    /// a new log).
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse)]
    pub segment_size: Option<u64>,
    /// Largest record accepted (default: 1 MiB, or what a segment holds if
    /// less).
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_usize)]
    pub max_record_size: Option<usize>,
}

/// Parses --sync.
fn parse_sync(arg: &str) -> Result<SyncPolicy, String> {
    match arg {
        "explicit" => return Ok(SyncPolicy::Explicit),
        "every" => return Ok(SyncPolicy::Always),
        _ => {}
    }
    if let Some(n) = arg.strip_prefix("every=") {
        return match n.parse::<u64>() {
            Ok(n) if n > 0 => Ok(SyncPolicy::EveryRecords(n)),
            _ => Err(format!("every={n}: give a count of records above 0")),
        };
    }
    if let Some(d) = arg.strip_prefix("interval=") {
        return match humantime::parse_duration(d) {
            Ok(d) if !d.is_zero() => Ok(SyncPolicy::Interval(d)),
            Ok(_) => Err("interval=0: give a duration above 0".to_string()),
            Err(e) => Err(format!("interval={d}: {e}")),
        };
    }
    Err(format!(
        "{arg:?}: give explicit, every, every=N or interval=DURATION (interval=10ms)"
    ))
}

/// The records in a batch to append at most, and their bytes.
const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 1 << 20;

pub fn run(args: AppendArgs) -> Result<Code, Failure> {
    let dir = &args.dir.dir;
    let segment_size = match args.segment_size {
        Some(size) => size,
        None => existing_segment_size(dir)?.unwrap_or(DEFAULT_SEGMENT_SIZE),
    };
    let mut options = Options::default()
        .segment_size(segment_size)
        .sync_policy(args.sync);
    if let Some(max) = args.max_record_size {
        options = options.max_record_size(max);
    }
    let limit = args.max_record_size.unwrap_or(DEFAULT_MAX_RECORD_SIZE);
    let (writer, _reader) = Log::open(dir, options).map_err(|e| records::failure(dir, e))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        // Without the handler Ctrl-C kills the process: what was appended
        // stays, but maybe not durable. Nothing better to do if it fails.
        let _ = ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst));
    }
    let mut appender = Appender {
        writer,
        out: io::BufWriter::new(io::stdout()),
        stdout_gone: false,
        first: None,
        count: 0,
    };
    let outcome = appender.feed(&args, limit, &interrupted);
    appender.finish(dir, outcome)
}

/// The segment size of the log in `dir`, if there is one: its active
/// segment's (its last with a sound header), so that a log keeps its size.
/// A path that is there but is not a directory is refused.
fn existing_segment_size(dir: &Path) -> Result<Option<u64>, Failure> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        _ => crate::fail::existing_dir(dir)?,
    }
    let inspection = Log::inspect(dir).map_err(|e| records::failure(dir, e))?;
    Ok(crate::stat::active_segment_size(&inspection))
}

/// Why appending stopped early.
enum Stop {
    /// A library error (a record too large, an I/O error).
    Log(murakami::Error),
    /// Bad input: a record over the limit seen before it was whole, or a
    /// --raw stream cut in a record.
    Input(String),
    /// Reading stdin failed.
    Stdin(io::Error),
    /// Writing the offsets failed (not a closed pipe).
    Output(io::Error),
}

struct Appender {
    writer: Writer,
    out: io::BufWriter<io::Stdout>,
    /// stdout was closed (`| head`): offsets are no longer printed, records
    /// still appended.
    stdout_gone: bool,
    first: Option<u64>,
    count: u64,
}

impl Appender {
    /// Appends every record of stdin; `Ok` at its end or at Ctrl-C.
    fn feed(
        &mut self,
        args: &AppendArgs,
        limit: usize,
        interrupted: &AtomicBool,
    ) -> Result<(), Stop> {
        let chunks = read_stdin();
        let mut buf: Vec<u8> = Vec::new();
        let mut eof = false;
        while !eof {
            match chunks.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(chunk)) => buf.extend_from_slice(&chunk),
                Ok(Err(e)) => return Err(Stop::Stdin(e)),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupted.load(Ordering::SeqCst) {
                        return self.last_records(&chunks, buf, args, limit);
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => eof = true,
            }
            let (records, used, fault) = if args.raw {
                split_raw(&buf, limit, eof)
            } else {
                split_lines(&buf, limit, eof)
            };
            // The whole records before a fault go in first.
            self.append_all(&records)?;
            if let Some(message) = fault {
                return Err(Stop::Input(message));
            }
            buf.drain(..used);
            if interrupted.load(Ordering::SeqCst) {
                return self.last_records(&chunks, buf, args, limit);
            }
        }
        Ok(())
    }

    /// At Ctrl-C: appends the whole records already read from stdin (in
    /// `buf` and queued by the reading thread); a record read in part is
    /// dropped.
    fn last_records(
        &mut self,
        chunks: &mpsc::Receiver<io::Result<Vec<u8>>>,
        mut buf: Vec<u8>,
        args: &AppendArgs,
        limit: usize,
    ) -> Result<(), Stop> {
        while let Ok(Ok(chunk)) = chunks.try_recv() {
            buf.extend_from_slice(&chunk);
        }
        let (records, _, fault) = if args.raw {
            split_raw(&buf, limit, false)
        } else {
            split_lines(&buf, limit, false)
        };
        self.append_all(&records)?;
        match fault {
            Some(message) => Err(Stop::Input(message)),
            None => Ok(()),
        }
    }

    /// Appends `records` in batches and prints their offsets.
    fn append_all(&mut self, records: &[&[u8]]) -> Result<(), Stop> {
        let mut rest = records;
        while !rest.is_empty() {
            let mut n = 0;
            let mut bytes = 0;
            while n < rest.len()
                && n < BATCH_RECORDS
                && (n == 0 || bytes + rest[n].len() <= BATCH_BYTES)
            {
                bytes += rest[n].len();
                n += 1;
            }
            let (batch, after) = rest.split_at(n);
            match self.writer.append_batch(batch) {
                Ok(range) => self.appended(range)?,
                // A record too large refuses the whole batch: append the
                // ones before it alone, then fail at it.
                Err(murakami::Error::RecordTooLarge { .. }) => {
                    for record in batch {
                        let offset = self.writer.append(record).map_err(Stop::Log)?;
                        self.appended(offset..offset + 1)?;
                    }
                }
                Err(murakami::Error::PartialBatch { appended, cause }) => {
                    self.appended(appended)?;
                    return Err(Stop::Log(*cause));
                }
                Err(e) => return Err(Stop::Log(e)),
            }
            rest = after;
        }
        if !self.stdout_gone
            && let Err(e) = self.out.flush()
        {
            self.stdout_gone(e)?;
        }
        Ok(())
    }

    /// Counts the records of `range` and prints their offsets.
    fn appended(&mut self, range: std::ops::Range<u64>) -> Result<(), Stop> {
        self.first.get_or_insert(range.start);
        self.count += range.end - range.start;
        if self.stdout_gone {
            return Ok(());
        }
        for offset in range {
            if let Err(e) = writeln!(self.out, "{offset}") {
                return self.stdout_gone(e);
            }
        }
        Ok(())
    }

    /// stdout failed: a closed pipe stops the offsets, nothing else.
    fn stdout_gone(&mut self, e: io::Error) -> Result<(), Stop> {
        self.stdout_gone = true;
        if crate::fail::is_broken_pipe(&e) {
            Ok(())
        } else {
            Err(Stop::Output(e))
        }
    }

    /// Syncs, closes, prints the summary; then fails if appending stopped
    /// early.
    fn finish(mut self, dir: &Path, outcome: Result<(), Stop>) -> Result<Code, Failure> {
        let flushed = if self.stdout_gone {
            Ok(())
        } else {
            self.out.flush()
        };
        let synced = self.writer.sync();
        let durable = self.writer.durable_offset();
        let next = self.writer.next_offset();
        let closed = self.writer.close();
        match self.first {
            Some(first) => crate::fail::note(format_args!(
                "appended {} records, offsets {first}..{next}, durable up to {durable}",
                self.count
            )),
            None => crate::fail::note(format_args!("appended 0 records, durable up to {durable}")),
        }
        match outcome {
            Err(Stop::Log(e)) => return Err(records::failure(dir, e)),
            Err(Stop::Input(message)) => return Err(Failure::new(Code::BadInput, message)),
            Err(Stop::Stdin(e)) => {
                return Err(Failure::new(Code::Io, format!("reading stdin: {e}")));
            }
            Err(Stop::Output(e)) => return Err(crate::fail::output(e)),
            Ok(()) => {}
        }
        synced.map_err(|e| records::failure(dir, e))?;
        closed.map_err(|e| records::failure(dir, e))?;
        if let Err(e) = flushed
            && !crate::fail::is_broken_pipe(&e)
        {
            return Err(crate::fail::output(e));
        }
        Ok(Code::Ok)
    }
}

/// Reads stdin on a thread, in chunks, so the main thread can notice
/// Ctrl-C while stdin has nothing to say. The channel ends at end of input.
fn read_stdin() -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (send, receive) = mpsc::sync_channel(4);
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut chunk = vec![0; 64 << 10];
            match stdin.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    chunk.truncate(n);
                    if send.send(Ok(chunk)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = send.send(Err(e));
                    return;
                }
            }
        }
    });
    receive
}

/// The records in `buf`, how many bytes they took, and what is wrong with
/// the input after them, if anything.
type Split<'a> = (Vec<&'a [u8]>, usize, Option<String>);

/// The whole lines in `buf` (and, at the end of input, the last one
/// without a newline), and how many bytes they took. A line longer than
/// `limit` goes in as it is so far, for the writer to refuse.
fn split_lines(buf: &[u8], limit: usize, eof: bool) -> Split<'_> {
    let mut records = Vec::new();
    let mut used = 0;
    while let Some(n) = buf[used..].iter().position(|&b| b == b'\n') {
        records.push(&buf[used..used + n]);
        used += n + 1;
    }
    let rest = &buf[used..];
    if eof && !rest.is_empty() {
        records.push(rest);
        used = buf.len();
    } else if rest.len() > limit {
        // Appended up to here, the writer then refuses the line.
        records.push(rest);
        used = buf.len();
    }
    (records, used, None)
}

/// The whole length-delimited records in `buf`, and how many bytes they
/// took; at the end of input, a record cut short is a fault, and so is a
/// length over `limit` (seen before the record is read).
fn split_raw(buf: &[u8], limit: usize, eof: bool) -> Split<'_> {
    let mut records = Vec::new();
    let mut used = 0;
    let mut fault = None;
    loop {
        let rest = &buf[used..];
        if rest.len() < 4 {
            if eof && !rest.is_empty() {
                fault = Some(format!(
                    "stdin ends in the middle of a record's length ({} of its 4 bytes)",
                    rest.len()
                ));
            }
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > limit {
            fault = Some(format!(
                "record of {len} bytes is larger than the maximum of {limit}"
            ));
            break;
        }
        if rest.len() - 4 < len {
            if eof {
                fault = Some(format!(
                    "stdin ends in the middle of a record: {} of its {len} bytes",
                    rest.len() - 4
                ));
            }
            break;
        }
        records.push(&rest[4..4 + len]);
        used += 4 + len;
    }
    (records, used, fault)
}
