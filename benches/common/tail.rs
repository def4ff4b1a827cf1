//! Append-to-tailing-reader latency, shared by `benches/tail_latency.rs`
//! (which documents the method and prints the full table) and the report
//! (`bench/`): a producer appends stamped records at a steady pace, and a
//! reader in a thread of its process or in another process (this binary
//! run again as a helper, [`READER_ROLE`]) keeps the latency of each.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use murakami::{Cursor, Options, Reader, Writer};

use super::fixtures::{TempLog, drain_epoch_garbage, payload};
use super::process::{self, Helper, Switches, monotonic_ns, pin_to, steal_ms, switches};

/// Records in a burst: preemptions are counted once per burst.
pub const BURST: usize = 1000;
/// Records sent and dropped before the samples, at the same pace (a whole
/// number of bursts).
pub const WARM_UP: usize = 20 * BURST;
/// How long a waiting reader waits for one record before it gives up.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The helper role of a reader in another process, and what it is told.
pub const READER_ROLE: &str = "tail-reader";
pub const DIR_VAR: &str = "TAIL_DIR";
pub const MODE_VAR: &str = "TAIL_MODE";
pub const TOTAL_VAR: &str = "TAIL_TOTAL";
/// Set (to anything): the producer runs on CPU 0 and the reader (thread or
/// process) on CPU 1. Helpers inherit it with the environment.
pub const PIN_VAR: &str = "TAIL_PIN";

/// Whether [`PIN_VAR`] is set.
pub fn pinned() -> bool {
    std::env::var_os(PIN_VAR).is_some()
}

/// Under [`PIN_VAR`], keeps the calling thread on `cpu`.
pub fn pin_if_asked(cpu: usize) {
    if pinned() {
        pin_to(Some(cpu));
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Mode {
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
pub struct Side {
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
pub fn now() -> u64 {
    monotonic_ns()
}

/// Busy-waits until `next`; then moves `next` one pace on (or to one pace
/// from now if the producer fell behind). Returns whether it fell behind.
#[inline(always)]
pub fn pace(next: &mut Instant, every: Duration) -> bool {
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
pub fn produce(
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
pub fn consume(mut cursor: Cursor, mode: Mode, total: usize, go: impl FnOnce()) -> Side {
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
pub fn bare(total: usize, every: Duration) -> (Side, Side) {
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
pub fn in_thread(
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
pub fn in_other_process(
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
pub fn reader_process() {
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
pub struct Variant {
    pub name: &'static str,
    pub mode: Mode,
    /// The reader is in another process.
    pub process: bool,
    pub len: usize,
    pub every: Duration,
    pub samples: usize,
}

/// A run's samples, sorted.
pub struct Outcome {
    pub name: &'static str,
    /// Every sampled latency.
    pub all: Vec<u64>,
    /// The latencies of the bursts in which neither thread was preempted.
    pub clean: Vec<u64>,
    pub clean_bursts: usize,
    pub bursts: usize,
    /// Samples of `clean` over half the pace.
    pub slow: usize,
    /// Time `append` took, every sample.
    pub append: Vec<u64>,
    pub late: u64,
    pub producer_preempted: i64,
    pub reader: Switches,
    /// CPU time the hypervisor took from the machine during the run, ms.
    pub steal: u64,
}

pub fn run(v: &Variant) -> Outcome {
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
    drain_epoch_garbage();
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
pub fn at(v: &[u64], fraction: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v[((v.len() as f64 * fraction) as usize).min(v.len() - 1)]
}

/// What one poll at the tail costs a spinning reader, in ns: `next_ref` on
/// a cursor at the end of a log, `Reader::end_offset` (what `wait_for`
/// checks while it spins), and `next_ref` at the end of a log followed
/// through its files (`Reader::open`: each poll looks at the files).
pub fn poll_cost() -> (f64, f64, f64) {
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
pub fn clock_cost() -> u64 {
    let mut costs = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let a = now();
        let b = now();
        costs.push(b - a);
    }
    costs.sort_unstable();
    costs[costs.len() / 2]
}
