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

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use murakami::{Options, Reader, Writer};

mod common;
use common::{RECORD_LEN, RECORDS, TempLog, Walk, frame_len, payload, permutation, scale, share};

/// Segment size of the logs the producer appends to.
const SEGMENT_SIZE: u64 = 16 << 20;
/// Bytes the producer may append to one log.
const LOG_BYTES: u64 = 1 << 30;
/// Zero-copy reads made under one guard.
const PIN_BATCH: u64 = 1024;
/// Fewest reads timed in one call: enough that starting and joining the
/// threads (up to a scheduler tick each when the producer holds a core) is
/// noise. Criterion's estimate of the time per read counts the setup of a
/// call (replacing a full log), so it may ask for fewer; the time is then
/// scaled back to what it asked for.
const MIN_READS: u64 = 200_000;

/// What the measured threads do.
#[derive(Clone, Copy, Debug)]
enum Work {
    /// Random offsets among the first [`RECORDS`], `read_into` a reused
    /// buffer.
    RandomReadInto,
    /// The same offsets, zero-copy `get`, one guard per [`PIN_BATCH`] reads.
    RandomGet,
    /// Offsets `0..RECORDS` in order, zero-copy `get`.
    SequentialGet,
}

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

/// How the producer fared during the samples of one benchmark.
#[derive(Debug, Default)]
struct ProducerStats {
    samples: u64,
    appended: u64,
    busy: Duration,
    out_of_room: u64,
}

impl ProducerStats {
    fn report(&self, id: &str) {
        if self.samples == 0 {
            return;
        }
        let rate = self.appended as f64 / self.busy.as_secs_f64().max(1e-9);
        println!(
            "{id}: producer appended {:.2}M records/s while the readers ran; \
             ran out of room in {} of {} calls",
            rate / 1e6,
            self.out_of_room,
            self.samples,
        );
    }
}

/// Appends 256 B records until `stop`, or until `room` records are in.
/// Returns how many it appended and whether it ran out of room.
fn produce(writer: &mut Writer, room: u64, stop: &AtomicBool, go: &Barrier) -> (u64, bool) {
    let body = payload(RECORD_LEN);
    go.wait();
    let mut appended = 0;
    while !stop.load(Ordering::Relaxed) {
        if appended + 64 > room {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_micros(100));
            }
            return (appended, true);
        }
        for _ in 0..64 {
            black_box(writer.append(&body).expect("append"));
        }
        appended += 64;
    }
    (appended, false)
}

/// One measured thread's reads: `n` of them, starting at `start` in the
/// offset sequence.
fn read_work(reader: &Reader, work: Work, n: u64, offsets: &[u64], start: usize) {
    match work {
        Work::RandomReadInto => {
            let mut buf = Vec::with_capacity(RECORD_LEN);
            let mut walk = Walk::new(offsets, start);
            for _ in 0..n {
                black_box(
                    reader
                        .read_into(walk.next_offset(), &mut buf)
                        .expect("read"),
                );
            }
            black_box(buf);
        }
        Work::RandomGet => {
            let mut walk = Walk::new(offsets, start);
            let mut left = n;
            while left > 0 {
                let batch = left.min(PIN_BATCH);
                let guard = reader.pin();
                for _ in 0..batch {
                    let record = reader.get(walk.next_offset(), &guard).expect("get");
                    black_box(record.payload);
                }
                left -= batch;
            }
        }
        Work::SequentialGet => {
            let mut offset = start as u64 % RECORDS;
            let mut left = n;
            while left > 0 {
                let batch = left.min(PIN_BATCH);
                let guard = reader.pin();
                for _ in 0..batch {
                    let record = reader.get(offset, &guard).expect("get");
                    black_box(record.payload);
                    offset += 1;
                    if offset == RECORDS {
                        offset = 0;
                    }
                }
                left -= batch;
            }
        }
    }
}

/// Runs `iters` reads split over `threads` threads, with a producer
/// appending to `writer` if one is given; returns the wall time from the
/// moment all threads are released until the last reader is done.
fn run(
    reader: &Reader,
    work: Work,
    threads: usize,
    iters: u64,
    offsets: &[u64],
    producer: Option<(&mut Writer, u64)>,
    stats: &mut ProducerStats,
) -> (Duration, u64) {
    let stop = AtomicBool::new(false);
    let go = Barrier::new(threads + 1 + usize::from(producer.is_some()));
    thread::scope(|s| {
        let producer = producer.map(|(writer, room)| {
            let (stop, go) = (&stop, &go);
            s.spawn(move || produce(writer, room, stop, go))
        });
        let readers: Vec<_> = (0..threads)
            .map(|i| {
                let go = &go;
                let reader = reader.clone();
                let n = share(iters, threads, i);
                let start = i * offsets.len() / threads;
                s.spawn(move || {
                    go.wait();
                    read_work(&reader, work, n, offsets, start);
                })
            })
            .collect();
        go.wait();
        let start = Instant::now();
        for reader in readers {
            reader.join().expect("reader thread");
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        let appended = match producer {
            Some(p) => {
                let (appended, out_of_room) = p.join().expect("producer thread");
                stats.samples += 1;
                stats.appended += appended;
                stats.busy += elapsed;
                stats.out_of_room += u64::from(out_of_room);
                appended
            }
            None => 0,
        };
        (elapsed, appended)
    })
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
            let producer = with_producer.then_some((&mut log.writer, room));
            let (elapsed, appended) =
                run(&reader, work, threads, reads, offsets, producer, &mut stats);
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
