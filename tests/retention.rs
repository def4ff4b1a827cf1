//! Retention, prefix purge and lookups by time, also while readers read.
#![cfg(not(feature = "loom"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{base_of, copy_dir, payload, segment_files};
use murakami::{Error, Log, Options, Retention};

fn small() -> Options {
    Options::default().segment_size(8192).max_record_size(1024)
}

/// Bases of the segment files on disk.
fn bases(dir: &std::path::Path) -> Vec<u64> {
    segment_files(dir).iter().map(|p| base_of(p)).collect()
}

#[test]
fn purge_removes_exactly_the_segments_below_the_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..600 {
        writer.append(&payload(i)).unwrap();
    }
    let before = bases(tmp.path());
    assert!(before.len() > 6);
    let cut = before[3] + 2; // inside the fourth segment
    let removed = writer.purge_before(cut).unwrap();
    assert_eq!(removed.segments, 3);
    assert_eq!(removed.records, before[3]);
    assert_eq!(removed.bytes, 3 * 8192);
    assert_eq!(removed.first_offset, before[3]);
    assert_eq!(bases(tmp.path()), before[3..]);
    assert_eq!(reader.first_offset(), before[3]);
    match reader.read(before[3] - 1) {
        Err(Error::Purged { offset, first }) => {
            assert_eq!((offset, first), (before[3] - 1, before[3]));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(reader.cursor(0), Err(Error::Purged { .. })));
    assert_eq!(reader.read(before[3]).unwrap(), payload(before[3]));
    assert_eq!(writer.append(b"next").unwrap(), 600, "offsets go on");
    assert_eq!(writer.purge_before(cut).unwrap().segments, 0, "idempotent");
    writer.close().unwrap();
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(reader.first_offset(), before[3], "across reopen");
    assert_eq!(reader.next_offset(), 601);
    assert!(matches!(reader.read(0), Err(Error::Purged { .. })));
}

#[test]
fn purge_never_removes_the_active_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..300 {
        writer.append(&payload(i)).unwrap();
    }
    let active = *bases(tmp.path()).last().unwrap();
    writer.purge_before(u64::MAX).unwrap();
    assert_eq!(bases(tmp.path()), [active]);
    assert_eq!(reader.first_offset(), active);
    assert_eq!(reader.read(299).unwrap(), payload(299));
}

/// Issue 11, item 11: `purge_before(u64::MAX)` returns `Ok` while the
/// active segment's records stay readable; `Removed` and `first_offset`
/// (now on the writers too) say where the removal stopped.
#[test]
fn a_purge_past_the_active_segment_says_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..300 {
        writer.append(&payload(i)).unwrap();
    }
    let active = *bases(tmp.path()).last().unwrap();
    assert!(active > 0 && active < 300);
    assert_eq!(writer.first_offset(), 0);
    let removed = writer.purge_before(u64::MAX).unwrap();
    assert_eq!(
        removed.first_offset, active,
        "stopped at the active segment"
    );
    assert_eq!(removed.records, active, "every record below it went");
    assert_eq!(writer.first_offset(), active);
    assert!(matches!(
        reader.read(active - 1),
        Err(Error::Purged { first, .. }) if first == active
    ));
    for offset in active..300 {
        assert_eq!(reader.read(offset).unwrap(), payload(offset));
    }
    let shared = writer.into_shared();
    let again = shared.purge_before(u64::MAX).unwrap();
    assert_eq!((again.segments, again.first_offset), (0, active));
    assert_eq!(shared.first_offset(), active);
    assert_eq!(shared.next_offset(), 300);
}

#[test]
fn retention_by_size_keeps_at_most_the_limit_of_sealed_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = small().retention(Retention::none().max_bytes(3 * 8192));
    let (mut writer, _) = Log::open(tmp.path(), opts).unwrap();
    for i in 0..600 {
        writer.append(&payload(i)).unwrap();
    }
    let before = bases(tmp.path());
    let removed = writer.cleanup().unwrap();
    assert_eq!(removed.segments, before.len() - 4);
    assert_eq!(
        bases(tmp.path()),
        before[before.len() - 4..],
        "3 sealed + active"
    );
    assert_eq!(writer.cleanup().unwrap().segments, 0);
}

#[test]
fn retention_by_age_uses_the_records_times_and_only_a_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = small().retention(Retention::none().max_age(Duration::from_nanos(1000)));
    let (mut writer, _) = Log::open(tmp.path(), opts).unwrap();
    // Segment k (by order of creation) holds records stamped 10_000 * k,
    // except one young record early on.
    let mut k = 0;
    let mut i = 0;
    while bases(tmp.path()).len() < 8 {
        let before = bases(tmp.path()).len();
        let stamp = if i == 5 { 1_000_000 } else { 10_000 * k };
        writer.append_with_timestamp(&payload(i), stamp).unwrap();
        i += 1;
        if bases(tmp.path()).len() > before {
            k += 1;
        }
    }
    let before = bases(tmp.path());
    // The first segment holds the young record: nothing may go.
    assert_eq!(writer.cleanup_at(20_000 + 1000).unwrap().segments, 0);
    writer.purge_before(before[1]).unwrap();
    // Now segments stamped 10_000 and 20_000 are older than 31_000 - 1000.
    let removed = writer.cleanup_at(31_000).unwrap();
    assert_eq!(removed.segments, 2);
    assert_eq!(bases(tmp.path()), before[3..]);
}

#[test]
fn a_background_cleaner_applies_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let retention = Retention::none()
        .max_bytes(2 * 8192)
        .check_every(Duration::from_millis(2));
    let (mut writer, _) = Log::open(tmp.path(), small().retention(retention)).unwrap();
    for i in 0..600 {
        writer.append(&payload(i)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while bases(tmp.path()).len() > 3 {
        assert!(Instant::now() < deadline, "the cleaner never ran");
        thread::yield_now();
    }
    writer.close().unwrap();
}

#[test]
fn a_crash_in_the_middle_of_a_cleanup_leaves_a_log_that_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let (mut writer, _) = Log::open(&live, small()).unwrap();
    for i in 0..600 {
        writer.append(&payload(i)).unwrap();
    }
    writer.sync().unwrap();
    let copy = tmp.path().join("crash");
    copy_dir(&live, &copy);
    drop(writer);
    // Files go oldest first: a crash leaves some prefix of them removed.
    let files = segment_files(&copy);
    for file in &files[..4] {
        std::fs::remove_file(file).unwrap();
    }
    let first = base_of(&files[4]);
    let (_, reader) = Log::open(&copy, small()).unwrap();
    assert_eq!(reader.first_offset(), first);
    for i in first..600 {
        assert_eq!(reader.read(i).unwrap(), payload(i));
    }
}

#[test]
fn readers_keep_exact_bytes_while_segments_are_purged_under_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..200 {
        writer.append(&payload(i)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|kind| {
            let reader = reader.clone();
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut state = 0x1234_5678_9ABC_DEF1u64 + kind;
                let mut checked = 0u64;
                let mut buf = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let (first, end) = (reader.first_offset(), reader.next_offset());
                    let offset = first + state % (end - first).max(1);
                    let result = match kind {
                        0 => reader.read_into(offset, &mut buf).map(|_| buf.clone()),
                        1 => {
                            let guard = reader.pin();
                            let bytes = reader.get(offset, &guard).map(|r| r.payload.to_vec());
                            // Hold the slice across more purges.
                            thread::yield_now();
                            bytes
                        }
                        _ => match reader.cursor(offset) {
                            Ok(mut cursor) => {
                                let mut last = Ok(Vec::new());
                                for _ in 0..50 {
                                    match cursor.next_ref() {
                                        Ok(Some(r)) => {
                                            assert_eq!(r.payload, payload(r.offset));
                                            last = Ok(r.payload.to_vec());
                                        }
                                        Ok(None) => break,
                                        Err(e) => {
                                            last = Err(e);
                                            break;
                                        }
                                    }
                                }
                                last.map(|_| payload(offset))
                            }
                            Err(e) => Err(e),
                        },
                    };
                    match result {
                        Ok(bytes) => {
                            assert_eq!(bytes, payload(offset), "offset {offset}");
                            checked += 1;
                        }
                        Err(Error::Purged { .. }) => {}
                        Err(e) => panic!("offset {offset}: {e}"),
                    }
                }
                checked
            })
        })
        .collect();
    for i in 200..6000 {
        writer.append(&payload(i)).unwrap();
        if i % 50 == 0 {
            writer.purge_before(i - 100).unwrap();
        }
    }
    stop.store(true, Ordering::Release);
    for handle in readers {
        assert!(handle.join().unwrap() > 0);
    }
}

#[test]
fn lookup_by_time_finds_the_first_record_at_or_after() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    for i in 0..500 {
        writer
            .append_with_timestamp(&payload(i), 1000 + 10 * i)
            .unwrap();
    }
    assert!(segment_files(tmp.path()).len() > 3);
    assert_eq!(reader.offset_for_timestamp(0), 0);
    assert_eq!(reader.offset_for_timestamp(1000), 0);
    assert_eq!(reader.offset_for_timestamp(1001), 1);
    assert_eq!(reader.offset_for_timestamp(1010), 1);
    for i in [37u64, 123, 250, 499] {
        assert_eq!(reader.offset_for_timestamp(1000 + 10 * i), i);
        assert_eq!(reader.offset_for_timestamp(1000 + 10 * i - 5), i);
    }
    assert_eq!(
        reader.offset_for_timestamp(1_000_000),
        500,
        "past the last: the end"
    );
    writer.close().unwrap();
    let (_, reader) = Log::open(tmp.path(), small()).unwrap();
    assert_eq!(
        reader.offset_for_timestamp(1000 + 10 * 123),
        123,
        "after reopen"
    );
}

#[test]
fn lookup_by_time_with_unordered_stamps_returns_a_boundary() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let mut state = 99u64;
    let mut stamps = Vec::new();
    for i in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let stamp = i * 10 + state % 50; // roughly increasing, with jitter
        stamps.push(stamp);
        writer.append_with_timestamp(&payload(i), stamp).unwrap();
    }
    for t in [0u64, 5, 333, 1234, 2000, 3990, 5000] {
        let o = reader.offset_for_timestamp(t) as usize;
        if o < stamps.len() {
            assert!(stamps[o] >= t, "t {t}: record {o} is before it");
        } else {
            assert!(stamps.iter().all(|&s| s < t) || o == stamps.len());
        }
        // Everything in earlier segments' running maximum is before t.
        let any_before_reaches = stamps[..o.min(stamps.len())].iter().any(|&s| s >= t);
        if any_before_reaches {
            // Allowed only within the segment bisected: its predecessor is
            // before t.
            assert!(o == 0 || stamps[o - 1] < t, "t {t}: not a boundary at {o}");
        }
    }
}
