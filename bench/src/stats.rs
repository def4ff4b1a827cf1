//! Repetitions and how the report prints them: a median with its spread
//! (lowest–highest over the repetitions), durations and rates in human
//! units, ratios, and Markdown tables.

use std::fmt::Write as _;

/// What several repetitions of one measurement gave.
#[derive(Clone, Debug, Default)]
pub struct Reps(pub Vec<f64>);

impl Reps {
    /// Repetitions from values.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Reps {
        Reps(values.into_iter().collect())
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (the mean of the middle two for an even count).
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The lowest value.
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    /// The highest value.
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// Each value mapped (a rate from a time per op, say).
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Reps {
        Reps(self.0.iter().map(|&v| f(v)).collect())
    }
}

/// Picks a unit for `ns` nanoseconds: (divisor, unit).
fn time_unit(ns: f64) -> (f64, &'static str) {
    if ns >= 1e9 {
        (1e9, "s")
    } else if ns >= 1e6 {
        (1e6, "ms")
    } else if ns >= 1e3 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    }
}

/// A number with three significant digits or so (no exponent).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "?".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        group(v.round() as i64)
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// An integer with thousands separators.
fn group(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

/// A duration in nanoseconds, in a human unit: `245 ns`, `85.4 µs`.
pub fn ns(v: f64) -> String {
    let (div, unit) = time_unit(v);
    format!("{} {unit}", num(v / div))
}

/// Times per op, the median with its spread in the median's unit:
/// `245 ns (240–250)`.
pub fn ns_spread(r: &Reps) -> String {
    let (div, unit) = time_unit(r.median());
    format!(
        "{} {unit} ({}–{})",
        num(r.median() / div),
        num(r.min() / div),
        num(r.max() / div)
    )
}

/// A count per second in a human unit: `4.1M`, `9.8K`, `157`.
pub fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", num(v / 1e6))
    } else if v >= 1e3 {
        format!("{}K", num(v / 1e3))
    } else {
        num(v)
    }
}

/// Rates (per second), the median with its spread: `4.1M (3.9M–4.2M)`.
pub fn rate_spread(r: &Reps) -> String {
    format!("{} ({}–{})", rate(r.median()), rate(r.min()), rate(r.max()))
}

/// Plain numbers (MB/s), the median with its spread: `1,491 (1,402–1,530)`.
pub fn num_spread(r: &Reps) -> String {
    format!("{} ({}–{})", num(r.median()), num(r.min()), num(r.max()))
}

/// How many times faster murakami is: the seed's time over ours, `3.2x`
/// (below 1: slower).
pub fn ratio(seed_ns: f64, ours_ns: f64) -> String {
    let r = seed_ns / ours_ns;
    if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 0.1 {
        format!("{r:.1}x")
    } else {
        format!("{r:.3}x")
    }
}

/// A Markdown table, built row by row.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A table of measured rates: the `lead` columns, throughput, latency
    /// and ops/s, the `extra` columns, then the Go seed's figure (under
    /// `seed`, the column's title) and the ratio.
    pub fn measured(lead: &[&str], extra: &[&str], seed: &str) -> Table {
        let mut header = lead.to_vec();
        header.extend(["Throughput (MB/s)", "Latency", "Ops/sec"]);
        header.extend(extra);
        header.extend([seed, "Ratio"]);
        Table::new(&header)
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// Adds a row that could not be measured: its name, then why.
    pub fn not_measured(&mut self, name: &str, why: &str) {
        let mut cells = vec![name.to_string(), format!("not measured: {why}")];
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        };
        line(&mut out, &self.header);
        line(&mut out, &vec!["---".to_string(); self.header.len()]);
        for row in &self.rows {
            line(&mut out, row);
        }
        out
    }
}
