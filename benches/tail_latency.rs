//! End-to-end latency of tailing: from just before `append` on the producer
//! thread to the moment a reader on another thread has the record.
//!
//! Not a criterion benchmark: a plain `main` that prints a table of
//! percentiles. The producer sends one record every [`PACE`] (busy-waiting
//! to keep the pace, and never catching up in a burst after falling
//! behind), so the log is idle between records and the reader is always
//! waiting at the tail: this measures hand-off latency, not throughput.
//! Each record's first 8 bytes hold the nanoseconds since an `Instant` both
//! threads share, read just before `append`; the reader reads the same clock
//! as soon as it has the record and keeps the difference.
//!
//! Variants, each on a fresh log:
//! - `bare queue`: no log. The producer writes each stamp into a slot of a
//!   preallocated array and publishes the count with one `Release` store;
//!   the reader spins on the count. The floor of a cross-core hand-off on
//!   this machine, measured in the same run.
//! - `spin`: a `Cursor` polled with `next_ref` in a busy loop.
//! - `park`: `Cursor::next_wait` with the reader's default spin (50 µs),
//!   then sleep. At a 20 µs pace each record arrives within the spin.
//! - `park, 200 µs pace`: the same reader with records 200 µs apart, so it
//!   spins 50 µs, goes to sleep, and the producer wakes it for each record.
//!
//! With 2 cores the producer and a spinning reader each take one, so any
//! other runnable thread (a kernel thread, another process, the log's own
//! background threads) preempts one of them, and the records sent meanwhile
//! wait for it: on this machine that is a stall of up to ~1 ms every half
//! second or so, which sets p99.9 and the maximum. So besides the
//! percentiles over all samples, the table gives them over the samples of
//! the [`BURST`]-record bursts in which neither thread was preempted
//! (involuntary context switches, from `getrusage(RUSAGE_THREAD)`, read once
//! per burst), and how many bursts that kept.
//!
//! The log is opened and left alone for a moment before each run, so that
//! the segment-preparing thread has faulted in the first 32 MiB; the 64 B
//! runs stay within those, so the preparer sleeps during them (the 256 B row
//! writes past them, and shows what its refills cost).
//!
//! `cargo bench --bench tail_latency`; `TAIL_SAMPLES=n` changes the number
//! of samples of the 20 µs rows (default 200,000; the 200 µs row takes a
//! tenth of that).

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use murakami::{Cursor, Options, Writer};

mod common;
use common::{TempLog, payload};

/// Time between two records.
const PACE: Duration = Duration::from_micros(20);
/// Records in a burst: preemptions are counted once per burst.
const BURST: usize = 1000;
/// Records sent and dropped before the samples, at the same pace (a whole
/// number of bursts).
const WARM_UP: usize = 20 * BURST;
/// How long a parking reader waits for one record before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Mode {
    Bare,
    Spin,
    Park,
}

/// What one side of a run saw.
#[derive(Default)]
struct Side {
    /// Reader: latency of each record. Producer: time each `append` took.
    times: Vec<u64>,
    /// Involuntary context switches of the thread at the end of each burst,
    /// counted from the start.
    preempted: Vec<i64>,
    /// Producer: times it found itself more than one pace behind.
    late: u64,
}

impl Side {
    fn new(total: usize) -> Side {
        Side {
            times: Vec::with_capacity(total),
            preempted: Vec::with_capacity(total / BURST + 1),
            late: 0,
        }
    }

    /// Records `time`; at the end of a burst, the preemptions so far.
    #[inline(always)]
    fn push(&mut self, time: u64, start: i64) {
        self.times.push(time);
        if self.times.len() % BURST == 0 {
            self.preempted.push(preemptions() - start);
        }
    }

    /// Preemptions during burst `b`.
    fn preempted_in(&self, b: usize) -> i64 {
        let before = if b == 0 { 0 } else { self.preempted[b - 1] };
        self.preempted[b] - before
    }

    /// Preemptions from the start of the first sampled burst to the end.
    fn preempted_sampled(&self) -> i64 {
        let before = self.preempted[WARM_UP / BURST - 1];
        self.preempted.last().copied().unwrap_or(0) - before
    }
}

/// Nanoseconds since `base`.
#[inline(always)]
fn since(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Involuntary context switches of the calling thread so far.
fn preemptions() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` through the pointer, which
    // points to a `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: zero-initialised (a valid `rusage`) and then filled in.
    unsafe { usage.assume_init() }.ru_nivcsw
}

/// Busy-waits until `next`; then moves `next` one pace on (or to one pace
/// from now if the producer fell behind). Returns whether it fell behind.
#[inline(always)]
fn pace(next: &mut Instant, every: Duration) -> bool {
    let mut now = Instant::now();
    while now < *next {
        now = Instant::now();
    }
    let late = now > *next + every;
    *next = if late { now + every } else { *next + every };
    late
}

/// The producer side: `total` records of `len` bytes, stamped.
fn produce(
    writer: &mut Writer,
    base: Instant,
    total: usize,
    len: usize,
    every: Duration,
    go: &Barrier,
) -> Side {
    let mut body = payload(len);
    let mut side = Side::new(total);
    go.wait();
    let start = preemptions();
    let mut next = Instant::now() + every;
    for _ in 0..total {
        side.late += u64::from(pace(&mut next, every));
        let stamp = since(base);
        body[..8].copy_from_slice(&stamp.to_le_bytes());
        black_box(writer.append(&body).expect("append"));
        side.push(since(base) - stamp, start);
    }
    side
}

/// The reader side: the latency of each of `total` records.
fn consume(mut cursor: Cursor, mode: Mode, base: Instant, total: usize, go: &Barrier) -> Side {
    let mut side = Side::new(total);
    let stamp = |payload: &[u8]| u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    go.wait();
    let start = preemptions();
    while side.times.len() < total {
        let record = match mode {
            Mode::Spin => cursor.next_ref().expect("next_ref"),
            Mode::Park => cursor.next_wait(PATIENCE).expect("next_wait"),
            Mode::Bare => unreachable!("no log"),
        };
        if let Some(record) = record {
            let now = since(base);
            side.push(now.saturating_sub(stamp(record.payload)), start);
        } else if let Mode::Park = mode {
            panic!("no record for {PATIENCE:?}");
        }
    }
    side
}

/// The floor: the same hand-off with no log around it. The producer writes
/// each stamp into its own slot of a preallocated array and then publishes
/// the count with one `Release` store; the reader spins on the count
/// (`Acquire`) and reads the slots below it: a bare single-producer queue,
/// so a descheduled reader sees the records late, as with the log.
fn bare(base: Instant, total: usize, every: Duration) -> (Side, Side) {
    let slots: Vec<AtomicU64> = (0..total).map(|_| AtomicU64::new(0)).collect();
    let count = AtomicUsize::new(0);
    let go = Barrier::new(2);
    thread::scope(|s| {
        let reader = thread::Builder::new().name("tail-reader".into());
        let reader = reader.spawn_scoped(s, || {
            let mut side = Side::new(total);
            go.wait();
            let start = preemptions();
            while side.times.len() < total {
                let published = count.load(Ordering::Acquire);
                while side.times.len() < published {
                    let now = since(base);
                    let stamp = slots[side.times.len()].load(Ordering::Relaxed);
                    side.push(now.saturating_sub(stamp), start);
                }
            }
            side
        });
        let reader = reader.expect("spawn the reader");
        let mut producer = Side::new(total);
        go.wait();
        let start = preemptions();
        let mut next = Instant::now() + every;
        for (i, slot) in slots.iter().enumerate() {
            producer.late += u64::from(pace(&mut next, every));
            slot.store(since(base), Ordering::Relaxed);
            count.store(i + 1, Ordering::Release);
            producer.push(0, start);
        }
        (reader.join().expect("reader thread"), producer)
    })
}

/// A run's samples, sorted.
struct Outcome {
    name: String,
    /// Every sampled latency.
    all: Vec<u64>,
    /// The latencies of the bursts in which neither thread was preempted.
    clean: Vec<u64>,
    clean_bursts: usize,
    bursts: usize,
    /// Time `append` took, every sample.
    append: Vec<u64>,
    late: u64,
    producer_preempted: i64,
    reader_preempted: i64,
}

fn run(name: &str, mode: Mode, len: usize, every: Duration, samples: usize) -> Outcome {
    let samples = samples.div_ceil(BURST) * BURST;
    let total = WARM_UP + samples;
    let base = Instant::now();
    let (reader, producer) = match mode {
        Mode::Bare => bare(base, total, every),
        Mode::Spin | Mode::Park => {
            let mut log = TempLog::open(Options::default());
            // Let the preparer fault in the first pages and prepare the next
            // segment before the producer starts.
            thread::sleep(Duration::from_millis(500));
            let cursor = log.reader.cursor(0).expect("cursor at the start");
            let go = Barrier::new(2);
            let writer = &mut log.writer;
            thread::scope(|s| {
                let go = &go;
                let reader = thread::Builder::new().name("tail-reader".into());
                let reader = reader
                    .spawn_scoped(s, move || consume(cursor, mode, base, total, go))
                    .expect("spawn the reader");
                let producer = produce(writer, base, total, len, every, go);
                (reader.join().expect("reader thread"), producer)
            })
        }
    };
    common::drain_epoch_garbage();
    let mut clean = Vec::with_capacity(samples);
    let mut clean_bursts = 0;
    for b in WARM_UP / BURST..total / BURST {
        // A reader preempted late in the burst before delays this one's
        // first records too.
        let quiet = reader.preempted_in(b) == 0
            && reader.preempted_in(b - 1) == 0
            && producer.preempted_in(b) == 0;
        if quiet {
            clean.extend_from_slice(&reader.times[b * BURST..(b + 1) * BURST]);
            clean_bursts += 1;
        }
    }
    let mut all = reader.times[WARM_UP..].to_vec();
    let mut append = producer.times[WARM_UP..].to_vec();
    for v in [&mut all, &mut clean, &mut append] {
        v.sort_unstable();
    }
    Outcome {
        name: name.to_string(),
        all,
        clean,
        clean_bursts,
        bursts: samples / BURST,
        append,
        late: producer.late,
        producer_preempted: producer.preempted_sampled(),
        reader_preempted: reader.preempted_sampled(),
    }
}

/// The value at `fraction` of sorted `v`.
fn at(v: &[u64], fraction: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v[((v.len() as f64 * fraction) as usize).min(v.len() - 1)]
}

/// What one poll at the tail costs a spinning reader, in ns: `next_ref` on
/// a cursor at the end of a log, and `Reader::end_offset` (what `wait_for`
/// checks while it spins).
fn poll_cost() -> (f64, f64) {
    const POLLS: u32 = 1_000_000;
    let mut log = TempLog::open(Options::default());
    log.writer.append(b"one").expect("append");
    let mut cursor = log.reader.cursor(1).expect("cursor at the end");
    let start = Instant::now();
    for _ in 0..POLLS {
        assert!(black_box(cursor.next_ref().expect("next_ref")).is_none());
    }
    let next_ref = start.elapsed().as_nanos() as f64 / f64::from(POLLS);
    let start = Instant::now();
    for _ in 0..POLLS {
        black_box(log.reader.end_offset());
    }
    let end_offset = start.elapsed().as_nanos() as f64 / f64::from(POLLS);
    (next_ref, end_offset)
}

/// The cost of reading the shared clock, twice in a row (median, ns).
fn clock_cost(base: Instant) -> u64 {
    let mut costs = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let a = since(base);
        let b = since(base);
        costs.push(b - a);
    }
    costs.sort_unstable();
    costs[costs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench` (and any filter); they are ignored.
    let samples: usize = std::env::var("TAIL_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let slow = Duration::from_micros(200);
    let runs = [
        ("bare queue (no log), 64 B", Mode::Bare, 64, PACE, samples),
        ("spin next_ref, 64 B", Mode::Spin, 64, PACE, samples),
        ("spin next_ref, 256 B", Mode::Spin, 256, PACE, samples),
        ("park next_wait, 64 B", Mode::Park, 64, PACE, samples),
        (
            "park next_wait, 64 B, 200 µs",
            Mode::Park,
            64,
            slow,
            samples / 10,
        ),
    ];
    let mut outcomes = Vec::new();
    for (name, mode, len, every, n) in runs {
        eprintln!("tail_latency: {name} ({n} samples)...");
        outcomes.push(run(name, mode, len, every, n));
    }
    let (next_ref, end_offset) = poll_cost();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>();
    println!(
        "\nTail latency in ns, from just before `append` to the reader having the record; \
         20 µs between records unless said; load average {}",
        load.join(" ")
    );
    println!(
        "{:<29} {:>5} {:>5} {:>6} {:>7} {:>7} | {:>5} {:>5} {:>5} {:>6} {:>7} | {:>5} {:>6} | {:>4} {:>4} {:>4}",
        "variant",
        "med",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "quiet",
        "med",
        "p99",
        "p99.9",
        "max",
        "ap99",
        "ap.max",
        "late",
        "preP",
        "preR",
    );
    for o in &outcomes {
        let (a, q) = (&o.all, &o.clean);
        println!(
            "{:<29} {:>5} {:>5} {:>6} {:>7} {:>7} | {:>5} {:>5} {:>5} {:>6} {:>7} | {:>5} {:>6} | {:>4} {:>4} {:>4}",
            o.name,
            at(a, 0.5),
            at(a, 0.99),
            at(a, 0.999),
            at(a, 0.9999),
            a.last().copied().unwrap_or(0),
            format!("{}/{}", o.clean_bursts, o.bursts),
            at(q, 0.5),
            at(q, 0.99),
            at(q, 0.999),
            q.last().copied().unwrap_or(0),
            at(&o.append, 0.99),
            o.append.last().copied().unwrap_or(0),
            o.late,
            o.producer_preempted,
            o.reader_preempted,
        );
    }
    println!(
        "Left: every sample. quiet: the {BURST}-record bursts in which neither thread was \
         preempted, and their percentiles. ap99 / ap.max: time `append` itself took. late: \
         times the producer was more than one pace behind. preP / preR: involuntary context \
         switches of the producer / reader during the samples. Reading the shared clock \
         costs ~{} ns; one poll at the tail: Cursor::next_ref {next_ref:.1} ns, \
         Reader::end_offset {end_offset:.1} ns. Chronicle Queue publishes p99 780 ns, \
         p99.9 1,200-1,500 ns.",
        clock_cost(Instant::now()),
    );
}
