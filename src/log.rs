//! Opening a log: recovery, then the state its writer and readers share,
//! then the writer.
#![forbid(unsafe_code)]

use std::path::Path;

use crate::durability::Syncer;
use crate::error::Result;
use crate::options::Options;
use crate::primitives::Arc;
use crate::read::reader::Reader;
use crate::recovery::{self, Inspection, WriterInfo};
use crate::shared::Shared;
use crate::storage::control::{Control, View};
use crate::storage::fs::{OsFs, Vfs};
use crate::storage::list::{SegmentList, Segments};
use crate::wake::remote;
use crate::write::writer::Writer;

/// Opens logs. A log has one [`Writer`] and any number of [`Reader`]s.
///
/// ```
/// # #[cfg(feature = "loom")] fn main() {} // loom builds run only the models
/// # #[cfg(not(feature = "loom"))]
/// # fn main() -> murakami::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// let (mut writer, reader) = murakami::Log::open(dir.path(), murakami::Options::default())?;
/// let offset = writer.append(b"hello")?;
/// assert_eq!(reader.read(offset)?, b"hello");
/// writer.sync()?;
/// assert_eq!(reader.durable_offset(), offset + 1);
/// writer.close()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Log(());

impl Log {
    /// Opens the log in `dir`, creating the directory and an empty log if
    /// needed, and recovering from a crash if the log was not closed cleanly.
    ///
    /// The directory stays locked until the writer is closed or dropped: a
    /// second `open` of it, from this process or another, fails with
    /// [`Error::Locked`](crate::Error::Locked).
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(Writer, Reader)> {
        Log::open_with(std::sync::Arc::new(OsFs), dir.as_ref(), options)
    }

    /// Looks at the log in `dir` without changing anything: its segments,
    /// markers and control file, whether a writer holds it now, and the
    /// first problem with what opening it would do there (the scan and the
    /// rules recovery uses; see [`Inspection`]). Keeps no lock (it tries
    /// one and lets it go, as [`Log::writer_of`] does) and creates, writes
    /// and removes no file; a missing directory is an
    /// [`Error::Io`](crate::Error::Io) of kind `NotFound`.
    ///
    /// ```
    /// # #[cfg(feature = "loom")] fn main() {} // loom builds run only the models
    /// # #[cfg(not(feature = "loom"))]
    /// # fn main() -> murakami::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use murakami::{Log, LogState, Options};
    ///
    /// let (mut writer, _reader) = Log::open(dir.path(), Options::default())?;
    /// writer.append(b"hello")?;
    /// writer.close()?;
    ///
    /// let inspection = Log::inspect(dir.path())?;
    /// assert_eq!(inspection.state, LogState::Closed);
    /// assert_eq!(inspection.next_offset, 1);
    /// assert_eq!(inspection.segments[0].records, 1);
    /// assert!(inspection.problem.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn inspect(dir: impl AsRef<Path>) -> Result<Inspection> {
        recovery::inspect(&OsFs, dir.as_ref())
    }

    /// The process holding the log's lock in `dir` now (a writer), if one
    /// does, and its pid when `/proc/locks` shows it (not when the writer
    /// is in another pid namespace). Creates no file; it tries a shared
    /// lock and lets it go at once, so a writer opening the log in that
    /// instant fails with [`Error::Locked`](crate::Error::Locked).
    pub fn writer_of(dir: impl AsRef<Path>) -> Result<Option<WriterInfo>> {
        Ok(recovery::writer_of(&OsFs, dir.as_ref())?)
    }

    pub(crate) fn open_with(
        vfs: std::sync::Arc<dyn Vfs>,
        dir: &Path,
        options: Options,
    ) -> Result<(Writer, Reader)> {
        let options = options.resolve()?;
        let recovered = recovery::recover(&*vfs, dir, &options)?;
        let control = Control::open_for_writer(&*vfs, dir)?;
        control.set_barrier(remote::register_writer());
        let active = recovered.segments.last().expect("an active segment");
        let view = View {
            first: recovered.segments[0].base(),
            first_sequence: recovered.segments[0].sequence(),
            restarted_below: recovered.restarted_below,
            durable: recovered.next_offset,
            active_base: active.base(),
            active_sequence: active.sequence(),
        };
        let syncer = Syncer::new(
            recovered.next_offset,
            active.base(),
            recovered.appender.end(),
        );
        let shared = Arc::new(
            Shared::new(
                (dir, options, vfs),
                Segments::new(SegmentList::new(recovered.segments)),
                syncer,
                recovered.report,
            )
            .with_control(control),
        );
        let writer = Writer::new(
            Arc::clone(&shared),
            recovered.lock,
            recovered.appender,
            recovered.next_offset,
            recovered.active_max_timestamp,
            recovered.next_sequence,
        )?;
        // Readers in other processes may follow it from now on.
        if let Some(control) = shared.control() {
            control.writer_opened(view);
            remote::wake_all(control.words());
        }
        Ok((writer, Reader::new(shared)))
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::primitives::Ordering;
    use crate::storage::fs::faulty::{Faults, FaultyFs};

    fn open_faulty(dir: &Path, options: Options) -> (Arc<Faults>, Writer, Reader) {
        let faults = Arc::new(Faults::default());
        let vfs = Arc::new(FaultyFs(Arc::clone(&faults)));
        let (writer, reader) = Log::open_with(vfs, dir, options).unwrap();
        (faults, writer, reader)
    }

    fn small() -> Options {
        Options::default().segment_size(4096).max_record_size(512)
    }

    #[test]
    fn a_failed_flush_latches_the_writer_and_the_durable_offset_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let (faults, mut writer, reader) = open_faulty(tmp.path(), small());
        writer.append(b"one").unwrap();
        assert_eq!(writer.sync().unwrap(), 1);
        writer.append(b"two").unwrap();
        faults.flush.store(true, Ordering::SeqCst);
        assert!(matches!(writer.sync(), Err(Error::Poisoned { .. })));
        faults.flush.store(false, Ordering::SeqCst);
        assert_eq!(
            reader.durable_offset(),
            1,
            "no durability past a failed flush"
        );
        let err = writer.append(b"three").unwrap_err();
        assert!(matches!(err, Error::Poisoned { .. }), "{err}");
        assert!(err.to_string().contains("reopen"), "{err}");
        let cause = std::error::Error::source(&err).expect("the flush's error");
        assert!(!err.to_string().contains(&cause.to_string()), "{err}");
        assert!(
            matches!(writer.sync(), Err(Error::Poisoned { .. })),
            "not retryable"
        );
        assert!(writer.append_batch(&[b"x"]).is_err());
        assert_eq!(reader.read(1).unwrap(), b"two", "readers still read");
        assert!(writer.close().is_err(), "close reports the latched failure");
        let (_, reader) = Log::open(tmp.path(), small()).unwrap();
        assert_eq!(reader.read(0).unwrap(), b"one");
    }

    /// What `Writer`'s docs promise of a drop without `close` (issue 11,
    /// item 10): a full sync and a clean shutdown when it works...
    #[test]
    fn dropping_a_writer_without_close_syncs_and_closes() {
        let tmp = tempfile::tempdir().unwrap();
        let (_faults, mut writer, reader) = open_faulty(tmp.path(), small());
        writer.append_batch(&[b"a", b"b", b"c"]).unwrap();
        assert_eq!(reader.durable_offset(), 0);
        drop(writer);
        assert_eq!(reader.durable_offset(), 3, "the drop synced");
        assert!(reader.is_closed());
        let (writer, _) = Log::open(tmp.path(), small()).unwrap();
        assert!(writer.recovery_report().clean_shutdown);
    }

    /// ...and, when the sync fails, no word of it: the error is swallowed,
    /// the directory released, and the next open finds no clean shutdown.
    #[test]
    fn dropping_a_writer_without_close_swallows_a_failed_sync() {
        let tmp = tempfile::tempdir().unwrap();
        let (faults, mut writer, reader) = open_faulty(tmp.path(), small());
        writer.append(b"a").unwrap();
        faults.flush.store(true, Ordering::SeqCst);
        drop(writer);
        assert_eq!(reader.durable_offset(), 0, "nothing was made durable");
        assert!(reader.is_closed());
        let (writer, reader) = Log::open(tmp.path(), small()).unwrap();
        assert!(!writer.recovery_report().clean_shutdown);
        assert!(reader.next_offset() <= 1);
    }

    #[test]
    fn a_failed_directory_sync_latches_too() {
        let tmp = tempfile::tempdir().unwrap();
        let (faults, mut writer, reader) = open_faulty(tmp.path(), small());
        while std::fs::read_dir(tmp.path()).unwrap().count() < 5 {
            writer.append(&[7u8; 300]).unwrap();
        }
        faults.sync_dir.store(true, Ordering::SeqCst);
        assert!(matches!(writer.sync(), Err(Error::Poisoned { .. })));
        assert_eq!(reader.durable_offset(), 0);
        assert!(writer.append(b"x").is_err());
    }

    #[test]
    fn a_full_disk_at_roll_is_an_error_not_a_crash_and_the_writer_goes_on() {
        let tmp = tempfile::tempdir().unwrap();
        let options = small().prefault(false);
        let (faults, mut writer, reader) = open_faulty(tmp.path(), options);
        faults.create.store(true, Ordering::SeqCst);
        // Let the preparer's prepared segment be used up first.
        let mut appended = 0u64;
        let err = loop {
            match writer.append(&[1u8; 300]) {
                Ok(_) => appended += 1,
                Err(e) => break e,
            }
            assert!(appended < 100, "never ran out of space");
        };
        match &err {
            Error::Io(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            reader.next_offset(),
            appended,
            "the refused record is not there"
        );
        faults.create.store(false, Ordering::SeqCst);
        assert_eq!(
            writer.append(&[2u8; 300]).unwrap(),
            appended,
            "space is back"
        );
        assert_eq!(writer.sync().unwrap(), appended + 1);
    }

    #[test]
    fn a_batch_larger_than_a_segment_cut_short_says_what_went_in() {
        let tmp = tempfile::tempdir().unwrap();
        let (faults, mut writer, reader) = open_faulty(tmp.path(), small().prefault(false));
        writer.append(b"first").unwrap();
        faults.create.store(true, Ordering::SeqCst);
        let batch: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; 300]).collect();
        match writer.append_batch(&batch) {
            Err(Error::PartialBatch { appended, cause }) => {
                assert_eq!(appended.start, 1);
                assert!(appended.end < 41);
                assert!(matches!(*cause, Error::Io(_)), "{cause}");
                assert_eq!(reader.next_offset(), appended.end);
                for offset in appended {
                    assert_eq!(reader.read(offset).unwrap(), batch[offset as usize - 1]);
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_flush_while_recovering_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("live");
        let copy = tmp.path().join("copy");
        let (mut writer, _) = Log::open(&live, small()).unwrap();
        for i in 0..100u32 {
            writer.append(&i.to_le_bytes().repeat(50)).unwrap();
        }
        std::fs::create_dir(&copy).unwrap();
        for entry in std::fs::read_dir(&live).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
        drop(writer);
        let faults = Arc::new(Faults::default());
        faults.flush.store(true, Ordering::SeqCst);
        let vfs = Arc::new(FaultyFs(Arc::clone(&faults)));
        let err = Log::open_with(vfs, &copy, small()).unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err}");
        let (_, reader) = Log::open(&copy, small()).unwrap();
        assert_eq!(reader.next_offset(), 100);
    }

    #[test]
    fn group_commit_reports_a_failed_flush_to_every_waiter_and_latches() {
        let tmp = tempfile::tempdir().unwrap();
        let (faults, writer, reader) = open_faulty(tmp.path(), small());
        let writer = writer.into_shared();
        writer.append_durable(b"ok").unwrap();
        faults.flush.store(true, Ordering::SeqCst);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let writer = writer.clone();
                std::thread::spawn(move || writer.append_durable(b"lost"))
            })
            .collect();
        for handle in handles {
            assert!(matches!(
                handle.join().unwrap(),
                Err(Error::Poisoned { .. })
            ));
        }
        faults.flush.store(false, Ordering::SeqCst);
        assert_eq!(reader.durable_offset(), 1);
        assert!(matches!(writer.append(b"x"), Err(Error::Poisoned { .. })));
        assert!(matches!(writer.sync(), Err(Error::Poisoned { .. })));
    }

    #[test]
    fn the_background_syncer_latches_a_failed_flush() {
        let tmp = tempfile::tempdir().unwrap();
        let interval = crate::SyncPolicy::Interval(std::time::Duration::from_millis(1));
        let (faults, mut writer, reader) = open_faulty(tmp.path(), small().sync_policy(interval));
        writer.append(b"one").unwrap();
        assert!(
            reader
                .clone()
                .durable_only()
                .wait_for(0, std::time::Duration::from_secs(10))
                .unwrap()
        );
        faults.flush.store(true, Ordering::SeqCst);
        writer.append(b"two").unwrap();
        // The syncer's next tick fails and latches; appends then refuse.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let err = loop {
            match writer.append(b"more") {
                Err(e) => break e,
                Ok(_) => assert!(std::time::Instant::now() < deadline, "never latched"),
            }
            std::thread::yield_now();
        };
        assert!(matches!(err, Error::Poisoned { .. }), "{err}");
        assert_eq!(reader.durable_offset(), 1);
    }

    /// A log of small segments holding `segments` files, all synced.
    fn with_segments(
        dir: &Path,
        options: Options,
        segments: usize,
    ) -> (Arc<Faults>, Writer, Reader) {
        let (faults, mut writer, reader) = open_faulty(dir, options);
        let mut i = 0u32;
        let files = |dir: &Path| {
            std::fs::read_dir(dir)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "seg")
                })
                .count()
        };
        while files(dir) < segments {
            writer.append(&i.to_le_bytes().repeat(60)).unwrap();
            i += 1;
        }
        writer.sync().unwrap();
        (faults, writer, reader)
    }

    /// Appends until the writer refuses (a background thread latched it),
    /// which must happen within a generous deadline; returns the refusal.
    fn append_until_refused(writer: &mut Writer) -> Error {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match writer.append(&[9u8; 200]) {
                Err(e) => return e,
                Ok(_) => assert!(std::time::Instant::now() < deadline, "never latched"),
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_failed_flush_or_directory_sync_in_a_purge_latches_the_writer() {
        for switch in ["flush", "sync_dir"] {
            let tmp = tempfile::tempdir().unwrap();
            let (faults, mut writer, reader) = with_segments(tmp.path(), small(), 4);
            let durable = reader.durable_offset();
            writer.append(b"not yet durable").unwrap();
            let flag = match switch {
                "flush" => &faults.flush,
                _ => &faults.sync_dir,
            };
            flag.store(true, Ordering::SeqCst);
            let err = writer.purge_before(durable).unwrap_err();
            assert!(matches!(err, Error::Poisoned { .. }), "{switch}: {err}");
            flag.store(false, Ordering::SeqCst);
            assert!(matches!(writer.append(b"x"), Err(Error::Poisoned { .. })));
            assert!(matches!(writer.sync(), Err(Error::Poisoned { .. })));
            assert!(matches!(writer.cleanup(), Err(Error::Poisoned { .. })));
            assert!(matches!(
                writer.purge_before(durable),
                Err(Error::Poisoned { .. })
            ));
            assert_eq!(reader.durable_offset(), durable, "{switch}");
        }
    }

    #[test]
    fn the_background_cleaner_latches_a_failed_flush() {
        let tmp = tempfile::tempdir().unwrap();
        let retention = crate::Retention::none()
            .max_bytes(2 * 4096)
            .check_every(std::time::Duration::from_millis(1));
        let (faults, mut writer, reader) =
            with_segments(tmp.path(), small().retention(retention), 2);
        let durable = reader.durable_offset();
        faults.flush.store(true, Ordering::SeqCst);
        let err = append_until_refused(&mut writer);
        assert!(matches!(err, Error::Poisoned { .. }), "{err}");
        faults.flush.store(false, Ordering::SeqCst);
        assert!(matches!(writer.sync(), Err(Error::Poisoned { .. })));
        assert_eq!(reader.durable_offset(), durable);
    }

    /// A panic in a background task (here: inside the flush it runs) ends
    /// its thread; the writer hears of it and says which thread died, and
    /// why, instead of going on without it.
    #[test]
    fn a_background_thread_that_panics_latches_the_writer_with_its_message() {
        let interval = crate::SyncPolicy::Interval(std::time::Duration::from_millis(1));
        let cleaner = crate::Retention::none()
            .max_bytes(2 * 4096)
            .check_every(std::time::Duration::from_millis(1));
        let cases = [
            ("the background syncer", small().sync_policy(interval)),
            (
                "the background retention cleaner",
                small().retention(cleaner),
            ),
        ];
        for (thread, options) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let (faults, mut writer, _) = with_segments(tmp.path(), options, 2);
            faults.panic.store(true, Ordering::SeqCst);
            let err = append_until_refused(&mut writer);
            faults.panic.store(false, Ordering::SeqCst);
            let Error::Poisoned { cause } = &err else {
                panic!("{thread}: {err}")
            };
            let cause = cause.to_string();
            assert!(cause.contains(thread), "{cause}");
            assert!(cause.contains("injected panic"), "{cause}");
            assert!(matches!(writer.sync(), Err(Error::Poisoned { .. })));
        }
    }

    /// Regression: a `SharedWriter` under `EveryRecords(n)` ran the
    /// policy's flush while holding the writer's lock, so every other
    /// thread's append waited for the disk.
    #[test]
    fn a_shared_writer_s_counted_sync_does_not_hold_other_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let policy = crate::SyncPolicy::EveryRecords(2);
        let (faults, writer, reader) = open_faulty(tmp.path(), small().sync_policy(policy));
        let writer = writer.into_shared();
        writer.append(b"one").unwrap();
        faults.hold.store(true, Ordering::SeqCst);
        let syncing = {
            let writer = writer.clone();
            std::thread::spawn(move || writer.append(b"two, reaching the count"))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !faults.held.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline, "the sync never began");
            std::thread::yield_now();
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let other = writer.clone();
        std::thread::spawn(move || tx.send(other.append(b"three")).unwrap());
        let appended = rx.recv_timeout(std::time::Duration::from_secs(20));
        let still_flushing = faults.hold.load(Ordering::SeqCst) && !syncing.is_finished();
        faults.hold.store(false, Ordering::SeqCst);
        let appended = appended.expect("an append waited for another thread's flush");
        assert_eq!(appended.unwrap(), 2);
        assert!(
            still_flushing,
            "the append went in while the flush was held"
        );
        assert_eq!(syncing.join().unwrap().unwrap(), 1);
        assert!(
            reader.durable_offset() >= 2,
            "the counted append is durable"
        );
    }

    /// A truncation that fails before its new segment gets its name does
    /// not leave that segment's reserved file behind.
    #[test]
    fn a_failed_truncation_removes_the_segment_it_had_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let (faults, mut writer, _) = with_segments(tmp.path(), small(), 2);
        let prepared = tmp.path().join(crate::storage::fs::PREPARED_NAME);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !prepared.exists() {
            assert!(std::time::Instant::now() < deadline, "never prepared");
            std::thread::yield_now();
        }
        faults.sync_dir.store(true, Ordering::SeqCst);
        let err = writer.truncate_from(1).unwrap_err();
        assert!(matches!(err, Error::Poisoned { .. }), "{err}");
        assert!(!prepared.exists(), "the taken segment's file is left");
    }

    #[test]
    fn a_truncation_that_fails_after_its_commit_point_latches_and_reopens_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let (faults, mut writer, _) = open_faulty(tmp.path(), small());
        for i in 0..40u32 {
            writer.append(&i.to_le_bytes()).unwrap();
        }
        writer.sync().unwrap();
        faults.sync_dir.store(true, Ordering::SeqCst);
        let err = writer.truncate_from(25).unwrap_err();
        assert!(matches!(err, Error::Poisoned { .. }), "{err}");
        assert!(matches!(writer.append(b"x"), Err(Error::Poisoned { .. })));
        drop(writer);
        faults.sync_dir.store(false, Ordering::SeqCst);
        let (_, reader) = Log::open(tmp.path(), small()).unwrap();
        assert_eq!(
            reader.next_offset(),
            25,
            "the committed truncation is completed"
        );
        assert_eq!(reader.read(24).unwrap(), 24u32.to_le_bytes());
    }
}
