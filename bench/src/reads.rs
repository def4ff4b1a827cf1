//! Read tables: sealed and active segments (sequential, random, hot; copy
//! out, into a buffer, zero-copy), cross-segment random reads, concurrent
//! readers, and readers beside a producer.

use std::hint::black_box;
use std::time::Instant;

use murakami::{Options, Reader};

use crate::alloc::Allocs;
use crate::chart::{self, Chart, Point, Series, Unit};
use crate::fixtures::{TempLog, Walk, drain_epoch_garbage, frame_len, permutation};
use crate::peers;
use crate::seed::{self, Seed};
use crate::stats::{self, Reps, Table};
use crate::workloads::{ProducerStats, ReadFixture, ReadWay, Work, read_loop, read_threads};
use crate::{Out, Plan, per_op, progress, until};

/// Payload length of every record read.
const LEN: usize = 256;
/// Segment size of the cross-segment log.
const SMALL_SEGMENT: u64 = 64 << 10;
/// Segment size of the logs the concurrent readers read.
const SEGMENT: u64 = 16 << 20;
/// Bytes a producer may append beside the readers.
const PRODUCER_ROOM: u64 = 1 << 30;

/// The ways of reading the tables show.
const WAYS: [(&str, ReadWay); 3] = [
    ("copy-out (`read`: a new `Vec`)", ReadWay::Read),
    ("into a buffer (`read_into`)", ReadWay::ReadInto),
    ("zero-copy (`get`, a guard per 1024 reads)", ReadWay::Get),
];

/// Prints every read table.
pub fn sections(plan: &Plan, out: &mut Out) {
    out.section(
        "## Read Performance",
        "Page cache warm, no producer unless said. Sequential: offsets in order; random: \
         a random permutation of the offsets, walked in order (independent reads); hot: \
         one offset over and over (the seed reads 5). The seed copies every record out \
         (one allocation per read): its figure is beside each of our ways, and the ratio \
         is against it.",
    );
    let mut chart = Bars::default();
    segment_table(plan, out, true, &mut chart);
    let ours = segment_table(plan, out, false, &mut chart);
    cross_segment(plan, out, &mut chart);
    out.chart(chart.chart());
    peer_reads(plan, out, &ours);
    concurrent(plan, out);
    with_writes(plan, out);
}

/// The reads chart's figures: a group per pattern, a bar per way and the
/// seed's.
#[derive(Default)]
struct Bars {
    groups: Vec<String>,
    ways: [Vec<Option<Point>>; 3],
    seed: Vec<Option<Point>>,
}

impl Bars {
    /// Adds a group: our figure for each way, in `WAYS`'s order, and the
    /// seed's.
    fn group(&mut self, name: String, ours: [&Reps; 3], seed: Option<Seed>) {
        self.groups.push(name);
        for (way, ns) in self.ways.iter_mut().zip(ours) {
            way.push(Some(Point::rate(ns)));
        }
        self.seed.push(seed.map(|s| Point::rate(&s.reps())));
    }

    fn chart(self) -> Chart {
        let names = [
            "copy-out (read)",
            "into a buffer (read_into)",
            "zero-copy (get)",
        ];
        let colors = [chart::PALETTE[6], chart::MURAKAMI, "#0b2a5e"];
        let mut series: Vec<Series> = self
            .ways
            .into_iter()
            .zip(names.into_iter().zip(colors))
            .map(|(values, (name, color))| Series {
                name: format!("murakami {name}"),
                color,
                values,
            })
            .collect();
        series.push(Series {
            name: "Go seed, copy-out (same machine kind, earlier run)".into(),
            color: chart::SEED,
            values: self.seed,
        });
        Chart {
            file: "reads.svg",
            title: "Reads by pattern".into(),
            subtitle: "256 B records, page cache warm, one thread, no producer; \
                       whiskers: slowest–fastest repetition."
                .into(),
            unit: Unit::Rate,
            axis: "reads per second (log scale)".into(),
            groups: self.groups,
            series,
            lines: Vec::new(),
        }
    }
}

/// Reads by `way` at the offsets `next` gives, repeated: ns per read, and
/// allocations per read on the reading thread.
fn measure(
    plan: &Plan,
    reader: &Reader,
    way: ReadWay,
    mut next: impl FnMut() -> u64,
) -> (Reps, f64) {
    let mut buf = Vec::with_capacity(LEN);
    let (mut allocs, mut ops) = (0, 0);
    let ns = Reps::of((0..plan.reps).map(|_| {
        let before = Allocs::now();
        let (elapsed, n) = until(plan.target, u64::MAX, 10_000, |n| {
            read_loop(reader, way, n, &mut buf, &mut next)
        });
        allocs += Allocs::since(before).mine;
        ops += n;
        per_op(elapsed, n)
    }));
    (ns, allocs as f64 / ops as f64)
}

/// Reads every record from `first` to `end` in order through a cursor
/// (`Cursor::next_into`, a reused buffer), pass after pass until the
/// target time, repeated: ns per read, and allocations per read on the
/// reading thread.
fn cursor_reads(plan: &Plan, reader: &Reader, first: u64, end: u64) -> (Reps, f64) {
    let mut buf = Vec::with_capacity(LEN);
    let (mut allocs, mut ops) = (0, 0);
    let ns = Reps::of((0..plan.reps).map(|_| {
        let before = Allocs::now();
        let (elapsed, n) = until(plan.target, u64::MAX, end - first, |n| {
            let mut cursor = reader.cursor(first).expect("cursor");
            let start = Instant::now();
            for _ in 0..n {
                cursor
                    .next_into(&mut buf)
                    .expect("next_into")
                    .expect("a record");
                black_box(buf.as_ptr());
            }
            start.elapsed()
        });
        allocs += Allocs::since(before).mine;
        ops += n;
        per_op(elapsed, n)
    }));
    (ns, allocs as f64 / ops as f64)
}

/// A table row: pattern, way, throughput, latency, ops/s, then `extra`,
/// then the seed and the ratio.
fn row(pattern: &str, way: &str, ns: &Reps, extra: Vec<String>, seed: Option<Seed>) -> Vec<String> {
    let mut row = vec![
        pattern.to_string(),
        way.to_string(),
        stats::num_spread(&ns.map(|ns| LEN as f64 * 1e3 / ns)),
        stats::ns_spread(ns),
        stats::rate_spread(&ns.map(|ns| 1e9 / ns)),
    ];
    row.extend(extra);
    row.push(seed::cell(seed));
    row.push(seed::ratio(seed, ns.median()));
    row
}

const SEED_COLUMN: &str = "Go seed (copy-out), same machine kind, not this run";

/// Prints the sealed or the active table; returns murakami's sequential
/// and random `read_into` figures.
fn segment_table(plan: &Plan, out: &mut Out, sealed: bool, chart: &mut Bars) -> [Reps; 3] {
    progress(if sealed {
        "sealed reads"
    } else {
        "active reads"
    });
    let fixture = if sealed {
        ReadFixture::sealed(plan.records, LEN)
    } else {
        ReadFixture::active(plan.records, LEN)
    };
    drain_epoch_garbage();
    let reader = fixture.reader();
    let offsets = permutation(fixture.first, fixture.end, 0x5EED);
    let hot = (fixture.first + fixture.end) / 2;
    let mut table = Table::measured(
        &["Access Pattern", "Way"],
        &["Allocations per read"],
        SEED_COLUMN,
    );
    let mut ours: [Reps; 3] = Default::default();
    for (pattern, name) in [("seq", "Sequential"), ("random", "Random"), ("hot", "Hot")] {
        let mut figures = Vec::new();
        for (way_name, way) in WAYS {
            let (ns, allocs) = match pattern {
                "seq" => {
                    let mut seq = fixture.sequential();
                    measure(plan, reader, way, || seq.next_offset())
                }
                "random" => {
                    let mut walk = Walk::new(&offsets, 0);
                    measure(plan, reader, way, || walk.next_offset())
                }
                _ => measure(plan, reader, way, || hot),
            };
            if matches!(way, ReadWay::ReadInto) && pattern != "hot" {
                ours[usize::from(pattern == "random")] = ns.clone();
            }
            let extra = vec![stats::num(allocs)];
            table.row(row(name, way_name, &ns, extra, seed::read(sealed, pattern)));
            figures.push(ns);
        }
        let group = format!(
            "{} {}",
            if sealed { "sealed" } else { "active" },
            name.to_lowercase()
        );
        chart.group(
            group,
            [&figures[0], &figures[1], &figures[2]],
            seed::read(sealed, pattern),
        );
        if pattern == "seq" {
            let (ns, allocs) = cursor_reads(plan, reader, fixture.first, fixture.end);
            let way = "cursor into a buffer (`Cursor::next_into`)";
            let extra = vec![stats::num(allocs)];
            table.row(row(name, way, &ns, extra, seed::read(sealed, pattern)));
            ours[2] = ns;
        }
    }
    let (heading, note) = if sealed {
        (
            "### Sealed Segment Reads (mmap'd)",
            format!(
                "{} records of 256 B filling one segment, which a further record sealed.",
                plan.records
            ),
        )
    } else {
        (
            "### Active Segment Reads",
            format!(
                "{} records of 256 B, all in the active segment (64 MiB). The seed read \
                 its active segment through buffered file I/O.",
                plan.records
            ),
        )
    };
    out.table(heading, &note, &table);
    ours
}

/// The peers' reads: each peer's log of the same records, read into a
/// reused buffer in order, at random, and through its own iterator.
fn peer_reads(plan: &Plan, out: &mut Out, ours: &[Reps; 3]) {
    progress("reads, peers");
    let in_order: Vec<u64> = (0..plan.records).collect();
    let random = permutation(0, plan.records, 0x5EED);
    let mut table = peers::table(
        &["Access Pattern"],
        "murakami (active segment, `read_into` or the cursor, this run)",
    );
    let mut rows: [Vec<Vec<String>>; 3] = Default::default();
    for kind in peers::ALL {
        let mut fresh = peers::Fresh::filled(kind, plan.records, LEN);
        let (seq, rand, iter) = match &mut fresh {
            Ok(fresh) => (
                peers::reads(plan, fresh.peer(), &in_order),
                peers::reads(plan, fresh.peer(), &random),
                peers::iterations(plan, fresh.peer(), plan.records),
            ),
            Err(e) => (Err(e.clone()), Err(e.clone()), Err(e.clone())),
        };
        drop(fresh);
        out.versus("read sequential", kind.name, &seq, &ours[0]);
        out.versus("read random", kind.name, &rand, &ours[1]);
        out.versus("iterate", kind.name, &iter, &ours[2]);
        rows[0].push(peers::row(
            &["Sequential".into()],
            kind,
            LEN,
            &seq,
            &ours[0],
        ));
        rows[1].push(peers::row(&["Random".into()], kind, LEN, &rand, &ours[1]));
        rows[2].push(peers::row(
            &["Sequential, the peer's own iterator (murakami: its cursor)".into()],
            kind,
            LEN,
            &iter,
            &ours[2],
        ));
    }
    for row in rows.into_iter().flatten() {
        table.row(row);
    }
    out.table(
        "#### Reads: Peers",
        &format!(
            "Each peer's log of the same {} records of 256 B, appended by one writer \
             (synced if it can) and still open, page cache warm. Sequential and random: \
             the peer's read by the position its append returned, copied into a reused \
             buffer (walking the same orders as murakami's rows); iterator: the peer's \
             own sequential API, each record copied into the buffer, against murakami's \
             own (a `Cursor` and `next_into`, the active table's cursor row).",
            plan.records
        ),
        &table,
    );
}

fn cross_segment(plan: &Plan, out: &mut Out, chart: &mut Bars) {
    progress("cross-segment reads");
    let fixture = ReadFixture::cross_segment(plan.records, LEN, SMALL_SEGMENT);
    drain_epoch_garbage();
    let segments = fixture.log.segment_files();
    let offsets = permutation(fixture.first, fixture.end, 0x5EED);
    let mut table = Table::measured(&["Pattern", "Way"], &[], SEED_COLUMN);
    let mut figures = Vec::new();
    for (way_name, way) in WAYS {
        let mut walk = Walk::new(&offsets, 0);
        let (ns, _) = measure(plan, fixture.reader(), way, || walk.next_offset());
        figures.push(ns.clone());
        let r = row(
            "Random across segments",
            way_name,
            &ns,
            vec![],
            seed::cross_segment(),
        );
        table.row(r);
    }
    chart.group(
        "cross-segment random".into(),
        [&figures[0], &figures[1], &figures[2]],
        seed::cross_segment(),
    );
    out.table(
        "### Cross-Segment Reads",
        &format!(
            "{} records of 256 B in {segments} segment files of 64 KiB, read at random: \
             most reads land in another segment than the one before.",
            plan.records
        ),
        &table,
    );
}

/// Random `read_into` by `threads` threads, repeated: from `log` with no
/// producer, or (`None`) from a fresh log per repetition beside a producer
/// appending flat out. Returns the aggregate ns per read, the producer's
/// appends per second, and the repetitions in which it ran out of room.
fn threads_reading(plan: &Plan, log: Option<&TempLog>, threads: usize) -> (Reps, Reps, u64) {
    let offsets = permutation(0, plan.records, 0xC0FFEE);
    let (mut ns, mut rates, mut out_of_room) = (Vec::new(), Vec::new(), 0);
    for _ in 0..plan.reps {
        let mut stats = ProducerStats::default();
        let reads = plan.reader_reads;
        let elapsed = match log {
            Some(log) => {
                read_threads(
                    &log.reader,
                    Work::RandomReadInto,
                    threads,
                    reads,
                    &offsets,
                    None,
                    &mut stats,
                )
                .0
            }
            None => {
                let options = Options::default().segment_size(SEGMENT);
                let mut log = TempLog::filled(options, plan.records, LEN);
                let room = PRODUCER_ROOM / frame_len(LEN);
                let reader = log.reader.clone();
                let producer = Some((&mut log.writer, LEN, room));
                let (elapsed, _) = read_threads(
                    &reader,
                    Work::RandomReadInto,
                    threads,
                    reads,
                    &offsets,
                    producer,
                    &mut stats,
                );
                drop(reader);
                drop(log);
                drain_epoch_garbage();
                rates.push(stats.rate());
                out_of_room += stats.out_of_room;
                elapsed
            }
        };
        ns.push(per_op(elapsed, reads));
    }
    (Reps(ns), Reps(rates), out_of_room)
}

fn concurrent(plan: &Plan, out: &mut Out) {
    progress("concurrent readers");
    let log = TempLog::filled(Options::default().segment_size(SEGMENT), plan.records, LEN);
    drain_epoch_garbage();
    let mut table = Table::measured(&["Readers"], &[], seed::COLUMN);
    let mut ours = Vec::new();
    for threads in [1usize, 4, 8, 16] {
        let (ns, _, _) = threads_reading(plan, Some(&log), threads);
        ours.push(ns.clone());
        let mut r = row(
            &threads.to_string(),
            "",
            &ns,
            vec![],
            seed::readers(threads),
        );
        r.remove(1);
        table.row(r);
    }
    out.table(
        "### Concurrent Readers",
        &format!(
            "Threads reading at random (`read_into` a reused buffer) from one log of {} \
             records of 256 B, {} reads per repetition split between them; wall time over \
             all their reads (aggregate), as the seed's `ReadConcurrent/ReadersN`. The \
             machine has 2 CPUs.",
            plan.records, plan.reader_reads
        ),
        &table,
    );
    drop(log);
    peers::threads::readers(plan, out, &ours);
}

fn with_writes(plan: &Plan, out: &mut Out) {
    progress("reads with concurrent writes");
    let mut table = Table::measured(
        &["Scenario"],
        &["Producer meanwhile (appends/s)"],
        seed::COLUMN,
    );
    let mut full = 0;
    let mut ours = Vec::new();
    for threads in [4usize, 8] {
        let (ns, rates, out_of_room) = threads_reading(plan, None, threads);
        ours.push(ns.clone());
        full += out_of_room;
        let name = format!("1 Writer, {threads} Readers");
        let mut r = row(
            &name,
            "",
            &ns,
            vec![stats::rate_spread(&rates)],
            seed::writer_readers(threads),
        );
        r.remove(1);
        table.row(r);
    }
    out.table(
        "### Reads with Concurrent Writes",
        &format!(
            "As above, on a fresh log per repetition, while one producer thread appends \
             256 B records as fast as it can (at most 1 GiB; it ran out of room in {full} \
             repetitions). The seed's rows are its `NoTracking` variant, which its report \
             most likely shows."
        ),
        &table,
    );
    peers::threads::with_writes(plan, out, &ours);
}
