//! Real process kills: a child process appends and syncs, reporting every
//! durable offset the log acknowledged over a pipe; the parent kills it with
//! `SIGKILL` at a random moment, reopens the directory and checks that
//!
//! - every record below the largest acknowledged durable offset is back,
//!   byte-exact;
//! - everything the log holds is byte-exact: a prefix of what was appended,
//!   no corrupt or misplaced record, and the log opens (`Recovery::Strict`:
//!   a kill never counts as corruption);
//! - what an earlier round recovered is still there, unchanged;
//!
//! and then lets the next child recover the same directory, append and be
//! killed again, for several rounds.
//!
//! A kill keeps the page cache: everything the child wrote into its maps
//! survives it. So this checks process crashes (recovery of a log whose
//! writer died at any instruction: mid-append, mid-roll, mid-sync, while
//! recovering), not power loss; the crash simulation (`src/testing/crash.rs`),
//! `tests/durability.rs` and the model test simulate lost pages.
//!
//! The child is this test binary run again (`--exact kill_child`), told by
//! environment variables which directory, seed and round it has; without
//! them `kill_child` returns at once. Each round picks, from the seed, how
//! the child makes records durable: `sync()` every k records, with
//! `SyncPolicy::EveryRecords`, `Interval` or `Always`, single appends and
//! batches, or a `SharedWriter` with a few threads in `append_durable`.
//! Payloads are derived from the seed and a key written in their first
//! 8 bytes: the key is the offset for a single writer and (round, thread,
//! sequence number) for shared writers, whose offsets are not known in
//! advance; their sequence numbers must appear in order without gaps.
//!
//! The default run takes a few seconds (3 seeds x 8 rounds).
//! `MURAKAMI_SOAK=1` runs 8 seeds x 25 rounds (about 3 minutes, debug
//! build); `MURAKAMI_KILL_SEED=n` runs seed `n` alone (with the soak's
//! round count under `MURAKAMI_SOAK=1`).
#![cfg(not(feature = "loom"))]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Rng;
use murakami::{Log, Options, SyncPolicy};

/// Directory of the log, for the child.
const ENV_DIR: &str = "MURAKAMI_KILL_DIR";
/// Seed and round, for the child.
const ENV_SEED: &str = "MURAKAMI_KILL_CHILD_SEED";
const ENV_ROUND: &str = "MURAKAMI_KILL_ROUND";
/// Starts each line the child sends.
const MARK: &str = "murakami-kill: ";
/// The name of the child's test function.
const CHILD_TEST: &str = "kill_child";

const SEGMENT_SIZE: u64 = 256 << 10;
const MAX_PAYLOAD: usize = 48 << 10;
/// Payload bytes a child appends before it stops and waits for its kill.
const CAP_BYTES: usize = 8 << 20;
/// Marks a shared writer's key.
const SHARED: u64 = 1 << 63;
/// How long the parent waits for a line before it calls the child hung.
const WATCHDOG: Duration = Duration::from_secs(60);

fn options() -> Options {
    Options::default()
        .segment_size(SEGMENT_SIZE)
        .max_record_size(MAX_PAYLOAD)
}

/// The payload with key `key`: the key, then bytes drawn from it and the
/// seed. Mostly small, some of a few KiB, a few large enough that only a
/// handful fit in a segment.
fn payload(seed: u64, key: u64) -> Vec<u8> {
    let mut rng = Rng(seed ^ key.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let r = rng.next();
    let len = 8 + match r % 100 {
        0..=79 => (r >> 8) % 200,
        80..=97 => (r >> 8) % 4096,
        _ => (r >> 8) % (MAX_PAYLOAD as u64 - 8),
    } as usize;
    let mut bytes = Vec::with_capacity(len + 8);
    bytes.extend_from_slice(&key.to_le_bytes());
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn shared_key(round: u64, thread: u64, seq: u64) -> u64 {
    SHARED | round << 40 | thread << 32 | seq
}

/// How a child makes its records durable.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `sync()` every k records.
    Explicit,
    /// `SyncPolicy::EveryRecords(n)`.
    EveryRecords,
    /// `SyncPolicy::Interval`: a background thread syncs.
    Interval,
    /// `SyncPolicy::Always`.
    Always,
    /// A `SharedWriter`, threads in `append_durable`.
    SharedDurable,
    /// A `SharedWriter` under `SyncPolicy::Always`, threads in `append`.
    SharedAlways,
}

const MODES: [Mode; 6] = [
    Mode::Explicit,
    Mode::EveryRecords,
    Mode::Interval,
    Mode::Always,
    Mode::SharedDurable,
    Mode::SharedAlways,
];

fn mode_of(seed: u64, round: u64) -> Mode {
    MODES[((seed + round) % MODES.len() as u64) as usize]
}

// ---------------------------------------------------------------- the child

/// The child: does nothing unless the parent started this process.
#[test]
fn kill_child() {
    let Some(dir) = std::env::var_os(ENV_DIR) else {
        return;
    };
    let number = |name| -> u64 {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} not set"))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number"))
    };
    child(Path::new(&dir), number(ENV_SEED), number(ENV_ROUND));
}

/// Sends one line to the parent. The parent gone, there is no one to report
/// to: leave.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{MARK}{line}")
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

fn child(dir: &Path, seed: u64, round: u64) {
    let mut rng = Rng(seed ^ (round + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let mode = mode_of(seed, round);
    let every = 1 + rng.below(48);
    let policy = match mode {
        Mode::Explicit | Mode::SharedDurable => SyncPolicy::Explicit,
        Mode::EveryRecords => SyncPolicy::EveryRecords(every),
        Mode::Interval => SyncPolicy::Interval(Duration::from_millis(1 + rng.below(10))),
        Mode::Always | Mode::SharedAlways => SyncPolicy::Always,
    };
    let opts = options().prefault(rng.below(2) == 0).sync_policy(policy);
    let (mut writer, _reader) = Log::open(dir, opts).expect("child: open");
    // What recovery kept is reported durable from now on: an acknowledgement.
    say(format_args!("OPEN {}", writer.durable_offset()));
    match mode {
        Mode::SharedDurable | Mode::SharedAlways => {
            let shared = writer.into_shared();
            let threads = 2 + rng.below(3);
            let bytes = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for thread in 0..threads {
                    let (shared, bytes) = (&shared, &bytes);
                    s.spawn(move || {
                        let mut seq = 0;
                        while bytes.load(Ordering::Relaxed) < CAP_BYTES {
                            let p = payload(seed, shared_key(round, thread, seq));
                            let offset = match mode {
                                Mode::SharedAlways => shared.append(&p),
                                _ => shared.append_durable(&p),
                            }
                            .expect("child: shared append");
                            let durable = shared.durable_offset();
                            assert!(durable > offset, "returned before {offset} was durable");
                            say(format_args!("ACK {durable}"));
                            bytes.fetch_add(p.len(), Ordering::Relaxed);
                            seq += 1;
                        }
                    });
                }
            });
        }
        _ => {
            let mut next = writer.next_offset();
            let mut acked = writer.durable_offset();
            let mut since_sync = 0;
            let mut bytes = 0;
            while bytes < CAP_BYTES {
                let n = if rng.below(4) == 0 {
                    2 + rng.below(15)
                } else {
                    1
                };
                let records: Vec<Vec<u8>> = (next..next + n).map(|o| payload(seed, o)).collect();
                if n == 1 {
                    let offset = writer.append(&records[0]).expect("child: append");
                    assert_eq!(offset, next);
                } else {
                    let range = writer.append_batch(&records).expect("child: batch");
                    assert_eq!(range, next..next + n);
                }
                next += n;
                bytes += records.iter().map(Vec::len).sum::<usize>();
                since_sync += n;
                match mode {
                    Mode::Explicit if since_sync >= every => {
                        since_sync = 0;
                        assert_eq!(writer.sync().expect("child: sync"), next);
                    }
                    Mode::EveryRecords if since_sync >= every => {
                        since_sync = 0;
                        assert_eq!(writer.durable_offset(), next, "EveryRecords({every})");
                    }
                    Mode::Always => assert_eq!(writer.durable_offset(), next, "Always"),
                    _ => {}
                }
                let durable = writer.durable_offset();
                if durable > acked {
                    acked = durable;
                    say(format_args!("ACK {durable}"));
                }
            }
        }
    }
    say(format_args!("CAP"));
    // Wait for the kill; end of input means the parent is gone.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    std::process::exit(0);
}

// --------------------------------------------------------------- the parent

/// What the child said.
enum Line {
    Open(u64),
    Ack(u64),
    Cap,
}

/// What the parent does to end a round.
#[derive(Debug)]
enum Plan {
    /// Kill after this many acknowledgements (or at the cap).
    Acks(u64),
    /// Kill this long after the child started (or at the cap).
    SinceStart(Duration),
    /// Kill this long after the child opened the log (or at the cap).
    SinceOpen(Duration),
}

#[derive(Default, Debug)]
struct Tally {
    rounds: u64,
    kills_before_open: u64,
    kills_after_open: u64,
    kills_at_cap: u64,
    acks: u64,
    records_checked: u64,
    max_log_records: u64,
}

/// What the parent knows about the log, round after round.
#[derive(Default)]
struct Ledger {
    /// Key of every record recovered so far, by offset.
    keys: Vec<u64>,
    /// Largest durable offset ever acknowledged.
    acked: u64,
}

#[test]
fn sigkilled_producers_lose_nothing_they_acknowledged() {
    let soak = std::env::var_os("MURAKAMI_SOAK").is_some();
    let rounds = if soak { 25 } else { 8 };
    let seeds: Vec<u64> = match std::env::var("MURAKAMI_KILL_SEED") {
        Ok(seed) => vec![seed.parse().expect("MURAKAMI_KILL_SEED is a number")],
        Err(_) if soak => (1..=8).collect(),
        Err(_) => vec![1, 2, 3],
    };
    let start = Instant::now();
    let mut total = Tally::default();
    for &seed in &seeds {
        let tally = run_seed(seed, rounds);
        println!("kill: seed {seed}: {tally:?}");
        total.rounds += tally.rounds;
        total.kills_before_open += tally.kills_before_open;
        total.kills_after_open += tally.kills_after_open;
        total.kills_at_cap += tally.kills_at_cap;
        total.acks += tally.acks;
        total.records_checked += tally.records_checked;
        total.max_log_records = total.max_log_records.max(tally.max_log_records);
    }
    println!(
        "kill: {} seeds, {} rounds: {} SIGKILLs ({} before the log was open, {} at the byte cap), \
         {} acknowledgements, {} records checked, largest log {} records, {:.1?}",
        seeds.len(),
        total.rounds,
        total.kills_before_open + total.kills_after_open,
        total.kills_before_open,
        total.kills_at_cap,
        total.acks,
        total.records_checked,
        total.max_log_records,
        start.elapsed()
    );
    assert_eq!(
        total.kills_before_open + total.kills_after_open,
        total.rounds
    );
    assert!(
        total.kills_after_open > 0 && total.acks > 0,
        "no child got as far as acknowledging anything: {total:?}"
    );
}

fn run_seed(seed: u64, rounds: u64) -> Tally {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut ledger = Ledger::default();
    let mut tally = Tally::default();
    for round in 0..rounds {
        let plan = match rng.below(20) {
            // While the child starts, or while it recovers the log.
            0..=2 => Plan::SinceStart(Duration::from_micros(rng.below(40_000))),
            3..=10 => Plan::SinceOpen(Duration::from_micros(rng.below(120_000))),
            _ => Plan::Acks(1 + rng.below(300)),
        };
        let mode = mode_of(seed, round);
        let context = format!("seed {seed}, round {round}, {mode:?}, {plan:?}");
        let killed = run_child(&dir, seed, round, &plan, &context);
        tally.rounds += 1;
        tally.acks += killed.acks;
        if killed.opened {
            tally.kills_after_open += 1;
        } else {
            tally.kills_before_open += 1;
        }
        tally.kills_at_cap += u64::from(killed.at_cap);
        ledger.acked = ledger.acked.max(killed.acked);
        // Check a copy, so that the next child recovers the crash itself.
        let copy = tmp.path().join(format!("check-{round}"));
        copy_dir(&dir, &copy);
        let end = check(&copy, seed, &mut ledger, &context);
        std::fs::remove_dir_all(&copy).unwrap();
        tally.records_checked += end;
        tally.max_log_records = tally.max_log_records.max(end);
    }
    // Last, the directory itself: recover it, close it cleanly, open again.
    let context = format!("seed {seed}, after the last round");
    let end = check(&dir, seed, &mut ledger, &context);
    tally.records_checked += end;
    let (writer, reader) = Log::open(&dir, options()).unwrap();
    assert!(writer.recovery_report().clean_shutdown, "{context}");
    assert_eq!(reader.next_offset(), end, "{context}");
    writer.close().unwrap();
    tally
}

/// How a child's round ended.
struct Killed {
    opened: bool,
    at_cap: bool,
    acks: u64,
    /// Largest durable offset it acknowledged.
    acked: u64,
}

fn run_child(dir: &Path, seed: u64, round: u64, plan: &Plan, context: &str) -> Killed {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(ENV_DIR, dir)
        .env(ENV_SEED, seed.to_string())
        .env(ENV_ROUND, round.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Held until the kill: its end of input tells a child that outlives
    // the parent to go.
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let lines = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The harness may have begun the line ("test kill_child ... ").
            let Some(at) = line.find(MARK) else {
                continue;
            };
            let line = &line[at + MARK.len()..];
            let parsed = if let Some(n) = line.strip_prefix("ACK ") {
                Line::Ack(n.parse().unwrap())
            } else if let Some(n) = line.strip_prefix("OPEN ") {
                Line::Open(n.parse().unwrap())
            } else if line == "CAP" {
                Line::Cap
            } else {
                panic!("unexpected line from the child: {line}");
            };
            if tx.send(parsed).is_err() {
                break;
            }
        }
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut killed = Killed {
        opened: false,
        at_cap: false,
        acks: 0,
        acked: 0,
    };
    let mut exited_early = false;
    let mut opened_at = None;
    loop {
        let deadline = match plan {
            Plan::SinceStart(delay) => Some(started + *delay),
            Plan::SinceOpen(delay) => opened_at.map(|at: Instant| at + *delay),
            Plan::Acks(_) => None,
        };
        let due = match plan {
            Plan::Acks(n) => killed.acks >= *n,
            _ => deadline.is_some_and(|t| Instant::now() >= t),
        };
        if due || killed.at_cap {
            break;
        }
        let wait = deadline.map_or(WATCHDOG, |t| t.saturating_duration_since(Instant::now()));
        match rx.recv_timeout(wait) {
            Ok(line) => {
                take(line, &mut killed);
                if killed.opened && opened_at.is_none() {
                    opened_at = Some(Instant::now());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_none() {
                    let _ = child.kill();
                    panic!("{context}: the child said nothing for {WATCHDOG:?}: hung?");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                exited_early = true;
                break;
            }
        }
    }
    // A child that has already exited cannot be killed; `wait` shows how
    // it ended.
    let _ = child.kill();
    let status = child.wait().unwrap();
    drop(stdin);
    lines.join().unwrap();
    // Lines still in the pipe were written before the kill: they count.
    for line in rx.try_iter() {
        take(line, &mut killed);
    }
    let errors = errors.join().unwrap();
    println!(
        "kill: {context}: SIGKILL after {:.1?}, {}, {} acknowledgements up to {}",
        started.elapsed(),
        match (killed.opened, killed.at_cap) {
            (false, _) => "before the log was open",
            (true, false) => "while appending",
            (true, true) => "at the byte cap",
        },
        killed.acks,
        killed.acked
    );
    assert!(
        !exited_early && status.signal() == Some(libc::SIGKILL),
        "{context}: the child was not killed but ended with {status:?}:\n{errors}"
    );
    killed
}

fn take(line: Line, killed: &mut Killed) {
    match line {
        Line::Open(durable) => {
            killed.opened = true;
            killed.acked = killed.acked.max(durable);
        }
        Line::Ack(durable) => {
            killed.acks += 1;
            killed.acked = killed.acked.max(durable);
        }
        Line::Cap => killed.at_cap = true,
    }
}

/// Opens the log in `dir` (recovering it), and checks every record against
/// what was appended and what the ledger knows; returns the number of
/// records.
fn check(dir: &Path, seed: u64, ledger: &mut Ledger, context: &str) -> u64 {
    let (writer, reader) = Log::open(dir, options())
        .unwrap_or_else(|e| panic!("{context}: the log does not open after a kill: {e}"));
    assert_eq!(reader.first_offset(), 0, "{context}");
    let end = reader.next_offset();
    assert!(
        end >= ledger.acked,
        "{context}: {end} records recovered, {} were acknowledged durable",
        ledger.acked
    );
    assert!(
        end >= ledger.keys.len() as u64,
        "{context}: {end} records recovered, an earlier recovery had {}",
        ledger.keys.len()
    );
    // Next sequence number expected of each shared writer's thread.
    let mut streams: HashMap<u64, u64> = HashMap::new();
    let mut keys = Vec::with_capacity(end as usize);
    for offset in 0..end {
        let bytes = reader
            .read(offset)
            .unwrap_or_else(|e| panic!("{context}: record {offset}: {e}"));
        assert!(bytes.len() >= 8, "{context}: record {offset} too short");
        let key = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert!(
            bytes == payload(seed, key),
            "{context}: record {offset} (key {key:#x}) is not what was appended"
        );
        if key & SHARED == 0 {
            assert_eq!(key, offset, "{context}: record {offset} out of place");
        } else {
            let seq = key & 0xFFFF_FFFF;
            let expected = streams.entry(key >> 32).or_insert(0);
            assert_eq!(
                seq, *expected,
                "{context}: record {offset}: a shared writer's record {key:#x} out of order"
            );
            *expected += 1;
        }
        if let Some(&before) = ledger.keys.get(offset as usize) {
            assert_eq!(
                key, before,
                "{context}: record {offset} changed since an earlier recovery"
            );
        }
        keys.push(key);
    }
    ledger.keys = keys;
    writer.close().unwrap();
    end
}

/// Copies the regular files of `from` (if it exists: a child killed early
/// may not have made it) into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    if !from.exists() {
        return;
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
