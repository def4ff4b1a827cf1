//! Prepares segments ahead of the producer, on a background thread.
//!
//! Two jobs, so that appends never wait for the file system:
//!
//! - **The next segment**: create the file, reserve its space (`fallocate`),
//!   map it and fault in its first pages, while the producer fills the
//!   current one. A roll then only writes a header, renames a file and swaps
//!   a list.
//! - **Pages ahead of the producer**: fault in (`MADV_POPULATE_WRITE`) the
//!   active segment's pages up to [`LEAD`] bytes past the producer. A page
//!   fault costs more than an append; on this kind of machine faulting in a
//!   page takes about as long as filling it, so the thread runs beside the
//!   producer, chasing it, rather than populating whole segments up front
//!   (which would make the producer wait at every roll). When the thread
//!   falls behind, the producer faults pages itself and the thread skips
//!   ahead of it.
//!
//! # Synchronization
//!
//! One mutex guards [`State`]; the producer and the thread signal each other
//! through one condition variable. The producer takes the mutex only at a
//! roll and once every [`KICK_EVERY`] bytes it writes (to report how far it
//! got), never per append. When the producer is idle the thread sleeps.

use std::io;
use std::path::{Path, PathBuf};

use crate::fs::{Map, PREPARED_NAME, Vfs};
use crate::region::Region;
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, lock, thread};

/// How far ahead of the producer pages are faulted in.
pub(crate) const LEAD: usize = 32 << 20;
/// How much of a prepared segment is faulted in before it is handed over;
/// the rest is faulted in while the producer writes it, so that a producer
/// faster than the faulting never waits for a whole segment at a roll.
pub(crate) const PREPARED_AHEAD: usize = 8 << 20;
/// How often (in bytes written) the producer reports its position.
pub(crate) const KICK_EVERY: usize = 2 << 20;
/// Pages faulted in per step, so a request for the next segment waits for
/// at most one step.
const STEP: usize = 1 << 20;

#[derive(Default)]
struct State {
    /// A prepared map, or the error preparing it hit.
    ready: Option<io::Result<Box<dyn Map>>>,
    /// The producer wants a segment prepared.
    wanted: bool,
    /// The log is closing.
    shutdown: bool,
    /// The active segment's region, set anew at every roll (`fresh`).
    active: Option<Arc<Region>>,
    fresh: bool,
    /// Where faulting-in stands in `active` when it is set.
    populated: usize,
    /// The producer's write position in `active`, as it last reported.
    producer_end: usize,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    /// A std `Arc`: the file seam is outside the modelled protocol.
    vfs: std::sync::Arc<dyn Vfs>,
    path: PathBuf,
    capacity: u64,
    prefault: bool,
}

/// Handle on the preparing thread. Dropping it stops the thread and removes
/// a prepared file nobody took.
pub(crate) struct Preparer {
    inner: Arc<Inner>,
    thread: Option<thread::JoinHandle<()>>,
}

/// Creates `path`, reserves `capacity` bytes for it and maps it writable,
/// faulting in its first [`PREPARED_AHEAD`] bytes when asked.
pub(crate) fn prepare(
    vfs: &dyn Vfs,
    path: &Path,
    capacity: u64,
    prefault: bool,
) -> io::Result<Box<dyn Map>> {
    match vfs.remove(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let made = vfs.create(path).and_then(|mut file| {
        file.reserve(capacity)?;
        file.map(true)
    });
    match made {
        Ok(map) => {
            if prefault {
                // Best effort: a failed prefault only costs page faults later.
                let _ = map.populate_write(0, PREPARED_AHEAD);
            }
            Ok(map)
        }
        Err(e) => {
            let _ = vfs.remove(path);
            Err(e)
        }
    }
}

fn wait<'a>(changed: &Condvar, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    changed
        .wait(state)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Preparer {
    /// Starts the thread, asks it for the next segment and points it at the
    /// active one, whose producer stands at `end`.
    pub(crate) fn start(
        vfs: std::sync::Arc<dyn Vfs>,
        dir: &Path,
        capacity: u64,
        prefault: bool,
        idle: bool,
        active: &Arc<Region>,
        end: usize,
    ) -> io::Result<Preparer> {
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                wanted: true,
                ..State::default()
            }),
            changed: Condvar::new(),
            vfs,
            path: dir.join(PREPARED_NAME),
            capacity,
            prefault,
        });
        let worker = Arc::clone(&inner);
        let thread = thread::Builder::new()
            .name("murakami-prepare".into())
            .spawn(move || {
                if idle && cfg!(not(feature = "loom")) {
                    // Best effort: where the class is refused, the thread
                    // runs at normal priority, as it would have asked.
                    let _ = crate::fs::schedule_idle();
                }
                worker.run()
            })?;
        let preparer = Preparer {
            inner,
            thread: Some(thread),
        };
        preparer.set_active(active, end, end);
        Ok(preparer)
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
                inner.changed.notify_all();
            }
            state = wait(&inner.changed, state);
        }
        state.ready.take().expect("checked above")
    }

    /// Asks the thread to prepare the next segment.
    pub(crate) fn request_next(&self) {
        let mut state = lock(&self.inner.state);
        state.wanted = true;
        self.inner.changed.notify_all();
    }

    /// Points the thread at a new active segment, faulted in up to
    /// `populated`, whose producer stands at `end`.
    pub(crate) fn set_active(&self, region: &Arc<Region>, populated: usize, end: usize) {
        if !self.inner.prefault {
            return;
        }
        let mut state = lock(&self.inner.state);
        state.active = Some(Arc::clone(region));
        state.fresh = true;
        state.populated = populated;
        state.producer_end = end;
        self.inner.changed.notify_all();
    }

    /// Reports that the producer has written the active segment up to `end`.
    pub(crate) fn report(&self, end: usize) {
        if !self.inner.prefault {
            return;
        }
        let mut state = lock(&self.inner.state);
        state.producer_end = end;
        self.inner.changed.notify_all();
    }
}

/// What the thread does next.
enum Job {
    Prepare,
    Populate(Arc<Region>, usize, usize),
    Stop,
}

/// Where faulting-in stands in the segment being chased.
struct Chase {
    region: Option<Arc<Region>>,
    populated: usize,
    /// Filling up to `LEAD` ahead; when it gets there it rests until the
    /// producer comes within `LEAD / 4`, so that short bursts of appends run
    /// with no page faulting going on beside them (which slows them down).
    filling: bool,
}

impl Inner {
    fn run(&self) {
        let mut chase = Chase {
            region: None,
            populated: 0,
            filling: true,
        };
        loop {
            match self.next_job(&mut chase) {
                Job::Stop => return,
                Job::Prepare => {
                    let made = prepare(&*self.vfs, &self.path, self.capacity, self.prefault);
                    let mut state = lock(&self.state);
                    state.ready = Some(made);
                    state.wanted = false;
                    self.changed.notify_all();
                }
                Job::Populate(region, from, to) => {
                    if region.populate(from, to - from).is_err() {
                        // Not supported here (or out of memory): stop
                        // chasing this segment.
                        chase.region = None;
                    }
                    chase.populated = to;
                }
            }
        }
    }

    /// Waits for work: a segment to prepare, or pages to fault in ahead of
    /// the producer (never behind it: those it has faulted in itself).
    fn next_job(&self, chase: &mut Chase) -> Job {
        let mut state = lock(&self.state);
        loop {
            if state.shutdown {
                return Job::Stop;
            }
            if state.fresh {
                chase.region = state.active.take();
                chase.populated = state.populated;
                chase.filling = true;
                state.fresh = false;
            }
            if state.wanted {
                return Job::Prepare;
            }
            if let Some(region) = &chase.region {
                let end = state.producer_end.next_multiple_of(4096);
                let goal = (end + LEAD).min(region.len());
                let from = chase.populated.max(end);
                chase.filling |= from < (end + LEAD / 4).min(goal);
                if chase.filling && from < goal {
                    return Job::Populate(Arc::clone(region), from, goal.min(from + STEP));
                }
                chase.filling = false;
            }
            state = wait(&self.changed, state);
        }
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        lock(&self.inner.state).shutdown = true;
        self.inner.changed.notify_all();
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
    use crate::fs::OsFs;

    fn active(dir: &Path) -> Arc<Region> {
        let map = prepare(&OsFs, &dir.join("active"), 1 << 20, false).unwrap();
        Arc::new(Region::new(map, true))
    }

    #[test]
    fn prepares_a_reserved_file_and_cleans_up_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let region = active(dir.path());
        let preparer = Preparer::start(
            std::sync::Arc::new(OsFs),
            dir.path(),
            8192,
            true,
            true,
            &region,
            64,
        )
        .unwrap();
        let map = preparer.take().unwrap();
        assert_eq!(map.len(), 8192);
        assert_eq!(
            std::fs::metadata(preparer.path()).unwrap().len(),
            8192,
            "file reserved to its full size"
        );
        std::fs::remove_file(preparer.path()).unwrap();
        preparer.request_next();
        preparer.report(500_000);
        let path = preparer.path().to_path_buf();
        drop(preparer);
        assert!(!path.exists(), "an untaken prepared file is removed");
        drop(map);
    }
}
