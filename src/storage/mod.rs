//! Storage: the segment files and their mapped bytes.
//!
//! What it owns: the file seam ([`fs`]: the `Vfs` trait the rest of the
//! crate does every file operation through, the real file system, segment
//! and marker names), one segment's mapped bytes and the protocol that
//! publishes them to readers ([`region`]: the crate's unsafe core), a
//! segment ([`segment`]), the epoch-protected list of segments
//! ([`list`]) and the thread that unmaps removed segments
//! ([`reclaimer`]), and the control file that tells readers in other
//! processes what the writer does ([`control`]).
//!
//! What it may call: `format`, `primitives`, `record`, `error`, `options`.
//! Nothing here knows about writers, readers or policies.

pub(crate) mod control;
pub(crate) mod create;
pub(crate) mod fs;
pub(crate) mod list;
pub(crate) mod map;
pub(crate) mod reclaimer;
pub(crate) mod region;
pub(crate) mod segment;
