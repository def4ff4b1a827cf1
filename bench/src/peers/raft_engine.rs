//! raft-engine 0.4.2 (TiKV's log store): entries of many raft groups,
//! addressed by (group, raft index), in files it scans at open.
//!
//! **Sync**: `Engine::write(&mut batch, true)`: the write group's leader
//! appends every member's batch and issues one **fdatasync** if any asked
//! for it (engine.rs:157-174; env/log_fd/unix.rs:164-176), a group commit;
//! the directory is fsynced when a file rotates
//! (file_pipe_log/pipe.rs:175-187). `Engine::sync()` does nothing in
//! 0.4.2: it writes an empty batch with `sync`, and `write` returns early
//! for an empty batch (engine.rs:141-143, 232-235). So this adapter syncs
//! by the write of the n-th record (or, for a bare sync, of a one-key `put`)
//! with `sync = true`.
//!
//! **Entries** are rust-protobuf 2 messages whose raft index the
//! `MessageExt` gives (log_batch.rs:39-43): here a `BytesValue` holding
//! the payload, whose first 8 bytes carry the index (indexes of a group
//! must be contiguous, memtable.rs:372-395). One record is one `LogBatch`
//! of one entry and one `write`; a batch is one `LogBatch`. Batches above
//! 8 KiB are lz4-compressed by default: the adapter turns that off
//! (`batch_compression_threshold` 0), as the payloads (one byte repeated)
//! would compress unlike real data.
//!
//! **Reads**: `get_entry(group, index)` (engine.rs:300-318) reads and
//! decodes the whole entries block of the batch it was written in, then the
//! message; sequential: `fetch_entries_to` (engine.rs:325-346), into a
//! `Vec` of messages. **Open** rebuilds the in-memory index from every
//! file (`recovery_mode` `TolerateTailCorruption`, config.rs:129-150).

use std::path::Path;
use std::time::{Duration, Instant};

use ::protobuf::well_known_types::BytesValue;
use ::raft_engine::{Config, Engine, LogBatch, MessageExt, ReadableSize};

use super::threads::{self, Append, Reading, Shared, Threads, Work};
use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "raft-engine 0.4.2",
    sync: "`write(batch, true)` = fdatasync (group commit); `Engine::sync()` is a no-op",
    open,
    reopen,
    threads: Threads {
        run,
        appends: None,
        writers: Ok(
            "one raft group per thread (a group's indexes must be contiguous, \
                     memtable.rs:372-395), `write(batch, false)` on the shared `Engine`, whose \
                     write group has a leader write every member's batch (engine.rs:140-229)",
        ),
        durable: Ok(
            "`write(batch, true)`, a group per thread: the write group's leader \
                     issues one fdatasync for all its members (engine.rs:157-174)",
        ),
        readers: Ok("`get_entry` (engine.rs:300-318) on the shared `Engine`"),
        tail: Ok(
            "polling `get_entry(group, next index)` (engine.rs:300-318), which finds an \
                  entry once its `write` has returned",
        ),
    },
};

/// The one raft group the benchmark writes.
const GROUP: u64 = 1;

#[derive(Clone)]
struct Message;

impl MessageExt for Message {
    type Entry = BytesValue;

    fn index(entry: &BytesValue) -> u64 {
        let mut index = [0; 8];
        index.copy_from_slice(&entry.value[..8]);
        u64::from_le_bytes(index)
    }
}

fn config(dir: &Path) -> Config {
    Config {
        dir: dir.to_string_lossy().into_owned(),
        batch_compression_threshold: ReadableSize(0),
        ..Default::default()
    }
}

/// The entry of raft index `index` (from 1) with `body` as its payload.
fn entry(index: u64, body: &[u8]) -> BytesValue {
    let mut value = body.to_vec();
    value[..8].copy_from_slice(&index.to_le_bytes());
    let mut entry = BytesValue::new();
    entry.value = value;
    entry
}

struct RaftEngine {
    engine: Engine,
    /// Records written (the last raft index).
    records: u64,
}

fn open(dir: &Path) -> Can<Box<dyn Peer>> {
    let engine = Engine::open(config(dir)).map_err(failed)?;
    Ok(Box::new(RaftEngine { engine, records: 0 }))
}

fn reopen(dir: &Path) -> Can<(Duration, u64)> {
    let start = Instant::now();
    let engine = Engine::open(config(dir)).map_err(failed)?;
    let elapsed = start.elapsed();
    let n = match (engine.first_index(GROUP), engine.last_index(GROUP)) {
        (Some(first), Some(last)) => last + 1 - first,
        _ => 0,
    };
    Ok((elapsed, n))
}

impl Peer for RaftEngine {
    fn append(&mut self, n: u64, body: &[u8], sync_every: Option<u64>) -> Can<Duration> {
        if body.len() < 8 {
            return Err("a payload under 8 bytes has no room for the raft index".into());
        }
        let start = Instant::now();
        let mut since = 0;
        for _ in 0..n {
            self.records += 1;
            since += 1;
            let sync = Some(since) == sync_every;
            if sync {
                since = 0;
            }
            let mut batch = LogBatch::with_capacity(1);
            batch
                .add_entries::<Message>(GROUP, &[entry(self.records, body)])
                .map_err(failed)?;
            self.engine.write(&mut batch, sync).map_err(failed)?;
        }
        if sync_every.is_some() && since > 0 {
            self.sync()?;
        }
        Ok(start.elapsed())
    }

    fn append_batch(&mut self, batch: &[&[u8]]) -> Can<Duration> {
        let start = Instant::now();
        let entries: Vec<BytesValue> = batch
            .iter()
            .enumerate()
            .map(|(i, body)| entry(self.records + 1 + i as u64, body))
            .collect();
        let mut log_batch = LogBatch::with_capacity(entries.len());
        log_batch
            .add_entries::<Message>(GROUP, &entries)
            .map_err(failed)?;
        self.engine.write(&mut log_batch, false).map_err(failed)?;
        self.records += batch.len() as u64;
        Ok(start.elapsed())
    }

    fn sync(&mut self) -> Can<()> {
        // `Engine::sync` is a no-op: write something with `sync`.
        let mut batch = LogBatch::default();
        batch
            .put(GROUP, b"sync".to_vec(), b"1".to_vec())
            .map_err(failed)?;
        self.engine.write(&mut batch, true).map_err(failed)?;
        Ok(())
    }

    fn read(&mut self, order: &[u64], buf: &mut Vec<u8>) -> Can<Duration> {
        let start = Instant::now();
        for &i in order {
            let entry = self
                .engine
                .get_entry::<Message>(GROUP, i + 1)
                .map_err(failed)?
                .ok_or("failed: no entry")?;
            buf.clear();
            buf.extend_from_slice(&entry.value);
            std::hint::black_box(buf.as_ptr());
        }
        Ok(start.elapsed())
    }

    fn iterate(&mut self, buf: &mut Vec<u8>) -> Can<(Duration, u64)> {
        let start = Instant::now();
        let mut entries = Vec::new();
        self.engine
            .fetch_entries_to::<Message>(GROUP, 1, self.records + 1, None, &mut entries)
            .map_err(failed)?;
        for entry in &entries {
            buf.clear();
            buf.extend_from_slice(&entry.value);
            std::hint::black_box(buf.as_ptr());
        }
        Ok((start.elapsed(), entries.len() as u64))
    }

    fn close(self: Box<Self>) -> Can<()> {
        drop(self);
        Ok(())
    }
}

/// The groups the threads write: thread i writes group `GROUP + i`.
const MAX_THREADS: u64 = 64;

fn run(dir: &Path, records: u64, len: usize, work: Work<'_>) -> Can<u64> {
    let mut log = RaftEngine {
        engine: Engine::open(config(dir)).map_err(failed)?,
        records: 0,
    };
    threads::fill(&mut log, records, len)?;
    work(&log)?;
    let mut n = 0;
    for group in GROUP..GROUP + MAX_THREADS {
        if let (Some(first), Some(last)) =
            (log.engine.first_index(group), log.engine.last_index(group))
        {
            n += last + 1 - first;
        }
    }
    Ok(n)
}

impl Shared for RaftEngine {
    fn writer(&self, thread: usize) -> Can<Box<dyn Append + '_>> {
        let group = GROUP + thread as u64;
        if thread as u64 >= MAX_THREADS {
            return Err(format!("failed: more than {MAX_THREADS} threads"));
        }
        Ok(Box::new(Group {
            engine: &self.engine,
            group,
            last: self.engine.last_index(group).unwrap_or(0),
        }))
    }

    fn reader(&self) -> Can<Box<dyn Reading + '_>> {
        Ok(Box::new(Group {
            engine: &self.engine,
            group: GROUP,
            last: 0,
        }))
    }
}

/// One raft group of the shared engine, and its last index written (by a
/// writer) or read (by a tailing reader).
struct Group<'a> {
    engine: &'a Engine,
    group: u64,
    last: u64,
}

impl Group<'_> {
    fn write(&mut self, body: &[u8], sync: bool) -> Can<()> {
        if body.len() < 8 {
            return Err("a payload under 8 bytes has no room for the raft index".into());
        }
        let mut batch = LogBatch::with_capacity(1);
        batch
            .add_entries::<Message>(self.group, &[entry(self.last + 1, body)])
            .map_err(failed)?;
        self.engine.write(&mut batch, sync).map_err(failed)?;
        self.last += 1;
        Ok(())
    }

    fn get(&self, index: u64, buf: &mut Vec<u8>) -> Can<bool> {
        let Some(entry) = self
            .engine
            .get_entry::<Message>(self.group, index)
            .map_err(failed)?
        else {
            return Ok(false);
        };
        buf.clear();
        buf.extend_from_slice(&entry.value);
        Ok(true)
    }
}

impl Append for Group<'_> {
    fn append(&mut self, body: &[u8]) -> Can<()> {
        self.write(body, false)
    }

    fn append_durable(&mut self, body: &[u8]) -> Can<()> {
        self.write(body, true)
    }
}

impl Reading for Group<'_> {
    fn read(&mut self, i: u64, buf: &mut Vec<u8>) -> Can<()> {
        if self.get(i + 1, buf)? {
            Ok(())
        } else {
            Err("failed: no entry".into())
        }
    }

    fn next(&mut self, buf: &mut Vec<u8>) -> Can<bool> {
        let found = self.get(self.last + 1, buf)?;
        self.last += u64::from(found);
        Ok(found)
    }
}
