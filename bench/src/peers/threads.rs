//! The peers in murakami's threaded tables: concurrent writers, durable
//! writers (group commit), concurrent readers, readers beside a writer, and
//! append → tailing reader latency.
//!
//! Each adapter says, in its [`Threads`], how its log is shared between
//! threads for each workload, or why it cannot be (with the crate's file
//! and line); [`Threads::run`] opens a log, fills it by one writer, and
//! lends it to the workload as a [`Shared`], from which each thread takes
//! its own [`Append`] or [`Reading`] handle.

use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::{ALL, Can, Kind, failed};
use crate::fixtures::{Walk, payload, permutation, share};
use crate::stats::{self, Reps, Table};
use crate::tail;
use crate::{Out, Plan, Size, per_op, progress};

/// A log that threads share. Handles are taken by the thread that uses
/// them.
pub trait Shared: Sync {
    /// The appending handle of thread `thread` (numbered from 0).
    fn writer(&self, thread: usize) -> Can<Box<dyn Append + '_>>;
    /// A reading handle.
    fn reader(&self) -> Can<Box<dyn Reading + '_>>;
}

/// One thread's appends.
pub trait Append {
    /// Appends one record, without a sync.
    fn append(&mut self, body: &[u8]) -> Can<()>;
    /// Appends one record and returns once it is durable (the peer's group
    /// commit where it has one).
    fn append_durable(&mut self, body: &[u8]) -> Can<()>;
}

/// One thread's reads.
pub trait Reading {
    /// Reads record `i` of those [`Threads::run`] filled the log with into
    /// `buf`.
    fn read(&mut self, i: u64, buf: &mut Vec<u8>) -> Can<()>;
    /// Polls for the record after the last one this handle returned (from
    /// the log's first): whether it is there, then in `buf`.
    fn next(&mut self, buf: &mut Vec<u8>) -> Can<bool>;
}

/// See [`Threads::appends`]: `(dir, threads, n, len, durable)`.
pub type Appends = fn(&Path, usize, u64, usize, bool) -> Can<(Duration, u64)>;

/// How a peer does a workload (for the table's note), or why it cannot.
pub type How = Result<&'static str, &'static str>;

/// The workload `f` on a shared log: what [`Threads::run`] lends out.
pub type Work<'a> = &'a mut dyn FnMut(&dyn Shared) -> Can<()>;

/// What a peer can do with threads.
pub struct Threads {
    /// Opens a fresh log in `dir` (an empty directory), appends `records`
    /// records of `len` bytes by one writer (the records [`Reading::read`]
    /// numbers), runs the workload on it, closes it and returns the records
    /// it holds then (counted the cheapest way the peer has).
    pub run: fn(dir: &Path, records: u64, len: usize, work: Work<'_>) -> Can<u64>,
    /// For a peer whose log lives elsewhere (walrus-rust's helper process):
    /// `n` appends of `len` bytes (durable ones if asked) by that many
    /// threads to a fresh log in `dir`, timed there, in place of `run`: the
    /// wall time and the appends made.
    pub appends: Option<Appends>,
    /// Concurrent writers: how the threads share the log, or why they
    /// cannot.
    pub writers: How,
    /// Durable writers: how, or why not.
    pub durable: How,
    /// Random readers (alone and beside a writer): how, or why not.
    pub readers: How,
    /// A tailing reader: how it sees new records, or why it cannot.
    pub tail: How,
}

/// Payload length of the appends and reads (murakami's rows: 256 B).
const LEN: usize = 256;
/// Thread counts of the writer and reader tables.
const THREADS: [usize; 4] = [1, 4, 8, 16];
/// Records a producer beside the readers may append to one log.
const PRODUCER_ROOM: u64 = 2_000_000;

/// How much of each workload the peers do: less than murakami (they are
/// slower, and the report must stay short); the tables' notes say so.
struct Sizes {
    reps: usize,
    /// Runs of the tailing row (each on a fresh log, whose opening and
    /// closing cost more than the run), and repetitions of the durable
    /// writers (which wait on a shared disk).
    tail_runs: usize,
    writer_appends: u64,
    durable_appends: u64,
    reader_reads: u64,
    tail_samples: usize,
    tail_warm_up: usize,
}

impl Sizes {
    fn of(plan: &Plan) -> Sizes {
        Sizes {
            reps: if plan.size == Size::Smoke {
                1
            } else {
                plan.reps.min(3)
            },
            tail_runs: if plan.size == Size::Smoke {
                1
            } else {
                plan.reps.min(2)
            },
            writer_appends: (plan.writer_appends / 20).max(1000),
            durable_appends: (plan.durable_appends / 16).max(16),
            reader_reads: (plan.reader_reads / 40).max(1000),
            tail_samples: (plan.tail_samples / 2).max(tail::BURST),
            tail_warm_up: if plan.size == Size::Smoke {
                tail::BURST
            } else {
                tail::WARM_UP / 4
            },
        }
    }
}

/// A table by thread count: every peer measured by `measure` at each of
/// [`THREADS`], beside `ours[i]`, murakami's figure at `THREADS[i]`;
/// `group` names the workload in the summary charts.
fn by_threads(
    out: &mut Out,
    lead: &str,
    group: &str,
    ours: &[Reps],
    mut measure: impl FnMut(&Kind, usize) -> Can<Reps>,
) -> Table {
    let mut table = super::table(&[lead], "murakami (this run)");
    for (threads, ours) in THREADS.into_iter().zip(ours) {
        for kind in ALL {
            let ns = measure(kind, threads);
            out.versus(&format!("{group} ×{threads}"), kind.name, &ns, ours);
            table.row(super::row(&[threads.to_string()], kind, LEN, &ns, ours));
        }
    }
    table
}

/// `1 run`, `3 runs`.
fn counted(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// How each peer is shared for a workload, for a table's note.
fn sharing(pick: impl Fn(&Threads) -> &How) -> String {
    ALL.iter()
        .filter_map(|kind| {
            pick(&kind.threads)
                .as_ref()
                .ok()
                .map(|how| format!("{}: {how}", kind.name))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// From the earliest start to the latest end of the threads' times.
fn span(times: &[(Instant, Instant)]) -> Duration {
    let first = times.iter().map(|t| t.0).min();
    let last = times.iter().map(|t| t.1).max();
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    }
}

/// Joins scoped threads that return their `(start, end)` or an error.
fn join_all(
    handles: Vec<thread::ScopedJoinHandle<'_, Can<(Instant, Instant)>>>,
) -> Can<Vec<(Instant, Instant)>> {
    let mut times = Vec::new();
    let mut error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(t)) => times.push(t),
            Ok(Err(e)) => error = error.or(Some(e)),
            Err(_) => error = error.or(Some("failed: a thread panicked".to_string())),
        }
    }
    error.map_or(Ok(times), Err)
}

/// `n` appends of 256 B (durable ones if `durable`) by `threads` threads
/// sharing a fresh log of `kind`, repeated: wall ns per append, after
/// checking the log holds `n` records.
fn appends(sizes: &Sizes, kind: &Kind, threads: usize, n: u64, durable: bool) -> Can<Reps> {
    let how = if durable {
        &kind.threads.durable
    } else {
        &kind.threads.writers
    };
    how.map_err(String::from)?;
    let body = payload(LEN);
    let mut times = Vec::new();
    for _ in 0..sizes.reps {
        let dir = crate::fixtures::tempdir();
        if let Some(elsewhere) = kind.threads.appends {
            let (elapsed, done) = elsewhere(dir.path(), threads, n, LEN, durable)?;
            if done != n {
                return Err(format!("failed: {done} of the {n} appends made"));
            }
            times.push(per_op(elapsed, n));
            continue;
        }
        let mut elapsed = Duration::ZERO;
        let held = (kind.threads.run)(dir.path(), 0, LEN, &mut |shared| {
            let go = Barrier::new(threads);
            let times = thread::scope(|s| {
                let handles = (0..threads)
                    .map(|i| {
                        let (go, body) = (&go, &body);
                        s.spawn(move || {
                            let writer = shared.writer(i);
                            go.wait();
                            let mut writer = writer?;
                            let began = Instant::now();
                            for _ in 0..share(n, threads, i) {
                                if durable {
                                    writer.append_durable(body)?;
                                } else {
                                    writer.append(body)?;
                                }
                            }
                            Ok((began, Instant::now()))
                        })
                    })
                    .collect();
                join_all(handles)
            })?;
            elapsed = span(&times);
            Ok(())
        })?;
        if held != n {
            return Err(format!(
                "failed: the log holds {held} of the {n} records appended"
            ));
        }
        times.push(per_op(elapsed, n));
    }
    Ok(Reps(times))
}

/// The peers beside murakami's concurrent writers (`ours`: its figures at
/// 1, 4, 8 and 16 threads).
pub fn writers(plan: &Plan, out: &mut Out, ours: &[Reps]) {
    progress("concurrent writers, peers");
    let sizes = Sizes::of(plan);
    let n = sizes.writer_appends;
    let table = by_threads(out, "Writers", "writers", ours, |kind, threads| {
        appends(&sizes, kind, threads, n, false)
    });
    out.table(
        "#### Concurrent Writers: Peers",
        &format!(
            "Threads appending 256 B records (no sync) to one fresh log of the peer per \
             repetition, {n} appends split between them ({}x fewer than murakami's, {}); \
             wall time over all their appends (aggregate). After each \
             repetition the log's records are counted. How the threads share each log: \
             {}.",
            plan.writer_appends / n,
            counted(sizes.reps, "repetition"),
            sharing(|t| &t.writers)
        ),
        &table,
    );
}

/// The peers beside murakami's durable writers.
pub fn durable_writers(plan: &Plan, out: &mut Out, ours: &[Reps]) {
    progress("durable writers, peers");
    // Durable appends wait on the disk, which other tenants share: fewer
    // repetitions keep the row's time bounded.
    let sizes = Sizes {
        reps: Sizes::of(plan).tail_runs,
        ..Sizes::of(plan)
    };
    let n = sizes.durable_appends;
    let table = by_threads(out, "Writers", "durable writers", ours, |kind, threads| {
        appends(&sizes, kind, threads, n, true)
    });
    out.table(
        "#### Durable Writers: Peers",
        &format!(
            "Threads each appending 256 B records and waiting until each is durable, \
             through the peer's strongest real sync (see Peers above), to one fresh log per \
             repetition, {n} appends split between them ({}x fewer than murakami's, {}); \
             wall time per append (aggregate). After each repetition the \
             log's records are counted. How: {}.",
            plan.durable_appends / n,
            counted(sizes.reps, "repetition"),
            sharing(|t| &t.durable)
        ),
        &table,
    );
}

/// Random reads of the filled records by `threads` threads, with a
/// producer appending flat out if `producer`, repeated on `shared`: wall
/// ns per read, and the producer's appends per second.
fn reading(
    sizes: &Sizes,
    shared: &dyn Shared,
    records: u64,
    threads: usize,
    producer: bool,
    appended: &mut u64,
) -> Can<(Reps, Reps)> {
    let offsets = permutation(0, records, 0xC0FFEE);
    let reads = sizes.reader_reads;
    let (mut ns, mut rates) = (Vec::new(), Vec::new());
    for _ in 0..sizes.reps {
        let stop = AtomicBool::new(false);
        let go = Barrier::new(threads + usize::from(producer));
        let (times, count) = thread::scope(|s| {
            let producer = producer.then(|| {
                let (stop, go, room) = (&stop, &go, PRODUCER_ROOM.saturating_sub(*appended));
                s.spawn(move || -> Can<u64> {
                    let writer = shared.writer(0);
                    go.wait();
                    let mut writer = writer?;
                    let body = payload(LEN);
                    let mut count = 0;
                    while !stop.load(Ordering::Relaxed) {
                        if count + 64 > room {
                            thread::sleep(Duration::from_micros(100));
                            continue;
                        }
                        for _ in 0..64 {
                            writer.append(&body)?;
                        }
                        count += 64;
                    }
                    Ok(count)
                })
            });
            let handles = (0..threads)
                .map(|i| {
                    let (go, offsets) = (&go, &offsets);
                    s.spawn(move || {
                        let reader = shared.reader();
                        go.wait();
                        let mut reader = reader?;
                        let mut walk = Walk::new(offsets, i * offsets.len() / threads);
                        let mut buf = Vec::new();
                        let began = Instant::now();
                        for _ in 0..share(reads, threads, i) {
                            reader.read(walk.next_offset(), &mut buf)?;
                            if buf.len() != LEN {
                                return Err(format!("failed: read {} bytes", buf.len()));
                            }
                        }
                        Ok((began, Instant::now()))
                    })
                })
                .collect();
            let times = join_all(handles);
            stop.store(true, Ordering::Relaxed);
            let count = producer.map(|p| p.join().unwrap_or(Err("failed: a panic".into())));
            (times, count)
        });
        let elapsed = span(&times?);
        if let Some(count) = count {
            let count = count?;
            *appended += count;
            rates.push(count as f64 / elapsed.as_secs_f64().max(1e-9));
        }
        ns.push(per_op(elapsed, reads));
    }
    Ok((Reps(ns), Reps(rates)))
}

/// The peers beside murakami's concurrent readers.
pub fn readers(plan: &Plan, out: &mut Out, ours: &[Reps]) {
    progress("concurrent readers, peers");
    let sizes = Sizes::of(plan);
    let mut figures: Vec<Can<Reps>> = Vec::new();
    for kind in ALL {
        // One filled log per peer, read by 1, 4, 8 and 16 threads in turn.
        let mut by_count = vec![
            kind.threads
                .readers
                .map(|_| Reps::default())
                .map_err(String::from);
            4
        ];
        if kind.threads.readers.is_ok() {
            let dir = crate::fixtures::tempdir();
            let run = (kind.threads.run)(dir.path(), plan.records, LEN, &mut |shared| {
                for (i, threads) in THREADS.into_iter().enumerate() {
                    by_count[i] = reading(&sizes, shared, plan.records, threads, false, &mut 0)
                        .map(|(ns, _)| ns);
                }
                Ok(())
            });
            if let Err(e) = run {
                by_count = vec![Err(e); 4];
            }
        }
        figures.extend(by_count);
    }
    let mut figures = figures.into_iter();
    let mut table = super::table(&["Readers"], "murakami (this run)");
    let mut rows = vec![Vec::new(); 4];
    for kind in ALL {
        for (i, (threads, ours)) in THREADS.into_iter().zip(ours).enumerate() {
            let ns = figures.next().expect("a figure per peer and count");
            out.versus(&format!("readers ×{threads}"), kind.name, &ns, ours);
            rows[i].push(super::row(&[threads.to_string()], kind, LEN, &ns, ours));
        }
    }
    for row in rows.into_iter().flatten() {
        table.row(row);
    }
    out.table(
        "#### Concurrent Readers: Peers",
        &format!(
            "Threads reading at random (the same permutation as murakami's, each into a \
             reused buffer) from one log of the peer holding {} records of 256 B, appended \
             by one writer before; {} reads per repetition split between them ({}x fewer \
             than murakami's, {}), one log per peer for every thread count; \
             wall time over all their reads (aggregate). How: {}.",
            plan.records,
            sizes.reader_reads,
            plan.reader_reads / sizes.reader_reads,
            counted(sizes.reps, "repetition"),
            sharing(|t| &t.readers)
        ),
        &table,
    );
}

/// The peers beside murakami's readers with a writer (`ours`: 4 and 8
/// readers).
pub fn with_writes(plan: &Plan, out: &mut Out, ours: &[Reps]) {
    progress("reads with concurrent writes, peers");
    let sizes = Sizes::of(plan);
    let mut table = super::table(&["Scenario"], "murakami (this run)");
    let mut rows = vec![Vec::new(); 2];
    let mut rates_note = Vec::new();
    for kind in ALL {
        let mut by_count = vec![
            kind.threads
                .readers
                .map(|_| (Reps::default(), Reps::default()))
                .map_err(String::from);
            2
        ];
        if kind.threads.readers.is_ok() && kind.threads.writers.is_ok() {
            let dir = crate::fixtures::tempdir();
            let run = (kind.threads.run)(dir.path(), plan.records, LEN, &mut |shared| {
                let mut appended = 0;
                for (i, threads) in [4, 8].into_iter().enumerate() {
                    by_count[i] =
                        reading(&sizes, shared, plan.records, threads, true, &mut appended);
                }
                Ok(())
            });
            if let Err(e) = run {
                by_count = vec![Err(e); 2];
            }
        } else if let (Ok(_), Err(why)) = (kind.threads.readers, kind.threads.writers) {
            by_count = vec![Err(format!("the writer: {why}")); 2];
        }
        let mut rates = Vec::new();
        for (i, (threads, ours)) in [4usize, 8].into_iter().zip(ours).enumerate() {
            let figure = by_count[i].clone();
            let ns = figure.clone().map(|(ns, _)| ns);
            if let Ok((_, rate)) = &figure {
                rates.push(format!(
                    "{} appends/s with {threads} readers",
                    stats::rate(rate.median())
                ));
            }
            out.versus(
                &format!("readers ×{threads} + writer"),
                kind.name,
                &ns,
                ours,
            );
            rows[i].push(super::row(
                &[format!("1 Writer, {threads} Readers")],
                kind,
                LEN,
                &ns,
                ours,
            ));
        }
        if !rates.is_empty() {
            rates_note.push(format!("{} {}", kind.name, rates.join(", ")));
        }
    }
    for row in rows.into_iter().flatten() {
        table.row(row);
    }
    out.table(
        "#### Reads with Concurrent Writes: Peers",
        &format!(
            "As the peers' concurrent readers above, while one more thread appends 256 B \
             records to the same log as fast as it can (at most {PRODUCER_ROOM} records per \
             log): one log per peer, filled with {} records before, for both scenarios \
             ({} each), so it grows as the writer appends. The writer \
             meanwhile (median): {}. How: {}; the writer as in Concurrent Writers above.",
            plan.records,
            counted(sizes.reps, "repetition"),
            if rates_note.is_empty() {
                "—".into()
            } else {
                rates_note.join("; ")
            },
            sharing(|t| &t.readers)
        ),
        &table,
    );
}

/// Latencies (ns, sorted) of one run of the tail workload on `kind`: 60 B
/// records, one every 10 µs, stamped at bytes 8..16 and numbered at 16..24.
fn tail_run(sizes: &Sizes, kind: &Kind) -> Can<Vec<u64>> {
    const LEN: usize = 60;
    let every = Duration::from_micros(10);
    let total = sizes.tail_warm_up + sizes.tail_samples.div_ceil(tail::BURST) * tail::BURST;
    let dir = crate::fixtures::tempdir();
    let mut latencies = Vec::new();
    let held = (kind.threads.run)(dir.path(), 0, LEN, &mut |shared| {
        let done = AtomicBool::new(false);
        let go = Barrier::new(2);
        let (seen, produced) = thread::scope(|s| {
            let reader = s.spawn(|| -> Can<Vec<u64>> {
                let reader = shared.reader();
                go.wait();
                let mut reader = reader?;
                let mut buf = Vec::new();
                let mut seen = Vec::with_capacity(total);
                while seen.len() < total {
                    let finished = done.load(Ordering::Acquire);
                    if reader.next(&mut buf)? {
                        let now = tail::now();
                        let word = |at: usize| {
                            u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
                        };
                        if buf.len() != LEN || word(16) != seen.len() as u64 {
                            return Err(format!(
                                "failed: record {} read as number {} of {} bytes",
                                seen.len(),
                                word(16),
                                buf.len()
                            ));
                        }
                        seen.push(now.saturating_sub(word(8)));
                    } else if finished {
                        return Err(format!(
                            "failed: the reader saw {} of {total} records",
                            seen.len()
                        ));
                    }
                }
                Ok(seen)
            });
            let produced = (|| -> Can<()> {
                let writer = shared.writer(0);
                go.wait();
                let mut writer = writer?;
                let mut body = payload(LEN);
                let mut next = Instant::now() + every;
                for i in 0..total as u64 {
                    tail::pace(&mut next, every);
                    body[16..24].copy_from_slice(&i.to_le_bytes());
                    body[8..16].copy_from_slice(&tail::now().to_le_bytes());
                    writer.append(&body)?;
                }
                Ok(())
            })();
            done.store(true, Ordering::Release);
            let seen = reader
                .join()
                .unwrap_or(Err("failed: the reader panicked".into()));
            (seen, produced)
        });
        produced?;
        latencies = seen?;
        Ok(())
    })?;
    if held != total as u64 {
        return Err(format!("failed: the log holds {held} of {total} records"));
    }
    let mut latencies = latencies.split_off(sizes.tail_warm_up);
    latencies.sort_unstable();
    Ok(latencies)
}

/// The peers beside murakami's tailing reader (`ours`: the median latency
/// of its reader spinning in a thread of the writer's process, per run).
pub fn tailing(plan: &Plan, out: &mut Out, ours: &Reps) {
    progress("tail latency, peers");
    let sizes = Sizes::of(plan);
    let mut table = Table::new(&[
        "Peer",
        "Median",
        "p99",
        "p99.9",
        "Max",
        "murakami median (thread, spinning; this run)",
        "murakami vs peer",
    ]);
    for kind in ALL {
        let runs: Can<Vec<Vec<u64>>> = kind.threads.tail.map_err(String::from).and_then(|_| {
            (0..sizes.tail_runs)
                .map(|_| tail_run(&sizes, kind))
                .collect()
        });
        let at = |runs: &[Vec<u64>], f: f64| Reps::of(runs.iter().map(|r| tail::at(r, f) as f64));
        let median = runs.as_ref().map(|r| at(r, 0.5)).map_err(Clone::clone);
        out.versus("tail latency (median)", kind.name, &median, ours);
        let mut row = vec![kind.name.to_string()];
        match &runs {
            Ok(runs) => {
                for f in [0.5, 0.99, 0.999, 1.0] {
                    row.push(stats::ns_spread(&at(runs, f)));
                }
                row.push(stats::ns(ours.median()));
                row.push(stats::ratio(at(runs, 0.5).median(), ours.median()));
            }
            Err(why) => {
                row.push(super::cannot(why));
                row.extend(["", "", ""].map(String::from));
                row.push(stats::ns(ours.median()));
                row.push("—".into());
            }
        }
        table.row(row);
    }
    out.table(
        "#### Append → Tailing Reader: Peers",
        &format!(
            "As above (60 B records, one every 10 µs, both ends stamping with \
             `CLOCK_MONOTONIC`), the reader a thread of the writer's process polling in a \
             busy loop for the next record through the peer's API, on a fresh log per \
             run: {} samples after {} of warm-up, {} (fewer than murakami's). Each \
             record also carries its number: the reader checks it saw every record, in \
             order. How each peer's reader sees new records: {}.",
            sizes.tail_samples.div_ceil(tail::BURST) * tail::BURST,
            sizes.tail_warm_up,
            counted(sizes.tail_runs, "run"),
            sharing(|t| &t.tail)
        ),
        &table,
    );
}

/// The `run` of a peer that cannot share its log at all.
pub fn unshared(_: &Path, _: u64, _: usize, _: Work<'_>) -> Can<u64> {
    Err(failed("this peer's log is not shared between threads"))
}

/// Appends `records` records of `len` bytes through `peer`'s one-thread
/// API, in calls of 64Ki, for [`Threads::run`].
pub fn fill(peer: &mut dyn super::Peer, records: u64, len: usize) -> Can<()> {
    let body = payload(len);
    let mut done = 0;
    while done < records {
        let n = (records - done).min(1 << 16);
        peer.append(n, &body, None)?;
        done += n;
    }
    Ok(())
}
