//! Record frames: the bytes one record takes in a segment.
//!
//! 8-byte aligned, each following the previous one:
//!
//! | bytes  | field                                                          |
//! |--------|----------------------------------------------------------------|
//! | 0..4   | CRC32 of bytes 4..32 and the payload                           |
//! | 4..8   | `0x8000_0000 \| payload length` (the high bit marks a frame)    |
//! | 8..16  | the record's offset (`u64`)                                     |
//! | 16..24 | timestamp (`u64`, ns since the Unix epoch, or caller-given)     |
//! | 24..32 | durable hint (`u64`): the log's durable offset at append time  |
//! | 32..   | payload, then zero padding to a multiple of 8                  |
//!
//! The CRC covers the record's offset, so a stale or misplaced frame never
//! passes as the record that belongs at a position; and it covers one
//! contiguous run of bytes, so the producer computes it in one pass over the
//! frame it has just written. The durable hint lets recovery tell a torn tail
//! from corruption: a valid record whose hint is above a bad record's offset
//! proves that the bad record had been made durable, so it was corrupted
//! rather than torn.
//!
//! A frame header that is all zeros marks the end of the written data (the
//! file is reserved with zeros). The high bit in the length word makes sure no
//! valid frame header is all zeros.
#![forbid(unsafe_code)]

use super::{FRAME_HEADER_LEN, FRAME_PRESENT, MAX_PAYLOAD_LEN, frame_len, u32_at, u64_at};

/// The fields of a frame header, as the producer writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// CRC32 of header bytes 4..32 and the payload.
    pub crc: u32,
    /// Payload length in bytes.
    pub len: u32,
    /// The record's offset.
    pub offset: u64,
    /// Record timestamp (ns since the Unix epoch, or caller-given).
    pub timestamp: u64,
    /// The log's durable offset when the record was appended.
    pub hint: u64,
}

/// The CRC of a frame: over `frame[4..]`, which holds header bytes 4..32
/// and the payload.
#[inline]
pub fn frame_crc(frame: &[u8]) -> u32 {
    crc32fast::hash(&frame[4..])
}

/// The commit word of a frame carrying `payload_len` bytes: frame bytes
/// 4..8, which the writer stores last (see `docs/format.md`, "Commit
/// order"). Never zero.
#[inline]
pub const fn commit_word(payload_len: usize) -> u32 {
    payload_len as u32 | FRAME_PRESENT
}

/// [`frame_crc`] of a frame whose commit word is not in place yet: over
/// `word` (little-endian) and then `rest`, the frame's bytes from 8 on.
#[inline]
pub fn commit_crc(word: u32, rest: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&word.to_le_bytes());
    hasher.update(rest);
    hasher.finalize()
}

impl FrameHeader {
    /// Builds the header of the record at `offset`, with a zero CRC: the
    /// writer fills the CRC in once the frame is in place ([`frame_crc`]).
    #[inline]
    pub fn new(offset: u64, timestamp: u64, hint: u64, len: usize) -> FrameHeader {
        debug_assert!(len <= MAX_PAYLOAD_LEN as usize);
        FrameHeader {
            crc: 0,
            len: len as u32,
            offset,
            timestamp,
            hint,
        }
    }

    /// Encodes the header into its 32 bytes.
    #[inline]
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[0..4].copy_from_slice(&self.crc.to_le_bytes());
        out[4..8].copy_from_slice(&(self.len | FRAME_PRESENT).to_le_bytes());
        out[8..16].copy_from_slice(&self.offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.timestamp.to_le_bytes());
        out[24..32].copy_from_slice(&self.hint.to_le_bytes());
        out
    }

    /// Decodes a header without checking it. `None` when the length word
    /// lacks the frame bit (an all-zero header: the end of written data).
    #[inline]
    pub fn decode(bytes: &[u8; FRAME_HEADER_LEN]) -> Option<FrameHeader> {
        let word = u32_at(bytes, 4);
        if word & FRAME_PRESENT == 0 {
            return None;
        }
        Some(FrameHeader {
            crc: u32_at(bytes, 0),
            len: word & !FRAME_PRESENT,
            offset: u64_at(bytes, 8),
            timestamp: u64_at(bytes, 16),
            hint: u64_at(bytes, 24),
        })
    }

    /// Length of the whole frame.
    #[inline]
    pub fn frame_len(&self) -> usize {
        frame_len(self.len as usize)
    }
}

/// Where a scan of frames stopped, when it did not stop at a clean end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// The length word lacks the frame bit but the header is not all zeros.
    NotAFrame,
    /// The payload length is larger than allowed, or the frame runs past the
    /// end of the segment.
    BadLength {
        /// The length found.
        len: u32,
    },
    /// A valid frame, but of another record: stale or misplaced.
    Misplaced {
        /// The offset the frame holds.
        found: u64,
    },
    /// The CRC stored in the frame does not match its contents.
    ChecksumMismatch {
        /// The CRC stored in the frame.
        expected: u32,
        /// The CRC computed over the bytes found.
        actual: u32,
    },
}

/// What a frame at a position turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A valid record.
    Record(FrameHeader),
    /// The end of written data: an all-zero frame header, or no room for one.
    End,
    /// A bad frame.
    Fault(FrameFault),
}

/// Decodes and verifies the frame at `pos`, expected to hold `offset`.
///
/// Never panics and never reads outside `bytes`, whatever they hold.
pub fn check_frame(bytes: &[u8], pos: usize, offset: u64, max_payload: u32) -> Frame {
    let Some(head) = pos
        .checked_add(FRAME_HEADER_LEN)
        .and_then(|end| bytes.get(pos..end))
    else {
        return Frame::End;
    };
    let head: &[u8; FRAME_HEADER_LEN] = head.try_into().expect("slice of header length");
    if head.iter().all(|&b| b == 0) {
        return Frame::End;
    }
    let Some(header) = FrameHeader::decode(head) else {
        return Frame::Fault(FrameFault::NotAFrame);
    };
    let fits = header.len <= max_payload && pos + header.frame_len() <= bytes.len();
    if !fits {
        return Frame::Fault(FrameFault::BadLength { len: header.len });
    }
    let frame = &bytes[pos..pos + FRAME_HEADER_LEN + header.len as usize];
    let actual = frame_crc(frame);
    if actual != header.crc {
        return Frame::Fault(FrameFault::ChecksumMismatch {
            expected: header.crc,
            actual,
        });
    }
    if header.offset != offset {
        return Frame::Fault(FrameFault::Misplaced {
            found: header.offset,
        });
    }
    Frame::Record(header)
}
