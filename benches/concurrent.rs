//! Reads while a producer appends, and many readers at once.
//!
//! - `read_while_appending`: one thread reads the first 100k × 256 B records
//!   of a log, at random (`read_into`, or zero-copy `get` with one guard per
//!   1024 reads) or in order (zero-copy `get`), either alone (`idle`) or
//!   while a producer thread appends 256 B records as fast as it can
//!   (`producer`). Both variants run
//!   the same code on the same kind of log, so their ratio is the cost of the
//!   producer (on two cores: mostly the CPU it and the segment-preparing
//!   thread take).
//! - `read_concurrent`: 1, 4, 8 or 16 threads read at random (`read_into`)
//!   from one log; the figure is wall time over all their reads (aggregate
//!   throughput), as in the Go predecessor's `ReadConcurrent/ReadersN`.
//!   `writer+readers/N` adds a producer, like its
//!   `ReadWithConcurrentWrites/NoTracking/1WriterNReaders`.
//!
//! The producer appends into 16 MiB segments. A log takes at most 1 GiB of
//! appends; it is replaced by a fresh one (outside the timing) before a
//! sample when it has taken more than half of that, so every sample has at
//! least 512 MiB of room. Should the producer still run out of room during a
//! sample it stops appending; the lines printed after each benchmark say
//! how fast it appended and whether that happened.

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use murakami::Options;

mod common;
use common::workloads::{ProducerStats, Work, read_threads};
use common::{RECORD_LEN, RECORDS, TempLog, frame_len, permutation, scale};

/// Segment size of the logs the producer appends to.
const SEGMENT_SIZE: u64 = 16 << 20;
/// Bytes the producer may append to one log.
const LOG_BYTES: u64 = 1 << 30;
/// Fewest reads timed in one call: enough that starting and joining the
/// threads (up to a scheduler tick each when the producer holds a core) is
/// noise. Criterion's estimate of the time per read counts the setup of a
/// call (replacing a full log), so it may ask for fewer; the time is then
/// scaled back to what it asked for.
const MIN_READS: u64 = 200_000;

/// A log whose first [`RECORDS`] records are read while a producer may
/// append more.
struct Busy {
    log: Option<TempLog>,
    /// Bytes appended past the first records.
    appended: u64,
}

impl Busy {
    fn new() -> Busy {
        Busy {
            log: None,
            appended: 0,
        }
    }

    /// The log, replaced by a fresh one if the producer has used half of
    /// its room; and the records the producer may still append.
    fn log(&mut self) -> (&mut TempLog, u64) {
        if self.log.is_none() || self.appended > LOG_BYTES / 2 {
            self.log = None;
            let options = Options::default().segment_size(SEGMENT_SIZE);
            common::drain_epoch_garbage();
            self.log = Some(TempLog::filled(options, RECORDS, RECORD_LEN));
            self.appended = 0;
        }
        let room = (LOG_BYTES - self.appended) / frame_len(RECORD_LEN);
        (self.log.as_mut().expect("opened above"), room)
    }
}

/// One benchmark: `threads` readers doing `work`, with or without a
/// producer, on a [`Busy`] log.
fn bench_reads(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    function: &str,
    parameter: &str,
    work: Work,
    threads: usize,
    with_producer: bool,
    offsets: &[u64],
) {
    let mut busy = Busy::new();
    busy.log(); // fill the first log before criterion's warm-up
    let mut stats = ProducerStats::default();
    group.bench_function(BenchmarkId::new(function, parameter), |b| {
        b.iter_custom(|iters| {
            let reads = iters.max(MIN_READS);
            let (log, room) = busy.log();
            let reader = log.reader.clone();
            let producer = with_producer.then_some((&mut log.writer, RECORD_LEN, room));
            let (elapsed, appended) =
                read_threads(&reader, work, threads, reads, offsets, producer, &mut stats);
            busy.appended += appended * frame_len(RECORD_LEN);
            scale(elapsed, reads, iters)
        });
    });
    stats.report(&format!("{function}/{parameter}"));
}

fn read_while_appending(c: &mut Criterion) {
    let offsets = permutation(0, RECORDS, 0x5EED);
    let mut group = c.benchmark_group("read_while_appending");
    group.throughput(Throughput::Bytes(RECORD_LEN as u64));
    group.sampling_mode(SamplingMode::Flat);
    for (name, work) in [
        ("random_read_into", Work::RandomReadInto),
        ("random_get", Work::RandomGet),
        ("seq_get", Work::SequentialGet),
    ] {
        for (variant, with_producer) in [("idle", false), ("producer", true)] {
            bench_reads(&mut group, name, variant, work, 1, with_producer, &offsets);
        }
    }
    group.finish();
}

fn read_concurrent(c: &mut Criterion) {
    let offsets = permutation(0, RECORDS, 0xC0FFEE);
    let mut group = c.benchmark_group("read_concurrent");
    group.throughput(Throughput::Bytes(RECORD_LEN as u64));
    group.sampling_mode(SamplingMode::Flat);
    for threads in [1usize, 4, 8, 16] {
        let parameter = threads.to_string();
        let work = Work::RandomReadInto;
        bench_reads(
            &mut group, "readers", &parameter, work, threads, false, &offsets,
        );
    }
    for threads in [4usize, 8] {
        let parameter = threads.to_string();
        let work = Work::RandomReadInto;
        bench_reads(
            &mut group,
            "writer+readers",
            &parameter,
            work,
            threads,
            true,
            &offsets,
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = read_while_appending, read_concurrent
}
criterion_main!(benches);
