//! Creating a segment: the file made, reserved to its full size and
//! mapped ([`prepare`], which the preparing thread runs ahead of the
//! producer), then its header written and the file named
//! ([`install_segment`], at a roll, a truncation or a log's creation).
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;

use crate::format::{self, SegmentHeader};
use crate::primitives::Arc;
use crate::storage::fs::{self, Map, Vfs};
use crate::storage::region::{self, Appender, Region};
use crate::storage::segment::Segment;

/// How much of a prepared segment is faulted in before it is handed over;
/// the rest is faulted in while the producer writes it, so that a producer
/// faster than the faulting never waits for a whole segment at a roll.
pub(crate) const PREPARED_AHEAD: usize = 8 << 20;

/// Creates `path`, reserves `capacity` bytes for it and maps it writable,
/// faulting in its first [`PREPARED_AHEAD`] bytes when asked.
pub(crate) fn prepare(
    vfs: &dyn Vfs,
    path: &Path,
    capacity: u64,
    prefault: bool,
) -> io::Result<Box<dyn Map>> {
    fs::remove_if_present(vfs, path)?;
    let made = vfs.create(path).and_then(|mut file| {
        file.reserve(capacity)?;
        file.map(true)
    });
    match made {
        Ok(map) => {
            if prefault {
                // Best effort: a failed prefault only costs page faults later.
                let _ = map.populate_write(0, PREPARED_AHEAD);
            }
            Ok(map)
        }
        Err(e) => {
            let _ = vfs.remove(path);
            Err(e)
        }
    }
}

/// How a new segment's header reaches the disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// With the segment's first sync (a roll: no stall on the append path).
    Lazy,
    /// Before the file gets its name: for a segment that may become the
    /// log's first (a truncation, the log's creation).
    Durable,
}

/// Writes the header of segment `base` into a prepared map, gives the file
/// its name and wraps it as the new active segment. The caller makes the
/// directory entry durable (now, or at the next sync).
pub(crate) fn install_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    prepared: &Path,
    mut map: Box<dyn Map>,
    (base, sequence): (u64, u64),
    durability: Header,
) -> io::Result<(Arc<Segment>, Appender)> {
    let header = SegmentHeader {
        base_offset: base,
        capacity: map.len() as u64,
        sequence,
    };
    region::write_header(&mut *map, &header.encode());
    let path = fs::segment_path(dir, base);
    let named = Region::new(map).and_then(|region| {
        match durability {
            Header::Durable => region.flush(0, format::HEADER_LEN),
            Header::Lazy => Ok(()),
        }
        .and_then(|()| vfs.rename(prepared, &path))
        .map(|()| region)
    });
    let region = match named {
        Ok(region) => Arc::new(region),
        Err(e) => {
            let _ = vfs.remove(prepared);
            return Err(e);
        }
    };
    let appender = Region::appender(&region).expect("a fresh region has its appender");
    Ok((
        Arc::new(Segment::new(base, sequence, path, region)),
        appender,
    ))
}
