//! Operational tables: recovery after an unclean shutdown, retention
//! cleanup.

use std::time::Instant;

use murakami::{Log, Options};

use crate::fixtures::drain_epoch_garbage;
use crate::peers;
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
    let mut ours = Vec::new();
    for records in [1_000u64, 10_000, 100_000, 1_000_000] {
        let name = stats::num(records as f64);
        if !plan.recovery.contains(&records) {
            table.not_measured(
                &name,
                &format!(
                    "`{}` opens the smaller logs only",
                    plan.flag().trim_start_matches(" -- ")
                ),
            );
            continue;
        }
        progress(&format!("recovery, {records} records"));
        let (unclean, clean) = snapshots(records, LEN);
        check_recovery(&unclean, &Options::default(), records, false);
        check_recovery(&clean, &Options::default(), records, true);
        drain_epoch_garbage();
        let open = |snapshot: &crate::workloads::Snapshot| {
            Reps::of((0..plan.reps).map(|_| {
                let dir = snapshot.restore();
                let start = Instant::now();
                let log = Log::open(dir.path(), Options::default()).expect("open");
                let elapsed = start.elapsed();
                drop(log);
                drop(dir);
                drain_epoch_garbage();
                elapsed.as_nanos() as f64
            }))
        };
        let ns = open(&unclean);
        // The peers' logs are closed cleanly: they are compared with
        // murakami's open of a cleanly closed log.
        let clean_ns = open(&clean);
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
        ours.push((records, clean_ns));
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
    let mut table = peers::table(&["Records"], "murakami (clean close, this run)");
    for (records, ours) in &ours {
        progress(&format!("recovery, peers, {records} records"));
        for kind in peers::ALL {
            let ns = peers::recoveries(plan, kind, *records, LEN);
            out.versus(
                &format!("open {}", count_name(*records)),
                kind.name,
                &ns,
                ours,
            );
            let mut row = peers::row(&[stats::num(*records as f64)], kind, LEN, &ns, ours);
            if let Ok(ns) = &ns {
                // Records per second, not bytes: the throughput and ops
                // columns of an open are its scan rate.
                row[2] = "—".into();
                row[4] = stats::rate_spread(&ns.map(|ns| *records as f64 * 1e9 / ns));
            }
            table.row(row);
        }
    }
    out.table(
        "#### Recovery: Peers",
        "Each peer's open of a log of the same records of 256 B, closed cleanly after one \
         writer appended them (and synced them if the peer can): the peer's own recovery \
         at open, whatever it is (okaywal and wal-db scan every record's CRC; commitlog \
         reads each index's end, no record; khata-rs walks record headers when its writer \
         opens the file), beside murakami's open of its log closed cleanly (taken after \
         `close`, restored like the unclean copy above). Only the open is timed; the records found are counted after it \
         and checked. Ops/sec here is records per second of the open. Page cache warm.",
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

/// `1K`, `1M` records.
fn count_name(records: u64) -> String {
    match records {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}K", n / 1_000),
        n => n.to_string(),
    }
}
