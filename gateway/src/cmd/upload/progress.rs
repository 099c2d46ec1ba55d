//! Progress on stderr: a bar (indicatif) when stderr is a terminal, else one plain line per
//! part or upload finished, so logs and CI output stay readable.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes sent so far, shown as a bar or as lines.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    sent: AtomicU64,
}

impl Progress {
    /// Progress of `total` bytes, `already` of them stored before this run; a bar only on a
    /// terminal.
    #[must_use]
    pub fn new(total: u64, already: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{bytes:>10}/{total_bytes} [{bar:40}] {bytes_per_sec:>12} eta {eta} {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_position(already);
            bar
        });
        Self {
            bar,
            total,
            sent: AtomicU64::new(already),
        }
    }

    /// `n` more bytes went out.
    pub fn sent(&self, n: u64) {
        let now = self.sent.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if let Some(bar) = &self.bar {
            bar.set_position(now);
        }
    }

    /// A failed attempt: its `n` bytes will be sent again.
    pub fn unsend(&self, n: u64) {
        let before = self
            .sent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.saturating_sub(n))
            })
            .unwrap_or(0);
        if let Some(bar) = &self.bar {
            bar.set_position(before.saturating_sub(n));
        }
    }

    /// Says something without breaking the bar.
    pub fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Part `number` of `count` is stored (a plain line without a terminal).
    pub fn part_done(&self, number: u32, count: u32, done: usize) {
        if self.bar.is_none() {
            eprintln!(
                "part {number} stored ({done}/{count} parts, {} of {} bytes sent)",
                self.sent.load(Ordering::Relaxed).min(self.total),
                self.total
            );
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
