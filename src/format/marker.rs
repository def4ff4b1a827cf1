//! The small marker files: the clean-close marker, the truncation marker
//! and the restart marker.
//!
//!
//! The clean-close marker (`murakami.clean`, 40 bytes):
//!
//! | bytes  | field                                         |
//! |--------|-----------------------------------------------|
//! | 0..8   | magic `b"MRKCLEAN"`                           |
//! | 8..12  | format version                                |
//! | 12..16 | reserved, zero                                |
//! | 16..24 | next offset (one past the last record)        |
//! | 24..32 | base offset of the active segment             |
//! | 32..36 | reserved, zero                                |
//! | 36..40 | CRC32 of bytes 0..36                          |
#![forbid(unsafe_code)]

use super::{
    CLEAN_LEN, CLEAN_MAGIC, CUT_LEN, CUT_MAGIC, FORMAT_VERSION, OLDEST_READ_VERSION, RESTART_LEN,
    RESTART_MAGIC, u32_at, u64_at,
};

/// The clean-close marker: the log was closed with everything synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanMarker {
    /// One past the last record.
    pub next_offset: u64,
    /// Base offset of the active segment.
    pub active_base: u64,
}

/// Starts a small marker file: magic in bytes 0..8.
fn marker<const N: usize>(magic: &[u8; 8]) -> [u8; N] {
    let mut out = [0u8; N];
    out[0..8].copy_from_slice(magic);
    out
}

/// Ends a small marker file: the CRC32 of everything before its last four
/// bytes, in those bytes.
fn seal_marker<const N: usize>(mut out: [u8; N]) -> [u8; N] {
    let crc = crc32fast::hash(&out[..N - 4]);
    out[N - 4..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Whether `bytes` is a whole marker of `N` bytes with `magic` and a
/// matching CRC in its last four bytes.
fn is_marker<const N: usize>(bytes: &[u8], magic: &[u8; 8]) -> bool {
    bytes.len() == N
        && bytes[0..8] == *magic
        && crc32fast::hash(&bytes[..N - 4]) == u32_at(bytes, N - 4)
}

impl CleanMarker {
    /// Encodes the marker.
    pub fn encode(&self) -> [u8; CLEAN_LEN] {
        let mut out = marker::<CLEAN_LEN>(&CLEAN_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.next_offset.to_le_bytes());
        out[24..32].copy_from_slice(&self.active_base.to_le_bytes());
        seal_marker(out)
    }

    /// Decodes a marker; `None` if it is not a valid one.
    pub fn decode(bytes: &[u8]) -> Option<CleanMarker> {
        if !is_marker::<CLEAN_LEN>(bytes, &CLEAN_MAGIC) {
            return None;
        }
        if !(OLDEST_READ_VERSION..=FORMAT_VERSION).contains(&u32_at(bytes, 8)) {
            return None;
        }
        Some(CleanMarker {
            next_offset: u64_at(bytes, 16),
            active_base: u64_at(bytes, 24),
        })
    }
}

/// A truncation marker (`NNNN.cut`, next to the segment it cuts): the
/// segment with sequence `segment` holds no record at or after offset `at`,
/// whatever its bytes say, and segments with a sequence below `created_after`
/// that follow it were discarded by the truncation.
///
/// | bytes  | field                                        |
/// |--------|----------------------------------------------|
/// | 0..8   | magic `b"MRKMCUT\0"`                         |
/// | 8..16  | `at`: the first offset cut away              |
/// | 16..24 | sequence of the segment cut                  |
/// | 24..32 | first sequence created after the truncation  |
/// | 32..36 | CRC32 of bytes 0..32                         |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutMarker {
    /// The first offset cut away.
    pub at: u64,
    /// Sequence of the segment it applies to.
    pub segment: u64,
    /// Segments with a lower sequence that follow the cut segment are
    /// leftovers of the truncation.
    pub created_after: u64,
}

impl CutMarker {
    /// Encodes the marker.
    pub fn encode(&self) -> [u8; CUT_LEN] {
        let mut out = marker::<CUT_LEN>(&CUT_MAGIC);
        out[8..16].copy_from_slice(&self.at.to_le_bytes());
        out[16..24].copy_from_slice(&self.segment.to_le_bytes());
        out[24..32].copy_from_slice(&self.created_after.to_le_bytes());
        seal_marker(out)
    }

    /// Decodes a marker; `None` if it is not a valid one.
    pub fn decode(bytes: &[u8]) -> Option<CutMarker> {
        if !is_marker::<CUT_LEN>(bytes, &CUT_MAGIC) {
            return None;
        }
        Some(CutMarker {
            at: u64_at(bytes, 8),
            segment: u64_at(bytes, 16),
            created_after: u64_at(bytes, 24),
        })
    }
}

/// A restart marker (`murakami.restart`): every segment with a sequence
/// below `created_after` is discarded, and the log starts at `start` (empty
/// there, when no later segment is found).
///
/// | bytes  | field                                        |
/// |--------|----------------------------------------------|
/// | 0..8   | magic `b"MRKRSTRT"`                          |
/// | 8..16  | `start`: the new log's first offset          |
/// | 16..24 | first sequence created after the restart     |
/// | 24..28 | CRC32 of bytes 0..24                         |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartMarker {
    /// The first offset of the log after the restart.
    pub start: u64,
    /// Segments with a lower sequence belong to the log before the restart.
    pub created_after: u64,
}

impl RestartMarker {
    /// Encodes the marker.
    pub fn encode(&self) -> [u8; RESTART_LEN] {
        let mut out = marker::<RESTART_LEN>(&RESTART_MAGIC);
        out[8..16].copy_from_slice(&self.start.to_le_bytes());
        out[16..24].copy_from_slice(&self.created_after.to_le_bytes());
        seal_marker(out)
    }

    /// Decodes a marker; `None` if it is not a valid one.
    pub fn decode(bytes: &[u8]) -> Option<RestartMarker> {
        if !is_marker::<RESTART_LEN>(bytes, &RESTART_MAGIC) {
            return None;
        }
        Some(RestartMarker {
            start: u64_at(bytes, 8),
            created_after: u64_at(bytes, 16),
        })
    }
}
