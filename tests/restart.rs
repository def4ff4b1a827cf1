//! `Writer::restart_at`: a log that drops everything and continues at an
//! arbitrary offset (past its end, inside it, below its first offset, or a
//! new log that starts there), across reopens, readers, cursors and the
//! files a crash can leave.
#![cfg(not(feature = "loom"))]

mod common;

use std::time::Duration;

use common::{base_of, copy_dir, payload, segment_files};
use murakami::{Error, Log, Options, SyncPolicy};

fn small() -> Options {
    Options::default().segment_size(4096).max_record_size(1024)
}

/// Appends `n` records of 100 bytes from the writer's next offset.
fn fill(writer: &mut murakami::Writer, n: u64) {
    for _ in 0..n {
        let at = writer.next_offset();
        writer.append(&payload(at)).unwrap();
    }
}

/// Reopens `dir` and returns (first, next, every record's payload in order).
fn reopened(dir: &std::path::Path) -> (u64, u64, Vec<(u64, Vec<u8>)>) {
    let (writer, reader) = Log::open(dir, small()).unwrap();
    let (first, next) = (reader.first_offset(), reader.next_offset());
    let records = reader
        .cursor(first)
        .unwrap()
        .map(|r| r.map(|r| (r.offset, r.payload)))
        .collect::<murakami::Result<_>>()
        .unwrap();
    writer.close().unwrap();
    (first, next, records)
}

#[test]
fn a_new_log_starts_at_the_offset_given() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
    writer.restart_at(1 << 40).unwrap();
    assert_eq!(writer.next_offset(), 1 << 40);
    assert_eq!(reader.durable_offset(), 1 << 40);
    assert_eq!(writer.append(b"x").unwrap(), 1 << 40);
    writer.close().unwrap();
    let (first, next, records) = reopened(dir.path());
    assert_eq!((first, next), (1 << 40, (1 << 40) + 1));
    assert_eq!(records, [(1 << 40, b"x".to_vec())]);
}

#[test]
fn a_restart_past_the_end_inside_or_below_empties_the_log() {
    for target in [|n: u64| n + 1000, |n: u64| n / 2, |_| 3] {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
        fill(&mut writer, 200);
        writer.purge_before(50).unwrap();
        assert!(reader.first_offset() > 3, "the purge removed a segment");
        let at = target(200);
        writer.restart_at(at).unwrap();
        assert_eq!(
            (
                reader.first_offset(),
                reader.next_offset(),
                reader.durable_offset()
            ),
            (at, at, at)
        );
        assert_eq!(segment_files(dir.path()).len(), 1);
        assert_eq!(base_of(&segment_files(dir.path())[0]), at);
        assert!(matches!(
            reader.read(at),
            Err(Error::OffsetOutOfRange { .. })
        ));
        if at > 0 {
            assert!(matches!(reader.read(at - 1), Err(Error::Purged { .. })));
        }
        fill(&mut writer, 150);
        writer.sync().unwrap();
        for o in at..at + 150 {
            assert_eq!(reader.read(o).unwrap(), payload(o));
        }
        drop(writer);
        let (first, next, records) = reopened(dir.path());
        assert_eq!((first, next), (at, at + 150));
        let want: Vec<_> = (at..at + 150).map(|o| (o, payload(o))).collect();
        assert_eq!(records, want);
    }
}

#[test]
fn cursors_below_the_restart_are_purged_and_those_past_it_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 100);
    let mut below = reader.cursor(10).unwrap();
    assert_eq!(below.next().unwrap().unwrap().offset, 10);
    let mut at_end = reader.cursor(100).unwrap();
    let mut past = reader.cursor(100).unwrap();
    assert!(past.next().is_none());
    writer.restart_at(100).unwrap();
    assert!(matches!(below.next(), Some(Err(Error::Purged { .. }))));
    writer.append(b"new").unwrap();
    assert_eq!(at_end.next().unwrap().unwrap().payload, b"new");
    assert_eq!(
        past.next_wait(Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .payload,
        b"new"
    );
    writer.close().unwrap();
}

#[test]
fn a_durable_reader_waits_for_the_new_history() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
    let durable = reader.clone().durable_only();
    fill(&mut writer, 10);
    writer.restart_at(500).unwrap();
    assert!(!durable.wait_for(500, Duration::from_millis(1)).unwrap());
    writer.append(b"a").unwrap();
    assert!(!durable.wait_for(500, Duration::from_millis(1)).unwrap());
    writer.sync().unwrap();
    assert!(durable.wait_for(500, Duration::from_secs(5)).unwrap());
    assert_eq!(durable.read(500).unwrap(), b"a");
    writer.close().unwrap();
}

#[test]
fn a_shared_writer_restarts_and_its_durable_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let options = small().sync_policy(SyncPolicy::Always);
    let (writer, reader) = Log::open(dir.path(), options).unwrap();
    let writer = writer.into_shared();
    for _ in 0..20 {
        writer.append(b"old").unwrap();
    }
    writer.restart_at(7).unwrap();
    assert_eq!(writer.append(b"new").unwrap(), 7);
    assert_eq!(reader.durable_offset(), 8);
    writer.close().unwrap();
}

#[test]
fn restarts_and_truncations_one_after_another_reopen_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut want: Vec<(u64, Vec<u8>)> = Vec::new();
    for round in 0..12u64 {
        let (mut writer, _) = Log::open(dir.path(), small()).unwrap();
        let next = writer.next_offset();
        let at = match round % 3 {
            0 => next + 77,
            1 => next.saturating_sub(5),
            _ => next,
        };
        writer.restart_at(at).unwrap();
        want.clear();
        fill(&mut writer, 60);
        want.extend((at..at + 60).map(|o| (o, payload(o))));
        writer.truncate_from(at + 40).unwrap();
        want.truncate(40);
        writer.purge_before(at + 20).unwrap();
        let first = writer.first_offset();
        want.retain(|(o, _)| *o >= first);
        if round % 2 == 0 {
            writer.close().unwrap();
        } else {
            // Dropped while its thread unwinds: no clean close.
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _writer = writer;
                panic!("crash");
            }));
            assert!(unwound.is_err());
        }
        let (first, next, records) = reopened(dir.path());
        assert_eq!((first, next), (want[0].0, at + 40));
        assert_eq!(records, want);
    }
}

/// The files a restart leaves at each of its steps reopen as the log before
/// or as the new one: replayed by hand from the directory's states.
#[test]
fn every_state_of_the_files_reopens_as_before_or_as_the_new_log() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 120);
    writer.close().unwrap();
    let before = reopened(dir.path());
    assert!(segment_files(dir.path()).len() > 2);

    // Marker committed, nothing else yet; then part of the old segments
    // removed (newest first); then all; then the new segment in place.
    let marker = |dir: &std::path::Path, start: u64| {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"MRKRSTRT");
        bytes.extend_from_slice(&start.to_le_bytes());
        bytes.extend_from_slice(&1000u64.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        std::fs::write(dir.join("murakami.restart"), bytes).unwrap();
    };
    for removed in 0..=segment_files(dir.path()).len() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        marker(copy.path(), 5000);
        let mut files = segment_files(copy.path());
        files.reverse();
        for file in files.iter().take(removed) {
            std::fs::remove_file(file).unwrap();
        }
        let (first, next, records) = reopened(copy.path());
        assert_eq!(
            (first, next, records.len()),
            (5000, 5000, 0),
            "{removed} removed"
        );
        assert!(!copy.path().join("murakami.restart").exists());
    }
    // A marker that never got whole is not a commit: the log as before.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), copy.path());
    std::fs::write(copy.path().join("murakami.restart"), b"MRKRSTRT torn").unwrap();
    std::fs::write(copy.path().join("murakami.tmp"), b"half a marker").unwrap();
    assert_eq!(reopened(copy.path()), before);
    assert!(!copy.path().join("murakami.tmp").exists());
}

// Found by review: readers in other processes, the offset space, a crashed
// restart read without a writer.

/// The offset space: a restart where a segment's offsets would pass
/// `u64::MAX` is refused before anything changes; the largest offset
/// accepted makes a log that reopens and appends.
#[test]
fn a_restart_past_the_offset_space_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 3);
    let before = (reader.first_offset(), reader.next_offset());
    let mut end = 0;
    for at in [u64::MAX, u64::MAX - 10, u64::MAX - 4096 / 32 + 1] {
        match writer.restart_at(at) {
            Err(Error::OffsetOutOfRange {
                offset,
                first: 0,
                end: e,
            }) if offset == at => end = e,
            other => panic!("restart_at({at}): {other:?}"),
        }
        assert_eq!((reader.first_offset(), reader.next_offset()), before);
    }
    assert_eq!(end, u64::MAX - 4096 / 32 + 1);
    // Not latched: the log goes on as it was.
    assert_eq!(writer.append(&payload(3)).unwrap(), 3);
    writer.close().unwrap();
    let (first, next, records) = reopened(dir.path());
    assert_eq!((first, next, records.len()), (0, 4, 4));
    // The largest offset accepted.
    let (mut writer, _reader) = Log::open(dir.path(), small()).unwrap();
    writer.restart_at(end - 1).unwrap();
    assert_eq!(writer.append(b"a").unwrap(), end - 1);
    assert_eq!(writer.append(b"b").unwrap(), end);
    writer.close().unwrap();
    let (first, next, records) = reopened(dir.path());
    assert_eq!((first, next), (end - 1, end + 1));
    assert_eq!(records, [(end - 1, b"a".to_vec()), (end, b"b".to_vec())]);
}

/// Writes a committed restart marker (`murakami.restart`: start, the
/// sequence it discards below, CRC) into `dir`.
fn restart_marker(dir: &std::path::Path, start: u64, created_after: u64) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"MRKRSTRT");
    bytes.extend_from_slice(&start.to_le_bytes());
    bytes.extend_from_slice(&created_after.to_le_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(dir.join("murakami.restart"), bytes).unwrap();
}

/// A reader of the files (`Reader::open`, as in another process) holding a
/// cursor in an old segment that starts below the restart offset: the
/// cursor is purged, as in the writer's process, and never returns an old
/// record at an offset of the new log.
#[test]
fn a_remote_cursor_below_a_restart_inside_the_log_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 20); // one segment, base 0
    writer.sync().unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1);
    let remote = murakami::Reader::open(dir.path()).unwrap();
    let mut local_cursor = reader.cursor(5).unwrap();
    let mut remote_cursor = remote.cursor(5).unwrap();
    assert_eq!(local_cursor.next().unwrap().unwrap().offset, 5);
    assert_eq!(remote_cursor.next().unwrap().unwrap().offset, 5);
    writer.restart_at(10).unwrap();
    for o in 10..30u64 {
        assert_eq!(writer.append(format!("new {o}").as_bytes()).unwrap(), o);
    }
    writer.sync().unwrap();
    let local = local_cursor.next().map(|r| r.map(|r| r.offset));
    assert!(
        matches!(
            local,
            Some(Err(Error::Purged {
                offset: 6,
                first: 10
            }))
        ),
        "{local:?}"
    );
    let remote_next = remote_cursor.next().map(|r| r.map(|r| r.offset));
    assert!(
        matches!(
            remote_next,
            Some(Err(Error::Purged {
                offset: 6,
                first: 10
            }))
        ),
        "{remote_next:?}"
    );
    // A cursor of the reader process at the restart offset reads the new log.
    let fresh: Vec<_> = remote.cursor(10).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(fresh.len(), 20);
    for r in fresh {
        assert_eq!(r.payload, format!("new {}", r.offset).as_bytes());
    }
    writer.close().unwrap();
}

/// The openraft case: a restart past the end; a durable-only cursor of a
/// reader process that stood inside the old log is purged too, and counts
/// no old record durable.
#[test]
fn a_remote_durable_cursor_below_a_restart_past_the_end_is_purged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 20);
    writer.sync().unwrap();
    let remote = murakami::Reader::open(dir.path()).unwrap().durable_only();
    let mut local = reader.clone().durable_only().cursor(3).unwrap();
    let mut cursor = remote.cursor(3).unwrap();
    assert_eq!(cursor.next().unwrap().unwrap().offset, 3);
    assert_eq!(local.next().unwrap().unwrap().offset, 3);
    writer.restart_at(1000).unwrap();
    assert_eq!(remote.durable_offset(), 1000);
    assert_eq!(remote.first_offset(), 1000);
    let l = local.next().map(|r| r.map(|r| r.offset));
    let r: Vec<_> = cursor
        .by_ref()
        .take(30)
        .map(|r| r.map(|r| r.offset))
        .collect();
    assert!(
        matches!(
            l,
            Some(Err(Error::Purged {
                offset: 4,
                first: 1000
            }))
        ),
        "{l:?}"
    );
    assert!(
        matches!(
            r.first(),
            Some(Err(Error::Purged {
                offset: 4,
                first: 1000
            }))
        ),
        "{r:?}"
    );
    assert!(r.iter().all(|r| r.is_err()), "{r:?}");
    writer.close().unwrap();
}

/// A reader of the files of a crashed restart (marker committed, old
/// segments still there) shows what the writer's next open keeps, and
/// removes nothing; `inspect` says the same.
#[test]
fn a_reader_of_a_committed_restart_agrees_with_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 120);
    writer.close().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() > 1);
    restart_marker(dir.path(), 5000, 1000);
    let remote = murakami::Reader::open(dir.path()).unwrap();
    let seen = (remote.first_offset(), remote.next_offset());
    assert!(matches!(
        remote.read(3),
        Err(Error::Purged {
            offset: 3,
            first: 5000
        })
    ));
    assert!(remote.cursor(5000).unwrap().next().is_none());
    drop(remote);
    assert_eq!(segment_files(dir.path()), files, "a reader removed files");
    let inspection = Log::inspect(dir.path()).unwrap();
    assert_eq!(
        (inspection.first_offset, inspection.next_offset),
        (5000, 5000)
    );
    let (_w, r) = Log::open(dir.path(), small()).unwrap();
    assert_eq!(
        seen,
        (r.first_offset(), r.next_offset()),
        "reader of the files vs recovery"
    );
    assert_eq!(seen, (5000, 5000));
}

/// Replays by hand, on the files, a restart's steps, with the stores of
/// `Control::restarted` in the order the writer made them before the fix
/// (`first` and `durable` raised before the generation moves) while a
/// durable-only reader process holds an old segment loaded at the
/// generation of the restart's `truncated`: the marker and the restart
/// word, both there before that generation, are enough for the reader to
/// hide every old segment, so it counts no old record durable, whatever
/// the order of the later stores (the writer now moves the generation
/// first, see `Control::restarted`).
#[test]
fn a_restart_word_hides_old_segments_whatever_the_store_order() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _reader) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 60);
    writer.sync().unwrap();
    let files = segment_files(dir.path());
    assert!(files.len() >= 2, "{files:?}");
    let remote = murakami::Reader::open(dir.path()).unwrap().durable_only();
    assert_eq!(remote.durable_offset(), 60);
    let mut cursor = remote.cursor(3).unwrap();
    let control = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join("murakami.tail"))
        .unwrap();
    let word = |at: u64| {
        let mut b = [0u8; 8];
        control.read_exact_at(&mut b, at).unwrap();
        u64::from_le_bytes(b)
    };
    let put = |at: u64, v: u64| control.write_all_at(&v.to_le_bytes(), at).unwrap();
    let (durable_at, first_at, gen_at, restarted_below_at) = (40, 48, 56, 72);
    assert_eq!(word(restarted_below_at), 0);
    // restart_at(1000): the marker committed, Control::restarting(new
    // sequence), then Control::truncated(old first = 0): durable down,
    // generation up.
    restart_marker(dir.path(), 1000, 1 << 20);
    put(restarted_below_at, 1 << 20);
    put(durable_at, 0);
    put(gen_at, word(gen_at) + 1);
    // The newest old segments go first; the reader catches up meanwhile.
    for f in files.iter().skip(1).rev() {
        std::fs::remove_file(f).unwrap();
    }
    assert_eq!(
        remote.durable_offset(),
        0,
        "nothing durable during the restart"
    );
    // First and durable stored before the generation moves (the old order).
    put(first_at, 1000);
    put(durable_at, 1000);
    let next = cursor.next().map(|r| r.map(|r| r.offset));
    assert!(
        matches!(next, Some(Err(Error::Purged { offset: 3, .. }))),
        "a durable-only cursor: {next:?}"
    );
    assert!(matches!(
        remote.read(3),
        Err(Error::Purged { offset: 3, .. })
    ));
    put(gen_at, word(gen_at) + 1);
    assert!(matches!(
        remote.read(3),
        Err(Error::Purged { offset: 3, .. })
    ));
    drop(writer);
}

/// A restart on a new log stopped after the old segment went and before the
/// new one got its name, the control file not on disk: inspect says what
/// recovery then does (creates the log at the restart's offset).
#[test]
fn inspect_of_a_committed_restart_with_no_segment_left() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("murakami.lock"), b"").unwrap();
    restart_marker(dir.path(), 5000, 1);
    let inspection = Log::inspect(dir.path()).unwrap();
    assert_eq!(
        inspection.state,
        murakami::LogState::Unclean,
        "{inspection:?}"
    );
    assert_eq!(
        (inspection.first_offset, inspection.next_offset),
        (5000, 5000)
    );
    let (_w, r) = Log::open(dir.path(), small()).unwrap();
    assert_eq!((r.first_offset(), r.next_offset()), (5000, 5000));
}

/// A cursor standing in a segment retention took out of the list (the
/// cursor still holds it) reads no record a restart dropped, in the
/// writer's process and in a reader process: it goes on in the new log at
/// its offset. Found by the model test (3000 cases).
#[test]
fn a_cursor_in_a_purged_segment_reads_nothing_a_restart_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(dir.path(), small()).unwrap();
    fill(&mut writer, 60);
    writer.sync().unwrap();
    let remote = murakami::Reader::open(dir.path()).unwrap();
    let mut local = reader.cursor(1).unwrap();
    let mut far = remote.cursor(1).unwrap();
    writer.purge_before(50).unwrap();
    assert!(reader.first_offset() > 1);
    // The reader process sees the purge (a read catches up).
    assert_eq!(remote.read(55).unwrap(), payload(55));
    assert!(remote.first_offset() > 1);
    writer.restart_at(0).unwrap();
    for (name, cursor) in [("local", &mut local), ("remote", &mut far)] {
        let next = cursor.next().map(|r| r.map(|r| r.offset));
        assert!(next.is_none(), "{name}: {next:?}");
    }
    for o in 0..3u64 {
        assert_eq!(writer.append(format!("new {o}").as_bytes()).unwrap(), o);
    }
    writer.sync().unwrap();
    for (name, cursor) in [("local", &mut local), ("remote", &mut far)] {
        let r = cursor.next().unwrap().unwrap();
        assert_eq!((r.offset, r.payload), (1, b"new 1".to_vec()), "{name}");
    }
    writer.close().unwrap();
}
