//! The loom seam of [`SharedWriter`](super::shared_writer::SharedWriter)
//! (the `loom` feature only): what it serializes appends on is the log's
//! [`Writer`] (never made inside a model: it needs files and a preparing
//! thread) or a model's producer without files, which the loom models
//! (`testing/loom_api.rs`) implement through [`Model`].
#![forbid(unsafe_code)]

use std::io;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::retention::Removed;
use crate::write::writer::Writer;

/// A producer without files: a one-segment log's appends, as the writer
/// makes them, minus the roll.
pub(crate) trait Model: Send {
    /// The mutant whose group-commit followers take the end of the flush
    /// they waited for as their acknowledgement, covered or not.
    fn acknowledges_any_flush(&self) -> bool;
    fn append(&mut self, payload: &[u8]) -> Result<u64>;
    fn append_batch(&mut self, records: &[&[u8]]) -> Result<Range<u64>>;
    fn next_offset(&self) -> u64;
    fn purge_before(&mut self, offset: u64) -> Result<Removed>;
    fn cleanup(&mut self) -> Result<Removed>;
    fn close(self: Box<Self>) -> Result<()>;
}

/// What a `SharedWriter` serializes appends on under loom.
pub(crate) enum Producer {
    Writer(Box<Writer>),
    Model(Box<dyn Model>),
}

impl From<Writer> for Producer {
    fn from(writer: Writer) -> Producer {
        Producer::Writer(Box::new(writer))
    }
}

impl Producer {
    pub(crate) fn acknowledges_any_flush(&self) -> bool {
        matches!(self, Producer::Model(m) if m.acknowledges_any_flush())
    }

    pub(crate) fn now(&self) -> u64 {
        match self {
            Producer::Writer(w) => w.now(),
            Producer::Model(_) => 0,
        }
    }

    pub(crate) fn sync_due(&mut self, records: u64) -> bool {
        match self {
            Producer::Writer(w) => w.sync_due(records),
            Producer::Model(_) => false,
        }
    }

    pub(crate) fn append_unsynced(&mut self, payload: &[u8], timestamp: u64) -> Result<u64> {
        match self {
            Producer::Writer(w) => w.append_unsynced(payload, timestamp),
            Producer::Model(m) => m.append(payload),
        }
    }

    pub(crate) fn append_batch_unsynced<B: AsRef<[u8]>>(
        &mut self,
        records: &[B],
    ) -> Result<Range<u64>> {
        match self {
            Producer::Writer(w) => w.append_batch_unsynced(records),
            Producer::Model(m) => {
                let records: Vec<&[u8]> = records.iter().map(AsRef::as_ref).collect();
                m.append_batch(&records)
            }
        }
    }

    pub(crate) fn next_offset(&self) -> u64 {
        match self {
            Producer::Writer(w) => w.next_offset(),
            Producer::Model(m) => m.next_offset(),
        }
    }

    pub(crate) fn purge_before(&mut self, offset: u64) -> Result<Removed> {
        match self {
            Producer::Writer(w) => w.purge_before(offset),
            Producer::Model(m) => m.purge_before(offset),
        }
    }

    pub(crate) fn truncate_from(&mut self, offset: u64) -> Result<()> {
        match self {
            Producer::Writer(w) => w.truncate_from(offset),
            Producer::Model(_) => Err(Error::Io(io::Error::other(
                "no truncation in a loom model (it needs files)",
            ))),
        }
    }

    pub(crate) fn restart_at(&mut self, offset: u64) -> Result<()> {
        match self {
            Producer::Writer(w) => w.restart_at(offset),
            Producer::Model(_) => Err(Error::Io(io::Error::other(
                "no restart in a loom model (it needs files)",
            ))),
        }
    }

    pub(crate) fn truncate_after(&mut self, offset: u64) -> Result<()> {
        self.truncate_from(offset.saturating_add(1))
    }

    pub(crate) fn cleanup(&mut self) -> Result<Removed> {
        match self {
            Producer::Writer(w) => w.cleanup(),
            Producer::Model(m) => m.cleanup(),
        }
    }

    pub(crate) fn close(self) -> Result<()> {
        match self {
            Producer::Writer(w) => w.close(),
            Producer::Model(m) => m.close(),
        }
    }
}
