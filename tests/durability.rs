//! Sync policies, durable readers, tailing waits and many producers.
#![cfg(not(feature = "loom"))]

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{Loss, copy_dir, lose_after, payload};
use murakami::{Error, Log, Options, SyncPolicy};

fn small() -> Options {
    Options::default().segment_size(8192).max_record_size(1024)
}

/// Copies the log as a crash would leave it and throws away everything past
/// `durable`, as a power loss may; returns how many records come back.
fn recovered_after_power_loss(dir: &std::path::Path, durable: u64) -> u64 {
    let copy = dir.with_extension("crash");
    copy_dir(dir, &copy);
    lose_after(&copy, durable, Loss::Zeroed, true);
    let (_, reader) = Log::open(&copy, small()).unwrap();
    for i in 0..reader.next_offset() {
        assert_eq!(reader.read(i).unwrap(), payload(i), "record {i}");
    }
    reader.next_offset()
}

#[test]
fn every_n_records_syncs_inside_the_append_that_reaches_n() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = small().sync_policy(SyncPolicy::EveryRecords(10));
    let (mut writer, reader) = Log::open(tmp.path(), opts).unwrap();
    for i in 0..9 {
        writer.append(&payload(i)).unwrap();
    }
    assert_eq!(reader.durable_offset(), 0);
    writer.append(&payload(9)).unwrap();
    assert_eq!(reader.durable_offset(), 10);
    let batch: Vec<Vec<u8>> = (10..25).map(payload).collect();
    writer.append_batch(&batch).unwrap();
    assert_eq!(
        reader.durable_offset(),
        25,
        "a batch that passes the count syncs"
    );
    writer.append(&payload(25)).unwrap();
    assert_eq!(reader.durable_offset(), 25);
}

#[test]
fn always_returns_only_once_the_record_is_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let opts = small().sync_policy(SyncPolicy::Always);
    let (mut writer, reader) = Log::open(&dir, opts).unwrap();
    for i in 0..60 {
        let offset = writer.append(&payload(i)).unwrap();
        assert_eq!(reader.durable_offset(), offset + 1);
    }
    let durable = reader.durable_offset();
    assert!(recovered_after_power_loss(&dir, durable) >= durable);
    drop(writer);
}

#[test]
fn interval_makes_records_durable_without_a_call() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let opts = small().sync_policy(SyncPolicy::Interval(Duration::from_millis(20)));
    let (mut writer, reader) = Log::open(&dir, opts).unwrap();
    for i in 0..100 {
        writer.append(&payload(i)).unwrap();
    }
    // A durable reader is woken by the background sync; nothing else syncs.
    let durable = reader.clone().durable_only();
    assert!(durable.wait_for(99, Duration::from_secs(10)).unwrap());
    assert!(reader.durable_offset() >= 100);
    assert!(recovered_after_power_loss(&dir, 100) >= 100);
    writer.close().unwrap();
}

#[test]
fn a_zero_policy_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for policy in [
        SyncPolicy::EveryRecords(0),
        SyncPolicy::Interval(Duration::ZERO),
    ] {
        let opts = small().sync_policy(policy);
        assert!(matches!(
            Log::open(tmp.path(), opts),
            Err(Error::InvalidOptions(_))
        ));
    }
}

#[test]
fn a_durable_reader_sees_nothing_past_the_durable_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let durable = reader.clone().durable_only();
    for i in 0..10 {
        writer.append(&payload(i)).unwrap();
    }
    assert_eq!(reader.read(3).unwrap(), payload(3));
    assert!(matches!(
        durable.read(3),
        Err(Error::OffsetOutOfRange { end: 0, .. })
    ));
    assert_eq!(durable.end_offset(), 0);
    let mut cursor = durable.cursor(0).unwrap();
    assert!(cursor.next_ref().unwrap().is_none());
    writer.sync().unwrap();
    writer.append(&payload(10)).unwrap();
    let seen: Vec<u64> = cursor.by_ref().map(|r| r.unwrap().offset).collect();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert!(durable.read(10).is_err());
    assert!(durable.cursor(11).is_err());
}

#[test]
fn a_durable_reader_racing_the_syncer_never_sees_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = small().sync_policy(SyncPolicy::EveryRecords(7));
    let (mut writer, reader) = Log::open(tmp.path(), opts).unwrap();
    let durable = reader.durable_only();
    let checker = thread::spawn(move || {
        let mut cursor = durable.cursor(0).unwrap();
        let mut seen = 0;
        while seen < 700 {
            match cursor.next_wait(Duration::from_secs(10)).unwrap() {
                Some(record) => {
                    assert_eq!(record.offset, seen);
                    assert!(record.offset < durable.durable_offset());
                    assert_eq!(record.payload, payload(seen));
                    seen += 1;
                }
                None => panic!("no durable record for 10 s"),
            }
        }
        seen
    });
    for i in 0..700 {
        writer.append(&payload(i)).unwrap();
    }
    assert_eq!(checker.join().unwrap(), 700);
}

#[test]
fn waiters_are_woken_by_appends_and_none_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    // No spinning: every wait takes the sleeping path.
    let reader = reader.spin(Duration::ZERO);
    for round in 0..200u64 {
        let start = Arc::new(Barrier::new(3));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let reader = reader.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    reader.wait_for(round, Duration::from_secs(30)).unwrap()
                })
            })
            .collect();
        start.wait();
        writer.append(&payload(round)).unwrap();
        for waiter in waiters {
            assert!(waiter.join().unwrap(), "round {round}: a wake-up was lost");
        }
    }
}

#[test]
fn durable_waiters_are_woken_by_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let durable = reader.durable_only().spin(Duration::ZERO);
    let waiter = thread::spawn(move || durable.wait_for(4, Duration::from_secs(30)));
    for i in 0..5 {
        writer.append(&payload(i)).unwrap();
    }
    writer.sync().unwrap();
    assert!(waiter.join().unwrap().unwrap());
}

#[test]
fn closing_wakes_every_waiter_with_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut writer, reader) = Log::open(tmp.path(), small()).unwrap();
    writer.append(b"one").unwrap();
    let start = Arc::new(Barrier::new(4));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let reader = reader.clone().spin(Duration::ZERO);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                reader.wait_for(100, Duration::from_secs(30))
            })
        })
        .collect();
    start.wait();
    writer.close().unwrap();
    for waiter in waiters {
        assert!(matches!(waiter.join().unwrap(), Err(Error::Closed)));
    }
    assert!(
        reader.wait_for(0, Duration::ZERO).unwrap(),
        "what exists stays readable"
    );
    let mut cursor = reader.cursor(0).unwrap();
    assert!(cursor.next_wait(Duration::from_secs(1)).unwrap().is_some());
    assert!(matches!(
        cursor.next_wait(Duration::from_secs(30)),
        Err(Error::Closed)
    ));
}

#[test]
fn a_wait_times_out_when_nothing_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_writer, reader) = Log::open(tmp.path(), small()).unwrap();
    assert!(!reader.wait_for(0, Duration::from_millis(5)).unwrap());
    let mut cursor = reader.cursor(0).unwrap();
    assert!(
        cursor
            .next_wait(Duration::from_millis(5))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_shared_writer_loses_and_duplicates_nothing() {
    const THREADS: u64 = 8;
    const EACH: u64 = 1000;
    let tmp = tempfile::tempdir().unwrap();
    let (writer, reader) = Log::open(tmp.path(), small()).unwrap();
    let writer = writer.into_shared();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let writer = writer.clone();
            thread::spawn(move || {
                let mut offsets = Vec::new();
                for i in 0..EACH {
                    let mut record = t.to_le_bytes().to_vec();
                    record.extend_from_slice(&i.to_le_bytes());
                    offsets.push(writer.append(&record).unwrap());
                }
                offsets
            })
        })
        .collect();
    let mut all = Vec::new();
    for (t, handle) in handles.into_iter().enumerate() {
        let offsets = handle.join().unwrap();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "thread {t}: order");
        for (i, &offset) in offsets.iter().enumerate() {
            let record = reader.read(offset).unwrap();
            assert_eq!(record[0..8], (t as u64).to_le_bytes());
            assert_eq!(record[8..16], (i as u64).to_le_bytes());
        }
        all.extend(offsets);
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..THREADS * EACH).collect::<Vec<_>>(),
        "dense, no duplicate"
    );
    writer.close().unwrap();
}

#[test]
fn durable_appends_from_many_threads_are_durable_when_they_return() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (writer, reader) = Log::open(&dir, small()).unwrap();
    let writer = writer.into_shared();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let writer = writer.clone();
            let reader = reader.clone();
            thread::spawn(move || {
                for _ in 0..25 {
                    let offset = writer.append_durable(&payload(0)).unwrap();
                    assert!(
                        offset < reader.durable_offset(),
                        "acknowledged, not durable"
                    );
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(reader.durable_offset(), 200);
    assert_eq!(writer.sync().unwrap(), 200);
    let closer = writer.clone();
    closer.close().unwrap();
    assert!(matches!(writer.append(b"late"), Err(Error::Closed)));
}

#[test]
fn a_shared_writer_under_always_acknowledges_durable_records() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = small().sync_policy(SyncPolicy::Always);
    let (writer, reader) = Log::open(tmp.path(), opts).unwrap();
    let writer = writer.into_shared();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let writer = writer.clone();
            let reader = reader.clone();
            thread::spawn(move || {
                for _ in 0..20 {
                    let offset = writer.append(&payload(1)).unwrap();
                    assert!(offset < reader.durable_offset());
                }
                let range = writer.append_batch(&[payload(2), payload(3)]).unwrap();
                assert!(range.end <= reader.durable_offset());
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}
