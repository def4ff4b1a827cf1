//! The parts of the benchmarks' setup that need no criterion: temporary
//! logs under `/tmp`, payloads, precomputed offset sequences and walks over
//! them. Shared by the criterion benches (`benches/common/mod.rs`) and the
//! report (`bench/`).

use std::path::Path;
use std::time::Duration;

use murakami::{Log, Options, Reader, Writer};
use tempfile::TempDir;

/// Records in the logs the read benchmarks read from.
pub const RECORDS: u64 = 100_000;
/// Payload length of the records the read benchmarks read.
pub const RECORD_LEN: usize = 256;
/// Length of a segment file's header (`format.rs`).
pub const SEGMENT_HEADER_LEN: u64 = 64;

/// Bytes a record of `payload` bytes takes in a segment: a 32-byte frame
/// header, the payload, padding to a multiple of 8 (`format.rs`).
pub const fn frame_len(payload: usize) -> u64 {
    ((32 + payload + 7) & !7) as u64
}

/// The smallest segment size whose segment holds `records` records of
/// `payload` bytes (before rounding up to a page).
pub const fn segment_size_for(records: u64, payload: usize) -> u64 {
    SEGMENT_HEADER_LEN + records * frame_len(payload)
}

/// A fresh temporary directory under `/tmp`, removed on drop.
pub fn tempdir() -> TempDir {
    tempfile::Builder::new()
        .prefix("murakami-bench-")
        .tempdir_in("/tmp")
        .expect("create a temporary directory under /tmp")
}

/// A payload of `len` bytes that is not all zeros.
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// An open log in a temporary directory. Fields drop in order: the writer
/// closes the log before the directory is removed.
pub struct TempLog {
    /// The log's writer.
    pub writer: Writer,
    /// A reader of the log.
    pub reader: Reader,
    /// The directory, removed when this is dropped.
    pub dir: TempDir,
}

impl TempLog {
    /// Opens an empty log with `options` in a fresh directory.
    pub fn open(options: Options) -> TempLog {
        let dir = tempdir();
        let (writer, reader) = Log::open(dir.path(), options).expect("open a log");
        TempLog {
            writer,
            reader,
            dir,
        }
    }

    /// Opens a log with `options` and appends `records` records of `len`
    /// bytes (offsets `0..records`), in batches, then syncs.
    pub fn filled(options: Options, records: u64, len: usize) -> TempLog {
        let mut log = TempLog::open(options);
        log.append_n(records, len);
        log.writer.sync().expect("sync");
        log
    }

    /// Appends `records` more records of `len` bytes.
    pub fn append_n(&mut self, records: u64, len: usize) {
        let body = payload(len);
        let batch = vec![body.as_slice(); 1024];
        let mut left = records;
        while left > 0 {
            let n = left.min(batch.len() as u64) as usize;
            self.writer.append_batch(&batch[..n]).expect("append");
            left -= n as u64;
        }
    }

    /// Number of segment files in the log's directory.
    pub fn segment_files(&self) -> usize {
        segment_files(self.dir.path())
    }
}

/// Number of segment files (`*.seg`) in `dir`.
pub fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("list the log directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        })
        .count()
}

/// Runs the epoch garbage that logs closed so far left behind, so that it
/// is not run inside a later timed read or append. Call it after a log is
/// dropped and before timing starts again.
///
/// The library defers freeing each replaced segment list to crossbeam-epoch's
/// process-wide collector, and those lists hold `Arc`s on segments. Once a
/// log is closed, a deferred list can be the last owner of its segments, so
/// whichever thread next runs the collector (any `pin`: every `Reader::read`
/// of any log, and every roll; every 128th pin collects) unmaps them and,
/// if the directory is gone, frees the deleted files' pages and blocks:
/// hundreds of milliseconds for a 512 MiB log on this machine.
pub fn drain_epoch_garbage() {
    for _ in 0..256 {
        crossbeam_epoch::pin().flush();
    }
}

/// A xorshift64* generator: deterministic, and cheap enough that it is
/// never what a benchmark measures (sequences are precomputed anyway).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The offsets `first..end` in a random order (each exactly once).
pub fn permutation(first: u64, end: u64, seed: u64) -> Vec<u64> {
    let mut offsets: Vec<u64> = (first..end).collect();
    let mut rng = XorShift::new(seed);
    for i in (1..offsets.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        offsets.swap(i, j);
    }
    offsets
}

/// Walks a precomputed offset sequence round and round.
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    offsets: &'a [u64],
    at: usize,
}

impl<'a> Walk<'a> {
    /// A walk over `offsets` starting at index `start` (modulo the length).
    pub fn new(offsets: &'a [u64], start: usize) -> Walk<'a> {
        assert!(!offsets.is_empty());
        Walk {
            offsets,
            at: start % offsets.len(),
        }
    }

    /// The next offset.
    #[inline(always)]
    pub fn next_offset(&mut self) -> u64 {
        let offset = self.offsets[self.at];
        self.at += 1;
        if self.at == self.offsets.len() {
            self.at = 0;
        }
        offset
    }
}

/// `elapsed` scaled from `done` operations to `wanted` ones, for routines
/// that work in whole batches.
pub fn scale(elapsed: Duration, done: u64, wanted: u64) -> Duration {
    if done == wanted || done == 0 {
        return elapsed;
    }
    Duration::from_secs_f64(elapsed.as_secs_f64() * wanted as f64 / done as f64)
}

/// Splits `total` operations between `threads` threads.
pub fn share(total: u64, threads: usize, i: usize) -> u64 {
    let threads = threads as u64;
    total / threads + u64::from((i as u64) < total % threads)
}
