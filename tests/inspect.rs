//! `Log::inspect`: a read-only look at a log directory (what `murakami
//! stat` and `verify` print). What it predicts about damaged logs is checked
//! against what recovery then does in `hostile.rs` (every damage class)
//! and in the crash simulation (every crash point).

#![cfg(not(feature = "loom"))]

use std::fs;
use std::path::Path;

use murakami::{Corruption, Error, Log, LogState, Options, SyncPolicy};

mod common;
use common::segment_files;

fn options() -> Options {
    Options::default()
        .segment_size(64 * 1024)
        .sync_policy(SyncPolicy::Explicit)
}

#[test]
fn a_missing_directory_is_not_found_and_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nothing");
    match Log::inspect(&dir) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    assert!(!dir.exists());
}

#[test]
fn an_empty_or_foreign_directory_is_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let seen = Log::inspect(tmp.path()).unwrap();
    assert_eq!(seen.state, LogState::Absent);
    assert!(seen.segments.is_empty() && seen.problem.is_none());
    fs::write(tmp.path().join("notes.txt"), b"hello").unwrap();
    assert_eq!(Log::inspect(tmp.path()).unwrap().state, LogState::Absent);
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "nothing created"
    );
}

#[test]
fn a_live_log_names_its_writer_and_a_closed_one_its_clean_close() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut writer, _reader) = Log::open(dir, options()).unwrap();
    for i in 0..2000u64 {
        writer.append(&i.to_le_bytes().repeat(8)).unwrap();
    }
    writer.sync().unwrap();
    writer.purge_before(600).unwrap();
    writer.append(b"not synced yet").unwrap();

    let live = Log::inspect(dir).unwrap();
    assert_eq!(live.state, LogState::Live);
    let pid = live.writer.expect("the writer holds the lock").pid;
    if Path::new("/proc/locks").exists() {
        assert_eq!(pid, Some(std::process::id()));
    }
    assert!(!live.clean_shutdown);
    let control = live.control.unwrap().unwrap();
    assert!(control.open && !control.closed);
    assert_eq!(control.durable_offset, 2000);
    assert_eq!(control.first_offset, writer.first_offset());
    assert_eq!(live.durable_offset, 2000);
    assert_eq!(live.first_offset, writer.first_offset());
    assert_eq!(live.next_offset, 2001);
    // Segments chain, count what they hold and only the last is active.
    let segs = &live.segments;
    assert!(segs.len() >= 2, "{} segments", segs.len());
    for pair in segs.windows(2) {
        assert_eq!(pair[0].base_offset + pair[0].records, pair[1].base_offset);
        assert!(pair[0].sealed);
        let (oldest, newest) = pair[0].timestamps.unwrap();
        assert!(oldest <= newest && newest <= pair[1].timestamps.unwrap().0);
    }
    let last = segs.last().unwrap();
    assert!(!last.sealed);
    assert_eq!(last.base_offset + last.records, 2001);
    assert!(segs.iter().all(|s| s.capacity == 64 * 1024
        && s.version == Some(2)
        && s.header_error.is_none()
        && s.used_bytes <= s.capacity));
    writer.close().unwrap();

    let closed = Log::inspect(dir).unwrap();
    assert_eq!(closed.state, LogState::Closed);
    assert!(closed.writer.is_none() && closed.clean_shutdown && closed.problem.is_none());
    assert!(!closed.needs_repair());
    assert_eq!(closed.durable_offset, 2001);
    let control = closed.control.unwrap().unwrap();
    assert!(control.closed && !control.open);
}

#[test]
fn a_torn_tail_is_reported_with_the_cut_the_open_then_makes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut writer, _reader) = Log::open(dir, options()).unwrap();
    for i in 0..10u64 {
        writer.append(format!("record {i}").as_bytes()).unwrap();
    }
    writer.sync().unwrap();
    writer.append(b"the record a crash tears").unwrap();
    // A crash: the writer never closes (its lock goes with it).
    std::mem::forget(writer);
    // ... but a lock dies with its process, not with a forgotten writer:
    // copy the files to look at them as the next process would.
    let copy = tmp.path().join("after-crash");
    fs::create_dir(&copy).unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
        }
    }
    let seg = segment_files(&copy).pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Tear the last record: its payload's last byte.
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes[end] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();

    let seen = Log::inspect(&copy).unwrap();
    assert_eq!(seen.state, LogState::Unclean);
    assert!(seen.needs_repair());
    let problem = seen.problem.clone().expect("a torn tail");
    assert!(problem.torn_tail);
    assert_eq!(problem.offset, 10);
    assert!(
        matches!(problem.kind, Corruption::ChecksumMismatch { .. }),
        "{:?}",
        problem.kind
    );
    assert_eq!(seen.next_offset, 10);
    assert_eq!(seen.durable_offset, 10);
    let (writer, _) = Log::open(&copy, options()).unwrap();
    assert_eq!(writer.recovery_report().cut, problem.cut);
    assert_eq!(writer.next_offset(), 10);
}

#[test]
fn leftovers_are_listed_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut writer, _reader) = Log::open(dir, options()).unwrap();
    writer.append(b"x").unwrap();
    writer.close().unwrap();
    fs::write(dir.join("murakami-next.tmp"), vec![0u8; 4096]).unwrap();
    let seen = Log::inspect(dir).unwrap();
    assert_eq!(seen.leftovers, vec![dir.join("murakami-next.tmp")]);
    assert!(seen.needs_repair());
    assert!(dir.join("murakami-next.tmp").exists());
}

#[test]
fn the_writer_of_a_log_is_found_without_taking_its_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert_eq!(Log::writer_of(dir).unwrap(), None);
    assert_eq!(fs::read_dir(dir).unwrap().count(), 0, "no lock file made");
    let (writer, _reader) = Log::open(dir, options()).unwrap();
    let found = Log::writer_of(dir).unwrap().expect("held");
    if Path::new("/proc/locks").exists() {
        assert_eq!(found.pid, Some(std::process::id()));
    }
    assert!(matches!(
        Log::open(dir, options()),
        Err(Error::Locked { .. })
    ));
    writer.close().unwrap();
    assert_eq!(Log::writer_of(dir).unwrap(), None);
}
