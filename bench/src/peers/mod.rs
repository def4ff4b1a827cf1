//! The crates people would pick instead of murakami, behind one small
//! trait, so the report measures them in the same run, on the same
//! workloads, record sizes, sync settings and directory (`/tmp`) as
//! murakami (issue 15).
//!
//! Each adapter's doc comment says what its "sync" really does, with the
//! crate's file and line (paths relative to the crate's `src/` in the
//! cargo registry, at the version pinned in `bench/Cargo.toml`). What a
//! peer cannot do is an `Err` with the reason, which the tables print as
//! "cannot: …" instead of leaving the row out.

use std::path::Path;
use std::time::Duration;

mod commitlog;
mod khata_rs;
mod okaywal;
mod raft_engine;
pub mod threads;
mod wal_db;
pub mod walrus_rust;

/// A peer's answer: the value, or why it cannot (or what failed).
pub type Can<T> = Result<T, String>;

/// Turns any error into the text a table prints.
pub fn failed(e: impl std::fmt::Display) -> String {
    format!("failed: {e}")
}

/// One open log of a peer. Records are numbered from 0 in the order they
/// were appended; reads take those numbers and map them to the peer's own
/// positions (kept by the adapter as it appends), as murakami's reads take
/// offsets.
pub trait Peer {
    /// Appends `n` copies of `body`, one call per record, and after every
    /// `sync_every` records (if given) the peer's strongest real sync.
    /// Returns the time of the appends and syncs (anything a peer needs to
    /// close the run, such as okaywal's commit of a buffered entry, comes
    /// after the timing).
    fn append(&mut self, n: u64, body: &[u8], sync_every: Option<u64>) -> Can<Duration>;

    /// Appends `batch` as one call, if the peer has a batch API, without a
    /// sync (as `append` with no `sync_every`).
    fn append_batch(&mut self, batch: &[&[u8]]) -> Can<Duration>;

    /// The strongest real sync of what was appended.
    fn sync(&mut self) -> Can<()>;

    /// Reads the records numbered `order`, in that order, each into `buf`.
    fn read(&mut self, order: &[u64], buf: &mut Vec<u8>) -> Can<Duration>;

    /// Reads every record through the peer's own sequential API, each into
    /// `buf`: the time and the records read.
    fn iterate(&mut self, buf: &mut Vec<u8>) -> Can<(Duration, u64)>;

    /// Closes the log cleanly.
    fn close(self: Box<Self>) -> Can<()>;
}

/// A peer crate.
pub struct Kind {
    /// Crate name and version, as the tables print it.
    pub name: &'static str,
    /// What its strongest sync does, in a few words, for the notes.
    pub sync: &'static str,
    /// Opens a fresh log in `dir` (an empty directory).
    pub open: fn(&Path) -> Can<Box<dyn Peer>>,
    /// Opens the log a closed [`Peer`] left in `dir`, and counts its
    /// records: the time of the open (what recovery the peer does at open),
    /// and the records found (counted after the timing).
    pub reopen: fn(&Path) -> Can<(Duration, u64)>,
    /// What it can do with threads (`threads.rs`).
    pub threads: threads::Threads,
}

/// Every peer, in the order the tables list them.
pub const ALL: [&Kind; 6] = [
    &self::okaywal::KIND,
    &self::wal_db::KIND,
    &self::commitlog::KIND,
    &self::khata_rs::KIND,
    &self::walrus_rust::KIND,
    &self::raft_engine::KIND,
];

/// The cell a table prints for a peer that cannot: `cannot: why`.
pub fn cannot(why: &str) -> String {
    if why.starts_with("failed") {
        why.to_string()
    } else {
        format!("cannot: {why}")
    }
}

/// Rounds `chunk` up to a multiple of `every`, so that a run of appends in
/// chunks syncs exactly every `every` records.
pub fn chunk_for(every: u64, chunk: u64) -> u64 {
    chunk.div_ceil(every) * every
}

/// A peer's log open in a fresh directory of its own (under `/tmp`, as
/// murakami's logs); the log is closed before the directory goes.
pub struct Fresh {
    /// The open log (`None` once closed).
    pub peer: Option<Box<dyn Peer>>,
    /// Its directory.
    pub dir: tempfile::TempDir,
}

impl Fresh {
    /// Opens a fresh log of `kind`.
    pub fn open(kind: &Kind) -> Can<Fresh> {
        let dir = crate::fixtures::tempdir();
        let peer = (kind.open)(dir.path())?;
        Ok(Fresh {
            peer: Some(peer),
            dir,
        })
    }

    /// The open log.
    pub fn peer(&mut self) -> &mut dyn Peer {
        self.peer.as_deref_mut().expect("open")
    }

    /// Closes the log, keeping the directory.
    pub fn close(&mut self) -> Can<()> {
        self.peer.take().map_or(Ok(()), |peer| peer.close())
    }

    /// A fresh log of `kind` with `records` records of `len` bytes,
    /// appended in chunks of 64Ki, then synced if the peer can.
    pub fn filled(kind: &Kind, records: u64, len: usize) -> Can<Fresh> {
        let mut fresh = Fresh::open(kind)?;
        let body = crate::fixtures::payload(len);
        let mut done = 0;
        while done < records {
            let n = (records - done).min(1 << 16);
            fresh.peer().append(n, &body, None)?;
            done += n;
        }
        // A peer without a real sync still has its records in the page
        // cache, which is what the reads read.
        let _ = fresh.peer().sync();
        Ok(fresh)
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Appends by `kind` to a fresh log per repetition, in chunks of `chunk`
/// records, until `target` or `max` records, syncing every `every`
/// records if given: ns per append.
pub fn appends(
    plan: &crate::Plan,
    kind: &Kind,
    body: &[u8],
    target: Duration,
    max: u64,
    chunk: u64,
    every: Option<u64>,
) -> Can<crate::stats::Reps> {
    let mut times = Vec::new();
    for _ in 0..plan.reps {
        let mut fresh = Fresh::open(kind)?;
        let (mut elapsed, mut done) = (Duration::ZERO, 0);
        while elapsed < target && done < max {
            let n = chunk.min(max - done);
            elapsed += fresh.peer().append(n, body, every)?;
            done += n;
        }
        fresh.close()?;
        times.push(crate::per_op(elapsed, done));
    }
    Ok(crate::stats::Reps(times))
}

/// Appends `batch` by `kind` to a fresh log per repetition until `target`
/// or `max` records: ns per record.
pub fn batches(
    plan: &crate::Plan,
    kind: &Kind,
    batch: &[&[u8]],
    target: Duration,
    max: u64,
) -> Can<crate::stats::Reps> {
    let mut times = Vec::new();
    for _ in 0..plan.reps {
        let mut fresh = Fresh::open(kind)?;
        let (mut elapsed, mut done) = (Duration::ZERO, 0);
        while elapsed < target && done < max {
            elapsed += fresh.peer().append_batch(batch)?;
            done += batch.len() as u64;
        }
        fresh.close()?;
        times.push(crate::per_op(elapsed, done));
    }
    Ok(crate::stats::Reps(times))
}

/// Reads from `peer` at the record numbers of `order` (walked round and
/// round) in chunks of 10,000, repeated: ns per read.
pub fn reads(plan: &crate::Plan, peer: &mut dyn Peer, order: &[u64]) -> Can<crate::stats::Reps> {
    let mut buf = Vec::new();
    let chunk = order.len().min(10_000);
    let mut at = 0;
    let mut times = Vec::new();
    for _ in 0..plan.reps {
        let (mut elapsed, mut done) = (Duration::ZERO, 0u64);
        while elapsed < plan.target {
            if at + chunk > order.len() {
                at = 0;
            }
            elapsed += peer.read(&order[at..at + chunk], &mut buf)?;
            at += chunk;
            done += chunk as u64;
        }
        times.push(crate::per_op(elapsed, done));
    }
    Ok(crate::stats::Reps(times))
}

/// Reads every record of `peer` through its own sequential API, repeated:
/// ns per record.
pub fn iterations(
    plan: &crate::Plan,
    peer: &mut dyn Peer,
    records: u64,
) -> Can<crate::stats::Reps> {
    let mut buf = Vec::new();
    let mut times = Vec::new();
    for _ in 0..plan.reps {
        let (elapsed, n) = peer.iterate(&mut buf)?;
        if n != records {
            return Err(format!("failed: iterated {n} of {records} records"));
        }
        times.push(crate::per_op(elapsed, n));
    }
    Ok(crate::stats::Reps(times))
}

/// Reopens a closed log of `records` records of `len` bytes, repeated:
/// ns per open (recovery), after checking the count.
pub fn recoveries(
    plan: &crate::Plan,
    kind: &Kind,
    records: u64,
    len: usize,
) -> Can<crate::stats::Reps> {
    let mut fresh = Fresh::filled(kind, records, len)?;
    fresh.close()?;
    let mut times = Vec::new();
    for _ in 0..plan.reps {
        let (elapsed, n) = (kind.reopen)(fresh.dir.path())?;
        if n != records {
            return Err(format!(
                "failed: found {n} of {records} records after reopen"
            ));
        }
        times.push(elapsed.as_nanos() as f64);
    }
    Ok(crate::stats::Reps(times))
}

/// The columns of a peer table after the `lead` ones: the peer's figures,
/// murakami's (this run) and the ratio.
pub fn table(lead: &[&str], ours: &str) -> crate::stats::Table {
    let mut header = lead.to_vec();
    header.extend([
        "Peer",
        "Throughput (MB/s)",
        "Latency",
        "Ops/sec",
        ours,
        "murakami vs peer",
    ]);
    crate::stats::Table::new(&header)
}

/// A row of a peer table: the `lead` cells, the peer's name, then its
/// measured cells (payload `len` bytes per op), murakami's latency and the
/// ratio (the peer's time over murakami's: above 1x murakami is faster);
/// or, when the peer cannot, why.
pub fn row(
    lead: &[String],
    kind: &Kind,
    len: usize,
    peer: &Can<crate::stats::Reps>,
    ours: &crate::stats::Reps,
) -> Vec<String> {
    use crate::stats;
    let mut row = lead.to_vec();
    row.push(kind.name.to_string());
    match peer {
        Ok(ns) => {
            row.push(stats::num_spread(&ns.map(|ns| len as f64 * 1e3 / ns)));
            row.push(stats::ns_spread(ns));
            row.push(stats::rate_spread(&ns.map(|ns| 1e9 / ns)));
            row.push(stats::ns(ours.median()));
            row.push(stats::ratio(ns.median(), ours.median()));
        }
        Err(why) => {
            row.push(cannot(why));
            row.extend(["", ""].map(String::from));
            row.push(stats::ns(ours.median()));
            row.push("—".into());
        }
    }
    row
}

/// The section that introduces the peers: what each one's sync does.
pub fn overview(out: &mut crate::Out) {
    let mut table = crate::stats::Table::new(&["Peer", "Its strongest sync"]);
    for kind in ALL {
        table.row(vec![kind.name.to_string(), kind.sync.to_string()]);
    }
    out.table(
        "## Peers",
        "The crates people would pick instead, measured in this run beside murakami \
         (`bench/src/peers/`: each adapter's doc comment cites the crate's source for \
         what it does). Each shared table below is followed by the peers' rows on the \
         same workload: same record sizes, same sync interval, fresh directories under \
         `/tmp` like murakami's. **murakami vs peer** = the peer's median time per op ÷ \
         murakami's: above 1x, murakami is faster. A row a peer cannot do says \
         \"cannot:\" and why. The threaded tables (concurrent writers, durable writers, \
         concurrent readers, readers beside a writer, tailing) share each peer's log \
         between threads the way its API allows, which their notes say: a lock where \
         the peer's appends take `&mut self` (commitlog) or where two writers corrupt \
         the log (khata-rs, one `Writer` behind a `Mutex`), one raft group per thread for \
         raft-engine; the peers do fewer operations there than murakami (the notes say \
         how many). Not compared: the time-based sync and retention rows. walrus-rust's \
         log lives in a helper process of its own (its fsync schedule and data \
         directory are process-wide), and its figures are timed inside that process \
         (no pipe round trips, no process start), its concurrent writers too (threads of \
         that process); a tailing reader is not wired into it. The tailing rows' readers \
         poll the peer's read of the next record in a busy loop: none of the peers has a \
         way to wait for a record. raft-engine's entries are protobuf \
         messages (`BytesValue`), its lz4 batch compression turned off.",
        &table,
    );
}

/// The closing charts: murakami against each peer on every workload they
/// share (the ratios of the peer tables above), appends in one chart,
/// reads and opens in another.
pub fn summary(out: &mut crate::Out) {
    out.section(
        "## murakami vs Each Peer",
        "Every ratio of the peer tables above: the peer's median time per op ÷ \
         murakami's, per workload. A bar above 1x: murakami is faster; below: slower. \
         The whiskers run from the least to the most the two spreads allow. A cross on \
         the axis: the peer cannot (its table says why).",
    );
    let starts = |g: &str, with: &[&str]| with.iter().any(|w| g.starts_with(w));
    let charts: [(&'static str, &str, &[&str]); 4] = [
        (
            "peers-appends.svg",
            "murakami vs each peer: appends",
            &["append", "batch", "writers"],
        ),
        (
            "peers-durable.svg",
            "murakami vs each peer: durable appends",
            &["sync", "durable writers"],
        ),
        (
            "peers-reads.svg",
            "murakami vs each peer: reads",
            &["read", "iterate", "tail"],
        ),
        ("peers-opens.svg", "murakami vs each peer: opens", &["open"]),
    ];
    for (file, title, with) in charts {
        let chart = versus(out, file, title, |g| starts(g, with));
        out.chart(chart);
    }
}

/// The ratio chart of the workloads `pick` chooses.
fn versus(
    out: &crate::Out,
    file: &'static str,
    title: &str,
    pick: impl Fn(&str) -> bool,
) -> crate::chart::Chart {
    use crate::chart::{Chart, PALETTE, Series, Unit};
    let mut groups: Vec<String> = Vec::new();
    for (group, _, _) in &out.versus {
        if pick(group) && !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    let series = ALL
        .iter()
        .zip(PALETTE)
        .map(|(kind, color)| Series {
            name: kind.name.to_string(),
            color,
            values: groups
                .iter()
                .map(|g| {
                    out.versus
                        .iter()
                        .find(|(group, peer, _)| group == g && *peer == kind.name)
                        .and_then(|v| v.2)
                })
                .collect(),
        })
        .collect();
    Chart {
        file,
        title: title.into(),
        subtitle: "How many times faster murakami is than the peer (the peer's time per op \
                   ÷ murakami's); above 1x murakami is faster, below it is slower; × = the \
                   peer cannot."
            .into(),
        unit: Unit::Ratio,
        axis: "murakami's speedup (log scale)".into(),
        groups,
        series,
        lines: vec![(1.0, "1x: as fast".into()), (2.0, "2x: the aim".into())],
    }
}
