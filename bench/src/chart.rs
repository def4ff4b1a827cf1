//! The report's charts: grouped bar charts on a logarithmic axis, written
//! as small hand-made SVG files (no plotting crate: the charts are bars,
//! whiskers, a few lines and text, and SVG text needs no font files at
//! build time). Each bar is a median; its whisker spans the spread the
//! tables give in brackets.

use std::fmt::Write as _;

use crate::stats::Reps;

/// What a chart's values are, which decides the axis labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Operations per second (higher is better).
    Rate,
    /// A time in nanoseconds (lower is better).
    Time,
    /// A ratio, `2x` (above 1x murakami is faster).
    Ratio,
}

/// One bar: the median and the whisker's ends, in the chart's unit.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// The bar's height.
    pub median: f64,
    /// The whisker's lower end.
    pub lo: f64,
    /// The whisker's upper end.
    pub hi: f64,
}

impl Point {
    /// Operations per second from times per op: the median rate, and the
    /// rates of the slowest and the fastest repetition.
    pub fn rate(ns: &Reps) -> Point {
        Point {
            median: 1e9 / ns.median(),
            lo: 1e9 / ns.max(),
            hi: 1e9 / ns.min(),
        }
    }

    /// Times as they are.
    pub fn time(ns: &Reps) -> Point {
        Point {
            median: ns.median(),
            lo: ns.min(),
            hi: ns.max(),
        }
    }

    /// How many times slower `theirs` is than `ours` (times per op): the
    /// ratio of the medians, the whisker from the least to the most the two
    /// spreads allow.
    pub fn ratio(theirs: &Reps, ours: &Reps) -> Point {
        Point {
            median: theirs.median() / ours.median(),
            lo: theirs.min() / ours.max(),
            hi: theirs.max() / ours.min(),
        }
    }

    /// A figure without a spread (the seed's runs give one: use [`Point::rate`]).
    pub fn only(v: f64) -> Point {
        Point {
            median: v,
            lo: v,
            hi: v,
        }
    }

    fn usable(&self) -> bool {
        [self.median, self.lo, self.hi]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }
}

/// One series: a name for the legend, a colour, a value per group (`None`
/// where it has none: drawn as a small cross on the axis).
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend's text.
    pub name: String,
    /// A CSS colour.
    pub color: &'static str,
    /// One value per group.
    pub values: Vec<Option<Point>>,
}

/// A grouped bar chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File name (`appends.svg`).
    pub file: &'static str,
    /// The title.
    pub title: String,
    /// A line under the title: what was measured, how to read it.
    pub subtitle: String,
    /// The unit of the values.
    pub unit: Unit,
    /// The vertical axis' label.
    pub axis: String,
    /// The groups along the horizontal axis.
    pub groups: Vec<String>,
    /// The series, drawn side by side in each group.
    pub series: Vec<Series>,
    /// Horizontal reference lines: value and label.
    pub lines: Vec<(f64, String)>,
}

/// Colours: murakami's first, then the seed's grey, then the peers'.
pub const MURAKAMI: &str = "#1f4e9c";
/// The Go seed's colour.
pub const SEED: &str = "#9a9a9a";
/// Other series, in order.
pub const PALETTE: [&str; 8] = [
    "#e6862a", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf", "#6baed6", "#c6a300",
];

const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";
/// Width of one character of 12 px text, roughly (for layout only).
const CHAR: f64 = 6.8;
const BAR: f64 = 14.0;
const GROUP_GAP: f64 = 26.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;
const PLOT_HEIGHT: f64 = 300.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick label for `v` in `unit`.
fn tick(unit: Unit, v: f64) -> String {
    let trim = |x: f64| {
        let s = format!("{x:.1}");
        s.strip_suffix(".0").map_or(s.clone(), str::to_string)
    };
    match unit {
        Unit::Rate => {
            for (div, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "K")] {
                if v >= div {
                    return format!("{}{suffix}", trim(v / div));
                }
            }
            trim(v)
        }
        Unit::Time => {
            for (div, suffix) in [(1e9, " s"), (1e6, " ms"), (1e3, " µs")] {
                if v >= div {
                    return format!("{}{suffix}", trim(v / div));
                }
            }
            format!("{} ns", trim(v))
        }
        Unit::Ratio => {
            if v >= 1.0 {
                format!("{}x", trim(v))
            } else {
                // As many decimals as the first significant digit needs.
                let decimals = (-v.log10()).ceil().max(1.0) as usize;
                format!("{v:.decimals$}x")
            }
        }
    }
}

/// Fills `text` into lines of at most `width` characters, word by word.
fn fill(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Splits `label` into at most two lines of about `width` characters.
fn wrap(label: &str, width: usize) -> Vec<String> {
    if label.chars().count() <= width {
        return vec![label.to_string()];
    }
    let middle = label.len() / 2;
    let split = label
        .match_indices(' ')
        .map(|(i, _)| i)
        .min_by_key(|&i| i.abs_diff(middle));
    match split {
        Some(i) => vec![label[..i].to_string(), label[i + 1..].to_string()],
        None => vec![label.to_string()],
    }
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let series = self.series.len().max(1) as f64;
        let group_width = series * BAR + GROUP_GAP;
        let plot_width = (self.groups.len().max(1) as f64 * group_width).max(520.0);
        let group_width = plot_width / self.groups.len().max(1) as f64;
        // Reference lines are labelled in the right margin.
        let right = if self.lines.is_empty() {
            RIGHT
        } else {
            let longest = self.lines.iter().map(|l| l.1.chars().count()).max();
            12.0 + longest.unwrap_or(0) as f64 * 6.2
        };
        let width = LEFT + plot_width + right;
        let subtitle = fill(&self.subtitle, ((width - LEFT - RIGHT) / CHAR) as usize);

        // The legend, in rows that fit the width.
        let mut legend = Vec::new();
        let (mut x, mut row) = (LEFT, 0usize);
        for s in &self.series {
            let w = 18.0 + s.name.chars().count() as f64 * CHAR + 18.0;
            if x + w > width - right && x > LEFT {
                x = LEFT;
                row += 1;
            }
            legend.push((x, row, s));
            x += w;
        }
        let legend_top = 44.0 + subtitle.len() as f64 * 16.0 + 2.0;
        let top = legend_top + (row as f64 + 1.0) * 18.0 + 12.0;
        let bottom = top + PLOT_HEIGHT;

        // The axis: whole decades around every value.
        let values = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .filter(|p| p.usable())
            .flat_map(|p| [p.lo, p.hi, p.median])
            .chain(
                self.lines
                    .iter()
                    .map(|l| l.0)
                    .filter(|v| v.is_finite() && *v > 0.0),
            );
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (mut d0, mut d1) = if lo <= hi {
            (lo.log10().floor(), hi.log10().ceil())
        } else {
            (0.0, 1.0)
        };
        if d1 <= d0 {
            d1 = d0 + 1.0;
        }
        if d1 - d0 < 2.0 {
            d0 -= 1.0;
        }
        let y = |v: f64| bottom - (v.log10() - d0) / (d1 - d0) * PLOT_HEIGHT;

        // Group labels: wrapped to two lines, or slanted if still too long.
        let chars = ((group_width - 4.0) / 6.2).max(4.0) as usize;
        let labels: Vec<Vec<String>> = self.groups.iter().map(|g| wrap(g, chars)).collect();
        let slant = labels
            .iter()
            .flatten()
            .any(|line| line.chars().count() > chars + 2);
        let label_room = if slant {
            let longest = self.groups.iter().map(|g| g.chars().count()).max();
            longest.unwrap_or(0) as f64 * 6.2 * 0.6 + 24.0
        } else {
            40.0
        };
        let height = bottom + label_room + 16.0;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
             viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"{FONT}\" font-size=\"12\">"
        );
        let _ = writeln!(
            svg,
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{LEFT}\" y=\"26\" font-size=\"17\" font-weight=\"bold\">{}</text>",
            escape(&self.title),
        );
        for (k, line) in subtitle.iter().enumerate() {
            let _ = writeln!(
                svg,
                "<text x=\"{LEFT}\" y=\"{}\" fill=\"#444\">{}</text>",
                46 + 16 * k,
                escape(line)
            );
        }
        for (x, row, s) in &legend {
            let ly = legend_top + *row as f64 * 18.0;
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                ly - 10.0,
                s.color,
                x + 17.0,
                ly,
                escape(&s.name)
            );
        }

        // Grid and tick labels: each decade, and 2 and 5 when there are few.
        let mut d = d0;
        while d <= d1 + 1e-9 {
            let base = 10f64.powf(d);
            let steps: &[f64] = if d1 - d0 <= 3.0 && d < d1 {
                &[1.0, 2.0, 5.0]
            } else {
                &[1.0]
            };
            for &m in steps {
                let v = base * m;
                let yy = y(v);
                let (stroke, dash) = if m == 1.0 {
                    ("#c8c8c8", "")
                } else {
                    ("#e6e6e6", " stroke-dasharray=\"3,3\"")
                };
                let _ = writeln!(
                    svg,
                    "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" \
                     stroke=\"{stroke}\"{dash}/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333\">{}</text>",
                    LEFT + plot_width,
                    LEFT - 6.0,
                    yy + 4.0,
                    escape(&tick(self.unit, v))
                );
            }
            d += 1.0;
        }
        let _ = writeln!(
            svg,
            "<text transform=\"translate(18,{:.1}) rotate(-90)\" text-anchor=\"middle\" \
             fill=\"#333\">{}</text>",
            top + PLOT_HEIGHT / 2.0,
            escape(&self.axis)
        );

        // Bars and whiskers.
        for (g, name) in labels.iter().enumerate() {
            let gx = LEFT + g as f64 * group_width;
            let bars = series * BAR;
            let x0 = gx + (group_width - bars) / 2.0;
            for (i, s) in self.series.iter().enumerate() {
                let bx = x0 + i as f64 * BAR;
                match s.values.get(g).copied().flatten().filter(Point::usable) {
                    Some(p) => {
                        // Ratios stand on 1x (up: murakami faster, down:
                        // slower); other bars on the axis.
                        let (a, b) = (
                            y(p.median),
                            if self.unit == Unit::Ratio {
                                y(1.0).clamp(top, bottom)
                            } else {
                                bottom
                            },
                        );
                        let (top_y, bar_bottom) = (a.min(b), a.max(b));
                        let _ = writeln!(
                            svg,
                            "<rect x=\"{:.1}\" y=\"{top_y:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                             fill=\"{}\"><title>{}: {}</title></rect>",
                            bx + 1.0,
                            BAR - 2.0,
                            (bar_bottom - top_y).max(1.5),
                            s.color,
                            escape(&s.name),
                            escape(&tick(self.unit, p.median))
                        );
                        if p.hi > p.lo * 1.000_001 {
                            let cx = bx + BAR / 2.0;
                            let (ylo, yhi) = (y(p.lo), y(p.hi));
                            let _ = writeln!(
                                svg,
                                "<path d=\"M{cx:.1} {ylo:.1}V{yhi:.1}M{:.1} {ylo:.1}h6M{:.1} \
                                 {yhi:.1}h6\" stroke=\"#222\" stroke-width=\"1\" fill=\"none\"/>",
                                cx - 3.0,
                                cx - 3.0
                            );
                        }
                    }
                    None => {
                        let _ = writeln!(
                            svg,
                            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                             font-size=\"11\" fill=\"{}\">×</text>",
                            bx + BAR / 2.0,
                            bottom - 3.0,
                            s.color
                        );
                    }
                }
            }
            let cx = gx + group_width / 2.0;
            if slant {
                let _ = writeln!(
                    svg,
                    "<text transform=\"translate({:.1},{:.1}) rotate(-35)\" \
                     text-anchor=\"end\" font-size=\"11.5\">{}</text>",
                    cx + 4.0,
                    bottom + 16.0,
                    escape(&self.groups[g])
                );
            } else {
                for (k, line) in name.iter().enumerate() {
                    let _ = writeln!(
                        svg,
                        "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                         font-size=\"11.5\">{}</text>",
                        bottom + 17.0 + k as f64 * 14.0,
                        escape(line)
                    );
                }
            }
        }

        // Reference lines over the bars, then the axes.
        for (v, label) in self.lines.iter().filter(|l| l.0.is_finite() && l.0 > 0.0) {
            let yy = y(*v);
            let _ = writeln!(
                svg,
                "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#b00\" \
                 stroke-width=\"1.2\" stroke-dasharray=\"6,4\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#b00\">{}</text>",
                LEFT + plot_width,
                LEFT + plot_width + 6.0,
                yy + 4.0,
                escape(label)
            );
        }
        let _ = writeln!(
            svg,
            "<path d=\"M{LEFT} {top:.1}V{bottom:.1}H{:.1}\" stroke=\"#333\" fill=\"none\"/>\n</svg>",
            LEFT + plot_width
        );
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: Vec<Option<Point>>) -> Chart {
        Chart {
            file: "t.svg",
            title: "T <&>".into(),
            subtitle: String::new(),
            unit: Unit::Rate,
            axis: "ops/s".into(),
            groups: (0..values.len()).map(|i| format!("g{i}")).collect(),
            series: vec![Series {
                name: "s".into(),
                color: MURAKAMI,
                values,
            }],
            lines: vec![(2.0, "2x".into())],
        }
    }

    #[test]
    fn ticks_name_their_units() {
        assert_eq!(tick(Unit::Rate, 1e6), "1M");
        assert_eq!(tick(Unit::Rate, 2e4), "20K");
        assert_eq!(tick(Unit::Time, 1e3), "1 µs");
        assert_eq!(tick(Unit::Time, 500.0), "500 ns");
        assert_eq!(tick(Unit::Ratio, 0.5), "0.5x");
        assert_eq!(tick(Unit::Ratio, 10.0), "10x");
        assert_eq!(tick(Unit::Ratio, 0.001), "0.001x");
        assert_eq!(tick(Unit::Ratio, 0.02), "0.02x");
    }

    #[test]
    fn bars_grow_with_their_values_and_missing_ones_are_crossed() {
        let svg = chart(vec![
            Some(Point::only(10.0)),
            Some(Point::only(1000.0)),
            None,
        ])
        .svg();
        assert!(svg.contains("T &lt;&amp;&gt;"), "title escaped");
        assert!(svg.contains(">×</text>"), "the missing value is marked");
        let heights: Vec<f64> = svg
            .lines()
            .filter(|l| l.starts_with("<rect x=") && l.contains("<title>"))
            .map(|l| {
                let h = l.split("height=\"").nth(1).unwrap();
                h[..h.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(heights.len(), 2);
        assert!(heights[1] > heights[0] * 2.0, "{heights:?}");
    }

    #[test]
    fn wrap_splits_at_the_space_nearest_the_middle() {
        assert_eq!(wrap("Sealed random", 8), vec!["Sealed", "random"]);
        assert_eq!(wrap("short", 8), vec!["short"]);
        assert_eq!(fill("a bb ccc dd", 6), vec!["a bb", "ccc dd"]);
    }
}
