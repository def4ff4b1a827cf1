//! Many producers: a writer shared between threads, with group commit.
//!
//! # Synchronization
//!
//! Appends serialize on one mutex around the [`Writer`]; the critical
//! section is the append itself (tens of nanoseconds), never a flush: the
//! syncs that `SyncPolicy::Always` and `SyncPolicy::EveryRecords` call for
//! run after it, through the group commit below.
//!
//! Durable appends use group commit. A thread that needs offset `o` durable
//! waits until the durable offset passes `o`. If no flush is running, it
//! becomes the leader (compare-and-swap on [`Inner::flushing`]): it lets the
//! other threads in a durable append finish appending (up to [`GATHER`]),
//! then runs one sync, which covers every record published before it
//! started. Followers sleep on [`Inner::flushed`], which the leader advances
//! when the flush ends (one system call wakes them all); one whose record
//! the flush did not cover (it appended after the flush began) leads the
//! next. So N threads waiting for durability share each flush instead of
//! queueing N flushes, and the mutex around the writer is never held across
//! one.
#![forbid(unsafe_code)]

use std::fmt;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::options::SyncPolicy;
use crate::primitives::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering, lock, thread};
use crate::read::reader::Reader;
use crate::retention::Removed;
use crate::shared::Shared;
use crate::wake::word::WaitWord;
use crate::write::writer::Writer;
use std::time::Duration;
#[cfg(not(feature = "loom"))]
use std::time::Instant;

/// A writer for many threads: `Clone + Send + Sync`.
///
/// Each call learns its own offset; offsets are dense, and their order is
/// the order of the appends. [`SharedWriter::append_durable`] and
/// [`SharedWriter::sync`] share flushes between threads (group commit).
///
/// End with [`close`](SharedWriter::close) (through any clone): dropping
/// the last clone without it syncs too but swallows the error, as dropping
/// a [`Writer`] does.
///
/// ```
/// # #[cfg(feature = "loom")] fn main() {} // loom builds run only the models
/// # #[cfg(not(feature = "loom"))]
/// # fn main() -> murakami::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// let (writer, reader) = murakami::Log::open(dir.path(), Default::default())?;
/// let writer = writer.into_shared();
/// let handles: Vec<_> = (0..4u8)
///     .map(|t| {
///         let writer = writer.clone();
///         std::thread::spawn(move || writer.append_durable(&[t; 16]))
///     })
///     .collect();
/// for handle in handles {
///     let offset = handle.join().unwrap()?;
///     assert!(offset < reader.durable_offset());
/// }
/// writer.close()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedWriter {
    inner: Arc<Inner>,
}

/// What the appends serialize on: the log's [`Writer`], or in the loom
/// models a producer without files (`loom_api`), since a real writer needs
/// files and a preparing thread.
#[cfg(not(feature = "loom"))]
type Producer = Writer;
#[cfg(feature = "loom")]
type Producer = crate::write::model::Producer;

struct Inner {
    /// Loom models only: the mutant whose followers take the end of the
    /// flush they waited for as their acknowledgement, covered or not.
    #[cfg(feature = "loom")]
    acknowledge_any_flush: bool,
    writer: Mutex<Option<Producer>>,
    shared: Arc<Shared>,
    /// A flush is running; its leader set this.
    flushing: AtomicBool,
    always: bool,
    /// Threads inside a durable append (appending or waiting).
    in_flight: AtomicUsize,
    /// Of those, the ones whose record is appended and that wait for it.
    waiting: AtomicUsize,
    /// Durable appends made since the current (or last) flush began.
    fresh: AtomicUsize,
    /// Advanced when a flush ends; followers sleep on it.
    flushed: WaitWord,
}

/// Ends a flush when dropped, even by a panic in it: clears
/// [`Inner::flushing`], then wakes every sleeping follower (one system
/// call, none if nobody sleeps): those covered return, one of the others
/// leads the next flush.
struct FlushEnd<'a>(&'a Inner);

impl Drop for FlushEnd<'_> {
    fn drop(&mut self) {
        self.0.flushing.store(false, Ordering::Release);
        self.0.flushed.advance();
    }
}

/// Counts a thread in `counter` while it lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Counted<'a> {
        counter.fetch_add(1, Ordering::AcqRel);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The longest a flush leader waits for other threads' appends to land.
#[cfg(not(feature = "loom"))]
const GATHER: Duration = Duration::from_micros(200);
/// Under loom (no clock; a model must be deterministic), how many turns a
/// flush leader yields to other threads' appends at most.
#[cfg(feature = "loom")]
const GATHER_TURNS: u32 = 2;
/// The longest a follower sleeps before it looks again on its own (a
/// safety net: the leader wakes it).
const FOLLOWER_PATIENCE: Duration = Duration::from_millis(10);

impl fmt::Debug for SharedWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedWriter")
            .field("dir", &self.inner.shared.dir())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Turns the writer into one that many threads can share.
    pub fn into_shared(self) -> SharedWriter {
        let shared = Arc::clone(self.shared());
        #[cfg(not(feature = "loom"))]
        let producer = self;
        #[cfg(feature = "loom")]
        let producer = Producer::from(self);
        SharedWriter::serializing(shared, producer)
    }
}

impl SharedWriter {
    /// A shared writer whose appends go through `producer`, the one writer
    /// of `shared`'s log.
    pub(crate) fn serializing(shared: Arc<Shared>, producer: Producer) -> SharedWriter {
        let always = shared.options().sync == SyncPolicy::Always;
        SharedWriter {
            inner: Arc::new(Inner {
                #[cfg(feature = "loom")]
                acknowledge_any_flush: producer.acknowledges_any_flush(),
                writer: Mutex::new(Some(producer)),
                shared,
                flushing: AtomicBool::new(false),
                always,
                in_flight: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
                fresh: AtomicUsize::new(0),
                flushed: WaitWord::default(),
            }),
        }
    }

    fn with_writer<R>(&self, f: impl FnOnce(&mut Producer) -> Result<R>) -> Result<R> {
        let mut writer = lock(&self.inner.writer);
        f(writer.as_mut().ok_or(Error::Closed)?)
    }

    /// Appends a record and returns its offset. Under
    /// [`SyncPolicy::Always`] it returns once the record is durable, sharing
    /// the flush with concurrent appends. Under
    /// [`SyncPolicy::EveryRecords`], the append that reaches the count
    /// returns once a sync covers it, through the same group commit: the
    /// flush runs outside the writer's lock, so other threads' appends go on
    /// meanwhile. Other policies apply as they do for a [`Writer`].
    ///
    /// Under `Always` and `EveryRecords`, if another thread truncates the
    /// log below the record before a sync covers it, this returns
    /// [`Error::Truncated`]: the record was appended, then discarded. A
    /// restart ([`SharedWriter::restart_at`]) syncs before it drops
    /// anything: a record appended before it returns `Ok` if this saw it
    /// durable first, [`Error::Truncated`] if it looked only after the
    /// restart.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        if self.inner.always {
            return self.append_durable(payload);
        }
        let (offset, due) = self.with_writer(|w| {
            let timestamp = w.now();
            let offset = w.append_unsynced(payload, timestamp)?;
            Ok((offset, w.sync_due(1).then(|| self.era())))
        })?;
        if let Some(era) = due {
            self.wait_durable(offset + 1, era)?;
        }
        Ok(offset)
    }

    /// Appends a record and returns its offset once it is durable. Threads
    /// that do this at the same time share flushes.
    pub fn append_durable(&self, payload: &[u8]) -> Result<u64> {
        let _in_flight = Counted::new(&self.inner.in_flight);
        let (offset, era) = self.with_writer(|w| {
            let timestamp = w.now();
            Ok((w.append_unsynced(payload, timestamp)?, self.era()))
        })?;
        self.inner.fresh.fetch_add(1, Ordering::AcqRel);
        self.wait_durable(offset + 1, era)?;
        Ok(offset)
    }

    /// How many truncations happened so far (read under the writer lock).
    fn era(&self) -> u64 {
        self.inner.shared.truncations()
    }

    /// Appends many records under one lock and one publication; see
    /// [`Writer::append_batch`].
    pub fn append_batch<B: AsRef<[u8]>>(&self, records: &[B]) -> Result<Range<u64>> {
        if !self.inner.always {
            let (range, due) = self.with_writer(|w| {
                let range = w.append_batch_unsynced(records)?;
                Ok((
                    range.clone(),
                    w.sync_due(range.end - range.start).then(|| self.era()),
                ))
            })?;
            // As in `append`: the policy's sync outside the lock.
            if let Some(era) = due {
                self.wait_durable(range.end, era)?;
            }
            return Ok(range);
        }
        // Under `Always`, flush outside the lock, shared with other threads.
        let _in_flight = Counted::new(&self.inner.in_flight);
        let (range, era) =
            self.with_writer(|w| Ok((w.append_batch_unsynced(records)?, self.era())))?;
        self.inner.fresh.fetch_add(1, Ordering::AcqRel);
        self.wait_durable(range.end, era)?;
        Ok(range)
    }

    /// Makes every record appended so far (by any thread) durable; returns
    /// the durable offset. Shares the flush with concurrent callers.
    pub fn sync(&self) -> Result<u64> {
        let (target, era) = self.with_writer(|w| Ok((w.next_offset(), self.era())))?;
        self.wait_durable(target, era)
    }

    /// See [`Writer::purge_before`]: removes whole sealed segments only,
    /// never the active one, so records from [`Removed::first_offset`] on
    /// stay readable even when `offset` is past them.
    pub fn purge_before(&self, offset: u64) -> Result<Removed> {
        self.with_writer(|w| w.purge_before(offset))
    }

    /// See [`Writer::truncate_from`].
    pub fn truncate_from(&self, offset: u64) -> Result<()> {
        self.with_writer(|w| w.truncate_from(offset))
    }

    /// See [`Writer::restart_at`].
    pub fn restart_at(&self, offset: u64) -> Result<()> {
        self.with_writer(|w| w.restart_at(offset))
    }

    /// See [`Writer::truncate_after`].
    pub fn truncate_after(&self, offset: u64) -> Result<()> {
        self.with_writer(|w| w.truncate_after(offset))
    }

    /// See [`Writer::cleanup`].
    pub fn cleanup(&self) -> Result<Removed> {
        self.with_writer(|w| w.cleanup())
    }

    /// One past the last record appended: counts every append (by any
    /// thread) that has returned, and perhaps some about to return. Read from
    /// the log's published tail, so it takes no lock and waits for no
    /// append; after [`close`](SharedWriter::close) (through any clone) it
    /// keeps answering with where the log ended.
    pub fn next_offset(&self) -> u64 {
        self.inner.shared.next_offset()
    }

    /// Offset of the first record in the log; see [`Writer::first_offset`].
    /// Lock-free, and answers after `close` too.
    pub fn first_offset(&self) -> u64 {
        self.inner.shared.first_offset()
    }

    /// One past the last durable record.
    pub fn durable_offset(&self) -> u64 {
        self.inner.shared.syncer().durable()
    }

    /// A new reader of this log.
    pub fn reader(&self) -> Reader {
        Reader::new(Arc::clone(&self.inner.shared))
    }

    /// Closes the log for every handle: syncs, records a clean shutdown and
    /// releases the directory. Later appends through any clone return
    /// [`Error::Closed`].
    pub fn close(self) -> Result<()> {
        let writer = lock(&self.inner.writer).take();
        match writer {
            Some(writer) => writer.close(),
            None => Ok(()),
        }
    }

    /// Before a flush: lets every thread in a durable append get its record
    /// in since the last flush began (briefly, up to [`GATHER`]), so that
    /// one flush covers them all instead of each leading its own. No wait
    /// when this thread is the only one.
    fn gather(&self) {
        let inner = &*self.inner;
        #[cfg(not(feature = "loom"))]
        let start = Instant::now();
        #[cfg(feature = "loom")]
        let mut turns = 0;
        while inner.fresh.load(Ordering::Acquire) < inner.in_flight.load(Ordering::Acquire) {
            #[cfg(not(feature = "loom"))]
            if start.elapsed() >= GATHER {
                break;
            }
            #[cfg(feature = "loom")]
            {
                if turns == GATHER_TURNS {
                    break;
                }
                turns += 1;
            }
            thread::yield_now();
        }
        inner.fresh.store(0, Ordering::Release);
    }

    /// Sleeps until the running flush ends (its leader advances
    /// [`Inner::flushed`] and wakes every sleeper), unless it ended already
    /// or covers `target`.
    fn park_until_flushed(&self, target: u64) {
        let inner = &*self.inner;
        // Read the count first: a flush that ends after this read moves it,
        // so the wait below returns at once or is woken.
        let seen = inner.flushed.load();
        if inner.flushing.load(Ordering::Acquire) && inner.shared.syncer().durable() < target {
            inner.flushed.wait(seen, FOLLOWER_PATIENCE);
        }
    }

    /// Waits until the durable offset reaches `target`, leading a flush when
    /// none is running. `era` is the truncation count when the records up to
    /// `target` were appended: if a truncation discarded them meanwhile,
    /// they will never be durable, and this says so.
    ///
    /// The leader is whoever wins a compare-and-swap; the others sleep
    /// until its flush ends rather than queueing on a lock, so that when it
    /// does they are all woken at once, return (and append again) together,
    /// and the next flush covers them all.
    fn wait_durable(&self, target: u64, era: u64) -> Result<u64> {
        let inner = &*self.inner;
        let syncer = &inner.shared.syncer();
        let _waiting = Counted::new(&inner.waiting);
        loop {
            let era_now = self.era();
            let durable = syncer.durable();
            // A restart past the record dropped it, and the durable offset
            // jumped over it: below the first offset now means discarded.
            if era_now != era && target <= inner.shared.first_offset() {
                return Err(Error::Truncated { offset: target - 1 });
            }
            if durable >= target {
                return Ok(durable);
            }
            // A truncation syncs everything before it cuts, so after one the
            // records it kept are all durable: still short means discarded.
            if era_now != era {
                return Err(Error::Truncated { offset: target - 1 });
            }
            syncer.poison.check()?;
            let lead = inner
                .flushing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if !lead {
                self.park_until_flushed(target);
                #[cfg(feature = "loom")]
                if inner.acknowledge_any_flush {
                    return Ok(syncer.durable());
                }
                continue;
            }
            let outcome = {
                let _end = FlushEnd(inner);
                self.gather();
                inner.shared.sync()
            };
            outcome?;
        }
    }
}
