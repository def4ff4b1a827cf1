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
//! the research for issue 15), so it has no concurrent rows.
//!
//! **Reads**: sequential `read()` borrows from the map (zero-copy,
//! reader.rs:118-145); a read by index is `seek(index)` (reader.rs:229-250),
//! a sparse index (every 256th record) and a walk of headers.

use std::path::Path;
use std::time::{Duration, Instant};

use ::khata_rs::Queue;

use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "khata-rs 0.1.1",
    sync: "`flush` = msync(MS_SYNC) of the whole 1 GiB map (no fsync, no directory fsync)",
    open,
    reopen,
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
