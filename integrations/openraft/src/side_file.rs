//! Small durable side files: the vote and the last purged log id, each in
//! a file of its own next to the log (the committed log id, saved at
//! every commit, has a two-slot file of its own: [`crate::slot_file`]).
//!
//! A file is written whole or not at all: the bytes go to a temporary file,
//! which is fsynced, renamed over the old one, and the directory fsynced.
//! Its layout (little-endian):
//!
//! | bytes        | field                                   |
//! |--------------|-----------------------------------------|
//! | 0..8         | magic `b"MRKRAFT\0"`                    |
//! | 8..12        | format version (1)                      |
//! | 12..16       | payload length `n`                      |
//! | 16..16+n     | payload (postcard, see `codec.rs`)      |
//! | 16+n..20+n   | CRC32 of bytes 0..16+n                  |
//!
//! A missing file means "never saved"; a file that is there but does not
//! check out (short, wrong magic or version, bad CRC) is an error: a
//! damaged vote must never read as no vote.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: [u8; 8] = *b"MRKRAFT\0";
const VERSION: u32 = 1;
const HEAD: usize = 16;

/// A side file that exists but cannot be trusted.
#[derive(Debug)]
pub struct Damaged {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for Damaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for Damaged {}

/// Writes `payload` to `dir/name` durably and atomically.
pub fn write(dir: &Path, name: &str, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
    let mut bytes = Vec::with_capacity(HEAD + payload.len() + 4);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(payload);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    replace(dir, name, &bytes)
}

/// Makes `dir/name` hold `bytes`, whole or not at all, durably: a
/// temporary file written and fsynced, renamed over it, the directory
/// fsynced.
pub(crate) fn replace(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Reads `dir/name`: `Ok(None)` when it was never written.
pub fn read(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let damaged = |reason| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            Damaged {
                path: path.clone(),
                reason,
            },
        )
    };
    if bytes.len() < HEAD + 4 {
        return Err(damaged("shorter than its header"));
    }
    if bytes[..8] != MAGIC {
        return Err(damaged("not a murakami-openraft side file (magic)"));
    }
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if word(8) != VERSION {
        return Err(damaged("unknown format version"));
    }
    let len = word(12) as usize;
    if bytes.len() != HEAD + len + 4 {
        return Err(damaged("length does not match its header"));
    }
    if crc32fast::hash(&bytes[..HEAD + len]) != word(HEAD + len) {
        return Err(damaged("checksum mismatch"));
    }
    Ok(Some(bytes[HEAD..HEAD + len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_every_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), "vote").unwrap().is_none());
        write(dir.path(), "vote", b"hello").unwrap();
        assert_eq!(read(dir.path(), "vote").unwrap().unwrap(), b"hello");
        write(dir.path(), "vote", b"again").unwrap();
        assert_eq!(read(dir.path(), "vote").unwrap().unwrap(), b"again");
        assert!(!dir.path().join("vote.tmp").exists());
        let good = fs::read(dir.path().join("vote")).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            fs::write(dir.path().join("vote"), &bad).unwrap();
            let err = read(dir.path(), "vote").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {i}");
        }
        for len in 0..good.len() {
            fs::write(dir.path().join("vote"), &good[..len]).unwrap();
            assert!(read(dir.path(), "vote").is_err(), "cut at {len}");
        }
    }
}
