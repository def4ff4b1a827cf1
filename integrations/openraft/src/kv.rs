//! A key-value state machine with snapshots, and the type configuration of
//! the example, the benchmark and the tests.
//!
//! The state (applied log id, membership, the map) lives in memory; a
//! snapshot is the whole of it, encoded with postcard. That is all the
//! example needs: the log, not the state machine, is what murakami keeps.

use std::collections::BTreeMap;
use std::io::{self, Cursor};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

/// A node's id.
pub type NodeId = u64;

/// A write to the map.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
}

/// What a write returns: the key's previous value.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The value the key had before, if any.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The example's types: string keys and values, `u64` node ids, nodes
    /// with an address.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

type Error = StorageError<NodeId>;

/// Everything the state machine holds; a snapshot is this, encoded.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct State {
    /// The last entry applied.
    pub last_applied: Option<LogId<NodeId>>,
    /// The last membership applied.
    pub membership: StoredMembership<NodeId, BasicNode>,
    /// The map.
    pub data: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Stored {
    meta: SnapshotMeta<NodeId, BasicNode>,
    bytes: Vec<u8>,
}

/// The in-memory key-value state machine. Cheap to clone: clones share it.
#[derive(Debug, Clone, Default)]
pub struct StateMachine {
    state: Arc<RwLock<State>>,
    snapshot: Arc<RwLock<Option<Stored>>>,
    snapshots_built: Arc<AtomicU64>,
}

impl StateMachine {
    /// The value of `key`, as far as this node has applied.
    pub async fn get(&self, key: &str) -> Option<String> {
        self.state.read().await.data.get(key).cloned()
    }

    /// A copy of the whole state.
    pub async fn state(&self) -> State {
        self.state.read().await.clone()
    }
}

fn sm_error(e: impl std::error::Error + 'static) -> Error {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, Error> {
        let state = self.state.read().await.clone();
        let bytes = crate::codec::encode(&state).map_err(sm_error)?;
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed) + 1;
        let last = state
            .last_applied
            .map_or("none".to_string(), |l| l.to_string());
        let meta = SnapshotMeta {
            last_log_id: state.last_applied,
            last_membership: state.membership.clone(),
            snapshot_id: format!("{last}-{n}"),
        };
        *self.snapshot.write().await = Some(Stored {
            meta: meta.clone(),
            bytes: bytes.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), Error> {
        let state = self.state.read().await;
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, Error>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut state = self.state.write().await;
        let mut responses = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Normal(Request::Set { key, value }) => Response {
                    previous: state.data.insert(key, value),
                },
                EntryPayload::Membership(m) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::default()
                }
            };
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Error> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Error> {
        let bytes = snapshot.into_inner();
        let state: State = crate::codec::decode(&bytes).map_err(|e| {
            let e = io::Error::new(io::ErrorKind::InvalidData, e);
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        *self.state.write().await = state;
        *self.snapshot.write().await = Some(Stored {
            meta: meta.clone(),
            bytes,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, Error> {
        Ok(self.snapshot.read().await.as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.bytes.clone())),
        }))
    }
}
