//! Opening a log, and the state its writer and readers share.
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fs::{OsFs, Vfs};
use crate::options::Options;
use crate::reader::Reader;
use crate::recovery::{self, RecoveryReport};
use crate::segments::{SegmentList, Segments};
use crate::sync::{Arc, AtomicBool};
use crate::syncer::Syncer;
use crate::writer::Writer;

/// State shared by the writer and every reader.
///
/// # Synchronization
///
/// - `segments`: epoch-protected list; replaced only by the writer.
/// - `syncer`: the durable offset and the flush state; see `syncer.rs`.
/// - `closed`: set (`Release`) by the writer when it closes; read by readers
///   (`Acquire`).
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) segments: Segments,
    pub(crate) syncer: Syncer,
    pub(crate) closed: AtomicBool,
    pub(crate) report: RecoveryReport,
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
    /// Syncs everything published so far.
    pub(crate) fn sync(&self) -> Result<u64> {
        self.syncer.sync(&self.segments, &*self.vfs, &self.dir)
    }
}

/// Opens logs. A log has one [`Writer`] and any number of [`Reader`]s.
///
/// ```
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
        Log::open_with(Arc::new(OsFs), dir.as_ref(), options)
    }

    pub(crate) fn open_with(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        options: Options,
    ) -> Result<(Writer, Reader)> {
        options.validate()?;
        let recovered = recovery::recover(&*vfs, dir, &options)?;
        let active = recovered.segments.last().expect("an active segment");
        let syncer = Syncer::new(
            recovered.next_offset,
            active.base(),
            recovered.appender.end(),
        );
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            options,
            vfs,
            segments: Segments::new(SegmentList::new(recovered.segments)),
            syncer,
            closed: AtomicBool::new(false),
            report: recovered.report,
        });
        let writer = Writer::new(
            Arc::clone(&shared),
            recovered.lock,
            recovered.appender,
            recovered.next_offset,
        )?;
        Ok((writer, Reader::new(shared)))
    }
}
