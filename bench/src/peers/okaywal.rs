//! okaywal 0.3.1 (khonsulabs): a write-ahead log with checkpointing.
//!
//! **Sync**: `EntryWriter::commit` (entry.rs:57-78) → `reclaim`
//! (lib.rs:257-299) → `LogFile::synchronize` (log_file.rs:67-108), which
//! flushes the 16 KiB user-space buffer and calls `sync_data`, an
//! **fdatasync**; concurrent commits share it (group commit,
//! log_file.rs:72-80), and a new segment file's directory is fsynced
//! (lib.rs:281-288). There is no sync apart from a commit, and no append
//! apart from an entry: this adapter appends each record as a chunk of the
//! open entry (`write_chunk`, entry.rs:101-105) and syncs by committing it
//! and beginning the next. Buffered appends are chunks of one entry,
//! committed after the timing.
//!
//! **Reads**: `read_at(LogPosition)` (lib.rs:421-460) opens the file on
//! every call and reads through a `BufReader`; there is no iterator over
//! the live log. **Retention**: after `checkpoint_after_bytes` (default
//! 768 KiB) a segment is checkpointed and recycled, after which its
//! positions are gone (lib.rs:318-381): the adapter raises it to 1 TiB so
//! the log keeps what the benchmark wrote.

use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::okaywal::{
    Configuration, Entry, EntryId, LogManager, LogPosition, SegmentReader, WriteAheadLog,
};

use super::threads::{self, Append, Reading, Shared, Threads, Work};
use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "okaywal 0.3.1",
    sync: "commit = fdatasync (+ directory fsync for a new file)",
    open,
    reopen,
    threads: Threads {
        run,
        appends: None,
        writers: Ok(
            "the threads write chunks of one open entry behind a `Mutex`, committed \
                     after the timing (an entry holds the log's one active file until it \
                     commits, lib.rs:216-231, and a commit is an fdatasync)",
        ),
        durable: Ok(
            "an entry of one chunk per record, committed by its thread (concurrent \
                     commits share one fdatasync, log_file.rs:72-80)",
        ),
        readers: Ok("`read_at` on the shared `WriteAheadLog` (lib.rs:421-460)"),
        tail: Err(
            "no tailing reader: `read_at` needs the `LogPosition` only the writer's \
                   `write_chunk` returns (entry.rs:101-105), and there is no iterator over \
                   the live log",
        ),
    },
};

/// Counts the chunks recovery hands over (each read and CRC-checked by
/// `read_all_chunks`, log_file.rs:444-459).
#[derive(Debug, Default, Clone)]
struct Counter(Arc<Mutex<u64>>);

impl LogManager for Counter {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        if let Some(chunks) = entry.read_all_chunks()? {
            *self.0.lock().expect("counter") += chunks.len() as u64;
        }
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: EntryId,
        _reader: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

fn config(dir: &Path) -> Configuration {
    Configuration::default_for(dir).checkpoint_after_bytes(1 << 40)
}

struct OkayWal {
    wal: WriteAheadLog,
    positions: Vec<LogPosition>,
}

fn open(dir: &Path) -> Can<Box<dyn Peer>> {
    let wal = config(dir).open(Counter::default()).map_err(failed)?;
    Ok(Box::new(OkayWal {
        wal,
        positions: Vec::new(),
    }))
}

fn reopen(dir: &Path) -> Can<(Duration, u64)> {
    let counter = Counter::default();
    let start = Instant::now();
    let wal = config(dir).open(counter.clone()).map_err(failed)?;
    let elapsed = start.elapsed();
    wal.shutdown().map_err(failed)?;
    let n = *counter.0.lock().expect("counter");
    Ok((elapsed, n))
}

impl Peer for OkayWal {
    fn append(&mut self, n: u64, body: &[u8], sync_every: Option<u64>) -> Can<Duration> {
        let start = Instant::now();
        let mut entry = self.wal.begin_entry().map_err(failed)?;
        let mut since = 0;
        for _ in 0..n {
            let chunk = entry.write_chunk(body).map_err(failed)?;
            self.positions.push(chunk.position);
            since += 1;
            if Some(since) == sync_every {
                entry.commit().map_err(failed)?;
                entry = self.wal.begin_entry().map_err(failed)?;
                since = 0;
            }
        }
        if sync_every.is_some() && since > 0 {
            entry.commit().map_err(failed)?;
            return Ok(start.elapsed());
        }
        let elapsed = start.elapsed();
        if since > 0 {
            entry.commit().map_err(failed)?;
        } else {
            entry.rollback().map_err(failed)?;
        }
        Ok(elapsed)
    }

    fn append_batch(&mut self, batch: &[&[u8]]) -> Can<Duration> {
        let start = Instant::now();
        let mut entry = self.wal.begin_entry().map_err(failed)?;
        for record in batch {
            let chunk = entry.write_chunk(record).map_err(failed)?;
            self.positions.push(chunk.position);
        }
        // As for one-record appends, the commit (an fdatasync) is not timed.
        let elapsed = start.elapsed();
        entry.commit().map_err(failed)?;
        Ok(elapsed)
    }

    fn sync(&mut self) -> Can<()> {
        // Everything appended through this adapter is committed (and so
        // synced) when `append` returns; an empty commit syncs again.
        let entry = self.wal.begin_entry().map_err(failed)?;
        entry.commit().map_err(failed)?;
        Ok(())
    }

    fn read(&mut self, order: &[u64], buf: &mut Vec<u8>) -> Can<Duration> {
        let start = Instant::now();
        for &i in order {
            let mut chunk = self
                .wal
                .read_at(self.positions[i as usize])
                .map_err(failed)?;
            buf.clear();
            chunk.read_to_end(buf).map_err(failed)?;
            std::hint::black_box(buf.as_ptr());
        }
        Ok(start.elapsed())
    }

    fn iterate(&mut self, _buf: &mut Vec<u8>) -> Can<(Duration, u64)> {
        Err(
            "no iterator over the live log, only `read_at` by position and recovery at open \
             (lib.rs:421-460)"
                .into(),
        )
    }

    fn close(self: Box<Self>) -> Can<()> {
        self.wal.shutdown().map_err(failed)
    }
}

/// The log shared by threads: the positions of the records it was filled
/// with, and the entry the threads' buffered appends write into.
struct Sharing<'a> {
    wal: &'a WriteAheadLog,
    positions: &'a [LogPosition],
    entry: Mutex<Option<::okaywal::EntryWriter<'a>>>,
}

fn run(dir: &Path, records: u64, len: usize, work: Work<'_>) -> Can<u64> {
    let mut log = OkayWal {
        wal: config(dir).open(Counter::default()).map_err(failed)?,
        positions: Vec::new(),
    };
    threads::fill(&mut log, records, len)?;
    {
        let sharing = Sharing {
            wal: &log.wal,
            positions: &log.positions,
            entry: Mutex::new(None),
        };
        let done = work(&sharing);
        if let Some(entry) = sharing.entry.into_inner().map_err(failed)? {
            entry.commit().map_err(failed)?;
        }
        done?;
    }
    log.wal.shutdown().map_err(failed)?;
    reopen(dir).map(|(_, n)| n)
}

impl Shared for Sharing<'_> {
    fn writer(&self, _thread: usize) -> Can<Box<dyn Append + '_>> {
        Ok(Box::new(self))
    }

    fn reader(&self) -> Can<Box<dyn Reading + '_>> {
        Ok(Box::new(self))
    }
}

impl Append for &Sharing<'_> {
    fn append(&mut self, body: &[u8]) -> Can<()> {
        let mut entry = self.entry.lock().map_err(failed)?;
        if entry.is_none() {
            *entry = Some(self.wal.begin_entry().map_err(failed)?);
        }
        let entry = entry.as_mut().expect("begun");
        entry.write_chunk(body).map_err(failed)?;
        Ok(())
    }

    fn append_durable(&mut self, body: &[u8]) -> Can<()> {
        let mut entry = self.wal.begin_entry().map_err(failed)?;
        entry.write_chunk(body).map_err(failed)?;
        entry.commit().map_err(failed)?;
        Ok(())
    }
}

impl Reading for &Sharing<'_> {
    fn read(&mut self, i: u64, buf: &mut Vec<u8>) -> Can<()> {
        let mut chunk = self
            .wal
            .read_at(self.positions[i as usize])
            .map_err(failed)?;
        buf.clear();
        chunk.read_to_end(buf).map_err(failed)?;
        Ok(())
    }

    fn next(&mut self, _buf: &mut Vec<u8>) -> Can<bool> {
        Err("no tailing reader".into())
    }
}
