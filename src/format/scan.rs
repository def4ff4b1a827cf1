//! Scanning a segment's frames: how far its valid records go, and what
//! stopped the scan (recovery's and the fuzzers' view of a segment).
#![forbid(unsafe_code)]

use super::{FRAME_HEADER_LEN, Frame, FrameFault, FrameHeader, HEADER_LEN, check_frame};

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
