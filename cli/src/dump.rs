//! `murakami dump`.

use clap::Args;

use crate::DirArg;
use crate::fail::{Code, Failure};
use crate::progress;
use crate::records::{self, Format};
use crate::time;

/// Print a log's records: offset, time and payload.
///
/// Reads the log as it is when the command starts, from --from (default:
/// the first record) to its end, without disturbing a writer that has it
/// open (it never takes the writer's lock and writes nothing). A log no
/// writer holds reads the same. Records appended while it runs are not
/// printed: `murakami tail -f` follows a log.
///
/// Formats: text (one line per record, `OFFSET  TIME  PAYLOAD`, the payload
/// escaped so one record is one line), hex (a header line, then a hexdump
/// of the payload), json (JSON Lines; "payload" holds a UTF-8 payload,
/// "payload_base64" one that is not), raw (each payload as a u32
/// little-endian length followed by its bytes, no offsets or times: what
/// `murakami append --raw` reads).
///
/// On damage (including a torn tail, what a crash leaves at the end of the
/// log and the next writer cuts) the records before it are printed, then
/// the error; exit 2 (`murakami verify` tells a torn tail from worse). An
/// offset --from outside the log is exit 7.
///
/// Examples:
///
///   murakami dump /var/lib/app/log --from 1000 --count 20
///
///   murakami dump old --format raw | murakami append new --raw
#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// First offset to print (default: the log's first record).
    #[arg(long, value_name = "OFFSET")]
    pub from: Option<u64>,
    /// Print at most this many records.
    #[arg(long, value_name = "K")]
    pub count: Option<u64>,
    /// Stop at the first record stamped after this time: RFC 3339
    /// (2026-12-03T14:00:00Z), a duration before now (5m, 2h ago) or
    /// nanoseconds since the epoch.
    #[arg(long, value_name = "TIME", value_parser = time::parse)]
    pub to_time: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Only records that are durable (synced to disk).
    #[arg(long)]
    pub durable: bool,
}

pub fn run(args: DumpArgs) -> Result<Code, Failure> {
    let dir = &args.dir.dir;
    let reader = records::open_reader(dir, args.durable)?;
    let end = reader.end_offset();
    let mut from = args.from.unwrap_or_else(|| reader.first_offset());
    let cursor = loop {
        match reader.cursor(from) {
            Ok(cursor) => break cursor,
            // The log's start, which a live writer purged meanwhile: start
            // where it starts now.
            Err(murakami::Error::Purged { first, .. }) if args.from.is_none() => from = first,
            Err(e) => return Err(records::failure(dir, e)),
        }
    };
    let last = match args.count {
        Some(count) => end.min(from.saturating_add(count)),
        None => end,
    };
    let bar = progress::bar_beside_output(last.saturating_sub(from), "dump", "records");
    records::print_range(
        dir,
        cursor,
        (last, last == end),
        args.to_time,
        args.format,
        Some(bar),
    )
}
