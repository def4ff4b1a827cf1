//! The control file, `murakami.tail`: what the writer publishes to readers
//! in other processes that is not in the segment files.
//!
//! One page, created by the first writer that opens the log and kept for
//! good (never replaced while it is sound, never shortened), mapped shared
//! by the writer and by every reader process. Its words are only ever
//! accessed as atomics. `docs/format.md` gives it byte by byte.
//!
//! # Synchronization
//!
//! The writer stores each word with `Release` after the change it reports
//! (a sync's flush, a roll's new file, a truncation's marker, a purge's
//! removals); a reader loads it with `Acquire` before it acts on it. Which
//! word is loaded before which matters, and is said where it is done
//! (`follow/`). The wake word and the sleeper count follow the protocol of
//! `wake/remote.rs`.
//!
//! Readers write one word only: [`Words::sleepers`], to say that they are
//! about to sleep. They map the file writable for that; where they may not
//! (permissions), they map it read-only and sleep in short slices instead.
//!
//! What it may call: `fs`, `primitives`, `format`.

use std::io;
use std::path::Path;

use crate::format::{CONTROL_LEN, CONTROL_MAGIC, ControlError, FORMAT_VERSION};
use crate::primitives::{AtomicU32, AtomicU64, Ordering};
use crate::storage::fs::{Map, SegmentFile, Vfs};

/// The control file's name in the log directory.
pub(crate) const CONTROL_NAME: &str = "murakami.tail";

/// [`Words::state`]: a writer opened the log and has not closed it (it may
/// have crashed since).
pub(crate) const STATE_OPEN: u32 = 1;
/// [`Words::state`]: the last writer closed the log cleanly.
pub(crate) const STATE_CLOSED: u32 = 2;

/// The control file's words as read from its bytes (`murakami inspect`'s
/// view: a copy, not a mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) version: u32,
    pub(crate) epoch: u64,
    pub(crate) active_base: u64,
    pub(crate) active_sequence: u64,
    pub(crate) durable: u64,
    pub(crate) first: u64,
    pub(crate) generation: u64,
    pub(crate) state: u32,
    pub(crate) restarted_below: u64,
    pub(crate) sleepers: u32,
}

impl Snapshot {
    /// Decodes and checks a control file's bytes (the offsets are those
    /// of [`Words`]).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Snapshot, ControlError> {
        if bytes.len() < CONTROL_LEN {
            return Err(ControlError::TooShort);
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        if u64_at(0) != CONTROL_MAGIC {
            return Err(ControlError::BadMagic);
        }
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return Err(ControlError::UnsupportedVersion(version));
        }
        Ok(Snapshot {
            version,
            epoch: u64_at(16),
            active_base: u64_at(24),
            active_sequence: u64_at(32),
            durable: u64_at(40),
            first: u64_at(48),
            generation: u64_at(56),
            state: u32_at(64),
            restarted_below: u64_at(72),
            sleepers: u32_at(192),
        })
    }
}

/// The words of the control file, in file order (all little-endian; this
/// crate runs on little-endian targets only, checked below).
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub(crate) struct Words {
    /// 0..8: [`CONTROL_MAGIC`].
    pub(crate) magic: AtomicU64,
    /// 8..12: the format version ([`FORMAT_VERSION`]).
    pub(crate) version: AtomicU32,
    /// 12..16: 1 when the writer registered for global expedited
    /// `membarrier` (sleepers issue one), 0 when it fences itself.
    pub(crate) barrier: AtomicU32,
    /// 16..24: writer opens so far.
    pub(crate) epoch: AtomicU64,
    /// 24..32: base offset of the writer's active segment.
    pub(crate) active_base: AtomicU64,
    /// 32..40: sequence number of the writer's active segment.
    pub(crate) active_sequence: AtomicU64,
    /// 40..48: one past the last durable record.
    pub(crate) durable: AtomicU64,
    /// 48..56: the log's first offset (after retention and purges).
    pub(crate) first: AtomicU64,
    /// 56..64: truncations and writer opens so far: a reader that sees it
    /// move re-reads the directory before it trusts its view again.
    pub(crate) generation: AtomicU64,
    /// 64..68: 0 until a writer opens the log, then [`STATE_OPEN`] or
    /// [`STATE_CLOSED`].
    pub(crate) state: AtomicU32,
    _pad: u32,
    /// 72..80: segments with a sequence number below it were discarded by
    /// a restart ([`Writer::restart_at`](crate::Writer::restart_at)): a
    /// reader hides them, whatever their offsets. Stored before the
    /// generation moves (a reader that sees the generation sees it); 0 in
    /// a file no restart ever touched (and in files of writers before it).
    pub(crate) restarted_below: AtomicU64,
    _line1: [u32; 12],
    /// 128..132: advanced by the writer to wake sleepers; the word they
    /// sleep on (a process-shared futex).
    pub(crate) wake: AtomicU32,
    _line2: [u32; 15],
    /// 192..196: readers registered to sleep. The writer loads it after
    /// each publication; readers write it only around a sleep, so the line
    /// stays in the writer's cache while nobody sleeps.
    pub(crate) sleepers: AtomicU32,
    /// Under loom, the lock and condition variable the wake word's
    /// sleepers wait on (threads stand in for processes).
    #[cfg(feature = "loom")]
    pub(crate) parking: (crate::primitives::Mutex<()>, crate::primitives::Condvar),
}

#[cfg(not(feature = "loom"))]
const _: () = {
    assert!(std::mem::size_of::<Words>() <= CONTROL_LEN);
    assert!(std::mem::offset_of!(Words, state) == 64);
    assert!(std::mem::offset_of!(Words, restarted_below) == 72);
    assert!(std::mem::offset_of!(Words, wake) == 128);
    assert!(std::mem::offset_of!(Words, sleepers) == 192);
    assert!(
        cfg!(target_endian = "little"),
        "the file format is little-endian"
    );
};

/// Where the words live: in the mapped file, or (loom models) in memory
/// the model checker tracks.
enum Backing {
    /// The mapped control file; the words are `map.as_ptr()` cast.
    #[cfg_attr(
        feature = "loom",
        allow(dead_code, reason = "loom keeps words in memory")
    )]
    File(Box<dyn Map>),
    /// Plain memory standing in for the file (loom models, and loom builds).
    #[cfg_attr(not(feature = "loom"), expect(dead_code, reason = "loom only"))]
    Memory(Box<Words>),
}

/// A mapped control file.
pub(crate) struct Control {
    backing: Backing,
    /// Whether this process may store into the words (the writer; readers
    /// only into `sleepers`).
    writable: bool,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("writable", &self.writable)
            .field("words", self.words())
            .finish()
    }
}

impl Control {
    /// The words, in memory (loom models).
    #[cfg(feature = "loom")]
    pub(crate) fn in_memory() -> Control {
        let words = Words::default();
        words.magic.store(CONTROL_MAGIC, Ordering::Relaxed);
        words.version.store(FORMAT_VERSION, Ordering::Relaxed);
        Control {
            backing: Backing::Memory(Box::new(words)),
            writable: true,
        }
    }

    /// Wraps a mapped control file after checking it.
    fn from_map(
        map: Box<dyn Map>,
        writable: bool,
    ) -> Result<Control, (ControlError, Box<dyn Map>)> {
        if map.len() < CONTROL_LEN {
            return Err((ControlError::TooShort, map));
        }
        #[cfg(feature = "loom")]
        return {
            drop(map);
            let _ = writable;
            Ok(Control::in_memory())
        };
        #[cfg(not(feature = "loom"))]
        {
            let control = Control {
                backing: Backing::File(map),
                writable,
            };
            let words = control.words();
            if words.magic.load(Ordering::Acquire) != CONTROL_MAGIC {
                let Backing::File(map) = control.backing else {
                    unreachable!("checked maps only")
                };
                return Err((ControlError::BadMagic, map));
            }
            let version = words.version.load(Ordering::Acquire);
            if version != FORMAT_VERSION {
                let Backing::File(map) = control.backing else {
                    unreachable!("checked maps only")
                };
                return Err((ControlError::UnsupportedVersion(version), map));
            }
            Ok(control)
        }
    }

    /// The words.
    #[inline]
    pub(crate) fn words(&self) -> &Words {
        match &self.backing {
            // SAFETY: the map is at least CONTROL_LEN bytes (checked in
            // `from_map`) and page-aligned, so `Words` (smaller, aligned to
            // 64) fits at its start, aligned. All of its fields are atomics
            // (or padding never accessed), for which any bit pattern is a
            // valid value, and every access to these bytes by any process
            // is atomic (module docs). The map lives as long as `self`, and
            // the reference borrows `self`.
            #[cfg(not(feature = "loom"))]
            Backing::File(map) => unsafe { &*map.as_ptr().cast::<Words>() },
            #[cfg(feature = "loom")]
            Backing::File(_) => unreachable!("loom builds keep the words in memory"),
            Backing::Memory(words) => words,
        }
    }

    /// Whether this process mapped the file writable (the writer, or a
    /// reader that may register as a sleeper).
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// Opens the control file of `dir` for a writer (which holds the
    /// directory lock): maps the existing file if it is sound, or makes a
    /// new one (a prepared file renamed into place, so that a reader never
    /// maps a half-made one). Not made durable: it only tells live readers
    /// what a live writer does.
    pub(crate) fn open_for_writer(vfs: &dyn Vfs, dir: &Path) -> io::Result<Control> {
        let path = dir.join(CONTROL_NAME);
        if let Ok(file) = vfs.open(&path, true)
            && file.len()? == CONTROL_LEN as u64
            && let Ok(control) = Control::from_map(file.map(true)?, true)
        {
            return Ok(control);
        }
        let tmp = dir.join(format!("{CONTROL_NAME}.tmp"));
        crate::storage::fs::remove_if_present(vfs, &tmp)?;
        let mut file: Box<dyn SegmentFile> = vfs.create(&tmp)?;
        file.reserve(CONTROL_LEN as u64)?;
        let map = file.map(true)?;
        #[cfg(not(feature = "loom"))]
        let fresh = Control {
            backing: Backing::File(map),
            writable: true,
        };
        #[cfg(feature = "loom")]
        let fresh = {
            drop(map);
            Control::in_memory()
        };
        fresh
            .words()
            .version
            .store(FORMAT_VERSION, Ordering::Relaxed);
        fresh.words().magic.store(CONTROL_MAGIC, Ordering::Release);
        vfs.rename(&tmp, &path)?;
        Ok(fresh)
    }

    /// Opens the control file of `dir` for a reader: `Ok(None)` when there
    /// is none (yet). Mapped writable when the file may be written (only
    /// the sleeper count ever is), else read-only.
    pub(crate) fn open_for_reader(
        vfs: &dyn Vfs,
        dir: &Path,
    ) -> io::Result<Option<Result<Control, ControlError>>> {
        let path = dir.join(CONTROL_NAME);
        let (file, writable) = match vfs.open(&path, true) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => match vfs.open(&path, false) {
                Ok(file) => (file, false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        if file.len()? < CONTROL_LEN as u64 {
            return Ok(Some(Err(ControlError::TooShort)));
        }
        Ok(Some(
            Control::from_map(file.map(writable)?, writable).map_err(|(e, _)| e),
        ))
    }

    /// The writer's open: a new epoch and generation, the state of the log
    /// it recovered, and every sleeper woken (the caller wakes them).
    pub(crate) fn writer_opened(&self, view: View) {
        debug_assert!(self.writable);
        let w = self.words();
        // Before the generation moves. Never above the first segment kept
        // (a directory whose segments were removed by hand starts its
        // sequences again), and raised to a restart recovery completed.
        let below = w
            .restarted_below
            .load(Ordering::Acquire)
            .max(view.restarted_below)
            .min(view.first_sequence);
        w.restarted_below.store(below, Ordering::Release);
        w.first.store(view.first, Ordering::Release);
        w.durable.store(view.durable, Ordering::Release);
        w.active_sequence
            .store(view.active_sequence, Ordering::Release);
        w.active_base.store(view.active_base, Ordering::Release);
        w.epoch.fetch_add(1, Ordering::AcqRel);
        w.state.store(STATE_OPEN, Ordering::Release);
        w.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Says whether the writer's process registered for global expedited
    /// barriers (before its first publication).
    pub(crate) fn set_barrier(&self, registered: bool) {
        self.words()
            .barrier
            .store(u32::from(registered), Ordering::Release);
    }

    /// Whether the writer's process registered for global expedited
    /// barriers: if not, it must fence before it looks for sleepers.
    pub(crate) fn barrier_registered(&self) -> bool {
        self.words().barrier.load(Ordering::Acquire) == 1
    }

    /// A roll or a truncation made `(base, sequence)` the active segment,
    /// after its file got its name.
    pub(crate) fn set_active(&self, base: u64, sequence: u64) {
        let w = self.words();
        w.active_base.store(base, Ordering::Release);
        w.active_sequence.store(sequence, Ordering::Release);
    }

    /// A sync made everything below `durable` durable. The caller wakes
    /// sleepers afterwards.
    pub(crate) fn set_durable(&self, durable: u64) {
        self.words().durable.fetch_max(durable, Ordering::AcqRel);
    }

    /// A truncation at `at` committed its marker: the durable offset goes
    /// down to the cut, and the generation moves (before the new segment
    /// gets its name), so a reader re-reads the directory before it trusts
    /// anything past the cut.
    pub(crate) fn truncated(&self, at: u64) {
        let w = self.words();
        w.durable.fetch_min(at, Ordering::AcqRel);
        w.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A restart committed its marker: every segment with a sequence
    /// below `sequence` (that of the segment it creates) is discarded.
    /// Stored before [`Control::truncated`] at the old first offset moves
    /// the generation, so a reader that sees that generation hides them
    /// all, whatever their offsets (the purge rule of `follow/`, "gone at
    /// or past the new first offset", does not cover those below a restart
    /// offset).
    pub(crate) fn restarting(&self, sequence: u64) {
        self.words()
            .restarted_below
            .fetch_max(sequence, Ordering::AcqRel);
    }

    /// A restart made `(start, sequence)` the only segment, an empty one
    /// (after [`Control::restarting`] and [`Control::truncated`] at the old
    /// first offset, and after the new segment got its name): the log
    /// starts, and is durable up to, `start`.
    pub(crate) fn restarted(&self, start: u64, sequence: u64) {
        let w = self.words();
        // The generation moves first: `follow/` loads the durable offset
        // between two loads of the generation that agree and trusts it for
        // the view it read at that generation. A durable offset raised
        // before the generation moves could be read with the generation of
        // `truncated` (the view of that generation may still hold old
        // segments a reader loaded before their files went) and count old
        // records durable. Raised only after, it is read with this
        // generation, whose view is read again (the new segment only)
        // before it is trusted. The first offset and the active segment
        // follow too; a reader that sees the generation and not them yet
        // reads the directory, which already names the new segment.
        w.generation.fetch_add(1, Ordering::AcqRel);
        w.first.store(start, Ordering::Release);
        self.set_active(start, sequence);
        w.durable.store(start, Ordering::Release);
    }

    /// Retention or a purge removed every segment below `first`.
    pub(crate) fn set_first(&self, first: u64) {
        self.words().first.fetch_max(first, Ordering::AcqRel);
    }

    /// The writer closed cleanly. The caller wakes sleepers.
    pub(crate) fn closed(&self) {
        self.words().state.store(STATE_CLOSED, Ordering::Release);
    }
}

/// What the writer tells readers when it opens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    pub(crate) first: u64,
    /// The sequence number of the first segment kept.
    pub(crate) first_sequence: u64,
    /// The sequence a restart recovery completed discards below (0: none).
    pub(crate) restarted_below: u64,
    pub(crate) durable: u64,
    pub(crate) active_base: u64,
    pub(crate) active_sequence: u64,
}
