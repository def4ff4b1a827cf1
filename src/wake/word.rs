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
#![forbid(unsafe_code)]

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

/// Sleeping on a 64-bit Linux: a futex on the count itself, private to the
/// process. (rustix would also take 32-bit Linux, through `futex_time64`;
/// no such target is tested, so it keeps the lock.)
#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    not(feature = "loom")
))]
pub(crate) type Sleeper = futex::Futex<futex::Private>;
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

/// Linux futexes on the count itself, through `rustix::thread::futex`
/// (`SYS_futex` with `FUTEX_WAIT`/`FUTEX_WAKE`, a safe call: it takes the
/// word as a `&AtomicU32`). Who can share the word is a type parameter, so
/// the private flag is chosen where the word is declared, never by accident.
#[cfg(all(
    target_os = "linux",
    target_pointer_width = "64",
    not(feature = "loom")
))]
pub(crate) mod futex {
    use std::fmt;
    use std::marker::PhantomData;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use rustix::thread::futex::{self, Flags, Timespec};

    /// Which processes can sleep on and wake a futex word: it decides
    /// `FUTEX_PRIVATE_FLAG`, so it must match where the word lives.
    pub(crate) trait Scope: Send + Sync + fmt::Debug + 'static {
        /// The flags every wait and wake on the word passes.
        const FLAGS: Flags;
    }

    /// Threads of this process only (the word is in its private memory):
    /// `FUTEX_PRIVATE_FLAG`, with which the kernel keys sleepers by the
    /// word's virtual address and skips looking up the page behind it.
    #[derive(Debug)]
    pub(crate) struct Private;

    impl Scope for Private {
        const FLAGS: Flags = Flags::PRIVATE;
    }

    /// Any process that maps the word (in a `MAP_SHARED` file mapping, at
    /// whatever address): no private flag, so the kernel keys sleepers by
    /// the page of the file and the offset in it, and a waker in another
    /// process finds them. Also correct, and a little dearer, for a word in
    /// private memory.
    #[derive(Debug)]
    pub(crate) struct Shared;

    impl Scope for Shared {
        const FLAGS: Flags = Flags::empty();
    }

    /// Nothing to keep: the kernel queues sleepers by the word's key.
    pub(crate) struct Futex<S: Scope = Private>(PhantomData<S>);

    impl<S: Scope> Default for Futex<S> {
        fn default() -> Self {
            Futex(PhantomData)
        }
    }

    impl<S: Scope> fmt::Debug for Futex<S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_tuple("Futex").field(&S::FLAGS).finish()
        }
    }

    impl<S: Scope> super::Sleep for Futex<S> {
        fn sleep(&self, word: &AtomicU32, expected: u32, timeout: Duration) {
            // An hour or a century: past `i64::MAX` seconds, forever.
            let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            });
            // FUTEX_WAIT compares the word with `expected` and sleeps, as one
            // step. Whatever it returns (woken, EAGAIN when the word moved,
            // ETIMEDOUT, EINTR) the caller re-checks its condition, so the
            // result is not needed.
            let _ = futex::wait(word, S::FLAGS, expected, Some(&timeout));
        }

        fn wake_all(&self, word: &AtomicU32) {
            // How many woke is not needed; FUTEX_WAKE cannot fail on a valid
            // word.
            let _ = futex::wake(word, S::FLAGS, i32::MAX as u32);
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

    /// The process-shared futex (no private flag), as a word in a shared
    /// file mapping will use it; threads of one process stand in for the
    /// processes here.
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    #[test]
    fn the_shared_futex_keeps_every_promise() {
        type Shared = futex::Futex<futex::Shared>;
        a_wait_on_a_moved_count_returns_at_once::<Shared>();
        a_wait_times_out_when_nothing_moves::<Shared>();
        advance_wakes_every_sleeper::<Shared>();
    }
}
