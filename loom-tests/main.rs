//! Loom models over murakami's real publication, reclamation, sync and
//! wake-up code.
//!
//! `cargo test --features loom` runs them (preemption bound 2 unless
//! `LOOM_MAX_PREEMPTIONS` says otherwise); `RUSTFLAGS="--cfg crossbeam_loom"`
//! adds the models of the epoch-protected segment list. Each model records
//! the outcomes it saw and asserts that the expected set was reached (no
//! vacuous pass), and each has a `#[should_panic]` mutant — the same model
//! over a deliberately broken variant of the code — that loom must catch.
//!
//! The models: the tail publication (a reader never sees a record before
//! its bytes; the bytes themselves are loom-tracked cells); the durable
//! offset (never past the tail or the flush; a durable reader reads whole
//! records); a roll crossed by a real cursor (no gap, no duplicate); a
//! prefix purge while a reader holds a guard and a zero-copy slice (the
//! removed segment is unmapped only after the reader lets go); group commit
//! through the real `SharedWriter` (every acknowledged append is below the
//! durable offset and covered by a completed flush); the background syncer
//! of `SyncPolicy::Interval` against the producer (the durable offset never
//! ahead of the tail or of a completed flush; after the close everything is
//! durable); the tailing wake-up (no lost wake-up); the flush word group
//! commit's followers sleep on (no lost wake-up); a truncation retiring a
//! segment a reader holds (unmapped only after the reader lets go); a
//! cursor standing at a segment's base when a truncation cuts there (it
//! goes on in the new history); a failed truncation against a sync (latched
//! before syncs go on); retention's header flush against a sync (never side
//! by side); the close (it wakes every waiter); and, for readers in other
//! processes (threads stand in for processes), the follower's publication
//! (a reader process's `Follower`, over its own read-only map of the
//! writer's bytes, publishes a frame only after its bytes, through the
//! commit word: the bytes and the commit words are loom's, shared by every
//! map of the same bytes) and the cross-process wake-up (a reader process
//! asleep on the control file's wake word, checking through its follower,
//! is woken by the commit).
//!
//! A third cross-process model pairs a reader process's sleeper with
//! another of its threads catching up: the sleeper's last check waits for
//! that catch-up (with `try_lock`, the mutant, it said "not ready" and slept
//! past the commit: a lost wake-up loom reports as a deadlock).
//!
//! One soak is ignored by default: group commit with three appenders (about
//! a minute at bound 2 in a debug build); run it with
//! `cargo test --features loom --test loom -- --ignored group_commit_of_three`.
//!
//! crossbeam-epoch shows its atomics to loom only under `--cfg
//! crossbeam_loom`. Without it, the models that swap the segment list while
//! another thread reads it (roll, purge) would see false races, so they are
//! reported as ignored, with that reason. A model that fails inside loom
//! may abort the process instead of panicking (a deadlock always does;
//! under `crossbeam_loom` any failure does), so each mutant runs in a child
//! process (this test binary, asked for that one test), and the parent
//! panics with the failure the child's model reported.
#![cfg(feature = "loom")]

use std::collections::BTreeSet;
use std::sync::Mutex;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use murakami::loom_api::{self, Background, Commit, Waker};

fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder
}

/// Executions begun by the models of this process (what a mutant's child
/// process reports when its model fails).
static EXECUTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs `model` under loom and prints how many executions it explored.
fn explore(name: &str, model: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&runs);
    let builder = builder();
    let bound = builder.preemption_bound;
    let start = std::time::Instant::now();
    builder.check(move || {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        EXECUTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    eprintln!(
        "loom model {name}: {} executions at preemption bound {bound:?} in {:?}",
        runs.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed()
    );
}

/// Set in the child process that runs one mutant (see [`mutant`]).
const CHILD: &str = "MURAKAMI_LOOM_MUTANT";
/// How the child reports the failure loom (or the model) found.
const CAUGHT: &str = "loom caught the mutant: ";

/// Runs the model of a mutant, which must fail: `test` is the name of the
/// calling test (`#[should_panic]`).
///
/// A model that fails inside loom may abort the process rather than panic:
/// a deadlock (a lost wake-up) always does, and under `--cfg
/// crossbeam_loom` any failure does (the epoch's collector is dropped
/// outside the model while unwinding). So the test runs itself again in a
/// child process, where the first panic is printed and ends the process at
/// once, and panics with the child's message; if the child's model passes,
/// so does this call, and the test fails for not panicking.
fn mutant(test: &str, model: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        std::panic::set_hook(Box::new(|info| {
            let executions = EXECUTIONS.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!("{CAUGHT}in execution {executions}, {info}");
            std::process::exit(101);
        }));
        model();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary");
    let output = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .output()
        .expect("run the mutant in a child process");
    let stderr = String::from_utf8_lossy(&output.stderr);
    match stderr.find(CAUGHT) {
        Some(at) => {
            let message = stderr[at..].lines().take(3).collect::<Vec<_>>().join(" | ");
            panic!("{message} (in a child process: {})", output.status);
        }
        None => eprintln!(
            "the mutant survived in the child process ({}):\n{stderr}",
            output.status
        ),
    }
}

/// Record `i`'s bytes in the models.
fn payload(i: u64) -> Vec<u8> {
    vec![i as u8 + 1; 3 + i as usize]
}

/// A producer writes two records, publishing after each, while a reader
/// reads whatever is published: every record it sees has exactly its bytes.
fn publication(relaxed: bool) -> BTreeSet<u32> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("publication", move || {
        let (mut producer, consumer) = loom_api::region(256);
        let reader = thread::spawn(move || {
            let count = consumer.count();
            for i in 0..u64::from(count) {
                assert_eq!(consumer.read(i), Some(payload(i)), "record {i}");
            }
            count
        });
        for i in 0..2 {
            assert!(producer.write(&payload(i)));
            if relaxed {
                producer.publish_relaxed();
            } else {
                producer.publish();
            }
        }
        let count = reader.join().unwrap();
        outcomes.lock().unwrap().insert(count);
    });
    seen.lock().unwrap().clone()
}

#[test]
fn a_reader_never_sees_a_record_before_its_bytes() {
    let seen = publication(false);
    assert_eq!(seen, BTreeSet::from([0, 1, 2]), "outcomes reached");
}

#[test]
#[should_panic]
fn mutant_relaxed_publish_is_caught() {
    mutant("mutant_relaxed_publish_is_caught", || {
        publication(true);
    });
}

/// A producer appends a record; a syncer syncs; a durable reader reads. The
/// durable offset never passes the tail, never passes what was flushed, and
/// a durable record read has its bytes.
fn durable_offset(durable_first: bool) -> BTreeSet<u64> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("durable offset", move || {
        let (mut producer, log) = loom_api::durable(256);
        let syncer = {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                if durable_first {
                    log.sync_durable_first()
                } else {
                    log.sync()
                }
            })
        };
        let reader = {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let durable = log.durable_offset();
                let flushed = log.flushed();
                let record = (durable >= 1).then(|| (log.frame_end(0), log.read_durable(0)));
                (durable, flushed, record)
            })
        };
        assert!(producer.write(&payload(0)));
        producer.publish();
        syncer.join().unwrap();
        // Checked once every thread is done: a panic while another thread
        // is inside the epoch would abort the run under crossbeam_loom.
        let (durable, flushed, record) = reader.join().unwrap();
        let mut problem = None;
        if let Some((end, bytes)) = record {
            if end.is_none_or(|end| flushed < end) {
                problem = Some("durable before flushed");
            } else if bytes != Some(payload(0)) {
                problem = Some("a durable record read wrong");
            }
        }
        if log.durable_offset() > 1 {
            problem = Some("durable past the tail");
        }
        // Drop every loom object before a failed check panics: unwinding
        // through them (the epoch's, under crossbeam_loom) aborts the run.
        drop((log, producer));
        assert_eq!(problem, None);
        outcomes.lock().unwrap().insert(durable);
    });
    seen.lock().unwrap().clone()
}

#[test]
fn the_durable_offset_never_passes_the_flush_or_the_tail() {
    assert_eq!(
        durable_offset(false),
        BTreeSet::from([0, 1]),
        "outcomes reached"
    );
}

#[test]
#[should_panic]
fn mutant_durable_offset_before_the_flush_is_caught() {
    mutant("mutant_durable_offset_before_the_flush_is_caught", || {
        durable_offset(true);
    });
}

/// A producer appends a record, rolls, appends another; a reader's cursor
/// (the real one) reads from offset 0 across the boundary: no gap, no
/// duplicate, whole records.
fn roll(gap: bool) -> BTreeSet<u64> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("roll", move || {
        let (mut producer, reader) = loom_api::rolling(256);
        let cursor_thread = thread::spawn(move || {
            let mut cursor = reader.cursor(0).unwrap();
            let mut expect = 0;
            while expect < 2 {
                match cursor.next_ref().unwrap() {
                    Some(record) => {
                        assert_eq!(record.offset, expect, "gap or duplicate");
                        assert_eq!(record.payload, payload(expect));
                        expect += 1;
                    }
                    None => break,
                }
            }
            expect
        });
        producer.append(&payload(0));
        if gap {
            producer.roll_with_a_gap();
        } else {
            producer.roll();
        }
        producer.append(&payload(1));
        let read = cursor_thread.join().unwrap();
        outcomes.lock().unwrap().insert(read);
    });
    seen.lock().unwrap().clone()
}

// The roll swaps the segment list through crossbeam-epoch, whose atomics
// loom sees only under `RUSTFLAGS="--cfg crossbeam_loom"`; without it loom
// reports a false causality violation on the new segment, so these two run
// only in that deeper run (and say so otherwise).
#[test]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn a_cursor_crosses_a_roll_without_gap_or_duplicate() {
    assert_eq!(roll(false), BTreeSet::from([0, 1, 2]), "outcomes reached");
}

#[test]
#[should_panic]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn mutant_roll_with_a_gap_is_caught() {
    assert_eq!(roll(true), BTreeSet::from([0, 1, 2]), "outcomes reached");
}

/// A waiter about to sleep and a producer publishing: either the waiter's
/// last check sees the publication, or the producer sees the waiter (and
/// wakes it). Both false is a lost wake-up. (Checked at the decision point:
/// a real lost wake-up would block forever, which loom reports by aborting
/// the test process rather than with a catchable panic.)
fn wake_up(fenced: bool) -> BTreeSet<(bool, bool)> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("wake-up decision", move || {
        let waker = Arc::new(Waker::default());
        let flag = Arc::new(AtomicBool::new(false));
        let (w, f) = (Arc::clone(&waker), Arc::clone(&flag));
        let waiter = thread::spawn(move || w.check_before_sleep(|| f.load(Ordering::Acquire)));
        flag.store(true, Ordering::Release);
        let saw_waiter = if fenced {
            waker.wake()
        } else {
            waker.wake_unfenced()
        };
        let saw_flag = waiter.join().unwrap();
        waker.unregister();
        assert!(saw_flag || saw_waiter, "lost wake-up");
        outcomes.lock().unwrap().insert((saw_flag, saw_waiter));
    });
    seen.lock().unwrap().clone()
}

/// The whole wait: a sleeping waiter is woken by the producer.
#[test]
fn a_sleeping_waiter_is_woken() {
    explore("sleep and wake", || {
        let waker = Arc::new(Waker::default());
        let flag = Arc::new(AtomicBool::new(false));
        let (w, f) = (Arc::clone(&waker), Arc::clone(&flag));
        let waiter = thread::spawn(move || w.wait(|| f.load(Ordering::Acquire)));
        flag.store(true, Ordering::Release);
        waker.wake();
        assert!(waiter.join().unwrap());
    });
}

#[test]
fn no_wake_up_is_lost() {
    let seen = wake_up(true);
    for outcome in [(true, false), (false, true), (true, true)] {
        assert!(
            seen.contains(&outcome),
            "{outcome:?} never explored: {seen:?}"
        );
    }
}

#[test]
#[should_panic]
fn mutant_unfenced_wake_up_is_caught() {
    mutant("mutant_unfenced_wake_up_is_caught", || {
        wake_up(false);
    });
}

/// How the producer's side retires a segment a reader is reading in place.
#[derive(Clone, Copy)]
enum Retire {
    /// The real prefix purge of the segment holding record 0 (files
    /// removed, the list swapped under the epoch, garbage collected at
    /// once).
    Purge,
    /// The real list swap of a committed truncation from offset 1: the
    /// segment holding record 1 starts there, so it is dropped whole and a
    /// new active segment starts at 1; then it is released and garbage
    /// collected.
    Truncate,
}

/// A reader pins, reads a record in place and uses the slice, while the
/// producer's side retires the segment holding it (`how`). The segment must
/// stay mapped while the guard lives: every use of the slice reads a
/// loom-tracked "unmapped" cell that the unmap writes, so a use not ordered
/// before the unmap is a causality violation, and one after it a failed
/// check. With `unmap_at_once`, the mutant: the segment is unmapped as soon
/// as it leaves the list. Outcomes: (the reader read the record rather than
/// finding it gone, the segment was unmapped before the model ended).
fn retire(how: Retire, unmap_at_once: bool) -> BTreeSet<(bool, bool)> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    let (name, at) = match how {
        Retire::Purge => ("retention", 0),
        Retire::Truncate => ("truncation", 1),
    };
    explore(name, move || {
        let (first, second) = (payload(0), payload(1));
        let (log, reader) = loom_api::retiring(256, [&first, &second]);
        let log = Arc::new(log);
        let reading = {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let guard = reader.pin();
                let read = match reader.get(at, &guard) {
                    Ok(record) => {
                        assert!(!log.is_unmapped_under(record.payload), "use after unmap");
                        assert_eq!(record.payload, payload(at));
                        true
                    }
                    Err(
                        murakami::Error::Purged { .. } | murakami::Error::OffsetOutOfRange { .. },
                    ) => false,
                    Err(e) => panic!("{e}"),
                };
                drop(guard);
                read
            })
        };
        let retired = match (how, unmap_at_once) {
            (Retire::Purge, false) => log.purge_before(1),
            (Retire::Purge, true) => log.purge_unmapping_at_once(1),
            (Retire::Truncate, unmap_at_once) => log.truncate_from(1, unmap_at_once),
        };
        assert_eq!(retired, 1, "one segment retired");
        let read = reading.join().unwrap();
        let unmapped = log.unmapped(at as usize);
        outcomes.lock().unwrap().insert((read, unmapped));
    });
    seen.lock().unwrap().clone()
}

/// Runs `retire` without the mutant: the reader both read the record and
/// found it gone, and either way the segment was unmapped in the end.
fn retired_after_readers(how: Retire) {
    let seen = retire(how, false);
    for outcome in [(true, true), (false, true)] {
        assert!(
            seen.contains(&outcome),
            "{outcome:?} never explored: {seen:?}"
        );
    }
}

// The purge swaps the segment list through crossbeam-epoch, and the unmap
// waits for it: loom sees that only under `--cfg crossbeam_loom`.
#[test]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn a_purged_segment_is_unmapped_only_after_its_readers_let_go() {
    retired_after_readers(Retire::Purge);
}

#[test]
#[should_panic]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn mutant_immediate_unmap_is_caught() {
    mutant("mutant_immediate_unmap_is_caught", || {
        retire(Retire::Purge, true);
    });
}

// Like the purge, the truncation retires segments through crossbeam-epoch.
#[test]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn a_truncated_segment_is_unmapped_only_after_its_readers_let_go() {
    retired_after_readers(Retire::Truncate);
}

#[test]
#[should_panic]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn mutant_truncation_unmapping_at_once_is_caught() {
    mutant("mutant_truncation_unmapping_at_once_is_caught", || {
        retire(Retire::Truncate, true);
    });
}

/// Two records are published; a truncation from 1 fails after it began
/// changing the log, while another thread (the background syncer, or a
/// group-commit leader) syncs. The failure must be latched before syncs run
/// again, so the durable offset never ends above the cut: the sync either
/// ran before the truncation paused syncs, or is refused after it.
/// The truncation side is `SyncPause::fail`, the call through which
/// `Writer::truncate_from` latches every failure once it has paused syncs
/// (a real truncation needs files); the sync is the real one.
/// With `latch_after_release`, the mutant: the pause let go before the
/// latch. Outcomes: whether the sync was refused.
fn failed_truncation_against_a_sync(latch_after_release: bool) -> BTreeSet<bool> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("failed truncation", move || {
        let (mut producer, log) = loom_api::durable(256);
        for i in 0..2 {
            assert!(producer.write(&payload(i)));
        }
        producer.publish();
        let syncing = {
            let log = Arc::clone(&log);
            thread::spawn(move || log.try_sync().is_none())
        };
        log.fail_truncation(1, latch_after_release);
        let refused = syncing.join().unwrap();
        assert!(
            log.durable_offset() <= 1,
            "a sync raised the durable offset over a failed truncation's cut"
        );
        outcomes.lock().unwrap().insert(refused);
    });
    seen.lock().unwrap().clone()
}

#[test]
fn a_failed_truncation_latches_before_syncs_go_on() {
    let seen = failed_truncation_against_a_sync(false);
    assert_eq!(seen, BTreeSet::from([false, true]), "both orders explored");
}

#[test]
#[should_panic]
fn mutant_truncation_latching_after_the_pause_is_caught() {
    mutant(
        "mutant_truncation_latching_after_the_pause_is_caught",
        || {
            failed_truncation_against_a_sync(true);
        },
    );
}

/// What a cursor standing at a truncation point read next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Next {
    /// Nothing yet (the tail).
    Nothing,
    /// The discarded history's record.
    Old,
    /// The new history's record.
    New,
}

/// A cursor stands at offset 1, in the segment that starts there, while the
/// producer's side truncates from 1 (the real list swap: that segment
/// leaves the list whole) and appends a new record 1 in the new active
/// segment. The reader first reads the truncation count, then the cursor:
/// once it has seen the truncation, the cursor must never return the
/// discarded record 1 (it may find nothing yet, or the new one).
/// With `keep_cut_at_base`, the mutant: the swap as it was before issue 11,
/// which dropped the segment from the list without hiding its records.
/// Outcomes: (the reader saw the truncation, what the cursor read).
fn cursor_across_a_truncation_at_a_base(keep_cut_at_base: bool) -> BTreeSet<(bool, Next)> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("truncation at a segment's base", move || {
        let (old, new) = (payload(1), payload(7));
        let (log, reader) = loom_api::retiring(256, [&payload(0), &old]);
        let log = Arc::new(log);
        let mut cursor = reader.cursor(1).unwrap();
        let reading = {
            let log = Arc::clone(&log);
            let (old, new) = (old.clone(), new.clone());
            thread::spawn(move || {
                let truncated = log.truncations() == 1;
                let next = match cursor.next_ref().unwrap() {
                    None => Next::Nothing,
                    Some(r) if r.offset == 1 && r.payload == old.as_slice() => Next::Old,
                    Some(r) if r.offset == 1 && r.payload == new.as_slice() => Next::New,
                    Some(r) => panic!("cursor read {r:?}"),
                };
                assert!(
                    !(truncated && next == Next::Old),
                    "a cursor returned a discarded record after the truncation"
                );
                (truncated, next)
            })
        };
        log.truncate_and_append(1, &new, keep_cut_at_base);
        let outcome = reading.join().unwrap();
        outcomes.lock().unwrap().insert(outcome);
    });
    seen.lock().unwrap().clone()
}

// The list swap goes through crossbeam-epoch, like the purge's.
#[test]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn a_cursor_at_a_truncated_base_goes_on_in_the_new_history() {
    let seen = cursor_across_a_truncation_at_a_base(false);
    for outcome in [(false, Next::Old), (true, Next::Nothing), (true, Next::New)] {
        assert!(
            seen.contains(&outcome),
            "{outcome:?} never explored: {seen:?}"
        );
    }
}

#[test]
#[should_panic]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn mutant_truncation_keeping_the_cut_segment_at_its_base_is_caught() {
    mutant(
        "mutant_truncation_keeping_the_cut_segment_at_its_base_is_caught",
        || {
            cursor_across_a_truncation_at_a_base(true);
        },
    );
}

/// A purge removes segment 0, so it flushes the header of the new first
/// segment, which is the active one, while a sync (the background syncer, a
/// group-commit leader) flushes that segment's records. The two flushes
/// must never run at once: the kernel reports a write-back error to only
/// one flush of a file, and the one that gets it must latch the writer
/// before the other can count its own success as durability
/// (`Syncer::flush_exclusive`). With `beside_syncs`, the mutant: the purge's
/// flush does not wait for syncs. Outcomes: whether the header was flushed
/// first.
fn retention_flush_beside_a_sync(beside_syncs: bool) -> BTreeSet<bool> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("retention's flush beside a sync", move || {
        let (log, _reader) = loom_api::retiring(256, [&payload(0), &payload(1)]);
        log.watch_flushes(beside_syncs);
        let log = Arc::new(log);
        let syncing = {
            let log = Arc::clone(&log);
            thread::spawn(move || log.sync())
        };
        assert_eq!(log.purge_before(1), 1, "one segment removed");
        assert_eq!(syncing.join().unwrap(), 2, "the records are durable");
        let first = log.header_flushed_first().expect("both flushed");
        outcomes.lock().unwrap().insert(first);
    });
    seen.lock().unwrap().clone()
}

// The purge swaps the segment list through crossbeam-epoch.
#[test]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn retention_never_flushes_beside_a_sync() {
    let seen = retention_flush_beside_a_sync(false);
    assert_eq!(seen, BTreeSet::from([false, true]), "both orders explored");
}

#[test]
#[should_panic]
#[cfg_attr(
    not(crossbeam_loom),
    ignore = "needs RUSTFLAGS=\"--cfg crossbeam_loom\""
)]
fn mutant_retention_flushing_beside_a_sync_is_caught() {
    mutant("mutant_retention_flushing_beside_a_sync_is_caught", || {
        retention_flush_beside_a_sync(true);
    });
}

/// Why an acknowledged durable append is wrong, if it is.
fn unacknowledgeable(log: &loom_api::Flushes, offset: u64) -> Option<&'static str> {
    if log.durable_offset() <= offset {
        return Some("acknowledged at or past the durable offset");
    }
    if log.frame_end(offset).is_none_or(|end| log.flushed() < end) {
        return Some("acknowledged before a flush covered it");
    }
    None
}

/// `appenders` threads (this one and the others spawned) append durably
/// through one `SharedWriter` (the real group commit: leader by
/// compare-and-swap, gather, followers asleep on the flush word until the
/// leader's flush ends). Each checks, when its append is acknowledged, that the record is
/// below the durable offset and that a completed flush covers it.
/// Outcome: how many flushes ran (one shared by all, or more).
fn group_commit(appenders: u64, acknowledge_any_flush: bool) -> BTreeSet<usize> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("group commit", move || {
        let (writer, log) = loom_api::group_commit(256, acknowledge_any_flush);
        let others: Vec<_> = (1..appenders)
            .map(|i| {
                let (writer, log) = (writer.clone(), log.clone());
                thread::spawn(move || {
                    let offset = writer.append_durable(&payload(i)).unwrap();
                    unacknowledgeable(&log, offset)
                })
            })
            .collect();
        let offset = writer.append_durable(&payload(0)).unwrap();
        let mut problem = unacknowledgeable(&log, offset);
        for other in others {
            problem = problem.or(other.join().unwrap());
        }
        assert_eq!(problem, None);
        assert_eq!(log.durable_offset(), appenders);
        outcomes.lock().unwrap().insert(log.flushes());
    });
    seen.lock().unwrap().clone()
}

#[test]
fn group_commit_acknowledges_only_what_a_completed_flush_covers() {
    assert_eq!(
        group_commit(2, false),
        BTreeSet::from([1, 2]),
        "outcomes reached"
    );
}

/// The soak: three appenders (two followers parked at once, a follower the
/// flush did not cover leading the next one).
#[test]
#[ignore = "soak, about a minute at bound 2: run with -- --ignored group_commit_of_three"]
fn group_commit_of_three_appenders() {
    assert_eq!(
        group_commit(3, false),
        BTreeSet::from([1, 2, 3]),
        "outcomes reached"
    );
}

#[test]
#[should_panic]
fn mutant_follower_acknowledged_by_any_flush_is_caught() {
    mutant(
        "mutant_follower_acknowledged_by_any_flush_is_caught",
        || {
            group_commit(2, true);
        },
    );
}

/// The word group-commit followers sleep on: a follower registers and
/// checks the count while a leader advances it and looks for sleepers.
/// Either the follower sees the advance (and does not sleep) or the leader
/// sees the follower (and wakes it). Outcomes: (would sleep, saw a sleeper).
fn flush_word_decision(rmw: bool) -> BTreeSet<(bool, bool)> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("flush word decision", move || {
        let word = Arc::new(loom_api::FlushWord::default());
        let before = word.load();
        let w = Arc::clone(&word);
        let follower = thread::spawn(move || w.register(before));
        let saw_sleeper = word.advance(rmw);
        let would_sleep = follower.join().unwrap();
        word.unregister();
        assert!(!would_sleep || saw_sleeper, "lost wake-up");
        outcomes.lock().unwrap().insert((would_sleep, saw_sleeper));
    });
    seen.lock().unwrap().clone()
}

#[test]
fn a_flush_end_is_seen_by_the_follower_or_wakes_it() {
    let outcomes = flush_word_decision(true);
    assert!(
        outcomes.contains(&(true, true)) && outcomes.contains(&(false, false)),
        "both a woken sleeper and a follower that saw the advance: {outcomes:?}"
    );
}

#[test]
#[should_panic]
fn mutant_flush_word_read_with_a_plain_load_is_caught() {
    mutant("mutant_flush_word_read_with_a_plain_load_is_caught", || {
        flush_word_decision(false);
    });
}

/// The whole wait: followers asleep on the word are woken by the advance
/// (a lost wake-up leaves one asleep, which loom reports as a deadlock).
#[test]
fn followers_asleep_on_the_flush_word_are_woken() {
    explore("flush word sleep and wake", || {
        let word = Arc::new(loom_api::FlushWord::default());
        let before = word.load();
        let followers: Vec<_> = (0..2)
            .map(|_| {
                let w = Arc::clone(&word);
                thread::spawn(move || w.wait_until_moved(before))
            })
            .collect();
        word.advance(true);
        for follower in followers {
            follower.join().unwrap();
        }
    });
}

/// A producer appends two records while the background syncer (the real
/// `Periodic` thread running the real sync) syncs; after each append the
/// producer checks that the durable offset is not past the tail and that
/// every durable record was flushed. Then the log closes: the thread stops
/// and everything is durable. Outcomes: (syncs the thread ran, capped at 2;
/// the durable offset the producer last saw before the close).
fn background(variant: Background) -> BTreeSet<(usize, u64)> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("background syncer", move || {
        let (mut producer, log) = loom_api::background(256, variant);
        let mut problem = None;
        let mut durable = 0;
        for i in 0..2 {
            producer.append(&payload(i));
            durable = log.durable_offset();
            if durable > i + 1 {
                problem = problem.or(Some("durable past the tail"));
            }
            if !log.durable_is_flushed() {
                problem = problem.or(Some("durable before flushed"));
            }
        }
        let runs = producer.close();
        if log.durable_offset() != 2 || !log.durable_is_flushed() {
            problem = problem.or(Some("not everything durable after the close"));
        }
        assert_eq!(problem, None);
        outcomes.lock().unwrap().insert((runs.min(2), durable));
    });
    seen.lock().unwrap().clone()
}

#[test]
fn the_background_syncer_never_runs_ahead_and_the_close_makes_all_durable() {
    let seen = background(Background::Real);
    for outcome in [(0, 0), (1, 1), (2, 2)] {
        assert!(
            seen.contains(&outcome),
            "{outcome:?} never explored: {seen:?}"
        );
    }
}

#[test]
#[should_panic]
fn mutant_background_sync_durable_before_the_flush_is_caught() {
    mutant(
        "mutant_background_sync_durable_before_the_flush_is_caught",
        || {
            background(Background::DurableFirst);
        },
    );
}

#[test]
#[should_panic]
fn mutant_close_without_the_last_sync_is_caught() {
    mutant("mutant_close_without_the_last_sync_is_caught", || {
        background(Background::CloseWithoutSync);
    });
}

/// Two readers wait at the tail (the sleeping part of `wait_for`) while
/// the writer closes: both wake and see the close. A lost wake-up leaves a
/// waiter asleep for good, which loom reports as a deadlock. Outcome: how
/// many waiters went to sleep before the close.
fn close(wakes: bool) -> BTreeSet<usize> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("close wakes every waiter", move || {
        let log = loom_api::closing(256);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let log = log.clone();
                thread::spawn(move || log.wait_for_close())
            })
            .collect();
        if wakes {
            log.close();
        } else {
            log.close_without_waking();
        }
        let mut slept = 0;
        for waiter in waiters {
            let (closed, asleep) = waiter.join().unwrap();
            assert!(closed, "a waiter returned before the close");
            slept += usize::from(asleep);
        }
        outcomes.lock().unwrap().insert(slept);
    });
    seen.lock().unwrap().clone()
}

#[test]
fn close_wakes_every_waiter() {
    assert_eq!(close(true), BTreeSet::from([0, 1, 2]), "outcomes reached");
}

#[test]
#[should_panic]
fn mutant_close_without_a_wake_up_is_caught() {
    mutant("mutant_close_without_a_wake_up_is_caught", || {
        close(false);
    });
}

/// A writer appends two records to a segment file while a reader process
/// (threads stand in for processes) follows it: its follower (the real
/// `Follower`, over its own read-only map of the same bytes) loads the
/// commit words, checks the frames and publishes them into its own region,
/// and a reader of that region reads what is published there. The bytes
/// and the commit words are loom's, shared by both maps, so a reader that
/// reaches a record before its bytes is a causality violation; and it must
/// read exactly the written payloads. `commit` is how the writer stores the
/// commit words (a mutant: `Relaxed`, or before the frame's bytes). The
/// follower looks twice, going on from where it stopped. Outcomes: (records
/// the follower published, records the reader saw).
fn follower_publication(commit: Commit) -> BTreeSet<(u32, u32)> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("follower publication", move || {
        let (mut writer, mut following, reader) = loom_api::followed(256, commit);
        let follower = thread::spawn(move || following.follow() + following.follow());
        let reading = thread::spawn(move || {
            let count = reader.count();
            for i in 0..u64::from(count) {
                assert_eq!(reader.read(i), Some(payload(i)), "record {i}");
            }
            count
        });
        for i in 0..2 {
            assert!(writer.write(&payload(i)));
            writer.publish();
        }
        let followed = follower.join().unwrap();
        let read = reading.join().unwrap();
        assert!(read <= followed, "read {read}, published {followed}");
        outcomes.lock().unwrap().insert((followed, read));
    });
    seen.lock().unwrap().clone()
}

#[test]
fn a_follower_publishes_a_record_only_after_its_bytes() {
    assert_eq!(
        follower_publication(Commit::Last),
        BTreeSet::from([(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]),
        "outcomes reached"
    );
}

#[test]
#[should_panic]
fn mutant_relaxed_commit_word_is_caught() {
    mutant("mutant_relaxed_commit_word_is_caught", || {
        follower_publication(Commit::Relaxed);
    });
}

#[test]
#[should_panic]
fn mutant_commit_word_before_the_bytes_is_caught() {
    mutant("mutant_commit_word_before_the_bytes_is_caught", || {
        follower_publication(Commit::First);
    });
}

/// A reader process waits for record 1 (`wake::remote::sleep`: it
/// registers in the control file's sleeper count, issues its barrier,
/// checks, and sleeps on the wake word), its readiness check the real
/// follower's catch-up; the writer appends records 0 and 1, each a commit
/// word and then `wake::remote::wake_sleepers`. Before each sleep either
/// the check sees the commit or the writer sees the sleeper and wakes it
/// (woken by record 0, the reader checks and sleeps again); a lost wake-up
/// leaves the reader asleep for good, which loom reports as a deadlock.
/// With `fenced` false, the mutant: the writer reads the sleeper count with
/// a plain load (`wake_sleepers_unfenced`, with nothing to pair it with the
/// sleeper's barrier). Outcomes: (how many times the reader checked, which
/// of the two appends saw a sleeper).
fn remote_wake_up(fenced: bool) -> BTreeSet<(usize, [bool; 2])> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("cross-process wake-up", move || {
        let (mut writer, sleeper) = loom_api::remote_wake(256);
        let waiting = thread::spawn(move || {
            let checks = sleeper.wait_for(1);
            for i in 0..2 {
                assert_eq!(sleeper.read(i), Some(payload(i)), "record {i}");
            }
            checks
        });
        let saw = [0, 1].map(|i| writer.append(&payload(i), fenced));
        let checks = waiting.join().unwrap();
        let wakes = saw.iter().filter(|&&saw| saw).count();
        assert!(
            checks <= 1 + wakes,
            "{checks} checks after {wakes} wake-ups"
        );
        outcomes.lock().unwrap().insert((checks, saw));
    });
    seen.lock().unwrap().clone()
}

#[test]
fn a_reader_process_asleep_is_woken_by_the_commit() {
    let seen = remote_wake_up(true);
    let expected = [
        (1, [false, false]),
        (2, [true, false]),
        (2, [false, true]),
        (3, [true, true]),
    ];
    for outcome in expected {
        assert!(
            seen.contains(&outcome),
            "{outcome:?} never explored: {seen:?}"
        );
    }
}

#[test]
#[should_panic]
fn mutant_unfenced_remote_wake_up_is_caught() {
    mutant("mutant_unfenced_remote_wake_up_is_caught", || {
        remote_wake_up(false);
    });
}

/// Two threads of a reader process share its view: one catches up once (as
/// a cursor's poll, or a `wait_for` still spinning, does), the other waits
/// for record 0 as in [`remote_wake_up`], while the writer appends it. The
/// waiting thread's check before it sleeps waits for the other's catch-up
/// (`Reader::ready_now`). Outcomes: (whether the polling thread published
/// the record, whether the writer saw a sleeper).
///
/// With `blocking` false, the mutant (the bug the first version of this
/// model found): the check takes the view's lock with `try_lock`, as the
/// spinning check does. The polling thread takes the lock and finds record
/// 0 not committed yet; the writer commits it and finds no sleeper; the
/// waiting thread registers, its check finds the lock taken, so "not
/// ready", and it sleeps; the polling thread lets go. Nobody wakes the
/// sleeper for record 0 (a real process slept until the next append or its
/// timeout): loom reports the deadlock.
fn remote_wake_up_beside_a_catch_up(blocking: bool) -> BTreeSet<(bool, bool)> {
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let outcomes = std::sync::Arc::clone(&seen);
    explore("cross-process wake-up beside a catch-up", move || {
        let (mut writer, sleeper) = loom_api::remote_wake(256);
        let other = sleeper.clone();
        let polling = thread::spawn(move || other.catch_up());
        let reading = sleeper.clone();
        let waiting = thread::spawn(move || sleeper.wait_for_with(0, blocking));
        let saw = writer.append(&payload(0), true);
        let published = polling.join().unwrap();
        waiting.join().unwrap();
        assert_eq!(reading.read(0), Some(payload(0)));
        outcomes.lock().unwrap().insert((published, saw));
    });
    seen.lock().unwrap().clone()
}

#[test]
fn a_reader_process_asleep_is_woken_beside_another_threads_catch_up() {
    let seen = remote_wake_up_beside_a_catch_up(true);
    for outcome in [(false, false), (true, false), (false, true)] {
        assert!(
            seen.contains(&outcome),
            "{outcome:?} never explored: {seen:?}"
        );
    }
}

#[test]
#[should_panic]
fn mutant_try_lock_in_the_sleepers_check_is_caught() {
    mutant("mutant_try_lock_in_the_sleepers_check_is_caught", || {
        remote_wake_up_beside_a_catch_up(false);
    });
}
