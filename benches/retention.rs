//! Retention: the Go predecessor's `RetentionCleanup` table (a cleanup that
//! deletes 0, 4 or 9 segments), and what a cleanup costs a producer that
//! appends at the same time (append latency percentiles with and without a
//! cleaner running).

use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion};
use murakami::{Options, Retention};

mod common;
use common::workloads::{append_latencies, log_with_sealed, percentile};

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

/// Per-append latencies (ns, sorted) of `count` 256 B appends into 4 MiB
/// segments, with or without the background cleaner removing old segments
/// all along (every millisecond, keeping 8 MiB of sealed segments).
fn cleaner_latencies(count: usize, with_cleaner: bool) -> Vec<u64> {
    let mut retention = Retention::none().max_bytes(8 << 20);
    if with_cleaner {
        retention = retention.check_every(Duration::from_millis(1));
    }
    let options = Options::default()
        .segment_size(4 << 20)
        .retention(retention);
    let (latencies, files) = append_latencies(options, 20_000, count, 256);
    println!("    ({files} segment files left on disk)");
    latencies
}

fn cleanup_interference() {
    println!("append latency with and without a concurrent cleanup (256 B, ns):");
    for with_cleaner in [false, true] {
        let lat = cleaner_latencies(400_000, with_cleaner);
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
