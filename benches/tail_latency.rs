//! End-to-end latency of tailing: from just before `append` on the producer
//! thread to the moment a reader, on another thread or in another process,
//! has the record.
//!
//! Not a criterion benchmark: a plain `main` that prints a table of
//! percentiles. The producer sends one record every `every` (busy-waiting
//! to keep the pace, and never catching up in a burst after falling
//! behind), so the log is idle between records and the reader is always
//! waiting at the tail: this measures hand-off latency, not throughput.
//! Each record's first 8 bytes hold `CLOCK_MONOTONIC` in nanoseconds, read
//! just before `append`; the reader reads the same clock as soon as it has
//! the record and keeps the difference. Both ends read the raw clock (not
//! an `Instant`), so the stamps compare across processes too.
//!
//! Variants, each on a fresh log:
//! - `bare queue`: no log. The producer writes each stamp into a slot of a
//!   preallocated array and publishes the count with one `Release` store;
//!   the reader spins on the count. The floor of a cross-core hand-off on
//!   this machine, measured in the same run.
//! - `spin next_ref`: a `Cursor` polled with `next_ref` in a busy loop.
//! - `park next_wait`: `Cursor::next_wait` with the reader's default spin
//!   (50 µs), then sleep. At a 20 µs pace each record arrives within the
//!   spin; at a 200 µs pace the reader spins 50 µs, goes to sleep, and the
//!   producer wakes it for each record.
//! - `thread` / `process`, 60 B at 10 µs (100k records/s, the workload of
//!   Chronicle Queue's published figure): `Cursor::next_wait` on a reader
//!   in a thread of the writer's process (`Log::open`'s reader) or in
//!   another process (`Reader::open`, this binary run again as a helper),
//!   spinning without end (`spin ∞`: `Reader::spin(Duration::MAX)`) or not
//!   at all (`spin 0`: it sleeps as soon as a wait finds nothing, after the
//!   64 polls `wait_for` makes before it first looks at the clock). The
//!   200 µs rows have a sleeping reader woken for every record: there a
//!   wake-up the producer failed to give would show as a latency of about
//!   one pace (the next record's wake-up), counted as `slow`.
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
//! and 60 B runs stay within those, so the preparer sleeps during them (the
//! 256 B row writes past them, and shows what its refills cost).
//!
//! `TAIL_PIN=1` keeps the producer on CPU 0 and the reader (thread or
//! process) on CPU 1, as latency benchmarks elsewhere usually do; the log's
//! background threads stay free.
//!
//! `cargo bench --bench tail_latency [-- FILTER...]`: only the variants
//! whose name contains one of the filters (`-- "60 B"`: the 100k/s rows,
//! `-- process`: the other-process rows). `TAIL_SAMPLES=n` changes the
//! number of samples of the 20 µs and 10 µs rows (default 200,000; the
//! 200 µs rows take a tenth of that).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use murakami::{Cursor, Options, Reader, Writer};

mod common;
use common::process::{self, Helper, Switches, monotonic_ns, pin_to, steal_ms, switches};
use common::{TempLog, payload};

/// Time between two records, in the 20 µs rows.
const PACE: Duration = Duration::from_micros(20);
/// Time between two records at 100k records per second.
const PACE_100K: Duration = Duration::from_micros(10);
/// Records in a burst: preemptions are counted once per burst.
const BURST: usize = 1000;
/// Records sent and dropped before the samples, at the same pace (a whole
/// number of bursts).
const WARM_UP: usize = 20 * BURST;
/// How long a waiting reader waits for one record before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// The helper role of a reader in another process, and what it is told.
const READER_ROLE: &str = "tail-reader";
const DIR_VAR: &str = "TAIL_DIR";
const MODE_VAR: &str = "TAIL_MODE";
const TOTAL_VAR: &str = "TAIL_TOTAL";
/// Set (to anything): the producer runs on CPU 0 and the reader (thread or
/// process) on CPU 1. Helpers inherit it with the environment.
const PIN_VAR: &str = "TAIL_PIN";

/// Whether [`PIN_VAR`] is set.
fn pinned() -> bool {
    std::env::var_os(PIN_VAR).is_some()
}

/// Under [`PIN_VAR`], keeps the calling thread on `cpu`.
fn pin_if_asked(cpu: usize) {
    if pinned() {
        pin_to(Some(cpu));
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// No log: a bare queue.
    Bare,
    /// `Cursor::next_ref` in a busy loop.
    Spin,
    /// `Cursor::next_wait`, the reader spinning this long first (`None`:
    /// the reader's default).
    Wait(Option<Duration>),
}

impl Mode {
    /// For a helper's environment.
    fn encode(self) -> String {
        match self {
            Mode::Bare => "bare".into(),
            Mode::Spin => "spin".into(),
            Mode::Wait(None) => "wait".into(),
            Mode::Wait(Some(Duration::MAX)) => "wait-max".into(),
            Mode::Wait(Some(spin)) => format!("wait-{}", spin.as_nanos()),
        }
    }

    fn decode(s: &str) -> Mode {
        match s {
            "bare" => Mode::Bare,
            "spin" => Mode::Spin,
            "wait" => Mode::Wait(None),
            "wait-max" => Mode::Wait(Some(Duration::MAX)),
            _ => {
                let nanos = s.strip_prefix("wait-").and_then(|n| n.parse().ok());
                Mode::Wait(Some(Duration::from_nanos(nanos.expect("a mode"))))
            }
        }
    }

    /// `reader` as this mode wants it.
    fn reader(self, reader: Reader) -> Reader {
        match self {
            Mode::Wait(Some(spin)) => reader.spin(spin),
            _ => reader,
        }
    }
}

/// What one side of a run saw.
#[derive(Default)]
struct Side {
    /// Reader: latency of each record. Producer: time each `append` took.
    times: Vec<u64>,
    /// Context switches of the thread at the end of each burst, counted
    /// from the start.
    switches: Vec<Switches>,
    /// Producer: times it found itself more than one pace behind.
    late: u64,
}

impl Side {
    fn new(total: usize) -> Side {
        Side {
            times: Vec::with_capacity(total),
            switches: Vec::with_capacity(total / BURST + 1),
            late: 0,
        }
    }

    /// Records `time`; at the end of a burst, the context switches since
    /// `start`.
    #[inline(always)]
    fn push(&mut self, time: u64, start: Switches) {
        self.times.push(time);
        if self.times.len() % BURST == 0 {
            let now = switches();
            self.switches.push(Switches {
                voluntary: now.voluntary - start.voluntary,
                involuntary: now.involuntary - start.involuntary,
            });
        }
    }

    /// Preemptions during burst `b`.
    fn preempted_in(&self, b: usize) -> i64 {
        let before = if b == 0 {
            0
        } else {
            self.switches[b - 1].involuntary
        };
        self.switches[b].involuntary - before
    }

    /// Context switches from the start of the first sampled burst to the
    /// end.
    fn switches_sampled(&self) -> Switches {
        let before = self.switches[WARM_UP / BURST - 1];
        let end = self.switches.last().copied().unwrap_or_default();
        Switches {
            voluntary: end.voluntary - before.voluntary,
            involuntary: end.involuntary - before.involuntary,
        }
    }

    /// For a helper's report: counts, then the values, little-endian.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |v: u64| out.extend_from_slice(&v.to_le_bytes());
        put(self.late);
        put(self.times.len() as u64);
        self.times.iter().for_each(|&t| put(t));
        put(self.switches.len() as u64);
        for s in &self.switches {
            put(s.voluntary as u64);
            put(s.involuntary as u64);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Side {
        let mut words = bytes
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        let mut take = || words.next().expect("a whole report");
        let late = take();
        let times = (0..take()).map(|_| take()).collect();
        let switches = (0..take())
            .map(|_| Switches {
                voluntary: take() as i64,
                involuntary: take() as i64,
            })
            .collect();
        Side {
            times,
            switches,
            late,
        }
    }
}

/// The shared clock, in ns.
#[inline(always)]
fn now() -> u64 {
    monotonic_ns()
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

/// The producer side: `total` records of `len` bytes, stamped, starting
/// one pace after `go` returns.
fn produce(
    writer: &mut Writer,
    total: usize,
    len: usize,
    every: Duration,
    go: impl FnOnce(),
) -> Side {
    let mut body = payload(len);
    let mut side = Side::new(total);
    go();
    let start = switches();
    let mut next = Instant::now() + every;
    for _ in 0..total {
        side.late += u64::from(pace(&mut next, every));
        let stamp = now();
        body[..8].copy_from_slice(&stamp.to_le_bytes());
        black_box(writer.append(&body).expect("append"));
        side.push(now() - stamp, start);
    }
    side
}

/// The reader side: the latency of each of `total` records, from when `go`
/// returns.
fn consume(mut cursor: Cursor, mode: Mode, total: usize, go: impl FnOnce()) -> Side {
    let mut side = Side::new(total);
    let stamp = |payload: &[u8]| u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
    go();
    let start = switches();
    while side.times.len() < total {
        let offset = cursor.next_offset();
        let record = match mode {
            Mode::Spin => cursor.next_ref().expect("next_ref"),
            Mode::Wait(_) => cursor.next_wait(PATIENCE).expect("next_wait"),
            Mode::Bare => unreachable!("no log"),
        };
        if let Some(record) = record {
            let now = now();
            side.push(now.saturating_sub(stamp(record.payload)), start);
        } else if let Mode::Wait(_) = mode {
            panic!(
                "waited {PATIENCE:?} for offset {offset} of the {total} the producer appends \
                 at a steady pace: a missed wake-up, or a stuck producer"
            );
        }
    }
    side
}

/// The floor: the same hand-off with no log around it. The producer writes
/// each stamp into its own slot of a preallocated array and then publishes
/// the count with one `Release` store; the reader spins on the count
/// (`Acquire`) and reads the slots below it: a bare single-producer queue,
/// so a descheduled reader sees the records late, as with the log.
fn bare(total: usize, every: Duration) -> (Side, Side) {
    let slots: Vec<AtomicU64> = (0..total).map(|_| AtomicU64::new(0)).collect();
    let count = AtomicUsize::new(0);
    let go = Barrier::new(2);
    thread::scope(|s| {
        let reader = thread::Builder::new().name("tail-reader".into());
        let reader = reader.spawn_scoped(s, || {
            pin_if_asked(1);
            let mut side = Side::new(total);
            go.wait();
            let start = switches();
            while side.times.len() < total {
                let published = count.load(Ordering::Acquire);
                while side.times.len() < published {
                    let now = now();
                    let stamp = slots[side.times.len()].load(Ordering::Relaxed);
                    side.push(now.saturating_sub(stamp), start);
                }
            }
            side
        });
        let reader = reader.expect("spawn the reader");
        pin_if_asked(0);
        let mut producer = Side::new(total);
        go.wait();
        let start = switches();
        let mut next = Instant::now() + every;
        for (i, slot) in slots.iter().enumerate() {
            producer.late += u64::from(pace(&mut next, every));
            slot.store(now(), Ordering::Relaxed);
            count.store(i + 1, Ordering::Release);
            producer.push(0, start);
        }
        (reader.join().expect("reader thread"), producer)
    })
}

/// The log's reader on a thread beside the producer.
fn in_thread(
    log: &mut TempLog,
    mode: Mode,
    total: usize,
    len: usize,
    every: Duration,
) -> (Side, Side) {
    let reader = mode.reader(log.reader.clone());
    let cursor = reader.cursor(0).expect("cursor at the start");
    let go = Barrier::new(2);
    let writer = &mut log.writer;
    thread::scope(|s| {
        let go = &go;
        let reader = thread::Builder::new().name("tail-reader".into());
        let reader = reader
            .spawn_scoped(s, move || {
                pin_if_asked(1);
                consume(cursor, mode, total, || {
                    go.wait();
                })
            })
            .expect("spawn the reader");
        pin_if_asked(0);
        let producer = produce(writer, total, len, every, || {
            go.wait();
        });
        (reader.join().expect("reader thread"), producer)
    })
}

/// A reader in another process ([`reader_process`]), following the log
/// through its files.
fn in_other_process(
    log: &mut TempLog,
    mode: Mode,
    total: usize,
    len: usize,
    every: Duration,
) -> (Side, Side) {
    let mut helper = Helper::spawn(
        READER_ROLE,
        &[
            (DIR_VAR, log.dir.path().display().to_string()),
            (MODE_VAR, mode.encode()),
            (TOTAL_VAR, total.to_string()),
        ],
    );
    helper.wait_ready();
    pin_if_asked(0);
    let producer = produce(&mut log.writer, total, len, every, || ());
    let reader = Side::decode(&helper.finish());
    (reader, producer)
}

/// The helper's side of [`in_other_process`]: opens the log the parent writes,
/// says it is ready, reads, and reports what it saw.
fn reader_process() {
    let dir: PathBuf = process::var(DIR_VAR);
    let mode = Mode::decode(&process::var::<String>(MODE_VAR));
    let total: usize = process::var(TOTAL_VAR);
    pin_if_asked(1);
    let reader = Reader::open(&dir).expect("open the log from another process");
    let cursor = mode.reader(reader).cursor(0).expect("cursor at the start");
    let side = consume(cursor, mode, total, process::ready);
    process::report(&side.encode());
}

/// One variant of the table.
struct Variant {
    name: &'static str,
    mode: Mode,
    /// The reader is in another process.
    process: bool,
    len: usize,
    every: Duration,
    samples: usize,
}

/// A run's samples, sorted.
struct Outcome {
    name: &'static str,
    /// Every sampled latency.
    all: Vec<u64>,
    /// The latencies of the bursts in which neither thread was preempted.
    clean: Vec<u64>,
    clean_bursts: usize,
    bursts: usize,
    /// Samples of `clean` over half the pace.
    slow: usize,
    /// Time `append` took, every sample.
    append: Vec<u64>,
    late: u64,
    producer_preempted: i64,
    reader: Switches,
    /// CPU time the hypervisor took from the machine during the run, ms.
    steal: u64,
}

fn run(v: &Variant) -> Outcome {
    let samples = v.samples.div_ceil(BURST) * BURST;
    let total = WARM_UP + samples;
    let steal = steal_ms();
    let (reader, producer) = match v.mode {
        Mode::Bare => bare(total, v.every),
        mode => {
            let mut log = TempLog::open(Options::default());
            // Let the preparer fault in the first pages and prepare the next
            // segment before the producer starts.
            thread::sleep(Duration::from_millis(500));
            if v.process {
                in_other_process(&mut log, mode, total, v.len, v.every)
            } else {
                in_thread(&mut log, mode, total, v.len, v.every)
            }
        }
    };
    let steal = steal_ms() - steal;
    if pinned() {
        pin_to(None);
    }
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
    let half_pace = v.every.as_nanos() as u64 / 2;
    let slow = clean.iter().filter(|&&t| t > half_pace).count();
    let mut all = reader.times[WARM_UP..].to_vec();
    let mut append = producer.times[WARM_UP..].to_vec();
    for v in [&mut all, &mut clean, &mut append] {
        v.sort_unstable();
    }
    Outcome {
        name: v.name,
        all,
        clean,
        clean_bursts,
        bursts: samples / BURST,
        slow,
        append,
        late: producer.late,
        producer_preempted: producer.switches_sampled().involuntary,
        reader: reader.switches_sampled(),
        steal,
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
/// a cursor at the end of a log, `Reader::end_offset` (what `wait_for`
/// checks while it spins), and `next_ref` at the end of a log followed
/// through its files (`Reader::open`: each poll looks at the files).
fn poll_cost() -> (f64, f64, f64) {
    const POLLS: u32 = 1_000_000;
    let mut log = TempLog::open(Options::default());
    log.writer.append(b"one").expect("append");
    fn time(mut poll: impl FnMut()) -> f64 {
        let start = Instant::now();
        for _ in 0..POLLS {
            poll();
        }
        start.elapsed().as_nanos() as f64 / f64::from(POLLS)
    }
    let mut cursor = log.reader.cursor(1).expect("cursor at the end");
    let next_ref = time(|| assert!(black_box(cursor.next_ref().expect("next_ref")).is_none()));
    let end_offset = time(|| {
        black_box(log.reader.end_offset());
    });
    let followed = Reader::open(log.dir.path()).expect("follow the log");
    let mut cursor = followed.cursor(1).expect("cursor at the end");
    let remote = time(|| assert!(black_box(cursor.next_ref().expect("next_ref")).is_none()));
    (next_ref, end_offset, remote)
}

/// The cost of reading the shared clock, twice in a row (median, ns).
fn clock_cost() -> u64 {
    let mut costs = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let a = now();
        let b = now();
        costs.push(b - a);
    }
    costs.sort_unstable();
    costs[costs.len() / 2]
}

fn variants(samples: usize) -> Vec<Variant> {
    let slow = Duration::from_micros(200);
    let row = |name, mode, process, len, every, samples| Variant {
        name,
        mode,
        process,
        len,
        every,
        samples,
    };
    let (spin_max, spin_0) = (Some(Duration::MAX), Some(Duration::ZERO));
    vec![
        row(
            "bare queue (no log), 64 B",
            Mode::Bare,
            false,
            64,
            PACE,
            samples,
        ),
        row("spin next_ref, 64 B", Mode::Spin, false, 64, PACE, samples),
        row(
            "spin next_ref, 256 B",
            Mode::Spin,
            false,
            256,
            PACE,
            samples,
        ),
        row(
            "park next_wait, 64 B",
            Mode::Wait(None),
            false,
            64,
            PACE,
            samples,
        ),
        row(
            "park next_wait, 64 B, 200 µs",
            Mode::Wait(None),
            false,
            64,
            slow,
            samples / 10,
        ),
        row(
            "bare queue, 60 B, 10 µs",
            Mode::Bare,
            false,
            60,
            PACE_100K,
            samples,
        ),
        row(
            "thread, spin ∞, 60 B, 10 µs",
            Mode::Wait(spin_max),
            false,
            60,
            PACE_100K,
            samples,
        ),
        row(
            "process, spin ∞, 60 B, 10 µs",
            Mode::Wait(spin_max),
            true,
            60,
            PACE_100K,
            samples,
        ),
        row(
            "thread, spin 0, 60 B, 10 µs",
            Mode::Wait(spin_0),
            false,
            60,
            PACE_100K,
            samples,
        ),
        row(
            "process, spin 0, 60 B, 10 µs",
            Mode::Wait(spin_0),
            true,
            60,
            PACE_100K,
            samples,
        ),
        row(
            "thread, spin 0, 60 B, 200 µs",
            Mode::Wait(spin_0),
            false,
            60,
            slow,
            samples / 10,
        ),
        row(
            "process, spin 0, 60 B, 200 µs",
            Mode::Wait(spin_0),
            true,
            60,
            slow,
            samples / 10,
        ),
    ]
}

fn main() {
    if process::role().as_deref() == Some(READER_ROLE) {
        return reader_process();
    }
    // `cargo bench` passes `--bench`; any other argument is a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let samples: usize = std::env::var("TAIL_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut outcomes = Vec::new();
    for v in variants(samples) {
        if !filters.is_empty() && !filters.iter().any(|f| v.name.contains(f.as_str())) {
            continue;
        }
        eprintln!("tail_latency: {} ({} samples)...", v.name, v.samples);
        outcomes.push(run(&v));
    }
    let (next_ref, end_offset, followed) = poll_cost();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>();
    println!(
        "\nTail latency in ns, from just before `append` to the reader having the record; \
         20 µs between records unless said; load average {}{}",
        load.join(" "),
        if pinned() {
            "; producer on CPU 0, reader on CPU 1"
        } else {
            ""
        },
    );
    println!(
        "{:<30} {:>5} {:>5} {:>6} {:>7} {:>7} | {:>7} {:>5} {:>5} {:>6} {:>7} {:>4} | {:>5} {:>6} | {:>4} {:>4} {:>4} {:>5} {:>5}",
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
        "slow",
        "ap99",
        "ap.max",
        "late",
        "preP",
        "preR",
        "slp%",
        "steal",
    );
    for o in &outcomes {
        let (a, q) = (&o.all, &o.clean);
        println!(
            "{:<30} {:>5} {:>5} {:>6} {:>7} {:>7} | {:>7} {:>5} {:>5} {:>6} {:>7} {:>4} | {:>5} {:>6} | {:>4} {:>4} {:>4} {:>5.1} {:>5}",
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
            o.slow,
            at(&o.append, 0.99),
            o.append.last().copied().unwrap_or(0),
            o.late,
            o.producer_preempted,
            o.reader.involuntary,
            100.0 * o.reader.voluntary as f64 / o.all.len().max(1) as f64,
            o.steal,
        );
    }
    println!(
        "Left: every sample. quiet: the {BURST}-record bursts in which neither thread was \
         preempted, and their percentiles; slow: their samples over half the pace (a \
         sleeping reader that missed its wake-up waits for the next record's). ap99 / \
         ap.max: time `append` itself took. late: times the producer was more than one pace \
         behind. preP / preR: involuntary context switches of the producer / reader during \
         the samples; slp%: the reader's voluntary ones (it slept) per 100 records. steal: \
         CPU time the hypervisor gave to others during the run, ms (both CPUs). Reading \
         the shared clock costs ~{} ns; one poll at the tail: Cursor::next_ref {next_ref:.1} \
         ns, Reader::end_offset {end_offset:.1} ns, Cursor::next_ref of a reader following \
         the files {followed:.1} ns. Chronicle Queue publishes, for 60 B at 100k msg/s \
         read in another thread on an i7-10710U: median 251 ns, p99 385 ns, p99.9 962 ns.",
        clock_cost(),
    );
}
