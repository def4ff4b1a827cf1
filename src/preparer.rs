//! Prepares the next segment file ahead of the producer.
//!
//! Creating a segment costs a file creation, an `fallocate` of the whole
//! segment and a prefault of every page (tens of milliseconds for 64 MiB).
//! A background thread does that work while the producer fills the current
//! segment, so a roll only writes a header, renames a file and swaps a list.
//!
//! # Synchronization
//!
//! One mutex guards [`State`]; the producer and the thread signal each other
//! through one condition variable. The producer takes the mutex only at a
//! roll, never on the append path.

use std::io;
use std::path::{Path, PathBuf};

use crate::fs::{Map, PREPARED_NAME, Vfs};
use crate::sync::{Arc, Condvar, Mutex, lock, thread};

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
    changed: Condvar,
    vfs: Arc<dyn Vfs>,
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
/// prefaulting its pages when asked.
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
                let _ = map.populate_write(0, map.len());
            }
            Ok(map)
        }
        Err(e) => {
            let _ = vfs.remove(path);
            Err(e)
        }
    }
}

impl Preparer {
    /// Starts the thread and asks it for the first segment.
    pub(crate) fn start(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        capacity: u64,
        prefault: bool,
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
                inner.changed.notify_all();
            }
            state = inner
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.ready.take().expect("checked above")
    }

    /// Asks the thread to prepare the next segment.
    pub(crate) fn request_next(&self) {
        let mut state = lock(&self.inner.state);
        state.wanted = true;
        self.inner.changed.notify_all();
    }
}

impl Inner {
    fn run(&self) {
        loop {
            let mut state = lock(&self.state);
            while !state.wanted && !state.shutdown {
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if state.shutdown {
                return;
            }
            drop(state);
            let made = prepare(&*self.vfs, &self.path, self.capacity, self.prefault);
            let mut state = lock(&self.state);
            state.ready = Some(made);
            state.wanted = false;
            self.changed.notify_all();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFs;

    #[test]
    fn prepares_a_reserved_file_and_cleans_up_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let preparer = Preparer::start(Arc::new(OsFs), dir.path(), 8192, true).unwrap();
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
