//! The murakami benchmark report: every table of the Go predecessor's
//! report (`../shared/seed/go-murakami-benchmarks.md`), measured in one
//! run, beside the Go log's figures on the same machine kind; plus what
//! the seed never measured (tailing latency, append latency percentiles
//! with segment rolls, the machine's floors).
//!
//! ```sh
//! cargo run --release --manifest-path bench/Cargo.toml -- [--quick|--smoke] [--out DIR]
//! ```
//!
//! The workloads are the criterion benches' own (`benches/common/`,
//! included below by path); this binary repeats each, takes the median and
//! the spread, and prints Markdown. `--out DIR` also writes the report to
//! `DIR/report.md`.

mod alloc;
mod appends;
mod chart;
mod latency;
mod machine;
mod operations;
mod peers;
mod reads;
mod seed;
mod stats;

// The criterion-free parts of the benches' helpers, shared with them.
#[allow(dead_code)]
#[path = "../../benches/common/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "../../benches/common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../../benches/common/tail.rs"]
mod tail;
#[allow(dead_code)]
#[path = "../../benches/common/workloads.rs"]
mod workloads;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// How big a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Tiny sizes, a few seconds: for CI, so the report cannot rot.
    Smoke,
    /// About two minutes.
    Quick,
    /// About ten minutes.
    Full,
}

/// What a run of a given [`Size`] measures, and how much.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The size.
    pub size: Size,
    /// Repetitions of each measurement.
    pub reps: usize,
    /// Least time of one repetition of a time-bounded measurement.
    pub target: Duration,
    /// Most bytes of frames one repetition of buffered appends writes.
    pub append_cap: u64,
    /// Records of the read fixtures.
    pub records: u64,
    /// Appends per repetition of the concurrent-writer rows.
    pub writer_appends: u64,
    /// Durable appends per repetition of the group-commit rows.
    pub durable_appends: u64,
    /// Reads per repetition of the concurrent-reader rows.
    pub reader_reads: u64,
    /// How long each sync policy appends per round (time-based sync).
    pub interval_round: Duration,
    /// Record counts of the recovery rows.
    pub recovery: &'static [u64],
    /// Samples per run of the tailing-latency rows.
    pub tail_samples: usize,
    /// Timed appends per repetition of the append-latency row.
    pub latency_appends: usize,
    /// Segment size of the append-latency row.
    pub latency_segment: u64,
    /// Single syncs timed for the machine's floors.
    pub sync_samples: usize,
    /// Size of the file the bare append loop writes.
    pub bare_file: usize,
}

impl Plan {
    fn new(size: Size) -> Plan {
        const ALL: &[u64] = &[1_000, 10_000, 100_000, 1_000_000];
        match size {
            Size::Smoke => Plan {
                size,
                reps: 2,
                target: Duration::from_millis(5),
                append_cap: 4 << 20,
                records: 10_000,
                writer_appends: 20_000,
                durable_appends: 64,
                reader_reads: 200_000,
                interval_round: Duration::from_millis(30),
                recovery: &ALL[..2],
                tail_samples: 1_000,
                latency_appends: 20_000,
                latency_segment: 1 << 20,
                sync_samples: 20,
                bare_file: 8 << 20,
            },
            Size::Quick => Plan {
                size,
                reps: 5,
                target: Duration::from_millis(100),
                append_cap: 256 << 20,
                records: 100_000,
                writer_appends: 500_000,
                durable_appends: 2048,
                reader_reads: 1_000_000,
                interval_round: Duration::from_millis(300),
                recovery: &ALL[..3],
                tail_samples: 20_000,
                latency_appends: 500_000,
                latency_segment: 4 << 20,
                sync_samples: 200,
                bare_file: 64 << 20,
            },
            Size::Full => Plan {
                size,
                reps: 7,
                target: Duration::from_millis(300),
                append_cap: 512 << 20,
                records: 100_000,
                writer_appends: 1_000_000,
                durable_appends: 4096,
                reader_reads: 4_000_000,
                interval_round: Duration::from_secs(1),
                recovery: ALL,
                tail_samples: 100_000,
                latency_appends: 2_000_000,
                latency_segment: 4 << 20,
                sync_samples: 1000,
                bare_file: 256 << 20,
            },
        }
    }

    /// The flag that asks for this size.
    fn flag(&self) -> &'static str {
        match self.size {
            Size::Smoke => " -- --smoke",
            Size::Quick => " -- --quick",
            Size::Full => "",
        }
    }
}

/// Runs `f` (which does `n` operations and returns the time they took) in
/// chunks of `chunk` until `target` has been spent in it or `max` operations
/// are done; returns the time and the operations.
pub fn until(
    target: Duration,
    max: u64,
    chunk: u64,
    mut f: impl FnMut(u64) -> Duration,
) -> (Duration, u64) {
    let (mut elapsed, mut done) = (Duration::ZERO, 0);
    while elapsed < target && done < max {
        let n = chunk.min(max - done);
        elapsed += f(n);
        done += n;
    }
    (elapsed, done)
}

/// Nanoseconds per operation.
pub fn per_op(elapsed: Duration, ops: u64) -> f64 {
    elapsed.as_nanos() as f64 / ops.max(1) as f64
}

/// The report as it is printed: each part goes to stdout at once (a long
/// run shows its tables as they come) and is kept for `--out`.
#[derive(Default)]
pub struct Out {
    text: String,
    /// Where `--out` writes the report and its charts.
    dir: Option<PathBuf>,
    /// The charts drawn so far, written with the report.
    charts: Vec<chart::Chart>,
    /// murakami against each peer, workload by workload: the group, the
    /// peer, the ratio (`None` where the peer cannot).
    versus: Vec<(String, &'static str, Option<chart::Point>)>,
}

impl Out {
    /// Keeps `chart` for `--out`, and links it from the report there
    /// (without `--out` no chart is drawn).
    pub fn chart(&mut self, chart: chart::Chart) {
        if self.dir.is_some() {
            self.put(&format!("\n![{}]({})\n", chart.title, chart.file));
            self.charts.push(chart);
        }
    }

    /// Notes how `peer` compared with murakami on the workload `group`.
    pub fn versus(
        &mut self,
        group: &str,
        peer: &'static str,
        theirs: &peers::Can<stats::Reps>,
        ours: &stats::Reps,
    ) {
        let point = theirs.as_ref().ok().map(|t| chart::Point::ratio(t, ours));
        self.versus.push((group.to_string(), peer, point));
    }

    /// Prints `part` and keeps it.
    pub fn put(&mut self, part: &str) {
        print!("{part}");
        self.text.push_str(part);
    }

    /// A heading, a paragraph and a table.
    pub fn table(&mut self, heading: &str, note: &str, table: &stats::Table) {
        self.section(heading, note);
        self.put(&table.markdown());
    }

    /// A heading and a paragraph.
    pub fn section(&mut self, heading: &str, note: &str) {
        let mut part = format!("\n{heading}\n\n");
        if !note.is_empty() {
            let _ = writeln!(part, "{note}\n");
        }
        self.put(&part);
    }
}

/// Says on stderr what the run is doing now.
pub fn progress(what: &str) {
    eprintln!("report: {what}");
}

struct Args {
    size: Size,
    out: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        size: Size::Full,
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => parsed.size = Size::Quick,
            "--smoke" => parsed.size = Size::Smoke,
            "--out" => parsed.out = Some(args.next().ok_or("--out needs a directory")?.into()),
            "-h" | "--help" => {
                return Err("usage: report [--quick|--smoke] [--out DIR]\n\
                     Prints the benchmark report as Markdown (full run: about ten \
                     minutes; --quick: about two; --smoke: a few seconds, tiny sizes). \
                     --out DIR also writes it to DIR/report.md."
                    .into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(parsed)
}

fn main() {
    if process::role().as_deref() == Some(tail::READER_ROLE) {
        return tail::reader_process();
    }
    if process::role().as_deref() == Some(peers::walrus_rust::ROLE) {
        return peers::walrus_rust::helper();
    }
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let plan = Plan::new(args.size);
    let started = Instant::now();
    let steal = process::steal_ms();
    let mut out = Out {
        dir: args.out.clone(),
        ..Out::default()
    };
    out.put(&header(&plan));
    let floors = machine::section(&plan, &mut out);
    peers::overview(&mut out);
    appends::sections(&plan, &floors, &mut out);
    reads::sections(&plan, &mut out);
    operations::sections(&plan, &mut out);
    latency::sections(&plan, &mut out);
    peers::summary(&mut out);
    out.put(&footer(started.elapsed(), process::steal_ms() - steal));
    if let Some(dir) = args.out {
        let path = dir.join("report.md");
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, &out.text))
            .and_then(|()| {
                out.charts
                    .iter()
                    .try_for_each(|c| std::fs::write(dir.join(c.file), c.svg()))
            });
        if let Err(e) = written {
            eprintln!("report: cannot write into {}: {e}", dir.display());
            std::process::exit(1);
        }
        progress(&format!(
            "written to {} with {} charts",
            path.display(),
            out.charts.len()
        ));
    }
}

fn header(plan: &Plan) -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        );
    format!(
        "# murakami benchmark report\n\n\
         Run {} (UTC) at commit {commit}, `cargo run --release --manifest-path \
         bench/Cargo.toml{}`.\n\n\
         Every murakami figure is the median of {} repetitions in this run, with the \
         spread in brackets: lowest–highest over the repetitions (the machine section \
         says where it gives quartiles of single operations instead). Throughput counts \
         payload bytes (MB = 10^6 bytes). The **Go seed** column is the Go predecessor \
         measured on the same machine kind, not in this run \
         (`../shared/seed/go-murakami-on-this-machine.md`, runs 1 and 2 of 2026-11-24, \
         `-benchtime=2s`, on an AMD EPYC with 2 vCPUs, ext4 on a virtio disk; compare \
         the machine section below): the median of its two runs, with both runs in \
         brackets. \
         **Ratio** = the seed's median ÷ murakami's median time per op: above 1x, \
         murakami is faster.\n",
        utc_now(),
        plan.flag(),
        plan.reps,
    )
}

fn footer(elapsed: Duration, steal_ms: u64) -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "\n---\n\nThe run took {:.0} s. Load average at the end: {}. CPU time the \
         hypervisor gave to others during the run (steal, both CPUs): {} ms.\n",
        elapsed.as_secs_f64(),
        load.join(" "),
        steal_ms,
    )
}

/// Now, as `YYYY-MM-DD HH:MM`, UTC.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}
