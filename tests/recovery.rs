//! Opening after a crash: torn tails are repaired, corruption is reported.
//!
//! A crash is simulated by copying the log's files while the writer is still
//! open (no clean-close marker), then damaging the copy the way a power loss
//! or a failing disk could.
#![cfg(not(feature = "loom"))]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Loss, copy_dir, frames, lose_after, payload, segment_files};
use murakami::{Corruption, CutReason, Error, Log, Options, Recovery};

fn small() -> Options {
    Options::default().segment_size(8192).max_record_size(1024)
}

/// A log with `n` records of which the first `durable` were synced, copied
/// as a crash would leave it.
fn crashed(n: u64, durable: u64) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let (mut writer, _) = Log::open(&live, small()).unwrap();
    for i in 0..n {
        writer.append(&payload(i)).unwrap();
        if i + 1 == durable {
            writer.sync().unwrap();
        }
    }
    let copy = tmp.path().join("crash");
    copy_dir(&live, &copy);
    drop(writer);
    (tmp, copy)
}

/// Byte position of record `offset` in its segment file.
fn locate(dir: &Path, offset: u64) -> (PathBuf, usize, usize) {
    for path in segment_files(dir) {
        let base = common::base_of(&path);
        let bytes = fs::read(&path).unwrap();
        let frames = frames(&bytes);
        if offset >= base && offset < base + frames.len() as u64 {
            let (pos, len) = frames[(offset - base) as usize];
            return (path, pos, len);
        }
    }
    panic!("record {offset} not found")
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x10;
    fs::write(path, bytes).unwrap();
}

fn assert_records(dir: &Path, n: u64) {
    let (_, reader) = Log::open(dir, small()).unwrap();
    assert_eq!(reader.next_offset(), n);
    for i in 0..n {
        assert_eq!(reader.read(i).unwrap(), payload(i), "record {i}");
    }
}

#[test]
fn a_crash_with_nothing_lost_recovers_every_record() {
    let (_tmp, dir) = crashed(300, 300);
    let (writer, reader) = Log::open(&dir, small()).unwrap();
    let report = writer.recovery_report();
    assert!(!report.clean_shutdown);
    assert!(report.cut.is_none());
    assert_eq!(reader.next_offset(), 300);
    assert_eq!(
        reader.durable_offset(),
        300,
        "recovered records are made durable"
    );
}

#[test]
fn a_partial_record_at_the_tail_is_cut() {
    let (_tmp, dir) = crashed(120, 100);
    lose_after(&dir, 100, Loss::Torn(30), false);
    let (mut writer, reader) = Log::open(&dir, small()).unwrap();
    let cut = writer.recovery_report().cut.clone().expect("a cut");
    assert_eq!(cut.offset, 100);
    assert_eq!(cut.reason, CutReason::TornTail);
    assert_eq!(reader.next_offset(), 100);
    assert_eq!(writer.append(b"after").unwrap(), 100);
    drop(writer);
    assert_records_prefix(&dir, 100);
}

fn assert_records_prefix(dir: &Path, n: u64) {
    let (_, reader) = Log::open(dir, small()).unwrap();
    for i in 0..n {
        assert_eq!(reader.read(i).unwrap(), payload(i), "record {i}");
    }
}

#[test]
fn garbage_after_the_tail_is_cut_and_zeroed() {
    for seed in 1..20 {
        let (_tmp, dir) = crashed(150, 140);
        lose_after(&dir, 140, Loss::Garbage(3000, seed), true);
        let (writer, reader) = Log::open(&dir, small()).unwrap();
        assert_eq!(reader.next_offset(), 140, "seed {seed}");
        drop(writer);
        let (path, pos, len) = locate(&dir, 139);
        let bytes = fs::read(path).unwrap();
        let end = pos + common::frame_len(len);
        assert!(
            bytes[end..].iter().all(|&b| b == 0),
            "seed {seed}: garbage left after the tail"
        );
        assert_records(&dir, 140);
    }
}

#[test]
fn a_cut_file_is_repaired() {
    let (_tmp, dir) = crashed(200, 150);
    lose_after(&dir, 150, Loss::Truncated, false);
    assert_records(&dir, 150);
}

#[test]
fn an_empty_active_segment_after_a_roll_is_fine() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let (mut writer, _) = Log::open(&live, small()).unwrap();
    let mut i = 0;
    while segment_files(&live).len() < 2 {
        writer.append(&payload(i)).unwrap();
        i += 1;
    }
    // The record that rolled is in the new segment; take the crash copy
    // before it so the new segment holds nothing.
    let (last, pos, _) = locate(&live, i - 1);
    let copy = tmp.path().join("crash");
    copy_dir(&live, &copy);
    let mut bytes = fs::read(copy.join(last.file_name().unwrap())).unwrap();
    bytes[pos..].fill(0);
    fs::write(copy.join(last.file_name().unwrap()), bytes).unwrap();
    drop(writer);
    let (mut writer, reader) = Log::open(&copy, small()).unwrap();
    assert_eq!(reader.next_offset(), i - 1);
    assert_eq!(writer.append(&payload(i - 1)).unwrap(), i - 1);
    drop(writer);
    assert_records(&copy, i);
}

/// Zeroes the last segment of a crashed log from byte `from` on (the
/// records in it were never synced) and checks that opening drops it whole.
fn last_segment_zeroed_from_is_dropped(from: usize) {
    let (_tmp, dir) = crashed(200, 10);
    let files = segment_files(&dir);
    let last = files.last().unwrap();
    let mut bytes = fs::read(last).unwrap();
    bytes[from..].fill(0);
    fs::write(last, bytes).unwrap();
    let base = common::base_of(last);
    let (writer, reader) = Log::open(&dir, small()).unwrap();
    assert_eq!(reader.next_offset(), base);
    assert!(!last.exists());
    drop(writer);
    assert_records(&dir, base);
}

#[test]
fn a_segment_whose_header_was_torn_by_the_crash_is_dropped() {
    // The power went while the header's sector was being written: a
    // prefix of it reached the disk, the rest is the file's zeros; so are
    // the records (never synced).
    last_segment_zeroed_from_is_dropped(23);
}

#[test]
fn a_lost_header_over_records_that_were_durable_is_corruption() {
    // Records after the sync carry its durable offset as their hint: the
    // last segment's records had been made durable, so its header had been
    // flushed; zeros there now are damage, not a crash.
    let (_tmp, dir) = crashed(200, 190);
    let files = segment_files(&dir);
    let last = files.last().unwrap();
    let base = common::base_of(last);
    assert!(base < 190, "the sync covered records of the last segment");
    let mut bytes = fs::read(last).unwrap();
    bytes[..64].fill(0);
    fs::write(last, bytes).unwrap();
    match Log::open(&dir, small()) {
        Err(Error::Corrupt {
            segment, offset, ..
        }) => {
            assert_eq!(&segment, last);
            assert_eq!(offset, base);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn a_segment_whose_header_never_reached_the_disk_is_dropped() {
    last_segment_zeroed_from_is_dropped(0);
}

#[test]
fn a_corrupted_checksum_before_the_durable_point_is_reported_with_file_and_position() {
    let (_tmp, dir) = crashed(100, 100);
    let (path, pos, _) = locate(&dir, 40);
    flip(&path, pos + 30);
    match Log::open(&dir, small()) {
        Err(Error::Corrupt {
            segment,
            position,
            offset,
            kind: Corruption::ChecksumMismatch { .. },
        }) => {
            assert_eq!(segment, path);
            assert_eq!(position, pos as u64);
            assert_eq!(offset, 40);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn corruption_in_the_middle_of_a_cleanly_closed_log_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..100 {
        writer.append(&payload(i)).unwrap();
    }
    writer.close().unwrap();
    // The last record: only the clean marker says it is not a torn tail.
    let (path, pos, _) = locate(tmp.path(), 99);
    flip(&path, pos + 26);
    let err = Log::open(tmp.path(), small()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { offset: 99, .. }), "{err}");
    assert!(
        err.to_string()
            .contains(path.file_name().unwrap().to_str().unwrap())
    );
}

#[test]
fn corruption_in_a_sealed_segment_is_reported() {
    let (_tmp, dir) = crashed(600, 600);
    assert!(segment_files(&dir).len() > 3);
    let (path, pos, _) = locate(&dir, 5);
    assert_eq!(path, segment_files(&dir)[0]);
    flip(&path, pos + 2);
    assert!(matches!(
        Log::open(&dir, small()),
        Err(Error::Corrupt { offset: 5, .. })
    ));
}

#[test]
fn truncate_corrupt_mode_cuts_at_the_damage_and_says_what_it_dropped() {
    let (_tmp, dir) = crashed(600, 600);
    let (path, pos, _) = locate(&dir, 50);
    flip(&path, pos + 28);
    let opts = small().recovery(Recovery::TruncateCorrupt);
    let (mut writer, reader) = Log::open(&dir, opts.clone()).unwrap();
    let cut = writer.recovery_report().cut.clone().expect("a cut");
    assert_eq!(cut.offset, 50);
    assert_eq!(cut.segment, path);
    assert!(matches!(
        cut.reason,
        CutReason::Corruption(Corruption::ChecksumMismatch { .. })
    ));
    assert_eq!(cut.records_dropped, 549);
    assert!(!cut.segments_removed.is_empty());
    assert_eq!(reader.next_offset(), 50);
    assert_eq!(writer.append(b"fresh").unwrap(), 50);
    writer.close().unwrap();
    let (_, reader) = Log::open(&dir, opts).unwrap();
    assert_eq!(reader.next_offset(), 51);
    assert_eq!(reader.read(50).unwrap(), b"fresh");
}

#[test]
fn a_bad_record_after_the_durable_point_is_a_tear_even_with_valid_records_after_it() {
    // Pages past the last sync reach the disk in any order: record 105 may
    // be lost while 106.. survive. None of them was durable, so this is a
    // torn tail, not corruption.
    let (_tmp, dir) = crashed(130, 100);
    let (path, pos, _) = locate(&dir, 105);
    flip(&path, pos + 25);
    let (writer, reader) = Log::open(&dir, small()).unwrap();
    let cut = writer.recovery_report().cut.clone().unwrap();
    assert_eq!((cut.offset, cut.reason), (105, CutReason::TornTail));
    assert_eq!(reader.next_offset(), 105);
}

#[test]
fn a_stale_record_past_a_repaired_tail_never_comes_back() {
    // Records 50.. were written but 50 is torn. After recovery a new record
    // 50 of the same length is written where the old one was; the old 51
    // must not reappear behind it after another crash.
    let (_tmp, dir) = crashed(100, 50);
    let (path, pos, len) = locate(&dir, 50);
    let mut bytes = fs::read(&path).unwrap();
    bytes[pos..pos + common::FRAME_HEADER].fill(0);
    fs::write(&path, bytes).unwrap();
    let (mut writer, _) = Log::open(&dir, small()).unwrap();
    assert_eq!(writer.next_offset(), 50);
    assert_eq!(writer.append(&vec![7u8; len]).unwrap(), 50);
    let again = dir.with_file_name("again");
    copy_dir(&dir, &again);
    drop(writer);
    let (_, reader) = Log::open(&again, small()).unwrap();
    assert_eq!(reader.next_offset(), 51);
}

#[test]
fn a_missing_segment_in_the_middle_is_corruption() {
    let (_tmp, dir) = crashed(600, 600);
    let files = segment_files(&dir);
    assert!(files.len() > 3);
    fs::remove_file(&files[1]).unwrap();
    assert!(matches!(
        Log::open(&dir, small()),
        Err(Error::Corrupt {
            kind: Corruption::Discontinuity { .. },
            ..
        })
    ));
}

#[test]
fn a_missing_last_segment_of_a_clean_log_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..600 {
        writer.append(&payload(i)).unwrap();
    }
    writer.close().unwrap();
    let files = segment_files(tmp.path());
    fs::remove_file(files.last().unwrap()).unwrap();
    assert!(matches!(
        Log::open(tmp.path(), small()),
        Err(Error::Corrupt {
            kind: Corruption::MissingRecords { expected: 600 },
            ..
        })
    ));
}

#[test]
fn a_segment_with_a_foreign_header_is_an_error_naming_the_file() {
    let (_tmp, dir) = crashed(600, 600);
    let files = segment_files(&dir);
    let mut bytes = fs::read(&files[2]).unwrap();
    bytes[0..8].copy_from_slice(b"NOTOURS!");
    fs::write(&files[2], bytes).unwrap();
    match Log::open(&dir, small()) {
        Err(Error::BadSegmentHeader { segment, reason }) => {
            assert_eq!(segment, files[2]);
            assert_eq!(reason, murakami::HeaderError::BadMagic);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn recover_append_crash_recover_again() {
    let (_tmp, dir) = crashed(200, 120);
    lose_after(&dir, 120, Loss::Garbage(500, 7), true);
    let (mut writer, _) = Log::open(&dir, small()).unwrap();
    for i in 120..260 {
        writer.append(&payload(i)).unwrap();
    }
    writer.sync().unwrap();
    for i in 260..300 {
        writer.append(&payload(i)).unwrap();
    }
    let again = dir.with_file_name("again");
    copy_dir(&dir, &again);
    drop(writer);
    lose_after(&again, 260, Loss::Garbage(5000, 9), true);
    assert_records(&again, 260);
}

#[test]
fn a_zeroed_block_below_the_checkpoint_is_corruption_not_a_tear() {
    // All in the active segment: nothing after the hole vouches for it but
    // the checkpoint the sync left in the header.
    let (_tmp, dir) = crashed(20, 20);
    assert_eq!(segment_files(&dir).len(), 1);
    let (path, pos, _) = locate(&dir, 10);
    let mut bytes = fs::read(&path).unwrap();
    bytes[pos..pos + common::FRAME_HEADER].fill(0);
    fs::write(&path, bytes).unwrap();
    match Log::open(&dir, small()) {
        Err(Error::Corrupt {
            kind: Corruption::MissingRecords { expected: 20 },
            offset: 10,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_past_the_tail_is_reported_as_a_cut() {
    let (_tmp, dir) = crashed(100, 100);
    let (path, pos, len) = locate(&dir, 99);
    let end = pos + common::frame_len(len);
    let mut bytes = fs::read(&path).unwrap();
    bytes[end + 100] = 0xAB;
    fs::write(&path, bytes).unwrap();
    let (writer, _) = Log::open(&dir, small()).unwrap();
    let cut = writer
        .recovery_report()
        .cut
        .clone()
        .expect("the repair is reported");
    assert_eq!((cut.offset, cut.reason), (100, CutReason::TornTail));
    assert_eq!(cut.position, end as u64);
}

#[test]
fn a_segment_base_that_would_overflow_offsets_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = u64::MAX - 10;
    let mut header = vec![0u8; 8192];
    header[0..8].copy_from_slice(b"MURAKAMI");
    header[8..12].copy_from_slice(&1u32.to_le_bytes());
    header[12..16].copy_from_slice(&64u32.to_le_bytes());
    header[16..24].copy_from_slice(&base.to_le_bytes());
    header[24..32].copy_from_slice(&8192u64.to_le_bytes());
    let crc = crc32fast::hash(&header[0..40]);
    header[40..44].copy_from_slice(&crc.to_le_bytes());
    let path = tmp.path().join(format!("{base:020}.seg"));
    fs::write(&path, header).unwrap();
    match Log::open(tmp.path(), small()) {
        Err(Error::BadSegmentHeader { segment, reason }) => {
            assert_eq!(segment, path);
            assert_eq!(reason, murakami::HeaderError::Inconsistent);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_active_segment_made_smaller_is_replaced_when_the_size_grows() {
    let tmp = tempfile::tempdir().unwrap();
    let tiny = Options::default().segment_size(4096).max_record_size(1000);
    let (writer, _) = Log::open(tmp.path(), tiny).unwrap();
    writer.close().unwrap();
    let big = Options::default()
        .segment_size(1 << 20)
        .max_record_size(100_000);
    let (mut writer, reader) = Log::open(tmp.path(), big).unwrap();
    assert_eq!(writer.append(&vec![5u8; 50_000]).unwrap(), 0);
    assert_eq!(reader.read(0).unwrap().len(), 50_000);
}

#[test]
fn a_batch_that_does_not_fit_the_active_segment_starts_a_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..20 {
        writer.append(&payload(i)).unwrap();
    }
    let batch: Vec<Vec<u8>> = (0..20).map(|_| vec![1u8; 300]).collect();
    let range = writer.append_batch(&batch).unwrap();
    let files = segment_files(tmp.path());
    assert_eq!(files.len(), 2);
    assert_eq!(
        common::base_of(&files[1]),
        range.start,
        "the batch is in one segment"
    );
}
