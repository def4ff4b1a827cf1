//! The segment list: an immutable value swapped atomically under
//! crossbeam-epoch.
//!
//! # Synchronization
//!
//! [`Segments::current`] always points at a valid, non-empty
//! [`SegmentList`]. Only the producer replaces it (roll), with a `Release`
//! swap; readers `Acquire`-load it while pinned. The replaced list is freed
//! with `defer_destroy`, so it outlives every guard that could have loaded
//! it. Segments are shared between lists by `Arc`: a segment that leaves the
//! list is unmapped when the last deferred list (or cursor) holding it goes.

use crate::segment::Segment;
use crate::sync::{Arc, Atomic, Guard, Ordering, Owned};

/// Segments in offset order; the last one is the active one.
#[derive(Debug, Clone)]
pub(crate) struct SegmentList {
    segments: Vec<Arc<Segment>>,
}

impl SegmentList {
    /// A list of segments in increasing base order.
    pub(crate) fn new(segments: Vec<Arc<Segment>>) -> SegmentList {
        assert!(!segments.is_empty(), "a log always has an active segment");
        debug_assert!(segments.windows(2).all(|w| w[0].base() <= w[1].base()));
        SegmentList { segments }
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
        let after = self.segments.partition_point(|s| s.base() <= offset);
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
}

impl Segments {
    pub(crate) fn new(list: SegmentList) -> Segments {
        Segments {
            current: Atomic::new(list),
        }
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

    /// Collects the garbage of replaced lists now, where possible, so that
    /// segments they keep mapped are released on this thread rather than
    /// inside some later, unrelated pin (which could then pay for unmapping
    /// a large segment). Called when the writer closes.
    pub(crate) fn collect_garbage() {
        for _ in 0..4 {
            crate::sync::pin().flush();
        }
    }

    /// Replaces the list; the old one is freed once no pinned thread can
    /// still see it. Only the producer calls this.
    pub(crate) fn replace(&self, list: SegmentList, guard: &Guard) {
        let old = self.current.swap(Owned::new(list), Ordering::AcqRel, guard);
        // SAFETY: `old` was just unlinked, so no thread can load it anew;
        // threads that loaded it hold guards, and deferred destruction waits
        // for them. Nobody else destroys it: only the producer swaps.
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
