//! Operational tables: recovery after an unclean shutdown, retention
//! cleanup.

use std::time::Instant;

use murakami::{Log, Options};

use crate::fixtures::drain_epoch_garbage;
use crate::seed;
use crate::stats::{self, Reps, Table};
use crate::workloads::{check_recovery, log_with_sealed, snapshots};
use crate::{Out, Plan, progress};

/// Payload length of the recovered records.
const LEN: usize = 256;

/// Prints the recovery and retention tables.
pub fn sections(plan: &Plan, out: &mut Out) {
    out.section("## Operational Benchmarks", "");
    recovery(plan, out);
    retention(plan, out);
}

fn recovery(plan: &Plan, out: &mut Out) {
    let mut table = Table::new(&[
        "Records",
        "Recovery Time",
        "Scan Rate (records/s)",
        seed::COLUMN,
        "Ratio",
    ]);
    for records in [1_000u64, 10_000, 100_000, 1_000_000] {
        let name = stats::num(records as f64);
        if !plan.recovery.contains(&records) {
            table.not_measured(&name, "`--smoke` opens the small logs only");
            continue;
        }
        progress(&format!("recovery, {records} records"));
        let (unclean, _clean) = snapshots(records, LEN);
        check_recovery(&unclean, &Options::default(), records, false);
        drain_epoch_garbage();
        let ns = Reps::of((0..plan.reps).map(|_| {
            let dir = unclean.restore();
            let start = Instant::now();
            let log = Log::open(dir.path(), Options::default()).expect("open");
            let elapsed = start.elapsed();
            drop(log);
            drop(dir);
            drain_epoch_garbage();
            elapsed.as_nanos() as f64
        }));
        let seed = seed::recovery(records);
        table.row(vec![
            name,
            stats::ns_spread(&ns),
            stats::rate_spread(&ns.map(|ns| records as f64 * 1e9 / ns)),
            if records == 1_000_000 {
                "— (the seed has no 1M row; it extrapolated ~230 ms on its M1)".into()
            } else {
                seed::cell(seed)
            },
            seed::ratio(seed, ns.median()),
        ]);
    }
    out.table(
        "### Recovery (After Unclean Shutdown)",
        "`Log::open` (default options: 64 MiB segments, prefaulting on) of a copy of a log's \
         files taken while it was open, right after a `sync`: what a crash after that sync \
         leaves, so the open runs crash recovery (every record's CRC, the scan for garbage \
         after the tail, the index). The copy is written and fsynced before the timing \
         (page cache warm but clean, as after a crash of the process, not of the machine); \
         only the open is timed (`benches/recovery.rs`, `unclean`).",
        &table,
    );
}

fn retention(plan: &Plan, out: &mut Out) {
    progress("retention cleanup");
    let mut table = Table::new(&["Segments Deleted", "Cleanup Time", seed::COLUMN, "Ratio"]);
    let reps = plan.reps.max(5);
    for deleted in [0usize, 4, 9] {
        let ns = Reps::of((0..reps).map(|_| {
            let mut log = log_with_sealed(deleted);
            let start = Instant::now();
            let removed = log.writer.cleanup().expect("cleanup");
            let elapsed = start.elapsed();
            assert_eq!(removed.segments, deleted);
            drop(log);
            drain_epoch_garbage();
            elapsed.as_nanos() as f64
        }));
        table.row(vec![
            deleted.to_string(),
            stats::ns_spread(&ns),
            seed::cell(seed::retention(deleted)),
            seed::ratio(seed::retention(deleted), ns.median()),
        ]);
    }
    out.table(
        "### Retention Cleanup",
        &format!(
            "`Writer::cleanup` on a log of 1 MiB segments whose retention removes every \
             sealed one; the log is built before the timing. The cleanup unmaps the removed \
             segments before it returns, so their disk space is back at once. Median of \
             {reps} repetitions."
        ),
        &table,
    );
}
