//! The on-disk format: segment header, record frame, clean-close marker.
//!
//! Pure encode/decode over byte slices. Nothing here touches a file, a map or
//! an atomic, and nothing here is `unsafe`: every length read from a file is
//! bounds-checked before it is used. `docs/format.md` describes the same
//! layout byte by byte; keep the two in step.
//!
//! All integers are little-endian.
//!
//! ## Segment header (64 bytes, at file position 0)
//!
//! | bytes  | field                                      |
//! |--------|--------------------------------------------|
//! | 0..8   | magic `b"MURAKAMI"`                        |
//! | 8..12  | format version (`u32`, currently 1)         |
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
//!
//! ## Record frame (8-byte aligned, follows the previous frame)
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
//!
//! ## Clean-close marker (`murakami.clean`, 40 bytes)
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

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MURAKAMI";
/// Magic bytes at the start of the clean-close marker.
pub const CLEAN_MAGIC: [u8; 8] = *b"MRKCLEAN";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the segment header; the first frame starts here.
pub const HEADER_LEN: usize = 64;
/// Length of a record frame's header.
pub const FRAME_HEADER_LEN: usize = 32;
/// Frames start at multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// The smallest frame (an empty record).
pub const MIN_FRAME_LEN: usize = FRAME_HEADER_LEN;
/// Length of the clean-close marker file.
pub const CLEAN_LEN: usize = 40;
/// Magic bytes at the start of a truncation marker.
pub const CUT_MAGIC: [u8; 8] = *b"MRKMCUT\0";
/// Length of a truncation marker file.
pub const CUT_LEN: usize = 36;
/// Largest payload the frame's length field can express.
pub const MAX_PAYLOAD_LEN: u32 = 0x7FFF_FFFF;

const FRAME_PRESENT: u32 = 0x8000_0000;

/// Length of the frame that carries a payload of `payload_len` bytes.
#[inline]
pub const fn frame_len(payload_len: usize) -> usize {
    (FRAME_HEADER_LEN + payload_len + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

#[inline]
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[inline]
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

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
        if version != FORMAT_VERSION {
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

/// The result of scanning a segment's frames from its first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Number of valid records found before the scan stopped.
    pub count: u64,
    /// Position just past the last valid frame.
    pub end: usize,
    /// The fault that stopped the scan at `end`, if it did not stop at a clean
    /// end of data.
    pub fault: Option<FrameFault>,
    /// Largest durable hint among the valid records.
    pub max_hint: u64,
    /// Largest timestamp among the valid records (0 when there are none).
    pub max_timestamp: u64,
}

/// Scans the frames of a segment whose first record is `base`, calling
/// `on_record(position, header)` for each valid one, in order.
pub fn scan(
    bytes: &[u8],
    base: u64,
    max_payload: u32,
    mut on_record: impl FnMut(usize, &FrameHeader),
) -> Scan {
    let mut scan = Scan {
        count: 0,
        end: HEADER_LEN,
        fault: None,
        max_hint: 0,
        max_timestamp: 0,
    };
    loop {
        match check_frame(bytes, scan.end, base + scan.count, max_payload) {
            Frame::Record(header) => {
                on_record(scan.end, &header);
                scan.max_hint = scan.max_hint.max(header.hint);
                scan.max_timestamp = scan.max_timestamp.max(header.timestamp);
                scan.count += 1;
                scan.end += header.frame_len();
            }
            Frame::End => return scan,
            Frame::Fault(fault) => {
                scan.fault = Some(fault);
                return scan;
            }
        }
    }
}

/// Looks past a bad frame for evidence that it had been durable: follows the
/// bad frame's own length word (when it is plausible) and returns the largest
/// durable hint among the valid records chained after it, and how many there
/// are.
///
/// `offset` is the offset the bad frame should have held.
pub fn after_fault(bytes: &[u8], pos: usize, offset: u64, max_payload: u32) -> (u64, u64) {
    let Some(header) = pos
        .checked_add(FRAME_HEADER_LEN)
        .and_then(|end| bytes.get(pos..end))
        .and_then(|head| FrameHeader::decode(head.try_into().expect("header length")))
    else {
        return (0, 0);
    };
    if header.len > max_payload {
        return (0, 0);
    }
    let mut at = pos + header.frame_len();
    let mut next = offset + 1;
    let mut max_hint = 0;
    while let Frame::Record(found) = check_frame(bytes, at, next, max_payload) {
        max_hint = max_hint.max(found.hint);
        at += found.frame_len();
        next += 1;
    }
    (max_hint, next - offset - 1)
}

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
        if u32_at(bytes, 8) != FORMAT_VERSION {
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

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn segment_with(records: &[&[u8]], base: u64, capacity: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; capacity];
        let header = SegmentHeader {
            base_offset: base,
            capacity: capacity as u64,
            sequence: 7,
        };
        bytes[..HEADER_LEN].copy_from_slice(&header.encode());
        let mut pos = HEADER_LEN;
        for (i, payload) in records.iter().enumerate() {
            let frame = FrameHeader::new(base + i as u64, 100 + i as u64, i as u64, payload.len());
            let end = pos + FRAME_HEADER_LEN + payload.len();
            bytes[pos..pos + FRAME_HEADER_LEN].copy_from_slice(&frame.encode());
            bytes[pos + FRAME_HEADER_LEN..end].copy_from_slice(payload);
            let crc = frame_crc(&bytes[pos..end]);
            bytes[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
            pos += frame.frame_len();
        }
        bytes
    }

    #[test]
    fn frame_len_is_aligned_and_holds_the_header() {
        assert_eq!(frame_len(0), 32);
        assert_eq!(frame_len(1), 40);
        assert_eq!(frame_len(8), 40);
        assert_eq!(frame_len(9), 48);
        assert_eq!(frame_len(256), 288);
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let header = SegmentHeader {
            base_offset: 42,
            capacity: 1 << 20,
            sequence: 9,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        let mut flipped = bytes;
        flipped[17] ^= 1;
        assert_eq!(
            SegmentHeader::decode(&flipped),
            Err(HeaderError::BadChecksum)
        );
        let mut magic = bytes;
        magic[0] = b'X';
        assert_eq!(SegmentHeader::decode(&magic), Err(HeaderError::BadMagic));
        assert_eq!(SegmentHeader::decode(&[0u8; 64]), Err(HeaderError::Blank));
        assert_eq!(
            SegmentHeader::decode(&bytes[..10]),
            Err(HeaderError::TooShort)
        );
    }

    #[test]
    fn a_header_cut_short_over_zeros_is_torn_and_damage_is_not() {
        let header = SegmentHeader {
            base_offset: 77,
            capacity: 1 << 20,
            sequence: 3,
        };
        let bytes = header.encode();
        for written in 1..44 {
            let mut torn = [0u8; HEADER_LEN];
            torn[..written].copy_from_slice(&bytes[..written]);
            let decoded = SegmentHeader::decode(&torn);
            // A prefix ending in zeros reads as a shorter one.
            if torn.iter().all(|&b| b == 0) {
                assert_eq!(decoded, Err(HeaderError::Blank));
            } else {
                assert_eq!(decoded, Err(HeaderError::Torn), "prefix of {written}");
            }
        }
        // Damage inside a whole header, or garbage after a prefix, is not a
        // tear.
        let mut flipped = bytes;
        flipped[20] ^= 0x10;
        assert_eq!(
            SegmentHeader::decode(&flipped),
            Err(HeaderError::BadChecksum)
        );
        let mut garbage = [0u8; HEADER_LEN];
        garbage[..20].copy_from_slice(&bytes[..20]);
        garbage[50] = 1;
        assert_eq!(
            SegmentHeader::decode(&garbage),
            Err(HeaderError::BadChecksum)
        );
        let mut foreign = [0u8; HEADER_LEN];
        foreign[..4].copy_from_slice(b"MURX");
        assert_eq!(SegmentHeader::decode(&foreign), Err(HeaderError::BadMagic));
    }

    #[test]
    fn scan_finds_every_record_and_stops_at_zeros() {
        let bytes = segment_with(&[b"a", b"", b"hello world"], 10, 4096);
        let mut seen = Vec::new();
        let scan = scan(&bytes, 10, 1024, |pos, h| seen.push((pos, h.len)));
        assert_eq!(scan.count, 3);
        assert_eq!(scan.fault, None);
        assert_eq!(seen, vec![(64, 1), (104, 0), (136, 11)]);
        assert_eq!(scan.end, 136 + 48);
        assert_eq!(scan.max_hint, 2);
    }

    #[test]
    fn a_frame_under_the_wrong_offset_is_misplaced() {
        let bytes = segment_with(&[b"record"], 10, 4096);
        let scan = scan(&bytes, 11, 1024, |_, _| {});
        assert_eq!(scan.count, 0);
        assert_eq!(scan.fault, Some(FrameFault::Misplaced { found: 10 }));
    }

    #[test]
    fn a_changed_offset_fails_the_checksum() {
        let mut bytes = segment_with(&[b"record"], 10, 4096);
        bytes[HEADER_LEN + 8] ^= 1;
        let scan = scan(&bytes, 10, 1024, |_, _| {});
        assert!(matches!(
            scan.fault,
            Some(FrameFault::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn a_flipped_payload_bit_stops_the_scan_with_evidence_after_it() {
        let mut bytes = segment_with(&[b"one", b"two", b"three", b"four"], 0, 4096);
        let second = HEADER_LEN + frame_len(3) + FRAME_HEADER_LEN;
        bytes[second] ^= 0x40;
        let scan = scan(&bytes, 0, 1024, |_, _| {});
        assert_eq!(scan.count, 1);
        assert!(matches!(
            scan.fault,
            Some(FrameFault::ChecksumMismatch { .. })
        ));
        assert_eq!(after_fault(&bytes, scan.end, 1, 1024), (3, 2));
    }

    #[test]
    fn huge_lengths_are_faults_not_panics() {
        let mut bytes = segment_with(&[b"x"], 0, 256);
        bytes[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        let scan = scan(&bytes, 0, u32::MAX, |_, _| {});
        assert_eq!(
            scan.fault,
            Some(FrameFault::BadLength {
                len: MAX_PAYLOAD_LEN
            })
        );
        assert_eq!(after_fault(&bytes, HEADER_LEN, 0, u32::MAX), (0, 0));
    }

    #[test]
    fn garbage_without_the_frame_bit_is_not_a_frame() {
        let mut bytes = segment_with(&[], 0, 256);
        bytes[HEADER_LEN + 4] = 1;
        assert_eq!(
            check_frame(&bytes, HEADER_LEN, 0, 64),
            Frame::Fault(FrameFault::NotAFrame)
        );
        assert_eq!(check_frame(&bytes, 240, 0, 64), Frame::End);
        assert_eq!(check_frame(&bytes, usize::MAX - 3, 0, 64), Frame::End);
    }

    #[test]
    fn cut_marker_round_trips_and_rejects_damage() {
        let marker = CutMarker {
            at: 10,
            segment: 3,
            created_after: 7,
        };
        let bytes = marker.encode();
        assert_eq!(CutMarker::decode(&bytes), Some(marker));
        let mut bad = bytes;
        bad[9] ^= 1;
        assert_eq!(CutMarker::decode(&bad), None);
    }

    #[test]
    fn clean_marker_round_trips_and_rejects_damage() {
        let marker = CleanMarker {
            next_offset: 99,
            active_base: 64,
        };
        let bytes = marker.encode();
        assert_eq!(CleanMarker::decode(&bytes), Some(marker));
        let mut bad = bytes;
        bad[20] ^= 1;
        assert_eq!(CleanMarker::decode(&bad), None);
        assert_eq!(CleanMarker::decode(&bytes[..39]), None);
    }
}
