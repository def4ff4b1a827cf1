//! Readers in other processes (issue 13), for real: one writer process and
//! three reader processes, all children of the test, over one log directory.
//!
//! The children are this test binary run again (`--exact processes_child`),
//! told by environment variables what to be (the pattern of
//! `tests/kill.rs`). The readers start before the log exists and live
//! through every round; each round starts a writer process that runs a
//! script drawn from the seed: single appends and batches, under one sync
//! policy (`Explicit` with its own `sync()`s, `EveryRecords`, `Interval`,
//! `Always`, in turn), 4 or 8 KiB segments so that it rolls all the time,
//! `purge_before`, retention (a background cleaner, and `cleanup`),
//! `truncate_from`; the round ends with a `close()` (then the next writer
//! reopens the log), or with a `SIGKILL` from the test at a random moment
//! (then the next writer recovers it).
//!
//! Every payload is derived from its offset and its *history*: a number
//! each truncation and each writer open starts anew, written in the
//! payload with the offset. The writer keeps a ledger beside the log (an
//! append-only file of fixed-size, checksummed entries) saying what it is
//! about to do and what it did: a writer opening the log; history `h`
//! starting at offset `c` (written, and made durable, before each
//! `truncate_from`); a truncation that returned; a sync, a truncation or a
//! close about to make the records below `n` durable; a purge that
//! returned; a close about to start, and returned. From it anyone can tell,
//! for an offset and a history, whether that record may exist, and from
//! when it may no longer be read.
//!
//! Each reader follows the log with a cursor (`next_wait`, sometimes
//! `next_ref`), does random reads (`read`, `read_into`, `get` under a pin)
//! around its position, and now and then drops its `Reader` and opens a
//! new one. It checks, as it goes:
//!
//! - every record is byte-exact for its offset and a history declared at or
//!   below it;
//! - the cursor's offsets are consecutive (no gap, no duplicate: after a
//!   truncation it goes on at its own offset), its histories never go
//!   back, and it leaves a position only with `Error::Purged`;
//! - a random read never returns a record that a truncation (or a writer's
//!   recovery) that had returned before the read discarded, nor one below
//!   a purge that had returned; below a purge it gets `Error::Purged`;
//!   `OffsetOutOfRange` only past the end, and below what it read before
//!   only if a truncation was declared there. As soon as it sees in the
//!   ledger that a truncation returned, it reads where it cut (where a
//!   view that missed the truncation still has the old history);
//! - no error other than `Purged` and `OffsetOutOfRange` ever (a
//!   `Corrupt`, or a `Closed` from a wait, fails the test);
//! - `is_closed()` is true when the last writer closed, false while one is
//!   open or after one was killed; a wait on a closed log times out;
//! - reader 0 is `durable_only`: when the history it reads was written
//!   under `SyncPolicy::Explicit`, a sync (or close, or truncation, or a
//!   writer's recovery) covering the record must have begun before it is
//!   returned.
//!
//! The writer process checks, through a `Reader::open` of its own
//! directory, that a reader of the files sees exactly the records it
//! published, the last one byte-exact, and never more durability than it
//! has. The readers report what they saw over stdout. After each kill the
//! test recovers a copy of the directory (`Log::open`), and after the last
//! round the directory itself, and checks that every record in it is one
//! its histories allow, that every record the durable-only reader returned
//! is still there unless purged or a truncation was declared over it, and
//! that every `Purged` a reader got is below the log's first offset. After
//! some closes it waits until every reader has caught up with the closed
//! log and seen its waits time out there; after the last round it tells
//! them to finish, and they check `is_closed()` and the waits once more.
//!
//! Not checked: how soon a reader wakes (a lost wake-up costs a reader
//! one 50 ms wait, which nothing here measures; the loom models of
//! `wake/remote.rs` are for that).
//!
//! The default run takes a few seconds (3 seeds x 10 rounds of 100 to 400
//! records). `MURAKAMI_SOAK=1` runs 10 seeds x 60 rounds of 300 to 2300
//! records (about two minutes in release); `MURAKAMI_PROCS_SEED=n`
//! runs seed `n` alone (with the soak's sizes under `MURAKAMI_SOAK=1`). A
//! failure names the seed and round, and a child's failure comes with its
//! own message (`reader i: ...`, `writer r: ...`).
#![cfg(not(feature = "loom"))]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Rng;
use murakami::{Cursor, Error, Log, Options, Reader, Retention, SyncPolicy};

/// What the child is: `writer` or `reader`.
const ENV_ROLE: &str = "MURAKAMI_PROCS_ROLE";
const ENV_DIR: &str = "MURAKAMI_PROCS_DIR";
const ENV_LEDGER: &str = "MURAKAMI_PROCS_LEDGER";
const ENV_SEED: &str = "MURAKAMI_PROCS_CHILD_SEED";
/// A writer's round, a reader's index.
const ENV_NUMBER: &str = "MURAKAMI_PROCS_NUMBER";
/// A writer's script: records to append, and whether to close at the end
/// (`1`) or wait for the kill (`0`).
const ENV_BUDGET: &str = "MURAKAMI_PROCS_BUDGET";
const ENV_CLOSE: &str = "MURAKAMI_PROCS_CLOSE";
/// Starts each line a child sends.
const MARK: &str = "murakami-procs: ";
/// The name of the children's test function.
const CHILD_TEST: &str = "processes_child";

/// Reader 0 is durable-only; reader 2 never spins before it sleeps.
const READERS: usize = 3;
const MAX_PAYLOAD: usize = 1024;
/// How long a reader waits at a time.
const SLICE: Duration = Duration::from_millis(50);
/// How long the test waits for a child that should be making progress
/// before it calls it hung.
const WATCHDOG: Duration = Duration::from_secs(120);

/// The record at `offset` in `history`: its offset and history, then bytes
/// drawn from them and the seed. Mostly small, some of a few hundred bytes,
/// a few close to the limit (a handful per 4 KiB segment).
fn payload(seed: u64, offset: u64, history: u64) -> Vec<u8> {
    let mut rng = Rng::new(
        seed ^ offset.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ history.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
    );
    let r = rng.next();
    let len = 16
        + match r % 100 {
            0..=84 => (r >> 8) % 160,
            85..=97 => (r >> 8) % 700,
            _ => (r >> 8) % (MAX_PAYLOAD as u64 - 15),
        } as usize;
    let mut bytes = Vec::with_capacity(len + 8);
    bytes.extend_from_slice(&offset.to_le_bytes());
    bytes.extend_from_slice(&history.to_le_bytes());
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

// --------------------------------------------------------------- the ledger

/// What the writer says it is about to do, or did, in the ledger file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// Writer process `writer` is about to `Log::open` the log: whatever
    /// the log holds is recovered, and durable, from here on.
    Opening { writer: u64 },
    /// It opened it: recovery kept the offsets below `at`, and its records
    /// are of `history` from `at` on.
    Open {
        writer: u64,
        history: u64,
        at: u64,
        explicit: bool,
    },
    /// About to `truncate_from(at)`; records from here on are of `history`.
    /// Made durable before the call.
    Truncating { history: u64, at: u64 },
    /// The `truncate_from` that started `history` returned.
    Truncated { history: u64 },
    /// About to make every record below `upto` durable (`sync`, or the
    /// sync a `truncate_from` begins with).
    Syncing { upto: u64 },
    /// A purge or a cleanup returned: the log starts at `first` or later.
    Purged { first: u64 },
    /// About to `close` a log of `upto` records (which syncs them).
    Closing { upto: u64 },
    /// `close` returned.
    Closed { writer: u64, upto: u64 },
}

const ENTRY_LEN: usize = 32;

fn entry_check(head: u64, a: u64, b: u64) -> u64 {
    Rng::new(head ^ a.rotate_left(21) ^ b.rotate_left(42) ^ 0x6C65_6467_6572).next()
}

impl Entry {
    fn encode(self) -> [u8; ENTRY_LEN] {
        let (kind, writer, a, b) = match self {
            Entry::Opening { writer } => (1, writer, 0, 0),
            Entry::Open {
                writer,
                history,
                at,
                explicit,
            } => (2 | u64::from(explicit) << 8, writer, history, at),
            Entry::Truncating { history, at } => (3, 0, history, at),
            Entry::Truncated { history } => (4, 0, history, 0),
            Entry::Syncing { upto } => (5, 0, upto, 0),
            Entry::Purged { first } => (6, 0, first, 0),
            Entry::Closing { upto } => (7, 0, upto, 0),
            Entry::Closed { writer, upto } => (8, writer, upto, 0),
        };
        let head = kind | writer << 32;
        let mut bytes = [0u8; ENTRY_LEN];
        for (i, word) in [head, a, b, entry_check(head, a, b)].iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// `None` for bytes that are not a whole entry (one being written).
    fn decode(bytes: &[u8]) -> Option<Entry> {
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        let (head, a, b) = (word(0), word(1), word(2));
        if word(3) != entry_check(head, a, b) {
            return None;
        }
        let writer = head >> 32;
        Some(match head & 0xFF {
            1 => Entry::Opening { writer },
            2 => Entry::Open {
                writer,
                history: a,
                at: b,
                explicit: head >> 8 & 1 == 1,
            },
            3 => Entry::Truncating { history: a, at: b },
            4 => Entry::Truncated { history: a },
            5 => Entry::Syncing { upto: a },
            6 => Entry::Purged { first: a },
            7 => Entry::Closing { upto: a },
            8 => Entry::Closed { writer, upto: a },
            _ => return None,
        })
    }
}

/// A history as the ledger declared it.
#[derive(Clone, Copy, Debug)]
struct Declared {
    /// Its first offset.
    at: u64,
    /// Index of its declaration among the entries.
    index: usize,
    /// Written under `SyncPolicy::Explicit` (only `sync`, `truncate_from`,
    /// `close` and the next writer's recovery make its records durable).
    explicit: bool,
    /// Declared by a truncation (not by a writer's open).
    truncation: bool,
    /// The largest `upto` of the syncs and closes begun after it was
    /// declared (`u64::MAX` once a writer opened the log after it), as far
    /// as `scanned` entries of `covers` go.
    covered: u64,
    scanned: usize,
}

/// The ledger as read so far, by a reader, a writer or the test.
struct Ledger {
    file: File,
    /// Bytes of whole entries read.
    consumed: u64,
    entries: Vec<Entry>,
    histories: BTreeMap<u64, Declared>,
    /// Whether the last writer that opened the log syncs explicitly.
    explicit: bool,
    /// Entries that discard records of earlier histories at and past an
    /// offset, for good: `(index, history, at)` of each truncation that
    /// returned and each writer's open.
    discarders: Vec<(usize, u64, u64)>,
    /// `(index, first)` of each purge that returned.
    purges: Vec<(usize, u64)>,
    /// `(index, upto)` of each sync or close begun; `u64::MAX` for a
    /// writer's open (recovery).
    covers: Vec<(usize, u64)>,
}

impl Ledger {
    fn open(path: &Path) -> Ledger {
        let file = File::open(path).unwrap_or_else(|e| panic!("ledger {}: {e}", path.display()));
        let mut ledger = Ledger {
            file,
            consumed: 0,
            entries: Vec::new(),
            histories: BTreeMap::new(),
            explicit: false,
            discarders: Vec::new(),
            purges: Vec::new(),
            covers: Vec::new(),
        };
        ledger.refresh();
        ledger
    }

    /// Reads the entries written since the last call.
    fn refresh(&mut self) {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let at = self.consumed + bytes.len() as u64;
            match self.file.read_at(&mut chunk, at) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading the ledger: {e}"),
            }
        }
        for whole in bytes.chunks_exact(ENTRY_LEN) {
            let Some(entry) = Entry::decode(whole) else {
                break;
            };
            self.push(entry);
            self.consumed += ENTRY_LEN as u64;
        }
    }

    fn push(&mut self, entry: Entry) {
        let index = self.entries.len();
        let mut declare = |history, at, explicit, truncation| {
            let declared = Declared {
                at,
                index,
                explicit,
                truncation,
                covered: 0,
                scanned: 0,
            };
            if self.histories.insert(history, declared).is_some() {
                panic!("the ledger declares history {history} twice");
            }
        };
        match entry {
            Entry::Open {
                history,
                at,
                explicit,
                ..
            } => {
                declare(history, at, explicit, false);
                self.explicit = explicit;
                self.discarders.push((index, history, at));
            }
            Entry::Truncating { history, at } => declare(history, at, self.explicit, true),
            Entry::Truncated { history } => {
                let at = self.histories[&history].at;
                self.discarders.push((index, history, at));
            }
            Entry::Purged { first } => self.purges.push((index, first)),
            Entry::Syncing { upto } | Entry::Closing { upto } => self.covers.push((index, upto)),
            Entry::Opening { .. } => self.covers.push((index, u64::MAX)),
            Entry::Closed { .. } => {}
        }
        self.entries.push(entry);
    }

    fn max_history(&self) -> u64 {
        self.histories.keys().next_back().copied().unwrap_or(0)
    }

    /// Checks that `bytes`, read at `offset`, is the record some declared
    /// history wrote there, byte for byte; returns the history.
    fn check(&mut self, seed: u64, offset: u64, bytes: &[u8]) -> Result<u64, String> {
        if bytes.len() < 16 {
            return Err(format!(
                "record {offset} has {} bytes: not one of ours",
                bytes.len()
            ));
        }
        let said = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let history = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
        if said != offset {
            return Err(format!(
                "record {offset} is record {said} (history {history}): misplaced"
            ));
        }
        if !self.histories.contains_key(&history) {
            // Declared before it was written: the ledger has it by now.
            self.refresh();
        }
        let Some(declared) = self.histories.get(&history) else {
            return Err(format!(
                "record {offset} is of history {history}, which no writer declared \
                 (garbage, or a stale read of an old file?)"
            ));
        };
        if offset < declared.at {
            return Err(format!(
                "record {offset} is of history {history}, which starts at {}",
                declared.at
            ));
        }
        let expected = payload(seed, offset, history);
        if bytes != expected {
            let differs = bytes.iter().zip(&expected).position(|(a, b)| a != b);
            return Err(format!(
                "record {offset} of history {history} is not what was appended: {} bytes \
                 (expected {}), first difference at byte {differs:?}",
                bytes.len(),
                expected.len()
            ));
        }
        Ok(history)
    }

    /// Among the first `known` entries, one that discarded record `offset`
    /// of `history` for good: a truncation that had returned, or a writer's
    /// open, starting a later history at or below `offset`.
    fn discarded_by(&self, known: usize, offset: u64, history: u64) -> Option<Entry> {
        self.discarders
            .iter()
            .take_while(|(index, ..)| *index < known)
            .find(|&&(_, h, at)| h > history && at <= offset)
            .map(|&(index, ..)| self.entries[index])
    }

    /// The log's first offset after the purges among the first `known`
    /// entries had returned.
    fn purged_below(&self, known: usize) -> u64 {
        self.purges
            .iter()
            .take_while(|(index, _)| *index < known)
            .map(|&(_, first)| first)
            .max()
            .unwrap_or(0)
    }

    fn explicit(&self, history: u64) -> bool {
        self.histories[&history].explicit
    }

    /// Whether something that makes record `offset` of `history` durable
    /// had begun (as far as the ledger was read).
    fn durability_begun(&mut self, offset: u64, history: u64) -> bool {
        let declared = self
            .histories
            .get_mut(&history)
            .expect("a declared history");
        let start = self
            .covers
            .partition_point(|&(index, _)| index <= declared.index)
            .max(declared.scanned);
        for &(_, upto) in &self.covers[start..] {
            declared.covered = declared.covered.max(upto);
        }
        declared.scanned = self.covers.len();
        declared.covered > offset
    }

    /// Whether a truncation was declared (returned or not) that discards
    /// record `offset` of `history`.
    fn truncation_over(&self, offset: u64, history: u64) -> bool {
        self.histories
            .range(history + 1..)
            .any(|(_, d)| d.truncation && d.at <= offset)
    }

    /// Whether a truncation was ever declared at or below `offset`.
    fn truncation_at_or_below(&self, offset: u64) -> bool {
        self.histories
            .values()
            .any(|d| d.truncation && d.at <= offset)
    }

    /// Index and kind of the last entry that changes whether the log is
    /// closed: `Some(true)` after a close returned, `Some(false)` after a
    /// writer opened it (killed since or not), `None` in between (a close
    /// or an open under way) or before any writer.
    fn closed_state(&self) -> (usize, Option<bool>) {
        for (index, entry) in self.entries.iter().enumerate().rev() {
            match entry {
                Entry::Closed { .. } => return (index, Some(true)),
                Entry::Open { .. } => return (index, Some(false)),
                Entry::Opening { .. } | Entry::Closing { .. } => return (index, None),
                _ => {}
            }
        }
        (usize::MAX, None)
    }
}

/// The writer's end of the ledger.
struct LedgerOut(File);

impl LedgerOut {
    /// Opens the ledger for appending, dropping a torn last entry (a writer
    /// killed in the middle of one; readers never took it).
    fn open(path: &Path) -> LedgerOut {
        let valid = Ledger::open(path).consumed;
        let file = OpenOptions::new().append(true).open(path).unwrap();
        if file.metadata().unwrap().len() != valid {
            file.set_len(valid).unwrap();
        }
        LedgerOut(file)
    }

    /// One `write` of 32 bytes at a multiple of 32: never split across
    /// pages, so a kill cannot tear it.
    fn put(&mut self, entry: Entry) {
        self.0
            .write_all(&entry.encode())
            .expect("writing the ledger");
    }

    fn put_durably(&mut self, entry: Entry) {
        self.put(entry);
        self.0.sync_data().expect("syncing the ledger");
    }
}

// ------------------------------------------------------------ the children

/// The children: nothing unless the test started this process.
#[test]
fn processes_child() {
    let Ok(role) = std::env::var(ENV_ROLE) else {
        return;
    };
    let var = |name| std::env::var_os(name).unwrap_or_else(|| panic!("{name} not set"));
    let number = |name| -> u64 {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} not set"))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number"))
    };
    let dir = PathBuf::from(var(ENV_DIR));
    let ledger = PathBuf::from(var(ENV_LEDGER));
    let seed = number(ENV_SEED);
    match role.as_str() {
        "writer" => writer_child(
            &dir,
            &ledger,
            seed,
            number(ENV_NUMBER),
            number(ENV_BUDGET),
            number(ENV_CLOSE) == 1,
        ),
        "reader" => reader_child(&dir, &ledger, seed, number(ENV_NUMBER) as usize),
        other => panic!("unknown role {other}"),
    }
}

/// Sends one line to the test. The test gone, there is no one to report
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Explicit,
    EveryRecords,
    Interval,
    Always,
}

const MODES: [Mode; 4] = [
    Mode::Explicit,
    Mode::EveryRecords,
    Mode::Interval,
    Mode::Always,
];

fn mode_of(seed: u64, round: u64) -> Mode {
    MODES[((seed + round) % MODES.len() as u64) as usize]
}

fn writer_child(dir: &Path, ledger: &Path, seed: u64, round: u64, budget: u64, close: bool) {
    let mut rng = Rng::new(seed ^ (round + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let mode = mode_of(seed, round);
    let every = 1 + rng.below(32);
    let policy = match mode {
        Mode::Explicit => SyncPolicy::Explicit,
        Mode::EveryRecords => SyncPolicy::EveryRecords(every),
        Mode::Interval => SyncPolicy::Interval(Duration::from_millis(1 + rng.below(8))),
        Mode::Always => SyncPolicy::Always,
    };
    let segment_size = if rng.below(2) == 0 { 4096 } else { 8192 };
    let retention = rng.below(3) == 0;
    let mut options = Options::default()
        .segment_size(segment_size)
        .max_record_size(MAX_PAYLOAD)
        .sync_policy(policy)
        .prefault(rng.below(2) == 0);
    if retention {
        let kept = (3 + rng.below(10)) * segment_size;
        let every = Duration::from_millis(1 + rng.below(20));
        options = options.retention(Retention::none().max_bytes(kept).check_every(every));
    }
    let mut out = LedgerOut::open(ledger);
    let mut known = Ledger::open(ledger);
    let mut history = known.max_history() + 1;
    out.put(Entry::Opening { writer: round });
    let (mut writer, _) = Log::open(dir, options).expect("writer: open");
    out.put(Entry::Open {
        writer: round,
        history,
        at: writer.next_offset(),
        explicit: mode == Mode::Explicit,
    });
    say(format_args!("OPEN {history} {}", writer.next_offset()));
    // A reader of the files, in this process: it must never see more than
    // the writer has.
    let probe = Reader::open(dir).expect("writer: Reader::open of its own log");
    let mut appended = 0;
    let mut since_sync = 0;
    let mut step = 0u64;
    while appended < budget {
        step += 1;
        let next = writer.next_offset();
        let first = writer.first_offset();
        match rng.below(1000) {
            0..=7 if next > first => {
                let at = match segment_bases(dir, first, next) {
                    bases if !bases.is_empty() && rng.below(3) == 0 => {
                        bases[rng.index(bases.len())]
                    }
                    _ => next - 1 - rng.below((next - first).min(150)),
                };
                out.put(Entry::Syncing { upto: next });
                history += 1;
                out.put_durably(Entry::Truncating { history, at });
                match writer.truncate_from(at) {
                    Ok(()) => {
                        assert_eq!(writer.next_offset(), at, "writer {round}: truncate_from");
                        out.put(Entry::Truncated { history });
                    }
                    // The background cleaner removed `at` meanwhile; nothing
                    // was cut, the new history goes on from `next`.
                    Err(Error::Purged { .. }) if retention => {}
                    Err(e) => writer_failed(round, "truncate_from", e),
                }
                since_sync = 0;
            }
            8..=15 => {
                let upto = first + rng.below((next - first) / 3 + 2);
                let removed = writer
                    .purge_before(upto)
                    .unwrap_or_else(|e| writer_failed(round, "purge_before", e));
                out.put(Entry::Purged {
                    first: removed.first_offset,
                });
            }
            16..=20 if retention => {
                let removed = writer
                    .cleanup()
                    .unwrap_or_else(|e| writer_failed(round, "cleanup", e));
                out.put(Entry::Purged {
                    first: removed.first_offset,
                });
            }
            21..=30 => {
                out.put(Entry::Syncing { upto: next });
                assert_eq!(
                    writer
                        .sync()
                        .unwrap_or_else(|e| writer_failed(round, "sync", e)),
                    next
                );
                since_sync = 0;
            }
            31..=170 => {
                let n = 2 + rng.below(15);
                let records: Vec<Vec<u8>> = (next..next + n)
                    .map(|o| payload(seed, o, history))
                    .collect();
                let range = writer
                    .append_batch(&records)
                    .unwrap_or_else(|e| writer_failed(round, "append_batch", e));
                assert_eq!(range, next..next + n, "writer {round}: append_batch");
                appended += n;
                since_sync += n;
            }
            _ => {
                let offset = writer
                    .append(&payload(seed, next, history))
                    .unwrap_or_else(|e| writer_failed(round, "append", e));
                assert_eq!(offset, next, "writer {round}: append");
                appended += 1;
                since_sync += 1;
            }
        }
        if mode == Mode::Explicit && since_sync >= every {
            let next = writer.next_offset();
            out.put(Entry::Syncing { upto: next });
            assert_eq!(
                writer
                    .sync()
                    .unwrap_or_else(|e| writer_failed(round, "sync", e)),
                next
            );
            since_sync = 0;
        }
        if step % 8 == 0 {
            // Read in this order: what the files say, then what the writer
            // knows; the writer's durable offset only grows meanwhile.
            let seen_next = probe.next_offset();
            let seen_durable = probe.durable_offset();
            let (next, durable) = (writer.next_offset(), writer.durable_offset());
            assert_eq!(
                seen_next, next,
                "writer {round}: a reader of the files sees {seen_next} records, the writer \
                 published {next}"
            );
            assert!(
                seen_durable <= durable,
                "writer {round} ({mode:?}): a reader of the files sees {seen_durable} durable, \
                 the writer made only {durable} durable"
            );
            if next > writer.first_offset() {
                match probe.read(next - 1) {
                    Ok(last) => {
                        let of = known.check(seed, next - 1, &last);
                        assert!(
                            of.as_ref().is_ok_and(|&h| h <= history),
                            "writer {round}: a reader of the files reads record {}: {of:?}",
                            next - 1
                        );
                    }
                    // The background cleaner may have removed it (it is not
                    // in the active segment when that is empty).
                    Err(Error::Purged { .. }) if retention => {}
                    Err(e) => writer_failed(round, "the probe's read", e),
                }
            }
        }
        if step % 16 == 0 {
            say(format_args!("AT {}", writer.next_offset()));
        }
        // Spread the script out a little, so that kills land anywhere in it.
        if rng.below(4) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(400)));
        }
    }
    let next = writer.next_offset();
    if close {
        drop(probe);
        out.put(Entry::Closing { upto: next });
        writer
            .close()
            .unwrap_or_else(|e| writer_failed(round, "close", e));
        out.put(Entry::Closed {
            writer: round,
            upto: next,
        });
        say(format_args!("CLOSED {next}"));
        return;
    }
    say(format_args!("DONE {next}"));
    // Wait for the kill; end of input means the test is gone.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    std::process::exit(0);
}

fn writer_failed(round: u64, what: &str, e: Error) -> ! {
    panic!("writer {round}: {what}: {e:?}")
}

/// Bases of the segment files in `dir` in `first..next`.
fn segment_bases(dir: &Path, first: u64, next: u64) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .filter(|b| (first..next).contains(b))
        .collect();
    bases.sort_unstable();
    bases
}

/// What the test tells a reader over its stdin.
const RUNNING: u8 = 0;
const FINISH: u8 = 1;
const ORPHANED: u8 = 2;

/// Counts a reader reports at the end, in this order.
const STAT_NAMES: [&str; 10] = [
    "cursor records",
    "random reads (some right after a truncation)",
    "random reads purged",
    "random reads past the end",
    "cursor jumps over purged records",
    "history changes along a cursor",
    "old-history records a lagging cursor returned",
    "reader reopens",
    "waits that timed out on a closed log",
    "cursor records the cursor read without waiting",
];

struct Watcher {
    seed: u64,
    index: usize,
    durable: bool,
    dir: PathBuf,
    rng: Rng,
    ledger: Ledger,
    reader: Reader,
    cursor: Option<Cursor>,
    /// The offset the cursor must return next.
    expected: u64,
    /// The history of the cursor's last record.
    history: u64,
    /// One past the largest offset any read returned.
    seen_end: u64,
    /// The cursor's current run, `(history, start, end)`, not reported yet.
    run: Option<(u64, u64, u64)>,
    /// Closed writers whose whole log this reader has caught up with.
    idle_for: HashSet<u64>,
    stats: [u64; STAT_NAMES.len()],
    next_reopen: u64,
    /// Truncations and opens (the ledger's discarders) read after so far.
    cuts_checked: usize,
}

fn reader_child(dir: &Path, ledger: &Path, seed: u64, index: usize) {
    let control = Arc::new(AtomicU8::new(RUNNING));
    {
        let control = Arc::clone(&control);
        std::thread::spawn(move || {
            let mut line = String::new();
            let state = match std::io::stdin().read_line(&mut line) {
                Ok(n) if n > 0 && line.trim() == "FINISH" => FINISH,
                _ => ORPHANED,
            };
            control.store(state, Ordering::SeqCst);
        });
    }
    let mut rng = Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let next_reopen = 500 + rng.below(3000);
    let mut watcher = Watcher {
        seed,
        index,
        durable: index == 0,
        dir: dir.to_path_buf(),
        rng,
        ledger: Ledger::open(ledger),
        reader: open_reader(dir, index),
        cursor: None,
        expected: 0,
        history: 0,
        seen_end: 0,
        run: None,
        idle_for: HashSet::new(),
        stats: [0; STAT_NAMES.len()],
        next_reopen,
        cuts_checked: 0,
    };
    // The log may not exist yet: the cursor at 0 waits for it.
    watcher.cursor = Some(
        watcher
            .reader
            .cursor(0)
            .unwrap_or_else(|e| watcher.fail(format_args!("cursor(0) at the start: {e:?}"))),
    );
    loop {
        match control.load(Ordering::SeqCst) {
            RUNNING => watcher.step(),
            FINISH => break,
            _ => std::process::exit(0),
        }
    }
    watcher.finish();
}

fn open_reader(dir: &Path, index: usize) -> Reader {
    let reader =
        Reader::open(dir).unwrap_or_else(|e| panic!("reader {index}: Reader::open: {e:?}"));
    let reader = if index == 0 {
        reader.durable_only()
    } else {
        reader
    };
    if index == 2 {
        reader.spin(Duration::ZERO)
    } else {
        reader
    }
}

impl Watcher {
    fn fail(&self, what: std::fmt::Arguments<'_>) -> ! {
        panic!(
            "reader {}{}: {what} (cursor at {}, in history {})",
            self.index,
            if self.durable { " (durable-only)" } else { "" },
            self.expected,
            self.history
        )
    }

    fn step(&mut self) {
        // Fall behind now and then: a lagging cursor meets purges and
        // truncations from behind.
        if self.rng.below(300) == 0 {
            self.flush_run();
            std::thread::sleep(Duration::from_millis(self.rng.below(80)));
        }
        self.reads_after_cuts();
        if self.stats[0] >= self.next_reopen {
            self.next_reopen = self.stats[0] + 500 + self.rng.below(3000);
            self.flush_run();
            self.reader = open_reader(&self.dir, self.index);
            self.cursor = None;
            self.stats[7] += 1;
        }
        let wait = self.rng.below(8) != 0;
        let Some(cursor) = self.cursor.as_mut() else {
            self.reposition();
            return;
        };
        let got = if wait {
            cursor.next_wait(SLICE)
        } else {
            cursor.next_ref()
        }
        .map(|r| r.map(|record| (record.offset, record.payload.to_vec())));
        match got {
            Ok(Some((offset, bytes))) => {
                self.stats[9] += u64::from(!wait);
                self.cursor_record(offset, &bytes);
                if self.rng.below(6) == 0 {
                    self.random_read();
                }
            }
            Ok(None) => self.idle(wait),
            Err(Error::Purged { offset, first }) => {
                self.purged(offset, first, "the cursor");
                self.stats[4] += 1;
            }
            Err(e) => self.fail(format_args!("the cursor failed: {e:?}")),
        }
    }

    fn cursor_record(&mut self, offset: u64, bytes: &[u8]) {
        if offset != self.expected {
            self.fail(format_args!(
                "the cursor returned record {offset} where {} was due: a gap or a duplicate",
                self.expected
            ));
        }
        let history = self
            .ledger
            .check(self.seed, offset, bytes)
            .unwrap_or_else(|e| self.fail(format_args!("the cursor: {e}")));
        if history < self.history {
            self.fail(format_args!(
                "the cursor went back from history {} to {history} at record {offset}",
                self.history
            ));
        }
        if history > self.history && self.history != 0 {
            self.stats[5] += 1;
        }
        if history < self.ledger.max_history()
            && self
                .ledger
                .discarded_by(self.ledger.entries.len(), offset, history)
                .is_some()
        {
            self.stats[6] += 1;
        }
        self.check_durable(offset, history);
        self.history = history;
        self.expected = offset + 1;
        self.seen_end = self.seen_end.max(offset + 1);
        self.stats[0] += 1;
        match &mut self.run {
            Some((h, _, end)) if *h == history && *end == offset => *end += 1,
            _ => {
                self.flush_run();
                self.run = Some((history, offset, offset + 1));
            }
        }
        if self.run.is_some_and(|(_, start, end)| end - start >= 4096) {
            self.flush_run();
        }
    }

    fn flush_run(&mut self) {
        if let Some((history, start, end)) = self.run.take() {
            say(format_args!("RUN {history} {start} {end}"));
        }
    }

    /// A durable-only reader: a record of a history written under
    /// `SyncPolicy::Explicit` only once a sync covering it began.
    fn check_durable(&mut self, offset: u64, history: u64) {
        if !self.durable || !self.ledger.explicit(history) {
            return;
        }
        if !self.ledger.durability_begun(offset, history) {
            self.ledger.refresh();
            if !self.ledger.durability_begun(offset, history) {
                self.fail(format_args!(
                    "returned record {offset} of history {history} (explicit syncs) before any \
                     sync, truncation, close or recovery covering it began"
                ));
            }
        }
    }

    /// `Error::Purged` for `offset` from `what`: it must be below `first`;
    /// the cursor goes on from there.
    fn purged(&mut self, offset: u64, first: u64, what: &str) {
        if offset != self.expected || offset >= first {
            self.fail(format_args!(
                "{what}: Purged {{ offset: {offset}, first: {first} }}"
            ));
        }
        say(format_args!("PURGED {offset} {first}"));
        self.flush_run();
        self.cursor = None;
        self.expected = first;
    }

    /// Makes a cursor at `expected` (after a purge, or a new reader).
    fn reposition(&mut self) {
        match self.reader.cursor(self.expected) {
            Ok(cursor) => self.cursor = Some(cursor),
            Err(Error::Purged { offset, first }) => {
                self.purged(offset, first, "cursor()");
                self.stats[4] += 1;
            }
            // A truncation left the log shorter than where the cursor
            // stood: wait for the new history to get there.
            Err(Error::OffsetOutOfRange { offset, end, .. }) if offset > end => {
                match self.reader.wait_for(offset - 1, SLICE) {
                    Ok(true) => {}
                    Ok(false) => self.idle(true),
                    Err(e) => self.fail(format_args!("wait_for({}): {e:?}", offset - 1)),
                }
            }
            Err(e) => self.fail(format_args!("cursor({}): {e:?}", self.expected)),
        }
    }

    fn random_read(&mut self) {
        let offset = (self.expected + 8).saturating_sub(1 + self.rng.below(250));
        self.read_check(offset);
    }

    /// Right after the ledger shows a truncation (or a writer's open) that
    /// returned: reads where it cut, where a view that missed it would
    /// still have the old history.
    fn reads_after_cuts(&mut self) {
        self.ledger.refresh();
        while self.cuts_checked < self.ledger.discarders.len() {
            let (_, _, at) = self.ledger.discarders[self.cuts_checked];
            self.cuts_checked += 1;
            for offset in at..self.seen_end.min(at + 8) {
                self.read_check(offset);
            }
        }
    }

    /// Reads record `offset` (with `read`, `read_into` or `get`), and
    /// checks what comes back against what the ledger said before the
    /// read.
    fn read_check(&mut self, offset: u64) {
        self.ledger.refresh();
        let known = self.ledger.entries.len();
        let purged = self.ledger.purged_below(known);
        let outcome = match self.rng.below(3) {
            0 => self.reader.read(offset),
            1 => {
                let mut buf = vec![7; 3];
                self.reader.read_into(offset, &mut buf).map(|_| buf)
            }
            _ => {
                let guard = self.reader.pin();
                self.reader
                    .get(offset, &guard)
                    .map(|record| record.payload.to_vec())
            }
        };
        self.stats[1] += 1;
        match outcome {
            Ok(bytes) => {
                let history = self
                    .ledger
                    .check(self.seed, offset, &bytes)
                    .unwrap_or_else(|e| self.fail(format_args!("read({offset}): {e}")));
                if offset < purged {
                    self.fail(format_args!(
                        "read({offset}) returned a record after a purge to {purged} had returned"
                    ));
                }
                if let Some(entry) = self.ledger.discarded_by(known, offset, history) {
                    self.fail(format_args!(
                        "read({offset}) returned history {history}, which {entry:?} had discarded \
                         before the read began"
                    ));
                }
                self.check_durable(offset, history);
                self.seen_end = self.seen_end.max(offset + 1);
                say(format_args!("RUN {history} {offset} {}", offset + 1));
            }
            Err(Error::Purged { offset: o, first }) if o == offset && offset < first => {
                self.stats[2] += 1;
                say(format_args!("PURGED {offset} {first}"));
            }
            Err(Error::OffsetOutOfRange {
                offset: o,
                first,
                end,
            }) if o == offset && offset >= first && offset >= end => {
                self.stats[3] += 1;
                if offset < purged {
                    self.fail(format_args!(
                        "read({offset}) after a purge to {purged} had returned: out of range \
                         (first {first}, end {end}), not purged"
                    ));
                }
                if offset < self.seen_end {
                    self.ledger.refresh();
                    if !self.ledger.truncation_at_or_below(offset) {
                        self.fail(format_args!(
                            "read({offset}) is out of range (first {first}, end {end}), though \
                             this reader read up to {} and no truncation was ever declared at or \
                             below {offset}",
                            self.seen_end
                        ));
                    }
                }
            }
            Err(e) => self.fail(format_args!("read({offset}): {e:?}")),
        }
    }

    /// Nothing more for now (a wait timed out, if `waited`): checks what
    /// the reader says of the writer's state against the ledger, and tells
    /// the test once it caught up with a closed log.
    fn idle(&mut self, waited: bool) {
        self.flush_run();
        self.ledger.refresh();
        let (index, state) = self.ledger.closed_state();
        let Some(expect_closed) = state else {
            return;
        };
        let closed = self.reader.is_closed();
        self.ledger.refresh();
        if self.ledger.closed_state().0 != index {
            // A writer opened or closed meanwhile.
            return;
        }
        if closed != expect_closed {
            self.fail(format_args!(
                "is_closed() is {closed}, though the ledger's last word on it is {:?}",
                self.ledger.entries[index]
            ));
        }
        if let Entry::Closed { writer, upto } = self.ledger.entries[index] {
            self.stats[8] += u64::from(waited);
            if waited && self.expected >= upto && self.idle_for.insert(writer) {
                say(format_args!("IDLE {writer} {}", self.expected));
            }
        }
    }

    fn finish(mut self) {
        self.flush_run();
        self.ledger.refresh();
        match self.ledger.entries.last() {
            Some(Entry::Closed { .. }) => {}
            other => self.fail(format_args!(
                "told to finish, but the ledger's last entry is {other:?}"
            )),
        }
        if !self.reader.is_closed() {
            self.fail(format_args!("the last writer closed, is_closed() is false"));
        }
        // Waits at the end of a closed log time out: a writer may come back.
        match self
            .reader
            .wait_for(self.expected, Duration::from_millis(10))
        {
            Ok(false) => {}
            other => self.fail(format_args!(
                "wait_for({}) on a closed log: {other:?}",
                self.expected
            )),
        }
        if let Some(cursor) = &mut self.cursor {
            match cursor.next_wait(Duration::from_millis(10)) {
                Ok(None) => {}
                Ok(Some(record)) => {
                    let offset = record.offset;
                    self.fail(format_args!("a record {offset} after the end"))
                }
                Err(e) => self.fail(format_args!("next_wait on a closed log: {e:?}")),
            }
        }
        let stats: Vec<String> = self.stats.iter().map(u64::to_string).collect();
        say(format_args!("STATS {}", stats.join(" ")));
        say(format_args!("POS {}", self.expected));
    }
}

// ----------------------------------------------------------------- the test

/// Who sent a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// The writer of this round.
    Writer(u64),
    Reader(usize),
}

enum Event {
    Line(Who, String),
    /// Its stdout closed: it exited (or is about to).
    Gone(Who),
}

/// A child, its input, and its error output (read on a thread).
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
}

impl Proc {
    fn spawn(who: Who, envs: &[(&str, String)], tx: &mpsc::Sender<Event>) -> Proc {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness may have begun the line ("test ... ").
                let Some(at) = line.find(MARK) else {
                    continue;
                };
                if tx
                    .send(Event::Line(who, line[at + MARK.len()..].to_owned()))
                    .is_err()
                {
                    return;
                }
            }
            let _ = tx.send(Event::Gone(who));
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Proc {
            stdin: child.stdin.take(),
            child,
            stderr: Some(stderr),
        }
    }

    /// Waits for the child to end; its status and error output.
    fn reap(&mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        drop(self.stdin.take());
        let errors = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, errors)
    }
}

impl Drop for Proc {
    /// A failing test leaves no child behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a round ends.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// The writer closes the log and exits.
    Close,
    /// ...and the test waits until every reader caught up with it.
    CloseAndDrain,
    /// SIGKILL this long after the writer started (or at the end of its
    /// script): often while it opens (recovers) the log.
    KillSinceStart(Duration),
    /// SIGKILL once it has said how far it is `n` times (or at the end of
    /// its script).
    KillAfterLines(u64),
}

/// What the readers said.
#[derive(Default)]
struct Seen {
    /// Each reader's runs of records: `(history, start, end)`.
    runs: Vec<Vec<(u64, u64, u64)>>,
    /// `(reader, offset, first)` of each `Purged` a reader got.
    purged: Vec<(usize, u64, u64)>,
    /// Closed writers each reader caught up with.
    idle: Vec<HashSet<u64>>,
    stats: Vec<Option<Vec<u64>>>,
    positions: Vec<Option<u64>>,
}

#[derive(Default, Debug)]
struct Tally {
    rounds: u64,
    kills: u64,
    kills_before_open: u64,
    closes: u64,
    drains: u64,
    end_offset: u64,
    truncations: u64,
    purges: u64,
    histories: u64,
    final_records: u64,
    /// Records of the durable-only reader found again after a recovery
    /// (after each kill, and at the end).
    durable_checked: u64,
    /// Records a plain reader returned that a recovery did not keep, with
    /// no truncation to explain it (allowed: they were not durable).
    plain_lost: u64,
    stats: [u64; STAT_NAMES.len()],
}

struct Test {
    seed: u64,
    dir: PathBuf,
    ledger: PathBuf,
    rx: mpsc::Receiver<Event>,
    tx: mpsc::Sender<Event>,
    readers: Vec<Proc>,
    /// Readers that have finished (sent everything and exited).
    finished: Vec<bool>,
    seen: Seen,
}

#[test]
fn a_writer_process_and_reader_processes_agree_on_every_record() {
    let soak = std::env::var_os("MURAKAMI_SOAK").is_some();
    let rounds = if soak { 60 } else { 10 };
    let seeds: Vec<u64> = match std::env::var("MURAKAMI_PROCS_SEED") {
        Ok(seed) => vec![seed.parse().expect("MURAKAMI_PROCS_SEED is a number")],
        Err(_) if soak => (1..=10).collect(),
        Err(_) => vec![1, 2, 3],
    };
    let start = Instant::now();
    let mut total = Tally::default();
    for &seed in &seeds {
        let seed_start = Instant::now();
        let tally = run_seed(seed, rounds, soak);
        println!(
            "processes: seed {seed}: {tally:?}, {:.1?}",
            seed_start.elapsed()
        );
        total.rounds += tally.rounds;
        total.kills += tally.kills;
        total.kills_before_open += tally.kills_before_open;
        total.closes += tally.closes;
        total.drains += tally.drains;
        total.end_offset += tally.end_offset;
        total.truncations += tally.truncations;
        total.purges += tally.purges;
        total.histories += tally.histories;
        total.final_records += tally.final_records;
        total.durable_checked += tally.durable_checked;
        total.plain_lost += tally.plain_lost;
        for (sum, n) in total.stats.iter_mut().zip(tally.stats) {
            *sum += n;
        }
    }
    println!(
        "processes: {} seeds, {} rounds ({} SIGKILLs, {} of them before the log was open; {} \
         closes, {} drained), logs of {} offsets, {} histories, {} truncations, {} purges; \
         {} times a record the durable-only reader returned was found again after a recovery; \
         {} times one a plain reader returned was not; {:.1?}",
        seeds.len(),
        total.rounds,
        total.kills,
        total.kills_before_open,
        total.closes,
        total.drains,
        total.end_offset,
        total.histories,
        total.truncations,
        total.purges,
        total.durable_checked,
        total.plain_lost,
        start.elapsed()
    );
    for (name, n) in STAT_NAMES.iter().zip(total.stats) {
        println!("processes:   readers: {name}: {n}");
    }
    // The script guarantees these (a kill in round 1, a drained close at
    // the end, truncations in every seed's rounds): a run that did none of
    // them checked little.
    assert!(total.kills > 0 && total.drains > 0, "{total:?}");
    assert!(total.truncations > 0 && total.purges > 0, "{total:?}");
    assert!(total.stats[0] > 0 && total.durable_checked > 0, "{total:?}");
}

fn run_seed(seed: u64, rounds: u64, soak: bool) -> Tally {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ledger = tmp.path().join("ledger");
    File::create(&ledger).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut test = Test {
        seed,
        dir,
        ledger,
        rx,
        tx,
        readers: Vec::new(),
        finished: vec![false; READERS],
        seen: Seen {
            runs: vec![Vec::new(); READERS],
            idle: vec![HashSet::new(); READERS],
            stats: vec![None; READERS],
            positions: vec![None; READERS],
            ..Seen::default()
        },
    };
    // The readers start before the log exists.
    assert!(!test.dir.exists());
    for index in 0..READERS {
        let envs = test.envs("reader", index as u64);
        test.readers
            .push(Proc::spawn(Who::Reader(index), &envs, &test.tx));
    }
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut tally = Tally::default();
    for round in 0..rounds {
        let plan = match round {
            _ if round + 1 == rounds => Plan::CloseAndDrain,
            1 => Plan::KillAfterLines(rng.below(6)),
            2 => Plan::Close,
            _ => match rng.below(10) {
                0 | 1 => Plan::Close,
                2 | 3 => Plan::CloseAndDrain,
                4 => Plan::KillSinceStart(Duration::from_micros(rng.below(30_000))),
                _ => Plan::KillAfterLines(rng.below(12)),
            },
        };
        let budget = if soak {
            300 + rng.below(2000)
        } else {
            100 + rng.below(300)
        };
        test.round(round, plan, budget, &mut tally);
    }
    test.finish_readers();
    test.final_check(&mut tally);
    tally
}

impl Test {
    fn envs(&self, role: &str, number: u64) -> Vec<(&'static str, String)> {
        vec![
            (ENV_ROLE, role.to_owned()),
            (ENV_DIR, self.dir.display().to_string()),
            (ENV_LEDGER, self.ledger.display().to_string()),
            (ENV_SEED, self.seed.to_string()),
            (ENV_NUMBER, number.to_string()),
        ]
    }

    /// The next event: `Some(None)` for a reader's (handled here), the
    /// writer's line or end otherwise; `None` at `deadline`. A reader that
    /// exits before it is told to is a failure.
    fn next(&mut self, deadline: Instant) -> Option<Option<(Who, Option<String>)>> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let event = match self.rx.recv_timeout(wait) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Timeout) => return None,
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the test holds a sender"),
        };
        Some(match event {
            Event::Line(Who::Reader(i), line) => {
                self.reader_line(i, &line);
                None
            }
            Event::Gone(Who::Reader(i)) => {
                let (status, errors) = self.readers[i].reap();
                let done = self.seen.positions[i].is_some();
                assert!(
                    done && status.success(),
                    "seed {}: reader {i} ended with {status:?}{}:\n{errors}",
                    self.seed,
                    if done { "" } else { " before it was told to" }
                );
                self.finished[i] = true;
                None
            }
            Event::Line(who, line) => Some((who, Some(line))),
            Event::Gone(who) => Some((who, None)),
        })
    }

    fn reader_line(&mut self, i: usize, line: &str) {
        let fields: Vec<&str> = line.split(' ').collect();
        let numbers: Vec<u64> = fields[1..]
            .iter()
            .map(|f| {
                f.parse()
                    .unwrap_or_else(|_| panic!("reader {i}: bad line {line:?}"))
            })
            .collect();
        match (fields[0], numbers.as_slice()) {
            ("RUN", &[history, start, end]) => self.seen.runs[i].push((history, start, end)),
            ("PURGED", &[offset, first]) => self.seen.purged.push((i, offset, first)),
            ("IDLE", &[writer, _]) => {
                self.seen.idle[i].insert(writer);
            }
            ("STATS", stats) => self.seen.stats[i] = Some(stats.to_vec()),
            ("POS", &[position]) => self.seen.positions[i] = Some(position),
            _ => panic!("reader {i}: unexpected line {line:?}"),
        }
    }

    fn round(&mut self, round: u64, plan: Plan, budget: u64, tally: &mut Tally) {
        let close = matches!(plan, Plan::Close | Plan::CloseAndDrain);
        let context = format!(
            "seed {}, round {round} ({:?}, {plan:?}, {budget} records)",
            self.seed,
            mode_of(self.seed, round)
        );
        let mut envs = self.envs("writer", round);
        envs.push((ENV_BUDGET, budget.to_string()));
        envs.push((ENV_CLOSE, u64::from(close).to_string()));
        let who = Who::Writer(round);
        let mut writer = Proc::spawn(who, &envs, &self.tx);
        let started = Instant::now();
        let (mut opened, mut lines, mut finished) = (false, 0, false);
        let mut last = Instant::now();
        loop {
            let due = match plan {
                Plan::KillSinceStart(delay) => Some(started + delay),
                _ => None,
            };
            let kill_now = match plan {
                Plan::KillSinceStart(delay) => finished || started.elapsed() >= delay,
                Plan::KillAfterLines(n) => finished || lines >= n,
                _ => false,
            };
            if kill_now {
                break;
            }
            let deadline = due.unwrap_or(last + WATCHDOG).min(last + WATCHDOG);
            let event = self.next(deadline);
            let Some(event) = event else {
                if due.is_some_and(|t| Instant::now() >= t) {
                    continue;
                }
                panic!("{context}: the writer said nothing for {WATCHDOG:?}: hung?");
            };
            let Some((from, line)) = event else {
                continue;
            };
            if from != who {
                continue;
            }
            last = Instant::now();
            let Some(line) = line else {
                // It exited: after its close, or it failed.
                let (status, errors) = writer.reap();
                assert!(
                    close && finished && status.success(),
                    "{context}: the writer ended with {status:?}:\n{errors}"
                );
                break;
            };
            let mut words = line.split(' ');
            match (
                words.next(),
                words.next().map(|n| n.parse::<u64>().unwrap()),
            ) {
                (Some("OPEN"), _) => opened = true,
                (Some("AT"), _) => lines += 1,
                (Some("DONE"), Some(next)) => {
                    finished = true;
                    println!("processes: {context}: script done at {next}");
                }
                (Some("CLOSED"), Some(next)) => {
                    finished = true;
                    println!(
                        "processes: {context}: closed at {next} after {:.1?}",
                        started.elapsed()
                    );
                }
                _ => panic!("{context}: unexpected line from the writer: {line}"),
            }
        }
        tally.rounds += 1;
        if close {
            tally.closes += 1;
        } else {
            // A child that has already exited cannot be killed; `reap` says
            // how it ended.
            let _ = writer.child.kill();
            let (status, errors) = writer.reap();
            assert!(
                status.signal() == Some(libc::SIGKILL),
                "{context}: the writer was not killed but ended with {status:?}:\n{errors}"
            );
            tally.kills += 1;
            tally.kills_before_open += u64::from(!opened);
            self.check_copy(round, &context, tally);
            println!(
                "processes: {context}: SIGKILL after {:.1?}, {}",
                started.elapsed(),
                match (opened, finished) {
                    (false, _) => "before the log was open",
                    (true, false) => "in the middle of its script",
                    (true, true) => "at the end of its script",
                }
            );
        }
        if matches!(plan, Plan::CloseAndDrain) {
            tally.drains += 1;
            self.drain(round, &context);
        }
    }

    /// Waits until every reader caught up with the log writer `round`
    /// closed, and saw its waits time out there.
    fn drain(&mut self, round: u64, context: &str) {
        let deadline = Instant::now() + WATCHDOG;
        while !self.seen.idle.iter().all(|idle| idle.contains(&round)) {
            // Only a killed writer's last words can come now: ignored.
            let _ = self.next(deadline);
            if Instant::now() >= deadline {
                let late: Vec<usize> = (0..READERS)
                    .filter(|&i| !self.seen.idle[i].contains(&round))
                    .collect();
                panic!(
                    "{context}: readers {late:?} did not catch up with the closed log within \
                     {WATCHDOG:?}"
                );
            }
        }
    }

    /// Tells the readers to finish, and waits for their last words.
    fn finish_readers(&mut self) {
        for reader in &mut self.readers {
            let stdin = reader.stdin.as_mut().unwrap();
            writeln!(stdin, "FINISH").unwrap();
            stdin.flush().unwrap();
        }
        let deadline = Instant::now() + WATCHDOG;
        while !self.finished.iter().all(|&f| f) {
            let _ = self.next(deadline);
            if Instant::now() >= deadline {
                panic!(
                    "seed {}: readers did not finish within {WATCHDOG:?}: {:?}",
                    self.seed, self.finished
                );
            }
        }
    }

    /// Recovers the log in `dir` (`Log::open`) and checks it against the
    /// ledger and against what the readers said so far: every record is
    /// one its histories allow; every record the durable-only reader
    /// returned is still there, unless purged or a truncation was declared
    /// over it (what the other readers returned is only counted); every
    /// `Purged` a reader got is below the log's first offset. Returns the
    /// log's end offset and the ledger.
    fn check_recovered(&self, dir: &Path, context: &str, tally: &mut Tally) -> (u64, Ledger) {
        let seed = self.seed;
        let options = Options::default()
            .segment_size(4096)
            .max_record_size(MAX_PAYLOAD);
        let (writer, reader) = Log::open(dir, options)
            .unwrap_or_else(|e| panic!("{context}: the log does not open: {e:?}"));
        let mut ledger = Ledger::open(&self.ledger);
        let known = ledger.entries.len();
        let (first, end) = (reader.first_offset(), reader.next_offset());
        let mut histories = Vec::with_capacity((end - first) as usize);
        for offset in first..end {
            let bytes = reader
                .read(offset)
                .unwrap_or_else(|e| panic!("{context}: read({offset}): {e:?}"));
            let history = ledger
                .check(seed, offset, &bytes)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            if let Some(entry) = ledger.discarded_by(known, offset, history) {
                panic!(
                    "{context}: the log holds record {offset} of history {history}, which \
                     {entry:?} discarded"
                );
            }
            histories.push(history);
        }
        let in_log = |offset: u64| -> Option<u64> {
            (first..end)
                .contains(&offset)
                .then(|| histories[(offset - first) as usize])
        };
        for (i, runs) in self.seen.runs.iter().enumerate() {
            for &(history, start, stop) in runs {
                for offset in start.max(first)..stop {
                    if in_log(offset) == Some(history) {
                        tally.durable_checked += u64::from(i == 0);
                        continue;
                    }
                    if ledger.truncation_over(offset, history) {
                        continue;
                    }
                    if i == 0 {
                        panic!(
                            "{context}: the durable-only reader returned record {offset} of \
                             history {history}; after recovery the log has {:?} there (first \
                             {first}, end {end}), and no truncation was declared over it",
                            in_log(offset)
                        );
                    }
                    tally.plain_lost += 1;
                }
            }
        }
        for &(i, offset, purged_first) in &self.seen.purged {
            assert!(
                purged_first <= first,
                "{context}: reader {i} was told {offset} was purged (first {purged_first}), \
                 but the log still starts at {first}"
            );
        }
        writer.close().unwrap();
        (end, ledger)
    }

    /// After a kill: checks a copy, so that the next writer recovers the
    /// crash itself.
    fn check_copy(&self, round: u64, context: &str, tally: &mut Tally) {
        if !self.dir.exists() {
            return;
        }
        let copy = self.dir.with_file_name(format!("check-{round}"));
        common::copy_dir(&self.dir, &copy);
        let context = format!("{context}, a copy of the log after the kill");
        self.check_recovered(&copy, &context, tally);
        std::fs::remove_dir_all(&copy).unwrap();
    }

    /// At the end, after the last writer closed and the readers finished.
    fn final_check(&mut self, tally: &mut Tally) {
        let seed = self.seed;
        let context = format!("seed {seed}, the final log");
        let (end, ledger) = self.check_recovered(&self.dir.clone(), &context, tally);
        let options = Options::default()
            .segment_size(4096)
            .max_record_size(MAX_PAYLOAD);
        let (writer, reader) = Log::open(&self.dir, options).unwrap();
        assert!(
            writer.recovery_report().clean_shutdown,
            "{context}: the last writer closed the log, and the check after it too"
        );
        let first = reader.first_offset();
        writer.close().unwrap();
        for (i, position) in self.seen.positions.iter().enumerate() {
            let position = position.expect("every reader said where it stopped");
            assert!(
                position <= end || ledger.truncation_at_or_below(end),
                "{context}: reader {i}'s cursor stopped at {position}, past the end of the \
                 log ({end}), and no truncation explains it"
            );
        }
        for stats in &self.seen.stats {
            let stats = stats.as_ref().expect("every reader reported");
            for (sum, n) in tally.stats.iter_mut().zip(stats) {
                *sum += n;
            }
        }
        tally.final_records = end - first;
        tally.end_offset = end;
        tally.histories = ledger.max_history();
        let count = |f: fn(&Entry) -> bool| ledger.entries.iter().filter(|e| f(e)).count() as u64;
        tally.truncations = count(|e| matches!(e, Entry::Truncated { .. }));
        tally.purges = count(|e| matches!(e, Entry::Purged { .. }));
    }
}
