//! `Reader::open`: a reader that follows the log through its files, as a
//! reader in another process does. These tests keep both ends in one
//! process, so each step is deterministic; `tests/processes.rs` runs them in
//! separate processes.
#![cfg(not(feature = "loom"))]

use std::path::Path;
use std::time::Duration;

use murakami::{Error, Log, Options, Reader, SyncPolicy};

fn small() -> Options {
    Options::default()
        .segment_size(4096)
        .max_record_size(512)
        .sync_policy(SyncPolicy::Explicit)
}

fn payload(offset: u64, history: u8) -> Vec<u8> {
    format!("record {offset} of history {history}").into_bytes()
}

fn open(dir: &Path) -> murakami::Writer {
    Log::open(dir, small()).unwrap().0
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_reader_of_the_files_sees_what_the_writer_published_without_a_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..5 {
        writer.append(&payload(i, 0)).unwrap();
    }
    let reader = Reader::open(tmp.path()).unwrap();
    assert_eq!(reader.next_offset(), 5);
    assert_eq!(reader.durable_offset(), 0, "nothing synced yet");
    for i in 0..5 {
        assert_eq!(reader.read(i).unwrap(), payload(i, 0));
    }
    // Published after the reader opened: a read catches up.
    writer.append(&payload(5, 0)).unwrap();
    assert_eq!(reader.read(5).unwrap(), payload(5, 0));
    assert!(matches!(
        reader.read(6),
        Err(Error::OffsetOutOfRange {
            offset: 6,
            end: 6,
            ..
        })
    ));
    let guard = reader.pin();
    assert_eq!(reader.get(3, &guard).unwrap().payload, payload(3, 0));
}

#[test]
fn a_cursor_follows_the_writer_across_many_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    let reader = Reader::open(tmp.path()).unwrap();
    let mut cursor = reader.cursor(0).unwrap();
    // 4 KiB segments: about a hundred records roll many times.
    for i in 0..400 {
        writer.append(&payload(i, 0)).unwrap();
        if i % 7 == 0 {
            for j in cursor.next_offset()..=i {
                let record = cursor.next_wait(WAIT).unwrap().expect("published");
                assert_eq!((record.offset, record.payload), (j, &payload(j, 0)[..]));
            }
        }
    }
    for i in 400..410 {
        writer.append(&payload(i, 0)).unwrap();
    }
    let rest: Vec<_> = cursor.by_ref().map(|r| r.unwrap().offset).collect();
    assert_eq!(rest, (400..410).collect::<Vec<_>>());
    let segments = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "seg")
        })
        .count();
    assert!(segments >= 5, "it rolled: {segments} segments");
}

#[test]
fn a_durable_only_reader_sees_what_was_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    let reader = Reader::open(tmp.path()).unwrap().durable_only();
    writer.append(b"a").unwrap();
    writer.append(b"b").unwrap();
    assert!(!reader.wait_for(0, Duration::ZERO).unwrap());
    assert!(matches!(
        reader.read(0),
        Err(Error::OffsetOutOfRange { .. })
    ));
    writer.sync().unwrap();
    writer.append(b"c").unwrap();
    assert_eq!(reader.read(1).unwrap(), b"b");
    assert_eq!(reader.end_offset(), 2);
    let mut cursor = reader.cursor(0).unwrap();
    assert_eq!(cursor.next().unwrap().unwrap().payload, b"a");
    assert_eq!(cursor.next().unwrap().unwrap().payload, b"b");
    assert!(cursor.next().is_none(), "c is not durable");
}

#[test]
fn purged_records_are_purged_for_a_reader_of_the_files_too() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..300 {
        writer.append(&payload(i, 0)).unwrap();
    }
    let reader = Reader::open(tmp.path()).unwrap();
    let held = reader.pin();
    let kept = reader.get(1, &held).unwrap();
    let removed = writer.purge_before(200).unwrap();
    assert!(removed.segments > 0);
    let first = removed.first_offset;
    assert!(matches!(reader.read(0), Err(Error::Purged { offset: 0, first: f }) if f == first));
    assert_eq!(reader.first_offset(), first);
    assert_eq!(reader.read(first).unwrap(), payload(first, 0));
    // A slice handed out before stays valid: the file is unlinked, not
    // unmapped.
    assert_eq!(kept.payload, payload(1, 0));
}

#[test]
fn a_truncation_is_seen_before_anything_of_the_new_history() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..250 {
        writer.append(&payload(i, 0)).unwrap();
    }
    let reader = Reader::open(tmp.path()).unwrap();
    // A cursor past the cut, and one before it.
    let mut past = reader.cursor(240).unwrap();
    let mut before = reader.cursor(100).unwrap();
    for cut in [230, 150] {
        writer.truncate_from(cut).unwrap();
        assert!(matches!(
            reader.read(cut),
            Err(Error::OffsetOutOfRange { .. })
        ));
    }
    for i in 150..260 {
        assert_eq!(writer.append(&payload(i, 1)).unwrap(), i);
    }
    for i in 100..150 {
        assert_eq!(before.next().unwrap().unwrap().payload, payload(i, 0));
    }
    for i in 150..260 {
        assert_eq!(reader.read(i).unwrap(), payload(i, 1), "{i}");
        assert_eq!(before.next().unwrap().unwrap().payload, payload(i, 1));
    }
    // The cursor that stood past the cut goes on at its offset, in the new
    // history.
    let record = past.next_wait(WAIT).unwrap().unwrap();
    assert_eq!((record.offset, record.payload), (240, &payload(240, 1)[..]));
}

#[test]
fn a_truncation_at_a_segment_base_replaces_the_file_the_reader_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..300 {
        writer.append(&payload(i, 0)).unwrap();
    }
    let reader = Reader::open(tmp.path()).unwrap();
    // Find a segment base: the name of a segment file.
    let mut bases: Vec<u64> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".seg").map(|s| s.parse().unwrap())
        })
        .collect();
    bases.sort();
    let base = bases[bases.len() / 2];
    let mut cursor = reader.cursor(base + 1).unwrap();
    writer.truncate_from(base).unwrap();
    for i in base..base + 5 {
        writer.append(&payload(i, 2)).unwrap();
    }
    assert_eq!(reader.read(base).unwrap(), payload(base, 2));
    let record = cursor.next_wait(WAIT).unwrap().unwrap();
    assert_eq!(record.payload, payload(base + 1, 2));
}

#[test]
fn a_reader_started_before_the_log_exists_picks_the_writer_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not yet");
    let reader = Reader::open(&dir).unwrap();
    assert_eq!(reader.next_offset(), 0);
    assert!(!reader.wait_for(0, Duration::from_millis(5)).unwrap());
    let mut cursor = reader.cursor(0).unwrap();
    let handle = std::thread::spawn(move || {
        let mut writer = Log::open(&dir, small()).unwrap().0;
        for i in 0..150 {
            writer.append(&payload(i, 0)).unwrap();
        }
        writer.close().unwrap();
    });
    for i in 0..150 {
        let record = cursor.next_wait(WAIT).unwrap().expect("the writer came");
        assert_eq!((record.offset, record.payload), (i, &payload(i, 0)[..]));
    }
    handle.join().unwrap();
    assert!(reader.is_closed());
}

#[test]
fn a_reader_follows_a_closed_log_reopened_by_another_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    writer.append(b"first").unwrap();
    writer.close().unwrap();
    let reader = Reader::open(tmp.path()).unwrap();
    assert!(reader.is_closed());
    assert_eq!(reader.durable_offset(), 1);
    let mut cursor = reader.cursor(1).unwrap();
    // A reader in another process waits through the close: a writer may
    // come back.
    assert!(!reader.wait_for(1, Duration::from_millis(5)).unwrap());
    let mut writer = open(tmp.path());
    assert!(!reader.is_closed());
    writer.append(b"second").unwrap();
    assert_eq!(cursor.next_wait(WAIT).unwrap().unwrap().payload, b"second");
}

#[test]
fn a_sleeping_reader_is_woken_by_the_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    let reader = Reader::open(tmp.path()).unwrap().spin(Duration::ZERO);
    let waiter = std::thread::spawn(move || {
        let mut cursor = reader.cursor(0).unwrap();
        (0..50)
            .map(|_| {
                cursor
                    .next_wait(Duration::from_secs(60))
                    .unwrap()
                    .unwrap()
                    .offset
            })
            .collect::<Vec<_>>()
    });
    for i in 0..50 {
        writer.append(&payload(i, 0)).unwrap();
        if i % 10 == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(waiter.join().unwrap(), (0..50).collect::<Vec<_>>());
}

#[test]
fn a_durable_only_sleeper_is_woken_by_a_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    writer.append(b"x").unwrap();
    let reader = Reader::open(tmp.path())
        .unwrap()
        .durable_only()
        .spin(Duration::ZERO);
    let waiter = std::thread::spawn(move || reader.wait_for(0, Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(20));
    writer.sync().unwrap();
    assert!(waiter.join().unwrap().unwrap());
}

#[test]
fn a_foreign_control_file_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("murakami.tail"), vec![7u8; 4096]).unwrap();
    assert!(matches!(
        Reader::open(tmp.path()),
        Err(Error::BadControlFile {
            reason: murakami::ControlError::BadMagic,
            ..
        })
    ));
    std::fs::write(tmp.path().join("murakami.tail"), b"short").unwrap();
    assert!(matches!(
        Reader::open(tmp.path()),
        Err(Error::BadControlFile {
            reason: murakami::ControlError::TooShort,
            ..
        })
    ));
}

#[test]
fn a_foreign_segment_file_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("00000000000000000000.seg"),
        vec![0x5au8; 8192],
    )
    .unwrap();
    assert!(matches!(
        Reader::open(tmp.path()),
        Err(Error::BadSegmentHeader { .. })
    ));
}

#[test]
fn the_reader_never_changes_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..120 {
        writer.append(&payload(i, 0)).unwrap();
    }
    writer.close().unwrap();
    let snapshot = || {
        let mut files: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let meta = e.metadata().unwrap();
                // The control file's sleeper count is the one word a reader
                // writes (and takes back) around a sleep: its bytes are
                // checked, its mtime may move.
                let control = e.file_name() == "murakami.tail";
                (
                    e.file_name(),
                    std::fs::read(e.path()).unwrap(),
                    (!control).then(|| meta.modified().unwrap()),
                )
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot();
    let reader = Reader::open(tmp.path()).unwrap();
    let mut cursor = reader.cursor(0).unwrap();
    while cursor.next().is_some() {}
    assert!(!reader.wait_for(120, Duration::from_millis(5)).unwrap());
    drop((cursor, reader));
    assert!(before == snapshot(), "a reader changed the log's files");
}

/// Flips a byte of the payload of the record at `offset` in the closed log
/// of `dir`, found by scanning the segment files for its payload.
fn damage(dir: &Path, needle: &[u8]) -> std::path::PathBuf {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "seg") {
            continue;
        }
        let mut bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at] ^= 0x20;
            std::fs::write(&path, bytes).unwrap();
            return path;
        }
    }
    panic!("no record holds {needle:?}");
}

#[test]
fn a_bad_frame_at_the_end_ends_the_view_with_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..10 {
        writer.append(&payload(i, 0)).unwrap();
    }
    writer.close().unwrap();
    damage(tmp.path(), &payload(7, 0));
    // What a crash of the machine may leave at the tail: the reader opens,
    // as recovery would, and reads up to it.
    let reader = Reader::open(tmp.path()).unwrap();
    for i in 0..7 {
        assert_eq!(reader.read(i).unwrap(), payload(i, 0));
    }
    assert!(matches!(
        reader.read(7),
        Err(Error::Corrupt {
            offset: 7,
            kind: murakami::Corruption::ChecksumMismatch { .. },
            ..
        })
    ));
    let mut cursor = reader.cursor(5).unwrap();
    assert_eq!(cursor.next().unwrap().unwrap().offset, 5);
    assert_eq!(cursor.next().unwrap().unwrap().offset, 6);
    assert!(
        matches!(cursor.next(), Some(Err(Error::Corrupt { offset: 7, .. }))),
        "the cursor stops at it, and says why"
    );
}

#[test]
fn a_bad_frame_with_records_after_it_is_refused_as_recovery_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..300 {
        writer.append(&payload(i, 0)).unwrap();
    }
    writer.close().unwrap();
    damage(tmp.path(), &payload(20, 0));
    assert!(matches!(
        Reader::open(tmp.path()),
        Err(Error::Corrupt { offset: 20, .. })
    ));
    assert!(matches!(
        Log::open(tmp.path(), small()),
        Err(Error::Corrupt { offset: 20, .. })
    ));
}

#[test]
fn a_writer_that_stopped_without_closing_leaves_its_durable_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..30 {
        writer.append(&payload(i, 0)).unwrap();
        if i == 19 {
            writer.sync().unwrap();
        }
    }
    // Gone without a close, as a killed writer is (its lock stays held
    // here; a killed process's would be released).
    std::mem::forget(writer);
    let reader = Reader::open(tmp.path()).unwrap();
    assert!(!reader.is_closed());
    assert_eq!(reader.next_offset(), 30, "every committed record");
    let durable = reader.clone().durable_only();
    assert_eq!(durable.durable_offset(), 20);
    assert_eq!(durable.read(19).unwrap(), payload(19, 0));
    assert!(matches!(
        durable.read(20),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn lookups_by_time_and_reads_into_a_buffer_work_on_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..300u64 {
        writer
            .append_with_timestamp(&payload(i, 0), 1_000 + 10 * i)
            .unwrap();
    }
    let reader = Reader::open(tmp.path()).unwrap();
    assert_eq!(reader.offset_for_timestamp(0), 0);
    assert_eq!(reader.offset_for_timestamp(1_000 + 10 * 150), 150);
    assert_eq!(reader.offset_for_timestamp(1_000 + 10 * 150 - 5), 150);
    assert_eq!(reader.offset_for_timestamp(u64::MAX), 300);
    let mut buf = Vec::new();
    assert_eq!(reader.read_into(299, &mut buf).unwrap(), 1_000 + 10 * 299);
    assert_eq!(buf, payload(299, 0));
}

#[test]
fn a_cursor_alone_never_returns_what_a_finished_truncation_discarded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..40 {
        writer.append(&payload(i, 0)).unwrap();
    }
    // One reader, one cursor, no other read to bring the view up to date.
    let reader = Reader::open(tmp.path()).unwrap();
    let mut cursor = reader.cursor(30).unwrap();
    assert_eq!(cursor.next().unwrap().unwrap().payload, payload(30, 0));
    writer.truncate_from(20).unwrap();
    for i in 20..40 {
        writer.append(&payload(i, 1)).unwrap();
    }
    let record = cursor.next().unwrap().unwrap();
    assert_eq!(
        (record.offset, record.payload),
        (31, payload(31, 1)),
        "the cursor goes on at its offset, in the new history"
    );
}

/// Rewrites a closed log as format version 1 wrote it: the version field
/// of every segment header and of the clean marker, with their CRCs.
fn make_version_1(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let mut bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".seg") {
            bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
            let crc = crc32fast::hash(&bytes[0..40]);
            bytes[40..44].copy_from_slice(&crc.to_le_bytes());
        } else if name == "murakami.clean" {
            bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
            let crc = crc32fast::hash(&bytes[0..36]);
            bytes[36..40].copy_from_slice(&crc.to_le_bytes());
        } else if name == "murakami.tail" {
            std::fs::remove_file(&path).unwrap();
            continue;
        } else {
            continue;
        }
        std::fs::write(&path, bytes).unwrap();
    }
}

fn versions(dir: &Path) -> Vec<u32> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| u32::from_le_bytes(std::fs::read(p).unwrap()[8..12].try_into().unwrap()))
        .collect()
}

#[test]
fn a_version_1_log_opens_and_goes_on_in_version_2() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    for i in 0..100 {
        writer.append(&payload(i, 0)).unwrap();
    }
    writer.close().unwrap();
    make_version_1(tmp.path());
    assert!(versions(tmp.path()).iter().all(|&v| v == 1));
    // A version-1 log with no writer: readable through the files.
    let reader = Reader::open(tmp.path()).unwrap();
    assert_eq!(reader.read(99).unwrap(), payload(99, 0));
    assert!(reader.is_closed(), "its clean marker says so");
    // A version-2 writer opens it cleanly and rolls into version 2.
    let mut writer = open(tmp.path());
    assert!(writer.recovery_report().clean_shutdown);
    for i in 100..250 {
        writer.append(&payload(i, 0)).unwrap();
    }
    let found = versions(tmp.path());
    assert_eq!(found.first(), Some(&1));
    assert_eq!(found.last(), Some(&2));
    for i in 0..250 {
        assert_eq!(reader.read(i).unwrap(), payload(i, 0), "{i}");
    }
}

#[test]
fn bytes_after_the_end_of_a_sealed_segment_are_damage_as_recovery_says() {
    let tmp = tempfile::tempdir().unwrap();
    let mut writer = open(tmp.path());
    // 44-byte payloads: 80-byte frames, so the first 4 KiB segment ends at
    // byte 64 + 50 * 80 = 4064, with room for a frame header after it.
    for i in 0..300u64 {
        writer.append(format!("{i:044}").as_bytes()).unwrap();
    }
    writer.close().unwrap();
    let first = tmp.path().join("00000000000000000000.seg");
    let mut bytes = std::fs::read(&first).unwrap();
    assert_eq!(bytes[4064..4096], [0; 32], "a clean end");
    // Garbage there, with a zero commit word: not a frame, not an end.
    bytes[4064] = 1;
    std::fs::write(&first, bytes).unwrap();
    assert!(matches!(
        Log::open(tmp.path(), small()),
        Err(Error::Corrupt {
            offset: 50,
            kind: murakami::Corruption::NotARecord,
            ..
        })
    ));
    assert!(matches!(
        Reader::open(tmp.path()),
        Err(Error::Corrupt {
            offset: 50,
            kind: murakami::Corruption::NotARecord,
            ..
        })
    ));
}
