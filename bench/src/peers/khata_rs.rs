//! khata-rs 0.1.1: a Chronicle-Queue-style queue of mmap'd cycle files,
//! the closest to murakami's design.
//!
//! **Sync**: `Writer::flush` (writer.rs:104-109) → `Store::flush`
//! (store.rs:663-668) → `MmapMut::flush`, an **msync(MS_SYNC) of the whole
//! mapping** (memmap2 0.9 unix.rs); no fsync, no fdatasync, and no
//! directory fsync for a new cycle file. A `Writer`'s drop flushes too
//! (writer.rs:149-153): the adapter takes a writer per call of `append`
//! (stores are cached by the queue, queue.rs:268-290) and stops the clock
//! before dropping it, so buffered appends do not pay that msync.
//!
//! **Limits**: a cycle file has a fixed capacity (`block_size`, 64 MiB by
//! default; an append beyond it fails with `CapacityExceeded`,
//! store.rs:368-373): the adapter sets 1 GiB (a sparse file). Files roll by
//! wall clock (FastDaily); a reader-only reopen finds no FastDaily file
//! (its name does not parse back, cycle.rs:160-170), so reopening takes a
//! writer first, which opens today's file and walks its headers
//! (store.rs:215-238). There is no batch append through `Queue`
//! (`Store::append_batch` is behind the crate-private `acquire_store`,
//! queue.rs:269). Two writers on one queue corrupt each other (found in
//! the research for issue 15): concurrent writers share one behind a `Mutex`.
//!
//! **Reads**: sequential `read()` borrows from the map (zero-copy,
//! reader.rs:118-145); a read by index is `seek(index)` (reader.rs:229-250),
//! a sparse index (every 256th record) and a walk of headers.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::khata_rs::{Queue, Reader, Writer};

use super::threads::{self, Append, Reading, Shared, Threads, Work};
use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "khata-rs 0.1.1",
    sync: "`flush` = msync(MS_SYNC) of the whole 1 GiB map (no fsync, no directory fsync)",
    open,
    reopen,
    threads: Threads {
        run,
        appends: None,
        writers: Ok(
            "one `Writer` behind a `Mutex` (a `Writer` per thread corrupts the queue: \
                     `Store::append` reserves room by a plain load and store, \
                     store.rs:355-388)",
        ),
        durable: Ok(
            "the same `Writer`, `write` then `flush` (an msync of the whole 1 GiB \
                     map) under the `Mutex`: no group commit",
        ),
        readers: Ok(
            "a `Reader` per thread (`Queue` is `Sync`), `seek(index)` then `read()` \
                     (reader.rs:229-250)",
        ),
        tail: Ok(
            "a `Reader` polling `read()`, which returns `None` at the end \
                  (reader.rs:118-145)",
        ),
    },
};

/// Capacity of a cycle file.
const BLOCK: usize = 1 << 30;

fn build(dir: &Path) -> Can<Queue> {
    Queue::new(dir).block_size(BLOCK).build().map_err(failed)
}

struct Khata {
    queue: Queue,
    indexes: Vec<u64>,
}

fn open(dir: &Path) -> Can<Box<dyn Peer>> {
    Ok(Box::new(Khata {
        queue: build(dir)?,
        indexes: Vec::new(),
    }))
}

fn reopen(dir: &Path) -> Can<(Duration, u64)> {
    let start = Instant::now();
    let queue = build(dir)?;
    let writer = queue.writer().map_err(failed)?;
    let elapsed = start.elapsed();
    let mut reader = queue.reader().map_err(failed)?;
    reader.rewind().map_err(failed)?;
    let mut n = 0;
    while reader.read().map_err(failed)?.is_some() {
        n += 1;
    }
    drop(reader);
    drop(writer);
    Ok((elapsed, n))
}

impl Peer for Khata {
    fn append(&mut self, n: u64, body: &[u8], sync_every: Option<u64>) -> Can<Duration> {
        let mut writer = self.queue.writer().map_err(failed)?;
        let start = Instant::now();
        let mut since = 0;
        for _ in 0..n {
            self.indexes.push(writer.write(body).map_err(failed)?);
            since += 1;
            if Some(since) == sync_every {
                writer.flush().map_err(failed)?;
                since = 0;
            }
        }
        if sync_every.is_some() && since > 0 {
            writer.flush().map_err(failed)?;
        }
        let elapsed = start.elapsed();
        drop(writer);
        Ok(elapsed)
    }

    fn append_batch(&mut self, _batch: &[&[u8]]) -> Can<Duration> {
        Err("no batch append through `Queue` (`acquire_store` is crate-private)".into())
    }

    fn sync(&mut self) -> Can<()> {
        self.queue.writer().map_err(failed)?.flush().map_err(failed)
    }

    fn read(&mut self, order: &[u64], buf: &mut Vec<u8>) -> Can<Duration> {
        let mut reader = self.queue.reader().map_err(failed)?;
        let start = Instant::now();
        for &i in order {
            if !reader.seek(self.indexes[i as usize]).map_err(failed)? {
                return Err("failed: seek to a written index".into());
            }
            let record = reader.read().map_err(failed)?.ok_or("failed: no record")?;
            buf.clear();
            buf.extend_from_slice(record);
            std::hint::black_box(buf.as_ptr());
        }
        Ok(start.elapsed())
    }

    fn iterate(&mut self, buf: &mut Vec<u8>) -> Can<(Duration, u64)> {
        let mut reader = self.queue.reader().map_err(failed)?;
        let start = Instant::now();
        reader.rewind().map_err(failed)?;
        let mut n = 0;
        while let Some(record) = reader.read().map_err(failed)? {
            buf.clear();
            buf.extend_from_slice(record);
            std::hint::black_box(buf.as_ptr());
            n += 1;
        }
        Ok((start.elapsed(), n))
    }

    fn close(self: Box<Self>) -> Can<()> {
        drop(self);
        Ok(())
    }
}

/// The queue, the indexes of the records it was filled with, and the one
/// writer the threads share.
struct Sharing<'a> {
    log: &'a Khata,
    writer: Mutex<Writer<'a>>,
}

fn run(dir: &Path, records: u64, len: usize, work: Work<'_>) -> Can<u64> {
    let mut log = Khata {
        queue: build(dir)?,
        indexes: Vec::new(),
    };
    threads::fill(&mut log, records, len)?;
    let sharing = Sharing {
        log: &log,
        writer: Mutex::new(log.queue.writer().map_err(failed)?),
    };
    work(&sharing)?;
    drop(sharing);
    let mut reader = log.queue.reader().map_err(failed)?;
    reader.rewind().map_err(failed)?;
    let mut n = 0;
    while reader.read().map_err(failed)?.is_some() {
        n += 1;
    }
    Ok(n)
}

impl Shared for Sharing<'_> {
    fn writer(&self, _thread: usize) -> Can<Box<dyn Append + '_>> {
        Ok(Box::new(&self.writer))
    }

    fn reader(&self) -> Can<Box<dyn Reading + '_>> {
        Ok(Box::new(Tail {
            indexes: &self.log.indexes,
            reader: self.log.queue.reader().map_err(failed)?,
        }))
    }
}

impl Append for &Mutex<Writer<'_>> {
    fn append(&mut self, body: &[u8]) -> Can<()> {
        self.lock().map_err(failed)?.write(body).map_err(failed)?;
        Ok(())
    }

    fn append_durable(&mut self, body: &[u8]) -> Can<()> {
        let mut writer = self.lock().map_err(failed)?;
        writer.write(body).map_err(failed)?;
        writer.flush().map_err(failed)
    }
}

/// A reader of the queue: by index for the filled records, or in order.
struct Tail<'a> {
    indexes: &'a [u64],
    reader: Reader<'a>,
}

impl Reading for Tail<'_> {
    fn read(&mut self, i: u64, buf: &mut Vec<u8>) -> Can<()> {
        if !self.reader.seek(self.indexes[i as usize]).map_err(failed)? {
            return Err("failed: seek to a written index".into());
        }
        let record = self
            .reader
            .read()
            .map_err(failed)?
            .ok_or("failed: no record")?;
        buf.clear();
        buf.extend_from_slice(record);
        Ok(())
    }

    fn next(&mut self, buf: &mut Vec<u8>) -> Can<bool> {
        match self.reader.read().map_err(failed)? {
            Some(record) => {
                buf.clear();
                buf.extend_from_slice(record);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
