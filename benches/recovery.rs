//! Time to open a log of 1k / 10k / 100k × 256 B records (default options:
//! 64 MiB segments, prefaulting on), as in the Go predecessor's
//! `Recovery/*Records`.
//!
//! - `unclean`: the log was never closed. Its files were copied while it
//!   was open, right after a `sync` (as a crash after that sync would leave
//!   them, with the segment being prepared next still there), so opening it
//!   runs crash recovery: every record's CRC, the scan for garbage after the
//!   tail, the flushes.
//! - `clean`: the files of the same log after `Writer::close`.
//! - `unclean_no_prefault`: `unclean` with `Options::prefault(false)`, which
//!   shows how much of an open is faulting in the rest of the active segment.
//!
//! Every iteration opens a fresh copy, written (outside the timing) the way
//! the library writes segments: the bytes up to the last non-zero page, then
//! `posix_fallocate` to the full size, then `fsync`, so the page cache is
//! warm but clean, as after a crash of the process (not of the machine).
//! Only `Log::open` is timed; closing the log and removing the copy are not.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use murakami::{Log, Options};
use tempfile::TempDir;

mod common;
use common::{RECORD_LEN, TempLog, drain_epoch_garbage, tempdir};

/// The files of a log directory, as the bytes that matter and the size.
struct Snapshot {
    files: Vec<SnapshotFile>,
}

struct SnapshotFile {
    name: String,
    /// The file's bytes up to its last non-zero page.
    head: Vec<u8>,
    /// The file's size.
    len: u64,
}

impl Snapshot {
    /// Copies the files of `dir` (every byte that is not a trailing zero).
    fn take(dir: &Path) -> Snapshot {
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).expect("list the log directory") {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().into_string().expect("a UTF-8 name");
            let mut head = fs::read(entry.path()).expect("read a log file");
            let len = head.len() as u64;
            let used = head.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            head.truncate(used.next_multiple_of(4096).min(head.len()));
            files.push(SnapshotFile { name, head, len });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot { files }
    }

    /// Writes the files into a fresh directory and makes them durable.
    fn restore(&self) -> TempDir {
        let dir = tempdir();
        for file in &self.files {
            let mut out = File::create(dir.path().join(&file.name)).expect("create a file");
            out.write_all(&file.head).expect("write a file");
            if file.len > file.head.len() as u64 {
                // SAFETY: a plain system call on a descriptor `out` owns.
                let rc =
                    unsafe { libc::posix_fallocate(out.as_raw_fd(), 0, file.len as libc::off_t) };
                assert_eq!(rc, 0, "posix_fallocate");
            }
            out.sync_all().expect("fsync a file");
        }
        File::open(dir.path())
            .and_then(|d| d.sync_all())
            .expect("fsync the directory");
        dir
    }

    fn has(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }
}

/// Snapshots of a log of `records` records: taken while it is open (after a
/// sync), and after it is closed.
fn snapshots(records: u64) -> (Snapshot, Snapshot) {
    let log = TempLog::filled(Options::default(), records, RECORD_LEN);
    // Let the preparing thread finish the next segment, so that the copy
    // holds it whole, as it would be most of the time.
    thread::sleep(Duration::from_millis(300));
    let unclean = Snapshot::take(log.dir.path());
    let TempLog {
        writer,
        reader,
        dir,
    } = log;
    writer.close().expect("close");
    drop(reader);
    let clean = Snapshot::take(dir.path());
    drop(dir);
    drain_epoch_garbage();
    assert!(!unclean.has("murakami.clean") && clean.has("murakami.clean"));
    (unclean, clean)
}

/// Opens a copy of `snapshot` once and checks what recovery reports.
fn check(snapshot: &Snapshot, options: &Options, records: u64, clean: bool) {
    let dir = snapshot.restore();
    let (writer, _reader) = Log::open(dir.path(), options.clone()).expect("open");
    let report = writer.recovery_report();
    assert_eq!(report.clean_shutdown, clean);
    assert_eq!(report.next_offset, records);
    assert!(report.cut.is_none(), "nothing to cut: {report:?}");
}

fn recovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("recovery");
    group.sampling_mode(SamplingMode::Flat);
    for records in [1_000u64, 10_000, 100_000] {
        let (unclean, clean) = snapshots(records);
        group.throughput(Throughput::Elements(records));
        let cases = [
            ("unclean", &unclean, Options::default(), false),
            ("clean", &clean, Options::default(), true),
            (
                "unclean_no_prefault",
                &unclean,
                Options::default().prefault(false),
                false,
            ),
        ];
        for (name, snapshot, options, was_clean) in cases {
            check(snapshot, &options, records, was_clean);
            group.bench_function(BenchmarkId::new(name, records), |b| {
                b.iter_batched(
                    || snapshot.restore(),
                    // The log and the directory are returned, so that they
                    // are closed and removed after the timing (in this order).
                    |dir| (Log::open(dir.path(), options.clone()).expect("open"), dir),
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = recovery
}
criterion_main!(benches);
