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

use std::time::Duration;

mod common;
use common::process;
use common::tail::{
    BURST, Mode, READER_ROLE, Variant, at, clock_cost, pinned, poll_cost, reader_process, run,
};

/// Time between two records, in the 20 µs rows.
const PACE: Duration = Duration::from_micros(20);
/// Time between two records at 100k records per second.
const PACE_100K: Duration = Duration::from_micros(10);

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
