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

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use murakami::Reader;

mod common;
use common::workloads::{ReadFixture as Fixture, ReadWay, read_loop};
use common::{RECORD_LEN, RECORDS, Walk, drain_epoch_garbage, permutation};

/// Segment size of the cross-segment log.
const SMALL_SEGMENT: u64 = 64 << 10;

/// The ways of reading one offset after another, for an offset source
/// `next`.
fn read_benches(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pattern: &str,
    reader: &Reader,
    mut next: impl FnMut() -> u64,
) {
    let mut buf = Vec::with_capacity(RECORD_LEN);
    for (name, way) in [
        ("read", ReadWay::Read),
        ("read_into", ReadWay::ReadInto),
        ("get", ReadWay::Get),
        ("copy_pinned", ReadWay::CopyPinned),
        ("get_pin_each", ReadWay::GetPinEach),
    ] {
        group.bench_function(format!("{pattern}/{name}"), |b| {
            b.iter_custom(|iters| read_loop(reader, way, iters, &mut buf, &mut next));
        });
    }
}

/// `seq`, `random` and `hot` reads of a fixture, in group `name`.
fn bench_fixture(c: &mut Criterion, name: &str, fixture: &Fixture, patterns: &[&str]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(RECORD_LEN as u64));
    let reader = fixture.reader();
    for &pattern in patterns {
        match pattern {
            "seq" => {
                let mut seq = fixture.sequential();
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
    let sealed = Fixture::sealed(RECORDS, RECORD_LEN);
    drain_epoch_garbage();
    bench_fixture(c, "read_sealed", &sealed, &all);
    drop(sealed);
    let active = Fixture::active(RECORDS, RECORD_LEN);
    drain_epoch_garbage();
    bench_fixture(c, "read_active", &active, &all);
    drop(active);
    let cross = Fixture::cross_segment(RECORDS, RECORD_LEN, SMALL_SEGMENT);
    assert!(cross.log.segment_files() > 400, "hundreds of segments");
    drain_epoch_garbage();
    bench_fixture(c, "read_cross_segment", &cross, &["random"]);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = read
}
criterion_main!(benches);
