//! Suffix truncation: the commit protocol, the list swap, the discarded
//! segments.
//!
//! [`Writer::truncate_from`](crate::Writer::truncate_from) orchestrates a
//! truncation (its checks, the sync before it, the new segment from the
//! preparing thread, the syncs it holds off, the latch on failure); this
//! module owns the protocol, which must survive a crash at any point:
//!
//! 1. **Commit**: a marker file `NNNN.cut` (the cut offset, the sequence
//!    number of the segment it cuts, the sequence the next segment gets) is
//!    written durably: a temporary file made durable, renamed into place,
//!    the directory fsynced. Before its rename, reopening gives the log as
//!    it was; after it, reopening completes the truncation (`recovery`
//!    reads the marker, drops what lies past the cut, and takes it away).
//! 2. **Files**: the segments after the cut are removed, newest first, and
//!    the directory fsynced; the new active segment, starting at the cut,
//!    gets its header durably and its name (replacing the cut segment's
//!    file when the cut falls on its base), and the directory is fsynced.
//! 3. **Readers**: [`swap_truncated`] hides every record past the cut (it
//!    lowers the published counts) and swaps in the new list; cursors that
//!    stand past the cut go on in the new history.
//! 4. **Tidy**: when the cut segment was replaced whole, its marker goes.
//!
//! A **restart** ([`Writer::restart_at`](crate::Writer::restart_at)) drops
//! every record and continues the log at an arbitrary offset `n`, by the
//! same steps with a marker of its own, `murakami.restart` (`n`, and the
//! sequence of the segment it creates): committed durably first; then every
//! old segment (and its cut marker) is removed and the directory fsynced;
//! then the new empty segment at `n` gets its header durably and its name,
//! and the directory is fsynced; readers see the old segments emptied and a
//! list holding only the new one; last the marker goes. Before the marker
//! got its name, reopening gives the log as it was; from then on, reopening
//! discards every segment older than the marker's sequence and starts the
//! log at `n` (creating its segment if the restart did not get that far).
//!
//! What it may call: `shared`, `storage`, `durability`, `format`, `error`.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use crate::durability::SyncPause;
use crate::error::{Error, Result};
use crate::format::{CutMarker, RestartMarker};
use crate::primitives::{Arc, pin};
use crate::shared::Shared;
use crate::storage::create::{Header, install_segment};
use crate::storage::fs::{self, Map, Vfs};
use crate::storage::list::{SegmentList, Segments};
use crate::storage::region::Appender;
use crate::storage::segment::Segment;
use crate::wake::remote;

/// Where a truncation at `offset` cuts, and what it discards.
pub(crate) struct Plan {
    /// The first offset cut away.
    offset: u64,
    /// Index in the segment list of the segment holding `offset`.
    index: usize,
    /// That segment.
    cut: Arc<Segment>,
    /// The segments after it, all discarded.
    later: Vec<Arc<Segment>>,
}

impl Plan {
    /// Whether the cut falls on the cut segment's base: the new segment
    /// then replaces it whole (same name), and its marker goes.
    fn replaces_cut(&self) -> bool {
        self.offset <= self.cut.base()
    }
}

/// The segment a truncation's appends go on in, from the preparing thread:
/// its map until it is installed, and the file it is prepared in.
pub(crate) struct NewSegment {
    pub(crate) map: Option<Box<dyn Map>>,
    pub(crate) prepared: PathBuf,
    /// Its creation sequence number.
    pub(crate) sequence: u64,
}

impl NewSegment {
    /// Gives the segment its name, starting at `base`: its header is made
    /// durable first (it may become the first segment), then the rename,
    /// then the directory is fsynced. `install_segment` removes the
    /// prepared file itself if it fails.
    fn install(
        &mut self,
        vfs: &dyn Vfs,
        dir: &Path,
        base: u64,
    ) -> io::Result<(Arc<Segment>, Appender)> {
        let map = self
            .map
            .take()
            .expect("the prepared map, not yet installed");
        let installed = install_segment(
            vfs,
            dir,
            &self.prepared,
            map,
            (base, self.sequence),
            Header::Durable,
        )?;
        vfs.sync_dir(dir)?;
        Ok(installed)
    }

    /// After a truncation that failed before the new segment got its name:
    /// its reserved file goes too, not left to take disk space until a
    /// reopen.
    pub(crate) fn discard(self, vfs: &dyn Vfs) {
        if let Some(map) = self.map {
            drop(map);
            let _ = vfs.remove(&self.prepared);
        }
    }
}

/// Where a truncation at `offset` cuts: [`Error::Purged`] below the first
/// offset. The caller holds the maintenance lock, so only its own rolls
/// could change the list meanwhile.
pub(crate) fn plan(shared: &Shared, offset: u64) -> Result<Plan> {
    let guard = pin();
    let list = shared.segments().load(&guard);
    let first = list.first_offset();
    let Some(index) = list.position_of(offset).filter(|_| offset >= first) else {
        return Err(Error::Purged { offset, first });
    };
    let segments = list.segments();
    Ok(Plan {
        offset,
        index,
        cut: Arc::clone(&segments[index]),
        later: segments[index + 1..].to_vec(),
    })
}

/// Steps 1 to 3: commits the truncation (its marker) and carries it out
/// as far as readers see it. Returns the new active segment's appender.
/// Syncs are held off by `pause`, and restart at the cut once the new list
/// is in; any error is an I/O error, which the caller latches through the
/// pause.
pub(crate) fn commit(
    shared: &Shared,
    plan: &Plan,
    new: &mut NewSegment,
    pause: &mut SyncPause<'_>,
) -> io::Result<Appender> {
    let (vfs, dir) = (shared.vfs(), shared.dir());
    let marker = CutMarker {
        at: plan.offset,
        segment: plan.cut.sequence(),
        created_after: new.sequence,
    };
    write_durably(vfs, dir, &marker_path(shared, plan), &marker.encode())?;
    // Readers in other processes learn of the cut before the new history
    // has a file they could read it from.
    if let Some(control) = shared.control() {
        control.truncated(plan.offset);
    }
    for segment in plan.later.iter().rev() {
        vfs.remove(segment.path())?;
        fs::remove_if_present(vfs, &fs::cut_path(dir, segment.base()))?;
    }
    vfs.sync_dir(dir)?;
    // The new segment starts at the cut; when the cut segment starts there
    // too, the rename replaces it (atomically; its readers keep their map).
    let (segment, appender) = new.install(vfs, dir, plan.offset)?;
    swap_truncated(
        shared.segments(),
        (plan.offset, plan.index),
        &plan.cut,
        &plan.later,
        segment,
    );
    pause.restart_at(plan.offset);
    shared.count_truncation();
    if let Some(control) = shared.control() {
        control.set_active(plan.offset, new.sequence);
        remote::wake_all(control.words());
    }
    Ok(appender)
}

/// Step 4: when the cut segment was replaced whole, its marker goes.
pub(crate) fn tidy(shared: &Shared, plan: &Plan) -> io::Result<()> {
    if !plan.replaces_cut() {
        return Ok(());
    }
    shared.vfs().remove(&marker_path(shared, plan))?;
    shared.vfs().sync_dir(shared.dir())
}

/// Hands the discarded segments (those after the cut, and the cut one when
/// it was replaced whole) to the reclaiming thread: they keep their disk
/// blocks while mapped, and it unmaps them once no reader holds them.
pub(crate) fn retire(shared: &Shared, plan: Plan) {
    let replaces_cut = plan.replaces_cut();
    let mut retired = plan.later;
    if replaces_cut {
        retired.push(plan.cut);
    }
    shared.reclaimer().release(retired);
}

fn marker_path(shared: &Shared, plan: &Plan) -> PathBuf {
    fs::cut_path(shared.dir(), plan.cut.base())
}

/// Writes a small file so that it is either absent or whole after a crash:
/// a temporary file made durable, renamed into place, directory fsynced.
fn write_durably(vfs: &dyn Vfs, dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    vfs.write_small(&tmp, bytes)?;
    vfs.rename(&tmp, path)?;
    vfs.sync_dir(dir)
}

/// Swaps in the segment list a committed truncation at `offset` leaves: the
/// segments before `index` (the one holding `offset`, `cut`), `cut` itself
/// with its records from `offset` on hidden if it keeps any below, and the
/// new active `segment`. The segments it drops (`later`, and `cut` when it
/// starts at `offset`) are retired through the epoch like any replaced
/// list: unmapped only once no reader can still hold them.
///
/// Every record at or past `offset` is hidden (its segment's published
/// count lowered) before the new list is swapped in, in `cut` as well as in
/// the dropped segments: a cursor that still holds one of them then finds
/// nothing more there and moves on into the new history, never back into
/// the discarded one. That includes `cut` when `offset` is its base: it
/// leaves the list, but a cursor may hold it.
pub(crate) fn swap_truncated(
    segments: &Segments,
    (offset, index): (u64, usize),
    cut: &Arc<Segment>,
    later: &[Arc<Segment>],
    segment: Arc<Segment>,
) {
    segments.update(|list| {
        let mut kept = list.segments()[..index].to_vec();
        cut.cut_at(offset);
        if offset > cut.base() {
            kept.push(Arc::clone(cut));
        }
        for gone in later {
            gone.cut_at(gone.base());
        }
        kept.push(segment);
        (Some(SegmentList::new(kept)), ())
    });
}

/// A restart at `n` (see the module docs): commits the restart marker, drops
/// every segment and installs the new empty one at `n`. Returns its
/// appender. Syncs are held off by `pause`; any error is an I/O error, which
/// the caller latches through the pause.
pub(crate) fn restart(
    shared: &Shared,
    n: u64,
    new: &mut NewSegment,
    pause: &mut SyncPause<'_>,
) -> io::Result<Appender> {
    let (vfs, dir) = (shared.vfs(), shared.dir());
    let marker = RestartMarker {
        start: n,
        created_after: new.sequence,
    };
    if fs::mutant(vfs) != fs::Mutant::RestartWithoutMarker {
        write_durably(vfs, dir, &dir.join(fs::RESTART_NAME), &marker.encode())?;
    }
    let old: Vec<Arc<Segment>> = {
        let guard = pin();
        shared.segments().load(&guard).segments().to_vec()
    };
    if let Some(control) = shared.control() {
        // Readers in other processes hide every old segment from the
        // generation `truncated` sets on (whatever its offsets).
        control.restarting(new.sequence);
        control.truncated(old[0].base());
    }
    for segment in old.iter().rev() {
        vfs.remove(segment.path())?;
        fs::remove_if_present(vfs, &fs::cut_path(dir, segment.base()))?;
    }
    vfs.sync_dir(dir)?;
    let (segment, appender) = new.install(vfs, dir, n)?;
    // Every old record is hidden before the new list is swapped in: a
    // cursor holding an old segment finds nothing more there and moves on
    // into the new list (below `n`, that is `Error::Purged`).
    shared.segments().update(|_| {
        for gone in &old {
            gone.cut_at(gone.base());
        }
        (Some(SegmentList::new(vec![segment])), ())
    });
    // And those retention took out of the list that a cursor still holds.
    shared.purged().hide(u64::MAX);
    pause.restart_at(n);
    pause.set_durable(n);
    shared.count_truncation();
    if let Some(control) = shared.control() {
        control.restarted(n, new.sequence);
        remote::wake_all(control.words());
    }
    shared.reclaimer().release(old);
    Ok(appender)
}

/// The last step of a restart: its marker goes (the new segment is
/// durable, the old ones are gone).
pub(crate) fn finish_restart(shared: &Shared) -> io::Result<()> {
    let vfs = shared.vfs();
    if fs::mutant(vfs) != fs::Mutant::RestartWithoutMarker {
        vfs.remove(&shared.dir().join(fs::RESTART_NAME))?;
    }
    vfs.sync_dir(shared.dir())
}
