//! Waking readers in other processes: the writer's side after each
//! publication and sync, the sleeper's side in a reader process.
//!
//! # Synchronization
//!
//! The same store-buffer pairing as [`Notify`](super::notify::Notify),
//! across processes. The producer stores a frame's commit word (`Release`)
//! and then loads [`Words::sleepers`]; a sleeper increments `sleepers` and
//! then loads the commit word. Each needs a full fence between its store
//! and its load, or both may miss the other's store and the sleeper sleeps
//! past a record that is there.
//!
//! The producer pays nothing for it: at open the writer process registers
//! for `membarrier(GLOBAL_EXPEDITED)` ([`register_writer`]) and says so in
//! [`Words::barrier`]; a sleeper, about to sleep anyway, issues that
//! barrier, which runs a full fence on every CPU running a thread of a
//! registered process, the producer's among them. After it, either the
//! sleeper's check sees the commit, or the producer's next load of
//! `sleepers` sees the registration and it wakes everyone
//! ([`wake_sleepers`]). Where the registration is refused (old kernel,
//! seccomp), the writer fences before its load instead, and the sleeper
//! fences too.
//!
//! The sleep itself is a `FUTEX_WAIT` without the private flag on
//! [`Words::wake`], a word of the shared mapping: the kernel keys it by
//! file page, so the writer's `FUTEX_WAKE` from another process finds it. A
//! sleeper reads the wake word before its last check and sleeps only while
//! it still holds that value, so an advance between the check and the sleep
//! is never missed.
//!
//! Under loom, which has neither `membarrier` nor processes, threads stand
//! in for processes and both sides make their access to `sleepers` a
//! read-modify-write (as `Notify` does); the sleep is a lock and a
//! condition variable kept beside the words.
//!
//! What it may call: `storage::control`, `primitives`, `wake::word`.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::primitives::{Ordering, compiler_fence, fence};
use crate::storage::control::{Control, Words};
#[cfg(all(
    not(feature = "loom"),
    target_os = "linux",
    target_pointer_width = "64"
))]
use crate::wake::word::Sleep;

/// Registers the writer's process for global expedited barriers, which
/// sleepers in other processes issue; `false` if the kernel refuses (then
/// the writer must fence before [`wake_sleepers`]).
pub(crate) fn register_writer() -> bool {
    #[cfg(any(feature = "loom", not(target_os = "linux")))]
    return false;
    #[cfg(all(not(feature = "loom"), target_os = "linux"))]
    {
        use rustix::thread::{MembarrierCommand, membarrier};
        membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
    }
}

/// The sleeper's barrier: a full fence on every CPU running the writer
/// (when it registered) and on this one. `false` if it could not be had:
/// then the caller must not sleep long.
fn sleeper_barrier(words: &Words) -> bool {
    let registered = words.barrier.load(Ordering::Relaxed) == 1;
    #[cfg(all(not(feature = "loom"), target_os = "linux"))]
    let done = !registered || {
        use rustix::thread::{MembarrierCommand, membarrier};
        membarrier(MembarrierCommand::GlobalExpedited).is_ok()
    };
    #[cfg(any(feature = "loom", not(target_os = "linux")))]
    let done = !registered;
    fence(Ordering::SeqCst);
    done
}

/// Called by the writer after a publication (with a `SeqCst` fence before
/// it when the process is not registered): wakes the sleepers of other
/// processes, if any. One `Relaxed` load of a line nobody writes while
/// nobody sleeps.
#[inline]
pub(crate) fn wake_sleepers(words: &Words) -> bool {
    // Keep the compiler from hoisting the load above the commit store; the
    // CPU side is the sleeper's barrier (module docs).
    compiler_fence(Ordering::SeqCst);
    #[cfg(not(feature = "loom"))]
    return wake_sleepers_unfenced(words);
    #[cfg(feature = "loom")]
    {
        let waiting = words.sleepers.fetch_add(0, Ordering::AcqRel) != 0;
        if waiting {
            wake_all(words);
        }
        waiting
    }
}

/// [`wake_sleepers`] with a plain load of the sleeper count and nothing to
/// pair it with the sleeper's barrier: the loom models' mutant.
#[inline]
pub(crate) fn wake_sleepers_unfenced(words: &Words) -> bool {
    let waiting = words.sleepers.load(Ordering::Relaxed) != 0;
    if waiting {
        wake_all(words);
    }
    waiting
}

/// Advances the wake word and wakes every sleeper, whatever the count says
/// (a sync, a roll, a close, a writer's open).
#[cold]
pub(crate) fn wake_all(words: &Words) {
    words.wake.fetch_add(1, Ordering::AcqRel);
    #[cfg(feature = "loom")]
    {
        let _held = crate::primitives::lock(&words.parking.0);
        words.parking.1.notify_all();
    }
    #[cfg(all(
        not(feature = "loom"),
        target_os = "linux",
        target_pointer_width = "64"
    ))]
    crate::wake::word::futex::Futex::<crate::wake::word::futex::Shared>::default()
        .wake_all(&words.wake);
}

/// Sleeps until `ready()` or the deadline, woken by the writer of another
/// process; returns the last `ready()`. The caller has spun already.
///
/// Where the control file could only be mapped read-only, or the barrier
/// was refused, it sleeps in slices of a millisecond and looks again.
pub(crate) fn sleep(control: &Control, deadline: Instant, ready: impl Fn() -> bool) -> bool {
    let words = control.words();
    if !control.writable() {
        return sleep_in_slices(deadline, ready);
    }
    let mut seen = words.wake.load(Ordering::Acquire);
    /// Takes the registration back however the sleep ends, a panic in
    /// `ready` included: a count left raised makes the writer wake on every
    /// append.
    struct Registered<'a>(&'a Words);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            self.0.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
    words.sleepers.fetch_add(1, Ordering::SeqCst);
    let _registered = Registered(words);
    let slice = super::slice(sleeper_barrier(words));
    super::sleep_until(deadline, slice, ready, |timeout| {
        sleep_on(words, seen, timeout);
        seen = words.wake.load(Ordering::Acquire);
    })
}

/// Sleeps while the wake word holds `seen`, for at most `timeout`.
fn sleep_on(words: &Words, seen: u32, timeout: Duration) {
    #[cfg(feature = "loom")]
    {
        // The timeout is not modelled: loom has no clock.
        let _ = timeout;
        let mut held = crate::primitives::lock(&words.parking.0);
        while words.wake.load(Ordering::Acquire) == seen {
            held = words
                .parking
                .1
                .wait(held)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
    #[cfg(all(
        not(feature = "loom"),
        target_os = "linux",
        target_pointer_width = "64"
    ))]
    crate::wake::word::futex::Futex::<crate::wake::word::futex::Shared>::default().sleep(
        &words.wake,
        seen,
        timeout,
    );
    #[cfg(not(any(
        feature = "loom",
        all(target_os = "linux", target_pointer_width = "64")
    )))]
    {
        let _ = (words, seen);
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
    }
}

/// Waits without a wake-up to count on: looks again every millisecond.
pub(crate) fn sleep_in_slices(deadline: Instant, ready: impl Fn() -> bool) -> bool {
    super::sleep_until(deadline, super::slice(false), ready, |_timeout| {
        #[cfg(not(feature = "loom"))]
        std::thread::sleep(_timeout);
        #[cfg(feature = "loom")]
        loom::thread::yield_now();
    })
}
