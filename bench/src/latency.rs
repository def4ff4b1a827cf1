//! What the seed never measured: append-to-tailing-reader latency (in the
//! writer's process and in another one) and append latency percentiles
//! with segment rolls included.

use std::time::Duration;

use murakami::Options;

use crate::chart::{self, Chart, Point, Series, Unit};
use crate::fixtures::drain_epoch_garbage;
use crate::stats::{self, Reps, Table};
use crate::tail::{self, Mode, Variant};
use crate::workloads::{append_latencies, percentile};
use crate::{Out, Plan, Size, progress};

/// Prints the latency tables.
pub fn sections(plan: &Plan, out: &mut Out) {
    out.section(
        "## Latency (not in the seed)",
        "Percentiles of single operations; each figure is the median of that percentile \
         over the repetitions, lowest–highest in brackets. On 2 shared vCPUs the tails \
         (p99 and beyond) measure the hypervisor and the scheduler as much as the log.",
    );
    tailing(plan, out);
    appends(plan, out);
}

fn tailing(plan: &Plan, out: &mut Out) {
    let every = Duration::from_micros(10);
    let variant = |name, mode, process| Variant {
        name,
        mode,
        process,
        len: 60,
        every,
        samples: plan.tail_samples,
    };
    let (spin, sleep) = (Some(Duration::MAX), Some(Duration::ZERO));
    let mut variants = vec![
        variant(
            "thread of the writer's process, spinning",
            Mode::Wait(spin),
            false,
        ),
        variant(
            "another process (`Reader::open`), spinning",
            Mode::Wait(spin),
            true,
        ),
    ];
    if plan.size != Size::Smoke {
        variants.insert(
            0,
            variant("floor: a bare atomic queue, no log", Mode::Bare, false),
        );
        variants.push(variant(
            "thread, sleeping at once (`spin(0)`)",
            Mode::Wait(sleep),
            false,
        ));
        variants.push(variant(
            "another process, sleeping at once",
            Mode::Wait(sleep),
            true,
        ));
    }
    let mut table = Table::new(&[
        "Reader",
        "Median",
        "p99",
        "p99.9",
        "Max",
        "Bursts without preemption",
    ]);
    let quantiles = [0.5, 0.99, 0.999, 1.0];
    let mut series = Vec::new();
    let mut ours = Reps::default();
    for (i, v) in variants.iter().enumerate() {
        progress(&format!("tail latency: {}", v.name));
        let runs: Vec<tail::Outcome> = (0..plan.reps).map(|_| tail::run(v)).collect();
        let at = |f: f64| Reps::of(runs.iter().map(|o| tail::at(&o.all, f) as f64));
        if matches!(v.mode, Mode::Wait(Some(Duration::MAX))) && !v.process {
            ours = at(0.5);
        }
        let max = Reps::of(
            runs.iter()
                .map(|o| o.all.last().copied().unwrap_or(0) as f64),
        );
        series.push(Series {
            name: v.name.replace('`', ""),
            color: if matches!(v.mode, Mode::Bare) {
                chart::SEED
            } else {
                chart::PALETTE[i % chart::PALETTE.len()]
            },
            values: quantiles
                .iter()
                .map(|&f| {
                    let reps = if f == 1.0 { max.clone() } else { at(f) };
                    Some(Point::time(&reps))
                })
                .collect(),
        });
        let quiet: usize = runs.iter().map(|o| o.clean_bursts).sum();
        let bursts: usize = runs.iter().map(|o| o.bursts).sum();
        table.row(vec![
            v.name.to_string(),
            stats::ns_spread(&at(0.5)),
            stats::ns_spread(&at(0.99)),
            stats::ns_spread(&at(0.999)),
            stats::ns_spread(&max),
            format!("{quiet} of {bursts}"),
        ]);
    }
    out.table(
        "### Append → Tailing Reader",
        &format!(
            "From just before `append` to the record in the reader's hands (`Cursor::next_wait`), \
             60 B records, one every 10 µs (100k/s, the workload of Chronicle Queue's published \
             figure), {} samples per run after {} of warm-up, {} runs; both ends stamp with \
             `CLOCK_MONOTONIC`, so the figures compare across processes \
             (`benches/tail_latency.rs` documents the method and prints more columns). Bursts \
             without preemption: the 1000-record bursts in which neither thread was preempted.",
            plan.tail_samples.div_ceil(tail::BURST) * tail::BURST,
            tail::WARM_UP,
            plan.reps
        ),
        &table,
    );
    out.chart(Chart {
        file: "tail-latency.svg",
        title: "Append → tailing reader latency".into(),
        subtitle: "60 B records, one every 10 µs; each bar the median over the runs of that \
                   percentile, whiskers: lowest–highest run. Lower is better."
            .into(),
        unit: Unit::Time,
        axis: "latency (log scale)".into(),
        groups: ["median", "p99", "p99.9", "max"].map(String::from).to_vec(),
        series,
        lines: Vec::new(),
    });
    crate::peers::threads::tailing(plan, out, &ours);
}

fn appends(plan: &Plan, out: &mut Out) {
    progress("append latency");
    let mut rolls = Vec::new();
    let runs: Vec<Vec<u64>> = (0..plan.reps)
        .map(|_| {
            let options = Options::default().segment_size(plan.latency_segment);
            let (lat, files) = append_latencies(options, 10_000, plan.latency_appends, 256);
            rolls.push(files.saturating_sub(1));
            drain_epoch_garbage();
            lat
        })
        .collect();
    let mut table = Table::new(&["Percentile", "Append latency"]);
    let (mut groups, mut values) = (Vec::new(), Vec::new());
    for (name, f) in [
        ("median", 0.5),
        ("p90", 0.9),
        ("p99", 0.99),
        ("p99.9", 0.999),
        ("p99.99", 0.9999),
        ("max", 1.0),
    ] {
        let reps = Reps::of(runs.iter().map(|lat| percentile(lat, f) as f64));
        table.row(vec![name.into(), stats::ns_spread(&reps)]);
        groups.push(name.to_string());
        values.push(Some(Point::time(&reps)));
    }
    out.table(
        "### Append Latency, Segment Rolls Included",
        &format!(
            "{} appends of 256 B per repetition, each timed alone with `Instant` (which adds \
             ~25 ns), into a fresh log of {} MiB segments after 10,000 untimed ones; the \
             segments the appends filled ({} rolls per repetition, median) and everything \
             else the producer's thread does are in the tail.",
            plan.latency_appends,
            plan.latency_segment >> 20,
            stats::num(Reps::of(rolls.iter().map(|&r| r as f64)).median())
        ),
        &table,
    );
    out.chart(Chart {
        file: "append-latency.svg",
        title: "Append latency, segment rolls included".into(),
        subtitle: "256 B appends each timed alone; each bar the median over the \
                   repetitions of that percentile, whiskers: lowest–highest."
            .into(),
        unit: Unit::Time,
        axis: "latency (log scale)".into(),
        groups,
        series: vec![Series {
            name: "murakami Writer::append".into(),
            color: chart::MURAKAMI,
            values,
        }],
        lines: Vec::new(),
    });
}
