//! The state a log's writer and readers share.
//!
//! What it owns: [`Shared`], one per open log, behind an `Arc` in the
//! writer, every reader and every cursor. Its fields are private: the
//! layers above use the operations it offers (the segment list, the
//! durable offset and its syncer, the wake-ups, the maintenance lock, the
//! truncation count, the reclaimer).
//!
//! What it may call: `storage`, `durability`, `wake`, `recovery` (for the
//! report it keeps), `follow` (in a reader process), `options`.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use crate::durability::Syncer;
use crate::error::Result;
use crate::follow::Remote;
use crate::options::Options;
use crate::primitives::{AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering, fence, lock, pin};
use crate::recovery::RecoveryReport;
use crate::storage::control::Control;
use crate::storage::fs::Vfs;
use crate::storage::list::Segments;
use crate::storage::reclaimer::Reclaimer;
use crate::storage::segment::Purged;
use crate::wake::notify::Notify;
use crate::wake::remote;

/// State shared by the writer and every reader.
///
/// # Synchronization
///
/// - `segments`: epoch-protected list, loaded by anyone; replaced, under
///   its own replacing lock, by the writer's rolls and truncations and by
///   purges and cleanups (foreground, or the background cleaner), which
///   hold `maintenance` as well.
/// - `syncer`: the durable offset and the flush state; see `durability.rs`.
/// - `closed`: set (`Release`) by the writer when it closes; read by readers
///   (`Acquire`).
pub(crate) struct Shared {
    dir: PathBuf,
    options: Options,
    /// A std `Arc`: the file seam is outside the modelled protocol.
    vfs: std::sync::Arc<dyn Vfs>,
    segments: Segments,
    syncer: Syncer,
    closed: AtomicBool,
    notify: Notify,
    report: RecoveryReport,
    /// Held by purges, cleanups and truncations for their whole run, so
    /// they never interleave (rolls only add segments, under the list's own
    /// lock).
    maintenance: Mutex<()>,
    /// Truncations done so far: a group-commit waiter whose record was
    /// discarded notices it here.
    truncations: AtomicU64,
    /// Segments retention took out of the list that a cursor may still
    /// hold: a restart hides them too.
    purged: Purged,
    /// Where removed segments go to be unmapped off the caller's thread
    /// (its thread is the writer's; see `storage/reclaimer.rs`).
    reclaimer: Reclaimer,
    /// The writer's control file, through which it tells readers in other
    /// processes what it does (`None` in loom models and in a reader
    /// process).
    control: Option<Control>,
    /// In a reader process (no writer here): what keeps `segments` and the
    /// durable offset up to date from the files of another process's
    /// writer.
    remote: Option<Remote>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("dir", &self.dir)
            .field("durable", &self.syncer.durable())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Syncs everything published so far, then wakes readers waiting for
    /// durable records.
    pub(crate) fn sync(&self) -> Result<u64> {
        // Readers in other processes learn the durable offset under the
        // sync lock, which a truncation holds while it lowers it.
        let durable = self
            .syncer
            .sync(&self.segments, (&*self.vfs, &self.dir), &|durable| {
                if let Some(control) = &self.control {
                    control.set_durable(durable);
                }
            })?;
        fence(Ordering::SeqCst);
        self.notify.wake();
        if let Some(control) = &self.control {
            remote::wake_sleepers(control.words());
        }
        Ok(durable)
    }

    /// Marks the log closed and wakes every waiter.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.wake_all();
    }

    /// Tells readers in other processes that the writer closed cleanly,
    /// and wakes them.
    pub(crate) fn close_for_others(&self) {
        if let Some(control) = &self.control {
            control.closed();
            remote::wake_all(control.words());
        }
    }

    /// The loom model's mutant of [`Shared::close`]: marked closed, nobody
    /// woken.
    #[cfg(feature = "loom")]
    pub(crate) fn close_without_waking(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Whether waits must end with [`Error::Closed`](crate::Error::Closed):
    /// the writer of this process closed. Never in a reader process: a
    /// writer may open the log again, and its readers wait for it.
    pub(crate) fn ends_waits(&self) -> bool {
        self.remote.is_none() && self.closed.load(Ordering::Acquire)
    }

    /// Whether the writer has closed.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.remote {
            Some(remote) => remote.is_closed(),
            None => self.closed.load(Ordering::Acquire),
        }
    }

    /// Offset of the log's first record (the base of its first segment).
    pub(crate) fn first_offset(&self) -> u64 {
        let guard = pin();
        self.segments.load(&guard).first_offset()
    }

    /// One past the last published record (`Acquire`): counts every append
    /// that has returned.
    pub(crate) fn next_offset(&self) -> u64 {
        let guard = pin();
        self.segments.load(&guard).active().next_offset()
    }
}

impl Shared {
    /// The state of a log just opened (or of a loom model's log).
    pub(crate) fn new(
        (dir, options, vfs): (&Path, Options, std::sync::Arc<dyn Vfs>),
        segments: Segments,
        syncer: Syncer,
        report: RecoveryReport,
    ) -> Shared {
        Shared {
            dir: dir.to_path_buf(),
            options,
            vfs,
            segments,
            syncer,
            closed: AtomicBool::new(false),
            notify: Notify::new(),
            report,
            maintenance: Mutex::new(()),
            truncations: AtomicU64::new(0),
            purged: Purged::default(),
            reclaimer: Reclaimer::new(),
            control: None,
            remote: None,
        }
    }

    /// The state of a reader process: a view of the log `remote` follows.
    pub(crate) fn new_remote(
        (dir, vfs): (&Path, std::sync::Arc<dyn Vfs>),
        remote: Remote,
        segments: Segments,
        syncer: Syncer,
    ) -> Result<Shared> {
        let options = Options::default().resolve()?;
        let mut shared = Shared::new(
            (dir, options, vfs),
            segments,
            syncer,
            RecoveryReport::default(),
        );
        shared.remote = Some(remote);
        Ok(shared)
    }

    /// In a reader process, the link to the writer's files.
    #[inline]
    pub(crate) fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// In a reader process, brings the view up to what the writer's files
    /// hold now; `true` if it published anything new. Elsewhere `false`.
    #[inline]
    pub(crate) fn catch_up(&self) -> bool {
        match &self.remote {
            Some(remote) => remote.catch_up(&self.segments, &self.syncer),
            None => false,
        }
    }

    /// [`Shared::catch_up`] for a read that must not answer from a stale
    /// view: waits for another thread of this process that is catching up.
    pub(crate) fn catch_up_now(&self) -> bool {
        match &self.remote {
            Some(remote) => remote.catch_up_now(&self.segments, &self.syncer),
            None => false,
        }
    }

    /// This state, with the writer's control file.
    pub(crate) fn with_control(mut self, control: Control) -> Shared {
        self.control = Some(control);
        self
    }

    /// The writer's control file, if it has one.
    #[inline]
    pub(crate) fn control(&self) -> Option<&Control> {
        self.control.as_ref()
    }

    /// The log's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with (resolved).
    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// The file seam every file operation goes through.
    pub(crate) fn vfs(&self) -> &dyn Vfs {
        &*self.vfs
    }

    /// The file seam, shared (for the threads that outlive a call).
    pub(crate) fn vfs_arc(&self) -> &std::sync::Arc<dyn Vfs> {
        &self.vfs
    }

    /// The epoch-protected segment list.
    pub(crate) fn segments(&self) -> &Segments {
        &self.segments
    }

    /// The durable offset, the flush state and the latched failure.
    pub(crate) fn syncer(&self) -> &Syncer {
        &self.syncer
    }

    /// Readers waiting for records, and how to wake them.
    pub(crate) fn notify(&self) -> &Notify {
        &self.notify
    }

    /// What opening the log found and repaired.
    pub(crate) fn report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Held by purges, cleanups and truncations for their whole run, so
    /// that they never interleave.
    pub(crate) fn maintenance(&self) -> MutexGuard<'_, ()> {
        lock(&self.maintenance)
    }

    /// Truncations done so far (`Acquire`).
    pub(crate) fn truncations(&self) -> u64 {
        self.truncations.load(Ordering::Acquire)
    }

    /// Counts a truncation, once its new segment list is in place.
    pub(crate) fn count_truncation(&self) {
        self.truncations.fetch_add(1, Ordering::AcqRel);
    }

    /// Segments retention took out of the list that a cursor may still
    /// hold.
    pub(crate) fn purged(&self) -> &Purged {
        &self.purged
    }

    /// Where removed segments go to be unmapped.
    pub(crate) fn reclaimer(&self) -> &Reclaimer {
        &self.reclaimer
    }
}
