//! The single producer.
//!
//! # Synchronization
//!
//! The writer owns the active segment's [`Appender`]: it writes frames past
//! the published tail and publishes them with one `Release` store (see
//! `region.rs`). At a roll it seals nothing in place: it publishes what it
//! wrote, installs the prepared segment and swaps in a new segment list
//! (`segments.rs`). An append takes no lock and makes no system call; every
//! [`KICK_EVERY`] bytes it nudges the preparing thread through a futex word
//! (a read-modify-write, and a wake-up call only if that thread sleeps).
#![forbid(unsafe_code)]

use std::any::Any;
use std::fmt;
use std::io;
use std::ops::Range;

use crate::clock;
use crate::error::{Error, Result};
use crate::format::{self, CleanMarker};
use crate::options::{SyncPolicy, Timestamps};
use crate::primitives::{Arc, Ordering, fence, pin};
use crate::read::reader::Reader;
use crate::recovery::RecoveryReport;
use crate::retention::{self, Removed};
use crate::shared::Shared;
use crate::storage::create::{Header, install_segment};
use crate::storage::fs::{self, CLEAN_NAME};
use crate::storage::reclaimer::ReclaimThread;
use crate::storage::region::Appender;
use crate::truncation;
use crate::wake::remote;
use crate::write::background::Periodic;
use crate::write::preparer::{KICK_EVERY, Preparer};

/// Appends records. There is one per open log: not `Clone`, and every
/// method takes `&mut self`. `Send`, so it can move to the producing thread.
///
/// Records are visible to readers as soon as `append` returns, and durable
/// once a [`sync`](Writer::sync) that covers them returns.
///
/// # Close it
///
/// End with [`close`](Writer::close): it syncs everything, records a clean
/// shutdown, releases the directory and returns what went wrong. Dropping
/// a `Writer` without `close` does the same work, a full sync included
/// (which takes as long as any sync), but has no way to report a failure:
/// **the error is swallowed**, the records it did not make durable may be
/// lost in a crash, and the next open finds no clean shutdown and checks
/// the whole log. Dropped while its thread unwinds from a panic, a writer
/// syncs nothing and releases the directory at once. The same holds for
/// the last clone of a [`SharedWriter`](crate::SharedWriter).
///
/// ```compile_fail
/// fn needs_clone<T: Clone>() {}
/// needs_clone::<murakami::Writer>();
/// ```
///
/// ```compile_fail
/// fn needs_sync<T: Sync>() {}
/// needs_sync::<murakami::Writer>();
/// ```
pub struct Writer {
    shared: Arc<Shared>,
    active: Appender,
    next_offset: u64,
    max_record: usize,
    preparer: Option<Preparer>,
    /// Write position at which to nudge the preparer, so it keeps faulting
    /// pages in ahead.
    next_report: usize,
    /// `membarrier` is missing: fence before looking for waiters.
    fence_before_wake: bool,
    /// Sync after this many records (0: never on its own).
    sync_every: u64,
    /// Records appended since the last sync the policy made.
    since_sync: u64,
    /// The background syncer of `SyncPolicy::Interval`.
    sync_thread: Option<Periodic>,
    /// The background cleaner of `Retention::check_every`.
    cleaner: Option<Periodic>,
    /// Unmaps removed segments off the caller's thread (`reclaimer.rs`).
    reclaim_thread: Option<ReclaimThread>,
    /// Newest timestamp written into the active segment.
    active_max_timestamp: u64,
    /// Sequence number of the next segment created.
    next_sequence: u64,
    lock: Option<Box<dyn Any + Send>>,
    /// Keeps `Writer` `!Sync`: a producer is used from one thread at a time.
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("dir", &self.shared.dir())
            .field("next_offset", &self.next_offset)
            .finish_non_exhaustive()
    }
}

/// What a background thread of the writer does if its task panics: latch
/// the writer, so that the next append or sync says which thread died and
/// why, instead of the log going on without it (a dead syncer would leave
/// `SyncPolicy::Interval` silently never syncing).
fn latch_on_panic(shared: &Arc<Shared>, what: &'static str) -> impl FnOnce(String) + Send + use<> {
    let shared = Arc::clone(shared);
    move |message| {
        let cause = io::Error::other(format!("{what} panicked: {message}"));
        shared.syncer().poison.latch(cause);
    }
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        lock: Box<dyn Any + Send>,
        active: Appender,
        next_offset: u64,
        active_max_timestamp: u64,
        next_sequence: u64,
    ) -> Result<Writer> {
        let opts = &shared.options();
        let reclaim_thread = shared.reclaimer().start()?;
        let preparer = Preparer::start(
            std::sync::Arc::clone(shared.vfs_arc()),
            shared.dir(),
            opts.segment_size,
            opts.prefault,
            Some(Arc::clone(&shared)),
        )?;
        let sync_every = match opts.sync {
            SyncPolicy::EveryRecords(n) => n,
            SyncPolicy::Always => 1,
            _ => 0,
        };
        let sync_thread = match opts.sync {
            SyncPolicy::Interval(interval) => {
                let log = Arc::clone(&shared);
                // A failed sync is latched; the next append reports it.
                let task = move || log.sync().is_ok();
                let died = latch_on_panic(&shared, "the background syncer");
                Some(Periodic::start("murakami-sync", interval, task, died)?)
            }
            _ => None,
        };
        let cleaner = match opts.retention.every {
            Some(interval) => {
                let log = Arc::clone(&shared);
                // A file that could not be removed stays for the next round;
                // a failed flush is latched (the next append reports it),
                // and the cleaner stops.
                let task = move || {
                    let now = clock::now(Timestamps::Precise);
                    !matches!(retention::cleanup(&log, now), Err(Error::Poisoned { .. }))
                };
                let died = latch_on_panic(&shared, "the background retention cleaner");
                Some(Periodic::start("murakami-retain", interval, task, died)?)
            }
            None => None,
        };
        Ok(Writer {
            max_record: opts.record_limit(),
            next_report: active.end() + KICK_EVERY,
            fence_before_wake: shared.notify().producer_fence()
                || shared.control().is_some_and(|c| !c.barrier_registered()),
            sync_every,
            since_sync: 0,
            sync_thread,
            cleaner,
            reclaim_thread: Some(reclaim_thread),
            active_max_timestamp,
            next_sequence,
            shared,
            active,
            next_offset,
            preparer: Some(preparer),
            lock: Some(lock),
            _not_sync: std::marker::PhantomData,
        })
    }

    /// Appends a record stamped with the current time and returns its
    /// offset. The record is visible to readers when this returns.
    ///
    /// Fails with [`Error::RecordTooLarge`] (nothing appended) for a record
    /// over the configured maximum, and with [`Error::Poisoned`] after a
    /// failed flush.
    #[inline]
    pub fn append(&mut self, payload: &[u8]) -> Result<u64> {
        let timestamp = clock::now(self.shared.options().timestamps);
        self.append_with_timestamp(payload, timestamp)
    }

    /// Appends a record with the caller's timestamp (ns since the Unix
    /// epoch, by convention; murakami does not require them to increase).
    #[inline]
    pub fn append_with_timestamp(&mut self, payload: &[u8], timestamp: u64) -> Result<u64> {
        let offset = self.append_unsynced(payload, timestamp)?;
        self.apply_policy(1)?;
        Ok(offset)
    }

    /// Appends and publishes, without the sync the policy may call for.
    #[inline]
    pub(crate) fn append_unsynced(&mut self, payload: &[u8], timestamp: u64) -> Result<u64> {
        self.check(payload.len())?;
        let offset = self.stage(payload, timestamp)?;
        self.publish();
        Ok(offset)
    }

    /// Syncs when the policy's count of records is reached.
    #[inline]
    fn apply_policy(&mut self, records: u64) -> Result<()> {
        if self.sync_due(records) {
            self.sync()?;
        }
        Ok(())
    }

    /// Counts `records` appended toward the policy's count
    /// ([`SyncPolicy::EveryRecords`]): `true` when it is reached, and the
    /// caller must now sync (the count starts over).
    #[inline]
    pub(crate) fn sync_due(&mut self, records: u64) -> bool {
        if self.sync_every == 0 {
            return false;
        }
        self.since_sync += records;
        if self.since_sync < self.sync_every {
            return false;
        }
        self.since_sync = 0;
        true
    }

    /// Publishes what was written and wakes waiting readers, if any; now and
    /// then nudges the preparer, so it keeps faulting pages in ahead.
    #[inline]
    fn publish(&mut self) {
        self.active.publish();
        if self.fence_before_wake {
            fence(Ordering::SeqCst);
        }
        self.shared.notify().wake();
        if let Some(control) = self.shared.control() {
            remote::wake_sleepers(control.words());
        }
        if self.active.end() >= self.next_report {
            self.report();
        }
    }

    #[cold]
    fn report(&mut self) {
        if let Some(preparer) = &self.preparer {
            preparer.kick();
        }
        self.next_report = self.active.end() + KICK_EVERY;
    }

    /// Appends many records, stamped with one timestamp, and publishes them
    /// with one store. Returns their offsets.
    ///
    /// All or nothing when the batch fits in one segment: if it does not fit
    /// in the active one, the writer rolls first, and a failed roll appends
    /// nothing. A record over the maximum size refuses the whole batch. Only
    /// a batch larger than a segment spans several; if a roll fails midway
    /// it returns [`Error::PartialBatch`] with the offsets that went in.
    pub fn append_batch<B: AsRef<[u8]>>(&mut self, records: &[B]) -> Result<Range<u64>> {
        let range = self.append_batch_unsynced(records)?;
        self.apply_policy(range.end - range.start)?;
        Ok(range)
    }

    /// [`Writer::append_batch`] without the sync the policy may call for.
    pub(crate) fn append_batch_unsynced<B: AsRef<[u8]>>(
        &mut self,
        records: &[B],
    ) -> Result<Range<u64>> {
        let mut bytes = 0;
        for record in records {
            let len = record.as_ref().len();
            self.check(len)?;
            bytes += format::frame_len(len);
        }
        let fits_fresh = bytes + format::HEADER_LEN <= self.shared.options().segment_size as usize;
        if !self.active.fits(bytes, records.len()) && fits_fresh && self.active.count() > 0 {
            self.roll()?;
        }
        let timestamp = clock::now(self.shared.options().timestamps);
        let first = self.next_offset;
        for record in records {
            if let Err(cause) = self.stage(record.as_ref(), timestamp) {
                self.publish();
                return Err(Error::PartialBatch {
                    appended: first..self.next_offset,
                    cause: Box::new(cause),
                });
            }
        }
        self.publish();
        Ok(first..self.next_offset)
    }

    /// The stamp `append` would give a record now.
    pub(crate) fn now(&self) -> u64 {
        clock::now(self.shared.options().timestamps)
    }

    /// The state shared with readers.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Makes every record appended so far durable, and returns the durable
    /// offset (one past the last durable record).
    ///
    /// A failed flush latches the writer: this and every later `append` and
    /// `sync` return [`Error::Poisoned`] until the log is reopened.
    pub fn sync(&mut self) -> Result<u64> {
        self.shared.sync()
    }

    /// Removes whole sealed segments whose records all lie below `offset`.
    /// Reads below the new first offset return [`Error::Purged`]; readers in
    /// the middle of a read keep valid bytes until they let go.
    ///
    /// What is not removed: the segment holding `offset` keeps its records
    /// below `offset`, and the active segment is never removed, so
    /// `purge_before(u64::MAX)` (or any `offset` past the active segment's
    /// base) leaves the active segment's records readable and returns `Ok`.
    /// [`Removed::first_offset`] says where the log starts afterwards:
    /// every record from there on is still there.
    ///
    /// ```
    /// # #[cfg(feature = "loom")] fn main() {} // loom builds run only the models
    /// # #[cfg(not(feature = "loom"))]
    /// # fn main() -> murakami::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let options = murakami::Options::default().segment_size(4096);
    /// let (mut writer, reader) = murakami::Log::open(dir.path(), options)?;
    /// for _ in 0..100 {
    ///     writer.append(&[0u8; 100])?;
    /// }
    /// let removed = writer.purge_before(u64::MAX)?;
    /// assert!(removed.segments > 0);
    /// // The active segment stays, with its records.
    /// assert!(removed.first_offset < 100);
    /// assert_eq!(reader.first_offset(), removed.first_offset);
    /// assert!(reader.read(99).is_ok());
    /// # Ok(()) }
    /// ```
    pub fn purge_before(&mut self, offset: u64) -> Result<Removed> {
        retention::purge_before(&self.shared, offset)
    }

    /// Applies the retention in the options now; returns what it removed.
    pub fn cleanup(&mut self) -> Result<Removed> {
        self.cleanup_at(clock::now(Timestamps::Precise))
    }

    /// Applies the retention as if the time were `now` (ns since the Unix
    /// epoch): for tests, and for programs that keep their own clock.
    pub fn cleanup_at(&mut self, now: u64) -> Result<Removed> {
        retention::cleanup(&self.shared, now)
    }

    /// Discards the records at and after `offset`; the next append gets
    /// `offset` again. What a Raft follower does when its log conflicts with
    /// the leader's.
    ///
    /// Safe while readers read: no byte a reader may hold is overwritten.
    /// The segment holding `offset` keeps its bytes and is sealed with its
    /// records past the cut hidden; appends go on in a new segment that
    /// starts at `offset`. Safe against crashes at any point: a marker file
    /// (`NNNN.cut`, made durable first) is the commit point, so reopening
    /// gives either the log as it was or the log cut at `offset`, never a
    /// mix. Readers that read past `offset` before the call may have seen
    /// records that are gone now; a cursor that stands past it goes on at its
    /// offset in the new history.
    ///
    /// A refused call changes nothing: an `offset` at or past the end
    /// (`Ok`, nothing to do), below the first offset ([`Error::Purged`]), or
    /// a latched writer ([`Error::Poisoned`]). Otherwise the records below
    /// `offset` are synced first, and the new segment is taken before
    /// anything is cut (a full disk fails there with [`Error::Io`], and the
    /// log stays as it was). From the moment the truncation starts writing
    /// its marker, any failure latches the writer before syncs may run
    /// again, so the durable offset never moves back past the cut; reopening
    /// then gives the log as it was (the marker never got its name) or
    /// finishes the truncation.
    pub fn truncate_from(&mut self, offset: u64) -> Result<()> {
        self.shared.syncer().poison.check()?;
        if offset >= self.next_offset {
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        // No purge or cleanup may change the list until this is done.
        let _maintenance = shared.maintenance();
        let plan = truncation::plan(&shared, offset)?;
        self.sync()?;
        // Take the new segment before committing: a full disk fails here,
        // with nothing changed.
        let mut new = self.take_new_segment()?;
        // Hold syncs off, and stop counting the doomed records as durable
        // before the commit makes them go.
        let mut pause = shared.syncer().pause();
        pause.lower_durable(offset);
        let outcome =
            truncation::commit(&shared, &plan, &mut new, &mut pause).and_then(|appender| {
                self.continue_in(appender, offset);
                truncation::tidy(&shared, &plan)
            });
        let result = settle(pause, outcome);
        new.discard(shared.vfs());
        truncation::retire(&shared, plan);
        result
    }

    /// The prepared segment a truncation or a restart goes on in.
    fn take_new_segment(&self) -> Result<truncation::NewSegment> {
        let preparer = self.preparer.as_ref().ok_or(Error::Closed)?;
        Ok(truncation::NewSegment {
            map: Some(preparer.take()?),
            prepared: preparer.path().to_path_buf(),
            sequence: self.next_sequence,
        })
    }

    /// After a truncation or a restart: appends go on in the new active
    /// segment (`appender`) at `offset`.
    fn continue_in(&mut self, appender: Appender, offset: u64) {
        self.next_sequence += 1;
        if let Some(preparer) = &self.preparer {
            preparer.request_next();
        }
        self.active = appender;
        self.next_offset = offset;
        self.active_max_timestamp = 0;
        self.report();
        self.since_sync = 0;
    }

    /// Drops every record and continues the log at `offset`: the log is
    /// then empty, its first offset, next offset and durable offset all
    /// `offset`, which may lie anywhere (past the end, inside the log, below
    /// its first offset). What a Raft follower does when it installs a
    /// snapshot that its log does not reach; on a new, empty log, it makes
    /// the log start at `offset`.
    ///
    /// Safe while readers read: no byte a reader may hold is overwritten or
    /// unmapped. The old records are hidden at once (their segments are
    /// emptied, as a truncation empties what it cuts); reads below `offset`
    /// return [`Error::Purged`], and so does a cursor that stood below it;
    /// a cursor at or past `offset` goes on in the new log, at its offset.
    /// The restart first syncs what was appended, so a record a
    /// [`SharedWriter`](crate::SharedWriter) was waiting to see durable is
    /// made durable before it is dropped: its wait returns `Ok` if it looked
    /// before the restart dropped the record, [`Error::Truncated`] if only
    /// after.
    ///
    /// `offset` must leave room for a segment's offsets below `u64::MAX`
    /// (at most `u64::MAX - segment_size / 32`, 32 bytes being the smallest
    /// record frame): a larger one is refused
    /// with [`Error::OffsetOutOfRange`] (`first` 0, `end` one past the
    /// largest offset accepted) before anything changes.
    ///
    /// Safe against crashes at any point: a marker file
    /// (`murakami.restart`, made durable first) is the commit point, so
    /// reopening gives either the log as it was or the empty log at
    /// `offset`, never a mix and never a gap. A latched writer refuses
    /// ([`Error::Poisoned`]); the new segment is taken before anything
    /// changes (a full disk fails there with [`Error::Io`], and the log stays
    /// as it was); from then on (syncs are held off, and the marker is
    /// written next) any failure latches the writer, even one writing the
    /// marker: reopening then gives the log as it was if the marker never
    /// got its name, and completes the restart if it did.
    ///
    /// Readers in other processes ([`Reader::open`]) see the restart as in
    /// this process: a cursor that stood below `offset` (in any segment the
    /// restart dropped) gets [`Error::Purged`], one at or past it goes on in
    /// the new log. A reader opened on the files of a restart a crash
    /// interrupted after its commit shows the empty log at `offset`, as the
    /// next open keeps it.
    ///
    /// ```
    /// # #[cfg(feature = "loom")] fn main() {} // loom builds run only the models
    /// # #[cfg(not(feature = "loom"))]
    /// # fn main() -> murakami::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let (mut writer, reader) = murakami::Log::open(dir.path(), Default::default())?;
    /// writer.append(b"old")?;
    /// writer.restart_at(1000)?;
    /// assert_eq!((reader.first_offset(), reader.next_offset()), (1000, 1000));
    /// assert!(matches!(reader.read(0), Err(murakami::Error::Purged { .. })));
    /// assert_eq!(writer.append(b"new")?, 1000);
    /// writer.close()?;
    ///
    /// let (writer, reader) = murakami::Log::open(dir.path(), Default::default())?;
    /// assert_eq!(reader.first_offset(), 1000);
    /// assert_eq!(reader.read(1000)?, b"new");
    /// # drop(writer);
    /// # Ok(()) }
    /// ```
    pub fn restart_at(&mut self, offset: u64) -> Result<()> {
        self.shared.syncer().poison.check()?;
        // Recovery refuses a segment whose offsets would pass `u64::MAX`.
        let size = self.shared.options().segment_size;
        if !crate::recovery::offsets_fit(offset, size) {
            let largest = u64::MAX - size / crate::format::MIN_FRAME_LEN as u64;
            return Err(Error::OffsetOutOfRange {
                offset,
                first: 0,
                end: largest + 1,
            });
        }
        let shared = Arc::clone(&self.shared);
        let _maintenance = shared.maintenance();
        // What a waiting `SharedWriter` appended is synced first, as before
        // a truncation: it was durable before the restart dropped it.
        self.sync()?;
        let mut new = self.take_new_segment()?;
        let mut pause = shared.syncer().pause();
        pause.lower_durable(shared.first_offset().min(offset));
        let outcome =
            truncation::restart(&shared, offset, &mut new, &mut pause).and_then(|appender| {
                self.continue_in(appender, offset);
                truncation::finish_restart(&shared)
            });
        let result = settle(pause, outcome);
        new.discard(shared.vfs());
        result
    }

    /// Discards the records after `offset` (keeps `offset` itself).
    pub fn truncate_after(&mut self, offset: u64) -> Result<()> {
        self.truncate_from(offset.saturating_add(1))
    }

    /// One past the last record appended: the offset the next append gets.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Offset of the first record in the log: the first one that
    /// retention, [`purge_before`](Writer::purge_before) and truncations
    /// left (equal to [`next_offset`](Writer::next_offset) when the log is
    /// empty). The same as [`Reader::first_offset`].
    pub fn first_offset(&self) -> u64 {
        self.shared.first_offset()
    }

    /// One past the last durable record.
    pub fn durable_offset(&self) -> u64 {
        self.shared.syncer().durable()
    }

    /// A new reader of this log.
    pub fn reader(&self) -> Reader {
        Reader::new(Arc::clone(&self.shared))
    }

    /// What opening the log found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.shared.report()
    }

    /// Syncs everything, records a clean shutdown and releases the directory.
    /// Readers keep working on the records written so far.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    #[inline]
    fn check(&self, len: usize) -> Result<()> {
        self.shared.syncer().poison.check()?;
        if len > self.max_record {
            return Err(Error::RecordTooLarge {
                len,
                max: self.max_record,
            });
        }
        Ok(())
    }

    /// Writes one record without publishing it, rolling first if it does not
    /// fit.
    #[inline]
    fn stage(&mut self, payload: &[u8], timestamp: u64) -> Result<u64> {
        let offset = self.next_offset;
        let hint = self.shared.syncer().durable_hint();
        if !self.active.write(offset, timestamp, hint, payload) {
            self.roll_for(payload.len())?;
            let written = self.active.write(offset, timestamp, hint, payload);
            debug_assert!(
                written,
                "a fresh segment holds any record that passes check"
            );
        }
        self.active_max_timestamp = self.active_max_timestamp.max(timestamp);
        self.next_offset = offset + 1;
        Ok(offset)
    }

    #[cold]
    fn roll_for(&mut self, len: usize) -> Result<()> {
        if self.active.count() == 0 {
            // The active segment is empty and still too small: it was made
            // with a smaller segment size than the options now give.
            return Err(Error::RecordTooLarge {
                len,
                max: self.active.region().len(),
            });
        }
        self.roll()
    }

    /// Publishes what was written, installs the prepared segment and swaps in
    /// the new segment list.
    fn roll(&mut self) -> Result<()> {
        self.active.publish();
        let shared = &*self.shared;
        let preparer = self.preparer.as_ref().ok_or(Error::Closed)?;
        let map = preparer.take()?;
        let (segment, appender) = install_segment(
            shared.vfs(),
            shared.dir(),
            preparer.path(),
            map,
            (self.next_offset, self.next_sequence),
            Header::Lazy,
        )?;
        self.next_sequence += 1;
        preparer.request_next();
        if fs::mutant(shared.vfs()) != fs::Mutant::NoDirSyncAfterRoll {
            shared.syncer().mark_dir_dirty();
        }
        let max_timestamp = std::mem::take(&mut self.active_max_timestamp);
        let (base, sequence) = (segment.base(), segment.sequence());
        shared.segments().roll(max_timestamp, segment);
        if let Some(control) = shared.control() {
            control.set_active(base, sequence);
        }
        self.active = appender;
        self.report();
        Ok(())
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(lock) = self.lock.take() else {
            return Ok(());
        };
        self.sync_thread = None;
        self.cleaner = None;
        self.preparer = None;
        // After the preparer, which may wait for it on a full disk.
        self.reclaim_thread = None;
        let result = self.write_clean_marker();
        if result.is_ok() {
            self.shared.close_for_others();
        }
        self.shared.close();
        drop(lock);
        crate::storage::list::Segments::collect_garbage();
        result
    }

    /// Syncs, then writes the clean-shutdown marker. A failure to write the
    /// marker is reported (the next open then checks the whole log) but not
    /// latched: the sync before it succeeded, and the writer is gone.
    fn write_clean_marker(&mut self) -> Result<()> {
        self.shared.sync()?;
        let shared = &*self.shared;
        let guard = pin();
        let marker = CleanMarker {
            next_offset: self.next_offset,
            active_base: shared.segments().load(&guard).active().base(),
        };
        shared
            .vfs()
            .write_small(&shared.dir().join(CLEAN_NAME), &marker.encode())?;
        shared.vfs().sync_dir(shared.dir())?;
        Ok(())
    }
}

/// Ends a truncation or a restart: a failure is latched while syncs are
/// still held off by `pause`, so none may raise the durable offset over
/// the records being discarded in between.
fn settle(pause: crate::durability::SyncPause<'_>, outcome: io::Result<()>) -> Result<()> {
    match outcome {
        Ok(()) => {
            drop(pause);
            Ok(())
        }
        Err(e) => Err(pause.fail(e)),
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Unwinding from a panic: release everything, but do not claim
            // a clean shutdown; the next open checks the whole log.
            self.sync_thread = None;
            self.cleaner = None;
            self.preparer = None;
            self.reclaim_thread = None;
            self.shared.close();
            self.lock = None;
            return;
        }
        let _ = self.shutdown();
    }
}
