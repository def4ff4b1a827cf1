//! Entry points into the real publication and wake-up code for the loom
//! models in `loom-tests/` (only with the `loom` feature; not a public API).
//!
//! The models drive the library's own `Region` / `Appender` and
//! `Notify`: what loom checks is the code that ships, over a small
//! anonymous map instead of a file.
#![allow(missing_docs, missing_debug_implementations)]

use std::any::Any;
use std::io;
use std::path::{Path, PathBuf};

use crate::format::HEADER_LEN;
use crate::fs::{Map, SegmentFile, Vfs};
use crate::log::Shared;
use crate::notify::Notify;
use crate::options::Options;
use crate::reader::Reader;
use crate::recovery::RecoveryReport;
use crate::region::{Appender, Region};
use crate::segment::Segment;
use crate::segments::{SegmentList, Segments};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::syncer::Syncer;

/// An anonymous map standing in for a segment file; it remembers how far
/// it was flushed (what a crash would keep).
#[derive(Debug)]
struct Memory(memmap2::MmapRaw, Arc<AtomicUsize>);

impl Map for Memory {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.1.fetch_max(offset + len, Ordering::Release);
        Ok(())
    }
    fn populate_write(&self, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
}

/// The producer side of a region of `len` bytes.
pub struct Producer {
    appender: Appender,
    next: u64,
}

/// A reader of the same region.
#[derive(Clone)]
pub struct Consumer {
    region: Arc<Region>,
}

/// A fresh region and its two sides.
pub fn region(len: usize) -> (Producer, Consumer) {
    let (region, _) = memory_region(len);
    let appender = Region::appender(&region).expect("fresh region");
    (Producer { appender, next: 0 }, Consumer { region })
}

fn memory_region(len: usize) -> (Arc<Region>, Arc<AtomicUsize>) {
    let map = memmap2::MmapOptions::new()
        .len(len.max(HEADER_LEN))
        .map_anon()
        .expect("anonymous map");
    let flushed = Arc::new(AtomicUsize::new(0));
    let memory = Memory(map.into(), Arc::clone(&flushed));
    (Arc::new(Region::new(Box::new(memory), true)), flushed)
}

/// A one-segment log with the real syncer: the durable offset.
pub struct Durable {
    segments: Segments,
    syncer: Syncer,
    flushed: Arc<AtomicUsize>,
    region: Arc<Region>,
}

/// No file system: the models never create, rename or remove files.
#[derive(Debug)]
struct NoFiles;

fn no_files<T>() -> io::Result<T> {
    Err(io::Error::other("no files in a loom model"))
}

impl Vfs for NoFiles {
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        no_files()
    }
    fn lock(&self, _: &Path) -> io::Result<Option<Box<dyn Any + Send>>> {
        no_files()
    }
    fn list(&self, _: &Path) -> io::Result<Vec<String>> {
        no_files()
    }
    fn create(&self, _: &Path) -> io::Result<Box<dyn SegmentFile>> {
        no_files()
    }
    fn open(&self, _: &Path, _: bool) -> io::Result<Box<dyn SegmentFile>> {
        no_files()
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        no_files()
    }
    fn remove(&self, _: &Path) -> io::Result<()> {
        no_files()
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        no_files()
    }
    fn read_small(&self, _: &Path) -> io::Result<Option<Vec<u8>>> {
        no_files()
    }
    fn write_small(&self, _: &Path, _: &[u8]) -> io::Result<()> {
        no_files()
    }
}

/// A log of one segment of `len` bytes, its producer, and its syncer.
pub fn durable(len: usize) -> (Producer, Arc<Durable>) {
    let (region, flushed) = memory_region(len);
    let appender = Region::appender(&region).expect("fresh region");
    let segment = Arc::new(Segment::new(
        0,
        0,
        PathBuf::from("model"),
        Arc::clone(&region),
    ));
    let durable = Durable {
        segments: Segments::new(SegmentList::new(vec![segment])),
        syncer: Syncer::new(0, 0, HEADER_LEN),
        flushed,
        region,
    };
    (Producer { appender, next: 0 }, Arc::new(durable))
}

impl Durable {
    /// A sync, as the writer or the background syncer runs it.
    pub fn sync(&self) -> u64 {
        self.sync_ordered(false)
    }

    /// The mutant: the durable offset advanced before the flush.
    pub fn sync_durable_first(&self) -> u64 {
        self.sync_ordered(true)
    }

    fn sync_ordered(&self, durable_first: bool) -> u64 {
        self.syncer
            .sync_ordered(&self.segments, &NoFiles, Path::new("model"), durable_first)
            .expect("a model's sync")
    }

    /// The durable offset (`Acquire`).
    pub fn durable_offset(&self) -> u64 {
        self.syncer.durable()
    }

    /// How far the segment was flushed.
    pub fn flushed(&self) -> usize {
        self.flushed.load(Ordering::Acquire)
    }

    /// End of record `i`'s frame, reading only what is published.
    pub fn frame_end(&self, i: u64) -> Option<usize> {
        let published = self.region.published();
        let (header, payload) = self.region.record(published, i)?;
        let _ = payload;
        let start = self.region.position(published, i)?;
        Some(start + header.frame_len())
    }

    /// Record `i`, read as a durable reader would: only below the durable
    /// offset.
    pub fn read_durable(&self, i: u64) -> Option<Vec<u8>> {
        if i >= self.durable_offset() {
            return None;
        }
        let published = self.region.published();
        self.region.record(published, i).map(|(_, p)| p.to_vec())
    }
}

impl Producer {
    /// Writes a record (unpublished); `false` when the region is full.
    pub fn write(&mut self, payload: &[u8]) -> bool {
        let written = self.appender.write(self.next, 0, 0, payload);
        self.next += u64::from(written);
        written
    }

    /// Publishes, as the writer does (`Release`).
    pub fn publish(&self) {
        self.appender.publish();
    }

    /// A wrong publication (`Relaxed`), for the mutant models.
    pub fn publish_relaxed(&self) {
        self.appender.publish_with(Ordering::Relaxed);
    }
}

impl Consumer {
    /// Record `i`'s payload, if published.
    pub fn read(&self, i: u64) -> Option<Vec<u8>> {
        let published = self.region.published();
        self.region.record(published, i).map(|(_, p)| p.to_vec())
    }

    /// Records published.
    pub fn count(&self) -> u32 {
        self.region.published().count()
    }
}

/// The wake-up primitive of tailing readers.
pub struct Waker(Notify);

impl Default for Waker {
    fn default() -> Waker {
        Waker(Notify::new())
    }
}

impl Waker {
    /// The producer's side, after a publication: whether it saw a waiter.
    pub fn wake(&self) -> bool {
        self.0.wake()
    }

    /// The producer's side without its fence: the mutant.
    pub fn wake_unfenced(&self) -> bool {
        self.0.wake_without_fence()
    }

    /// The waiter's side up to the decision to sleep: registers (with the
    /// barrier) and checks `ready`; returns what it saw. A sleep would follow
    /// a `false`, still registered; [`Waker::unregister`] ends it.
    pub fn check_before_sleep(&self, ready: impl Fn() -> bool) -> bool {
        self.0.register();
        ready()
    }

    /// Ends a registration made by [`Waker::check_before_sleep`].
    pub fn unregister(&self) {
        self.0.unregister();
    }

    /// Sleeps until `ready()`.
    pub fn wait(&self, ready: impl Fn() -> bool) -> bool {
        let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        self.0.wait(far, ready)
    }
}

/// A producer that rolls, and a real [`Reader`] over the same log.
pub struct Rolling {
    shared: Arc<Shared>,
    appender: Appender,
    next: u64,
    sequence: u64,
}

/// A log of `len`-byte segments with no files: a rolling producer and a
/// reader (whose cursors are the real ones).
pub fn rolling(len: usize) -> (Rolling, Reader) {
    let (region, _) = memory_region(len);
    let appender = Region::appender(&region).expect("fresh region");
    let segment = Arc::new(Segment::new(0, 0, PathBuf::from("model-0"), region));
    let shared = Arc::new(Shared {
        dir: PathBuf::from("model"),
        options: Options::default(),
        vfs: std::sync::Arc::new(NoFiles),
        segments: Segments::new(SegmentList::new(vec![segment])),
        syncer: Syncer::new(0, 0, HEADER_LEN),
        closed: AtomicBool::new(false),
        notify: Notify::new(),
        report: RecoveryReport::default(),
        maintenance: Mutex::new(()),
        truncations: AtomicU64::new(0),
    });
    let reader = Reader::new(Arc::clone(&shared));
    let producer = Rolling {
        shared,
        appender,
        next: 0,
        sequence: 1,
    };
    (producer, reader)
}

impl Rolling {
    /// Writes and publishes a record in the active segment.
    pub fn append(&mut self, payload: &[u8]) {
        assert!(self.appender.write(self.next, 0, 0, payload), "room");
        self.next += 1;
        self.appender.publish();
    }

    /// Rolls to a new segment starting at the next offset, the way the
    /// writer does: everything published first, then the list swap.
    pub fn roll(&mut self) {
        self.roll_at(self.next);
    }

    /// The mutant: a roll whose new segment starts one offset too far.
    pub fn roll_with_a_gap(&mut self) {
        self.next += 1;
        self.roll_at(self.next);
    }

    fn roll_at(&mut self, base: u64) {
        self.appender.publish();
        let len = self.appender.region().len();
        let (region, _) = memory_region(len);
        let appender = Region::appender(&region).expect("fresh region");
        let path = PathBuf::from(format!("model-{base}"));
        let segment = Arc::new(Segment::new(base, self.sequence, path, region));
        self.sequence += 1;
        self.shared.segments.roll(0, segment);
        self.appender = appender;
    }
}
