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

use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "wal-db 1.1.0",
    sync: "`sync` = fdatasync (group commit; no directory fsync)",
    open,
    reopen,
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
