//! The one door for atomics, locks and threads.
//!
//! Every atomic, `Arc`, lock, condition variable and thread the library uses
//! comes from here, so that a model checker can be put behind this door
//! without touching the code that uses it.
#![forbid(unsafe_code)]

pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, compiler_fence, fence,
};
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
pub(crate) use std::thread;

pub(crate) use crossbeam_epoch::{Atomic, Guard, Owned};

/// Pins the current thread to the epoch, so that nothing it loads from an
/// epoch-protected pointer is freed until the guard is dropped.
#[inline]
pub(crate) fn pin() -> Guard {
    crossbeam_epoch::pin()
}

/// Locks a mutex, carrying on if a thread panicked while holding it: every
/// value behind the library's mutexes stays consistent across a panic
/// (they are only ever replaced whole).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
