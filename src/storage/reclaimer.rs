//! Releases the segments a purge, a cleanup or a truncation removed, on a
//! background thread, so that the caller does not pay for unmapping them.
//!
//! Unmapping a removed segment is most of what a removal costs: the map
//! holds the last reference to the unlinked file, so dropping it also frees
//! the file's pages and disk blocks (about 0.7 ms per 1 MiB segment on
//! ext4 here, against tens of µs for the unlink). The caller hands its own
//! `Arc`s of the removed segments over ([`Reclaimer::release`]); the thread
//! collects the epoch's garbage until the retired segment lists holding them
//! are freed and then drops those `Arc`s, which unmaps every segment no
//! reader holds any more.
//!
//! # Why a thread of its own, not the preparing thread
//!
//! The preparing thread (`preparer.rs`) would save a thread, and it could
//! release retired segments before it creates the next one, which would keep
//! the space promise by construction. But it is on the producer's path in two
//! ways this thread is not: a roll waits for it when the next segment is not
//! ready yet, and its chase faults pages in ahead of the producer. With
//! 4 MiB segments filled in a few milliseconds and a cleanup after almost
//! every roll (the retention bench), a millisecond of unmapping per segment
//! there would show up as rolls that wait and as page faults on the append
//! path. Here it delays nobody: the only coupling is on a full disk, where
//! the preparing thread, when creating a segment fails with `ENOSPC`, waits
//! for the segments handed over so far to be released and tries once more
//! ([`Reclaimer::drain`]). So a purge that returned before a roll still makes
//! room for it; on a disk with room, nothing ever waits for this thread.
//!
//! # Synchronization
//!
//! One mutex guards [`State`]: the segments handed over and not yet
//! released, whether the thread is releasing a batch (outside the lock),
//! and a count of released batches. Callers push under the lock and notify
//! [`Inner::changed`]; the thread takes the whole queue, releases it without
//! the lock, then bumps the count and notifies `changed` again, under the
//! lock, waking whoever drains. Without a running thread (before it starts,
//! after it stops, under the loom models' logs) a release runs on the
//! caller, as it did before this thread existed.
//!
//! While a reader stays pinned, the retired lists cannot be freed; the
//! thread then tries again, napping in between, for a while (see
//! [`PATIENT_COLLECTIONS`]) rather than leave the unmapping to a reader's
//! next pin.
//!
//! Readers are unaffected: the thread only drops `Arc`s. A segment is
//! unmapped when its last `Arc` goes, and the retired lists holding it are
//! freed only by the epoch, once no guard can see them; a cursor holds its
//! own `Arc`. Whichever of them lets go last unmaps, as before.
#![forbid(unsafe_code)]

use std::io;

use crate::primitives::{Arc, Condvar, Mutex, MutexGuard, lock, pin, thread};
use crate::storage::segment::Segment;

/// Epoch collections a caller tries before it lets go of the segments
/// (when no thread runs): a retired list is freed after two epoch advances,
/// unless a reader stays pinned.
const COLLECTIONS: usize = 4;
/// Epoch collections the thread tries, napping in between (from
/// [`FIRST_NAP`], doubling up to [`LONGEST_NAP`]: about 0.2 s in all), while
/// a pinned reader keeps a retired list alive, before it lets go of the
/// segments and leaves the unmapping to whoever frees the list or drops a
/// cursor last. Under loom: no naps, and as few tries as a caller.
#[cfg(not(feature = "loom"))]
const PATIENT_COLLECTIONS: usize = 16;
#[cfg(feature = "loom")]
const PATIENT_COLLECTIONS: usize = COLLECTIONS;
#[cfg(not(feature = "loom"))]
const FIRST_NAP: std::time::Duration = std::time::Duration::from_micros(50);
#[cfg(not(feature = "loom"))]
const LONGEST_NAP: std::time::Duration = std::time::Duration::from_millis(100);

/// What the releasing thread has to do and has done.
#[derive(Default)]
struct State {
    /// Segments handed over, not yet released.
    queue: Vec<Arc<Segment>>,
    /// The thread is releasing a batch it took from `queue`.
    busy: bool,
    /// Batches released so far.
    released: u64,
    /// A thread takes batches; otherwise `release` runs on the caller.
    running: bool,
    /// The thread should stop once the queue is empty.
    shutdown: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Signals a new batch or a shutdown (to the thread) and a released
    /// batch (to whoever drains).
    changed: Condvar,
}

/// Where removed segments go to be unmapped. Cheap to clone: the log's
/// shared state and the preparing thread hold one each.
#[derive(Clone)]
pub(crate) struct Reclaimer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Reclaimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reclaimer").finish_non_exhaustive()
    }
}

/// The releasing thread. Dropping it releases what is queued, stops the
/// thread and joins it; releases run on their callers after that.
pub(crate) struct ReclaimThread {
    inner: Arc<Inner>,
    thread: Option<thread::JoinHandle<()>>,
}

fn wait<'a>(changed: &Condvar, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    changed
        .wait(state)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lets go of `segments` once the epoch has freed the retired lists that
/// also hold them, so that dropping them here is what unmaps them (unless a
/// cursor still holds one). `patient` (the thread, until told to stop):
/// up to [`PATIENT_COLLECTIONS`] tries with naps in between; otherwise (a
/// caller) [`COLLECTIONS`] tries at once.
fn release_now(segments: Vec<Arc<Segment>>, patient: Option<&Inner>) {
    let patient = patient.filter(|inner| !lock(&inner.state).shutdown);
    let tries = match patient {
        Some(_) => PATIENT_COLLECTIONS,
        None => COLLECTIONS,
    };
    #[cfg(not(feature = "loom"))]
    let mut nap = FIRST_NAP;
    for tried in 0..tries {
        if segments.iter().all(|s| Arc::strong_count(s) == 1) {
            break;
        }
        if let Some(inner) = patient.filter(|_| tried >= COLLECTIONS) {
            if lock(&inner.state).shutdown {
                break;
            }
            #[cfg(not(feature = "loom"))]
            {
                std::thread::sleep(nap);
                nap = (nap * 2).min(LONGEST_NAP);
            }
        }
        pin().flush();
    }
    drop(segments);
}

impl Reclaimer {
    /// A reclaimer without a thread: releases run on their callers until
    /// [`Reclaimer::start`].
    pub(crate) fn new() -> Reclaimer {
        Reclaimer {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        }
    }

    /// Starts the releasing thread.
    pub(crate) fn start(&self) -> io::Result<ReclaimThread> {
        let worker = Arc::clone(&self.inner);
        let thread = thread::Builder::new()
            .name("murakami-reclaim".into())
            .spawn(move || worker.run())?;
        lock(&self.inner.state).running = true;
        Ok(ReclaimThread {
            inner: Arc::clone(&self.inner),
            thread: Some(thread),
        })
    }

    /// Hands over the caller's `Arc`s of segments that left the segment
    /// list (swapped out before this call), to be unmapped once no reader
    /// holds them. Never waits for the unmapping when the thread runs.
    pub(crate) fn release(&self, segments: Vec<Arc<Segment>>) {
        // Move the retired list from this thread's local garbage bag to the
        // global queue, where the releasing thread's collections find it.
        pin().flush();
        if segments.is_empty() {
            return;
        }
        let mut state = lock(&self.inner.state);
        if state.running {
            state.queue.extend(segments);
            self.inner.changed.notify_all();
        } else {
            drop(state);
            release_now(segments, None);
        }
    }

    /// Batches released so far: compare with [`Reclaimer::drain`]'s answer
    /// to learn whether a release ended in between.
    pub(crate) fn released(&self) -> u64 {
        lock(&self.inner.state).released
    }

    /// Waits until everything handed over so far is released; returns the
    /// count of released batches then.
    pub(crate) fn drain(&self) -> u64 {
        let mut state = lock(&self.inner.state);
        while state.running && (state.busy || !state.queue.is_empty()) {
            state = wait(&self.inner.changed, state);
        }
        state.released
    }
}

impl Inner {
    fn run(&self) {
        let _unwinding = Unwinding(self);
        let mut state = lock(&self.state);
        loop {
            if !state.queue.is_empty() {
                let batch = std::mem::take(&mut state.queue);
                state.busy = true;
                drop(state);
                release_now(batch, Some(self));
                state = lock(&self.state);
                state.busy = false;
                state.released += 1;
                self.changed.notify_all();
            } else if state.shutdown {
                state.running = false;
                return;
            } else {
                state = wait(&self.changed, state);
            }
        }
    }
}

/// Should the thread panic, releases go back to their callers and nobody
/// waits for it forever in [`Reclaimer::drain`].
struct Unwinding<'a>(&'a Inner);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut state = lock(&self.0.state);
        state.running = false;
        state.busy = false;
        state.released += 1;
        self.0.changed.notify_all();
    }
}

impl Drop for ReclaimThread {
    fn drop(&mut self) {
        lock(&self.inner.state).shutdown = true;
        self.inner.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // A thread that panicked may have left segments behind.
        let left = std::mem::take(&mut lock(&self.inner.state).queue);
        release_now(left, None);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use std::path::Path;

    use crate::error::Error;
    use crate::primitives::{Arc, Ordering};
    use crate::storage::fs::faulty::{Faults, FaultyFs};
    use crate::{Log, Options, Reader, Writer};

    const RECLAIMING: Option<&str> = Some("murakami-reclaim");

    /// One test at a time: a guard one holds keeps the epoch from freeing
    /// another's retired lists.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open_faulty(dir: &Path, faults: &Arc<Faults>) -> (Writer, Reader) {
        let vfs = Arc::new(FaultyFs(Arc::clone(faults)));
        let options = Options::default()
            .segment_size(4096)
            .max_record_size(512)
            .prefault(false);
        Log::open_with(vfs, dir, options).unwrap()
    }

    fn record(i: u64) -> Vec<u8> {
        i.to_le_bytes().repeat(40)
    }

    /// Appends until the log has `sealed` sealed segments.
    fn fill(writer: &mut Writer, reader: &Reader, sealed: u64) {
        let shared = writer.shared().clone();
        while shared
            .segments()
            .load(&crate::primitives::pin())
            .segments()
            .len() as u64
            <= sealed
        {
            let i = reader.next_offset();
            assert_eq!(writer.append(&record(i)).unwrap(), i);
        }
        writer.sync().unwrap();
    }

    fn names(on: &[Option<String>]) -> Vec<Option<&str>> {
        on.iter().map(Option::as_deref).collect()
    }

    #[test]
    fn a_purge_leaves_the_unmapping_to_the_reclaiming_thread() {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let (mut writer, reader) = open_faulty(tmp.path(), &faults);
        fill(&mut writer, &reader, 4);
        faults.take_unmapped_on();
        let removed = writer.purge_before(reader.next_offset()).unwrap();
        assert_eq!(removed.segments, 4);
        writer.shared().reclaimer().drain();
        assert_eq!(
            names(&faults.take_unmapped_on()),
            [RECLAIMING; 4],
            "every removed segment is unmapped, and not on the caller's thread"
        );
        // A truncation hands its discarded segments over too.
        fill(&mut writer, &reader, 3);
        let first = reader.first_offset();
        faults.take_unmapped_on();
        writer.truncate_from(first + 1).unwrap();
        writer.shared().reclaimer().drain();
        let on = faults.take_unmapped_on();
        assert_eq!(names(&on), vec![RECLAIMING; on.len()]);
        assert_eq!(
            on.len(),
            3,
            "the segments after the cut one, and the old active one"
        );
        writer.close().unwrap();
    }

    #[test]
    fn a_reader_holding_a_removed_segment_still_reads_it_and_keeps_it_mapped() {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let (mut writer, reader) = open_faulty(tmp.path(), &faults);
        fill(&mut writer, &reader, 3);
        // The cursor holds the first segment, the guard the list (and a
        // record in the last sealed segment).
        let mut cursor = reader.cursor(0).unwrap();
        let guard = reader.pin();
        let (second, last_sealed) = {
            let pinned = crate::primitives::pin();
            let list = writer.shared().segments().load(&pinned);
            (list.segments()[1].base(), list.active().base() - 1)
        };
        let held = reader.get(last_sealed, &guard).unwrap();
        faults.take_unmapped_on();
        let removed = writer.purge_before(reader.next_offset()).unwrap();
        assert_eq!(removed.segments, 3);
        writer.shared().reclaimer().drain();
        assert!(matches!(reader.read(0), Err(Error::Purged { .. })));
        assert_eq!(
            held.payload,
            record(last_sealed),
            "read in place after the purge"
        );
        assert_eq!(cursor.next_ref().unwrap().unwrap().payload, record(0));
        assert_eq!(
            faults.take_unmapped_on(),
            [],
            "nothing is unmapped while a guard can still see the old list"
        );
        drop(guard);
        for next in 1..second {
            let got = cursor.next_ref().unwrap().unwrap();
            assert_eq!((got.offset, got.payload), (next, &record(next)[..]));
        }
        assert!(matches!(cursor.next_ref(), Err(Error::Purged { .. })));
        drop(cursor);
        // Once the readers let go, every removed segment is unmapped (by
        // whichever thread frees the list: here, this one).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut unmapped = 0;
        while unmapped < 3 {
            crate::storage::list::Segments::collect_garbage();
            unmapped += faults.take_unmapped_on().len();
            assert!(std::time::Instant::now() < deadline, "never unmapped");
        }
        assert_eq!(unmapped, 3);
        writer.close().unwrap();
    }

    #[test]
    fn a_roll_on_a_full_disk_waits_for_the_purged_segments_to_be_unmapped() {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        // Room for the control file and three segments; the first and the
        // next one are made at open, the third at the first roll.
        faults.room.store(4, Ordering::SeqCst);
        let (mut writer, reader) = open_faulty(tmp.path(), &faults);
        let err = loop {
            let i = reader.next_offset();
            match writer.append(&record(i)) {
                Ok(offset) => assert_eq!(offset, i),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(&err, Error::Io(e) if e.raw_os_error() == Some(libc::ENOSPC)),
            "{err:?}"
        );
        let n = reader.next_offset();
        // Unmapping now takes a while: the roll below asks for a segment
        // while the purged ones are still mapped, and must wait for them.
        faults.slow_unmap.store(true, Ordering::SeqCst);
        let removed = writer.purge_before(n).unwrap();
        assert_eq!(removed.segments, 2);
        assert_eq!(writer.append(&record(n)).unwrap(), n, "the space came back");
        assert_eq!(
            names(&faults.take_unmapped_on()),
            [RECLAIMING; 2],
            "unmapped on the reclaiming thread, before the roll created a file"
        );
        faults.slow_unmap.store(false, Ordering::SeqCst);
        writer.close().unwrap();
    }
}
