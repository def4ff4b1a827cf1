//! Record timestamps.
//!
//! `Instant::now()` costs ~28 ns on this hardware, as much as a whole 64-byte
//! append, so the default stamps records with the coarse real-time clock
//! (read from the vDSO in a few nanoseconds, at scheduler-tick resolution).
//! Callers that need precise stamps choose [`Timestamps::Precise`] or pass
//! their own with `append_with_timestamp`.
//!
//! This is the crate's one call still made through `libc` rather than
//! rustix. rustix 1.1's `clock_gettime` finds the vDSO itself (from the
//! auxiliary vector) and calls it, a nanosecond cheaper than glibc's
//! wrapper; but under valgrind, which hides the vDSO from the program, that
//! lookup reads unmapped memory and the process dies of SIGSEGV
//! (bytecodealliance/rustix#1559, open), so no program embedding the log
//! could be run under memcheck or callgrind. glibc's `clock_gettime` uses
//! the vDSO too, and falls back to the system call where there is none.

use crate::options::Timestamps;

/// Nanoseconds since the Unix epoch from the given clock.
#[inline]
pub(crate) fn now(kind: Timestamps) -> u64 {
    let clock = match kind {
        Timestamps::Coarse => libc::CLOCK_REALTIME_COARSE,
        Timestamps::Precise => libc::CLOCK_REALTIME,
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and both clock ids exist on
    // every Linux since 2.6.32; clock_gettime writes only into `ts`.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn both_clocks_agree_with_the_system_clock_to_a_second() {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        for kind in [Timestamps::Coarse, Timestamps::Precise] {
            let ours = now(kind);
            assert!(
                ours.abs_diff(system) < 1_000_000_000,
                "{kind:?}: {ours} vs {system}"
            );
        }
    }
}
