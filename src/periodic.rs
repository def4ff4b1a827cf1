//! A background thread that runs a task at a fixed interval: the syncer of
//! `SyncPolicy::Interval` and the retention cleaner.
#![forbid(unsafe_code)]

use std::io;
use std::time::{Duration, Instant};

use crate::sync::{Arc, Condvar, Mutex, lock, thread};

/// Runs a task every interval until dropped (or until the task says stop).
/// Dropping it wakes the thread and joins it.
pub(crate) struct Periodic {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Periodic {
    /// Starts `task`, first run one `interval` from now; the thread ends when
    /// `task` returns `false`.
    pub(crate) fn start(
        name: &str,
        interval: Duration,
        mut task: impl FnMut() -> bool + Send + 'static,
    ) -> io::Result<Periodic> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = thread::Builder::new().name(name.into()).spawn(move || {
            let (stopped, changed) = &*flag;
            let mut next = Instant::now() + interval;
            loop {
                let mut guard = lock(stopped);
                while !*guard && Instant::now() < next {
                    let left = next.saturating_duration_since(Instant::now());
                    guard = match changed.wait_timeout(guard, left) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
                if *guard {
                    return;
                }
                drop(guard);
                if !task() {
                    return;
                }
                // Never catch up on missed ticks in a burst.
                next = (next + interval).max(Instant::now());
            }
        })?;
        Ok(Periodic {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::sync::{AtomicU64, Ordering};

    #[test]
    fn runs_until_the_task_says_stop_and_drop_joins() {
        let runs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&runs);
        let periodic = Periodic::start("test", Duration::from_micros(100), move || {
            counter.fetch_add(1, Ordering::SeqCst) < 2
        })
        .unwrap();
        let thread = periodic.thread.as_ref().unwrap();
        while !thread.is_finished() {
            std::thread::yield_now();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        drop(periodic);
    }

    #[test]
    fn drop_stops_a_thread_that_would_run_forever() {
        let periodic = Periodic::start("test", Duration::from_secs(3600), || true).unwrap();
        drop(periodic);
    }
}
