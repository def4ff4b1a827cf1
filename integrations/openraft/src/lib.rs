//! # murakami-openraft
//!
//! murakami as the log store of openraft 0.9 (`storage-v2`): [`LogStore`]
//! implements `RaftLogStorage` and `RaftLogReader` on a murakami log, with
//! the vote and the last purged log id in small durable side files
//! ([`side_file`]) and the committed log id in a two-slot file saved with
//! one fdatasync ([`slot_file`]). [`kv`] has a key-value state machine
//! with snapshots and the type configuration the example and the tests use.
//!
//! See [`store`] for how Raft indices map to murakami offsets and how
//! durability reaches openraft's callbacks (group commit on a thread of its
//! own).
// openraft's traits fix the error type (`StorageError`, about 190 bytes);
// the helpers behind them return it too rather than box and unbox it.
#![allow(clippy::result_large_err)]

pub mod codec;
mod flusher;
pub mod http;
pub mod kv;
pub mod mem;
pub mod node;
pub mod side_file;
pub mod slot_file;
pub mod store;

pub use flusher::Callback;
pub use store::{LogReader, LogStore};
