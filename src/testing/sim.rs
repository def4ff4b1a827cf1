//! Simulated files for the crash tests: a [`Vfs`] that keeps, for every file,
//! a *live* image (what the running process sees, through its maps) and a
//! *durable* image (what a flush or an fsync put on the disk), and a
//! directory whose entries only become durable when the directory is synced.
//!
//! - A flush of a range (`msync`) makes that range durable, from the start of
//!   its first page to its end; `fdatasync` makes the whole file durable,
//!   its size included. A file's size is durable once a flush or an fsync of
//!   it returned.
//! - Creating, renaming and removing entries are queued until the directory
//!   is synced. A crash keeps a prefix of the queue (the file systems we run
//!   on journal directory changes in order), which may be empty.
//! - A crash image is the durable image, plus a random subset of the dirty
//!   4 KiB pages (write-back order is arbitrary), plus, sometimes, one torn
//!   page: some of its 512-byte sectors written and, in one sector, only a
//!   prefix of the bytes. A size that is not durable yet may or may not
//!   have reached the disk.
//! - [`Plan`] makes the k-th storage operation fail (`EIO`, `ENOSPC`), or be
//!   where the power goes: that operation and every later one fail, and the
//!   test then takes a crash image of the state at that point.
//!
//! Maps hand out heap memory; the log writes its records there through raw
//! pointers as it would into a real map. Images are only read where the log
//! does not write concurrently (see the SAFETY arguments).

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::format::CHECKPOINT_AT;
use crate::storage::fs::{Map, SegmentFile, Vfs};

/// Size of a page, the unit of write-back.
pub(crate) use crate::storage::fs::PAGE;
/// Size of a sector, the unit a torn write tears at.
pub(crate) const SECTOR: usize = 512;

pub(crate) use crate::storage::fs::Mutant;

/// What goes wrong, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Nothing.
    Nothing,
    /// Storage operation `k` (counting from 1) fails with `errno`; the later
    /// ones succeed.
    FailAt(u64, i32),
    /// The power goes at storage operation `k`: it and every later one fail.
    CrashAt(u64),
}

/// A small deterministic random source (splitmix64).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x6a09_e667_f3bc_c908)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `1 / n`.
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Heap memory standing for a file's pages in the page cache.
struct Buf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: `Buf` owns its allocation; the raw pointer is only a handle to it.
// Access to the bytes is synchronized by the log's own protocol (it writes
// through maps exactly as into a real shared map) and by the rules in the
// SAFETY arguments of `Buf::copy_out`.
unsafe impl Send for Buf {}
// SAFETY: as above.
unsafe impl Sync for Buf {}

impl Buf {
    /// A page-aligned copy of `bytes`: a map's start is page-aligned, and
    /// the log relies on it (the header's checkpoint words are atomics).
    fn new(bytes: &[u8]) -> Arc<Buf> {
        let len = bytes.len();
        if len == 0 {
            let ptr = std::ptr::without_provenance_mut(PAGE);
            return Arc::new(Buf { ptr, len });
        }
        let layout = Buf::layout(len);
        // SAFETY: the layout's size is not zero.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `ptr` is a fresh allocation of `len` bytes, so it is valid
        // for the writes and cannot overlap `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, len) };
        Arc::new(Buf { ptr, len })
    }

    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(len, PAGE).expect("a buffer size")
    }

    /// Copies `[from, to)` out. The header's checkpoint words, which a sync
    /// may store at any time with atomics, are read with atomics too (the
    /// log's rule for them: atomics only while the region is shared).
    ///
    /// # Safety
    ///
    /// Nobody writes the other bytes while they are copied: either they are
    /// published records, a header field written once before the segment
    /// is shared, or the log is stopped (crash images are taken after the
    /// writer and its threads are gone).
    unsafe fn copy_out(&self, from: usize, to: usize) -> Vec<u8> {
        use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
        assert!(from <= to && to <= self.len);
        let mut out = vec![0; to - from];
        let at = CHECKPOINT_AT;
        // The checkpoint words, when this buffer has a header's worth.
        let words = (self.len >= at + 12).then_some(at..at + 12);
        let plain = |lo: usize, hi: usize, out: &mut Vec<u8>| {
            if lo < hi {
                // SAFETY: in bounds (asserted: `from <= lo < hi <= to`); no
                // concurrent writer of these bytes (the caller's promise);
                // `out` is a fresh allocation, so they do not overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        self.ptr.add(lo),
                        out[lo - from..].as_mut_ptr(),
                        hi - lo,
                    )
                };
            }
        };
        match &words {
            Some(words) if from < words.end && to > words.start => {
                plain(from, to.min(words.start), &mut out);
                plain(from.max(words.end), to, &mut out);
                // SAFETY: the buffer is page-aligned and holds both words
                // (checked), so they are in bounds and aligned for their
                // atomic types, whose layout is that of `u64`/`u32`.
                let (word, crc) = unsafe {
                    (
                        (*self.ptr.add(at).cast::<AtomicU64>()).load(Ordering::Relaxed),
                        (*self.ptr.add(at + 8).cast::<AtomicU32>()).load(Ordering::Relaxed),
                    )
                };
                let mut value = [0u8; 12];
                value[..8].copy_from_slice(&word.to_ne_bytes());
                value[8..].copy_from_slice(&crc.to_ne_bytes());
                for (i, byte) in (at..).zip(value) {
                    if (from..to).contains(&i) {
                        out[i - from] = byte;
                    }
                }
            }
            _ => plain(from, to, &mut out),
        }
        out
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `ptr` was allocated in `Buf::new` with this layout, and
            // no map outlives the last `Arc<Buf>`.
            unsafe { std::alloc::dealloc(self.ptr, Buf::layout(self.len)) };
        }
    }
}

/// A file: its live bytes and what of them is durable.
struct Inode {
    live: Arc<Buf>,
    /// The durable bytes; their length is the durable size.
    durable: Vec<u8>,
    /// Maps alive over `live` (it cannot be reallocated while they live).
    maps: usize,
}

/// A change to the directory, not yet durable.
#[derive(Clone, Debug)]
enum DirOp {
    Link(PathBuf, u64),
    Rename(PathBuf, PathBuf),
    Unlink(PathBuf),
}

fn apply(dir: &mut BTreeMap<PathBuf, u64>, op: &DirOp) {
    match op {
        DirOp::Link(name, ino) => {
            dir.insert(name.clone(), *ino);
        }
        DirOp::Rename(from, to) => {
            if let Some(ino) = dir.remove(from) {
                dir.insert(to.clone(), ino);
            }
        }
        DirOp::Unlink(name) => {
            dir.remove(name);
        }
    }
}

/// What the disk holds after a power loss: file name to bytes.
pub(crate) type Image = BTreeMap<PathBuf, Vec<u8>>;

struct State {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    live_dir: BTreeMap<PathBuf, u64>,
    durable_dir: BTreeMap<PathBuf, u64>,
    pending: Vec<DirOp>,
    locks: HashSet<PathBuf>,
    ops: u64,
    plan: Plan,
    /// The operation that failed or crashed, by name, once it did.
    hit: Option<&'static str>,
    crashed: bool,
    /// Operations so far, for a failing test to print.
    trace: Vec<String>,
}

/// The simulated file system. Cheap to share: clones are handles on one state.
#[derive(Clone)]
pub(crate) struct SimFs {
    state: Arc<Mutex<State>>,
    mutant: Mutant,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFs").finish_non_exhaustive()
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl SimFs {
    /// A file system holding `image`, all of it durable.
    pub(crate) fn new(image: &Image, plan: Plan, mutant: Mutant) -> SimFs {
        let mut state = State::empty(plan);
        for (name, bytes) in image {
            let ino = state.new_inode(bytes);
            state.inodes.get_mut(&ino).expect("new").durable = bytes.clone();
            state.live_dir.insert(name.clone(), ino);
        }
        state.durable_dir = state.live_dir.clone();
        SimFs {
            state: Arc::new(Mutex::new(state)),
            mutant,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Storage operations counted so far.
    pub(crate) fn ops(&self) -> u64 {
        self.state().ops
    }

    /// The operations so far, one line each.
    pub(crate) fn trace(&self) -> String {
        self.state().trace.join("\n")
    }

    /// The operation the plan hit, if it did.
    pub(crate) fn hit(&self) -> Option<&'static str> {
        self.state().hit
    }

    /// From now on, every operation fails, as after a power loss. For a
    /// crash at a moment of the test's choosing rather than at an operation.
    pub(crate) fn cut_power(&self) {
        let mut state = self.state();
        state.crashed = true;
        state.hit.get_or_insert("cut by the test");
    }

    /// What the disk would hold after a power loss now: durable image, a
    /// random subset of dirty pages, maybe a torn page, and a prefix of the
    /// directory changes not yet synced.
    ///
    /// Call it only when the log is stopped (writer and its threads gone).
    pub(crate) fn crash_image(&self, rng: &mut Rng) -> Image {
        let state = self.state();
        let mut dir = state.durable_dir.clone();
        let kept = rng.below(state.pending.len() as u64 + 1) as usize;
        for op in &state.pending[..kept] {
            apply(&mut dir, op);
        }
        let mut image = Image::new();
        let mut torn = rng.one_in(3);
        for (name, ino) in dir {
            let inode = &state.inodes[&ino];
            // SAFETY: the log is stopped (this function's contract).
            let live = unsafe { inode.live.copy_out(0, inode.live.len) };
            let len = if live.len() != inode.durable.len() && rng.one_in(2) {
                live.len()
            } else {
                inode.durable.len()
            };
            let mut bytes = inode.durable.clone();
            bytes.resize(len, 0);
            for page in (0..len).step_by(PAGE) {
                let end = (page + PAGE).min(len).min(live.len());
                if end <= page || bytes[page..end] == live[page..end] {
                    continue;
                }
                if torn && rng.one_in(2) {
                    torn = false;
                    let split = page + rng.below((end - page) as u64) as usize;
                    for sector in (page..end).step_by(SECTOR) {
                        let stop = (sector + SECTOR).min(end);
                        if (sector..stop).contains(&split) {
                            bytes[sector..split].copy_from_slice(&live[sector..split]);
                        } else if rng.one_in(2) {
                            bytes[sector..stop].copy_from_slice(&live[sector..stop]);
                        }
                    }
                } else if rng.one_in(2) {
                    bytes[page..end].copy_from_slice(&live[page..end]);
                }
            }
            image.insert(name, bytes);
        }
        image
    }

    /// What the running process sees now: each file of the directory and
    /// its live bytes.
    ///
    /// Call it only when nothing writes the files (no writer, and no
    /// reader about to sleep: a sleeper writes its count in the control
    /// file).
    pub(crate) fn snapshot(&self) -> Image {
        let state = self.state();
        state
            .live_dir
            .iter()
            .map(|(name, ino)| {
                let live = &state.inodes[ino].live;
                // SAFETY: nothing writes the files (this function's
                // contract).
                (name.clone(), unsafe { live.copy_out(0, live.len) })
            })
            .collect()
    }

    /// The same files after the process died but the machine did not: live
    /// and durable images as they are, every lock released, no fault plan.
    pub(crate) fn after_process_crash(&self, plan: Plan) -> SimFs {
        let state = self.state();
        let mut copy = State {
            next_ino: state.next_ino,
            live_dir: state.live_dir.clone(),
            durable_dir: state.durable_dir.clone(),
            pending: state.pending.clone(),
            ..State::empty(plan)
        };
        for (&ino, inode) in &state.inodes {
            // SAFETY: the log is stopped (the caller's promise, as for the
            // images).
            let live = unsafe { inode.live.copy_out(0, inode.live.len) };
            copy.inodes.insert(
                ino,
                Inode {
                    live: Buf::new(&live),
                    durable: inode.durable.clone(),
                    maps: 0,
                },
            );
        }
        SimFs {
            state: Arc::new(Mutex::new(copy)),
            mutant: self.mutant,
        }
    }

    /// Counts a storage operation and applies the plan to it.
    fn op(&self, name: &'static str) -> io::Result<MutexGuard<'_, State>> {
        let mut state = self.state();
        state.op(name)?;
        Ok(state)
    }
}

impl State {
    fn empty(plan: Plan) -> State {
        State {
            inodes: HashMap::new(),
            next_ino: 0,
            live_dir: BTreeMap::new(),
            durable_dir: BTreeMap::new(),
            pending: Vec::new(),
            locks: HashSet::new(),
            ops: 0,
            plan,
            hit: None,
            crashed: false,
            trace: Vec::new(),
        }
    }

    fn op(&mut self, name: &'static str) -> io::Result<()> {
        if self.crashed {
            return Err(errno(libc::EIO));
        }
        self.ops += 1;
        self.trace.push(format!("{} {name}", self.ops));
        match self.plan {
            Plan::CrashAt(k) if k == self.ops => {
                self.crashed = true;
                self.hit = Some(name);
                Err(errno(libc::EIO))
            }
            Plan::FailAt(k, code) if k == self.ops => {
                self.hit = Some(name);
                Err(errno(code))
            }
            _ => Ok(()),
        }
    }

    fn new_inode(&mut self, bytes: &[u8]) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                live: Buf::new(bytes),
                durable: Vec::new(),
                maps: 0,
            },
        );
        ino
    }

    fn find(&self, path: &Path) -> io::Result<u64> {
        self.live_dir
            .get(path)
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn change_dir(&mut self, op: DirOp) {
        self.trace.push(format!("    {op:?}"));
        apply(&mut self.live_dir, &op);
        self.pending.push(op);
    }
}

struct SimFile {
    fs: SimFs,
    ino: u64,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("ino", &self.ino).finish()
    }
}

struct SimMap {
    fs: SimFs,
    ino: u64,
    buf: Arc<Buf>,
    writable: bool,
}

impl fmt::Debug for SimMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimMap").field("ino", &self.ino).finish()
    }
}

impl Drop for SimMap {
    fn drop(&mut self) {
        let mut state = self.fs.state();
        if let Some(inode) = state.inodes.get_mut(&self.ino) {
            inode.maps -= 1;
        }
    }
}

// SAFETY: `Buf` is a page-aligned heap buffer of fixed length that lives as
// long as any map of it (`Arc`); a map says it is writable when it was
// asked for so (the buffer itself always is); flushes copy bytes out of it
// (to the durable image) and change none in it.
unsafe impl Map for SimMap {
    fn as_ptr(&self) -> *mut u8 {
        self.buf.ptr
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn len(&self) -> usize {
        self.buf.len
    }

    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        let mut state = self.fs.op("flush range")?;
        let inode = state.inodes.get_mut(&self.ino).expect("mapped inode");
        // msync works on whole pages: from the start of the first one. The
        // end stays where the caller asked (the bytes after it on that page
        // may be in the middle of being written; a crash image may still
        // take that page whole, as write-back may).
        let start = offset / PAGE * PAGE;
        let end = offset.saturating_add(len).min(self.buf.len);
        if inode.durable.len() < self.buf.len {
            inode.durable.resize(self.buf.len, 0);
        }
        // SAFETY: nobody writes these bytes while they are copied. A sync
        // flushes published bytes (and `[start, offset)` lies below them, so
        // it is published too) and the header, whose checkpoint only syncs
        // write, under the lock this flush runs under; recovery, truncation
        // and a purge flush a header or a whole segment that no producer
        // writes yet (or any more).
        let bytes = unsafe { self.buf.copy_out(start, end) };
        inode.durable[start..end].copy_from_slice(&bytes);
        Ok(())
    }

    fn populate_write(&self, _offset: usize, _len: usize) -> io::Result<()> {
        Ok(())
    }
}

impl SegmentFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        let state = self.fs.op("file length")?;
        Ok(state.inodes[&self.ino].live.len as u64)
    }

    fn reserve(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.fs.op("reserve")?;
        let inode = state.inodes.get_mut(&self.ino).expect("open inode");
        let len = len as usize;
        if len <= inode.live.len {
            return Ok(());
        }
        if inode.maps > 0 {
            return Err(io::Error::other("simulated files do not grow while mapped"));
        }
        // SAFETY: no map of this file is alive, so nobody writes it.
        let mut bytes = unsafe { inode.live.copy_out(0, inode.live.len) };
        bytes.resize(len, 0);
        inode.live = Buf::new(&bytes);
        Ok(())
    }

    fn map(&self, writable: bool) -> io::Result<Box<dyn Map>> {
        let mut state = self.fs.op("map")?;
        let inode = state.inodes.get_mut(&self.ino).expect("open inode");
        inode.maps += 1;
        Ok(Box::new(SimMap {
            fs: self.fs.clone(),
            ino: self.ino,
            buf: Arc::clone(&inode.live),
            writable,
        }))
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.fs.op("fdatasync")?;
        let inode = state.inodes.get_mut(&self.ino).expect("open inode");
        // SAFETY: the log fdatasyncs only sealed segments (never written
        // again) and small files it wrote whole.
        inode.durable = unsafe { inode.live.copy_out(0, inode.live.len) };
        Ok(())
    }
}

struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.state().locks.remove(&self.path);
    }
}

impl Vfs for SimFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        self.op("create directory").map(drop)
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>> {
        let mut state = self.op("lock")?;
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        })))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.op("list")?;
        Ok(state
            .live_dir
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let mut state = self.op("create")?;
        if state.live_dir.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        let ino = state.new_inode(&[]);
        state.change_dir(DirOp::Link(path.to_path_buf(), ino));
        Ok(Box::new(SimFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn open(&self, path: &Path, _writable: bool) -> io::Result<Box<dyn SegmentFile>> {
        let state = self.op("open")?;
        let ino = state.find(path)?;
        Ok(Box::new(SimFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.op("rename")?;
        state.find(from)?;
        state.change_dir(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.op("remove")?;
        state.find(path)?;
        state.change_dir(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut state = self.op("fsync directory")?;
        state.durable_dir = state.live_dir.clone();
        state.pending.clear();
        Ok(())
    }

    fn read_small(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let state = self.op("read")?;
        let Some(ino) = state.live_dir.get(path) else {
            return Ok(None);
        };
        let live = &state.inodes[ino].live;
        // SAFETY: small files are written whole under the state lock
        // (`write_small`) and never mapped by the log.
        Ok(Some(unsafe { live.copy_out(0, live.len) }))
    }

    fn write_small(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.op("write file")?;
        let ino = match state.live_dir.get(path) {
            Some(&ino) => ino,
            None => {
                let ino = state.new_inode(&[]);
                state.change_dir(DirOp::Link(path.to_path_buf(), ino));
                ino
            }
        };
        let inode = state.inodes.get_mut(&ino).expect("linked");
        if inode.maps > 0 {
            return Err(io::Error::other("simulated small file is mapped"));
        }
        inode.live = Buf::new(bytes);
        inode.durable = bytes.to_vec();
        Ok(())
    }

    fn mutant(&self) -> Mutant {
        self.mutant
    }
}
