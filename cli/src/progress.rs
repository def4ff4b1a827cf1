//! Progress bars for long operations (verify, repair, dump of a large log),
//! drawn on stderr only when stdout and stderr are both terminals.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit` up to `total`; hidden unless interactive.
pub fn bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    if !crate::interactive() {
        return ProgressBar::hidden();
    }
    drawn_bar(total, what, unit)
}

/// A bar for a command whose output is the records themselves (dump):
/// drawn when stderr is a terminal and stdout is not (the records go to a
/// file or a pipe), never over records printed on the terminal.
pub fn bar_beside_output(total: u64, what: &str, unit: &str) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    drawn_bar(total, what, unit)
}

fn drawn_bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    if total == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{what} {{wide_bar}} {{human_pos}}/{{human_len}} {unit} ({{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner saying what is being done, for a step whose length is not
/// known ahead (a scan of every segment); hidden unless interactive.
pub fn spinner(what: String) -> ProgressBar {
    if !crate::interactive() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner().with_message(what);
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}
