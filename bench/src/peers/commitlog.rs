//! commitlog 0.2.0 (zowens): Kafka-style segments with an mmap'd index.
//!
//! **Sync: none that makes data durable.** `CommitLog::flush`
//! (lib.rs:512-515) calls `Segment::flush_sync` (segment.rs:152-154), which
//! is `File::flush()` — no system call for a `std::fs::File` — and
//! `Index::flush_sync` (index.rs:370-381), an `msync` of the index's whole
//! pages only. Segment data is never fsynced, nor is the directory (an
//! strace of a run shows 1 `msync`, 0 `fsync`, 0 `fdatasync`). So every
//! durable row says "cannot".
//!
//! **Reads**: `read(offset, ReadLimit)` (lib.rs:445-451): a binary search of
//! the index, then a `pread` into a fresh buffer whose messages' CRC32C are
//! checked (message.rs:391-427). Offsets are dense record numbers. A batch
//! (`append(&mut MessageBuf)`, lib.rs:363-369) must fit in
//! `message_max_bytes` (default 1,000,000 bytes, checked at lib.rs:385-387).
//! **Open** (file_set.rs:14-92) does not scan records: each index is
//! binary-searched for its end, with no CRC check.

use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use ::commitlog::message::{MessageBuf, MessageSet};
use ::commitlog::{CommitLog, LogOptions, ReadLimit};

use super::threads::{self, Append, Reading, Shared, Threads, Work};
use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "commitlog 0.2.0",
    sync: "`flush` does not sync segment data (a no-op `File::flush` plus an msync of the index)",
    open,
    reopen,
    threads: Threads {
        run,
        appends: None,
        writers: Ok(
            "behind an `RwLock`, as `append_msg` takes `&mut self` (lib.rs:353-359): \
                     the threads take turns",
        ),
        durable: Err(NO_SYNC),
        readers: Ok("`read` (`&self`, lib.rs:445-451) under the `RwLock`'s read lock"),
        tail: Ok(
            "polling `read(next offset)` under the read lock (the writer takes the \
                  write lock per append)",
        ),
    },
};

/// Why the durable rows cannot be measured.
const NO_SYNC: &str = "no real fsync: `flush` does not sync segment data (`File::flush`, \
                       segment.rs:152-154)";

/// Bytes a read asks for beyond the payload (the message header).
const HEADER_ROOM: usize = 64;

struct Commitlog {
    log: CommitLog,
    /// Payload length of the last append (reads ask for one record).
    len: usize,
}

fn open(dir: &Path) -> Can<Box<dyn Peer>> {
    let log = CommitLog::new(LogOptions::new(dir)).map_err(failed)?;
    Ok(Box::new(Commitlog { log, len: 0 }))
}

fn reopen(dir: &Path) -> Can<(Duration, u64)> {
    let start = Instant::now();
    let log = CommitLog::new(LogOptions::new(dir)).map_err(failed)?;
    let elapsed = start.elapsed();
    let mut peer = Commitlog { log, len: 0 };
    let (_, n) = peer.iterate(&mut Vec::new())?;
    Ok((elapsed, n))
}

impl Peer for Commitlog {
    fn append(&mut self, n: u64, body: &[u8], sync_every: Option<u64>) -> Can<Duration> {
        if sync_every.is_some() {
            return Err(NO_SYNC.into());
        }
        self.len = body.len();
        let start = Instant::now();
        for _ in 0..n {
            self.log.append_msg(body).map_err(failed)?;
        }
        Ok(start.elapsed())
    }

    fn append_batch(&mut self, batch: &[&[u8]]) -> Can<Duration> {
        let start = Instant::now();
        let mut buf = MessageBuf::default();
        for record in batch {
            buf.push(record).map_err(|e| format!("failed: {e:?}"))?;
        }
        self.log.append(&mut buf).map_err(failed)?;
        Ok(start.elapsed())
    }

    fn sync(&mut self) -> Can<()> {
        Err(NO_SYNC.into())
    }

    fn read(&mut self, order: &[u64], buf: &mut Vec<u8>) -> Can<Duration> {
        let limit = self.len + HEADER_ROOM;
        let start = Instant::now();
        for &i in order {
            let messages = self
                .log
                .read(i, ReadLimit::max_bytes(limit))
                .map_err(failed)?;
            let message = messages.iter().next().ok_or("failed: no record")?;
            buf.clear();
            buf.extend_from_slice(message.payload());
            std::hint::black_box(buf.as_ptr());
        }
        Ok(start.elapsed())
    }

    fn iterate(&mut self, buf: &mut Vec<u8>) -> Can<(Duration, u64)> {
        let start = Instant::now();
        let (mut next, mut n) = (0, 0);
        loop {
            let messages = self
                .log
                .read(next, ReadLimit::max_bytes(64 << 10))
                .map_err(failed)?;
            if messages.len() == 0 {
                break;
            }
            for message in messages.iter() {
                buf.clear();
                buf.extend_from_slice(message.payload());
                std::hint::black_box(buf.as_ptr());
                next = message.offset() + 1;
                n += 1;
            }
        }
        Ok((start.elapsed(), n))
    }

    fn close(self: Box<Self>) -> Can<()> {
        // `flush` is all commitlog has; it is what a user would call.
        let mut me = self;
        me.log.flush().map_err(failed)
    }
}

/// The log behind an `RwLock`, and the payload length reads ask for.
struct Sharing {
    log: RwLock<CommitLog>,
    len: usize,
}

fn run(dir: &Path, records: u64, len: usize, work: Work<'_>) -> Can<u64> {
    let mut log = Commitlog {
        log: CommitLog::new(LogOptions::new(dir)).map_err(failed)?,
        len,
    };
    threads::fill(&mut log, records, len)?;
    let sharing = Sharing {
        log: RwLock::new(log.log),
        len,
    };
    work(&sharing)?;
    let mut log = sharing.log.into_inner().map_err(failed)?;
    log.flush().map_err(failed)?;
    Ok(log.next_offset())
}

impl Shared for Sharing {
    fn writer(&self, _thread: usize) -> Can<Box<dyn Append + '_>> {
        Ok(Box::new(self))
    }

    fn reader(&self) -> Can<Box<dyn Reading + '_>> {
        Ok(Box::new(Tail { log: self, next: 0 }))
    }
}

impl Append for &Sharing {
    fn append(&mut self, body: &[u8]) -> Can<()> {
        let mut log = self.log.write().map_err(failed)?;
        log.append_msg(body).map_err(failed)?;
        Ok(())
    }

    fn append_durable(&mut self, _body: &[u8]) -> Can<()> {
        Err(NO_SYNC.into())
    }
}

/// A reader: the shared log, and the offset of the next record to tail.
struct Tail<'a> {
    log: &'a Sharing,
    next: u64,
}

impl Tail<'_> {
    /// Reads the record at `offset` into `buf`, if there is one.
    fn at(&self, offset: u64, buf: &mut Vec<u8>) -> Can<bool> {
        let limit = ReadLimit::max_bytes(self.log.len + HEADER_ROOM);
        let messages = self
            .log
            .log
            .read()
            .map_err(failed)?
            .read(offset, limit)
            .map_err(failed)?;
        let Some(message) = messages.iter().next() else {
            return Ok(false);
        };
        if message.offset() != offset {
            return Err(format!(
                "failed: record {} at offset {offset}",
                message.offset()
            ));
        }
        buf.clear();
        buf.extend_from_slice(message.payload());
        Ok(true)
    }
}

impl Reading for Tail<'_> {
    fn read(&mut self, i: u64, buf: &mut Vec<u8>) -> Can<()> {
        if self.at(i, buf)? {
            Ok(())
        } else {
            Err("failed: no record".into())
        }
    }

    fn next(&mut self, buf: &mut Vec<u8>) -> Can<bool> {
        let found = self.at(self.next, buf)?;
        self.next += u64::from(found);
        Ok(found)
    }
}
