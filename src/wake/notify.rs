//! Wake-ups for readers that wait at the tail.
//!
//! # Synchronization
//!
//! The producer must not pay for waiters that are not there: after each
//! publication it makes one `Relaxed` load of [`Notify::waiters`] and, only
//! when that is not zero, takes the lock and wakes everyone.
//!
//! The hazard is the classic lost wake-up (a store-buffer race): the producer
//! stores the tail and then loads `waiters`; a waiter increments `waiters`
//! and then loads the tail. Without a full fence on both sides, each may miss
//! the other's store, and the waiter sleeps past a record that is there.
//! The fence is put where it is cheap: the waiter, about to sleep anyway,
//! issues a process-wide barrier (`membarrier(PRIVATE_EXPEDITED)`), which
//! acts as a full fence on the producer's CPU too. After it, either the
//! producer's tail store is visible to the waiter's check, or the producer's
//! next load of `waiters` sees the increment. Where `membarrier` is not
//! available the producer fences itself instead ([`Notify::producer_fence`]).
//!
//! Waiters check their condition under [`Notify::lock`], and the producer
//! wakes them under it, so a wake-up between a waiter's check and its sleep
//! cannot be missed either.

#![forbid(unsafe_code)]

use std::time::Instant;

use crossbeam_utils::CachePadded;
use rustix::thread::{MembarrierCommand, membarrier};

use crate::primitives::{AtomicUsize, Condvar, Mutex, Ordering, compiler_fence, fence, lock};

/// Waiters and the means to wake them.
#[derive(Debug)]
pub(crate) struct Notify {
    /// Threads registered to be woken (incremented before their last check).
    waiters: CachePadded<AtomicUsize>,
    /// Guards the check-then-sleep of waiters against the wake-up.
    lock: Mutex<()>,
    woken: Condvar,
    /// `membarrier` is not available: publishers must fence before they
    /// look at `waiters`.
    producer_fence: bool,
}

/// Registers for expedited process-wide barriers; `false` if the kernel
/// refuses (old kernel, seccomp).
fn register_membarrier() -> bool {
    if cfg!(feature = "loom") {
        // The model stands membarrier in for a SeqCst fence on both sides.
        return false;
    }
    membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
}

/// A full memory barrier on every CPU running a thread of this process;
/// `false` if it could not be had (then the caller must not sleep long).
fn heavy_barrier(registered: bool) -> bool {
    if !registered {
        // The producer fences itself; a local fence pairs with it.
        fence(Ordering::SeqCst);
        return true;
    }
    // The process registered for it in `Notify::new`.
    let done = membarrier(MembarrierCommand::PrivateExpedited).is_ok();
    fence(Ordering::SeqCst);
    done
}

impl Notify {
    pub(crate) fn new() -> Notify {
        Notify {
            waiters: CachePadded::new(AtomicUsize::new(0)),
            lock: Mutex::new(()),
            woken: Condvar::new(),
            producer_fence: !register_membarrier(),
        }
    }

    /// Whether publishers must issue a `SeqCst` fence before [`Notify::wake`].
    pub(crate) fn producer_fence(&self) -> bool {
        self.producer_fence
    }

    /// Called after a publication (with a `SeqCst` fence before it when
    /// [`Notify::producer_fence`] says so): wakes the waiters, if any. One
    /// `Relaxed` load when there are none.
    #[inline]
    pub(crate) fn wake(&self) -> bool {
        // Keep the compiler from hoisting this load above the publication
        // store; the CPU side is the waiter's barrier. Under loom, which
        // cannot model membarrier, both sides use a SeqCst fence instead.
        compiler_fence(Ordering::SeqCst);
        #[cfg(not(feature = "loom"))]
        return self.wake_without_fence();
        // Loom cannot model membarrier, and treats SeqCst fences as AcqRel,
        // which does not order a store before a later load. The model pairs
        // the two sides with read-modify-writes on `waiters` instead (each
        // reads the latest value, so one of the two sees the other): the
        // same guarantee the real barrier gives, in a form loom can check.
        #[cfg(feature = "loom")]
        {
            let waiting = self.waiters.fetch_add(0, Ordering::AcqRel) != 0;
            if waiting {
                self.wake_all();
            }
            waiting
        }
    }

    /// The load and wake-up of [`Notify::wake`], without its fences (the
    /// loom models' mutant uses it to check that the fence is needed).
    /// Returns whether it saw a waiter (and woke them).
    #[inline]
    pub(crate) fn wake_without_fence(&self) -> bool {
        let waiting = self.waiters.load(Ordering::Relaxed) != 0;
        if waiting {
            self.wake_all();
        }
        waiting
    }

    /// Registers the calling thread as about to sleep, with the barrier that
    /// pairs with the producer's: after it, either the caller's next check
    /// sees the producer's publication, or the producer's next `wake` sees
    /// the registration. Returns whether the barrier was had (otherwise the
    /// caller must not sleep long). Undo with [`Notify::unregister`].
    pub(crate) fn register(&self) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        heavy_barrier(!self.producer_fence)
    }

    /// Undoes [`Notify::register`].
    pub(crate) fn unregister(&self) {
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes every waiter, whatever the count says (closing, syncing).
    #[cold]
    pub(crate) fn wake_all(&self) {
        drop(lock(&self.lock));
        self.woken.notify_all();
    }

    /// Sleeps until `ready()` or the deadline; returns the last `ready()`.
    /// The caller has spun already; this is the slow path.
    pub(crate) fn wait(&self, deadline: Instant, ready: impl Fn() -> bool) -> bool {
        // Registered but refused now (should not happen): sleep in short
        // slices and look again, so a missed wake-up costs at most one.
        let slice = super::slice(self.register());
        let mut guard = Some(lock(&self.lock));
        let outcome = super::sleep_until(deadline, slice, ready, |timeout| {
            let held = guard.take().expect("held between turns");
            guard = Some(match self.woken.wait_timeout(held, timeout) {
                Ok((held, _)) => held,
                Err(poisoned) => poisoned.into_inner().0,
            });
        });
        drop(guard);
        self.unregister();
        outcome
    }
}
