//! The Go predecessor's figures on this machine kind, from
//! `../shared/seed/go-murakami-on-this-machine.md` (its first table, runs
//! 1 and 2, 2026-11-24, `-benchtime=2s`): measured on the same machine
//! kind, not in the report's run. Every figure is in ns per operation.

use crate::stats::{self, Reps};

/// The title of the seed's column.
pub const COLUMN: &str = "Go seed, same machine kind, not this run";

/// One row of the seed: its two runs, ns per op.
#[derive(Clone, Copy, Debug)]
pub struct Seed {
    /// Run 1.
    pub run1: f64,
    /// Run 2.
    pub run2: f64,
}

const fn seed(run1: f64, run2: f64) -> Option<Seed> {
    Some(Seed { run1, run2 })
}

impl Seed {
    /// The two runs, as repetitions.
    pub fn reps(self) -> Reps {
        Reps::of([self.run1, self.run2])
    }

    /// The median of the two runs (their mean).
    pub fn median(self) -> f64 {
        (self.run1 + self.run2) / 2.0
    }

    /// `247 ns (245–254)`: the median and the two runs.
    pub fn cell(self) -> String {
        stats::ns_spread(&self.reps())
    }
}

/// The seed's cell for a row it may not have.
pub fn cell(seed: Option<Seed>) -> String {
    seed.map_or_else(|| "— (no such row)".into(), Seed::cell)
}

/// The ratio of the seed's median to ours (ns per op): above 1, murakami is
/// faster.
pub fn ratio(seed: Option<Seed>, ours_ns: f64) -> String {
    seed.map_or_else(|| "—".into(), |s| stats::ratio(s.median(), ours_ns))
}

/// `Append/64B` … `Append/1KB`, by payload length.
pub fn buffered(len: usize) -> Option<Seed> {
    match len {
        64 => seed(253.8, 245.0),
        256 => seed(739.8, 680.1),
        512 => seed(1247.0, 1449.0),
        1024 => seed(2219.0, 2833.0),
        _ => None,
    }
}

/// `AppendWithSync/EveryN`.
pub fn durable_every(n: u64) -> Option<Seed> {
    match n {
        1 => seed(200_600.0, 298_100.0),
        10 => seed(37_900.0, 55_800.0),
        100 => seed(5_020.0, 7_420.0),
        1000 => seed(1_240.0, 1_630.0),
        _ => None,
    }
}

/// `AppendWithSync/EveryNms`.
pub fn interval_ms(ms: u64) -> Option<Seed> {
    match ms {
        10 => seed(587.0, 928.2),
        50 => seed(741.4, 625.3),
        100 => seed(580.3, 668.2),
        _ => None,
    }
}

/// `AppendConcurrent/WritersN`.
pub fn writers(n: usize) -> Option<Seed> {
    match n {
        1 => seed(693.7, 692.9),
        4 => seed(679.0, 779.2),
        8 => seed(733.0, 774.1),
        16 => seed(750.4, 810.0),
        _ => None,
    }
}

/// `ReadSealedSegment/*` (`sealed`) or `ReadActiveSegment/*`, by pattern
/// (`seq`, `random`, `hot`); the seed copies every record out.
pub fn read(sealed: bool, pattern: &str) -> Option<Seed> {
    match (sealed, pattern) {
        (true, "seq") => seed(234.1, 201.9),
        (true, "random") => seed(481.4, 432.4),
        (true, "hot") => seed(207.0, 195.8),
        (false, "seq") => seed(215.0, 221.2),
        (false, "random") => seed(288.2, 297.7),
        (false, "hot") => seed(222.2, 228.2),
        _ => None,
    }
}

/// `ReadMixed/CrossSegment`.
pub fn cross_segment() -> Option<Seed> {
    seed(563.0, 539.2)
}

/// `ReadConcurrent/ReadersN`.
pub fn readers(n: usize) -> Option<Seed> {
    match n {
        1 => seed(293.5, 264.9),
        4 => seed(254.6, 255.6),
        8 => seed(255.1, 268.9),
        16 => seed(283.9, 276.4),
        _ => None,
    }
}

/// `ReadWithConcurrentWrites/NoTracking/1WriterNReaders` (the seed's
/// report rows are likely these).
pub fn writer_readers(n: usize) -> Option<Seed> {
    match n {
        4 => seed(600.1, 576.4),
        8 => seed(445.6, 431.2),
        _ => None,
    }
}

/// `Recovery/NRecords` (ns per recovery). The seed has no 1M row.
pub fn recovery(records: u64) -> Option<Seed> {
    match records {
        1_000 => seed(2.36e6, 2.95e6),
        10_000 => seed(7.52e6, 6.98e6),
        100_000 => seed(33.6e6, 35.4e6),
        _ => None,
    }
}

/// `RetentionCleanup/{1,5,10}Segments` (0, 4, 9 deleted; ns per cleanup).
pub fn retention(deleted: usize) -> Option<Seed> {
    match deleted {
        0 => seed(1_984.0, 1_483.0),
        4 => seed(1.91e6, 1.64e6),
        9 => seed(3.51e6, 3.12e6),
        _ => None,
    }
}
