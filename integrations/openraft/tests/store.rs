//! What openraft's suite checks only lightly: truncations in the middle of a
//! segment and at a segment's base, purges and reopens, many of both, purges
//! past the end, a vote that survives a crash and one that is damaged.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use murakami_openraft::LogStore;
use murakami_openraft::kv::{Request, TypeConfig};
use murakami_openraft::store::{COMMITTED_FILE, LOG_DIR, PURGED_FILE, VOTE_FILE};
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};

type Store = LogStore<TypeConfig>;

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

/// An entry that names its term and index in its payload (about 100 bytes).
fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Request::Set {
            key: format!("k{index}"),
            value: format!("{term}/{index}/{}", "x".repeat(80)),
        }),
    }
}

fn small(dir: &Path) -> Store {
    let options = murakami::Options::default().segment_size(4096);
    LogStore::open_with(dir, options).unwrap()
}

/// Appends entries `indices` of `term` and waits for their callback.
async fn append(store: &mut Store, term: u64, indices: std::ops::Range<u64>) {
    let (tx, rx) = mpsc::channel();
    let entries: Vec<_> = indices.map(|i| entry(term, i)).collect();
    store
        .append_with(entries, Box::new(move |r| tx.send(r).unwrap()))
        .await
        .unwrap();
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the callback fires")
        .expect("the append is durable");
}

async fn ids(store: &mut Store) -> Vec<LogId<u64>> {
    store
        .try_get_log_entries(0..)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.log_id)
        .collect()
}

fn expect(terms: &[(u64, std::ops::Range<u64>)]) -> Vec<LogId<u64>> {
    terms
        .iter()
        .flat_map(|(t, r)| r.clone().map(|i| log_id(*t, i)))
        .collect()
}

/// Base offsets of the murakami segments.
fn bases(dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir.join(LOG_DIR))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

#[tokio::test]
async fn truncations_inside_a_segment_and_at_its_base_then_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = small(dir.path());
    append(&mut store, 1, 0..100).await;
    let bases = bases(dir.path());
    assert!(bases.len() > 3, "entries span segments: {bases:?}");
    let base = bases[2];
    let middle = bases[1] + (base - bases[1]) / 2;
    assert!(middle > bases[1] && middle < base);

    store.truncate(log_id(1, base)).await.unwrap();
    assert_eq!(ids(&mut store).await, expect(&[(1, 0..base)]));
    append(&mut store, 2, base..base + 10).await;
    store.truncate(log_id(1, middle)).await.unwrap();
    assert_eq!(ids(&mut store).await, expect(&[(1, 0..middle)]));
    append(&mut store, 3, middle..middle + 30).await;
    let want = expect(&[(1, 0..middle), (3, middle..middle + 30)]);
    assert_eq!(ids(&mut store).await, want);
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(3, middle + 29)));
    drop(store);

    let mut store = small(dir.path());
    assert_eq!(ids(&mut store).await, want);
    append(&mut store, 3, middle + 30..middle + 31).await;
}

#[tokio::test]
async fn purge_then_reopen_gives_the_log_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = small(dir.path());
    append(&mut store, 1, 0..60).await;
    store.purge(log_id(1, 25)).await.unwrap();
    let entries = store.try_get_log_entries(0..).await.unwrap();
    assert_eq!(
        entries.first().unwrap().log_id,
        log_id(1, 26),
        "nothing at or below the purge"
    );
    drop(store);

    let mut store = small(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 25)));
    assert_eq!(state.last_log_id, Some(log_id(1, 59)));
    assert_eq!(ids(&mut store).await, expect(&[(1, 26..60)]));
    assert!(store.try_get_log_entries(20..27).await.unwrap().len() == 1);
}

#[tokio::test]
async fn a_purge_past_the_end_starts_the_log_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = small(dir.path());
    append(&mut store, 1, 0..10).await;
    // A follower installs a snapshot far ahead of its log.
    store.purge(log_id(4, 500)).await.unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(4, 500)));
    assert_eq!(state.last_log_id, Some(log_id(4, 500)));
    assert!(ids(&mut store).await.is_empty());
    assert_eq!(bases(dir.path()), [501], "the old segments are gone");
    append(&mut store, 4, 501..510).await;
    drop(store);
    let mut store = small(dir.path());
    assert_eq!(ids(&mut store).await, expect(&[(4, 501..510)]));
}

#[tokio::test]
async fn a_purge_whose_restart_a_crash_stopped_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = small(dir.path());
    append(&mut store, 1, 0..10).await;
    drop(store);
    // The side file was written, the log not yet restarted: as a crash
    // between the two leaves it.
    let bytes = murakami_openraft::codec::encode(&log_id(2, 40)).unwrap();
    murakami_openraft::side_file::write(dir.path(), PURGED_FILE, &bytes).unwrap();
    let mut store = small(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 40)));
    append(&mut store, 2, 41..45).await;
    assert_eq!(ids(&mut store).await, expect(&[(2, 41..45)]));
}

#[tokio::test]
async fn a_reopen_after_many_purges_and_truncations() {
    let dir = tempfile::tempdir().unwrap();
    let mut want: Vec<LogId<u64>> = Vec::new();
    let mut term = 1;
    let mut next = 0;
    let mut purged = None;
    for round in 0..15u64 {
        let mut store = small(dir.path());
        assert_eq!(ids(&mut store).await, want, "round {round}");
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, purged);
        append(&mut store, term, next..next + 40).await;
        want.extend(expect(&[(term, next..next + 40)]));
        next += 40;
        // Truncate a few, keep the rest.
        let cut = next - 1 - round % 7;
        store.truncate(log_id(term, cut)).await.unwrap();
        want.retain(|l| l.index < cut);
        next = cut;
        term += 1;
        // Purge about half of what is there.
        let to = want[want.len() / 2];
        store.purge(to).await.unwrap();
        purged = Some(to);
        want.retain(|l| l.index > to.index);
        assert_eq!(ids(&mut store).await, want, "round {round}");
        if round % 5 == 4 {
            // Everything, past the end.
            let past = log_id(term, next + 3);
            store.purge(past).await.unwrap();
            purged = Some(past);
            want.clear();
            next += 4;
        }
    }
}

#[tokio::test]
async fn the_vote_survives_a_reopen_and_a_damaged_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = small(dir.path());
    assert_eq!(store.read_vote().await.unwrap(), None);
    store.save_vote(&Vote::new(3, 1)).await.unwrap();
    store.save_vote(&Vote::new(5, 2)).await.unwrap();
    for index in 1..=7 {
        store.save_committed(Some(log_id(5, index))).await.unwrap();
    }
    drop(store);
    let mut store = small(dir.path());
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(5, 2)));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(5, 7)));
    store.save_committed(Some(log_id(5, 8))).await.unwrap();
    drop(store);
    let mut store = small(dir.path());
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(5, 8)));
    drop(store);

    // Both slots of the committed file damaged: the open fails.
    let path = dir.path().join(COMMITTED_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    bytes[murakami_openraft::slot_file::STRIDE] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let options = murakami::Options::default().segment_size(4096);
    let err = Store::open_with(dir.path(), options).err();
    assert_eq!(
        err.map(|e| e.kind()),
        Some(std::io::ErrorKind::InvalidData),
        "a damaged committed file is an error"
    );
    std::fs::remove_file(&path).unwrap();

    let path = dir.path().join(VOTE_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 6;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let mut store = small(dir.path());
    assert!(
        store.read_vote().await.is_err(),
        "a damaged vote is not `None`"
    );
}
