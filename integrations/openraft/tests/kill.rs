//! A process killed between `append` and its flush callback: after a reopen,
//! every entry whose callback fired is there, and so is the last vote whose
//! `save_vote` returned.
//!
//! The child is this test binary run again (`--exact kill_child`): it
//! appends batches without waiting for their callbacks (as openraft does),
//! and its callbacks, which run on the flusher thread, report over stdout
//! the index up to which the log is durable. The parent SIGKILLs it after a
//! number of reports, reopens the store and checks; five rounds on the same
//! directory, each child going on from where the last one's log ends.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use murakami_openraft::LogStore;
use murakami_openraft::kv::{Request, TypeConfig};
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};

const ENV_DIR: &str = "MURAKAMI_RAFT_KILL_DIR";
const ENV_ROUND: &str = "MURAKAMI_RAFT_KILL_ROUND";
const MARK: &str = "@@";

fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 0), index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            value: format!("{term}:{index}:{}", "v".repeat((index % 50) as usize)),
        }),
    }
}

fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{MARK}{line}")
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// The child: does nothing unless the parent started this process.
#[test]
fn kill_child() {
    let Some(dir) = std::env::var_os(ENV_DIR) else {
        return;
    };
    let round: u64 = std::env::var(ENV_ROUND).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(child(Path::new(&dir), round));
}

async fn child(dir: &Path, round: u64) {
    let mut store: LogStore<TypeConfig> = LogStore::open(dir).unwrap();
    let term = round + 1;
    store.save_vote(&Vote::new(term, 1)).await.unwrap();
    say(format_args!("VOTE {term}"));
    let state = store.get_log_state().await.unwrap();
    let mut next = state.last_log_id.map_or(0, |l| l.index + 1);
    for batch in 0u64.. {
        let n = 1 + (batch * 7 + round) % 13;
        let entries: Vec<_> = (next..next + n).map(|i| entry(term, i)).collect();
        let end = next + n;
        store
            .append_with(
                entries,
                Box::new(move |r| {
                    r.unwrap();
                    say(format_args!("DURABLE {end}"));
                }),
            )
            .await
            .unwrap();
        next = end;
        if batch % 16 == 15 {
            // Let the flusher keep up now and then, as a network would.
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Runs a child until it has reported `reports` durable appends, kills it,
/// and returns (the highest durable end it reported, its vote's term).
fn run_child(dir: &Path, round: u64, reports: usize) -> (u64, u64) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "kill_child", "--nocapture", "--test-threads=1"])
        .env(ENV_DIR, dir)
        .env(ENV_ROUND, round.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let lines = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(at) = line.find(MARK) else { continue };
            if tx.send(line[at + MARK.len()..].to_string()).is_err() {
                break;
            }
        }
    });
    let mut seen = Seen::default();
    while seen.reports < reports {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.take(&line),
            Err(e) => {
                let _ = child.kill();
                panic!("round {round}: the child stopped reporting ({e:?})");
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines.join().unwrap();
    // Lines still in the pipe were written before the kill: they count.
    while let Ok(line) = rx.try_recv() {
        seen.take(&line);
    }
    (seen.durable, seen.vote)
}

/// What a child reported.
#[derive(Default)]
struct Seen {
    durable: u64,
    vote: u64,
    reports: usize,
}

impl Seen {
    fn take(&mut self, line: &str) {
        if let Some(n) = line.strip_prefix("DURABLE ") {
            self.durable = self.durable.max(n.parse().unwrap());
            self.reports += 1;
        } else if let Some(t) = line.strip_prefix("VOTE ") {
            self.vote = t.parse().unwrap();
        } else {
            panic!("unexpected line from the child: {line}");
        }
    }
}

#[test]
fn every_entry_whose_callback_fired_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut total = 0;
    for round in 0..5u64 {
        let (durable, vote) = run_child(dir.path(), round, 40 + 37 * round as usize);
        assert_eq!(vote, round + 1);
        runtime.block_on(async {
            let mut store: LogStore<TypeConfig> = LogStore::open(dir.path()).unwrap();
            assert_eq!(
                store.read_vote().await.unwrap(),
                Some(Vote::new(round + 1, 1))
            );
            let entries = store.try_get_log_entries(0..).await.unwrap();
            assert!(
                entries.len() as u64 >= durable,
                "round {round}: {} entries after the kill, {durable} were reported durable",
                entries.len()
            );
            // Dense from 0, each one whole and the one written at its index
            // (by the round that wrote it, which is at most this one).
            for (i, e) in entries.iter().enumerate() {
                let term = e.log_id.leader_id.term;
                assert!(term <= round + 1);
                assert_eq!(e, &entry(term, i as u64), "round {round}, index {i}");
            }
            total = entries.len();
        });
    }
    assert!(
        total > 200,
        "the children wrote too little to prove anything: {total}"
    );
}
