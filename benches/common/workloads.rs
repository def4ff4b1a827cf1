//! The workloads the criterion benches and the report (`bench/`) both run,
//! free of criterion: each takes a count (or a duration) and returns the
//! time it took, and the caller decides how to repeat it.
//!
//! - reads: [`ReadFixture`] (sealed, active, cross-segment logs), the ways
//!   of reading ([`ReadWay`], [`read_loop`]), and many reading threads with
//!   or without a producer ([`read_threads`]);
//! - appends: [`append_n`], many threads through one [`SharedWriter`]
//!   ([`append_threads`]), sustained appends under a sync policy
//!   ([`sustained_appends`]), per-append latencies ([`append_latencies`]);
//! - the floor under a sync: [`MsyncFloor`];
//! - recovery: [`Snapshot`] of a log's files, restored for each open;
//! - retention: [`log_with_sealed`].

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use memmap2::{Advice, MmapOptions, MmapRaw};
use murakami::{Log, Options, ReadGuard, Reader, Retention, SharedWriter, SyncPolicy, Writer};
use tempfile::TempDir;

use super::fixtures::{
    TempLog, Walk, drain_epoch_garbage, payload, segment_size_for, share, tempdir,
};

/// Zero-copy reads made under one guard.
pub const PIN_BATCH: u64 = 1024;

// ---------------------------------------------------------------- reads

/// A log and the offsets `first..end` the read workloads read.
pub struct ReadFixture {
    /// The log.
    pub log: TempLog,
    /// First offset read.
    pub first: u64,
    /// One past the last offset read.
    pub end: u64,
}

impl ReadFixture {
    /// Records `0..records` of `len` bytes fill the first segment (up to
    /// its page-rounded slack); the log is then rolled, so they all sit in
    /// a sealed segment.
    pub fn sealed(records: u64, len: usize) -> ReadFixture {
        let options = Options::default().segment_size(segment_size_for(records, len));
        let mut log = TempLog::filled(options, records, len);
        assert_eq!(log.segment_files(), 1, "the records fill one segment");
        // The segment size is rounded up to whole pages: fill the slack
        // until one more record rolls the log.
        while log.segment_files() == 1 {
            log.append_n(1, len);
        }
        assert_eq!(log.segment_files(), 2, "one more record rolled the log");
        ReadFixture::over(log, records)
    }

    /// All records in the active (only) segment.
    pub fn active(records: u64, len: usize) -> ReadFixture {
        let log = TempLog::filled(Options::default(), records, len);
        assert_eq!(log.segment_files(), 1, "every record in the active segment");
        ReadFixture::over(log, records)
    }

    /// The records spread over segments of `segment_size` bytes.
    pub fn cross_segment(records: u64, len: usize, segment_size: u64) -> ReadFixture {
        let options = Options::default()
            .segment_size(segment_size)
            .max_record_size(len);
        ReadFixture::over(TempLog::filled(options, records, len), records)
    }

    fn over(log: TempLog, records: u64) -> ReadFixture {
        ReadFixture {
            log,
            first: 0,
            end: records,
        }
    }

    /// The log's reader.
    pub fn reader(&self) -> &Reader {
        &self.log.reader
    }

    /// Offsets in order, wrapping from the end back to the first.
    pub fn sequential(&self) -> Sequential {
        Sequential {
            next: self.first,
            first: self.first,
            end: self.end,
        }
    }
}

/// Offsets in order, wrapping from `end` back to `first`.
pub struct Sequential {
    next: u64,
    first: u64,
    end: u64,
}

impl Sequential {
    /// The next offset.
    #[inline(always)]
    pub fn next_offset(&mut self) -> u64 {
        let offset = self.next;
        self.next += 1;
        if self.next == self.end {
            self.next = self.first;
        }
        offset
    }
}

/// The ways of reading one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadWay {
    /// `Reader::read`: a copy into a new `Vec`.
    Read,
    /// `Reader::read_into`: a copy into a reused buffer.
    ReadInto,
    /// `Reader::get`: zero-copy, one guard per [`PIN_BATCH`] reads.
    Get,
    /// `get` and a copy into a reused buffer, one guard per [`PIN_BATCH`]
    /// reads: `read_into` without a pin (a full fence) per read.
    CopyPinned,
    /// `get` with a guard per read: what `read`/`read_into` pay for
    /// pinning, without their copy.
    GetPinEach,
}

/// Runs `read` `iters` times, under a fresh guard every [`PIN_BATCH`]
/// reads; returns the time it took.
pub fn pinned_batches(reader: &Reader, iters: u64, mut read: impl FnMut(&ReadGuard)) -> Duration {
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let n = left.min(PIN_BATCH);
        let guard = reader.pin();
        for _ in 0..n {
            read(&guard);
        }
        left -= n;
    }
    start.elapsed()
}

/// Reads `iters` records the way `way` says, at the offsets `next` gives;
/// returns the time it took.
pub fn read_loop(
    reader: &Reader,
    way: ReadWay,
    iters: u64,
    buf: &mut Vec<u8>,
    mut next: impl FnMut() -> u64,
) -> Duration {
    match way {
        ReadWay::Read => {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(reader.read(next()).expect("read"));
            }
            start.elapsed()
        }
        ReadWay::ReadInto => {
            let start = Instant::now();
            for _ in 0..iters {
                reader.read_into(next(), buf).expect("read_into");
                black_box(buf.as_ptr());
            }
            start.elapsed()
        }
        ReadWay::Get => pinned_batches(reader, iters, |guard| {
            let record = reader.get(next(), guard).expect("get");
            black_box(record.payload);
        }),
        ReadWay::CopyPinned => pinned_batches(reader, iters, |guard| {
            let record = reader.get(next(), guard).expect("get");
            buf.clear();
            buf.extend_from_slice(record.payload);
            black_box(buf.as_ptr());
        }),
        ReadWay::GetPinEach => {
            let start = Instant::now();
            for _ in 0..iters {
                let guard = reader.pin();
                let record = reader.get(next(), &guard).expect("get");
                black_box(record.payload);
            }
            start.elapsed()
        }
    }
}

/// What the threads of [`read_threads`] do.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Random offsets (the permutation given), `read_into` a reused buffer.
    RandomReadInto,
    /// The same offsets, zero-copy `get`, one guard per [`PIN_BATCH`] reads.
    RandomGet,
    /// Offsets `0..offsets.len()` in order, zero-copy `get`.
    SequentialGet,
}

/// How a producer fared beside the readers of [`read_threads`], summed
/// over calls.
#[derive(Debug, Default)]
pub struct ProducerStats {
    /// Calls with a producer.
    pub samples: u64,
    /// Records it appended.
    pub appended: u64,
    /// Time the readers ran.
    pub busy: Duration,
    /// Calls in which it ran out of room.
    pub out_of_room: u64,
}

impl ProducerStats {
    /// Records appended per second while the readers ran.
    pub fn rate(&self) -> f64 {
        self.appended as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    /// Prints how the producer fared, as benchmark `id`.
    pub fn report(&self, id: &str) {
        if self.samples == 0 {
            return;
        }
        println!(
            "{id}: producer appended {:.2}M records/s while the readers ran; \
             ran out of room in {} of {} calls",
            self.rate() / 1e6,
            self.out_of_room,
            self.samples,
        );
    }
}

/// Appends `len`-byte records until `stop`, or until `room` records are in.
/// Returns how many it appended and whether it ran out of room.
fn produce(
    writer: &mut Writer,
    len: usize,
    room: u64,
    stop: &AtomicBool,
    go: &Barrier,
) -> (u64, bool) {
    let body = payload(len);
    go.wait();
    let mut appended = 0;
    while !stop.load(Ordering::Relaxed) {
        if appended + 64 > room {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_micros(100));
            }
            return (appended, true);
        }
        for _ in 0..64 {
            black_box(writer.append(&body).expect("append"));
        }
        appended += 64;
    }
    (appended, false)
}

/// One reading thread's reads: `n` of them, starting at `start` in the
/// offset sequence.
fn read_work(reader: &Reader, work: Work, n: u64, offsets: &[u64], start: usize) {
    match work {
        Work::RandomReadInto => {
            let mut buf = Vec::new();
            let mut walk = Walk::new(offsets, start);
            for _ in 0..n {
                black_box(
                    reader
                        .read_into(walk.next_offset(), &mut buf)
                        .expect("read"),
                );
            }
            black_box(buf);
        }
        Work::RandomGet => {
            let mut walk = Walk::new(offsets, start);
            pinned_batches(reader, n, |guard| {
                let record = reader.get(walk.next_offset(), guard).expect("get");
                black_box(record.payload);
            });
        }
        Work::SequentialGet => {
            let records = offsets.len() as u64;
            let mut offset = start as u64 % records;
            pinned_batches(reader, n, |guard| {
                let record = reader.get(offset, guard).expect("get");
                black_box(record.payload);
                offset += 1;
                if offset == records {
                    offset = 0;
                }
            });
        }
    }
}

/// A producer for [`read_threads`]: the writer, the payload length and the
/// records it may still append.
pub type Producer<'a> = (&'a mut Writer, usize, u64);

/// Runs `iters` reads split over `threads` threads, with a producer
/// appending flat out if one is given; returns the wall time from the
/// first reader's start to the last one's end, and the records the
/// producer appended meanwhile.
pub fn read_threads(
    reader: &Reader,
    work: Work,
    threads: usize,
    iters: u64,
    offsets: &[u64],
    producer: Option<Producer<'_>>,
    stats: &mut ProducerStats,
) -> (Duration, u64) {
    let stop = AtomicBool::new(false);
    let go = Barrier::new(threads + 1 + usize::from(producer.is_some()));
    thread::scope(|s| {
        let producer = producer.map(|(writer, len, room)| {
            let (stop, go) = (&stop, &go);
            s.spawn(move || produce(writer, len, room, stop, go))
        });
        let readers: Vec<_> = (0..threads)
            .map(|i| {
                let go = &go;
                let reader = reader.clone();
                let n = share(iters, threads, i);
                let start = i * offsets.len() / threads;
                s.spawn(move || {
                    go.wait();
                    let began = Instant::now();
                    read_work(&reader, work, n, offsets, start);
                    (began, Instant::now())
                })
            })
            .collect();
        go.wait();
        let elapsed = span(
            readers
                .into_iter()
                .map(|r| r.join().expect("reader thread")),
        );
        stop.store(true, Ordering::Relaxed);
        let appended = match producer {
            Some(p) => {
                let (appended, out_of_room) = p.join().expect("producer thread");
                stats.samples += 1;
                stats.appended += appended;
                stats.busy += elapsed;
                stats.out_of_room += u64::from(out_of_room);
                appended
            }
            None => 0,
        };
        (elapsed, appended)
    })
}

// -------------------------------------------------------------- appends

/// Appends `n` records of `body` through `writer`, one `append` call each;
/// returns the time.
pub fn append_n(writer: &mut Writer, n: u64, body: &[u8]) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        black_box(writer.append(black_box(body)).expect("append"));
    }
    start.elapsed()
}

/// A log written through a [`SharedWriter`]. Fields drop in order: the
/// writer closes the log before the directory is removed.
pub struct SharedLog {
    /// The log's writer, shared.
    pub writer: SharedWriter,
    _dir: TempDir,
}

impl SharedLog {
    /// Opens an empty log with `options` in a fresh directory.
    pub fn open(options: Options) -> SharedLog {
        let dir = tempdir();
        let (writer, _) = Log::open(dir.path(), options).expect("open a log");
        SharedLog {
            writer: writer.into_shared(),
            _dir: dir,
        }
    }
}

/// Runs `n` appends split over `threads` threads through `writer` (durable
/// ones if `durable`); returns the wall time from the first thread's start
/// to the last one's end.
pub fn append_threads(
    writer: &SharedWriter,
    threads: usize,
    n: u64,
    body: &[u8],
    durable: bool,
) -> Duration {
    let go = Barrier::new(threads + 1);
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (go, writer) = (&go, writer.clone());
                let mine = share(n, threads, i);
                s.spawn(move || {
                    go.wait();
                    let began = Instant::now();
                    for _ in 0..mine {
                        let offset = if durable {
                            writer.append_durable(black_box(body))
                        } else {
                            writer.append(black_box(body))
                        };
                        black_box(offset.expect("append"));
                    }
                    (began, Instant::now())
                })
            })
            .collect();
        go.wait();
        span(
            handles
                .into_iter()
                .map(|h| h.join().expect("appending thread")),
        )
    })
}

/// From the earliest start to the latest end of the threads' `(start,
/// end)` times. Each thread reads the clock itself once released, not the
/// thread that released them: with more threads than CPUs, that one may
/// get its CPU back only after the others are done.
fn span(times: impl Iterator<Item = (Instant, Instant)>) -> Duration {
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    for (start, end) in times {
        first = Some(first.map_or(start, |f| f.min(start)));
        last = Some(last.map_or(end, |l| l.max(end)));
    }
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    }
}

/// What [`sustained_appends`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Sustained {
    /// Wall time per append, ns.
    pub ns_per_append: f64,
    /// TLB-shootdown interrupts per second on all CPUs meanwhile, where
    /// the machine reports them.
    pub shootdowns_per_s: Option<f64>,
}

/// Appends `len`-byte records to a fresh log with sync policy `policy`
/// for `round`, in calls of 4096 appends; the log is closed and removed
/// (untimed) before it returns. Run the policies taking turns, round
/// after round, so that whatever the machine does meanwhile (write-back
/// of earlier logs, other tenants) falls on every policy alike, and for
/// long enough that even a 100 ms policy syncs several times.
pub fn sustained_appends(policy: SyncPolicy, len: usize, round: Duration) -> Sustained {
    let body = payload(len);
    let mut log = TempLog::open(Options::default().sync_policy(policy));
    let before = tlb_shootdowns();
    let start = Instant::now();
    let mut appended = 0u64;
    while start.elapsed() < round {
        append_n(&mut log.writer, 4096, &body);
        appended += 4096;
    }
    let elapsed = start.elapsed();
    let shootdowns_per_s = match (before, tlb_shootdowns()) {
        (Some(before), Some(after)) => Some((after - before) as f64 / elapsed.as_secs_f64()),
        _ => None,
    };
    drop(log);
    drain_epoch_garbage();
    Sustained {
        ns_per_append: elapsed.as_nanos() as f64 / appended as f64,
        shootdowns_per_s,
    }
}

/// TLB-shootdown interrupts so far, summed over CPUs (Linux's
/// `/proc/interrupts`), if the machine reports them.
pub fn tlb_shootdowns() -> Option<u64> {
    let table = fs::read_to_string("/proc/interrupts").ok()?;
    let line = table.lines().find(|l| l.trim_start().starts_with("TLB:"))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .map_while(|field| field.parse::<u64>().ok())
            .sum(),
    )
}

/// Per-append latencies (ns, sorted) of `count` appends of `len` bytes to
/// a fresh log with `options`, after `warm` untimed ones; each append is
/// timed alone (the clock adds ~25 ns), so segment rolls and whatever else
/// the log does on the producer's thread are in the tail. Returns the
/// latencies and the segment files left on disk.
pub fn append_latencies(
    options: Options,
    warm: u64,
    count: usize,
    len: usize,
) -> (Vec<u64>, usize) {
    let mut log = TempLog::open(options);
    let body = payload(len);
    append_n(&mut log.writer, warm, &body);
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        black_box(log.writer.append(black_box(&body)).expect("append"));
        latencies.push(start.elapsed().as_nanos() as u64);
    }
    latencies.sort_unstable();
    (latencies, log.segment_files())
}

/// The value at `fraction` (0 to 1) of `sorted`.
pub fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

// -------------------------------------------------------------- msync floor

/// Size of the file the msync floor writes into.
pub const FLOOR_FILE: usize = 64 << 20;

/// Writes frames into a prefaulted, fallocated file and msyncs the range of
/// each one, as a sync after every record does, with nothing else around.
pub struct MsyncFloor {
    map: MmapRaw,
    _dir: TempDir,
    pos: usize,
    frame: Vec<u8>,
    /// Also write 8 bytes into the first page and flush from byte 0, as a
    /// sync that carries the segment's checkpoint does.
    with_header: bool,
}

impl MsyncFloor {
    /// A floor for frames of `frame` bytes.
    pub fn new(frame: usize, with_header: bool) -> MsyncFloor {
        let dir = tempdir();
        let file = fallocated_file(dir.path(), "floor", FLOOR_FILE);
        // Left as the library leaves a segment: reserved (unwritten
        // extents, which each flush of newly written blocks converts) and
        // faulted in (dirty zero pages ahead of the writer), never synced
        // whole.
        let map = prefaulted_map(&file, FLOOR_FILE);
        MsyncFloor {
            map,
            _dir: dir,
            pos: 4096,
            frame: payload(frame),
            with_header,
        }
    }

    /// Writes and flushes one frame; returns the time that took.
    pub fn one(&mut self, i: u64) -> Duration {
        let len = self.frame.len();
        let start = Instant::now();
        if self.pos + len > FLOOR_FILE {
            self.pos = 4096;
        }
        self.frame[..8].copy_from_slice(&i.to_le_bytes());
        // SAFETY: `pos + len` is within the writable map, which lives as
        // long as `self`; only this thread touches it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.frame.as_ptr(),
                self.map.as_mut_ptr().add(self.pos),
                len,
            );
        }
        let flushed = if self.with_header {
            // SAFETY: bytes 32..40 of the map are within it; as above.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    i.to_le_bytes().as_ptr(),
                    self.map.as_mut_ptr().add(32),
                    8,
                );
            }
            self.map.flush_range(0, self.pos + len)
        } else {
            self.map.flush_range(self.pos, len)
        };
        flushed.expect("msync");
        self.pos += len;
        start.elapsed()
    }

    /// Writes and flushes `n` frames; returns the time that took.
    pub fn run(&mut self, n: u64) -> Duration {
        (0..n).map(|i| self.one(i)).sum()
    }
}

/// A new file `name` in `dir`, reserved with `posix_fallocate` to `len`
/// bytes (unwritten extents, as the library reserves a segment).
pub fn fallocated_file(dir: &Path, name: &str, len: usize) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join(name))
        .expect("create a file");
    // SAFETY: a plain system call on a descriptor `file` owns.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    assert_eq!(rc, 0, "posix_fallocate");
    file
}

/// The first `len` bytes of `file` mapped shared and writable, and faulted
/// in for writing (`MADV_POPULATE_WRITE`), as the library prepares a
/// segment ahead of the writer.
pub fn prefaulted_map(file: &File, len: usize) -> MmapRaw {
    let map = MmapOptions::new()
        .len(len)
        .map_raw(file)
        .expect("map the file");
    map.advise_range(Advice::PopulateWrite, 0, len)
        .expect("MADV_POPULATE_WRITE");
    map
}

// -------------------------------------------------------------- recovery

/// The files of a log directory, as the bytes that matter and the size.
pub struct Snapshot {
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
    pub fn take(dir: &Path) -> Snapshot {
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

    /// Writes the files into a fresh directory the way the library writes
    /// segments (the bytes up to the last non-zero page, then
    /// `posix_fallocate` to the full size) and makes them durable, so the
    /// page cache is warm but clean, as after a crash of the process (not
    /// of the machine).
    pub fn restore(&self) -> TempDir {
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

    /// Whether the snapshot holds a file of this name.
    pub fn has(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }
}

/// Snapshots of a log of `records` records of `len` bytes (default
/// options): taken while it is open (after a sync: what a crash after that
/// sync leaves), and after it is closed.
pub fn snapshots(records: u64, len: usize) -> (Snapshot, Snapshot) {
    let log = TempLog::filled(Options::default(), records, len);
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
pub fn check_recovery(snapshot: &Snapshot, options: &Options, records: u64, clean: bool) {
    let dir = snapshot.restore();
    let (writer, _reader) = Log::open(dir.path(), options.clone()).expect("open");
    let report = writer.recovery_report();
    assert_eq!(report.clean_shutdown, clean);
    assert_eq!(report.next_offset, records);
    assert!(report.cut.is_none(), "nothing to cut: {report:?}");
}

// -------------------------------------------------------------- retention

/// Segment size of the retention-cleanup logs.
pub const CLEANUP_SEGMENT: u64 = 1 << 20;

/// A log with `sealed` sealed segments of [`CLEANUP_SEGMENT`] bytes and an
/// active one, and a retention that removes every sealed segment.
pub fn log_with_sealed(sealed: usize) -> TempLog {
    let options = Options::default()
        .segment_size(CLEANUP_SEGMENT)
        .max_record_size(64 << 10)
        .prefault(false)
        .retention(Retention::none().max_bytes(0));
    let mut log = TempLog::open(options);
    while log.segment_files() < sealed + 1 {
        log.append_n(256, 256);
    }
    log.writer.sync().expect("sync");
    log
}
