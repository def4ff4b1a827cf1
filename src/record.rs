//! The records readers get back.
#![forbid(unsafe_code)]

/// A record copied out of the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The record's offset.
    pub offset: u64,
    /// Its timestamp, ns since the Unix epoch (or what the caller gave).
    pub timestamp: u64,
    /// Its bytes.
    pub payload: Vec<u8>,
}

/// A record read in place: `payload` points into the mapped segment and
/// lives as long as the guard (or cursor) it was read through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordRef<'a> {
    /// The record's offset.
    pub offset: u64,
    /// Its timestamp, ns since the Unix epoch (or what the caller gave).
    pub timestamp: u64,
    /// Its bytes, straight from the map.
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// Copies the record out.
    pub fn to_record(&self) -> Record {
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            payload: self.payload.to_vec(),
        }
    }
}
