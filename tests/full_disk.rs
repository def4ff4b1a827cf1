//! A real full disk: a small tmpfs mounted for the test (as root; skipped
//! with a message otherwise, or when the mount is refused, as in a container
//! without the capability). Unmounted at the end, also when a test fails.
//!
//! Segments are reserved with `fallocate` before they are mapped, so
//! running out of space is an `Err` where the segment is made (at open, or
//! in the preparer thread, reported to the producer at the roll), never a
//! `SIGBUS` on a write into the map. A `SIGBUS` would kill the test process:
//! these tests passing is the proof that none was raised.
//!
//! Every scenario runs under a watchdog (60 s): a roll that waited forever
//! for a segment the preparer cannot make fails the test instead of hanging.
#![cfg(not(feature = "loom"))]

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use murakami::{Error, Log, Options};

const WATCHDOG: Duration = Duration::from_secs(60);

/// One test at a time: space a removed segment held comes back when its map
/// is released, which an epoch-pinned thread of another test could delay.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}
const MAX_RECORD: usize = 8 << 10;

/// A tmpfs of a given size, mounted on a temporary directory while it lives.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes`, or says why not and returns `None`.
    fn mount(test: &str, bytes: u64) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("{test}: skipped: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let data = CString::new(format!("size={bytes}")).unwrap();
        // SAFETY: every pointer is a NUL-terminated string that outlives the
        // call; `data` is the option string tmpfs expects.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            eprintln!("{test}: skipped: mount -t tmpfs failed: {err}");
            return None;
        }
        Some(Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call. MNT_DETACH:
        // a failed test may still hold files open in it.
        let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        if rc != 0 {
            eprintln!(
                "could not unmount {}: {}",
                self.path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Free bytes in the file system holding `path`.
fn free_bytes(path: &Path) -> u64 {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs is plain old data; all zeros is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    st.f_bfree as u64 * st.f_frsize as u64
}

/// Runs `f` on a thread and fails if it does not finish within
/// [`WATCHDOG`] (a hang), passing its panic on if it panics.
fn with_watchdog(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no result after {WATCHDOG:?}: the log hangs on a full disk")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(handle.join().unwrap_err())
        }
    }
}

/// Record `i`: its offset in its first 8 bytes, then bytes derived from it;
/// 8 to ~1.2 KiB long.
fn payload(i: u64) -> Vec<u8> {
    let len = 8 + (i.wrapping_mul(7919) % 1200) as usize;
    let mut bytes = i.to_le_bytes().to_vec();
    bytes.extend((8..len).map(|j| (i as usize * 31 + j * 7) as u8));
    bytes
}

fn frame_len(len: usize) -> usize {
    (32 + len + 7) & !7
}

fn is_enospc(err: &Error) -> bool {
    matches!(err, Error::Io(e) if e.raw_os_error() == Some(libc::ENOSPC))
}

/// Writes a file of `bytes` nonzero bytes (so that they take real pages).
fn filler(path: &Path, bytes: usize) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(&vec![0xA5; bytes]).unwrap();
}

/// Writes a file until the file system is full; returns its length.
fn fill_up(path: &Path) -> usize {
    let mut file = std::fs::File::create(path).unwrap();
    let page = [0x5Au8; 4096];
    let mut written = 0;
    loop {
        match file.write(&page) {
            Ok(0) => return written,
            Ok(n) => written += n,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return written,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}

fn check_records(reader: &murakami::Reader, upto: u64) {
    assert_eq!(reader.first_offset(), 0);
    assert_eq!(reader.next_offset(), upto);
    for i in 0..upto {
        assert_eq!(reader.read(i).unwrap(), payload(i), "record {i}");
    }
}

#[test]
fn a_segment_larger_than_the_disk_is_an_enospc_error_at_open() {
    let test = "a_segment_larger_than_the_disk_is_an_enospc_error_at_open";
    let _serial = serial();
    let Some(fs) = Tmpfs::mount(test, 1 << 20) else {
        return;
    };
    let root = fs.path().to_path_buf();
    with_watchdog(move || {
        let free = free_bytes(&root);
        let dir = root.join("log");
        let opts = Options::default()
            .segment_size(2 << 20)
            .max_record_size(MAX_RECORD);
        let err = Log::open(&dir, opts).unwrap_err();
        assert!(is_enospc(&err), "expected Error::Io(ENOSPC), got {err:?}");
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            left.iter()
                .all(|name| !name.ends_with(".seg") && !name.ends_with(".tmp")),
            "a failed creation leaves no segment behind: {left:?}"
        );
        assert_eq!(free_bytes(&root), free, "no space is left taken");
        // A segment size that fits works in the same directory.
        let opts = Options::default()
            .segment_size(256 << 10)
            .max_record_size(MAX_RECORD);
        let (mut writer, reader) = Log::open(&dir, opts.clone()).unwrap();
        assert_eq!(writer.append(&payload(0)).unwrap(), 0);
        assert_eq!(writer.sync().unwrap(), 1);
        writer.close().unwrap();
        check_records(&reader, 1);
    });
}

/// 1 MiB of tmpfs, 400 KiB taken by a filler: room for one 384 KiB segment
/// but not for the next, which the preparer tries to make in the background.
fn roll_on_a_full_disk(test: &str, prefault: bool) {
    let _serial = serial();
    let Some(fs) = Tmpfs::mount(test, 1 << 20) else {
        return;
    };
    let root = fs.path().to_path_buf();
    with_watchdog(move || {
        let segment = 384usize << 10;
        let opts = Options::default()
            .segment_size(segment as u64)
            .max_record_size(MAX_RECORD)
            .prefault(prefault);
        let dir = root.join("log");
        let filler_path = root.join("filler");
        filler(&filler_path, 400 << 10);
        let (mut writer, reader) = Log::open(&dir, opts.clone()).unwrap();

        // Fill the one segment there is room for; the roll must fail.
        let mut used = 64; // the segment header
        let err = loop {
            let i = writer.next_offset();
            let p = payload(i);
            match writer.append(&p) {
                Ok(offset) => assert_eq!(offset, i),
                Err(e) => {
                    assert!(
                        used + frame_len(p.len()) > segment,
                        "failed with room left in the segment: {e:?}"
                    );
                    break e;
                }
            }
            used += frame_len(p.len());
            if i % 50 == 49 {
                assert_eq!(writer.sync().unwrap(), i + 1);
            }
        };
        assert!(
            is_enospc(&err),
            "the roll reports Error::Io(ENOSPC), got {err:?}"
        );
        let mut n = writer.next_offset();
        assert!(n > 100, "only {n} records before the roll");
        check_records(&reader, n);

        // The preparer tries again at each roll, and fails again.
        let err = writer.append(&payload(n)).unwrap_err();
        assert!(is_enospc(&err), "{err:?}");
        // A batch that does not fit the active segment appends nothing.
        let batch: Vec<Vec<u8>> = (n..n + 3).map(payload).collect();
        let err = writer.append_batch(&batch).unwrap_err();
        assert!(is_enospc(&err), "all or nothing: {err:?}");
        assert_eq!(reader.next_offset(), n);
        // One larger than a segment says how far it got.
        let big: Vec<Vec<u8>> = (n..n + 900).map(payload).collect();
        assert!(big.iter().map(|p| frame_len(p.len())).sum::<usize>() > segment);
        match writer.append_batch(&big).unwrap_err() {
            Error::PartialBatch { appended, cause } => {
                assert!(is_enospc(&cause), "{cause:?}");
                assert_eq!(appended.start, n);
                n = appended.end;
            }
            other => panic!("expected PartialBatch, got {other:?}"),
        }
        check_records(&reader, n);
        // A full disk is not a failed flush: the writer is not latched.
        assert_eq!(writer.sync().unwrap(), n);
        // A truncation takes its new segment first: it fails, changing nothing.
        let err = writer.truncate_from(n / 2).unwrap_err();
        assert!(is_enospc(&err), "{err:?}");
        check_records(&reader, n);
        assert_eq!(reader.durable_offset(), n);

        // Space is back: the next roll works.
        std::fs::remove_file(&filler_path).unwrap();
        for i in n..n + 50 {
            assert_eq!(writer.append(&payload(i)).unwrap(), i);
        }
        n += 50;
        assert_eq!(writer.sync().unwrap(), n);
        writer.close().unwrap();
        check_records(&reader, n);
        // A reader outliving its writer keeps the segments mapped, and
        // mapped blocks stay taken even once their file is removed.
        drop(reader);

        // Two segments take 768 KiB of 1 MiB: no room for a third. Opening
        // needs none; the roll fails again.
        let (mut writer, reader) = Log::open(&dir, opts.clone()).unwrap();
        assert!(writer.recovery_report().clean_shutdown);
        check_records(&reader, n);
        let err = loop {
            let i = writer.next_offset();
            match writer.append(&payload(i)) {
                Ok(offset) => assert_eq!(offset, i),
                Err(e) => break e,
            }
        };
        assert!(is_enospc(&err), "{err:?}");
        n = writer.next_offset();
        assert_eq!(writer.sync().unwrap(), n);

        // Not a page left: the clean-close marker cannot be written.
        let full_path = root.join("full");
        fill_up(&full_path);
        let err = writer.close().unwrap_err();
        assert!(is_enospc(&err), "close on a full disk: {err:?}");
        check_records(&reader, n);

        // Freed again, the log recovers everything it made durable.
        drop(reader);
        std::fs::remove_file(&full_path).unwrap();
        let (mut writer, reader) = Log::open(&dir, opts).unwrap();
        assert!(
            !writer.recovery_report().clean_shutdown,
            "a marker that was never written is no clean shutdown"
        );
        check_records(&reader, n);
        // The active segment is full and there is still no room for a
        // third; purging the first segment makes room for the roll. Its map
        // is released on the reclaiming thread, not by the purge: a roll
        // that finds no room waits for that before it gives up, so the
        // space is back in time for the very next append.
        let err = writer.append(&payload(n)).unwrap_err();
        assert!(is_enospc(&err), "{err:?}");
        let removed = writer.purge_before(n).unwrap();
        assert_eq!(removed.segments, 1, "{removed:?}");
        let first = reader.first_offset();
        assert!(first > 0);
        assert_eq!(
            writer.append(&payload(n)).unwrap(),
            n,
            "the purged segment's space is back for the roll"
        );
        writer.close().unwrap();
        for i in first..=n {
            assert_eq!(reader.read(i).unwrap(), payload(i), "record {i}");
        }
    });
}

#[test]
fn a_roll_on_a_full_disk_is_an_enospc_error_and_the_log_recovers() {
    roll_on_a_full_disk(
        "a_roll_on_a_full_disk_is_an_enospc_error_and_the_log_recovers",
        true,
    );
}

#[test]
fn a_roll_on_a_full_disk_without_prefaulting_is_an_enospc_error_too() {
    roll_on_a_full_disk(
        "a_roll_on_a_full_disk_without_prefaulting_is_an_enospc_error_too",
        false,
    );
}
