//! Terminal output: progress bars on stderr (hidden with `--quiet` or when stderr is not a
//! terminal), summaries, and number formatting.

use std::sync::Arc;
use std::time::Duration;

use converter::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Ui {
    quiet: bool,
}

impl Ui {
    pub fn new(quiet: bool) -> Ui {
        Ui { quiet }
    }

    /// Whether progress and summaries are left out (`--quiet`).
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Shows a progress bar driven by one counter of `progress` until the returned guard is
    /// dropped. With a `total` it is a bar with an ETA, without one a spinner with a rate.
    pub fn track(
        &self,
        progress: &Arc<Progress>,
        counter: fn(&Progress) -> &std::sync::atomic::AtomicU64,
        total: Option<u64>,
        message: &str,
    ) -> Tracker {
        let bar = if self.quiet {
            ProgressBar::hidden()
        } else {
            let bar = match total {
                Some(total) => {
                    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                        .with_style(style(
                            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                        ))
                }
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                    .with_style(style("{spinner} {msg} {bytes} {bytes_per_sec} {elapsed}")),
            };
            bar.set_message(message.to_owned());
            bar
        };
        let (bar2, progress) = (bar.clone(), Arc::clone(progress));
        let ticker = tokio::spawn(async move {
            loop {
                bar2.set_position(Progress::get(counter(&progress)));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Tracker { bar, ticker }
    }

    /// A bar for an image conversion: a spinner while the image is found, then the bytes
    /// of the layers pulled (and chunked as they come) and which layer is read.
    pub fn track_image(&self, progress: &Arc<Progress>, image: &str) -> Tracker {
        let bar = if self.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                .with_style(style("{spinner} {msg} {elapsed}"))
                .with_message(format!("finding {image}"))
        };
        let (bar2, progress) = (bar.clone(), Arc::clone(progress));
        let ticker = tokio::spawn(async move {
            loop {
                let total = Progress::get(&progress.input_total);
                if total > 0 && bar2.length() != Some(total) {
                    bar2.set_length(total);
                    bar2.set_style(style(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    ));
                }
                let layers = Progress::get(&progress.layers);
                if layers > 0 {
                    bar2.set_message(format!(
                        "pulling and chunking layer {}/{layers}",
                        Progress::get(&progress.layer)
                    ));
                }
                bar2.set_position(Progress::get(&progress.input_bytes));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Tracker { bar, ticker }
    }

    /// Prints a summary line to stderr unless quiet.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }
}

pub struct Tracker {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants of this file; a typo shows up in any run.
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// `1,234,567`
pub fn count(n: u64) -> String {
    indicatif::HumanCount(n).to_string()
}

/// `1.02 GiB`
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// `203 MB/s` (decimal megabytes, as disk and network figures are quoted).
pub fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    format!("{:.0} MB/s", bytes as f64 / 1e6 / secs)
}

/// `rows` as aligned columns: each column as wide as its widest cell (counted in
/// characters), two spaces between columns, the last column unpadded. Tab-separated text
/// misaligns as soon as a cell is longer than a tab stop.
pub fn columns<S: AsRef<str>>(rows: &[Vec<S>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.as_ref().chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let cell = cell.as_ref();
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["ID", "USER", "NOTE"],
            vec!["0123456789abcdef", "al", ""],
            vec!["1", "ünïcode-user", "x"],
        ];
        assert_eq!(
            super::columns(&rows),
            "ID                USER          NOTE\n\
             0123456789abcdef  al\n\
             1                 ünïcode-user  x\n"
        );
    }
}
