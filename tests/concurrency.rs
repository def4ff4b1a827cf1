//! Readers on other threads while the producer appends and rolls: every
//! record a reader sees is byte-exact, and cursors see every offset once, in
//! order.
#![cfg(not(feature = "loom"))]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use common::payload;
use murakami::{Log, Options, Reader};

const RECORDS: u64 = 20_000;

fn tail_with_cursor(reader: Reader) -> u64 {
    let mut cursor = reader.cursor(0).unwrap();
    let mut expected = 0;
    while expected < RECORDS {
        match cursor.next_ref().unwrap() {
            Some(record) => {
                assert_eq!(record.offset, expected, "cursor skipped or repeated");
                assert_eq!(record.payload, payload(expected), "record {expected}");
                expected += 1;
            }
            None => thread::yield_now(),
        }
    }
    assert!(cursor.next_ref().unwrap().is_none());
    expected
}

fn random_reads(reader: Reader, done: &AtomicBool, zero_copy: bool) -> u64 {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = Vec::new();
    let mut checked = 0;
    loop {
        let finished = done.load(Ordering::Acquire);
        let end = reader.next_offset();
        if end > 0 {
            for _ in 0..64 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let offset = state % end;
                if zero_copy {
                    let guard = reader.pin();
                    let record = reader.get(offset, &guard).unwrap();
                    assert_eq!(record.payload, payload(offset));
                } else {
                    reader.read_into(offset, &mut buf).unwrap();
                    assert_eq!(buf, payload(offset), "record {offset}");
                }
                checked += 1;
            }
        }
        if finished {
            return checked;
        }
    }
}

#[test]
fn readers_see_byte_exact_records_while_the_producer_appends_and_rolls() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .segment_size(16 << 10)
        .max_record_size(1024);
    let (mut writer, reader) = Log::open(tmp.path(), opts).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(5));
    let mut handles = Vec::new();
    for kind in 0..4 {
        let reader = reader.clone();
        let done = Arc::clone(&done);
        let start = Arc::clone(&start);
        handles.push(thread::spawn(move || {
            start.wait();
            match kind {
                0 | 1 => tail_with_cursor(reader),
                2 => random_reads(reader, &done, false),
                _ => random_reads(reader, &done, true),
            }
        }));
    }
    start.wait();
    let mut i = 0;
    while i < RECORDS {
        if i % 500 == 0 {
            let batch: Vec<Vec<u8>> = (i..i + 10).map(payload).collect();
            assert_eq!(writer.append_batch(&batch).unwrap(), i..i + 10);
            i += 10;
        } else {
            assert_eq!(writer.append(&payload(i)).unwrap(), i);
            i += 1;
        }
        if i % 4096 == 0 {
            writer.sync().unwrap();
        }
    }
    assert_eq!(writer.next_offset(), RECORDS);
    done.store(true, Ordering::Release);
    let checked: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(&checked[..2], [RECORDS, RECORDS]);
    assert!(checked[2] > 0 && checked[3] > 0);
    let segments = std::fs::read_dir(tmp.path()).unwrap().count();
    assert!(segments > 50, "the producer rolled {segments} times");
}

#[test]
fn a_zero_copy_slice_stays_valid_across_rolls_while_its_guard_lives() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options::default().segment_size(8192).max_record_size(1024);
    let (mut writer, reader) = Log::open(tmp.path(), opts).unwrap();
    writer.append(&payload(3)).unwrap();
    let guard = reader.pin();
    let held = reader.get(0, &guard).unwrap();
    let producer = thread::spawn(move || {
        for i in 1..2000 {
            writer.append(&payload(i)).unwrap();
        }
        writer
    });
    let writer = producer.join().unwrap();
    assert_eq!(held.payload, payload(3));
    drop(guard);
    writer.close().unwrap();
}
