//! How entries and side-file values are encoded.
//!
//! Each murakami record holds one Raft entry: a version byte, then the
//! entry in [postcard](https://docs.rs/postcard) (serde's compact binary
//! format: varint integers, no field names, a wire format documented and
//! frozen for 1.x). A blank entry takes a handful of bytes. The version byte
//! lets a later format be read beside this one; a record with another
//! version, or one that does not decode, is an error, never skipped.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version byte of the entry format this crate writes.
pub const ENTRY_FORMAT: u8 = 1;

/// Why a record could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    /// The record is empty: it has no version byte.
    Empty,
    /// The version byte names a format this crate does not read.
    Version(u8),
    /// postcard refused the bytes.
    Postcard(postcard::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty record"),
            DecodeError::Version(v) => write!(f, "unknown entry format version {v}"),
            DecodeError::Postcard(e) => write!(f, "entry does not decode: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Encodes `value` behind the version byte.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(value, vec![ENTRY_FORMAT])
}

/// Decodes what [`encode`] wrote.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.split_first() {
        None => Err(DecodeError::Empty),
        Some((&ENTRY_FORMAT, rest)) => postcard::from_bytes(rest).map_err(DecodeError::Postcard),
        Some((&v, _)) => Err(DecodeError::Version(v)),
    }
}
