//! The segment list: an immutable value swapped atomically under
//! crossbeam-epoch.
//!
//! # Synchronization
//!
//! [`Segments::current`] always points at a valid, non-empty
//! [`SegmentList`]. The threads that replace it (the producer at a roll or a
//! truncation, retention and purges on whichever thread runs them) take
//! [`Segments::replacing`] first and swap with `AcqRel`; readers
//! `Acquire`-load it while pinned and never lock. The replaced list is
//! freed with `defer_destroy`, so it outlives every guard that could have
//! loaded it. Segments are shared between lists by `Arc`: a segment that
//! leaves the list is unmapped when the last deferred list (or cursor)
//! holding it goes, which for removed segments the reclaiming thread
//! arranges (`reclaimer.rs`).

use crate::primitives::{Arc, Atomic, Guard, Mutex, Ordering, Owned, lock};
use crate::storage::segment::Segment;

/// Segments in offset order; the last one is the active one.
#[derive(Debug, Clone)]
pub(crate) struct SegmentList {
    segments: Vec<Arc<Segment>>,
    /// `segments[i].base()`, kept flat so the binary search touches one
    /// array instead of chasing a pointer per step.
    bases: Vec<u64>,
    /// Running maximum of the sealed segments' newest timestamps, for
    /// lookups by time (the active segment is not in it).
    max_times: Vec<u64>,
}

impl SegmentList {
    /// A list of segments in increasing base order.
    pub(crate) fn new(segments: Vec<Arc<Segment>>) -> SegmentList {
        assert!(!segments.is_empty(), "a log always has an active segment");
        debug_assert!(segments.windows(2).all(|w| w[0].base() <= w[1].base()));
        let bases = segments.iter().map(|s| s.base()).collect();
        let sealed = &segments[..segments.len() - 1];
        let max_times = sealed
            .iter()
            .scan(0, |max, s| {
                *max = (*max).max(s.max_timestamp());
                Some(*max)
            })
            .collect();
        SegmentList {
            segments,
            bases,
            max_times,
        }
    }

    /// The first sealed segment whose records reach time `t` (by running
    /// maximum), or the active one.
    fn first_reaching(&self, t: u64) -> usize {
        self.max_times.partition_point(|&max| max < t)
    }

    /// The first offset whose record's time reaches `t` (see
    /// [`Reader::offset_for_timestamp`](crate::Reader::offset_for_timestamp)):
    /// the first segment whose running maximum reaches `t`, bisected by
    /// its records' timestamps (frame headers only).
    pub(crate) fn offset_for_timestamp(&self, t: u64) -> u64 {
        let segment = &self.segments[self.first_reaching(t)];
        let published = segment.published();
        let base = segment.base();
        // With non-decreasing stamps this is the first one at or after `t`.
        let (mut lo, mut hi) = (base, base + u64::from(published.count()));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match segment.timestamp_at(published, mid) {
                Some(stamp) if stamp < t => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// This list without its first `n` segments (never the active one).
    pub(crate) fn without_first(&self, n: usize) -> SegmentList {
        let n = n.min(self.segments.len() - 1);
        SegmentList::new(self.segments[n..].to_vec())
    }

    /// The segments, oldest first.
    pub(crate) fn segments(&self) -> &[Arc<Segment>] {
        &self.segments
    }

    /// The active segment.
    #[inline]
    pub(crate) fn active(&self) -> &Arc<Segment> {
        self.segments.last().expect("non-empty")
    }

    /// Offset of the first record.
    #[inline]
    pub(crate) fn first_offset(&self) -> u64 {
        self.segments[0].base()
    }

    /// Index of the segment that would hold `offset`: the last one whose base
    /// is at or below it. `None` below the first segment.
    #[inline]
    pub(crate) fn position_of(&self, offset: u64) -> Option<usize> {
        let after = self.bases.partition_point(|&base| base <= offset);
        after.checked_sub(1)
    }

    /// The segment that would hold `offset`.
    #[inline]
    pub(crate) fn find(&self, offset: u64) -> Option<&Arc<Segment>> {
        self.position_of(offset).map(|i| &self.segments[i])
    }

    /// This list with `segment` appended as the new active one.
    pub(crate) fn with_active(&self, segment: Arc<Segment>) -> SegmentList {
        let mut segments = self.segments.clone();
        segments.push(segment);
        SegmentList::new(segments)
    }
}

/// The epoch-protected pointer to the current list.
#[derive(Debug)]
pub(crate) struct Segments {
    current: Atomic<SegmentList>,
    /// Serializes the threads that replace the list (the writer's rolls,
    /// retention, purges), so none replaces a list another just replaced.
    /// Readers never take it.
    replacing: Mutex<()>,
}

impl Segments {
    pub(crate) fn new(list: SegmentList) -> Segments {
        Segments {
            current: Atomic::new(list),
            replacing: Mutex::new(()),
        }
    }

    /// Replaces the list with what `change` makes of the current one (if
    /// anything), holding the replacing lock; returns what `change` said.
    pub(crate) fn update<R>(
        &self,
        change: impl FnOnce(&SegmentList) -> (Option<SegmentList>, R),
    ) -> R {
        let _replacing = lock(&self.replacing);
        let guard = crate::primitives::pin();
        let (list, outcome) = change(self.load(&guard));
        if let Some(list) = list {
            self.replace(list, &guard);
        }
        outcome
    }

    /// The current list, valid while `guard` is pinned.
    #[inline]
    pub(crate) fn load<'g>(&self, guard: &'g Guard) -> &'g SegmentList {
        let shared = self.current.load(Ordering::Acquire, guard);
        // SAFETY: `current` is never null (set non-null in `new`, replaced
        // only by non-null lists), and a replaced list is destroyed only
        // through `defer_destroy`, after every guard pinned when it was
        // reachable (such as `guard`) is dropped.
        unsafe { shared.deref() }
    }

    /// A roll: seals the active segment (its newest record at
    /// `sealed_max_timestamp`) and makes `segment` the active one. The
    /// caller has published everything in the old active segment first, so
    /// anyone who sees the new list sees the old segment's final tail.
    pub(crate) fn roll(&self, sealed_max_timestamp: u64, segment: Arc<Segment>) {
        self.update(|list| {
            list.active().seal(sealed_max_timestamp);
            (Some(list.with_active(segment)), ())
        });
    }

    /// Collects the garbage of replaced lists now, where possible, so that
    /// segments they keep mapped are released on this thread rather than
    /// inside some later, unrelated pin (which could then pay for unmapping
    /// a large segment). Called when the writer closes.
    pub(crate) fn collect_garbage() {
        for _ in 0..4 {
            crate::primitives::pin().flush();
        }
    }

    /// Replaces the list; the old one is freed once no pinned thread can
    /// still see it. Only `update` calls this, under the replacing lock.
    fn replace(&self, list: SegmentList, guard: &Guard) {
        let old = self.current.swap(Owned::new(list), Ordering::AcqRel, guard);
        // SAFETY: `old` was just unlinked, so no thread can load it anew;
        // threads that loaded it hold guards, and deferred destruction waits
        // for them. Nobody else destroys it: every swap goes through
        // `update`, under the replacing lock, and the swap that unlinked a
        // list is the only one that sees it as `old`.
        unsafe { guard.defer_destroy(old) };
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        // SAFETY: `&mut self` means no thread can load the pointer any more,
        // and nothing loaded from it is still borrowed: every handle that can
        // read (writer, reader, cursor) holds an `Arc` to the owner being
        // dropped, and records read in place borrow the reader they were read
        // through as well as its guard. So it may be taken and freed at once.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let current = self.current.load(Ordering::Acquire, guard);
            drop(current.into_owned());
        }
    }
}
