//! Writing: the single producer, the writer many threads share, the thread
//! that prepares segments ahead of the producer, and the background tasks.
//!
//! What it owns: [`writer`] ([`Writer`](writer::Writer): appends, rolls,
//! the sync policy, purges and truncations as the producer carries them
//! out), [`shared_writer`] ([`SharedWriter`](shared_writer::SharedWriter):
//! a mutex around the writer, and group commit), [`preparer`] (creates,
//! reserves and faults in the next segment, and chases the producer) and
//! [`background`] (the interval syncer's and the cleaner's thread).
//!
//! What it may call: everything below it: `truncation`, `retention`, `read`
//! (a writer hands out readers), `shared`, `durability`, `wake`, `storage`,
//! `format`.

pub(crate) mod background;
#[cfg(feature = "loom")]
pub(crate) mod model;
pub(crate) mod preparer;
pub(crate) mod shared_writer;
pub(crate) mod writer;
