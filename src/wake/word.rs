//! A counter threads can sleep on until it moves, woken all at once.
//!
//! Group commit needs "sleep until the running flush ends" for up to one
//! thread per producer, and "wake everyone" once per flush. Waking threads one
//! by one (`unpark` each) costs the leader a system call per follower before
//! the last one even starts running; here it costs one (`FUTEX_WAKE` of every
//! sleeper), and none when nobody sleeps. The segment-preparing thread
//! sleeps on one too, so that the producer can nudge it without a lock.
//!
//! # Synchronization
//!
//! [`WaitWord::wait`] sleeps only while the counter still holds the value
//! the caller read, and the check and the sleep are one step (the kernel's
//! `FUTEX_WAIT` compares and sleeps atomically; elsewhere, and under loom,
//! the check and the sleep happen under one lock that the waker also takes).
//! So an advance either happens before the check (the caller does not
//! sleep) or wakes it.
//!
//! The waker skips the wake-up when [`WaitWord::sleepers`] is zero. That is
//! the store-buffer pattern (the sleeper registers, then reads the counter;
//! the waker advances the counter, then reads the registrations). Both
//! registrations and the waker's read of them are read-modify-writes with
//! `AcqRel` on `sleepers`, so they are totally ordered there: if the
//! waker's read comes first, the sleeper's registration reads from it and
//! so happens after the advance, and the sleeper's load of the counter sees
//! it; if the registration comes first, the waker sees a sleeper and wakes
//! it.
//!
//! The counter wraps after 2^32 advances; a sleeper that saw a value and
//! then missed exactly 2^32 advances would sleep on, until its timeout or
//! the next advance.

use std::time::Duration;

use crate::primitives::{AtomicU32, Ordering};

/// How threads sleep until a count moves.
pub(crate) trait Sleep: Default {
    /// Sleeps while `word` holds `seen`, for at most `timeout`; may return
    /// early.
    fn sleep(&self, word: &AtomicU32, seen: u32, timeout: Duration);
    /// Wakes every thread sleeping on `word`.
    fn wake_all(&self, word: &AtomicU32);
}

/// A counter that threads wait on until it moves.
#[derive(Debug, Default)]
pub(crate) struct WaitWord<S: Sleep = Sleeper> {
    /// Advanced by one at every [`WaitWord::advance`].
    count: AtomicU32,
    /// Threads registered to sleep (incremented before their last check).
    sleepers: AtomicU32,
    /// How threads sleep until the count moves.
    sleeper: S,
}

impl<S: Sleep> WaitWord<S> {
    /// The current count; pass it to [`WaitWord::wait`].
    #[inline]
    pub(crate) fn load(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Sleeps until the count is no longer `seen`, someone advances it, or
    /// `timeout` passes (not modelled under loom), whichever is first. May
    /// also return spuriously: callers re-check what they wait for.
    pub(crate) fn wait(&self, seen: u32, timeout: Duration) {
        if self.register(seen) {
            self.sleep(seen, timeout);
        }
        self.unregister();
    }

    /// Registers as a sleeper, then says whether the count still holds
    /// `seen` (whether to sleep).
    pub(crate) fn register(&self, seen: u32) -> bool {
        self.sleepers.fetch_add(1, Ordering::AcqRel);
        self.count.load(Ordering::Acquire) == seen
    }

    /// Takes back a [`WaitWord::register`].
    pub(crate) fn unregister(&self) {
        self.sleepers.fetch_sub(1, Ordering::AcqRel);
    }

    /// Advances the count and wakes every thread sleeping on it.
    pub(crate) fn advance(&self) {
        self.advance_with(true);
    }

    /// [`WaitWord::advance`]; `rmw: false` reads the sleepers with a plain
    /// load instead (the loom models' mutant, to check that loom finds the
    /// lost wake-up it allows). Returns whether it saw a sleeper.
    pub(crate) fn advance_with(&self, rmw: bool) -> bool {
        self.count.fetch_add(1, Ordering::AcqRel);
        // A read-modify-write, not a load: see the module docs.
        let sleepers = if rmw {
            self.sleepers.fetch_add(0, Ordering::AcqRel)
        } else {
            self.sleepers.load(Ordering::Acquire)
        };
        if sleepers != 0 {
            self.wake_all();
        }
        sleepers != 0
    }

    fn sleep(&self, seen: u32, timeout: Duration) {
        self.sleeper.sleep(&self.count, seen, timeout);
    }

    fn wake_all(&self) {
        self.sleeper.wake_all(&self.count);
    }
}

/// Sleeping on a 64-bit Linux: a futex on the count itself.
#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    not(feature = "loom")
))]
pub(crate) type Sleeper = futex::Futex;
/// Elsewhere, and under loom: a lock and a condition variable.
#[cfg(not(all(
    target_os = "linux",
    target_pointer_width = "64",
    not(feature = "loom")
)))]
pub(crate) type Sleeper = parking::Parking;

/// A lock and a condition variable standing in for a futex: the check and
/// the sleep happen under the lock that the waker takes to notify.
#[cfg(any(
    test,
    not(all(
        target_os = "linux",
        target_pointer_width = "64",
        not(feature = "loom")
    ))
))]
mod parking {
    use std::time::Duration;

    use crate::primitives::{AtomicU32, Condvar, Mutex, Ordering, lock};

    #[derive(Debug, Default)]
    pub(crate) struct Parking {
        lock: Mutex<()>,
        moved: Condvar,
    }

    impl super::Sleep for Parking {
        /// The timeout is not modelled under loom, which has no clock.
        fn sleep(&self, word: &AtomicU32, seen: u32, timeout: Duration) {
            let mut held = lock(&self.lock);
            #[cfg(not(feature = "loom"))]
            let deadline = std::time::Instant::now().checked_add(timeout);
            #[cfg(feature = "loom")]
            let _ = timeout;
            while word.load(Ordering::Acquire) == seen {
                #[cfg(feature = "loom")]
                {
                    held = self
                        .moved
                        .wait(held)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                #[cfg(not(feature = "loom"))]
                {
                    let now = std::time::Instant::now();
                    let left = match deadline {
                        Some(deadline) if deadline <= now => return,
                        Some(deadline) => deadline - now,
                        None => Duration::MAX,
                    };
                    held = self
                        .moved
                        .wait_timeout(held, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
            }
        }

        fn wake_all(&self, _word: &AtomicU32) {
            let _held = lock(&self.lock);
            self.moved.notify_all();
        }
    }
}

/// Linux futexes on the count itself (64-bit Linux: `SYS_futex` with the
/// native `timespec`).
#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    not(feature = "loom")
))]
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// Nothing to keep: the kernel queues sleepers by the word's address.
    #[derive(Debug, Default)]
    pub(crate) struct Futex;

    impl super::Sleep for Futex {
        fn sleep(&self, word: &AtomicU32, expected: u32, timeout: Duration) {
            let timeout = libc::timespec {
                tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
                // Below 10^9: fits any `c_long`.
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            // SAFETY: FUTEX_WAIT reads the aligned 32-bit word `word` points
            // to (an `AtomicU32` that outlives the call) atomically and
            // sleeps only if it equals `expected`; `timeout` is a valid
            // relative timespec (this target's `timespec` is the one
            // `SYS_futex` takes) that outlives the call. It writes no
            // memory. Whatever it returns (woken, EAGAIN when the word
            // moved, ETIMEDOUT, EINTR) the caller re-checks its condition,
            // so the result is not needed. The word is private to this
            // process, as FUTEX_PRIVATE_FLAG says.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    expected,
                    &raw const timeout,
                );
            }
        }

        fn wake_all(&self, word: &AtomicU32) {
            // SAFETY: FUTEX_WAKE only uses the address of `word` as a key to
            // find sleepers; it reads and writes no memory.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    i32::MAX,
                );
            }
        }
    }
}

/// The same tests for each way of sleeping this target compiles: the
/// futex (64-bit Linux) and the lock-based stand-in used elsewhere.
#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    fn a_wait_on_a_moved_count_returns_at_once<S: Sleep>() {
        let word = WaitWord::<S>::default();
        let seen = word.load();
        word.advance();
        // Would sleep for an hour if the check were lost.
        word.wait(seen, Duration::from_secs(3600));
        assert_eq!(word.load(), seen + 1);
    }

    fn a_wait_times_out_when_nothing_moves<S: Sleep>() {
        let word = WaitWord::<S>::default();
        word.wait(word.load(), Duration::from_millis(1));
        assert_eq!(word.load(), 0);
    }

    fn advance_wakes_every_sleeper<S: Sleep + Send + Sync + 'static>() {
        let word = Arc::new(WaitWord::<S>::default());
        let done = Arc::new(AtomicBool::new(false));
        let seen = word.load();
        let sleepers: Vec<_> = (0..8)
            .map(|_| {
                let (word, done) = (Arc::clone(&word), Arc::clone(&done));
                std::thread::spawn(move || {
                    // An hour: only the wake-up lets this end within the
                    // test's lifetime (a wait may return spuriously, so
                    // look at the count again).
                    while word.load() == seen {
                        word.wait(seen, Duration::from_secs(3600));
                    }
                    assert!(done.load(Ordering::Acquire), "moved before the advance");
                })
            })
            .collect();
        // Let them register (not required for correctness: a late one sees
        // the moved count and does not sleep).
        while word.sleepers.load(Ordering::Acquire) < 8 {
            std::thread::yield_now();
        }
        done.store(true, Ordering::Release);
        word.advance();
        for sleeper in sleepers {
            sleeper.join().expect("sleeper");
        }
        assert_eq!(word.sleepers.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_lock_based_sleeper_keeps_every_promise() {
        a_wait_on_a_moved_count_returns_at_once::<parking::Parking>();
        a_wait_times_out_when_nothing_moves::<parking::Parking>();
        advance_wakes_every_sleeper::<parking::Parking>();
    }

    #[test]
    fn this_targets_sleeper_keeps_every_promise() {
        a_wait_on_a_moved_count_returns_at_once::<Sleeper>();
        a_wait_times_out_when_nothing_moves::<Sleeper>();
        advance_wakes_every_sleeper::<Sleeper>();
    }
}
