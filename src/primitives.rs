//! The one door for atomics, locks and threads.
//!
//! Every atomic, `Arc`, lock, condition variable and thread the library uses
//! comes from here. With the `loom` feature they are loom's, so that
//! `cargo test --features loom` model-checks the real code (`loom-tests/`);
//! otherwise they are std's.
#![forbid(unsafe_code)]

#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, compiler_fence, fence,
};
#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(feature = "loom"))]
pub(crate) use std::thread;

#[cfg(feature = "loom")]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, fence};
#[cfg(feature = "loom")]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(feature = "loom")]
pub(crate) use loom::thread;
#[cfg(feature = "loom")]
pub(crate) use std::sync::atomic::{Ordering, compiler_fence};

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

/// One turn of a spin-wait: a CPU hint, or under loom a yield so that the
/// model checker can run the thread being waited for.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(feature = "loom"))]
    std::hint::spin_loop();
    #[cfg(feature = "loom")]
    loom::thread::yield_now();
}
