//! Durability: what making records durable costs, and what many producers
//! get out of one log.
//!
//! - `durable`: 256 B appends through one [`Writer`] with
//!   `SyncPolicy::EveryRecords(n)`, n = 1 / 10 / 100 / 1000; the figure is
//!   per append (sync included), as in the Go predecessor's
//!   `AppendWithSync/EveryN`. In the same group, the floor those syncs stand
//!   on: one bare `msync(MS_SYNC)` of the range of a freshly written 288-byte
//!   frame (a 256 B record's frame) in a fallocated file faulted in with
//!   `MADV_POPULATE_WRITE`, as the library prepares segments
//!   (`floor/frame`), and the same with 8 bytes of the first page written
//!   too and the flush started at byte 0 (`floor/header+frame`: what a sync
//!   covers when it also carries the segment's checkpoint, as the library's
//!   syncs do). Each append is compared with the floor in
//!   one run: the sync figures move by 20x when the machine is loaded.
//! - `interval`: 256 B appends with `SyncPolicy::Interval` (10 / 50 / 100
//!   ms) against the same appends with `SyncPolicy::Explicit` (nothing ever
//!   syncs): what the background syncer costs the producer, as in the Go
//!   predecessor's `AppendWithSync/EveryNms`.
//! - `writers`: 1 / 4 / 8 / 16 threads append 256 B records through one
//!   [`SharedWriter`] (`append`, no sync); the figure is wall time over all
//!   their appends (aggregate), as in the Go predecessor's
//!   `AppendConcurrent/WritersN`.
//! - `durable_writers`: 1 / 4 / 16 threads each append 256 B records with
//!   `SharedWriter::append_durable` (each call returns once its record is
//!   durable; concurrent calls share flushes): aggregate durable appends per
//!   second (criterion's `elem/s`) and wall time per append.
//!
//! Every log is replaced by a fresh one, outside the timing, once 256 MiB
//! have been appended to it, which keeps the disk use bounded; opening and
//! closing logs (closing syncs) is never timed. At the end of each group a
//! table gives the mean time per operation over every timed call (warm-up
//! included) and its ratio to the group's baseline, all from this run.

use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use murakami::{Options, SyncPolicy};

mod common;
use common::workloads::{MsyncFloor, SharedLog, append_n, append_threads, sustained_appends};
use common::{TempLog, frame_len, payload, scale};

/// Payload length of every record appended here.
const LEN: usize = 256;
/// Bytes appended to one log before it is replaced by a fresh one.
const LOG_BYTES: u64 = 256 << 20;
/// Fewest appends timed in one call of the `writers` benchmarks: enough
/// that starting and joining up to 16 threads is noise.
const MIN_APPENDS: u64 = 100_000;
/// Fewest durable appends timed in one call of `durable_writers`: 128 per
/// thread at 16 threads, so that the start (threads released together) and
/// the end (the last threads appending with fewer to share a flush) are a
/// small part of each call.
const MIN_DURABLE: u64 = 2048;
/// How long each policy appends per round in `interval_interleaved`.
const INTERLEAVED_ROUND: Duration = Duration::from_secs(1);
/// A log that takes appends across criterion's calls and is replaced by a
/// fresh one (outside the timing) when it has taken [`LOG_BYTES`].
struct Churn<L> {
    open: Box<dyn Fn() -> L>,
    log: Option<L>,
    written: u64,
}

impl<L> Churn<L> {
    fn new(open: impl Fn() -> L + 'static) -> Churn<L> {
        Churn {
            open: Box::new(open),
            log: None,
            written: 0,
        }
    }

    /// Opens the first log now, before criterion's warm-up.
    fn ready(mut self) -> Churn<L> {
        self.log = Some((self.open)());
        self
    }

    /// Runs `records` appends of `frame` bytes each through `timed`, which
    /// appends `n` records to the log it is given and returns the time that
    /// took. A call that fits in one log's budget runs on one log (a fresh
    /// one if the current one has no room for all of it); a larger one runs
    /// in chunks of a whole log each.
    fn run(
        &mut self,
        records: u64,
        frame: u64,
        mut timed: impl FnMut(&mut L, u64) -> Duration,
    ) -> Duration {
        let per_log = LOG_BYTES / frame;
        let mut elapsed = Duration::ZERO;
        let mut left = records;
        while left > 0 {
            let n = left.min(per_log);
            if self.log.is_none() || self.written + n * frame > LOG_BYTES {
                // Close the old log (this syncs it) and free it first.
                self.log = None;
                common::drain_epoch_garbage();
                self.log = Some((self.open)());
                self.written = 0;
            }
            let log = self.log.as_mut().expect("opened above");
            elapsed += timed(log, n);
            self.written += n * frame;
            left -= n;
        }
        elapsed
    }
}

/// Mean time per operation over every timed call of each benchmark of a
/// group, printed with ratios to the first one when the group ends.
#[derive(Default)]
struct Tally {
    rows: Vec<(String, Duration, u64)>,
}

impl Tally {
    fn row(&mut self, id: &str) -> usize {
        self.rows.push((id.to_string(), Duration::ZERO, 0));
        self.rows.len() - 1
    }

    fn add(&mut self, row: usize, elapsed: Duration, ops: u64) {
        self.rows[row].1 += elapsed;
        self.rows[row].2 += ops;
    }

    fn mean_ns(&self, row: usize) -> f64 {
        let (_, elapsed, ops) = &self.rows[row];
        elapsed.as_nanos() as f64 / (*ops).max(1) as f64
    }

    fn print(&self, group: &str, baseline: usize) {
        if self.rows[baseline].2 == 0 {
            return; // filtered out on the command line
        }
        println!("\n{group}: mean over every timed call of this run (warm-up included)");
        println!(
            "  {:<28} {:>14} {:>12} {:>10}",
            "benchmark", "ns/op", "ops/s", "ratio"
        );
        let base = self.mean_ns(baseline);
        for (i, (id, _, ops)) in self.rows.iter().enumerate() {
            if *ops == 0 {
                continue;
            }
            let ns = self.mean_ns(i);
            println!(
                "  {:<28} {:>14.1} {:>12.0} {:>9.2}x",
                id,
                ns,
                1e9 / ns,
                ns / base
            );
        }
        println!();
    }
}

fn flat_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat);
    group
}

fn durable(c: &mut Criterion) {
    let body = payload(LEN);
    let frame = frame_len(LEN);
    let mut tally = Tally::default();
    let mut group = flat_group(c, "durable");
    group.throughput(Throughput::Bytes(LEN as u64));
    for every in [1u64, 10, 100, 1000] {
        let id = format!("every/{every}");
        let row = tally.row(&id);
        let options = Options::default().sync_policy(SyncPolicy::EveryRecords(every));
        let mut churn = Churn::new(move || TempLog::open(options.clone())).ready();
        group.bench_function(BenchmarkId::new("every", every), |b| {
            b.iter_custom(|iters| {
                let elapsed = churn.run(iters, frame, |log, n| append_n(&mut log.writer, n, &body));
                tally.add(row, elapsed, iters);
                elapsed
            });
        });
    }
    let floor = tally.row("floor/frame");
    for (name, with_header, row) in [
        ("frame", false, floor),
        ("header+frame", true, tally.row("floor/header+frame")),
    ] {
        let mut floor = MsyncFloor::new(frame as usize, with_header);
        group.throughput(Throughput::Bytes(frame));
        group.bench_function(BenchmarkId::new("floor", name), |b| {
            b.iter_custom(|iters| {
                let elapsed = floor.run(iters);
                tally.add(row, elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
    tally.print("durable (ratio to floor/frame)", floor);
}

fn interval(c: &mut Criterion) {
    let body = payload(LEN);
    let frame = frame_len(LEN);
    let mut tally = Tally::default();
    let mut group = flat_group(c, "interval");
    group.throughput(Throughput::Bytes(LEN as u64));
    let policies = [
        ("explicit", SyncPolicy::Explicit),
        ("10ms", SyncPolicy::Interval(Duration::from_millis(10))),
        ("50ms", SyncPolicy::Interval(Duration::from_millis(50))),
        ("100ms", SyncPolicy::Interval(Duration::from_millis(100))),
    ];
    for (name, policy) in policies {
        let row = tally.row(name);
        let options = Options::default().sync_policy(policy);
        let mut churn = Churn::new(move || TempLog::open(options.clone())).ready();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let elapsed = churn.run(iters, frame, |log, n| append_n(&mut log.writer, n, &body));
                tally.add(row, elapsed, iters);
                elapsed
            });
        });
    }
    group.finish();
    tally.print("interval (ratio to explicit)", 0);
    interval_interleaved(&policies);
}

/// The interval policies again, taking turns: round after round, each
/// policy appends for [`INTERLEAVED_ROUND`] to a fresh log, so that
/// whatever the machine does meanwhile (write-back of earlier logs, other
/// tenants) falls on every policy alike rather than on whichever ran last,
/// and so that even the 100 ms policy syncs several times while it is
/// timed (a short run would end before its first sync). Prints the median
/// time per append of each and its throughput relative to `explicit` (the
/// first policy).
fn interval_interleaved(policies: &[(&str, SyncPolicy)]) {
    const ROUNDS: usize = 3;
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
    let mut shootdowns: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
    for _ in 0..ROUNDS {
        for (i, (_, policy)) in policies.iter().enumerate() {
            let run = sustained_appends(*policy, LEN, INTERLEAVED_ROUND);
            times[i].push(run.ns_per_append);
            shootdowns[i].extend(run.shootdowns_per_s);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let medians: Vec<f64> = times.iter_mut().map(|v| median(v).unwrap_or(0.0)).collect();
    println!(
        "interval, interleaved: {ROUNDS} rounds of {:?} per policy, median ns per append \
         (throughput relative to explicit), TLB shootdowns per second on all CPUs \
         (/proc/interrupts; writing back a page still mapped writable costs one)",
        INTERLEAVED_ROUND
    );
    for (((name, _), m), tlb) in policies.iter().zip(&medians).zip(&mut shootdowns) {
        let tlb = median(tlb).map_or("n/a".to_string(), |t| format!("{t:.0}/s"));
        println!("  {name:<10} {m:8.1} ns  {:.2}x  {tlb}", medians[0] / m);
    }
}

/// `threads` threads appending through one [`SharedWriter`]: aggregate wall
/// time per append, each call timing at least `min` appends.
fn shared_appends(
    group: &mut BenchmarkGroup<'_, WallTime>,
    tally: &mut Tally,
    threads: usize,
    durable: bool,
    min: u64,
) {
    let body = payload(LEN);
    let frame = frame_len(LEN);
    let row = tally.row(&threads.to_string());
    let mut churn = Churn::new(|| SharedLog::open(Options::default())).ready();
    group.bench_function(BenchmarkId::from_parameter(threads), |b| {
        b.iter_custom(|iters| {
            let n = iters.max(min);
            let elapsed = churn.run(n, frame, |log, n| {
                append_threads(&log.writer, threads, n, &body, durable)
            });
            tally.add(row, elapsed, n);
            scale(elapsed, n, iters)
        });
    });
}

fn writers(c: &mut Criterion) {
    let mut tally = Tally::default();
    let mut group = flat_group(c, "writers");
    group.throughput(Throughput::Bytes(LEN as u64));
    for threads in [1usize, 4, 8, 16] {
        shared_appends(&mut group, &mut tally, threads, false, MIN_APPENDS);
    }
    group.finish();
    tally.print("writers (ratio to 1 thread)", 0);
}

fn durable_writers(c: &mut Criterion) {
    let mut tally = Tally::default();
    let mut group = flat_group(c, "durable_writers");
    group.throughput(Throughput::Elements(1));
    for threads in [1usize, 4, 16] {
        shared_appends(&mut group, &mut tally, threads, true, MIN_DURABLE);
    }
    group.finish();
    tally.print("durable_writers (ratio to 1 thread; ops/s = aggregate)", 0);
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = durable, interval, writers, durable_writers
}
criterion_main!(benches);
