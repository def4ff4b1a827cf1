//! The 3-node key-value service over loopback HTTP, in one process, each
//! node on its own murakami log: initialize, add learners, change
//! membership, write on the leader, read on every node, kill the leader and
//! keep serving, restart it and let it catch up from its own log; then a
//! snapshot and a purge on the leader, and a fourth node that can only
//! catch up by installing the snapshot (its log restarts after it).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use murakami_openraft::LogStore;
use murakami_openraft::kv::TypeConfig;
use murakami_openraft::node::{Api, Node};
use openraft::storage::RaftLogStorage;
use tokio::net::TcpListener;

const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `check` until it gives `Some`, for up to `PATIENCE`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start(id: u64, dir: &Path, addr: &str) -> Node {
    let store = LogStore::<TypeConfig>::open(dir).unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    Node::start(id, listener, store).await.unwrap()
}

/// The leader as `api` sees it, once it sees one among `among`.
async fn leader(api: &Api, among: &[u64]) -> u64 {
    eventually("a leader", || async {
        let m = api.metrics().await.ok()?;
        m.current_leader.filter(|l| among.contains(l))
    })
    .await
}

async fn write_all(api: &Api, keys: std::ops::Range<u32>) {
    for k in keys {
        let response = api
            .write(&format!("key{k}"), &format!("value{k}"))
            .await
            .unwrap();
        response.unwrap_or_else(|e| panic!("write {k}: {e}"));
    }
}

async fn read_all(api: &Api, keys: std::ops::Range<u32>) {
    for k in keys {
        let want = format!("value{k}");
        eventually(&format!("key{k} on {}", api_addr(api)), || async {
            (api.read(&format!("key{k}")).await.ok()?.as_deref() == Some(want.as_str()))
                .then_some(())
        })
        .await;
    }
}

fn api_addr(api: &Api) -> String {
    format!("{api:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_serve_through_a_kill_and_a_restart() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut addrs = Vec::new();
    let mut nodes = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let node = start(i as u64 + 1, dir.path(), "127.0.0.1:0").await;
        addrs.push(node.addr.clone());
        nodes.push(Some(node));
    }
    let apis: Vec<Api> = addrs.iter().map(Api::new).collect();

    apis[0].init().await.unwrap().unwrap();
    assert_eq!(leader(&apis[0], &[1]).await, 1);
    apis[0].add_learner(2, &addrs[1]).await.unwrap().unwrap();
    apis[0].add_learner(3, &addrs[2]).await.unwrap().unwrap();
    let members: BTreeSet<u64> = [1, 2, 3].into();
    apis[0].change_membership(&members).await.unwrap().unwrap();
    write_all(&apis[0], 0..50).await;
    for api in &apis {
        read_all(api, 0..50).await;
    }

    // Kill the leader: the other two elect one and go on serving.
    let last_before = nodes[0]
        .as_ref()
        .unwrap()
        .raft
        .metrics()
        .borrow()
        .last_log_index
        .unwrap();
    nodes[0].take().unwrap().stop().await.unwrap();
    let new_leader = leader(&apis[1], &[2, 3]).await;
    let leader_api = &apis[new_leader as usize - 1];
    write_all(leader_api, 50..100).await;
    read_all(&apis[1], 0..100).await;
    read_all(&apis[2], 0..100).await;

    // Restart node 1 from its own murakami log: it has what it had, and
    // catches up on what it missed.
    {
        let mut store = LogStore::<TypeConfig>::open(dirs[0].path()).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(
            state.last_log_id.unwrap().index,
            last_before,
            "node 1 kept its log"
        );
    }
    nodes[0] = Some(start(1, dirs[0].path(), &addrs[0]).await);
    read_all(&apis[0], 0..100).await;
    write_all(leader_api, 100..110).await;
    for api in &apis {
        read_all(api, 100..110).await;
    }
    let m = apis[0].metrics().await.unwrap();
    assert_eq!(m.current_leader, Some(new_leader));

    // The leader snapshots and purges its log; a new learner, whose log is
    // empty, can then only be given the snapshot: installing it purges its
    // log past its end, which restarts its murakami log after the snapshot.
    let leader_raft = nodes[new_leader as usize - 1]
        .as_ref()
        .unwrap()
        .raft
        .clone();
    leader_raft.trigger().snapshot().await.unwrap();
    let snapshot = eventually("the leader's snapshot", || async {
        leader_raft
            .metrics()
            .borrow()
            .snapshot
            .filter(|s| s.index >= 109)
    })
    .await;
    leader_raft
        .trigger()
        .purge_log(snapshot.index)
        .await
        .unwrap();
    eventually("the leader's purge", || async {
        leader_raft
            .metrics()
            .borrow()
            .purged
            .filter(|p| p.index >= snapshot.index)
    })
    .await;
    let dir4 = tempfile::tempdir().unwrap();
    let node4 = start(4, dir4.path(), "127.0.0.1:0").await;
    let api4 = Api::new(node4.addr.clone());
    leader_api
        .add_learner(4, &node4.addr)
        .await
        .unwrap()
        .unwrap();
    read_all(&api4, 0..110).await;
    write_all(leader_api, 110..120).await;
    read_all(&api4, 110..120).await;
    node4.stop().await.unwrap();
    let mut store = LogStore::<TypeConfig>::open(dir4.path()).unwrap();
    let state = store.get_log_state().await.unwrap();
    let purged = state
        .last_purged_log_id
        .expect("the learner installed a snapshot");
    assert!(purged.index >= snapshot.index, "{purged} < {snapshot}");
    assert!(
        state.last_log_id.unwrap().index > purged.index,
        "and appended after it"
    );
    drop(store);

    for node in nodes.into_iter().flatten() {
        node.stop().await.unwrap();
    }
}
