//! [`LogStore`]: openraft's `RaftLogStorage` on a murakami log.
//!
//! # Indices
//!
//! A Raft log index is a murakami offset: entry `i` is record `i`. The
//! entries openraft may read are those from the **first index** on, which
//! is `last_purged_log_id.index + 1` (0 when nothing was purged), or the
//! log's first offset if that is later (a log created at another offset).
//! murakami purges whole segments only, so records below the first index
//! may still be on disk and readable: they are never given to openraft.
//!
//! `last_purged_log_id` lives in a side file (`purged`), written durably
//! before the log is purged. An empty log is `next_offset == first index`;
//! its `last_log_id` is then `last_purged_log_id`. When openraft purges up
//! to or past the last entry (a follower installing a snapshot that its log
//! does not reach), the log is restarted with
//! [`murakami::SharedWriter::restart_at`] at `index + 1`: everything goes,
//! and the next append lands there. A crash between the side file and the
//! restart is finished at the next open (the side file says the log must
//! start later than it ends). An append to an empty log whose first entry
//! is not at the log's next offset restarts the log there too.
//!
//! # Durability
//!
//! `append` publishes the entries in one murakami batch and hands the
//! callback to the flusher thread (`flusher.rs`), which completes it once a
//! group fsync covers the entries, or with the error that sync returned.
//! `truncate`, `purge` and `save_vote` first wait (asynchronously) for
//! every earlier append to be flushed, so the log's writes stay in the
//! order openraft submitted them.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use murakami::{Log, Options, Reader, SharedWriter, SyncPolicy};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};

use crate::codec;
use crate::flusher::{Callback, Flusher};
use crate::side_file;
use crate::slot_file::SlotFile;

/// The murakami log's directory inside the store's directory.
pub const LOG_DIR: &str = "log";
/// The side file of the vote.
pub const VOTE_FILE: &str = "vote";
/// The side file of the committed log id.
pub const COMMITTED_FILE: &str = "committed";
/// The side file of the last purged log id.
pub const PURGED_FILE: &str = "purged";

type Result<T, C> = std::result::Result<T, StorageError<<C as RaftTypeConfig>::NodeId>>;

/// The first index openraft may read (shared with the log readers).
#[derive(Debug, Default)]
struct Shared {
    first_index: AtomicU64,
}

/// openraft's log storage on a murakami log (see the module docs).
pub struct LogStore<C: RaftTypeConfig> {
    // Declared first: dropped (joined, its queue completed) before the
    // writer goes.
    flusher: Flusher,
    writer: SharedWriter,
    reader: LogReader<C>,
    dir: PathBuf,
    last_purged: Option<LogId<C::NodeId>>,
    /// The committed log id openraft last saved, and its file: two slots
    /// overwritten in turn, one fdatasync per save ([`SlotFile`]), since
    /// openraft saves it at every commit.
    committed: Option<LogId<C::NodeId>>,
    committed_file: SlotFile,
}

/// Reads entries for openraft's replication tasks: cheap to clone, lock-free.
pub struct LogReader<C: RaftTypeConfig> {
    reader: Reader,
    shared: Arc<Shared>,
    _types: PhantomData<C>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader {
            reader: self.reader.clone(),
            shared: Arc::clone(&self.shared),
            _types: PhantomData,
        }
    }
}

fn read_error<C: RaftTypeConfig>(e: impl std::error::Error + 'static) -> StorageError<C::NodeId> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_error<C: RaftTypeConfig>(e: impl std::error::Error + 'static) -> StorageError<C::NodeId> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

/// The murakami options a store opens its log with when given none: 8 MiB
/// segments, and syncs only when the flusher asks (group commit).
pub fn default_options() -> Options {
    Options::default().segment_size(8 << 20)
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    /// Opens (creating if needed) the store in `dir`: the murakami log in
    /// `dir/log`, the side files beside it.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<LogStore<C>> {
        LogStore::open_with(dir, default_options())
    }

    /// [`LogStore::open`] with the murakami options given (its sync policy
    /// is replaced: the flusher syncs).
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> io::Result<LogStore<C>> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let options = options.sync_policy(SyncPolicy::Explicit);
        let (writer, reader) = Log::open(dir.join(LOG_DIR), options).map_err(io::Error::other)?;
        let writer = writer.into_shared();
        let last_purged: Option<LogId<C::NodeId>> = match side_file::read(&dir, PURGED_FILE)? {
            Some(bytes) => Some(
                codec::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            ),
            None => None,
        };
        let first_index = last_purged.as_ref().map_or(0, |l| l.index + 1);
        if first_index > writer.next_offset() {
            // A purge past the end whose restart a crash stopped.
            writer.restart_at(first_index).map_err(io::Error::other)?;
        }
        let (committed_file, committed) = SlotFile::open(&dir, COMMITTED_FILE)?;
        let committed: Option<LogId<C::NodeId>> = match committed {
            Some(bytes) => codec::decode::<Option<LogId<C::NodeId>>>(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            None => None,
        };
        let shared = Arc::new(Shared {
            first_index: AtomicU64::new(first_index),
        });
        Ok(LogStore {
            flusher: Flusher::start(writer.clone())?,
            writer,
            reader: LogReader {
                reader,
                shared,
                _types: PhantomData,
            },
            dir,
            last_purged,
            committed,
            committed_file,
        })
    }

    /// Appends `entries` and runs `on_durable` once they are durable (or
    /// with the error that stopped them), from the flusher thread. What
    /// [`RaftLogStorage::append`] does with openraft's callback; public so
    /// that tests and tools can watch the durability of their own appends.
    pub async fn append_with<I>(&mut self, entries: I, on_durable: Callback) -> Result<(), C>
    where
        I: IntoIterator<Item = Entry<C>>,
    {
        let mut records = Vec::new();
        let mut first = None;
        for (i, entry) in entries.into_iter().enumerate() {
            let index = entry.get_log_id().index;
            let start = *first.get_or_insert(index);
            if index != start + i as u64 {
                return Err(write_error::<C>(io::Error::other(format!(
                    "entries not consecutive: index {index} at position {i} after {start}"
                ))));
            }
            records.push(codec::encode(&entry).map_err(write_error::<C>)?);
        }
        if let Some(start) = first {
            self.start_at(start).await?;
        }
        let range = self
            .writer
            .append_batch(&records)
            .map_err(write_error::<C>)?;
        self.flusher.push(range.end, on_durable);
        Ok(())
    }

    /// Makes sure the next append lands at `index`: it must be the log's
    /// next offset, unless the log holds no entry (then it restarts there).
    async fn start_at(&mut self, index: u64) -> Result<(), C> {
        let next = self.writer.next_offset();
        if index == next {
            return Ok(());
        }
        if next > self.reader.first_index() {
            return Err(write_error::<C>(io::Error::other(format!(
                "append at {index} would leave a hole or overwrite: the log's next index is {next}"
            ))));
        }
        self.flushed().await?;
        self.writer.restart_at(index).map_err(write_error::<C>)?;
        if self.last_purged.is_none() {
            self.reader
                .shared
                .first_index
                .store(index, Ordering::Release);
        }
        Ok(())
    }

    /// Waits (without blocking the task) until every entry appended so far
    /// is durable, so that what follows is ordered after it.
    async fn flushed(&self) -> Result<(), C> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.flusher.push(
            self.writer.next_offset(),
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        match rx.await {
            Ok(result) => result.map_err(write_error::<C>),
            Err(closed) => Err(write_error::<C>(closed)),
        }
    }

    /// The last purged log id (what the `purged` side file says).
    pub fn last_purged(&self) -> Option<LogId<C::NodeId>> {
        self.last_purged.clone()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl<C> LogReader<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    /// The first index openraft may be given (see the module docs).
    fn first_index(&self) -> u64 {
        self.shared
            .first_index
            .load(Ordering::Acquire)
            .max(self.reader.first_offset())
    }

    /// Entries in `range`, from the first index on, up to the log's end.
    fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> Result<Vec<Entry<C>>, C> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(self.first_index());
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        }
        .min(self.reader.next_offset());
        if start >= end {
            return Ok(Vec::new());
        }
        let mut cursor = self.reader.cursor(start).map_err(read_error::<C>)?;
        let mut entries = Vec::with_capacity((end - start).min(4096) as usize);
        for index in start..end {
            let entry = match cursor.next_ref().map_err(read_error::<C>)? {
                Some(record) => {
                    codec::decode::<Entry<C>>(record.payload).map_err(read_error::<C>)?
                }
                None => break,
            };
            if entry.get_log_id().index != index {
                return Err(read_error::<C>(io::Error::other(format!(
                    "record {index} holds the entry of index {}",
                    entry.get_log_id().index
                ))));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// The log id of the last entry, if the log holds any.
    fn last_log_id(&self) -> Result<Option<LogId<C::NodeId>>, C> {
        let next = self.reader.next_offset();
        if next <= self.first_index() {
            return Ok(None);
        }
        Ok(self
            .entries(next - 1..next)?
            .last()
            .map(|e| e.get_log_id().clone()))
    }
}

impl<C> RaftLogReader<C> for LogReader<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, C> {
        self.entries(range)
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, C> {
        self.reader.entries(range)
    }
}

fn vote_error<C: RaftTypeConfig>(
    write: bool,
    e: impl std::error::Error + 'static,
) -> StorageError<C::NodeId> {
    let e = AnyError::new(&e);
    if write {
        StorageIOError::write_vote(e).into()
    } else {
        StorageIOError::read_vote(e).into()
    }
}

/// Reads and decodes a side file.
fn load<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> io::Result<Option<T>> {
    match side_file::read(dir, name)? {
        Some(bytes) => codec::decode(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        None => Ok(None),
    }
}

/// Encodes and writes a side file durably.
fn save<T: serde::Serialize>(dir: &Path, name: &str, value: &T) -> io::Result<()> {
    let bytes = codec::encode(value).map_err(io::Error::other)?;
    side_file::write(dir, name, &bytes)
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, C> {
        let last = self.reader.last_log_id()?;
        Ok(LogState {
            last_purged_log_id: self.last_purged.clone(),
            last_log_id: last.or_else(|| self.last_purged.clone()),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), C> {
        self.flushed().await?;
        save(&self.dir, VOTE_FILE, vote).map_err(|e| vote_error::<C>(true, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, C> {
        load(&self.dir, VOTE_FILE).map_err(|e| vote_error::<C>(false, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId<C::NodeId>>) -> Result<(), C> {
        // Never a committed id above what this log holds durably: after a
        // crash openraft applies the entries up to it from this log.
        self.flushed().await?;
        let bytes = codec::encode(&committed).map_err(write_error::<C>)?;
        self.committed_file.save(&bytes).map_err(write_error::<C>)?;
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, C> {
        Ok(self.committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), C>
    where
        I: IntoIterator<Item = Entry<C>> + Send,
        I::IntoIter: Send,
    {
        self.append_with(
            entries,
            Box::new(move |result| callback.log_io_completed(result)),
        )
        .await
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), C> {
        if log_id.index < self.reader.first_index() {
            return Err(write_error::<C>(io::Error::other(format!(
                "truncate at {} below the first index {}",
                log_id.index,
                self.reader.first_index()
            ))));
        }
        self.flushed().await?;
        self.writer
            .truncate_from(log_id.index)
            .map_err(write_error::<C>)
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), C> {
        if self
            .last_purged
            .as_ref()
            .is_some_and(|p| p.index >= log_id.index)
        {
            return Ok(());
        }
        save(&self.dir, PURGED_FILE, &log_id).map_err(write_error::<C>)?;
        let first = log_id.index + 1;
        self.last_purged = Some(log_id);
        self.reader
            .shared
            .first_index
            .fetch_max(first, Ordering::AcqRel);
        if first >= self.writer.next_offset() {
            self.flushed().await?;
            self.writer.restart_at(first).map_err(write_error::<C>)?;
        } else {
            self.writer.purge_before(first).map_err(write_error::<C>)?;
        }
        Ok(())
    }
}
