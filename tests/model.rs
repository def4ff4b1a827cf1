//! Model test: the log against a `Vec<Vec<u8>>`.
//!
//! Random sequences of appends, batch appends, syncs, reads, cursor scans,
//! truncations, restarts at another offset,
//! clean reopens and simulated crashes drive the log and the model side by
//! side. The model says: records are dense from 0 and byte-exact; after a
//! crash the log comes back as a prefix of what was appended that is at
//! least as long as the durable offset acknowledged before the crash.
//!
//! `PROPTEST_CASES` sets the number of cases (default 64).
#![cfg(not(feature = "loom"))]

mod common;

use std::path::PathBuf;

use common::{Loss, copy_dir, lose_after};
use murakami::{Cursor, Error, Log, Options, Reader, Retention, Writer};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append(usize, u8),
    Batch(Vec<(usize, u8)>),
    Sync,
    Read(usize),
    Scan(usize),
    Reopen,
    Crash(Loss, bool),
    Purge(usize),
    Cleanup,
    Truncate(usize),
    /// `Writer::restart_at`, anywhere from 0 to a little past the end.
    Restart(usize),
    /// Opens a cursor that lives across later operations.
    Follow(usize),
    /// Reads up to `.1` records through one of the living cursors.
    Step(usize, usize),
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(13)))
        .collect()
}

fn loss() -> impl Strategy<Value = Loss> {
    prop_oneof![
        Just(Loss::Zeroed),
        Just(Loss::Kept),
        Just(Loss::Truncated),
        (0usize..200).prop_map(Loss::Torn),
        (1usize..6000, any::<u64>()).prop_map(|(n, seed)| Loss::Garbage(n, seed)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..700, any::<u8>()).prop_map(|(len, seed)| Op::Append(len, seed)),
        2 => prop::collection::vec((0usize..300, any::<u8>()), 0..20).prop_map(Op::Batch),
        2 => Just(Op::Sync),
        3 => any::<usize>().prop_map(Op::Read),
        1 => any::<usize>().prop_map(Op::Scan),
        1 => Just(Op::Reopen),
        1 => (loss(), any::<bool>()).prop_map(|(loss, drop)| Op::Crash(loss, drop)),
        1 => any::<usize>().prop_map(Op::Purge),
        1 => Just(Op::Cleanup),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => any::<usize>().prop_map(Op::Restart),
        1 => any::<usize>().prop_map(Op::Follow),
        3 => (any::<usize>(), 1usize..40).prop_map(|(i, n)| Op::Step(i, n)),
    ]
}

fn options() -> Options {
    Options::default()
        .segment_size(4096)
        .max_record_size(1024)
        .retention(Retention::none().max_bytes(6 * 4096))
}

struct Harness {
    root: tempfile::TempDir,
    dir: PathBuf,
    generation: u32,
    writer: Option<Writer>,
    reader: Reader,
    /// A reader of the files (`Reader::open`), as another process has: it
    /// must agree with the model as the writer's own reader does, and it
    /// follows the log through closes and reopens.
    remote: Reader,
    model: Vec<Vec<u8>>,
    /// Offsets below this were purged (the model keeps their bytes, unused).
    first: usize,
    durable: u64,
    /// Cursors kept across appends, purges and truncations (of the current
    /// log: a reopen or a crash drops them with the reader they came from).
    cursors: Vec<Cursor>,
}

/// Cursors kept at once.
const CURSORS: usize = 4;

impl Harness {
    fn new() -> Harness {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("log0");
        let (writer, reader) = Log::open(&dir, options()).unwrap();
        let remote = Reader::open(&dir).unwrap();
        Harness {
            root,
            dir,
            generation: 0,
            writer: Some(writer),
            reader,
            remote,
            model: Vec::new(),
            first: 0,
            durable: 0,
            cursors: Vec::new(),
        }
    }

    fn writer(&mut self) -> &mut Writer {
        self.writer.as_mut().unwrap()
    }

    fn check_all(&self) {
        for reader in [&self.reader, &self.remote] {
            assert_eq!(reader.next_offset(), self.model.len() as u64);
            assert_eq!(reader.first_offset(), self.first as u64);
            for (i, expected) in self.model.iter().enumerate().skip(self.first) {
                assert_eq!(&reader.read(i as u64).unwrap(), expected, "record {i}");
            }
            if self.first > 0 {
                assert!(matches!(
                    reader.read(self.first as u64 - 1),
                    Err(Error::Purged { .. })
                ));
            }
        }
    }

    /// After a purge or cleanup: the first offset moved forward, never past
    /// `limit`, and the active segment stayed.
    fn moved_first(&mut self, limit: usize) {
        let first = self.reader.first_offset() as usize;
        assert!(first >= self.first && first <= limit.max(self.first));
        assert!(first <= self.model.len());
        self.first = first;
        self.check_all();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Append(len, seed) => {
                let payload = bytes(len, seed);
                let offset = self.writer().append(&payload).unwrap();
                assert_eq!(offset, self.model.len() as u64);
                self.model.push(payload);
            }
            Op::Batch(records) => {
                let payloads: Vec<Vec<u8>> = records.iter().map(|&(l, s)| bytes(l, s)).collect();
                let range = self.writer().append_batch(&payloads).unwrap();
                assert_eq!(range.start, self.model.len() as u64);
                self.model.extend(payloads);
                assert_eq!(range.end, self.model.len() as u64);
            }
            Op::Sync => {
                self.durable = self.writer().sync().unwrap();
                assert_eq!(self.durable, self.model.len() as u64);
                assert_eq!(self.reader.durable_offset(), self.durable);
                assert_eq!(self.remote.durable_offset(), self.durable);
            }
            Op::Read(i) => {
                let len = self.model.len();
                let i = i % (len + 2);
                for reader in [&self.reader, &self.remote] {
                    match reader.read(i as u64) {
                        Ok(bytes) => assert_eq!(bytes, self.model[i]),
                        Err(Error::OffsetOutOfRange { .. }) => assert!(i >= len),
                        Err(Error::Purged { .. }) => assert!(i < self.first),
                        Err(e) => panic!("read {i}: {e}"),
                    }
                }
            }
            Op::Purge(at) => {
                let at = at % (self.model.len() + 2);
                self.writer().purge_before(at as u64).unwrap();
                self.moved_first(at);
            }
            Op::Truncate(at) => {
                let at = self.first + at % (self.model.len() - self.first + 1);
                self.writer().truncate_from(at as u64).unwrap();
                if at < self.model.len() {
                    // Everything below `at` was synced first.
                    self.durable = at as u64;
                }
                self.model.truncate(at);
                assert_eq!(self.reader.durable_offset(), self.durable);
                assert_eq!(self.remote.durable_offset(), self.durable);
                self.check_all();
            }
            Op::Restart(at) => {
                let at = at % (self.model.len() + 100);
                self.writer().restart_at(at as u64).unwrap();
                // The model keeps offsets as indices: the records below the
                // restart are unreachable filler.
                self.model.resize(at, Vec::new());
                self.first = at;
                self.durable = at as u64;
                assert_eq!(self.reader.durable_offset(), self.durable);
                assert_eq!(self.remote.durable_offset(), self.durable);
                self.check_all();
            }
            Op::Cleanup => {
                self.writer().cleanup().unwrap();
                let len = self.model.len();
                self.moved_first(len);
            }
            Op::Scan(from) => {
                let from = self.first + from % (self.model.len() - self.first + 1);
                for reader in [&self.reader, &self.remote] {
                    let got: Vec<Vec<u8>> = reader
                        .cursor(from as u64)
                        .unwrap()
                        .map(|r| r.unwrap().payload)
                        .collect();
                    assert_eq!(got, self.model[from..]);
                }
            }
            Op::Reopen => {
                self.cursors.clear();
                self.writer.take().unwrap().close().unwrap();
                let (writer, reader) = Log::open(&self.dir, options()).unwrap();
                assert!(writer.recovery_report().clean_shutdown);
                self.writer = Some(writer);
                self.reader = reader;
                self.durable = self.model.len() as u64;
                self.check_all();
            }
            Op::Crash(loss, drop_new) => self.crash(loss, drop_new),
            Op::Follow(from) => {
                // Odd draws follow through the files.
                let reader = if from % 2 == 1 {
                    &self.remote
                } else {
                    &self.reader
                };
                let from = self.first + from % (self.model.len() - self.first + 1);
                let cursor = reader.cursor(from as u64).unwrap();
                if self.cursors.len() == CURSORS {
                    self.cursors.remove(0);
                }
                self.cursors.push(cursor);
            }
            Op::Step(i, n) => self.step(i, n),
        }
    }

    /// Reads up to `n` records through a living cursor: each one is the
    /// record the log holds now at that offset (never one a truncation
    /// discarded), in order, and the cursor stops at the end of the log.
    fn step(&mut self, i: usize, n: usize) {
        if self.cursors.is_empty() {
            return;
        }
        let i = i % self.cursors.len();
        let (model, first) = (&self.model, self.first);
        let cursor = &mut self.cursors[i];
        for _ in 0..n {
            let at = cursor.next_offset();
            match cursor.next_ref() {
                Ok(Some(record)) => {
                    assert_eq!(record.offset, at, "a cursor skipped or went back");
                    assert_eq!(
                        Some(&record.payload.to_vec()),
                        model.get(at as usize),
                        "cursor read at {at} what the log does not hold there"
                    );
                }
                Ok(None) => {
                    assert!(at >= model.len() as u64, "cursor stopped at {at}");
                    return;
                }
                Err(Error::Purged { .. }) => {
                    assert!((at as usize) < first, "cursor at {at} purged");
                    self.cursors.remove(i);
                    return;
                }
                Err(e) => panic!("cursor at {at}: {e}"),
            }
        }
    }

    fn crash(&mut self, loss: Loss, drop_new: bool) {
        self.generation += 1;
        self.cursors.clear();
        let copy = self.root.path().join(format!("log{}", self.generation));
        copy_dir(&self.dir, &copy);
        drop(self.writer.take());
        lose_after(&copy, self.durable, loss, drop_new);
        let (writer, reader) = Log::open(&copy, options())
            .unwrap_or_else(|e| panic!("reopen after {loss:?} at durable {}: {e}", self.durable));
        let n = reader.next_offset();
        assert_eq!(
            reader.first_offset(),
            self.first as u64,
            "purges survive crashes"
        );
        assert!(
            n >= self.durable && n <= self.model.len() as u64,
            "recovered {n} records; durable {}, appended {}",
            self.durable,
            self.model.len()
        );
        self.model.truncate(n as usize);
        self.first = self.first.min(n as usize);
        assert_eq!(reader.durable_offset(), n, "recovered records are durable");
        self.remote = Reader::open(&copy).unwrap();
        self.dir = copy;
        self.writer = Some(writer);
        self.reader = reader;
        self.durable = n;
        self.check_all();
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_log_agrees_with_a_vec_of_records(ops in prop::collection::vec(op(), 1..60)) {
        let mut harness = Harness::new();
        for op in ops {
            harness.apply(op);
        }
        harness.check_all();
    }
}
