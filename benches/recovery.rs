//! Time to open a log of 1k / 10k / 100k × 256 B records (default options:
//! 64 MiB segments, prefaulting on), as in the Go predecessor's
//! `Recovery/*Records`.
//!
//! - `unclean`: the log was never closed. Its files were copied while it
//!   was open, right after a `sync` (as a crash after that sync would leave
//!   them, with the segment being prepared next still there), so opening it
//!   runs crash recovery: every record's CRC, the scan for garbage after the
//!   tail, the flushes.
//! - `clean`: the files of the same log after `Writer::close`.
//! - `unclean_no_prefault`: `unclean` with `Options::prefault(false)`, which
//!   shows how much of an open is faulting in the rest of the active segment.
//!
//! Every iteration opens a fresh copy, written (outside the timing) the way
//! the library writes segments: the bytes up to the last non-zero page, then
//! `posix_fallocate` to the full size, then `fsync`, so the page cache is
//! warm but clean, as after a crash of the process (not of the machine).
//! Only `Log::open` is timed; closing the log and removing the copy are not.

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use murakami::{Log, Options};

mod common;
use common::RECORD_LEN;
use common::workloads::{check_recovery, snapshots};

fn recovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("recovery");
    group.sampling_mode(SamplingMode::Flat);
    for records in [1_000u64, 10_000, 100_000] {
        let (unclean, clean) = snapshots(records, RECORD_LEN);
        group.throughput(Throughput::Elements(records));
        let cases = [
            ("unclean", &unclean, Options::default(), false),
            ("clean", &clean, Options::default(), true),
            (
                "unclean_no_prefault",
                &unclean,
                Options::default().prefault(false),
                false,
            ),
        ];
        for (name, snapshot, options, was_clean) in cases {
            check_recovery(snapshot, &options, records, was_clean);
            group.bench_function(BenchmarkId::new(name, records), |b| {
                b.iter_batched(
                    || snapshot.restore(),
                    // The log and the directory are returned, so that they
                    // are closed and removed after the timing (in this order).
                    |dir| (Log::open(dir.path(), options.clone()).expect("open"), dir),
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = recovery
}
criterion_main!(benches);
