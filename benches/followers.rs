//! The producer's cost of readers in other processes: appends of 60-byte
//! records with no reader, and with 1 or 4 reader processes following the
//! log (`Reader::open`, a cursor and `next_wait` from offset 0 to the end),
//! either spinning (`Reader::spin(Duration::MAX)`) or sleeping as soon as
//! they reach the tail (`Reader::spin(Duration::ZERO)`).
//!
//! Not a criterion benchmark: each measurement needs its own log and its
//! own reader processes (this binary run again as helpers), started and
//! ready before the producer starts. Two workloads, on a fresh log each
//! time (left alone for a moment first, so that the preparing thread has
//! faulted in the pages the run writes):
//! - `flat out`: [`FLAT`] appends in a tight loop; wall time and the
//!   producer thread's CPU time per append. With more runnable threads than
//!   the machine's CPUs (spinning readers), the wall time shows the CPU the
//!   readers take from the producer; the CPU time shows what following
//!   costs the producer itself (cache lines its readers pull away, the
//!   wake-ups it makes).
//! - `100k/s`: [`PACED`] appends, one every 10 µs (busy-waiting for the
//!   pace); the time each `append` took, read around it with the clock
//!   (which adds ~25 ns).
//!
//! Each round measures every configuration once, in an order that turns
//! from round to round; the table gives the median over the rounds and the
//! spread (lowest–highest), and the ratio of each median to the median with
//! no reader. `slept`: the readers' voluntary context switches per record
//! (one per sleep); a producer appending while someone sleeps wakes the
//! sleepers (a `FUTEX_WAKE` system call).
//!
//! `cargo bench --bench followers`; `FOLLOWERS_ROUNDS=n` sets the number of
//! rounds (default 5).

use std::hint::black_box;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use murakami::{Options, Reader};

mod common;
use common::process::{self, Helper, monotonic_ns, steal_ms, switches, thread_cpu_ns};
use common::{TempLog, payload};

/// Payload length.
const LEN: usize = 60;
/// Appends of a flat-out run: 24 MB of frames, within the 32 MiB the
/// preparer faults in ahead.
const FLAT: usize = 250_000;
/// Appends of a paced run.
const PACED: usize = 100_000;
/// Time between two appends of a paced run.
const PACE: Duration = Duration::from_micros(10);
/// How long a reader waits for one record before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// The helper role of a reader process, and what it is told.
const FOLLOWER_ROLE: &str = "follower";
const DIR_VAR: &str = "FOLLOWERS_DIR";
const SPIN_VAR: &str = "FOLLOWERS_SPIN_NS";
const TOTAL_VAR: &str = "FOLLOWERS_TOTAL";

/// Readers following the producer.
#[derive(Clone, Copy, Debug)]
struct Config {
    name: &'static str,
    readers: usize,
    /// The readers' spin (`Duration::MAX`: they never sleep).
    spin: Duration,
}

const CONFIGS: [Config; 5] = [
    Config {
        name: "no reader",
        readers: 0,
        spin: Duration::ZERO,
    },
    Config {
        name: "1 reader process, spinning",
        readers: 1,
        spin: Duration::MAX,
    },
    Config {
        name: "4 reader processes, spinning",
        readers: 4,
        spin: Duration::MAX,
    },
    Config {
        name: "1 reader process, sleeping",
        readers: 1,
        spin: Duration::ZERO,
    },
    Config {
        name: "4 reader processes, sleeping",
        readers: 4,
        spin: Duration::ZERO,
    },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Flat,
    Paced,
}

/// One measurement: figures in ns per append, and the readers' sleeps
/// per record.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// Flat out: wall time; paced: median time of one append.
    wall: f64,
    /// Flat out: the producer thread's CPU time; paced: p99.
    cpu_or_p99: f64,
    /// Paced: p99.9.
    p999: f64,
    slept: f64,
    /// Times the producer advanced the wake word (each a `FUTEX_WAKE`),
    /// per append.
    wakes: f64,
}

/// The helper: follows the log to its `total`-th record, then reports its
/// voluntary context switches (how often it slept).
fn follower() {
    let dir: PathBuf = process::var(DIR_VAR);
    let spin: u64 = process::var(SPIN_VAR);
    let total: u64 = process::var(TOTAL_VAR);
    let spin = match spin {
        u64::MAX => Duration::MAX,
        nanos => Duration::from_nanos(nanos),
    };
    let reader = Reader::open(&dir).expect("open the log from another process");
    let mut cursor = reader.spin(spin).cursor(0).expect("cursor at the start");
    process::ready();
    let start = switches();
    while cursor.next_offset() < total {
        let offset = cursor.next_offset();
        match cursor.next_wait(PATIENCE).expect("next_wait") {
            Some(record) => {
                black_box(record.payload);
            }
            None => panic!(
                "waited {PATIENCE:?} for offset {offset} of the {total} the producer appends: \
                 a missed wake-up, or a stuck producer"
            ),
        }
    }
    let slept = switches().voluntary - start.voluntary;
    process::report(&(slept as u64).to_le_bytes());
}

/// The wake word of the log's control file (`murakami.tail`, bytes
/// 128..132; `src/storage/control.rs`): the writer advances it each time it wakes
/// the sleepers of other processes.
fn wake_word(log: &TempLog) -> u32 {
    let control = std::fs::read(log.dir.path().join("murakami.tail")).expect("the control file");
    u32::from_le_bytes(control[128..132].try_into().expect("4 bytes"))
}

/// Starts `config`'s readers on the log in `log`, and waits until they are
/// at its start.
fn start_readers(log: &TempLog, config: Config, total: usize) -> Vec<Helper> {
    let spin = match config.spin {
        Duration::MAX => u64::MAX,
        spin => spin.as_nanos() as u64,
    };
    let vars = [
        (DIR_VAR, log.dir.path().display().to_string()),
        (SPIN_VAR, spin.to_string()),
        (TOTAL_VAR, total.to_string()),
    ];
    let mut helpers: Vec<Helper> = (0..config.readers)
        .map(|_| Helper::spawn(FOLLOWER_ROLE, &vars))
        .collect();
    for helper in &mut helpers {
        helper.wait_ready();
    }
    helpers
}

/// `config` under `workload`, on a fresh log.
fn measure(config: Config, workload: Workload) -> Sample {
    let total = match workload {
        Workload::Flat => FLAT,
        Workload::Paced => PACED,
    };
    let mut log = TempLog::open(Options::default());
    thread::sleep(Duration::from_millis(500));
    let helpers = start_readers(&log, config, total);
    let wakes = wake_word(&log);
    let body = payload(LEN);
    let mut sample = match workload {
        Workload::Flat => {
            let cpu = thread_cpu_ns();
            let start = Instant::now();
            for _ in 0..total {
                black_box(log.writer.append(&body).expect("append"));
            }
            let wall = start.elapsed().as_nanos() as f64;
            let cpu = (thread_cpu_ns() - cpu) as f64;
            Sample {
                wall: wall / total as f64,
                cpu_or_p99: cpu / total as f64,
                ..Sample::default()
            }
        }
        Workload::Paced => {
            let mut times = Vec::with_capacity(total);
            let mut next = Instant::now() + PACE;
            for _ in 0..total {
                let mut now = Instant::now();
                while now < next {
                    now = Instant::now();
                }
                // Behind (preempted): no burst to catch up.
                next = if now > next + PACE {
                    now + PACE
                } else {
                    next + PACE
                };
                let start = monotonic_ns();
                black_box(log.writer.append(&body).expect("append"));
                times.push(monotonic_ns() - start);
            }
            times.sort_unstable();
            let at =
                |f: f64| times[((times.len() as f64 * f) as usize).min(times.len() - 1)] as f64;
            Sample {
                wall: at(0.5),
                cpu_or_p99: at(0.99),
                p999: at(0.999),
                ..Sample::default()
            }
        }
    };
    let slept: u64 = helpers
        .into_iter()
        .map(|h| u64::from_le_bytes(h.finish()[..8].try_into().expect("a report")))
        .sum();
    sample.slept = slept as f64 / total as f64;
    sample.wakes = wake_word(&log).wrapping_sub(wakes) as f64 / total as f64;
    drop(log);
    common::drain_epoch_garbage();
    sample
}

/// Median and spread of one figure over the rounds.
fn summary(values: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn print(workload: Workload, samples: &[Vec<Sample>], steal: u64) {
    let median = |c: usize, f: fn(&Sample) -> f64| summary(samples[c].iter().map(f));
    let none = (median(0, |s| s.wall).0, median(0, |s| s.cpu_or_p99).0);
    match workload {
        Workload::Flat => println!(
            "\nFlat out, {FLAT} appends of {LEN} B, ns per append (median of the rounds \
             [lowest-highest]; ratio to no reader)\n{:<30} {:>26} {:>26} {:>7} {:>7}",
            "readers", "wall time", "producer's CPU time", "slept", "wakes"
        ),
        Workload::Paced => println!(
            "\n100k appends/s, {PACED} appends of {LEN} B, ns per append (median of the rounds \
             [lowest-highest]; ratio to no reader)\n{:<30} {:>26} {:>26} {:>9} {:>7} {:>7}",
            "readers", "median", "p99", "p99.9", "slept", "wakes"
        ),
    }
    for (c, config) in CONFIGS.iter().enumerate() {
        let (wall, wall_lo, wall_hi) = median(c, |s| s.wall);
        let (second, second_lo, second_hi) = median(c, |s| s.cpu_or_p99);
        let cell = |m: f64, lo: f64, hi: f64, base: f64| {
            format!("{m:.0} [{lo:.0}-{hi:.0}] {:.2}x", m / base)
        };
        let p999 = match workload {
            Workload::Flat => String::new(),
            Workload::Paced => format!("{:>9.0}", median(c, |s| s.p999).0),
        };
        println!(
            "{:<30} {:>26} {:>26} {p999} {:>7.3} {:>7.3}",
            config.name,
            cell(wall, wall_lo, wall_hi, none.0),
            cell(second, second_lo, second_hi, none.1),
            median(c, |s| s.slept).0,
            median(c, |s| s.wakes).0,
        );
    }
    println!("The hypervisor took {steal} ms of CPU time from the machine during these runs.");
}

fn main() {
    if process::role().as_deref() == Some(FOLLOWER_ROLE) {
        return follower();
    }
    let rounds: usize = std::env::var("FOLLOWERS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    for workload in [Workload::Flat, Workload::Paced] {
        let mut samples = vec![Vec::with_capacity(rounds); CONFIGS.len()];
        let steal = steal_ms();
        for round in 0..rounds {
            for i in 0..CONFIGS.len() {
                let c = (i + round) % CONFIGS.len();
                eprintln!(
                    "followers: {workload:?}, {}, round {round}...",
                    CONFIGS[c].name
                );
                samples[c].push(measure(CONFIGS[c], workload));
            }
        }
        print(workload, &samples, steal_ms() - steal);
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{} CPUs; load average {}. slept: the readers' voluntary context switches \
         (sleeps) per record, all readers together; wakes: the times the producer woke \
         sleepers (a FUTEX_WAKE system call each) per append.",
        thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
}
