//! Entry points into the real publication and wake-up code for the loom
//! models in `loom-tests/` (only with the `loom` feature; not a public API).
//!
//! The models drive the library's own [`Region`] / [`Appender`] and
//! [`Notify`]: what loom checks is the code that ships, over a small
//! anonymous map instead of a file.
#![allow(missing_docs, missing_debug_implementations)]

use std::io;

use crate::format::HEADER_LEN;
use crate::fs::Map;
use crate::notify::Notify;
use crate::region::{Appender, Region};
use crate::sync::{Arc, Ordering};

/// An anonymous map standing in for a segment file.
#[derive(Debug)]
struct Memory(memmap2::MmapRaw);

impl Map for Memory {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn flush_range(&self, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn populate_write(&self, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
}

/// The producer side of a region of `len` bytes.
pub struct Producer {
    appender: Appender,
    next: u64,
}

/// A reader of the same region.
#[derive(Clone)]
pub struct Consumer {
    region: Arc<Region>,
}

/// A fresh region and its two sides.
pub fn region(len: usize) -> (Producer, Consumer) {
    let map = memmap2::MmapOptions::new()
        .len(len.max(HEADER_LEN))
        .map_anon()
        .expect("anonymous map");
    let region = Arc::new(Region::new(Box::new(Memory(map.into())), true));
    let appender = Region::appender(&region).expect("fresh region");
    (Producer { appender, next: 0 }, Consumer { region })
}

impl Producer {
    /// Writes a record (unpublished); `false` when the region is full.
    pub fn write(&mut self, payload: &[u8]) -> bool {
        let written = self.appender.write(self.next, 0, 0, payload);
        self.next += u64::from(written);
        written
    }

    /// Publishes, as the writer does (`Release`).
    pub fn publish(&self) {
        self.appender.publish();
    }

    /// A wrong publication (`Relaxed`), for the mutant models.
    pub fn publish_relaxed(&self) {
        self.appender.publish_with(Ordering::Relaxed);
    }
}

impl Consumer {
    /// Record `i`'s payload, if published.
    pub fn read(&self, i: u64) -> Option<Vec<u8>> {
        let published = self.region.published();
        self.region.record(published, i).map(|(_, p)| p.to_vec())
    }

    /// Records published.
    pub fn count(&self) -> u32 {
        self.region.published().count()
    }
}

/// The wake-up primitive of tailing readers.
pub struct Waker(Notify);

impl Default for Waker {
    fn default() -> Waker {
        Waker(Notify::new())
    }
}

impl Waker {
    /// The producer's side, after a publication: whether it saw a waiter.
    pub fn wake(&self) -> bool {
        self.0.wake()
    }

    /// The producer's side without its fence: the mutant.
    pub fn wake_unfenced(&self) -> bool {
        self.0.wake_without_fence()
    }

    /// The waiter's side up to the decision to sleep: registers (with the
    /// barrier) and checks `ready`; returns what it saw. A sleep would follow
    /// a `false`, still registered; [`Waker::unregister`] ends it.
    pub fn check_before_sleep(&self, ready: impl Fn() -> bool) -> bool {
        self.0.register();
        ready()
    }

    /// Ends a registration made by [`Waker::check_before_sleep`].
    pub fn unregister(&self) {
        self.0.unregister();
    }

    /// Sleeps until `ready()`.
    pub fn wait(&self, ready: impl Fn() -> bool) -> bool {
        let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        self.0.wait(far, ready)
    }
}
