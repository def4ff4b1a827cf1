//! Readers: random reads by offset, zero-copy reads under a guard, lookups
//! by time, waiting for a record.
//!
//! # Synchronization
//!
//! A read pins the epoch, `Acquire`-loads the segment list, binary-searches
//! it by base offset, `Acquire`-loads the segment's published tail and reads
//! below it, straight from the map. No lock, no system call. Cursors
//! (`cursor.rs`) hold their segment instead of pinning per record.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::follow::Remote;
use crate::primitives::{Arc, Guard, pin};
use crate::record::{Record, RecordRef};
use crate::shared::Shared;
use crate::storage::fs::{OsFs, Vfs};
use crate::storage::list::SegmentList;
use crate::wake;

/// Reads a log. Cheap to clone; `Send + Sync`; usable from any thread, and
/// after the writer is closed.
///
/// A reader sees every published record, or, made with
/// [`Reader::durable_only`], only durable ones: what a replicator, or a
/// consumer that must never act on a record a crash could take back, needs.
///
/// A reader comes from the writer of its process ([`Log::open`]'s pair,
/// [`Writer::reader`]), or from [`Reader::open`] in any process: it then
/// follows the log through its files, as the writer of another process
/// appends, rolls, purges and truncates it (see "Readers in other
/// processes" in the crate docs).
///
/// [`Log::open`]: crate::Log::open
/// [`Writer::reader`]: crate::Writer::reader
#[derive(Clone)]
pub struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) durable_only: bool,
    /// `durable_only`, or a reader in another process than the writer's:
    /// reads check more than the segment's tail. One test on the hot path
    /// for both.
    pub(super) limited: bool,
    spin: Duration,
}

/// How long `wait_for` spins before it sleeps, by default.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// One past the last record a reader may see.
#[inline]
pub(super) fn visible_end(shared: &Shared, list: &SegmentList, durable_only: bool) -> u64 {
    if durable_only {
        shared.syncer().durable()
    } else {
        list.active().next_offset()
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("dir", &self.shared.dir())
            .field("durable_only", &self.durable_only)
            .finish_non_exhaustive()
    }
}

/// Keeps the records read through it valid: while a `ReadGuard` lives, no
/// segment it could reach is unmapped. Hold it briefly: it delays the
/// reclamation of every retired segment list.
///
/// A guard pins the thread that made it (an epoch guard), so it is neither
/// `Send` nor `Sync`: make it, read under it and drop it on one thread. To
/// read on another thread, clone the [`Reader`] and pin there.
///
/// ```compile_fail
/// fn needs_send<T: Send>() {}
/// needs_send::<murakami::ReadGuard>();
/// ```
///
/// ```compile_fail
/// fn needs_sync<T: Sync>() {}
/// needs_sync::<murakami::ReadGuard>();
/// ```
pub struct ReadGuard {
    guard: Guard,
}

impl fmt::Debug for ReadGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadGuard")
    }
}

pub(super) fn out_of_range(shared: &Shared, offset: u64, list: &SegmentList, end: u64) -> Error {
    let mut first = list.first_offset();
    if let Some(remote) = shared.remote() {
        // The writer may have purged past this process's view already.
        first = first.max(remote.first_offset().unwrap_or(0));
        if let Some(fault) = remote.fault_error(offset) {
            return fault;
        }
    }
    if offset < first {
        return Error::Purged { offset, first };
    }
    Error::OffsetOutOfRange { offset, first, end }
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>) -> Reader {
        let limited = shared.remote().is_some();
        Reader {
            shared,
            durable_only: false,
            limited,
            spin: DEFAULT_SPIN,
        }
    }

    /// Opens the log in `dir` for reading only, in any process: it needs no
    /// writer here, and follows the writer of whichever process has the log
    /// open, through the files (see "Readers in other processes" in the
    /// crate docs).
    ///
    /// The reader sees what the files hold: a live log up to the last
    /// record its writer published, a cleanly closed log whole, and a log
    /// whose writer crashed as the writer's next open will keep it (or,
    /// [`durable_only`](Reader::durable_only), as far as it was durable):
    /// truncation markers applied, and a restart whose marker was committed
    /// shown done (the empty log at its offset), the old segments hidden
    /// but left in place.
    /// It never takes the writer's lock, never writes, truncates or renames
    /// anything (the one word it writes is its sleeper count in the control
    /// file, around a sleep), and never blocks the writer. A directory that
    /// holds no log yet (or does not exist) gives an empty reader, which
    /// picks the writer up when one comes.
    ///
    /// Fails with [`Error::BadSegmentHeader`], [`Error::Corrupt`] or
    /// [`Error::BadControlFile`] for files this crate did not write or that
    /// are damaged, and with [`Error::Io`] when the directory cannot be
    /// read.
    ///
    /// ```
    /// # #[cfg(feature = "loom")] fn main() {} // loom builds run only the models
    /// # #[cfg(not(feature = "loom"))]
    /// # fn main() -> murakami::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// // In one process:
    /// let (mut writer, _) = murakami::Log::open(dir.path(), murakami::Options::default())?;
    /// writer.append(b"hello")?;
    ///
    /// // In another (here the same one, through the files alike):
    /// let reader = murakami::Reader::open(dir.path())?;
    /// assert_eq!(reader.read(0)?, b"hello");
    /// let mut cursor = reader.cursor(1)?;
    /// writer.append(b"world")?;
    /// let next = cursor.next_wait(std::time::Duration::from_secs(5))?;
    /// assert_eq!(next.map(|r| r.payload.to_vec()), Some(b"world".to_vec()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Reader> {
        Reader::open_with(std::sync::Arc::new(OsFs), dir.as_ref())
    }

    /// [`Reader::open`] through a file seam.
    pub(crate) fn open_with(vfs: std::sync::Arc<dyn Vfs>, dir: &Path) -> Result<Reader> {
        let (remote, segments, syncer) = Remote::open(std::sync::Arc::clone(&vfs), dir)?;
        let shared = Shared::new_remote((dir, vfs), remote, segments, syncer)?;
        Ok(Reader::new(Arc::new(shared)))
    }

    /// Whether `offset` passes the checks past the segment's tail: durable
    /// (for a durable-only reader), not purged by another process's writer.
    #[inline]
    fn within_limits(&self, offset: u64) -> bool {
        if self.durable_only && offset >= self.shared.syncer().durable() {
            return false;
        }
        match self.shared.remote() {
            Some(remote) => {
                !remote.is_stale() && remote.first_offset().is_none_or(|first| offset >= first)
            }
            None => true,
        }
    }

    /// This reader, limited to durable records: reads, cursors and waits see
    /// only offsets below the durable offset.
    pub fn durable_only(mut self) -> Reader {
        self.durable_only = true;
        self.limited = true;
        self
    }

    /// This reader, spinning up to `spin` in [`Reader::wait_for`] before it
    /// sleeps. Spinning costs a core but answers fastest; `Duration::MAX`
    /// never sleeps.
    pub fn spin(mut self, spin: Duration) -> Reader {
        self.spin = spin;
        self
    }

    /// The record at `offset` in `list`, if this reader may see it.
    #[inline(always)]
    fn find<'g>(&self, list: &'g SegmentList, offset: u64) -> Option<RecordRef<'g>> {
        let segment = list.find(offset)?;
        if self.limited && !self.within_limits(offset) {
            return None;
        }
        segment.get(segment.published(), offset)
    }

    /// The record at `offset` when the current list does not give it: in
    /// a reader process, the writer may have published it since; otherwise
    /// why it cannot be read.
    #[cold]
    #[inline(never)]
    fn missing<'g>(&self, guard: &'g Guard, offset: u64) -> Result<RecordRef<'g>> {
        if self.shared.remote().is_some() {
            self.shared.catch_up_now();
            if let Some(record) = self.find(self.shared.segments().load(guard), offset) {
                return Ok(record);
            }
        }
        Err(self.why_not(self.shared.segments().load(guard), offset))
    }

    /// The record at `offset`, if this reader may see it.
    #[inline]
    fn lookup<'g>(&self, guard: &'g Guard, offset: u64) -> Result<RecordRef<'g>> {
        let list = self.shared.segments().load(guard);
        match self.find(list, offset) {
            Some(record) => Ok(record),
            None => self.missing(guard, offset),
        }
    }

    /// Copies the record at `offset` into a new `Vec`.
    pub fn read(&self, offset: u64) -> Result<Vec<u8>> {
        self.with_record(offset, |record| record.payload.to_vec())
    }

    /// Copies the record at `offset`, with its timestamp, out of the log.
    pub fn read_record(&self, offset: u64) -> Result<Record> {
        self.with_record(offset, |record| record.to_record())
    }

    /// Copies the record at `offset` into `buf` (replacing its contents, and
    /// allocating only when `buf` is too small) and returns its timestamp.
    pub fn read_into(&self, offset: u64, buf: &mut Vec<u8>) -> Result<u64> {
        self.with_record(offset, |record| {
            buf.clear();
            buf.extend_from_slice(record.payload);
            record.timestamp
        })
    }

    /// Calls `f` on the record at `offset`, read in place.
    #[inline]
    pub fn with_record<R>(&self, offset: u64, f: impl FnOnce(RecordRef<'_>) -> R) -> Result<R> {
        {
            let guard = pin();
            let list = self.shared.segments().load(&guard);
            if let Some(record) = self.find(list, offset) {
                return Ok(f(record));
            }
            if self.shared.remote().is_none() {
                return Err(self.why_not(list, offset));
            }
        }
        self.with_record_caught_up(offset, f)
    }

    /// [`Reader::with_record`] in a reader process, after a miss: catches
    /// up unpinned (it may open files, and a pin held that long would hold
    /// back reclamation in the process), then reads again.
    #[cold]
    #[inline(never)]
    fn with_record_caught_up<R>(
        &self,
        offset: u64,
        f: impl FnOnce(RecordRef<'_>) -> R,
    ) -> Result<R> {
        self.shared.catch_up_now();
        let guard = pin();
        let list = self.shared.segments().load(&guard);
        match self.find(list, offset) {
            Some(record) => Ok(f(record)),
            None => Err(self.why_not(list, offset)),
        }
    }

    /// Why `offset` cannot be read through `list`.
    #[cold]
    #[inline(never)]
    fn why_not(&self, list: &SegmentList, offset: u64) -> Error {
        let end = visible_end(&self.shared, list, self.durable_only);
        out_of_range(&self.shared, offset, list, end)
    }

    /// Pins the current thread for zero-copy reads with [`Reader::get`].
    #[inline]
    pub fn pin(&self) -> ReadGuard {
        ReadGuard { guard: pin() }
    }

    /// The record at `offset`, in place: its payload borrows the mapped
    /// segment and stays valid as long as both `guard` and this reader.
    ///
    /// The record cannot outlive the reader, even with the guard kept:
    ///
    /// ```compile_fail
    /// # let dir = tempfile::tempdir().unwrap();
    /// let (mut writer, reader) = murakami::Log::open(dir.path(), Default::default()).unwrap();
    /// writer.append(b"x").unwrap();
    /// let guard = reader.pin();
    /// let record = reader.get(0, &guard).unwrap();
    /// drop(reader);
    /// drop(writer);
    /// assert_eq!(record.payload, b"x");
    /// ```
    #[inline]
    pub fn get<'g>(&'g self, offset: u64, guard: &'g ReadGuard) -> Result<RecordRef<'g>> {
        self.lookup(&guard.guard, offset)
    }

    /// Waits until the record at `offset` can be read (published, or durable
    /// for a durable reader): `Ok(true)` as soon as it can, `Ok(false)` when
    /// `timeout` passes first, `Err(Error::Closed)` if the writer closes
    /// before it exists.
    ///
    /// Spins for up to the reader's spin time (see [`Reader::spin`]), then
    /// sleeps until the producer (or, for a durable reader, a sync) wakes
    /// it. The producer pays one atomic load per append for this when nobody
    /// waits, and no wake-up is lost when someone does.
    pub fn wait_for(&self, offset: u64, timeout: Duration) -> Result<bool> {
        if self.ready(offset) {
            return Ok(true);
        }
        // In a reader process, the view may stop short of `offset` at
        // damage: nothing will come.
        if let Some(fault) = self.shared.remote().and_then(|r| r.fault_error(offset)) {
            return Err(fault);
        }
        let start = Instant::now();
        let deadline = start
            .checked_add(timeout)
            .unwrap_or(start + Duration::from_secs(1 << 32));
        let spin_until = start
            .checked_add(self.spin)
            .unwrap_or(deadline)
            .min(deadline);
        let mut spins = 0u32;
        loop {
            if self.ready(offset) {
                return Ok(true);
            }
            if self.shared.ends_waits() {
                return self.closed(offset);
            }
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 && Instant::now() >= spin_until {
                break;
            }
            crate::primitives::spin_loop();
        }
        let shared = &self.shared;
        let woken = match shared.remote() {
            // Another process's writer wakes this one through the control
            // file; before there is one, look again now and then.
            // Its checks wait for another thread of this process that is
            // catching up: a check that went on without the record that
            // thread is about to publish would sleep past the wake-up the
            // writer sent for it (or did not send: it saw no sleeper yet).
            Some(remote) => match remote.control() {
                Some(control) => wake::remote::sleep(control, deadline, || self.ready_now(offset)),
                None => wake::remote::sleep_in_slices(deadline, || self.ready_now(offset)),
            },
            None => shared
                .notify()
                .wait(deadline, || self.ready(offset) || shared.ends_waits()),
        };
        if self.ready(offset) {
            return Ok(true);
        }
        if shared.ends_waits() {
            return self.closed(offset);
        }
        Ok(woken)
    }

    /// After close: ready or not, for good.
    fn closed(&self, offset: u64) -> Result<bool> {
        if self.ready(offset) {
            Ok(true)
        } else {
            Err(Error::Closed)
        }
    }

    /// Whether the record at `offset` can be read now.
    #[inline]
    fn ready(&self, offset: u64) -> bool {
        if offset < self.visible_end() {
            return true;
        }
        // In a reader process, the writer may have published it since.
        self.shared.remote().is_some() && {
            self.shared.catch_up();
            offset < self.visible_end()
        }
    }

    /// [`Reader::ready`] for a reader of another process's log that is
    /// about to sleep: if the record is not in the view, the view is brought
    /// up to date, waiting for a thread of this process that is at it.
    fn ready_now(&self, offset: u64) -> bool {
        offset < self.visible_end() || {
            self.shared.catch_up_now();
            offset < self.visible_end()
        }
    }

    /// [`Reader::end_offset`] of the view as it is.
    fn visible_end(&self) -> u64 {
        let guard = pin();
        let list = self.shared.segments().load(&guard);
        visible_end(&self.shared, list, self.durable_only)
    }

    /// Offset of the first record in the log.
    pub fn first_offset(&self) -> u64 {
        self.shared.catch_up();
        let first = self.shared.first_offset();
        match self.shared.remote() {
            Some(remote) => first.max(remote.first_offset().unwrap_or(0)),
            None => first,
        }
    }

    /// One past the last published record: the offset the next append gets.
    pub fn next_offset(&self) -> u64 {
        self.shared.catch_up();
        self.shared.next_offset()
    }

    /// One past the last record this reader may see: [`Reader::next_offset`],
    /// or [`Reader::durable_offset`] for a durable reader.
    pub fn end_offset(&self) -> u64 {
        self.shared.catch_up();
        self.visible_end()
    }

    /// One past the last durable record.
    pub fn durable_offset(&self) -> u64 {
        self.shared.catch_up();
        self.shared.syncer().durable()
    }

    /// The first offset whose record's timestamp is at or after `t` (ns),
    /// or the end of the log if none is; like Kafka's time index. O(log n)
    /// over segments and records, reading frame headers only.
    ///
    /// Timestamps given by callers need not increase. The lookup then works
    /// on the running maximum: it finds the first segment whose newest
    /// record (or any before it) reaches `t`, and bisects that segment's
    /// records by timestamp. With non-decreasing timestamps that is exactly
    /// the first record at or after `t`; otherwise it is a record at or
    /// after `t` whose predecessor in the segment is before `t`, and records
    /// elsewhere may be out of order around it.
    pub fn offset_for_timestamp(&self, t: u64) -> u64 {
        self.shared.catch_up();
        let guard = pin();
        let list = self.shared.segments().load(&guard);
        let found = list.offset_for_timestamp(t);
        found.min(visible_end(&self.shared, list, self.durable_only))
    }

    /// Whether the writer has been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}
