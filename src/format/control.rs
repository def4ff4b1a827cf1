//! The control file's identity: its length, magic number, and why one is
//! refused. Its words are laid out in `storage/control.rs` (they are
//! atomics in a mapping) and described byte by byte in `docs/format.md`.
#![forbid(unsafe_code)]

use std::fmt;

/// Length of the control file (`murakami.tail`): one page.
pub const CONTROL_LEN: usize = 4096;
/// Its magic number (bytes 0..8): `MRKTAIL` and a zero byte.
pub const CONTROL_MAGIC: u64 = u64::from_le_bytes(*b"MRKTAIL\0");

/// Why a control file (`murakami.tail`) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlError {
    /// Shorter than a control file.
    TooShort,
    /// Not a murakami control file.
    BadMagic,
    /// Written by a format version this crate does not read.
    UnsupportedVersion(u32),
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::TooShort => write!(f, "shorter than {CONTROL_LEN} bytes"),
            ControlError::BadMagic => f.write_str("not a murakami control file (bad magic)"),
            ControlError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
        }
    }
}

impl std::error::Error for ControlError {}
