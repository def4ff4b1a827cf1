//! Append throughput, sustained over many segment rolls.
//!
//! Each benchmark appends into a log with 16 MiB segments, so a sample of a
//! few hundred megabytes crosses a dozen rolls and their cost (waiting for
//! the prepared segment, installing it, swapping the segment list) is in the
//! figure. A log is replaced by a fresh one, outside the timed loops, once
//! 256 MiB have been appended to it, which keeps the disk use bounded; opening
//! and closing logs is never timed.
//!
//! Figures are per record (the throughput is the payload bytes), as in the Go
//! predecessor's `Append/*` benchmarks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use murakami::{Options, Writer};

mod common;
use common::workloads::append_n;
use common::{TempLog, frame_len, payload, scale};

/// Segment size of the append benchmarks.
const SEGMENT_SIZE: u64 = 16 << 20;
/// Bytes appended to one log before it is replaced by a fresh one.
const LOG_BYTES: u64 = 256 << 20;
/// Records per `append_batch` call.
const BATCH: usize = 64;

/// A log that is appended to across criterion's calls, and replaced (outside
/// the timed loops) when it has taken [`LOG_BYTES`].
struct Churn {
    options: Options,
    log: Option<TempLog>,
    written: u64,
}

impl Churn {
    fn new(options: Options) -> Churn {
        Churn {
            options,
            log: None,
            written: 0,
        }
    }

    /// The writer of a log with room for at least one more record of
    /// `frame` bytes, and how many such records still fit in its budget.
    fn writer(&mut self, frame: u64) -> (&mut Writer, u64) {
        if self.log.is_none() || self.written + frame > LOG_BYTES {
            // Close the old log (this syncs it) and free it before opening
            // the next one.
            self.log = None;
            common::drain_epoch_garbage();
            self.log = Some(TempLog::open(self.options.clone()));
            self.written = 0;
        }
        let room = (LOG_BYTES - self.written) / frame;
        let log = self.log.as_mut().expect("opened above");
        (&mut log.writer, room)
    }

    /// Appends `records` records of `body`, one call each; returns the time
    /// spent in the append loops only.
    fn append(&mut self, records: u64, body: &[u8]) -> Duration {
        let frame = frame_len(body.len());
        let mut elapsed = Duration::ZERO;
        let mut left = records;
        while left > 0 {
            let (writer, room) = self.writer(frame);
            let n = left.min(room);
            elapsed += append_n(writer, n, body);
            self.written += n * frame;
            left -= n;
        }
        elapsed
    }

    /// Appends at least `records` records in `append_batch` calls of
    /// `batch.len()`; returns the time spent in the calls, scaled to
    /// `records`.
    fn append_batches(&mut self, records: u64, batch: &[&[u8]]) -> Duration {
        let per_call = batch.len() as u64;
        let frame = frame_len(batch[0].len()) * per_call;
        let calls = records.div_ceil(per_call);
        let mut elapsed = Duration::ZERO;
        let mut left = calls;
        while left > 0 {
            let (writer, room) = self.writer(frame);
            let n = left.min(room);
            let start = Instant::now();
            for _ in 0..n {
                black_box(writer.append_batch(black_box(batch)).expect("append_batch"));
            }
            elapsed += start.elapsed();
            self.written += n * frame;
            left -= n;
        }
        scale(elapsed, calls * per_call, records)
    }
}

fn options() -> Options {
    Options::default().segment_size(SEGMENT_SIZE)
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(1));
    for len in [64usize, 256, 512, 1024] {
        let body = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        let mut churn = Churn::new(options());
        group.bench_function(BenchmarkId::new("one", len), |b| {
            b.iter_custom(|iters| churn.append(iters, &body));
        });
    }

    // The same appends with prefaulting off: the producer takes every page
    // fault itself. Shows what the preparing thread buys on this machine.
    let body = payload(256);
    group.throughput(Throughput::Bytes(256));
    let mut churn = Churn::new(options().prefault(false));
    group.bench_function(BenchmarkId::new("one_no_prefault", 256), |b| {
        b.iter_custom(|iters| churn.append(iters, &body));
    });

    // 64 records of 256 B per `append_batch` call; figures per record.
    let batch = vec![body.as_slice(); BATCH];
    let mut churn = Churn::new(options());
    group.bench_function(BenchmarkId::new("batch64", 256), |b| {
        b.iter_custom(|iters| churn.append_batches(iters, &batch));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = append
}
criterion_main!(benches);
