//! Entry points into the real publication, reclamation, sync and wake-up
//! code for the loom models in `loom-tests/` (only with the `loom` feature;
//! not a public API).
//!
//! The models drive the library's own `Region` / `Appender`, segment list,
//! retention, syncer, background thread, group commit and `Notify`, and for
//! readers in other processes the `Follower` and `wake::remote` over the
//! control file's words: what loom checks is the code that ships, over
//! small anonymous maps instead of files (two regions over one map stand in
//! for two processes' maps of one file, sharing the loom shadow of its
//! bytes). What stands in for the parts that need files (the `Writer`
//! itself, with its preparing thread; `Remote`, the reader process's link
//! to the files) is marked as such below.
#![allow(missing_docs, missing_debug_implementations)]

use std::any::Any;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::durability::Syncer;
use crate::error::{Error, Result};
use crate::format::HEADER_LEN;
use crate::options::Options;
use crate::primitives::{Arc, AtomicUsize, Mutex, Ordering, fence};
use crate::read::reader::Reader;
use crate::recovery::RecoveryReport;
use crate::retention::{self, Removed};
use crate::shared::Shared;
use crate::storage::control::Control;
use crate::storage::fs::{Map, SegmentFile, Vfs};
use crate::storage::list::{SegmentList, Segments};
use crate::storage::map::Shadow;
use crate::storage::region::{self, Appender, Followed, Follower, Region};
use crate::storage::segment::Segment;
use crate::wake::notify::Notify;
use crate::wake::remote;
use crate::wake::word::WaitWord;
use crate::write::background::Periodic;
use crate::write::model::{self, Model};
use crate::write::shared_writer::SharedWriter;

/// An anonymous map standing in for a segment file; it remembers how far
/// it was flushed (what a crash would keep) and, outside the model's view
/// (a std counter: a statistic, not part of the protocol), how many flushes
/// reached it.
#[derive(Debug)]
struct Memory(
    memmap2::MmapRaw,
    Arc<AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

// SAFETY: an anonymous read-write mapping, page-aligned, unmapped only on
// drop; `flush_range` only counts, and `release` keeps the no-op default.
unsafe impl Map for Memory {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
    fn writable(&self) -> bool {
        true
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.1.fetch_max(offset + len, Ordering::Release);
        self.2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    let (region, flushed, _) = counted_region(len);
    (region, flushed)
}

/// A region over [`Memory`], with how far it was flushed and how many
/// flushes reached it.
fn counted_region(
    len: usize,
) -> (
    Arc<Region>,
    Arc<AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let flushed = Arc::new(AtomicUsize::new(0));
    let flushes = std::sync::Arc::default();
    let memory = Memory(
        anonymous(len),
        Arc::clone(&flushed),
        std::sync::Arc::clone(&flushes),
    );
    (
        Arc::new(Region::new(Box::new(memory)).expect("a model region")),
        flushed,
        flushes,
    )
}

fn anonymous(len: usize) -> memmap2::MmapRaw {
    memmap2::MmapOptions::new()
        .len(len.max(HEADER_LEN))
        .map_anon()
        .expect("anonymous map")
        .into()
}

/// A one-segment log with the real syncer: the durable offset.
pub struct Durable {
    segments: Segments,
    syncer: Syncer,
    flushed: Arc<AtomicUsize>,
    region: Arc<Region>,
}

/// No file system: creating, opening or renaming a file fails; removing
/// one (retention) and syncing the directory succeed and do nothing.
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
        Ok(())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Ok(())
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
            .sync_ordered(
                (&self.segments, &NoFiles, Path::new("model")),
                durable_first,
                &|_| {},
            )
            .expect("a model's sync")
    }

    /// A sync that a latched failure may refuse: the new durable offset,
    /// or `None` when refused.
    pub fn try_sync(&self) -> Option<u64> {
        self.syncer
            .sync(&self.segments, (&NoFiles, Path::new("model")), &|_| {})
            .ok()
    }

    /// A truncation from `offset` failing once it has begun changing the
    /// log, as `Writer::truncate_from` fails then: syncs held off, the
    /// durable offset lowered to the cut, then the failure latched through
    /// the pause. With `latch_after_release`, the mutant (issue 11): the
    /// pause let go first, and the failure latched after it.
    pub fn fail_truncation(&self, offset: u64, latch_after_release: bool) {
        let pause = self.syncer.pause();
        pause.lower_durable(offset);
        let error = io::Error::other("a model truncation's failed write");
        if latch_after_release {
            drop(pause);
            self.syncer.poison.latch(error);
        } else {
            pause.fail(error);
        }
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
    let shared = model_shared(vec![segment], 0);
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
        self.shared.segments().roll(0, segment);
        self.appender = appender;
    }
}

/// The state a writer and its readers share, for a log of `segments` with
/// no files, whose records below `durable` are durable (the active
/// segment's flushes start after its header).
fn model_shared(segments: Vec<Arc<Segment>>, durable: u64) -> Arc<Shared> {
    let active = segments.last().expect("an active segment").base();
    Arc::new(Shared::new(
        (
            Path::new("model"),
            Options::default(),
            std::sync::Arc::new(NoFiles),
        ),
        Segments::new(SegmentList::new(segments)),
        Syncer::new(durable, active, HEADER_LEN),
        RecoveryReport::default(),
    ))
}

// ---------------------------------------------------------------------------
// Retention while readers read: the unmap made observable.

/// The bytes of a segment in the retention model, and whether the segment
/// was unmapped.
///
/// Unmapping (dropping the region's map, which is what the library does
/// when the last list or cursor holding a removed segment goes) is a write
/// to `unmapped` that loom tracks, and every use of a record's slice in the
/// model reads it. So a use that is not ordered before the unmap is a
/// causality violation loom reports, and one ordered after it reads `true`.
/// The bytes themselves stay mapped until the model ends, so even a wrong
/// variant of the code never touches unmapped memory for real.
#[derive(Debug)]
struct Mapping {
    bytes: memmap2::MmapRaw,
    unmapped: loom::cell::UnsafeCell<bool>,
    /// Flushes of this segment running now (watched only when
    /// `watch_flushes` is on: it costs the other models executions).
    flushing: AtomicUsize,
    watch_flushes: std::sync::atomic::AtomicBool,
    /// Whether the first flush watched was of the header (offset 0).
    header_first: std::sync::Mutex<Option<bool>>,
}

// SAFETY: `bytes` is a plain mapping (Send + Sync); `unmapped` is only
// accessed through loom's `with`/`with_mut`, which report any pair of
// accesses not ordered by happens-before before they touch the value; the
// other fields are atomics and a mutex, `Sync` themselves.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn unmap(&self) {
        self.unmapped.with_mut(|unmapped| {
            // SAFETY: loom checked, before this closure runs, that every
            // other access to the cell happens-before this one.
            unsafe { *unmapped = true }
        });
    }

    fn is_unmapped(&self) -> bool {
        self.unmapped.with(|unmapped| {
            // SAFETY: loom checked, before this closure runs, that the last
            // write to the cell happens-before this read.
            unsafe { *unmapped }
        })
    }

    fn new(len: usize) -> Mapping {
        Mapping {
            bytes: anonymous(len),
            unmapped: loom::cell::UnsafeCell::new(false),
            flushing: AtomicUsize::new(0),
            watch_flushes: std::sync::atomic::AtomicBool::new(false),
            header_first: std::sync::Mutex::new(None),
        }
    }

    /// A flush of `offset..`: when watched, it must be the only one running
    /// (and it gives the model checker a turn in the middle).
    fn flush(&self, offset: usize) {
        if !self
            .watch_flushes
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let others = self.flushing.fetch_add(1, Ordering::AcqRel);
        assert_eq!(others, 0, "two flushes of one file at once");
        self.header_first.lock().unwrap().get_or_insert(offset == 0);
        loom::thread::yield_now();
        self.flushing.fetch_sub(1, Ordering::AcqRel);
    }

    fn holds(&self, bytes: &[u8]) -> bool {
        let start = self.bytes.as_ptr() as usize;
        let at = bytes.as_ptr() as usize;
        at >= start && at + bytes.len() <= start + self.bytes.len()
    }
}

/// The map of a segment in the retention model: dropping it is the unmap.
#[derive(Debug)]
struct Lasting(std::sync::Arc<Mapping>);

// SAFETY: an anonymous read-write mapping (`Mapping::bytes`), page-aligned,
// that stays mapped until the model ends (the "unmap" is a loom-tracked
// flag, not an munmap); no method changes a byte.
unsafe impl Map for Lasting {
    fn as_ptr(&self) -> *mut u8 {
        self.0.bytes.as_mut_ptr()
    }
    fn writable(&self) -> bool {
        true
    }
    fn len(&self) -> usize {
        self.0.bytes.len()
    }
    fn flush_range(&self, offset: usize, _: usize) -> io::Result<()> {
        self.0.flush(offset);
        Ok(())
    }
    fn populate_write(&self, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Lasting {
    fn drop(&mut self) {
        self.0.unmap();
    }
}

/// A log of two `len`-byte segments, record 0 in the first (sealed) and
/// record 1 in the second (active), whose first segment retention removes
/// while readers read.
pub struct Retiring {
    shared: Arc<Shared>,
    mappings: Vec<std::sync::Arc<Mapping>>,
}

/// The retention model's log and a real reader of it.
pub fn retiring(len: usize, payloads: [&[u8]; 2]) -> (Retiring, Reader) {
    let mut segments = Vec::new();
    let mut mappings = Vec::new();
    for (base, payload) in (0u64..).zip(payloads) {
        let mapping = std::sync::Arc::new(Mapping::new(len));
        let map = Lasting(std::sync::Arc::clone(&mapping));
        let region = Arc::new(Region::new(Box::new(map)).expect("a model region"));
        let mut appender = Region::appender(&region).expect("fresh region");
        assert!(appender.write(base, 0, 0, payload), "room");
        appender.publish();
        let path = PathBuf::from(format!("model-{base}"));
        segments.push(Arc::new(Segment::new(base, base, path, region)));
        mappings.push(mapping);
    }
    segments[0].seal(0);
    let shared = model_shared(segments, 0);
    let reader = Reader::new(Arc::clone(&shared));
    (Retiring { shared, mappings }, reader)
}

impl Retiring {
    /// A prefix purge, as `Writer::purge_before` runs it: the removed
    /// segments' files removed, the segment list swapped under the epoch,
    /// garbage collected. Returns how many segments it removed.
    pub fn purge_before(&self, offset: u64) -> usize {
        retention::purge_before(&self.shared, offset)
            .expect("a model's purge")
            .segments
    }

    /// A sync, as the writer or the background syncer runs it (the real
    /// one: the active segment's records flushed, then the durable offset
    /// advanced). Returns the durable offset.
    pub fn sync(&self) -> u64 {
        self.shared
            .syncer()
            .sync(
                self.shared.segments(),
                (&NoFiles, Path::new("model")),
                &|_| {},
            )
            .expect("a model's sync")
    }

    /// From now on every flush of the active segment checks that it is the
    /// only one running. With `beside_syncs`, the mutant: retention's flushes
    /// do not wait for syncs.
    pub fn watch_flushes(&self, beside_syncs: bool) {
        let last = self.mappings.last().expect("an active segment");
        last.watch_flushes
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.shared
            .syncer()
            .unserialized_flushes
            .store(beside_syncs, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the active segment's first flush was of its header (the
    /// purge's) rather than of its records (the sync's).
    pub fn header_flushed_first(&self) -> Option<bool> {
        let last = self.mappings.last().expect("an active segment");
        *last.header_first.lock().unwrap()
    }

    /// The mutant: the same purge, and then the removed segments unmapped
    /// at once instead of when the epoch lets their list go.
    pub fn purge_unmapping_at_once(&self, offset: u64) -> usize {
        let removed = self.purge_before(offset);
        for mapping in &self.mappings[..removed] {
            mapping.unmap();
        }
        removed
    }

    /// A truncation from `offset`, as `Writer::truncate_from` commits it
    /// once its marker is durable: the real list swap (the segments from
    /// `offset` on dropped, a new active segment starting there), then the
    /// dropped segments released and garbage collected. With
    /// `unmap_at_once`, the mutant: the dropped segments unmapped at once.
    /// Returns how many segments it dropped.
    pub fn truncate_from(&self, offset: u64, unmap_at_once: bool) -> usize {
        let (dropped, _) = self.truncate(offset, Swap::Real);
        if unmap_at_once {
            for mapping in &self.mappings[dropped.clone()] {
                mapping.unmap();
            }
        }
        dropped.len()
    }

    /// The truncation of [`Retiring::truncate_from`] at `offset`, then
    /// `payload` appended at `offset` in the new history. With
    /// `keep_cut_at_base`, the mutant: the swap as it was before it hid the
    /// records of a segment that starts at `offset` (it only dropped that
    /// segment from the list, so a cursor holding it read on).
    pub fn truncate_and_append(&self, offset: u64, payload: &[u8], keep_cut_at_base: bool) {
        let swap = if keep_cut_at_base {
            Swap::KeepingCutAtBase
        } else {
            Swap::Real
        };
        let (_, mut appender) = self.truncate(offset, swap);
        assert!(appender.write(offset, 0, 0, payload), "room");
        appender.publish();
    }

    /// Truncations so far (`Acquire`, as a group-commit waiter reads it).
    pub fn truncations(&self) -> u64 {
        self.shared.truncations()
    }

    /// The truncation itself; returns the indexes of the segments it dropped
    /// and the new active segment's appender.
    fn truncate(&self, offset: u64, swap: Swap) -> (std::ops::Range<usize>, Appender) {
        let (index, cut, later) = {
            let guard = crate::primitives::pin();
            let list = self.shared.segments().load(&guard);
            let index = list.position_of(offset).expect("an offset of the log");
            let segments = list.segments();
            (
                index,
                Arc::clone(&segments[index]),
                segments[index + 1..].to_vec(),
            )
        };
        let len = cut.region().len();
        let mapping = std::sync::Arc::new(Mapping::new(len));
        let region = Arc::new(Region::new(Box::new(Lasting(mapping))).expect("a model region"));
        let appender = Region::appender(&region).expect("fresh region");
        let path = PathBuf::from(format!("model-{offset}-new"));
        // Its creation sequence only has to be newer than the model's two.
        let sequence = self.mappings.len() as u64;
        let segment = Arc::new(Segment::new(offset, sequence, path, region));
        // The segments after the cut go, and the cut one too when the
        // truncation starts where it does.
        let kept = if offset == cut.base() {
            index
        } else {
            index + 1
        };
        let dropped = kept..index + 1 + later.len();
        let at = (offset, index);
        match swap {
            Swap::Real => {
                crate::truncation::swap_truncated(
                    self.shared.segments(),
                    at,
                    &cut,
                    &later,
                    segment,
                );
            }
            Swap::KeepingCutAtBase => {
                swap_keeping_cut_at_base(self.shared.segments(), at, &cut, &later, segment);
            }
        }
        self.shared.count_truncation();
        drop((cut, later));
        crate::storage::list::Segments::collect_garbage();
        (dropped, appender)
    }

    /// A use of a record's slice: whether its segment was unmapped (a use
    /// that races the unmap, loom reports).
    pub fn is_unmapped_under(&self, bytes: &[u8]) -> bool {
        let mapping = self
            .mappings
            .iter()
            .find(|m| m.holds(bytes))
            .expect("a slice of a model segment");
        mapping.is_unmapped()
    }

    /// Whether segment `i` was unmapped (call once the readers are done).
    pub fn unmapped(&self, i: usize) -> bool {
        self.mappings[i].is_unmapped()
    }
}

/// Which list swap a model truncation runs.
#[derive(Clone, Copy)]
enum Swap {
    /// `writer::swap_truncated`.
    Real,
    /// The mutant [`swap_keeping_cut_at_base`].
    KeepingCutAtBase,
}

/// The mutant: `swap_truncated` as it was before it hid the records of a
/// segment that starts at the cut (issue 11): such a segment left the list
/// with its published count unchanged.
fn swap_keeping_cut_at_base(
    segments: &Segments,
    (offset, index): (u64, usize),
    cut: &Arc<Segment>,
    later: &[Arc<Segment>],
    segment: Arc<Segment>,
) {
    segments.update(|list| {
        let mut kept = list.segments()[..index].to_vec();
        if offset > cut.base() {
            cut.cut_at(offset);
            kept.push(Arc::clone(cut));
        }
        for gone in later {
            gone.cut_at(gone.base());
        }
        kept.push(segment);
        (Some(SegmentList::new(kept)), ())
    });
}

// ---------------------------------------------------------------------------
// Group commit and the background syncer: a producer without files.

/// The producer of a one-segment log without files. Its append is the
/// writer's (`Writer::append_unsynced`: the poison check, the frame with
/// the durable hint, the `Release` publication, the fence and the wake-up
/// of waiting readers) minus the roll, which needs files.
pub struct ModelProducer {
    shared: Arc<Shared>,
    appender: Appender,
    next: u64,
    acknowledge_any_flush: bool,
}

impl Model for ModelProducer {
    fn acknowledges_any_flush(&self) -> bool {
        self.acknowledge_any_flush
    }

    fn append(&mut self, payload: &[u8]) -> Result<u64> {
        self.shared.syncer().poison.check()?;
        let offset = self.next;
        let hint = self.shared.syncer().durable_hint();
        if !self.appender.write(offset, 0, hint, payload) {
            return Err(Error::RecordTooLarge {
                len: payload.len(),
                max: self.appender.region().len(),
            });
        }
        self.next += 1;
        self.publish();
        Ok(offset)
    }

    fn append_batch(&mut self, records: &[&[u8]]) -> Result<Range<u64>> {
        self.shared.syncer().poison.check()?;
        let first = self.next;
        let hint = self.shared.syncer().durable_hint();
        for record in records {
            if !self.appender.write(self.next, 0, hint, record) {
                break;
            }
            self.next += 1;
        }
        self.publish();
        Ok(first..self.next)
    }

    fn next_offset(&self) -> u64 {
        self.next
    }

    fn purge_before(&mut self, offset: u64) -> Result<Removed> {
        retention::purge_before(&self.shared, offset)
    }

    fn cleanup(&mut self) -> Result<Removed> {
        retention::cleanup(&self.shared, 0)
    }

    /// As the writer's close: a last sync, then the log marked closed and
    /// every waiter woken.
    fn close(self: Box<Self>) -> Result<()> {
        let synced = self.shared.sync().map(|_| ());
        self.shared.close();
        synced
    }
}

impl ModelProducer {
    /// As `Writer::publish`.
    fn publish(&self) {
        self.appender.publish();
        if self.shared.notify().producer_fence() {
            fence(Ordering::SeqCst);
        }
        self.shared.notify().wake();
    }
}

/// What the models check a log against: its durable offset, how far its
/// one segment was flushed, how many flushes reached it, and where each
/// published record ends.
#[derive(Clone)]
pub struct Flushes {
    shared: Arc<Shared>,
    region: Arc<Region>,
    flushed: Arc<AtomicUsize>,
    flushes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Flushes {
    /// The durable offset (`Acquire`).
    pub fn durable_offset(&self) -> u64 {
        self.shared.syncer().durable()
    }

    /// How far the segment was flushed (`Acquire`).
    pub fn flushed(&self) -> usize {
        self.flushed.load(Ordering::Acquire)
    }

    /// How many flushes reached the segment (a statistic, outside the model).
    pub fn flushes(&self) -> usize {
        self.flushes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// End of record `i`'s frame, reading only what is published.
    pub fn frame_end(&self, i: u64) -> Option<usize> {
        let published = self.region.published();
        let (header, _) = self.region.record(published, i)?;
        let start = self.region.position(published, i)?;
        Some(start + header.frame_len())
    }

    /// Whether every record below the durable offset was flushed (and
    /// published): what a crash right now would keep.
    pub fn durable_is_flushed(&self) -> bool {
        let durable = self.durable_offset();
        durable == 0
            || self
                .frame_end(durable - 1)
                .is_some_and(|end| self.flushed() >= end)
    }
}

/// A one-segment log without files: the producer, the checks.
fn one_segment(len: usize) -> (Arc<Shared>, Appender, Flushes) {
    let (region, flushed, flushes) = counted_region(len);
    let appender = Region::appender(&region).expect("fresh region");
    let segment = Arc::new(Segment::new(
        0,
        0,
        PathBuf::from("model-0"),
        Arc::clone(&region),
    ));
    let shared = model_shared(vec![segment], 0);
    let checks = Flushes {
        shared: Arc::clone(&shared),
        region,
        flushed,
        flushes,
    };
    (shared, appender, checks)
}

/// A [`SharedWriter`] (the real one: leader by compare-and-swap, gather,
/// followers parked and unparked) over a one-segment log without files;
/// with `acknowledge_any_flush`, the mutant whose followers return when the
/// flush they waited for ends, covered or not.
pub fn group_commit(len: usize, acknowledge_any_flush: bool) -> (SharedWriter, Flushes) {
    let (shared, appender, checks) = one_segment(len);
    let producer = ModelProducer {
        shared: Arc::clone(&shared),
        appender,
        next: 0,
        acknowledge_any_flush,
    };
    let writer = SharedWriter::serializing(shared, model::Producer::Model(Box::new(producer)));
    (writer, checks)
}

/// How the background syncer's model closes, and which sync its thread
/// runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Background {
    /// As `SyncPolicy::Interval` does: the thread runs `Shared::sync`; the
    /// close stops it and then syncs.
    Real,
    /// The mutant: the thread's sync advances the durable offset before it
    /// flushes.
    DurableFirst,
    /// The mutant: the close stops the thread and does not sync.
    CloseWithoutSync,
}

/// A producer with a background syncer (the real `Periodic` thread
/// running the real sync), over a one-segment log without files.
pub struct Syncing {
    producer: ModelProducer,
    thread: Option<Periodic>,
    runs: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    variant: Background,
}

/// Starts the background syncer of a one-segment log.
pub fn background(len: usize, variant: Background) -> (Syncing, Flushes) {
    let (shared, appender, checks) = one_segment(len);
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // The task the writer gives `Periodic` under `SyncPolicy::Interval`
    // (`shared.sync().is_ok()`), counting its runs.
    let task = {
        let shared = Arc::clone(&shared);
        let runs = std::sync::Arc::clone(&runs);
        move || {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match variant {
                Background::DurableFirst => shared
                    .syncer()
                    .sync_ordered(
                        (shared.segments(), shared.vfs(), shared.dir()),
                        true,
                        &|_| {},
                    )
                    .is_ok(),
                _ => shared.sync().is_ok(),
            }
        }
    };
    let thread = Periodic::start("murakami-sync", Duration::from_millis(1), task, drop)
        .expect("a model's thread");
    let producer = ModelProducer {
        shared,
        appender,
        next: 0,
        acknowledge_any_flush: false,
    };
    let syncing = Syncing {
        producer,
        thread: Some(thread),
        runs,
        variant,
    };
    (syncing, checks)
}

impl Syncing {
    /// Appends a record, as the writer does (no sync of its own: the
    /// interval policy leaves that to the thread).
    pub fn append(&mut self, payload: &[u8]) -> u64 {
        self.producer.append(payload).expect("a model's append")
    }

    /// Closes as the writer does: stops the thread (waking and joining it),
    /// then syncs everything and marks the log closed. Returns how many
    /// times the thread synced.
    pub fn close(mut self) -> usize {
        drop(self.thread.take());
        let runs = self.runs.load(std::sync::atomic::Ordering::Relaxed);
        if self.variant == Background::CloseWithoutSync {
            self.producer.shared.close();
        } else {
            Box::new(self.producer).close().expect("a model's close");
        }
        runs
    }
}

// ---------------------------------------------------------------------------
// Close wakes every waiter.

/// A log whose readers wait at the tail (in the slow path of
/// `Reader::wait_for`: asleep until woken) while the writer closes.
#[derive(Clone)]
pub struct Closing {
    shared: Arc<Shared>,
}

/// An empty log without files, for the close model.
pub fn closing(len: usize) -> Closing {
    let (region, _) = memory_region(len);
    let segment = Arc::new(Segment::new(0, 0, PathBuf::from("model-0"), region));
    Closing {
        shared: model_shared(vec![segment], 0),
    }
}

impl Closing {
    /// Waits as `Reader::wait_for` does once it has spun: asleep until the
    /// log is closed (nothing is appended in this model, so the record
    /// waited for never comes). Returns whether it saw the close, and
    /// whether it went to sleep before it did.
    pub fn wait_for_close(&self) -> (bool, bool) {
        let shared = &self.shared;
        let far = std::time::Instant::now() + Duration::from_secs(3600);
        let checks = std::cell::Cell::new(0);
        let ready = || {
            checks.set(checks.get() + 1);
            shared.is_closed()
        };
        let closed = shared.notify().wait(far, ready);
        (closed, checks.get() > 1)
    }

    /// The writer's close (`Shared::close`: marked closed, everyone woken).
    pub fn close(&self) {
        self.shared.close();
    }

    /// The mutant: marked closed, nobody woken.
    pub fn close_without_waking(&self) {
        self.shared.close_without_waking();
    }
}

/// The word group-commit followers sleep on until a flush ends.
#[derive(Debug, Default)]
pub struct FlushWord(WaitWord);

impl FlushWord {
    pub fn load(&self) -> u32 {
        self.0.load()
    }

    /// Registers and says whether the count still holds `seen` (whether
    /// the caller would sleep now); undo with [`FlushWord::unregister`].
    pub fn register(&self, seen: u32) -> bool {
        self.0.register(seen)
    }

    pub fn unregister(&self) {
        self.0.unregister()
    }

    /// Sleeps until the count moves from `seen`, as a follower does.
    pub fn wait_until_moved(&self, seen: u32) {
        while self.0.load() == seen {
            self.0.wait(seen, Duration::MAX);
        }
    }

    /// Advances (with the plain-load mutant when `rmw` is false); whether
    /// it saw a sleeper.
    pub fn advance(&self, rmw: bool) -> bool {
        self.0.advance_with(rmw)
    }
}

// ---------------------------------------------------------------------------
// Readers in other processes: one segment file, mapped by the writer and by
// a reader process (threads stand in for the processes).

/// The bytes of a segment file, and the model checker's shadow of them,
/// which every map of the file shares (so loom sees the writer's accesses
/// and a reader process's as accesses to one memory, as they are).
#[derive(Debug)]
struct File {
    bytes: memmap2::MmapRaw,
    shadow: std::sync::Arc<Shadow>,
}

/// One process's map of a [`File`]: the writer's (writable) or a reader
/// process's (read-only, as `Remote` maps segment files).
#[derive(Debug)]
struct FileMap {
    file: std::sync::Arc<File>,
    writable: bool,
}

// SAFETY: an anonymous read-write mapping (`File::bytes`), page-aligned,
// unmapped only when the last map of the file is dropped; a read-only map
// of it says so (nothing writes through it); no method changes a byte.
unsafe impl Map for FileMap {
    fn as_ptr(&self) -> *mut u8 {
        self.file.bytes.as_mut_ptr()
    }
    fn writable(&self) -> bool {
        self.writable
    }
    fn len(&self) -> usize {
        self.file.bytes.len()
    }
    fn flush_range(&self, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn populate_write(&self, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn shadow(&self) -> std::sync::Arc<Shadow> {
        std::sync::Arc::clone(&self.file.shadow)
    }
}

/// How the writer of the cross-process models stores each frame's commit
/// word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// As `Appender::write` does: last, with `Release`.
    Last,
    /// The mutant: last, with `Relaxed`.
    Relaxed,
    /// The mutant: with `Release`, before the frame's other bytes.
    First,
}

/// A reader process's follower of the file (the real `Follower` of its own
/// read-only region), which publishes to that region's readers.
pub struct Following(Follower);

impl Following {
    /// Publishes what the writer committed since it last looked (as
    /// `Remote::catch_up` does for the active segment); returns how many
    /// records. Panics at a frame that does not check: in these models
    /// every committed frame is whole.
    pub fn follow(&mut self) -> u32 {
        match self.0.follow(u64::MAX) {
            Followed::More(n) => n,
            fault @ Followed::Fault { .. } => panic!("the follower found {fault:?}"),
        }
    }
}

/// A segment file of `len` bytes, mapped by a writer and by a reader
/// process: the writer's producer (storing commit words `commit`'s way),
/// the reader process's follower, and a reader of the region the follower
/// publishes to.
pub fn followed(len: usize, commit: Commit) -> (Producer, Following, Consumer) {
    let len = len.max(HEADER_LEN);
    let file = std::sync::Arc::new(File {
        bytes: anonymous(len),
        shadow: std::sync::Arc::new(Shadow::new(len)),
    });
    let map = |writable| {
        let map = FileMap {
            file: std::sync::Arc::clone(&file),
            writable,
        };
        Arc::new(Region::new(Box::new(map)).expect("a model region"))
    };
    let (written, followed) = (map(true), map(false));
    let mut appender = Region::appender(&written).expect("fresh region");
    appender.commit_with(match commit {
        Commit::Last => region::Commit::Last,
        Commit::Relaxed => region::Commit::Relaxed,
        Commit::First => region::Commit::First,
    });
    let follower = Region::follower(&followed, 0).expect("a read-only region");
    (
        Producer { appender, next: 0 },
        Following(follower),
        Consumer { region: followed },
    )
}

/// The writer's side of the cross-process wake-up: its producer and the
/// control file's words (in memory the model checker tracks).
pub struct RemoteWriter {
    producer: Producer,
    control: Arc<Control>,
}

/// A reader process waiting for records, on one or more threads: the
/// view they share (its follower and its region) and the control file's
/// words.
#[derive(Clone)]
pub struct RemoteSleeper(Arc<RemoteView>);

struct RemoteView {
    /// The follower, taken with `try_lock` by the thread catching up, as
    /// `Remote::state` is.
    following: Mutex<Following>,
    region: Consumer,
    control: Arc<Control>,
}

/// A segment file of `len` bytes and the control file, shared by a writer
/// and a reader process that waits for records.
pub fn remote_wake(len: usize) -> (RemoteWriter, RemoteSleeper) {
    let (producer, following, region) = followed(len, Commit::Last);
    let control = Arc::new(Control::in_memory());
    let writer = RemoteWriter {
        producer,
        control: Arc::clone(&control),
    };
    let sleeper = RemoteSleeper(Arc::new(RemoteView {
        following: Mutex::new(following),
        region,
        control,
    }));
    (writer, sleeper)
}

impl RemoteWriter {
    /// Appends a record as the writer does (`Writer::publish`): the frame
    /// with its commit word, the publication in its own region, then the
    /// sleepers of other processes woken if there are any; with `fenced`
    /// false, the mutant `wake_sleepers_unfenced` (a plain load of the
    /// count). Returns whether it saw a sleeper.
    ///
    /// No fence before the wake-up: this is the writer whose process
    /// registered for the sleepers' barrier (`membarrier`), which loom
    /// cannot model; under loom the two sides' read-modify-writes of the
    /// sleeper count stand for the pairing the barrier gives.
    pub fn append(&mut self, payload: &[u8], fenced: bool) -> bool {
        assert!(self.producer.write(payload), "room");
        self.producer.publish();
        let words = self.control.words();
        if fenced {
            remote::wake_sleepers(words)
        } else {
            remote::wake_sleepers_unfenced(words)
        }
    }
}

impl RemoteSleeper {
    /// Publishes what the writer committed since, as `Remote::catch_up`
    /// does for the active segment: one thread at a time, and a thread that
    /// finds another at it goes on with the view as it is (`false`).
    /// Returns whether it published anything. (A stand-in: the real
    /// `Remote` reads the control file and the directory through files,
    /// which the models do not have; this is its `try_lock` and its
    /// `follow_active`.)
    pub fn catch_up(&self) -> bool {
        match self.0.following.try_lock() {
            Ok(mut following) => following.follow() > 0,
            Err(_) => false,
        }
    }

    /// [`RemoteSleeper::catch_up`], waiting for a thread that is at it, as
    /// `Remote::catch_up_now` does.
    fn catch_up_now(&self) -> bool {
        let mut following = crate::primitives::lock(&self.0.following);
        following.follow() > 0
    }

    /// Whether record `offset` is published here, catching up first if it
    /// is not: as `Reader::ready_now` does in a reader process about to
    /// sleep (waiting for another thread's catch-up), or, with `blocking`
    /// false, as `Reader::ready` does while it spins (the mutant: with it in
    /// the sleep's check, a wake-up is lost beside another thread's
    /// catch-up).
    fn ready(&self, offset: u64, blocking: bool) -> bool {
        let published = || u64::from(self.0.region.count()) > offset;
        published() || {
            if blocking {
                self.catch_up_now();
            } else {
                self.catch_up();
            }
            published()
        }
    }

    /// Waits as `Reader::wait_for` does in a reader process once it has
    /// spun (`wake::remote::sleep`: registered, the barrier, then asleep on
    /// the wake word until woken), until record `offset` is published here,
    /// checking with `RemoteSleeper::ready`. Returns how many times it
    /// checked (once more after each time it was woken).
    pub fn wait_for(&self, offset: u64) -> usize {
        self.wait_for_with(offset, true)
    }

    /// [`RemoteSleeper::wait_for`]; `blocking` false checks with the
    /// spinning check (`try_lock`), the mutant.
    pub fn wait_for_with(&self, offset: u64, blocking: bool) -> usize {
        let far = std::time::Instant::now() + Duration::from_secs(3600);
        let checks = std::cell::Cell::new(0);
        let ready = || {
            checks.set(checks.get() + 1);
            self.ready(offset, blocking)
        };
        assert!(remote::sleep(&self.0.control, far, ready), "woken ready");
        checks.get()
    }

    /// Record `i`'s payload, if published here.
    pub fn read(&self, i: u64) -> Option<Vec<u8>> {
        self.0.region.read(i)
    }
}
