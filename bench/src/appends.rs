//! Append tables: buffered appends by record size, durable appends by sync
//! count and by sync interval, concurrent writers, durable writers (group
//! commit).

use std::time::Duration;

use murakami::{Options, SyncPolicy};

use crate::alloc::Allocs;
use crate::chart::{self, Chart, Point, Series, Unit};
use crate::fixtures::{TempLog, drain_epoch_garbage, frame_len, payload};
use crate::machine::{Floors, SIZES};
use crate::peers;
use crate::seed;
use crate::stats::{self, Reps, Table};
use crate::workloads::{SharedLog, append_n, append_threads, sustained_appends};
use crate::{Out, Plan, per_op, progress, until};

/// Segment size of the buffered-append logs: a repetition crosses several
/// rolls, whose cost is in the figure.
const APPEND_SEGMENT: u64 = 16 << 20;
/// Payload length of the durable and concurrent rows.
const LEN: usize = 256;

/// Prints every append table.
pub fn sections(plan: &Plan, floors: &Floors, out: &mut Out) {
    buffered(plan, floors, out);
    batches(plan, out);
    durable(plan, floors, out);
    interval(plan, out);
    writers(plan, out);
    durable_writers(plan, out);
}

/// MB/s of `len`-byte payloads at `ns` per op.
fn mb_s(len: usize, ns: f64) -> f64 {
    len as f64 * 1e3 / ns
}

/// Throughput, latency and ops/s cells from times per op.
fn cells(len: usize, ns: &Reps) -> Vec<String> {
    vec![
        stats::num_spread(&ns.map(|ns| mb_s(len, ns))),
        stats::ns_spread(ns),
        stats::rate_spread(&ns.map(|ns| 1e9 / ns)),
    ]
}

fn buffered(plan: &Plan, floors: &Floors, out: &mut Out) {
    progress("buffered appends");
    let mut table = Table::measured(
        &["Record Size"],
        &[
            "Allocations per op (producer thread; whole process)",
            "Bare prefaulted loop (this run)",
        ],
        seed::COLUMN,
    );
    let mut ours = Vec::new();
    for (i, len) in SIZES.into_iter().enumerate() {
        let body = payload(len);
        let max = plan.append_cap / frame_len(len);
        let (mut allocs, mut ops) = (Allocs::default(), 0);
        let ns = Reps::of((0..plan.reps).map(|_| {
            let mut log = TempLog::open(Options::default().segment_size(APPEND_SEGMENT));
            let before = Allocs::now();
            let (elapsed, n) = until(plan.target, max, 4096, |n| {
                append_n(&mut log.writer, n, &body)
            });
            let a = Allocs::since(before);
            (allocs.mine, allocs.all, ops) = (allocs.mine + a.mine, allocs.all + a.all, ops + n);
            drop(log);
            drain_epoch_garbage();
            per_op(elapsed, n)
        }));
        let mut row = vec![format!("{len} B")];
        row.extend(cells(len, &ns));
        row.push(format!(
            "{}; {}",
            stats::num(allocs.mine as f64 / ops as f64),
            stats::num(allocs.all as f64 / ops as f64)
        ));
        row.push(stats::ns_spread(&floors.bare_ns[i]));
        row.push(seed::cell(seed::buffered(len)));
        row.push(seed::ratio(seed::buffered(len), ns.median()));
        table.row(row);
        ours.push(ns);
    }
    out.table(
        "## Append Performance\n\n### Buffered Appends (No Durability Guarantee)",
        &format!(
            "`Writer::append`, one call per record, into a fresh log with 16 MiB segments \
             per repetition (at least {:?} of appends, at most {} MiB of frames), so \
             segment rolls are in the figure; opening and closing are not. \
             Allocations: counted by the report's global allocator over every timed \
             append, on the producer's thread and on all threads (the log's background \
             threads included); counting costs an atomic add per allocation, in every \
             row that allocates.",
            plan.target,
            plan.append_cap >> 20
        ),
        &table,
    );
    progress("buffered appends, peers");
    let mut table = peers::table(&["Record Size"], "murakami (this run)");
    let mut theirs = Vec::new();
    for (len, ours) in SIZES.into_iter().zip(&ours) {
        let body = payload(len);
        let max = plan.append_cap / frame_len(len);
        for kind in peers::ALL {
            let ns = peers::appends(plan, kind, &body, plan.target, max, 4096, None);
            out.versus(&format!("append {}", size_name(len)), kind.name, &ns, ours);
            table.row(peers::row(&[format!("{len} B")], kind, len, &ns, ours));
            theirs.push(ns);
        }
    }
    out.table(
        "#### Buffered Appends: Peers",
        "Each peer's one-record append, the same way: a fresh log per repetition, \
         appends in calls of 4096 records until the same time or byte cap as above. \
         okaywal's records are chunks of one entry, committed after the timing.",
        &table,
    );
    let groups = SIZES.iter().map(|len| size_name(*len)).collect();
    out.chart(by_size_chart(
        groups,
        &ours,
        &theirs,
        SIZES.map(seed::buffered),
    ));
}

/// `64 B`, `1 KiB`.
fn size_name(len: usize) -> String {
    if len >= 1024 {
        format!("{} KiB", len / 1024)
    } else {
        format!("{len} B")
    }
}

/// The series of an appends chart: murakami's, the seed's, then each
/// peer's (`theirs` holds every peer's figure for the first group, then
/// for the second, and so on).
fn series(ours: &[Reps], theirs: &[peers::Can<Reps>], seeds: &[Option<seed::Seed>]) -> Vec<Series> {
    let mut series = vec![
        Series {
            name: "murakami".into(),
            color: chart::MURAKAMI,
            values: ours.iter().map(|ns| Some(Point::rate(ns))).collect(),
        },
        Series {
            name: "Go seed (same machine kind, earlier run)".into(),
            color: chart::SEED,
            values: seeds
                .iter()
                .map(|s| s.map(|s| Point::rate(&s.reps())))
                .collect(),
        },
    ];
    for (i, (kind, color)) in peers::ALL.iter().zip(chart::PALETTE).enumerate() {
        series.push(Series {
            name: kind.name.to_string(),
            color,
            values: theirs
                .iter()
                .skip(i)
                .step_by(peers::ALL.len())
                .map(|ns| ns.as_ref().ok().map(Point::rate))
                .collect(),
        });
    }
    series
}

fn by_size_chart(
    groups: Vec<String>,
    ours: &[Reps],
    theirs: &[peers::Can<Reps>],
    seeds: [Option<seed::Seed>; 4],
) -> Chart {
    Chart {
        file: "appends.svg",
        title: "Buffered appends by record size".into(),
        subtitle: "One append call per record, no sync; median of the repetitions,                    whiskers: slowest–fastest. × = no figure."
            .into(),
        unit: Unit::Rate,
        axis: "appends per second (log scale)".into(),
        groups,
        series: series(ours, theirs, &seeds),
        lines: Vec::new(),
    }
}

/// Records per batch of the batch rows.
const BATCH: usize = 1000;

fn batches(plan: &Plan, out: &mut Out) {
    progress("batch appends");
    let body = payload(LEN);
    let batch: Vec<&[u8]> = vec![&body; BATCH];
    let max = plan.append_cap / frame_len(LEN);
    let ours = Reps::of((0..plan.reps).map(|_| {
        let mut log = TempLog::open(Options::default().segment_size(APPEND_SEGMENT));
        let (mut elapsed, mut done) = (Duration::ZERO, 0);
        while elapsed < plan.target && done < max {
            let start = std::time::Instant::now();
            log.writer.append_batch(&batch).expect("append_batch");
            elapsed += start.elapsed();
            done += BATCH as u64;
        }
        drop(log);
        drain_epoch_garbage();
        per_op(elapsed, done)
    }));
    let mut table = peers::table(&["Batch"], "murakami `append_batch` (this run)");
    for kind in peers::ALL {
        let ns = peers::batches(plan, kind, &batch, plan.target, max);
        out.versus(&format!("batch of {BATCH}"), kind.name, &ns, &ours);
        table.row(peers::row(
            &[format!("{BATCH} × 256 B")],
            kind,
            LEN,
            &ns,
            &ours,
        ));
    }
    out.table(
        "#### Batch Appends: Peers",
        &format!(
            "One call appending {BATCH} records of 256 B, no sync, into a fresh log per \
             repetition (murakami: `Writer::append_batch`, 16 MiB segments), until the \
             same time or byte cap as above; figures per record. murakami's median \
             here: {} per record. okaywal's batch is one entry, committed after the \
             timing; commitlog's is one `MessageBuf`.",
            stats::ns(ours.median())
        ),
        &table,
    );
}

fn durable(plan: &Plan, floors: &Floors, out: &mut Out) {
    progress("durable appends");
    let body = payload(LEN);
    let mut table = Table::measured(&["Sync Interval"], &["Notes"], seed::COLUMN);
    let mut ours = Vec::new();
    for every in [1u64, 10, 100, 1000] {
        let ns = Reps::of((0..plan.reps).map(|_| {
            let options = Options::default().sync_policy(SyncPolicy::EveryRecords(every));
            let mut log = TempLog::open(options);
            let target = plan.target.max(Duration::from_millis(20));
            let (elapsed, n) = until(target, u64::MAX, every.max(16), |n| {
                append_n(&mut log.writer, n, &body)
            });
            drop(log);
            drain_epoch_garbage();
            per_op(elapsed, n)
        }));
        let mut row = vec![format!("Every {every}")];
        row.extend(cells(LEN, &ns));
        row.push(if every == 1 {
            format!(
                "{:.2}x the range msync floor, {:.2}x a raw fdatasync (this run)",
                ns.median() / floors.msync_ns,
                ns.median() / floors.fdatasync_ns
            )
        } else {
            String::new()
        });
        row.push(seed::cell(seed::durable_every(every)));
        row.push(seed::ratio(seed::durable_every(every), ns.median()));
        table.row(row);
        ours.push((every, ns));
    }
    out.table(
        "### Durable Appends (Count-Based Sync)",
        "`SyncPolicy::EveryRecords(n)`: the append that completes n records syncs before \
         it returns (a range `msync` of the new bytes). Record size: 256 B. A fresh log \
         per repetition. The seed's sync fsyncs two files (log and index).",
        &table,
    );
    progress("durable appends, peers");
    let target = plan.target.max(Duration::from_millis(20));
    let mut table = peers::table(&["Sync Interval"], "murakami (this run)");
    let mut theirs = Vec::new();
    for (every, ours) in &ours {
        let chunk = peers::chunk_for(*every, (*every).max(16));
        for kind in peers::ALL {
            let ns = peers::appends(plan, kind, &body, target, u64::MAX, chunk, Some(*every));
            out.versus(&format!("sync every {every}"), kind.name, &ns, ours);
            table.row(peers::row(
                &[format!("Every {every}")],
                kind,
                LEN,
                &ns,
                ours,
            ));
            theirs.push(ns);
        }
    }
    out.table(
        "#### Durable Appends: Peers",
        "The same: 256 B records, a fresh log per repetition, each peer's strongest real \
         sync (see Peers above) after every n appends, the sync's time included.",
        &table,
    );
    let ours: Vec<Reps> = ours.into_iter().map(|(_, ns)| ns).collect();
    let everies = [1u64, 10, 100, 1000];
    out.chart(Chart {
        file: "durable.svg",
        title: "Durable appends by sync interval".into(),
        subtitle: "256 B records, each log's strongest real sync after every n appends \
                   (murakami: SyncPolicy::EveryRecords(n)); × = no real sync."
            .into(),
        unit: Unit::Rate,
        axis: "durable appends per second (log scale)".into(),
        groups: everies.iter().map(|n| format!("every {n}")).collect(),
        series: series(&ours, &theirs, &everies.map(seed::durable_every)),
        lines: Vec::new(),
    });
}

fn interval(plan: &Plan, out: &mut Out) {
    progress("time-based sync");
    let policies: [(&str, SyncPolicy, Option<u64>); 4] = [
        (
            "None (`Explicit`, never synced)",
            SyncPolicy::Explicit,
            None,
        ),
        (
            "Every 10ms",
            SyncPolicy::Interval(Duration::from_millis(10)),
            Some(10),
        ),
        (
            "Every 50ms",
            SyncPolicy::Interval(Duration::from_millis(50)),
            Some(50),
        ),
        (
            "Every 100ms",
            SyncPolicy::Interval(Duration::from_millis(100)),
            Some(100),
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
    let mut tlb: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
    for _ in 0..plan.reps {
        for (i, (_, policy, _)) in policies.iter().enumerate() {
            let run = sustained_appends(*policy, LEN, plan.interval_round);
            times[i].push(run.ns_per_append);
            tlb[i].extend(run.shootdowns_per_s);
        }
    }
    let base = Reps(times[0].clone()).median();
    let mut chart_ours = Vec::new();
    let mut table = Table::measured(
        &["Sync Interval"],
        &["Throughput vs no sync (this run)", "TLB shootdowns/s"],
        seed::COLUMN,
    );
    for (i, (name, _, ms)) in policies.iter().enumerate() {
        let ns = Reps(times[i].clone());
        let seed = ms.and_then(seed::interval_ms);
        chart_ours.push((ns.clone(), seed));
        let mut row = vec![name.to_string()];
        row.extend(cells(LEN, &ns));
        row.push(format!("{:.2}x", base / ns.median()));
        row.push(if tlb[i].is_empty() {
            "not reported".into()
        } else {
            stats::num(Reps(tlb[i].clone()).median())
        });
        row.push(if ms.is_some() {
            seed::cell(seed)
        } else {
            "— (the seed's buffered rows are above)".into()
        });
        row.push(seed::ratio(seed, ns.median()));
        table.row(row);
    }
    out.table(
        "### Durable Appends (Time-Based Sync)",
        &format!(
            "`SyncPolicy::Interval`: a background thread syncs at that interval. \
             Record size: 256 B. Sustained, taking turns: in each of {} rounds every \
             policy appends for {:?} to a fresh log, so whatever the machine does \
             meanwhile (write-back of earlier logs, other tenants) falls on every policy \
             alike (`benches/durability.rs`, `interval_interleaved`).",
            plan.reps, plan.interval_round
        ),
        &table,
    );
    out.chart(Chart {
        file: "interval.svg",
        title: "Appends under time-based sync".into(),
        subtitle: "256 B records, sustained, a background sync at each interval; \
                   whiskers: slowest–fastest round."
            .into(),
        unit: Unit::Rate,
        axis: "appends per second (log scale)".into(),
        groups: ["no sync", "every 10 ms", "every 50 ms", "every 100 ms"]
            .map(String::from)
            .to_vec(),
        series: vec![
            Series {
                name: "murakami".into(),
                color: chart::MURAKAMI,
                values: chart_ours
                    .iter()
                    .map(|(ns, _)| Some(Point::rate(ns)))
                    .collect(),
            },
            Series {
                name: "Go seed (same machine kind, earlier run)".into(),
                color: chart::SEED,
                values: chart_ours
                    .iter()
                    .map(|(_, s)| s.map(|s| Point::rate(&s.reps())))
                    .collect(),
            },
        ],
        lines: Vec::new(),
    });
}

/// `n` appends of 256 B (durable ones if `durable`) by `threads` threads
/// through one `SharedWriter` of a fresh log, repeated: wall ns per append.
fn shared_appends(plan: &Plan, threads: usize, n: u64, durable: bool) -> Reps {
    let body = payload(LEN);
    Reps::of((0..plan.reps).map(|_| {
        let log = SharedLog::open(Options::default());
        let elapsed = append_threads(&log.writer, threads, n, &body, durable);
        drop(log);
        drain_epoch_garbage();
        per_op(elapsed, n)
    }))
}

fn writers(plan: &Plan, out: &mut Out) {
    progress("concurrent writers");
    let mut table = Table::measured(&["Writers"], &[], seed::COLUMN);
    let mut ours = Vec::new();
    for threads in [1usize, 4, 8, 16] {
        let ns = shared_appends(plan, threads, plan.writer_appends, false);
        ours.push(ns.clone());
        let mut row = vec![threads.to_string()];
        row.extend(cells(LEN, &ns));
        row.push(seed::cell(seed::writers(threads)));
        row.push(seed::ratio(seed::writers(threads), ns.median()));
        table.row(row);
    }
    out.table(
        "### Concurrent Writers",
        &format!(
            "Threads appending through one `SharedWriter` (`append`, no sync), {} appends \
             of 256 B per repetition split between them; wall time over all their appends \
             (aggregate), as the seed's `AppendConcurrent/WritersN`.",
            plan.writer_appends
        ),
        &table,
    );
    peers::threads::writers(plan, out, &ours);
}

fn durable_writers(plan: &Plan, out: &mut Out) {
    progress("durable writers");
    let mut table = Table::new(&[
        "Writers",
        "Durable ops/sec (aggregate)",
        "Latency (wall time per append, aggregate)",
        "vs 1 writer",
        "Go seed",
    ]);
    let mut one = None;
    let mut ours = Vec::new();
    for threads in [1usize, 4, 8, 16] {
        let ns = shared_appends(plan, threads, plan.durable_appends, true);
        ours.push(ns.clone());
        let base = *one.get_or_insert(ns.median());
        table.row(vec![
            threads.to_string(),
            stats::rate_spread(&ns.map(|ns| 1e9 / ns)),
            stats::ns_spread(&ns),
            format!("{:.2}x", base / ns.median()),
            "— (the seed has no group commit)".into(),
        ]);
    }
    out.table(
        "### Durable Writers (Group Commit)",
        &format!(
            "Threads each calling `SharedWriter::append_durable` (returns once its 256 B \
             record is durable; concurrent calls share flushes), {} appends per repetition \
             split between them. The seed's report calls group commit a client-side \
             pattern and has no row for it.",
            plan.durable_appends
        ),
        &table,
    );
    peers::threads::durable_writers(plan, out, &ours);
}
