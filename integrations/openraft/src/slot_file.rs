//! A small value saved durably with one `fdatasync` per save: the
//! committed log id, which openraft saves at every commit.
//!
//! [`side_file`] writes a whole new file and renames it
//! (three fsyncs); here the file is created that way once, and every later
//! save overwrites one of its two fixed slots in place, the older one,
//! then `fdatasync`s: the file's size and blocks never change, so the
//! fdatasync carries the slot's bytes and nothing else. A crash during a
//! save can tear only the slot being written; the other still holds the
//! value saved before, which a read then returns (the save had not
//! returned, so nobody was told it was durable).
//!
//! The two slots sit [`STRIDE`] bytes apart, in different pages and
//! filesystem blocks, so that writing back one never rewrites the other.
//! Each slot is [`SLOT`] bytes (little-endian):
//!
//! | bytes         | field                                    |
//! |---------------|------------------------------------------|
//! | 0..8          | magic `b"MRKSLOT\0"`                     |
//! | 8..12         | format version (1)                       |
//! | 12..16        | payload length `n` (at most `SLOT - 28`) |
//! | 16..24        | sequence number of the save (from 1)     |
//! | 24..24+n      | payload                                  |
//! | 24+n..28+n    | CRC32 of bytes 0..24+n                   |
//!
//! A slot of zeros was never written. A missing file means "never saved";
//! a file of the wrong size, or one in which no slot checks out, is an
//! error, never a silent default. One slot that does not check out reads
//! as the value in the other one: a torn save and a damaged newest slot
//! look alike, and both give the value saved before (for openraft's
//! committed id, an older one only means fewer entries re-applied).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::side_file::{self, Damaged};

/// Bytes per slot.
pub const SLOT: usize = 512;
/// Where the second slot starts (the file is two strides long).
pub const STRIDE: usize = 4096;
const MAGIC: [u8; 8] = *b"MRKSLOT\0";
const VERSION: u32 = 1;
const HEAD: usize = 24;

/// The largest payload a slot holds.
pub const MAX_PAYLOAD: usize = SLOT - HEAD - 4;

/// A two-slot file, open for saves.
#[derive(Debug)]
pub struct SlotFile {
    dir: PathBuf,
    name: String,
    /// The file, once it exists.
    file: Option<File>,
    /// The sequence number of the last save (0: none).
    sequence: u64,
}

fn slot_bytes(payload: &[u8], sequence: u64) -> io::Result<[u8; SLOT]> {
    if payload.len() > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} bytes do not fit a slot of {SLOT} (at most {MAX_PAYLOAD})",
                payload.len()
            ),
        ));
    }
    let mut slot = [0u8; SLOT];
    slot[..8].copy_from_slice(&MAGIC);
    slot[8..12].copy_from_slice(&VERSION.to_le_bytes());
    slot[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    slot[16..24].copy_from_slice(&sequence.to_le_bytes());
    let end = HEAD + payload.len();
    slot[HEAD..end].copy_from_slice(payload);
    let crc = crc32fast::hash(&slot[..end]);
    slot[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(slot)
}

/// What one slot holds: `Ok(None)` if it was never written.
fn parse(slot: &[u8]) -> Result<Option<(u64, Vec<u8>)>, &'static str> {
    if slot.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    if slot[..8] != MAGIC {
        return Err("not a murakami-openraft slot file (magic)");
    }
    let word = |at: usize| u32::from_le_bytes(slot[at..at + 4].try_into().expect("4 bytes"));
    if word(8) != VERSION {
        return Err("unknown format version");
    }
    let len = word(12) as usize;
    if len > MAX_PAYLOAD {
        return Err("payload length past the slot");
    }
    if crc32fast::hash(&slot[..HEAD + len]) != word(HEAD + len) {
        return Err("checksum mismatch");
    }
    let sequence = u64::from_le_bytes(slot[16..24].try_into().expect("8 bytes"));
    Ok(Some((sequence, slot[HEAD..HEAD + len].to_vec())))
}

impl SlotFile {
    /// Opens `dir/name` and reads the value last saved in it (`None` if the
    /// file does not exist).
    pub fn open(dir: &Path, name: &str) -> io::Result<(SlotFile, Option<Vec<u8>>)> {
        let path = dir.join(name);
        let mut slots = SlotFile {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            file: None,
            sequence: 0,
        };
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((slots, None)),
            Err(e) => return Err(e),
        };
        let bytes = fs::read(&path)?;
        let damaged = |reason| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                Damaged {
                    path: path.clone(),
                    reason,
                },
            )
        };
        if bytes.len() != 2 * STRIDE {
            return Err(damaged("not two slots long"));
        }
        let (a, b) = (parse(&bytes[..SLOT]), parse(&bytes[STRIDE..STRIDE + SLOT]));
        // The newest slot that checks out. A slot that does not is the one
        // a crash tore (the other one is then the last whole save) — unless
        // neither checks out, or it is the only one ever written.
        let newest = match (a, b) {
            (Ok(a), Ok(b)) => a.into_iter().chain(b).max_by_key(|(s, _)| *s),
            (Ok(Some(v)), Err(_)) | (Err(_), Ok(Some(v))) => Some(v),
            (Err(reason), _) | (_, Err(reason)) => return Err(damaged(reason)),
        };
        let Some((sequence, value)) = newest else {
            return Err(damaged("no slot was ever written"));
        };
        slots.file = Some(file);
        slots.sequence = sequence;
        Ok((slots, Some(value)))
    }

    /// Saves `payload` durably: in place with one fdatasync, or, the first
    /// time, as a new file (written, fsynced, renamed, directory fsynced).
    pub fn save(&mut self, payload: &[u8]) -> io::Result<()> {
        let sequence = self.sequence + 1;
        let slot = slot_bytes(payload, sequence)?;
        match &self.file {
            Some(file) => {
                // Slot 0 holds odd sequence numbers, slot 1 even ones: a
                // save overwrites the older of the two.
                let at = if sequence % 2 == 1 { 0 } else { STRIDE as u64 };
                file.write_all_at(&slot, at)?;
                file.sync_data()?;
            }
            None => {
                let mut bytes = slot.to_vec();
                bytes.resize(2 * STRIDE, 0);
                side_file::replace(&self.dir, &self.name, &bytes)?;
                let path = self.dir.join(&self.name);
                self.file = Some(OpenOptions::new().read(true).write(true).open(&path)?);
            }
        }
        self.sequence = sequence;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(dir: &Path) -> io::Result<Option<Vec<u8>>> {
        SlotFile::open(dir, "committed").map(|(_, v)| v)
    }

    #[test]
    fn saves_alternate_slots_and_reopen_reads_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut slots, none) = SlotFile::open(dir.path(), "committed").unwrap();
        assert!(none.is_none());
        for i in 0..5u8 {
            slots.save(&[i; 7]).unwrap();
            assert_eq!(reopen(dir.path()).unwrap().unwrap(), [i; 7]);
        }
        assert!(!dir.path().join("committed.tmp").exists());
        // Saves after a reopen go on from the newest sequence number.
        let (mut slots, _) = SlotFile::open(dir.path(), "committed").unwrap();
        slots.save(b"after").unwrap();
        assert_eq!(reopen(dir.path()).unwrap().unwrap(), b"after");
        slots.save(b"again").unwrap();
        assert_eq!(reopen(dir.path()).unwrap().unwrap(), b"again");
    }

    #[test]
    fn a_torn_save_leaves_the_value_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut slots, _) = SlotFile::open(dir.path(), "committed").unwrap();
        slots.save(b"one").unwrap();
        slots.save(b"two").unwrap();
        let good = fs::read(dir.path().join("committed")).unwrap();
        // Save 3 goes to slot 0: tear it at every length and in every byte.
        let third = slot_bytes(b"three", 3).unwrap();
        for cut in 0..SLOT {
            let mut torn = good.clone();
            torn[..cut].copy_from_slice(&third[..cut]);
            fs::write(dir.path().join("committed"), &torn).unwrap();
            let value = reopen(dir.path()).unwrap().unwrap();
            assert!(
                value == b"two" || (value == b"three" && cut >= HEAD + 5 + 4),
                "cut {cut}: {value:?}"
            );
        }
    }

    #[test]
    fn damage_beyond_a_torn_slot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut slots, _) = SlotFile::open(dir.path(), "committed").unwrap();
        slots.save(b"only").unwrap();
        let good = fs::read(dir.path().join("committed")).unwrap();
        // The only slot ever written, flipped anywhere it matters.
        for i in 0..HEAD + 4 + 4 {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            fs::write(dir.path().join("committed"), &bad).unwrap();
            let err = reopen(dir.path()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {i}");
        }
        // Both slots damaged.
        slots.save(b"second").unwrap();
        let mut bad = fs::read(dir.path().join("committed")).unwrap();
        bad[0] ^= 1;
        bad[STRIDE] ^= 1;
        fs::write(dir.path().join("committed"), &bad).unwrap();
        assert!(reopen(dir.path()).is_err());
        // Wrong sizes, and all zeros.
        for len in [0, SLOT, 2 * SLOT, 2 * STRIDE - 1, 2 * STRIDE + 1] {
            fs::write(dir.path().join("committed"), vec![0u8; len]).unwrap();
            assert!(reopen(dir.path()).is_err(), "{len} bytes");
        }
        fs::write(dir.path().join("committed"), vec![0u8; 2 * STRIDE]).unwrap();
        assert!(reopen(dir.path()).is_err(), "zeros");
    }

    #[test]
    fn a_payload_too_big_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut slots, _) = SlotFile::open(dir.path(), "committed").unwrap();
        let err = slots.save(&[0u8; MAX_PAYLOAD + 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!dir.path().join("committed").exists());
        slots.save(&[1u8; MAX_PAYLOAD]).unwrap();
        assert_eq!(reopen(dir.path()).unwrap().unwrap(), [1u8; MAX_PAYLOAD]);
    }
}
