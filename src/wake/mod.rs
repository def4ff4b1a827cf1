//! Waiting and waking: how a thread sleeps until something moves, and how
//! the one that moves it wakes it, with no cost when nobody sleeps.
//!
//! What it owns: [`word`], a counter threads sleep on until it moves (a
//! futex; group commit's followers and the preparing thread sleep on one),
//! and [`notify`], the readers' wait for new records (a registration count
//! the producer reads per append, and a condition variable), and
//! [`remote`], the same for readers in other processes (a process-shared
//! futex in the control file).
//!
//! What it may call: `primitives`, `storage` (the control file's words)
//! and the system calls it wraps.

pub(crate) mod notify;
pub(crate) mod remote;
pub(crate) mod word;

use std::time::{Duration, Instant};

/// How long a sleeper sleeps at a time: until woken, when its wake-up is
/// sure (the barrier was had), or a millisecond, when it is not (then a
/// missed wake-up costs at most that).
pub(crate) fn slice(wake_up_is_sure: bool) -> Duration {
    if wake_up_is_sure {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(1)
    }
}

/// The sleeper's loop: checks `ready()`, and while it is false and the
/// deadline has not passed, calls `sleep` for the time left (at most
/// `slice`). Returns the last `ready()`.
pub(crate) fn sleep_until(
    deadline: Instant,
    slice: Duration,
    ready: impl Fn() -> bool,
    mut sleep: impl FnMut(Duration),
) -> bool {
    loop {
        if ready() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        sleep((deadline - now).min(slice));
    }
}
