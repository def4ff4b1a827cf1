//! Suffix truncation: semantics, crash states, and readers racing it.
#![cfg(not(feature = "loom"))]

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use common::{base_of, copy_dir, segment_files};
use murakami::{Error, Log, Options};

fn small() -> Options {
    Options::default().segment_size(8192).max_record_size(1024)
}

/// A self-describing record: its offset and the generation that wrote it,
/// repeated, so a reader can tell a whole record from garbage.
fn record(offset: u64, generation: u64) -> Vec<u8> {
    let len = 16 * (1 + (offset % 13) as usize);
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        bytes.extend_from_slice(&offset.to_le_bytes());
        bytes.extend_from_slice(&generation.to_le_bytes());
    }
    bytes
}

/// The offset and generation a record names, checking it is whole.
fn decode(bytes: &[u8]) -> (u64, u64) {
    assert!(
        !bytes.is_empty() && bytes.len() % 16 == 0,
        "torn: {} bytes",
        bytes.len()
    );
    let offset = u64::from_le_bytes(bytes[0..8].try_into().unwrap());
    let generation = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    assert_eq!(bytes, record(offset, generation), "garbled record");
    (offset, generation)
}

fn check_log(dir: &Path, expect: &[(u64, u64)]) {
    let (writer, reader) = Log::open(dir, small()).unwrap();
    assert_eq!(
        reader.next_offset(),
        expect.len() as u64,
        "{}",
        dir.display()
    );
    for (i, &(o, g)) in expect.iter().enumerate() {
        assert_eq!(
            decode(&reader.read(i as u64).unwrap()),
            (o, g),
            "record {i}"
        );
    }
    drop(writer);
}

#[test]
fn truncating_inside_the_active_segment_then_appending_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..20 {
        writer.append(&record(i, 0)).unwrap();
    }
    writer.truncate_from(12).unwrap();
    assert_eq!(writer.next_offset(), 12);
    assert_eq!(reader.next_offset(), 12);
    assert!(matches!(
        reader.read(12),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert!(reader.durable_offset() <= 12);
    for i in 12..30 {
        assert_eq!(writer.append(&record(i, 1)).unwrap(), i);
    }
    let mut expect: Vec<(u64, u64)> = (0..12).map(|i| (i, 0)).collect();
    expect.extend((12..30).map(|i| (i, 1)));
    for (i, &(o, g)) in expect.iter().enumerate() {
        assert_eq!(decode(&reader.read(i as u64).unwrap()), (o, g));
    }
    let crash = tmp.path().with_extension("crash");
    writer.sync().unwrap();
    copy_dir(tmp.path(), &crash);
    writer.close().unwrap();
    check_log(tmp.path(), &expect);
    check_log(&crash, &expect);
}

#[test]
fn truncating_far_back_removes_later_segments_and_keeps_a_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..500 {
        writer.append(&record(i, 0)).unwrap();
    }
    let bases: Vec<u64> = segment_files(tmp.path())
        .iter()
        .map(|p| base_of(p))
        .collect();
    assert!(bases.len() > 5);
    let at = bases[2] + 3;
    writer.truncate_from(at).unwrap();
    let after: Vec<u64> = segment_files(tmp.path())
        .iter()
        .map(|p| base_of(p))
        .collect();
    assert_eq!(after, [bases[0], bases[1], bases[2], at]);
    assert!(tmp.path().join(format!("{:020}.cut", bases[2])).exists());
    assert_eq!(decode(&reader.read(at - 1).unwrap()), (at - 1, 0));
    for i in at..at + 100 {
        writer.append(&record(i, 1)).unwrap();
    }
    writer.close().unwrap();
    let mut expect: Vec<(u64, u64)> = (0..at).map(|i| (i, 0)).collect();
    expect.extend((at..at + 100).map(|i| (i, 1)));
    check_log(tmp.path(), &expect);
}

#[test]
fn truncating_at_a_segment_start_replaces_that_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..300 {
        writer.append(&record(i, 0)).unwrap();
    }
    let bases: Vec<u64> = segment_files(tmp.path())
        .iter()
        .map(|p| base_of(p))
        .collect();
    writer.truncate_from(bases[1]).unwrap();
    let after: Vec<u64> = segment_files(tmp.path())
        .iter()
        .map(|p| base_of(p))
        .collect();
    assert_eq!(after, [bases[0], bases[1]]);
    assert!(!tmp.path().join(format!("{:020}.cut", bases[1])).exists());
    writer.append(&record(bases[1], 1)).unwrap();
    writer.close().unwrap();
    let mut expect: Vec<(u64, u64)> = (0..bases[1]).map(|i| (i, 0)).collect();
    expect.push((bases[1], 1));
    check_log(tmp.path(), &expect);
}

#[test]
fn truncating_everything_keeps_the_first_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..300 {
        writer.append(&record(i, 0)).unwrap();
    }
    let second = base_of(&segment_files(tmp.path())[1]);
    writer.purge_before(second).unwrap();
    writer.truncate_from(second).unwrap();
    assert_eq!(
        (reader.first_offset(), reader.next_offset()),
        (second, second)
    );
    assert!(matches!(writer.truncate_from(0), Err(Error::Purged { .. })));
    writer.truncate_after(second + 5).unwrap(); // nothing past the end: no-op
    writer.append(&record(second, 2)).unwrap();
    writer.close().unwrap();
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(
        (reader.first_offset(), reader.next_offset()),
        (second, second + 1)
    );
    assert_eq!(decode(&reader.read(second).unwrap()), (second, 2));
}

#[test]
fn truncate_after_keeps_the_offset_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..10 {
        writer.append(&record(i, 0)).unwrap();
    }
    writer.truncate_after(6).unwrap();
    assert_eq!(reader.next_offset(), 7);
    assert_eq!(decode(&reader.read(6).unwrap()), (6, 0));
}

/// Every state a crash can leave in the middle of a truncation opens as
/// either the old log or the cut one, never a mix.
#[test]
fn a_crash_at_any_step_of_a_truncation_gives_old_or_cut_never_a_mix() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let (mut writer, _) = Log::open(&live, small()).unwrap();
    for i in 0..500 {
        writer.append(&record(i, 0)).unwrap();
    }
    writer.sync().unwrap();
    let before = tmp.path().join("before");
    copy_dir(&live, &before);
    let bases: Vec<u64> = segment_files(&live).iter().map(|p| base_of(p)).collect();
    let at = bases[2] + 3;
    writer.truncate_from(at).unwrap();
    writer.sync().unwrap();
    let marker_name = format!("{:020}.cut", bases[2]);
    let marker = fs::read(live.join(&marker_name)).unwrap();
    let after = tmp.path().join("after");
    copy_dir(&live, &after);
    drop(writer);

    let old: Vec<(u64, u64)> = (0..500).map(|i| (i, 0)).collect();
    let cut: Vec<(u64, u64)> = (0..at).map(|i| (i, 0)).collect();
    // Before the marker: the old log. (Opening a state changes it: always
    // open copies.)
    let state = tmp.path().join("old");
    copy_dir(&before, &state);
    check_log(&state, &old);
    // The marker written, then k of the later segments removed (newest
    // first), the new segment not yet made: the cut log.
    for removed in 0..=bases.len() - 3 {
        let state = tmp.path().join(format!("state{removed}"));
        copy_dir(&before, &state);
        fs::write(state.join(&marker_name), &marker).unwrap();
        for base in bases.iter().rev().take(removed) {
            fs::remove_file(state.join(format!("{base:020}.seg"))).unwrap();
        }
        check_log(&state, &cut);
        // Recovery finished the job: reopening again changes nothing.
        check_log(&state, &cut);
    }
    // Everything done: the cut log.
    check_log(&after, &cut);
}

#[test]
fn readers_get_whole_records_while_the_log_is_truncated_under_them() {
    let tmp = tempfile::tempdir().unwrap();
    // Retention runs in the background too.
    let retention = murakami::Retention::none()
        .max_bytes(4 * 8192)
        .check_every(std::time::Duration::from_micros(500));
    let (mut writer, reader) = Log::open(tmp.path(), small().retention(retention)).unwrap();
    for i in 0..300 {
        writer.append(&record(i, 0)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|kind| {
            let reader = reader.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut checked = 0u64;
                let mut state = 77u64 + kind;
                while !stop.load(Ordering::Acquire) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let end = reader.next_offset().max(1);
                    let offset = state % end;
                    if kind == 0 {
                        let guard = reader.pin();
                        if let Ok(r) = reader.get(offset, &guard) {
                            thread::yield_now(); // hold it across a truncation
                            assert_eq!(decode(r.payload).0, offset);
                            checked += 1;
                        }
                    } else if let Ok(mut cursor) = reader.cursor(offset) {
                        while let Ok(Some(r)) = cursor.next_ref() {
                            assert_eq!(decode(r.payload).0, r.offset);
                            checked += 1;
                            if r.offset > offset + 40 {
                                break;
                            }
                        }
                    }
                }
                checked
            })
        })
        .collect();
    let mut next = 300;
    for generation in 1..60u64 {
        let at = next - 1 - (generation * 7) % 40;
        match writer.truncate_from(at) {
            Ok(()) => next = at,
            Err(Error::Purged { .. }) => {}
            Err(e) => panic!("{e}"),
        }
        for _ in 0..50 {
            writer.append(&record(next, generation)).unwrap();
            next += 1;
        }
    }
    stop.store(true, Ordering::Release);
    for handle in readers {
        assert!(handle.join().unwrap() > 0);
    }
}

#[test]
fn a_background_cleaner_and_truncations_never_interleave() {
    let tmp = tempfile::tempdir().unwrap();
    let retention = murakami::Retention::none()
        .max_bytes(3 * 8192)
        .check_every(std::time::Duration::from_micros(200));
    let (mut writer, reader) = Log::open(tmp.path(), small().retention(retention)).unwrap();
    let mut next = 0u64;
    for generation in 0..150u64 {
        for _ in 0..40 {
            writer.append(&record(next, generation)).unwrap();
            next += 1;
        }
        let first = reader.first_offset();
        let at = (next - 1 - generation % 30).max(first);
        match writer.truncate_from(at) {
            Ok(()) => next = at,
            Err(Error::Purged { .. }) => {}
            Err(e) => panic!("truncate_from({at}): {e}"),
        }
        assert_eq!(reader.next_offset(), next);
        for o in reader.first_offset()..next {
            // The cleaner may remove segments under this loop.
            match reader.read(o) {
                Ok(bytes) => assert_eq!(decode(&bytes).0, o),
                Err(Error::Purged { .. }) => {}
                Err(e) => panic!("read {o}: {e}"),
            }
        }
    }
    writer.close().unwrap();
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(reader.next_offset(), next);
    for o in reader.first_offset()..next {
        assert_eq!(decode(&reader.read(o).unwrap()).0, o);
    }
}

#[test]
fn a_lone_segment_whose_header_never_reached_the_disk_keeps_the_first_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..300 {
        writer.append(&record(i, 0)).unwrap();
    }
    let last = base_of(segment_files(tmp.path()).last().unwrap());
    writer.purge_before(last).unwrap();
    let crash = tmp.path().with_extension("crash");
    copy_dir(tmp.path(), &crash);
    drop(writer);
    let only = segment_files(&crash);
    assert_eq!(only.len(), 1);
    let mut bytes = fs::read(&only[0]).unwrap();
    bytes.fill(0);
    fs::write(&only[0], bytes).unwrap();
    let (mut writer, reader) = Log::open(&crash, small()).unwrap();
    assert_eq!((reader.first_offset(), reader.next_offset()), (last, last));
    assert_eq!(writer.append(b"x").unwrap(), last, "offsets never go back");
}

#[test]
fn a_cursor_in_a_discarded_segment_goes_on_in_the_new_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..300 {
        writer.append(&record(i, 0)).unwrap();
    }
    let mut cursor = reader.cursor(290).unwrap();
    assert_eq!(
        decode(cursor.next_ref().unwrap().unwrap().payload),
        (290, 0)
    );
    writer.truncate_from(20).unwrap();
    assert!(cursor.next_ref().unwrap().is_none(), "old records are gone");
    for i in 20..320 {
        writer.append(&record(i, 1)).unwrap();
    }
    assert_eq!(
        decode(cursor.next_ref().unwrap().unwrap().payload),
        (291, 1)
    );
}

#[test]
fn durable_appends_racing_a_truncation_get_an_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let writer = writer.into_shared();
    let stop = Arc::new(AtomicBool::new(false));
    let appenders: Vec<_> = (0..3)
        .map(|_| {
            let writer = writer.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let (mut ok, mut cut) = (0, 0);
                while !stop.load(Ordering::Acquire) {
                    match writer.append_durable(&record(0, 9)) {
                        Ok(_) => ok += 1,
                        Err(Error::Truncated { .. }) => cut += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, cut)
            })
        })
        .collect();
    for _ in 0..30 {
        writer.append_durable(&record(0, 9)).unwrap();
        let next = writer.next_offset();
        writer.truncate_from(next.saturating_sub(3)).unwrap();
    }
    stop.store(true, Ordering::Release);
    for handle in appenders {
        // Every waiter got an answer (none hangs on a discarded record).
        let (ok, cut) = handle.join().unwrap();
        assert!(ok + cut > 0);
    }
    assert!(reader.durable_offset() <= writer.next_offset());
}

/// Regression: a truncation exactly at a segment's base dropped that
/// segment from the list with its records still published, and a cursor
/// holding it went on returning the discarded records.
#[test]
fn a_cursor_past_a_truncation_at_a_segment_base_reads_the_new_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let mut offset = 0;
    while segment_files(tmp.path()).len() < 3 {
        writer.append(&record(offset, 0)).unwrap();
        offset += 1;
    }
    let base = base_of(&segment_files(tmp.path())[1]);
    assert!(
        base > 0 && base + 2 < offset,
        "a second segment with records"
    );
    let mut cursor = reader.cursor(base + 1).unwrap();
    let mut waiting = reader.cursor(base + 1).unwrap();
    assert_eq!(
        decode(&cursor.next().unwrap().unwrap().payload),
        (base + 1, 0)
    );
    let mut before = reader.cursor(base + 1).unwrap();
    writer.truncate_from(base).unwrap();
    assert!(before.next_ref().unwrap().is_none(), "nothing past the cut");
    for o in base..base + 4 {
        assert_eq!(writer.append(&record(o, 1)).unwrap(), o);
    }
    for (o, c) in [(base + 2, &mut cursor), (base + 1, &mut waiting)] {
        let got = c.next_ref().unwrap().expect("the new history's record");
        assert_eq!(got.offset, o);
        assert_eq!(decode(got.payload), (o, 1), "a discarded record came back");
    }
    assert_eq!(
        decode(&before.next().unwrap().unwrap().payload),
        (base + 1, 1)
    );
}

/// Regression: `truncate_from` below the first offset synced every record
/// before it noticed, and then refused.
#[test]
fn a_refused_truncation_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let mut offset = 0;
    while segment_files(tmp.path()).len() < 4 {
        writer.append(&record(offset, 0)).unwrap();
        offset += 1;
    }
    writer.sync().unwrap();
    let first = base_of(&segment_files(tmp.path())[2]);
    writer.purge_before(first).unwrap();
    assert_eq!(reader.first_offset(), first);
    for _ in 0..5 {
        writer.append(&record(offset, 0)).unwrap();
        offset += 1;
    }
    let durable = reader.durable_offset();
    assert!(durable < offset, "records past the durable offset");
    let files = fs::read_dir(tmp.path()).unwrap().count();
    for below in [0, first - 1] {
        match writer.truncate_from(below) {
            Err(Error::Purged {
                offset: o,
                first: f,
            }) => assert_eq!((o, f), (below, first)),
            other => panic!("truncate_from({below}): {other:?}"),
        }
    }
    assert_eq!(reader.durable_offset(), durable, "a refused call synced");
    assert_eq!(reader.next_offset(), offset);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), files);
    writer.append(&record(offset, 0)).unwrap();
}
