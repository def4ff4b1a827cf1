//! How records are written out (dump, tail): text, hex, json, raw; and what
//! `dump` and `tail` share (opening a log to read, a failure that names
//! the directory).

use std::io::{self, Write};
use std::path::Path;

use clap::ValueEnum;
use indicatif::ProgressBar;
use murakami::{Cursor, Reader};
use serde::Serialize;

use crate::fail::{self, Code, Failure};
use crate::time;

/// How `dump` and `tail` print records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per record: `OFFSET  TIME  PAYLOAD`, the payload's
    /// printable UTF-8 as is and everything else escaped (`\n`, `\t`, `\r`,
    /// `\\`, `\xNN` for a byte that is not UTF-8 or a control character,
    /// `\u{NNNN}` for another control character), so one record is one
    /// line.
    Text,
    /// A line `OFFSET  TIME  len LEN`, then the payload as `hexdump -C`
    /// shows it: position in the payload, 16 bytes in hex, the ASCII column.
    Hex,
    /// JSON Lines: one object per record, `{"offset", "timestamp" (ns since
    /// the epoch), "time", "len", "payload"}`; a payload that is not UTF-8
    /// comes as "payload_base64" (standard alphabet, padded) instead.
    Json,
    /// The payloads alone, each as its length (u32, little-endian) and its
    /// bytes: what `murakami append --raw` reads.
    Raw,
}

/// Writes records to `out` in one format.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    line: Vec<u8>,
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    offset: u64,
    timestamp: u64,
    time: String,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format) -> Printer<W> {
        Printer {
            out,
            format,
            line: Vec::with_capacity(256),
        }
    }

    /// Writes one record.
    pub fn record(&mut self, offset: u64, timestamp: u64, payload: &[u8]) -> io::Result<()> {
        self.line.clear();
        let line = &mut self.line;
        match self.format {
            Format::Text => {
                write!(line, "{offset}  {}  ", time::human(timestamp))?;
                escape(payload, line);
                line.push(b'\n');
            }
            Format::Hex => {
                writeln!(
                    line,
                    "{offset}  {}  len {}",
                    time::human(timestamp),
                    payload.len()
                )?;
                hexdump(payload, line);
            }
            Format::Json => {
                let text = std::str::from_utf8(payload).ok();
                let record = JsonRecord {
                    offset,
                    timestamp,
                    time: time::human(timestamp),
                    len: payload.len(),
                    payload: text,
                    payload_base64: text.is_none().then(|| base64(payload)),
                };
                serde_json::to_writer(&mut *line, &record)?;
                line.push(b'\n');
            }
            Format::Raw => {
                let len = u32::try_from(payload.len())
                    .map_err(|_| io::Error::other("a record over 4 GiB has no raw form"))?;
                line.extend_from_slice(&len.to_le_bytes());
                line.extend_from_slice(payload);
            }
        }
        self.out.write_all(line)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A stdout printer, buffered (flush it).
pub fn stdout(format: Format) -> Printer<io::BufWriter<io::Stdout>> {
    Printer::new(io::BufWriter::with_capacity(64 << 10, io::stdout()), format)
}

/// `payload` as one line of text: printable UTF-8 as is, the rest escaped.
pub fn escape(payload: &[u8], out: &mut Vec<u8>) {
    for chunk in payload.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\r' => out.extend_from_slice(b"\\r"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// `payload` as `hexdump -C` shows it, indented by two spaces.
pub fn hexdump(payload: &[u8], out: &mut Vec<u8>) {
    for (i, row) in payload.chunks(16).enumerate() {
        let _ = write!(out, "  {:08x} ", i * 16);
        for col in 0..16 {
            if col == 8 {
                out.push(b' ');
            }
            match row.get(col) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.extend_from_slice(b"   "),
            }
        }
        out.extend_from_slice(b"  |");
        out.extend(row.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b
            } else {
                b'.'
            }
        }));
        out.extend_from_slice(b"|\n");
    }
}

/// Standard base64 (RFC 4648), padded.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A library error met reading or writing the log in `dir`, naming `dir`.
pub fn failure(dir: &Path, e: murakami::Error) -> Failure {
    let mut failure = Failure::log(dir, e);
    let name = dir.display().to_string();
    if !failure.message.contains(&name) {
        failure.message = format!("{name}: {}", failure.message);
    }
    failure
}

/// Opens the log in the existing directory `dir` read-only (never taking
/// the writer's lock); `durable` limits it to durable records.
pub fn open_reader(dir: &Path, durable: bool) -> Result<Reader, Failure> {
    fail::existing_dir(dir)?;
    let reader = Reader::open(dir).map_err(|e| failure(dir, e))?;
    Ok(if durable {
        reader.durable_only()
    } else {
        reader
    })
}

/// Prints the records of `cursor` to stdout up to `end` (exclusive) or
/// the first one stamped after `to_time`, counting them on `bar`. Damage
/// met on the way fails after what was read before it is printed; so does
/// damage right at `end` if `log_end` says `end` is where the log ended
/// (a torn tail: the reader stops there and says why).
pub fn print_range(
    dir: &Path,
    mut cursor: Cursor,
    (end, log_end): (u64, bool),
    to_time: Option<u64>,
    format: Format,
    bar: Option<ProgressBar>,
) -> Result<Code, Failure> {
    let mut out = stdout(format);
    let mut damage = None;
    while cursor.next_offset() < end || log_end {
        let record = match cursor.next_ref() {
            Ok(Some(record)) if record.offset < end => record,
            // Past the end asked for (appended since), or the end of the
            // view (a truncation under a live log).
            Ok(_) => break,
            Err(e) => {
                damage = Some(e);
                break;
            }
        };
        if to_time.is_some_and(|t| record.timestamp > t) {
            break;
        }
        out.record(record.offset, record.timestamp, record.payload)
            .map_err(fail::output)?;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    out.flush().map_err(fail::output)?;
    match damage {
        Some(e) => Err(failure(dir, e)),
        None => Ok(Code::Ok),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(payload: &[u8]) -> String {
        let mut out = Vec::new();
        escape(payload, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_is_one_line_and_escapes_what_is_not_printable() {
        assert_eq!(text(b"hello world"), "hello world");
        assert_eq!(text("héllo ✓".as_bytes()), "héllo ✓");
        assert_eq!(text(b"a\nb\tc\rd\\e"), "a\\nb\\tc\\rd\\\\e");
        assert_eq!(text(b"\x00\x1b\x7f"), "\\x00\\x1b\\x7f");
        assert_eq!(text(b"\xff\xfeok\xc3"), "\\xff\\xfeok\\xc3");
        assert_eq!(text("\u{85}".as_bytes()), "\\u{0085}");
        assert_eq!(text(b""), "");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn hexdump_is_hexdump_c() {
        let mut out = Vec::new();
        hexdump(b"hello world\n\x00\x01\x02\x03xyz", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 0a 00 01 02 03  |hello world.....|\n\
             \x20 00000010  78 79 7a                                          |xyz|\n"
        );
    }
}
