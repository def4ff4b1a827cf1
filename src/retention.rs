//! Retention and prefix purge: removing old segments while readers read.
//!
//! # Synchronization
//!
//! Removal never touches bytes: it unlinks the old segments' files, oldest
//! first, and then swaps in a segment list without those that went (under
//! the list's replacing lock, like a roll). A reader that loaded the old list holds an epoch guard, and a
//! cursor holds an `Arc` on its segment, so a removed segment stays mapped
//! until the last of them lets go; unlinking a mapped file is safe (the pages
//! stay valid; only truncating a mapped file would raise SIGBUS, and nothing
//! here truncates). Files are removed oldest first and the directory is
//! fsynced after, so a crash in the middle leaves a log that starts later
//! but is otherwise whole.
#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::format::HEADER_LEN;
use crate::options::Retention;
use crate::primitives::{Arc, pin};
use crate::shared::Shared;
use crate::storage::list::SegmentList;

/// What a cleanup or purge removed, and where it stopped.
///
/// Only whole sealed segments are removed, oldest first; the active
/// segment never is. Everything from `first_offset` on was not removed and
/// is still readable, even when a purge asked for more
/// ([`Writer::purge_before`](crate::Writer::purge_before) with an offset
/// inside, or past, the active segment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removed {
    /// Segment files removed.
    pub segments: usize,
    /// Records in them.
    pub records: u64,
    /// Bytes of disk they took.
    pub bytes: u64,
    /// The log's first offset afterwards: the first record not removed
    /// (the base of the first segment kept, which may be the active one).
    /// Reads below it return [`Error::Purged`]; records from it on are all
    /// still readable.
    pub first_offset: u64,
}

/// How many of the oldest segments a rule removes.
fn count_expired(list: &SegmentList, retention: &Retention, now_ns: u64) -> usize {
    let sealed = &list.segments()[..list.segments().len() - 1];
    let mut n = 0;
    if let Some(age) = retention.max_age {
        let cutoff = now_ns.saturating_sub(age.as_nanos().min(u128::from(u64::MAX)) as u64);
        n = sealed
            .iter()
            .take_while(|s| s.max_timestamp() < cutoff)
            .count();
    }
    if let Some(max) = retention.max_bytes {
        let mut total: u64 = sealed.iter().map(|s| s.file_size()).sum();
        let mut by_size = 0;
        for s in sealed {
            if total <= max {
                break;
            }
            total -= s.file_size();
            by_size += 1;
        }
        n = n.max(by_size);
    }
    n
}

/// Removes the first segments `choose` picks (never the active one).
///
/// Its flush and its directory fsync run as syncs do, one at a time with
/// them ([`Syncer::flush_exclusive`](crate::durability::Syncer::flush_exclusive)),
/// and a failure latches the writer before any sync runs again: after an
/// `EIO` the kernel may mark the pages clean and report the error only once,
/// to whichever flush of the file asks first, so a sync running beside this
/// flush could otherwise take its success for durability. A latched writer
/// removes nothing. A file that cannot be removed is a plain I/O error:
/// nothing was flushed, and the next cleanup tries again.
fn remove_first(shared: &Shared, choose: impl FnOnce(&SegmentList) -> usize) -> Result<Removed> {
    let _maintenance = shared.maintenance();
    let syncer = &shared.syncer();
    syncer.poison.check()?;
    // Only rolls change the list while the maintenance lock is held, and
    // they only add segments at its end: the front chosen here stays put.
    let (mut gone, first) = {
        let guard = pin();
        let list = shared.segments().load(&guard);
        let n = choose(list).min(list.segments().len() - 1);
        (
            list.segments()[..n].to_vec(),
            Arc::clone(&list.segments()[n]),
        )
    };
    let mut removed = Removed {
        first_offset: first.base(),
        ..Removed::default()
    };
    if gone.is_empty() {
        return Ok(removed);
    }
    // The new first segment's header must be on disk before the segments
    // before it go, or a crash could leave no segment that says where the
    // log starts.
    syncer.flush_exclusive(|| first.region().flush(0, HEADER_LEN))?;
    let mut failed = None;
    for segment in &gone {
        let outcome = shared
            .vfs()
            .remove(segment.path())
            .map_err(Error::from)
            .and_then(|()| {
                crate::storage::fs::remove_if_present(
                    shared.vfs(),
                    &crate::storage::fs::cut_path(shared.dir(), segment.base()),
                )
                .map_err(Error::from)
            });
        if let Err(e) = outcome {
            // Stop at the first file that stays: removing a newer one after
            // it would leave a gap, which the next open must take for lost
            // records. The segment stays in the list, whole.
            failed = Some(e);
            break;
        }
        removed.segments += 1;
        removed.records += u64::from(segment.published().count());
        removed.bytes += segment.file_size();
    }
    // Readers still find the unlinked segments until the list goes (their
    // maps stay valid): the list follows the files, not the other way.
    let kept = removed.segments;
    if kept > 0 {
        shared
            .segments()
            .update(|list| (Some(list.without_first(kept)), ()));
    }
    if kept < gone.len() {
        removed.first_offset = gone[kept].base();
    }
    if let Some(control) = shared.control() {
        control.set_first(removed.first_offset);
    }
    // An unlinked file keeps its blocks while it is mapped: the reclaiming
    // thread unmaps the removed segments (unless a reader still holds
    // them), not this caller and not some later, unrelated pin. On a full
    // disk the next segment's creation waits for it (`reclaimer.rs`).
    gone.truncate(kept);
    shared.purged().note(&gone);
    shared.reclaimer().release(gone);
    let synced = syncer.flush_exclusive(|| shared.vfs().sync_dir(shared.dir()));
    match (synced, failed) {
        (Err(latched), _) => Err(latched),
        (Ok(()), Some(e)) => Err(e),
        (Ok(()), None) => Ok(removed),
    }
}

/// Removes whole segments whose records all lie below `offset`.
pub(crate) fn purge_before(shared: &Shared, offset: u64) -> Result<Removed> {
    remove_first(shared, |list| {
        list.segments()
            .iter()
            .take_while(|s| s.next_offset() <= offset)
            .count()
    })
}

/// Applies the options' retention as of `now_ns`.
pub(crate) fn cleanup(shared: &Shared, now_ns: u64) -> Result<Removed> {
    let retention = shared.options().retention;
    remove_first(shared, |list| count_expired(list, &retention, now_ns))
}
