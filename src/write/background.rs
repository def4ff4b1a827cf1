//! A background thread that runs a task at a fixed interval: the syncer of
//! `SyncPolicy::Interval` and the retention cleaner.
#![forbid(unsafe_code)]

use std::io;
use std::time::Duration;
#[cfg(not(feature = "loom"))]
use std::time::Instant;

use crate::primitives::{Arc, Condvar, Mutex, lock, thread};

/// Runs a task every interval until dropped (or until the task says stop).
/// Dropping it wakes the thread and joins it.
///
/// A panic in the task ends the thread, and is heard: `on_panic` gets its
/// message (the writer latches it, so the next append or sync reports that
/// the background thread died, and why). Under loom the panic is not caught:
/// loom reports a failed model by panicking, and that must reach the model.
pub(crate) struct Periodic {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Periodic {
    /// Starts `task`, first run one `interval` from now; the thread ends when
    /// `task` returns `false`, or with a call of `on_panic` if it panics.
    pub(crate) fn start(
        name: &str,
        interval: Duration,
        task: impl FnMut() -> bool + Send + 'static,
        on_panic: impl FnOnce(String) + Send + 'static,
    ) -> io::Result<Periodic> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let run = move || {
            let mut task = task;
            let mut schedule = Schedule::new(interval);
            while schedule.wait(&flag) {
                if !task() {
                    return;
                }
                schedule.advance();
            }
        };
        let thread = thread::Builder::new().name(name.into()).spawn(move || {
            #[cfg(not(feature = "loom"))]
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                on_panic(panic_message(&*panic));
            }
            #[cfg(feature = "loom")]
            {
                let _ = on_panic;
                run();
            }
        })?;
        Ok(Periodic {
            stop,
            thread: Some(thread),
        })
    }
}

/// The message a panic was raised with.
#[cfg(not(feature = "loom"))]
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// When the task runs next.
#[cfg(not(feature = "loom"))]
struct Schedule {
    next: Instant,
    interval: Duration,
}

#[cfg(not(feature = "loom"))]
impl Schedule {
    /// First run one `interval` from now.
    fn new(interval: Duration) -> Schedule {
        Schedule {
            next: Instant::now() + interval,
            interval,
        }
    }

    /// Waits until the next run is due (`true`), or until the thread is
    /// told to stop (`false`).
    fn wait(&self, stop: &(Mutex<bool>, Condvar)) -> bool {
        let (stopped, changed) = stop;
        let mut guard = lock(stopped);
        while !*guard && Instant::now() < self.next {
            let left = self.next.saturating_duration_since(Instant::now());
            guard = match changed.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        !*guard
    }

    /// After a run: the next one interval later, never catching up on
    /// missed runs in a burst.
    fn advance(&mut self) {
        self.next = (self.next + self.interval).max(Instant::now());
    }
}

/// Under loom there is no clock, and an execution must be finite and
/// deterministic: the interval is over [`LOOM_RUNS`] times (wherever the
/// model checker schedules the thread), and after that the thread waits
/// for the stop, as the real one does through a long interval. Stopping is
/// seen as in the real wait, under the lock.
#[cfg(feature = "loom")]
struct Schedule {
    left: u32,
}

/// Runs of the task a loom model may see.
#[cfg(feature = "loom")]
const LOOM_RUNS: u32 = 2;

#[cfg(feature = "loom")]
impl Schedule {
    fn new(_interval: Duration) -> Schedule {
        Schedule { left: LOOM_RUNS }
    }

    fn wait(&mut self, stop: &(Mutex<bool>, Condvar)) -> bool {
        let (stopped, changed) = stop;
        let mut guard = lock(stopped);
        if !*guard && self.left > 0 {
            self.left -= 1;
            return true;
        }
        while !*guard {
            guard = changed
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        false
    }

    fn advance(&mut self) {}
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
    use crate::primitives::{AtomicU64, Ordering};

    #[test]
    fn runs_until_the_task_says_stop_and_drop_joins() {
        let runs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&runs);
        let periodic = Periodic::start(
            "test",
            Duration::from_micros(100),
            move || counter.fetch_add(1, Ordering::SeqCst) < 2,
            |panic| panic!("{panic}"),
        )
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
        let periodic = Periodic::start("test", Duration::from_secs(3600), || true, drop).unwrap();
        drop(periodic);
    }

    #[test]
    fn a_panic_in_the_task_is_reported_with_its_message() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut runs = 0;
        let periodic = Periodic::start(
            "test",
            Duration::from_micros(100),
            move || {
                runs += 1;
                assert!(runs < 3, "run {runs} went wrong");
                true
            },
            move |message| tx.send(message).unwrap(),
        )
        .unwrap();
        let message = rx.recv().expect("the panic is reported");
        assert_eq!(message, "run 3 went wrong");
        drop(periodic);
    }
}
