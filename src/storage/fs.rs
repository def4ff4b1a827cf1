//! The file seam: every file operation the log performs goes through
//! [`Vfs`], so a test can substitute simulated files that remember what was
//! flushed. The seam is only crossed on cold paths (open, roll, sync, close):
//! appends and reads touch mapped memory through a raw pointer the map handed
//! out once, never the seam.

use std::any::Any;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapOptions, MmapRaw, UncheckedAdvice};
use rustix::fs::{FallocateFlags, FlockOperation, SeekFrom, fallocate, flock, seek};
use rustix::io::Errno;

pub(crate) use super::map::Map;

/// A file open for mapping.
pub(crate) trait SegmentFile: Send + fmt::Debug {
    /// Current length of the file.
    fn len(&self) -> io::Result<u64>;
    /// Reserves disk blocks up to `len` (fallocate): a full disk fails here,
    /// never later as a SIGBUS on a mapped write — on a filesystem whose
    /// fallocate really reserves the blocks that later writes land in (ext4,
    /// XFS, tmpfs). A copy-on-write filesystem (btrfs, ZFS) writes
    /// elsewhere than the reserved blocks, so a write to a mapped
    /// page can still fail for want of space, as a SIGBUS (see the crate
    /// docs, "Platform and filesystem").
    fn reserve(&mut self, len: u64) -> io::Result<()>;
    /// Maps the whole file, shared; writable maps need a file opened for
    /// writing.
    fn map(&self, writable: bool) -> io::Result<Box<dyn Map>>;
    /// Makes the file's data durable (fdatasync). Works on a file opened
    /// read-only, unlike msync on a read-only map, which flushes nothing.
    fn sync_data(&self) -> io::Result<()>;
    /// The first range `[start, end)` at or after `from` that may hold
    /// nonzero bytes (`SEEK_DATA`/`SEEK_HOLE`); `None` past the last one.
    /// Holes read as zeros, so scans may skip them.
    fn next_data(&self, from: u64) -> io::Result<Option<(u64, u64)>> {
        let len = self.len()?;
        Ok((from < len).then_some((from, len)))
    }
}

/// The file system, as the log uses it.
pub(crate) trait Vfs: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing); `Ok(None)`
    /// when someone else holds it. The lock lives as long as the returned
    /// value.
    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>>;
    /// Who holds the lock on `path` now, without keeping it and without
    /// creating the file: `None` when nobody does (or the file is missing).
    /// By default it tries the lock and lets it go at once.
    fn lock_holder(&self, path: &Path) -> io::Result<Option<Holder>> {
        if self.read_small(path)?.is_none() {
            return Ok(None);
        }
        Ok(match self.lock(path)? {
            Some(_) => None,
            None => Some(Holder { pid: None }),
        })
    }
    /// Names of the entries of a directory.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates a new file (failing if it exists), for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
    /// Opens an existing file.
    fn open(&self, path: &Path, writable: bool) -> io::Result<Box<dyn SegmentFile>>;
    /// Renames a file (atomically replacing `to`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Reads a small file whole; `Ok(None)` if it does not exist.
    fn read_small(&self, path: &Path) -> io::Result<Option<Vec<u8>>>;
    /// Writes a small file whole and makes its contents durable (not its
    /// directory entry: call `sync_dir`).
    fn write_small(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// The deliberate bug a crash test asks the log to carry, to check that
    /// the test catches it (`testing/sim.rs`). Test builds only: a user's
    /// build has no mutant to ask for (see [`mutant`]).
    #[cfg(all(test, not(feature = "loom")))]
    fn mutant(&self) -> Mutant {
        Mutant::None
    }
}

/// The mutant `vfs` asks for: in a user's build always [`Mutant::None`], a
/// constant the compiler folds away.
#[inline(always)]
pub(crate) fn mutant(vfs: &dyn Vfs) -> Mutant {
    #[cfg(all(test, not(feature = "loom")))]
    return vfs.mutant();
    #[cfg(not(all(test, not(feature = "loom"))))]
    {
        let _ = vfs;
        Mutant::None
    }
}

/// A deliberate bug a crash test can ask the log to carry through its
/// simulated files (`Vfs::mutant`), to check that the test catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mutant {
    /// No mutation.
    None,
    /// A roll does not mark the directory for the next sync's fsync.
    #[cfg_attr(not(all(test, not(feature = "loom"))), allow(dead_code))]
    NoDirSyncAfterRoll,
    /// A sync advances the durable offset before its flushes return.
    #[cfg_attr(not(all(test, not(feature = "loom"))), allow(dead_code))]
    DurableBeforeFlush,
    /// A restart writes no marker before it removes the old segments.
    #[cfg_attr(not(all(test, not(feature = "loom"))), allow(dead_code))]
    RestartWithoutMarker,
}

/// Removes a file that may not exist.
pub(crate) fn remove_if_present(vfs: &dyn Vfs, path: &Path) -> io::Result<()> {
    match vfs.remove(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The real file system.
#[derive(Debug, Default)]
pub(crate) struct OsFs;

#[derive(Debug)]
struct OsFile {
    file: File,
}

/// A map of one zeroed page that is never written: the bytes of a segment
/// that does not exist yet (a reader's view of a log with no file).
pub(crate) fn empty_map() -> io::Result<Box<dyn Map>> {
    let map = MmapOptions::new().len(PAGE).map_anon()?;
    Ok(Box::new(OsMap {
        map: map.into(),
        writable: false,
    }))
}

#[derive(Debug)]
struct OsMap {
    map: MmapRaw,
    writable: bool,
}

// SAFETY: `MmapRaw` maps the whole file once, shared, at a page-aligned
// address the kernel chose, and unmaps it only when dropped, so `as_ptr`
// and `len` never change while the value lives; the mapping is writable
// exactly when `writable` says so (`map_raw` vs `map_raw_read_only`); the
// other methods (msync, MADV_POPULATE_WRITE, MADV_DONTNEED on a shared
// file mapping) change no byte of it.
unsafe impl Map for OsMap {
    fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(offset, len)
    }

    fn populate_write(&self, offset: usize, len: usize) -> io::Result<()> {
        let start = offset / PAGE * PAGE;
        let end = offset.saturating_add(len).min(self.map.len());
        if start >= end {
            return Ok(());
        }
        // MADV_POPULATE_WRITE (Linux 5.14) faults pages in as a write would,
        // without changing a byte, so it may run on pages the producer is
        // writing. Older kernels refuse it; then the producer takes the
        // faults itself.
        self.map
            .advise_range(Advice::PopulateWrite, start, end - start)
    }

    fn release(&self, offset: usize, len: usize) -> io::Result<()> {
        let start = offset.next_multiple_of(PAGE);
        let end = (offset.saturating_add(len) / PAGE * PAGE).min(self.map.len());
        if start >= end {
            return Ok(());
        }
        // SAFETY: `[start, end)` lies inside the mapping, which is a shared
        // mapping of a file (`MmapRaw` over the segment file). On such a
        // mapping MADV_DONTNEED only removes page-table entries: the pages
        // stay in the page cache (a dirty one stays dirty and is written
        // back as usual), and any later access maps the same page again, so
        // no reader or writer of the mapping ever sees a byte change.
        unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
        }
    }
}

impl SegmentFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn reserve(&mut self, len: u64) -> io::Result<()> {
        if i64::try_from(len).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file too large",
            ));
        }
        // Never fall back to a sparse `set_len`, whose holes would SIGBUS on
        // a full disk.
        loop {
            match fallocate(&self.file, FallocateFlags::empty(), 0, len) {
                Ok(()) => return Ok(()),
                // A signal cut a long allocation short: what it reserved
                // stays, so asking again finishes the job.
                Err(Errno::INTR) => continue,
                Err(Errno::OPNOTSUPP) => return reserve_by_writing(&self.file, len),
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn next_data(&self, from: u64) -> io::Result<Option<(u64, u64)>> {
        // `lseek` takes an `off_t`: nothing lies past its range.
        if i64::try_from(from).is_err() {
            return Ok(None);
        }
        let start = match seek(&self.file, SeekFrom::Data(from)) {
            Ok(start) => start,
            // No data at or after `from`.
            Err(Errno::NXIO) => return Ok(None),
            // No SEEK_DATA here: everything may be data.
            Err(Errno::INVAL) => return Ok(Some((from, self.len()?))),
            Err(errno) => return Err(errno.into()),
        };
        let end = seek(&self.file, SeekFrom::Hole(start))?;
        Ok(Some((start, end)))
    }

    fn map(&self, writable: bool) -> io::Result<Box<dyn Map>> {
        let map = if writable {
            MmapOptions::new().map_raw(&self.file)?
        } else {
            MmapOptions::new().map_raw_read_only(&self.file)?
        };
        Ok(Box::new(OsMap { map, writable }))
    }
}

/// A process holding a log's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Its process id, when the system says (`/proc/locks`, in this
    /// process's pid namespace).
    pub(crate) pid: Option<u32>,
}

/// Finds the `flock` on the file `dev`/`ino` in `/proc/locks` (Linux): its
/// lines read `1: FLOCK  ADVISORY  WRITE 1426 fe:00:10011072 0 EOF`, with
/// `->` after the number for a process waiting for the lock (not a holder).
/// `None` when the table has no such lock.
fn flock_holder(table: &str, dev: u64, ino: u64) -> Option<Holder> {
    let want = format!(
        "{:02x}:{:02x}:{ino}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] if *file == want => Some(Holder {
                pid: pid.parse().ok(),
            }),
            _ => None,
        }
    })
}

impl Vfs for OsFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        // flock locks belong to the open file description, so a second open
        // in this process conflicts as well as one from another process.
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(Errno::WOULDBLOCK) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }

    fn lock_holder(&self, path: &Path) -> io::Result<Option<Holder>> {
        use std::os::unix::fs::MetadataExt;
        // The lock itself says whether it is held: a shared lock, tried and
        // let go at once (a writer opening in that instant finds the log
        // busy, `Error::Locked`). `/proc/locks` alone cannot say: it hides
        // the locks of processes outside this pid namespace (a container
        // beside the writer's), and on some filesystems (btrfs) names a
        // device `stat` does not.
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match flock(&file, FlockOperation::NonBlockingLockShared) {
            Ok(()) => return Ok(None),
            Err(Errno::WOULDBLOCK) => {}
            Err(errno) => return Err(errno.into()),
        }
        // Held: `/proc/locks` may say by whom.
        let meta = file.metadata()?;
        let pid = std::fs::read_to_string("/proc/locks")
            .ok()
            .and_then(|table| flock_holder(&table, meta.dev(), meta.ino()))
            .and_then(|holder| holder.pid);
        Ok(Some(Holder { pid }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(OsFile { file }))
    }

    fn open(&self, path: &Path, writable: bool) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        Ok(Box::new(OsFile { file }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn read_small(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match File::open(path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                Read::by_ref(&mut file)
                    .take(1 << 16)
                    .read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write_small(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(bytes)?;
        file.sync_data()
    }
}

/// Reserves `[0, len)` of `file` where the filesystem has no `fallocate`
/// (`EOPNOTSUPP`: ext3-style block-mapped files, some FUSE and network
/// filesystems), as glibc's `posix_fallocate` does there: it writes a zero
/// byte into the last byte of every block that reads as zero (a nonzero
/// byte is data, and stays), ending with the file's last byte, so every
/// block is allocated and the file is `len` long. Never a byte of data
/// changes. On a network filesystem the bytes reserve nothing at the
/// server: the crate docs ask for a local filesystem.
fn reserve_by_writing(file: &File, len: u64) -> io::Result<()> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    if len == 0 {
        return Ok(());
    }
    let meta = file.metadata()?;
    let block = meta.blksize().max(512);
    let size = meta.len();
    let mut at = (len - 1) % block;
    while at < len {
        let mut byte = [0u8];
        let read = if at < size {
            file.read_at(&mut byte, at)?
        } else {
            0
        };
        if read == 0 || byte[0] == 0 {
            file.write_all_at(&[0], at)?;
        }
        at += block;
    }
    Ok(())
}

/// Path of the segment whose first record is `base`: zero-padded so that
/// `ls` sorts segments in offset order.
pub(crate) fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// Path of the truncation marker of the segment whose base is `base`.
pub(crate) fn cut_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.cut"))
}

/// The base offset a truncation marker's name stands for, if it is one.
pub(crate) fn parse_cut_name(name: &str) -> Option<u64> {
    parse_segment_name(&format!("{}.seg", name.strip_suffix(".cut")?))
}

/// The base offset a segment file name stands for, if it is one.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The page size the log assumes (file layout and page-table work).
pub(crate) const PAGE: usize = 4096;

/// The file a segment is prepared in before it gets its name.
pub(crate) const PREPARED_NAME: &str = "murakami-next.tmp";
/// The clean-close marker.
pub(crate) const CLEAN_NAME: &str = "murakami.clean";
/// The lock file.
pub(crate) const LOCK_NAME: &str = "murakami.lock";
/// The restart marker ([`Writer::restart_at`](crate::Writer::restart_at)).
pub(crate) const RESTART_NAME: &str = "murakami.restart";
/// The restart marker before it gets its name.
pub(crate) const RESTART_TMP_NAME: &str = "murakami.tmp";

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort() {
        let dir = Path::new("/d");
        let name = segment_path(dir, 1234);
        let name = name.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "00000000000000001234.seg");
        assert_eq!(parse_segment_name(name), Some(1234));
        assert_eq!(parse_segment_name("1234.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000123x.seg"), None);
        assert_eq!(parse_segment_name("00000000000000001234.seg.bak"), None);
        assert_eq!(parse_segment_name("99999999999999999999.seg"), None);
        assert!(segment_path(dir, 9) < segment_path(dir, 10));
    }

    /// Whether each page of `[ptr, ptr + pages * 4096)` has a page-table
    /// entry in this process (`/proc/self/pagemap`, bit 63).
    fn present(ptr: *const u8, pages: usize) -> Option<Vec<bool>> {
        use std::io::{Seek, SeekFrom};
        // Some sandboxes have no pagemap: then there is nothing to check.
        let mut pagemap = File::open("/proc/self/pagemap").ok()?;
        pagemap
            .seek(SeekFrom::Start((ptr as u64 / 4096) * 8))
            .unwrap();
        let mut entries = vec![0u8; pages * 8];
        pagemap.read_exact(&mut entries).unwrap();
        Some(
            entries
                .chunks(8)
                .map(|e| u64::from_le_bytes(e.try_into().unwrap()) >> 63 == 1)
                .collect(),
        )
    }

    #[test]
    fn release_drops_page_table_entries_and_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = OsFs.create(&dir.path().join("f")).unwrap();
        file.reserve(16 * 4096).unwrap();
        let map = file.map(true).unwrap();
        map.populate_write(0, 16 * 4096).unwrap();
        let ptr = map.as_ptr();
        let pattern = |i: usize| (i * 7 + i / 4096) as u8;
        // SAFETY: the map is writable, 16 pages long, and only this thread
        // uses it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, 16 * 4096) };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = pattern(i);
        }
        let before = present(ptr, 16);
        // Pages 4..12: the range is rounded inwards to whole pages.
        map.release(4 * 4096 - 100, 8 * 4096 + 200).unwrap();
        if let (Some(before), Some(after)) = (before, present(ptr, 16)) {
            assert!(before.iter().all(|&p| p), "populated and written");
            assert!(after[..4].iter().all(|&p| p), "{after:?}");
            assert!(after[4..12].iter().all(|&p| !p), "{after:?}");
            assert!(after[12..].iter().all(|&p| p), "{after:?}");
        }
        // Every byte is still there (read back through the same map, which
        // maps the pages again, and through the file).
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        let on_file = std::fs::read(dir.path().join("f")).unwrap();
        assert!(on_file.iter().enumerate().all(|(i, &b)| b == pattern(i)));
    }

    /// Where the filesystem has no `fallocate`, the reservation writes, as
    /// glibc's `posix_fallocate` did: every block gets allocated, the file
    /// reaches its length, and no byte of data changes.
    #[test]
    fn reserving_by_writing_allocates_every_block_and_keeps_the_data() {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        file.write_all_at(b"records", 5000).unwrap();
        let len = 1 << 20;
        reserve_by_writing(&file, len).unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), len);
        assert!(meta.blocks() * 512 >= len, "{} blocks", meta.blocks());
        let mut back = [0u8; 7];
        file.read_exact_at(&mut back, 5000).unwrap();
        assert_eq!(&back, b"records");
    }

    #[test]
    fn next_data_skips_holes_and_stops_past_the_last_data() {
        use std::os::unix::fs::FileExt;
        const P: u64 = 4096;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        file.set_len(64 * P).unwrap();
        file.write_all_at(&[1; 4096], 16 * P).unwrap();
        let file = OsFs.open(&path, false).unwrap();
        match file.next_data(0).unwrap() {
            // SEEK_DATA: the data page, past the hole before it; nothing
            // after it.
            Some((start, end)) if (start, end) == (16 * P, 17 * P) => {
                assert_eq!(file.next_data(end).unwrap(), None);
            }
            // No SEEK_DATA on this filesystem: everything may be data.
            Some(all) => assert_eq!(all, (0, 64 * P)),
            None => panic!("the data page was not found"),
        }
    }

    #[test]
    fn the_holder_of_a_lock_is_found_without_taking_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        assert_eq!(OsFs.lock_holder(&path).unwrap(), None, "no file, no holder");
        assert!(!path.exists(), "looking creates nothing");
        let held = OsFs.lock(&path).unwrap().unwrap();
        let holder = OsFs.lock_holder(&path).unwrap().expect("held");
        if std::path::Path::new("/proc/locks").exists() {
            assert_eq!(holder.pid, Some(std::process::id()));
        }
        // Looking did not take it: the holder still has it alone.
        assert!(OsFs.lock(&path).unwrap().is_none());
        drop(held);
        assert_eq!(OsFs.lock_holder(&path).unwrap(), None);
        assert!(OsFs.lock(&path).unwrap().is_some());
    }

    #[test]
    fn lock_table_lines_are_matched_by_device_and_inode() {
        let table = "1: FLOCK  ADVISORY  WRITE 1426 fe:00:10011072 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 1500 fe:00:10011072 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 77 fe:00:55 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 88 08:01:55 0 EOF\n";
        let dev = rustix::fs::makedev(0xfe, 0);
        assert_eq!(
            flock_holder(table, dev, 10011072),
            Some(Holder { pid: Some(1426) })
        );
        assert_eq!(
            flock_holder(table, dev, 55),
            None,
            "a POSIX lock is not ours"
        );
        let sda1 = rustix::fs::makedev(8, 1);
        assert_eq!(
            flock_holder(table, sda1, 55),
            Some(Holder { pid: Some(88) })
        );
        assert_eq!(flock_holder(table, sda1, 10011072), None);
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_NAME);
        let first = OsFs.lock(&path).unwrap();
        assert!(first.is_some());
        assert!(OsFs.lock(&path).unwrap().is_none());
        drop(first);
        assert!(OsFs.lock(&path).unwrap().is_some());
    }
}

/// A file system that fails on command, for tests: wraps [`OsFs`] and fails
/// flushes, directory syncs or file creation once the matching switch is on.
#[cfg(all(test, not(feature = "loom")))]
pub(crate) mod faulty {
    use super::*;
    use crate::primitives::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering};

    /// Switches shared by a [`FaultyFs`] and every map it hands out.
    #[derive(Debug, Default)]
    pub(crate) struct Faults {
        pub(crate) flush: AtomicBool,
        pub(crate) sync_dir: AtomicBool,
        pub(crate) create: AtomicBool,
        /// Flushes panic (a bug in a background task, as the writer sees it).
        pub(crate) panic: AtomicBool,
        /// Flushes wait while this is set (a slow disk), after setting
        /// `held`.
        pub(crate) hold: AtomicBool,
        pub(crate) held: AtomicBool,
        /// A small disk: room for this many mapped files (0: no limit).
        /// Reserving space fails with `ENOSPC` while as many maps live, so
        /// a removed file's space comes back only when its map is dropped,
        /// as on a real disk.
        pub(crate) room: AtomicUsize,
        /// Maps handed out and not dropped yet.
        pub(crate) live: AtomicUsize,
        /// Dropping a map first sleeps a while (a slow unmap).
        pub(crate) slow_unmap: AtomicBool,
        /// The name of the thread that dropped each map, in order.
        pub(crate) unmapped_on: Mutex<Vec<Option<String>>>,
    }

    impl Faults {
        /// Names of the threads that dropped maps since the last call.
        pub(crate) fn take_unmapped_on(&self) -> Vec<Option<String>> {
            std::mem::take(&mut *crate::primitives::lock(&self.unmapped_on))
        }
    }

    fn injected() -> io::Error {
        io::Error::from_raw_os_error(libc::EIO)
    }

    #[derive(Debug)]
    pub(crate) struct FaultyFs(pub(crate) Arc<Faults>);

    #[derive(Debug)]
    struct FaultyFile(Box<dyn SegmentFile>, Arc<Faults>);

    #[derive(Debug)]
    struct FaultyMap(Box<dyn Map>, Arc<Faults>);

    // SAFETY: every method passes through to the wrapped map, which keeps
    // the contract; the faults only fail or delay calls, and change no byte.
    unsafe impl Map for FaultyMap {
        fn as_ptr(&self) -> *mut u8 {
            self.0.as_ptr()
        }
        fn writable(&self) -> bool {
            self.0.writable()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
            assert!(!self.1.panic.load(Ordering::SeqCst), "injected panic");
            while self.1.hold.load(Ordering::SeqCst) {
                self.1.held.store(true, Ordering::SeqCst);
                std::thread::yield_now();
            }
            if self.1.flush.load(Ordering::SeqCst) {
                return Err(injected());
            }
            self.0.flush_range(offset, len)
        }
        fn populate_write(&self, offset: usize, len: usize) -> io::Result<()> {
            self.0.populate_write(offset, len)
        }
        fn release(&self, offset: usize, len: usize) -> io::Result<()> {
            self.0.release(offset, len)
        }
    }

    impl Drop for FaultyMap {
        fn drop(&mut self) {
            let faults = &self.1;
            if faults.slow_unmap.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let name = std::thread::current().name().map(String::from);
            crate::primitives::lock(&faults.unmapped_on).push(name);
            faults.live.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl SegmentFile for FaultyFile {
        fn len(&self) -> io::Result<u64> {
            self.0.len()
        }
        fn reserve(&mut self, len: u64) -> io::Result<()> {
            let room = self.1.room.load(Ordering::SeqCst);
            let full = room != 0 && self.1.live.load(Ordering::SeqCst) >= room;
            if full || self.1.create.load(Ordering::SeqCst) {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.0.reserve(len)
        }
        fn map(&self, writable: bool) -> io::Result<Box<dyn Map>> {
            let map = self.0.map(writable)?;
            self.1.live.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(FaultyMap(map, Arc::clone(&self.1))))
        }
        fn sync_data(&self) -> io::Result<()> {
            if self.1.flush.load(Ordering::SeqCst) {
                return Err(injected());
            }
            self.0.sync_data()
        }
        fn next_data(&self, from: u64) -> io::Result<Option<(u64, u64)>> {
            self.0.next_data(from)
        }
    }

    impl Vfs for FaultyFs {
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            OsFs.create_dir_all(dir)
        }
        fn lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send>>> {
            OsFs.lock(path)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            OsFs.list(dir)
        }
        fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
            Ok(Box::new(FaultyFile(
                OsFs.create(path)?,
                Arc::clone(&self.0),
            )))
        }
        fn open(&self, path: &Path, writable: bool) -> io::Result<Box<dyn SegmentFile>> {
            Ok(Box::new(FaultyFile(
                OsFs.open(path, writable)?,
                Arc::clone(&self.0),
            )))
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            OsFs.rename(from, to)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            OsFs.remove(path)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            if self.0.sync_dir.load(Ordering::SeqCst) {
                return Err(injected());
            }
            OsFs.sync_dir(dir)
        }
        fn read_small(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
            OsFs.read_small(path)
        }
        fn write_small(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
            OsFs.write_small(path, bytes)
        }
    }
}
