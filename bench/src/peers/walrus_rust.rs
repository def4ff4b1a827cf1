//! walrus-rust 0.2.0 (nubskr): a topic WAL whose reads consume a cursor.
//!
//! **Sync: no sync call.** Durability is a process-wide `FsyncSchedule`,
//! kept in a `OnceLock` that the first `Walrus` of a process sets
//! (storage.rs:248-250): `SyncEach` opens data files `O_SYNC`
//! (storage.rs:19-26, 117-127) and fsyncs after every append or batch
//! (writer.rs:113-121, 308-315); `Milliseconds(n)` fsyncs from a background
//! thread every n ms (background.rs:22-144); `NoFsync` never does. The data
//! directory (`WALRUS_DATA_DIR`, config.rs:81-85) and other state are
//! process-wide statics too. So each walrus log here lives in a helper
//! process of its own (this binary again, driven over a pipe): `NoFsync`
//! for buffered appends and reads, `SyncEach` for "sync every 1"; "every
//! 10/100/1000" cannot be asked for. The concurrent and durable writer rows
//! run their threads in the helper too (`threads`).
//!
//! **Appends** return no position (walrus_write.rs:4-12); a batch is at most
//! 2,000 entries (config.rs:41). **Reads**: there is no read by position,
//! only `read_next` / `batch_read_for_topic` (walrus_read.rs:23, 359), which
//! consume the topic's cursor: a sequential pass is a drain (here by
//! `batch_read_for_topic` of 64 KiB, copying each entry into the buffer),
//! and each later pass drains a fresh copy of the records, appended to a
//! new topic before the timing. Seen here: a drain of a live log of
//! 100,000 records of 256 B ends after 67,384 of them (`batch_read_for_topic`
//! and `read_next` both find nothing more), on every pass, so the row says
//! "failed"; after a reopen the same log gives all of them. **Open** (`startup_chore`, walrus.rs:132-301)
//! reads every block of every file, and creates a new 1,000 MiB sparse file
//! each time (allocator.rs:19-21).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ::walrus_rust::{FsyncSchedule, ReadConsistency, Walrus};

use super::threads::{self, Threads};
use super::{Can, Kind, Peer, failed};

pub const KIND: Kind = Kind {
    name: "walrus-rust 0.2.0",
    sync: "no sync call: a process-wide schedule, `SyncEach` = O_SYNC files + fsync per append",
    open,
    reopen,
    threads: Threads {
        run: threads::unshared,
        appends: Some(threaded),
        writers: Ok(
            "threads of its helper process appending to one topic (`Walrus` is \
                     `Send + Sync`), whose writer takes a `Mutex` per append \
                     (writer.rs:62-67); the records are not counted (a drain of a live log \
                     stops early, see Reads: Peers)",
        ),
        durable: Ok(
            "the same under `SyncEach`: each append flushes its block under that \
                     `Mutex` (writer.rs:110-121), no group commit; not counted",
        ),
        readers: Err(NO_RANDOM),
        tail: Err(IN_HELPER),
    },
};

/// Why the tail row is not measured.
const IN_HELPER: &str = "measured in a helper process of its own (a process-wide fsync \
                         schedule and data directory, storage.rs:248-250, config.rs:81-85); \
                         a tailing reader is not wired into it";

/// The role of the helper process that holds one walrus log.
pub const ROLE: &str = "walrus-rust";
/// The helper's fsync schedule: `each` or `none`.
const SCHEDULE: &str = "MURAKAMI_BENCH_WALRUS_SYNC";
const NO_RANDOM: &str = "no read by position: reads consume a topic cursor \
                         (walrus_read.rs:23, 359)";
const NO_SYNC_EVERY: &str = "no sync call: only a process-wide schedule, an fsync per append \
                             (`SyncEach`) or every n ms (storage.rs:248-250)";

/// The log, in a helper process started at the first append (when the
/// schedule is known).
struct Remote {
    dir: std::path::PathBuf,
    helper: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
    synced: bool,
}

fn spawn(dir: &Path, schedule: &str) -> Can<(Child, ChildStdin, BufReader<ChildStdout>)> {
    let exe = std::env::current_exe().map_err(failed)?;
    let mut child = Command::new(exe)
        .env(crate::process::ROLE, ROLE)
        .env("WALRUS_DATA_DIR", dir)
        .env("WALRUS_QUIET", "1")
        .env(SCHEDULE, schedule)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(failed)?;
    let stdin = child.stdin.take().ok_or("failed: no stdin")?;
    let stdout = BufReader::new(child.stdout.take().ok_or("failed: no stdout")?);
    Ok((child, stdin, stdout))
}

/// Sends one command line; returns the numbers of the answer.
fn ask(stdin: &mut ChildStdin, stdout: &mut BufReader<ChildStdout>, line: &str) -> Can<Vec<u64>> {
    writeln!(stdin, "{line}").map_err(failed)?;
    stdin.flush().map_err(failed)?;
    let mut answer = String::new();
    stdout.read_line(&mut answer).map_err(failed)?;
    match answer.trim_end().split_once(' ') {
        Some(("ok", rest)) => rest.split(' ').map(|n| n.parse().map_err(failed)).collect(),
        Some(("err", why)) => Err(why.to_string()),
        _ => Err(format!("failed: the walrus helper said {answer:?}")),
    }
}

fn open(dir: &Path) -> Can<Box<dyn Peer>> {
    Ok(Box::new(Remote {
        dir: dir.to_path_buf(),
        helper: None,
        synced: false,
    }))
}

fn reopen(dir: &Path) -> Can<(Duration, u64)> {
    let (mut child, mut stdin, mut stdout) = spawn(dir, "none")?;
    let got = ask(&mut stdin, &mut stdout, "count");
    drop(stdin);
    let _ = child.wait();
    match got?.as_slice() {
        [ns, n] => Ok((Duration::from_nanos(*ns), *n)),
        other => Err(format!("failed: the walrus helper said {other:?}")),
    }
}

impl Remote {
    fn call(&mut self, line: &str, sync_each: bool) -> Can<Vec<u64>> {
        if self.helper.is_none() {
            let schedule = if sync_each { "each" } else { "none" };
            self.helper = Some(spawn(&self.dir, schedule)?);
            self.synced = sync_each;
        } else if self.synced != sync_each {
            return Err("a log's fsync schedule is fixed when it opens".into());
        }
        let (_, stdin, stdout) = self.helper.as_mut().expect("spawned");
        ask(stdin, stdout, line)
    }
}

/// `n` appends of `len` bytes by `threads` threads of a helper process
/// (durable ones under `SyncEach` if `durable`) to one topic of a fresh log
/// in `dir`: the wall time, timed in the helper, and the appends made.
fn threaded(dir: &Path, threads: usize, n: u64, len: usize, durable: bool) -> Can<(Duration, u64)> {
    let mut remote = Remote {
        dir: dir.to_path_buf(),
        helper: None,
        synced: false,
    };
    let answer = remote.call(&format!("threads {threads} {n} {len}"), durable);
    let closed = Box::new(remote).close();
    let answer = answer?;
    closed?;
    match answer.as_slice() {
        [ns, n] => Ok((Duration::from_nanos(*ns), *n)),
        other => Err(format!("failed: the walrus helper said {other:?}")),
    }
}

fn one(answer: Vec<u64>) -> Can<u64> {
    answer
        .first()
        .copied()
        .ok_or_else(|| "failed: empty answer".into())
}

impl Peer for Remote {
    fn append(&mut self, n: u64, body: &[u8], sync_every: Option<u64>) -> Can<Duration> {
        let sync_each = match sync_every {
            None => false,
            Some(1) => true,
            Some(_) => return Err(NO_SYNC_EVERY.into()),
        };
        let ns = one(self.call(&format!("append {n} {}", body.len()), sync_each)?)?;
        Ok(Duration::from_nanos(ns))
    }

    fn append_batch(&mut self, batch: &[&[u8]]) -> Can<Duration> {
        let len = batch.first().map_or(0, |b| b.len());
        let ns = one(self.call(&format!("batch {} {len}", batch.len()), false)?)?;
        Ok(Duration::from_nanos(ns))
    }

    fn sync(&mut self) -> Can<()> {
        Err(NO_SYNC_EVERY.into())
    }

    fn read(&mut self, _order: &[u64], _buf: &mut Vec<u8>) -> Can<Duration> {
        Err(NO_RANDOM.into())
    }

    fn iterate(&mut self, _buf: &mut Vec<u8>) -> Can<(Duration, u64)> {
        let sync_each = self.synced;
        match self.call("drain", sync_each)?.as_slice() {
            [ns, n] => Ok((Duration::from_nanos(*ns), *n)),
            other => Err(format!("failed: the walrus helper said {other:?}")),
        }
    }

    fn close(self: Box<Self>) -> Can<()> {
        if let Some((mut child, stdin, _)) = self.helper {
            drop(stdin);
            child.wait().map_err(failed)?;
        }
        Ok(())
    }
}

/// The helper process: one walrus log, driven by lines on stdin
/// (`append N LEN`, `batch N LEN`, `threads THREADS N LEN`, `drain`,
/// `count`), each answered on stdout by `ok NS [RECORDS]` or `err WHY`.
pub fn helper() {
    let schedule = match std::env::var(SCHEDULE).as_deref() {
        Ok("each") => FsyncSchedule::SyncEach,
        _ => FsyncSchedule::NoFsync,
    };
    let start = Instant::now();
    let wal = Walrus::with_consistency_and_schedule_for_key(
        "bench",
        ReadConsistency::AtLeastOnce {
            persist_every: 1 << 20,
        },
        schedule,
    );
    let opened = start.elapsed();
    let mut out = std::io::stdout().lock();
    let wal = match wal {
        Ok(wal) => wal,
        Err(e) => {
            let _ = writeln!(out, "err failed: {e}");
            return;
        }
    };
    // Records appended (to topic "t0"), their length, and the topic the
    // next drain reads.
    let (mut records, mut len, mut pass) = (0u64, 0usize, 0u64);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split(' ').collect();
        let answer = match words.as_slice() {
            ["append", n, l] => {
                let (n, l): (u64, usize) = (n.parse().unwrap_or(0), l.parse().unwrap_or(0));
                let body = crate::fixtures::payload(l);
                (records, len) = (records + n, l);
                let start = Instant::now();
                let mut result = Ok(());
                for _ in 0..n {
                    result = wal.append_for_topic("t0", &body);
                    if result.is_err() {
                        break;
                    }
                }
                result.map(|()| format!("ok {}", start.elapsed().as_nanos()))
            }
            ["batch", n, l] => {
                let (n, l): (usize, usize) = (n.parse().unwrap_or(0), l.parse().unwrap_or(0));
                let body = crate::fixtures::payload(l);
                let batch: Vec<&[u8]> = vec![&body; n];
                (records, len) = (records + n as u64, l);
                let start = Instant::now();
                wal.batch_append_for_topic("t0", &batch)
                    .map(|()| format!("ok {}", start.elapsed().as_nanos()))
            }
            ["threads", t, n, l] => {
                let (t, n, l) = (
                    t.parse().unwrap_or(1),
                    n.parse().unwrap_or(0),
                    l.parse().unwrap_or(0),
                );
                appends_by_threads(&wal, t, n, l)
                    .map(|(ns, done)| format!("ok {} {done}", ns.as_nanos()))
            }
            ["drain"] => drain(&wal, &mut pass, records, len),
            ["count"] => {
                let mut pass = 0;
                drain(&wal, &mut pass, 0, 0).map(|answer| {
                    let n = answer.rsplit(' ').next().unwrap_or("0").to_string();
                    format!("ok {} {n}", opened.as_nanos())
                })
            }
            _ => Ok(format!("err failed: unknown command {line:?}")),
        };
        let answer = answer.unwrap_or_else(|e| format!("err failed: {e}"));
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
}

/// Drains a topic: "t0" on the first pass, else a new topic holding a copy
/// of the `records` records of `len` bytes, appended before the timing.
fn drain(wal: &Walrus, pass: &mut u64, records: u64, len: usize) -> std::io::Result<String> {
    let topic = format!("t{pass}");
    if *pass > 0 {
        let body = crate::fixtures::payload(len);
        let mut left = records;
        while left > 0 {
            let n = left.min(2000);
            let batch: Vec<&[u8]> = vec![&body; n as usize];
            wal.batch_append_for_topic(&topic, &batch)?;
            left -= n;
        }
    }
    *pass += 1;
    let mut buf = Vec::new();
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        let entries = wal.batch_read_for_topic(&topic, 64 << 10, true)?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            buf.clear();
            buf.extend_from_slice(&entry.data);
            std::hint::black_box(buf.as_ptr());
            n += 1;
        }
    }
    Ok(format!("ok {} {n}", start.elapsed().as_nanos()))
}

/// `n` appends of `len` bytes to topic "t0" by `threads` threads: the wall
/// time from the first one's start to the last one's end, and the appends
/// made.
fn appends_by_threads(
    wal: &Walrus,
    threads: usize,
    n: u64,
    len: usize,
) -> std::io::Result<(Duration, u64)> {
    let body = crate::fixtures::payload(len);
    let go = std::sync::Barrier::new(threads);
    let times = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (go, body) = (&go, &body);
                s.spawn(move || -> std::io::Result<(Instant, Instant, u64)> {
                    go.wait();
                    let began = Instant::now();
                    let mine = crate::fixtures::share(n, threads, i);
                    for _ in 0..mine {
                        wal.append_for_topic("t0", body)?;
                    }
                    Ok((began, Instant::now(), mine))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a thread panicked")))
            })
            .collect::<std::io::Result<Vec<_>>>()
    })?;
    let first = times.iter().map(|t| t.0).min();
    let last = times.iter().map(|t| t.1).max();
    let elapsed = match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    };
    Ok((elapsed, times.iter().map(|t| t.2).sum()))
}
