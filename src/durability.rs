//! Sync: flushes what the producer has published and then advances the
//! durable offset.
//!
//! # Synchronization
//!
//! A sync reads only what the producer has published (the segment list and
//! each segment's published tail, both `Acquire`), so it never holds anything
//! the producer needs: appends go on while the disk works. Syncs serialize on
//! [`Syncer::state`], which remembers how far each segment has been flushed.
//! The durable offset is stored (`Release`, monotonic) only after every flush
//! covering it has returned, and never moves again once a flush fails: the
//! failure is latched in [`Poison`].
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;

use crossbeam_utils::CachePadded;

use crate::error::{Error, Result};
use crate::primitives::{Arc, AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering, lock, pin};
use crate::storage::fs::Vfs;
use crate::storage::list::Segments;
use std::time::{Duration, Instant};

/// A latched I/O failure: once set, the writer refuses appends and syncs.
#[derive(Debug, Default)]
pub(crate) struct Poison {
    set: AtomicBool,
    /// A std `Arc`: it goes out in `Error::Poisoned`, whatever the build.
    cause: Mutex<Option<std::sync::Arc<io::Error>>>,
}

impl Poison {
    /// Latches `error` (the first one wins) and returns the error callers
    /// get from now on.
    pub(crate) fn latch(&self, error: io::Error) -> Error {
        let mut cause = lock(&self.cause);
        let cause = cause
            .get_or_insert_with(|| std::sync::Arc::new(error))
            .clone();
        self.set.store(true, Ordering::Release);
        Error::Poisoned { cause }
    }

    /// `Err` once a failure was latched. One `Relaxed` load when all is well.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        if self.set.load(Ordering::Relaxed) {
            return Err(self.error());
        }
        Ok(())
    }

    #[cold]
    fn error(&self) -> Error {
        let cause = lock(&self.cause)
            .clone()
            .unwrap_or_else(|| std::sync::Arc::new(io::Error::other("poisoned")));
        Error::Poisoned { cause }
    }
}

/// Syncs held off, for a truncation. Dropping it lets them go on.
pub(crate) struct SyncPause<'a> {
    syncer: &'a Syncer,
    flushed: MutexGuard<'a, Flushed>,
}

impl SyncPause<'_> {
    /// Stops counting records at and after `at` as durable. Everything below
    /// must have been synced.
    pub(crate) fn lower_durable(&self, at: u64) {
        self.syncer.durable.fetch_min(at, Ordering::AcqRel);
    }

    /// A restart left an empty log at `at`: everything below it counts as
    /// durable (there is nothing there), nothing at or past it.
    pub(crate) fn set_durable(&self, at: u64) {
        self.syncer.durable.store(at, Ordering::Release);
    }

    /// Flushing restarts at the start of the new active segment `base`.
    pub(crate) fn restart_at(&mut self, base: u64) {
        *self.flushed = Flushed {
            segment: base,
            upto: 0,
            header_dirty: false,
            header_flushed: None,
        };
    }
}

impl SyncPause<'_> {
    /// A truncation failed once it had begun changing the log: latches
    /// `error` while syncs are still held off, then lets them go on (to
    /// find the writer latched). Latching after the pause is let go would
    /// leave a window in which a sync (the background syncer, a group-commit
    /// leader) passes the poison check and raises the durable offset back
    /// over records the truncation was discarding.
    pub(crate) fn fail(self, error: io::Error) -> Error {
        self.syncer.poison.latch(error)
    }
}

/// How far the segments have been flushed.
#[derive(Debug)]
struct Flushed {
    /// Base offset of the first segment not entirely flushed.
    segment: u64,
    /// Bytes of that segment flushed, from position 0.
    upto: usize,
    /// Its header holds a checkpoint that has not been flushed yet.
    header_dirty: bool,
    /// When a flush last carried the header.
    header_flushed: Option<Instant>,
}

/// How often, at most, a sync also flushes the segment header to carry the
/// checkpoint to disk (the kernel's own write-back may carry it sooner).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(5);

/// The durable offset and the state of the flushes behind it.
#[derive(Debug)]
pub(crate) struct Syncer {
    /// One past the last durable record. Written by syncs (`Release`, only
    /// upwards), read by anyone (`Acquire`) and by the producer for the
    /// durable hint in each frame (`Relaxed`).
    durable: CachePadded<AtomicU64>,
    /// A segment file was created or renamed and the directory has not been
    /// fsynced since. Set by the producer before it publishes the segment.
    dir_dirty: AtomicBool,
    state: Mutex<Flushed>,
    pub(crate) poison: Poison,
    /// Loom models only: the mutant whose flushes outside a sync
    /// ([`Syncer::flush_exclusive`]) do not wait for syncs.
    #[cfg(feature = "loom")]
    pub(crate) unserialized_flushes: std::sync::atomic::AtomicBool,
}

impl Syncer {
    /// A syncer for a log whose records below `durable` are durable and whose
    /// segment at `segment` is flushed up to byte `upto`.
    pub(crate) fn new(durable: u64, segment: u64, upto: usize) -> Syncer {
        Syncer {
            durable: CachePadded::new(AtomicU64::new(durable)),
            dir_dirty: AtomicBool::new(false),
            state: Mutex::new(Flushed {
                segment,
                upto,
                header_dirty: false,
                header_flushed: None,
            }),
            poison: Poison::default(),
            #[cfg(feature = "loom")]
            unserialized_flushes: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// One past the last durable record.
    #[inline]
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// In a reader process: sets the durable offset to what the writer of
    /// another process made durable (as far as this process's view
    /// reaches). It may go down: a truncation lowers it.
    pub(crate) fn mirror(&self, durable: u64) {
        self.durable.store(durable, Ordering::Release);
    }

    /// The durable offset, for the hint in a frame.
    #[inline]
    pub(crate) fn durable_hint(&self) -> u64 {
        self.durable.load(Ordering::Relaxed)
    }

    /// Notes that a directory entry changed; the next sync fsyncs the
    /// directory before it advances the durable offset.
    pub(crate) fn mark_dir_dirty(&self) {
        self.dir_dirty.store(true, Ordering::Release);
    }

    /// Runs `flush`, a flush or fsync of the log's files outside a sync
    /// (retention's), the way a sync runs its own: never beside a sync or
    /// another such flush, refused once a failure is latched, and its own
    /// failure latched before any sync may run again. An I/O error is
    /// reported once, to whichever flush of the file asks first; one at a
    /// time, the flush that gets it is the one that latches it.
    pub(crate) fn flush_exclusive(&self, flush: impl FnOnce() -> io::Result<()>) -> Result<()> {
        let _one_at_a_time = self.one_at_a_time();
        self.poison.check()?;
        flush().map_err(|e| self.poison.latch(e))
    }

    /// The lock syncs hold; under loom, for the mutant of the model of
    /// flushes beside syncs, nothing.
    fn one_at_a_time(&self) -> Option<MutexGuard<'_, Flushed>> {
        #[cfg(feature = "loom")]
        if self.unserialized_flushes.load(Ordering::Relaxed) {
            return None;
        }
        Some(lock(&self.state))
    }

    /// Holds syncs off (a truncation is rewriting what they would flush).
    pub(crate) fn pause(&self) -> SyncPause<'_> {
        SyncPause {
            syncer: self,
            flushed: lock(&self.state),
        }
    }

    /// Makes every record published so far durable and returns the new
    /// durable offset.
    ///
    /// Then it stores the new durable offset as the active segment's
    /// checkpoint, which the next sync's flush carries to disk: on disk, a
    /// checkpoint never claims more than a completed flush made durable.
    ///
    /// `durable_moved` is told the new durable offset while syncs are still
    /// held off (under the sync lock): what it stores elsewhere (the control
    /// file readers in other processes follow) can then never be stored
    /// late, over a truncation that lowered it meanwhile.
    pub(crate) fn sync(
        &self,
        segments: &Segments,
        (vfs, dir): (&dyn Vfs, &Path),
        durable_moved: &dyn Fn(u64),
    ) -> Result<u64> {
        let durable_first =
            crate::storage::fs::mutant(vfs) == crate::storage::fs::Mutant::DurableBeforeFlush;
        self.sync_ordered((segments, vfs, dir), durable_first, durable_moved)
    }

    /// [`Syncer::sync`]; with `durable_first`, the durable offset is advanced
    /// before the flushes instead of after them — wrong, and only the loom
    /// models' and the crash tests' mutants ask for it, to check that they
    /// notice.
    pub(crate) fn sync_ordered(
        &self,
        (segments, vfs, dir): (&Segments, &dyn Vfs, &Path),
        durable_first: bool,
        durable_moved: &dyn Fn(u64),
    ) -> Result<u64> {
        let mut flushed = lock(&self.state);
        self.poison.check()?;
        let guard = pin();
        let list = segments.load(&guard);
        let active = list.active();
        let tail = active.published();
        let target = active.base() + u64::from(tail.count());
        if durable_first {
            self.durable.fetch_max(target, Ordering::Release);
        }
        let outcome = (|| {
            for segment in list.segments() {
                if segment.base() < flushed.segment {
                    continue;
                }
                if segment.base() > flushed.segment {
                    *flushed = Flushed {
                        segment: segment.base(),
                        upto: 0,
                        header_dirty: false,
                        header_flushed: None,
                    };
                }
                let end = if Arc::ptr_eq(segment, active) {
                    tail.end()
                } else {
                    segment.published().end()
                };
                // The checkpoint in the header costs a second page in the
                // flush: carry it at most every CHECKPOINT_EVERY, or when
                // there is nothing else to flush.
                let nothing_new = end <= flushed.upto;
                let due = flushed
                    .header_flushed
                    .is_none_or(|at| at.elapsed() >= CHECKPOINT_EVERY);
                let with_header = flushed.header_dirty && (nothing_new || due);
                let start = if with_header { 0 } else { flushed.upto };
                if end > start {
                    // Whole pages below `end` are written for good: drop
                    // them from the producer's page table first, so that
                    // writing them back interrupts nobody (see
                    // `Map::release`, which keeps to whole pages). Best
                    // effort: a page left mapped only costs an interrupt.
                    let _ = segment.region().release(start, end - start);
                    segment.region().flush(start, end - start)?;
                    flushed.upto = end;
                    if with_header {
                        flushed.header_dirty = false;
                        flushed.header_flushed = Some(Instant::now());
                    }
                }
            }
            if self.dir_dirty.swap(false, Ordering::AcqRel) {
                vfs.sync_dir(dir)?;
            }
            Ok::<(), io::Error>(())
        })();
        if let Err(e) = outcome {
            return Err(self.poison.latch(e));
        }
        if self.durable.fetch_max(target, Ordering::Release) < target {
            let crc = crate::format::checkpoint_crc(active.base(), target);
            active.region().store_checkpoint(target, crc);
            flushed.header_dirty = true;
        }
        let durable = self.durable();
        // Still under the sync lock (`flushed`).
        durable_moved(durable);
        drop(flushed);
        Ok(durable)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn the_first_latched_error_is_the_cause_ever_after() {
        let poison = Poison::default();
        assert!(poison.check().is_ok());
        poison.latch(io::Error::other("first"));
        poison.latch(io::Error::other("second"));
        let Err(Error::Poisoned { cause }) = poison.check() else {
            panic!("not poisoned")
        };
        assert_eq!(cause.to_string(), "first");
    }
}
