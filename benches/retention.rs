//! Retention: the Go predecessor's `RetentionCleanup` table (a cleanup that
//! deletes 0, 4 or 9 segments), and what a cleanup costs a producer that
//! appends at the same time (append latency percentiles with and without a
//! cleaner running).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion};
use murakami::{Options, Retention};

mod common;
use common::{TempLog, payload};

/// Segment size of the cleanup benchmarks.
const SEGMENT: u64 = 1 << 20;

/// A log with `sealed` sealed segments and an active one, and a retention
/// that removes every sealed segment.
fn log_with_sealed(sealed: usize) -> TempLog {
    let options = Options::default()
        .segment_size(SEGMENT)
        .max_record_size(64 << 10)
        .prefault(false)
        .retention(Retention::none().max_bytes(0));
    let mut log = TempLog::open(options);
    while log.segment_files() < sealed + 1 {
        log.append_n(256, 256);
    }
    log.writer.sync().expect("sync");
    log
}

fn cleanup(c: &mut Criterion) {
    let mut group = c.benchmark_group("retention_cleanup");
    for deleted in [0usize, 4, 9] {
        group.bench_with_input(BenchmarkId::new("deleted", deleted), &deleted, |b, &n| {
            b.iter_batched(
                || log_with_sealed(n),
                |mut log| {
                    let removed = log.writer.cleanup().expect("cleanup");
                    assert_eq!(removed.segments, n);
                    log
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// Per-append latencies (ns) of `count` 256 B appends into 4 MiB segments,
/// with or without the background cleaner removing old segments all along
/// (every millisecond, keeping 8 MiB of sealed segments).
fn append_latencies(count: usize, with_cleaner: bool) -> Vec<u64> {
    let mut retention = Retention::none().max_bytes(8 << 20);
    if with_cleaner {
        retention = retention.check_every(Duration::from_millis(1));
    }
    let options = Options::default()
        .segment_size(4 << 20)
        .retention(retention);
    let mut log = TempLog::open(options);
    let body = payload(256);
    for _ in 0..20_000 {
        black_box(log.writer.append(&body).expect("append"));
    }
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        black_box(log.writer.append(&body).expect("append"));
        latencies.push(start.elapsed().as_nanos() as u64);
    }
    println!("    ({} segment files left on disk)", log.segment_files());
    latencies.sort_unstable();
    latencies
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn cleanup_interference() {
    println!("append latency with and without a concurrent cleanup (256 B, ns):");
    for with_cleaner in [false, true] {
        let lat = append_latencies(400_000, with_cleaner);
        println!(
            "  {:>15}: median {} p99 {} p99.9 {} max {}",
            if with_cleaner {
                "with cleanup"
            } else {
                "without"
            },
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 0.999),
            lat[lat.len() - 1]
        );
    }
}

fn main() {
    let mut criterion = common::criterion().configure_from_args();
    cleanup(&mut criterion);
    criterion.final_summary();
    if std::env::args().any(|a| a == "--bench") {
        cleanup_interference();
    }
}
