//! The mapped bytes of one segment and the protocol that publishes them.
//!
//! This is where the library's `unsafe` lives: the producer writes frames into
//! shared mapped memory through a raw pointer while readers on other threads
//! take `&[u8]` slices of the same mapping.
//!
//! # Synchronization
//!
//! A [`Region`] has exactly one writer, the [`Appender`] (a unique token:
//! [`Region::appender`] hands it out once). The appender keeps its write
//! position in private fields and publishes progress with one `Release`
//! store of [`Region::published`], which packs the record count and the end
//! of the last published frame into one `u64`. Readers `Acquire`-load that
//! word and touch only bytes below its end and index entries below its count.
//!
//! The protocol facts every `unsafe` block below relies on:
//!
//! 1. **Published bytes are immutable.** The appender writes only at or past
//!    its private `end`, which is never below the published end. Nothing
//!    writes below the published end while the region lives (truncation
//!    discards whole segments; recovery zeroes garbage before the region is
//!    shared).
//! 2. **Readers stay below the tail.** Every slice handed out is checked
//!    against a `Published` snapshot loaded with `Acquire`, whose `Release`
//!    store came after the bytes and index entries it covers were written:
//!    so the reads happen-after the writes and race with nothing.
//! 3. **The mapping outlives every slice.** Slices borrow the region; the
//!    region owns the map and unmaps it on drop, which the segment list only
//!    lets happen once no reader can reach it (epoch reclamation or the last
//!    `Arc`). Dropping page-table entries of written pages
//!    ([`Region::release`]) keeps the mapping and every byte: the next
//!    access only faults the same page in again.
//! 4. **The header is written before the region exists**, through exclusive
//!    ownership of the map ([`write_header`]). The one exception, the
//!    checkpoint, is stored with atomics ([`Region::store_checkpoint`]) and
//!    read only during recovery, through `&mut`; readers never read header
//!    bytes ([`Region::bytes`] refuses them).
//! 5. **A frame is committed by its commit word** (frame bytes 4..8, the
//!    length with the frame bit): the appender writes every other byte of
//!    the frame first and stores that word last with `Release`
//!    ([`Region::commit_word`]). A [`Follower`] in another process that
//!    maps the same file loads it with `Acquire` and reads the frame only
//!    when it is non-zero, then publishes it to its own readers through its
//!    own region's published word, as an appender would.

use std::fmt;
use std::io;
use std::ptr;

use crossbeam_utils::CachePadded;

use crate::format::{
    self, CHECKPOINT_AT, FRAME_ALIGN, FRAME_HEADER_LEN, FrameFault, FrameHeader, HEADER_LEN,
    MIN_FRAME_LEN,
};
use crate::primitives::{Arc, AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::storage::fs::Map;

/// The published tail as the atomic word holds it: how many records, and
/// where the last one ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tail {
    count: u32,
    end: u32,
}

impl Tail {
    fn pack(self) -> u64 {
        (u64::from(self.count) << 32) | u64::from(self.end)
    }

    fn unpack(word: u64) -> Tail {
        Tail {
            count: (word >> 32) as u32,
            end: word as u32,
        }
    }
}

/// A snapshot of what the producer has published in a region.
///
/// Only [`Region::published`] makes one, so holding one means the bytes and
/// index entries it covers happen-before the holder's reads. It is branded
/// with the region it came from (a number no other region of the process
/// ever gets, even one mapped later at the same address): a region refuses
/// (panics on) a snapshot of another, whose count and end say nothing about
/// its own bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Published {
    tail: Tail,
    /// The brand: [`Region::id`] of the region it came from.
    region: u64,
}

impl Published {
    /// Number of records published.
    #[inline]
    pub(crate) fn count(self) -> u32 {
        self.tail.count
    }

    /// Position just past the last published frame.
    #[inline]
    pub(crate) fn end(self) -> usize {
        self.tail.end as usize
    }
}

/// The mapped bytes of a segment file, its record index and its published
/// tail.
pub(crate) struct Region {
    /// Owns the mapping: `ptr..ptr + len` stays valid while it lives.
    map: Box<dyn Map>,
    /// This region's number, unique in the process: the brand of its
    /// [`Published`] snapshots.
    id: u64,
    /// `map.as_ptr()`, cached so the hot paths never cross the file seam.
    ptr: *mut u8,
    len: usize,
    writable: bool,
    /// Written by the appender (`Release`), read by readers (`Acquire`).
    published: CachePadded<AtomicU64>,
    /// Position of each record's frame. Entry `i` is written (`Relaxed`) by
    /// the appender before the `Release` store that makes `count > i`, and
    /// read (`Relaxed`) by readers only for `i < count` of an `Acquire`
    /// snapshot.
    index: Box<[AtomicU32]>,
    /// Set once the appender has been handed out.
    appender_taken: AtomicBool,
    /// Under loom: the model checker's view of the map's bytes (tracked
    /// cells touched by every write and read of them, and the commit words
    /// as loom's atomics), shared by every region over the same bytes, so
    /// that loom sees the accesses to the record bytes themselves, not only
    /// to the tail, and a follower's accesses as the writer's to one memory.
    #[cfg(feature = "loom")]
    shadow: std::sync::Arc<crate::storage::map::Shadow>,
}

// SAFETY: the raw pointer is only dereferenced under the protocol in the
// module docs: the single appender writes bytes no reader can reach, readers
// read bytes published to them by a Release/Acquire pair. The map itself is
// `Send + Sync`.
unsafe impl Send for Region {}
// SAFETY: as above; every shared access goes through `&self` methods that
// check a `Published` snapshot.
unsafe impl Sync for Region {}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.len)
            .field("writable", &self.writable)
            .field("published", &self.published())
            .finish()
    }
}

/// An index of `n` zeroed entries. Zeroed memory from the allocator is
/// mapped lazily by the kernel, so an index sized for the most records a
/// segment could hold costs memory only for the entries really written.
fn zeroed_index(n: usize) -> Box<[AtomicU32]> {
    #[cfg(feature = "loom")]
    return (0..n).map(|_| AtomicU32::new(0)).collect();
    #[cfg(not(feature = "loom"))]
    zeroed_std_index(n)
}

#[cfg(not(feature = "loom"))]
fn zeroed_std_index(n: usize) -> Box<[AtomicU32]> {
    use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
    if n == 0 {
        return Box::new([]);
    }
    let layout = Layout::array::<AtomicU32>(n).expect("index size overflows");
    // SAFETY: the layout has a non-zero size (n > 0).
    let raw = unsafe { alloc_zeroed(layout) }.cast::<AtomicU32>();
    if raw.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `raw` is a fresh allocation from the global allocator with the
    // layout of `[AtomicU32; n]`, which is what `Box<[AtomicU32]>` frees it
    // with; `AtomicU32` has the size and alignment of `u32`, and all-zero
    // bytes are a valid `AtomicU32` (the value 0).
    unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(raw, n)) }
}

/// Writes a segment header at the start of a map that nothing else can see
/// yet (the caller owns it exclusively, `&mut`).
pub(crate) fn write_header(map: &mut dyn Map, header: &[u8; HEADER_LEN]) {
    assert!(map.len() >= HEADER_LEN, "map smaller than a header");
    assert!(map.writable(), "writing a header into a read-only map");
    // SAFETY: the map is at least HEADER_LEN bytes long and writable (both
    // checked, and kept for the map's life by the `Map` contract), and
    // `&mut` ownership means no region, no appender and no reader refers to
    // it (protocol fact 4).
    unsafe { ptr::copy_nonoverlapping(header.as_ptr(), map.as_ptr(), HEADER_LEN) };
}

impl Region {
    /// Wraps a map, writable if the map is. Nothing is published yet:
    /// `recover_record` and `set_recovered` fill the index and the tail from
    /// a scan before the region is shared.
    ///
    /// Refuses a map the region's positions cannot cover: shorter than a
    /// segment header, or longer than a `u32` position reaches.
    pub(crate) fn new(map: Box<dyn Map>) -> io::Result<Region> {
        let ptr = map.as_ptr();
        let len = map.len();
        if !(HEADER_LEN..=u32::MAX as usize).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a segment of {len} bytes (from {HEADER_LEN} to 4 GiB are possible)"),
            ));
        }
        let writable = map.writable();
        // std's atomic, not the facade's: a counter outside the modelled
        // protocol (only uniqueness matters).
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slots = (len - HEADER_LEN) / MIN_FRAME_LEN;
        Ok(Region {
            id,
            ptr,
            len,
            writable,
            published: CachePadded::new(AtomicU64::new(
                Tail {
                    count: 0,
                    end: HEADER_LEN as u32,
                }
                .pack(),
            )),
            index: zeroed_index(slots),
            appender_taken: AtomicBool::new(false),
            #[cfg(feature = "loom")]
            shadow: map.shadow(),
            map,
        })
    }

    /// Tells the model checker that `[start, start + len)` is read.
    #[inline]
    fn touch(&self, _start: usize, _len: usize) {
        #[cfg(feature = "loom")]
        self.shadow.read(_start, _len);
    }

    /// Tells the model checker that `[start, start + len)` is written.
    #[inline]
    fn touch_mut(&self, _start: usize, _len: usize) {
        #[cfg(feature = "loom")]
        self.shadow.write(_start, _len);
    }

    /// Length of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The whole mapping, for scanning during recovery. `&mut self` proves
    /// nobody else can be writing or reading it.
    pub(crate) fn exclusive_bytes(&mut self) -> &[u8] {
        // SAFETY: the map is valid for `len` bytes while `self` lives, and
        // `&mut self` means no appender exists (it would hold an `Arc`) and
        // no reader can reach the region.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Records, during recovery, that record `i` starts at `pos`.
    pub(crate) fn recover_record(&mut self, i: usize, pos: usize) {
        self.index[i].store(pos as u32, Ordering::Relaxed);
    }

    /// Sets, during recovery, the published tail found by the scan.
    pub(crate) fn set_recovered(&mut self, count: u32, end: usize) {
        debug_assert!(end <= self.len && (count as usize) <= self.index.len());
        let tail = Tail {
            count,
            end: end as u32,
        };
        self.published.store(tail.pack(), Ordering::Relaxed);
    }

    /// Hands out the region's one appender; `None` if it was handed out
    /// before or the map is read-only.
    pub(crate) fn appender(region: &Arc<Region>) -> Option<Appender> {
        if !region.writable || region.appender_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let tail = region.published().tail;
        Some(Appender {
            region: Arc::clone(region),
            count: tail.count,
            end: tail.end,
            #[cfg(feature = "loom")]
            commit: Commit::Last,
        })
    }

    /// Hands out the region's one follower, which publishes what a writer
    /// in another process committed to the file (`base` is the segment's
    /// first offset); `None` if the region is writable (its own appender
    /// publishes it) or a follower or appender was handed out before.
    pub(crate) fn follower(region: &Arc<Region>, base: u64) -> Option<Follower> {
        if region.writable || region.appender_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        let tail = region.published().tail;
        Some(Follower {
            region: Arc::clone(region),
            base,
            count: tail.count,
            end: tail.end,
            max_timestamp: 0,
            max_hint: 0,
        })
    }

    /// What has been published, with `Acquire`: everything it covers may be
    /// read.
    #[inline]
    pub(crate) fn published(&self) -> Published {
        Published {
            tail: Tail::unpack(self.published.load(Ordering::Acquire)),
            region: self.id,
        }
    }

    /// Refuses a snapshot of another region: its count and end would let a
    /// read reach bytes this region has not published (a data race).
    #[inline]
    fn check(&self, published: Published) {
        assert!(
            published.region == self.id,
            "a published snapshot used with another region"
        );
    }

    /// Position of record `i`, if `published` covers it (for the loom
    /// models' checks).
    #[cfg(feature = "loom")]
    pub(crate) fn position(&self, published: Published, i: u64) -> Option<usize> {
        self.check(published);
        self.position_in(published.tail, i)
    }

    /// The bytes `[start, start + len)`, if `published` covers them (for
    /// tests).
    #[cfg(all(test, not(feature = "loom")))]
    pub(crate) fn bytes(&self, published: Published, start: usize, len: usize) -> Option<&[u8]> {
        self.check(published);
        self.bytes_in(published.tail, start, len)
    }

    /// The record at `i`: its frame header and payload.
    #[inline]
    pub(crate) fn record(&self, published: Published, i: u64) -> Option<(FrameHeader, &[u8])> {
        self.check(published);
        let tail = published.tail;
        let pos = self.position_in(tail, i)?;
        let head = self.bytes_in(tail, pos, FRAME_HEADER_LEN)?;
        let header = FrameHeader::decode(head.try_into().ok()?)?;
        let payload = self.bytes_in(tail, pos + FRAME_HEADER_LEN, header.len as usize)?;
        Some((header, payload))
    }

    /// [`Region::position`] under a tail of this region's.
    #[inline]
    fn position_in(&self, tail: Tail, i: u64) -> Option<usize> {
        if i >= u64::from(tail.count) {
            return None;
        }
        Some(self.index[i as usize].load(Ordering::Relaxed) as usize)
    }

    /// [`Region::bytes`] under a tail of this region's.
    #[inline]
    fn bytes_in(&self, tail: Tail, start: usize, len: usize) -> Option<&[u8]> {
        let end = start.checked_add(len)?;
        if start < HEADER_LEN || end > tail.end as usize || end > self.len {
            return None;
        }
        self.touch(start, len);
        // SAFETY: `[start, end)` lies inside the map (checked against
        // `self.len`) and below a tail of this region (the brand, checked by
        // the callers) loaded with Acquire, so it was fully written before
        // and is never written again (protocol facts 1 and 2); the slice
        // borrows `self`, which keeps the mapping alive (fact 3).
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(start), len) })
    }

    /// Hides every record from `count` on: lowers the published tail. For a
    /// truncation, on a region whose appender is gone or about to be dropped
    /// (nothing will publish past it again). No byte changes, so a reader
    /// still holding an older snapshot reads valid (discarded) records.
    pub(crate) fn cut(&self, count: u32) {
        if count >= self.published().count() {
            return;
        }
        let end = self.index[count as usize].load(Ordering::Relaxed);
        let cut = Tail { count, end };
        self.published.store(cut.pack(), Ordering::Release);
    }

    /// The commit word of the frame at `pos`: frame bytes 4..8, an atomic in
    /// the mapped file (protocol fact 5). Panics unless `pos` is a frame
    /// position of this map (8-aligned, with the word inside the map).
    #[cfg(not(feature = "loom"))]
    #[inline]
    pub(crate) fn commit_word(&self, pos: usize) -> &std::sync::atomic::AtomicU32 {
        self.mapped_commit_word(pos)
    }

    /// Under loom, the commit word of the frame at `pos` is two: the word in
    /// the map, which the frame's checks read, and the shadow's loom atomic,
    /// which loom orders (shared by every region over the same bytes).
    #[cfg(feature = "loom")]
    pub(crate) fn commit_word(&self, pos: usize) -> CommitWord<'_> {
        CommitWord {
            mapped: self.mapped_commit_word(pos),
            model: self.shadow.commit_word(pos),
        }
    }

    /// The commit word of the frame at `pos` in the map (see
    /// [`Region::commit_word`]).
    #[inline]
    fn mapped_commit_word(&self, pos: usize) -> &std::sync::atomic::AtomicU32 {
        // std's atomic, not the facade's: it lives in the mapped file,
        // shared with other processes (as the checkpoint words do).
        assert!(
            pos % FRAME_ALIGN == 0 && pos >= HEADER_LEN && pos + 8 <= self.len,
            "a commit word outside the frames"
        );
        // SAFETY: `pos + 4..pos + 8` lies inside the map (checked), which
        // stays mapped while `self` lives (fact 3), and is 4-aligned (the map
        // is page-aligned and `pos` 8-aligned), as `AtomicU32` (the layout
        // of `u32`) needs. Every access to a commit word while the region is
        // shared is atomic (this one), or a read of bytes a Release store of
        // it published (facts 2 and 5), so nothing races with it.
        unsafe { &*self.ptr.add(pos + 4).cast::<std::sync::atomic::AtomicU32>() }
    }

    /// A copy of the segment header, for a reader of a file another process
    /// may be writing: bytes 0..48 are written before the file is named and
    /// never again; the checkpoint words after them are read as the atomics
    /// the writer stores them as.
    pub(crate) fn header(&self) -> [u8; HEADER_LEN] {
        use std::sync::atomic::{AtomicU32, AtomicU64};
        let mut out = [0u8; HEADER_LEN];
        self.touch(0, HEADER_LEN);
        // SAFETY: the map is at least HEADER_LEN long (checked in `new`)
        // and lives as long as `self`. Bytes 0..CHECKPOINT_AT are written
        // before the file is named (fact 4) and never again; the checkpoint
        // words are read as atomics, aligned (the map is page-aligned and
        // CHECKPOINT_AT a multiple of 8), as every process accesses them.
        unsafe {
            ptr::copy_nonoverlapping(self.ptr, out.as_mut_ptr(), CHECKPOINT_AT);
            let word = (*self.ptr.add(CHECKPOINT_AT).cast::<AtomicU64>()).load(Ordering::Relaxed);
            let guard =
                (*self.ptr.add(CHECKPOINT_AT + 8).cast::<AtomicU32>()).load(Ordering::Relaxed);
            out[CHECKPOINT_AT..CHECKPOINT_AT + 8].copy_from_slice(&word.to_ne_bytes());
            out[CHECKPOINT_AT + 8..CHECKPOINT_AT + 12].copy_from_slice(&guard.to_ne_bytes());
        }
        out
    }

    /// The bytes `[pos, pos + len)` of a frame whose commit word was loaded
    /// non-zero with `Acquire` (by a [`Follower`]); `None` out of the map.
    #[inline]
    fn committed(&self, pos: usize, len: usize) -> Option<&[u8]> {
        let end = pos.checked_add(len)?;
        if pos < HEADER_LEN || end > self.len {
            return None;
        }
        self.touch(pos, len);
        // SAFETY: inside the map (checked), which outlives the slice (fact
        // 3). The writer wrote these bytes before the Release store of the
        // commit word the caller loaded with Acquire, and never writes
        // committed bytes again while the file is named (facts 1 and 5), so
        // the read races with nothing the protocol allows.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(pos), len) })
    }

    /// Stores a checkpoint (a durable offset, with its CRC) in the header.
    /// It reaches the disk with the next flush that starts at the header.
    pub(crate) fn store_checkpoint(&self, checkpoint: u64, crc: u32) {
        // std's atomics, not the facade's: these words live in the mapped
        // file (a disk artefact outside the modelled protocol), so they are
        // the map's own memory even under loom.
        use std::sync::atomic::{AtomicU32, AtomicU64};
        const { assert!(CHECKPOINT_AT % 8 == 0) };
        if !self.writable {
            return;
        }
        // SAFETY: the map is page-aligned and at least HEADER_LEN long, so
        // both words are in bounds and aligned for `AtomicU64`/`AtomicU32`
        // (which have the layout of `u64`/`u32`), and the map is writable.
        // These bytes are only ever accessed through atomics while the
        // region is shared (readers never read the header; recovery reads it
        // with `&mut`), so there is no data race.
        let (word, guard) = unsafe {
            (
                &*self.ptr.add(CHECKPOINT_AT).cast::<AtomicU64>(),
                &*self.ptr.add(CHECKPOINT_AT + 8).cast::<AtomicU32>(),
            )
        };
        word.store(checkpoint.to_le(), Ordering::Relaxed);
        guard.store(crc.to_le(), Ordering::Relaxed);
    }

    /// Faults in the pages of `[offset, offset + len)` for writing, ahead of
    /// the producer. Changes no byte, so it is safe on any part of the map.
    pub(crate) fn populate(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.populate_write(offset, len)
    }

    /// Drops the mapping's page-table entries for the whole pages of
    /// `[offset, offset + len)`, never the header's page; see
    /// [`Map::release`]. No byte changes.
    pub(crate) fn release(&self, offset: usize, len: usize) -> io::Result<()> {
        let end = offset.saturating_add(len);
        let start = offset.max(crate::storage::fs::PAGE);
        if start >= end {
            return Ok(());
        }
        self.map.release(start, end - start)
    }

    /// Makes `[offset, offset + len)` durable.
    pub(crate) fn flush(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }
}

/// Under loom, a frame's commit word ([`Region::commit_word`]): stored in
/// the map and in the model checker's atomic, loaded from the latter.
#[cfg(feature = "loom")]
pub(crate) struct CommitWord<'a> {
    mapped: &'a std::sync::atomic::AtomicU32,
    model: &'a AtomicU32,
}

#[cfg(feature = "loom")]
impl CommitWord<'_> {
    /// Stores `word` in the map, then in loom's atomic with `order`. Loom
    /// switches threads only at its own operations, so no thread runs
    /// between the two: whoever loads the loom atomic non-zero finds the
    /// map's word in place when it reads the frame.
    pub(crate) fn store(&self, word: u32, order: Ordering) {
        self.mapped.store(word, Ordering::Relaxed);
        self.model.store(word, order);
    }

    /// Loads loom's atomic (which may be older than the map's word, as loom
    /// explores what `order` allows).
    pub(crate) fn load(&self, order: Ordering) -> u32 {
        self.model.load(order)
    }
}

/// How an [`Appender`] stores a frame's commit word, under loom: the
/// protocol's way, or a deliberately wrong one that the models check loom
/// catches.
#[cfg(feature = "loom")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Last, with `Release` (protocol fact 5).
    Last,
    /// The mutant: last, with `Relaxed`.
    Relaxed,
    /// The mutant: with `Release`, but before the frame's other bytes (and
    /// again after them).
    First,
}

/// The one writer of a region. Not `Clone`; at most one exists per region.
#[derive(Debug)]
pub(crate) struct Appender {
    region: Arc<Region>,
    /// Records written, published or not. Only this appender changes it.
    count: u32,
    /// End of the written frames, published or not. Never below the
    /// published end.
    end: u32,
    /// Under loom: how [`Appender::write`] stores the commit word.
    #[cfg(feature = "loom")]
    commit: Commit,
}

impl Appender {
    /// The region this appender writes.
    pub(crate) fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// Records written so far (published or not).
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// End of the written frames (published or not).
    pub(crate) fn end(&self) -> usize {
        self.end as usize
    }

    /// Whether `records` more records whose frames take `bytes` in all fit.
    pub(crate) fn fits(&self, bytes: usize, records: usize) -> bool {
        let room = self.region.len - self.end as usize;
        let slots = self.region.index.len() - self.count as usize;
        bytes <= room && records <= slots
    }

    /// Writes the frame of the record at `offset` after the last one, and its
    /// index entry, without publishing it. `false` when the region is full.
    #[inline]
    pub(crate) fn write(&mut self, offset: u64, timestamp: u64, hint: u64, payload: &[u8]) -> bool {
        let pos = self.end as usize;
        let frame_len = crate::format::frame_len(payload.len());
        let region = &*self.region;
        let slot = self.count as usize;
        if slot >= region.index.len() || frame_len > region.len - pos {
            return false;
        }
        let head = FrameHeader::new(offset, timestamp, hint, payload.len()).encode();
        let commit = format::commit_word(payload.len());
        let written = FRAME_HEADER_LEN + payload.len();
        // The loom models' mutant breaks fact 5 on purpose, for loom to
        // catch: a follower may then read the bytes below while they are
        // written, which loom reports (it runs one thread at a time, so the
        // race is a failed model, never a real one).
        #[cfg(feature = "loom")]
        if self.commit == Commit::First {
            region
                .commit_word(pos)
                .store(commit.to_le(), Ordering::Release);
        }
        region.touch_mut(pos, frame_len);
        // SAFETY: `[pos, pos + frame_len)` lies inside the map (checked
        // above) and the map is writable (only writable regions hand out an
        // appender). `pos` is this appender's private end, at or past the
        // published end, so no reader reads these bytes until a later
        // Release store publishes them (protocol facts 1 and 2), and no other
        // writer exists (the appender is unique). Bytes 4..8, the commit
        // word, are left alone here (they are zero: reserved or zeroed by
        // recovery) and stored last, atomically, below. The CRC is computed
        // over the bytes just written, through a shared slice that ends
        // before nothing else writes them.
        unsafe {
            let at = region.ptr.add(pos);
            let rest = FRAME_HEADER_LEN - 8;
            ptr::copy_nonoverlapping(head.as_ptr().add(8), at.add(8), rest);
            ptr::copy_nonoverlapping(payload.as_ptr(), at.add(FRAME_HEADER_LEN), payload.len());
            let crc =
                format::commit_crc(commit, std::slice::from_raw_parts(at.add(8), written - 8));
            ptr::copy_nonoverlapping(crc.to_le_bytes().as_ptr(), at, 4);
        }
        // The commit word goes in last, with Release: a reader in another
        // process that Acquire-loads it non-zero sees the whole frame
        // (protocol fact 5).
        #[cfg(not(feature = "loom"))]
        let order = Ordering::Release;
        #[cfg(feature = "loom")]
        let order = match self.commit {
            Commit::Relaxed => Ordering::Relaxed,
            Commit::Last | Commit::First => Ordering::Release,
        };
        region.commit_word(pos).store(commit.to_le(), order);
        // Padding bytes up to `frame_len` are zero already: the file is
        // reserved with zeros and recovery zeroes garbage past the tail.
        region.index[slot].store(pos as u32, Ordering::Relaxed);
        self.count += 1;
        self.end += frame_len as u32;
        true
    }

    /// Under loom, makes [`Appender::write`] store the commit word `commit`'s
    /// way (the models' mutants).
    #[cfg(feature = "loom")]
    pub(crate) fn commit_with(&mut self, commit: Commit) {
        self.commit = commit;
    }

    /// Publishes every record written so far with one `Release` store.
    #[inline]
    pub(crate) fn publish(&self) {
        self.publish_with(Ordering::Release);
    }

    /// [`Appender::publish`] with a chosen ordering: the loom models make a
    /// deliberately wrong (`Relaxed`) one to check that loom catches it.
    #[inline]
    pub(crate) fn publish_with(&self, order: Ordering) {
        let tail = Tail {
            count: self.count,
            end: self.end,
        };
        self.region.published.store(tail.pack(), order);
    }

    /// Zeroes `[from, to)`, garbage past the written frames found during
    /// recovery, so no stale frame can ever be read as a record.
    pub(crate) fn zero(&mut self, from: usize, to: usize) {
        let to = to.min(self.region.len);
        if from >= to {
            return;
        }
        assert!(from >= self.end as usize, "zeroing written frames");
        self.region.touch_mut(from, to - from);
        // SAFETY: `[from, to)` lies inside the writable map, at or past this
        // unique appender's end, so no reader can reach it (protocol fact 1).
        unsafe { ptr::write_bytes(self.region.ptr.add(from), 0, to - from) };
    }
}

/// What a [`Follower`] found past what it had published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Followed {
    /// This many more records, published now (maybe none: nothing new was
    /// committed, or the segment is full, or `until` was reached).
    More(u32),
    /// A committed frame that does not check (damage, or a foreign file):
    /// at `position`, where record `offset` belongs. Nothing past it is
    /// published.
    Fault {
        /// Where the frame starts.
        position: usize,
        /// The record that belongs there.
        offset: u64,
        /// What is wrong with it.
        fault: FrameFault,
    },
}

/// The one publisher of a read-only region that a writer in another process
/// fills: it turns the frames committed in the file (their commit words
/// loaded with `Acquire`, each frame checked) into index entries and one
/// `Release` store of the region's published word, so every reader of this
/// process reads the region as it reads a region its own writer fills.
/// Not `Clone`; at most one exists per region (it takes the appender's
/// place).
#[derive(Debug)]
pub(crate) struct Follower {
    region: Arc<Region>,
    base: u64,
    /// Records published so far.
    count: u32,
    /// End of the published frames.
    end: u32,
    /// Newest record time and largest durable hint among the records
    /// published by this follower.
    max_timestamp: u64,
    max_hint: u64,
}

impl Follower {
    /// Whether the bytes after the published frames end the segment
    /// cleanly, as recovery wants a sealed segment to end: a frame header
    /// of zeros, or no room for one. Asked of a segment with a successor,
    /// which its writer never writes again: bytes there that are not zero
    /// are damage, not a frame on its way.
    pub(crate) fn ends_cleanly(&self) -> bool {
        use std::sync::atomic::AtomicU32 as FileWord;
        let region = &*self.region;
        let pos = self.end as usize;
        if pos + FRAME_HEADER_LEN > region.len {
            return true;
        }
        region.touch(pos, FRAME_HEADER_LEN);
        (0..FRAME_HEADER_LEN / 4).all(|i| {
            // SAFETY: `pos + 4 * i + 4 <= pos + FRAME_HEADER_LEN <= len`
            // (checked), so the word lies inside the map, which lives as
            // long as `self.region`; it is 4-aligned (the map is
            // page-aligned and `pos` 8-aligned). It is read as an atomic,
            // so whatever another process does there races with nothing.
            let word = unsafe { &*region.ptr.add(pos + 4 * i).cast::<FileWord>() };
            word.load(Ordering::Relaxed) == 0
        })
    }

    /// Position just past the published frames.
    pub(crate) fn end(&self) -> usize {
        self.end as usize
    }

    /// Newest record time among the records this follower published.
    pub(crate) fn max_timestamp(&self) -> u64 {
        self.max_timestamp
    }

    /// Largest durable hint among the records this follower published.
    pub(crate) fn max_hint(&self) -> u64 {
        self.max_hint
    }

    /// Publishes the frames committed past the published end, up to (not
    /// including) the record at `until`, checking each one (bounds, CRC,
    /// offset): a file this process does not write is not trusted.
    pub(crate) fn follow(&mut self, until: u64) -> Followed {
        let region = &*self.region;
        let before = self.count;
        let outcome = loop {
            let offset = self.base + u64::from(self.count);
            let pos = self.end as usize;
            let room = pos + FRAME_HEADER_LEN <= region.len;
            if offset >= until || !room || self.count as usize >= region.index.len() {
                break None;
            }
            let word = u32::from_le(region.commit_word(pos).load(Ordering::Acquire));
            if word == 0 {
                break None;
            }
            let len = format::frame_len((word & !format::FRAME_PRESENT) as usize);
            let checked = match region.committed(pos, len.min(region.len - pos)) {
                Some(frame) => format::check_frame(frame, 0, offset, format::MAX_PAYLOAD_LEN),
                None => format::Frame::End,
            };
            let header = match checked {
                format::Frame::Record(header) => header,
                format::Frame::Fault(fault) => {
                    break Some(Followed::Fault {
                        position: pos,
                        offset,
                        fault,
                    });
                }
                // A committed word over an all-zero header cannot be; a
                // frame that does not fit is reported as a bad length.
                format::Frame::End => {
                    break Some(Followed::Fault {
                        position: pos,
                        offset,
                        fault: FrameFault::BadLength {
                            len: word & !format::FRAME_PRESENT,
                        },
                    });
                }
            };
            region.index[self.count as usize].store(pos as u32, Ordering::Relaxed);
            self.count += 1;
            self.end += header.frame_len() as u32;
            self.max_timestamp = self.max_timestamp.max(header.timestamp);
            self.max_hint = self.max_hint.max(header.hint);
        };
        if self.count != before {
            let tail = Tail {
                count: self.count,
                end: self.end,
            };
            region.published.store(tail.pack(), Ordering::Release);
        }
        outcome.unwrap_or(Followed::More(self.count - before))
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// An anonymous map, standing in for a file.
    #[derive(Debug)]
    struct Anon(memmap2::MmapRaw);

    // SAFETY: an anonymous read-write mapping, page-aligned, unmapped only
    // on drop; no method touches it (`release` keeps the no-op default).
    unsafe impl Map for Anon {
        fn as_ptr(&self) -> *mut u8 {
            self.0.as_mut_ptr()
        }
        fn writable(&self) -> bool {
            true
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

    fn region(len: usize) -> Arc<Region> {
        let map = memmap2::MmapOptions::new().len(len).map_anon().unwrap();
        Arc::new(Region::new(Box::new(Anon(map.into()))).expect("a region"))
    }

    /// A read-only map of `len` bytes.
    #[derive(Debug)]
    struct ReadOnly(Anon);

    // SAFETY: the wrapped anonymous map keeps the contract; this one only
    // says it may not be written, which holds for any map.
    unsafe impl Map for ReadOnly {
        fn as_ptr(&self) -> *mut u8 {
            self.0.as_ptr()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn writable(&self) -> bool {
            false
        }
        fn flush_range(&self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn populate_write(&self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
    }

    fn anon(len: usize) -> Anon {
        Anon(
            memmap2::MmapOptions::new()
                .len(len)
                .map_anon()
                .unwrap()
                .into(),
        )
    }

    /// A read-only map of another map's bytes, as another process maps
    /// the same file.
    #[derive(Debug)]
    struct Alias(Arc<Region>);

    // SAFETY: the pointer and length of a map the aliased region owns and
    // keeps alive (the `Arc`); this one is never written through.
    unsafe impl Map for Alias {
        fn as_ptr(&self) -> *mut u8 {
            self.0.ptr
        }
        fn len(&self) -> usize {
            self.0.len
        }
        fn writable(&self) -> bool {
            false
        }
        fn flush_range(&self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn populate_write(&self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer's region with `records` appended and published, and a
    /// reader's region over the same bytes with its follower (segment base
    /// 10).
    fn followed(records: &[&[u8]]) -> (Arc<Region>, Appender, Arc<Region>, Follower) {
        let writer = region(4096);
        let mut app = Region::appender(&writer).unwrap();
        for (i, payload) in records.iter().enumerate() {
            assert!(app.write(10 + i as u64, 100 + i as u64, 0, payload));
        }
        app.publish();
        let reader = Arc::new(Region::new(Box::new(Alias(Arc::clone(&writer)))).unwrap());
        let follower = Region::follower(&reader, 10).expect("the one follower");
        assert!(Region::follower(&reader, 10).is_none(), "a second follower");
        assert!(Region::follower(&writer, 10).is_none(), "a writable region");
        (writer, app, reader, follower)
    }

    #[test]
    fn a_follower_publishes_what_the_writer_committed() {
        let (_writer, mut app, reader, mut follower) = followed(&[b"one", b"", b"three"]);
        assert_eq!(reader.published().count(), 0, "nothing before it follows");
        assert_eq!(follower.follow(u64::MAX), Followed::More(3));
        let p = reader.published();
        let read: Vec<_> = (0..3)
            .map(|i| reader.record(p, i).unwrap().1.to_vec())
            .collect();
        assert_eq!(read, [&b"one"[..], b"", b"three"]);
        assert_eq!(follower.follow(u64::MAX), Followed::More(0));
        // Committed later: found on the next look; `until` stops it.
        assert!(app.write(13, 103, 0, b"four"));
        assert!(app.write(14, 104, 0, b"five"));
        assert_eq!(follower.follow(14), Followed::More(1));
        assert_eq!(follower.follow(u64::MAX), Followed::More(1));
        assert_eq!(follower.max_timestamp(), 104);
        let p = reader.published();
        assert_eq!(reader.record(p, 4).unwrap().1, b"five");
    }

    #[test]
    fn a_frame_without_its_commit_word_is_not_there_yet() {
        let (writer, _app, reader, mut follower) = followed(&[b"whole", b"cut short"]);
        // The second frame's bytes are written, its commit word is not: a
        // writer stopped between the two.
        let second = HEADER_LEN + format::frame_len(5);
        writer.commit_word(second).store(0, Ordering::Release);
        assert_eq!(follower.follow(u64::MAX), Followed::More(1));
        assert_eq!(reader.published().count(), 1);
    }

    #[test]
    fn a_damaged_committed_frame_is_a_fault_never_a_record() {
        let (writer, _app, reader, mut follower) = followed(&[b"good", b"damaged"]);
        let second = HEADER_LEN + format::frame_len(4);
        // SAFETY: a test's own anonymous map, no reader reads these bytes
        // now (the follower runs on this thread, after the write).
        unsafe { *writer.ptr.add(second + FRAME_HEADER_LEN) ^= 1 };
        assert!(matches!(
            follower.follow(u64::MAX),
            Followed::Fault {
                position,
                offset: 11,
                fault: FrameFault::ChecksumMismatch { .. }
            } if position == second
        ));
        assert_eq!(reader.published().count(), 1, "the good one is published");
        // A commit word claiming more than the map holds.
        let (writer, _app, _reader, mut follower) = followed(&[b"x"]);
        writer
            .commit_word(HEADER_LEN)
            .store(format::commit_word(1 << 20).to_le(), Ordering::Release);
        assert!(matches!(
            follower.follow(u64::MAX),
            Followed::Fault {
                fault: FrameFault::BadLength { .. },
                ..
            }
        ));
    }

    #[test]
    fn a_region_refuses_a_map_shorter_than_a_header() {
        let err = Region::new(Box::new(anon(HEADER_LEN - 8))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(Region::new(Box::new(anon(HEADER_LEN))).is_ok());
    }

    #[test]
    fn a_read_only_map_makes_a_region_without_an_appender() {
        let region = Arc::new(Region::new(Box::new(ReadOnly(anon(4096)))).unwrap());
        assert!(Region::appender(&region).is_none());
    }

    #[test]
    #[should_panic(expected = "read-only map")]
    fn a_header_is_never_written_into_a_read_only_map() {
        write_header(&mut ReadOnly(anon(4096)), &[1; HEADER_LEN]);
    }

    /// A snapshot of one region says nothing about another's bytes: used
    /// with another region it would let a read past that region's tail.
    #[test]
    #[should_panic(expected = "another region")]
    fn a_snapshot_of_another_region_is_refused() {
        let (a, b) = (region(4096), region(4096));
        let mut app = Region::appender(&a).unwrap();
        assert!(app.write(0, 0, 0, b"published in a only"));
        app.publish();
        let _ = b.record(a.published(), 0);
    }

    #[test]
    fn nothing_is_visible_until_published() {
        let region = region(4096);
        let mut app = Region::appender(&region).unwrap();
        assert!(Region::appender(&region).is_none(), "a second appender");
        assert!(app.write(0, 1, 0, b"hello"));
        assert_eq!(region.published().count(), 0);
        assert!(region.record(region.published(), 0).is_none());
        app.publish();
        let p = region.published();
        let (head, payload) = region.record(p, 0).unwrap();
        assert_eq!(payload, b"hello");
        assert_eq!(head.timestamp, 1);
        assert!(region.record(p, 1).is_none());
    }

    #[test]
    fn a_full_region_refuses_the_frame_that_does_not_fit() {
        let region = region(4096);
        let mut app = Region::appender(&region).unwrap();
        let payload = [7u8; 1000];
        let mut written = 0;
        while app.write(written, 0, 0, &payload) {
            written += 1;
        }
        assert_eq!(written, 3, "three 1032-byte frames fit after the header");
        assert!(app.write(written, 0, 0, &[]), "an empty record still fits");
    }

    #[test]
    fn slices_beyond_the_published_end_are_refused() {
        let region = region(4096);
        let mut app = Region::appender(&region).unwrap();
        app.write(0, 0, 0, b"abc");
        app.publish();
        let p = region.published();
        assert!(region.bytes(p, HEADER_LEN, 40).is_some());
        assert!(region.bytes(p, HEADER_LEN, 41).is_none());
        assert!(
            region.bytes(p, 0, 8).is_none(),
            "the header is not a record"
        );
        assert!(region.bytes(p, usize::MAX, 2).is_none());
    }
}
