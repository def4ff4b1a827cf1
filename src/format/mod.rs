//! The on-disk format: segment header, record frame, markers, scans.
//!
//! Pure encode/decode over byte slices. Nothing here touches a file, a map or
//! an atomic, and nothing here is `unsafe`: every length read from a file is
//! bounds-checked before it is used. `docs/format.md` describes the same
//! layout byte by byte; keep the two in step.
//!
//! All integers are little-endian.
//!
//! The parts: [`header`] (the segment header and its checkpoint),
//! [`frame`] (record frames and their checks), [`scan`](mod@scan) (walking a
//! segment's frames) and [`marker`] (the clean-close and truncation
//! markers). This module holds the constants they share.
//!
//! What it may call: nothing of the crate's.
#![forbid(unsafe_code)]

mod control;
mod frame;
mod header;
mod marker;
mod scan;

pub use control::*;
pub use frame::*;
pub use header::*;
pub use marker::*;
pub use scan::*;

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MURAKAMI";
/// Magic bytes at the start of the clean-close marker.
pub const CLEAN_MAGIC: [u8; 8] = *b"MRKCLEAN";
/// The format version this crate writes: 2, whose writers store each
/// frame's commit word last and keep a control file for readers in other
/// processes (see `docs/format.md`). Segment bytes are laid out as in 1.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this crate reads (and appends to).
pub const OLDEST_READ_VERSION: u32 = 1;
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
/// Magic bytes at the start of a restart marker.
pub const RESTART_MAGIC: [u8; 8] = *b"MRKRSTRT";
/// Length of a restart marker file.
pub const RESTART_LEN: usize = 28;
/// Largest payload the frame's length field can express.
pub const MAX_PAYLOAD_LEN: u32 = 0x7FFF_FFFF;

/// The bit of a frame's length word that marks a frame (a committed one:
/// see [`commit_word`]).
pub const FRAME_PRESENT: u32 = 0x8000_0000;

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
    fn restart_marker_round_trips_and_rejects_damage() {
        let marker = RestartMarker {
            start: 1 << 40,
            created_after: 5,
        };
        let bytes = marker.encode();
        assert_eq!(RestartMarker::decode(&bytes), Some(marker));
        let mut bad = bytes;
        bad[12] ^= 1;
        assert_eq!(RestartMarker::decode(&bad), None);
        assert_eq!(RestartMarker::decode(&bytes[..20]), None);
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
