//! The segment header: what a segment file is, where it starts, and the
//! checkpoint a sync leaves in it.
//!
//! 64 bytes, at file position 0:
//!
//! | bytes  | field                                      |
//! |--------|--------------------------------------------|
//! | 0..8   | magic `b"MURAKAMI"`                        |
//! | 8..12  | format version (`u32`, 2; 1 is read too)    |
//! | 12..16 | header length (`u32`, 64): first frame here |
//! | 16..24 | base offset (`u64`): offset of first record |
//! | 24..32 | capacity (`u64`): file size reserved        |
//! | 32..40 | creation sequence number (`u64`)            |
//! | 40..44 | CRC32 of bytes 0..40                       |
//! | 44..48 | reserved, zero                             |
//! | 48..56 | checkpoint (`u64`): a durable offset       |
//! | 56..60 | CRC32 of base offset and checkpoint        |
//! | 60..64 | reserved, zero                             |
//!
//! The checkpoint is the only part of a segment rewritten after creation: a
//! sync stores there the durable offset it reached, and a later sync's flush
//! (at most every 5 ms) carries it to disk, so it never gets ahead of data
//! that is really durable. Recovery uses it, with the durable hints in
//! the frames, to tell corruption from a torn tail. A checkpoint whose CRC
//! fails counts as zero (no evidence).
#![forbid(unsafe_code)]

use super::{FORMAT_VERSION, HEADER_LEN, OLDEST_READ_VERSION, SEGMENT_MAGIC, u32_at, u64_at};

/// The decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Offset of the segment's first record.
    pub base_offset: u64,
    /// File size reserved for the segment.
    pub capacity: u64,
    /// Creation sequence number: strictly increasing across the segments a
    /// log creates, so a truncation can tell segments made after it from
    /// those made before.
    pub sequence: u64,
}

/// Why a segment header was refused: the `source` of
/// [`Error::BadSegmentHeader`](crate::Error::BadSegmentHeader) and of an
/// [`Error::Corrupt`](crate::Error::Corrupt) of kind
/// [`Corruption::BadHeader`](crate::Corruption::BadHeader).
///
/// New reasons may be added, so a `match` needs a wildcard arm:
///
/// ```compile_fail
/// fn exhaustive(e: murakami::HeaderError) -> u8 {
///     use murakami::HeaderError::*;
///     match e {
///         TooShort | Blank | Torn | BadMagic | BadChecksum | Inconsistent => 0,
///         UnsupportedVersion(_) | BadHeaderLength(_) => 1,
///     }
/// }
/// ```
///
/// ```
/// fn is_an_error<E: std::error::Error + Send + Sync + 'static>() {}
/// is_an_error::<murakami::HeaderError>();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The file is shorter than a header.
    TooShort,
    /// The header is all zeros: the file was created but its header never
    /// reached the disk.
    Blank,
    /// The header was being written when the power went: a prefix of it
    /// (in murakami's magic) followed by the zeros the file was created
    /// with. Nothing in such a segment was ever durable (a sync flushes a
    /// segment's header before its first record), so recovery treats it as
    /// a torn tail, like a blank header.
    Torn,
    /// The magic bytes are not murakami's.
    BadMagic,
    /// The header checksum does not match.
    BadChecksum,
    /// A format version this crate does not read.
    UnsupportedVersion(u32),
    /// A header length this crate does not read.
    BadHeaderLength(u32),
    /// The base offset in the header is not the one the file is named for,
    /// or the capacity is impossible.
    Inconsistent,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort => f.write_str("file is shorter than a segment header"),
            HeaderError::Blank => f.write_str("segment header is all zeros"),
            HeaderError::Torn => f.write_str("segment header was torn by a crash"),
            HeaderError::BadMagic => f.write_str("not a murakami segment (bad magic)"),
            HeaderError::BadChecksum => f.write_str("segment header checksum mismatch"),
            HeaderError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            HeaderError::BadHeaderLength(n) => write!(f, "unsupported header length {n}"),
            HeaderError::Inconsistent => {
                f.write_str("header disagrees with the file's name or size")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

impl SegmentHeader {
    /// Encodes the header into its 64 bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.base_offset.to_le_bytes());
        out[24..32].copy_from_slice(&self.capacity.to_le_bytes());
        out[32..40].copy_from_slice(&self.sequence.to_le_bytes());
        let crc = crc32fast::hash(&out[0..40]);
        out[40..44].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header from the start of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        let bytes = bytes.get(..HEADER_LEN).ok_or(HeaderError::TooShort)?;
        if bytes.iter().all(|&b| b == 0) {
            return Err(HeaderError::Blank);
        }
        // A torn write of our header over a fresh file's zeros: bytes up to
        // the last nonzero one, in murakami's magic as far as it goes. The
        // checksum (bytes 40..44) is the last field written.
        let written = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let magic = written.min(SEGMENT_MAGIC.len());
        let ours_so_far = bytes[..magic] == SEGMENT_MAGIC[..magic];
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(if ours_so_far {
                HeaderError::Torn
            } else {
                HeaderError::BadMagic
            });
        }
        if crc32fast::hash(&bytes[0..40]) != u32_at(bytes, 40) {
            return Err(if written < 44 {
                HeaderError::Torn
            } else {
                HeaderError::BadChecksum
            });
        }
        let version = u32_at(bytes, 8);
        if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let header_len = u32_at(bytes, 12);
        if header_len as usize != HEADER_LEN {
            return Err(HeaderError::BadHeaderLength(header_len));
        }
        Ok(SegmentHeader {
            base_offset: u64_at(bytes, 16),
            capacity: u64_at(bytes, 24),
            sequence: u64_at(bytes, 32),
        })
    }
}

/// The format version a segment header that [`SegmentHeader::decode`]
/// accepted was written in.
pub fn segment_version(header: &[u8]) -> u32 {
    u32_at(header, 8)
}

/// Position of the checkpoint in the segment header.
pub const CHECKPOINT_AT: usize = 48;

/// The CRC that guards a checkpoint of segment `base`.
pub fn checkpoint_crc(base: u64, checkpoint: u64) -> u32 {
    let mut bytes = [0u8; 16];
    bytes[0..8].copy_from_slice(&base.to_le_bytes());
    bytes[8..16].copy_from_slice(&checkpoint.to_le_bytes());
    crc32fast::hash(&bytes)
}

/// The checkpoint stored in the header of segment `base`; zero when it is
/// missing or damaged.
pub fn decode_checkpoint(header: &[u8], base: u64) -> u64 {
    if header.len() < HEADER_LEN {
        return 0;
    }
    let checkpoint = u64_at(header, CHECKPOINT_AT);
    if checkpoint_crc(base, checkpoint) != u32_at(header, CHECKPOINT_AT + 8) {
        return 0;
    }
    checkpoint
}
