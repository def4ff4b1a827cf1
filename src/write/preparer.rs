//! Prepares segments ahead of the producer, on a background thread.
//!
//! Two jobs, so that appends never wait for the file system:
//!
//! - **The next segment**: create the file, reserve its space (`fallocate`),
//!   map it and fault in its first [`PREPARED_AHEAD`](crate::storage::create::PREPARED_AHEAD) bytes, while the
//!   producer fills the current one. A roll then only writes a header,
//!   renames a file and swaps a list. This job comes first: a roll may wait
//!   for it.
//! - **Pages ahead of the producer**: fault in (`MADV_POPULATE_WRITE`) the
//!   active segment's pages up to [`LEAD`] bytes past the producer. A page
//!   fault costs more than an append; on this kind of machine faulting in a
//!   page takes about as long as filling it, so the thread runs beside the
//!   producer, chasing it, rather than populating whole segments up front
//!   (which would make the producer wait at every roll). When it gets
//!   `LEAD` ahead it rests until the producer comes within `LEAD / 4`, so
//!   that short bursts of appends run with no faulting going on beside
//!   them. When the thread falls behind, the producer faults pages itself
//!   and the thread skips ahead of it: it never works behind the producer.
//!
//! # Synchronization
//!
//! One mutex guards [`State`] (the prepared segment and the requests for
//! one); the producer takes it only at a roll or a truncation, and waits
//! on [`Inner::changed`] there if the segment is not ready yet. Nothing the
//! producer does per append involves the thread: the thread finds the
//! active segment in the segment list (pinned for a moment, like a reader)
//! and the producer's position in its published tail. The producer only
//! nudges it, every [`KICK_EVERY`] bytes and at each new segment, through
//! [`Inner::nudged`] (a [`WaitWord`]: one read-modify-write, and a system
//! call only when the thread sleeps). The thread sleeps on that word alone;
//! every request (a segment wanted, shutdown) advances it too.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::primitives::{Arc, Condvar, Mutex, MutexGuard, lock, pin, thread};
use crate::shared::Shared;
use crate::storage::create::prepare;
use crate::storage::fs::{Map, PAGE, PREPARED_NAME, Vfs};
use crate::storage::reclaimer::Reclaimer;
use crate::storage::region::Region;
use crate::wake::word::WaitWord;

/// How far ahead of the producer pages are faulted in.
pub(crate) const LEAD: usize = 32 << 20;
/// How often (in bytes written) the producer nudges the thread.
pub(crate) const KICK_EVERY: usize = 2 << 20;
/// Pages faulted in per step, so a request for the next segment waits for
/// at most one step.
const STEP: usize = 1 << 20;
/// Pages the producer has written are released from the map (their
/// page-table entries dropped) in chunks of this many bytes, ...
const RELEASE_CHUNK: usize = 4 << 20;
/// ... once they are this far behind the producer.
const RELEASE_BEHIND: usize = 1 << 20;
/// The longest the thread sleeps without a nudge (a safety net: every
/// event it waits for advances the word).
const PATIENCE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    /// A prepared map, or the error preparing it hit.
    ready: Option<io::Result<Box<dyn Map>>>,
    /// The producer wants a segment prepared.
    wanted: bool,
    /// The log is closing.
    shutdown: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Signals the producer waiting in [`Preparer::take`].
    changed: Condvar,
    /// Advanced by every nudge and request; the thread sleeps on it.
    nudged: WaitWord,
    /// A std `Arc`: the file seam is outside the modelled protocol.
    vfs: std::sync::Arc<dyn Vfs>,
    path: PathBuf,
    capacity: u64,
    prefault: bool,
    /// The log whose active segment the thread faults in ahead of the
    /// producer (none: no chasing).
    log: Option<Arc<Shared>>,
    /// The log's reclaimer, waited for when the disk is full (none: no log).
    reclaimer: Option<Reclaimer>,
}

/// Handle on the preparing thread. Dropping it stops the thread and removes
/// a prepared file nobody took.
pub(crate) struct Preparer {
    inner: Arc<Inner>,
    thread: Option<thread::JoinHandle<()>>,
}

fn wait<'a>(changed: &Condvar, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    changed
        .wait(state)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Preparer {
    /// Starts the thread and asks it for the next segment. With `prefault`
    /// it faults in pages of the next segment before handing it over, and,
    /// given `log`, chases the producer in `log`'s active segment.
    pub(crate) fn start(
        vfs: std::sync::Arc<dyn Vfs>,
        dir: &Path,
        capacity: u64,
        prefault: bool,
        log: Option<Arc<Shared>>,
    ) -> io::Result<Preparer> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                wanted: true,
                ..State::default()
            }),
            changed: Condvar::new(),
            nudged: WaitWord::default(),
            vfs,
            path: dir.join(PREPARED_NAME),
            capacity,
            prefault,
            reclaimer: log.as_ref().map(|log| log.reclaimer().clone()),
            log: log.filter(|_| prefault),
        });
        let worker = Arc::clone(&inner);
        let thread = thread::Builder::new()
            .name("murakami-prepare".into())
            .spawn(move || worker.run())?;
        Ok(Preparer {
            inner,
            thread: Some(thread),
        })
    }

    /// Where prepared segments wait for their name.
    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Takes the prepared segment, waiting for it if the thread is still at
    /// work. The file stays at [`Preparer::path`] until the caller renames
    /// it; call [`Preparer::request_next`] after that.
    pub(crate) fn take(&self) -> io::Result<Box<dyn Map>> {
        let inner = &*self.inner;
        let mut state = lock(&inner.state);
        while state.ready.is_none() {
            if !state.wanted {
                state.wanted = true;
                inner.nudged.advance();
            }
            state = wait(&inner.changed, state);
        }
        state.ready.take().expect("checked above")
    }

    /// Asks the thread to prepare the next segment.
    pub(crate) fn request_next(&self) {
        lock(&self.inner.state).wanted = true;
        self.inner.nudged.advance();
    }

    /// Tells the thread the producer moved on (or to a new segment). Never
    /// blocks.
    #[inline]
    pub(crate) fn kick(&self) {
        self.inner.nudged.advance();
    }
}

/// What the thread does next.
enum Job {
    Prepare,
    Populate(Arc<Region>, usize, usize),
    Release(Arc<Region>, usize, usize),
    Sleep,
    Stop,
}

/// Where faulting-in stands in the segment being chased.
struct Chase {
    /// The segment's mapped bytes.
    region: Arc<Region>,
    /// Faulted in up to here.
    populated: usize,
    /// Released (see [`Region::release`]) up to here.
    released: usize,
    /// Filling up to `LEAD` ahead (rather than resting until the producer
    /// comes within `LEAD / 4`).
    filling: bool,
}

impl Inner {
    fn run(&self) {
        let _unwinding = Unwinding(self);
        let mut chase: Option<Chase> = None;
        loop {
            let seen = self.nudged.load();
            match self.next_job(&mut chase) {
                Job::Stop => return,
                Job::Prepare => {
                    let made = self.prepare_making_room();
                    let mut state = lock(&self.state);
                    state.ready = Some(made);
                    state.wanted = false;
                    self.changed.notify_all();
                }
                Job::Release(region, from, to) => {
                    // Best effort: what stays mapped costs only interrupts.
                    let _ = region.release(from, to - from);
                    if let Some(chase) = chase.as_mut() {
                        chase.released = to;
                    }
                }
                Job::Populate(region, from, to) => {
                    let failed = region.populate(from, to - from).is_err();
                    if let Some(chase) = chase.as_mut() {
                        // Not supported here (or out of memory): stop
                        // chasing this segment.
                        chase.populated = if failed { region.len() } else { to };
                    }
                }
                Job::Sleep => self.nudged.wait(seen, PATIENCE),
            }
        }
    }

    /// Prepares the next segment. On a full disk, waits for the segments a
    /// purge, a cleanup or a truncation handed to the reclaimer to be
    /// unmapped (their blocks stay taken until then) and, if any were
    /// released meanwhile, tries once more: a removal that returned before
    /// this roll makes room for it, as if it had unmapped on its caller.
    fn prepare_making_room(&self) -> io::Result<Box<dyn Map>> {
        let released = self.reclaimer.as_ref().map(Reclaimer::released);
        let made = prepare(&*self.vfs, &self.path, self.capacity, self.prefault);
        match (&made, &self.reclaimer) {
            (Err(e), Some(reclaimer))
                if e.raw_os_error() == Some(libc::ENOSPC)
                    && Some(reclaimer.drain()) != released =>
            {
                prepare(&*self.vfs, &self.path, self.capacity, self.prefault)
            }
            _ => made,
        }
    }

    /// The next job: a segment to prepare first, then pages to fault in or
    /// release.
    fn next_job(&self, chase: &mut Option<Chase>) -> Job {
        // Follow the active segment before anything else, so that a
        // replaced one is let go of before a segment is prepared: after a
        // truncation it is a discarded file whose disk space the next
        // segment may need.
        let end = self.follow_active(chase);
        {
            let state = lock(&self.state);
            if state.shutdown {
                return Job::Stop;
            }
            if state.wanted && state.ready.is_none() {
                return Job::Prepare;
            }
        }
        match (chase.as_mut(), end) {
            (Some(chase), Some(end)) => chase.next_step(end).unwrap_or(Job::Sleep),
            _ => Job::Sleep,
        }
    }

    /// Points `chase` at the log's active segment and returns the producer's
    /// published end in it (`None` without a log to chase). A new active
    /// segment (a roll, or a truncation that replaced it, possibly with one
    /// of the same base) gets a new chase, and the old one's map is let go.
    fn follow_active(&self, chase: &mut Option<Chase>) -> Option<usize> {
        let log = self.log.as_ref()?;
        let guard = pin();
        let active = log.segments().load(&guard).active();
        if chase
            .as_ref()
            .is_none_or(|c| !Arc::ptr_eq(&c.region, active.region()))
        {
            // A prepared segment is faulted in up to PREPARED_AHEAD
            // already; faulting in again what is there only walks the page
            // table.
            *chase = Some(Chase {
                region: Arc::clone(active.region()),
                populated: 0,
                released: 0,
                filling: true,
            });
        }
        Some(active.published().end())
    }
}

impl Chase {
    /// The next range to work on, given the producer's published `end`:
    /// whole pages at least [`RELEASE_BEHIND`] behind it to release, one
    /// [`RELEASE_CHUNK`] at a time; else up to [`STEP`] bytes at or past
    /// it, below [`LEAD`] bytes ahead of it, to fault in.
    fn next_step(&mut self, end: usize) -> Option<Job> {
        let region = &self.region;
        let behind = end.saturating_sub(RELEASE_BEHIND) / PAGE * PAGE;
        if behind >= self.released + RELEASE_CHUNK {
            // One chunk per step, so a request for a segment waits for at
            // most one (a reopened segment may be far behind).
            let to = self.released + RELEASE_CHUNK;
            return Some(Job::Release(Arc::clone(region), self.released, to));
        }
        let end = end.next_multiple_of(PAGE);
        let goal = (end + LEAD).min(region.len());
        let from = self.populated.max(end);
        self.filling |= from < (end + LEAD / 4).min(goal);
        if self.filling && from < goal {
            return Some(Job::Populate(
                Arc::clone(region),
                from,
                goal.min(from + STEP),
            ));
        }
        self.filling = false;
        None
    }
}

/// Should the thread panic, a producer waiting in [`Preparer::take`] (or
/// the next roll) gets an error instead of waiting forever.
struct Unwinding<'a>(&'a Inner);

impl Drop for Unwinding<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut state = lock(&self.0.state);
        if state.ready.is_none() {
            state.ready = Some(Err(io::Error::other(
                "the segment-preparing thread panicked",
            )));
        }
        self.0.changed.notify_all();
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        lock(&self.inner.state).shutdown = true;
        self.inner.nudged.advance();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(Ok(map)) = lock(&self.inner.state).ready.take() {
            drop(map);
            let _ = self.inner.vfs.remove(&self.inner.path);
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::storage::fs::OsFs;

    #[test]
    fn prepares_a_reserved_file_and_cleans_up_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let preparer =
            Preparer::start(std::sync::Arc::new(OsFs), dir.path(), 8192, true, None).unwrap();
        let map = preparer.take().unwrap();
        assert_eq!(map.len(), 8192);
        assert_eq!(
            std::fs::metadata(preparer.path()).unwrap().len(),
            8192,
            "file reserved to its full size"
        );
        std::fs::remove_file(preparer.path()).unwrap();
        preparer.request_next();
        let path = preparer.path().to_path_buf();
        drop(preparer);
        assert!(!path.exists(), "an untaken prepared file is removed");
        drop(map);
    }
}
