//! The log's API end to end: offsets, reads, rolls, sync, close and reopen.
#![cfg(not(feature = "loom"))]

mod common;

use common::{base_of, payload, segment_files};
use murakami::{Error, Log, Options, OptionsError};

fn small() -> Options {
    Options::default().segment_size(8192).max_record_size(1024)
}

#[test]
fn opening_a_missing_directory_creates_an_empty_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/log");
    let (writer, reader) = Log::open(&dir, small()).unwrap();
    assert!(dir.is_dir());
    assert_eq!(writer.next_offset(), 0);
    assert_eq!(reader.first_offset(), 0);
    assert_eq!(reader.next_offset(), 0);
    assert_eq!(reader.durable_offset(), 0);
    assert!(matches!(
        reader.read(0),
        Err(Error::OffsetOutOfRange {
            offset: 0,
            first: 0,
            end: 0
        })
    ));
    assert_eq!(reader.cursor(0).unwrap().count(), 0);
    let report = writer.recovery_report();
    assert_eq!((report.segments, report.next_offset), (1, 0));
    assert!(report.cut.is_none());
}

#[test]
fn offsets_are_dense_from_zero_and_reads_are_byte_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..100 {
        assert_eq!(writer.append(&payload(i)).unwrap(), i);
    }
    for i in 0..100 {
        assert_eq!(reader.read(i).unwrap(), payload(i), "record {i}");
    }
    let mut buf = Vec::with_capacity(1024);
    let ptr = buf.as_ptr();
    for i in 0..100 {
        reader.read_into(i, &mut buf).unwrap();
        assert_eq!(buf, payload(i));
    }
    assert_eq!(buf.as_ptr(), ptr, "read_into reuses a large enough buffer");
}

#[test]
fn an_empty_record_is_a_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(writer.append(b"").unwrap(), 0);
    assert_eq!(writer.append(b"x").unwrap(), 1);
    assert_eq!(reader.read(0).unwrap(), b"");
    assert_eq!(reader.read(1).unwrap(), b"x");
    writer.close().unwrap();
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(reader.next_offset(), 2);
    assert_eq!(reader.read(0).unwrap(), b"");
}

#[test]
fn an_oversized_record_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    writer.append(b"before").unwrap();
    let err = writer.append(&[0u8; 1025]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RecordTooLarge {
                len: 1025,
                max: 1024
            }
        ),
        "{err}"
    );
    let err = writer
        .append_batch(&[vec![1u8; 10], vec![2u8; 2000]])
        .unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { len: 2000, .. }),
        "{err}"
    );
    assert_eq!(writer.next_offset(), 1, "a refused batch appends nothing");
    assert_eq!(writer.append(&[9u8; 1024]).unwrap(), 1, "the maximum fits");
    assert_eq!(reader.next_offset(), 2);
}

#[test]
fn options_that_cannot_work_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let too_big = Options::default().segment_size(4096).max_record_size(8192);
    assert!(matches!(
        Log::open(tmp.path(), too_big),
        Err(Error::InvalidOptions(OptionsError::MaxRecordSize {
            given: 8192,
            segment_size: 4096,
            ..
        }))
    ));
}

/// Issue 11, item 11: `SharedWriter::next_offset` returned a `Result` and
/// failed with `Closed` once any clone had closed the log.
#[test]
fn a_closed_shared_writer_still_says_where_the_log_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, _reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!((writer.first_offset(), writer.next_offset()), (0, 0));
    let writer = writer.into_shared();
    let clone = writer.clone();
    assert_eq!(clone.append_batch(&[b"a", b"b", b"c"]).unwrap(), 0..3);
    let next: u64 = clone.next_offset();
    assert_eq!((clone.first_offset(), next), (0, 3));
    writer.close().unwrap();
    assert!(matches!(clone.append(b"d"), Err(Error::Closed)));
    assert_eq!((clone.first_offset(), clone.next_offset()), (0, 3));
}

/// Issue 11, item 8: a segment size given alone failed at open on account
/// of `max_record_size`, which the user never set.
#[test]
fn a_segment_size_given_alone_opens_and_limits_records_to_what_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size(1 << 20);
    let (mut writer, reader) = Log::open(tmp.path(), options).unwrap();
    let fits = (1 << 20) - 64 - 32;
    let offset = writer.append(&vec![7u8; fits]).unwrap();
    assert_eq!(reader.read(offset).unwrap().len(), fits);
    let err = writer.append(&vec![7u8; fits + 1]).unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { len, max } if len == fits + 1 && max == fits),
        "{err}"
    );
    writer.close().unwrap();
}

/// Issue 11, item 8: `segment_size(100)` became 4096 and was refused with
/// a message about another option.
#[test]
fn a_segment_size_out_of_range_is_refused_with_the_value_given() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Log::open(tmp.path(), Options::default().segment_size(100)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOptions(OptionsError::SegmentSize { given: 100 })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "invalid options: segment_size 100 is below the minimum of 4096 bytes"
    );
}

#[test]
fn rolls_name_segments_by_their_base_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..500 {
        writer.append(&payload(i)).unwrap();
    }
    let files = segment_files(tmp.path());
    assert!(files.len() > 5, "{} segments", files.len());
    let mut expected_base = 0;
    for path in &files {
        assert_eq!(base_of(path), expected_base, "{}", path.display());
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes.len(), 8192, "segments are reserved to full size");
        expected_base += common::frames(&bytes).len() as u64;
    }
    assert_eq!(expected_base, 500);
    for i in 0..500 {
        assert_eq!(reader.read(i).unwrap(), payload(i));
    }
}

#[test]
fn reads_outside_the_log_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..10 {
        writer.append(&payload(i)).unwrap();
    }
    for offset in [10, 11, u64::MAX] {
        match reader.read(offset) {
            Err(Error::OffsetOutOfRange {
                first: 0, end: 10, ..
            }) => {}
            other => panic!("offset {offset}: {other:?}"),
        }
    }
    assert!(reader.cursor(11).is_err());
    let guard = reader.pin();
    assert!(reader.get(10, &guard).is_err());
    assert_eq!(reader.get(9, &guard).unwrap().payload, payload(9));
}

#[test]
fn a_cursor_crosses_segment_boundaries_without_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..400 {
        writer.append(&payload(i)).unwrap();
    }
    assert!(segment_files(tmp.path()).len() > 3);
    for start in [0, 1, 57, 399, 400] {
        let got: Vec<u64> = reader
            .cursor(start)
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.payload, payload(r.offset));
                r.offset
            })
            .collect();
        assert_eq!(got, (start..400).collect::<Vec<_>>());
    }
    // A cursor at the tail picks up later appends, also across a roll.
    let mut cursor = reader.cursor(400).unwrap();
    assert!(cursor.next_ref().unwrap().is_none());
    for i in 400..600 {
        writer.append(&payload(i)).unwrap();
    }
    let mut buf = Vec::new();
    for i in 400..600 {
        let (offset, _) = cursor.next_into(&mut buf).unwrap().unwrap();
        assert_eq!((offset, &buf), (i, &payload(i)));
    }
    assert!(cursor.next_ref().unwrap().is_none());
}

#[test]
fn timestamps_are_taken_at_append_or_given() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    writer.append(b"now").unwrap();
    writer.append_with_timestamp(b"given", 42).unwrap();
    let stamped = reader.read_record(0).unwrap().timestamp;
    assert!(
        stamped.abs_diff(before) < 1_000_000_000,
        "{stamped} vs {before}"
    );
    assert_eq!(reader.read_record(1).unwrap().timestamp, 42);
    writer.close().unwrap();
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(reader.read_record(1).unwrap().timestamp, 42);
}

#[test]
fn a_batch_gets_dense_offsets_and_may_cross_a_roll() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    writer.append(b"first").unwrap();
    let batch: Vec<Vec<u8>> = (1..200).map(payload).collect();
    let range = writer.append_batch(&batch).unwrap();
    assert_eq!(range, 1..200);
    assert!(segment_files(tmp.path()).len() > 2);
    for i in 1..200 {
        assert_eq!(reader.read(i).unwrap(), payload(i));
    }
    assert_eq!(writer.append_batch::<&[u8]>(&[]).unwrap(), 200..200);
}

#[test]
fn sync_advances_the_durable_offset_to_the_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..50 {
        writer.append(&payload(i)).unwrap();
    }
    assert_eq!(
        reader.durable_offset(),
        0,
        "nothing is durable before a sync"
    );
    assert_eq!(writer.sync().unwrap(), 50);
    assert_eq!(reader.durable_offset(), 50);
    assert_eq!(writer.durable_offset(), 50);
    writer.append(b"more").unwrap();
    assert_eq!(reader.durable_offset(), 50);
    assert_eq!(writer.sync().unwrap(), 51);
}

#[test]
fn close_and_reopen_keeps_every_record_and_continues_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..300 {
        writer.append(&payload(i)).unwrap();
    }
    writer.close().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let report = writer.recovery_report().clone();
    assert!(report.clean_shutdown);
    assert_eq!(report.next_offset, 300);
    assert!(report.segments > 3);
    assert_eq!(
        reader.durable_offset(),
        300,
        "a clean close synced everything"
    );
    assert_eq!(writer.append(b"next").unwrap(), 300);
    for i in 0..300 {
        assert_eq!(reader.read(i).unwrap(), payload(i));
    }
    drop(writer);
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(
        reader.read(300).unwrap(),
        b"next",
        "dropping the writer closes it"
    );
}

#[test]
fn reopening_with_many_sealed_segments_reads_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options::default().segment_size(4096).max_record_size(512);
    let (mut writer, _) = Log::open(tmp.path(), opts.clone()).unwrap();
    for i in 0..3000 {
        writer.append(&payload(i)).unwrap();
    }
    writer.close().unwrap();
    let sealed = segment_files(tmp.path()).len();
    assert!(sealed > 100, "{sealed} segments");
    let (_, reader) = Log::open(tmp.path(), opts).unwrap();
    let mut n = 0;
    for record in reader.cursor(0).unwrap() {
        let record = record.unwrap();
        assert_eq!(record.payload, payload(n));
        n += 1;
    }
    assert_eq!(n, 3000);
    assert_eq!(reader.read(1234).unwrap(), payload(1234));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, reader) = Log::open(tmp.path(), small()).unwrap();
    match Log::open(tmp.path(), small()) {
        Err(Error::Locked { dir }) => assert_eq!(dir, tmp.path()),
        other => panic!("second open: {other:?}"),
    }
    writer.close().unwrap();
    // Readers may outlive the writer; the directory is free again.
    assert!(reader.is_closed());
    let (writer, _) = Log::open(tmp.path(), small()).unwrap();
    drop(writer);
}

#[test]
fn a_second_open_from_another_process_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, _) = Log::open(tmp.path(), small()).unwrap();
    // flock from another process conflicts with ours.
    let status = std::process::Command::new("flock")
        .args(["--nonblock", "--conflict-exit-code", "9"])
        .arg(tmp.path().join("murakami.lock"))
        .arg("true")
        .status();
    if let Ok(status) = status {
        assert_eq!(status.code(), Some(9), "another process got the lock");
    }
    drop(writer);
}

#[test]
fn readers_keep_reading_after_the_writer_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..200 {
        writer.append(&payload(i)).unwrap();
    }
    let guard = reader.pin();
    let held = reader.get(150, &guard).unwrap();
    writer.close().unwrap();
    assert_eq!(held.payload, payload(150));
    assert_eq!(reader.read(199).unwrap(), payload(199));
}

#[test]
fn foreign_files_in_the_directory_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), small()).unwrap();
    writer.append(b"a").unwrap();
    writer.close().unwrap();
    std::fs::write(tmp.path().join("README"), b"not a segment").unwrap();
    std::fs::write(tmp.path().join("12.seg"), b"short name").unwrap();
    std::fs::create_dir(tmp.path().join("00000000000000000099.seg.d")).unwrap();
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(reader.read(0).unwrap(), b"a");
    assert!(tmp.path().join("README").exists());
}
