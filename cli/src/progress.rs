//! Progress bars for long operations (verify, repair, dump of a large log),
//! drawn on stderr only when stdout and stderr are both terminals.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit` up to `total`; hidden unless interactive.
pub fn bar(total: u64, what: &str, unit: &str) -> ProgressBar {
    if !crate::interactive() || total == 0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{what} {{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
