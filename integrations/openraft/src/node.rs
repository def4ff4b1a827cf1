//! One node of the example's key-value service: an openraft `Raft` over a
//! log store, the key-value state machine, and an HTTP server that takes
//! both Raft's RPCs from its peers and the service's requests.
//!
//! | path                     | body (JSON)                | answer (JSON)                         |
//! |--------------------------|----------------------------|---------------------------------------|
//! | `/raft/append`           | `AppendEntriesRequest`     | `Result<AppendEntriesResponse, _>`    |
//! | `/raft/vote`             | `VoteRequest`              | `Result<VoteResponse, _>`             |
//! | `/raft/snapshot`         | `InstallSnapshotRequest`   | `Result<InstallSnapshotResponse, _>`  |
//! | `/init`                  | `{}`                       | `Result<(), _>` (this node alone)     |
//! | `/add-learner`           | `[id, "host:port"]`        | `Result<ClientWriteResponse, _>`      |
//! | `/change-membership`     | `[id, ...]`                | `Result<ClientWriteResponse, _>`      |
//! | `/write`                 | `{"Set":{"key":..,"value":..}}` | `Result<ClientWriteResponse, _>` |
//! | `/read`                  | `"key"`                    | the value this node has applied, or `null` |
//! | `/metrics`               | `{}`                       | `RaftMetrics`                          |

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, Raft};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::http::{self, Client};
use crate::kv::{NodeId, StateMachine, TypeConfig};

/// The example's Raft timing: short, for a loopback cluster.
pub fn config() -> Config {
    Config {
        cluster_name: "murakami-kv".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        // The state machine is in memory: a node that restarts rebuilds it
        // from its log, so the log is purged only when asked (by
        // `raft.trigger()`). A persistent state machine would let openraft
        // snapshot and purge on its own.
        snapshot_policy: openraft::SnapshotPolicy::Never,
        ..Config::default()
    }
    .validate()
    .expect("a valid configuration")
}

/// Makes the connections to peers (one [`Client`] each).
#[derive(Clone, Default)]
pub struct Network;

/// A connection to one peer.
pub struct Peer {
    target: NodeId,
    client: Client,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            client: Client::new(node.addr.clone()),
        }
    }
}

impl Peer {
    async fn call<Q, P, E>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<P, RPCError<NodeId, BasicNode, E>>
    where
        Q: Serialize,
        P: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body =
            serde_json::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let (_, answer) = self
            .client
            .post(path, &body)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let answer: Result<P, E> = serde_json::from_slice(&answer)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("/raft/append", &rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("/raft/snapshot", &rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("/raft/vote", &rpc).await
    }
}

/// A running node. Dropping it without [`Node::stop`] aborts its server.
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// The address it serves on.
    pub addr: String,
    /// Its Raft.
    pub raft: Raft<TypeConfig>,
    /// Its state machine (for reads).
    pub state_machine: StateMachine,
    server: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Starts node `id` over `log_store`, serving on `listener`.
    pub async fn start<LS>(id: NodeId, listener: TcpListener, log_store: LS) -> io::Result<Node>
    where
        LS: RaftLogStorage<TypeConfig>,
    {
        let addr = listener.local_addr()?.to_string();
        let state_machine = StateMachine::default();
        let raft = Raft::new(
            id,
            Arc::new(config()),
            Network,
            log_store,
            state_machine.clone(),
        )
        .await
        .map_err(io::Error::other)?;
        let node = (id, addr.clone(), raft.clone(), state_machine.clone());
        let server = tokio::spawn(serve(listener, node));
        Ok(Node {
            id,
            addr,
            raft,
            state_machine,
            server,
        })
    }

    /// Stops Raft (its log store is dropped: a murakami store syncs and
    /// closes) and the server, and waits for both.
    pub async fn stop(self) -> io::Result<()> {
        self.server.abort();
        let _ = self.server.await;
        self.raft.shutdown().await.map_err(io::Error::other)
    }
}

type Served = (NodeId, String, Raft<TypeConfig>, StateMachine);

async fn serve(listener: TcpListener, node: Served) {
    // Aborting this task drops the set, which aborts every connection.
    let mut connections = JoinSet::new();
    let node = Arc::new(node);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                connections.spawn(connection(tcp, Arc::clone(&node)));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(tcp: TcpStream, node: Arc<Served>) {
    let mut stream = BufStream::new(tcp);
    while let Ok(Some(request)) = http::read_request(&mut stream).await {
        let (status, body) = match route(&node, &request.path, &request.body).await {
            Ok(body) => (200, body),
            Err(e) => (400, serde_json::to_vec(&e.to_string()).unwrap_or_default()),
        };
        if http::write_response(&mut stream, status, &body)
            .await
            .is_err()
        {
            return;
        }
    }
}

fn json<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(io::Error::other)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn route(node: &Served, path: &str, body: &[u8]) -> io::Result<Vec<u8>> {
    let (id, addr, raft, state_machine) = node;
    match path {
        "/raft/append" => json(&raft.append_entries(parse(body)?).await),
        "/raft/vote" => json(&raft.vote(parse(body)?).await),
        "/raft/snapshot" => json(&raft.install_snapshot(parse(body)?).await),
        "/init" => {
            let members = [(*id, BasicNode::new(addr.clone()))]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>();
            json(&raft.initialize(members).await)
        }
        "/add-learner" => {
            let (learner, at): (NodeId, String) = parse(body)?;
            json(&raft.add_learner(learner, BasicNode::new(at), true).await)
        }
        "/change-membership" => {
            let members: BTreeSet<NodeId> = parse(body)?;
            json(&raft.change_membership(members, false).await)
        }
        "/write" => json(&raft.client_write(parse(body)?).await),
        "/read" => {
            let key: String = parse(body)?;
            json(&state_machine.get(&key).await)
        }
        "/metrics" => json(&raft.metrics().borrow().clone()),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no route {path}"),
        )),
    }
}

/// A client of a node's HTTP API, typed.
#[derive(Debug)]
pub struct Api {
    client: Client,
}

/// What a write answers: the response, or why not (e.g. not the leader).
pub type WriteResult = Result<
    openraft::raft::ClientWriteResponse<TypeConfig>,
    RaftError<NodeId, openraft::error::ClientWriteError<NodeId, BasicNode>>,
>;

impl Api {
    /// A client of the node serving at `addr`.
    pub fn new(addr: impl Into<String>) -> Api {
        Api {
            client: Client::new(addr),
        }
    }

    async fn call<Q: Serialize, P: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
    ) -> io::Result<P> {
        let (status, body) = self.client.post(path, &json(request)?).await?;
        if status != 200 {
            let message: String = parse(&body).unwrap_or_default();
            return Err(io::Error::other(format!("{path}: {status}: {message}")));
        }
        parse(&body)
    }

    /// Makes the node a cluster of one.
    pub async fn init(
        &self,
    ) -> io::Result<
        Result<(), RaftError<NodeId, openraft::error::InitializeError<NodeId, BasicNode>>>,
    > {
        self.call("/init", &()).await
    }

    /// Adds a learner and waits until it has caught up.
    pub async fn add_learner(&self, id: NodeId, addr: &str) -> io::Result<WriteResult> {
        self.call("/add-learner", &(id, addr)).await
    }

    /// Makes `members` the voters.
    pub async fn change_membership(&self, members: &BTreeSet<NodeId>) -> io::Result<WriteResult> {
        self.call("/change-membership", members).await
    }

    /// Sets `key` to `value` (on the leader).
    pub async fn write(&self, key: &str, value: &str) -> io::Result<WriteResult> {
        let request = crate::kv::Request::Set {
            key: key.into(),
            value: value.into(),
        };
        self.call("/write", &request).await
    }

    /// The value of `key` this node has applied.
    pub async fn read(&self, key: &str) -> io::Result<Option<String>> {
        self.call("/read", &key).await
    }

    /// The node's Raft metrics.
    pub async fn metrics(&self) -> io::Result<openraft::RaftMetrics<NodeId, BasicNode>> {
        self.call("/metrics", &()).await
    }
}
