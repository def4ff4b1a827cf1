//! wal-db 1.1.0 (jamesgober): a single-file (here) or segmented WAL with
//! group commit.
//!
//! **Sync**: `Wal::sync` (wal.rs:393-399) → `Commit::sync_to`
//! (commit.rs:124-174), a group commit whose leader calls `store.sync()` →
//! `durable_sync` = `sync_data`, an **fdatasync** (store.rs:341-347). No
//! directory is ever fsynced (the file's creation, store.rs:143-153, is not
//! made durable). `append` alone (wal.rs:327-361, a `pwrite` at a
//! `fetch_add`-reserved offset) is not durable.
//!
//! **Reads**: the `Lsn` an append returns is a byte offset; a read by it is
//! `iter_from(lsn).next()` (wal.rs:537-548), two `pread`s into an owned
//! `Vec`. There is no batch append (no "batch" in the crate).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ::wal_db::{Lsn, Wal};

use super::threads::{self, Append, Reading, Shared, Threads, Work};
use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "wal-db 1.1.0",
    sync: "`sync` = fdatasync (group commit; no directory fsync)",
    open,
    reopen,
    threads: Threads {
        run,
        appends: None,
        writers: Ok(
            "`append` (`&self`: a `fetch_add`-reserved `pwrite`, wal.rs:327-361) on \
                     one shared `Wal`",
        ),
        durable: Ok(
            "`append_and_sync` (wal.rs:426-431): concurrent syncs share one \
                     fdatasync (commit.rs:124-174)",
        ),
        readers: Ok("`iter_from(lsn).next()` (wal.rs:537-548) on the shared `Wal`"),
        tail: Ok(
            "polling `iter_from(next LSN).next()`, which reads up to the written \
                  watermark, synced or not (wal.rs:537-548, commit.rs:81-102); the next LSN \
                  is the last one plus its 8-byte header and payload (record.rs:34-49)",
        ),
    },
};

fn file(dir: &Path) -> PathBuf {
    dir.join("log.wal")
}

struct WalDb {
    wal: Wal,
    lsns: Vec<Lsn>,
}

fn open(dir: &Path) -> Can<Box<dyn Peer>> {
    let wal = Wal::open(file(dir)).map_err(failed)?;
    Ok(Box::new(WalDb {
        wal,
        lsns: Vec::new(),
    }))
}

fn reopen(dir: &Path) -> Can<(Duration, u64)> {
    let start = Instant::now();
    // Recovery: a CRC32C scan of the whole file, cutting a torn tail
    // (wal.rs:745-814).
    let wal = Wal::open(file(dir)).map_err(failed)?;
    let elapsed = start.elapsed();
    let mut n = 0;
    for record in wal.iter().map_err(failed)? {
        record.map_err(failed)?;
        n += 1;
    }
    Ok((elapsed, n))
}

impl Peer for WalDb {
    fn append(&mut self, n: u64, body: &[u8], sync_every: Option<u64>) -> Can<Duration> {
        let start = Instant::now();
        let mut since = 0;
        for _ in 0..n {
            self.lsns.push(self.wal.append(body).map_err(failed)?);
            since += 1;
            if Some(since) == sync_every {
                self.wal.sync().map_err(failed)?;
                since = 0;
            }
        }
        if sync_every.is_some() && since > 0 {
            self.wal.sync().map_err(failed)?;
        }
        Ok(start.elapsed())
    }

    fn append_batch(&mut self, _batch: &[&[u8]]) -> Can<Duration> {
        Err("no batch API".into())
    }

    fn sync(&mut self) -> Can<()> {
        self.wal.sync().map_err(failed)
    }

    fn read(&mut self, order: &[u64], buf: &mut Vec<u8>) -> Can<Duration> {
        let start = Instant::now();
        for &i in order {
            let lsn = self.lsns[i as usize];
            let record = self
                .wal
                .iter_from(lsn)
                .map_err(failed)?
                .next()
                .ok_or("failed: no record at a known LSN")?
                .map_err(failed)?;
            buf.clear();
            buf.extend_from_slice(record.data());
            std::hint::black_box(buf.as_ptr());
        }
        Ok(start.elapsed())
    }

    fn iterate(&mut self, buf: &mut Vec<u8>) -> Can<(Duration, u64)> {
        let start = Instant::now();
        let mut n = 0;
        for record in self.wal.iter().map_err(failed)? {
            let record = record.map_err(failed)?;
            buf.clear();
            buf.extend_from_slice(record.data());
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

fn run(dir: &Path, records: u64, len: usize, work: Work<'_>) -> Can<u64> {
    let mut log = WalDb {
        wal: Wal::open(file(dir)).map_err(failed)?,
        lsns: Vec::new(),
    };
    threads::fill(&mut log, records, len)?;
    work(&log)?;
    let mut n = 0;
    for record in log.wal.iter().map_err(failed)? {
        record.map_err(failed)?;
        n += 1;
    }
    Ok(n)
}

impl Shared for WalDb {
    fn writer(&self, _thread: usize) -> Can<Box<dyn Append + '_>> {
        Ok(Box::new(&self.wal))
    }

    fn reader(&self) -> Can<Box<dyn Reading + '_>> {
        Ok(Box::new(Tail { log: self, next: 0 }))
    }
}

impl Append for &Wal {
    fn append(&mut self, body: &[u8]) -> Can<()> {
        let _lsn = Wal::append(self, body).map_err(failed)?;
        Ok(())
    }

    fn append_durable(&mut self, body: &[u8]) -> Can<()> {
        let _lsn = self.append_and_sync(body).map_err(failed)?;
        Ok(())
    }
}

/// A reader: the shared log, and the LSN of the next record to tail.
struct Tail<'a> {
    log: &'a WalDb,
    next: u64,
}

impl Reading for Tail<'_> {
    fn read(&mut self, i: u64, buf: &mut Vec<u8>) -> Can<()> {
        let record = self
            .log
            .wal
            .iter_from(self.log.lsns[i as usize])
            .map_err(failed)?
            .next()
            .ok_or("failed: no record at a known LSN")?
            .map_err(failed)?;
        buf.clear();
        buf.extend_from_slice(record.data());
        Ok(())
    }

    fn next(&mut self, buf: &mut Vec<u8>) -> Can<bool> {
        let mut records = self
            .log
            .wal
            .iter_from(Lsn::new(self.next))
            .map_err(failed)?;
        let Some(record) = records.next() else {
            return Ok(false);
        };
        let record = record.map_err(failed)?;
        if record.lsn().get() != self.next {
            return Err(format!(
                "failed: a record at LSN {} after {}",
                record.lsn().get(),
                self.next
            ));
        }
        buf.clear();
        buf.extend_from_slice(record.data());
        // The frame: an 8-byte header, then the payload (record.rs:34-49).
        self.next += 8 + record.data().len() as u64;
        Ok(true)
    }
}
