//! How the tool fails: one line on stderr and an exit code that says what
//! kind of failure it was, never a panic or a debug dump.

use std::fmt;
use std::io;
use std::path::Path;

use murakami::{Error, HeaderError};

/// The tool's exit codes (README.md, "The `murakami` tool", lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Done; for `verify`, the log is sound.
    Ok = 0,
    /// `verify`: the log ends in a torn tail, what a crash leaves
    /// (`repair`, or the next writer, cuts it).
    TornTail = 1,
    /// The log is damaged in a way a crash cannot explain.
    Corrupt = 2,
    /// Not a murakami log, or unreadable (a foreign or newer-format file,
    /// no permission).
    NotALog = 3,
    /// The directory does not exist.
    NoSuchDir = 4,
    /// A writer holds the log and the command needs it.
    Locked = 5,
    /// An I/O error (a full disk, a failed fsync, ...).
    Io = 6,
    /// Bad input: a record too large, a malformed `--raw` stream, an offset
    /// outside the log.
    BadInput = 7,
    /// Bad arguments (clap's usage errors).
    Usage = 64,
}

/// A failure: what to print (one line) and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A library error met while working on the log in `dir`.
    pub fn log(dir: &Path, e: Error) -> Failure {
        let code = match &e {
            Error::Locked { .. } => Code::Locked,
            Error::Corrupt { .. } | Error::BadControlFile { .. } => Code::Corrupt,
            Error::BadSegmentHeader { reason, .. } => match reason {
                HeaderError::BadMagic | HeaderError::UnsupportedVersion(_) => Code::NotALog,
                _ => Code::Corrupt,
            },
            Error::RecordTooLarge { .. }
            | Error::OffsetOutOfRange { .. }
            | Error::Purged { .. }
            | Error::InvalidOptions(_) => Code::BadInput,
            Error::Io(io) => return Failure::io(dir, io),
            _ => Code::Io,
        };
        let message = match &e {
            Error::Locked { .. } => format!(
                "{}: held by a writer (another process has it open)",
                dir.display()
            ),
            _ => chain(&e),
        };
        Failure { code, message }
    }

    /// An I/O error met while working on `path`.
    pub fn io(path: &Path, e: &io::Error) -> Failure {
        // A missing directory is found before (`existing_dir`): a file
        // missing later is an I/O error like any other.
        let code = match e.kind() {
            io::ErrorKind::PermissionDenied => Code::NotALog,
            _ => Code::Io,
        };
        Failure::new(code, format!("{}: {}", path.display(), e))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An error and its causes on one line, `: `-separated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// Checks that `dir` exists and is a directory (commands that read a log
/// never create one).
pub fn existing_dir(dir: &Path) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Failure::new(
            Code::NotALog,
            format!("{}: not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Failure::new(
            Code::NoSuchDir,
            format!("{}: no such directory", dir.display()),
        )),
        Err(e) => Err(Failure::io(dir, &e)),
    }
}

/// Whether an output error means the reader went away (`| head`): the
/// command then stops quietly with success.
pub fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Turns an error writing to stdout into a failure; a broken pipe is not
/// one (see `main`).
pub fn output(e: io::Error) -> Failure {
    if is_broken_pipe(&e) {
        Failure::new(Code::Ok, String::new())
    } else {
        Failure::new(Code::Io, format!("writing the output: {e}"))
    }
}

/// Writes a line to stderr; a closed or full stderr is ignored (there is
/// nobody to tell, and `eprintln!` would panic).
pub fn note(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(io::stderr(), "{line}");
}

/// Prints a command's whole answer and exits with `code`: a reader that
/// went away (a broken pipe) does not change the verdict (`verify | true`
/// still says what verify found); another output error is a failure.
pub fn answer(text: &str, code: Code) -> Result<Code, Failure> {
    use std::io::Write;
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(code),
        Err(e) if is_broken_pipe(&e) => Ok(code),
        Err(e) => Err(output(e)),
    }
}
