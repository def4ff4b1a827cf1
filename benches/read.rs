//! Read latency from one thread, page cache warm, no producer running.
//!
//! Three logs of 100k × 256 B records:
//!
//! - `read_sealed`: the records fill one segment exactly and one more record
//!   rolled the log, so every read hits a sealed segment;
//! - `read_active`: 64 MiB segments, so every record is in the active one;
//! - `read_cross_segment`: 64 KiB segments (~430 of them, ~230 records
//!   each), read at random, so most reads land in a different segment.
//!
//! Access patterns: `seq` (offsets in order, wrapping), `random` (a
//! precomputed random permutation of the offsets, walked in order, so the
//! reads are independent of each other) and `hot` (one offset over and over).
//! Ways of reading: `read` (copy into a new `Vec`), `read_into` (copy into
//! a reused buffer), `get` (zero-copy under one `Reader::pin` guard per
//! batch of 1024 reads), `copy_pinned` (`get` and a copy into a reused
//! buffer, one guard per 1024 reads), `get_pin_each` (zero-copy, one guard per read, as
//! `read` and `read_into` pin) and, for `seq`, `cursor_ref`
//! (`Cursor::next_ref`) and `cursor_into` (`Cursor::next_into`, a copy into
//! a reused buffer without a pin per record).
//!
//! Figures are per record read (the throughput is the payload bytes), as in
//! the Go predecessor's `ReadSealedSegment/*`, `ReadActiveSegment/*` and
//! `ReadMixed/CrossSegment` benchmarks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use murakami::{Options, ReadGuard, Reader};

mod common;
use common::{
    RECORD_LEN, RECORDS, TempLog, Walk, drain_epoch_garbage, permutation, segment_size_for,
};

/// Zero-copy reads made under one guard.
const PIN_BATCH: u64 = 1024;
/// Segment size of the cross-segment log.
const SMALL_SEGMENT: u64 = 64 << 10;

/// A log and the offsets `first..end` the benchmarks read.
struct Fixture {
    log: TempLog,
    first: u64,
    end: u64,
}

impl Fixture {
    /// Records `0..RECORDS` fill the first segment (up to its page-rounded
    /// slack); the log is then rolled, so they all sit in a sealed segment.
    fn sealed() -> Fixture {
        let options = Options::default().segment_size(segment_size_for(RECORDS, RECORD_LEN));
        let mut log = TempLog::filled(options, RECORDS, RECORD_LEN);
        assert_eq!(log.segment_files(), 1, "the records fill one segment");
        // The segment size is rounded up to whole pages: fill the slack
        // until one more record rolls the log.
        while log.segment_files() == 1 {
            log.append_n(1, RECORD_LEN);
        }
        assert_eq!(log.segment_files(), 2, "one more record rolled the log");
        Fixture {
            log,
            first: 0,
            end: RECORDS,
        }
    }

    /// All records in the active (only) segment.
    fn active() -> Fixture {
        let log = TempLog::filled(Options::default(), RECORDS, RECORD_LEN);
        assert_eq!(log.segment_files(), 1, "every record in the active segment");
        Fixture {
            log,
            first: 0,
            end: RECORDS,
        }
    }

    /// The records spread over hundreds of small segments.
    fn cross_segment() -> Fixture {
        let options = Options::default()
            .segment_size(SMALL_SEGMENT)
            .max_record_size(RECORD_LEN);
        let log = TempLog::filled(options, RECORDS, RECORD_LEN);
        assert!(log.segment_files() > 400, "hundreds of segments");
        Fixture {
            log,
            first: 0,
            end: RECORDS,
        }
    }

    fn reader(&self) -> &Reader {
        &self.log.reader
    }
}

/// Offsets in order, wrapping from `end` back to `first`.
struct Sequential {
    next: u64,
    first: u64,
    end: u64,
}

impl Sequential {
    fn new(fixture: &Fixture) -> Sequential {
        Sequential {
            next: fixture.first,
            first: fixture.first,
            end: fixture.end,
        }
    }

    #[inline(always)]
    fn next_offset(&mut self) -> u64 {
        let offset = self.next;
        self.next += 1;
        if self.next == self.end {
            self.next = self.first;
        }
        offset
    }
}

/// Runs `read` `iters` times, under a fresh guard every [`PIN_BATCH`]
/// reads; returns the time it took.
fn pinned_batches(reader: &Reader, iters: u64, mut read: impl FnMut(&ReadGuard)) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(PIN_BATCH);
        let guard = reader.pin();
        for _ in 0..n {
            read(&guard);
        }
        left -= n;
    }
    start.elapsed()
}

/// The three ways of reading one offset after another, for an offset
/// source `next`.
fn read_benches(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pattern: &str,
    reader: &Reader,
    mut next: impl FnMut() -> u64,
) {
    group.bench_function(format!("{pattern}/read"), |b| {
        b.iter(|| reader.read(next()).expect("read"));
    });
    let mut buf = Vec::with_capacity(RECORD_LEN);
    group.bench_function(format!("{pattern}/read_into"), |b| {
        b.iter(|| {
            reader.read_into(next(), &mut buf).expect("read_into");
            black_box(buf.as_ptr());
        });
    });
    group.bench_function(format!("{pattern}/get"), |b| {
        b.iter_custom(|iters| {
            pinned_batches(reader, iters, |guard| {
                let record = reader.get(next(), guard).expect("get");
                black_box(record.payload);
            })
        });
    });
    // Copy-out into a reused buffer under one guard per batch: `read_into`
    // without a pin (a full fence) per read.
    group.bench_function(format!("{pattern}/copy_pinned"), |b| {
        b.iter_custom(|iters| {
            pinned_batches(reader, iters, |guard| {
                let record = reader.get(next(), guard).expect("get");
                buf.clear();
                buf.extend_from_slice(record.payload);
                black_box(buf.as_ptr());
            })
        });
    });
    // Zero-copy with a guard per read: what `read`/`read_into` pay for
    // pinning, without their copy.
    group.bench_function(format!("{pattern}/get_pin_each"), |b| {
        b.iter(|| {
            let guard = reader.pin();
            let record = reader.get(next(), &guard).expect("get");
            black_box(record.payload);
        });
    });
}

/// `seq`, `random` and `hot` reads of a fixture, in group `name`.
fn bench_fixture(c: &mut Criterion, name: &str, fixture: &Fixture, patterns: &[&str]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(RECORD_LEN as u64));
    let reader = fixture.reader();
    for &pattern in patterns {
        match pattern {
            "seq" => {
                let mut seq = Sequential::new(fixture);
                read_benches(&mut group, pattern, reader, || seq.next_offset());
                let mut cursor = reader.cursor(fixture.first).expect("cursor");
                group.bench_function("seq/cursor_ref", |b| {
                    b.iter(|| {
                        if cursor.next_offset() == fixture.end {
                            cursor = reader.cursor(fixture.first).expect("cursor");
                        }
                        let record = cursor.next_ref().expect("next_ref").expect("a record");
                        black_box(record.payload);
                    });
                });
                let mut buf = Vec::with_capacity(RECORD_LEN);
                group.bench_function("seq/cursor_into", |b| {
                    b.iter(|| {
                        if cursor.next_offset() == fixture.end {
                            cursor = reader.cursor(fixture.first).expect("cursor");
                        }
                        let got = cursor.next_into(&mut buf).expect("next_into");
                        black_box((got, buf.as_ptr()));
                    });
                });
            }
            "random" => {
                let offsets = permutation(fixture.first, fixture.end, 0x5EED);
                let mut walk = Walk::new(&offsets, 0);
                read_benches(&mut group, pattern, reader, || walk.next_offset());
            }
            "hot" => {
                let offset = (fixture.first + fixture.end) / 2;
                read_benches(&mut group, pattern, reader, || black_box(offset));
            }
            _ => unreachable!("unknown pattern {pattern}"),
        }
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let all = ["seq", "random", "hot"];
    // Each fixture is built, and the previous one freed, before timing starts
    // (see `drain_epoch_garbage`).
    let sealed = Fixture::sealed();
    drain_epoch_garbage();
    bench_fixture(c, "read_sealed", &sealed, &all);
    drop(sealed);
    let active = Fixture::active();
    drain_epoch_garbage();
    bench_fixture(c, "read_active", &active, &all);
    drop(active);
    let cross = Fixture::cross_segment();
    drain_epoch_garbage();
    bench_fixture(c, "read_cross_segment", &cross, &["random"]);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = read
}
criterion_main!(benches);
